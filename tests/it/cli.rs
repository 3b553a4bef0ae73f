//! The `quipu` binary as a user runs it: exit codes, messages, formats.

use crate::common::*;

#[test]
fn cli_round_trip_formats_and_exit_codes() {
    let (_dir, lake, data) = lake_on_disk();
    let lake_str = lake.display().to_string();
    let add_lake = [
        "catalog",
        "add-source",
        "lake",
        "--kind",
        "lake",
        "--url",
        &lake_str,
    ];

    let r = quipu(&data, &add_lake, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("with 4 tables"), "{}", r.stdout);

    // Duplicate name: exit 1, a sentence naming it, catalog unchanged.
    let r = quipu(&data, &add_lake, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.trim(), "error: source `lake` already exists");

    // Unknown option, missing path, bad name, unavailable kind: exit 1, nothing written.
    for (args, needle) in [
        (
            vec![
                "catalog",
                "add-source",
                "x",
                "--kind",
                "lake",
                "--url",
                &lake_str,
                "-o",
                "colour=red",
            ],
            "unknown option `colour`",
        ),
        (
            vec![
                "catalog",
                "add-source",
                "x",
                "--kind",
                "lake",
                "--url",
                "/definitely/not/here",
            ],
            "does not exist",
        ),
        (
            vec![
                "catalog",
                "add-source",
                "Bad-Name",
                "--kind",
                "lake",
                "--url",
                &lake_str,
            ],
            "Bad-Name",
        ),
        (
            vec![
                "catalog",
                "add-source",
                "crm",
                "--kind",
                "postgres",
                "-o",
                "host=127.0.0.1",
                "-o",
                "port=1",
                "-o",
                "dbname=crm",
            ],
            // A source that does not answer: named, and nothing is added.
            "source `crm`: cannot connect to PostgreSQL",
        ),
        (
            vec![
                "catalog",
                "add-source",
                "crm",
                "--kind",
                "postgres",
                "-o",
                "host=h",
                "-o",
                "dbname=crm",
                "-o",
                "password=hunter2",
            ],
            "must be a reference",
        ),
    ] {
        let r = quipu(&data, &args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(
            !r.stderr.contains("Error {") && !r.stderr.contains("panicked"),
            "{}",
            r.stderr
        );
    }
    let r = quipu(&data, &["catalog", "list"], &[]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("lake") && !r.stdout.contains(" x ") && !r.stdout.contains("crm"),
        "{}",
        r.stdout
    );

    // Usage errors exit 2.
    assert_eq!(quipu(&data, &["catalog", "frobnicate"], &[]).code, 2);
    assert_eq!(
        quipu(&data, &["sql", "--format", "xml", "SELECT 1"], &[]).code,
        2
    );

    // Formats.
    let sql = "SELECT year, count(*) AS n FROM lake.public.orders GROUP BY year ORDER BY year";
    let n2025 = (0..ORDERS).map(order).filter(|o| o.year == 2025).count();
    let n2026 = ORDERS as usize - n2025;
    let r = quipu(&data, &["sql", "--format", "csv", sql], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("year,n\n2025,{n2025}\n2026,{n2026}\n"));
    let r = quipu(&data, &["sql", "--format", "json", sql], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["year"], 2025);
    assert_eq!(lines[1]["n"], n2026 as i64);
    let r = quipu(&data, &["sql", sql], &[]);
    assert!(
        r.stdout.contains("| 2025 |") && r.stdout.contains("(2 rows)"),
        "{}",
        r.stdout
    );
    let r = quipu(
        &data,
        &["sql", "--execution", "cluster", "--format", "csv", sql],
        &[],
    );
    assert_eq!(
        r.stdout,
        format!("year,n\n2025,{n2025}\n2026,{n2026}\n"),
        "{}",
        r.stderr
    );

    // Several statements; SQL from stdin; query errors exit 1 with one line.
    let r = quipu(
        &data,
        &[
            "sql",
            "--format",
            "csv",
            "SET quipu.execution = 'local'; SELECT 41 + 1 AS x",
        ],
        &[],
    );
    assert_eq!(r.stdout, "x\n42\n", "{}", r.stderr);
    let r = quipu(&data, &["sql", "SELECT * FROM lake.public.missing"], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("lake.public.missing") && r.stderr.lines().count() == 1,
        "{}",
        r.stderr
    );
    let r = quipu(&data, &["sql", "   "], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("empty query"), "{}", r.stderr);

    // add-table with declared columns, describe, drop.
    let r = quipu(
        &data,
        &[
            "catalog",
            "add-table",
            "lake.marketing.ga_typed",
            "--path",
            "marketing/ga/",
            "--format",
            "csv",
            "-c",
            "date:date",
            "-c",
            "utm_campaign:text",
            "-c",
            "sessions:bigint",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = quipu(
        &data,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT sum(sessions) AS s, arrow_typeof(min(date)) AS t FROM lake.marketing.ga_typed",
        ],
        &[],
    );
    assert_eq!(r.stdout, "s,t\n35,Date32\n", "{}", r.stderr);
    let r = quipu(
        &data,
        &["catalog", "describe", "lake.marketing.ga_typed"],
        &[],
    );
    assert!(
        r.stdout.contains("declared") && r.stdout.contains("Int64"),
        "{}",
        r.stdout
    );
    let r = quipu(
        &data,
        &[
            "catalog",
            "add-table",
            "lake.marketing.bad",
            "--path",
            "marketing/ga/",
            "-c",
            "x:wibble",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("wibble"), "{}", r.stderr);
    let r = quipu(&data, &["catalog", "drop", "lake.marketing.ga_typed"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = quipu(&data, &["catalog", "drop", "lake.marketing.ga_typed"], &[]);
    assert_eq!(r.code, 1);
    let r = quipu(&data, &["catalog", "refresh", "lake"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no changes"), "{}", r.stdout);
    let r = quipu(&data, &["catalog", "drop", "lake"], &[]);
    assert_eq!(r.code, 0);
    let r = quipu(
        &data,
        &["sql", "SELECT count(*) FROM lake.public.orders"],
        &[],
    );
    assert_eq!(r.code, 1);
}

#[test]
fn sql_from_stdin_and_help_on_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(quipu_bin())
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "sql",
            "--format",
            "csv",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 1 AS a;\nSELECT 'two' AS b;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\n1\nb\ntwo\n");
    for verb in [
        vec!["--help"],
        vec!["sql", "--help"],
        vec!["catalog", "--help"],
        vec!["catalog", "add-source", "--help"],
        vec!["catalog", "add-table", "--help"],
        vec!["catalog", "list", "--help"],
        vec!["catalog", "describe", "--help"],
        vec!["catalog", "drop", "--help"],
        vec!["catalog", "refresh", "--help"],
    ] {
        let r = quipu(&data, &verb, &[]);
        assert_eq!(r.code, 0, "{verb:?}");
        assert!(r.stdout.contains("Usage:"), "{verb:?}: {}", r.stdout);
        if verb.len() > 1 || verb[0] != "--help" {
            assert!(
                r.stdout.contains("Example"),
                "{verb:?} has no example: {}",
                r.stdout
            );
        }
    }
}

/// An empty catalog file is not a new catalog: every command that opens it
/// (catalog, sql, users, the server) refuses with one line naming the file,
/// exit 1, and the file stays as it was. A missing file is still created
/// (0600, in a 0700 directory).
#[test]
fn an_empty_catalog_file_is_refused_in_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let r = quipu(&data, &["catalog", "list"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let file = data.join("catalog.redb");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&file), 0o600);

    std::fs::write(&file, b"").unwrap();
    let expected = format!(
        "error: catalog file {} is empty (0 bytes): it is not a Quipu catalog; move it away or restore a backup",
        file.display()
    );
    for args in [
        vec!["catalog", "list"],
        vec!["sql", "SELECT 1"],
        vec!["users", "list"],
    ] {
        let r = quipu(&data, &args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stdout);
        assert_eq!(r.stderr.trim_end(), expected, "{args:?}");
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{args:?}");
    }
    // The server too: it must not start on an empty catalog.
    let mut child = std::process::Command::new(quipu_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["scheduler", "--port", "0", "--http-port", "0"])
        .env_remove("QUIPU_DATA_DIR")
        .env("QUIPU_CLUSTER_TOKEN", "t0ken-for-the-test")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the scheduler started on an empty catalog file");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(last.ends_with(&expected["error: ".len()..]), "{stderr}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "file untouched");
}
