-- Yachay-Shop business views over the live sources (crm, pos: PostgreSQL;
-- inventory: MongoDB) and the lake. Registered by deploy/demo.sh with
-- `quipu sql -f examples/yachay/views.sql`; docs/business-views.md explains
-- the identity rules.

CREATE SCHEMA IF NOT EXISTS yachay;

-- Who owns a loyalty card: the CRM link (card ids typed by hand, so trimmed
-- and upper-cased), else a card whose holder gave the same email at the till
-- as a CRM customer (emails lower-cased and trimmed on both sides).
CREATE OR REPLACE VIEW yachay.card_owner AS
WITH crm_link AS (
    SELECT upper(trim(loyalty_card_id)) AS card_id, customer_id
    FROM crm.public.customers
    WHERE loyalty_card_id IS NOT NULL
),
email_link AS (
    SELECT lc.card_id, min(c.customer_id) AS customer_id
    FROM pos.public.loyalty_cards lc
    JOIN crm.public.customers c ON lower(trim(lc.email)) = lower(trim(c.email))
    WHERE lc.email IS NOT NULL AND c.email IS NOT NULL
    GROUP BY lc.card_id
)
SELECT card_id, customer_id, 'crm' AS linked_by FROM crm_link
UNION ALL
SELECT e.card_id, e.customer_id, 'email' AS linked_by
FROM email_link e LEFT JOIN crm_link l ON l.card_id = e.card_id
WHERE l.card_id IS NULL;

-- Web identity: an anonymous cookie belongs to the customer who logged in
-- with it at least once (the lowest id if a device was shared).
CREATE OR REPLACE VIEW yachay.web_identity AS
SELECT anonymous_id, min(customer_id) AS customer_id
FROM lake.public.clickstream
WHERE customer_id IS NOT NULL
GROUP BY anonymous_id;

-- Clickstream with the customer resolved, typed timestamps and campaign
-- tags in one case.
CREATE OR REPLACE VIEW yachay.web_events AS
SELECT e.event_id,
       CAST(e.ts AS TIMESTAMP) AS ts,
       e.session_id,
       coalesce(e.customer_id, w.customer_id) AS customer_id,
       e.customer_id IS NULL AND w.customer_id IS NOT NULL AS resolved_from_cookie,
       e.anonymous_id, e.device, e.event_type, e.sku, e.page, e.duration_ms,
       e.utm_source,
       lower(e.utm_campaign) AS utm_campaign
FROM lake.public.clickstream e
LEFT JOIN yachay.web_identity w ON w.anonymous_id = e.anonymous_id;

-- Every sold line, live and archived: online orders (web, app), till
-- transactions (store) and the lake's sales history. Cancelled and
-- returned orders are not sales.
CREATE OR REPLACE VIEW yachay.sales_lines AS
SELECT o.ordered_at AS sold_at, o.channel, CAST(NULL AS INT) AS store_id, o.order_id AS sale_id,
       i.sku, i.qty, CAST(i.qty * i.unit_price_usd AS DECIMAL(14, 2)) AS revenue_usd, 'live' AS layer
FROM crm.public.orders o
JOIN crm.public.order_items i ON i.order_id = o.order_id
WHERE o.status NOT IN ('cancelled', 'returned')
UNION ALL
SELECT t.ts, 'store', t.store_id, t.txn_id,
       l.sku, l.qty, CAST(l.qty * l.unit_price_usd - l.discount_usd AS DECIMAL(14, 2)), 'live'
FROM pos.public.transactions t
JOIN pos.public.transaction_lines l ON l.txn_id = t.txn_id
UNION ALL
SELECT h.ordered_at, CAST(h.channel AS VARCHAR), CAST(NULL AS INT), h.order_id,
       CAST(h.sku AS VARCHAR), h.qty, CAST(h.qty * h.unit_price_usd AS DECIMAL(14, 2)), 'archive'
FROM lake.public.sales_history h
WHERE h.status NOT IN ('cancelled', 'returned');

CREATE OR REPLACE VIEW yachay.sales_daily AS
SELECT CAST(date_trunc('day', l.sold_at) AS DATE) AS day, l.channel, s.name AS store, p.category,
       count(DISTINCT l.sale_id) AS sales, sum(l.qty) AS units, sum(l.revenue_usd) AS revenue_usd
FROM yachay.sales_lines l
LEFT JOIN inventory.public.products p ON p.sku = l.sku
LEFT JOIN pos.public.stores s ON s.store_id = l.store_id
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW yachay.sales_weekly AS
SELECT CAST(date_trunc('week', l.sold_at) AS DATE) AS week, l.channel, s.name AS store, p.category,
       count(DISTINCT l.sale_id) AS sales, sum(l.qty) AS units, sum(l.revenue_usd) AS revenue_usd
FROM yachay.sales_lines l
LEFT JOIN inventory.public.products p ON p.sku = l.sku
LEFT JOIN pos.public.stores s ON s.store_id = l.store_id
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW yachay.sales_monthly AS
SELECT CAST(date_trunc('month', l.sold_at) AS DATE) AS month, l.channel, s.name AS store, p.category,
       count(DISTINCT l.sale_id) AS sales, sum(l.qty) AS units, sum(l.revenue_usd) AS revenue_usd
FROM yachay.sales_lines l
LEFT JOIN inventory.public.products p ON p.sku = l.sku
LEFT JOIN pos.public.stores s ON s.store_id = l.store_id
GROUP BY 1, 2, 3, 4;

-- Question 2: stock on hand minus reserved per SKU across all locations,
-- straight from the inventory system, with low-stock alerts (what is left
-- everywhere is at or below the sum of the locations' reorder points).
CREATE OR REPLACE VIEW yachay.inventory_live AS
SELECT s.sku, p.name, p.category,
       sum(s.on_hand) AS on_hand,
       sum(coalesce(s.reserved, 0)) AS reserved,
       sum(s.on_hand - coalesce(s.reserved, 0)) AS available,
       count(*) AS locations,
       sum(CASE WHEN s.on_hand - coalesce(s.reserved, 0) <= s.reorder_point THEN 1 ELSE 0 END) AS locations_at_or_below_reorder,
       sum(s.reorder_point) AS reorder_point,
       sum(s.on_hand - coalesce(s.reserved, 0)) <= sum(s.reorder_point) AS low_stock_alert
FROM inventory.public.stock s
LEFT JOIN inventory.public.products p ON p.sku = s.sku
GROUP BY s.sku, p.name, p.category;

-- Question 3: per campaign, spend against the sessions, orders and revenue
-- it drove online (orders tagged with its utm_campaign) and in stores
-- (purchases by contacted customers between the contact and the end of the
-- campaign, through their loyalty card).
CREATE OR REPLACE VIEW yachay.marketing_effectiveness AS
WITH ads AS (
    SELECT lower(trim(utm_campaign)) AS utm, sum(spend_usd) AS ad_spend_usd,
           sum(impressions) AS impressions, sum(clicks) AS ad_clicks
    FROM lake.marketing.fb_ads GROUP BY 1
),
ga AS (
    SELECT lower(utm_campaign) AS utm, sum(sessions) AS ga_sessions, sum(conversions) AS ga_conversions
    FROM lake.marketing.ga GROUP BY 1
),
web AS (
    SELECT utm_campaign AS utm, count(DISTINCT session_id) AS web_sessions
    FROM yachay.web_events WHERE utm_campaign IS NOT NULL GROUP BY 1
),
online AS (
    SELECT utm_campaign AS utm, count(*) AS online_orders, sum(total_usd) AS online_revenue_usd
    FROM crm.public.orders
    WHERE utm_campaign IS NOT NULL AND status NOT IN ('cancelled', 'returned')
    GROUP BY 1
),
instore AS (
    SELECT c.campaign_id, count(*) AS store_purchases, sum(t.total_usd) AS store_revenue_usd
    FROM crm.public.campaigns c
    JOIN crm.public.campaign_contacts cc ON cc.campaign_id = c.campaign_id
    JOIN yachay.card_owner co ON co.customer_id = cc.customer_id
    JOIN pos.public.transactions t ON t.loyalty_card_id = co.card_id
    WHERE t.ts >= cc.sent_at AND CAST(t.ts AS DATE) <= c.end_date
    GROUP BY c.campaign_id
)
SELECT c.campaign_id, c.name, c.channel, c.utm_campaign, c.start_date, c.end_date,
       CAST(coalesce(a.ad_spend_usd, CAST(c.budget_usd AS DOUBLE)) AS DECIMAL(14, 2)) AS spend_usd,
       coalesce(a.impressions, 0) AS impressions,
       coalesce(g.ga_sessions, 0) AS ga_sessions,
       coalesce(w.web_sessions, 0) AS web_sessions,
       coalesce(o.online_orders, 0) AS online_orders,
       coalesce(o.online_revenue_usd, 0) AS online_revenue_usd,
       coalesce(s.store_purchases, 0) AS store_purchases,
       coalesce(s.store_revenue_usd, 0) AS store_revenue_usd,
       CAST((coalesce(o.online_revenue_usd, 0) + coalesce(s.store_revenue_usd, 0)) AS DOUBLE)
           / coalesce(a.ad_spend_usd, CAST(c.budget_usd AS DOUBLE)) AS return_on_spend
FROM crm.public.campaigns c
LEFT JOIN ads a ON a.utm = c.utm_campaign
LEFT JOIN ga g ON g.utm = c.utm_campaign
LEFT JOIN web w ON w.utm = c.utm_campaign
LEFT JOIN online o ON o.utm = c.utm_campaign
LEFT JOIN instore s ON s.campaign_id = c.campaign_id;

-- Question 1: one row per customer.
CREATE OR REPLACE VIEW yachay.customer_360 AS
WITH online AS (
    SELECT customer_id, count(*) AS online_orders, sum(total_usd) AS online_spend_usd,
           max(ordered_at) AS last_online_order_at
    FROM crm.public.orders WHERE status NOT IN ('cancelled', 'returned')
    GROUP BY customer_id
),
instore AS (
    SELECT co.customer_id, count(*) AS store_purchases, sum(t.total_usd) AS store_spend_usd,
           max(t.ts) AS last_store_visit_at
    FROM pos.public.transactions t JOIN yachay.card_owner co ON co.card_id = t.loyalty_card_id
    GROUP BY co.customer_id
),
web AS (
    SELECT customer_id, max(ts) AS last_web_visit_at, count(DISTINCT session_id) AS web_sessions
    FROM yachay.web_events WHERE customer_id IS NOT NULL
    GROUP BY customer_id
),
contacts AS (
    SELECT cc.customer_id, count(*) AS campaigns_received,
           count(DISTINCT CASE WHEN o.order_id IS NOT NULL THEN cc.campaign_id END) AS campaigns_converted
    FROM crm.public.campaign_contacts cc
    JOIN crm.public.campaigns c ON c.campaign_id = cc.campaign_id
    LEFT JOIN crm.public.orders o ON o.customer_id = cc.customer_id AND o.utm_campaign = c.utm_campaign
    GROUP BY cc.customer_id
),
purchases AS (
    SELECT o.customer_id, i.sku, i.qty
    FROM crm.public.orders o JOIN crm.public.order_items i ON i.order_id = o.order_id
    UNION ALL
    SELECT co.customer_id, l.sku, l.qty
    FROM pos.public.transactions t
    JOIN yachay.card_owner co ON co.card_id = t.loyalty_card_id
    JOIN pos.public.transaction_lines l ON l.txn_id = t.txn_id
),
categories AS (
    SELECT customer_id, category,
           row_number() OVER (PARTITION BY customer_id ORDER BY units DESC, category) AS rank
    FROM (
        SELECT pu.customer_id, pr.category, sum(pu.qty) AS units
        FROM purchases pu JOIN inventory.public.products pr ON pr.sku = pu.sku
        GROUP BY pu.customer_id, pr.category
    ) u
),
store_stock AS (
    SELECT st.city, s.sku, sum(s.on_hand - coalesce(s.reserved, 0)) AS available
    FROM inventory.public.stock s
    JOIN pos.public.stores st ON st.store_id = s.location['id']
    WHERE s.location['type'] = 'store'
    GROUP BY st.city, s.sku
),
viewed AS (
    SELECT v.customer_id, count(*) AS viewed_products,
           sum(CASE WHEN ss.available > 0 THEN 1 ELSE 0 END) AS viewed_in_stock_nearby
    FROM (SELECT DISTINCT customer_id, sku FROM yachay.web_events
          WHERE event_type = 'product_view' AND customer_id IS NOT NULL) v
    JOIN crm.public.customers c ON c.customer_id = v.customer_id
    LEFT JOIN store_stock ss ON ss.city = c.city AND ss.sku = v.sku
    GROUP BY v.customer_id
)
SELECT c.customer_id, c.first_name, c.last_name,
       lower(trim(c.email)) AS email, c.city, c.province, c.segment,
       upper(trim(c.loyalty_card_id)) AS loyalty_card_id,
       coalesce(o.online_orders, 0) AS online_orders,
       coalesce(o.online_spend_usd, 0) AS online_spend_usd,
       o.last_online_order_at,
       coalesce(s.store_purchases, 0) AS store_purchases,
       coalesce(s.store_spend_usd, 0) AS store_spend_usd,
       s.last_store_visit_at,
       w.last_web_visit_at,
       coalesce(w.web_sessions, 0) AS web_sessions,
       coalesce(ct.campaigns_received, 0) AS campaigns_received,
       coalesce(ct.campaigns_converted, 0) AS campaigns_converted,
       fc.category AS favourite_category,
       coalesce(v.viewed_products, 0) AS viewed_products,
       coalesce(v.viewed_in_stock_nearby, 0) AS viewed_in_stock_nearby
FROM crm.public.customers c
LEFT JOIN online o ON o.customer_id = c.customer_id
LEFT JOIN instore s ON s.customer_id = c.customer_id
LEFT JOIN web w ON w.customer_id = c.customer_id
LEFT JOIN contacts ct ON ct.customer_id = c.customer_id
LEFT JOIN categories fc ON fc.customer_id = c.customer_id AND fc.rank = 1
LEFT JOIN viewed v ON v.customer_id = c.customer_id;

-- Question 5: expected revenue per category for the next four weeks after
-- the current one, with a 95% prediction interval: forecast() (docs/sql.md,
-- Forecasts) over every complete week of live and archived sales (the
-- first and the current week are partial and left out). Step 1 is the
-- current week, so the view keeps steps 2 to 5.
CREATE OR REPLACE VIEW yachay.sales_forecast AS
SELECT f.series AS category,
       CAST(f.time AS DATE) AS week,
       f.step - 1 AS weeks_ahead,
       CAST(greatest(f.forecast, 0) AS DECIMAL(14, 2)) AS forecast_revenue_usd,
       CAST(greatest(f.lower, 0) AS DECIMAL(14, 2)) AS lower_revenue_usd,
       CAST(greatest(f.upper, 0) AS DECIMAL(14, 2)) AS upper_revenue_usd,
       f.method
FROM forecast('
    SELECT week, category, CAST(sum(revenue_usd) AS DOUBLE) AS revenue
    FROM yachay.sales_weekly
    WHERE category IS NOT NULL
      AND week > (SELECT min(week) FROM yachay.sales_weekly)
      AND week < (SELECT max(week) FROM yachay.sales_weekly)
    GROUP BY week, category', 5) AS f
WHERE f.step > 1;
