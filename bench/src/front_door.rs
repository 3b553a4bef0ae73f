//! Benchmark: the latency a client sees through Quipu's PostgreSQL front
//! door, with a real PostgreSQL server as the baseline, in one run.
//!
//! Everything runs as real processes, the way a user runs them: the
//! `quipu` binary next to this one (same `bench-fast` build) writes a
//! Parquet fact table, registers it as the `lake` source, adds a user and
//! then runs `quipu serve` (scheduler with one in-process executor); a
//! throwaway PostgreSQL 15 cluster is started with `initdb` + `pg_ctl`.
//! Both are stopped when the benchmark ends, also on a panic.
//!
//! ```sh
//! cargo run --profile bench-fast -p quipu-bench --bin front_door
//! ```
//!
//! Reports, each as p50 and p99:
//! 1. `SELECT 1` over the wire with the simple protocol (`simple_query`)
//!    and the extended protocol (a prepared statement executed again and
//!    again), Quipu against PostgreSQL with the same `tokio-postgres` client
//!    code, and the ratio quipu / postgres. The runs alternate between the
//!    servers in rounds, so drift on the machine hits both alike.
//! 2. Trivial lake queries (a filtered `count(*)` over 1 M rows and a
//!    `LIMIT 1`) through the same front door with `quipu.execution =
//!    'cluster'` (Ballista job) and `'auto'` (answered in-process); where
//!    they ran is checked through the scheduler's `/metrics`.
//!
//! Why: these are the floors every client pays. Targets: `SELECT 1` p50
//! ≤ 1 ms, `auto` p50 ≤ 5 ms, trivial cluster query p50 ≤ 100 ms.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const WARMUP: usize = 100;
const ITERATIONS: usize = 2000;
/// `SELECT 1` runs are split into this many rounds, alternating servers.
const ROUNDS: usize = 10;
const CLUSTER_WARMUP: usize = 3;
const CLUSTER_RUNS: usize = 30;
const AUTO_WARMUP: usize = 20;
const AUTO_RUNS: usize = 200;

const FACT_ROWS: u64 = 1_000_000;
const USER: &str = "bench";
const PASSWORD: &str = "benchpw";
const CLUSTER_TOKEN: &str = "bench";

const COUNT_SQL: &str = "SELECT count(*) FROM lake.public.facts WHERE amount < 500";
/// `amount = (id * 37) % 10000` and 37 is prime to 10000, so each block of
/// 10,000 ids holds exactly 500 amounts below 500.
const COUNT_EXPECTED: &str = "50000";
const LIMIT_SQL: &str = "SELECT * FROM lake.public.facts LIMIT 1";

const TARGET_SELECT1_MS: f64 = 1.0;
const TARGET_AUTO_MS: f64 = 5.0;
const TARGET_CLUSTER_MS: f64 = 100.0;

// ---------------------------------------------------------------- helpers

/// A loopback port that is free now. Drawn below the kernel's ephemeral
/// range (32768-60999 by default): a port from `bind(0)` comes from that
/// range, where the server's own outgoing connections (the in-process
/// executor dialling the scheduler) also take theirs, so the port could be
/// gone by the time the server binds it.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::SeqCst)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOW} and {}", LOW + SPAN)
}

fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} within 120 s; log {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.1 GET on loopback: the body, or `None` when nothing
/// answers yet.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50 and p99 by nearest rank.
fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    assert!(!v.is_empty(), "no samples");
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.50), rank(0.99))
}

// ---------------------------------------------------------------- Quipu

/// The `quipu` binary of the same build as this benchmark.
fn quipu_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find the benchmark's own executable");
    let bin = exe
        .parent()
        .expect("the benchmark executable has no parent directory")
        .join("quipu");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --profile bench-fast -p quipu-cli`",
        bin.display()
    );
    bin
}

/// Runs a one-shot `quipu` command; panics with its output if it fails.
fn quipu(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(quipu_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("QUIPU_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run quipu {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "quipu {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `quipu serve` over a fresh data dir holding the `lake` source and the
/// benchmark's user; killed on drop.
struct QuipuServer {
    child: Child,
    http: u16,
    pg: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl QuipuServer {
    fn start() -> QuipuServer {
        let dir = tempfile::tempdir().expect("cannot create a temp dir for Quipu");
        let data = dir.path().join("data");
        let lake = dir.path().join("lake");
        std::fs::create_dir_all(lake.join("facts")).expect("cannot create the lake folder");

        let t = Instant::now();
        quipu(
            &data,
            &[
                "sql",
                &format!(
                    "COPY (SELECT value AS id, value % 1000 AS key, (value * 37) % 10000 AS amount \
                     FROM range({FACT_ROWS})) TO '{}' STORED AS PARQUET",
                    lake.join("facts/part-0.parquet").display()
                ),
            ],
            &[],
        );
        eprintln!(
            "wrote {FACT_ROWS} rows of Parquet in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let url = format!("file://{}", lake.display());
        quipu(
            &data,
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
        quipu(
            &data,
            &["users", "add", USER, "--admin"],
            &[("QUIPU_PASSWORD", PASSWORD)],
        );

        let (grpc, http, pg) = (free_port(), free_port(), free_port());
        let log = dir.path().join("serve.log");
        let out = std::fs::File::create(&log).expect("cannot create the serve log");
        let child = Command::new(quipu_bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--port", &grpc.to_string()])
            .args(["--http-port", &http.to_string()])
            .args(["--pg-listen", &format!("127.0.0.1:{pg}")])
            .args(["--flight-listen", "off"])
            .env_remove("QUIPU_DATA_DIR")
            .env("QUIPU_CLUSTER_TOKEN", CLUSTER_TOKEN)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("cannot share the serve log"))
            .stderr(out)
            .spawn()
            .expect("cannot start `quipu serve`");
        let mut server = QuipuServer {
            child,
            http,
            pg,
            log,
            _dir: dir,
        };
        let log = server.log.clone();
        wait_until(
            "quipu serve did not accept PostgreSQL connections",
            &log,
            || {
                server.assert_alive();
                TcpStream::connect(("127.0.0.1", pg)).is_ok()
            },
        );
        wait_until("quipu serve did not report its executor", &log, || {
            server.assert_alive();
            http_get(http, "/health").is_some_and(|b| b.contains("executors=1 "))
        });
        server
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "quipu serve exited ({status}); log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// `quipu_queries_total{executed_on="cluster"}` from `/metrics`.
    fn cluster_queries(&self) -> u64 {
        let body = http_get(self.http, "/metrics").expect("GET /metrics of quipu serve failed");
        body.lines()
            .find_map(|l| l.strip_prefix("quipu_queries_total{executed_on=\"cluster\"} "))
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("quipu_queries_total is not a number")
            })
            .unwrap_or(0)
    }

    async fn connect(&self) -> Client {
        connect(
            &format!(
                "host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname=quipu",
                self.pg
            ),
            "Quipu's front door",
        )
        .await
    }
}

impl Drop for QuipuServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// The server binaries: `pg_config --bindir`, else PostgreSQL 15's.
fn pg_bindir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    from_pg_config
        .into_iter()
        .chain([PathBuf::from("/usr/lib/postgresql/15/bin")])
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .expect("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
}

/// A throwaway PostgreSQL cluster (run as the `postgres` user when this
/// runs as root, which PostgreSQL refuses); stopped on drop.
struct PgServer {
    bindir: PathBuf,
    as_postgres: bool,
    data: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        pg_command(&self.bindir, self.as_postgres, program)
    }

    fn start() -> PgServer {
        let bindir = pg_bindir();
        let as_postgres = running_as_root();
        // tempdir() makes the folder with mode 0700: hand it to postgres.
        let dir = tempfile::tempdir().expect("cannot create a temp dir for PostgreSQL");
        if as_postgres {
            let chowned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                chowned,
                "cannot hand {} to the postgres user",
                dir.path().display()
            );
        }
        let data = dir.path().join("pgdata");
        let init = pg_command(&bindir, as_postgres, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("cannot run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let log = dir.path().join("postgres.log");
        let server = PgServer {
            bindir,
            as_postgres,
            data,
            port,
            dir,
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            server.dir.path().display()
        );
        let start = server
            .command("pg_ctl")
            .arg("-D")
            .arg(&server.data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &opts, "-w", "start"])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run pg_ctl start");
        assert!(
            start.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&start.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_until("PostgreSQL did not listen", &log, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }

    async fn connect(&self) -> Client {
        connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            ),
            "PostgreSQL",
        )
        .await
    }
}

fn pg_command(bindir: &Path, as_postgres: bool, program: &str) -> Command {
    let path = bindir.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------- measuring

async fn connect(config: &str, what: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(config, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {what}: {e:?}"));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });
    client
}

/// The data rows' first columns of a simple-protocol answer.
fn first_column(messages: &[SimpleQueryMessage]) -> Vec<Option<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

/// Times `sql` sent with the simple protocol; checks the answer's first
/// column (`None`: only that there is one row).
async fn time_simple(client: &Client, sql: &str, expect: Option<&str>, what: &str) -> Duration {
    let t = Instant::now();
    let out = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{what}: {sql}: {e:?}"));
    let elapsed = t.elapsed();
    let column = first_column(&out);
    match expect {
        Some(v) => assert_eq!(column, [Some(v.to_string())], "{what}: {sql}"),
        None => assert_eq!(column.len(), 1, "{what}: {sql}: one row expected"),
    }
    elapsed
}

/// Times one execution of the prepared `SELECT 1`.
async fn time_prepared(client: &Client, stmt: &tokio_postgres::Statement, what: &str) -> Duration {
    let t = Instant::now();
    let rows = client
        .query(stmt, &[])
        .await
        .unwrap_or_else(|e| panic!("{what}: prepared SELECT 1: {e:?}"));
    let elapsed = t.elapsed();
    assert_eq!(rows.len(), 1, "{what}: prepared SELECT 1: one row expected");
    // PostgreSQL answers int4, DataFusion int8.
    let one = rows[0]
        .try_get::<_, i32>(0)
        .map(i64::from)
        .or_else(|_| rows[0].try_get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("{what}: prepared SELECT 1: not an integer: {e}"));
    assert_eq!(one, 1, "{what}: prepared SELECT 1");
    elapsed
}

/// `SELECT 1` samples of one server, simple and extended protocol.
struct Select1 {
    what: &'static str,
    client: Client,
    stmt: tokio_postgres::Statement,
    simple: Vec<Duration>,
    extended: Vec<Duration>,
}

impl Select1 {
    async fn new(what: &'static str, client: Client) -> Select1 {
        let stmt = client
            .prepare("SELECT 1")
            .await
            .unwrap_or_else(|e| panic!("{what}: prepare SELECT 1: {e:?}"));
        let mut s = Select1 {
            what,
            client,
            stmt,
            simple: Vec::with_capacity(ITERATIONS),
            extended: Vec::with_capacity(ITERATIONS),
        };
        s.round(WARMUP).await;
        s.simple.clear();
        s.extended.clear();
        s
    }

    async fn round(&mut self, n: usize) {
        for _ in 0..n {
            let d = time_simple(&self.client, "SELECT 1", Some("1"), self.what).await;
            self.simple.push(d);
        }
        for _ in 0..n {
            let d = time_prepared(&self.client, &self.stmt, self.what).await;
            self.extended.push(d);
        }
    }
}

/// Runs `sql` `warmup` + `runs` times on `client`, which has `SET
/// quipu.execution = 'mode'`; returns the measured samples and how many of
/// them ran on the cluster (per the scheduler's `/metrics`).
async fn lake_query(
    quipu: &QuipuServer,
    client: &Client,
    mode: &str,
    sql: &str,
    expect: Option<&str>,
    warmup: usize,
    runs: usize,
) -> (Vec<Duration>, u64) {
    let what = format!("Quipu, quipu.execution = '{mode}'");
    for _ in 0..warmup {
        time_simple(client, sql, expect, &what).await;
    }
    let before = quipu.cluster_queries();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(time_simple(client, sql, expect, &what).await);
    }
    (samples, quipu.cluster_queries() - before)
}

// ---------------------------------------------------------------- report

struct Line {
    name: String,
    runs: usize,
    p50: Duration,
    p99: Duration,
    target_ms: Option<f64>,
    note: String,
}

impl Line {
    fn new(name: impl Into<String>, samples: Vec<Duration>, target_ms: Option<f64>) -> Line {
        let runs = samples.len();
        let (p50, p99) = percentiles(samples);
        Line {
            name: name.into(),
            runs,
            p50,
            p99,
            target_ms,
            note: String::new(),
        }
    }

    fn print(&self) {
        let (target, met) = match self.target_ms {
            Some(t) => (
                format!("p50 <= {t} ms"),
                if ms(self.p50) <= t { "yes" } else { "NO" },
            ),
            None => ("-".to_string(), "-"),
        };
        println!(
            "{:<44} {:>5} {:>10.3} {:>10.3}  {:<15} {:<4} {}",
            self.name,
            self.runs,
            ms(self.p50),
            ms(self.p99),
            target,
            met,
            self.note
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let quipu = QuipuServer::start();
    let postgres = PgServer::start();
    eprintln!(
        "quipu serve: PostgreSQL front door on 127.0.0.1:{}; PostgreSQL on 127.0.0.1:{}",
        quipu.pg, postgres.port
    );

    // 1. SELECT 1, the two servers alternating in rounds.
    let mut on_quipu = Select1::new("Quipu", quipu.connect().await).await;
    let mut on_pg = Select1::new("PostgreSQL", postgres.connect().await).await;
    for _ in 0..ROUNDS {
        on_quipu.round(ITERATIONS / ROUNDS).await;
        on_pg.round(ITERATIONS / ROUNDS).await;
    }

    // 2. Trivial lake queries on the cluster and in-process.
    let cluster = quipu.connect().await;
    cluster
        .simple_query("SET quipu.execution = 'cluster'")
        .await
        .expect("SET quipu.execution = 'cluster' failed");
    let auto = quipu.connect().await;
    auto.simple_query("SET quipu.execution = 'auto'")
        .await
        .expect("SET quipu.execution = 'auto' failed");
    let mut lake = Vec::new();
    for (mode, client, warmup, runs, target) in [
        (
            "cluster",
            &cluster,
            CLUSTER_WARMUP,
            CLUSTER_RUNS,
            TARGET_CLUSTER_MS,
        ),
        ("auto", &auto, AUTO_WARMUP, AUTO_RUNS, TARGET_AUTO_MS),
    ] {
        for (label, sql, expect) in [
            (
                "count(*) WHERE amount < 500",
                COUNT_SQL,
                Some(COUNT_EXPECTED),
            ),
            ("SELECT * ... LIMIT 1", LIMIT_SQL, None),
        ] {
            let (samples, on_cluster) =
                lake_query(&quipu, client, mode, sql, expect, warmup, runs).await;
            let mut line = Line::new(format!("quipu {mode}: {label}"), samples, Some(target));
            line.note = format!("{on_cluster}/{runs} ran on the cluster");
            lake.push(line);
        }
    }

    println!(
        "front_door: {cores} cores; SELECT 1: {ITERATIONS} runs after {WARMUP} warm-up, in \
         {ROUNDS} alternating rounds; lake: {FACT_ROWS} rows in one Parquet file"
    );
    println!();
    println!(
        "{:<44} {:>5} {:>10} {:>10}  {:<15} {:<4} note",
        "measurement", "runs", "p50 ms", "p99 ms", "target", "met"
    );
    let select1 = [
        ("simple", on_quipu.simple, on_pg.simple),
        ("extended", on_quipu.extended, on_pg.extended),
    ];
    let mut ratios = Vec::new();
    for (protocol, q, p) in select1 {
        let q = Line::new(
            format!("quipu SELECT 1, {protocol} protocol"),
            q,
            Some(TARGET_SELECT1_MS),
        );
        let p = Line::new(format!("postgres SELECT 1, {protocol} protocol"), p, None);
        q.print();
        p.print();
        ratios.push((
            protocol,
            q.p50.as_secs_f64() / p.p50.as_secs_f64(),
            q.p99.as_secs_f64() / p.p99.as_secs_f64(),
        ));
    }
    for line in &lake {
        line.print();
    }
    println!();
    println!(
        "{:<44} {:>10} {:>10}",
        "ratio quipu / postgres", "p50", "p99"
    );
    for (protocol, r50, r99) in ratios {
        println!(
            "{:<44} {:>9.2}x {:>9.2}x",
            format!("SELECT 1, {protocol} protocol"),
            r50,
            r99
        );
    }
}
