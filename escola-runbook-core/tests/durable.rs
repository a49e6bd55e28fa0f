//! Durable runs: resume after a crash or a failure, and the deploy lock.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::deploy_lock::{DeployLock, FileLock, LockError, Staleness};
use escola_runbook_core::journal::{JOURNAL_FILE, read_journal};
use escola_runbook_core::*;
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

struct Checks {
    before: Scripted,
    migrate: Scripted,
    after: Scripted,
}

fn checks(migrate_delay: Duration) -> Checks {
    Checks {
        before: Scripted::passing("before").produces("snapshot.path"),
        migrate: Scripted::after("migrate", migrate_delay, Outcome::passed("migrated")).mutating(),
        after: Scripted::passing("after").needs("snapshot.path"),
    }
}

fn runbook(c: &Checks, migrate_title: &str) -> Runbook {
    Runbook::builder("durable")
        .phase(Phase::new("pre", "Pre").step(Step::check("before", "Snapshot", c.before.clone())))
        .phase(
            Phase::new("deploy", "Deploy")
                .step(Step::check("migrate", migrate_title, c.migrate.clone()))
                .step(Step::check("after", "After", c.after.clone())),
        )
        .build()
        .unwrap()
}

/// Runs until the mutating step hangs, then drops the run as a crash would:
/// the journal ends with `migrate` started and never finished.
async fn crashed_run(root: &std::path::Path) -> Vec<Event> {
    let c = checks(HOUR);
    let run = executor(runbook(&c, "Migrate")).run_root(root).run();
    assert!(
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .is_err(),
        "the run must hang"
    );
    read_journal(&root.join("run-1").join(JOURNAL_FILE))
        .unwrap()
        .events
}

fn resolution(decision: InterruptedDecision) -> Resolution {
    Resolution {
        step: "migrate".into(),
        decision,
        who: "bruno".into(),
        comment: Some("checked doctrine_migration_versions".into()),
    }
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_mutating_step_needs_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let events = crashed_run(dir.path()).await;
    let c = checks(Duration::ZERO);
    let plan = ResumePlan::new(&events, &runbook(&c, "Migrate")).unwrap();
    assert_eq!(plan.done.keys().collect::<Vec<_>>(), ["before"]);
    assert_eq!(plan.interrupted.len(), 1);
    assert_eq!(plan.interrupted[0].step, "migrate");
    assert_eq!(plan.to_run, ["after"]);
    let err = executor(runbook(&c, "Migrate"))
        .run_root(dir.path())
        .resume(plan, vec![])
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "step `migrate` was interrupted while changing something and has no decision (rerun, done or abort)"
    );
}

#[tokio::test(start_paused = true)]
async fn resume_marks_done_and_never_repeats_finished_steps() {
    let dir = tempfile::tempdir().unwrap();
    let events = crashed_run(dir.path()).await;
    let c = checks(Duration::ZERO);
    let plan = ResumePlan::new(&events, &runbook(&c, "Migrate")).unwrap();
    let record = executor(runbook(&c, "Migrate"))
        .options(RunOptions {
            operator: "bruno".into(),
            host: "laptop-2".into(),
            ..RunOptions::default()
        })
        .run_root(dir.path())
        .resume(plan, vec![resolution(InterruptedDecision::Done)])
        .run()
        .await
        .unwrap();
    assert_eq!(
        (c.before.calls(), c.migrate.calls(), c.after.calls()),
        (0, 0, 1)
    );
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert_eq!(
        step_of(&record, "migrate")
            .outcome
            .as_ref()
            .unwrap()
            .summary,
        "marked done by bruno after an interruption (not re-run): checked doctrine_migration_versions"
    );
    // The value recorded before the crash still reaches the later step.
    assert_eq!(
        step_of(&record, "after").outcome.as_ref().unwrap().evidence[0].value,
        "42"
    );
    assert_eq!(record.resumes.len(), 1);
    assert_eq!(
        (
            record.resumes[0].operator.as_str(),
            record.resumes[0].host.as_str()
        ),
        ("bruno", "laptop-2")
    );
    // One journal holds both processes' records, and reads back the same.
    let journal = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE)).unwrap();
    assert_eq!(RunRecord::from_events(&journal.events).unwrap(), record);
}

#[tokio::test(start_paused = true)]
async fn rerun_and_abort_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let events = crashed_run(dir.path()).await;
    let c = checks(Duration::ZERO);
    let plan = ResumePlan::new(&events, &runbook(&c, "Migrate")).unwrap();
    let record = executor(runbook(&c, "Migrate"))
        .resume(plan.clone(), vec![resolution(InterruptedDecision::Rerun)])
        .run()
        .await
        .unwrap();
    assert_eq!((c.migrate.calls(), c.after.calls()), (1, 1));
    assert_eq!(record.verdict, Some(Verdict::Succeeded));

    let c = checks(Duration::ZERO);
    let record = executor(runbook(&c, "Migrate"))
        .resume(plan, vec![resolution(InterruptedDecision::Abort)])
        .run()
        .await
        .unwrap();
    assert_eq!((c.migrate.calls(), c.after.calls()), (0, 0));
    assert_eq!(status_of(&record, "migrate"), Status::Aborted);
    assert_eq!(record.verdict, Some(Verdict::Stopped));
    assert_eq!(record.exit_code, Some(exit::STOPPED));
}

#[tokio::test(start_paused = true)]
async fn a_runbook_changed_under_done_steps_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let events = crashed_run(dir.path()).await;
    let c = checks(Duration::ZERO);
    let changed = Runbook::builder("durable")
        .phase(Phase::new("deploy", "Deploy").step(Step::check(
            "before",
            "Snapshot now",
            c.before.clone(),
        )))
        .build()
        .unwrap();
    let err = ResumePlan::new(&events, &changed).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("step `before` moved from phase `pre` to `deploy`"),
        "{text}"
    );
    assert!(
        text.contains("step `before` changed title: \"Snapshot\" -> \"Snapshot now\""),
        "{text}"
    );
    // A change to a step not yet done is fine: it runs as it is now.
    assert!(ResumePlan::new(&events, &runbook(&c, "Migrate (v2)")).is_ok());
    // A step added since has no place in the run's record.
    let added = Runbook::builder("durable")
        .phase(
            Phase::new("pre", "Pre")
                .step(Step::check("before", "Snapshot", c.before.clone()))
                .step(Step::manual("notify", "Avisar o time")),
        )
        .phase(
            Phase::new("deploy", "Deploy")
                .step(Step::check("migrate", "Migrate", c.migrate.clone()))
                .step(Step::check("after", "After", c.after.clone())),
        )
        .build()
        .unwrap();
    let text = ResumePlan::new(&events, &added).unwrap_err().to_string();
    assert!(
        text.contains("step `notify` (Avisar o time) is new: a resumed run runs only the steps it started with"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_resumes_at_the_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Scripted::failing("smoke");
    let rb = |smoke: Scripted| {
        Runbook::builder("failed")
            .phase(
                Phase::new("p", "P")
                    .step(Step::check("ok", "Ok", Scripted::passing("ok")))
                    .step(Step::check("smoke", "Smoke", smoke)),
            )
            .build()
            .unwrap()
    };
    let first = executor(rb(failing))
        .run_root(dir.path())
        .run()
        .await
        .unwrap();
    assert_eq!(first.verdict, Some(Verdict::Failed));
    let events = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE))
        .unwrap()
        .events;
    let fixed = Scripted::passing("smoke");
    let plan = ResumePlan::new(&events, &rb(fixed.clone())).unwrap();
    assert!(plan.interrupted.is_empty());
    let record = executor(rb(fixed.clone()))
        .run_root(dir.path())
        .resume(plan, vec![])
        .run()
        .await
        .unwrap();
    assert_eq!(fixed.calls(), 1);
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let events = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE))
        .unwrap()
        .events;
    assert_eq!(
        ResumePlan::new(&events, &rb(fixed))
            .unwrap_err()
            .to_string(),
        "run run-1 succeeded; there is nothing to resume (start a new run)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_torn_journal_resumes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    crashed_run(dir.path()).await;
    let path = dir.path().join("run-1").join(JOURNAL_FILE);
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"event\":\"step_fin")
        .unwrap();
    let read = read_journal(&path).unwrap();
    assert_eq!(read.warnings.len(), 1);
    let c = checks(Duration::ZERO);
    let plan = ResumePlan::new(&read.events, &runbook(&c, "Migrate")).unwrap();
    executor(runbook(&c, "Migrate"))
        .run_root(dir.path())
        .resume(plan, vec![resolution(InterruptedDecision::Rerun)])
        .run()
        .await
        .unwrap();
    let read = read_journal(&path).unwrap();
    assert!(
        read.warnings.is_empty(),
        "the torn tail was cut before appending: {:?}",
        read.warnings
    );
    assert_eq!(
        RunRecord::from_events(&read.events).unwrap().verdict,
        Some(Verdict::Succeeded)
    );
}

fn owner(run: &str, user: &str, pid: u32) -> LockOwner {
    LockOwner {
        user: user.into(),
        host: "deploy-host".into(),
        pid,
        run_id: run.into(),
        since: epoch(),
        heartbeat: epoch(),
    }
}

#[tokio::test]
async fn only_the_owner_releases_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::for_runbook(
        dir.path(),
        "Escola Connect",
        "production",
        Duration::from_secs(120),
    );
    let ana = owner("run-a", "ana", std::process::id());
    assert_eq!(lock.acquire(&ana, None).await.unwrap(), None);
    let bruno = owner("run-b", "bruno", std::process::id());
    let err = lock.acquire(&bruno, None).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("is held by ana on deploy-host"), "{text}");
    // The error says who holds it; the CLI adds how to break it.
    assert!(
        matches!(&err, LockError::Held { holder, .. } if holder.run_id == "run-a"),
        "{err:?}"
    );
    assert!(matches!(
        lock.release(&bruno).await,
        Err(LockError::Lost { .. })
    ));
    assert!(lock.path().exists(), "a non-owner must not remove the lock");
    lock.release(&ana).await.unwrap();
    assert!(!lock.path().exists());
    assert_eq!(lock.acquire(&bruno, None).await.unwrap(), None);
}

#[tokio::test]
async fn stale_locks_are_reported_and_broken_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path().join("x.lock"), Duration::from_secs(120));
    // A pid that cannot exist on Linux (above pid_max).
    let dead = owner("run-dead", "carla", 4_194_999);
    lock.acquire(&dead, None).await.unwrap();
    let me = owner("run-me", "ana", std::process::id());
    match lock.acquire(&me, None).await.unwrap_err() {
        LockError::Held { stale, holder, .. } => {
            assert_eq!(stale, Some(Staleness::DeadProcess));
            assert_eq!(holder.user, "carla");
        }
        other => panic!("{other}"),
    }
    let mut late = owner("run-me", "ana", std::process::id());
    late.host = "other-host".into();
    late.heartbeat = epoch() + chrono::Duration::minutes(10);
    match lock.acquire(&late, None).await.unwrap_err() {
        LockError::Held { stale, .. } => assert_eq!(
            stale,
            Some(Staleness::Expired {
                silent_for: Duration::from_secs(600)
            })
        ),
        other => panic!("{other}"),
    }
    let previous = lock
        .acquire(&me, Some("carla's laptop died"))
        .await
        .unwrap();
    assert_eq!(previous.map(|p| p.user), Some("carla".into()));
}

#[tokio::test(start_paused = true)]
async fn a_second_run_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let lock: Arc<dyn DeployLock> = Arc::new(FileLock::new(
        dir.path().join("escola.lock"),
        Duration::from_secs(120),
    ));
    let slow = || {
        Runbook::builder("locked")
            .phase(Phase::new("p", "P").step(Step::check(
                "long",
                "Long",
                Scripted::after("long", Duration::from_secs(600), Outcome::passed("ok")),
            )))
            .build()
            .unwrap()
    };
    let first = tokio::spawn(executor(slow()).lock(lock.clone(), None).run());
    tokio::time::sleep(Duration::from_secs(300)).await;
    let second = executor(slow())
        .options(RunOptions {
            run_id: Some("run-2".into()),
            operator: "bruno".into(),
            ..RunOptions::default()
        })
        .lock(lock.clone(), None)
        .run()
        .await
        .unwrap_err();
    let text = second.to_string();
    assert!(text.contains("is held by ana on deploy-host"), "{text}");
    // The heartbeat kept the 2-minute lease alive through 5 minutes.
    assert!(!text.contains("stale"), "{text}");
    let record = first.await.unwrap().unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert!(
        !dir.path().join("escola.lock").exists(),
        "released at the end"
    );
}

#[tokio::test(start_paused = true)]
async fn breaking_a_lock_is_journaled_and_stops_the_displaced_run() {
    let dir = tempfile::tempdir().unwrap();
    let lock: Arc<dyn DeployLock> = Arc::new(FileLock::new(
        dir.path().join("escola.lock"),
        Duration::from_secs(120),
    ));
    let slow = || {
        Runbook::builder("locked")
            .phase(Phase::new("p", "P").step(Step::check(
                "long",
                "Long",
                Scripted::after("long", HOUR, Outcome::passed("ok")),
            )))
            .build()
            .unwrap()
    };
    let first = tokio::spawn(executor(slow()).lock(lock.clone(), None).run());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let breaker = executor(slow())
        .options(RunOptions {
            run_id: Some("run-2".into()),
            operator: "bruno".into(),
            host: "laptop-2".into(),
            ..RunOptions::default()
        })
        .lock(lock.clone(), Some("ana's session is frozen".into()));
    let second = tokio::spawn(breaker.run());
    let displaced = first.await.unwrap().unwrap();
    assert_eq!(displaced.verdict, Some(Verdict::Stopped));
    let lost = displaced.lock_lost.as_deref().unwrap();
    assert!(
        lost.contains("was taken over by bruno on laptop-2 (run run-2)"),
        "{lost}"
    );
    let record = second.await.unwrap().unwrap();
    assert_eq!(record.broken_locks.len(), 1);
    assert_eq!(record.broken_locks[0].previous.user, "ana");
    assert_eq!(record.broken_locks[0].reason, "ana's session is frozen");
}

/// Deploy (rolls back on failure): an action, then a read-only check;
/// then a rollback phase.
fn deploy_then_smoke(migrate: Scripted, smoke: Scripted, revert: Scripted) -> Runbook {
    Runbook::builder("resumed-rollback")
        .phase(
            Phase::new("deploy", "Deploy")
                .rollback_on_failure()
                .step(Step::check("migrate", "Migrate", migrate))
                .step(Step::check("smoke", "Smoke", smoke)),
        )
        .phase(
            Phase::rollback("rollback", "Rollback").step(Step::check("revert", "Revert", revert)),
        )
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_rolls_back_what_its_earlier_process_changed() {
    let dir = tempfile::tempdir().unwrap();
    let hung = Scripted::after("smoke", HOUR, Outcome::passed("never"));
    let revert = Scripted::passing("revert").mutating();
    let first = executor(deploy_then_smoke(
        Scripted::passing("migrate").mutating(),
        hung,
        revert.clone(),
    ))
    .run_root(dir.path())
    .run();
    assert!(
        tokio::time::timeout(Duration::from_secs(60), first)
            .await
            .is_err()
    );
    let events = read_journal(&dir.path().join("run-1").join(JOURNAL_FILE))
        .unwrap()
        .events;
    // The resumed process changes nothing itself: `migrate` is done.
    let migrate = Scripted::passing("migrate").mutating();
    let runbook = deploy_then_smoke(migrate.clone(), Scripted::failing("smoke"), revert.clone());
    let plan = ResumePlan::new(&events, &runbook).unwrap();
    let record = executor(runbook)
        .run_root(dir.path())
        .resume(plan, vec![])
        .run()
        .await
        .unwrap();
    assert_eq!((migrate.calls(), revert.calls()), (0, 1));
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}
