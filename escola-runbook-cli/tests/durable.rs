//! `resume` and the deploy lock, driven through the binary with a fake `php`
//! on PATH and `kill -9` for the crash.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct App {
    dir: tempfile::TempDir,
    path: String,
}

/// An app checkout with a `php` that sleeps on `artisan down` (so a run can
/// be killed there) and succeeds otherwise, and a passing smoke script.
fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    write_exec(
        &bin.join("php"),
        "#!/bin/sh\nif [ \"$1 $2\" = \"artisan down\" ] && [ -f \"$HANG\" ]; then sleep 60; fi\necho php \"$@\"\n",
    );
    write_exec(
        &dir.path().join("scripts/smoke.sh"),
        "#!/bin/sh\necho smoke ok\n",
    );
    for tool in ["git", "composer"] {
        write_exec(&bin.join(tool), &format!("#!/bin/sh\necho {tool} \"$@\"\n"));
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    App { dir, path }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl App {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
        c.current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env("HANG", self.dir.path().join("hang"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .args(args);
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn runs(&self) -> PathBuf {
        self.dir.path().join(".escola-runbook/runs")
    }

    /// Waits until some journal mentions `needle`.
    fn wait_for(&self, needle: &str) {
        let started = Instant::now();
        loop {
            let found = std::fs::read_dir(self.runs())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path().join("journal.jsonl")).ok())
                .any(|j| j.contains(needle));
            if found {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never saw {needle}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn report(&self) -> String {
        let out = self.output(&["report", "latest"]);
        String::from_utf8(out.stdout).unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn crash_during_maintenance(app: &App) {
    std::fs::write(app.dir.path().join("hang"), "").unwrap();
    let mut child = app.spawn(&["run", "--yes", "--phase", "deploy", "--operator", "ana"]);
    app.wait_for("\"step\":\"maintenance-on\",\"attempt\":1");
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    std::fs::remove_file(app.dir.path().join("hang")).unwrap();
}

#[test]
fn resume_after_kill_9_asks_about_the_interrupted_action() {
    let app = app();
    crash_during_maintenance(&app);
    let out = app.output(&["resume", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("step `maintenance-on`"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("--on-interrupted rerun|done|abort"),
        "{}",
        text(&out)
    );

    let out = app.output(&[
        "resume",
        "--yes",
        "--operator",
        "bruno",
        "--on-interrupted",
        "done",
        "--comment",
        "site shows the maintenance page",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 interrupted"), "{}", text(&out));
    let report = app.report();
    assert!(
        report.contains("marked done by bruno after an interruption (not re-run): site shows the maintenance page"),
        "{report}"
    );
    assert!(report.contains("**Verdict:** **succeeded**"), "{report}");
    // The crashed process's lock was taken over by the same run, and said so.
    let json =
        String::from_utf8(app.output(&["report", "latest", "--format", "json"]).stdout).unwrap();
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        record["broken_locks"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );
    assert_eq!(record["resumes"][0]["operator"], "bruno");
    // Nothing left to resume.
    let out = app.output(&["resume", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("nothing to resume"), "{}", text(&out));
}

#[test]
fn a_second_deploy_is_refused_while_the_first_holds_the_lock() {
    let app = app();
    std::fs::write(app.dir.path().join("hang"), "").unwrap();
    let mut first = app.spawn(&["run", "--yes", "--phase", "deploy", "--operator", "ana"]);
    app.wait_for("maintenance-on");
    let out = app.output(&["run", "--yes", "--phase", "deploy", "--operator", "bruno"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is held by ana on"), "{}", text(&out));
    // A dry-run changes nothing and is not blocked.
    let out = app.output(&["run", "--yes", "--dry-run", "--phase", "pre-deploy"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_file(app.dir.path().join("hang")).unwrap();
    // Dead holder: reported as stale, never silently taken.
    let out = app.output(&["run", "--yes", "--phase", "deploy", "--operator", "bruno"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("it looks stale"), "{}", text(&out));
    let out = app.output(&[
        "run",
        "--yes",
        "--phase",
        "deploy",
        "--operator",
        "bruno",
        "--break-lock",
        "--reason",
        "ana's laptop crashed",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("broken by bruno: ana's laptop crashed"),
        "{}",
        text(&out)
    );
    assert!(
        !app.runs()
            .join("locks")
            .read_dir()
            .unwrap()
            .any(|e| e.is_ok()),
        "released after the run"
    );
}
