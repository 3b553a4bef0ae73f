//! The PostgreSQL front door, driven by real clients: `psql`, psycopg 3 and
//! SQLAlchemy (from the test venv), and raw sockets for malformed bytes.
//! The server is the `quipu scheduler` process of a loopback cluster with
//! one executor, over the live servers of the harness.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use quipu_scheduler::Engine;

use crate::cluster::Procs;
use crate::common::{client, quipu, try_query};
use crate::servers::{pg_bindir, venv, yachay};

pub(crate) const BOSS_PW: &str = "boss-pw-7Qz";
pub(crate) const ANA_PW: &str = "ana-pw-3Xk";

pub(crate) fn add_admin(dir: &Path) {
    let run = quipu(
        dir,
        &["users", "add", "boss", "--admin"],
        &[("QUIPU_PASSWORD", BOSS_PW)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `boss` (admin) and `ana` (granted the lake only).
pub(crate) fn add_users(dir: &Path) {
    add_admin(dir);
    let run = quipu(
        dir,
        &["users", "add", "ana", "--grant", "lake"],
        &[("QUIPU_PASSWORD", ANA_PW)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = quipu(dir, &["users", "list"], &[]);
    assert!(
        run.stdout.contains("ana\tuser\treads lake"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(ANA_PW), "{}", run.stdout);
}

/// A tokio-postgres client of the front door on `port`, signed in as the
/// admin `boss` (see [`add_admin`]) to database `db`.
pub(crate) async fn boss_client(
    port: u16,
    db: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        &format!("postgresql://boss:{BOSS_PW}@127.0.0.1:{port}/{db}?sslmode=disable"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    Ok(client)
}

pub(crate) fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The real `psql`, unaligned and tuples-only, stopping at the first error.
fn psql(port: u16, user: &str, password: &str, commands: &[&str]) -> Out {
    psql_in(port, user, password, "quipu", commands)
}

/// [`psql`] connected to another database.
pub(crate) fn psql_in(
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    commands: &[&str],
) -> Out {
    let mut cmd = Command::new(pg_bindir().join("psql"));
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            database,
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "20");
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd.output().expect("run psql");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Runs Python code in the test venv with `PORT` set; it prints its
/// findings as `key=value` lines.
fn python(port: u16, code: &str) -> Out {
    python_with(port, code, &[])
}

/// [`python`] with more environment variables.
pub(crate) fn python_with(port: u16, code: &str, env: &[(&str, &std::ffi::OsStr)]) -> Out {
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", code])
        .env("PORT", port.to_string())
        .env("BOSS_PW", BOSS_PW)
        .env("ANA_PW", ANA_PW)
        .envs(env.iter().copied())
        .output()
        .expect("run the venv's python");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

pub(crate) fn value<'a>(out: &'a Out, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in\n{}\n{}", out.stdout, out.stderr))
}

const PY_PRELUDE: &str = r#"
import os, threading, time, psycopg
PORT = os.environ["PORT"]
def connect(user, pw):
    return psycopg.connect(host="127.0.0.1", port=PORT, user=user, password=pw, dbname="quipu", autocommit=True, connect_timeout=20)
def one(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description is not None else None
def err(fn):
    try:
        fn()
        return "none", ""
    except psycopg.Error as e:
        return e.sqlstate or "-", str(e).strip().replace("\n", " ")
"#;

const BUSINESS_VIEWS: &[&str] = &[
    "customer_360",
    "inventory_live",
    "marketing_effectiveness",
    "sales_daily",
    "sales_weekly",
    "sales_monthly",
    "sales_forecast",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_query_through_psql_and_psycopg() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_users(dir.path());
    let procs = Procs::start(dir.path(), 1);
    wait_port(procs.pg);
    let local_engine = Engine::open(dir.path()).unwrap();
    let local = client(&local_engine, "local").await;
    let count = |sql: String| {
        let local = &local;
        async move { try_query(local, &sql).await.unwrap().0[0][0].clone() }
    };

    // psql: a cross-source count, the catalog commands analysts type.
    let customers = count("SELECT count(*) FROM crm.public.customers".into()).await;
    let out = psql(
        procs.pg,
        "boss",
        BOSS_PW,
        &[
            "SELECT count(*) FROM crm.public.customers",
            r"\l",
            r"\dn",
            r"\dv yachay.*",
        ],
    );
    assert!(out.ok, "{}\n{}", out.stderr, procs.logs());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], customers, "{}", out.stdout);

    // The time zone a client asks for as it connects holds as `SET
    // TimeZone` does: libpq's PGTZ sends the startup parameter `timezone`,
    // PGOPTIONS `-c TimeZone=...`. Both were ignored (UTC).
    for (var, value, zone, shown) in [
        (
            "PGTZ",
            "America/Lima",
            "America/Lima",
            "2024-01-01 07:00:00-05",
        ),
        (
            "PGOPTIONS",
            "-c TimeZone=Asia/Kolkata",
            "Asia/Kolkata",
            "2024-01-01 17:30:00+05:30",
        ),
    ] {
        let out = Command::new(pg_bindir().join("psql"))
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p"])
            .arg(procs.pg.to_string())
            .args(["-U", "boss", "-d", "quipu", "-c", "SHOW TimeZone", "-c"])
            .arg("SELECT TIMESTAMPTZ '2024-01-01 12:00:00+00'")
            .env("PGPASSWORD", BOSS_PW)
            .env(var, value)
            .output()
            .expect("run psql");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            vec![zone, shown],
            "{var}={value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every setting a client sends as it connects holds as its `SET` does
    // (they were ignored but the zone): `statement_timeout` acts, and a
    // bad value refuses the connection, as PostgreSQL's does.
    let with_options = |options: &str, sql: &[&str]| {
        let mut c = Command::new(pg_bindir().join("psql"));
        c.args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p"])
            .arg(procs.pg.to_string())
            .args(["-U", "boss", "-d", "quipu"]);
        for q in sql {
            c.args(["-c", q]);
        }
        c.env("PGPASSWORD", BOSS_PW)
            .env("PGOPTIONS", options)
            .env("PGAPPNAME", "ledger")
            .output()
            .expect("run psql")
    };
    let got = with_options(
        "-c statement_timeout=1500 -c search_path=sales",
        &[
            "SHOW statement_timeout",
            "SHOW search_path",
            "SHOW application_name",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stdout)
            .lines()
            .collect::<Vec<_>>(),
        vec!["1500ms", "sales", "ledger"],
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let got = with_options(
        "-c statement_timeout=50",
        &["SELECT count(*) FROM generate_series(1, 200000000) a(x) WHERE x % 7 = 3"],
    );
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success() && stderr.contains("canceling statement due to statement timeout"),
        "{stderr}"
    );
    let got = with_options("-c statement_timeout=soon", &["SELECT 1"]);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success()
            && stderr.contains("FATAL")
            && stderr.contains("invalid value for parameter \"statement_timeout\": \"soon\""),
        "{stderr}"
    );
    // Settings that change how values are written are refused where they
    // ask for what Quipu does not write (`SET DateStyle = 'German'` was
    // accepted and dates printed in ISO form all the same), and taken
    // where they ask for what it writes.
    let got = with_options(
        "-c DateStyle=ISO,DMY -c extra_float_digits=2",
        &[
            "SET IntervalStyle = postgres",
            "SET bytea_output = hex",
            "SHOW DateStyle",
            // Read day first, as the connection asked.
            "SELECT '05/01/2024'::date, (SELECT v::date FROM (VALUES ('1/2/03')) t(v))",
            "SET DateStyle TO DEFAULT",
            "SHOW DateStyle",
            "SELECT DATE '2024-01-31', 0.1::float8 + 0.2::float8, '05/01/2024'::date",
            "SET DateStyle = YMD",
            "SHOW DateStyle",
            "SELECT '05/01/24'::date",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stdout)
            .lines()
            .collect::<Vec<_>>(),
        vec![
            "SET",
            "SET",
            "ISO, DMY",
            "2024-01-05|2003-02-01",
            "SET",
            "ISO, MDY",
            "2024-01-31|0.30000000000000004|2024-05-01",
            "SET",
            "ISO, YMD",
            "2005-01-24",
        ],
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    for (set, refused) in [
        (
            "SET DateStyle = 'SQL, DMY'",
            "datestyle = SQL, DMY is not supported",
        ),
        (
            "SET DateStyle = German",
            "datestyle = German is not supported",
        ),
        // PostgreSQL's errors for what is no `DateStyle`.
        (
            "SET DateStyle = 'dmy, mdy'",
            "DETAIL:  Conflicting \"datestyle\" specifications.",
        ),
        (
            "SET DateStyle = 'iso dmy'",
            "DETAIL:  List syntax is invalid.",
        ),
        (
            "SET DateStyle = 'british'",
            "invalid value for parameter \"DateStyle\": \"british\"",
        ),
        (
            "SET IntervalStyle = iso_8601",
            "intervalstyle = iso_8601 is not supported",
        ),
        (
            "SET extra_float_digits = 0",
            "extra_float_digits = 0 is not supported",
        ),
        (
            "SET bytea_output = escape",
            "bytea_output = escape is not supported",
        ),
        (
            "SET standard_conforming_strings = off",
            "standard_conforming_strings = off is not supported",
        ),
        // A name PostgreSQL does not have (it said SET and did nothing).
        (
            "SET statment_timeout = '5s'",
            "unrecognized configuration parameter \"statment_timeout\"",
        ),
    ] {
        let got = with_options("", &[set, "SHOW DateStyle"]);
        let stderr = String::from_utf8_lossy(&got.stderr);
        assert!(stderr.contains(refused), "{set}: {stderr}");
        // The connection goes on with what it had.
        assert_eq!(
            String::from_utf8_lossy(&got.stdout).trim(),
            "ISO, MDY",
            "{set}"
        );
    }
    let got = with_options("-c foo=bar", &["SELECT 1"]);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success()
            && stderr.contains("FATAL")
            && stderr.contains("unrecognized configuration parameter \"foo\""),
        "{stderr}"
    );
    let got = with_options("-c DateStyle=German", &["SELECT 1"]);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success()
            && stderr.contains("FATAL")
            && stderr.contains("datestyle = German is not supported"),
        "{stderr}"
    );
    for name in [
        "crm|",
        "pos|",
        "inventory|",
        "lake|",
        "quipu|",
        "yachay|",
        "customer_360|",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(name) || l.contains(&format!("|{name}"))),
            "psql output lacks {name}:\n{}",
            out.stdout
        );
    }

    // psycopg: the business questions on the cluster, bound parameters
    // (extended protocol), per-connection settings.
    let mut expected = vec![];
    for v in BUSINESS_VIEWS {
        expected.push(count(format!("SELECT count(*) FROM yachay.{v}")).await);
    }
    let small =
        count("SELECT count(*) FROM crm.public.orders WHERE customer_id < 100".into()).await;
    let code = format!(
        r#"{PY_PRELUDE}
c = connect("boss", os.environ["BOSS_PW"])
one(c, "SET quipu.execution = 'cluster'")
print("execution=" + one(c, "SHOW quipu.execution")[0][-1])
for v in {views:?}:
    print(v + "=" + str(one(c, "SELECT count(*) FROM yachay." + v)[0][0]))
print("bound=" + str(one(c, "SELECT count(*) FROM crm.public.orders WHERE customer_id < %s", (100,))[0][0]))
print("quoted=" + str(one(c, "SELECT count(*) FROM crm.public.customers WHERE last_name = %s", ("O'Brien' OR 1=1 --",))[0][0]))
# A uuid.UUID and a Jsonb are sent declared uuid and jsonb (binary too),
# which Quipu reads as text; they failed to bind ("Cannot convert postgres
# type uuid to given rust type").
import uuid
from psycopg.types.json import Jsonb
u = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
for binary in (False, True):
    with c.cursor(binary=binary) as cur:
        cur.execute("SELECT upper(%s::text), length(%s::text)", (u, Jsonb({{"a": [1, 2]}})))
        print(f"uuid_{{binary}}=" + "|".join(str(x) for x in cur.fetchone()))
# Lists: psycopg sends a list of str untyped, as array text, which was cut
# at every comma ('{{"a,b"}}' was two elements, NULL the string "NULL",
# '{{}}' one empty string); a NULL element decides nothing, so an answer
# no element decides is NULL.
lists = [
    ("'a,b'::text = ANY(%s)", ["a,b"]),
    ("'x'::text <> ALL(%s)", ["y", None]),
    ("'NULL'::text = ANY(%s)", [None]),
    ("''::text = ANY(%s)", []),
    ("'q\"'::text = ANY(%s)", ['q"', "z"]),
    ("0 < ANY(%s)", [0, None]),
    ("0 >= ALL(%s)", [-1, 0]),
]
print("lists=" + "|".join(str(one(c, "SELECT " + q, (l,))[0][0]) for q, l in lists))
d = connect("boss", os.environ["BOSS_PW"])
one(c, "SET datafusion.execution.batch_size = 17")
one(c, "SET statement_timeout = '250ms'")
print("mine=" + one(c, "SHOW datafusion.execution.batch_size")[0][-1])
print("other=" + one(d, "SHOW datafusion.execution.batch_size")[0][-1])
print("timeout_other=" + one(d, "SHOW statement_timeout")[0][0])
"#,
        views = BUSINESS_VIEWS
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    assert_eq!(value(&out, "execution"), "cluster");
    for (v, want) in BUSINESS_VIEWS.iter().zip(&expected) {
        assert_eq!(value(&out, v), want, "yachay.{v} over psycopg");
    }
    assert_eq!(value(&out, "bound"), small);
    assert_eq!(value(&out, "quoted"), "0");
    for binary in ["False", "True"] {
        assert_eq!(
            value(&out, &format!("uuid_{binary}")),
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11|13"
        );
    }
    // PostgreSQL 15's answers.
    assert_eq!(value(&out, "lists"), "True|None|None|False|True|None|True");
    assert_eq!(value(&out, "mine"), "17");
    assert_ne!(value(&out, "other"), "17");
    assert_eq!(value(&out, "timeout_other"), "0");
    // The business questions ran on the executor, not in the scheduler.
    assert!(procs.executor_metric("quipu_rows_read_total{source=\"crm\"}") > 0.0);

    // Authentication: a wrong password and an unknown user look the same.
    let code = format!(
        r#"{PY_PRELUDE}
a = err(lambda: connect("boss", "not-the-password"))
b = err(lambda: connect("nobody", "not-the-password"))
print("wrong=" + a[1])
print("unknown=" + b[1])
# The same error but for the user name, which comes from the startup packet.
print("same=" + str(a[0] == b[0] and a[1].replace('"boss"', '"?"') == b[1].replace('"nobody"', '"?"')))
"#
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    // libpq reports startup errors by message only; tokio-postgres gives
    // the SQLSTATE.
    assert!(
        value(&out, "wrong").contains("password authentication failed for user \"boss\""),
        "{}",
        out.stdout
    );
    for user in ["boss", "nobody"] {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={user} password=wrong dbname=quipu",
            procs.pg
        );
        let err = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} logged in with a wrong password"));
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
            "{user}: {err}"
        );
        // Worded as PostgreSQL words it, with the startup packet's user
        // name (not SCRAM's empty one).
        assert_eq!(
            err.as_db_error().map(|e| e.message()),
            Some(format!("password authentication failed for user \"{user}\"").as_str()),
            "{user}: {err}"
        );
    }
    assert_eq!(value(&out, "same"), "True", "{}", out.stdout);
    // The salt a name gets does not tell whether it exists: stable across
    // attempts for a real user and for an unknown name alike (a fresh
    // random salt per attempt gave unknown names away).
    let salt = |user: &str| {
        let first = scram_server_first(procs.pg, user);
        let salt = first
            .split(',')
            .find_map(|a| a.strip_prefix("s="))
            .unwrap_or_else(|| panic!("no salt in {first}"))
            .to_string();
        assert!(first.contains(",i=4096"), "{first}");
        salt
    };
    let (boss1, boss2) = (salt("boss"), salt("boss"));
    let (nobody1, nobody2) = (salt("nobody"), salt("nobody"));
    assert_eq!(boss1, boss2);
    assert_eq!(nobody1, nobody2);
    assert_eq!(boss1.len(), nobody1.len());
    assert_ne!(salt("nobody"), salt("somebody"));

    // Authorisation: ana reads the lake only, and does not see crm.
    let code = format!(
        r#"{PY_PRELUDE}
c = connect("ana", os.environ["ANA_PW"])
print("lake=" + str(one(c, "SELECT count(*) FROM lake.public.reviews")[0][0]))
print("crm=" + "|".join(err(lambda: one(c, "SELECT count(*) FROM crm.public.customers"))))
print("view=" + "|".join(err(lambda: one(c, "SELECT count(*) FROM yachay.customer_360"))))
print("ddl=" + err(lambda: one(c, "CREATE VIEW yachay.mine AS SELECT 1"))[0])
print("catalogs=" + ",".join(sorted(r[0] for r in one(c, "SELECT DISTINCT table_catalog FROM information_schema.tables"))))
print("alive=" + str(one(c, "SELECT 1")[0][0]))
"#
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        value(&out, "lake"),
        count("SELECT count(*) FROM lake.public.reviews".into()).await
    );
    assert!(value(&out, "crm").contains("crm"), "{}", out.stdout);
    assert!(!value(&out, "crm").starts_with("none"), "{}", out.stdout);
    assert!(
        value(&out, "view").starts_with("42501|") && value(&out, "view").contains("crm"),
        "{}",
        out.stdout
    );
    assert_eq!(value(&out, "ddl"), "42501");
    assert_eq!(value(&out, "catalogs"), "lake,quipu");
    assert_eq!(value(&out, "alive"), "1");
    let out = psql(procs.pg, "ana", ANA_PW, &[r"\l"]);
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("lake|"), "{}", out.stdout);
    assert!(!out.stdout.contains("crm"), "{}", out.stdout);

    // The PostgreSQL JDBC driver's DatabaseMetaData (DBeaver, Metabase).
    let jar = std::env::var("QUIPU_JDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".to_string());
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/JdbcProbe.java");
    let out = Command::new("java")
        .arg("-cp")
        .arg(&jar)
        .arg(&probe)
        .env("PORT", procs.pg.to_string())
        .env("USER_NAME", "boss")
        .env("USER_PW", BOSS_PW)
        .env("SCHEMA", "yachay")
        .env("TABLE", "customer_360")
        .env(
            "QUERY",
            "SELECT count(*) FROM crm.public.orders WHERE customer_id < ?",
        )
        .env("PARAM", "100")
        .output()
        .expect("run java (tests/run.sh installs a JDK and the PostgreSQL JDBC driver)");
    let jdbc = Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    };
    assert!(jdbc.ok, "{}\n{}", jdbc.stdout, jdbc.stderr);
    assert!(
        value(&jdbc, "product").starts_with("PostgreSQL 16"),
        "{}",
        jdbc.stdout
    );
    assert!(
        value(&jdbc, "schemas").contains("yachay"),
        "{}",
        jdbc.stdout
    );
    assert!(
        value(&jdbc, "tables").contains("customer_360:VIEW"),
        "{}",
        jdbc.stdout
    );
    assert!(
        value(&jdbc, "columns").contains("customer_id"),
        "{}",
        jdbc.stdout
    );
    assert_eq!(value(&jdbc, "query"), small);

    // SQLAlchemy reflection, as BI tools and notebooks do it.
    let code = format!(
        r#"{PY_PRELUDE}
import sqlalchemy
e = sqlalchemy.create_engine(f"postgresql+psycopg://boss:{{os.environ['BOSS_PW']}}@127.0.0.1:{{PORT}}/quipu")
i = sqlalchemy.inspect(e)
print("schemas=" + ",".join(sorted(set(i.get_schema_names()))))
print("views=" + ",".join(sorted(i.get_view_names(schema="yachay"))))
print("columns=" + ",".join(c["name"] for c in i.get_columns("customer_360", schema="yachay")))
"#
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(value(&out, "schemas").contains("yachay"), "{}", out.stdout);
    assert!(
        value(&out, "views").contains("customer_360"),
        "{}",
        out.stdout
    );
    assert!(
        value(&out, "columns").contains("customer_id"),
        "{}",
        out.stdout
    );
}

/// A statement that would run for minutes on the executor.
const ENDLESS: &str = "SELECT count(*) FROM lake.public.sales_history a JOIN lake.public.sales_history b ON a.qty < b.qty + a.line_no";

/// A statement that would run for minutes on the crm server itself (one
/// remote query); its text carries a marker to find it there.
const SOURCE_ENDLESS: &str = "SELECT count(*) FROM crm.public.orders a CROSS JOIN crm.public.orders b CROSS JOIN crm.public.orders c WHERE a.status <> 'quipu-cancel-probe'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_timeout_and_connection_limit() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_users(dir.path());
    let procs = Procs::start_with(dir.path(), 1, &["--pg-max-connections", "3"]);
    wait_port(procs.pg);
    let code = format!(
        r#"{PY_PRELUDE}
c = connect("boss", os.environ["BOSS_PW"])
one(c, "SET quipu.execution = 'cluster'")
threading.Timer(1.5, c.cancel).start()
print("cancel=" + err(lambda: one(c, "{ENDLESS}"))[0])
print("after_cancel=" + str(one(c, "SELECT 41 + 1")[0][0]))
one(c, "SET statement_timeout = 1000")
print("timeout=" + "|".join(err(lambda: one(c, "{ENDLESS}"))))
one(c, "SET statement_timeout = 0")
print("after_timeout=" + str(one(c, "SELECT 2")[0][0]))
# Planning is covered too: a 999-term chain plans for about 2 s in a debug
# build (the longest the statement limits allow), on both protocols.
chain = " OR ".join("v = %d" % i for i in range(999))
heavy = "SELECT count(*) FROM range(10) t(v) WHERE " + chain
simple = psycopg.ClientCursor(c)
one(c, "SET quipu.execution = 'local'")
one(c, "SET statement_timeout = 300")
print("plan_timeout_simple=" + err(lambda: simple.execute(heavy))[0])
print("plan_timeout_extended=" + err(lambda: one(c, heavy + " AND %s = 1", (1,)))[0])
one(c, "SET statement_timeout = 0")
threading.Timer(0.3, c.cancel).start()
print("plan_cancel_simple=" + err(lambda: simple.execute(heavy))[0])
simple.execute(heavy)
print("plan_whole=" + str(simple.fetchone()[0]))
# In-process, a cancel stops the remote query on the source too.
one(c, "SET quipu.execution = 'local'")
threading.Timer(1.5, c.cancel).start()
print("src_cancel=" + err(lambda: one(c, "{SOURCE_ENDLESS}"))[0])
deadline = time.time() + 15
while True:
    with psycopg.connect(host="127.0.0.1", port={crm}, user="postgres", dbname="crm", autocommit=True) as pc:
        running = pc.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%quipu-cancel-probe%' AND pid <> pg_backend_pid()").fetchone()[0]
    if running == 0 or time.time() > deadline:
        break
    time.sleep(0.2)
print("src_running=" + str(running))
d = connect("boss", os.environ["BOSS_PW"])
e = connect("boss", os.environ["BOSS_PW"])
print("over_limit=" + err(lambda: connect("boss", os.environ["BOSS_PW"]))[1])
e.close()
time.sleep(0.5)
f = connect("boss", os.environ["BOSS_PW"])
print("after_close=" + str(one(f, "SELECT 3")[0][0]))
"#,
        crm = y.crm.port
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    assert_eq!(value(&out, "cancel"), "57014");
    assert_eq!(value(&out, "src_cancel"), "57014");
    assert_eq!(
        value(&out, "src_running"),
        "0",
        "the cancelled remote query still runs on the source"
    );
    assert_eq!(value(&out, "after_cancel"), "42");
    // The cancelled statement's Ballista job is cancelled on the
    // scheduler too (engine.rs, ClusterStream). Not asserted: it showed
    // within milliseconds in isolated and loaded runs, but once not at
    // all in a full-suite run, cause unknown; printed for the record.
    eprintln!(
        "cancel lines: {:?}",
        procs
            .scheduler_log()
            .lines()
            .filter(|l| l.contains("ancel"))
            .collect::<Vec<_>>()
    );
    assert!(
        value(&out, "timeout").starts_with("57014|") && value(&out, "timeout").contains("timeout"),
        "{}",
        out.stdout
    );
    assert_eq!(value(&out, "after_timeout"), "2");
    for case in [
        "plan_timeout_simple",
        "plan_timeout_extended",
        "plan_cancel_simple",
    ] {
        assert_eq!(value(&out, case), "57014", "{case}: {}", out.stdout);
    }
    assert_eq!(value(&out, "plan_whole"), "10");
    assert!(
        value(&out, "over_limit").contains("too many clients"),
        "{}",
        out.stdout
    );
    assert_eq!(value(&out, "after_close"), "3");
}

/// Sends raw bytes and reads what comes back until the server closes the
/// connection or stays silent.
fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Starts a SCRAM-SHA-256 exchange as `user` and returns the server-first
/// message (`r=...,s=<salt>,i=<iterations>`).
fn scram_server_first(port: u16, user: &str) -> String {
    fn read_message(s: &mut TcpStream) -> (u8, Vec<u8>) {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).unwrap();
        (head[0], body)
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&startup_packet(user)).unwrap();
    let (kind, body) = read_message(&mut s);
    assert_eq!(
        (kind, &body[..4]),
        (b'R', &[0, 0, 0, 10][..]),
        "AuthenticationSASL"
    );
    let data = b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
    let mut msg = b"SCRAM-SHA-256\0".to_vec();
    msg.extend((data.len() as u32).to_be_bytes());
    msg.extend(data);
    let mut packet = vec![b'p'];
    packet.extend(((msg.len() + 4) as u32).to_be_bytes());
    packet.extend(msg);
    s.write_all(&packet).unwrap();
    let (kind, body) = read_message(&mut s);
    assert_eq!(
        (kind, &body[..4]),
        (b'R', &[0, 0, 0, 11][..]),
        "AuthenticationSASLContinue"
    );
    String::from_utf8(body[4..].to_vec()).unwrap()
}

fn startup_packet(user: &str) -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for (k, v) in [("user", user), ("database", "quipu")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_wire_bytes_leave_the_server_serving() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_users(dir.path());
    let procs = Procs::start(dir.path(), 1);
    wait_port(procs.pg);
    // A session that stays open through all of it.
    let code = format!(
        r#"{PY_PRELUDE}
import sys
c = connect("boss", os.environ["BOSS_PW"])
print("ready=1", flush=True)
sys.stdin.readline()
print("still=" + str(one(c, "SELECT count(*) FROM lake.public.reviews")[0][0]), flush=True)
"#
    );
    let mut keeper = Command::new(venv().join("bin/python"))
        .args(["-c", &code])
        .env("PORT", procs.pg.to_string())
        .env("BOSS_PW", BOSS_PW)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut keeper_out = std::io::BufReader::new(keeper.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut keeper_out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready=1");

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("startup length 0", vec![0, 0, 0, 0]),
        ("startup length 7", vec![0, 0, 0, 7, 0, 3, 0]),
        ("startup length 2^30", {
            let mut v = (1u32 << 30).to_be_bytes().to_vec();
            v.extend([0, 3, 0, 0]);
            v
        }),
        (
            "unknown message type first",
            b"Zgarbage-bytes\x00\x00\x00".to_vec(),
        ),
        ("SSLRequest then garbage", {
            let mut v = vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
            v.extend(b"\xff\xfe\xfd garbage that is not a startup packet");
            v
        }),
        ("truncated startup", startup_packet("boss")[..9].to_vec()),
    ];
    // A startup followed by an unknown message type and a truncated frame.
    let mut after_startup = startup_packet("boss");
    after_startup.extend(b"\x7f\x00\x00\x00\x08abcd");
    after_startup.extend(b"Q\x00\x00\x10\x00SELECT");
    cases.push((
        "unknown type and truncated query after startup",
        after_startup,
    ));
    // A Bind whose parameter-format count runs past its frame: pgwire's
    // decoder panics on it (found by the pg_frontend fuzz target, kept in
    // fuzz/regressions); the connection must end, not the server.
    let mut bad_bind = startup_packet("boss");
    bad_bind.extend(b"B\x00\x00\x00\x0c\x00\x00\x7f\xff\x00\x00\x00\x00");
    cases.push(("Bind with a format count past its frame", bad_bind));
    for (what, bytes) in &cases {
        let reply = raw_exchange(procs.pg, bytes);
        // Whatever came back is an error, an SSL refusal or an auth
        // request, never rows.
        assert!(
            !reply.contains(&b'D'),
            "{what}: unexpected reply {:?}",
            String::from_utf8_lossy(&reply)
        );
        let out = psql(procs.pg, "boss", BOSS_PW, &["SELECT 1"]);
        assert!(
            out.ok && out.stdout.trim() == "1",
            "after {what}: {}\n{}",
            out.stderr,
            procs.logs()
        );
    }

    // The decoder's panic is counted and logged as one line by Quipu's
    // panic hook, not the default hook's "panicked at" report (issue 16:
    // malformed frames before login flooded the log with backtraces).
    let (_, metrics) = crate::cluster::http_get(procs.http, "/metrics", None);
    let panics: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("quipu_connections_closed_total{reason=\"decoder_panic\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(panics >= 1, "{metrics}");
    let log = procs.scheduler_log();
    let panic_lines = log.lines().filter(|l| l.contains("panic:")).count();
    assert!(panic_lines as u64 >= panics, "{log}");
    assert!(!log.contains("panicked at"), "{log}");

    // An empty query and absurd nesting get errors, not a crash.
    let nested = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let out = psql(procs.pg, "boss", BOSS_PW, &[";", "SELECT 5"]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "5");
    let out = psql(procs.pg, "boss", BOSS_PW, &[&nested]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("levels of parentheses"),
        "{}",
        out.stderr
    );
    // 20,000 OR-ed terms (250 KB) overflowed the stack and killed the
    // server (issue 16): now a 54001 naming the limit, and it lives on.
    let terms: Vec<String> = (0..20_000).map(|i| format!("order_id = {i}")).collect();
    let ors = format!(
        "SELECT count(*) FROM lake.public.orders WHERE {}",
        terms.join(" OR ")
    );
    // Too long for one argument: psql reads it from a file.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &ors).unwrap();
    let include = format!("\\i {}", file.path().display());
    let out = psql(procs.pg, "boss", BOSS_PW, &[&include]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("statement too complex") && out.stderr.contains("operators"),
        "{}",
        out.stderr
    );
    let out = psql(procs.pg, "boss", BOSS_PW, &["SELEC broken"]);
    assert!(!out.ok);
    assert!(out.stderr.contains("ERROR"), "{}", out.stderr);

    // The session opened before all of this still works.
    keeper.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    keeper_out.read_to_string(&mut rest).unwrap();
    assert!(keeper.wait().unwrap().success(), "{rest}");
    assert!(rest.starts_with("still="), "{rest}");
    assert!(rest.trim() != "still=0", "{rest}");
}

#[test]
fn front_door_refuses_unsafe_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let token = [("QUIPU_CLUSTER_TOKEN", "t")];
    let port = crate::servers::free_port().to_string();
    let http = crate::servers::free_port().to_string();
    let base = [
        "scheduler",
        "--port",
        &port,
        "--http-port",
        &http,
        "--flight-listen",
        "off",
    ];
    // Plaintext on a non-loopback address.
    let mut args = base.to_vec();
    args.extend(["--pg-listen", "0.0.0.0:0"]);
    let run = quipu(dir.path(), &args, &token);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a loopback address"),
        "{}",
        run.stderr
    );
    // TLS configured with a missing key: fails closed.
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let mut args = base.to_vec();
    args.extend([
        "--pg-listen",
        "127.0.0.1:0",
        "--pg-tls-cert",
        cert.to_str().unwrap(),
        "--pg-tls-key",
        "/nonexistent/key.pem",
    ]);
    let run = quipu(dir.path(), &args, &token);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("TLS"), "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/key.pem"),
        "{}",
        run.stderr
    );
    // A listen address that is not one.
    let mut args = base.to_vec();
    args.extend(["--pg-listen", "localhost"]);
    let run = quipu(dir.path(), &args, &token);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pg_listen"), "{}", run.stderr);
}

/// A server certificate for 127.0.0.1 (IP SAN, as rustls and gRPC clients
/// check) signed by a throwaway CA, made by openssl in `dir`: (CA
/// certificate, server certificate, server key).
pub(crate) fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let st = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            st.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let key = ["-newkey", "rsa:2048", "-nodes"];
    openssl(
        &[
            &["req", "-x509", "-days", "1"][..],
            &key,
            &["-subj", "/CN=Quipu test CA"],
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &key,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = test_certificates(dir.path());
    let data = tempfile::tempdir().unwrap();
    add_admin(data.path());
    let procs = Procs::start_with(
        data.path(),
        0,
        &[
            "--pg-tls-cert",
            cert.to_str().unwrap(),
            "--pg-tls-key",
            key.to_str().unwrap(),
        ],
    );
    wait_port(procs.pg);
    let code = format!(
        r#"{PY_PRELUDE}
c = psycopg.connect(host="127.0.0.1", port=PORT, user="boss", password=os.environ["BOSS_PW"], dbname="quipu", sslmode="require")
print("ssl=" + str(c.pgconn.ssl_in_use))
print("one=" + str(one(c, "SELECT 1")[0][0]))
"#
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    assert_eq!(value(&out, "ssl"), "True");
    assert_eq!(value(&out, "one"), "1");
}

/// 32 clients at once, psycopg over the PostgreSQL wire and ADBC over
/// Flight SQL, each asking two business questions: every answer equals
/// the in-process one and no client below the connection limit (16
/// PostgreSQL connections here) is refused; one more PostgreSQL client
/// gets SQLSTATE 53300 at once. Then pgbench with a custom SELECT script,
/// in the simple and the prepared (extended, bound `$1`) protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_mixed_clients_and_pgbench() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_users(dir.path());
    let procs = Procs::start_with(dir.path(), 1, &["--pg-max-connections", "16"]);
    wait_port(procs.pg);
    wait_port(procs.flight);
    let local_engine = Engine::open(dir.path()).unwrap();
    let local = client(&local_engine, "local").await;
    let mut expected = vec![];
    for v in BUSINESS_VIEWS {
        let sql = format!("SELECT count(*) FROM yachay.{v}");
        expected.push(format!(
            "{v}:{}",
            try_query(&local, &sql).await.unwrap().0[0][0]
        ));
    }
    let code = format!(
        r#"{PY_PRELUDE}
import adbc_driver_flightsql.dbapi as fs
EXPECTED = dict(kv.split(":") for kv in os.environ["EXPECTED"].split(","))
VIEWS = sorted(EXPECTED)
def adbc():
    return fs.connect("grpc://127.0.0.1:" + os.environ["FLIGHT"],
                      db_kwargs={{"username": "boss", "password": os.environ["BOSS_PW"]}}, autocommit=True)
results, failures = [], []
lock = threading.Lock()
connected = threading.Barrier(33)
checked = threading.Barrier(33)
def client(i):
    kind = "pg" if i % 2 == 0 else "adbc"
    try:
        conn = connect("boss", os.environ["BOSS_PW"]) if kind == "pg" else adbc()
    except Exception as e:
        with lock:
            failures.append(f"{{kind}} {{i}} refused: {{e}}")
        connected.wait(); checked.wait()
        return
    connected.wait()
    checked.wait()
    try:
        for v in (VIEWS[i % len(VIEWS)], VIEWS[(i + 3) % len(VIEWS)]):
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM yachay.{{v}}")
                got = str(cur.fetchall()[0][0])
            with lock:
                results.append((kind, v, got == EXPECTED[v], got))
    except Exception as e:
        with lock:
            failures.append(f"{{kind}} {{i}}: {{e}}")
    finally:
        conn.close()
threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
for t in threads:
    t.start()
def raw_code():
    # libpq hides the SQLSTATE of a refused connection: read it off the wire.
    import socket, struct
    s = socket.create_connection(("127.0.0.1", int(PORT)), timeout=10)
    params = b"user\x00boss\x00database\x00quipu\x00\x00"
    s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    data = b""
    try:
        while b"C53300" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return "53300" if b"C53300" in data else repr(data[:80])
connected.wait()
print("over_limit=" + err(lambda: connect("boss", os.environ["BOSS_PW"]))[1])
print("over_code=" + raw_code())
checked.wait()
for t in threads:
    t.join()
print("answers=" + str(len(results)))
print("wrong=" + ";".join(f"{{k}} {{v}}={{g}}" for k, v, ok, g in results if not ok))
print("kinds=" + ",".join(sorted(set(k for k, _, _, _ in results))))
print("failures=" + ";".join(failures))
"#
    );
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", &code])
        .env("PORT", procs.pg.to_string())
        .env("FLIGHT", procs.flight.to_string())
        .env("BOSS_PW", BOSS_PW)
        .env("ANA_PW", ANA_PW)
        .env("EXPECTED", expected.join(","))
        .output()
        .expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", procs.logs());
    let out = Out {
        ok: true,
        stdout,
        stderr,
    };
    assert_eq!(value(&out, "failures"), "", "{}", procs.logs());
    assert_eq!(value(&out, "wrong"), "");
    assert_eq!(value(&out, "answers"), "64");
    assert_eq!(value(&out, "kinds"), "adbc,pg");
    assert!(
        value(&out, "over_limit").contains("too many clients"),
        "{}",
        out.stdout
    );
    assert_eq!(value(&out, "over_code"), "53300");

    // pgbench, custom script: a random bound per transaction.
    let script = dir.path().join("bench.sql");
    std::fs::write(
        &script,
        "\\set q random(1, 5)\nSELECT count(*) FROM lake.public.sales_history WHERE qty > :q;\n",
    )
    .unwrap();
    for mode in ["simple", "prepared"] {
        let run = Command::new(pg_bindir().join("pgbench"))
            .args(["-n", "-M", mode, "-c", "4", "-j", "2", "-t", "10"])
            .arg("-f")
            .arg(&script)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &procs.pg.to_string(),
                "-U",
                "boss",
                "quipu",
            ])
            .env("PGPASSWORD", BOSS_PW)
            .output()
            .expect("run pgbench");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(run.status.success(), "pgbench -M {mode}:\n{text}");
        assert!(
            text.contains("number of transactions actually processed: 40/40"),
            "pgbench -M {mode}:\n{text}"
        );
        assert!(
            text.contains("number of failed transactions: 0"),
            "pgbench -M {mode}:\n{text}"
        );
    }
}

/// psql's tab completion, typed into a real psql on a pseudo-terminal:
/// the catalog queries psql sends on TAB (pg_class, pg_namespace,
/// quote_ident, pg_table_is_visible, ...) answer with Quipu's names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_completes_names_with_tab() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_admin(dir.path());
    let procs = Procs::start(dir.path(), 0);
    wait_port(procs.pg);
    let code = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(os.environ["PSQL"], ["psql", "-X", "-h", "127.0.0.1", "-p", os.environ["PORT"], "-U", "boss", "-d", "quipu"])
def read(secs):
    out, end = b"", time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            end = max(end, time.time() + 0.5)
    return out.decode(errors="replace")
def until(text, secs=60):
    out, end = "", time.time() + secs
    while text not in out and time.time() < end:
        out += read(0.5)
    return out
until("quipu=")
def complete(typed, wanted):
    # Wait for what should be offered (each TAB is a catalog query, which
    # takes seconds on a loaded machine), then clear the line and let
    # psql settle so late output cannot leak into the next completion.
    os.write(fd, typed.encode() + b"\t\t")
    shown, end = "", time.time() + 60
    while time.time() < end and not all(w in shown.replace("\r", "").replace("\n", " ") for w in wanted):
        shown += read(0.5)
    os.write(fd, b"\x15")  # Ctrl-U: clear the line
    read(1)
    return shown.replace("\r", "").replace("\n", " ").replace("\x07", "")
for name, typed, wanted in [
        ("view", "SELECT count(*) FROM yachay.customer_3", ["customer_360"]),
        ("schema", "SELECT * FROM yach", ["yachay."]),
        ("describe", "\\d yachay.sales_w", ["sales_weekly"]),
        ("tables", "SELECT * FROM yachay.sales_",
         ["sales_daily", "sales_weekly", "sales_monthly", "sales_forecast"])]:
    print(name + "=" + complete(typed, wanted))
os.write(fd, b"\\q\n")
os.waitpid(pid, 0)
"#;
    let psql = pg_bindir().join("psql");
    let pw = std::ffi::OsString::from(BOSS_PW);
    let out = python_with(
        procs.pg,
        code,
        &[("PSQL", psql.as_os_str()), ("PGPASSWORD", pw.as_os_str())],
    );
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    for (key, want) in [
        ("view", "customer_360"),
        ("schema", "yachay."),
        ("describe", "sales_weekly"),
    ] {
        assert!(value(&out, key).contains(want), "{key}: {}", out.stdout);
    }
    let tables = value(&out, "tables");
    for v in [
        "sales_daily",
        "sales_weekly",
        "sales_monthly",
        "sales_forecast",
    ] {
        assert!(tables.contains(v), "{v} not offered: {}", out.stdout);
    }
}

/// Issue 16: a slot was taken at TCP accept, so silent sockets locked every
/// user out with 53300. Connections that have not logged in now hold
/// startup slots of their own, are closed when those are full, and are
/// closed after the startup timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_do_not_take_the_users_slots() {
    let (_lake, data) = crate::common::lake_catalog_by_cli();
    add_admin(&data);
    let procs = Procs::start_with(
        &data,
        1,
        &[
            "--pg-max-connections",
            "3",
            "--pg-max-startup-connections",
            "4",
            "--pg-startup-timeout",
            "3",
        ],
    );
    wait_port(procs.pg);
    let code = format!(
        r#"{PY_PRELUDE}
import socket
def silent():
    s = socket.create_connection(("127.0.0.1", int(PORT)))
    s.settimeout(20)
    return s
def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True
# Three silent sockets, then three logins: before the fix the sockets held
# all three slots and every login got 53300.
quiet = [silent() for _ in range(3)]
users = [connect("boss", os.environ["BOSS_PW"]) for _ in range(3)]
print("logins=" + ",".join(str(one(u, "SELECT 1")[0][0]) for u in users))
print("fourth=" + err(lambda: connect("boss", os.environ["BOSS_PW"]))[1])
for u in users:
    u.close()
# Beyond the four startup slots a socket is closed at once.
more = [silent() for _ in range(5)]
print("closed_at_once=" + str(sum(closed_within(s, 2) for s in more)))
# After the startup timeout every silent socket is closed.
print("closed_later=" + str(sum(closed_within(s, 20) for s in quiet)))
time.sleep(0.5)
print("after=" + str(one(connect("boss", os.environ["BOSS_PW"]), "SELECT 7")[0][0]))
"#
    );
    let out = python(procs.pg, &code);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    assert_eq!(value(&out, "logins"), "1,1,1");
    assert!(
        value(&out, "fourth").contains("too many clients already"),
        "{}",
        out.stdout
    );
    // 3 quiet + 5 more on 4 startup slots: at least 4 of the 5 refused.
    let at_once: usize = value(&out, "closed_at_once").parse().unwrap();
    assert!(at_once >= 4, "{}", out.stdout);
    assert_eq!(value(&out, "closed_later"), "3");
    assert_eq!(value(&out, "after"), "7");
    let (_, metrics) = crate::cluster::http_get(procs.http, "/metrics", None);
    assert!(
        metrics.contains("quipu_connections_closed_total{reason=\"startup_timeout\"}")
            && metrics.contains("quipu_connections_closed_total{reason=\"startup_slots_full\"}"),
        "{metrics}"
    );
}
