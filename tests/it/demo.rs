//! The README's main job, run as a user would (at SF 0.01 to stay quick):
//! `deploy/demo.sh --exit` starts its own servers, loads them, answers the
//! five questions, writes a daily report and stops everything.

use std::process::Command;

#[test]
fn demo_answers_the_five_questions_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/demo.sh");
    let run = |label: &str| {
        let out = Command::new("bash")
            .args([script, "--scale", "0.01", "--exit"])
            .env("QUIPU_BIN", crate::common::quipu_bin())
            .env("QUIPU_DEMO_DIR", dir.path())
            .output()
            .expect("run deploy/demo.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{label} demo run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = run("first");
    for section in [
        "== 1. Customer 360",
        "== 2. Real-time inventory",
        "== 3. Marketing effectiveness",
        "== 4. Sales reports",
        "== 5. Forecast",
        "== 6. The daily report",
    ] {
        assert!(first.contains(section), "missing {section}:\n{first}");
    }
    // One row per customer: 1,000 rows for 1,000 distinct customers.
    assert!(first.contains("| 1000 | 1000      |"), "{first}");
    // The stock change made in MongoDB shows in the next query.
    assert!(first.contains("1 document changed"), "{first}");
    let before = first.split("-- SKU-000001 now").nth(1).unwrap();
    let cached = first
        .split("-- SKU-000001 in the next query that accepts the 10-minute-old cache")
        .nth(1)
        .unwrap();
    let live = first
        .split("-- SKU-000001 in the next query that asks for live stock")
        .nth(1)
        .unwrap();
    let available = |s: &str| -> i64 {
        let row = s.lines().find(|l| l.starts_with("| SKU-000001")).unwrap();
        row.split('|').nth(5).unwrap().trim().parse().unwrap()
    };
    // A query that accepts the cache's age gets the cached stock; one that
    // asks for live stock sees the change at once.
    assert_eq!(available(cached), available(before));
    assert_eq!(available(live), available(before) - 10);
    // The 360 is answered from its cache, and EXPLAIN says so.
    assert!(
        first.contains("EXPLAIN names the cache it read: cache cache.customer_360, generation 1,"),
        "{first}"
    );
    assert!(first.contains("-- the three best customers, answered from the cache"));
    // Forecast rows for every category.
    assert_eq!(first.matches("| 2026-11-02 |").count(), 8, "{first}");
    // The report for the newest day, where the demo says it is.
    let report = dir.path().join("reports/daily-2026-10-31/index.html");
    assert!(
        first.contains(&format!("report: {}", report.display())),
        "{first}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(first.contains("stopping the servers"));
    assert!(
        !dir.path().join("servers.env").exists(),
        "servers left running"
    );

    // A second run starts over and gives the same answers.
    let second = run("second");
    let answers = |s: &str| {
        s.split("== 1.")
            .nth(1)
            .unwrap()
            .split("== The servers")
            .next()
            .unwrap()
            .lines()
            // Timings differ from run to run.
            .filter(|l| {
                !l.starts_with("   live:")
                    && !l.starts_with("   EXPLAIN names")
                    && !l.starts_with("refresh took")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(answers(&first), answers(&second));
}
