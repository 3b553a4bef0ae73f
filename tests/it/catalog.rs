//! The catalog on disk: restarts, crashes mid-change, views through SQL.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use quipu_catalog::CatalogStore;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sources_tables_and_views_survive_a_restart() {
    let env = lake_env().await;
    let c = env.engine.client();
    c.sql("CREATE SCHEMA yachay").await.unwrap();
    c.sql(
        "CREATE VIEW yachay.revenue_by_channel AS \
         SELECT channel, sum(total_cents) AS cents FROM lake.public.orders GROUP BY channel",
    )
    .await
    .unwrap();
    let data_dir = env.data_dir();
    let TestEnv { dir, engine } = env;
    drop(c);
    drop(engine);

    let engine = quipu_scheduler::Engine::open(&data_dir).unwrap();
    let c = engine.client();
    let (rows, _) = query(
        &c,
        "SELECT channel, cents FROM yachay.revenue_by_channel ORDER BY channel",
    )
    .await;
    let web: i64 = (0..ORDERS)
        .map(order)
        .filter(|o| o.channel == "web")
        .map(|o| o.total_cents)
        .sum();
    let app: i64 = (0..ORDERS)
        .map(order)
        .filter(|o| o.channel == "app")
        .map(|o| o.total_cents)
        .sum();
    assert_eq!(
        rows,
        vec![
            vec!["app".to_string(), app.to_string()],
            vec!["web".to_string(), web.to_string()]
        ]
    );
    let (rows, _) = query(
        &c,
        "SELECT table_schema, table_name, table_type FROM information_schema.tables \
         WHERE table_catalog = 'quipu' AND table_schema = 'yachay'",
    )
    .await;
    assert_eq!(
        rows,
        vec![vec![
            "yachay".to_string(),
            "revenue_by_channel".into(),
            "VIEW".into()
        ]]
    );
    // Views are dropped through SQL too, and that is persisted.
    c.sql("DROP VIEW yachay.revenue_by_channel").await.unwrap();
    drop(c);
    drop(engine);
    let store = CatalogStore::open(&data_dir).unwrap();
    assert!(store.views().unwrap().is_empty());
    assert_eq!(store.tables(Some("lake")).unwrap().len(), 4);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_cannot_be_created_inside_sources() {
    let env = lake_env().await;
    let c = env.engine.client();
    let err = c
        .sql("CREATE VIEW lake.public.v AS SELECT 1")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("quipu catalog add-table"), "{err}");
    let err = c
        .sql("CREATE TABLE t AS SELECT 1")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("stores no table data"), "{err}");
}

/// Kills a process that changes the catalog in a loop, at varying moments,
/// and checks each time that the catalog opens and holds only whole steps.
#[test]
fn sigkill_during_changes_leaves_old_or_new_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let churn = env!("CARGO_BIN_EXE_catalog_churn");
    let mut last_reported: i64 = -1;
    for round in 0..6u64 {
        let mut child = std::process::Command::new(churn)
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Let it commit a few steps, then kill it mid-stream.
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let wanted = 3 + round * 7;
        let mut seen = 0;
        while seen < wanted {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            last_reported = line.trim().parse().unwrap();
            seen += 1;
        }
        std::thread::sleep(Duration::from_micros(300 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Drain what it printed before dying.
        for l in reader.lines().map_while(Result::ok) {
            if let Ok(i) = l.trim().parse() {
                last_reported = i;
            }
        }

        let store = CatalogStore::open(dir.path()).expect("catalog opens after SIGKILL");
        let sources: BTreeSet<i64> = store
            .sources()
            .unwrap()
            .iter()
            .map(|s| s.name[1..].parse().unwrap())
            .collect();
        let tables = store.tables(None).unwrap();
        // Every source has exactly its three tables; no table without source.
        for s in &sources {
            let n = tables
                .iter()
                .filter(|t| t.name.source == format!("s{s}"))
                .count();
            assert_eq!(n, 3, "source s{s} has {n} tables after a crash");
        }
        assert_eq!(
            tables.len(),
            sources.len() * 3,
            "orphan tables after a crash"
        );
        // Sources form the window a prefix of the steps leaves behind: the
        // newest one, plus the one before it (its drop may not have landed).
        let newest = *sources.iter().max().expect("some source");
        assert!(newest >= last_reported, "a reported step was lost");
        assert!(newest <= last_reported + 1, "more than one unreported step");
        let expected: BTreeSet<i64> = ((newest - 2).max(0)..=newest).collect();
        assert!(
            sources.is_subset(&expected) && sources.contains(&(newest - 1).max(0)),
            "sources {sources:?} are not a prefix state ending at step {newest}"
        );
    }
}
