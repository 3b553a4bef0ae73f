//! Live sources under stress: names and values that need quoting, sources
//! that are down or do not answer, and remote queries that run too long.

use std::time::{Duration, Instant};

use crate::common::{client, query, try_query};
use crate::servers::yachay;
use crate::views::catalog;
use quipu_scheduler::Engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_names_and_values_are_quoted_on_real_servers() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let db = "quoting";
    y.crm
        .psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    y.crm.psql("postgres", &format!("CREATE DATABASE {db}"));
    y.crm.psql(
        db,
        r#"CREATE TABLE "a""b" ("we""ird" text, "O'Brien" integer);
           INSERT INTO "a""b" VALUES ('O''Brien', 1), ('\'' OR 1=1 --', 2), ('plain', 3), ('{"$gt": ""}', 4);
           CREATE VIEW slow AS SELECT pg_sleep(3)::text AS x"#,
    );
    let mut src = engine.session().store().source("crm").unwrap().unwrap();
    src.name = "q".into();
    src.options.insert("dbname".into(), db.into());
    src.options.insert("query_timeout".into(), "1".into());
    engine.session().add_source(&src).await.unwrap();

    for (value, id) in [
        ("O''Brien", "1"),
        ("\\'' OR 1=1 --", "2"),
        ("{\"$gt\": \"\"}", "4"),
    ] {
        let sql = format!(r#"SELECT "O'Brien" FROM q.public."a""b" WHERE "we""ird" = '{value}'"#);
        let (rows, _) = query(&c, &sql).await;
        assert_eq!(rows, vec![vec![id.to_string()]], "{sql}");
    }
    // A pushed aggregate over the same awkward names.
    let (rows, _) = query(
        &c,
        r#"SELECT count(*), sum("O'Brien") FROM q.public."a""b" WHERE "we""ird" <> 'plain'"#,
    )
    .await;
    assert_eq!(rows, vec![vec!["3".to_string(), "7".to_string()]]);

    // MongoDB: a string that looks like an operator stays a value.
    y.mongo.pymongo(
        "quoting",
        r#"db.items.drop()
db.items.insert_many([{'name': '{"$gt": ""}', 'n': 1}, {'name': 'plain', 'n': 2}, {'name': "O'Brien", 'n': 3}])"#,
    );
    let mut m = engine
        .session()
        .store()
        .source("inventory")
        .unwrap()
        .unwrap();
    m.name = "mq".into();
    m.options.insert("database".into(), "quoting".into());
    engine.session().add_source(&m).await.unwrap();
    for (value, n) in [(r#"{"$gt": ""}"#, "1"), ("O''Brien", "3")] {
        let sql = format!("SELECT n FROM mq.public.items WHERE name = '{value}'");
        let (rows, _) = query(&c, &sql).await;
        assert_eq!(rows, vec![vec![n.to_string()]], "{sql}");
    }

    // A remote query past the source's query_timeout is ended by the server.
    let started = Instant::now();
    let err = try_query(&c, "SELECT x FROM q.public.slow")
        .await
        .unwrap_err();
    assert!(
        err.contains("source `q`") && err.contains("statement timeout"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    engine.session().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_is_down_is_named_and_the_others_keep_working() {
    let y = yachay();
    let dir = catalog(&y);
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    // Nothing listens on `refused`; `silent` accepts connections and never
    // answers.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();

    let crm = engine.session().store().source("crm").unwrap().unwrap();
    let inventory = engine
        .session()
        .store()
        .source("inventory")
        .unwrap()
        .unwrap();
    for (name, base, port) in [
        ("pg_refused", &crm, refused),
        ("pg_silent", &crm, silent_port),
        ("mongo_refused", &inventory, refused),
        ("mongo_silent", &inventory, silent_port),
    ] {
        // Tables declared from the live source's schema, then the source
        // goes away (as when a server is stopped after registration).
        let store = engine.session().store();
        let mut src = base.clone();
        src.name = name.into();
        engine.session().add_source(&src).await.unwrap();
        let tables = store.tables(Some(name)).unwrap();
        store.drop_source(name).unwrap();
        src.options.insert("port".into(), port.to_string());
        store.add_source(&src, &tables).unwrap();
    }
    for (name, table) in [
        ("pg_refused", "public.orders"),
        ("pg_silent", "public.orders"),
        ("mongo_refused", "public.products"),
        ("mongo_silent", "public.products"),
    ] {
        let started = Instant::now();
        let err = try_query(&c, &format!("SELECT count(*) FROM {name}.{table}"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(err.contains(&format!("source `{name}`")), "{name}: {err}");
        assert!(!err.contains("password"), "{err}");
        assert!(took < Duration::from_secs(20), "{name} took {took:?}");
        // The other sources keep answering.
        let (rows, _) = query(&c, "SELECT count(*) FROM crm.public.customers").await;
        assert_eq!(
            rows[0][0],
            y.crm.psql("crm", "SELECT count(*) FROM customers")
        );
    }
    drop(silent);
    engine.session().close().await;
}

/// Issue 17 (4): a column altered at the source without `catalog refresh`
/// is never read as a rounded number. numeric(12,2) became numeric(14,4):
/// Quipu answered 1.23 for 1.2345 (a table scan cut the digits; a pushed
/// sum was cast back to the catalog's type). Values that still fit read
/// right; values that do not fail the query naming the refresh; after the
/// refresh every answer equals PostgreSQL's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decimal_column_changed_at_the_source_is_never_rounded() {
    let y = yachay();
    let pg = &y.crm;
    pg.psql("postgres", "DROP DATABASE IF EXISTS drift");
    pg.psql("postgres", "CREATE DATABASE drift");
    pg.psql(
        "drift",
        "CREATE TABLE prices (id int PRIMARY KEY, amount numeric(12,2));
         INSERT INTO prices VALUES (1, 1.23), (2, 1.25), (3, NULL)",
    );
    let dir = tempfile::tempdir().unwrap();
    crate::views::add_pg_source(dir.path(), "drift", pg.port, "drift");
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let pg_answer = |sql: &str| pg.psql("drift", sql).trim().to_string();
    let plain = "SELECT amount FROM drift.public.prices WHERE id = 1";
    let pushed = "SELECT sum(amount) FROM drift.public.prices";
    let unpushed = "SELECT sum(amount) FROM drift.public.prices, (VALUES (1)) v(x)";
    assert_eq!(query(&c, pushed).await.0[0][0], "2.48");

    // The scale grows; the values still fit the catalog's numeric(12,2).
    pg.psql(
        "drift",
        "ALTER TABLE prices ALTER amount TYPE numeric(14,4)",
    );
    assert_eq!(query(&c, plain).await.0[0][0], "1.23");
    assert_eq!(query(&c, pushed).await.0[0][0], "2.48");

    // Now they do not: every path refuses, naming what to do.
    pg.psql("drift", "UPDATE prices SET amount = 1.2345 WHERE id = 1");
    assert_eq!(pg_answer("SELECT sum(amount) FROM prices"), "2.4845");
    for sql in [plain, pushed, unpushed] {
        let err = try_query(&c, sql).await.unwrap_err();
        assert!(
            err.contains("catalog refresh") && err.contains("drift"),
            "{sql}: {err}"
        );
    }

    engine.session().refresh_source("drift").await.unwrap();
    let c = client(&engine, "local").await;
    assert_eq!(
        query(&c, plain).await.0[0][0],
        pg_answer("SELECT amount FROM prices WHERE id = 1")
    );
    assert_eq!(query(&c, pushed).await.0[0][0], "2.4845");
    assert_eq!(query(&c, unpushed).await.0[0][0], "2.4845");
    let avg = query(&c, "SELECT avg(amount) FROM drift.public.prices")
        .await
        .0[0][0]
        .clone();
    let want: f64 = pg_answer("SELECT avg(amount) FROM prices").parse().unwrap();
    assert_eq!(avg.parse::<f64>().unwrap(), want, "{avg}");
    engine.session().close().await;
}
