//! A canary secret, given by reference, must never surface: not in CLI
//! output, logs, errors, EXPLAIN, nor the catalog files.

use crate::common::*;

fn assert_clean(what: &str, text: &str, canary: &str) {
    assert!(
        !text.contains(canary),
        "the secret leaked into {what}:\n{text}"
    );
}

#[test]
fn canary_secret_never_appears() {
    let (_dir, lake, data) = lake_on_disk();
    let canary = format!(
        "CANARY-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let env = [
        ("QUIPU_TEST_CANARY", canary.as_str()),
        ("QUIPU_LOG", "trace"),
    ];
    let url = format!("file://{}", lake.display());
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let r = quipu(&data, args, &env);
        outputs.push((args.join(" "), r.stdout.clone() + &r.stderr));
        r
    };
    // A lake whose S3 secret is a reference; file:// never uses it.
    let r = run(&[
        "catalog",
        "add-source",
        "lake",
        "--kind",
        "lake",
        "--url",
        &url,
        "-o",
        "secret_access_key=env:QUIPU_TEST_CANARY",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // An S3 source that cannot be reached: the secret is resolved and used,
    // and the failure must not show it.
    let r = run(&[
        "catalog",
        "add-source",
        "s3lake",
        "--kind",
        "lake",
        "--url",
        "s3://bucket/prefix",
        "-o",
        "endpoint=http://127.0.0.1:9",
        "-o",
        "allow_http=true",
        "-o",
        "region=us-east-1",
        "-o",
        "access_key_id=AKIDTEST",
        "-o",
        "secret_access_key=env:QUIPU_TEST_CANARY",
    ]);
    assert_eq!(
        r.code, 1,
        "an unreachable S3 endpoint must fail: {}",
        r.stdout
    );
    assert!(r.stderr.contains("s3lake"), "{}", r.stderr);
    // A literal secret is refused, and not echoed.
    let r = run(&[
        "catalog",
        "add-source",
        "bad",
        "--kind",
        "lake",
        "--url",
        &url,
        "-o",
        &format!("secret_access_key={canary}"),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("must be a reference"), "{}", r.stderr);
    let r = run(&["catalog", "describe", "lake"]);
    assert!(
        r.stdout.contains("env:QUIPU_TEST_CANARY"),
        "the reference itself is shown: {}",
        r.stdout
    );
    run(&["catalog", "list", "--tables"]);
    run(&[
        "-v",
        "sql",
        "EXPLAIN VERBOSE SELECT count(*) FROM lake.public.orders",
    ]);
    run(&[
        "-v",
        "sql",
        "--execution",
        "cluster",
        "SELECT count(*) FROM lake.public.orders",
    ]);
    run(&["sql", "SELECT * FROM information_schema.df_settings"]);
    run(&["sql", "SELECT nonsense FROM lake.public.orders"]);
    for (what, text) in &outputs {
        assert_clean(what, text, &canary);
    }
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert_clean(&path.display().to_string(), &hay, &canary);
    }
}
