//! Approvals on tokio's paused clock: a decision in the run's decision
//! file lets a waiting step go on, the deadline applies `on_deadline`,
//! `--yes` never stands in for an approver, a dry-run only describes the
//! wait, and a run told not to wait ends resumable.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::decisions::{append_decision, check_decision};
use escola_runbook_core::*;
use support::*;

fn runbook(approval: ApprovalPolicy, automated: Option<Scripted>) -> Runbook {
    let step = match automated {
        Some(check) => Step::check("restore-snapshot", "Restaurar snapshot", check),
        None => Step::manual("restore-snapshot", "Restaurar snapshot"),
    };
    Runbook::builder("approvals")
        .approver("ana", ["dba"])
        .approver("carla", ["dba"])
        .approver("bob", ["infra"])
        .phase(
            Phase::new("rollback-db", "Rollback DB")
                .step(step.approval(approval))
                .step(Step::check("after", "After", Scripted::passing("after"))),
        )
        .build()
        .unwrap()
}

fn dba(deadline: Option<u64>, on_deadline: OnDeadline) -> ApprovalPolicy {
    ApprovalPolicy {
        role: "dba".into(),
        deadline: deadline.map(Duration::from_secs),
        on_deadline,
    }
}

fn decision(who: &str, verdict: ApprovalVerdict) -> ApprovalDecision {
    ApprovalDecision {
        step: "restore-snapshot".into(),
        verdict,
        approver: who.into(),
        account: who.into(),
        host: "db-host".into(),
        at: epoch(),
        comment: Some("snapshot checked".into()),
    }
}

#[tokio::test(start_paused = true)]
async fn an_approvers_decision_lets_the_waiting_step_go_on() {
    let root = tempfile::tempdir().unwrap();
    let check = Scripted::passing("restore");
    let run = tokio::spawn(
        executor(runbook(dba(None, OnDeadline::Reject), Some(check.clone())))
            .run_root(root.path())
            .run(),
    );
    // The run waits: its journal says for whom.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!run.is_finished());
    let dir = root.path().join("run-1");
    let contents = journal::read_journal(&dir.join(journal::JOURNAL_FILE)).unwrap();
    let waiting = RunRecord::from_events(&contents.events).unwrap();
    let request = check_decision(&waiting, "restore-snapshot", "carla").unwrap();
    assert_eq!(request.approvers, ["carla"], "the operator is left out");
    assert_eq!(check.calls(), 0, "the check runs only after the approval");
    // Refused decisions in the file (appended by hand) are not taken.
    append_decision(&dir, &decision("ana", ApprovalVerdict::Approved)).unwrap();
    append_decision(&dir, &decision("bob", ApprovalVerdict::Approved)).unwrap();
    append_decision(&dir, &decision("carla", ApprovalVerdict::Approved)).unwrap();
    let record = run.await.unwrap().unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert_eq!(check.calls(), 1);
    let step = step_of(&record, "restore-snapshot");
    let result = step.approval.as_ref().unwrap().result.as_ref().unwrap();
    assert!(
        matches!(result, ApprovalResult::Approver { decision } if decision.approver == "carla")
    );
    let evidence = &step.outcome.as_ref().unwrap().evidence[0];
    assert_eq!(
        evidence.value,
        "approved by carla at 2026-11-29 02:00:00 UTC from db-host (carla) — snapshot checked"
    );
}

#[tokio::test(start_paused = true)]
async fn a_manual_step_is_its_approval_and_a_rejection_fails_it_and_its_phase() {
    let root = tempfile::tempdir().unwrap();
    let run = tokio::spawn(
        executor(runbook(dba(None, OnDeadline::Reject), None))
            .run_root(root.path())
            // `--yes` confirms manual steps; it never approves one.
            .confirmer(Arc::new(PreapprovedConfirmer::new("ana")))
            .run(),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let dir = root.path().join("run-1");
    append_decision(&dir, &decision("carla", ApprovalVerdict::Rejected)).unwrap();
    let record = run.await.unwrap().unwrap();
    let step = step_of(&record, "restore-snapshot");
    assert_eq!(step.status(), Status::Failed);
    assert!(step.confirmation.is_none(), "--yes answered nothing");
    assert_eq!(step.summary(), "rejected by carla");
    assert_eq!(status_of(&record, "after"), Status::NotRun);
    assert_eq!(record.verdict, Some(Verdict::Failed));
    assert_eq!(record.exit_code, Some(exit::STEP_FAILED));
}

async fn at_deadline(on_deadline: OnDeadline) -> RunRecord {
    let started = tokio::time::Instant::now();
    let record = executor(runbook(dba(Some(1800), on_deadline), None))
        .confirmer(Arc::new(PreapprovedConfirmer::new("ana")))
        .run()
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1800));
    record
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_reject_fails_the_step_as_a_failed_step() {
    let record = at_deadline(OnDeadline::Reject).await;
    assert_eq!(status_of(&record, "restore-snapshot"), Status::Failed);
    assert_eq!(
        step_of(&record, "restore-snapshot").summary(),
        "no decision before the deadline: reject taken"
    );
    assert_eq!(
        step_of(&record, "restore-snapshot")
            .outcome
            .as_ref()
            .unwrap()
            .evidence[0]
            .value,
        "no decision before the deadline (2026-11-29 02:30:00 UTC): reject taken"
    );
    assert_eq!(record.verdict, Some(Verdict::Failed));
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_approve_goes_on() {
    let record = at_deadline(OnDeadline::Approve).await;
    assert_eq!(status_of(&record, "restore-snapshot"), Status::Passed);
    assert_eq!(status_of(&record, "after"), Status::Passed);
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_abort_stops_the_run() {
    let record = at_deadline(OnDeadline::Abort).await;
    assert_eq!(status_of(&record, "restore-snapshot"), Status::Aborted);
    assert_eq!(record.verdict, Some(Verdict::Stopped));
    assert_eq!(record.exit_code, Some(exit::STOPPED));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_describes_the_wait() {
    let mut options = RunOptions {
        run_id: Some("run-1".into()),
        operator: "ana".into(),
        dry_run: true,
        ..RunOptions::default()
    };
    options.host = "deploy-host".into();
    let record = executor(runbook(dba(None, OnDeadline::Reject), None))
        .options(options)
        .run()
        .await
        .unwrap();
    let step = step_of(&record, "restore-snapshot");
    assert_eq!(step.status(), Status::Skipped);
    assert_eq!(
        step.summary(),
        "dry-run: would wait for approval by role dba: carla"
    );
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
}

#[tokio::test(start_paused = true)]
async fn told_not_to_wait_the_run_ends_resumable_and_a_resume_takes_the_decision() {
    let root = tempfile::tempdir().unwrap();
    let runbook = || runbook(dba(Some(3600), OnDeadline::Reject), None);
    let record = executor(runbook())
        .options(RunOptions {
            run_id: Some("run-1".into()),
            operator: "ana".into(),
            no_wait: true,
            ..RunOptions::default()
        })
        .run_root(root.path())
        .run()
        .await
        .unwrap();
    assert_eq!(record.verdict, None);
    assert_eq!(record.exit_code, Some(exit::AWAITING_APPROVAL));
    assert_eq!(
        record.awaiting_approval.as_deref(),
        Some("restore-snapshot")
    );
    let dir = root.path().join("run-1");
    let waited_since = step_of(&record, "restore-snapshot")
        .approval
        .as_ref()
        .unwrap()
        .request
        .since;
    tokio::time::sleep(Duration::from_secs(600)).await;
    append_decision(&dir, &decision("carla", ApprovalVerdict::Approved)).unwrap();
    let events = journal::read_journal(&dir.join(journal::JOURNAL_FILE))
        .unwrap()
        .events;
    let plan = ResumePlan::new(&events, &runbook()).unwrap();
    let record = executor(runbook())
        .run_root(root.path())
        .resume(plan, Vec::new())
        .run()
        .await
        .unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let approval = step_of(&record, "restore-snapshot")
        .approval
        .clone()
        .unwrap();
    assert_eq!(approval.request.since, waited_since, "the wait is the same");
    assert_eq!(record.awaiting_approval, None);
}

#[test]
fn an_approval_by_a_role_nobody_holds_is_refused() {
    let err = Runbook::builder("r")
        .approver("carla", ["dba"])
        .phase(
            Phase::new("p", "P")
                .step(Step::manual("s", "S").approval(ApprovalPolicy::new("security"))),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "step `s` requires an approval by role `security`, which no approver holds (roles held: dba); list an approver with that role"
    );
}

#[test]
fn approvals_round_trip_through_markdown_import_and_runbook_files() {
    use escola_runbook_core::catalog::Catalog;
    use escola_runbook_core::formats::markdown::{ImportOptions, import};
    use escola_runbook_core::formats::runbook_file::{self, RunbookFile};

    let doc = "# Restore\n\n<!-- approver: carla roles=dba,infra -->\n\n## 1. Rollback\n\n\
               - [ ] Restaurar snapshot do banco <!-- approval: role=dba deadline=30m on_deadline=abort -->\n\
               - [ ] Avisar o time\n";
    let catalog = Catalog::new();
    let imported = import(doc, &ImportOptions::default(), &catalog);
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    let file = imported.file;
    assert_eq!(file.metadata.approvers[0].name, "carla");
    let step = &file.phases[0].steps[0];
    assert_eq!(step.title, "Restaurar snapshot do banco");
    let approval = step.approval.clone().unwrap();
    assert_eq!(
        (approval.role.as_str(), approval.on_deadline),
        ("dba", OnDeadline::Abort)
    );
    assert_eq!(file.phases[0].steps[1].approval, None);

    let text = file.to_toml().unwrap();
    assert!(
        text.contains(
            "[phases.steps.approval]\nrole = \"dba\"\ndeadline = \"30m\"\non_deadline = \"abort\"\n"
        ),
        "{text}"
    );
    let back = runbook_file::parse(&text, "restore.toml").unwrap();
    assert_eq!(back, file);
    let (runbook, _) = back.to_runbook(&catalog, std::path::Path::new("")).unwrap();
    let (_, restore) = runbook.find_step(&step.id).unwrap();
    assert_eq!(
        restore.policy.approval,
        Some(ApprovalPolicy {
            role: "dba".into(),
            deadline: Some(Duration::from_secs(1800)),
            on_deadline: OnDeadline::Abort,
        })
    );
    let (exported, warnings) = RunbookFile::from_runbook(&runbook, &catalog);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(exported, file);
}

#[test]
fn a_runbook_file_names_a_mistyped_approval_key_and_an_approval_nobody_can_give() {
    use escola_runbook_core::catalog::Catalog;
    use escola_runbook_core::formats::runbook_file;

    let text = "name = \"r\"\n\n[[metadata.approvers]]\nname = \"carla\"\nroles = [\"dba\"]\n\n\
                [[phases]]\nid = \"p\"\ntitle = \"P\"\n\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\n\
                approval = { role = \"dba\", dedline = \"2s\" }\n";
    let err = runbook_file::parse(text, "r.toml").unwrap_err().to_string();
    assert!(err.contains("r.toml:14:"), "{err}");
    assert!(err.contains("dedline") && err.contains("deadline"), "{err}");

    let text = text.replace("dba\", dedline", "security\", deadline");
    let file = runbook_file::parse(&text, "r.toml").unwrap();
    let err = file
        .to_runbook(&Catalog::new(), std::path::Path::new(""))
        .unwrap_err()
        .message;
    assert!(
        err.contains("step `s` requires an approval by role `security`, which no approver holds"),
        "{err}"
    );
}
