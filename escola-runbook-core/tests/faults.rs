//! Under faults: a step that started processes when the run is stopped or
//! times out, a resume while those processes still live, a lock that is
//! refused or never answers, and a record whose last outcome was lost.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::deploy_lock::{DeployLock, LockError};
use escola_runbook_core::journal::{JOURNAL_FILE, read_journal};
use escola_runbook_core::*;
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

/// A check that says it started process group `pgid`, runs until cancelled,
/// then takes `wind_down` to end its processes and returns what it saw.
#[derive(Clone)]
struct Launcher {
    pgid: u32,
    wind_down: Duration,
}

#[async_trait]
impl Check for Launcher {
    fn describe(&self) -> Description {
        Description::mutating("launcher", "the command exits 0", "run `sleep 3600`")
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        if let Err(e) = ctx.record_process_group(self.pgid) {
            return Outcome::check_error(e.to_string());
        }
        tokio::select! {
            () = ctx.cancellation().cancelled() => {}
            () = tokio::time::sleep(HOUR) => return Outcome::passed("exited 0"),
        }
        tokio::time::sleep(self.wind_down).await;
        Outcome::aborted("process group stopped")
            .with_evidence("stdout", "long-start")
            .with_evidence(
                "stopped",
                format!("group {} ended after SIGTERM", self.pgid),
            )
    }
}

fn one_step(check: impl Check + 'static, timeout: Option<Duration>) -> Runbook {
    let mut step = Step::check("long", "Long command", check);
    if let Some(limit) = timeout {
        step = step.timeout(limit);
    }
    Runbook::builder("faults")
        .phase(Phase::new("deploy", "Deploy").step(step))
        .build()
        .unwrap()
}

fn evidence<'a>(record: &'a RunRecord, step: &str, label: &str) -> Option<&'a str> {
    step_of(record, step)
        .outcome
        .as_ref()?
        .evidence
        .iter()
        .find(|e| e.label == label)
        .map(|e| e.value.as_str())
}

#[tokio::test(start_paused = true)]
async fn a_stopped_step_that_started_processes_keeps_what_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let stopper = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            token.cancel();
        })
    };
    let check = Launcher {
        pgid: 4242,
        wind_down: Duration::from_secs(2),
    };
    let started = tokio::time::Instant::now();
    let record = executor(one_step(check, None))
        .cancellation(token)
        .run_root(dir.path())
        .run()
        .await
        .unwrap();
    stopper.await.unwrap();
    // Stopped at 10 s; the check took 2 s to end its group and was waited for.
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    let long = step_of(&record, "long");
    assert_eq!(long.status(), Status::Aborted);
    assert!(
        long.outcome
            .as_ref()
            .unwrap()
            .summary
            .contains("what it changed is unknown"),
        "{:?}",
        long.outcome
    );
    assert_eq!(evidence(&record, "long", "stdout"), Some("long-start"));
    assert_eq!(
        long.process_group,
        Some(process::ProcessGroup {
            pgid: 4242,
            host: "deploy-host".into()
        })
    );
    assert_eq!(record.exit_code, Some(exit::STOPPED));
    let journal = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE)).unwrap();
    let line = journal
        .events
        .iter()
        .find(|e| matches!(e, Event::ProcessGroupStarted { .. }))
        .map(|e| serde_json::to_value(e).unwrap())
        .expect("the group is journaled");
    assert_eq!(line["pgid"], 4242);
    assert_eq!(line["host"], "deploy-host");
    assert_eq!(line["step"], "long");
    assert_eq!(RunRecord::from_events(&journal.events).unwrap(), record);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_step_keeps_its_output_and_one_that_will_not_end_is_dropped() {
    let check = Launcher {
        pgid: 4242,
        wind_down: Duration::from_secs(1),
    };
    let record = executor(one_step(check, Some(Duration::from_secs(30))))
        .run()
        .await
        .unwrap();
    assert_eq!(status_of(&record, "long"), Status::TimedOut);
    assert_eq!(evidence(&record, "long", "stdout"), Some("long-start"));

    // A check that does not end within the grace period is dropped: the run
    // is not held hostage by it.
    let stuck = Launcher {
        pgid: 4242,
        wind_down: HOUR,
    };
    let started = tokio::time::Instant::now();
    let record = executor(one_step(stuck, Some(Duration::from_secs(30))))
        .run()
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(30) + CANCEL_GRACE);
    assert_eq!(status_of(&record, "long"), Status::TimedOut);
    assert_eq!(evidence(&record, "long", "stdout"), None);
}

/// This test process's own process group: certainly alive.
fn own_pgid() -> u32 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn resume_refuses_to_rerun_a_step_whose_processes_still_run_here() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pgid = own_pgid();
    let check = Launcher {
        pgid,
        wind_down: Duration::ZERO,
    };
    // The process "dies" while the step runs: the run future is dropped.
    let run = executor(one_step(check.clone(), None))
        .run_root(dir.path())
        .run();
    assert!(
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .is_err()
    );
    let events = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE))
        .unwrap()
        .events;
    let plan = ResumePlan::new(&events, &one_step(check.clone(), None)).unwrap();
    assert_eq!(
        plan.interrupted[0].process_group.as_ref().map(|g| g.pgid),
        Some(pgid)
    );
    let rerun = Resolution {
        step: "long".into(),
        decision: InterruptedDecision::Rerun,
        who: "bruno".into(),
        comment: None,
    };
    let err = executor(one_step(check.clone(), None))
        .run_root(dir.path())
        .resume(plan.clone(), vec![rerun.clone()])
        .run()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "step `long` cannot run again: processes it started (group {pgid}) still run on this host: "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("pid {} `", std::process::id())),
        "{text}"
    );
    // Refused before anything was written.
    let after = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE)).unwrap();
    assert_eq!(after.events.len(), events.len());

    // "done" is the operator's call even while it runs; and a group recorded
    // on another machine cannot be looked up, so a rerun there is allowed.
    let done = Resolution {
        decision: InterruptedDecision::Done,
        ..rerun.clone()
    };
    let record = executor(one_step(check.clone(), None))
        .resume(plan.clone(), vec![done])
        .run()
        .await
        .unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let elsewhere = executor(one_step(
        Launcher {
            pgid,
            wind_down: Duration::ZERO,
        },
        Some(Duration::from_secs(1)),
    ))
    .options(RunOptions {
        host: "laptop-2".into(),
        ..RunOptions::default()
    })
    .resume(plan, vec![rerun])
    .run()
    .await
    .unwrap();
    assert_eq!(status_of(&elsewhere, "long"), Status::TimedOut);
}

/// A lock that refuses, or one that never answers.
struct TestLock {
    hang: bool,
}

#[async_trait]
impl DeployLock for TestLock {
    fn describe(&self) -> String {
        "test lock".into()
    }
    async fn acquire(
        &self,
        _owner: &LockOwner,
        _break_reason: Option<&str>,
    ) -> Result<Option<LockOwner>, LockError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(LockError::Storage {
            lock: self.describe(),
            message: "refused".into(),
        })
    }
    async fn heartbeat(&self, _owner: &LockOwner) -> Result<(), LockError> {
        Ok(())
    }
    async fn release(&self, _owner: &LockOwner) -> Result<(), LockError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_run_exists_before_its_lock_and_a_refused_run_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let check = Launcher {
        pgid: 4242,
        wind_down: Duration::ZERO,
    };
    // Killed while waiting for the lock: the run the lock would name exists,
    // with its first record, and resume can continue it.
    let waiting = executor(one_step(check.clone(), None))
        .run_root(dir.path())
        .lock(Arc::new(TestLock { hang: true }), None)
        .run();
    assert!(
        tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .is_err()
    );
    let journal = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE)).unwrap();
    assert!(matches!(
        journal.events.as_slice(),
        [Event::RunStarted { .. }]
    ));
    let plan = ResumePlan::new(&journal.events, &one_step(check.clone(), None)).unwrap();
    assert_eq!(plan.to_run, ["long"]);

    // Refused: no run directory is left for `resume latest` to pick.
    let err = executor(one_step(check, None))
        .options(RunOptions {
            run_id: Some("run-2".into()),
            ..RunOptions::default()
        })
        .run_root(dir.path())
        .lock(Arc::new(TestLock { hang: false }), None)
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Locked(_)), "{err}");
    assert!(!dir.path().join("run-2").exists());
}

#[test]
fn a_step_whose_outcome_was_not_recorded_is_shown_so() {
    // The journal of a run whose disk filled up after `long` finished: its
    // `step_finished` never reached the journal.
    let runbook = one_step(
        Launcher {
            pgid: 1,
            wind_down: Duration::ZERO,
        },
        None,
    );
    let info = RunInfo {
        run_id: "run-1".into(),
        operator: "ana".into(),
        host: "deploy-host".into(),
        environment: Environment::new("production"),
        dry_run: false,
        phases: Vec::new(),
        only: Vec::new(),
        tool_version: "test".into(),
        started_at: epoch(),
        source: None,
        config: None,
    };
    let events = vec![
        Event::RunStarted {
            schema_version: SCHEMA_VERSION,
            run: info,
            runbook: RunbookOutline::of(&runbook),
        },
        Event::PhaseStarted {
            phase: "deploy".into(),
            at: epoch(),
        },
        Event::StepStarted {
            phase: "deploy".into(),
            step: "long".into(),
            attempt: 1,
            mutates: true,
            at: epoch(),
        },
    ];
    let record = RunRecord::from_events(&events).unwrap();
    let long = step_of(&record, "long");
    assert!(long.outcome_unrecorded());
    assert_eq!(long.status_label(), OUTCOME_NOT_RECORDED);
    assert_eq!(record.counts(), vec![]);
    assert_eq!(record.unrecorded(), 1);
    let md = report::render_markdown(&record);
    assert!(md.contains("- **Steps:** 1 outcome not recorded"), "{md}");
    assert!(
        md.contains("- **outcome not recorded** — started, and its outcome was not recorded (the process died or the journal could not be written)"),
        "{md}"
    );
    assert!(!md.contains("ABORTED"), "{md}");
    let junit = report::render_junit(&record).unwrap();
    assert!(
        junit.contains("message=\"outcome_not_recorded: started, and its outcome"),
        "{junit}"
    );
}
