//! Attacks on the trust boundaries (issue 16): literals that reach a
//! PostgreSQL source, as SQL text and as bound parameters, through every
//! pushdown shape.
//!
//! The property test generates strings made of the pieces that break naive
//! quoting (quotes, backslashes, dollar quotes, comment markers, semicolons,
//! NUL, unicode, long runs) and checks, for each, that Quipu's answer equals
//! PostgreSQL's own answer to the same query with the string bound as a
//! parameter, and that the source's statement log holds exactly the reads
//! Quipu planned (no extra statement, nothing from a table outside the
//! catalog). `QUIPU_PROPERTY_STRINGS=N` sets how many strings (the test
//! command runs a short set; docs/testing.md has the long run).

use std::sync::Arc;

use datafusion::common::{ParamValues, ScalarValue};
use futures::TryStreamExt;
use quipu_scheduler::{ClientSession, Engine};

use crate::common::{client, query, rows_of};
use crate::servers::PgServer;
use crate::views::add_pg_source;

/// A small deterministic generator (xorshift64*), so a failing string can
/// be found again from its seed and index.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces of hostile strings.
const PIECES: &[&str] = &[
    "'",
    "''",
    "\\",
    "\\'",
    "\\\\'",
    "'')",
    "$$",
    "$q$",
    "--",
    "/*",
    "*/",
    ";",
    "\"",
    "E'",
    "%",
    "_",
    " ",
    "\n",
    "\t",
    "é",
    "ñandú",
    "💥",
    "\u{202e}",
    "x",
    "O'Brien",
    ") UNION ALL SELECT secret FROM hidden.payroll --",
    "'; SELECT pg_sleep(5); --",
    ") TO STDOUT (FORMAT binary) --",
    "\\x00",
    "\0",
];

pub(crate) fn hostile_string(rng: &mut Rng) -> String {
    let mut s = String::new();
    match rng.below(10) {
        // A long run of one piece.
        0 => {
            let p = PIECES[rng.below(PIECES.len())];
            for _ in 0..(50 + rng.below(400)) {
                s.push_str(p);
            }
        }
        // The empty string.
        1 if rng.below(4) == 0 => {}
        _ => {
            for _ in 0..(1 + rng.below(8)) {
                s.push_str(PIECES[rng.below(PIECES.len())]);
            }
        }
    }
    s
}

/// A string as SQL text: standard-conforming, quotes doubled (backslash is
/// an ordinary character). `None` for NUL, which SQL text cannot spell.
fn sql_text(s: &str) -> Option<String> {
    (!s.contains('\0')).then(|| format!("'{}'", s.replace('\'', "''")))
}

/// The query shapes, each with `{}` for the literal: the filter path, a
/// whole-query aggregate, a same-source join, and a literal inside an
/// aggregate's expression.
const SHAPES: &[(&str, &str)] = &[
    (
        "SELECT count(*) AS n FROM p.public.t WHERE s = {}",
        "SELECT count(*) AS n FROM t WHERE s = $1::text",
    ),
    (
        "SELECT g, count(*) AS n FROM p.public.t WHERE s = {} OR s IS NULL GROUP BY g",
        "SELECT g, count(*) AS n FROM t WHERE s = $1::text OR s IS NULL GROUP BY g",
    ),
    (
        "SELECT count(*) AS n FROM p.public.t a JOIN p.public.u b ON a.id = b.id WHERE a.s = {} OR b.s <> {}",
        "SELECT count(*) AS n FROM t a JOIN u b ON a.id = b.id WHERE a.s = $1::text OR b.s <> $1::text",
    ),
    (
        "SELECT g, sum(CASE WHEN s = {} THEN 1 ELSE 0 END) AS n FROM p.public.t GROUP BY g",
        "SELECT g, sum(CASE WHEN s = $1::text THEN 1 ELSE 0 END) AS n FROM t GROUP BY g",
    ),
];

fn with_literal(shape: &str, lit: &str) -> String {
    shape.replace("{}", lit)
}

/// The same shape with `$1` for the literal, for a bound parameter.
fn with_param(shape: &str) -> String {
    shape.replace("{}", "$1")
}

async fn quipu_rows(c: &ClientSession, sql: &str, param: Option<&str>) -> Vec<Vec<String>> {
    let mut statements = c.parse(sql).unwrap();
    let mut plan = c.plan(statements.remove(0)).await.unwrap();
    if let Some(p) = param {
        plan = plan
            .with_param_values(ParamValues::List(vec![
                ScalarValue::Utf8(Some(p.to_string())).into(),
            ]))
            .unwrap();
    }
    let out = c
        .run_plan(plan)
        .await
        .unwrap_or_else(|e| panic!("{sql} with {param:?}: {e}"));
    let batches: Vec<_> = out
        .stream
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{sql} with {param:?}: {e}"));
    let mut rows = rows_of(&batches);
    rows.sort();
    rows
}

async fn pg_rows(pg: &tokio_postgres::Client, sql: &str, s: &str) -> Vec<Vec<String>> {
    let rows = pg.query(sql, &[&s]).await.unwrap();
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let t = r.columns()[i].type_().clone();
                    match t {
                        tokio_postgres::types::Type::INT4 => {
                            r.get::<_, Option<i32>>(i).map(|v| v.to_string())
                        }
                        _ => r.get::<_, Option<i64>>(i).map(|v| v.to_string()),
                    }
                    .unwrap_or_else(|| "NULL".to_string())
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// One PostgreSQL server with a table of hostile strings (half of the
/// generated ones, so equality filters match), a table outside the catalog
/// (`hidden.payroll`) and every statement logged with its application.
struct Target {
    server: PgServer,
    dir: tempfile::TempDir,
    pg: tokio_postgres::Client,
}

async fn target(strings: &[String]) -> Target {
    let server = PgServer::start();
    server.psql("postgres", "CREATE DATABASE prop");
    server.psql(
        "prop",
        "CREATE TABLE t (id int PRIMARY KEY, g int NOT NULL, s text); \
         CREATE TABLE u (id int PRIMARY KEY, s text); \
         CREATE SCHEMA hidden; CREATE TABLE hidden.payroll (secret text); \
         INSERT INTO hidden.payroll VALUES ('CANARY-payroll-7f3');",
    );
    let (pg, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=prop",
            server.port
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut id = 0i32;
    for (i, s) in strings.iter().enumerate() {
        if s.contains('\0') || i % 2 == 1 {
            continue;
        }
        id += 1;
        pg.execute(
            "INSERT INTO t VALUES ($1, $2, $3)",
            &[&id, &(id % 3), &s.as_str()],
        )
        .await
        .unwrap();
        if id % 3 == 0 {
            pg.execute("INSERT INTO u VALUES ($1, $2)", &[&id, &s.as_str()])
                .await
                .unwrap();
        }
    }
    pg.execute("INSERT INTO t VALUES (-1, 0, NULL)", &[])
        .await
        .unwrap();
    server.psql("postgres", "ALTER SYSTEM SET log_line_prefix = '%a|'");
    server.psql("postgres", "SELECT pg_reload_conf()");
    server.psql("postgres", "ALTER DATABASE prop SET log_statement = 'all'");
    let dir = tempfile::tempdir().unwrap();
    add_pg_source(dir.path(), "p", server.port, "prop");
    Target { server, dir, pg }
}

/// SQL text with the contents of its string literals removed, lexed as
/// PostgreSQL does (`E'...'` with backslash escapes, `'...'` with doubled
/// quotes), so what is left is what the server runs as code.
fn outside_literals(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let escape = (chars[i] == 'E' || chars[i] == 'e') && chars.get(i + 1) == Some(&'\'');
        if chars[i] == '\'' || escape {
            i += if escape { 2 } else { 1 };
            loop {
                match chars.get(i) {
                    None => break,
                    Some('\\') if escape => i += 2,
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            out.push_str("<literal>");
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Statements Quipu's connections ran on the source (application `quipu`).
fn quipu_statements(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with("quipu|") && (l.contains("statement: ") || l.contains("execute")))
        .map(str::to_string)
        .collect()
}

/// How many remote reads a query's plan makes.
async fn reads(c: &ClientSession, sql: &str) -> usize {
    let (rows, _) = query(c, &format!("EXPLAIN {sql}")).await;
    let plan = rows
        .into_iter()
        .find(|r| r[0] == "physical_plan")
        .map(|r| r[1].clone())
        .unwrap();
    plan.lines().filter(|l| l.contains("PgScanExec")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literals_reach_postgres_sources_only_as_literals() {
    let n: usize = crate::common::env_number("QUIPU_PROPERTY_STRINGS", 240);
    let seed: u64 = crate::common::env_number("QUIPU_PROPERTY_SEED", 16);
    let mut rng = Rng::new(seed);
    let strings: Vec<String> = (0..n).map(|_| hostile_string(&mut rng)).collect();
    let t = target(&strings).await;
    let engine: Arc<Engine> = Engine::open(t.dir.path()).unwrap();
    let c = client(&engine, "local").await;

    // Every shape but the plain filter is sent as one remote query through
    // the unparser, the path that was injectable.
    for (i, (shape, _)) in SHAPES.iter().enumerate() {
        let sql = with_literal(shape, "'x'");
        let plan_reads = reads(&c, &sql).await;
        assert!(plan_reads >= 1, "{sql}");
        if i > 0 {
            let (rows, _) = query(&c, &format!("EXPLAIN {sql}")).await;
            let plan = &rows.iter().find(|r| r[0] == "physical_plan").unwrap()[1];
            assert!(
                plan.contains("GROUP BY") || plan.contains("JOIN"),
                "shape {i} is not pushed whole: {plan}"
            );
        }
    }
    let log_before =
        quipu_statements(&std::fs::read_to_string(t.server.log_path()).unwrap_or_default()).len();

    let mut expected_reads = 0;
    let mut checked = 0;
    // Long runs rotate the shapes; the short run takes every shape.
    let shapes_of = |i: usize| -> Vec<usize> {
        if n > 1000 {
            vec![i % SHAPES.len()]
        } else {
            (0..SHAPES.len()).collect()
        }
    };
    for (i, s) in strings.iter().enumerate() {
        if s.contains('\0') {
            continue;
        }
        for k in shapes_of(i) {
            let (shape, pg_sql) = SHAPES[k];
            let expected = pg_rows(&t.pg, pg_sql, s).await;
            let got_param = quipu_rows(&c, &with_param(shape), Some(s)).await;
            assert_eq!(
                got_param, expected,
                "bound parameter, shape {k}, string #{i} (seed {seed}) {s:?}"
            );
            let lit = sql_text(s).unwrap();
            let got_text = quipu_rows(&c, &with_literal(shape, &lit), None).await;
            assert_eq!(
                got_text, expected,
                "SQL text, shape {k}, string #{i} (seed {seed}) {s:?}"
            );
            // Names with a backslash are not pushed inside one remote
            // query (`remote_sql::ident_ok`): count this query's own reads.
            expected_reads += 2 * reads(&c, &with_literal(shape, &lit)).await;
            checked += 1;
        }
    }
    let log = std::fs::read_to_string(t.server.log_path()).unwrap();
    let statements = quipu_statements(&log);
    let ran = &statements[log_before..];
    for line in ran {
        let code = outside_literals(line);
        assert!(
            !code.contains("hidden") && !code.contains("pg_sleep") && !code.contains("payroll"),
            "a literal escaped into the remote SQL: {line}"
        );
    }
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("quipu|") && l.contains("ERROR"))
        .take(5)
        .collect();
    assert!(
        errors.is_empty(),
        "the source refused a pushed query:\n{}",
        errors.join("\n")
    );
    // Exactly the planned reads: one statement per remote scan, no more;
    // besides them only the planner's statistics lookup, which takes the
    // table's name as bound parameters.
    let (copies, others): (Vec<&String>, Vec<&String>) =
        ran.iter().partition(|l| l.contains(": COPY (SELECT "));
    assert_eq!(copies.len(), expected_reads, "reads on the source");
    for l in others {
        assert!(
            l.contains("FROM pg_class c JOIN pg_namespace n")
                && l.contains("WHERE n.nspname = $1 AND c.relname = $2"),
            "an unexpected statement on the source: {l}"
        );
    }

    // NUL: PostgreSQL text cannot hold it, so it is never sent; nothing
    // equals it, whatever the shape (issue 16: it answered or failed
    // depending on the query's shape).
    for (i, s) in strings.iter().enumerate().filter(|(_, s)| s.contains('\0')) {
        for k in shapes_of(i) {
            let shape = SHAPES[k].0;
            let got = quipu_rows(&c, &with_param(shape), Some(s)).await;
            let none = quipu_rows(&c, &with_param(shape), Some("\u{1}no such\u{1}")).await;
            assert_eq!(got, none, "NUL, shape {k}, string #{i} {s:?}");
        }
    }
    let log = std::fs::read_to_string(t.server.log_path()).unwrap();
    assert!(!log.contains("0x00"), "a NUL reached the source");
    assert!(checked > n / 2, "{checked} of {n} strings checked");
    eprintln!(
        "property: {n} strings (seed {seed}), {checked} string-shape pairs checked, {} remote statements",
        ran.len()
    );
    engine.session().close().await;
}

#[test]
fn queries_spill_or_fail_within_the_memory_pool() {
    let (_dir, data) = crate::common::lake_catalog_by_cli();
    // One million groups out of a 4 M-row cross join: with a 32 MB pool the
    // aggregate must spill to answer (issue 16: no pool, nothing spilled,
    // and the process was killed).
    let sql = "SELECT count(*) AS groups, sum(n) AS rows FROM (\
               SELECT a.order_id, b.order_id % 500 AS k, count(*) AS n \
               FROM lake.public.orders a CROSS JOIN lake.public.orders b GROUP BY 1, 2) g";
    let run = crate::common::quipu(
        &data,
        &["sql", "--format", "csv", sql],
        &[("QUIPU_MEMORY_LIMIT", "32M")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = crate::common::ORDERS * crate::common::ORDERS;
    assert_eq!(
        run.stdout.lines().last().unwrap(),
        format!("{},{rows}", crate::common::ORDERS * 500)
    );
    // What cannot spill (a hash join's build side) fails the query with a
    // message naming the pool's consumers, and the process exits cleanly.
    let run = crate::common::quipu(
        &data,
        &[
            "sql",
            "SELECT count(*) FROM lake.public.orders a JOIN lake.public.orders b \
             ON a.customer_id = b.customer_id",
        ],
        &[("QUIPU_MEMORY_LIMIT", "4K")],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.to_lowercase().contains("resources exhausted"),
        "{}",
        run.stderr
    );
    // A limit that is not a size is refused with one sentence.
    let run = crate::common::quipu(
        &data,
        &["sql", "SELECT 1"],
        &[("QUIPU_MEMORY_LIMIT", "lots")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("QUIPU_MEMORY_LIMIT: 'lots' is not a memory size"),
        "{}",
        run.stderr
    );
}

/// Issue 16: `information_schema.views` showed the SQL of views over
/// sources the user is not granted. Issue 18: what a client lists, it can
/// select; such views are not listed at all (through another view too),
/// and reading them by name is refused, naming the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_definitions_are_shown_only_to_who_may_read_the_view() {
    let env = crate::common::lake_env().await;
    let mut options = std::collections::BTreeMap::new();
    options.insert(
        "url".to_string(),
        format!("file://{}", env.lake_dir().display()),
    );
    let second =
        quipu_catalog::SourceDef::new("vault", quipu_catalog::SourceKind::Lake, options).unwrap();
    env.engine.session().add_source(&second).await.unwrap();
    let admin = env.engine.client();
    for sql in [
        "CREATE SCHEMA shop",
        "CREATE VIEW shop.open_view AS SELECT count(*) AS n FROM lake.public.orders WHERE channel = 'web'",
        "CREATE VIEW shop.vault_view AS SELECT count(*) AS n FROM vault.public.orders WHERE channel = 'secret-marker-41'",
        "CREATE VIEW shop.over_vault AS SELECT n FROM shop.vault_view",
    ] {
        admin.sql(sql).await.unwrap();
    }
    let defs = "SELECT table_name, coalesce(definition, '<hidden>') FROM information_schema.views \
                WHERE table_schema = 'shop' ORDER BY table_name";
    let (rows, _) = query(&admin, defs).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r[1] != "<hidden>"), "{rows:?}");

    let user = env
        .engine
        .client_for(quipu_connectors::Access::only(["lake".to_string()]));
    let (rows, _) = query(&user, defs).await;
    let shown: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1] != "<hidden>"))
        .collect();
    assert_eq!(shown, vec![("open_view", true)], "{rows:?}");
    let (tables, _) = query(
        &user,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop'",
    )
    .await;
    assert_eq!(tables, vec![vec!["open_view".to_string()]]);
    assert!(
        rows.iter().all(|r| !r[1].contains("secret-marker-41")),
        "{rows:?}"
    );
    // Reading them is still refused, directly and through the other view.
    for v in ["shop.vault_view", "shop.over_vault"] {
        let err = crate::common::try_query(&user, &format!("SELECT * FROM {v}"))
            .await
            .unwrap_err();
        assert!(err.contains("permission denied"), "{v}: {err}");
    }
    let (rows, _) = query(&user, "SELECT n FROM shop.open_view").await;
    assert_eq!(rows.len(), 1);
    env.engine.session().close().await;
}
