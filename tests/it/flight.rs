//! The Arrow Flight SQL front door, driven by ADBC's Flight SQL driver and
//! `pyarrow.flight` (from the test venv) against the `quipu scheduler`
//! process of a loopback cluster with one executor.

use std::process::Command;

use quipu_scheduler::Engine;

use crate::cluster::Procs;
use crate::common::{client, quipu, try_query};
use crate::servers::{venv, yachay};

const BOSS_PW: &str = "boss-fl-9Tq";
const ANA_PW: &str = "ana-fl-2Wm";

fn python(port: u16, code: &str) -> (bool, String) {
    python_with(port, code, &[])
}

/// [`python`] with more environment variables.
fn python_with(port: u16, code: &str, env: &[(&str, &std::path::Path)]) -> (bool, String) {
    let out = Command::new(venv().join("bin/python"))
        .args(["-W", "ignore", "-c", code])
        .env("PORT", port.to_string())
        .env("BOSS_PW", BOSS_PW)
        .env("ANA_PW", ANA_PW)
        .env("QUIPU_BIN", crate::common::quipu_bin())
        .envs(env.iter().copied())
        .output()
        .expect("run the venv's python");
    (
        out.status.success(),
        format!(
            "{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn value<'a>(out: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in\n{out}"))
}

pub(crate) const PRELUDE: &str = r#"
import os
import adbc_driver_flightsql.dbapi as fs
import pyarrow.flight as fl
URL = "grpc://127.0.0.1:" + os.environ["PORT"]
def adbc(user, pw):
    return fs.connect(URL, db_kwargs={"username": user, "password": pw}, autocommit=True)
def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, parameters=params)
        return cur.fetchall()[0][0]
def err(fn):
    try:
        fn()
        return "none"
    except Exception as e:
        return type(e).__name__ + ": " + str(e).replace("\n", " ")[:300]
def statement(sql):
    # A Flight SQL CommandStatementQuery wrapped in protobuf Any, by hand.
    def varint(n):
        out = b""
        while True:
            x, n = n & 0x7F, n >> 7
            if n:
                out += bytes([x | 0x80])
            else:
                return out + bytes([x])
    q = sql.encode()
    inner = b"\x0a" + varint(len(q)) + q
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return fl.FlightDescriptor.for_command(b"\x0a" + varint(len(url)) + url + b"\x12" + varint(len(inner)) + inner)
def flight(user, pw):
    c = fl.FlightClient(URL)
    return c, fl.FlightCallOptions(headers=[c.authenticate_basic_token(user.encode(), pw.encode())])
"#;

const VIEWS: &[&str] = &["customer_360", "inventory_live", "sales_monthly"];

/// The one value `sql` answers in-process on the catalog in `dir`.
async fn local_scalar(dir: &std::path::Path, sql: &str) -> String {
    let engine = Engine::open(dir).unwrap();
    let local = client(&engine, "local").await;
    try_query(&local, sql).await.unwrap().0[0][0].clone()
}

/// Adds the admin `boss` to the catalog in `dir`.
fn add_boss(dir: &std::path::Path) {
    let run = quipu(
        dir,
        &["users", "add", "boss", "--admin"],
        &[("QUIPU_PASSWORD", BOSS_PW)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bi_clients_query_over_flight_sql() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    for (user, pw, extra) in [
        ("boss", BOSS_PW, "--admin"),
        ("ana", ANA_PW, "--grant=lake"),
    ] {
        let run = quipu(
            dir.path(),
            &["users", "add", user, extra],
            &[("QUIPU_PASSWORD", pw)],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let procs = Procs::start(dir.path(), 1);
    let local_engine = Engine::open(dir.path()).unwrap();
    let local = client(&local_engine, "local").await;
    let mut expected = vec![];
    for v in VIEWS {
        let sql = format!("SELECT count(*) FROM yachay.{v}");
        expected.push(try_query(&local, &sql).await.unwrap().0[0][0].clone());
    }
    let small = try_query(
        &local,
        "SELECT count(*) FROM crm.public.orders WHERE customer_id < 100",
    )
    .await
    .unwrap()
    .0[0][0]
        .clone();

    // ADBC as an admin: statements on the cluster, a prepared statement
    // with a bound parameter, and the metadata calls BI tools make.
    let code = format!(
        r#"{PRELUDE}
c = adbc("boss", os.environ["BOSS_PW"])
scalar_free = c.cursor(); scalar_free.execute("SET quipu.execution = 'cluster'"); scalar_free.close()
for v in {VIEWS:?}:
    print(v + "=" + str(scalar(c, "SELECT count(*) FROM yachay." + v)))
print("bound=" + str(scalar(c, "SELECT count(*) FROM crm.public.orders WHERE customer_id < ?", (100,))))
# A bound parameter that makes a column non-nullable: the stream's schema
# is the one announced (ADBC refused the stream before).
print("cast_bound=" + repr([scalar(c, "SELECT CAST(? AS BIGINT) + 1", (41,)), scalar(c, "SELECT ? || 'x'", ("a",))]))
objs = c.adbc_get_objects(depth="tables").read_all().to_pylist()
print("catalogs=" + ",".join(sorted(o["catalog_name"] for o in objs)))
tables = [t["table_name"] for o in objs if o["catalog_name"] == "quipu" for s in o["catalog_db_schemas"] if s["db_schema_name"] == "yachay" for t in s["db_schema_tables"]]
print("views=" + ",".join(sorted(tables)))
print("vendor=" + c.adbc_get_info()["vendor_name"])
print("types=" + ",".join(c.adbc_get_table_types()))
"#
    );
    let (ok, out) = python(procs.flight, &code);
    assert!(ok, "{out}\n{}", procs.logs());
    for (v, want) in VIEWS.iter().zip(&expected) {
        assert_eq!(value(&out, v), want, "yachay.{v} over ADBC");
    }
    assert_eq!(value(&out, "bound"), small);
    assert_eq!(value(&out, "cast_bound"), "[42, 'ax']");
    assert_eq!(value(&out, "catalogs"), "crm,inventory,lake,pos,quipu");
    assert!(value(&out, "views").contains("customer_360"), "{out}");
    assert_eq!(value(&out, "vendor"), "Quipu");
    assert!(value(&out, "types").contains("VIEW"), "{out}");
    assert!(procs.executor_metric("quipu_rows_read_total{source=\"crm\"}") > 0.0);

    // ana reads the lake only; pyarrow.flight with forged and foreign
    // tickets, a wrong password, no token.
    let data = dir.path().to_str().unwrap();
    let code = format!(
        r#"{PRELUDE}
a = adbc("ana", os.environ["ANA_PW"])
print("lake=" + str(scalar(a, "SELECT count(*) FROM lake.public.reviews")))
print("crm=" + err(lambda: scalar(a, "SELECT count(*) FROM crm.public.customers")))
print("view=" + err(lambda: scalar(a, "SELECT count(*) FROM yachay.customer_360")))
objs = a.adbc_get_objects(depth="catalogs").read_all().to_pylist()
print("catalogs=" + ",".join(sorted(o["catalog_name"] for o in objs)))
bc, bopts = flight("boss", os.environ["BOSS_PW"])
ac, aopts = flight("ana", os.environ["ANA_PW"])
info = bc.get_flight_info(statement("SELECT count(*) AS n FROM crm.public.customers"), bopts)
ticket = info.endpoints[0].ticket
print("foreign=" + err(lambda: ac.do_get(ticket, aopts).read_all()))
print("mine=" + str(bc.do_get(ticket, bopts).read_all().column(0)[0].as_py()))
print("reused=" + err(lambda: bc.do_get(ticket, bopts).read_all()))
print("forged=" + err(lambda: bc.do_get(fl.Ticket(b"\x0a\x05hello"), bopts).read_all()))
print("garbage=" + err(lambda: bc.do_get(fl.Ticket(b"\xff\xfe garbage"), bopts).read_all()))
print("badpw=" + err(lambda: flight("boss", "wrong")))
print("unknown=" + err(lambda: flight("nobody", "wrong")))
print("notoken=" + err(lambda: fl.FlightClient(URL).get_flight_info(statement("SELECT 1"))))
print("alive=" + str(scalar(a, "SELECT 7")))
# A plain read of a many-file lake table: one endpoint per partition, read
# in any order; every row once; each ticket once and only by its owner.
print("set_endpoints=" + str(len(bc.get_flight_info(statement("SET datafusion.execution.target_partitions = 4"), bopts).endpoints)))
info = bc.get_flight_info(statement("SELECT order_id * 100 + line_no AS k FROM lake.public.sales_history"), bopts)
print("split_endpoints=" + str(len(info.endpoints)))
print("split_foreign=" + err(lambda: ac.do_get(info.endpoints[-1].ticket, aopts).read_all()))
ids = []
for e in reversed(info.endpoints):
    ids += bc.do_get(e.ticket, bopts).read_all().column(0).to_pylist()
print("split_rows=" + str(len(ids)) + " distinct=" + str(len(set(ids))))
print("split_reused=" + err(lambda: bc.do_get(info.endpoints[0].ticket, bopts).read_all()))
# Statements asked for and never read are capped per session.
pc, popts = flight("boss", os.environ["BOSS_PW"])
infos = [pc.get_flight_info(statement("SELECT 1"), popts) for _ in range(256)]
print("pending_over=" + err(lambda: pc.get_flight_info(statement("SELECT 2"), popts)))
pc.do_get(infos[0].endpoints[0].ticket, popts).read_all()
print("pending_after_read=" + str(pc.do_get(pc.get_flight_info(statement("SELECT 3"), popts).endpoints[0].ticket, popts).read_all().column(0)[0].as_py()))
with a.cursor() as cur:
    cur.execute("SELECT order_id FROM lake.public.sales_history")
    print("adbc_rows=" + str(cur.fetch_arrow_table().num_rows))
# Dropping a user ends the tokens it holds; others keep theirs.
import subprocess
subprocess.run([os.environ["QUIPU_BIN"], "--data-dir", {data:?}, "users", "drop", "ana"],
               check=True, capture_output=True)
print("dropped=" + err(lambda: ac.get_flight_info(statement("SELECT 1"), aopts)))
print("boss_after=" + str(bc.do_get(bc.get_flight_info(statement("SELECT 8"), bopts).endpoints[0].ticket, bopts).read_all().column(0)[0].as_py()))
"#
    );
    let (ok, out) = python(procs.flight, &code);
    assert!(ok, "{out}\n{}", procs.logs());
    assert_ne!(value(&out, "lake"), "0");
    assert!(value(&out, "crm").contains("crm"), "{out}");
    assert!(!value(&out, "crm").starts_with("none"), "{out}");
    assert!(
        value(&out, "view").contains("permission denied for source `crm`"),
        "{out}"
    );
    assert_eq!(value(&out, "catalogs"), "lake,quipu");
    assert!(value(&out, "foreign").contains("unknown ticket"), "{out}");
    assert_ne!(value(&out, "mine"), "0");
    assert!(value(&out, "reused").contains("unknown ticket"), "{out}");
    assert!(value(&out, "forged").contains("unknown ticket"), "{out}");
    assert!(!value(&out, "garbage").starts_with("none"), "{out}");
    assert!(value(&out, "badpw").contains("Unauthenticated"), "{out}");
    assert_eq!(
        value(&out, "badpw"),
        value(&out, "unknown"),
        "a wrong password and an unknown user must look the same"
    );
    assert!(value(&out, "notoken").contains("Unauthenticated"), "{out}");
    assert_eq!(value(&out, "alive"), "7");
    let history = try_query(&local, "SELECT count(*) FROM lake.public.sales_history")
        .await
        .unwrap()
        .0[0][0]
        .clone();
    assert_eq!(
        value(&out, "set_endpoints"),
        "0",
        "SET has no rows to fetch"
    );
    let endpoints: usize = value(&out, "split_endpoints").parse().unwrap();
    assert!(endpoints > 1, "one endpoint for a many-file read: {out}");
    assert!(
        value(&out, "split_foreign").contains("unknown ticket"),
        "{out}"
    );
    assert_eq!(
        value(&out, "split_rows"),
        format!("{history} distinct={history}"),
        "every row once over the endpoints"
    );
    assert!(
        value(&out, "split_reused").contains("unknown ticket"),
        "{out}"
    );
    assert_eq!(
        value(&out, "adbc_rows"),
        history,
        "ADBC reads every endpoint"
    );
    assert!(
        value(&out, "pending_over").contains("waiting for their DoGet"),
        "{out}"
    );
    assert_eq!(value(&out, "pending_after_read"), "3");
    assert!(
        value(&out, "dropped").contains("Unauthenticated")
            && value(&out, "dropped").contains("authenticate again"),
        "{out}"
    );
    assert_eq!(value(&out, "boss_after"), "8");
}

/// `quipu --server grpc://...` (and `quipu sql --url`): `users` and `catalog` commands run by the
/// server on its catalog (admins only), `sql` runs on the server as the
/// signed-in user with that user's grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_administers_a_running_server() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_boss(dir.path());
    let procs = Procs::start(dir.path(), 1);
    crate::pgwire::wait_port(procs.flight);
    let url = format!("grpc://127.0.0.1:{}", procs.flight);
    // The CLI runs in another folder: it must not touch a local catalog.
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = |user: &str, pw: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--server", url.as_str(), "--user", user];
        all.extend_from_slice(args);
        let mut vars = vec![("QUIPU_USER_PASSWORD", pw)];
        vars.extend_from_slice(env);
        quipu(elsewhere.path(), &all, &vars)
    };

    let run = remote(
        "boss",
        BOSS_PW,
        &["users", "add", "carl", "--grant", "lake"],
        &[("QUIPU_PASSWORD", "carl-pw-8Lt")],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, procs.logs());
    assert!(run.stdout.contains("user carl saved"), "{}", run.stdout);
    let run = remote("boss", BOSS_PW, &["users", "list"], &[]);
    assert!(
        run.stdout.contains("carl\tuser\treads lake"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("carl-pw-8Lt"));

    // carl reads the lake through the server, not crm, and is no admin.
    let reviews = local_scalar(dir.path(), "SELECT count(*) FROM lake.public.reviews").await;
    // `quipu sql --url` is the same as the global --server.
    let run = quipu(
        elsewhere.path(),
        &[
            "sql",
            "--url",
            &url,
            "--user",
            "carl",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM lake.public.reviews",
        ],
        &[("QUIPU_USER_PASSWORD", "carl-pw-8Lt")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), format!("n\n{reviews}"));
    let run = remote(
        "carl",
        "carl-pw-8Lt",
        &["sql", "SELECT count(*) FROM crm.public.customers"],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("crm"), "{}", run.stderr);
    let run = remote("carl", "carl-pw-8Lt", &["catalog", "list"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("only admins"), "{}", run.stderr);
    let run = remote("carl", "wrong", &["sql", "SELECT 1"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot sign in"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong"), "{}", run.stderr);

    // The admin changes the server's catalog: the file on the server
    // holds the change, and carl's next query sees it at once.
    let run = remote("boss", BOSS_PW, &["catalog", "describe", "lake"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("lake.public.reviews"), "{}", run.stdout);
    let run = remote(
        "boss",
        BOSS_PW,
        &["catalog", "drop", "lake.public.reviews"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dropped table"), "{}", run.stdout);
    let run = quipu(dir.path(), &["catalog", "list", "--tables"], &[]);
    assert!(!run.stdout.contains("reviews"), "{}", run.stdout);
    let run = remote(
        "carl",
        "carl-pw-8Lt",
        &["sql", "SELECT count(*) FROM lake.public.reviews"],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("reviews"), "{}", run.stderr);
    // Nothing was written where the CLI ran.
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none()
    );
}

/// Flight SQL over TLS from a configured certificate: ADBC, pyarrow.flight
/// and `quipu --server grpc+tls://` trust the test CA and get answers;
/// without the CA, or in plaintext, they are refused; a half-configured or
/// unreadable certificate stops the server with a sentence naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_configured_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::pgwire::test_certificates(certs.path());
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_boss(dir.path());
    let procs = Procs::start_with(
        dir.path(),
        0,
        &[
            "--flight-tls-cert",
            cert.to_str().unwrap(),
            "--flight-tls-key",
            key.to_str().unwrap(),
        ],
    );
    crate::pgwire::wait_port(procs.flight);
    let reviews = local_scalar(dir.path(), "SELECT count(*) FROM lake.public.reviews").await;

    let code = format!(
        r#"{PRELUDE}
from adbc_driver_flightsql import DatabaseOptions
CA = open(os.environ["CA"]).read()
TLS = "grpc+tls://127.0.0.1:" + os.environ["PORT"]
def adbc_tls(roots):
    kw = {{"username": "boss", "password": os.environ["BOSS_PW"]}}
    if roots:
        kw[DatabaseOptions.TLS_ROOT_CERTS.value] = roots
    return fs.connect(TLS, db_kwargs=kw, autocommit=True)
print("adbc=" + str(scalar(adbc_tls(CA), "SELECT count(*) FROM lake.public.reviews")))
print("adbc_no_ca=" + err(lambda: scalar(adbc_tls(None), "SELECT 1")))
c = fl.FlightClient(TLS, tls_root_certs=CA.encode())
opts = fl.FlightCallOptions(headers=[c.authenticate_basic_token(b"boss", os.environ["BOSS_PW"].encode())])
info = c.get_flight_info(statement("SELECT 41 + 1 AS n"), opts)
print("pyarrow=" + str(c.do_get(info.endpoints[0].ticket, opts).read_all().column(0)[0].as_py()))
print("plaintext=" + err(lambda: adbc("boss", os.environ["BOSS_PW"]).cursor().execute("SELECT 1")))
"#
    );
    let (ok, text) = python_with(procs.flight, &code, &[("CA", &ca)]);
    assert!(ok, "{text}\n{}", procs.logs());
    assert_eq!(value(&text, "adbc"), reviews);
    assert_eq!(value(&text, "pyarrow"), "42");
    assert!(value(&text, "adbc_no_ca").contains("certificate"), "{text}");
    assert_ne!(value(&text, "plaintext"), "none", "{text}");

    // The CLI trusts the CA given by --server-ca (or QUIPU_SERVER_CA).
    let url = format!("grpc+tls://127.0.0.1:{}", procs.flight);
    let elsewhere = tempfile::tempdir().unwrap();
    let cli = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--server", url.as_str(), "--user", "boss"];
        all.extend_from_slice(args);
        let mut vars = vec![("QUIPU_USER_PASSWORD", BOSS_PW)];
        vars.extend_from_slice(env);
        quipu(elsewhere.path(), &all, &vars)
    };
    let ca_arg = ca.to_str().unwrap();
    let run = cli(
        &[
            "--server-ca",
            ca_arg,
            "sql",
            "--format",
            "csv",
            "SELECT 7 AS n",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "n\n7");
    let run = cli(&["users", "list"], &[("QUIPU_SERVER_CA", ca_arg)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("boss"), "{}", run.stdout);
    let run = cli(&["sql", "SELECT 1"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    let plain = format!("grpc://127.0.0.1:{}", procs.flight);
    let run = quipu(
        elsewhere.path(),
        &["--server", &plain, "--user", "boss", "sql", "SELECT 1"],
        &[("QUIPU_USER_PASSWORD", BOSS_PW)],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error"), "{}", run.stderr);

    // Misconfigured TLS stops the server, naming what is wrong.
    let port = crate::servers::free_port().to_string();
    let http = crate::servers::free_port().to_string();
    let base = [
        "scheduler",
        "--port",
        &port,
        "--http-port",
        &http,
        "--pg-listen",
        "off",
        "--flight-listen",
        "127.0.0.1:0",
    ];
    let token = [("QUIPU_CLUSTER_TOKEN", "t")];
    let scratch = tempfile::tempdir().unwrap();
    let mut args = base.to_vec();
    args.extend(["--flight-tls-cert", cert.to_str().unwrap()]);
    let run = quipu(scratch.path(), &args, &token);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("flight_tls_key"), "{}", run.stderr);
    let mut args = base.to_vec();
    args.extend([
        "--flight-tls-cert",
        cert.to_str().unwrap(),
        "--flight-tls-key",
        "/nonexistent/flight-key.pem",
    ]);
    let run = quipu(scratch.path(), &args, &token);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/flight-key.pem"),
        "{}",
        run.stderr
    );
    // The key of another certificate does not fit.
    let mut args = base.to_vec();
    let ca_key = certs.path().join("ca.key");
    args.extend([
        "--flight-tls-cert",
        cert.to_str().unwrap(),
        "--flight-tls-key",
        ca_key.to_str().unwrap(),
    ]);
    let run = quipu(scratch.path(), &args, &token);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("usable certificate"), "{}", run.stderr);
}

/// The key ranges of one PostgreSQL scan read one snapshot: read over
/// Flight SQL one endpoint (range) at a time, with the table updated after
/// the first range and before the others, every range answers as of the
/// first; the next statement sees the update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_ranges_read_one_snapshot() {
    let y = yachay();
    // A database of its own: no other test sees the update.
    y.crm
        .psql("postgres", "DROP DATABASE IF EXISTS snapdb WITH (FORCE)");
    y.crm.psql("postgres", "CREATE DATABASE snapdb");
    y.crm.psql(
        "snapdb",
        "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL); \
         INSERT INTO t SELECT g, 'before' FROM generate_series(1, 3000) g",
    );
    let dir = tempfile::tempdir().unwrap();
    crate::views::add_pg_source_with(
        dir.path(),
        "snap",
        y.crm.port,
        "snapdb",
        &["partitions=3"],
        &[],
    );
    add_boss(dir.path());
    let procs = Procs::start(dir.path(), 0);
    crate::pgwire::wait_port(procs.flight);
    let code = format!(
        r#"{PRELUDE}
import psycopg
c, o = flight("boss", os.environ["BOSS_PW"])
info = c.get_flight_info(statement("SELECT id, v FROM snap.public.t"), o)
print("endpoints=" + str(len(info.endpoints)))
tables = [c.do_get(info.endpoints[0].ticket, o).read_all()]
with psycopg.connect(host="127.0.0.1", port={pg}, user="postgres", dbname="snapdb", autocommit=True) as pg:
    pg.execute("UPDATE t SET v = 'after'")
tables += [c.do_get(e.ticket, o).read_all() for e in info.endpoints[1:]]
print("rows=" + str(sum(t.num_rows for t in tables)))
print("values=" + ",".join(sorted(set(v for t in tables for v in t.column(1).to_pylist()))))
info = c.get_flight_info(statement("SELECT DISTINCT v FROM snap.public.t"), o)
print("now=" + ",".join(sorted(v for e in info.endpoints for v in c.do_get(e.ticket, o).read_all().column(0).to_pylist())))
"#,
        pg = y.crm.port
    );
    let (ok, out) = python(procs.flight, &code);
    assert!(ok, "{out}\n{}", procs.logs());
    assert_eq!(value(&out, "endpoints"), "3", "one endpoint per range");
    assert_eq!(value(&out, "rows"), "3000");
    assert_eq!(
        value(&out, "values"),
        "before",
        "every range reads the snapshot of the first"
    );
    assert_eq!(value(&out, "now"), "after");
    drop(procs);
    y.crm.psql("postgres", "DROP DATABASE snapdb WITH (FORCE)");
}

/// The front door's limits (issue 16, item 11): a cap on one user's token
/// sessions (the least recently used one goes), failed sign-ins slowed per
/// user name (unknown names as known ones), connections that never call
/// closed, old ones asked to close, and unused tokens expired with what
/// they held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_sign_ins_and_connections_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    add_boss(dir.path());
    let run = quipu(
        dir.path(),
        &["users", "add", "ana"],
        &[("QUIPU_PASSWORD", ANA_PW)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let procs = Procs::start_with(
        dir.path(),
        0,
        &[
            "--flight-max-sessions-per-user",
            "3",
            "--flight-session-idle-timeout",
            "8",
            "--flight-first-call-timeout",
            "2",
            "--flight-max-connection-age",
            "3",
        ],
    );
    crate::pgwire::wait_port(procs.flight);
    let http = procs.http.to_string();
    let code = format!(
        r#"{PRELUDE}
import socket, threading, time, urllib.request
def metric(name):
    body = urllib.request.urlopen("http://127.0.0.1:" + os.environ["HTTP_PORT"] + "/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines() if l.startswith(name + " ") or l.startswith(name + "{{"))
def probe(session):
    # A live token gets past authentication to the unknown ticket.
    c, o = session
    r = err(lambda: c.do_get(fl.Ticket(b"\x0a\x05hello"), o).read_all())
    return "live" if "unknown ticket" in r else r
# Four sign-ins as boss with a cap of three: the first is used again, so
# the second, least recently used, goes; ana's session does not count
# against boss's.
ana = flight("ana", os.environ["ANA_PW"])
boss = [flight("boss", os.environ["BOSS_PW"]) for _ in range(3)]
print("reused_first=" + probe(boss[0]))
boss.append(flight("boss", os.environ["BOSS_PW"]))
print("cap=" + ",".join(probe(s) if probe(s) == "live" else "gone" for s in boss))
print("ana=" + probe(ana))
print("sessions=" + str(metric("quipu_flight_sessions")))
print("evicted=" + str(metric('quipu_flight_sessions_closed_total{{reason="user_cap"}}')))
# Failed sign-ins: the same delays for an unknown name and a known one.
def attempt(user, pw):
    t = time.monotonic()
    r = err(lambda: flight(user, pw))
    return r, time.monotonic() - t
for name in ["nobody", "boss"]:
    times = [attempt(name, "wrong") for _ in range(3)]
    print(name + "_errors=" + "|".join(sorted(set(r.split(":")[0] for r, _ in times))))
    print(name + "_third=" + str(times[2][1]))
print("failures=" + str(metric("quipu_flight_login_failures_total")))
print("delayed=" + str(metric("quipu_flight_logins_delayed_total")))
# The right password still gets in (after the wait) and resets the count.
print("boss_ok=" + probe(flight("boss", os.environ["BOSS_PW"])))
attempt("boss", "wrong")
print("delayed_after_reset=" + str(metric("quipu_flight_logins_delayed_total")))
# A waiting sign-in does not hold up other clients.
for _ in range(2):
    attempt("nobody", "wrong")
order = []
slow = threading.Thread(target=lambda: (attempt("nobody", "wrong"), order.append("nobody")))
slow.start()
time.sleep(0.05)
probe(ana); order.append("ana")
slow.join()
print("order=" + ",".join(order))
# A connection that says nothing is closed; one older than the maximum age
# is asked to close, and its client reconnects with its token.
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
s.settimeout(30)
t = time.monotonic()
closed = False
try:
    # The server's HTTP/2 settings come first; then the close.
    while s.recv(1024):
        pass
    closed = True
except ConnectionResetError:
    closed = True
except socket.timeout:
    pass
print("silent_closed=" + str(closed) + " after=" + str(time.monotonic() - t))
print("silent_count=" + str(metric("quipu_flight_silent_connections_closed_total")))
fresh = flight("ana", os.environ["ANA_PW"])
print("fresh=" + probe(fresh))
time.sleep(4)
print("after_max_age=" + probe(fresh))
# Unused tokens expire (8 s) and are swept.
time.sleep(12)
print("expired=" + probe(fresh))
print("sessions_at_end=" + str(metric("quipu_flight_sessions")))
print("idle_expired=" + str(metric('quipu_flight_sessions_closed_total{{reason="idle"}}')))
"#
    );
    let (ok, out) = python_with(
        procs.flight,
        &code,
        &[("HTTP_PORT", std::path::Path::new(&http))],
    );
    assert!(ok, "{out}\n{}", procs.logs());
    assert_eq!(value(&out, "reused_first"), "live");
    assert_eq!(
        value(&out, "cap"),
        "live,gone,live,live",
        "at the cap the least recently used session goes: {out}"
    );
    assert_eq!(value(&out, "ana"), "live");
    assert_eq!(value(&out, "sessions"), "4.0", "three of boss, one of ana");
    assert_eq!(value(&out, "evicted"), "1.0");
    assert_eq!(value(&out, "nobody_errors"), "FlightUnauthenticatedError");
    assert_eq!(value(&out, "boss_errors"), "FlightUnauthenticatedError");
    for name in ["nobody", "boss"] {
        let third: f64 = value(&out, &format!("{name}_third")).parse().unwrap();
        // Two failures before it: it waited 200 ms (a lower bound only).
        assert!(
            third >= 0.15,
            "{name}'s third attempt was not slowed: {out}"
        );
    }
    assert_eq!(value(&out, "failures"), "6.0");
    assert_eq!(
        value(&out, "delayed"),
        "4.0",
        "the second and third attempts of each name waited: {out}"
    );
    assert_eq!(value(&out, "boss_ok"), "live");
    assert_eq!(
        value(&out, "delayed_after_reset"),
        "5.0",
        "boss's good password waited, the failure after it did not: {out}"
    );
    assert_eq!(value(&out, "order"), "ana,nobody", "{out}");
    assert!(
        value(&out, "silent_closed").starts_with("True"),
        "a silent connection was not closed: {out}"
    );
    let after: f64 = value(&out, "silent_closed")
        .split("after=")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(after >= 1.0, "closed before its first-call timeout: {out}");
    assert!(value(&out, "silent_count").parse::<f64>().unwrap() >= 1.0);
    assert_eq!(value(&out, "fresh"), "live");
    assert_eq!(value(&out, "after_max_age"), "live", "{out}");
    assert!(
        value(&out, "expired").contains("Unauthenticated"),
        "an unused token expires: {out}"
    );
    assert_eq!(value(&out, "sessions_at_end"), "0.0", "{out}");
    assert!(value(&out, "idle_expired").parse::<f64>().unwrap() >= 1.0);
}
