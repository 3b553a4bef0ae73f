//! The lake over S3, against a real S3-API server on loopback (moto's
//! standalone server, installed into the test venv by tests/run.sh).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::common::*;

struct S3Server {
    child: Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> PathBuf {
    let venv = std::env::var("QUIPU_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/quipu/venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let bin = Path::new(&venv).join("bin/moto_server");
    assert!(
        bin.exists(),
        "{} is missing: tests/run.sh installs it (python3 -m venv {venv} && {venv}/bin/pip install 'moto[server]')",
        bin.display()
    );
    bin
}

fn start_s3() -> S3Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(moto_server())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = S3Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the S3 server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Creates a bucket with a bare HTTP request (the test server does not
/// check signatures; object_store has no bucket API).
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
}

/// Uploads every file under `local` to `prefix/` in the bucket.
async fn upload_dir(store: &dyn ObjectStore, local: &Path, prefix: &str) -> usize {
    let mut files = Vec::new();
    let mut stack = vec![local.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for f in &files {
        let rel = f.strip_prefix(local).unwrap().display().to_string();
        store
            .put(
                &ObjectPath::from(format!("{prefix}/{rel}")),
                std::fs::read(f).unwrap().into(),
            )
            .await
            .unwrap();
    }
    files.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lake_on_s3_compatible_store_both_ways() {
    let server = start_s3();
    create_bucket(server.port, "yachay-lake");
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let store = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("yachay-lake")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    write_lake(&local);
    assert!(upload_dir(&store, &local, "exports/lake").await > 5);
    let secret = dir.path().join("s3-secret");
    std::fs::write(&secret, "testing\n").unwrap();

    let session = quipu_connectors::QuipuSession::open(dir.path().join("data")).unwrap();
    let source = |name: &str, url: &str| {
        let mut o = std::collections::BTreeMap::new();
        o.insert("url".to_string(), url.to_string());
        o.insert("endpoint".to_string(), endpoint.clone());
        o.insert("allow_http".to_string(), "true".to_string());
        o.insert("region".to_string(), "us-east-1".to_string());
        o.insert("access_key_id".to_string(), "testing".to_string());
        o.insert(
            "secret_access_key".to_string(),
            format!("file:{}", secret.display()),
        );
        quipu_catalog::SourceDef::new(name, quipu_catalog::SourceKind::Lake, o).unwrap()
    };
    let tables = session
        .add_source(&source("s3lake", "s3://yachay-lake/exports/lake/"))
        .await
        .unwrap();
    let names: Vec<String> = tables.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(
        names,
        vec![
            "s3lake.marketing.ga",
            "s3lake.public.clickstream",
            "s3lake.public.customers",
            "s3lake.public.orders"
        ]
    );
    // A bucket that does not exist: a clear error naming the source, nothing written.
    let err = session
        .add_source(&source("nobucket", "s3://no-such-bucket/x/"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nobucket"), "{err}");
    assert!(session.store().source("nobucket").unwrap().is_none());

    let engine = quipu_scheduler::Engine::new(session);
    let expected_2025: i64 = (0..ORDERS)
        .map(order)
        .filter(|o| o.year == 2025)
        .map(|o| o.total_cents)
        .sum();
    for mode in ["local", "cluster"] {
        let c = client(&engine, mode).await;
        let (rows, on) = query(
            &c,
            "SELECT sum(o.total_cents) FROM s3lake.public.orders o \
             JOIN s3lake.public.customers c ON o.customer_id = c.customer_id WHERE o.year = 2025",
        )
        .await;
        assert_eq!(rows, vec![vec![expected_2025.to_string()]], "mode {mode}");
        assert_eq!(on.to_string(), mode);
        let (rows, _) = query(
            &c,
            "SELECT count(*) FROM s3lake.public.clickstream WHERE date = '2026-11-03'",
        )
        .await;
        assert_eq!(rows, vec![vec![(EVENTS / 3).to_string()]], "mode {mode}");
    }

    // Writes on S3 (docs/sql.md, "Writing to the lake": copied into place,
    // not atomic): the web orders by year, then the app orders appended.
    let c = client(&engine, "local").await;
    let (rows, _) = query(
        &c,
        "CREATE TABLE s3lake.archive.orders WITH (partition_by = 'year') AS \
         SELECT order_id, channel, total_cents, year FROM s3lake.public.orders WHERE channel = 'web'",
    )
    .await;
    let web = (0..ORDERS)
        .map(order)
        .filter(|o| o.channel == "web")
        .count();
    assert_eq!(rows, vec![vec![web.to_string()]]);
    query(
        &c,
        "INSERT INTO s3lake.archive.orders \
         SELECT order_id, channel, total_cents, year FROM s3lake.public.orders WHERE channel = 'app'",
    )
    .await;
    for mode in ["local", "cluster"] {
        let c = client(&engine, mode).await;
        let (rows, _) = query(
            &c,
            "SELECT count(*), sum(total_cents) FROM s3lake.archive.orders WHERE year = 2025",
        )
        .await;
        let n = (0..ORDERS).map(order).filter(|o| o.year == 2025).count();
        assert_eq!(
            rows,
            vec![vec![n.to_string(), expected_2025.to_string()]],
            "mode {mode}"
        );
    }
    let keys: Vec<String> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(
        &object_store::path::Path::from("exports/lake/archive"),
    )))
    .await
    .unwrap()
    .into_iter()
    .map(|o| o.location.to_string())
    .collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("exports/lake/archive/orders/year=2025/")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.starts_with("exports/lake/archive/orders/year=")),
        "staging objects left: {keys:?}"
    );
}
