//! deploy/: the manifests parse and use only the settings the binaries
//! know (deploy/check_manifests.py, with the test venv's PyYAML), and the
//! cluster processes refuse bad configuration with one clear sentence.

use crate::common::quipu;
use crate::servers::venv;

#[test]
fn deployment_files_parse_and_use_known_settings() {
    let checker = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/check_manifests.py");
    let out = std::process::Command::new(venv().join("bin/python"))
        .arg(checker)
        .output()
        .expect("run deploy/check_manifests.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: usize = stdout
        .trim()
        .strip_prefix("ok: ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(files >= 14, "{stdout}");
}

#[test]
fn cluster_processes_refuse_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // No token anywhere.
    let run = quipu(dir.path(), &["scheduler", "--port", "0"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("QUIPU_CLUSTER_TOKEN"), "{}", run.stderr);
    // A config file with a key the scheduler does not know.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "port = 50050\nhttp_prot = 50060\n").unwrap();
    let config = bad.to_str().unwrap();
    let token = [("QUIPU_CLUSTER_TOKEN", "t")];
    let run = quipu(dir.path(), &["scheduler", "--config", config], &token);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unknown key 'http_prot'"),
        "{}",
        run.stderr
    );
    // A value of the wrong type, and a file that is not TOML.
    std::fs::write(&bad, "port = \"fifty\"\n").unwrap();
    let run = quipu(dir.path(), &["scheduler", "--config", config], &token);
    assert!(
        run.stderr.contains("'port' must be an integer"),
        "{}",
        run.stderr
    );
    std::fs::write(&bad, "port = [\n").unwrap();
    let run = quipu(dir.path(), &["scheduler", "--config", config], &token);
    assert!(run.stderr.contains("is not valid TOML"), "{}", run.stderr);
    // An executor needs a scheduler address of the form HOST:PORT.
    let run = quipu(dir.path(), &["executor", "--scheduler", "nohost"], &token);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is not HOST:PORT"), "{}", run.stderr);
    // An executor whose token the scheduler refuses says so and exits.
    let y = tempfile::tempdir().unwrap();
    let port = crate::servers::free_port();
    let http = crate::servers::free_port();
    let mut sched = std::process::Command::new(crate::common::quipu_bin())
        .args(["--data-dir", y.path().to_str().unwrap(), "scheduler"])
        .args(["--pg-listen", "off", "--flight-listen", "off"])
        .args([
            "--port",
            &port.to_string(),
            "--http-port",
            &http.to_string(),
        ])
        .env("QUIPU_CLUSTER_TOKEN", "right")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = quipu(
        dir.path(),
        &[
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{port}"),
            "--catalog-url",
            &format!("http://127.0.0.1:{http}"),
        ],
        &[("QUIPU_CLUSTER_TOKEN", "s3cr3t-wrong-9q")],
    );
    sched.kill().unwrap();
    sched.wait().unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused the cluster token"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("s3cr3t"),
        "token printed: {}",
        run.stderr
    );
}

/// The checker finds what would break the scheduled reports: a timer whose
/// calendar systemd cannot read or that starts no unit of the folder, a
/// CronJob running a period `quipu report` does not know, without --out,
/// or writing to a folder that is not a volume.
#[test]
fn report_schedules_are_checked() {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .args(["-r", deploy, copy.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let root = copy.path().join("deploy");
    let edit = |file: &str, from: &str, to: &str| {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "systemd/quipu-report-daily.timer",
        "OnCalendar=*-*-* 06:00:00 UTC",
        "OnCalendar=every morning",
    );
    edit(
        "systemd/quipu-report-weekly.timer",
        "Unit=quipu-report@weekly.service",
        "Unit=quipu-report@hourly.service",
    );
    edit(
        "k8s/report-cronjob.yaml",
        "                - daily\n",
        "                - hourly\n",
    );
    edit(
        "k8s/report-cronjob.yaml",
        "                - --out\n                - /var/lib/quipu-reports\n              envFrom:",
        "                - --out\n                - /srv/reports\n              envFrom:",
    );
    edit(
        "k8s/report-cronjob.yaml",
        "concurrencyPolicy: Forbid",
        "concurrencyPolicy: Allow",
    );
    let out = std::process::Command::new(venv().join("bin/python"))
        .arg(root.join("check_manifests.py"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for expected in [
        "quipu-report-daily.timer: OnCalendar=every morning is not a calendar event",
        "quipu-report-weekly.timer: starts quipu-report@hourly.service: hourly is not a report period",
        "CronJob quipu-report-daily: `report` needs a period",
        "CronJob quipu-report-daily: --out /srv/reports is not a mounted volume",
        "CronJob quipu-report-daily: concurrencyPolicy should be Forbid",
        "check_manifests: 5 problem(s)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
