//! Helpers shared by the benchmarks that run Quipu as processes.
// Each benchmark binary uses a part of them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A loopback port that is free now. Drawn below the kernel's ephemeral
/// range (32768-60999 by default): a port from `bind(0)` comes from that
/// range, where the server's own outgoing connections (the in-process
/// executor dialling the scheduler) also take theirs, so the port could be
/// gone by the time the server binds it.
pub fn free_port() -> u16 {
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

pub fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
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
pub fn http_get(port: u16, path: &str) -> Option<String> {
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

pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50 and p99 by nearest rank.
pub fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    assert!(!v.is_empty(), "no samples");
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.50), rank(0.99))
}

/// The `quipu` binary of the same build as this benchmark.
pub fn quipu_bin() -> PathBuf {
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
pub fn quipu(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
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

pub async fn connect(config: &str, what: &str) -> Client {
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
pub fn first_column(messages: &[SimpleQueryMessage]) -> Vec<Option<String>> {
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
pub async fn time_simple(client: &Client, sql: &str, expect: Option<&str>, what: &str) -> Duration {
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

pub struct Line {
    pub name: String,
    pub runs: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub target_ms: Option<f64>,
    pub note: String,
}

impl Line {
    pub fn new(name: impl Into<String>, samples: Vec<Duration>, target_ms: Option<f64>) -> Line {
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

    pub fn print(&self) {
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
