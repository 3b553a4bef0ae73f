//! Benchmark: the multi-process cluster (`quipu scheduler` + `quipu
//! executor` processes) against one process, on the Yachay-Shop data at
//! the scale `bench/cluster.sh` generated (default SF 1).
//!
//! ```sh
//! bench/cluster.sh [SF] [RUNS]      # servers, data, catalog, then this
//! ```
//!
//! All clients go through the scheduler's PostgreSQL front door, as users
//! do; each figure has its baseline measured in the same run:
//!
//! 1. Trivial lake queries with `quipu.execution = 'cluster'` on two
//!    executors, with executors pulling tasks (the default) and with the
//!    scheduler pushing them, beside the same queries in `auto` (answered
//!    in-process). Targets: cluster p50 <= 100 ms, auto p50 <= 5 ms.
//! 2. The business questions (the demo's queries) in `auto` with two
//!    executors ÷ the same in one process (`quipu.execution = 'local'`),
//!    alternating per run. Target <= 1.2.
//! 3. A lake aggregation over the sales history on the cluster with two
//!    executors and with one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Line, connect, free_port, http_get, ms, quipu, quipu_bin, wait_until};
use tokio_postgres::{Client, SimpleQueryMessage};

const USER: &str = "bench";
const PASSWORD: &str = "benchpw";
const TOKEN: &str = "bench";

const TRIVIAL: &[(&str, &str)] = &[
    (
        "LIMIT 1 over sales_history",
        "SELECT order_id FROM lake.public.sales_history LIMIT 1",
    ),
    (
        "filtered count over sales_history",
        "SELECT count(*) FROM lake.public.sales_history WHERE qty > 3",
    ),
];
const CLUSTER_WARMUP: usize = 3;
const CLUSTER_RUNS: usize = 30;
const AUTO_WARMUP: usize = 10;
const AUTO_RUNS: usize = 100;

/// The demo's questions (deploy/demo.sh), as the business asks them.
const BUSINESS: &[(&str, &str)] = &[
    (
        "customer 360: counts",
        "SELECT count(*), count(DISTINCT customer_id), \
         sum(CASE WHEN store_purchases > 0 THEN 1 ELSE 0 END), \
         sum(CASE WHEN last_web_visit_at IS NOT NULL THEN 1 ELSE 0 END) FROM yachay.customer_360",
    ),
    (
        "customer 360: best five",
        "SELECT customer_id, online_spend_usd + store_spend_usd AS total FROM yachay.customer_360 \
         ORDER BY total DESC, customer_id LIMIT 5",
    ),
    (
        "inventory: low stock",
        "SELECT count(*), sum(CASE WHEN low_stock_alert THEN 1 ELSE 0 END), sum(available) \
         FROM yachay.inventory_live",
    ),
    (
        "marketing: top campaigns",
        "SELECT name, channel, round(return_on_spend, 2) AS r FROM yachay.marketing_effectiveness \
         ORDER BY r DESC, name LIMIT 10",
    ),
    (
        "sales: monthly by channel",
        "SELECT month, channel, sum(sales), sum(revenue_usd) FROM yachay.sales_monthly \
         WHERE month >= DATE '2026-05-01' GROUP BY month, channel ORDER BY month DESC, channel",
    ),
    (
        "sales: yearly trend",
        "SELECT date_part('year', month) AS year, sum(sales), sum(revenue_usd) \
         FROM yachay.sales_monthly GROUP BY 1 ORDER BY 1",
    ),
    (
        "sales: best stores last week",
        "SELECT store, sum(sales), sum(revenue_usd) AS r FROM yachay.sales_weekly \
         WHERE channel = 'store' AND week = (SELECT max(week) FROM yachay.sales_weekly) \
         GROUP BY store ORDER BY r DESC, store LIMIT 5",
    ),
    (
        "forecast: next four weeks",
        "SELECT category, week, forecast_revenue_usd FROM yachay.sales_forecast \
         WHERE weeks_ahead IN (1, 4) ORDER BY category, week",
    ),
];

const LAKE_AGG: &str = "SELECT channel, date_trunc('month', ordered_at) AS month, count(*), \
     sum(qty * unit_price_usd) FROM lake.public.sales_history GROUP BY 1, 2 ORDER BY 1, 2";
const LAKE_RUNS: usize = 5;

/// A scheduler and its executors, killed on drop.
struct ClusterProcs {
    logs: PathBuf,
    push: bool,
    grpc: u16,
    http: u16,
    pg: u16,
    scheduler: Child,
    executors: Vec<Child>,
}

fn spawn(args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("cannot create a log file");
    Command::new(quipu_bin())
        .args(args)
        .env_remove("QUIPU_DATA_DIR")
        .env("QUIPU_CLUSTER_TOKEN", TOKEN)
        .env("QUIPU_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("cannot share a log file"))
        .stderr(out)
        .spawn()
        .expect("cannot start quipu")
}

fn scheduling(push: bool) -> &'static str {
    if push { "push" } else { "pull" }
}

impl ClusterProcs {
    fn start(data: &Path, logs: &Path, push: bool, executors: usize) -> ClusterProcs {
        let (grpc, http, pg) = (free_port(), free_port(), free_port());
        let args: Vec<String> = [
            "--data-dir",
            data.to_str().expect("data dir is not UTF-8"),
            "scheduler",
            "--port",
            &grpc.to_string(),
            "--http-port",
            &http.to_string(),
            "--executor-timeout",
            "6",
            "--pg-listen",
            &format!("127.0.0.1:{pg}"),
            "--flight-listen",
            "off",
            "--task-scheduling",
            scheduling(push),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = logs.join(format!("scheduler-{}.log", scheduling(push)));
        let scheduler = spawn(&args, &log);
        let mut c = ClusterProcs {
            logs: logs.to_path_buf(),
            push,
            grpc,
            http,
            pg,
            scheduler,
            executors: vec![],
        };
        wait_until(
            "the scheduler did not accept PostgreSQL connections",
            &log,
            || std::net::TcpStream::connect(("127.0.0.1", pg)).is_ok(),
        );
        for _ in 0..executors {
            c.add_executor();
        }
        c.wait_live(executors);
        c
    }

    fn add_executor(&mut self) {
        let i = self.executors.len();
        let work = self
            .logs
            .join(format!("work-{}-{i}", scheduling(self.push)));
        let args: Vec<String> = [
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{}", self.grpc),
            "--catalog-url",
            &format!("http://127.0.0.1:{}", self.http),
            "--port",
            &free_port().to_string(),
            "--grpc-port",
            &free_port().to_string(),
            "--http-port",
            &free_port().to_string(),
            "--heartbeat",
            "2",
            "--task-scheduling",
            scheduling(self.push),
            "--work-dir",
            work.to_str().expect("work dir is not UTF-8"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = self
            .logs
            .join(format!("executor-{}-{i}.log", scheduling(self.push)));
        self.executors.push(spawn(&args, &log));
    }

    fn wait_live(&self, n: usize) {
        let want = format!("executors={n} ");
        let log = self
            .logs
            .join(format!("scheduler-{}.log", scheduling(self.push)));
        wait_until(
            &format!("the cluster did not count {n} executors"),
            &log,
            || http_get(self.http, "/health").is_some_and(|b| b.contains(&want)),
        );
    }

    fn kill_last_executor(&mut self) {
        if let Some(mut e) = self.executors.pop() {
            let _ = e.kill();
            let _ = e.wait();
        }
    }

    async fn connect(&self) -> Client {
        connect(
            &format!(
                "host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname=quipu",
                self.pg
            ),
            "the scheduler's front door",
        )
        .await
    }

    async fn session(&self, mode: &str) -> Client {
        let c = self.connect().await;
        c.batch_execute(&format!("SET quipu.execution = '{mode}'"))
            .await
            .unwrap_or_else(|e| panic!("SET quipu.execution = '{mode}': {e:?}"));
        c
    }

    /// `quipu_queries_total{executed_on="cluster"}` from `/metrics`.
    fn cluster_queries(&self) -> u64 {
        http_get(self.http, "/metrics")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("quipu_queries_total{executed_on=\"cluster\"} "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ClusterProcs {
    fn drop(&mut self) {
        for e in &mut self.executors {
            let _ = e.kill();
            let _ = e.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }
}

/// Every row of a simple-protocol answer, as text.
fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Runs `sql`, returns its time and rows; panics naming `what` on error.
async fn timed(client: &Client, sql: &str, what: &str) -> (Duration, Vec<Vec<Option<String>>>) {
    let t = Instant::now();
    let out = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{what}: {sql}: {e:?}"));
    (t.elapsed(), rows(&out))
}

/// Runs `sql` `warmup + runs` times; returns the samples, checking each
/// answer against `expect`, and how many ran on the cluster.
async fn samples(
    cluster: &ClusterProcs,
    client: &Client,
    sql: &str,
    expect: &[Vec<Option<String>>],
    warmup: usize,
    runs: usize,
    what: &str,
) -> (Vec<Duration>, u64) {
    for _ in 0..warmup {
        timed(client, sql, what).await;
    }
    let before = cluster.cluster_queries();
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (d, got) = timed(client, sql, what).await;
        if sql.contains("LIMIT 1") {
            // Any row will do, and which one may differ between plans.
            assert_eq!(got.len(), 1, "{what}: {sql}: one row expected");
        } else {
            assert_eq!(got, expect, "{what}: {sql}: answer differs from in-process");
        }
        out.push(d);
    }
    (out, cluster.cluster_queries() - before)
}

/// The trivial queries with `quipu.execution = 'cluster'` on `client`.
async fn trivial_on_cluster(
    cluster: &ClusterProcs,
    client: &Client,
    expected: &[Vec<Vec<Option<String>>>],
) -> Vec<Line> {
    let mut lines = Vec::new();
    for ((label, sql), expect) in TRIVIAL.iter().zip(expected) {
        let (s, n) = samples(
            cluster,
            client,
            sql,
            expect,
            CLUSTER_WARMUP,
            CLUSTER_RUNS,
            label,
        )
        .await;
        let mut l = Line::new(
            format!(
                "cluster ({}), 2 executors: {label}",
                scheduling(cluster.push)
            ),
            s,
            Some(100.0),
        );
        l.note = format!("{n}/{CLUSTER_RUNS} on the cluster");
        lines.push(l);
    }
    lines
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Numbers printed by DataFusion may differ in the last digits between
/// plans that add in a different order; compare them rounded.
fn rounded(rows: &[Vec<Option<String>>]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    v.as_ref().map(|s| match s.parse::<f64>() {
                        Ok(x) if s.contains('.') => format!("{:.6e}", x),
                        _ => s.clone(),
                    })
                })
                .collect()
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let source = PathBuf::from(
        args.next()
            .expect("usage: cluster DATA_DIR [RUNS] (bench/cluster.sh prepares DATA_DIR)"),
    );
    let runs: usize = args
        .next()
        .map_or(5, |r| r.parse().expect("RUNS is a number"));
    let dir = tempfile::tempdir().expect("cannot create a temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("cannot create the data dir");
    std::fs::copy(source.join("catalog.redb"), data.join("catalog.redb"))
        .unwrap_or_else(|e| panic!("cannot copy {}/catalog.redb: {e}", source.display()));
    quipu(
        &data,
        &["users", "add", USER, "--admin"],
        &[("QUIPU_PASSWORD", PASSWORD)],
    );
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("cannot create the log dir");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    let mut lines: Vec<Line> = Vec::new();
    let mut ratios: Vec<(String, Duration, Duration, bool)> = Vec::new();
    let mut lake: Vec<(usize, Vec<Duration>)> = Vec::new();

    // ---- the default cluster: two executors pulling tasks.
    let mut cluster = ClusterProcs::start(&data, &logs, false, 2);
    let local = cluster.session("local").await;
    let on_cluster = cluster.session("cluster").await;
    let auto = cluster.session("auto").await;
    let mut expected = Vec::new();
    for (label, sql) in TRIVIAL {
        expected.push(timed(&local, sql, label).await.1);
    }
    lines.extend(trivial_on_cluster(&cluster, &on_cluster, &expected).await);
    for ((label, sql), expect) in TRIVIAL.iter().zip(&expected) {
        let (s, n) = samples(&cluster, &auto, sql, expect, AUTO_WARMUP, AUTO_RUNS, label).await;
        let mut l = Line::new(format!("auto: {label}"), s, Some(5.0));
        l.note = format!("{n}/{AUTO_RUNS} on the cluster");
        lines.push(l);
    }

    // Business questions: auto with two executors vs one process.
    for (label, sql) in BUSINESS {
        let (_, want) = timed(&local, sql, label).await;
        let before = cluster.cluster_queries();
        let (_, got) = timed(&auto, sql, label).await; // warm-up, and the answer
        let went = cluster.cluster_queries() > before;
        let same = rounded(&got) == rounded(&want);
        let (mut a, mut l) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            a.push(timed(&auto, sql, label).await.0);
            l.push(timed(&local, sql, label).await.0);
        }
        ratios.push((
            format!(
                "{label}{}",
                if went { " [cluster]" } else { " [in-process]" }
            ),
            median(a),
            median(l),
            same,
        ));
    }

    // Lake aggregation: two executors, then one.
    let want = rounded(&timed(&local, LAKE_AGG, "lake aggregation").await.1);
    for executors in [2usize, 1] {
        if executors == 1 {
            cluster.kill_last_executor();
            cluster.wait_live(1);
        }
        let c = cluster.session("cluster").await;
        let got = rounded(&timed(&c, LAKE_AGG, "lake aggregation").await.1);
        assert_eq!(got, want, "lake aggregation on {executors} executor(s)");
        let mut s = Vec::new();
        for _ in 0..LAKE_RUNS {
            s.push(timed(&c, LAKE_AGG, "lake aggregation").await.0);
        }
        lake.push((executors, s));
    }
    let lake_local: Vec<Duration> = {
        let mut s = Vec::new();
        for _ in 0..LAKE_RUNS {
            s.push(timed(&local, LAKE_AGG, "lake aggregation").await.0);
        }
        s
    };
    drop((local, on_cluster, auto));
    drop(cluster);

    // ---- the same trivial queries with the scheduler pushing tasks.
    let pushed = ClusterProcs::start(&data, &logs, true, 2);
    let on_push = pushed.session("cluster").await;
    lines.extend(trivial_on_cluster(&pushed, &on_push, &expected).await);
    drop(on_push);
    drop(pushed);

    println!(
        "cluster: {cores} cores, scheduler + executors as processes on loopback, data from {}",
        source.display()
    );
    println!();
    println!(
        "{:<58} {:>5} {:>10} {:>10}  {:<15} {:<4} note",
        "trivial lake queries", "runs", "p50 ms", "p99 ms", "target", "met"
    );
    for l in &lines {
        l.print();
    }
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>8}  same answer",
        "business question (median of runs)", "auto 2x exec", "one process", "ratio"
    );
    let (mut sum_a, mut sum_l) = (Duration::ZERO, Duration::ZERO);
    for (label, a, l, same) in &ratios {
        sum_a += *a;
        sum_l += *l;
        println!(
            "{:<44} {:>10.1}ms {:>10.1}ms {:>7.2}x  {}",
            label,
            ms(*a),
            ms(*l),
            a.as_secs_f64() / l.as_secs_f64(),
            if *same { "yes" } else { "NO" }
        );
    }
    println!(
        "{:<44} {:>10.1}ms {:>10.1}ms {:>7.2}x  (target <= 1.2)",
        "all eight",
        ms(sum_a),
        ms(sum_l),
        sum_a.as_secs_f64() / sum_l.as_secs_f64()
    );
    println!();
    println!("lake aggregation over sales_history ({LAKE_RUNS} runs, median): {LAKE_AGG}");
    for (executors, s) in lake {
        println!(
            "  cluster, {executors} executor(s): {:>10.1} ms",
            ms(median(s))
        );
    }
    println!(
        "  one process:            {:>10.1} ms",
        ms(median(lake_local))
    );
}
