//! Pushdown into live sources, checked in EXPLAIN (the exact remote query)
//! and against the answers PostgreSQL gives to the same SQL directly.

use crate::common::{client, query, try_query};
use crate::servers::yachay;
use crate::views::catalog;
use quipu_scheduler::Engine;

fn psql_rows(out: String) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = out
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect();
    rows.sort();
    rows
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

/// The physical plan of a query, as EXPLAIN prints it.
async fn physical_plan(c: &quipu_scheduler::ClientSession, sql: &str) -> String {
    let (rows, _) = query(c, &format!("EXPLAIN {sql}")).await;
    rows.into_iter()
        .find(|r| r[0] == "physical_plan")
        .map(|r| r[1].clone())
        .unwrap_or_else(|| panic!("no physical plan for {sql}"))
}

fn remote_queries(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter(|l| l.contains("PgScanExec") || l.contains("MongoScanExec"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_source_subtrees_become_one_remote_query() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;

    // Aggregate over one table: one remote GROUP BY, no aggregation left here.
    let sql = "SELECT channel, count(*) AS n, sum(total_usd) AS revenue FROM crm.public.orders GROUP BY channel";
    let plan = physical_plan(&c, sql).await;
    let remote = remote_queries(&plan);
    assert_eq!(remote.len(), 1, "{plan}");
    assert!(remote[0].contains("GROUP BY"), "{plan}");
    assert!(!plan.contains("AggregateExec"), "{plan}");
    let expected = psql_rows(y.crm.psql(
        "crm",
        "SELECT channel, count(*), sum(total_usd) FROM orders GROUP BY channel",
    ));
    assert_eq!(expected.len(), 2);
    assert_eq!(sorted(query(&c, sql).await.0), expected);

    // A join and an aggregate over two tables of one source, with a filter.
    let sql = "SELECT c.segment, count(*) AS n, sum(o.total_usd) AS revenue \
               FROM crm.public.orders o JOIN crm.public.customers c ON o.customer_id = c.customer_id \
               WHERE o.channel = 'web' AND c.customer_id < 500 GROUP BY c.segment";
    let plan = physical_plan(&c, sql).await;
    let remote = remote_queries(&plan);
    assert_eq!(remote.len(), 1, "{plan}");
    assert!(remote[0].contains("JOIN"), "{plan}");
    assert!(remote[0].contains("'web'"), "{plan}");
    assert!(!plan.contains("HashJoinExec"), "{plan}");
    let expected = psql_rows(y.crm.psql(
        "crm",
        "SELECT c.segment, count(*), sum(o.total_usd) FROM orders o JOIN customers c \
         ON o.customer_id = c.customer_id WHERE o.channel = 'web' AND c.customer_id < 500 \
         GROUP BY c.segment",
    ));
    assert!(expected.len() > 1);
    assert_eq!(sorted(query(&c, sql).await.0), expected);

    // A sort at the top stays here (a subquery's order is not kept); what is
    // below it is pushed, and the answer comes back in order.
    let sql = "SELECT customer_id, count(*) AS n FROM crm.public.orders GROUP BY customer_id \
               ORDER BY n DESC, customer_id LIMIT 5";
    let plan = physical_plan(&c, sql).await;
    assert!(remote_queries(&plan)[0].contains("GROUP BY"), "{plan}");
    let expected: Vec<Vec<String>> = y
        .crm
        .psql(
            "crm",
            "SELECT customer_id, count(*) FROM orders GROUP BY customer_id \
             ORDER BY 2 DESC, 1 LIMIT 5",
        )
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect();
    assert_eq!(query(&c, sql).await.0, expected);

    // String ordering depends on the remote collation: not pushed, still right.
    let sql = "SELECT max(city) AS m FROM crm.public.customers";
    let plan = physical_plan(&c, sql).await;
    assert!(plan.contains("AggregateExec"), "{plan}");
    assert!(!remote_queries(&plan)[0].contains("max("), "{plan}");
    let (rows, _) = query(&c, sql).await;
    let expected = y
        .crm
        .psql("crm", "SELECT max(city COLLATE \"C\") FROM customers");
    assert_eq!(rows[0][0], expected.trim());
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushdown_off_keeps_the_work_here_with_the_same_answer() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let crm = engine
        .session()
        .store()
        .source("crm")
        .unwrap()
        .expect("crm is registered");
    let mut raw = crm.clone();
    raw.name = "crm_raw".into();
    raw.options.insert("pushdown".into(), "off".into());
    engine.session().add_source(&raw).await.unwrap();

    let q = |s: &str| {
        format!(
            "SELECT o.channel, count(*) AS n, sum(o.total_usd) AS revenue FROM {s}.public.orders o \
             JOIN {s}.public.customers c ON o.customer_id = c.customer_id \
             WHERE c.customer_id < 300 GROUP BY o.channel"
        )
    };
    let plan = physical_plan(&c, &q("crm_raw")).await;
    let remote = remote_queries(&plan);
    assert_eq!(remote.len(), 2, "{plan}");
    assert!(remote.iter().all(|r| !r.contains("WHERE")), "{plan}");
    assert!(
        plan.contains("HashJoinExec") && plan.contains("AggregateExec"),
        "{plan}"
    );
    let pushed = sorted(query(&c, &q("crm")).await.0);
    assert_eq!(sorted(query(&c, &q("crm_raw")).await.0), pushed);
    assert_eq!(pushed.len(), 2);

    // A broken remote query names the source.
    let err = try_query(&c, "SELECT * FROM crm.public.no_such_table")
        .await
        .unwrap_err();
    assert!(err.contains("no_such_table"), "{err}");
    engine.session().close().await;
}

/// A `citext` column is read as text and compared as text wherever the
/// comparison runs: a pushed `c <> 'a'` compared case-insensitively at
/// the source and dropped `'A'`, which DataFusion keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_read_from_citext_compares_the_same_pushed_or_not() {
    let y = yachay();
    let dir = catalog(&y);
    y.crm.psql("crm", "DROP DATABASE IF EXISTS quirks");
    y.crm.psql("crm", "CREATE DATABASE quirks");
    y.crm.psql(
        "quirks",
        "CREATE EXTENSION citext; CREATE TABLE tags (id int, c citext); \
         INSERT INTO tags VALUES (1, 'A'), (2, 'a'), (3, 'b'), (4, NULL)",
    );
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let crm = engine.session().store().source("crm").unwrap().unwrap();
    for (name, pushdown) in [("quirks", "on"), ("quirks_raw", "off")] {
        let mut source = crm.clone();
        source.name = name.into();
        source.options.insert("dbname".into(), "quirks".into());
        source.options.insert("pushdown".into(), pushdown.into());
        engine.session().add_source(&source).await.unwrap();
    }
    for filter in ["c <> 'a'", "c = 'A'", "c IN ('a', 'B')", "c NOT IN ('b')"] {
        let q = |s: &str| format!("SELECT id FROM {s}.public.tags WHERE {filter} ORDER BY id");
        let pushed = query(&c, &q("quirks")).await.0;
        assert_eq!(pushed, query(&c, &q("quirks_raw")).await.0, "{filter}");
        let expected: &[&str] = match filter {
            "c <> 'a'" => &["1", "3"],
            "c = 'A'" => &["1"],
            "c IN ('a', 'B')" => &["2"],
            _ => &["1", "2"],
        };
        let ids: Vec<&str> = pushed.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(ids, expected, "{filter}");
    }
    engine.session().close().await;
}

/// Queries over the live sources (and the lake): pushed subtrees, plain
/// scans with filters, MongoDB scans, cross-source joins.
const LIVE_QUERIES: &[&str] = &[
    "SELECT channel, count(*) AS n, sum(total_usd) AS revenue FROM crm.public.orders GROUP BY channel",
    "SELECT o.order_id, c.email FROM crm.public.orders o JOIN crm.public.customers c \
     ON o.customer_id = c.customer_id WHERE c.customer_id < 20",
    "SELECT sku, qty FROM pos.public.transaction_lines WHERE txn_id < 30 AND qty > 1",
    "SELECT sku, name, price_usd FROM inventory.public.products WHERE category = 'toys' LIMIT 7",
    "SELECT c.customer_id, count(DISTINCT t.txn_id) AS visits FROM crm.public.customers c \
     JOIN pos.public.transactions t ON t.loyalty_card_id = c.loyalty_card_id \
     WHERE c.customer_id < 100 GROUP BY c.customer_id",
    "SELECT s.sku, sum(s.on_hand) AS on_hand FROM inventory.public.stock s \
     JOIN crm.public.order_items i ON i.sku = s.sku WHERE i.order_id < 50 GROUP BY s.sku",
    // MongoDB aggregates and top-k (pipelines only with `pipelines=on`).
    "SELECT sku, count(*) AS n, max(on_hand) AS hi FROM inventory.public.stock \
     WHERE on_hand > 0 GROUP BY sku",
    "SELECT _id, sku, on_hand FROM inventory.public.stock ORDER BY on_hand DESC, _id LIMIT 5",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_plans_round_trip_through_the_codecs_and_run_on_the_cluster() {
    use datafusion_proto::bytes::{
        logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let local = client(&engine, "local").await;
    let cluster = client(&engine, "cluster").await;
    let logical_codec = quipu_scheduler::cluster::logical_codec(engine.session());
    let physical_codec = quipu_scheduler::cluster::physical_codec(engine.session());
    let ctx = local.context();
    for sql in LIVE_QUERIES {
        let df = ctx.sql(sql).await.unwrap();
        let optimized = ctx.state().optimize(df.logical_plan()).unwrap();
        let bytes =
            logical_plan_to_bytes_with_extension_codec(&optimized, logical_codec.as_ref()).unwrap();
        let back = logical_plan_from_bytes_with_extension_codec(
            &bytes,
            &ctx.task_ctx(),
            logical_codec.as_ref(),
        )
        .unwrap();
        assert_eq!(
            back.display_indent().to_string(),
            optimized.display_indent().to_string(),
            "{sql}"
        );
        let physical = df.create_physical_plan().await.unwrap();
        let text = datafusion::physical_plan::displayable(physical.as_ref())
            .indent(true)
            .to_string();
        assert!(
            text.contains("PgScanExec") || text.contains("MongoScanExec"),
            "{text}"
        );
        let bytes =
            physical_plan_to_bytes_with_extension_codec(physical, physical_codec.as_ref()).unwrap();
        // Only the source's name travels, never its options.
        let raw = String::from_utf8_lossy(&bytes);
        assert!(!raw.contains("127.0.0.1"), "{raw}");
        let back = physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &ctx.task_ctx(),
            physical_codec.as_ref(),
        )
        .unwrap();
        // Join-key filters are not encoded (scans on the cluster read
        // without them); everything else comes back as it was.
        let without_keys = |t: &str| -> String {
            t.lines()
                .map(|l| l.split(" semi_join_keys_from=").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            without_keys(
                &datafusion::physical_plan::displayable(back.as_ref())
                    .indent(true)
                    .to_string()
            ),
            without_keys(&text),
            "{sql}"
        );

        // The same query on the embedded Ballista cluster.
        let (here, _) = query(&local, sql).await;
        let (there, on) = query(&cluster, sql).await;
        assert_eq!(on, quipu_scheduler::ExecutedOn::Cluster, "{sql}");
        assert!(!here.is_empty(), "{sql}");
        assert_eq!(sorted(there), sorted(here), "{sql}");
    }
    engine.session().close().await;
}

/// Runs a query and returns its rows with `rows_fetched` of each live scan
/// (from the operators' metrics), named by the scan's EXPLAIN line.
async fn run_with_fetched(
    c: &quipu_scheduler::ClientSession,
    sql: &str,
) -> (Vec<Vec<String>>, Vec<(String, usize)>) {
    let ctx = c.context();
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
    let scans = quipu_connectors::registry::rows_fetched(&plan)
        .into_iter()
        .map(|s| {
            let n = s
                .rows
                .unwrap_or_else(|| panic!("no rows_fetched on {}", s.line));
            (s.line, n)
        })
        .collect();
    (crate::common::rows_of(&batches), scans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selective_cross_source_join_sends_the_keys_to_the_other_source() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    // One customer's online purchases (crm, pushed as one query) and the
    // stock of what they bought (inventory, by the bought SKUs only).
    let customer: i64 = y
        .crm
        .psql(
            "crm",
            "SELECT o.customer_id FROM orders o JOIN order_items i USING (order_id) \
             GROUP BY 1 HAVING count(DISTINCT i.sku) BETWEEN 3 AND 20 ORDER BY 1 LIMIT 1",
        )
        .trim()
        .parse()
        .unwrap();
    let sql = format!(
        "SELECT o.order_id, i.sku, s.location.id AS location, s.on_hand \
         FROM crm.public.orders o JOIN crm.public.order_items i ON i.order_id = o.order_id \
         JOIN inventory.public.stock s ON s.sku = i.sku WHERE o.customer_id = {customer}"
    );
    let (rows, _) = query(&c, &sql).await;
    let skus: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r[1]).collect();
    assert!(skus.len() >= 2, "{rows:?}");
    // Independent answer: stock documents of those SKUs, counted by MongoDB.
    let list: Vec<String> = skus.iter().map(|s| format!("'{s}'")).collect();
    let stock_docs: u64 = y
        .mongo
        .pymongo(
            "inventory",
            &format!(
                "print(db.stock.count_documents({{'sku': {{'$in': [{}]}}}}))",
                list.join(",")
            ),
        )
        .trim()
        .parse()
        .unwrap();
    assert!(stock_docs > 0);

    let (again, scans) = run_with_fetched(&c, &sql).await;
    assert_eq!(sorted(again), sorted(rows.clone()));
    assert_eq!(scans.len(), 2, "{scans:?}");
    let survivors = rows.len();
    for (scan, n) in &scans {
        if scan.contains("MongoScanExec") {
            assert!(scan.contains("semi_join_keys_from"), "{scan}");
            assert_eq!(*n as u64, stock_docs, "{scan}");
        }
        assert!(
            *n <= 2 * survivors,
            "{scan} fetched {n} rows for {survivors} results"
        );
    }
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_n_over_a_live_scan_does_not_wait_for_its_own_filter() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    // A TopK sort publishes a dynamic filter it completes only after
    // reading the scan: the scan must not wait for it.
    let sql = "SELECT order_id, total_usd FROM crm.public.orders ORDER BY total_usd DESC, order_id LIMIT 3";
    let plan = physical_plan(&c, sql).await;
    assert!(!plan.contains("semi_join_keys_from"), "{plan}");
    let started = std::time::Instant::now();
    let (rows, _) = query(&c, sql).await;
    let expected: Vec<Vec<String>> = y
        .crm
        .psql(
            "crm",
            "SELECT order_id, total_usd FROM orders ORDER BY 2 DESC, 1 LIMIT 3",
        )
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect();
    assert_eq!(rows, expected);
    // Not a timing assert on speed: a stalled scan would wait 60 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(50));
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_read_in_key_ranges_gives_every_row_once() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let local = client(&engine, "local").await;
    let cluster = client(&engine, "cluster").await;
    let mut src = engine.session().store().source("crm").unwrap().unwrap();
    src.name = "crm_p".into();
    src.options.insert("partitions".into(), "3".into());
    engine.session().add_source(&src).await.unwrap();

    let sql = "SELECT order_id, total_usd FROM crm_p.public.orders WHERE channel = 'web'";
    let plan = physical_plan(&local, sql).await;
    assert!(plan.contains("partitions=3"), "{plan}");
    assert!(
        plan.contains("\"order_id\" < ") && plan.contains("\"order_id\" >= "),
        "{plan}"
    );
    let expected: Vec<String> = y
        .crm
        .psql(
            "crm",
            "SELECT order_id FROM orders WHERE channel = 'web' ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect();
    assert!(expected.len() > 100);
    // (On the cluster the three ranges run concurrently in one partition:
    // see PgTable::scan.)
    for c in [&local, &cluster] {
        let (rows, on) = query(c, sql).await;
        let mut ids: Vec<String> = rows.into_iter().map(|r| r[0].clone()).collect();
        ids.sort_by_key(|i| i.parse::<i64>().unwrap());
        assert_eq!(ids.len(), expected.len(), "{on}");
        assert_eq!(ids, expected, "{on}");
    }
    engine.session().close().await;
}

/// Issue 17 (3): text columns of MongoDB hold ObjectIds (as their hex)
/// and decimals (as text); a filter or join key given as text must find
/// them. It was sent as a string comparison, which never matches another
/// BSON type, so MongoDB dropped the rows before Quipu's re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_text_columns_find_object_ids_and_decimals() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    // Documents with ObjectId ids and Decimal128 prices, and references
    // to some of them held as hex strings in another collection.
    let facts = y.mongo.pymongo(
        "oid_check",
        r#"from bson import ObjectId, Decimal128
db.items.drop(); db.refs.drop()
ids = [ObjectId() for _ in range(40)]
prices = ["19.99", "5.00", "19.99", "0.10"]
db.items.insert_many([{"_id": i, "n": k, "price": Decimal128(prices[k % 4])} for k, i in enumerate(ids)])
targets = [str(ids[k]) for k in range(0, 40, 3)] + ["0" * 24, "not-an-id"]
db.refs.insert_many([{"target": t} for t in targets])
print("hex=" + str(ids[7]))
print("hex2=" + str(ids[30]))
print("matched=" + str(sum(1 for t in targets if t in {str(i) for i in ids})))
print("price_of_7=" + str(db.items.find_one({"_id": ids[7]})["price"]))
print("same_price=" + str(db.items.count_documents({"price": Decimal128(prices[7 % 4])})))"#,
    );
    let fact = |key: &str| -> String {
        facts
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {facts}"))
            .to_string()
    };
    let (hex, hex2) = (fact("hex"), fact("hex2"));
    add_copy(&engine, "inventory", "oid", &[("database", "oid_check")]).await;
    add_copy(
        &engine,
        "inventory",
        "oid_raw",
        &[("database", "oid_check"), ("pushdown", "off")],
    )
    .await;
    let count = |sql: String| {
        let c = &c;
        async move {
            let (rows, _) = query(c, &sql).await;
            rows[0][0].clone()
        }
    };
    let price = count(format!(
        "SELECT price FROM oid_raw.public.items WHERE _id = '{hex}'"
    ))
    .await;
    let cases = [
        (format!("_id = '{hex}'"), "1".to_string()),
        (format!("'{hex}' = _id"), "1".to_string()),
        ("_id > '0'".into(), "40".into()),
        ("_id < 'g'".into(), "40".into()),
        (format!("_id IN ('{hex}', '{hex2}', 'x')"), "2".into()),
        (format!("_id <> '{hex}'"), "39".into()),
        (format!("price = '{price}'"), fact("same_price")),
    ];
    for (filter, want) in &cases {
        for src in ["oid", "oid_raw"] {
            let got = count(format!(
                "SELECT count(*) FROM {src}.public.items WHERE {filter}"
            ))
            .await;
            assert_eq!(&got, want, "{src}: WHERE {filter}");
        }
    }
    // A join on the id from text held elsewhere (the join's keys reach
    // MongoDB as a dynamic filter), and a pushed group over the ids.
    for src in ["oid", "oid_raw"] {
        let got = count(format!(
            "SELECT count(*) FROM {src}.public.refs r JOIN {src}.public.items i ON i._id = r.target"
        ))
        .await;
        assert_eq!(got, fact("matched"), "{src}: join on _id");
        let got = count(format!(
            "SELECT count(*) FROM (SELECT _id, count(*) FROM {src}.public.items \
             WHERE _id >= '{hex}' OR _id = '{hex2}' GROUP BY _id) g"
        ))
        .await;
        let want = count(format!(
            "SELECT count(*) FROM oid_raw.public.items WHERE _id >= '{hex}' OR _id = '{hex2}'"
        ))
        .await;
        assert_eq!(got, want, "{src}: grouped by _id");
    }
    assert_eq!(price, fact("price_of_7"), "the decimal's text");
    engine.session().close().await;
}

/// A copy of source `from` named `name` with extra options.
pub(crate) async fn add_copy(engine: &Engine, from: &str, name: &str, options: &[(&str, &str)]) {
    let mut src = engine.session().store().source(from).unwrap().unwrap();
    src.name = name.into();
    for (k, v) in options {
        src.options.insert(k.to_string(), v.to_string());
    }
    engine.session().add_source(&src).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_groups_and_top_k_run_in_mongodb_with_the_same_answer() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let cluster = client(&engine, "cluster").await;
    add_copy(
        &engine,
        "inventory",
        "inventory_raw",
        &[("pushdown", "off")],
    )
    .await;
    add_copy(&engine, "inventory", "inventory_pl", &[("pipelines", "on")]).await;

    // (query, pushed as: `$group` or `$sort`)
    let cases: &[(&str, &str)] = &[
        (
            "SELECT sku, count(*) AS n, count(reserved) AS r, sum(reserved) AS sr, \
             min(on_hand) AS lo, max(on_hand) AS hi, max(updated_at) AS seen, min(_id) AS first \
             FROM SRC.public.stock WHERE on_hand > 0 AND sku IN ('SKU-000001', 'SKU-000002', 'SKU-000017', NULL) \
             GROUP BY sku",
            "$group",
        ),
        // Groups whose every value is NULL sum to NULL (MongoDB says 0).
        (
            "SELECT sku, sum(reserved) AS sr, count(reserved) AS r FROM SRC.public.stock \
             WHERE reserved IS NULL GROUP BY sku",
            "$group",
        ),
        // No GROUP BY and no document: one row, count 0.
        (
            "SELECT count(*) AS n, sum(on_hand) AS s, max(sku) AS m FROM SRC.public.stock \
             WHERE on_hand < -1000",
            "$group",
        ),
        (
            "SELECT count(*) AS n, sum(on_hand) AS s, min(updated_at) AS t FROM SRC.public.stock",
            "$group",
        ),
        // A string that MongoDB would read as a field path or an operator
        // is a value: no stock document has that SKU.
        (
            "SELECT count(*) AS n FROM SRC.public.stock WHERE sku = '$sku' OR sku = '{\"$gt\": \"\"}'",
            "$group",
        ),
        // Top-k with SQL's NULL placement: DESC puts NULLs first, ASC last.
        (
            "SELECT _id, sku, reserved FROM SRC.public.stock ORDER BY reserved DESC, _id LIMIT 7",
            "$sort",
        ),
        (
            "SELECT _id, reserved, on_hand FROM SRC.public.stock WHERE on_hand >= 3 \
             ORDER BY reserved, _id DESC LIMIT 9",
            "$sort",
        ),
        (
            "SELECT _id, sku FROM SRC.public.stock WHERE reserved IS NULL \
             ORDER BY sku DESC NULLS LAST, _id LIMIT 4",
            "$sort",
        ),
    ];
    for (sql, stage) in cases {
        let pushed = sql.replace("SRC", "inventory_pl");
        let raw = sql.replace("SRC", "inventory_raw");
        let plan = physical_plan(&c, &pushed).await;
        assert!(plan.contains(&format!("\"{stage}\"")), "{pushed}\n{plan}");
        if *stage == "$group" {
            assert!(!plan.contains("AggregateExec"), "{plan}");
        }
        let raw_plan = physical_plan(&c, &raw).await;
        assert!(!raw_plan.contains("\"$group\"") && !raw_plan.contains("\"$sort\""));
        let (expected, _) = query(&c, &raw).await;
        let (here, _) = query(&c, &pushed).await;
        if *stage == "$sort" {
            assert_eq!(here, expected, "{pushed}");
        } else {
            assert_eq!(sorted(here), sorted(expected.clone()), "{pushed}");
        }
        let (there, on) = query(&cluster, &pushed).await;
        assert_eq!(on, quipu_scheduler::ExecutedOn::Cluster);
        assert_eq!(sorted(there), sorted(expected.clone()), "{pushed}");
        assert!(!expected.is_empty(), "{pushed}");
    }
    // The answers checked above are not trivially empty or constant.
    let (rows, _) = query(&c, &cases[1].0.replace("SRC", "inventory_pl")).await;
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r[1] == "NULL" && r[2] == "0"),
        "{rows:?}"
    );
    let (rows, _) = query(&c, &cases[2].0.replace("SRC", "inventory_pl")).await;
    assert_eq!(
        rows,
        vec![vec!["0".to_string(), "NULL".into(), "NULL".into()]]
    );
    let (rows, _) = query(&c, &cases[4].0.replace("SRC", "inventory_pl")).await;
    assert_eq!(rows, vec![vec!["0".to_string()]]);
    let (rows, _) = query(&c, &cases[5].0.replace("SRC", "inventory_pl")).await;
    assert!(
        rows.iter().all(|r| r[2] == "NULL"),
        "DESC puts NULLs first: {rows:?}"
    );
    let total: u64 = y
        .mongo
        .pymongo("inventory", "print(db.stock.count_documents({}))")
        .trim()
        .parse()
        .unwrap();
    let (rows, _) = query(&c, &cases[3].0.replace("SRC", "inventory_pl")).await;
    assert_eq!(rows[0][0], total.to_string());

    // Without `pipelines` (the default) DataFusion sorts and aggregates.
    let plan = physical_plan(&c, &cases[0].0.replace("SRC", "inventory")).await;
    assert!(
        plan.contains("AggregateExec") && !plan.contains("\"$group\""),
        "{plan}"
    );
    // Not pushed: avg, DISTINCT, a computed key (DataFusion does them).
    for sql in [
        "SELECT sku, avg(on_hand) FROM inventory_pl.public.stock GROUP BY sku",
        "SELECT count(DISTINCT sku) FROM inventory_pl.public.stock",
        "SELECT on_hand % 2, count(*) FROM inventory_pl.public.stock GROUP BY 1",
    ] {
        let plan = physical_plan(&c, sql).await;
        assert!(
            plan.contains("AggregateExec") && !plan.contains("\"$group\""),
            "{plan}"
        );
    }
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_read_in_id_ranges_gives_every_document_once() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let local = client(&engine, "local").await;
    let cluster = client(&engine, "cluster").await;
    add_copy(&engine, "inventory", "inventory_p", &[("partitions", "3")]).await;
    let sql = "SELECT _id, sku, on_hand FROM SRC.public.stock WHERE on_hand > 10";
    let plan = physical_plan(&local, &sql.replace("SRC", "inventory_p")).await;
    assert!(plan.contains("partitions=3"), "{plan}");
    assert!(plan.contains("$gte") && plan.contains("$lt"), "{plan}");
    let plan = physical_plan(&local, &sql.replace("SRC", "inventory")).await;
    assert!(
        !plan.contains("partitions=3"),
        "without the option, one cursor: {plan}"
    );
    let expected: u64 = y
        .mongo
        .pymongo(
            "inventory",
            "print(db.stock.count_documents({'on_hand': {'$gt': 10}}))",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(expected > 100);
    let (whole, _) = query(&local, &sql.replace("SRC", "inventory")).await;
    assert_eq!(whole.len() as u64, expected);
    for c in [&local, &cluster] {
        let (rows, on) = query(c, &sql.replace("SRC", "inventory_p")).await;
        let ids: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r[0]).collect();
        assert_eq!(ids.len(), rows.len(), "{on}: a document read twice");
        assert_eq!(sorted(rows.clone()), sorted(whole.clone()), "{on}");
    }
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_sets_its_own_partitions_and_keeps_them_on_refresh() {
    use crate::common::quipu;
    let y = yachay();
    let dir = catalog(&y);
    let cli = |args: &[&str]| quipu(dir.path(), args, &[]);

    let r = cli(&["catalog", "set-partitions", "crm.public.orders", "3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("3 partition"), "{}", r.stdout);
    let r = cli(&["catalog", "refresh", "crm"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = cli(&["catalog", "describe", "crm.public.orders"]);
    assert!(
        r.stdout.contains("read partitions: 3"),
        "kept on refresh: {}",
        r.stdout
    );
    for (args, says) in [
        (["crm.public.orders", "0"], "1 to 64"),
        (["crm.public.orders", "65"], "1 to 64"),
        (["crm.public.orders", "many"], "`many` is not a number"),
        (["lake.public.sales_history", "2"], "lake table"),
        (["crm.public.no_such_table", "2"], "no_such_table"),
    ] {
        let r = cli(&["catalog", "set-partitions", args[0], args[1]]);
        assert_ne!(r.code, 0, "{args:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }

    let engine = Engine::open(dir.path()).unwrap();
    let local = client(&engine, "local").await;
    let cluster = client(&engine, "cluster").await;
    let sql = "SELECT order_id FROM crm.public.orders WHERE channel = 'web'";
    let plan = physical_plan(&local, sql).await;
    assert!(plan.contains("partitions=3"), "{plan}");
    let expected: Vec<String> = y
        .crm
        .psql(
            "crm",
            "SELECT order_id FROM orders WHERE channel = 'web' ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect();
    // On the cluster the setting travels with the table in the plan.
    for c in [&local, &cluster] {
        let (rows, on) = query(c, sql).await;
        let mut ids: Vec<String> = rows.into_iter().map(|r| r[0].clone()).collect();
        ids.sort_by_key(|i| i.parse::<i64>().unwrap());
        assert_eq!(ids, expected, "{on}");
    }
    // What the scheduler does: decode the logical plan, plan it physically.
    let ctx = local.context();
    let optimized = ctx
        .state()
        .optimize(ctx.sql(sql).await.unwrap().logical_plan())
        .unwrap();
    let codec = quipu_scheduler::cluster::logical_codec(engine.session());
    let bytes = datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec(
        &optimized,
        codec.as_ref(),
    )
    .unwrap();
    let back = datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec(
        &bytes,
        &ctx.task_ctx(),
        codec.as_ref(),
    )
    .unwrap();
    let physical = ctx.state().create_physical_plan(&back).await.unwrap();
    let text = datafusion::physical_plan::displayable(physical.as_ref())
        .indent(true)
        .to_string();
    assert!(text.contains("partitions=3"), "{text}");

    // The table's setting wins over its source's option; `auto` clears it.
    let orders = quipu_catalog::TableName::new("crm", "public", "orders");
    add_copy(&engine, "crm", "crm_p", &[("partitions", "2")]).await;
    let copy = quipu_catalog::TableName::new("crm_p", "public", "orders");
    engine
        .session()
        .set_table_partitions(&copy, Some(1))
        .unwrap();
    let plan = physical_plan(&local, &sql.replace("crm.", "crm_p.")).await;
    assert!(!plan.contains("partitions=2"), "{plan}");
    engine
        .session()
        .set_table_partitions(&orders, None)
        .unwrap();
    let plan = physical_plan(&local, sql).await;
    assert!(!plan.contains("partitions=3"), "{plan}");
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_pipelines_read_odd_values_as_the_reader_does() {
    let y = yachay();
    let dir = catalog(&y);
    // Discovery sees integers in `q`; odd documents come afterwards.
    y.mongo.pymongo(
        "probe_exact",
        "db.items.drop()\ndb.items.insert_many([{'k': 'a', 'q': 1}, {'k': 'b', 'q': 2}])",
    );
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let cluster = client(&engine, "cluster").await;
    add_copy(
        &engine,
        "inventory",
        "probe",
        &[("database", "probe_exact"), ("pipelines", "on")],
    )
    .await;
    add_copy(
        &engine,
        "probe",
        "probe_raw",
        &[("database", "probe_exact"), ("pushdown", "off")],
    )
    .await;
    y.mongo.pymongo(
        "probe_exact",
        "db.items.insert_many([{'k': 'a', 'q': '7'}, {'k': 'a', 'q': 2.0}, {'k': 'b', 'q': 2.5}, \
         {'k': 'c'}, {'k': None, 'q': None}, {'q': 3}, {'k': 'c', 'q': float('nan')}, \
         {'k': 'c', 'q': 1e300}, {'k': 'c', 'q': -4}, {'k': 'b', 'q': True}])",
    );
    let cases: &[(&str, &str)] = &[
        (
            "SELECT k, count(*) AS n, count(q) AS nq, sum(q) AS s, min(q) AS lo, max(q) AS hi \
             FROM SRC.public.items GROUP BY k",
            "$group",
        ),
        (
            "SELECT count(*) AS n, sum(q) AS s, min(k) AS k FROM SRC.public.items WHERE q >= 2",
            "$group",
        ),
        (
            "SELECT k, count(*) AS n FROM SRC.public.items WHERE q IS NULL OR q IN (1, 3) GROUP BY k",
            "$group",
        ),
        (
            "SELECT k, q FROM SRC.public.items ORDER BY q DESC NULLS LAST, k LIMIT 4",
            "$sort",
        ),
    ];
    for (sql, stage) in cases {
        let pushed = sql.replace("SRC", "probe");
        let raw = sql.replace("SRC", "probe_raw");
        let plan = physical_plan(&c, &pushed).await;
        assert!(plan.contains(&format!("\"{stage}\"")), "{plan}");
        let (expected, _) = query(&c, &raw).await;
        assert!(!expected.is_empty());
        for session in [&c, &cluster] {
            let (rows, on) = query(session, &pushed).await;
            if *stage == "$sort" {
                assert_eq!(rows, expected, "{on}: {pushed}");
            } else {
                assert_eq!(sorted(rows), sorted(expected.clone()), "{on}: {pushed}");
            }
        }
    }
    // What the reader made of the odd values: '7', 2.5, NaN, 1e300 and
    // true are NULL in an integer column, 2.0 is 2.
    let (rows, _) = query(&c, &cases[0].0.replace("SRC", "probe_raw")).await;
    assert!(
        rows.contains(&vec![
            "a".to_string(),
            "3".into(),
            "2".into(),
            "3".into(),
            "1".into(),
            "2".into()
        ]),
        "{rows:?}"
    );
    engine.session().close().await;
}

/// psql prints NULL as nothing.
fn as_psql(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let rows = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| if v == "NULL" { String::new() } else { v })
                .collect()
        })
        .collect();
    sorted(rows)
}

/// Issue 17 (item 1) and issue 22: two tables of one PostgreSQL source
/// joined without aliases, with a filter on one side, or as an anti-join
/// (`LEFT JOIN ... IS NULL`), were sent as one query naming a table out of
/// scope (`missing FROM-clause entry for table ...`). Each query here is
/// pushed whole as one remote query, and answers what PostgreSQL answers
/// to the same SQL on the crm database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_of_one_source_with_or_without_aliases_are_one_query_and_right() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let queries = [
        // Table names as qualifiers, no aliases.
        "SELECT count(*) FROM crm.public.customers JOIN crm.public.orders \
         ON orders.customer_id = customers.customer_id WHERE customers.city = 'Lima'",
        // Unqualified unique column names, filters on both sides.
        "SELECT segment, count(*), sum(total_usd) FROM crm.public.customers \
         JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
         WHERE city = 'Lima' AND channel = 'web' GROUP BY segment",
        // A comma join.
        "SELECT count(*) FROM crm.public.customers, crm.public.orders \
         WHERE orders.customer_id = customers.customer_id AND customers.city = 'Lima'",
        // Anti-joins, with and without aliases.
        "SELECT count(*) FROM crm.public.customers c LEFT JOIN crm.public.orders o \
         ON o.customer_id = c.customer_id WHERE o.order_id IS NULL",
        "SELECT count(*) FROM crm.public.customers LEFT JOIN crm.public.orders \
         ON orders.customer_id = customers.customer_id WHERE orders.order_id IS NULL",
        "SELECT customers.city, count(*) FROM crm.public.customers LEFT JOIN crm.public.orders \
         ON orders.customer_id = customers.customer_id AND orders.channel = 'web' \
         WHERE orders.order_id IS NULL GROUP BY customers.city",
        // Outer joins with filters on their inputs and in their ON.
        "SELECT customers.customer_id, count(orders.order_id) FROM crm.public.customers \
         LEFT JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
         AND orders.channel = 'web' WHERE customers.city = 'Lima' GROUP BY customers.customer_id",
        "SELECT customers.segment, orders.channel, count(*) FROM crm.public.customers \
         RIGHT JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
         AND customers.city = 'Lima' WHERE orders.status <> 'cancelled' \
         GROUP BY customers.segment, orders.channel",
        "SELECT customers.segment, orders.status, count(*), count(customers.customer_id), \
         count(orders.order_id) FROM crm.public.customers FULL JOIN crm.public.orders \
         ON orders.customer_id = customers.customer_id AND orders.channel = 'web' \
         WHERE customers.city = 'Lima' OR customers.city IS NULL \
         GROUP BY customers.segment, orders.status",
        // USING and NATURAL (the two tables share only customer_id).
        "SELECT segment, count(*), sum(total_usd) FROM crm.public.customers \
         JOIN crm.public.orders USING (customer_id) WHERE city = 'Lima' GROUP BY segment",
        "SELECT count(*), sum(total_usd) FROM crm.public.customers \
         NATURAL JOIN crm.public.orders WHERE city = 'Lima'",
        // Three tables, no aliases.
        "SELECT city, count(*) FROM crm.public.customers \
         JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
         JOIN crm.public.order_items ON order_items.order_id = orders.order_id \
         WHERE channel = 'web' GROUP BY city",
    ];
    for sql in queries {
        let plan = physical_plan(&c, sql).await;
        let remote = remote_queries(&plan);
        assert_eq!(remote.len(), 1, "{sql}\n{plan}");
        assert!(remote[0].contains("JOIN"), "{sql}\n{plan}");
        assert!(!plan.contains("JoinExec"), "{sql}\n{plan}");
        let expected = psql_rows(y.crm.psql("crm", &sql.replace("crm.public.", "")));
        assert!(!expected.is_empty(), "{sql}");
        let (rows, _) = try_query(&c, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}\n{e}"));
        assert_eq!(as_psql(rows), expected, "{sql}");
    }
    // The anti-joins above do find customers without (web) orders.
    let none: i64 = y
        .crm
        .psql(
            "crm",
            "SELECT count(*) FROM customers c WHERE NOT EXISTS \
             (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.channel = 'web')",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(none > 0);
    engine.session().close().await;
}

/// A third table from another source (MongoDB) in the same query: the crm
/// part is still one remote query, and the answer is PostgreSQL's for the
/// same SQL with the MongoDB products copied into a temporary table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaliased_join_beside_another_source_is_one_query_and_right() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let skus = y.mongo.pymongo(
        "inventory",
        "print('\\n'.join(d['sku'] for d in db.products.find({'category': {'$in': ['toys', 'home']}})))",
    );
    let skus: Vec<&str> = skus.lines().collect();
    assert!(skus.len() > 5, "{skus:?}");
    assert!(
        skus.iter()
            .all(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    );
    let values: Vec<String> = skus.iter().map(|s| format!("('{s}')")).collect();
    let copy = format!(
        "CREATE TEMP TABLE products (sku text); INSERT INTO products VALUES {};",
        values.join(", ")
    );
    for sql in [
        "SELECT customers.city, count(*) FROM crm.public.customers \
         JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
         JOIN crm.public.order_items ON order_items.order_id = orders.order_id \
         JOIN inventory.public.products ON products.sku = order_items.sku \
         WHERE customers.city = 'Lima' AND products.category IN ('toys', 'home') \
         GROUP BY customers.city",
        "SELECT count(*) FROM crm.public.orders, crm.public.order_items, inventory.public.products \
         WHERE order_items.order_id = orders.order_id AND products.sku = order_items.sku \
         AND orders.channel = 'web' AND products.category IN ('toys', 'home')",
    ] {
        let plan = physical_plan(&c, sql).await;
        let pg: Vec<&str> = plan.lines().filter(|l| l.contains("PgScanExec")).collect();
        assert_eq!(pg.len(), 1, "{sql}\n{plan}");
        assert!(pg[0].contains("JOIN"), "{sql}\n{plan}");
        assert!(plan.contains("MongoScanExec"), "{plan}");
        let pg_sql = sql
            .replace("crm.public.", "")
            .replace("inventory.public.", "")
            .replace(" AND products.category IN ('toys', 'home')", "");
        let expected = psql_rows(y.crm.psql("crm", &format!("{copy} {pg_sql}")));
        assert!(
            expected.iter().all(|r| r.last() != Some(&"0".to_string())),
            "{expected:?}"
        );
        let (rows, _) = try_query(&c, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}\n{e}"));
        assert_eq!(as_psql(rows), expected, "{sql}");
    }
    engine.session().close().await;
}
