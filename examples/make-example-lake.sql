-- Writes a small, deterministic Yachay-Shop lake with Quipu's own SQL
-- (DataFusion's COPY ... TO ... PARTITIONED BY writes hive-style folders).
-- Run from the folder that should hold `lake/`:
--   quipu sql -f examples/make-example-lake.sql
-- The full generator (`quipu gen`) replaces this with the whole dataset.

-- Web and app behaviour: NDJSON partitioned by day.
COPY (
  SELECT value AS event_id,
         to_char(DATE '2026-11-01' + CAST(value % 14 AS INT), '%Y-%m-%d') AS date,
         CASE WHEN value % 4 = 0 THEN NULL ELSE value % 500 END AS customer_id,
         'anon-' || CAST(value % 3000 AS VARCHAR) AS anonymous_id,
         CASE value % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'ios' ELSE 'android' END AS device,
         CASE (value / 7) % 10 WHEN 0 THEN 'purchase' WHEN 1 THEN 'checkout' WHEN 2 THEN 'add_to_cart'
              WHEN 3 THEN 'product_view' WHEN 4 THEN 'product_view' ELSE 'page_view' END AS event_type,
         'SKU-' || lpad(CAST(value % 200 AS VARCHAR), 5, '0') AS sku,
         CASE WHEN value % 6 = 0 THEN 'black_friday' WHEN value % 6 = 1 THEN 'cyber_monday' ELSE NULL END AS utm_campaign,
         (value * 37) % 60000 AS duration_ms
  FROM range(50000)
) TO 'lake/clickstream/' STORED AS JSON PARTITIONED BY (date);

-- Google-Analytics-style daily campaign metrics: CSV by day.
COPY (
  SELECT to_char(DATE '2026-11-01' + CAST(d.value AS INT), '%Y-%m-%d') AS date,
         c.utm_campaign,
         100 + (d.value * 13 + c.k * 7) % 90 AS sessions,
         80 + (d.value * 11 + c.k * 5) % 70 AS users,
         (d.value + c.k) % 9 AS conversions,
         CAST(((d.value + c.k) % 9) * 42.5 AS DOUBLE) AS revenue_usd
  FROM range(14) d
  CROSS JOIN (VALUES ('black_friday', 1), ('cyber_monday', 2), ('winter_sale', 3)) AS c(utm_campaign, k)
) TO 'lake/marketing/ga/' STORED AS CSV PARTITIONED BY (date);

-- Archived online orders: Parquet by year and month (the batch layer).
COPY (
  SELECT value AS order_id,
         value % 500 AS customer_id,
         CASE WHEN (value / 12) % 3 = 0 THEN 'app' ELSE 'web' END AS channel,
         CASE (value / 5) % 4 WHEN 0 THEN 'electronics' WHEN 1 THEN 'home' WHEN 2 THEN 'apparel' ELSE 'toys' END AS category,
         CAST(10 + (value * 37) % 400 AS DOUBLE) AS total_usd,
         2024 + CAST(value % 24 / 12 AS INT) AS year,
         1 + CAST(value % 12 AS INT) AS month
  FROM range(30000)
) TO 'lake/sales_history/' STORED AS PARQUET PARTITIONED BY (year, month);

-- Product reviews with free text: NDJSON.
COPY (
  SELECT value AS review_id,
         'SKU-' || lpad(CAST(value % 200 AS VARCHAR), 5, '0') AS sku,
         value % 500 AS customer_id,
         1 + CAST((value / 200 + value % 3) % 5 AS INT) AS rating,
         CASE value % 3 WHEN 0 THEN 'Great value, arrived fast.' WHEN 1 THEN 'It''s OK; the size runs small.'
              ELSE 'Broke after a week. Not "premium" at all.' END AS body
  FROM range(2000)
) TO 'lake/reviews/part-0.json' STORED AS JSON;
