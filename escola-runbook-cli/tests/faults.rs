//! Under faults, through the binary: SIGTERM and SIGHUP during a command
//! step, a `kill -9` that leaves the step's processes running, and a run
//! directory whose disk fills up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use escola_runbook_core::process::live_members;

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A runbook file of one phase whose steps are `(id, shell line)`.
fn runbook(dir: &Path, steps: &[(&str, &str)]) -> PathBuf {
    let mut toml = String::from(
        "format = 1\nname = \"faults\"\n\n[[phases]]\nid = \"deploy\"\ntitle = \"Deploy\"\n",
    );
    for (id, line) in steps {
        toml.push_str(&format!(
            "\n[[phases.steps]]\nid = \"{id}\"\ntitle = \"Step {id}\"\ncommand = '{line}'\n"
        ));
    }
    let path = dir.join("runbook.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The journal lines of the only run under `runs`.
fn journal(runs: &Path) -> Vec<serde_json::Value> {
    let Some(dir) = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("journal.jsonl").is_file())
    else {
        return Vec::new();
    };
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until the journal says `step` started its process group, and
/// returns the group.
fn started_group(runs: &Path, step: &str) -> u32 {
    let started = Instant::now();
    loop {
        let pgid = journal(runs).iter().find_map(|e| {
            (e["event"] == "process_group_started" && e["step"] == step)
                .then(|| e["pgid"].as_u64().unwrap() as u32)
        });
        if let Some(pgid) = pgid {
            return pgid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "step {step} never started its process group"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` at most `limit`.
fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to a child this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

const LONG: &str = "echo long-start; sleep 30; echo long-end";

#[test]
fn sigterm_and_sighup_stop_a_run_like_ctrl_c() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
        let dir = tempfile::tempdir().unwrap();
        let file = runbook(dir.path(), &[("long", LONG), ("after", "echo after")]);
        let runs = dir.path().join("runs");
        let mut child = bin(dir.path())
            .args(["run", "--yes", "--runbook"])
            .arg(&file)
            .arg("--run-dir")
            .arg(&runs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pgid = started_group(&runs, "long");
        assert!(!live_members(pgid).is_empty(), "{name}: the step runs");
        signal(&child, sig);
        let status = wait_within(&mut child, Duration::from_secs(20));
        let out = child.wait_with_output().unwrap();
        assert_eq!(status.code(), Some(4), "{name}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("{name}: stopping the running step")),
            "{name}: {}",
            text(&out)
        );
        // Nothing of the step's process group outlives the tool.
        assert_eq!(live_members(pgid), vec![], "{name}");
        let events = journal(&runs);
        let finished = |step: &str| {
            events
                .iter()
                .find(|e| e["event"] == "step_finished" && e["step"] == step)
                .unwrap_or_else(|| panic!("{name}: no step_finished for {step}"))
                .clone()
        };
        let long = finished("long");
        assert_eq!(long["outcome"]["status"], "aborted", "{name}: {long}");
        let evidence = long["outcome"]["evidence"].as_array().unwrap();
        let value = |label: &str| {
            evidence
                .iter()
                .find(|e| e["label"] == label)
                .and_then(|e| e["value"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(value("stdout").trim(), "long-start", "{name}: {long}");
        assert!(
            value("stopped").starts_with(&format!("sent SIGTERM to process group {pgid}")),
            "{name}: {long}"
        );
        assert_eq!(finished("after")["outcome"]["status"], "not_run");
        let last = events.last().unwrap();
        assert_eq!(
            (&last["event"], &last["exit_code"]),
            (&"run_finished".into(), &4.into())
        );
        // The lock is released.
        let locks: Vec<_> = std::fs::read_dir(runs.join("locks"))
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        assert!(locks.is_empty(), "{name}: {locks:?}");
    }
}

#[test]
fn resume_will_not_rerun_a_step_whose_processes_survived_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // The first attempt leaves a marker and runs long; a rerun finds the
    // marker and ends at once.
    let line = "if [ -f marker ]; then echo rerun; exit 0; fi; touch marker; sleep 30";
    let file = runbook(dir.path(), &[("long", line)]);
    let runs = dir.path().join("runs");
    let run_dir = runs.display().to_string();
    let args = |verb: &str| -> Vec<String> {
        [
            verb,
            "--yes",
            "--runbook",
            file.to_str().unwrap(),
            "--run-dir",
            &run_dir,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut child = bin(dir.path())
        .args(args("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pgid = started_group(&runs, "long");
    child.kill().unwrap(); // SIGKILL: no cleanup, the group is orphaned
    child.wait().unwrap();
    let survivors = live_members(pgid);
    assert!(!survivors.is_empty(), "the orphaned group still runs");

    let mut resume = args("resume");
    resume.extend(["--on-interrupted".into(), "rerun".into()]);
    let out = bin(dir.path()).args(&resume).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "step `long` cannot run again: processes it started (group {pgid}) still run on this host"
        )),
        "{said}"
    );
    for p in &survivors {
        assert!(said.contains(&format!("pid {}", p.pid)), "{said}");
    }
    assert!(said.contains("sleep 30"), "{said}");

    // Once the orphans are gone, the rerun goes ahead.
    // SAFETY: kills the process group this test's run started.
    unsafe { libc::killpg(i32::try_from(pgid).unwrap(), libc::SIGKILL) };
    let started = Instant::now();
    while !live_members(pgid).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = bin(dir.path()).args(&resume).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("passed"), "{}", text(&out));
}

/// A 64 KiB tmpfs mounted on a directory, unmounted when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// `None` (with the reason printed) where mounting is not allowed.
    fn mount() -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(TinyDisk { dir }),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a small tmpfs here ({}); the journal writer's failure is covered by escola-runbook-core's unit test on /dev/full",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_journal_that_cannot_be_written_ends_with_its_own_exit_code() {
    let Some(disk) = TinyDisk::mount() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let runs = disk.dir.path().join("runs");
    // The step completes, after printing more than the disk has left and
    // filling the rest: its outcome (with that output) cannot be journaled.
    let fill = format!(
        "head -c 30000 /dev/urandom | od -An -tx1; head -c 1000000 /dev/zero > {}/fill 2>/dev/null; echo filled",
        disk.dir.path().display()
    );
    let file = runbook(work.path(), &[("fill", &fill), ("after", "echo after")]);
    let out = bin(work.path())
        .args(["run", "--yes", "--runbook"])
        .arg(&file)
        .arg("--run-dir")
        .arg(&runs)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(6), "{said}");
    assert!(
        said.contains("the run stopped because its journal cannot be written: cannot append step_finished of step `fill` (passed) to the run journal"),
        "{said}"
    );
    assert!(said.contains("No space left on device"), "{said}");
    assert!(said.contains("escola-runbook resume"), "{said}");
    // The record shows what it knows: `fill` started, its outcome was lost.
    let report = bin(work.path())
        .args(["report", "latest", "--run-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(
        md.contains("- **outcome not recorded** — started, and its outcome was not recorded"),
        "{md}\n{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(!md.contains("ABORTED"), "{md}");
    // The lock was released even so.
    let locks: Vec<_> = std::fs::read_dir(runs.join("locks"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(locks.is_empty(), "{locks:?}");
}
