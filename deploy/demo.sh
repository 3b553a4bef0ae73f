#!/usr/bin/env bash
# Quipu's main job, on an embedded default: build `quipu`, write an example
# Yachay-Shop lake (clickstream NDJSON by day, marketing CSV, sales history
# Parquet by year/month, reviews NDJSON), register it in a fresh catalog and
# answer business questions across the files, once in-process and once on
# the embedded Ballista cluster.
#
#   deploy/demo.sh            # everything under ./quipu-demo/
#   QUIPU_DEMO_DIR=/tmp/x deploy/demo.sh
#
# Running it again starts from scratch (idempotent). The live PostgreSQL and
# MongoDB sources join the demo with the data generator.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo="${QUIPU_DEMO_DIR:-$PWD/quipu-demo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${QUIPU_TARGET_DIR:-$HOME/.cache/quipu/target}}"

echo "== building quipu (first build takes several minutes)"
(cd "$root" && cargo build --locked -q -p quipu-cli --bin quipu)
quipu="$CARGO_TARGET_DIR/debug/quipu"

echo "== writing the example lake under $demo"
rm -rf "$demo"
mkdir -p "$demo"
cd "$demo"
export QUIPU_DATA_DIR="$demo/data"
"$quipu" sql --format csv -f "$root/examples/make-example-lake.sql" > /dev/null

echo "== registering it"
"$quipu" catalog add-source lake --kind lake --url "$demo/lake"
"$quipu" sql "CREATE SCHEMA yachay"
"$quipu" sql "CREATE VIEW yachay.sales_monthly AS
  SELECT year, month, channel, category, count(*) AS orders, round(sum(total_usd), 2) AS revenue_usd
  FROM lake.public.sales_history GROUP BY year, month, channel, category"

q() { echo; echo "-- $1"; shift; "$quipu" sql "$@"; }
q "Monthly sales of 2025 by channel (Parquet, partition-pruned to year=2025)" \
  "SELECT month, channel, sum(orders) AS orders, sum(revenue_usd) AS revenue_usd
   FROM yachay.sales_monthly WHERE year = 2025 AND month <= 3 GROUP BY month, channel ORDER BY month, channel"
q "Marketing effectiveness: GA sessions (CSV) against purchases seen in the clickstream (NDJSON)" \
  "SELECT g.utm_campaign, sum(g.sessions) AS ga_sessions, max(c.purchases) AS clickstream_purchases
   FROM lake.marketing.ga g
   JOIN (SELECT utm_campaign, count(*) AS purchases FROM lake.public.clickstream
         WHERE event_type = 'purchase' AND utm_campaign IS NOT NULL GROUP BY utm_campaign) c
     ON c.utm_campaign = g.utm_campaign
   GROUP BY g.utm_campaign ORDER BY g.utm_campaign"
q "Funnel per device over the first week (partition-pruned by date)" \
  "SELECT device, count(*) FILTER (WHERE event_type = 'product_view') AS views,
          count(*) FILTER (WHERE event_type = 'add_to_cart') AS carts,
          count(*) FILTER (WHERE event_type = 'purchase') AS purchases
   FROM lake.public.clickstream WHERE date BETWEEN '2026-11-01' AND '2026-11-07'
   GROUP BY device ORDER BY device"
q "Worst-rated products with what reviewers said" \
  "SELECT sku, round(avg(rating), 2) AS avg_rating, count(*) AS reviews, min(body) AS a_review
   FROM lake.public.reviews GROUP BY sku ORDER BY avg_rating, sku LIMIT 5"
q "The same monthly report on the embedded Ballista cluster" --execution cluster \
  "SELECT year, sum(orders) AS orders, sum(revenue_usd) AS revenue_usd FROM yachay.sales_monthly GROUP BY year ORDER BY year"

echo
echo "== done. Try it yourself:"
echo "   export QUIPU_DATA_DIR=$demo/data"
echo "   $quipu sql            # interactive shell; SHOW TABLES;"
echo "   $quipu catalog list --tables"
