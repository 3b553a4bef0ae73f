//! Issue 18: the clients analysts and BI tools use, in their current
//! releases (pinned in `deploy/lib/prereqs.sh`), driving their metadata
//! surface against the PostgreSQL front door of a `quipu scheduler`:
//! psql's `\d` family, SQLAlchemy 2.1's whole Inspector with psycopg 3 and
//! psycopg2, pandas, asyncpg and the PostgreSQL JDBC driver's
//! `DatabaseMetaData` (tests/java/JdbcSurface.java), connected to a
//! source's database as DBeaver and Metabase connect, and DuckDB attaching
//! it as a PostgreSQL database.

use std::path::Path;
use std::process::Command;

use quipu_scheduler::Engine;

use crate::cluster::Procs;
use crate::common::{client, try_query};
use crate::pgwire::{ANA_PW, BOSS_PW, Out, add_users, psql_in, python_with, value, wait_port};
use crate::servers::yachay;

fn python(port: u16, code: &str) -> Out {
    python_with(port, code, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_list_and_read_the_database_they_connect_to() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    add_users(dir.path());
    let procs = Procs::start(dir.path(), 1);
    wait_port(procs.pg);
    let engine = Engine::open(dir.path()).unwrap();
    let local = client(&engine, "local").await;
    let rows = |sql: &'static str| {
        let local = &local;
        async move { try_query(local, sql).await.unwrap().0 }
    };
    let reviews = rows("SELECT count(*) FROM lake.public.reviews").await[0][0].clone();
    let first_ids: Vec<String> =
        rows("SELECT review_id FROM lake.public.reviews ORDER BY 1 LIMIT 3")
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();

    // psql connected to `lake`: what `\dt` lists is what `schema.table`
    // reads; the connected database is the default catalog.
    let copied = tempfile::NamedTempFile::new().unwrap();
    let copy = format!(
        r"\copy (SELECT review_id FROM public.reviews ORDER BY 1 LIMIT 3) TO '{}'",
        copied.path().display()
    );
    let csv = tempfile::NamedTempFile::new().unwrap();
    let copy_csv = format!(
        r"\copy public.reviews (review_id, sku) TO '{}' WITH (FORMAT csv, HEADER true)",
        csv.path().display()
    );
    let out = psql_in(
        procs.pg,
        "boss",
        BOSS_PW,
        "lake",
        &[
            "SELECT current_database()",
            "SELECT count(*) FROM public.reviews",
            r"\dt",
            r"\dn",
            r"\d public.reviews",
            r"\dv",
            r"\dm",
            r"\di",
            r"\dT",
            r"\df",
            r"\du",
            r"\dp",
            &copy,
            &copy_csv,
        ],
    );
    assert!(out.ok, "{}\n{}", out.stderr, procs.logs());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "lake", "{}", out.stdout);
    assert_eq!(lines[1], reviews, "{}", out.stdout);
    for listed in [
        "public|reviews|table|",
        "public|sales_history|table|",
        "marketing|fb_ads|table|",
        "review_id|bigint|",
        // \du: Quipu's users, admins as superusers.
        "boss|Superuser|",
        "ana||",
        // \dp: no access privileges, column privileges or policies.
        "public|reviews|table|||",
        "marketing|fb_ads|table|||",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(listed)),
            "psql lacks {listed}:\n{}",
            out.stdout
        );
    }
    // Only the connected database's relations and schemas, each once.
    assert!(!out.stdout.contains("customers"), "{}", out.stdout);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("public|")).count(),
        // \dt and \dp: clickstream, reviews, sales_history; \dn: public.
        7,
        "{}",
        out.stdout
    );
    let file = std::fs::read_to_string(copied.path()).unwrap();
    assert_eq!(file.lines().collect::<Vec<_>>(), first_ids);
    let file = std::fs::read_to_string(csv.path()).unwrap();
    assert_eq!(file.lines().next(), Some("review_id,sku"));
    assert_eq!(file.lines().count(), reviews.parse::<usize>().unwrap() + 1);
    assert!(
        out.stdout.contains(&format!("COPY {reviews}\n")),
        "{}",
        out.stdout
    );

    // `postgres` is the documented alias of `quipu`, where the views are.
    let out = psql_in(
        procs.pg,
        "boss",
        BOSS_PW,
        "postgres",
        &["SELECT current_database()", r"\dv yachay.*"],
    );
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.starts_with("quipu\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("yachay|customer_360|view|"),
        "{}",
        out.stdout
    );
    // A database that is not there, or not granted, is refused at login
    // as PostgreSQL refuses it; ana's granted one works.
    for (user, pw, db) in [("boss", BOSS_PW, "nope"), ("ana", ANA_PW, "crm")] {
        let out = psql_in(procs.pg, user, pw, db, &["SELECT 1"]);
        assert!(!out.ok, "{user} connected to {db}: {}", out.stdout);
        assert!(
            out.stderr
                .contains(&format!("FATAL:  database \"{db}\" does not exist")),
            "{}",
            out.stderr
        );
    }
    let out = psql_in(
        procs.pg,
        "ana",
        ANA_PW,
        "lake",
        &["SELECT count(*) FROM public.reviews"],
    );
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), reviews);

    // A PostgreSQL source's primary key, and a MongoDB collection's
    // (`_id`), as psql shows PostgreSQL's: the index in `\d` and `\di`.
    for (db, table, key) in [
        ("crm", "order_items", "order_id, line_no"),
        ("inventory", "products", "_id"),
    ] {
        let out = psql_in(
            procs.pg,
            "boss",
            BOSS_PW,
            db,
            &[
                r"\pset tuples_only off",
                &format!(r"\d public.{table}"),
                r"\di",
            ],
        );
        assert!(out.ok, "{db}: {}\n{}", out.stderr, procs.logs());
        assert!(
            out.stdout
                .contains(&format!("\"{table}_pkey\" PRIMARY KEY, btree ({key})")),
            "{db}: {}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout.lines().any(|l| {
                l.starts_with(&format!("public|{table}_pkey|index|"))
                    && l.ends_with(&format!("|{table}"))
            }),
            "{db}: {}",
            out.stdout
        );
    }

    // psql's \d+ (its `ARRAY(SELECT ... FROM unnest(reloptions))`) on a
    // lake table.
    let out = psql_in(procs.pg, "boss", BOSS_PW, "lake", &[r"\d+ public.reviews"]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        out.stdout
            .lines()
            .map(|l| l.split('|').take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [
            "review_id bigint",
            "sku text",
            "customer_id bigint",
            "rating bigint",
            "body text",
            "ts text"
        ],
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("review_id|bigint||||plain|"),
        "{}",
        out.stdout
    );

    // Materialized views (caches) are PostgreSQL's: relkind 'm', listed by
    // \dm and pg_matviews, not by \dt; each user sees those over sources
    // they read, as views.
    let out = psql_in(
        procs.pg,
        "boss",
        BOSS_PW,
        "quipu",
        &[
            "CREATE MATERIALIZED VIEW yachay.top_skus AS \
             SELECT sku, count(*) AS n FROM lake.public.reviews GROUP BY sku",
            "CREATE MATERIALIZED VIEW yachay.segment_sizes AS \
             SELECT segment, count(*) AS n FROM crm.public.customers GROUP BY segment",
            r"\dm yachay.*",
            r"\dt yachay.*",
            "SELECT schemaname, matviewname, matviewowner, ispopulated, definition \
             FROM pg_catalog.pg_matviews ORDER BY 2",
            "SELECT relkind FROM pg_catalog.pg_class WHERE relname = 'top_skus'",
            r"\d+ yachay.top_skus",
            "SELECT pg_catalog.pg_get_viewdef('yachay.top_skus'::regclass)",
            r"\d+ yachay.sales_daily",
        ],
    );
    assert!(out.ok, "{}\n{}", out.stderr, procs.logs());
    let lines: Vec<&str> = out.stdout.lines().collect();
    for want in [
        "yachay|segment_sizes|materialized view|postgres",
        "yachay|top_skus|materialized view|postgres",
        "yachay|segment_sizes|quipu|t|SELECT segment, count(*) AS n FROM crm.public.customers GROUP BY segment",
        "yachay|top_skus|quipu|t|SELECT sku, count(*) AS n FROM lake.public.reviews GROUP BY sku",
        "m",
        "sku|text||||extended|||",
        "n|bigint||not null||plain|||",
        "SELECT sku, count(*) AS n FROM lake.public.reviews GROUP BY sku",
    ] {
        assert!(lines.contains(&want), "psql lacks {want}:\n{}", out.stdout);
    }
    assert!(
        !out.stdout.contains("|table|"),
        "\\dt lists a cache:\n{}",
        out.stdout
    );
    // \d+ of a view: its columns (`sales_daily` is one of examples/yachay).
    assert!(
        lines.iter().any(|l| l.starts_with("day|date|")),
        "{}",
        out.stdout
    );
    let out = psql_in(
        procs.pg,
        "ana",
        ANA_PW,
        "quipu",
        &[
            r"\dm yachay.*",
            "SELECT matviewname FROM pg_catalog.pg_matviews",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        out.stdout, "yachay|top_skus|materialized view|postgres\ntop_skus\n",
        "ana reads the lake only"
    );

    // SQLAlchemy 2.1's Inspector, with both of its PostgreSQL drivers, and
    // pandas over it: what notebooks and Superset call first.
    let columns = rows(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'lake' \
         AND table_schema = 'public' AND table_name = 'reviews' ORDER BY ordinal_position",
    )
    .await
    .into_iter()
    .map(|r| r[0].clone())
    .collect::<Vec<_>>()
    .join(",");
    for driver in ["psycopg", "psycopg2"] {
        let code = format!(
            r#"
import os, sqlalchemy, pandas
PORT = os.environ["PORT"]
url = "postgresql+{driver}://boss:" + os.environ["BOSS_PW"] + "@127.0.0.1:" + PORT
e = sqlalchemy.create_engine(url + "/lake")
i = sqlalchemy.inspect(e)
print("version=" + sqlalchemy.__version__)
print("schemas=" + ",".join(i.get_schema_names()))
print("tables=" + ",".join(sorted(i.get_table_names(schema="public"))))
print("views=" + ",".join(i.get_view_names(schema="public")))
print("mviews=" + ",".join(i.get_materialized_view_names(schema="public")))
print("columns=" + ",".join(c["name"] for c in i.get_columns("reviews", schema="public")))
print("types=" + ",".join(str(c["type"]) for c in i.get_columns("reviews", schema="public")))
print("pk=" + repr(i.get_pk_constraint("reviews", schema="public")["constrained_columns"]))
print("fks=" + repr(i.get_foreign_keys("reviews", schema="public")))
print("indexes=" + repr(i.get_indexes("reviews", schema="public")))
print("unique=" + repr(i.get_unique_constraints("reviews", schema="public")))
print("checks=" + repr(i.get_check_constraints("reviews", schema="public")))
print("comment=" + repr(i.get_table_comment("reviews", schema="public")["text"]))
print("options=" + repr(i.get_table_options("reviews", schema="public")))
print("has=" + repr((i.has_table("reviews", schema="public"), i.has_table("customers", schema="public"))))
print("sequences=" + repr(i.get_sequence_names(schema="public")))
print("multi=" + ",".join(sorted(t for (_, t) in i.get_multi_columns(schema="public"))))
t = sqlalchemy.Table("reviews", sqlalchemy.MetaData(), autoload_with=e, schema="public")
print("table=" + ",".join(t.c.keys()))
with e.connect() as c:
    print("count=" + str(c.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(t)).scalar()))
df = pandas.read_sql("SELECT count(*), min(review_id) AS first FROM public.reviews", e)
print("pandas=" + ",".join(df.columns) + ":" + str(df.iloc[0, 0]))
print("pandas_table=" + str(len(pandas.read_sql_table("reviews", e, schema="public"))))
q = sqlalchemy.inspect(sqlalchemy.create_engine(url + "/quipu"))
print("quipu_views=" + ",".join(q.get_view_names(schema="yachay")))
print("definition=" + q.get_view_definition("sales_daily", schema="yachay").split()[0].upper())
print("quipu_mviews=" + ",".join(sorted(q.get_materialized_view_names(schema="yachay"))))
print("mview_definition=" + q.get_view_definition("top_skus", schema="yachay"))
k = sqlalchemy.inspect(sqlalchemy.create_engine(url + "/crm"))
print("crm_pk=" + repr(k.get_pk_constraint("order_items", schema="public")))
print("crm_indexes=" + repr(k.get_indexes("order_items", schema="public")))
"#
        );
        let out = python(procs.pg, &code);
        assert!(out.ok, "{driver}: {}\n{}", out.stdout, out.stderr);
        assert!(value(&out, "version").starts_with("2.1."), "{}", out.stdout);
        assert_eq!(value(&out, "schemas"), "marketing,public", "{driver}");
        assert_eq!(
            value(&out, "tables"),
            "clickstream,reviews,sales_history",
            "{driver}"
        );
        assert_eq!(value(&out, "views"), "");
        assert_eq!(value(&out, "mviews"), "");
        assert_eq!(value(&out, "columns"), columns, "{driver}");
        assert!(
            value(&out, "types").starts_with("BIGINT,TEXT,BIGINT"),
            "{}",
            out.stdout
        );
        // Quipu has no keys, indexes or constraints: said so, not failed.
        assert_eq!(value(&out, "pk"), "[]");
        // A PostgreSQL source's primary key, in key order; its index backs
        // the key, so it is not among the indexes (as in PostgreSQL).
        let pk = value(&out, "crm_pk");
        assert!(
            pk.contains("'constrained_columns': ['order_id', 'line_no']")
                && pk.contains("'name': 'order_items_pkey'"),
            "{driver}: {pk}"
        );
        assert_eq!(value(&out, "crm_indexes"), "[]", "{driver}");
        for none in ["fks", "indexes", "unique", "checks", "sequences"] {
            assert_eq!(value(&out, none), "[]", "{driver} {none}");
        }
        assert_eq!(value(&out, "comment"), "None");
        assert_eq!(value(&out, "options"), "{}");
        assert_eq!(value(&out, "has"), "(True, False)");
        assert_eq!(
            value(&out, "multi"),
            "clickstream,reviews,sales_history",
            "{driver}"
        );
        assert_eq!(value(&out, "table"), columns);
        assert_eq!(value(&out, "count"), reviews);
        assert_eq!(
            value(&out, "pandas"),
            format!("count,first:{reviews}"),
            "{driver}"
        );
        assert_eq!(value(&out, "pandas_table"), reviews);
        assert!(
            value(&out, "quipu_views").contains("customer_360"),
            "{}",
            out.stdout
        );
        assert_eq!(value(&out, "definition"), "SELECT", "{}", out.stdout);
        assert_eq!(value(&out, "quipu_mviews"), "segment_sizes,top_skus");
        assert_eq!(
            value(&out, "mview_definition"),
            "SELECT sku, count(*) AS n FROM lake.public.reviews GROUP BY sku"
        );
    }

    // psycopg: PostgreSQL's column names, LIKE with another escape
    // character (bound), current_setting.
    let code = r#"
import os, psycopg
c = psycopg.connect(host="127.0.0.1", port=os.environ["PORT"], user="boss", password=os.environ["BOSS_PW"], dbname="lake", autocommit=True)
cur = c.execute("SELECT count(*), 1, 1::bigint AS x, upper('a'), CAST(2 AS INTEGER), 'a' || 'b' FROM public.reviews")
print("names=" + ",".join(d.name for d in cur.description))
print("like=" + repr(c.execute("SELECT 'a_c' LIKE %s || '%%' ESCAPE '/', 'abc' LIKE %s || '%%' ESCAPE '/', 'a%%' LIKE 'a#%%' ESCAPE '#'", ("a/_", "a/_")).fetchone()))
try:
    c.execute("SELECT 'abc' LIKE 'ab/' ESCAPE '/'").fetchone()
    print("dangling=none")
except psycopg.Error as e:
    print("dangling=" + str(e).splitlines()[0])
r = c.execute("SELECT 1, 1::bigint, 'a' || 'b', 2 + 3")
print("repeat=" + ",".join(d.name for d in r.description) + ":" + repr(r.fetchone()))
r = c.execute("SELECT '\\x0102'::bytea, CAST('\\xDE ad' AS BYTEA), 'a\\\\000b'::bytea, E'a\\\\000b'::bytea").fetchone()
print("bytea=" + repr(tuple(bytes(b) for b in r)))
try:
    c.execute("SELECT '\\xzz'::bytea").fetchone()
    print("bad_hex=none")
except psycopg.Error as e:
    print("bad_hex=" + str(e).splitlines()[0])
c.execute("SET application_name = 'notebook'")
print("setting=" + c.execute("SELECT current_setting('application_name'), current_setting('nope', true)").fetchone()[0])
"#;
    let out = python(procs.pg, code);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(value(&out, "names"), "count,?column?,x,upper,int4,?column?");
    assert_eq!(value(&out, "like"), "(True, False, True)");
    assert!(
        value(&out, "dangling").contains("LIKE pattern must not end with escape character"),
        "{}",
        out.stdout
    );
    assert_eq!(value(&out, "setting"), "notebook");
    // Columns DataFusion names alike, named as PostgreSQL names them.
    assert_eq!(
        value(&out, "repeat"),
        "?column?,int8,?column?,?column?:(1, 1, 'ab', 5)"
    );
    // bytea input as PostgreSQL reads it: hex, blanks between pairs, and
    // the escape format (`\\` a backslash, `\000` a zero byte).
    assert_eq!(
        value(&out, "bytea"),
        r"(b'\x01\x02', b'\xde\xad', b'a\\000b', b'a\x00b')"
    );
    assert!(
        value(&out, "bad_hex").contains(r#"invalid hexadecimal digit: "z""#),
        "{}",
        out.stdout
    );

    // asyncpg: the binary protocol and its own type introspection.
    let code = r#"
import asyncio, datetime, decimal, os, asyncpg
async def main():
    c = await asyncpg.connect(host="127.0.0.1", port=int(os.environ["PORT"]), user="boss", password=os.environ["BOSS_PW"], database="lake")
    r = await c.fetchrow("SELECT count(*) FROM public.reviews")
    print("count=" + str(r["count"]))
    r = await c.fetchrow("SELECT CAST(12.5 AS NUMERIC(10,2)) AS n, DATE '2024-02-29' AS d, TIMESTAMP '2024-02-29 01:02:03' AS ts, true AS b, 2.5::float8 AS f, 'x' AS t")
    print("types=" + repr(tuple(r)))
    print("text_param=" + await c.fetchval("SELECT $1::text || 'x'", "a"))
    print("bigint_param=" + str(await c.fetchval("SELECT $1::bigint + 1", 41)))
    n = await c.fetchval("SELECT $1::numeric + 1", decimal.Decimal("1.5"))
    print("numeric_param=" + str(n == decimal.Decimal("2.5")))
    print("ts_param=" + str(await c.fetchval("SELECT $1::timestamp", datetime.datetime(2024, 1, 1, 1, 2, 3))))
    ids = [r["review_id"] for r in await c.fetch("SELECT review_id FROM public.reviews WHERE review_id <= $1 ORDER BY 1", 3)]
    print("ids=" + ",".join(map(str, ids)))
    await c.close()
asyncio.run(main())
"#;
    let out = python(procs.pg, code);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(value(&out, "count"), reviews);
    assert_eq!(
        value(&out, "types"),
        "(Decimal('12.50'), datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 1, 2, 3), True, 2.5, 'x')"
    );
    assert_eq!(value(&out, "text_param"), "ax");
    assert_eq!(value(&out, "bigint_param"), "42");
    assert_eq!(value(&out, "numeric_param"), "True");
    assert_eq!(value(&out, "ts_param"), "2024-01-01 01:02:03");
    assert_eq!(value(&out, "ids"), "1,2,3");

    // DuckDB attaching Quipu as a PostgreSQL database: its postgres
    // extension reads the catalog (pg_class, pg_attribute, pg_indexes, ...)
    // and each table with `COPY (...) TO STDOUT (FORMAT binary)` over a
    // range of row ids; numerics, timestamps and text decoded from
    // PostgreSQL's binary forms agree with Quipu's own answers.
    let orders = rows(
        "SELECT count(*), CAST(sum(total_usd) AS TEXT), CAST(max(ordered_at) AS TEXT), \
         count(utm_campaign) FROM crm.public.orders",
    )
    .await
    .remove(0);
    let code = r#"
import glob, os, duckdb, duckdb_ext
# The extension from PyPI (duckdb-ext-postgres): DuckDB would download it.
ext = glob.glob(os.path.join(list(duckdb_ext.__path__)[0], "extensions", "v" + duckdb.__version__,
                             "*", "postgres_scanner.duckdb_extension"))[0]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
dsn = "host=127.0.0.1 port={} user=boss password={} dbname=".format(os.environ["PORT"], os.environ["BOSS_PW"])
con.execute(f"ATTACH '{dsn}lake' AS lake (TYPE postgres, READ_ONLY)")
con.execute(f"ATTACH '{dsn}crm' AS crm (TYPE postgres, READ_ONLY)")
tables = con.execute("SELECT database_name || '.' || schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()
print("tables=" + ",".join(t[0] for t in tables))
print("count=" + str(con.execute("SELECT count(*) FROM lake.public.reviews").fetchone()[0]))
ids = con.execute("SELECT review_id FROM lake.public.reviews ORDER BY 1 LIMIT 3").fetchall()
print("ids=" + ",".join(str(i[0]) for i in ids))
r = con.execute("SELECT count(*), CAST(sum(total_usd) AS VARCHAR), CAST(max(ordered_at) AS VARCHAR), count(utm_campaign), typeof(sum(total_usd)) FROM crm.public.orders").fetchone()
print("orders=" + "|".join(map(str, r)))
"#;
    let out = python(procs.pg, code);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());
    let tables = value(&out, "tables");
    for t in [
        "lake.public.reviews",
        "lake.marketing.fb_ads",
        "crm.public.customers",
        "crm.public.orders",
    ] {
        assert!(tables.split(',').any(|x| x == t), "{t} not in {tables}");
    }
    assert_eq!(value(&out, "count"), reviews);
    assert_eq!(value(&out, "ids"), first_ids.join(","));
    let duck: Vec<&str> = value(&out, "orders").split('|').collect();
    assert_eq!(duck[0], orders[0], "{}", out.stdout);
    // The same sum of numerics (DuckDB prints no trailing zeros).
    let num = |s: &str| s.parse::<f64>().unwrap();
    assert_eq!(num(duck[1]), num(&orders[1]), "{}", out.stdout);
    assert!(duck[4].starts_with("DECIMAL"), "{}", out.stdout);
    // The latest timestamp to the second (the engine's own text form
    // has a `T`).
    assert_eq!(
        duck[2][..19],
        orders[2][..19].replacen('T', " ", 1),
        "{}",
        out.stdout
    );
    assert_eq!(duck[3], orders[3], "{}", out.stdout);

    // node-postgres: parameters (sent untyped, in text) and its parsing of
    // each type by the OIDs described.
    let node_dir = std::env::var("QUIPU_NODE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/quipu/node",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let code = r#"
const { Client } = require(process.env.QUIPU_NODE + "/node_modules/pg");
(async () => {
  const c = new Client({ host: "127.0.0.1", port: +process.env.PORT, user: "boss",
                         password: process.env.BOSS_PW, database: "lake" });
  await c.connect();
  let r = await c.query("SELECT count(*) FROM public.reviews");
  console.log("count=" + r.rows[0].count);
  r = await c.query("SELECT review_id FROM public.reviews WHERE review_id < $1 ORDER BY 1", [4]);
  console.log("ids=" + r.rows.map(x => x.review_id).join(","));
  r = await c.query("SELECT $1::bigint + 1 AS n, $2::text || 'x' AS t", [41, "a"]);
  console.log("params=" + JSON.stringify(r.rows[0]));
  r = await c.query("SELECT CAST(12.5 AS NUMERIC(10,2)) AS n, DATE '2024-02-29' AS d, " +
    "TIMESTAMP '2024-02-29 01:02:03' AS ts, true AS b, 2.5::float8 AS f, CAST(7 AS INTEGER) AS i");
  console.log("oids=" + r.fields.map(f => f.name + ":" + f.dataTypeID).join(","));
  const v = r.rows[0];
  console.log("values=" + [v.n, v.d.toISOString(), v.ts.toISOString(), v.b, v.f, v.i].join(","));
  await c.end();
})().catch(e => { console.log("error=" + e.message); process.exit(1); });
"#;
    let out = Command::new("node")
        .args(["-e", code])
        .env("PORT", procs.pg.to_string())
        .env("BOSS_PW", BOSS_PW)
        .env("QUIPU_NODE", &node_dir)
        .env("TZ", "UTC")
        .output()
        .expect("run node (tests/run.sh installs node-postgres)");
    let node = Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    };
    assert!(node.ok, "{}\n{}", node.stdout, node.stderr);
    assert_eq!(value(&node, "count"), reviews);
    assert_eq!(value(&node, "ids"), "1,2,3");
    assert_eq!(value(&node, "params"), r#"{"n":"42","t":"ax"}"#);
    assert_eq!(
        value(&node, "oids"),
        "n:1700,d:1082,ts:1114,b:16,f:701,i:23"
    );
    assert_eq!(
        value(&node, "values"),
        "12.50,2024-02-29T00:00:00.000Z,2024-02-29T01:02:03.000Z,true,2.5,7"
    );

    // The JDBC driver's DatabaseMetaData, connected to `lake`.
    let jar = std::env::var("QUIPU_JDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".to_string());
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/JdbcSurface.java");
    let out = Command::new("java")
        .arg("-cp")
        .arg(&jar)
        .arg(&probe)
        .env("PORT", procs.pg.to_string())
        .env("DB", "lake")
        .env("USER", "boss")
        .env("PASSWORD", BOSS_PW)
        .env("SCHEMA", "public")
        .env("TABLE", "reviews")
        .output()
        .expect("run java (tests/run.sh installs a JDK and the PostgreSQL JDBC driver)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{stdout}"))
            .to_string()
    };
    for (name, want) in [
        ("product", "ok product PostgreSQL/16"),
        ("catalog", "ok catalog lake"),
        ("schema", "ok schema public"),
        ("getCatalogs", "ok getCatalogs 1:lake"),
        ("getSchemasPattern", "ok getSchemasPattern 1:public"),
        ("getTables", "ok getTables 3:reviews"),
        ("getTablesTyped", "ok getTablesTyped 3:reviews"),
        ("select", &format!("ok select {reviews}")),
    ] {
        assert_eq!(line(name), want, "{stdout}");
    }
    assert!(
        line("getColumns").starts_with("ok getColumns 6:reviews"),
        "{stdout}"
    );
    for ok in [
        "getSchemas",
        "getTableTypes",
        "getClientInfoProperties",
        "keywords",
        "getTablePrivileges",
        "getUDTs",
        "getProcedures",
        "getFunctions",
    ] {
        assert!(line(ok).starts_with("ok "), "{stdout}");
    }
    // Quipu has no keys: none, rather than an error.
    assert_eq!(line("getImportedKeys"), "ok getImportedKeys 0");
    assert_eq!(line("getExportedKeys"), "ok getExportedKeys 0");
    assert!(
        line("types").contains("i8:int8=3;")
            && line("types").contains("n:numeric=12.34;")
            && line("types").contains("d:date=2024-02-29;")
            // PostgreSQL's text: no fraction when it is zero.
            && line("types").contains("ts:timestamp=2024-02-29 12:34:56;"),
        "{stdout}"
    );
    // Prepared twice, each parameter type bound.
    assert!(
        line("prepared").starts_with("ok prepared 42,hi!,2.5,true,2024-02-29,"),
        "{stdout}"
    );
    // A lake table has no primary key, index or row identifier: none,
    // rather than an error (the driver's `_pg_expandarray` queries plan).
    assert_eq!(line("getPrimaryKeys"), "ok getPrimaryKeys none");
    assert_eq!(line("getIndexInfo"), "ok getIndexInfo none");
    assert_eq!(line("getBestRowIdentifier"), "ok getBestRowIdentifier none");
    // Every type of pg_type but table row types (the driver's filter)
    // and the three serial types the driver adds; int8 as BIGINT and its
    // array as ARRAY: the driver tells arrays by
    // `typinput = 'pg_catalog.array_in'::regproc`.
    let out = psql_in(
        procs.pg,
        "boss",
        BOSS_PW,
        "lake",
        &[
            "SELECT count(*) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n \
           ON (t.typnamespace = n.oid) WHERE n.nspname != 'pg_toast' AND (t.typrelid = 0 \
           OR (SELECT c.relkind = 'c' FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid))",
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    let types: usize = out.stdout.trim().parse().unwrap();
    assert!(types > 100, "{types}");
    assert_eq!(
        line("getTypeInfo"),
        format!("ok getTypeInfo {}:int8", types + 3)
    );
    assert_eq!(
        line("typeInfoInt8"),
        "ok typeInfoInt8 int8:-5:0;_int8:2003:0;"
    );
    // The driver's one version column, ctid (OTHER: not an array).
    assert_eq!(
        line("getVersionColumns"),
        "ok getVersionColumns ctid:1111:tid;"
    );

    // Connected to `crm`, a PostgreSQL source: its tables' primary keys,
    // found at the source, are in Quipu's pg_catalog as PostgreSQL's are
    // (a constraint and a unique index named `<table>_pkey`): the key of
    // two columns in key order, its index, and the row identifier DBeaver
    // edits rows by.
    let out = Command::new("java")
        .arg("-cp")
        .arg(&jar)
        .arg(&probe)
        .env("PORT", procs.pg.to_string())
        .env("DB", "crm")
        .env("USER", "boss")
        .env("PASSWORD", BOSS_PW)
        .env("SCHEMA", "public")
        .env("TABLE", "order_items")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    for want in [
        // Its five tables and their keys' indexes (the driver lists
        // indexes when no type is asked for, as for PostgreSQL).
        "ok getTables 10:order_items",
        "ok getPrimaryKeys order_id:1:order_items_pkey;line_no:2:order_items_pkey;",
        "ok getIndexInfo order_items_pkey:f:1:order_id;order_items_pkey:f:2:line_no;",
        "ok getBestRowIdentifier order_id:int8;line_no:int4;",
    ] {
        assert!(stdout.lines().any(|l| l == want), "{want}:\n{stdout}");
    }
    assert!(!stdout.contains("\nfail "), "{stdout}");
}
