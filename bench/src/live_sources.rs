//! Benchmark: live PostgreSQL sources through Quipu against the same work
//! done directly on PostgreSQL, side by side in one run. Needs the crm and
//! pos databases of `quipu gen` on running servers; `bench/live_sources.sh`
//! starts them, generates the data and runs this:
//!
//! ```sh
//! bench/live_sources.sh [SF] [RUNS]
//! # or, with servers already loaded:
//! cargo run --profile bench-fast -p quipu-bench --bin live_sources -- CRM_PORT POS_PORT [RUNS] [MONGO_PORT]
//! ```
//!
//! Reports, each with its baseline:
//! 1. a fully pushed single-source query (revenue per channel) through
//!    Quipu ÷ the same SQL on a direct connection;
//! 2. reading a wide table: Quipu rows/s ÷ `COPY (SELECT ...) TO STDOUT
//!    (FORMAT binary)` rows/s on a direct connection;
//! 3. a selective cross-source join (one customer's online orders and
//!    in-store purchases through the loyalty card): latency and rows
//!    fetched from each source against the rows that survive.
//!
//! With MONGO_PORT (the inventory database of `quipu gen` on a
//! MongoDB-wire server), also:
//! 4. stock per SKU (a `$group` pushed by Quipu) ÷ the same grouping run
//!    directly with the MongoDB driver, and ÷ Quipu with pushdown off;
//! 5. the ten lowest stock counts (a pushed `$sort` + `$limit`), pushed ÷
//!    pushdown off;
//! 6. reading the stock collection: 2 `_id`-range partitions ÷ 1, and
//!    Quipu ÷ a direct `find` drained by the driver;
//! 7. the issue's three-source join: one customer's online orders (crm),
//!    in-store purchases (pos) and the current stock of the products
//!    bought (inventory): latency and rows fetched per source.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{Document, doc};
use quipu_catalog::{SourceDef, SourceKind};
use quipu_connectors::QuipuSession;
use quipu_scheduler::{ClientSession, Engine};

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn quipu_rows(c: &ClientSession, sql: &str) -> (Duration, usize) {
    let t = Instant::now();
    let out = c
        .sql_one(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches: Vec<_> = out.stream.try_collect().await.unwrap();
    (t.elapsed(), batches.iter().map(|b| b.num_rows()).sum())
}

async fn direct(port: u16, db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname={db}"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
}

fn pg_source(name: &str, port: u16) -> SourceDef {
    let options = [
        ("host", "127.0.0.1".to_string()),
        ("port", port.to_string()),
        ("user", "postgres".to_string()),
        ("dbname", name.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    SourceDef::new(name, SourceKind::Postgres, options).unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let crm_port: u16 = args.next().expect("CRM_PORT").parse().expect("CRM_PORT");
    let pos_port: u16 = args.next().expect("POS_PORT").parse().expect("POS_PORT");
    let runs: usize = args.next().map(|a| a.parse().expect("RUNS")).unwrap_or(7);
    let mongo_port: Option<u16> = args.next().map(|a| a.parse().expect("MONGO_PORT"));

    let dir = tempfile::tempdir().unwrap();
    let session = QuipuSession::open(dir.path()).unwrap();
    session
        .add_source(&pg_source("crm", crm_port))
        .await
        .unwrap();
    session
        .add_source(&pg_source("pos", pos_port))
        .await
        .unwrap();
    let mut split = pg_source("crm", crm_port);
    split.name = "crm_split".into();
    split.options.insert("partitions".into(), "2".into());
    session.add_source(&split).await.unwrap();
    let engine = Engine::new(session.clone());
    let c = engine.client();
    c.sql("SET quipu.execution = 'local'").await.unwrap();
    let crm = direct(crm_port, "crm").await;

    // 1. Fully pushed single-source query.
    let sql = "SELECT channel, count(*) AS orders, sum(total_usd) AS revenue FROM orders GROUP BY channel";
    let quipu_sql = sql.replace("FROM orders", "FROM crm.public.orders");
    let (mut q, mut d) = (vec![], vec![]);
    for _ in 0..runs {
        q.push(quipu_rows(&c, &quipu_sql).await.0);
        let t = Instant::now();
        let rows = crm.query(sql, &[]).await.unwrap();
        assert_eq!(rows.len(), 2);
        d.push(t.elapsed());
    }
    let (q, d) = (p50(q), p50(d));
    println!(
        "pushed aggregate (revenue per channel): quipu p50 {:.1} ms, direct p50 {:.1} ms, ratio {:.2} (target <= 1.2)",
        ms(q),
        ms(d),
        q.as_secs_f64() / d.as_secs_f64()
    );

    // 2. Reading a wide table.
    let cols = "order_id, customer_id, channel, ordered_at, status, total_usd, utm_campaign";
    let (mut q, mut d, mut q2, mut n) = (vec![], vec![], vec![], 0);
    for _ in 0..runs.min(5) {
        let (t, rows) = quipu_rows(&c, &format!("SELECT {cols} FROM crm.public.orders")).await;
        q.push(t);
        n = rows;
        let (t, rows2) =
            quipu_rows(&c, &format!("SELECT {cols} FROM crm_split.public.orders")).await;
        assert_eq!(rows2, rows);
        q2.push(t);
        let t = Instant::now();
        let copy = crm
            .copy_out(&format!(
                "COPY (SELECT {cols} FROM orders) TO STDOUT (FORMAT binary)"
            ))
            .await
            .unwrap();
        let bytes: usize = copy
            .map(|b| b.unwrap().len())
            .fold(0, |a, b| async move { a + b })
            .await;
        assert!(bytes > 0);
        d.push(t.elapsed());
    }
    let (q, d, q2) = (p50(q), p50(d), p50(q2));
    let (qr, dr, qr2) = (
        n as f64 / q.as_secs_f64(),
        n as f64 / d.as_secs_f64(),
        n as f64 / q2.as_secs_f64(),
    );
    println!(
        "wide read ({n} rows, 7 columns): quipu {:.0} rows/s, COPY binary {:.0} rows/s, ratio {:.2} (target >= 0.8)",
        qr,
        dr,
        qr / dr
    );
    println!(
        "wide read in 2 key-range partitions: {:.0} rows/s, {:.2}x the 1-partition rate (target >= 1.6)",
        qr2,
        qr2 / qr
    );

    // 3. Selective cross-source join: one customer's online orders (crm)
    // and in-store purchases (pos) through the loyalty card.
    let customer: i64 = crm
        .query_one(
            "SELECT c.customer_id FROM customers c JOIN orders o USING (customer_id) \
             WHERE c.loyalty_card_id IS NOT NULL GROUP BY 1 HAVING count(*) >= 5 ORDER BY 1 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let sql = format!(
        "SELECT o.order_id, o.total_usd, t.txn_id, t.total_usd FROM crm.public.customers c \
         JOIN crm.public.orders o ON o.customer_id = c.customer_id \
         JOIN pos.public.transactions t ON t.loyalty_card_id = c.loyalty_card_id \
         WHERE c.customer_id = {customer}"
    );
    let (time, survivors, fetched) = with_fetched(&c, &sql, runs).await;
    println!(
        "selective cross-source join (customer {customer}): p50 {:.1} ms (target < 100 ms), {survivors} rows survive, fetched {:?} (target <= 2x survivors per source)",
        ms(time),
        fetched
    );
    if let Some(port) = mongo_port {
        mongo_part(&session, &c, port, runs, customer).await;
    }
    session.close().await;
}

/// p50 of `runs` runs of `sql`, its row count and the rows each live scan
/// fetched (from the operators' metrics).
async fn with_fetched(
    c: &ClientSession,
    sql: &str,
    runs: usize,
) -> (Duration, usize, Vec<(String, usize)>) {
    let ctx = c.context();
    let mut times = vec![];
    let mut fetched = vec![];
    let mut survivors = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let batches = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
            .await
            .unwrap();
        times.push(t.elapsed());
        survivors = batches.iter().map(|b| b.num_rows()).sum::<usize>();
        fetched = quipu_connectors::registry::rows_fetched(&plan)
            .into_iter()
            .map(|s| (s.source, s.rows.unwrap_or(0)))
            .collect();
    }
    (p50(times), survivors, fetched)
}

fn mongo_source(name: &str, port: u16, extra: &[(&str, &str)]) -> SourceDef {
    let options = [
        ("host", "127.0.0.1"),
        ("port", &port.to_string()),
        ("database", "inventory"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    SourceDef::new(name, SourceKind::Mongodb, options).unwrap()
}

/// Time of `runs` runs of `f`, p50.
async fn time_p50<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    p50(times)
}

async fn mongo_part(
    session: &QuipuSession,
    c: &ClientSession,
    port: u16,
    runs: usize,
    customer: i64,
) {
    for s in [
        mongo_source(
            "inventory",
            port,
            &[("partitions", "1"), ("pipelines", "on")],
        ),
        mongo_source(
            "inventory_raw",
            port,
            &[("pushdown", "off"), ("partitions", "1")],
        ),
        mongo_source("inventory_split", port, &[("partitions", "2")]),
    ] {
        session.add_source(&s).await.unwrap();
    }
    let client =
        mongodb::Client::with_uri_str(format!("mongodb://127.0.0.1:{port}/?directConnection=true"))
            .await
            .unwrap();
    let stock = client.database("inventory").collection::<Document>("stock");
    let docs = stock.estimated_document_count().await.unwrap();

    // 4. Stock per SKU.
    let sql = "SELECT sku, sum(on_hand) AS on_hand, count(*) AS locations FROM SRC.public.stock GROUP BY sku";
    let pushed = sql.replace("SRC", "inventory");
    let raw = sql.replace("SRC", "inventory_raw");
    let groups = quipu_rows(c, &pushed).await.1;
    assert_eq!(quipu_rows(c, &raw).await.1, groups);
    let q = time_p50(runs, || async {
        assert_eq!(quipu_rows(c, &pushed).await.1, groups);
    })
    .await;
    let off = time_p50(runs.min(3), || async {
        assert_eq!(quipu_rows(c, &raw).await.1, groups);
    })
    .await;
    let d = time_p50(runs, || async {
        let pipeline = vec![doc! { "$group": {
            "_id": "$sku", "on_hand": { "$sum": "$on_hand" }, "locations": { "$sum": 1 }
        } }];
        let n = stock
            .aggregate(pipeline)
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len();
        assert_eq!(n, groups);
    })
    .await;
    println!(
        "stock per SKU ({docs} stock documents, {groups} groups): quipu pushed p50 {:.1} ms, direct driver $group p50 {:.1} ms, ratio {:.2}; pushdown off p50 {:.1} ms ({:.1}x the pushed time)",
        ms(q),
        ms(d),
        q.as_secs_f64() / d.as_secs_f64(),
        ms(off),
        off.as_secs_f64() / q.as_secs_f64()
    );

    // 5. Top-k.
    let sql = "SELECT _id, sku, on_hand FROM SRC.public.stock ORDER BY on_hand, _id LIMIT 10";
    let pushed = sql.replace("SRC", "inventory");
    let raw = sql.replace("SRC", "inventory_raw");
    let q = time_p50(runs, || async {
        assert_eq!(quipu_rows(c, &pushed).await.1, 10);
    })
    .await;
    let off = time_p50(runs.min(3), || async {
        assert_eq!(quipu_rows(c, &raw).await.1, 10);
    })
    .await;
    println!(
        "ten lowest stock counts: quipu pushed p50 {:.1} ms, pushdown off p50 {:.1} ms ({:.1}x)",
        ms(q),
        ms(off),
        off.as_secs_f64() / q.as_secs_f64()
    );

    // 6. Reading the collection.
    let cols = "_id, sku, on_hand, reserved, reorder_point, updated_at";
    let one = format!("SELECT {cols} FROM inventory.public.stock");
    let two = format!("SELECT {cols} FROM inventory_split.public.stock");
    let q1 = time_p50(runs.min(3), || async {
        assert_eq!(quipu_rows(c, &one).await.1 as u64, docs);
    })
    .await;
    let q2 = time_p50(runs.min(3), || async {
        assert_eq!(quipu_rows(c, &two).await.1 as u64, docs);
    })
    .await;
    let d = time_p50(runs.min(3), || async {
        let n = stock
            .find(doc! {})
            .projection(
                doc! { "sku": 1, "on_hand": 1, "reserved": 1, "reorder_point": 1, "updated_at": 1 },
            )
            .batch_size(8192)
            .await
            .unwrap()
            .try_fold(0u64, |n, _| async move { Ok(n + 1) })
            .await
            .unwrap();
        assert_eq!(n, docs);
    })
    .await;
    let rate = |t: Duration| docs as f64 / t.as_secs_f64();
    println!(
        "stock read ({docs} documents, 6 fields): quipu {:.0} docs/s, direct find {:.0} docs/s, ratio {:.2}; 2 _id ranges {:.0} docs/s, {:.2}x the 1-partition rate",
        rate(q1),
        rate(d),
        rate(q1) / rate(d),
        rate(q2),
        rate(q2) / rate(q1)
    );

    // 7. Three sources.
    let sql = format!(
        "SELECT o.order_id, i.sku, s.location.id AS location, s.on_hand, t.txn_id \
         FROM crm.public.customers c \
         JOIN crm.public.orders o ON o.customer_id = c.customer_id \
         JOIN crm.public.order_items i ON i.order_id = o.order_id \
         JOIN inventory.public.stock s ON s.sku = i.sku \
         LEFT JOIN pos.public.transactions t ON t.loyalty_card_id = c.loyalty_card_id \
         WHERE c.customer_id = {customer}"
    );
    let (time, survivors, fetched) = with_fetched(c, &sql, runs).await;
    println!(
        "three-source join (customer {customer}: orders, stock of what they bought, in-store purchases): p50 {:.1} ms (target < 100 ms), {survivors} rows, fetched {:?} (target <= 2x survivors per source)",
        ms(time),
        fetched
    );
}
