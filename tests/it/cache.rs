//! Issue 20: materialized views. Every answer read from a cache is checked
//! against the same query computed live (`quipu.max_staleness = '0'`) at
//! the same data; whether a cache was used is read from EXPLAIN.

use std::time::Duration;

use quipu_connectors::Access;
use quipu_scheduler::{ClientSession, Engine};

use crate::common::{lake_env, query, try_query};

/// Rows of `sql`, sorted (answers are compared as multisets).
async fn sorted(c: &ClientSession, sql: &str) -> Vec<Vec<String>> {
    let (mut rows, _) = query(c, sql).await;
    rows.sort();
    rows
}

/// Two answers are the same: equal rows, except that doubles may differ in
/// their last bits (a sum of doubles depends on the order it adds them in,
/// which differs between two live runs too).
fn assert_same(got: &[Vec<String>], want: &[Vec<String>], what: &str) {
    let close = |a: &str, b: &str| {
        a == b
            || (a.contains('.') || a.contains('e'))
                && match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                    _ => false,
                }
    };
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| close(a, b)));
    assert!(same, "{what}:\n got: {got:?}\nwant: {want:?}");
}

/// The logical plan EXPLAIN shows for `sql`.
async fn plan_of(c: &ClientSession, sql: &str) -> String {
    let (rows, _) = query(c, &format!("EXPLAIN {sql}")).await;
    rows.iter()
        .filter(|r| r[0] == "logical_plan")
        .map(|r| r[1].clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A session that never reads a cache.
async fn live(engine: &std::sync::Arc<Engine>) -> ClientSession {
    let c = engine.client();
    c.sql("SET quipu.max_staleness = '0'").await.unwrap();
    c
}

/// Asserts that `sql` is answered from cache `cache` (EXPLAIN names it)
/// and that the answer is the live one.
async fn from_cache(cached: &ClientSession, live: &ClientSession, cache: &str, sql: &str) {
    let plan = plan_of(cached, sql).await;
    assert!(
        plan.contains(&format!("cache {cache}, generation")),
        "{sql}: expected a read of {cache}:\n{plan}"
    );
    assert!(
        !plan.contains("TableScan: lake."),
        "{sql}: still reads the lake:\n{plan}"
    );
    let want = sorted(live, sql).await;
    assert!(!want.is_empty(), "{sql}: no rows to compare");
    assert_same(&sorted(cached, sql).await, &want, sql);
}

/// Asserts that `sql` is not answered from `cache`, that EXPLAIN says
/// why (`reason`), that the miss is counted under its reason label, and
/// that the answer is still right.
async fn not_from(
    cached: &ClientSession,
    live: &ClientSession,
    cache: &str,
    sql: &str,
    (reason, label): (&str, &str),
) {
    let misses = || {
        quipu_connectors::metrics::metrics()
            .cache_misses
            .with_label_values(&[cache, label])
            .get()
    };
    let before = misses();
    let plan = plan_of(cached, sql).await;
    assert!(
        !plan.contains(&format!("cache {cache},")),
        "{sql}: must not read {cache}:\n{plan}"
    );
    let note = format!("not from cache {cache}: {reason}");
    assert!(plan.contains(&note), "{sql}: expected `{note}` in\n{plan}");
    assert_eq!(
        plan.matches(&format!("SubqueryAlias: not from cache {cache}:"))
            .count(),
        1,
        "{sql}: one reason per cache:\n{plan}"
    );
    assert!(misses() > before, "{sql}: miss not counted as {label}");
    assert_same(&sorted(cached, sql).await, &sorted(live, sql).await, sql);
}

const BY_CUSTOMER: &str = "CREATE MATERIALIZED VIEW m.by_customer AS \
    SELECT channel, customer_id, sum(total_cents) AS cents, count(*) AS n, \
           count(total_cents) AS counted, min(total_cents) AS lo, max(total_cents) AS hi, \
           avg(total_cents) AS mean \
    FROM lake.public.orders GROUP BY channel, customer_id";

const BIG: &str = "CREATE MATERIALIZED VIEW m.big AS \
    SELECT order_id, channel, total_cents FROM lake.public.orders \
    WHERE total_cents >= 5000 AND channel <> 'phone'";

const LIMA: &str = "CREATE MATERIALIZED VIEW m.lima AS \
    SELECT o.order_id, o.total_cents, c.name FROM lake.public.orders o \
    JOIN lake.public.customers c ON o.customer_id = c.customer_id WHERE c.city = 'Lima'";

const TRIO: &str = "CREATE MATERIALIZED VIEW m.trio AS \
    SELECT o.order_id, c.name, e.event_type FROM lake.public.orders o \
    JOIN lake.public.customers c ON o.customer_id = c.customer_id \
    JOIN lake.public.clickstream e ON e.customer_id = o.customer_id \
    WHERE c.city = 'Lima' AND e.event_type = 'checkout'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rewrite_uses_a_cache_exactly_when_the_answer_stays_the_same() {
    let env = lake_env().await;
    let admin = env.engine.client();
    for sql in [BY_CUSTOMER, BIG, LIMA, TRIO] {
        admin.sql(sql).await.unwrap();
    }
    admin
        .sql("CREATE VIEW m.big_view AS SELECT order_id, channel, total_cents FROM lake.public.orders WHERE total_cents >= 5000 AND channel <> 'phone'")
        .await
        .unwrap();
    let live = live(&env.engine).await;

    // Must use the cache: ...
    for (cache, sql) in [
        // the same query, columns in another order, other aliases;
        (
            "m.by_customer",
            "SELECT customer_id AS who, o.channel, sum(o.total_cents) FROM lake.public.orders AS o GROUP BY channel, customer_id",
        ),
        // a coarser GROUP BY, every aggregate that rolls up;
        (
            "m.by_customer",
            "SELECT channel, sum(total_cents), count(*), count(total_cents), min(total_cents), max(total_cents), avg(total_cents) FROM lake.public.orders GROUP BY channel",
        ),
        // no GROUP BY at all (count of nothing would be 0, not NULL);
        (
            "m.by_customer",
            "SELECT count(*), sum(total_cents), max(total_cents) FROM lake.public.orders",
        ),
        // a condition on a grouping column before grouping;
        (
            "m.by_customer",
            "SELECT customer_id, sum(total_cents) FROM lake.public.orders WHERE channel = 'web' GROUP BY customer_id",
        ),
        // the same filter with its conditions in the other order;
        (
            "m.big",
            "SELECT o.total_cents, o.order_id FROM lake.public.orders AS o WHERE o.channel <> 'phone' AND o.total_cents >= 5000",
        ),
        // one more condition, on a column the cache keeps;
        (
            "m.big",
            "SELECT order_id FROM lake.public.orders WHERE total_cents >= 5000 AND channel <> 'phone' AND channel = 'app'",
        ),
        // an aggregate over the cached rows;
        (
            "m.big",
            "SELECT channel, count(*), sum(total_cents) FROM lake.public.orders WHERE total_cents >= 5000 AND channel <> 'phone' GROUP BY channel",
        ),
        // a filter on top of a view with the cache's query;
        ("m.big", "SELECT * FROM m.big_view WHERE total_cents > 9000"),
        // a join, written with other aliases and the equality turned round.
        (
            "m.lima",
            "SELECT x.order_id, x.total_cents, y.name FROM lake.public.orders x JOIN lake.public.customers y ON y.customer_id = x.customer_id WHERE y.city = 'Lima'",
        ),
        // the same join with its tables in the other order;
        (
            "m.lima",
            "SELECT o.order_id, o.total_cents, c.name FROM lake.public.customers c JOIN lake.public.orders o ON o.customer_id = c.customer_id WHERE c.city = 'Lima'",
        ),
        // three tables in another order and nesting, the conditions moved
        // between ON and WHERE (a comma join);
        (
            "m.trio",
            "SELECT c.name, e.event_type, o.order_id FROM lake.public.clickstream e, lake.public.orders o JOIN lake.public.customers c ON c.customer_id = o.customer_id WHERE c.city = 'Lima' AND e.customer_id = o.customer_id AND e.event_type = 'checkout'",
        ),
        // and with one more condition, which runs on the cached rows.
        (
            "m.trio",
            "SELECT e.event_type, count(*) FROM lake.public.orders o JOIN (lake.public.clickstream e CROSS JOIN lake.public.customers c) ON o.customer_id = c.customer_id AND e.customer_id = o.customer_id AND c.city = 'Lima' WHERE e.event_type = 'checkout' AND o.order_id < 1000 GROUP BY e.event_type",
        ),
    ] {
        from_cache(&admin, &live, cache, sql).await;
    }

    // Must not, and EXPLAIN says why: ...
    for (cache, sql, reason) in [
        // a condition on a column the cache does not keep;
        (
            "m.big",
            "SELECT order_id FROM lake.public.orders WHERE total_cents >= 5000 AND channel <> 'phone' AND customer_id = 7",
            (
                "a filter on column customer_id it does not keep",
                "column_not_kept",
            ),
        ),
        // a condition the cache's does not imply;
        (
            "m.big",
            "SELECT order_id FROM lake.public.orders WHERE total_cents >= 4000 AND channel <> 'phone'",
            ("a condition not implied by the cache's", "not_implied"),
        ),
        // an outer join where the cache has an inner one;
        (
            "m.lima",
            "SELECT o.order_id, o.total_cents, c.name FROM lake.public.orders o LEFT JOIN lake.public.customers c ON o.customer_id = c.customer_id AND c.city = 'Lima'",
            (
                "a left outer join where the cache has an inner one",
                "join_type",
            ),
        ),
        // a condition before grouping on a column the cache aggregates;
        (
            "m.by_customer",
            "SELECT channel, sum(total_cents) FROM lake.public.orders WHERE total_cents > 500 GROUP BY channel",
            (
                "a filter on column total_cents it does not keep",
                "column_not_kept",
            ),
        ),
        // count(DISTINCT) cannot be rolled up;
        (
            "m.by_customer",
            "SELECT channel, count(DISTINCT customer_id) FROM lake.public.orders GROUP BY channel",
            (
                "aggregate count(DISTINCT customer_id) cannot be rolled up",
                "no_rollup",
            ),
        ),
        // a grouping key the cache does not group by;
        (
            "m.by_customer",
            "SELECT year, sum(total_cents) FROM lake.public.orders GROUP BY year",
            (
                "a GROUP BY on year, which it does not group by",
                "group_key",
            ),
        ),
        // the cache's condition missing, under an aggregate;
        (
            "m.lima",
            "SELECT c.city, count(*) FROM lake.public.orders o JOIN lake.public.customers c ON o.customer_id = c.customer_id GROUP BY c.city",
            ("a condition not implied by the cache's", "not_implied"),
        ),
        // no precise reason (the join's key is another column).
        (
            "m.lima",
            "SELECT o.order_id, o.total_cents, c.name FROM lake.public.customers c JOIN lake.public.orders o ON o.order_id = c.customer_id WHERE c.city = 'Lima'",
            ("its query differs", "differs"),
        ),
        // three tables joined in another order, one condition less.
        (
            "m.trio",
            "SELECT o.order_id, c.name, e.event_type FROM lake.public.clickstream e JOIN lake.public.orders o ON e.customer_id = o.customer_id JOIN lake.public.customers c ON o.customer_id = c.customer_id WHERE c.city = 'Lima'",
            ("a condition not implied by the cache's", "not_implied"),
        ),
    ] {
        not_from(&admin, &live, cache, sql, reason).await;
    }
    // A query over other tables says nothing about these caches.
    let plan = plan_of(&admin, "SELECT count(*) FROM lake.public.customers").await;
    assert!(!plan.contains("not from cache"), "{plan}");

    // A coarser GROUP BY over a cache with conditions of its own, when
    // the query has the same conditions.
    admin
        .sql("CREATE MATERIALIZED VIEW m.big_sums AS SELECT customer_id, channel, sum(total_cents) AS cents FROM lake.public.orders WHERE total_cents > 1000 GROUP BY customer_id, channel")
        .await
        .unwrap();
    from_cache(
        &admin,
        &live,
        "m.big_sums",
        "SELECT channel, sum(total_cents) FROM lake.public.orders WHERE total_cents > 1000 GROUP BY channel",
    )
    .await;

    // An average of averages is not an average: a cache holding only
    // averages is not used for a coarser one (without m.by_customer,
    // which keeps sums and counts and would answer it).
    admin
        .sql("DROP MATERIALIZED VIEW m.by_customer")
        .await
        .unwrap();
    admin
        .sql("CREATE MATERIALIZED VIEW m.means AS SELECT channel, customer_id, avg(total_cents) AS mean FROM lake.public.orders WHERE channel <> 'tv' GROUP BY channel, customer_id")
        .await
        .unwrap();
    not_from(
        &admin,
        &live,
        "m.means",
        "SELECT channel, avg(total_cents) FROM lake.public.orders WHERE channel <> 'tv' GROUP BY channel",
        ("aggregate avg(total_cents) cannot be rolled up", "no_rollup"),
    )
    .await;

    // Read by name, the cache is a table with the query's columns.
    let (rows, _) = query(&admin, "SELECT count(*) FROM m.big").await;
    let (want, _) = query(
        &live,
        "SELECT count(*) FROM lake.public.orders WHERE total_cents >= 5000 AND channel <> 'phone'",
    )
    .await;
    assert_eq!(rows, want);
    env.engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_the_grant_gets_nothing_through_a_cache() {
    let env = lake_env().await;
    let mut options = std::collections::BTreeMap::new();
    options.insert(
        "url".to_string(),
        format!("file://{}", env.lake_dir().display()),
    );
    let vault =
        quipu_catalog::SourceDef::new("vault", quipu_catalog::SourceKind::Lake, options).unwrap();
    env.engine.session().add_source(&vault).await.unwrap();
    let admin = env.engine.client();
    admin
        .sql("CREATE MATERIALIZED VIEW m.vault_totals AS SELECT channel, sum(total_cents) AS cents FROM vault.public.orders GROUP BY channel")
        .await
        .unwrap();
    let user = env.engine.client_for(Access::only(["lake".to_string()]));
    for sql in [
        "SELECT * FROM m.vault_totals",
        "SELECT channel, sum(total_cents) FROM vault.public.orders GROUP BY channel",
    ] {
        let err = try_query(&user, sql).await.unwrap_err();
        assert!(err.contains("vault"), "{sql}: {err}");
    }
    // The same question over the granted source is answered, live.
    let sql = "SELECT channel, sum(total_cents) FROM lake.public.orders GROUP BY channel";
    let plan = plan_of(&user, sql).await;
    assert!(!plan.contains("cache m.vault_totals"), "{plan}");
    assert_eq!(sorted(&user, sql).await.len(), 2);
    // Only admins declare, refresh and drop caches.
    for sql in [
        "CREATE MATERIALIZED VIEW m.mine AS SELECT 1 AS one",
        "REFRESH MATERIALIZED VIEW m.vault_totals",
        "DROP MATERIALIZED VIEW m.vault_totals",
    ] {
        let err = try_query(&user, sql).await.unwrap_err();
        assert!(err.contains("only admins"), "{sql}: {err}");
    }
    env.engine.session().close().await;
}

/// The catalog state of cache `m.<name>`.
fn state_of(env: &crate::common::TestEnv, name: &str) -> quipu_catalog::CacheState {
    env.engine
        .session()
        .store()
        .cache("m", name)
        .unwrap()
        .unwrap()
        .state
}

/// Writes one more order file into the test lake's orders table.
fn add_orders(lake: &std::path::Path, year: i64, ids: std::ops::Range<i64>) {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    let n = ids.end - ids.start;
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("total_cents", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            std::sync::Arc::new(Int64Array::from_iter_values(ids.clone())),
            std::sync::Arc::new(Int64Array::from_iter_values(ids.clone().map(|i| i % 7))),
            std::sync::Arc::new(StringArray::from_iter_values((0..n).map(|_| "web"))),
            std::sync::Arc::new(Int64Array::from_iter_values((0..n).map(|_| 100))),
        ],
    )
    .unwrap();
    let dir = lake.join(format!("orders/year={year}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(format!("part-{}.parquet", ids.start))).unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_query_sets_how_old_a_cached_answer_it_accepts() {
    let env = lake_env().await;
    let admin = env.engine.client();
    admin
        .sql("CREATE MATERIALIZED VIEW m.counts AS SELECT channel, count(*) AS n FROM lake.public.orders GROUP BY channel")
        .await
        .unwrap();
    let sql = "SELECT channel, count(*) FROM lake.public.orders GROUP BY channel";
    let before = sorted(&admin, sql).await;
    // The sources change after the refresh.
    add_orders(&env.lake_dir(), 2026, 100_000..100_050);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // No bound: the cached answer, which no longer counts the new orders.
    assert_eq!(sorted(&admin, sql).await, before);
    assert!(plan_of(&admin, sql).await.contains("cache m.counts"));
    // A loose bound: still the cache.
    admin
        .sql("SET quipu.max_staleness = '1 hour'")
        .await
        .unwrap();
    assert_eq!(sorted(&admin, sql).await, before);
    // A tight bound sees the change, live, and EXPLAIN says why.
    admin
        .sql("SET quipu.max_staleness = '10 ms'")
        .await
        .unwrap();
    let after = sorted(&admin, sql).await;
    assert_ne!(after, before);
    let web = |rows: &Vec<Vec<String>>| -> i64 {
        rows.iter().find(|r| r[0] == "web").unwrap()[1]
            .parse()
            .unwrap()
    };
    assert_eq!(web(&after), web(&before) + 50);
    let plan = plan_of(&admin, sql).await;
    assert!(
        plan.contains("not from cache m.counts") && plan.contains("TableScan: lake.public.orders"),
        "{plan}"
    );
    // 'error': refused, naming the cache and its age.
    admin.sql("SET quipu.stale_cache = 'error'").await.unwrap();
    let err = try_query(&admin, sql).await.unwrap_err();
    assert!(
        err.contains("materialized view m.counts is")
            && err.contains("older than this query allows"),
        "{err}"
    );
    // Read by name too.
    let err = try_query(&admin, "SELECT * FROM m.counts")
        .await
        .unwrap_err();
    assert!(err.contains("m.counts"), "{err}");
    // 'wait': refreshed, then answered from the new generation.
    admin.sql("SET quipu.stale_cache = 'wait'").await.unwrap();
    let generation = |e: &Engine| {
        e.session()
            .store()
            .cache("m", "counts")
            .unwrap()
            .unwrap()
            .state
            .generation
    };
    assert_eq!(generation(&env.engine), 1);
    let waited = sorted(&admin, sql).await;
    assert_eq!(generation(&env.engine), 2);
    assert_eq!(waited, after);
    assert!(
        plan_of(&admin, sql)
            .await
            .contains("cache m.counts, generation")
    );
    // The view's own bound is the default: declared '0', always live.
    admin
        .sql("CREATE MATERIALIZED VIEW m.always_live WITH (max_staleness = '0') AS SELECT channel, max(total_cents) AS hi FROM lake.public.orders GROUP BY channel")
        .await
        .unwrap();
    let fresh = env.engine.client();
    let plan = plan_of(
        &fresh,
        "SELECT channel, max(total_cents) FROM lake.public.orders GROUP BY channel",
    )
    .await;
    assert!(plan.contains("not from cache m.always_live"), "{plan}");
    env.engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_half_flipped_cache() {
    let env = lake_env().await;
    let admin = env.engine.client();
    admin.sql(BY_CUSTOMER).await.unwrap();
    let sql = "SELECT channel, sum(total_cents), count(*) FROM lake.public.orders GROUP BY channel";
    let want = sorted(&live(&env.engine).await, sql).await;
    let engine = env.engine.clone();
    let refresher = tokio::spawn(async move {
        let c = engine.client();
        for _ in 0..6 {
            c.sql("REFRESH MATERIALIZED VIEW m.by_customer")
                .await
                .unwrap();
        }
    });
    let mut reads = 0;
    while !refresher.is_finished() {
        assert_eq!(sorted(&admin, sql).await, want);
        reads += 1;
    }
    refresher.await.unwrap();
    assert!(reads > 0);
    let def = env
        .engine
        .session()
        .store()
        .cache("m", "by_customer")
        .unwrap()
        .unwrap();
    assert_eq!(def.state.generation, 7);
    // Generations retired in the last minutes stay for the queries that
    // may still read them; a directory no catalog entry names (a refresh
    // killed half-way) goes at the next refresh.
    let dir = env.data_dir().join("cache/m.by_customer");
    let generations = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(generations().len(), 7, "{:?}", generations());
    std::fs::create_dir_all(dir.join("g000099-deadbeef")).unwrap();
    std::fs::write(dir.join("g000099-deadbeef/part-00000.parquet"), b"half").unwrap();
    admin
        .sql("REFRESH MATERIALIZED VIEW m.by_customer")
        .await
        .unwrap();
    assert!(
        !dir.join("g000099-deadbeef").exists(),
        "{:?}",
        generations()
    );
    assert_eq!(generations().len(), 8, "{:?}", generations());
    env.engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_declarations_are_refused_and_change_nothing() {
    let env = lake_env().await;
    let admin = env.engine.client();
    admin.sql(BIG).await.unwrap();
    admin
        .sql("CREATE VIEW m.v AS SELECT 1 AS one")
        .await
        .unwrap();
    let before = env.engine.session().store().snapshot().unwrap();
    for (sql, says) in [
        (
            "CREATE MATERIALIZED VIEW m.t AS SELECT now() AS at",
            "now()",
        ),
        (
            "CREATE MATERIALIZED VIEW m.r AS SELECT random() AS r FROM lake.public.orders",
            "random()",
        ),
        (
            "CREATE MATERIALIZED VIEW m.v AS SELECT 2 AS two",
            "`m.v` already exists",
        ),
        (
            "CREATE MATERIALIZED VIEW m.big AS SELECT 2 AS two",
            "`m.big` already exists",
        ),
        ("CREATE VIEW m.big AS SELECT 2 AS two", "m.big"),
        (
            "CREATE MATERIALIZED VIEW m.s WITH (storage = 'file:///proc/no/such') AS SELECT 1 AS one",
            "storage file:///proc/no/such",
        ),
        (
            "CREATE MATERIALIZED VIEW m.s WITH (storage = 'ftp://x/y') AS SELECT 1 AS one",
            "storage ftp://x/y",
        ),
        (
            "CREATE MATERIALIZED VIEW m.s WITH (max_staleness = 'a while') AS SELECT 1 AS one",
            "`a while` is not an interval",
        ),
        (
            "CREATE MATERIALIZED VIEW m.s WITH (refesh = 'manual') AS SELECT 1 AS one",
            "unknown option `refesh`",
        ),
        (
            "CREATE MATERIALIZED VIEW m.s AS SELECT 1 AS a, 2 AS a",
            "have the same name",
        ),
        (
            "CREATE MATERIALIZED VIEW m.s AS SELECT o.customer_id, c.customer_id FROM lake.public.orders o JOIN lake.public.customers c ON o.customer_id = c.customer_id",
            "two columns named `customer_id`",
        ),
        (
            "REFRESH MATERIALIZED VIEW m.nope",
            "`m.nope` does not exist",
        ),
        ("DROP MATERIALIZED VIEW m.nope", "`m.nope` does not exist"),
        (
            "CREATE MATERIALIZED VIEW m.s AS SELECT * FROM lake.public.nope",
            "nope",
        ),
    ] {
        let err = try_query(&admin, sql).await.unwrap_err();
        assert!(err.contains(says), "{sql}: {err}");
    }
    let mut after = env.engine.session().store().snapshot().unwrap();
    after.generation = before.generation;
    assert_eq!(after.caches, before.caches);
    assert_eq!(after.views, before.views);
    // IF EXISTS / IF NOT EXISTS are quiet.
    admin
        .sql("DROP MATERIALIZED VIEW IF EXISTS m.nope")
        .await
        .unwrap();
    admin
        .sql("CREATE MATERIALIZED VIEW IF NOT EXISTS m.big AS SELECT 2 AS two")
        .await
        .unwrap();
    // A drop removes the definition and the files.
    admin.sql("DROP MATERIALIZED VIEW m.big").await.unwrap();
    assert!(
        env.engine
            .session()
            .store()
            .cache("m", "big")
            .unwrap()
            .is_none()
    );
    assert!(!env.data_dir().join("cache/m.big").exists());
    env.engine.session().close().await;
}

const YACHAY_VIEWS: [&str; 11] = [
    "card_owner",
    "web_identity",
    "web_events",
    "sales_lines",
    "sales_daily",
    "sales_weekly",
    "sales_monthly",
    "inventory_live",
    "marketing_effectiveness",
    "customer_360",
    "sales_forecast",
];

/// Query shapes over crm, pos, inventory and the lake: each cache's query
/// and a query that must be answered from it.
const SHAPES: [(&str, &str, &str); 22] = [
    (
        "crm_city",
        "SELECT customer_id, email, segment FROM crm.public.customers WHERE city = 'Lima'",
        "SELECT segment, email FROM crm.public.customers WHERE city = 'Lima' AND segment <> 'vip'",
    ),
    (
        "crm_segments",
        "SELECT segment, city, count(*) AS n FROM crm.public.customers GROUP BY segment, city",
        "SELECT segment, count(*) FROM crm.public.customers GROUP BY segment",
    ),
    (
        "crm_orders_by_status",
        "SELECT status, channel, sum(total_usd) AS usd, count(*) AS n, min(ordered_at) AS first, max(ordered_at) AS last FROM crm.public.orders GROUP BY status, channel",
        "SELECT channel, sum(total_usd), count(*), max(ordered_at) FROM crm.public.orders GROUP BY channel",
    ),
    (
        "crm_web_orders",
        "SELECT order_id, customer_id, total_usd, status FROM crm.public.orders WHERE channel = 'web'",
        "SELECT customer_id, sum(total_usd) FROM crm.public.orders WHERE channel = 'web' GROUP BY customer_id",
    ),
    (
        "crm_order_lines",
        "SELECT o.order_id, o.channel, i.sku, i.qty, i.unit_price_usd FROM crm.public.orders o JOIN crm.public.order_items i ON i.order_id = o.order_id",
        "SELECT x.order_id, x.channel, y.sku, y.qty, y.unit_price_usd FROM crm.public.orders x JOIN crm.public.order_items y ON x.order_id = y.order_id",
    ),
    (
        "crm_sku_qty",
        "SELECT sku, sum(qty) AS qty, count(*) AS lines FROM crm.public.order_items GROUP BY sku",
        "SELECT sum(qty), count(*) FROM crm.public.order_items",
    ),
    (
        "crm_campaign_contacts",
        "SELECT campaign_id, opened, clicked, count(*) AS n FROM crm.public.campaign_contacts GROUP BY campaign_id, opened, clicked",
        "SELECT campaign_id, count(*) FROM crm.public.campaign_contacts WHERE clicked GROUP BY campaign_id",
    ),
    (
        "crm_campaigns",
        "SELECT campaign_id, name, channel, budget_usd FROM crm.public.campaigns WHERE budget_usd > 0",
        "SELECT name FROM crm.public.campaigns WHERE budget_usd > 0 AND channel = 'email'",
    ),
    (
        "pos_store_totals",
        "SELECT store_id, payment_method, sum(total_usd) AS usd, count(*) AS n FROM pos.public.transactions GROUP BY store_id, payment_method",
        "SELECT store_id, sum(total_usd) FROM pos.public.transactions GROUP BY store_id",
    ),
    (
        "pos_stores",
        "SELECT store_id, name, city FROM pos.public.stores",
        "SELECT name, store_id FROM pos.public.stores",
    ),
    (
        "pos_lines",
        "SELECT txn_id, sku, qty, unit_price_usd, discount_usd FROM pos.public.transaction_lines WHERE qty > 1",
        "SELECT sku, count(*) FROM pos.public.transaction_lines WHERE qty > 1 AND discount_usd > 0 GROUP BY sku",
    ),
    (
        "pos_store_txns",
        "SELECT t.txn_id, s.city, t.total_usd FROM pos.public.transactions t JOIN pos.public.stores s ON s.store_id = t.store_id",
        "SELECT city, sum(total_usd), count(*) FROM (SELECT t.txn_id, s.city, t.total_usd FROM pos.public.transactions t JOIN pos.public.stores s ON s.store_id = t.store_id) x GROUP BY city",
    ),
    (
        "pos_cards",
        "SELECT tier, count(*) AS n FROM pos.public.loyalty_cards GROUP BY tier",
        "SELECT count(*) FROM pos.public.loyalty_cards",
    ),
    (
        "inv_stock",
        "SELECT sku, sum(on_hand) AS on_hand, count(*) AS n FROM inventory.public.stock GROUP BY sku",
        "SELECT sum(on_hand), count(*) FROM inventory.public.stock",
    ),
    (
        "inv_low",
        "SELECT sku, on_hand, reorder_point FROM inventory.public.stock WHERE on_hand < 100",
        "SELECT sku FROM inventory.public.stock WHERE on_hand < 100 AND reorder_point > 10",
    ),
    (
        "inv_products",
        "SELECT sku, name, category FROM inventory.public.products",
        "SELECT category, count(*) FROM (SELECT sku, name, category FROM inventory.public.products) p GROUP BY category",
    ),
    (
        "lake_history",
        "SELECT channel, status, sum(qty) AS qty, count(*) AS n FROM lake.public.sales_history GROUP BY channel, status",
        "SELECT channel, sum(qty) FROM lake.public.sales_history WHERE status = 'delivered' GROUP BY channel",
    ),
    (
        "lake_clicks",
        "SELECT event_type, count(*) AS n FROM lake.public.clickstream GROUP BY event_type",
        "SELECT count(*) FROM lake.public.clickstream",
    ),
    (
        "lake_reviews",
        "SELECT sku, rating FROM lake.public.reviews WHERE rating >= 4",
        "SELECT rating, count(*) FROM lake.public.reviews WHERE rating >= 4 GROUP BY rating",
    ),
    (
        "cross_source",
        "SELECT c.city, o.channel, sum(o.total_usd) AS usd, count(*) AS n FROM crm.public.orders o JOIN crm.public.customers c ON c.customer_id = o.customer_id GROUP BY c.city, o.channel",
        "SELECT c.city, sum(o.total_usd) FROM crm.public.orders o JOIN crm.public.customers c ON c.customer_id = o.customer_id GROUP BY c.city",
    ),
    (
        "sales_by_channel",
        "SELECT channel, layer, sum(revenue_usd) AS usd, sum(qty) AS qty FROM yachay.sales_lines GROUP BY channel, layer",
        "SELECT channel, sum(revenue_usd) FROM yachay.sales_lines GROUP BY channel",
    ),
    (
        "c360_first",
        "SELECT * FROM yachay.customer_360 WHERE customer_id < 100",
        "SELECT customer_id FROM yachay.customer_360 WHERE customer_id > 10 AND customer_id < 100",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_business_view_and_twenty_shapes_answer_the_same_from_cache() {
    let y = crate::servers::yachay();
    let dir = crate::views::catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let admin = engine.client();
    let live = live(&engine).await;
    for view in YACHAY_VIEWS {
        admin
            .sql(&format!(
                "CREATE MATERIALIZED VIEW c.{view} AS SELECT * FROM yachay.{view}"
            ))
            .await
            .unwrap_or_else(|e| panic!("{view}: {e}"));
        let sql = format!("SELECT * FROM yachay.{view}");
        let plan = plan_of(&admin, &sql).await;
        assert!(
            plan.contains(&format!("cache c.{view}, generation 1")),
            "{view}:\n{plan}"
        );
        assert_same(
            &sorted(&admin, &sql).await,
            &sorted(&live, &sql).await,
            view,
        );
    }
    for (name, cache, sql) in SHAPES {
        admin
            .sql(&format!("CREATE MATERIALIZED VIEW s.{name} AS {cache}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan = plan_of(&admin, sql).await;
        assert!(
            plan.contains(&format!("cache s.{name}, generation 1")),
            "{name}: {sql}\n{plan}"
        );
        let want = sorted(&live, sql).await;
        assert!(!want.is_empty(), "{name}: no rows");
        assert_same(&sorted(&admin, sql).await, &want, sql);
    }
    engine.session().close().await;
}

/// A refresh killed half-way (SIGKILL of the server) or failing on a
/// source that is down leaves the previous generation serving and the
/// catalog consistent; over the PostgreSQL wire the statements answer
/// with PostgreSQL's tags and only admins run them.
#[test]
fn refreshes_killed_or_failing_leave_the_old_generation_serving() {
    use crate::pgwire::{ANA_PW, BOSS_PW, psql_in, wait_port};
    let pg = crate::servers::PgServer::start();
    pg.psql("postgres", "CREATE DATABASE shop");
    pg.psql(
        "shop",
        "CREATE TABLE t AS SELECT g AS id, g % 7 AS v FROM generate_series(1, 1000) g; \
         CREATE VIEW slow AS SELECT id, v, pg_sleep(0.004) IS NOT NULL AS slept FROM t",
    );
    let dir = tempfile::tempdir().unwrap();
    crate::views::add_pg_source(dir.path(), "shop", pg.port, "shop");
    crate::pgwire::add_admin(dir.path());
    let run = crate::common::quipu(
        dir.path(),
        &["users", "add", "ana", "--grant", "shop"],
        &[("QUIPU_PASSWORD", ANA_PW)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut procs = crate::cluster::Procs::start(dir.path(), 0);
    wait_port(procs.pg);
    let pg_port = procs.pg;
    let boss = |commands: &[&str]| psql_in(pg_port, "boss", BOSS_PW, "quipu", commands);

    let out = boss(&[
        "CREATE MATERIALIZED VIEW m.fast AS SELECT id, v FROM shop.public.t",
        "CREATE MATERIALIZED VIEW m.slow AS SELECT id, v, slept FROM shop.public.slow",
        "REFRESH MATERIALIZED VIEW m.fast",
        "SELECT count(*) FROM m.slow",
        // A plain view's statements too (they answered as an empty
        // result: psql printed `--` and `(0 rows)`).
        "CREATE VIEW m.plain AS SELECT 1 AS one",
        "DROP VIEW m.plain",
    ]);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec![
            "CREATE MATERIALIZED VIEW",
            "CREATE MATERIALIZED VIEW",
            "REFRESH MATERIALIZED VIEW",
            "1000",
            "CREATE VIEW",
            "DROP VIEW"
        ],
        "{}",
        out.stdout
    );
    let ana = psql_in(
        procs.pg,
        "ana",
        ANA_PW,
        "quipu",
        &["REFRESH MATERIALIZED VIEW m.fast"],
    );
    assert!(
        !ana.ok && ana.stderr.contains("only admins"),
        "{}",
        ana.stderr
    );

    // SIGKILL while the slow one refreshes (reading takes 4 s).
    let store = || quipu_catalog::CatalogStore::open(dir.path()).unwrap();
    let before = store().cache("m", "slow").unwrap().unwrap();
    let port = procs.pg;
    let refresh = std::thread::spawn(move || {
        psql_in(
            port,
            "boss",
            BOSS_PW,
            "quipu",
            &["REFRESH MATERIALIZED VIEW m.slow"],
        )
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store()
        .cache("m", "slow")
        .unwrap()
        .unwrap()
        .state
        .refreshing
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never began"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    procs.kill_scheduler();
    assert!(!refresh.join().unwrap().ok);
    let after = store().cache("m", "slow").unwrap().unwrap();
    assert_eq!(after.state.generation, before.state.generation);
    assert_eq!(after.state.location, before.state.location);
    assert!(
        after.state.refreshing.is_some(),
        "the dead refresh's claim stays"
    );

    procs.start_scheduler();
    wait_port(procs.pg);
    let out = boss(&[
        "SELECT count(*), sum(v) FROM m.slow",
        "REFRESH MATERIALIZED VIEW m.slow",
    ]);
    assert!(out.ok, "{}\n{}", out.stderr, procs.logs());
    assert_eq!(
        out.stdout.lines().next(),
        Some("1000|3003"),
        "{}",
        out.stdout
    );
    let refreshed = store().cache("m", "slow").unwrap().unwrap();
    assert_eq!(refreshed.state.generation, before.state.generation + 1);
    assert!(refreshed.state.refreshing.is_none());
    // What the killed refresh wrote is gone; the retired generation stays.
    let generations = std::fs::read_dir(dir.path().join("cache/m.slow"))
        .unwrap()
        .count();
    assert_eq!(generations, 2);

    // The source goes down: the refresh fails naming it, the cache still
    // answers, and describe shows the error.
    pg.stop();
    let out = boss(&["REFRESH MATERIALIZED VIEW m.fast"]);
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("refresh of materialized view m.fast failed")
            && out.stderr.contains("shop"),
        "{}",
        out.stderr
    );
    let out = boss(&["SELECT count(*) FROM m.fast"]);
    assert_eq!(out.stdout.trim(), "1000", "{}", out.stderr);
    let described = crate::common::quipu(dir.path(), &["catalog", "describe", "m.fast"], &[]);
    assert!(
        described.stdout.contains("generation: 2")
            && described.stdout.contains("last error:")
            && described.stdout.contains("source `shop`: cannot connect"),
        "{}",
        described.stdout
    );
    // A query that wants live data says the source is down.
    let out = boss(&[
        "SET quipu.max_staleness = '0'",
        "SELECT count(*) FROM shop.public.t",
    ]);
    assert!(!out.ok && out.stderr.contains("shop"), "{}", out.stderr);
    pg.restart();
    let out = boss(&["REFRESH MATERIALIZED VIEW m.fast"]);
    assert!(out.ok, "{}", out.stderr);

    // The scheduler refreshes a cache declared `refresh = 'every ...'`.
    let out = boss(&[
        "CREATE MATERIALIZED VIEW m.auto WITH (refresh = 'every 1 second') AS SELECT v, count(*) AS n FROM shop.public.t GROUP BY v",
    ]);
    assert!(out.ok, "{}", out.stderr);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store()
        .cache("m", "auto")
        .unwrap()
        .unwrap()
        .state
        .generation
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no periodic refresh\n{}",
            procs.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let described = crate::common::quipu(dir.path(), &["catalog", "describe", "m.fast"], &[]);
    assert!(
        described.stdout.contains("last error: none"),
        "{}",
        described.stdout
    );
}

/// A cache is computed with the refresh's settings; a session whose
/// settings change answers (its time zone) is not answered from it, and
/// EXPLAIN says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_another_time_zone_is_not_answered_from_a_cache() {
    let env = lake_env().await;
    let admin = env.engine.client();
    // Each order at a timestamp with time zone, as text and as a date.
    let query = "SELECT order_id, \
        CAST(CAST(to_timestamp(order_id * 3600) AS TIMESTAMPTZ) AS VARCHAR) AS at_text, \
        CAST(CAST(to_timestamp(order_id * 3600) AS TIMESTAMPTZ) AS DATE) AS at_day \
        FROM lake.public.orders";
    admin
        .sql(&format!("CREATE MATERIALIZED VIEW m.stamped AS {query}"))
        .await
        .unwrap();
    let state = env
        .engine
        .session()
        .store()
        .cache("m", "stamped")
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(
        state.read_with,
        Some(quipu_catalog::ReadWith {
            time_zone: Some("UTC".into()),
            date_order: None,
        })
    );
    // The refresh's own time zone: answered from the cache.
    let live_utc = live(&env.engine).await;
    from_cache(&admin, &live_utc, "m.stamped", query).await;

    for set in [
        "SET datafusion.execution.time_zone = 'America/Lima'",
        "SET TimeZone = 'America/Lima'",
    ] {
        let lima = env.engine.client();
        lima.sql(set).await.unwrap();
        let lima_live = live(&env.engine).await;
        lima_live.sql(set).await.unwrap();
        // The time zone changes this query's answer (else this test would
        // prove nothing) ...
        let want = sorted(&lima_live, query).await;
        assert_ne!(want, sorted(&live_utc, query).await, "{set}");
        // ... so the cache is not read, EXPLAIN says why, and the answer
        // is Lima's.
        let plan = plan_of(&lima, query).await;
        assert!(!plan.contains("cache m.stamped,"), "{set}: {plan}");
        assert!(
            plan.contains(
                "not from cache m.stamped: computed with datafusion.execution.time_zone 'UTC', this session has 'America/Lima'"
            ),
            "{set}: {plan}"
        );
        assert_same(&sorted(&lima, query).await, &want, set);
    }
    env.engine.session().close().await;
}

/// A cache's date text was read in the refresh's `DateStyle` order
/// (MDY): a session that reads it in another order means another date and
/// is not answered from the cache; ISO text, which reads alike in every
/// order, is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_another_date_order_is_not_answered_from_a_cache() {
    let env = lake_env().await;
    let admin = env.engine.client();
    // March 2 or February 3, as the order reads it.
    let ambiguous = "SELECT order_id FROM lake.public.orders \
        WHERE CAST(to_timestamp((order_id % 100) * 86400) AS DATE) < DATE '03/02/1970'";
    let iso = "SELECT order_id, DATE '2024-01-02' + order_id AS d FROM lake.public.orders";
    for (name, query) in [("m.dated", ambiguous), ("m.iso_dated", iso)] {
        admin
            .sql(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .unwrap();
    }
    let live_mdy = live(&env.engine).await;
    let set = "SET DateStyle = 'ISO, DMY'";
    let dmy = env.engine.client();
    dmy.sql(set).await.unwrap();
    let dmy_live = live(&env.engine).await;
    dmy_live.sql(set).await.unwrap();
    // The order changes this query's answer ...
    let want = sorted(&dmy_live, ambiguous).await;
    assert!(!want.is_empty());
    assert_ne!(want, sorted(&live_mdy, ambiguous).await);
    // ... so the cache's rows, read with the March date, are not taken
    // as the answer (the cache was matched as if its text were read in
    // the session's order, and answered March's rows). Before any other
    // session plans with the caches: their preparation is kept.
    assert_same(&sorted(&dmy, ambiguous).await, &want, set);
    from_cache(&dmy, &dmy_live, "m.iso_dated", iso).await;
    // The refresh's order: answered from the cache.
    from_cache(&admin, &live_mdy, "m.dated", ambiguous).await;
    env.engine.session().close().await;
}

/// The per-statement freshness settings, over real sockets: a `/*+ */`
/// hint through psql (simple protocol) and psycopg (extended protocol),
/// and Flight SQL call headers through pyarrow.flight; Prometheus counts
/// the misses by reason.
#[test]
fn statement_hints_and_call_headers_bound_the_age_per_statement() {
    use crate::pgwire::{BOSS_PW, psql_in, wait_port};
    let (dir, data) = crate::common::lake_catalog_by_cli();
    let lake = dir.path().join("lake");
    crate::pgwire::add_admin(&data);
    let procs = crate::cluster::Procs::start(&data, 0);
    wait_port(procs.pg);
    wait_port(procs.flight);
    let psql = |commands: &[&str]| psql_in(procs.pg, "boss", BOSS_PW, "quipu", commands);
    let out = psql(&[
        "CREATE MATERIALIZED VIEW m.counts AS SELECT channel, count(*) AS n FROM lake.public.orders GROUP BY channel",
    ]);
    assert!(out.ok, "{}\n{}", out.stderr, procs.logs());
    let sql = "SELECT channel, count(*) FROM lake.public.orders GROUP BY channel ORDER BY channel";
    let cached = psql(&[sql]).stdout;
    // The sources change after the refresh.
    add_orders(&lake, 2026, 100_000..100_050);
    std::thread::sleep(Duration::from_millis(50));

    // psql: the hint reads live for its statement only; the next
    // statement of the same session reads the cache again.
    let hinted = format!("/*+ quipu.max_staleness = '0' */ {sql}");
    // (Before EXPLAIN: a hint opens the statement.)
    let out = psql(&[
        &hinted,
        sql,
        &format!("/*+ quipu.max_staleness = '0' */ EXPLAIN {sql}"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let fresh = psql(&["SET quipu.max_staleness = '0'", sql]).stdout;
    assert_ne!(fresh, cached);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let n = cached.lines().count();
    assert_eq!(lines[..n].join("\n"), fresh.trim_end(), "{}", out.stdout);
    assert_eq!(
        lines[n..2 * n].join("\n"),
        cached.trim_end(),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("not from cache m.counts: too old for max_staleness (age"),
        "{}",
        out.stdout
    );
    // Both settings in one hint: too old, and 'error'.
    let out = psql(&[&format!(
        "/*+ quipu.max_staleness = '1 ms' quipu.stale_cache = 'error' */ {sql}"
    )]);
    assert!(
        !out.ok
            && out.stderr.contains("materialized view m.counts is")
            && out.stderr.contains("older than this query allows"),
        "{}",
        out.stderr
    );
    // A setting a hint may not set, something else in a hint, a bad value
    // (the error SET gives).
    let out = psql(&[&format!("/*+ quipu.execution = 'local' */ {sql}")]);
    assert!(
        !out.ok && out.stderr.contains("unknown hint quipu.execution"),
        "{}",
        out.stderr
    );
    let out = psql(&[&format!("/*+ INDEX(orders) */ {sql}")]);
    assert!(
        !out.ok && out.stderr.contains("unknown hint `INDEX`"),
        "{}",
        out.stderr
    );
    let bad = psql(&[&format!("/*+ quipu.max_staleness = 'soon' */ {sql}")]);
    let set = psql(&["SET quipu.max_staleness = 'soon'"]);
    let message = |s: &str| s.lines().next().unwrap_or("").to_string();
    assert!(!bad.ok && !set.ok);
    assert_eq!(message(&bad.stderr), message(&set.stderr));
    assert!(
        bad.stderr.contains("invalid value for quipu.max_staleness"),
        "{}",
        bad.stderr
    );

    // psycopg, extended protocol (a bound parameter): the hint holds too.
    let code = r#"
import os, psycopg
c = psycopg.connect(host="127.0.0.1", port=int(os.environ["PORT"]), user="boss", password=os.environ["BOSS_PW"], dbname="quipu", autocommit=True)
q = "SELECT count(*) FROM lake.public.orders WHERE channel = %s GROUP BY channel"
print("cached=" + str(c.execute(q, ("web",)).fetchone()[0]))
print("hinted=" + str(c.execute("/*+ quipu.max_staleness = '0' */ " + q, ("web",)).fetchone()[0]))
try:
    c.execute("/*+ quipu.stale_cache = 'later' */ " + q, ("web",))
    print("bad=none")
except Exception as e:
    print("bad=" + str(e).splitlines()[0])
"#;
    let out = crate::pgwire::python_with(procs.pg, code, &[]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let value = |out: &str, key: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {out}"))
            .to_string()
    };
    let web = |rows: &str| -> i64 {
        rows.lines()
            .find_map(|l| l.strip_prefix("web|"))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(&out.stdout, "cached").parse::<i64>().unwrap(),
        web(&cached)
    );
    assert_eq!(
        value(&out.stdout, "hinted").parse::<i64>().unwrap(),
        web(&fresh)
    );
    assert!(
        value(&out.stdout, "bad").contains("invalid value `later` for quipu.stale_cache"),
        "{}",
        out.stdout
    );

    // Flight SQL: the same from call headers; a hint in the statement
    // wins over a header.
    let flight_pw = "boss-fl-hint-4Rp";
    let run = crate::common::quipu(
        &data,
        &["users", "add", "flyer", "--admin"],
        &[("QUIPU_PASSWORD", flight_pw)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // flight.rs's prelude: URL and `statement` (a CommandStatementQuery).
    let code = format!(
        r#"{prelude}
c = fl.FlightClient(URL)
auth = c.authenticate_basic_token(b"flyer", b"{flight_pw}")
def web(sql, headers):
    opts = fl.FlightCallOptions(headers=[auth] + headers)
    try:
        info = c.get_flight_info(statement(sql), opts)
        rows = []
        for e in info.endpoints:
            rows += c.do_get(e.ticket, opts).read_all().to_pylist()
        return str([r for r in rows if r["channel"] == "web"][0]["count(*)"])
    except Exception as e:
        return "error: " + str(e).replace("\n", " ")[:300]
SQL = "SELECT channel, count(*) FROM lake.public.orders GROUP BY channel"
print("plain=" + web(SQL, []))
print("header=" + web(SQL, [(b"x-quipu-max-staleness", b"0")]))
print("error=" + web(SQL, [(b"x-quipu-max-staleness", b"1 ms"), (b"x-quipu-stale-cache", b"error")]))
print("wins=" + web("/*+ quipu.max_staleness = '1 hour' */ " + SQL, [(b"x-quipu-max-staleness", b"0")]))
print("unknown=" + web(SQL, [(b"x-quipu-execution", b"local")]))
print("bad=" + web(SQL, [(b"x-quipu-max-staleness", b"soon")]))
"#,
        prelude = crate::flight::PRELUDE
    );
    let out = crate::pgwire::python_with(procs.flight, &code, &[]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let cached_web = web(&cached).to_string();
    let fresh_web = web(&fresh).to_string();
    assert_eq!(value(&out.stdout, "plain"), cached_web, "{}", out.stdout);
    assert_eq!(value(&out.stdout, "header"), fresh_web, "{}", out.stdout);
    assert_eq!(value(&out.stdout, "wins"), cached_web, "{}", out.stdout);
    let error = value(&out.stdout, "error");
    assert!(
        error.contains("materialized view m.counts is")
            && error.contains("older than this query allows"),
        "{error}"
    );
    assert!(
        value(&out.stdout, "unknown").contains("unknown header x-quipu-execution"),
        "{}",
        out.stdout
    );
    assert!(
        value(&out.stdout, "bad").contains("invalid value for quipu.max_staleness"),
        "{}",
        out.stdout
    );

    // Prometheus: the misses, by reason.
    let (status, metrics) = crate::cluster::http_get(procs.http, "/metrics", None);
    assert_eq!(status, 200);
    let too_old = metrics
        .lines()
        .find(|l| {
            l.starts_with("quipu_cache_misses_total")
                && l.contains("cache=\"m.counts\"")
                && l.contains("reason=\"too_old\"")
        })
        .unwrap_or_else(|| panic!("no too_old miss in\n{metrics}"));
    let n: f64 = too_old.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 4.0, "{too_old}");
}

/// Each cache's query is planned and written canonically once per
/// catalog generation: statements in between reuse it, and a refresh, a
/// drop or a new cache make the next statement prepare them again (so no
/// statement reads a generation the catalog no longer serves). Prints what
/// preparing once saves per statement, measured in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_are_prepared_once_per_catalog_generation() {
    let env = lake_env().await;
    let admin = env.engine.client();
    for sql in [BY_CUSTOMER, BIG, LIMA, TRIO] {
        admin.sql(sql).await.unwrap();
    }
    let live = live(&env.engine).await;
    let engine = &env.engine;
    let sql = "SELECT customer_id, sum(total_cents) FROM lake.public.orders WHERE channel = 'web' GROUP BY customer_id";
    from_cache(&admin, &live, "m.by_customer", sql).await;
    let before = engine.cache_preparations();
    for _ in 0..5 {
        plan_of(&admin, sql).await;
    }
    assert_eq!(
        engine.cache_preparations(),
        before,
        "prepared again without a change"
    );

    // A refresh: prepared again, and the answer is the new generation's.
    add_orders(&env.lake_dir(), 2026, 100_000..100_050);
    admin
        .sql("REFRESH MATERIALIZED VIEW m.by_customer")
        .await
        .unwrap();
    let plan = plan_of(&admin, sql).await;
    assert!(plan.contains("cache m.by_customer, generation 2"), "{plan}");
    // (The refresh's own query prepares them too, between its claim and
    // its flip, each a catalog change.)
    let n = engine.cache_preparations();
    assert!(n > before);
    from_cache(&admin, &live, "m.by_customer", sql).await;
    assert_eq!(engine.cache_preparations(), n);
    // A drop: the cache is gone from the rewrite at once.
    let n = engine.cache_preparations();
    admin
        .sql("DROP MATERIALIZED VIEW m.by_customer")
        .await
        .unwrap();
    let plan = plan_of(&admin, sql).await;
    assert!(!plan.contains("m.by_customer"), "{plan}");
    assert_eq!(engine.cache_preparations(), n + 1);
    // A new cache: used by the next statement.
    admin.sql(BY_CUSTOMER).await.unwrap();
    from_cache(&admin, &live, "m.by_customer", sql).await;

    // What preparing once saves, same run: planning with the caches
    // prepared against planning after forgetting them.
    let time = |forget: bool| {
        let admin = &admin;
        async move {
            let mut ms = Vec::new();
            for _ in 0..15 {
                if forget {
                    engine.forget_prepared_caches();
                }
                let t = std::time::Instant::now();
                let mut parsed = admin.parse(sql).unwrap();
                admin.plan(parsed.remove(0)).await.unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            ms[ms.len() / 2]
        }
    };
    let cold = time(true).await;
    let warm = time(false).await;
    println!(
        "planning p50 with 3 caches: prepared each statement {cold:.1} ms, prepared once {warm:.1} ms"
    );
    env.engine.session().close().await;
}

/// `append_column`: a refresh of a filter over one table reads only the
/// rows above the largest value cached and adds them beside the files it
/// carries over; the answer stays the live one. A query that aggregates
/// is refreshed whole, and `describe`'s state says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_caches_refresh_only_the_new_rows() {
    let env = lake_env().await;
    let admin = env.engine.client();
    let state = |name: &str| state_of(&env, name);
    let files = |st: &quipu_catalog::CacheState| {
        let dir = st
            .location
            .as_deref()
            .unwrap()
            .strip_prefix("file://")
            .unwrap();
        std::fs::read_dir(dir).unwrap().count()
    };
    let query = "SELECT order_id, customer_id, total_cents FROM lake.public.orders \
                 WHERE channel = 'web'";
    admin
        .sql(&format!(
            "CREATE MATERIALIZED VIEW m.web WITH (append_column = 'order_id') AS {query}"
        ))
        .await
        .unwrap();
    let live = live(&env.engine).await;
    let before = sorted(&live, query).await;
    let largest = |rows: &[Vec<String>]| {
        rows.iter()
            .map(|r| r[0].parse::<i64>().unwrap())
            .max()
            .unwrap()
    };
    let first = state("web");
    assert_eq!(
        first.refresh_kind.as_deref(),
        Some("full (no generation with rows yet)")
    );
    assert_eq!(first.rows, before.len() as u64);
    assert_eq!(first.watermark, Some(largest(&before).to_string()));

    // Rows added above the largest id: only they are read and added.
    add_orders(&env.lake_dir(), 2026, 200_000..200_040);
    admin.sql("REFRESH MATERIALIZED VIEW m.web").await.unwrap();
    let second = state("web");
    assert_eq!(
        second.refresh_kind.as_deref(),
        Some("incremental (40 rows added)")
    );
    assert_eq!(second.rows, first.rows + 40);
    assert_eq!(second.watermark.as_deref(), Some("200039"));
    assert_eq!(files(&second), 2, "the carried-over file and the new rows");
    from_cache(&admin, &live, "m.web", query).await;
    assert_same(
        &sorted(&admin, "SELECT * FROM m.web").await,
        &sorted(&live, query).await,
        "m.web read by name",
    );
    // Nothing new: nothing added, the same answer, a new generation.
    admin.sql("REFRESH MATERIALIZED VIEW m.web").await.unwrap();
    let third = state("web");
    assert_eq!(
        third.refresh_kind.as_deref(),
        Some("incremental (0 rows added)")
    );
    assert_eq!((third.rows, third.generation), (second.rows, 3));
    from_cache(&admin, &live, "m.web", query).await;

    // An aggregate could change rows already cached: read whole.
    let per_customer = "SELECT customer_id, max(order_id) AS last FROM lake.public.orders \
                        GROUP BY customer_id";
    admin
        .sql(&format!(
            "CREATE MATERIALIZED VIEW m.per_customer WITH (append_column = 'last') AS {per_customer}"
        ))
        .await
        .unwrap();
    add_orders(&env.lake_dir(), 2026, 200_040..200_050);
    admin
        .sql("REFRESH MATERIALIZED VIEW m.per_customer")
        .await
        .unwrap();
    assert_eq!(
        state("per_customer").refresh_kind.as_deref(),
        Some("full (its query does more than filter one table: Aggregate)")
    );
    from_cache(&admin, &live, "m.per_customer", per_customer).await;

    // A column the answer does not have, or without an order: refused.
    for (option, words) in [
        (
            "append_column = 'nope'",
            "append_column `nope` is not a column of its query (its columns: order_id, customer_id, total_cents, flag)",
        ),
        (
            "append_column = 'flag'",
            "append_column `flag` is of type Boolean",
        ),
    ] {
        let err = try_query(
            &admin,
            &format!(
                "CREATE MATERIALIZED VIEW m.bad WITH ({option}) AS \
                 SELECT order_id, customer_id, total_cents, order_id > 3 AS flag \
                 FROM lake.public.orders"
            ),
        )
        .await
        .unwrap_err();
        assert!(err.contains(words), "{option}: {err}");
    }
    assert!(
        env.engine
            .session()
            .store()
            .cache("m", "bad")
            .unwrap()
            .is_none()
    );
    env.engine.session().close().await;
}

/// A cache over one lake table without an `append_column`: a refresh
/// reads only the files added since the last one, and everything again
/// when a file it read changed or went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_caches_refresh_only_the_new_files() {
    let env = lake_env().await;
    let admin = env.engine.client();
    let state = || state_of(&env, "paid");
    // Partitioned by year (the year comes from the file's folder).
    let query = "SELECT order_id, year, total_cents FROM lake.public.orders \
                 WHERE total_cents >= 100";
    admin
        .sql(&format!("CREATE MATERIALIZED VIEW m.paid AS {query}"))
        .await
        .unwrap();
    let live = live(&env.engine).await;
    let first = state();
    assert_eq!(first.refresh_kind.as_deref(), Some("full"));
    let read = first.source_files.len();
    assert!(read >= 2, "the files read are recorded: {read}");

    // Two new files, one in a new partition: only they are read.
    add_orders(&env.lake_dir(), 2026, 300_000..300_030);
    add_orders(&env.lake_dir(), 2031, 300_030..300_035);
    admin.sql("REFRESH MATERIALIZED VIEW m.paid").await.unwrap();
    let second = state();
    assert_eq!(
        second.refresh_kind.as_deref(),
        Some("incremental (2 new files, 35 rows added)")
    );
    assert_eq!(second.rows, first.rows + 35);
    assert_eq!(second.source_files.len(), read + 2);
    let described = crate::common::quipu(&env.data_dir(), &["catalog", "describe", "m.paid"], &[]);
    for line in [
        format!("lake files read: {}", read + 2),
        "incremental (2 new files, 35 rows added)".to_string(),
    ] {
        assert!(
            described.stdout.contains(&line),
            "{line}: {}",
            described.stdout
        );
    }
    from_cache(&admin, &live, "m.paid", query).await;
    assert_same(
        &sorted(
            &admin,
            "SELECT year, count(*) FROM m.paid WHERE order_id >= 300000 GROUP BY year",
        )
        .await,
        &[
            vec!["2026".to_string(), "30".to_string()],
            vec!["2031".to_string(), "5".to_string()],
        ],
        "the new rows with their partition",
    );

    // Nothing new: nothing read, the same rows, a new generation.
    admin.sql("REFRESH MATERIALIZED VIEW m.paid").await.unwrap();
    let third = state();
    assert_eq!(
        third.refresh_kind.as_deref(),
        Some("incremental (0 new files, 0 rows added)")
    );
    assert_eq!((third.rows, third.generation), (second.rows, 3));

    // A file it read rewritten (other rows): everything is read again.
    add_orders(&env.lake_dir(), 2026, 300_000..300_010);
    admin.sql("REFRESH MATERIALIZED VIEW m.paid").await.unwrap();
    let fourth = state();
    assert_eq!(
        fourth.refresh_kind.as_deref(),
        Some("full (a file it read was changed or removed)")
    );
    assert_eq!(fourth.rows, second.rows - 20);
    from_cache(&admin, &live, "m.paid", query).await;

    // This process holds the generation it read in memory (Arrow); a
    // process without memory for caches reads the files: the same rows.
    let held = quipu_connectors::metrics::metrics()
        .cache_memory_bytes
        .with_label_values(&["m.paid"])
        .get();
    assert!(held > 0, "m.paid is held in memory: {held}");
    let totals = "SELECT count(*), sum(order_id), sum(total_cents) FROM m.paid";
    let (in_memory, _) = crate::common::query(&admin, totals).await;
    let from_files = crate::common::quipu(
        &env.data_dir(),
        &["sql", "--format", "csv", totals],
        &[("QUIPU_CACHE_MEMORY", "0")],
    );
    assert_eq!(from_files.code, 0, "{}", from_files.stderr);
    assert_eq!(
        from_files.stdout.lines().nth(1).unwrap(),
        in_memory[0].join(","),
        "from the files"
    );

    // A join reads everything, and records no files.
    let joined = "SELECT o.order_id, c.name FROM lake.public.orders o \
                  JOIN lake.public.customers c ON o.customer_id = c.customer_id";
    admin
        .sql(&format!("CREATE MATERIALIZED VIEW m.named AS {joined}"))
        .await
        .unwrap();
    add_orders(&env.lake_dir(), 2026, 400_000..400_010);
    admin
        .sql("REFRESH MATERIALIZED VIEW m.named")
        .await
        .unwrap();
    let named = state_of(&env, "named");
    assert_eq!(named.refresh_kind.as_deref(), Some("full"));
    assert!(named.source_files.is_empty());
    from_cache(&admin, &live, "m.named", joined).await;
    env.engine.session().close().await;
}
