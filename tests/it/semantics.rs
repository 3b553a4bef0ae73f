//! PostgreSQL semantics of what analysts type (issue 22): each expression
//! is evaluated by Quipu over a PostgreSQL source (pushed down), over the
//! same source with pushdown off (evaluated by Quipu), and by PostgreSQL
//! itself; the three answers must agree.

use crate::common::{client, query};
use crate::servers::yachay;
use quipu_scheduler::Engine;

/// Texts and SIMILAR TO patterns, edge cases included (regex characters
/// that SIMILAR TO treats as literal, escapes, bracket expressions,
/// newlines, unicode).
const TEXTS: &[&str] = &[
    "dark green",
    "green",
    "blue sky",
    "abc",
    "a.c",
    "a%c",
    "a_c",
    "aab",
    "ab",
    "aaa",
    "line\nbreak",
    "$5",
    "a^b",
    "ñandú",
    "",
    "ABC",
    "x]y",
    "back\\slash",
];
const PATTERNS: &[&str] = &[
    "%(green|blue)%",
    ".*green.*",
    "_b_",
    "a.c",
    "a\\%c",
    "a\\_c",
    "a*",
    "a+b",
    "a{2}b",
    "[a-c]%",
    "[%]%",
    "line%",
    "$5",
    "a^b",
    "ñ%",
    "%",
    "",
    "(ab|aa)%",
    "%[]]%",
    "back\\\\slash",
    "ABC",
];

fn quote(s: &str) -> String {
    format!(
        "E'{}'",
        s.replace('\\', "\\\\")
            .replace('\'', "''")
            .replace('\n', "\\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_to_means_what_postgresql_means() {
    let y = yachay();
    let pg = &y.crm;
    pg.psql("postgres", "DROP DATABASE IF EXISTS sem");
    pg.psql("postgres", "CREATE DATABASE sem");
    let rows: Vec<String> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| format!("({i}, {})", quote(t)))
        .collect();
    pg.psql(
        "sem",
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t VALUES {}",
            rows.join(", ")
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    crate::views::add_pg_source(dir.path(), "sem", pg.port, "sem");
    crate::views::add_pg_source_with(
        dir.path(),
        "sem_raw",
        pg.port,
        "sem",
        &["pushdown=off"],
        &[],
    );
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let mut failures = vec![];
    for p in PATTERNS {
        for negated in ["", "NOT "] {
            let filter = format!("s {negated}SIMILAR TO {}", quote(p));
            let want = pg
                .psql(
                    "sem",
                    &format!("SELECT string_agg(id::text, ',' ORDER BY id) FROM t WHERE {filter}"),
                )
                .trim()
                .to_string();
            for src in ["sem", "sem_raw"] {
                let (got, _) = query(
                    &c,
                    &format!(
                        "SELECT string_agg(CAST(id AS TEXT), ',' ORDER BY id) FROM {src}.public.t WHERE {filter}"
                    ),
                )
                .await;
                let got = got[0][0].replace("NULL", "");
                if got != want {
                    failures.push(format!(
                        "{src}: {filter}: PostgreSQL {want:?}, Quipu {got:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    engine.session().close().await;
}

/// A stored view's SQL gets the PostgreSQL meaning a statement gets
/// (`connectors/src/syntax.rs`): here an `IN` subquery whose NULL matters,
/// which DataFusion's mark join answers FALSE (0 rows; PostgreSQL counts
/// 95, the differential test's regression `in_subquery_is_null`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_means_what_its_statement_means() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let body = "SELECT count(*) AS n FROM crm.public.customers c WHERE c.customer_id < 100 \
                AND (c.loyalty_card_id IN (SELECT t.loyalty_card_id FROM pos.public.transactions t \
                WHERE t.txn_id < 100)) IS NULL";
    c.sql("CREATE SCHEMA semantics").await.unwrap();
    c.sql(&format!("CREATE VIEW semantics.nulls_in AS {body}"))
        .await
        .unwrap();
    let (direct, _) = query(&c, body).await;
    let (through_view, _) = query(&c, "SELECT n FROM semantics.nulls_in").await;
    assert_eq!(direct, vec![vec!["95".to_string()]]);
    assert_eq!(through_view, direct);
}

/// Integer arithmetic that overflows is an error, as in PostgreSQL, in
/// every operator and on both execution paths. DataFusion 55 wraps:
/// `qty + 9223372036854775807` summed to a negative number and a filter on
/// it kept the wrong rows, silently (`connectors/src/planning/
/// checked_arithmetic.rs`). On the cluster the check must survive the trip
/// to the executors, whose plans come from protobuf (`CheckedEngine`,
/// `CheckedBinary`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_overflow_is_an_error_as_in_postgresql() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let big = "CAST(qty AS bigint) + 9223372036854775807";
    let overflowing = [
        format!("SELECT max({big}) FROM lake.public.sales_history"),
        format!("SELECT count(*) FROM lake.public.sales_history WHERE {big} < 0"),
        format!("SELECT {big}, count(*) FROM lake.public.sales_history GROUP BY 1"),
        "SELECT sum(CAST(qty AS bigint) * 9223372036854775807 - 1) FROM lake.public.sales_history"
            .to_string(),
        "SELECT count(*) FROM lake.public.sales_history a JOIN lake.public.sales_history b \
         ON a.sku = b.sku AND CAST(a.qty AS bigint) * 9223372036854775807 > b.qty"
            .to_string(),
        // Arithmetic DataFusion merges into the Parquet scan's projection
        // (a computed column of the select list, a window's argument moved
        // below the window): it wrapped on the cluster, where the scan's
        // projection reached the executors through protobuf without the
        // overflow mark (`connectors/src/planning/checked_expr.rs`).
        format!("SELECT {big} FROM lake.public.sales_history"),
        format!("SELECT max({big}) OVER () FROM lake.public.sales_history"),
    ];
    for mode in ["local", "cluster"] {
        let c = client(&engine, mode).await;
        for sql in &overflowing {
            let err = crate::common::try_query(&c, sql)
                .await
                .map(|(rows, _)| rows.len())
                .expect_err(&format!("{mode}: {sql}: an overflow cannot answer"));
            assert!(err.contains("Overflow"), "{mode}: {sql}: {err}");
        }
        // The same operators in range answer, and answer right.
        let (rows, _) = query(
            &c,
            "SELECT max(CAST(qty AS bigint) + 9223372036854775000) - 9223372036854775000, \
             max(qty) FROM lake.public.sales_history",
        )
        .await;
        assert_eq!(rows[0][0], rows[0][1], "{mode}");
        // Constants overflow at planning, with PostgreSQL's words.
        for (sql, words) in [
            ("SELECT 9223372036854775807 + 1", "bigint out of range"),
            ("SELECT 2147483647::int * 2::int", "integer out of range"),
            (
                "SELECT (-32768)::smallint - 1::smallint",
                "smallint out of range",
            ),
        ] {
            let err = crate::common::try_query(&c, sql)
                .await
                .expect_err(&format!("{mode}: {sql}: an overflow cannot answer"));
            assert!(err.contains(words), "{mode}: {sql}: {err}");
        }
    }
    engine.session().close().await;
}
