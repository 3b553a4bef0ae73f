//! The test harness for live sources: throwaway real servers on free
//! loopback ports, stopped when the handle drops.
//!
//! - PostgreSQL: `initdb` + `pg_ctl` from the machine's PostgreSQL binaries
//!   (`pg_config --bindir`, or QUIPU_PG_BINDIR), run as the `postgres` user
//!   when the tests run as root (PostgreSQL refuses to run as root).
//! - MongoDB wire protocol: SecantusDB's `secantusd-py` from the test venv
//!   (QUIPU_VENV, created by tests/run.sh), in-memory storage.
//!
//! A server that cannot start fails the test with a message saying how to
//! install it; nothing is skipped.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A loopback port that is free now and that the kernel will not hand out
/// to an outgoing connection meanwhile: ports from `bind(0)` come from the
/// ephemeral range (32768-60999 here), where the tests' own client
/// connections also take theirs, so a server started a moment later could
/// find "its" port taken (seen with the cluster's executors). Ports are
/// drawn in turn from below that range, starting at a place that depends on
/// the process id, and checked free.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOW} and {}", LOW + SPAN)
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on 127.0.0.1:{port} within 60 s; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The test venv (tests/run.sh creates it).
pub fn venv() -> PathBuf {
    PathBuf::from(std::env::var("QUIPU_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/quipu/venv",
            std::env::var("HOME").unwrap_or_default()
        )
    }))
}

pub(crate) fn pg_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("QUIPU_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    from_pg_config.unwrap_or_else(|| {
        panic!("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with `apt-get install postgresql` (tests/run.sh does) or set QUIPU_PG_BINDIR")
    })
}

/// A throwaway PostgreSQL cluster.
pub struct PgServer {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bindir: PathBuf,
    as_postgres: bool,
    pub port: u16,
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        pg_command(&self.bindir, self.as_postgres, program)
    }

    pub fn start() -> PgServer {
        let bindir = pg_bindir();
        let as_postgres = running_as_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "cannot hand {} to the postgres user",
                dir.path().display()
            );
        }
        let data = dir.path().join("pgdata");
        let port = free_port();
        let init = pg_command(&bindir, as_postgres, "initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let server = PgServer {
            _dir: dir,
            data,
            bindir,
            as_postgres,
            port,
        };
        server.pg_ctl_start();
        server
    }

    fn pg_ctl_start(&self) {
        let log = self.log_path();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.data.parent().unwrap().display()
        );
        let start = self
            .command("pg_ctl")
            .args([
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            start.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&start.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_for_port(self.port, "PostgreSQL", &log);
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// The server's log file (`log_statement` lines go here).
    pub fn log_path(&self) -> PathBuf {
        self.data.parent().unwrap().join("postgres.log")
    }

    /// A libpq URL for `db` (no TLS on loopback test servers).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Copies database `db` (schema and data, by `pg_dump | psql`) into
    /// `to_db` of server `to`.
    pub fn dump_into(&self, db: &str, to: &PgServer, to_db: &str) {
        let script = format!(
            "set -o pipefail; {:?} --no-owner --no-comments -d {:?} | {:?} -X -q -v ON_ERROR_STOP=1 -d {:?} >/dev/null",
            self.bindir.join("pg_dump"),
            self.url(db),
            to.bindir.join("psql"),
            to.url(to_db)
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL with the real `psql` client; panics on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out: Output = Command::new(self.bindir.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(db),
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
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
        self.stop();
    }
}

/// A throwaway MongoDB-wire server (SecantusDB, in-memory).
pub struct MongoServer {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl MongoServer {
    pub fn start() -> MongoServer {
        let bin = venv().join("bin/secantusd-py");
        assert!(
            bin.exists(),
            "{} is missing: tests/run.sh installs SecantusDB into the test venv ({}/bin/pip install SecantusDB)",
            bin.display(),
            venv().display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("secantusd.log");
        let port = free_port();
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--storage-path",
                ":memory:",
            ])
            .current_dir(dir.path())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("secantusd.err")).unwrap())
            .spawn()
            .expect("start secantusd-py");
        let server = MongoServer {
            child,
            _dir: dir,
            port,
        };
        wait_for_port(port, "SecantusDB", &log);
        server
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// The server's process id (to pause it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs a pymongo snippet (with `db` bound to database `name`) and
    /// returns what it prints.
    pub fn pymongo(&self, name: &str, code: &str) -> String {
        let script = format!(
            "import pymongo\nclient = pymongo.MongoClient({:?}, serverSelectionTimeoutMS=10000)\ndb = client[{name:?}]\n{code}\n",
            self.uri()
        );
        let out = Command::new(venv().join("bin/python"))
            .arg("-c")
            .arg(script)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "pymongo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn harness_servers_answer_real_clients() {
    let crm = PgServer::start();
    let pos = PgServer::start();
    assert_ne!(crm.port, pos.port);
    crm.psql("postgres", "CREATE DATABASE crm");
    crm.psql(
        "crm",
        "CREATE TABLE customers (customer_id bigint PRIMARY KEY, last_name text); \
         INSERT INTO customers VALUES (1, 'O''Brien'), (2, 'Quispe')",
    );
    assert_eq!(
        crm.psql(
            "crm",
            "SELECT string_agg(last_name, ',' ORDER BY customer_id) FROM customers"
        ),
        "O'Brien,Quispe"
    );
    // The second cluster is separate.
    assert_eq!(
        pos.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'crm'"
        ),
        "0"
    );

    let inventory = MongoServer::start();
    let out = inventory.pymongo(
        "inventory",
        "db.stock.insert_many([{'sku': 'A', 'on_hand': 3, 'reserved': 1}, {'sku': 'B', 'on_hand': 5, 'reserved': 0}])\n\
         print(sum(d['on_hand'] - d['reserved'] for d in db.stock.find({'on_hand': {'$gt': 2}})))",
    );
    assert_eq!(out, "7");
    drop(crm);
    // Stopped: the port no longer answers.
    let port = pos.port;
    drop(pos);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "PostgreSQL still listening after drop"
    );
}

/// The Yachay-Shop world at SF 0.01 (seed 42) in real servers: two
/// PostgreSQL clusters (crm, pos), SecantusDB (inventory) and a lake
/// folder, loaded by `quipu gen`. Shared by the tests that run at the same
/// time and stopped when the last of them drops it.
pub struct Yachay {
    pub crm: PgServer,
    pub pos: PgServer,
    pub mongo: MongoServer,
    pub lake: tempfile::TempDir,
    /// `quipu gen --json` output.
    pub report: serde_json::Value,
}

pub const YACHAY_SCALE: &str = "0.01";
pub const YACHAY_SEED: &str = "42";

impl Yachay {
    pub fn lake_path(&self) -> PathBuf {
        self.lake.path().join("lake")
    }
    /// The generator's reported row count of a table.
    pub fn rows(&self, system: &str, table: &str) -> u64 {
        report_rows(&self.report, system, table)
    }
}

pub fn report_rows(report: &serde_json::Value, system: &str, table: &str) -> u64 {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["system"] == system && t["table"] == table)
        .unwrap_or_else(|| panic!("no {system}.{table} in the report"))["rows"]
        .as_u64()
        .unwrap()
}

/// Runs `quipu gen --json` and returns the parsed report.
pub fn run_gen(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["gen", "--json"];
    all.extend_from_slice(args);
    let run = crate::common::quipu(dir.path(), &all, &[]);
    assert_eq!(run.code, 0, "quipu gen failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("gen --json prints JSON")
}

impl MongoServer {
    pub fn db_uri(&self, db: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{db}?directConnection=true",
            self.port
        )
    }
}

pub fn yachay() -> std::sync::Arc<Yachay> {
    use std::sync::{Mutex, Weak};
    static SHARED: Mutex<Weak<Yachay>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(y) = shared.upgrade() {
        return y;
    }
    let crm = PgServer::start();
    let pos = PgServer::start();
    crm.psql("postgres", "CREATE DATABASE crm");
    pos.psql("postgres", "CREATE DATABASE pos");
    let mongo = MongoServer::start();
    let lake = tempfile::tempdir().unwrap();
    let lake_path = lake.path().join("lake");
    let report = run_gen(&[
        "--scale",
        YACHAY_SCALE,
        "--seed",
        YACHAY_SEED,
        "--crm-url",
        &crm.url("crm"),
        "--pos-url",
        &pos.url("pos"),
        "--mongodb-url",
        &mongo.db_uri("inventory"),
        "--lake",
        lake_path.to_str().unwrap(),
    ]);
    let y = std::sync::Arc::new(Yachay {
        crm,
        pos,
        mongo,
        lake,
        report,
    });
    *shared = std::sync::Arc::downgrade(&y);
    y
}
