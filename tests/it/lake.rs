//! Lake tables through the engine, each query run on both execution paths
//! and checked against answers computed from the generating formulas.

use std::collections::BTreeMap;

use quipu_scheduler::ExecutedOn;

use crate::common::*;

const MODES: [&str; 2] = ["local", "cluster"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aggregates_over_partitioned_parquet_match_both_ways() {
    let env = lake_env().await;
    let mut expected: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for o in (0..ORDERS).map(order) {
        let e = expected.entry(o.year).or_default();
        e.0 += 1;
        e.1 += o.total_cents;
    }
    let expected: Vec<Vec<String>> = expected
        .into_iter()
        .map(|(y, (n, s))| vec![y.to_string(), n.to_string(), s.to_string()])
        .collect();
    for mode in MODES {
        let c = client(&env.engine, mode).await;
        let (rows, on) = query(
            &c,
            "SELECT year, count(*), sum(total_cents) FROM lake.public.orders GROUP BY year ORDER BY year",
        )
        .await;
        assert_eq!(rows, expected, "mode {mode}");
        assert_eq!(on.to_string(), mode);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_and_joins_across_formats_match_both_ways() {
    let env = lake_env().await;
    // Revenue of web orders by city of customers outside Lima (CSV join Parquet).
    let mut by_city: BTreeMap<&str, i64> = BTreeMap::new();
    for o in (0..ORDERS).map(order) {
        let city = customer_city(o.customer_id);
        if o.channel == "web" && city != "Lima" {
            *by_city.entry(city).or_default() += o.total_cents;
        }
    }
    let expected: Vec<Vec<String>> = by_city
        .iter()
        .map(|(c, s)| vec![c.to_string(), s.to_string()])
        .collect();
    // Logged-in product views per city (NDJSON join CSV), on one day.
    let mut views: BTreeMap<&str, i64> = BTreeMap::new();
    for (date, customer, _, kind) in (0..EVENTS).map(event) {
        if let Some(c) = customer
            && date == "2026-11-02"
            && kind == "product_view"
        {
            *views.entry(customer_city(c)).or_default() += 1;
        }
    }
    let expected_views: Vec<Vec<String>> = views
        .iter()
        .map(|(c, n)| vec![c.to_string(), n.to_string()])
        .collect();
    for mode in MODES {
        let c = client(&env.engine, mode).await;
        let (rows, _) = query(
            &c,
            "SELECT c.city, sum(o.total_cents) FROM lake.public.orders o \
             JOIN lake.public.customers c ON o.customer_id = c.customer_id \
             WHERE o.channel = 'web' AND c.city <> 'Lima' GROUP BY c.city ORDER BY c.city",
        )
        .await;
        assert_eq!(rows, expected, "mode {mode}");
        let (rows, _) = query(
            &c,
            "SELECT c.city, count(*) FROM lake.public.clickstream e \
             JOIN lake.public.customers c ON e.customer_id = c.customer_id \
             WHERE e.date = '2026-11-02' AND e.event_type = 'product_view' \
             GROUP BY c.city ORDER BY c.city",
        )
        .await;
        assert_eq!(rows, expected_views, "mode {mode}");
        // Quoted CSV values survive: a comma and an apostrophe in names.
        let (rows, _) = query(
            &c,
            "SELECT name FROM lake.public.customers WHERE customer_id IN (7, 8) ORDER BY customer_id",
        )
        .await;
        assert_eq!(
            rows,
            vec![vec!["O'Brien".to_string()], vec!["Pérez, Ana".to_string()]]
        );
        let (rows, _) = query(
            &c,
            "SELECT count(*) FROM lake.public.clickstream WHERE customer_id IS NULL",
        )
        .await;
        let nulls = (0..EVENTS).filter(|i| event(*i).1.is_none()).count();
        assert_eq!(rows, vec![vec![nulls.to_string()]], "mode {mode}");
    }
}

/// The text of an EXPLAIN, one line per plan row.
async fn explain(c: &quipu_scheduler::ClientSession, sql: &str) -> String {
    let (rows, _) = query(c, sql).await;
    rows.iter()
        .map(|r| r.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_filters_prune_folders_in_explain() {
    let env = lake_env().await;
    let c = client(&env.engine, "local").await;
    let plan = explain(
        &c,
        "EXPLAIN SELECT count(*) FROM lake.public.clickstream WHERE date = '2026-11-02'",
    )
    .await;
    assert!(plan.contains("date=2026-11-02"), "{plan}");
    assert!(
        !plan.contains("date=2026-11-01"),
        "pruned folder still scanned:\n{plan}"
    );
    assert!(
        !plan.contains("date=2026-11-03"),
        "pruned folder still scanned:\n{plan}"
    );
    let plan = explain(
        &c,
        "EXPLAIN SELECT sum(total_cents) FROM lake.public.orders WHERE year = 2025",
    )
    .await;
    assert!(plan.contains("year=2025"), "{plan}");
    assert!(!plan.contains("year=2026"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_mode_picks_by_estimated_work() {
    let env = lake_env().await;
    let c = env.engine.client();
    let (_, on) = query(&c, "SELECT sum(order_id) FROM lake.public.orders").await;
    assert_eq!(
        on,
        ExecutedOn::Local,
        "a few KB must not pay the cluster's floor"
    );
    let (_, on) = query(&c, "SELECT 1").await;
    assert_eq!(on, ExecutedOn::Local);
    c.sql("SET quipu.cluster_min_bytes = 1").await.unwrap();
    // (count(*) alone is answered from Parquet statistics and scans nothing.)
    let (rows, on) = query(&c, "SELECT count(*), sum(order_id) FROM lake.public.orders").await;
    assert_eq!(
        on,
        ExecutedOn::Cluster,
        "a scan above the threshold goes to the cluster"
    );
    assert_eq!(
        rows,
        vec![vec![
            ORDERS.to_string(),
            (ORDERS * (ORDERS - 1) / 2).to_string()
        ]]
    );
    // Reading and forwarding every row stays in-process whatever its size:
    // the rows all come through this process anyway.
    let (rows, on) = query(&c, "SELECT order_id, channel FROM lake.public.orders").await;
    assert_eq!(on, ExecutedOn::Local, "a plain read has nothing to spread");
    assert_eq!(rows.len(), ORDERS as usize);
    // Catalog queries stay local even when the cluster is forced.
    c.sql("SET quipu.execution = 'cluster'").await.unwrap();
    let (rows, on) = query(
        &c,
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake' AND table_schema = 'public' ORDER BY table_name",
    )
    .await;
    assert_eq!(on, ExecutedOn::Local);
    assert_eq!(
        rows,
        vec![
            vec!["clickstream".to_string()],
            vec!["customers".into()],
            vec!["orders".into()]
        ]
    );
    let err = c
        .sql("SET quipu.execution = 'sideways'")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("sideways") && err.contains("'auto'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_lake_and_declared_schema() {
    use object_store::{ObjectStore, ObjectStoreExt};
    let dir = tempfile::tempdir().unwrap();
    let session = quipu_connectors::QuipuSession::open(dir.path()).unwrap();
    let store = session.memory_store("mem");
    store
        .put(
            &object_store::path::Path::from("exports/fb/day1.csv"),
            "utm_campaign,spend_usd\nbf,10.5\ncyber,2\n".into(),
        )
        .await
        .unwrap();
    let mut options = std::collections::BTreeMap::new();
    options.insert("url".to_string(), "memory://mem/exports/".to_string());
    let source =
        quipu_catalog::SourceDef::new("ads", quipu_catalog::SourceKind::Lake, options).unwrap();
    let tables = session.add_source(&source).await.unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].name.to_string(), "ads.public.fb");
    // Declared schema overrides inference: spend as text.
    session
        .add_table(
            quipu_catalog::TableName::new("ads", "public", "fb_text"),
            "fb/",
            None,
            Some(vec![
                quipu_catalog::ColumnDef {
                    name: "utm_campaign".into(),
                    data_type: "Utf8".into(),
                    nullable: true,
                    source_type: None,
                },
                quipu_catalog::ColumnDef {
                    name: "spend_usd".into(),
                    data_type: "Utf8".into(),
                    nullable: true,
                    source_type: None,
                },
            ]),
            false,
        )
        .await
        .unwrap();
    let engine = quipu_scheduler::Engine::new(session);
    for mode in MODES {
        let c = client(&engine, mode).await;
        let (rows, _) = query(&c, "SELECT sum(spend_usd) FROM ads.public.fb").await;
        assert_eq!(rows, vec![vec!["12.5".to_string()]], "mode {mode}");
        let (rows, _) = query(
            &c,
            "SELECT arrow_typeof(spend_usd), spend_usd FROM ads.public.fb_text ORDER BY spend_usd",
        )
        .await;
        assert_eq!(
            rows[0],
            vec!["Utf8".to_string(), "10.5".to_string()],
            "mode {mode}"
        );
    }
    // A file that lands in a table's folder is read by the next query,
    // without a refresh (DataFusion's listing cache kept the old list).
    store
        .put(
            &object_store::path::Path::from("exports/fb/day2.csv"),
            "utm_campaign,spend_usd\nnew,7.5\n".into(),
        )
        .await
        .unwrap();
    for mode in MODES {
        let c = client(&engine, mode).await;
        let (rows, _) = query(&c, "SELECT sum(spend_usd) FROM ads.public.fb").await;
        assert_eq!(rows, vec![vec!["20.0".to_string()]], "mode {mode}");
    }
    // A CSV table is not written (Quipu writes Parquet), and nothing is
    // written into its folder.
    let c = client(&engine, "local").await;
    let err = try_query(&c, "INSERT INTO ads.public.fb VALUES ('x', 1.0)")
        .await
        .unwrap_err();
    assert!(err.contains("Quipu writes only Parquet tables"), "{err}");
    let (rows, _) = query(&c, "SELECT count(*) FROM ads.public.fb").await;
    assert_eq!(rows, vec![vec!["3".to_string()]]);
    let files = store
        .list_with_delimiter(Some(&object_store::path::Path::from("exports/fb")))
        .await
        .unwrap();
    assert_eq!(files.objects.len(), 2, "{:?}", files.objects);
    // An object store has no rename: the staged objects are copied into
    // the new table's folder and the staging objects deleted.
    let (rows, _) = query(
        &c,
        "CREATE TABLE ads.public.copy AS SELECT * FROM ads.public.fb",
    )
    .await;
    assert_eq!(rows, vec![vec!["3".to_string()]]);
    query(
        &c,
        "INSERT INTO ads.public.copy SELECT * FROM ads.public.fb WHERE spend_usd > 5",
    )
    .await;
    for mode in MODES {
        let c = client(&engine, mode).await;
        let (rows, _) = query(&c, "SELECT count(*), sum(spend_usd) FROM ads.public.copy").await;
        assert_eq!(
            rows,
            vec![vec!["5".to_string(), "38.0".to_string()]],
            "mode {mode}"
        );
    }
    let all: Vec<String> = futures::TryStreamExt::try_collect::<Vec<_>>(
        store.list(Some(&object_store::path::Path::from("exports"))),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|o| o.location.to_string())
    .collect();
    let copies: Vec<&String> = all
        .iter()
        .filter(|p| p.starts_with("exports/copy/"))
        .collect();
    assert!(copies.len() >= 2, "{all:?}");
    assert!(copies.iter().all(|p| p.ends_with(".parquet")), "{all:?}");
    assert!(
        !all.iter().any(|p| p.contains(".quipu-write/copy/")),
        "{all:?}"
    );
}

/// Declares `lake.public.<table>` at `path` with an inferred schema.
async fn declare(
    session: &quipu_connectors::QuipuSession,
    table: &str,
    path: &str,
) -> quipu_connectors::Result<quipu_catalog::TableDef> {
    session
        .add_table(
            quipu_catalog::TableName::new("lake", "public", table),
            path,
            None,
            None,
            false,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_files_give_clear_errors_and_the_engine_keeps_working() {
    let env = lake_env().await;
    let lake = env.lake_dir();
    // A CSV whose rows do not match its header: refused when declared...
    std::fs::create_dir_all(lake.join("broken_csv")).unwrap();
    std::fs::write(lake.join("broken_csv/a.csv"), "a,b\n1,2\n3,4,5\n").unwrap();
    let session = env.engine.session();
    let err = declare(session, "broken_csv", "broken_csv/")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lake.public.broken_csv") && err.contains("a.csv"),
        "{err}"
    );
    // ...and failing the query when a file goes bad after registration.
    std::fs::write(lake.join("broken_csv/a.csv"), "a,b\n1,2\n").unwrap();
    declare(session, "broken_csv", "broken_csv/").await.unwrap();
    std::fs::write(lake.join("broken_csv/a.csv"), "a,b\n1,2\n3,4,5\n").unwrap();
    let c = client(&env.engine, "local").await;
    let err = try_query(&c, "SELECT * FROM lake.public.broken_csv")
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("csv"), "{err}");
    // A .parquet file that is not Parquet: refused when declared, nothing written.
    std::fs::create_dir_all(lake.join("fake")).unwrap();
    std::fs::write(lake.join("fake/x.parquet"), "this is not parquet").unwrap();
    let before = session.store().generation().unwrap();
    let err = declare(session, "fake", "fake/")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lake.public.fake"), "{err}");
    assert_eq!(
        session.store().generation().unwrap(),
        before,
        "nothing written"
    );
    // A path that does not exist.
    let err = declare(session, "nothing", "nothing/")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no Parquet, CSV or JSON files"), "{err}");
    // Unknown table, malformed SQL.
    let err = try_query(&c, "SELECT * FROM lake.public.nope")
        .await
        .unwrap_err();
    assert!(err.contains("lake.public.nope"), "{err}");
    let err = try_query(&c, "SELEKT 1").await.unwrap_err();
    assert!(err.contains("SELEKT"), "{err}");
    // Still answers.
    let (rows, _) = query(&c, "SELECT count(*) FROM lake.public.customers").await;
    assert_eq!(rows, vec![vec![CUSTOMERS.to_string()]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_reports_drift_and_keeps_declared_tables() {
    let env = lake_env().await;
    let session = env.engine.session();
    let lake = env.lake_dir();
    std::fs::create_dir_all(lake.join("reviews")).unwrap();
    std::fs::write(
        lake.join("reviews/r.ndjson"),
        "{\"review_id\":1,\"rating\":5}\n",
    )
    .unwrap();
    std::fs::remove_file(lake.join("customers.csv")).unwrap();
    std::fs::write(
        lake.join("marketing/ga/ga.csv"),
        "date,utm_campaign,sessions,users\n2026-11-01,bf,10,3\n",
    )
    .unwrap();
    let drift = session.refresh_source("lake").await.unwrap();
    let names =
        |v: &[quipu_catalog::TableName]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&drift.added), vec!["lake.public.reviews"]);
    assert_eq!(names(&drift.removed), vec!["lake.public.customers"]);
    assert_eq!(drift.changed.len(), 1);
    assert!(drift.changed[0].1.contains("users"), "{:?}", drift.changed);
    let c = client(&env.engine, "local").await;
    let (rows, _) = query(&c, "SELECT sum(users) FROM lake.marketing.ga").await;
    assert_eq!(rows, vec![vec!["3".to_string()]]);
}
