//! `cargo run --example deploy` as its users see it: the example's own
//! code (included from `examples/deploy.rs`), against a simulator the test
//! can inspect afterwards.

#[path = "../examples/deploy.rs"]
#[allow(dead_code)] // the example's `main`
mod deploy;

use escola_runbook_core::{PhaseKind, RunRecord, Status, StepRecord, exit};
use escola_runbook_testkit::{Simulator, SimulatorConfig};

fn step<'a>(record: &'a RunRecord, id: &str) -> &'a StepRecord {
    record
        .steps()
        .map(|(_, s)| s)
        .find(|s| s.outline.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

async fn run(fault: Option<&str>) -> (Simulator, RunRecord, tempfile::TempDir) {
    let api = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let record = deploy::deploy(&api, fault, root.path(), std::io::sink())
        .await
        .unwrap();
    (api, record, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_api_passes_and_the_smoke_writes_are_refused() {
    let (api, record, _root) = run(None).await;
    assert_eq!(record.exit_code, Some(exit::SUCCESS));
    let smoke = step(&record, "smoke-tests");
    assert_eq!(smoke.status(), Status::Passed, "{smoke:#?}");
    assert!(record.rollback.is_none());
    // Manual steps are skipped in this dry-run: nobody confirmed them.
    let window = step(&record, "window-agreed");
    assert_eq!(window.status(), Status::Skipped);
    assert!(window.confirmation.is_none());
    assert_eq!(api.stored_escola(1).unwrap().writes, 0);
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_ignores_if_match_fails_the_smoke_step_and_rolls_back() {
    let (api, record, root) = run(Some("ignore-if-match")).await;
    let before = serde_json::json!({ "id": 1, "nome": "EMEF Paulo Freire", "cidade_id": 1 });
    assert_eq!(record.exit_code, Some(exit::ROLLED_BACK));
    let smoke = step(&record, "smoke-tests");
    let outcome = smoke.outcome.as_ref().unwrap();
    assert_eq!(outcome.status, Status::Failed);
    let base = api.base_url();
    assert!(
        outcome.summary.starts_with(&format!(
            "2 of 18 checks failed against {base}: PUT {base}/v1/escolas/1: expected 412 Precondition Failed for a stale If-Match, got 200"
        )),
        "{}",
        outcome.summary
    );
    let rollback = record.rollback.as_ref().unwrap();
    assert_eq!(rollback.step, "smoke-tests");
    let phase = record
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Rollback)
        .unwrap();
    assert!(
        phase.steps.iter().all(|s| s.status() == Status::Skipped),
        "the dry-run rehearses the rollback: {phase:#?}"
    );
    // The API wrongly took both writes, and stored what escola 1 held.
    let stored = api.stored_escola(1).unwrap();
    assert_eq!((stored.writes, stored.json), (2, before));
    // The report says so too.
    let dir = escola_runbook_core::run_directory(root.path(), &record.run.run_id);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("expected: 412 Precondition Failed for a stale If-Match"),
        "{md}"
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_twice_as_slow_holds_every_fixed_limit_and_fails_the_judge() {
    let (api, record, root) = run(Some("latency-doubled")).await;
    let judge = step(&record, "panel-latency");
    let outcome = judge.outcome.as_ref().unwrap();
    assert_eq!(judge.status(), Status::Failed, "{outcome:#?}");
    assert!(
        outcome
            .summary
            .contains("after slower than before with probability")
            && outcome.summary.ends_with("): regressed"),
        "{}",
        outcome.summary
    );
    for alert in ["alert-latency-p95", "alert-5xx", "alert-rate-limit"] {
        assert_eq!(step(&record, alert).status(), Status::Passed, "{alert}");
    }
    // Advisory: the fixed limits decide a rollback, and they held.
    assert!(record.rollback.is_none());
    assert_eq!(record.exit_code, Some(exit::SUCCESS));
    let dir = escola_runbook_core::run_directory(root.path(), &record.run.run_id);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(&outcome.summary),
        "the report says why in one line"
    );
    api.shutdown().await;
}
