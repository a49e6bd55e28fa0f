use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::outcome::Status;
use crate::record::{RunRecord, StepRecord};

use super::error::ReportError;

/// One test suite per phase, one test case per step: failures are
/// `<failure>`, could-not-measure statuses are `<error>` (so a dashboard
/// never counts them as ordinary failures), skipped and not-run steps are
/// `<skipped>`.
pub fn render_junit(record: &RunRecord) -> Result<String, ReportError> {
    let mut report = Report::new(format!("{} ({})", record.runbook, record.run.run_id));
    report.set_timestamp(record.run.started_at);
    if let Some(finished) = record.finished_at {
        report.set_time(
            (finished - record.run.started_at)
                .to_std()
                .unwrap_or_default(),
        );
    }
    for phase in &record.phases {
        let mut suite = TestSuite::new(format!("{} — {}", phase.id, phase.title));
        suite.add_property(Property::new(
            "kind",
            format!("{:?}", phase.kind).to_lowercase(),
        ));
        // Dashboards show suite properties, not the report header: the
        // verdict and the rollback reason go with every suite.
        if let Some(verdict) = record.verdict {
            suite.add_property(Property::new("verdict", verdict.label()));
        }
        if let Some(reason) = &record.rollback {
            suite.add_property(Property::new(
                "rollback_reason",
                format!(
                    "{} ({}): {}",
                    reason.step,
                    reason.status.as_str(),
                    reason.summary
                ),
            ));
        }
        for step in &phase.steps {
            suite.add_test_case(test_case(&phase.id, step));
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .map_err(|e| ReportError::Junit(e.to_string()))
}

fn test_case(phase: &str, step: &StepRecord) -> TestCase {
    let status = step.status();
    let message = step.summary();
    let mut case_status = match status {
        Status::Passed | Status::Warned => TestCaseStatus::success(),
        Status::Failed => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Status::NoData | Status::CheckError | Status::TimedOut | Status::Aborted => {
            TestCaseStatus::non_success(NonSuccessKind::Error)
        }
        Status::Skipped | Status::NotRun => TestCaseStatus::skipped(),
    };
    if !matches!(status, Status::Passed) {
        let name = if step.outcome_unrecorded() {
            "outcome_not_recorded"
        } else {
            status.as_str()
        };
        case_status.set_message(format!("{name}: {message}"));
        case_status.set_type(status.as_str());
    }
    let mut case = TestCase::new(
        format!("{} — {}", step.outline.id, step.outline.title),
        case_status,
    );
    case.set_classname(phase);
    case.set_time(Duration::from_millis(step.elapsed_ms));
    let mut out = String::new();
    if let Some(c) = &step.confirmation {
        out.push_str(&format!(
            "confirmation: {:?} by {} at {}\n",
            c.decision,
            c.who,
            c.at.to_rfc3339()
        ));
    }
    if let Some(o) = &step.outcome {
        for e in &o.evidence {
            out.push_str(&format!("{}: {}\n", e.label, e.value));
        }
    }
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}
