//! Shared helpers: a test lake written from known formulas (so expected
//! answers are computed independently of Quipu), engines over temp
//! catalogs, and the `quipu` binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::ArrowWriter;
use futures::TryStreamExt;
use quipu_catalog::{SourceDef, SourceKind};
use quipu_connectors::QuipuSession;
use quipu_scheduler::{ClientSession, Engine, ExecutedOn};

pub const ORDERS: i64 = 2000;
pub const CUSTOMERS: i64 = 100;
pub const EVENTS: i64 = 600;
pub const CITIES: [&str; 3] = ["Lima", "Cusco", "Arequipa"];
pub const DATES: [&str; 3] = ["2026-11-01", "2026-11-02", "2026-11-03"];
pub const EVENT_TYPES: [&str; 5] = [
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "purchase",
];

/// One order of the test lake, from its index.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_id: i64,
    pub customer_id: i64,
    pub channel: &'static str,
    pub total_cents: i64,
    pub year: i64,
}

pub fn order(i: i64) -> Order {
    Order {
        order_id: i,
        customer_id: i % CUSTOMERS,
        channel: if i % 3 == 0 { "app" } else { "web" },
        total_cents: (i * 37) % 10_000 + 100,
        year: if i % 4 == 0 { 2025 } else { 2026 },
    }
}

pub fn customer_city(id: i64) -> &'static str {
    CITIES[(id % 3) as usize]
}

pub fn customer_name(id: i64) -> String {
    match id {
        7 => "O'Brien".to_string(),
        8 => "Pérez, Ana".to_string(),
        _ => format!("Customer {id}"),
    }
}

/// One clickstream event: (date, customer_id or None, sku, event_type).
pub fn event(i: i64) -> (&'static str, Option<i64>, String, &'static str) {
    (
        DATES[(i % 3) as usize],
        (i % 5 != 0).then_some(i % CUSTOMERS),
        format!("SKU-{}", i % 20),
        EVENT_TYPES[(i % 7 % 5) as usize],
    )
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Writes the test lake into `root`:
/// - `orders/year=YYYY/part-0.parquet` (hive-partitioned Parquet)
/// - `customers.csv` (CSV with a header, quoted names)
/// - `clickstream/date=YYYY-MM-DD/part.ndjson` (partitioned NDJSON)
/// - `marketing/ga/ga.csv` (a table in schema `marketing`)
pub fn write_lake(root: &Path) {
    for year in [2025, 2026] {
        let orders: Vec<Order> = (0..ORDERS).map(order).filter(|o| o.year == year).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new("total_cents", DataType::Int64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                orders.iter().map(|o| o.order_id),
            )),
            Arc::new(Int64Array::from_iter_values(
                orders.iter().map(|o| o.customer_id),
            )),
            Arc::new(StringArray::from_iter_values(
                orders.iter().map(|o| o.channel),
            )),
            Arc::new(Int64Array::from_iter_values(
                orders.iter().map(|o| o.total_cents),
            )),
        ];
        let batch = RecordBatch::try_new(schema, cols).unwrap();
        write_parquet(
            &root.join(format!("orders/year={year}/part-0.parquet")),
            &batch,
        );
    }
    let mut csv = String::from("customer_id,name,city\n");
    for id in 0..CUSTOMERS {
        let name = customer_name(id).replace('"', "\"\"");
        csv.push_str(&format!("{id},\"{name}\",{}\n", customer_city(id)));
    }
    std::fs::write(root.join("customers.csv"), csv).unwrap();
    for date in DATES {
        let dir = root.join(format!("clickstream/date={date}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lines = String::new();
        for i in 0..EVENTS {
            let (d, customer, sku, kind) = event(i);
            if d != date {
                continue;
            }
            let customer = customer.map(|c| c.to_string()).unwrap_or("null".into());
            lines.push_str(&format!(
                "{{\"event_id\":{i},\"customer_id\":{customer},\"sku\":\"{sku}\",\"event_type\":\"{kind}\"}}\n"
            ));
        }
        std::fs::write(dir.join("part.ndjson"), lines).unwrap();
    }
    std::fs::create_dir_all(root.join("marketing/ga")).unwrap();
    std::fs::write(
        root.join("marketing/ga/ga.csv"),
        "date,utm_campaign,sessions\n2026-11-01,black_friday,10\n2026-11-02,black_friday,20\n2026-11-02,cyber,5\n",
    )
    .unwrap();
}

/// A temp folder holding the test lake (`lake/`) and where a catalog goes
/// (`data/`, not created).
pub fn lake_on_disk() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    write_lake(&lake);
    let data = dir.path().join("data");
    (dir, lake, data)
}

/// The test lake registered as source `lake` by the `quipu` CLI, in the
/// temp folder's `data/` (for tests that run the binary or its servers).
pub fn lake_catalog_by_cli() -> (tempfile::TempDir, PathBuf) {
    let (dir, lake, data) = lake_on_disk();
    add_lake_source(&data, &lake);
    (dir, data)
}

/// Registers the lake folder `lake` as source `lake` of the catalog in
/// `data`, with the `quipu` CLI.
pub fn add_lake_source(data: &Path, lake: &Path) {
    let url = format!("file://{}", lake.display());
    let run = quipu(
        data,
        &[
            "catalog",
            "add-source",
            "lake",
            "--kind",
            "lake",
            "--url",
            &url,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Writes lake table `name` under `lake`: `files` Parquet files of `rows`
/// rows each, with a unique `k` and `g = k % 13` (a join and a 13-group
/// aggregate big enough to shuffle on the cluster).
pub async fn write_keyed_table(lake: &Path, name: &str, files: i64, rows: i64) {
    let table = lake.join(name);
    std::fs::create_dir_all(&table).unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    for i in 0..files {
        let off = i * rows;
        ctx.sql(&format!(
            "COPY (SELECT value + {off} AS k, (value + {off}) % 13 AS g FROM range({rows})) \
             TO '{}/part-{i}.parquet' STORED AS PARQUET",
            table.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    }
}

/// A number set by environment variable `name` (long runs), or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A temp catalog with the test lake registered as source `lake`.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub engine: Arc<Engine>,
}

impl TestEnv {
    pub fn lake_dir(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

pub async fn lake_env() -> TestEnv {
    let (dir, lake, data) = lake_on_disk();
    let session = QuipuSession::open(data).unwrap();
    let mut options = std::collections::BTreeMap::new();
    options.insert("url".to_string(), format!("file://{}", lake.display()));
    let source = SourceDef::new("lake", SourceKind::Lake, options).unwrap();
    session.add_source(&source).await.unwrap();
    TestEnv {
        dir,
        engine: Engine::new(session),
    }
}

/// A client session forced to one execution path.
pub async fn client(engine: &Arc<Engine>, mode: &str) -> ClientSession {
    let c = engine.client();
    c.sql(&format!("SET quipu.execution = '{mode}'"))
        .await
        .unwrap();
    c
}

/// Runs one statement; returns rows as strings and where it ran.
pub async fn query(c: &ClientSession, sql: &str) -> (Vec<Vec<String>>, ExecutedOn) {
    try_query(c, sql)
        .await
        .unwrap_or_else(|e| panic!("query failed: {sql}: {e}"))
}

pub async fn try_query(
    c: &ClientSession,
    sql: &str,
) -> Result<(Vec<Vec<String>>, ExecutedOn), String> {
    let out = c.sql_one(sql).await.map_err(|e| e.to_string())?;
    let on = out.executed_on;
    let batches: Vec<RecordBatch> = out.stream.try_collect().await.map_err(|e| e.to_string())?;
    Ok((rows_of(&batches), on))
}

pub fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    rows_with_null(batches, "NULL")
}

/// Batches as rows of Arrow's text, NULL printed as `null`.
pub fn rows_with_null(batches: &[RecordBatch], null: &str) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null(null);
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    rows
}

/// The `quipu` binary built next to this test binary (tests/run.sh builds
/// it first; QUIPU_BIN overrides).
pub fn quipu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("QUIPU_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|d| d.join("quipu"))
        .unwrap();
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p quipu-cli` (tests/run.sh does) or set QUIPU_BIN",
        bin.display()
    );
    bin
}

/// Output of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `quipu` with a data dir and extra env.
pub fn quipu(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(quipu_bin());
    cmd.arg("--data-dir").arg(data_dir).args(args);
    cmd.env_remove("QUIPU_DATA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run quipu");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// PostgreSQL's answer over the simple protocol as rows of its text, NULL
/// printed as `null`; an error as `SQLSTATE: message`.
pub async fn pg_text_rows(
    pg: &tokio_postgres::Client,
    sql: &str,
    null: &str,
) -> Result<Vec<Vec<String>>, String> {
    let msgs = pg
        .simple_query(sql)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(d) => format!("{}: {}", d.code().code(), d.message()),
            None => e.to_string(),
        })?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or(null).to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// splitmix64: small, fast, good enough to draw queries and values, and
/// the same on every machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True `pct` times in a hundred.
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// A setting from the environment (long runs), or its default.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
