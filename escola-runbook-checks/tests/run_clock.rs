//! Checks read "now" from their `Ctx` (the run's clock), never from the
//! system: a run's record and its checks agree on the time, and a test on a
//! paused clock sees exact times.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use escola_runbook_checks::coverage::CoverageCheck;
use escola_runbook_checks::log_scan::RecordTimeCheck;
use escola_runbook_core::{
    Check, Ctx, Environment, JournalWriteError, RuleTransition, Secrets, Status, StepHost,
};

/// A run whose clock reads `at`.
struct FixedTime(DateTime<Utc>);

impl StepHost for FixedTime {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
    fn progress(&self, _ctx: &Ctx, _message: String) {}
    fn record_rule_transition(
        &self,
        _ctx: &Ctx,
        _transition: RuleTransition,
    ) -> Result<(), JournalWriteError> {
        Ok(())
    }
    fn record_process_group(&self, _ctx: &Ctx, _pgid: u32) -> Result<(), JournalWriteError> {
        Ok(())
    }
}

fn ctx_at(at: &str) -> Ctx {
    Ctx::standalone(Environment::new("test"), Secrets::new())
        .with_host(Arc::new(FixedTime(at.parse().unwrap())))
}

#[tokio::test]
async fn record_time_records_the_runs_now() {
    let o = RecordTimeCheck::new("deploy_started")
        .run(&ctx_at("2031-05-06T07:08:09Z"))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:#?}");
    assert_eq!(
        o.values["deploy_started"],
        serde_json::json!("2031-05-06T07:08:09.000000Z")
    );
}

#[tokio::test]
async fn a_coverage_reports_age_is_measured_from_the_runs_now() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clover.xml");
    // Generated 2025-11-29T02:30:00Z.
    std::fs::write(
        &path,
        r#"<coverage generated="1764383400"><project><metrics statements="10" coveredstatements="9"/></project></coverage>"#,
    )
    .unwrap();
    let check = CoverageCheck::new(&path, 85.0).max_age(Duration::from_secs(3600));
    let fresh = check.run(&ctx_at("2025-11-29T03:00:00Z")).await;
    assert_eq!(fresh.status, Status::Passed, "{fresh:#?}");
    let stale = check.run(&ctx_at("2025-11-29T04:00:00Z")).await;
    assert_eq!(stale.status, Status::CheckError, "{stale:#?}");
    assert!(stale.summary.contains("is 1h30m old"), "{}", stale.summary);
}
