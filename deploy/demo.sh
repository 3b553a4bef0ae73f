#!/usr/bin/env bash
# Quipu's main job: Yachay-Shop's five business questions answered across
# live systems. It installs what is missing (PostgreSQL, a venv with the
# SecantusDB MongoDB-wire server), starts two PostgreSQL servers (crm, pos)
# and SecantusDB (inventory) on loopback, generates the dataset with
# `quipu gen`, registers crm, pos, inventory and the lake in a fresh catalog,
# creates the yachay.* business views, prints the answers and writes a daily
# report (HTML with charts, and CSVs) for the newest day. Then it leaves
# the servers running and says how to connect, until Ctrl-C stops them.
#
#   deploy/demo.sh                 # scale factor 0.1, under ./quipu-demo/
#   deploy/demo.sh --scale 1       # bigger
#   deploy/demo.sh --exit          # stop the servers right after the answers
#   deploy/demo.sh --setup-only    # servers, data and catalog, no answers
#                                  # (bench/cluster.sh; touches DIR/ready)
#   QUIPU_DEMO_DIR=/tmp/x deploy/demo.sh
#
# Running it again starts from scratch (idempotent).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scale=0.1
wait_for_ctrl_c=1
setup_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) scale="${2:?--scale needs a value}"; shift 2 ;;
        --scale=*) scale="${1#--scale=}"; shift ;;
        --exit) wait_for_ctrl_c=0; shift ;;
        --setup-only) setup_only=1; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
demo="${QUIPU_DEMO_DIR:-$PWD/quipu-demo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${QUIPU_TARGET_DIR:-$HOME/.cache/quipu/target}}"
. "$root/deploy/lib/prereqs.sh"

ensure_postgres
ensure_venv
bindir="$(pg_bindir)"

if [ -n "${QUIPU_BIN:-}" ]; then
    quipu="$QUIPU_BIN"      # a binary built already (the test suite uses this)
else
    echo "== building quipu (the first build takes several minutes)"
    (cd "$root" && cargo build --locked -q -p quipu-cli --bin quipu)
    quipu="$CARGO_TARGET_DIR/debug/quipu"
fi

mkdir -p "$demo"
demo="$(cd "$demo" && pwd)"
state="$demo/servers.env"


stop_servers() {
    [ -f "$state" ] || return 0
    # shellcheck disable=SC1090
    . "$state"
    for d in ${PG_DATA_DIRS:-}; do
        [ -d "$d" ] && as_pg "$bindir/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
    done
    if [ -n "${MONGO_PID:-}" ]; then kill "$MONGO_PID" 2>/dev/null || true; fi
    [ -n "${SERVERS_DIR:-}" ] && rm -rf "$SERVERS_DIR"
    rm -f "$state"
}

# A previous run's servers, if any, go first.
stop_servers
rm -rf "$demo/data" "$demo/lake" "$demo/ready" "$demo/reports"

# PostgreSQL refuses to run as root, and the postgres user must reach the
# data folder: keep the servers in a temporary folder of their own.
servers="$(mktemp -d /tmp/quipu-demo-servers.XXXXXX)"
chmod 755 "$servers"
echo "SERVERS_DIR=$servers" > "$state"
cleanup() {
    echo
    echo "== stopping the servers"
    stop_servers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg() {
    local name="$1" port="$2" dir="$servers/$1"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
    echo "PG_DATA_DIRS=\"\${PG_DATA_DIRS:-} $dir/data\"" >> "$state"
    wait_port "$port" "PostgreSQL ($name)" "$dir/postgres.log"
    "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE $name" >/dev/null
}

crm_port="$(free_port)"; pos_port="$(free_port)"; mongo_port="$(free_port)"
echo "== starting PostgreSQL crm on 127.0.0.1:$crm_port and pos on 127.0.0.1:$pos_port"
start_pg crm "$crm_port"
start_pg pos "$pos_port"
echo "== starting SecantusDB (MongoDB wire) inventory on 127.0.0.1:$mongo_port"
"$QUIPU_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$mongo_port" --storage-path :memory: \
    > "$servers/secantusd.log" 2>&1 &
echo "MONGO_PID=$!" >> "$state"
wait_port "$mongo_port" "SecantusDB" "$servers/secantusd.log"

crm_url="postgresql://postgres@127.0.0.1:$crm_port/crm?sslmode=disable"
pos_url="postgresql://postgres@127.0.0.1:$pos_port/pos?sslmode=disable"
mongo_url="mongodb://127.0.0.1:$mongo_port/inventory?directConnection=true"

echo "== generating Yachay-Shop at scale $scale"
"$quipu" gen --scale "$scale" --seed 42 --crm-url "$crm_url" --pos-url "$pos_url" \
    --mongodb-url "$mongo_url" --lake "$demo/lake"

echo "== registering crm, pos, inventory and the lake in $demo/data"
export QUIPU_DATA_DIR="$demo/data"
pg_source() {
    "$quipu" catalog add-source "$1" --kind postgres --option host=127.0.0.1 --option "port=$2" \
        --option user=postgres --option "dbname=$1" --option sslmode=disable > /dev/null
}
pg_source crm "$crm_port"
pg_source pos "$pos_port"
"$quipu" catalog add-source inventory --kind mongodb --option host=127.0.0.1 \
    --option "port=$mongo_port" --option database=inventory > /dev/null
"$quipu" catalog add-source lake --kind lake --url "$demo/lake" > /dev/null
"$quipu" sql -f "$root/examples/yachay/views.sql" > /dev/null
"$quipu" catalog list --tables

if [ "$setup_only" = 1 ]; then
    printf 'CRM_PORT=%s\nPOS_PORT=%s\nMONGO_PORT=%s\n' "$crm_port" "$pos_port" "$mongo_port" > "$demo/ready"
    echo "== ready: catalog in $demo/data; Ctrl-C (or SIGTERM) stops the servers"
    while true; do sleep 3600 & wait $!; done
fi

q() { echo; echo "-- $1"; shift; "$quipu" sql "$@"; }
echo
echo "== 1. Customer 360 (crm + pos + inventory + lake, one row per customer)"
q "customers in the view" \
  "SELECT count(*) AS rows, count(DISTINCT customer_id) AS customers,
          sum(CASE WHEN store_purchases > 0 THEN 1 ELSE 0 END) AS seen_in_stores,
          sum(CASE WHEN last_web_visit_at IS NOT NULL THEN 1 ELSE 0 END) AS seen_on_the_web
   FROM yachay.customer_360"
q "the five best customers" \
  "SELECT customer_id, first_name, last_name, city, online_orders, store_purchases,
          online_spend_usd + store_spend_usd AS total_spend_usd, last_web_visit_at,
          campaigns_received, campaigns_converted, favourite_category,
          viewed_products, viewed_in_stock_nearby
   FROM yachay.customer_360 ORDER BY total_spend_usd DESC, customer_id LIMIT 5"


echo
echo "== 1b. The customer 360, cached: declared once, then read from the cache by the same question"
"$quipu" sql "CREATE MATERIALIZED VIEW cache.customer_360
    WITH (refresh = 'every 10 minutes', max_staleness = '1 hour')
    AS SELECT * FROM yachay.customer_360"
"$quipu" catalog describe cache.customer_360 | grep -E '^(materialized|generation|rows|refresh took)'
best="SELECT customer_id, first_name, last_name, online_spend_usd + store_spend_usd AS total_spend_usd
      FROM yachay.customer_360 ORDER BY total_spend_usd DESC, customer_id LIMIT 3"
elapsed() { local t0; t0=$(date +%s%N); "$@" > /dev/null; echo $(( ($(date +%s%N) - t0) / 1000000 )); }
live_ms=$(elapsed "$quipu" sql "SET quipu.max_staleness = '0'; $best")
cached_ms=$(elapsed "$quipu" sql "$best")
q "the three best customers, answered from the cache" "$best"
echo "   live: ${live_ms} ms, from the cache: ${cached_ms} ms (each a new quipu process)"
echo "   EXPLAIN names the cache it read: $("$quipu" sql --format csv "EXPLAIN $best" \
    | grep -o 'cache cache.customer_360, generation [0-9]*, [^.]* old' | head -1)"

echo
echo "== 2. Real-time inventory (answered by the live inventory system)"
"$quipu" sql "CREATE MATERIALIZED VIEW cache.inventory_live WITH (max_staleness = '10 minutes')
    AS SELECT * FROM yachay.inventory_live"
q "low-stock alerts" \
  "SELECT count(*) AS skus, sum(CASE WHEN low_stock_alert THEN 1 ELSE 0 END) AS low_stock_skus,
          sum(available) AS units_available
   FROM yachay.inventory_live"
q "SKU-000001 now (from the cache just made)" "SELECT sku, name, on_hand, reserved, available, low_stock_alert FROM yachay.inventory_live WHERE sku = 'SKU-000001'"
"$QUIPU_VENV/bin/python" - "$mongo_url" <<'PY'
import sys, pymongo
db = pymongo.MongoClient(sys.argv[1]).inventory
r = db.stock.update_one({"sku": "SKU-000001", "location.type": "store", "location.id": 1},
                        {"$inc": {"on_hand": -5, "reserved": 5}})
print(f"\n(inventory system: sold 5 x SKU-000001 at store 1 -> {r.modified_count} document changed)")
PY
q "SKU-000001 in the next query that accepts the 10-minute-old cache" "SELECT sku, name, on_hand, reserved, available, low_stock_alert FROM yachay.inventory_live WHERE sku = 'SKU-000001'"
q "SKU-000001 in the next query that asks for live stock (max_staleness = '0')" \
  "SET quipu.max_staleness = '0'; SELECT sku, name, on_hand, reserved, available, low_stock_alert FROM yachay.inventory_live WHERE sku = 'SKU-000001'"

echo
echo "== 3. Marketing effectiveness (ads exports + GA + clickstream + crm orders + pos purchases)"
q "campaigns by return on spend" \
  "SELECT name, channel, spend_usd, ga_sessions, web_sessions, online_orders, online_revenue_usd,
          store_purchases, store_revenue_usd, round(return_on_spend, 2) AS return_on_spend
   FROM yachay.marketing_effectiveness ORDER BY return_on_spend DESC LIMIT 10"

echo
echo "== 4. Sales reports (live crm + pos and the archived history in the lake)"
q "monthly sales by channel, last six months" \
  "SELECT month, channel, sum(sales) AS sales, sum(revenue_usd) AS revenue_usd
   FROM yachay.sales_monthly WHERE month >= DATE '2026-05-01'
   GROUP BY month, channel ORDER BY month DESC, channel"
q "yearly trend, archive and live" \
  "SELECT date_part('year', month) AS year, sum(sales) AS sales, sum(revenue_usd) AS revenue_usd
   FROM yachay.sales_monthly GROUP BY 1 ORDER BY 1"
q "best stores last week" \
  "SELECT store, sum(sales) AS sales, sum(revenue_usd) AS revenue_usd FROM yachay.sales_weekly
   WHERE channel = 'store' AND week = (SELECT max(week) FROM yachay.sales_weekly)
   GROUP BY store ORDER BY revenue_usd DESC LIMIT 5"

echo
echo "== 5. Forecast: expected revenue per category for the next four weeks"
q "forecast() over the weekly history: 95% interval and method per category" \
  "SELECT category, week, forecast_revenue_usd, lower_revenue_usd, upper_revenue_usd, method
   FROM yachay.sales_forecast WHERE weeks_ahead IN (1, 4) ORDER BY category, week"

echo
echo "== 6. The daily report for the newest day of sales (quipu report)"
report="$("$quipu" report daily --date latest --out "$demo/reports")"
echo "report: $report"
echo "   (open it in a browser; the CSV behind each chart is beside it)"

cat <<EOF

== The servers are running. Try it yourself:
   export QUIPU_DATA_DIR=$demo/data
   $quipu sql                      # interactive shell: SHOW TABLES; SELECT * FROM yachay.customer_360 LIMIT 5;
   $quipu catalog list --tables
   $quipu report weekly --date latest --out $demo/reports
   QUIPU_PASSWORD=demo $quipu users add demo --admin
   QUIPU_CLUSTER_TOKEN=demo $quipu serve &     # PostgreSQL on 127.0.0.1:15432, Flight SQL on :15433
   PGPASSWORD=demo $bindir/psql -h 127.0.0.1 -p 15432 -U demo quipu -c 'SELECT * FROM yachay.inventory_live LIMIT 5'
   $bindir/psql -h 127.0.0.1 -p $crm_port -U postgres crm     # the CRM itself
   $QUIPU_VENV/bin/python -c "import pymongo; print(pymongo.MongoClient('$mongo_url').inventory.stock.find_one())"
EOF
if [ "$wait_for_ctrl_c" = 1 ]; then
    echo "   Press Ctrl-C to stop the servers."
    while true; do sleep 3600 & wait $!; done
fi
