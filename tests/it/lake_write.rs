//! Batch writes to the lake (issue 21, item 4): `CREATE TABLE ... AS` and
//! `INSERT INTO ... SELECT` from the live POS database into a lake source
//! of its own (a temp folder, so the shared Yachay lake stays as the other
//! tests know it), read back by Quipu on both paths, by pyarrow and over
//! the PostgreSQL wire; a failed and a SIGKILLed INSERT leave the table as
//! it was; the writes Quipu does not do are refused with one clear error.

use std::path::Path;
use std::time::{Duration, Instant};

use quipu_scheduler::Engine;

use crate::common::*;
use crate::pgwire::{ANA_PW, BOSS_PW, add_users, psql_in, wait_port};
use crate::servers::{venv, yachay};

/// The POS rows archived, with every kind of value the test is about:
/// decimals, timestamps with time zone, NULLs (loyalty cards, `note`),
/// text with quotes and a backslash. `month` is the partition column.
fn sales(from: &str, to: &str) -> String {
    format!(
        "SELECT t.txn_id, t.store_id, t.ts, t.loyalty_card_id, t.total_usd, \
                CASE WHEN t.txn_id % 5 = 0 THEN NULL \
                     WHEN t.txn_id % 5 = 1 THEN 'O''Brien \"q\" \\ ' || t.terminal_id \
                     ELSE t.payment_method END AS note, \
                to_char(t.ts, 'YYYY-MM') AS month \
         FROM pos.public.transactions t \
         WHERE t.ts >= TIMESTAMPTZ '{from}' AND t.ts < TIMESTAMPTZ '{to}'"
    )
}

const COLS: &str = "txn_id, store_id, ts, loyalty_card_id, total_usd, note, month";

/// A Yachay catalog plus a lake source `archive` over an empty temp folder
/// (and the servers, which stop when the last holder drops them).
fn catalog_with_archive() -> (
    std::sync::Arc<crate::servers::Yachay>,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    let run = quipu(
        dir.path(),
        &[
            "catalog",
            "add-source",
            "archive",
            "--kind",
            "lake",
            "--url",
            &url,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    (y, dir, lake)
}

/// Every file under `dir` (relative paths), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// pyarrow's reading of a table folder (hive partitions): row count, the
/// sum of `total_usd` (exact decimal), NULL `loyalty_card_id`s, NULL
/// `note`s, the notes with a quote, the first and last `ts` as ISO text in
/// UTC, the months, and the Arrow types of `ts` and `total_usd`.
fn pyarrow_summary(table: &Path) -> String {
    let code = r#"
import sys, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table()
print("rows=%d" % t.num_rows)
print("sum=%s" % pc.sum(t["total_usd"]).as_py())
print("null_cards=%d" % t["loyalty_card_id"].null_count)
print("null_notes=%d" % t["note"].null_count)
print("quoted=%d" % sum(1 for n in t["note"].to_pylist() if n is not None and n.startswith("O'Brien \"q\" \\ ")))
ts = t["ts"]
print("first=%s" % pc.min(ts).as_py().isoformat())
print("last=%s" % pc.max(ts).as_py().isoformat())
print("months=%s" % ",".join(sorted(set(str(m) for m in t["month"].to_pylist()))))
print("types=%s|%s" % (t.schema.field("ts").type, t.schema.field("total_usd").type))
"#;
    let out = std::process::Command::new(venv().join("bin/python"))
        .args(["-c", code, table.to_str().unwrap()])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The same summary computed by Quipu from the POS database itself.
async fn expected_summary(c: &quipu_scheduler::ClientSession, select: &str) -> String {
    let (rows, _) = query(
        c,
        &format!(
            "SELECT count(*), CAST(sum(total_usd) AS VARCHAR), count(*) - count(loyalty_card_id), \
                    count(*) - count(note), sum(CASE WHEN note LIKE 'O''Brien%' THEN 1 ELSE 0 END), \
                    to_char(min(ts), 'YYYY-MM-DD HH24:MI:SS'), to_char(max(ts), 'YYYY-MM-DD HH24:MI:SS') \
             FROM ({select}) s"
        ),
    )
    .await;
    let (months, _) = query(
        c,
        &format!("SELECT DISTINCT month FROM ({select}) s ORDER BY month"),
    )
    .await;
    let months: Vec<&str> = months.iter().map(|m| m[0].as_str()).collect();
    let r = &rows[0];
    format!(
        "rows={}\nsum={}\nnull_cards={}\nnull_notes={}\nquoted={}\nfirst={}\nlast={}\nmonths={}\n",
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        months.join(",")
    )
}

/// pyarrow's summary without its types line, its timestamps cut to the
/// second, without the UTC offset and with a space for the `T`, to compare
/// with Quipu's.
fn comparable(py: &str) -> String {
    py.lines()
        .filter(|l| !l.starts_with("types="))
        .map(|l| {
            if let Some(v) = l.strip_prefix("first=").or_else(|| l.strip_prefix("last=")) {
                let key = &l[..l.find('=').unwrap() + 1];
                format!("{key}{}\n", v[..19].replace('T', " "))
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archive_pos_months_round_trip_and_fail_whole() {
    let (_servers, dir, lake) = catalog_with_archive();
    let engine = Engine::open(dir.path()).unwrap();
    let c = client(&engine, "local").await;
    let table_dir = lake.path().join("pos/sales");

    // CREATE TABLE ... AS: two closed months, partitioned by month.
    let nov_dec = sales("2025-11-01 00:00:00+00", "2026-01-01 00:00:00+00");
    let (rows, _) = query(
        &c,
        &format!("CREATE TABLE archive.pos.sales WITH (partition_by = 'month') AS {nov_dec}"),
    )
    .await;
    let written: u64 = rows[0][0].parse().unwrap();
    assert!(written > 100, "{rows:?}");
    let layout = files(&table_dir);
    assert!(
        layout
            .iter()
            .all(|f| f.starts_with("month=2025-1") && f.ends_with(".parquet")),
        "{layout:?}"
    );
    assert!(
        layout.iter().any(|f| f.starts_with("month=2025-11/")),
        "{layout:?}"
    );
    // Nothing but the table's files is visible: no staging folder left.
    let staging = lake.path().join("pos/.quipu-write/sales");
    assert_eq!(files(&staging), vec![".lock".to_string()]);

    // Same rows, both paths, as the POS database gives them.
    let want = |select: String| {
        let c = &c;
        async move {
            query(
                c,
                &format!("SELECT {COLS} FROM ({select}) s ORDER BY txn_id"),
            )
            .await
            .0
        }
    };
    let expected = want(nov_dec.clone()).await;
    assert_eq!(expected.len() as u64, written);
    for mode in ["local", "cluster"] {
        let m = client(&engine, mode).await;
        let (got, on) = query(
            &m,
            &format!("SELECT {COLS} FROM archive.pos.sales ORDER BY txn_id"),
        )
        .await;
        assert_eq!(got, expected, "mode {mode}");
        assert_eq!(on.to_string(), mode);
    }
    let (types, _) = query(
        &c,
        "SELECT arrow_typeof(ts), arrow_typeof(total_usd), arrow_typeof(month) FROM archive.pos.sales LIMIT 1",
    )
    .await;
    let (source_types, _) = query(
        &c,
        "SELECT arrow_typeof(ts), arrow_typeof(total_usd) FROM pos.public.transactions LIMIT 1",
    )
    .await;
    assert_eq!(types[0][..2], source_types[0][..], "{types:?}");
    // pyarrow reads the files as Quipu does.
    let py = pyarrow_summary(&table_dir);
    assert_eq!(
        comparable(&py),
        expected_summary(&c, &nov_dec).await,
        "{py}"
    );
    assert!(
        py.contains("types=timestamp[") && py.contains("tz=") && py.contains("|decimal128(12, 2)"),
        "{py}"
    );

    // INSERT the next month: the table holds the three.
    let jan = sales("2026-01-01 00:00:00+00", "2026-02-01 00:00:00+00");
    let (rows, _) = query(
        &c,
        &format!("INSERT INTO archive.pos.sales SELECT {COLS} FROM ({jan}) s"),
    )
    .await;
    let jan_rows: u64 = rows[0][0].parse().unwrap();
    assert!(jan_rows > 50);
    let three = sales("2025-11-01 00:00:00+00", "2026-02-01 00:00:00+00");
    let expected = want(three.clone()).await;
    for mode in ["local", "cluster"] {
        let m = client(&engine, mode).await;
        let (got, _) = query(
            &m,
            &format!("SELECT {COLS} FROM archive.pos.sales ORDER BY txn_id"),
        )
        .await;
        assert_eq!(got, expected, "mode {mode}");
    }
    assert_eq!(
        comparable(&pyarrow_summary(&table_dir)),
        expected_summary(&c, &three).await
    );
    let before = files(&table_dir);

    // A statement that fails half-way (division by zero in the last row
    // of the month) leaves the table as it was.
    let feb = sales("2026-02-01 00:00:00+00", "2026-03-01 00:00:00+00");
    let (last, _) = query(&c, &format!("SELECT max(txn_id) FROM ({feb}) s")).await;
    let failing = format!(
        "INSERT INTO archive.pos.sales \
         SELECT txn_id, store_id, ts, loyalty_card_id, \
                total_usd / CASE WHEN txn_id = {} THEN 0 ELSE 1 END, note, month FROM ({feb}) s",
        last[0][0]
    );
    let err = try_query(&c, &failing).await.unwrap_err();
    assert!(err.to_lowercase().contains("zero"), "{err}");
    assert_eq!(files(&table_dir), before);
    assert_eq!(files(&staging), vec![".lock".to_string()]);
    let (got, _) = query(
        &c,
        &format!("SELECT {COLS} FROM archive.pos.sales ORDER BY txn_id"),
    )
    .await;
    assert_eq!(got, expected);

    // Bad input: one clear error each, nothing written.
    for (sql, says) in [
        (
            "INSERT INTO archive.pos.sales SELECT txn_id, ts FROM pos.public.transactions"
                .to_string(),
            "the query gives 2 column(s) (txn_id, ts) but 7 are to be filled (txn_id, store_id, ts, loyalty_card_id, total_usd, note, month)",
        ),
        (
            format!("CREATE TABLE archive.pos.sales AS {jan}"),
            "table `archive.pos.sales` already exists",
        ),
        (
            format!("CREATE TABLE archive.pos.other WITH (partition_by = 'nope') AS {jan}"),
            "partition_by names `nope`, which the query does not return",
        ),
        (
            format!(
                "CREATE TABLE archive.pos.other WITH (partition_by = 'part') AS \
                 SELECT txn_id, CASE WHEN txn_id % 2 = 0 THEN 'even' END AS part FROM ({jan}) s"
            ),
            "partition column `part` is NULL or empty in some rows",
        ),
        (
            format!("CREATE TABLE archive.pos.other WITH (compression = 'zstd') AS {jan}"),
            "unknown CREATE TABLE option `compression`",
        ),
        (
            "INSERT INTO pos.public.stores SELECT * FROM pos.public.stores".to_string(),
            "`pos` is a postgres source, and Quipu writes only to the lake",
        ),
        (
            "CREATE TABLE crm.public.copy AS SELECT * FROM crm.public.campaigns".to_string(),
            "`crm` is a postgres source, and Quipu writes only to the lake",
        ),
        (
            "INSERT INTO inventory.public.products SELECT * FROM inventory.public.products"
                .to_string(),
            "`inventory` is a mongodb source, and Quipu writes only to the lake",
        ),
        (
            "DELETE FROM archive.pos.sales WHERE txn_id = 1".to_string(),
            "Quipu writes to the lake only with",
        ),
        (
            "INSERT INTO lake.marketing.ga SELECT * FROM lake.marketing.ga".to_string(),
            "Quipu writes only Parquet tables",
        ),
        (
            format!("EXPLAIN ANALYZE INSERT INTO archive.pos.sales SELECT {COLS} FROM ({jan}) s"),
            "EXPLAIN ANALYZE of a write",
        ),
    ] {
        let err = try_query(&c, &sql).await.unwrap_err();
        assert!(err.contains(says), "{sql}: {err}");
    }
    assert_eq!(files(&table_dir), before);
    assert!(!lake.path().join("pos/other").exists());

    // Not an admin: refused before anything runs.
    let ana = engine.client_for(quipu_connectors::Access::only([
        "archive".to_string(),
        "pos".to_string(),
    ]));
    let err = try_query(
        &ana,
        &format!("INSERT INTO archive.pos.sales SELECT {COLS} FROM ({feb}) s"),
    )
    .await
    .unwrap_err();
    assert!(err.contains("only admins"), "{err}");
    assert_eq!(files(&table_dir), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_insert_leaves_the_table_as_it_was() {
    let (_servers, dir, lake) = catalog_with_archive();
    let table_dir = lake.path().join("pos/big");
    let staging = lake.path().join("pos/.quipu-write/big");
    let make = quipu(
        dir.path(),
        &[
            "sql",
            "CREATE TABLE archive.pos.big WITH (partition_by = 'store_id') AS \
             SELECT txn_id, store_id, ts, total_usd FROM pos.public.transactions",
        ],
        &[],
    );
    assert_eq!(make.code, 0, "{}", make.stderr);
    let before = files(&table_dir);
    let count = || {
        let run = quipu(
            dir.path(),
            &[
                "sql",
                "--format",
                "csv",
                "SELECT count(*), CAST(sum(total_usd) AS VARCHAR) FROM archive.pos.big",
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let counted = count();
    // Many rows (each transaction once per line of the POS lines table's
    // first 2,000): seconds of writing, killed once a file is staged.
    let mut child = std::process::Command::new(quipu_bin())
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "sql",
            // Small row groups and write buffers, and the serial Parquet
            // writer, so that files reach the disk long before the
            // statement ends.
            "SET datafusion.execution.parquet.max_row_group_size = 4096; \
             SET datafusion.execution.objectstore_writer_buffer_size = 65536; \
             SET datafusion.execution.parquet.allow_single_file_parallelism = false; \
             INSERT INTO archive.pos.big SELECT t.txn_id, t.ts, t.total_usd, t.store_id \
             FROM pos.public.transactions t CROSS JOIN (SELECT txn_id FROM pos.public.transaction_lines LIMIT 2000) l",
        ])
        .env_remove("QUIPU_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let staged = files(&staging);
        if staged.iter().any(|f| f.contains(".parquet")) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the INSERT ended ({status}) before any file was staged: {staged:?}: {err}");
        }
        assert!(Instant::now() < deadline, "nothing staged in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    // The staged files are still there, and no query sees them.
    assert!(files(&staging).iter().any(|f| f.contains(".parquet")));
    assert_eq!(files(&table_dir), before);
    assert_eq!(count(), counted);
    // The next write clears what the killed one left, and adds its rows.
    let run = quipu(
        dir.path(),
        &[
            "sql",
            // The partition column comes last in the table.
            "INSERT INTO archive.pos.big SELECT txn_id, ts, total_usd, store_id FROM pos.public.transactions WHERE txn_id % 2 = 0",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(files(&staging), vec![".lock".to_string()]);
    let run = quipu(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "SELECT (SELECT count(*) FROM archive.pos.big) - (SELECT count(*) FROM pos.public.transactions) \
             - (SELECT count(*) FROM pos.public.transactions WHERE txn_id % 2 = 0)",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().nth(1), Some("0"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_over_the_postgresql_wire_and_read_on_the_cluster() {
    let (_servers, dir, lake) = catalog_with_archive();
    add_users(dir.path());
    let procs = crate::cluster::Procs::start(dir.path(), 1);
    wait_port(procs.pg);
    let nov = sales("2025-11-01 00:00:00+00", "2025-12-01 00:00:00+00");
    let dec = sales("2025-12-01 00:00:00+00", "2026-01-01 00:00:00+00");
    let ordered = format!("SELECT {COLS} FROM archive.wire.sales ORDER BY txn_id");
    let out = psql_in(
        procs.pg,
        "boss",
        BOSS_PW,
        "quipu",
        &[
            &format!("CREATE TABLE archive.wire.sales WITH (partition_by = 'month') AS {nov}"),
            &format!("INSERT INTO archive.wire.sales SELECT {COLS} FROM ({dec}) s"),
            "SET quipu.execution = 'cluster'",
            &ordered,
        ],
    );
    assert!(out.ok, "{}\n{}", out.stderr, procs.logs());
    // What the archive holds, read on the cluster's executor, is what
    // PostgreSQL's POS holds, as psql prints both.
    let direct = psql_in(
        procs.pg,
        "boss",
        BOSS_PW,
        "quipu",
        &[&format!(
            "SELECT {COLS} FROM ({}) s ORDER BY txn_id",
            sales("2025-11-01 00:00:00+00", "2026-01-01 00:00:00+00")
        )],
    );
    assert!(direct.ok, "{}", direct.stderr);
    // Rows have seven fields; the counts and SET's tag have one.
    let archived: Vec<&str> = out.stdout.lines().filter(|l| l.contains('|')).collect();
    let want: Vec<&str> = direct.stdout.lines().filter(|l| l.contains('|')).collect();
    assert!(want.len() > 100);
    assert_eq!(archived, want);
    assert!(
        want.iter().any(|l| l.contains("O'Brien \"q\" \\ ")),
        "{}",
        direct.stdout
    );
    // The files are where the table says, read by pyarrow the same way.
    let py = pyarrow_summary(&lake.path().join("wire/sales"));
    assert!(py.contains("months=2025-11,2025-12"), "{py}");
    // psql saw PostgreSQL's command tags.
    assert!(
        out.stdout.lines().any(|l| l.starts_with("INSERT 0 ")),
        "{}",
        out.stdout
    );
    // psycopg (extended protocol): an INSERT's rowcount is the rows
    // written, and they are there.
    let jan = sales("2026-01-01 00:00:00+00", "2026-02-01 00:00:00+00");
    let code = r#"
import os, psycopg
jan, cols = os.environ["JAN"], os.environ["COLS"]
c = psycopg.connect(host="127.0.0.1", port=os.environ["PORT"], user="boss", password=os.environ["BOSS_PW"], dbname="quipu", autocommit=True)
print("want=%d" % c.execute("SELECT count(*) FROM (" + jan + ") s").fetchone()[0])
cur = c.execute("INSERT INTO archive.wire.sales SELECT " + cols + " FROM (" + jan + ") s")
print("rowcount=%d" % cur.rowcount)
print("total=%d" % c.execute("SELECT count(*) FROM archive.wire.sales").fetchone()[0])
"#;
    let py = crate::pgwire::python_with(
        procs.pg,
        code,
        &[
            ("JAN", std::ffi::OsStr::new(&jan)),
            ("COLS", std::ffi::OsStr::new(COLS)),
        ],
    );
    assert!(py.ok, "{}\n{}", py.stderr, procs.logs());
    let jan_rows: usize = crate::pgwire::value(&py, "want").parse().unwrap();
    assert!(jan_rows > 50);
    assert_eq!(crate::pgwire::value(&py, "rowcount"), jan_rows.to_string());
    assert_eq!(
        crate::pgwire::value(&py, "total"),
        (want.len() + jan_rows).to_string()
    );
    // A user who is not an admin is refused, and nothing changes.
    let ana = psql_in(
        procs.pg,
        "ana",
        ANA_PW,
        "quipu",
        &["INSERT INTO lake.public.sales_history SELECT * FROM lake.public.sales_history LIMIT 1"],
    );
    assert!(!ana.ok);
    assert!(ana.stderr.contains("only admins"), "{}", ana.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_archive_example_runs_on_the_generated_data() {
    // The POS database of the harness, and a lake of its own named `lake`
    // (the shared Yachay lake stays as the other tests know it).
    let y = yachay();
    let dir = tempfile::tempdir().unwrap();
    crate::views::add_pg_source(dir.path(), "pos", y.pos.port, "pos");
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    let run = quipu(
        dir.path(),
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
    assert_eq!(run.code, 0, "{}", run.stderr);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/yachay/archive.sql"
    );
    let mut answers = vec![];
    // Twice: the second run changes nothing.
    for _ in 0..2 {
        let run = quipu(dir.path(), &["sql", "--format", "csv", "-f", example], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let months: Vec<Vec<String>> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("20"))
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        answers.push(months);
    }
    assert_eq!(answers[0], answers[1]);
    let months = &answers[0];
    let names: Vec<&str> = months.iter().map(|m| m[0].as_str()).collect();
    assert_eq!(names, ["2025-11", "2025-12", "2026-01"], "{months:?}");
    for m in months {
        assert_eq!(m[1], m[2], "lines of {m:?}");
        assert_eq!(m[3], m[4], "revenue of {m:?}");
        assert!(m[1].parse::<u64>().unwrap() > 100, "{m:?}");
    }
    let layout = files(&lake.path().join("archive/pos_sales"));
    for month in names {
        assert!(
            layout
                .iter()
                .any(|f| f.starts_with(&format!("month={month}/"))),
            "{layout:?}"
        );
    }
}
