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

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Line, connect, free_port, http_get, quipu, quipu_bin, running_as_root, time_simple, wait_until,
};
use tokio_postgres::Client;

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

/// The export measured over both front doors: 10 M rows, three BIGINT
/// columns and a short string.
const EXPORT_ROWS: u64 = 10_000_000;
const EXPORT_SQL: &str = "SELECT * FROM lake.public.export";
const EXPORT_RUNS: usize = 3;
const TARGET_EXPORT_RATIO: f64 = 5.0;

const TARGET_SELECT1_MS: f64 = 1.0;
const TARGET_AUTO_MS: f64 = 5.0;
const TARGET_CLUSTER_MS: f64 = 100.0;

// ---------------------------------------------------------------- Quipu

/// `quipu serve` over a fresh data dir holding the `lake` source and the
/// benchmark's user; killed on drop.
struct QuipuServer {
    child: Child,
    http: u16,
    pg: u16,
    flight: u16,
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
        std::fs::create_dir_all(lake.join("export")).expect("cannot create the lake folder");
        quipu(
            &data,
            &[
                "sql",
                &format!(
                    "COPY (SELECT value AS id, value % 1000 AS key, (value * 37) % 10000 AS amount, \
                     concat('sku-', CAST(value % 5000 AS VARCHAR)) AS sku \
                     FROM range({EXPORT_ROWS})) TO '{}' STORED AS PARQUET",
                    lake.join("export/part-0.parquet").display()
                ),
            ],
            &[],
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

        let (grpc, http, pg, flight) = (free_port(), free_port(), free_port(), free_port());
        let log = dir.path().join("serve.log");
        let out = std::fs::File::create(&log).expect("cannot create the serve log");
        let child = Command::new(quipu_bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--port", &grpc.to_string()])
            .args(["--http-port", &http.to_string()])
            .args(["--pg-listen", &format!("127.0.0.1:{pg}")])
            .args(["--flight-listen", &format!("127.0.0.1:{flight}")])
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
            flight,
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

// ---------------------------------------------------------------- export

/// Reads every row of `sql` over the PostgreSQL wire (extended protocol,
/// binary rows streamed as they come); returns rows and seconds.
async fn export_pg(client: &Client, sql: &str) -> (u64, f64) {
    use futures::StreamExt;
    let t = Instant::now();
    let stmt = client
        .prepare(sql)
        .await
        .unwrap_or_else(|e| panic!("prepare {sql}: {e:?}"));
    let rows = client
        .query_raw(&stmt, std::iter::empty::<i64>())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let mut rows = std::pin::pin!(rows);
    let mut n = 0u64;
    while let Some(row) = rows.next().await {
        row.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        n += 1;
    }
    (n, t.elapsed().as_secs_f64())
}

/// Reads every row of `sql` over Flight SQL (a Basic handshake, then
/// `CommandStatementQuery` and a `DoGet` per endpoint, all at once as ADBC
/// does); returns rows, seconds and the number of endpoints.
async fn export_flight(port: u16, sql: &str) -> (u64, f64, usize) {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use futures::TryStreamExt;
    let t = Instant::now();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("a valid Flight URL")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Flight SQL on {port}: {e}"));
    let mut client = FlightSqlServiceClient::new(channel);
    client
        .handshake(USER, PASSWORD)
        .await
        .unwrap_or_else(|e| panic!("Flight SQL handshake: {e}"));
    let token = client.token().cloned().expect("a bearer token");
    let info = client
        .execute(sql.to_string(), None)
        .await
        .unwrap_or_else(|e| panic!("Flight SQL {sql}: {e}"));
    let endpoints = info.endpoint.len();
    // Each endpoint on its own thread and connection, so decoding runs in
    // parallel as in a multi-threaded client (this runtime has one thread).
    let reads: Vec<_> =
        info.endpoint
            .into_iter()
            .map(|endpoint| {
                let token = token.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    rt.block_on(async move {
                        let channel = tonic::transport::Endpoint::from_shared(format!(
                            "http://127.0.0.1:{port}"
                        ))
                        .expect("a valid Flight URL")
                        .connect()
                        .await
                        .unwrap_or_else(|e| panic!("cannot connect to Flight SQL on {port}: {e}"));
                        let mut client = FlightSqlServiceClient::new(channel);
                        client.set_token(token);
                        let ticket = endpoint.ticket.expect("an endpoint without a ticket");
                        let mut stream = client
                            .do_get(ticket)
                            .await
                            .unwrap_or_else(|e| panic!("Flight SQL DoGet: {e}"));
                        let mut n = 0u64;
                        while let Some(batch) = stream
                            .try_next()
                            .await
                            .unwrap_or_else(|e| panic!("Flight SQL stream: {e}"))
                        {
                            n += batch.num_rows() as u64;
                        }
                        n
                    })
                })
            })
            .collect();
    let n = reads
        .into_iter()
        .map(|r| r.join().expect("an endpoint reader panicked"))
        .sum();
    (n, t.elapsed().as_secs_f64(), endpoints)
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

    // 3. Exporting 10 M rows: PostgreSQL wire against Flight SQL,
    // alternating.
    let export_client = quipu.connect().await;
    let (mut pg_rates, mut flight_rates) = (Vec::new(), Vec::new());
    let mut flight_endpoints = 0;
    for _ in 0..EXPORT_RUNS {
        let (n, secs) = export_pg(&export_client, EXPORT_SQL).await;
        assert_eq!(n, EXPORT_ROWS, "PostgreSQL wire: rows exported");
        pg_rates.push(n as f64 / secs);
        let (n, secs, endpoints) = export_flight(quipu.flight, EXPORT_SQL).await;
        flight_endpoints = endpoints;
        assert_eq!(n, EXPORT_ROWS, "Flight SQL: rows exported");
        flight_rates.push(n as f64 / secs);
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (pg_rate, flight_rate) = (med(pg_rates), med(flight_rates));

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
    println!();
    println!(
        "export of {EXPORT_ROWS} rows ({EXPORT_SQL}), median of {EXPORT_RUNS}: PostgreSQL wire \
         {:.0} rows/s, Flight SQL {:.0} rows/s ({flight_endpoints} endpoint(s) read in parallel), \
         ratio {:.2}x (target >= {TARGET_EXPORT_RATIO}: {})",
        pg_rate,
        flight_rate,
        flight_rate / pg_rate,
        if flight_rate / pg_rate >= TARGET_EXPORT_RATIO {
            "yes"
        } else {
            "NO"
        }
    );
}
