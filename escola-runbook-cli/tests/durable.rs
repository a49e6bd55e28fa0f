//! `resume` and the deploy lock, driven through the binary with a fake `php`
//! on PATH and `kill -9` for the crash.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct App {
    dir: tempfile::TempDir,
    path: String,
}

/// An app checkout with a `php` that logs every call to `php.log`, sleeps
/// on `artisan down` (so a run can be killed there) and succeeds
/// otherwise, and a passing smoke script.
fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    write_exec(
        &bin.join("php"),
        "#!/bin/sh\necho \"$*\" >> \"$PHP_LOG\"\nif [ \"$1 $2\" = \"artisan down\" ] && [ -f \"$HANG\" ]; then sleep 60; fi\necho php \"$@\"\n",
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
            .env("PHP_LOG", self.dir.path().join("php.log"))
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
    // Its lock file is still there, but nobody runs under it: `status`
    // says so, and does not call the run or its step running.
    let status = app.output(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let shown = text(&status);
    assert!(shown.contains("state: unfinished"), "{shown}");
    assert!(
        shown.contains("interrupted       deploy/maintenance-on"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "stale: that process is no longer running on this host; `resume` takes it over"
        ),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&app.output(&["status", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["lock_stale"], "dead_process", "{json}");
    assert_eq!(json["state"], "unfinished", "{json}");
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
    assert!(
        text(&out).contains(
            "; wait for that run to finish, or break the lock with --break-lock --reason \"...\""
        ),
        "{}",
        text(&out)
    );
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

/// A Markdown runbook titled `title` of `steps` command steps `{prefix}-1`,
/// `{prefix}-2`...: each hangs while the file `hang-{prefix}-N` exists
/// (leaving its pid in `orphan-{prefix}-N`, and never writing the marker
/// when it finally ends), else appends its id to `marker`.
fn steps_doc(title: &str, prefix: &str, steps: usize) -> String {
    let mut doc = format!("# {title}\n\n## Passos\n");
    for n in 1..=steps {
        doc.push_str(&format!(
            "- [ ] {prefix} {n}\n  ```bash\n  if [ -f hang-{prefix}-{n} ]; then echo $$ > orphan-{prefix}-{n}; exec sleep 30; fi; echo {prefix}-{n} >> marker\n  ```\n"
        ));
    }
    doc
}

impl App {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.file(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// Starts `args`, waits until step `step` has started, and SIGKILLs it
    /// there; then lets the step's orphaned shell go.
    fn kill_during(&self, args: &[&str], step: &str) {
        let mut child = self.spawn(args);
        self.wait_for(&format!("\"step\":\"{step}\",\"attempt\":1"));
        std::thread::sleep(Duration::from_millis(200));
        child.kill().unwrap(); // SIGKILL: no cleanup at all
        child.wait().unwrap();
        let orphan = self.read(&format!("orphan-{step}"));
        if let Ok(pid) = orphan.trim().parse::<i32>() {
            // SAFETY: kill(2) on a pid this test's step wrote; at worst ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// The one run's journal.
    fn journal(&self) -> String {
        let runs: Vec<PathBuf> = std::fs::read_dir(self.runs())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path().join("journal.jsonl"))
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        std::fs::read_to_string(&runs[0]).unwrap()
    }
}

const RESUME: &[&str] = &["resume", "--yes", "--on-interrupted", "rerun"];

/// The run id a journal's first record names.
fn run_id(journal: &str) -> String {
    let first: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    first["run"]["run_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_markdown_run_killed_three_times_resumes_its_own_document() {
    let app = app();
    app.write("rb.md", &steps_doc("Deploy por passos", "passo", 4));
    app.write("hang-passo-1", "");
    app.kill_during(&["run", "--yes", "--markdown", "rb.md"], "passo-1");
    // Killed during its first step: resumed with no runbook flag, it runs
    // the document again, not the built-in runbook.
    std::fs::remove_file(app.file("hang-passo-1")).unwrap();
    app.write("hang-passo-3", "");
    app.kill_during(RESUME, "passo-3");
    assert_eq!(app.read("marker"), "passo-1\npasso-2\n");
    // Killed after finished steps: the document's steps are all there.
    std::fs::remove_file(app.file("hang-passo-3")).unwrap();
    app.write("hang-passo-4", "");
    app.kill_during(RESUME, "passo-4");
    std::fs::remove_file(app.file("hang-passo-4")).unwrap();
    let out = app.output(RESUME);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        app.read("marker"),
        "passo-1\npasso-2\npasso-3\npasso-4\n",
        "each finished step exactly once"
    );
    assert!(
        !app.file("php.log").exists(),
        "php was called: {}",
        app.read("php.log")
    );
    let journal = app.journal();
    assert_eq!(journal.matches("\"event\":\"run_resumed\"").count(), 3);
    let source = format!(
        "\"source\":{{\"kind\":\"markdown_file\",\"path\":\"{}\"",
        app.file("rb.md").display()
    );
    assert_eq!(journal.matches(&source).count(), 4, "{journal}");
    let report = app.report();
    assert!(report.contains("**Verdict:** **succeeded**"), "{report}");
    assert!(
        report.contains(&format!(
            "- **Runbook source:** Markdown runbook `{}`, sha256 `",
            app.file("rb.md").display()
        )),
        "{report}"
    );
    // The document comes back ticked, from the recorded source.
    let out = app.output(&["report", "latest", "--original"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ticked = String::from_utf8(out.stdout).unwrap();
    assert!(ticked.contains("- [x] passo 4"), "{ticked}");
    // Edited since, it is refused when implied and ticked with a warning
    // when named.
    app.write("rb.md", &steps_doc("Deploy por passos (v2)", "passo", 4));
    let out = app.output(&["report", "latest", "--original"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("changed since the run loaded it: sha256 "),
        "{}",
        text(&out)
    );
    let out = app.output(&["report", "latest", "--original", "rb.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("warning: --original rb.md is not the document run"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_resume_refuses_a_runbook_that_is_not_the_runs() {
    let app = app();
    let doc = steps_doc("Deploy por passos", "passo", 2);
    app.write("rb.md", &doc);
    app.write("hang-passo-1", "");
    app.kill_during(&["run", "--yes", "--markdown", "rb.md"], "passo-1");
    std::fs::remove_file(app.file("hang-passo-1")).unwrap();
    let before = app.journal();
    let refused = |args: &[&str], expected: &[&str]| {
        let out = app.output(args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        for e in expected {
            assert!(text(&out).contains(e), "{e:?} in {}", text(&out));
        }
        assert_eq!(app.journal(), before, "nothing was run");
        assert!(!app.file("marker").exists() && !app.file("php.log").exists());
    };
    let path = app.file("rb.md").display().to_string();
    // Its bytes changed: both hashes, the path, what to do.
    app.write("rb.md", &format!("{doc}- [ ] Passo novo\n"));
    refused(
        RESUME,
        &[
            &format!("the run's Markdown runbook {path} changed since the run loaded it: sha256 "),
            &format!("restore the version the run started with, or pass --markdown {path}"),
        ],
    );
    // Given explicitly, the step-by-step comparison decides: a new step has
    // no place in the run's record.
    refused(
        &[RESUME, &["--markdown", "rb.md"]].concat(),
        &[
            "step `passo-novo` (Passo novo) is new",
            &format!("came from Markdown runbook {path}"),
        ],
    );
    // Gone.
    std::fs::remove_file(app.file("rb.md")).unwrap();
    refused(
        RESUME,
        &[&format!("the run's Markdown runbook {path} cannot be read")],
    );
    app.write("rb.md", &doc);
    // Another kind: "latest" is then the latest run of that runbook (none
    // here); named by id, the run is refused.
    let out = app.output(&["export-runbook", "-o", "builtin.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    refused(
        &[RESUME, &["--runbook", "builtin.toml"]].concat(),
        &["no run of runbook `Escola Connect API — Runbook de Deploy` (TOML runbook file"],
    );
    let id = run_id(&before);
    refused(
        &[RESUME, &[id.as_str(), "--runbook", "builtin.toml"]].concat(),
        &[
            &format!("the run came from Markdown runbook {path}"),
            "not from TOML runbook file",
        ],
    );
    refused(
        &[RESUME, &[id.as_str(), "--builtin"]].concat(),
        &[
            "not from the built-in runbook",
            &format!("(or --markdown {path})"),
        ],
    );
    // Its commands stay where they ran unless the document is named.
    let bin = app.file("bin").display().to_string();
    refused(
        &[RESUME, &["--app-dir", bin.as_str()]].concat(),
        &[&format!(
            "--app-dir {bin}: run {id} ran its commands in {}",
            app.dir.path().display()
        )],
    );
    // A journal from before sources were recorded needs the runbook named.
    let journal = std::fs::read_dir(app.runs())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("journal.jsonl"))
        .find(|p| p.is_file())
        .unwrap();
    let mut lines: Vec<serde_json::Value> = before
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0]["run"].as_object_mut().unwrap().remove("source");
    let old: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&journal, &old).unwrap();
    let out = app.output(RESUME);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not record which runbook it ran")
            && text(&out).contains("--markdown RUNBOOK.md, --runbook FILE.toml or --builtin"),
        "{}",
        text(&out)
    );
    let out = app.output(&[RESUME, &["--markdown", "rb.md"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(app.read("marker"), "passo-1\npasso-2\n");
}

#[test]
fn resume_picks_the_latest_run_of_the_runbook_it_is_given() {
    let app = app();
    app.write("a.md", &steps_doc("Runbook A", "a", 2));
    app.write("b.md", &steps_doc("Runbook B", "b", 2));
    app.write("hang-a-1", "");
    app.write("hang-b-1", "");
    app.kill_during(&["run", "--yes", "--markdown", "a.md"], "a-1");
    app.kill_during(&["run", "--yes", "--markdown", "b.md"], "b-1");
    std::fs::remove_file(app.file("hang-a-1")).unwrap();
    std::fs::remove_file(app.file("hang-b-1")).unwrap();
    let run_of = |title: &str| {
        std::fs::read_dir(app.runs())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path().join("journal.jsonl")).unwrap_or_default())
            .find(|j| j.contains(&format!("\"name\":\"{title}\"")))
            .map(|j| run_id(&j))
            .unwrap()
    };
    let (run_a, run_b) = (&run_of("Runbook A"), &run_of("Runbook B"));
    let out = app.output(&[RESUME, &["--markdown", "a.md"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "the latest run in .escola-runbook/runs, {run_b}, is of runbook `Runbook B` (Markdown runbook {}",
            app.file("b.md").display()
        )) && text(&out).contains(&format!("resuming {run_a}, the latest of runbook `Runbook A`")),
        "{}",
        text(&out)
    );
    assert_eq!(app.read("marker"), "a-1\na-2\n");
    // With no runbook flag: the latest run, with its own runbook.
    let out = app.output(RESUME);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("resuming run {run_b}")),
        "{}",
        text(&out)
    );
    assert_eq!(app.read("marker"), "a-1\na-2\nb-1\nb-2\n");
    // Nothing of a runbook that has no run here.
    app.write("c.md", &steps_doc("Runbook C", "c", 1));
    let out = app.output(&[RESUME, &["--markdown", "c.md"]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "no run of runbook `Runbook C` (Markdown runbook {}",
            app.file("c.md").display()
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn a_built_in_run_resumes_only_with_the_configuration_it_ran_with() {
    let app = app();
    crash_during_maintenance(&app);
    let out = app.output(&[
        "resume",
        "--yes",
        "--on-interrupted",
        "done",
        "--set",
        "base_url=http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("the built-in runbook's configuration differs from the run's")
            && text(&out).contains(
                r#"`smoke`: "manual" then, {"native":{"check":"smoke","params":{"suite":"escola"}}} now"#
            )
            && text(&out).contains("pass --builtin to resume with this configuration"),
        "{}",
        text(&out)
    );
    // From another directory, the run's own app directory is kept.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = app
        .cmd(&[
            "resume",
            "--yes",
            "--on-interrupted",
            "done",
            "--run-dir",
            app.runs().to_str().unwrap(),
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_markdown_run_resumes_with_the_phase_level_it_was_imported_with() {
    let app = app();
    // Read by inference, `## Passos` is the one phase and each `###` a
    // section; with `--phase-level 3`, each `###` is a phase of its own.
    let mut doc = String::from("# Deploy em partes\n\n## Passos\n");
    for part in ["Preparar", "Publicar"] {
        doc.push_str(&format!(
            "### {part}\n- [ ] passo {part}\n  ```bash\n  if [ -f hang-{part} ]; then echo $$ > orphan-passo-{0}; exec sleep 30; fi; echo {part} >> marker\n  ```\n",
            part.to_lowercase()
        ));
    }
    app.write("rb.md", &doc);
    app.write("hang-Publicar", "");
    app.kill_during(
        &["run", "--yes", "--markdown", "rb.md", "--phase-level", "3"],
        "passo-publicar",
    );
    std::fs::remove_file(app.file("hang-Publicar")).unwrap();
    let out = app.output(RESUME);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(app.read("marker"), "Preparar\nPublicar\n");
    let journal = app.journal();
    assert!(journal.contains("\"phase_level\":3"), "{journal}");
    let report = app.report();
    assert!(report.contains("Preparar"), "{report}");
    // `### Publicar` is a phase only at level 3: the resumed run found it.
    assert_eq!(
        journal
            .matches("\"event\":\"phase_started\",\"phase\":\"publicar\"")
            .count(),
        2,
        "{journal}"
    );
}
