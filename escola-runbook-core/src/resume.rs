//! Continuing a run that died or failed: what is done stays done, what was
//! running when the process died is decided by a person, and a runbook that
//! changed under finished steps is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::event::{Event, InterruptedDecision, Resolution, Verdict};
use crate::model::Runbook;
use crate::outcome::{Outcome, SkipReason, Status};
use crate::outline::Automation;
use crate::process::{LiveProcess, ProcessGroup, live_members};
use crate::record::{RecordError, RunRecord, resolved_done};

/// A mutating step that started and never finished (or was aborted while
/// running): what it changed is unknown, so a person decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedStep {
    /// Phase id.
    pub phase: String,
    /// Step id.
    pub step: String,
    /// Title.
    pub title: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// The process group its last attempt started, if any.
    pub process_group: Option<ProcessGroup>,
}

/// Why a run cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The journal is not a run record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The run already succeeded.
    #[error("run {0} succeeded; there is nothing to resume (start a new run)")]
    Succeeded(String),
    /// The run was rolled back.
    #[error("run {0} was rolled back ({1})")]
    RolledBack(String, &'static str),
    /// Finished steps moved or changed in the runbook since, or steps were
    /// added (the run's record has no place for them).
    #[error("the runbook changed since run {run} in ways a resume cannot follow:\n  - {}\nresume with the runbook the run started with, or start a new run", changes.join("\n  - "))]
    RunbookChanged {
        /// The run.
        run: String,
        /// One line per change.
        changes: Vec<String>,
    },
    /// An interrupted step has no decision.
    #[error(
        "step `{0}` was interrupted while changing something and has no decision (rerun, done or abort)"
    )]
    Undecided(String),
    /// An interrupted step's processes still run on this host: running it
    /// again would run it twice at once.
    #[error(
        "step `{step}` cannot run again: processes it started (group {pgid}) still run on this host: {}; wait for them to end or stop them (kill -TERM -- -{pgid}), then resume",
        processes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    StillRunning {
        /// The step.
        step: String,
        /// Its process group.
        pgid: u32,
        /// The processes alive in it.
        processes: Vec<LiveProcess>,
    },
    /// A decision names a step that was not interrupted.
    #[error("step `{0}` was not interrupted; decisions apply only to interrupted steps")]
    NotInterrupted(String),
}

/// What a resume will do, computed from the journal and the current runbook.
#[derive(Debug, Clone)]
pub struct ResumePlan {
    /// The run being continued.
    pub record: RunRecord,
    /// Steps that will not run again, with their recorded outcomes.
    pub done: BTreeMap<String, Outcome>,
    /// Mutating steps that need a decision.
    pub interrupted: Vec<InterruptedStep>,
    /// Steps that will run (again).
    pub to_run: Vec<String>,
}

impl ResumePlan {
    /// Plans the resumption of the run in `events` with `runbook`.
    pub fn new(events: &[Event], runbook: &Runbook) -> Result<Self, ResumeError> {
        let record = RunRecord::from_events(events)?;
        let run_id = record.run.run_id.clone();
        match record.verdict {
            Some(Verdict::Succeeded) => return Err(ResumeError::Succeeded(run_id)),
            Some(Verdict::RolledBack) => {
                return Err(ResumeError::RolledBack(run_id, "rollback completed"));
            }
            Some(Verdict::RollbackFailed) => {
                return Err(ResumeError::RolledBack(run_id, "the rollback failed"));
            }
            _ => {}
        }
        let mut done = BTreeMap::new();
        let mut interrupted = Vec::new();
        let mut to_run = Vec::new();
        for (phase, step) in record.steps() {
            let id = step.outline.id.clone();
            let status = step.status();
            let finished = match &step.outcome {
                Some(o) => is_done(o, record.run.dry_run),
                None => false,
            };
            if finished {
                if let Some(o) = &step.outcome {
                    done.insert(id, o.clone());
                }
            } else if step.mutates()
                && step.started_at.is_some()
                && matches!(status, Status::Aborted)
            {
                interrupted.push(InterruptedStep {
                    phase: phase.id.clone(),
                    step: id,
                    title: step.outline.title.clone(),
                    started_at: step.started_at,
                    process_group: step.process_group.clone(),
                });
            } else {
                to_run.push(id);
            }
        }
        let changes = changes(&record, &done, runbook);
        if !changes.is_empty() {
            return Err(ResumeError::RunbookChanged {
                run: run_id,
                changes,
            });
        }
        Ok(ResumePlan {
            record,
            done,
            interrupted,
            to_run,
        })
    }

    /// Checks `resolutions` cover exactly the interrupted steps, and that no
    /// step to run again still has processes alive on `host` (this
    /// machine); returns the outcomes of the steps marked done.
    pub(crate) fn apply(
        &self,
        resolutions: &[Resolution],
        host: &str,
    ) -> Result<BTreeMap<String, Outcome>, ResumeError> {
        for r in resolutions {
            if !self.interrupted.iter().any(|i| i.step == r.step) {
                return Err(ResumeError::NotInterrupted(r.step.clone()));
            }
        }
        let mut done = self.done.clone();
        for i in &self.interrupted {
            let r = resolutions
                .iter()
                .find(|r| r.step == i.step)
                .ok_or_else(|| ResumeError::Undecided(i.step.clone()))?;
            if r.decision == InterruptedDecision::Done {
                done.insert(i.step.clone(), resolved_done(r));
            }
            if let (InterruptedDecision::Rerun, Some(group)) = (r.decision, &i.process_group) {
                // Process ids mean nothing on another machine.
                let processes = if group.host == host {
                    live_members(group.pgid)
                } else {
                    Vec::new()
                };
                if !processes.is_empty() {
                    return Err(ResumeError::StillRunning {
                        step: i.step.clone(),
                        pgid: group.pgid,
                        processes,
                    });
                }
            }
        }
        Ok(done)
    }
}

/// Whether an outcome means "do not repeat".
fn is_done(o: &Outcome, dry_run: bool) -> bool {
    match o.status {
        Status::Passed | Status::Warned => true,
        Status::Skipped => match &o.skip {
            // A resumed run keeps its selection, so what it left out stays out.
            Some(
                SkipReason::Operator | SkipReason::NotApplicable { .. } | SkipReason::NotSelected,
            ) => true,
            Some(SkipReason::DryRun { .. } | SkipReason::UnknownInDryRun { .. }) => dry_run,
            _ => false,
        },
        _ => false,
    }
}

/// How the current runbook differs from the run's, for steps already done,
/// and the steps it adds.
fn changes(record: &RunRecord, done: &BTreeMap<String, Outcome>, runbook: &Runbook) -> Vec<String> {
    let mut changes = Vec::new();
    let mut previous_position: Option<(usize, String)> = None;
    let order: Vec<&str> = runbook.steps().map(|(_, s)| s.id.as_str()).collect();
    for (phase, step) in record.steps() {
        let id = &step.outline.id;
        if !done.contains_key(id) {
            continue;
        }
        let Some((now_phase, now_step)) = runbook.find_step(id) else {
            changes.push(format!(
                "step `{id}` ({}) is done but no longer in the runbook",
                step.outline.title
            ));
            continue;
        };
        if now_phase.id != phase.id {
            changes.push(format!(
                "step `{id}` moved from phase `{}` to `{}`",
                phase.id, now_phase.id
            ));
        }
        if now_step.title != step.outline.title {
            changes.push(format!(
                "step `{id}` changed title: {:?} -> {:?}",
                step.outline.title, now_step.title
            ));
        }
        let now_automation = match now_step.description() {
            Some(description) => Automation::Check { description },
            None => Automation::Manual { instructions: None },
        };
        let same_kind = match (&step.outline.automation, &now_automation) {
            (Automation::Manual { .. }, Automation::Manual { .. }) => true,
            (Automation::Check { description: a }, Automation::Check { description: b }) => a == b,
            _ => false,
        };
        if !same_kind {
            changes.push(format!(
                "step `{id}` now does something else ({})",
                describe(&now_automation)
            ));
        }
        let position = order.iter().position(|s| s == id).unwrap_or(usize::MAX);
        if let Some((before, before_id)) = &previous_position {
            if position < *before {
                changes.push(format!(
                    "step `{id}` now comes before `{before_id}`, which it followed"
                ));
            }
        }
        previous_position = Some((position, id.clone()));
    }
    // The record of a run holds the steps it started with; a step added
    // since would run with nowhere to record it.
    for (_, step) in runbook.steps() {
        if record.steps().all(|(_, s)| s.outline.id != step.id) {
            changes.push(format!(
                "step `{}` ({}) is new: a resumed run runs only the steps it started with",
                step.id, step.title
            ));
        }
    }
    changes
}

fn describe(a: &Automation) -> String {
    match a {
        Automation::Manual { .. } => "a manual step".into(),
        Automation::Check { description } => format!(
            "check `{}`: {}",
            description.name,
            description.action_text()
        ),
    }
}
