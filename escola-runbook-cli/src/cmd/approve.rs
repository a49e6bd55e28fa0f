//! `escola-runbook approve` and `reject`: an approver's decision about a
//! step that waits, checked by the core's eligibility rule and appended to
//! the run's decision file (never to its journal: the run copies it there).

use std::path::Path;

use escola_runbook_core::decisions;
use escola_runbook_core::{ApprovalDecision, ApprovalVerdict, identity, runs};

use crate::cli::{ApproveArgs, DEFAULT_RUN_DIR, DecisionTarget, RejectArgs};
use crate::error::CliError;

pub fn approve(args: ApproveArgs) -> Result<i32, CliError> {
    decide(&args.target, ApprovalVerdict::Approved, args.comment)
}

pub fn reject(args: RejectArgs) -> Result<i32, CliError> {
    decide(&args.target, ApprovalVerdict::Rejected, Some(args.comment))
}

fn decide(
    target: &DecisionTarget,
    verdict: ApprovalVerdict,
    comment: Option<String>,
) -> Result<i32, CliError> {
    let journal = runs::locate(&target.run, &target.run_dir)?;
    let (record, _) = super::read_run(&journal)?;
    let decision = ApprovalDecision {
        step: target.step.clone(),
        verdict,
        approver: target.approver.clone(),
        account: identity::operator(),
        host: super::hostname(),
        at: chrono::Utc::now(),
        comment,
    };
    let dir = journal.parent().unwrap_or(Path::new("."));
    decisions::decide(&record, dir, &decision)?;
    println!(
        "recorded for run {}: step {} {}; the waiting run takes it within 2 s (a run stopped with --no-wait continues with `escola-runbook resume {}`)",
        record.run.run_id,
        target.step,
        decision.describe(),
        record.run.run_id
    );
    Ok(escola_runbook_core::exit::SUCCESS)
}

/// The command that approves `step` of run `run_id` kept in `run_dir`.
pub fn approve_command(run_id: &str, step: &str, run_dir: &Path) -> String {
    let dir = if run_dir == Path::new(DEFAULT_RUN_DIR) {
        String::new()
    } else {
        format!(" --run-dir {}", run_dir.display())
    };
    format!("escola-runbook approve {run_id} {step} --as NAME{dir}")
}
