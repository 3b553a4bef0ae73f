//! Benchmark: the same queries on the in-process path and on the embedded
//! Ballista cluster, in one run, over a generated Parquet fact table.
//! Reports p50 per path, the ratio cluster / local, and where `auto` sent
//! each query. Run with an optimised build:
//!
//! ```sh
//! cargo run --profile bench-fast -p quipu-bench --bin engine_paths -- [ROWS] [RUNS]
//! ```

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use quipu_catalog::{SourceDef, SourceKind};
use quipu_connectors::QuipuSession;
use quipu_scheduler::{ClientSession, Engine, ExecutedOn};

async fn run(c: &ClientSession, sql: &str) -> (Duration, usize, ExecutedOn) {
    let t = Instant::now();
    let out = c
        .sql_one(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let on = out.executed_on;
    let batches: Vec<_> = out.stream.try_collect().await.unwrap();
    (t.elapsed(), batches.iter().map(|b| b.num_rows()).sum(), on)
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args
        .next()
        .map(|a| a.parse().expect("ROWS"))
        .unwrap_or(6_000_000);
    let runs: usize = args.next().map(|a| a.parse().expect("RUNS")).unwrap_or(7);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(lake.join("facts")).unwrap();

    let session = QuipuSession::open(dir.path().join("data")).unwrap();
    let engine = Engine::new(session.clone());
    let setup = engine.client();
    let t = Instant::now();
    run(
        &setup,
        &format!(
            "COPY (SELECT value AS id, value % 1000 AS key, (value * 37) % 10000 AS amount, \
             CASE value % 4 WHEN 0 THEN 'web' WHEN 1 THEN 'app' ELSE 'store' END AS channel \
             FROM range({rows})) TO '{}/facts/part-0.parquet' STORED AS PARQUET",
            lake.display()
        ),
    )
    .await;
    eprintln!(
        "generated {rows} rows of Parquet in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut options = std::collections::BTreeMap::new();
    options.insert("url".to_string(), format!("file://{}", lake.display()));
    session
        .add_source(&SourceDef::new("lake", SourceKind::Lake, options).unwrap())
        .await
        .unwrap();

    let queries = [
        ("SELECT 1", "SELECT 1".to_string()),
        (
            "filtered count",
            "SELECT count(*) FROM lake.public.facts WHERE amount < 500".to_string(),
        ),
        (
            "GROUP BY with sum",
            "SELECT key, sum(amount) FROM lake.public.facts GROUP BY key".to_string(),
        ),
    ];
    let local = engine.client();
    local.sql("SET quipu.execution = 'local'").await.unwrap();
    let cluster = engine.client();
    cluster
        .sql("SET quipu.execution = 'cluster'")
        .await
        .unwrap();
    let auto = engine.client();

    println!("rows: {rows}, runs per cell: {runs} (p50)\n");
    println!("| query | local p50 | cluster p50 | cluster / local | auto ran on | auto p50 |");
    println!("|---|---|---|---|---|---|");
    for (name, sql) in &queries {
        let mut cells = Vec::new();
        let mut auto_on = ExecutedOn::Local;
        for client in [&local, &cluster, &auto] {
            let (_, n_warm, on) = run(client, sql).await; // warm-up, also starts the cluster
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let (d, n, _) = run(client, sql).await;
                assert_eq!(n, n_warm, "row count changed between runs");
                times.push(d);
            }
            auto_on = on;
            cells.push(p50(times));
        }
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1}x | {auto_on} | {:.1} ms |",
            cells[0].as_secs_f64() * 1e3,
            cells[1].as_secs_f64() * 1e3,
            cells[1].as_secs_f64() / cells[0].as_secs_f64(),
            cells[2].as_secs_f64() * 1e3,
        );
    }
}
