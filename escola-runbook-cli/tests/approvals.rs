//! Approvals through the binary, with two processes: `run` waits in one,
//! `approve` / `reject` decide from another; `run --no-wait` then `resume`;
//! `status` and `history` read what the runs left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod journals;

const APPROVERS: &str = r#"name = "escola-restore"

[[metadata.approvers]]
name = "ana"
roles = ["dba"]

[[metadata.approvers]]
name = "carla"
roles = ["dba"]

[[phases]]
id = "rollback-db"
title = "Rollback do banco"

[[phases.steps]]
id = "restore-snapshot"
title = "Restaurar snapshot do banco (com aval de DBA)"
"#;

const AFTER: &str = r#"
[[phases.steps]]
id = "verify"
title = "Verificar"
command = "echo restored"
"#;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    /// A directory with `runbook.toml` whose restore step has `approval`.
    fn new(approval: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{APPROVERS}approval = {approval}\n{AFTER}");
        std::fs::write(dir.path().join("runbook.toml"), text).unwrap();
        Dir { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
        c.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .args(args);
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `run` as ana with `--yes`, in the background.
    fn run(&self, extra: &[&str]) -> Child {
        let mut args = vec![
            "run",
            "--runbook",
            "runbook.toml",
            "--yes",
            "--operator",
            "ana",
        ];
        args.extend_from_slice(extra);
        self.cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn runs(&self) -> PathBuf {
        self.dir.path().join(".escola-runbook/runs")
    }

    /// The only run's directory.
    fn run_dir(&self) -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.runs())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("journal.jsonl").is_file())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs.remove(0)
    }

    /// Waits until the run's journal says `needle`.
    fn wait_for(&self, needle: &str) {
        journals::wait_for(&self.runs(), needle);
    }

    /// Carla's `verb` (approve or reject) of `step` with `comment`, which
    /// must be recorded.
    fn decided(&self, verb: &str, step: &str, comment: &str) {
        let out = self.output(&[verb, "latest", step, "--as", "carla", "--comment", comment]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    /// Runs `args`, which must be refused with exit 2 saying `needle`.
    fn refused(&self, args: &[&str], needle: &str) {
        let out = self.output(args);
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains(needle), "{said}");
    }

    fn report(&self, name: &str) -> String {
        std::fs::read_to_string(self.run_dir().join(name)).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn decisions(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("decisions.jsonl")).ok()
}

#[test]
fn only_an_approver_with_the_role_who_is_not_the_operator_lets_the_run_finish() {
    let d = Dir::new(r#"{ role = "dba", deadline = "10m", on_deadline = "reject" }"#);
    let run = d.run(&[]);
    d.wait_for("approval_requested");
    let run_dir = d.run_dir();

    d.refused(
        &["approve", "latest", "restore-snapshot", "--as", "ana"],
        "`ana` is the operator of this run",
    );
    d.refused(
        &["approve", "latest", "restore-snapshot", "--as", "bob"],
        "`bob` is not an approver of this runbook",
    );
    d.refused(
        &["approve", "latest", "verify", "--as", "carla"],
        "step `verify` of run ",
    );
    d.refused(
        &["approve", "latest", "verify", "--as", "carla"],
        "is not waiting for an approval (step `restore-snapshot` is)",
    );
    assert_eq!(decisions(&run_dir), None, "nothing recorded when refused");

    // While it waits, status shows it running under its lock, and whom it waits for.
    let status = d.output(&["status"]);
    let shown = text(&status.stdout);
    assert!(
        shown.contains("state: running, at rollback-db/restore-snapshot"),
        "{shown}"
    );
    assert!(
        shown.contains("waiting_approval  rollback-db/restore-snapshot"),
        "{shown}"
    );
    assert!(
        shown.contains("waits for approval by role dba: carla (deadline "),
        "{shown}"
    );
    assert!(shown.contains("lock: held by ana on "), "{shown}");

    let asked = Instant::now();
    d.decided("approve", "restore-snapshot", "snapshot de ontem conferido");
    let out = run.wait_with_output().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ui = text(&out.stderr);
    assert!(
        ui.contains("restore-snapshot waits for approval by role dba: carla")
            && ui.contains("approve with: escola-runbook approve "),
        "{ui}"
    );
    for report in ["report.md", "report.json", "junit.xml"] {
        let body = d.report(report);
        assert!(body.contains("approved by carla at "), "{report}: {body}");
        assert!(body.contains("snapshot de ontem conferido"), "{report}");
    }
    // The run is over: a late decision is refused.
    d.refused(
        &["approve", "latest", "restore-snapshot", "--as", "carla"],
        "has finished",
    );

    let status = d.output(&["status", "--format", "json"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["state"], "finished");
    assert_eq!(json["verdict"], "succeeded");
    assert_eq!(json["steps"][0]["status"], "passed");
    assert_eq!(json["steps"][0]["approval"]["result"]["approver"], "carla");
    let status = d.output(&["status"]);
    let shown = text(&status.stdout);
    assert!(shown.contains("verdict: succeeded (exit 0)"), "{shown}");
    assert!(shown.contains("approved by carla at "), "{shown}");
}

#[test]
fn a_markdown_runbook_binds_the_approval_and_its_ticked_copy_names_the_approver() {
    let d = Dir::new(r#"{ role = "dba" }"#);
    std::fs::write(
        d.dir.path().join("RUNBOOK.md"),
        "# Restore\n\n<!-- approver: carla roles=dba -->\n\n## 1. Banco\n\n\
         - [ ] Restaurar snapshot do banco <!-- approval: role=dba deadline=10m -->\n\
         - [ ] Avisar o time\n",
    )
    .unwrap();
    let run = d
        .cmd(&[
            "run",
            "--markdown",
            "RUNBOOK.md",
            "--yes",
            "--operator",
            "ana",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    d.wait_for("approval_requested");
    d.decided("approve", "restaurar-snapshot-do-banco", "ok");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ticked = d.output(&["report", "latest", "--original"]);
    let doc = text(&ticked.stdout);
    assert!(
        doc.contains("- [x] Restaurar snapshot do banco <!-- approval: role=dba deadline=10m -->\n  > **run:** passed — approved by carla at "),
        "{doc}"
    );
    assert!(doc.contains(" — ok · "), "{doc}");
}

#[test]
fn at_the_deadline_a_reject_fails_the_step_and_its_phase() {
    let d = Dir::new(r#"{ role = "dba", deadline = "2s", on_deadline = "reject" }"#);
    let out = d.run(&[]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&d.report("report.json")).unwrap();
    let phase = &json["phases"][0];
    assert_eq!(phase["status"], "failed");
    assert_eq!(phase["steps"][0]["outcome"]["status"], "failed");
    assert_eq!(phase["steps"][1]["outcome"]["status"], "not_run");
    assert_eq!(phase["steps"][0]["approval"]["result"]["taken"], "reject");
    assert!(
        d.report("report.md")
            .contains("no decision before the deadline")
    );

    let history = d.output(&["history", "--format", "json"]);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history.stderr));
    let runs: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(runs[0]["runbook"], "escola-restore");
    assert_eq!(runs[0]["operator"], "ana");
    assert_eq!(runs[0]["verdict"], "failed");
    assert_eq!(runs[0]["exit_code"], 1);
}

#[test]
fn history_lists_the_readable_runs_and_names_each_damaged_journal() {
    let d = Dir::new(r#"{ role = "dba", deadline = "1s", on_deadline = "reject" }"#);
    let out = d.run(&[]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // A journal cut mid-record, and one a run left empty.
    for (id, journal) in [
        ("damaged", "{\"event\":\"run_started\"}\ngarbage\n"),
        ("empty", ""),
    ] {
        std::fs::create_dir_all(d.runs().join(id)).unwrap();
        std::fs::write(d.runs().join(id).join("journal.jsonl"), journal).unwrap();
    }
    for format in ["text", "json"] {
        let history = d.output(&["history", "--format", format]);
        let (listed, said) = (text(&history.stdout), text(&history.stderr));
        assert_eq!(history.status.code(), Some(2), "{said}");
        for id in ["damaged", "empty"] {
            assert!(
                said.contains(&format!("{id}/journal.jsonl"))
                    && said.contains("left out of the history: journal"),
                "{said}"
            );
        }
        assert!(
            said.contains("is empty") && said.contains("corrupt"),
            "{said}"
        );
        if format == "json" {
            let runs: serde_json::Value = serde_json::from_str(&listed).unwrap();
            assert_eq!(runs.as_array().map(Vec::len), Some(1), "{listed}");
            assert_eq!(runs[0]["verdict"], "failed");
        } else {
            assert_eq!(listed.lines().count(), 2, "{listed}");
            assert!(listed.contains("escola-restore"), "{listed}");
        }
    }
}

#[test]
fn told_not_to_wait_the_run_exits_5_and_resume_finishes_it_once_approved() {
    let d = Dir::new(r#"{ role = "dba" }"#);
    let out = d.run(&["--no-wait"]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the run stops here, resumable"),
        "{}",
        text(&out.stderr)
    );

    let status = d.output(&["status"]);
    let shown = text(&status.stdout);
    assert!(
        shown.contains("state: awaiting approval, at rollback-db/restore-snapshot"),
        "{shown}"
    );
    assert!(shown.contains("pending approvals:"), "{shown}");
    assert!(
        shown.contains("waits for approval by role dba: carla"),
        "{shown}"
    );
    assert!(
        shown.contains("escola-runbook approve ") && shown.contains(" restore-snapshot --as NAME"),
        "{shown}"
    );
    let history = d.output(&["history"]);
    let lines = text(&history.stdout);
    assert!(lines.contains("awaiting approval"), "{lines}");
    assert!(
        lines
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with(" 5")),
        "{lines}"
    );

    d.decided("approve", "restore-snapshot", "conferido");
    let resumed = d.output(&["resume", "latest", "--yes", "--operator", "ana"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert!(d.report("report.md").contains("approved by carla at "));
}

#[test]
fn a_reject_needs_a_comment_and_fails_the_step() {
    let d = Dir::new(r#"{ role = "dba" }"#);
    let run = d.run(&[]);
    d.wait_for("approval_requested");
    let bare = d.output(&["reject", "latest", "restore-snapshot", "--as", "carla"]);
    assert_eq!(bare.status.code(), Some(2));
    let blank = d.output(&[
        "reject",
        "latest",
        "restore-snapshot",
        "--as",
        "carla",
        "--comment",
        "",
    ]);
    assert_eq!(blank.status.code(), Some(2));
    d.decided("reject", "restore-snapshot", "o snapshot está incompleto");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(d.report("report.md").contains("rejected by carla at "));
}

#[test]
fn approvers_deciding_at_once_from_many_processes_leave_whole_lines() {
    let d = Dir::new(r#"{ role = "dba" }"#);
    let run = d.run(&[]);
    d.wait_for("approval_requested");
    let run_dir = d.run_dir();
    let comment = "x".repeat(1500);
    let approvers: Vec<Child> = (0..12)
        .map(|_| {
            d.cmd(&[
                "approve",
                "latest",
                "restore-snapshot",
                "--as",
                "carla",
                "--comment",
                &comment,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    let recorded = approvers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .filter(|code| *code == Some(0))
        .count();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Each process that said "recorded" left one whole line; the run,
    // journaling meanwhile, took one of them.
    let lines = decisions(&run_dir).unwrap();
    assert_eq!(lines.lines().count(), recorded);
    for line in lines.lines() {
        let decision: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(decision["approver"], "carla");
        assert_eq!(decision["comment"].as_str().map(str::len), Some(1500));
    }
    assert!(recorded >= 1);
}
