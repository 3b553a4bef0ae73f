//! The correctness oracle: cross-source queries whose answers from Quipu
//! must equal the same SQL run by one PostgreSQL database holding copies of
//! every table involved (crm and pos copied with pg_dump, inventory with
//! pymongo, the lake's sales history through Quipu's Parquet reader).
//!
//! Each query runs in-process and on the embedded Ballista cluster (scans
//! on the executor); both answers must match the oracle's.
//!
//! Queries are written once, with Quipu's names (`crm.public.orders`); the
//! oracle database keeps one schema per system (`crm.orders`).

use std::io::Write;

use crate::common::{client, query};
use crate::servers::yachay;
use crate::views::catalog;
use quipu_scheduler::Engine;

pub(crate) const QUERIES: &[&str] = &[
    // single source, pushed whole
    "SELECT count(*) FROM crm.public.customers",
    "SELECT segment, count(*), count(email), count(loyalty_card_id) FROM crm.public.customers GROUP BY segment",
    "SELECT channel, status, count(*), sum(total_usd), min(total_usd), max(total_usd) FROM crm.public.orders GROUP BY channel, status",
    "SELECT c.city, sum(o.total_usd) FROM crm.public.orders o JOIN crm.public.customers c ON c.customer_id = o.customer_id WHERE o.status <> 'cancelled' GROUP BY c.city",
    "SELECT customer_id, count(*) FROM crm.public.orders GROUP BY customer_id HAVING count(*) >= 20",
    // PostgreSQL x PostgreSQL
    "SELECT c.segment, count(*), sum(t.total_usd) FROM crm.public.customers c JOIN pos.public.transactions t ON t.loyalty_card_id = c.loyalty_card_id GROUP BY c.segment",
    "SELECT count(*) FROM pos.public.loyalty_cards lc JOIN crm.public.customers c ON lower(trim(lc.email)) = lower(trim(c.email))",
    "SELECT c.customer_id, count(DISTINCT o.order_id), count(DISTINCT t.txn_id) FROM crm.public.customers c LEFT JOIN crm.public.orders o ON o.customer_id = c.customer_id LEFT JOIN pos.public.transactions t ON t.loyalty_card_id = c.loyalty_card_id WHERE c.customer_id <= 200 GROUP BY c.customer_id",
    "SELECT 'web' AS src, count(*) FROM crm.public.orders UNION ALL SELECT 'store', count(*) FROM pos.public.transactions",
    // PostgreSQL x MongoDB
    "SELECT p.category, sum(l.qty), sum(l.qty * l.unit_price_usd) FROM pos.public.transaction_lines l JOIN inventory.public.products p ON p.sku = l.sku GROUP BY p.category",
    "SELECT p.category, count(DISTINCT i.order_id) FROM crm.public.order_items i JOIN inventory.public.products p ON p.sku = i.sku GROUP BY p.category",
    "SELECT count(*) FROM crm.public.order_items i LEFT JOIN inventory.public.products p ON p.sku = i.sku WHERE p.sku IS NULL",
    "SELECT count(*) FROM pos.public.transaction_lines WHERE sku IN (SELECT sku FROM inventory.public.products WHERE category = 'electronics')",
    "SELECT o.order_id, i.sku, s.on_hand FROM crm.public.orders o JOIN crm.public.order_items i ON i.order_id = o.order_id JOIN inventory.public.stock s ON s.sku = i.sku WHERE o.customer_id = 7",
    "SELECT i.sku, sum(s.on_hand - coalesce(s.reserved, 0)) FROM crm.public.order_items i JOIN inventory.public.stock s ON s.sku = i.sku WHERE i.order_id <= 40 GROUP BY i.sku",
    // with the lake
    "SELECT h.channel, count(*), sum(h.qty) FROM lake.public.sales_history h JOIN inventory.public.products p ON p.sku = h.sku WHERE p.category IN ('toys', 'home') GROUP BY h.channel",
    "SELECT c.segment, count(*) FROM lake.public.sales_history h JOIN crm.public.customers c ON c.customer_id = h.customer_id WHERE h.line_no = 1 GROUP BY c.segment",
    "WITH hist AS (SELECT sku, sum(qty) AS q FROM lake.public.sales_history GROUP BY sku) SELECT p.category, sum(h.q) FROM hist h JOIN inventory.public.products p ON p.sku = h.sku GROUP BY p.category",
    "SELECT count(DISTINCT customer_id) FROM lake.public.sales_history",
    "SELECT c.city, count(DISTINCT h.order_id), count(DISTINCT t.txn_id) FROM crm.public.customers c JOIN lake.public.sales_history h ON h.customer_id = c.customer_id JOIN pos.public.transactions t ON t.loyalty_card_id = c.loyalty_card_id WHERE c.customer_id <= 300 GROUP BY c.city",
    // window functions
    "SELECT customer_id, order_id, total_usd, rank() OVER (PARTITION BY customer_id ORDER BY total_usd DESC, order_id) FROM crm.public.orders WHERE customer_id <= 50",
    "SELECT store_id, txn_id, sum(total_usd) OVER (PARTITION BY store_id ORDER BY txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM pos.public.transactions WHERE txn_id <= 500",
    "SELECT p.category, p.sku, row_number() OVER (PARTITION BY p.category ORDER BY sum(l.qty) DESC, p.sku) FROM pos.public.transaction_lines l JOIN inventory.public.products p ON p.sku = l.sku WHERE l.txn_id <= 2000 GROUP BY p.category, p.sku",
    // NULLs
    "SELECT count(*) FROM crm.public.customers WHERE email IS NULL",
    // IS DISTINCT FROM takes only its operand, not the AND after it (sqlparser 0.62).
    "SELECT count(*) FROM crm.public.customers WHERE email IS DISTINCT FROM NULL AND customer_id < 50",
    "SELECT count(*) FROM crm.public.customers WHERE segment IS NOT DISTINCT FROM 'vip' AND customer_id < 400 OR customer_id = 3",
    "SELECT coalesce(payment_method, 'unknown'), count(*) FROM pos.public.transactions GROUP BY 1",
    "SELECT count(*), count(reserved), sum(reserved) FROM inventory.public.stock",
    "SELECT count(*) FROM pos.public.transactions t LEFT JOIN crm.public.customers c ON c.loyalty_card_id = t.loyalty_card_id WHERE c.customer_id IS NULL",
    // decimals
    "SELECT sum(qty * unit_price_usd - discount_usd) FROM pos.public.transaction_lines",
    "SELECT store_id, avg(total_usd) FROM pos.public.transactions GROUP BY store_id",
    "SELECT CASE WHEN total_usd >= 100 THEN 'big' ELSE 'small' END, count(*), sum(total_usd) FROM crm.public.orders GROUP BY 1",
    // timestamps with time zones
    "SELECT date_trunc('month', ordered_at), count(*) FROM crm.public.orders GROUP BY 1",
    "SELECT count(*) FROM pos.public.transactions WHERE ts >= '2026-03-01T00:00:00Z' AND ts < '2026-04-01T00:00:00Z'",
    "SELECT extract(hour FROM ts), count(*) FROM pos.public.transactions GROUP BY 1",
    "SELECT date_trunc('month', h.ordered_at), sum(h.qty * h.unit_price_usd) FROM lake.public.sales_history h WHERE h.ordered_at < '2023-06-01T00:00:00Z' GROUP BY 1",
    // LIKE, IN, subqueries
    "SELECT count(*) FROM crm.public.customers WHERE email LIKE '%@gmail.com'",
    "SELECT count(*) FROM inventory.public.products WHERE name LIKE 'A%' OR category LIKE '%oy%'",
    "SELECT status, count(*) FROM crm.public.orders WHERE channel IN ('web') AND customer_id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) GROUP BY status",
    "SELECT count(*) FROM crm.public.customers c WHERE NOT EXISTS (SELECT 1 FROM crm.public.orders o WHERE o.customer_id = c.customer_id)",
    "SELECT count(*) FROM pos.public.transactions WHERE total_usd > (SELECT avg(total_usd) FROM pos.public.transactions)",
    "SELECT sku, sum(qty) AS q FROM pos.public.transaction_lines GROUP BY sku ORDER BY q DESC, sku LIMIT 10",
];

/// The oracle database's name for a query written with Quipu's names.
pub(crate) fn oracle_sql(sql: &str) -> String {
    sql.replace("crm.public.", "crm.")
        .replace("pos.public.", "pos.")
        .replace("inventory.public.", "inventory.")
        .replace("lake.public.", "lake.")
        .replace("stress.public.", "stress.")
        .replace("stressdocs.public.", "stressdocs.")
}

/// One value in a form both sides print alike: NULL as empty, booleans as
/// t/f, numbers to 8 significant digits, timestamps with a space and no
/// UTC suffix.
fn norm(v: &str) -> String {
    match v {
        "NULL" => return String::new(),
        "true" => return "t".into(),
        "false" => return "f".into(),
        _ => {}
    }
    if let Ok(x) = v.parse::<f64>() {
        if x == 0.0 {
            return "0".into();
        }
        return format!("{x:.7e}");
    }
    let t = v.replace('T', " ");
    let t = t
        .strip_suffix('Z')
        .or_else(|| t.strip_suffix("+00"))
        .unwrap_or(&t);
    t.to_string()
}

pub(crate) fn normalised(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|v| norm(v)).collect())
        .collect();
    rows.sort();
    rows
}

/// Loads the oracle database `db` (each test its own: tests sharing the
/// harness's servers run at the same time): crm and pos by pg_dump,
/// inventory and the lake's sales history by tab-separated files.
pub(crate) async fn load_oracle(
    y: &crate::servers::Yachay,
    c: &quipu_scheduler::ClientSession,
    db: &str,
) -> String {
    let pg = &y.crm;
    pg.psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    // Text compares byte by byte, as in Quipu (DataFusion), whatever the
    // machine's locale: min/max, ranges and ORDER BY ... LIMIT of text then
    // mean the same on both sides.
    pg.psql(
        "postgres",
        &format!("CREATE DATABASE {db} TEMPLATE template0 LC_COLLATE 'C'"),
    );
    y.crm.dump_into("crm", pg, db);
    pg.psql(
        db,
        "ALTER SCHEMA public RENAME TO crm; CREATE SCHEMA public",
    );
    y.pos.dump_into("pos", pg, db);
    pg.psql(
        db,
        "ALTER SCHEMA public RENAME TO pos; CREATE SCHEMA public",
    );
    pg.psql(
        db,
        "CREATE SCHEMA inventory; CREATE SCHEMA lake;
         CREATE TABLE inventory.products (sku text, name text, category text, price_usd double precision);
         CREATE TABLE inventory.stock (sku text, on_hand bigint, reserved bigint, reorder_point bigint);
         CREATE TABLE lake.sales_history (order_id bigint, customer_id bigint, channel text,
             ordered_at timestamptz, status text, line_no integer, sku text, qty integer,
             unit_price_usd numeric(10,2), order_total_usd numeric(12,2))",
    );
    let dir = tempfile::tempdir().unwrap();
    let tsv = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        // psql reads the file itself (\copy), as this user.
        path
    };
    // A collection's top-level fields as tab-separated text (missing or
    // null as \N), loaded with \copy.
    for (collection, fields) in [
        ("products", ["sku", "name", "category", "price_usd"]),
        ("stock", ["sku", "on_hand", "reserved", "reorder_point"]),
    ] {
        let listed = fields.map(|f| format!("'{f}'")).join(", ");
        let text = y.mongo.pymongo(
            "inventory",
            &format!(
                "fields = [{listed}]\n\
                 for d in db.{collection}.find({{}}, {{k: 1 for k in fields}}):\n    \
                 print('\\t'.join('\\\\N' if d.get(k) is None else str(d.get(k)) for k in fields))"
            ),
        );
        let file = tsv(&format!("{collection}.tsv"), &format!("{text}\n"));
        pg.psql(
            db,
            &format!("\\copy inventory.{collection} FROM '{}'", file.display()),
        );
    }
    let (history, _) = query(
        c,
        "SELECT order_id, customer_id, channel, ordered_at, status, line_no, sku, qty, \
         unit_price_usd, order_total_usd FROM lake.public.sales_history",
    )
    .await;
    let text: String = history.iter().map(|r| r.join("\t") + "\n").collect();
    let h = tsv("history.tsv", &text);
    pg.psql(
        db,
        &format!("\\copy lake.sales_history FROM '{}'", h.display()),
    );
    pg.psql(db, "ANALYZE");
    db.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_source_queries_equal_one_postgresql_database() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let on_cluster = client(&engine, "cluster").await;
    let db = load_oracle(&y, &c, "oracle").await;
    assert!(QUERIES.len() >= 30);
    let mut failures = vec![];
    for sql in QUERIES {
        let expected: Vec<Vec<String>> = y
            .crm
            .psql(&db, &oracle_sql(sql))
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect();
        let (got, _) = query(&c, sql).await;
        let (expected, got) = (normalised(expected), normalised(got));
        // The same query with its scans on the embedded cluster's executor.
        let (there, _) = query(&on_cluster, sql).await;
        if normalised(there) != got {
            failures.push(format!(
                "{sql}: the cluster's answer differs from the local one"
            ));
        }
        if expected.is_empty() && got.is_empty() {
            failures.push(format!(
                "{sql}: empty on both sides (the query checks nothing)"
            ));
        } else if expected != got {
            let diff: Vec<_> = expected
                .iter()
                .filter(|r| !got.contains(r))
                .take(3)
                .collect();
            let extra: Vec<_> = got
                .iter()
                .filter(|r| !expected.contains(r))
                .take(3)
                .collect();
            failures.push(format!(
                "{sql}: {} rows expected, {} got; missing {diff:?}; unexpected {extra:?}",
                expected.len(),
                got.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    engine.session().close().await;
}
