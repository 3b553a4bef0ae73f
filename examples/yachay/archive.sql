-- Yachay-Shop archives closed months of POS sales into the lake.
--
-- Run as an administrator, on the demo's catalog (deploy/demo.sh) or any
-- catalog with the `pos` and `lake` sources:
--
--   quipu sql -f examples/yachay/archive.sql
--
-- The live POS database keeps the last 12 months (2025-11-01 to
-- 2026-10-31 in the generated data). Each closed month is copied, one
-- statement at a time, into the lake table lake.archive.pos_sales
-- (folder archive/pos_sales/ of the lake, Parquet, one folder per month:
-- month=2025-11/...). A statement that fails or is killed leaves the table
-- as it was (docs/sql.md, "Writing to the lake").
--
-- Why a table of its own and not lake.public.sales_history: that table
-- holds the online orders from before the live window (order_id, channel,
-- status...), and yachay.sales_lines already counts these POS months from
-- the live database. Once the POS purges an archived month, adding
-- lake.archive.pos_sales as one more branch of yachay.sales_lines keeps
-- the reports whole.
--
-- The script can run again: the table is made once, and a month already
-- archived is not inserted twice.

-- The first two closed months make the table, partitioned by month (the
-- partition column comes last in the table, whatever its place here).
CREATE TABLE IF NOT EXISTS lake.archive.pos_sales WITH (partition_by = 'month') AS
SELECT t.txn_id, l.line_no, t.store_id, t.terminal_id, t.ts AS sold_at,
       l.sku, l.qty, l.unit_price_usd, l.discount_usd,
       CAST(l.qty * l.unit_price_usd - l.discount_usd AS DECIMAL(14, 2)) AS revenue_usd,
       t.payment_method, t.loyalty_card_id,
       to_char(t.ts, 'YYYY-MM') AS month
FROM pos.public.transactions t
JOIN pos.public.transaction_lines l ON l.txn_id = t.txn_id
WHERE t.ts >= TIMESTAMPTZ '2025-11-01 00:00:00+00'
  AND t.ts <  TIMESTAMPTZ '2026-01-01 00:00:00+00';

-- Every later month: one INSERT, columns in the table's order.
INSERT INTO lake.archive.pos_sales
SELECT t.txn_id, l.line_no, t.store_id, t.terminal_id, t.ts,
       l.sku, l.qty, l.unit_price_usd, l.discount_usd,
       CAST(l.qty * l.unit_price_usd - l.discount_usd AS DECIMAL(14, 2)),
       t.payment_method, t.loyalty_card_id,
       to_char(t.ts, 'YYYY-MM')
FROM pos.public.transactions t
JOIN pos.public.transaction_lines l ON l.txn_id = t.txn_id
WHERE t.ts >= TIMESTAMPTZ '2026-01-01 00:00:00+00'
  AND t.ts <  TIMESTAMPTZ '2026-02-01 00:00:00+00'
  AND (SELECT count(*) FROM lake.archive.pos_sales WHERE month = '2026-01') = 0;

-- The archive against the live POS, month by month: the same lines and
-- the same revenue.
SELECT a.month, a.lines, p.lines AS live_lines, a.revenue_usd, p.revenue_usd AS live_revenue_usd
FROM (SELECT month, count(*) AS lines, sum(revenue_usd) AS revenue_usd
      FROM lake.archive.pos_sales GROUP BY month) a
JOIN (SELECT to_char(t.ts, 'YYYY-MM') AS month, count(*) AS lines,
             sum(CAST(l.qty * l.unit_price_usd - l.discount_usd AS DECIMAL(14, 2))) AS revenue_usd
      FROM pos.public.transactions t
      JOIN pos.public.transaction_lines l ON l.txn_id = t.txn_id
      GROUP BY 1) p ON p.month = a.month
ORDER BY a.month;
