//! The interactive shell, driven in a real terminal (tmux): multi-line
//! statements ending with `;`, errors that do not end the session, `\q`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::quipu_bin;

/// A tmux server of our own (own socket), so the test touches nothing else.
struct Tmux {
    socket: String,
    target: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is needed for the shell test (tests/run.sh installs it: apt-get install tmux)")
    }

    /// Types `text` and Enter. Keys go as hex codes (`-H`) because tmux
    /// would take a trailing `;` for its own command separator.
    fn keys(&self, text: &str) {
        let hex: Vec<String> = text.bytes().map(|b| format!("{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", &self.target, "-H"];
        args.extend(hex.iter().map(String::as_str));
        self.run(&args);
        self.run(&["send-keys", "-t", &self.target, "Enter"]);
    }

    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", &self.target]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `needle`; returns the screen.
    fn wait(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `needle` shows at least `n` times (a new prompt after a
    /// statement: keys typed before rustyline reads again can be lost).
    fn wait_count(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.screen().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} x {needle:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", &self.target])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn interactive_shell_runs_multiline_statements() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock").display().to_string(),
        target: "quipu-shell".to_string(),
    };
    let cmd = format!(
        "{} --data-dir {} sql",
        quipu_bin().display(),
        dir.path().join("data").display()
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "quipu-shell",
        "-x",
        "200",
        "-y",
        "50",
        &cmd,
    ]);
    assert!(
        started.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    tmux.wait("quipu> ");
    tmux.keys("SELECT 40 + 2");
    tmux.wait("...> ");
    tmux.keys("  AS answer;");
    let screen = tmux.wait("(1 row)");
    assert!(
        screen.contains("answer") && screen.contains("| 42"),
        "{screen}"
    );
    tmux.keys("SELECT * FROM nowhere;");
    let screen = tmux.wait("error:");
    assert!(screen.contains("nowhere"), "{screen}");
    // The session survives the error and keeps its settings.
    let prompts = tmux.screen().matches("quipu> ").count();
    tmux.keys("SET quipu.execution = 'local';");
    tmux.wait_count("quipu> ", prompts + 1);
    tmux.keys("SHOW quipu.execution;");
    let screen = tmux.wait("| local");
    assert!(screen.contains("quipu.execution"), "{screen}");
    tmux.keys("\\q");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "the shell did not exit on \\q");
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = std::fs::read_to_string(dir.path().join("data/history.txt")).unwrap();
    assert!(history.contains("SHOW quipu.execution;"), "{history}");
}
