//! The run record: what happened, folded from the event stream. Every report
//! is rendered from it, and it can be rebuilt from the journal alone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::RuleTransition;
use crate::approval::ApprovalRecord;
use crate::confirm::{Confirmation, Decision};
use crate::deploy_lock::LockOwner;
use crate::event::{
    Event, InterruptedDecision, Resolution, ResumeInfo, RollbackReason, RollbackWithheld, RunInfo,
    RunbookOrigin, SCHEMA_VERSION, Verdict,
};
use crate::model::PhaseKind;
use crate::notice::Notice;
use crate::outcome::{Outcome, SkipReason, Status};
use crate::outline::{Automation, PhaseOutline, RunbookOutline, StepOutline};
use crate::process::ProcessGroup;

/// How reports show a step that started and has no recorded outcome.
pub const OUTCOME_NOT_RECORDED: &str = "outcome not recorded";

/// One step as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step as defined.
    #[serde(flatten)]
    pub outline: StepOutline,
    /// First start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Wall time, first start to finish.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Attempts made.
    #[serde(default)]
    pub attempts: u32,
    /// Outcomes of attempts that were retried, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried: Vec<Outcome>,
    /// The operator's answer, for manual steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    /// The approval it required: asked of whom, and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
    /// The final outcome; `None` while running or if the run died first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Its undo's outcome, if a rollback undid it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Outcome>,
    /// The process group its latest attempt started, if it started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_group: Option<ProcessGroup>,
}

impl StepRecord {
    /// The status to judge by: the outcome's, `aborted` for a step that
    /// started and has no recorded outcome, `not_run` otherwise.
    pub fn status(&self) -> Status {
        match (&self.outcome, self.started_at) {
            (Some(o), _) => o.status,
            (None, Some(_)) => Status::Aborted,
            (None, None) => Status::NotRun,
        }
    }

    /// True for a step that started and has no recorded outcome: the
    /// process died, or the journal could not be written, before it was
    /// recorded. What it did is unknown, so reports say "outcome not
    /// recorded" rather than claim it was aborted.
    pub fn outcome_unrecorded(&self) -> bool {
        self.outcome.is_none() && self.started_at.is_some()
    }

    /// The outcome's summary, or what is known of a step without one.
    pub fn summary(&self) -> &str {
        match (&self.outcome, self.started_at) {
            (Some(o), _) => &o.summary,
            (None, Some(_)) => {
                "started, and its outcome was not recorded (the process died or the journal could not be written): what it did is unknown"
            }
            (None, None) => "not reached: the record ends before this step",
        }
    }

    /// The status in words, as reports show it.
    pub fn status_label(&self) -> &'static str {
        if self.outcome_unrecorded() {
            OUTCOME_NOT_RECORDED
        } else {
            self.status().label()
        }
    }

    /// True for an automated step that changes something.
    pub fn mutates(&self) -> bool {
        matches!(&self.outline.automation, Automation::Check { description } if description.mutates)
    }

    /// Whether this step, as it went, may have changed something outside,
    /// which is what a rollback would undo:
    ///
    /// - an automated step whose check (or undo) changes something, once
    ///   its check started: an action that failed or died half-way may have
    ///   changed something; a `confirm_first` step the operator did not
    ///   approve did not start;
    /// - a manual step a person confirmed: a person acted on the system
    ///   ("Recolocar a versão anterior"); skipped or declined, it did not;
    /// - in a dry-run, a step of either kind a real run would have run or
    ///   asked about, so the rehearsal takes the real run's branch.
    ///
    /// A notice changes nothing a rollback could undo (people were told),
    /// so it never makes a failure roll back.
    pub fn changed_something(&self) -> bool {
        let notice = matches!(&self.outline.automation, Automation::Check { description } if description.notice);
        let changes =
            (self.mutates() && !notice) || self.outline.undo.as_ref().is_some_and(|u| u.mutates);
        let manual = matches!(self.outline.automation, Automation::Manual { .. });
        let confirmed = self
            .confirmation
            .as_ref()
            .is_some_and(|c| c.decision == Decision::Confirmed);
        let rehearsed = self.outcome.as_ref().is_some_and(|o| {
            matches!(
                o.skip,
                Some(SkipReason::DryRun { .. } | SkipReason::UnknownInDryRun { .. })
            )
        });
        if rehearsed {
            manual || changes
        } else if manual {
            confirmed
        } else {
            changes && self.started_at.is_some() && (!self.outline.confirm_first || confirmed)
        }
    }
}

/// One phase as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Phase id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Kind.
    pub kind: PhaseKind,
    /// Whether a blocking failure here triggers rollback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback_on_failure: bool,
    /// Remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Worst status of its steps, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Steps.
    pub steps: Vec<StepRecord>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// JSON schema version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Facts fixed at the start.
    pub run: RunInfo,
    /// Runbook name.
    pub runbook: String,
    /// Contacts, glossary, version.
    pub metadata: crate::model::Metadata,
    /// Why a rollback ran, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReason>,
    /// A failure that did not start the rollback, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_withheld: Option<RollbackWithheld>,
    /// How it ended; `None` if the record stops before the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Exit code that goes with the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Phases in runbook order.
    pub phases: Vec<PhaseRecord>,
    /// Each time the run was resumed after an interruption or a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<ResumeInfo>,
    /// Alert rule state changes seen by watch steps, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_transitions: Vec<RecordedTransition>,
    /// Why the run stopped, if its deploy lock was taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_lost: Option<String>,
    /// Deploy locks broken to run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broken_locks: Vec<BrokenLock>,
    /// The step the run stopped at to wait for an approval without
    /// waiting (`run --no-wait`); cleared by a resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_approval: Option<String>,
    /// Messages to people about the run (milestones), with their delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
}

/// A rule transition with the watch step that saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedTransition {
    /// Phase id.
    pub phase: String,
    /// Step id.
    pub step: String,
    /// The change.
    #[serde(flatten)]
    pub transition: RuleTransition,
}

/// A deploy lock broken for this run: the audit trail of who displaced whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLock {
    /// The displaced holder.
    pub previous: LockOwner,
    /// Who broke it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The events do not make a run record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The first event is not `run_started`.
    #[error("the record does not begin with run_started (found {0}); it is not a run journal")]
    NoStart(String),
    /// An event names a step or phase the runbook outline lacks.
    #[error("event {index} names {what} `{id}`, which the run's runbook does not have")]
    Unknown {
        /// 0-based event index.
        index: usize,
        /// "phase" or "step".
        what: &'static str,
        /// The id.
        id: String,
    },
    /// A journal from a newer version of the tool.
    #[error(
        "the record has schema version {0}, newer than this tool's {SCHEMA_VERSION}; upgrade escola-runbook"
    )]
    NewerSchema(u32),
}

impl RunRecord {
    /// An empty record for a run about to start.
    pub fn start(run: RunInfo, runbook: &RunbookOutline) -> Self {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run,
            runbook: runbook.name.clone(),
            metadata: runbook.metadata.clone(),
            rollback: None,
            rollback_withheld: None,
            verdict: None,
            exit_code: None,
            finished_at: None,
            phases: runbook.phases.iter().map(phase_record).collect(),
            resumes: Vec::new(),
            rule_transitions: Vec::new(),
            lock_lost: None,
            broken_locks: Vec::new(),
            awaiting_approval: None,
            notices: Vec::new(),
        }
    }

    /// Folds a whole event stream (a journal) into a record.
    pub fn from_events(events: &[Event]) -> Result<Self, RecordError> {
        let Some(first) = events.first() else {
            return Err(RecordError::NoStart("nothing".into()));
        };
        let Event::RunStarted {
            schema_version,
            run,
            runbook,
        } = first
        else {
            return Err(RecordError::NoStart(event_name(first)));
        };
        if *schema_version > SCHEMA_VERSION {
            return Err(RecordError::NewerSchema(*schema_version));
        }
        let mut record = RunRecord::start(run.clone(), runbook);
        for (index, event) in events.iter().enumerate().skip(1) {
            record.apply(index, event)?;
        }
        Ok(record)
    }

    /// Applies one event; `index` only labels errors.
    pub fn apply(&mut self, index: usize, event: &Event) -> Result<(), RecordError> {
        match event {
            Event::RunStarted { .. } | Event::StepProgress { .. } | Event::PhaseStarted { .. } => {}
            Event::StepStarted { step, at, .. } => {
                let s = self.step_mut(index, step)?;
                s.started_at.get_or_insert(*at);
                s.attempts += 1;
            }
            Event::ProcessGroupStarted { step, group, .. } => {
                self.step_mut(index, step)?.process_group = Some(group.clone());
            }
            Event::StepRetrying { step, outcome, .. } => {
                self.step_mut(index, step)?.retried.push(outcome.clone());
            }
            Event::ConfirmationRecorded {
                step, confirmation, ..
            } => {
                self.step_mut(index, step)?.confirmation = Some(confirmation.clone());
            }
            Event::ApprovalRequested { step, request, .. } => {
                self.step_mut(index, step)?.approval = Some(ApprovalRecord {
                    request: request.clone(),
                    result: None,
                });
            }
            Event::ApprovalRecorded { step, result, .. } => {
                if let Some(approval) = &mut self.step_mut(index, step)?.approval {
                    approval.result = Some(result.clone());
                }
            }
            Event::RunAwaitingApproval { step, .. } => {
                self.awaiting_approval = Some(step.clone());
                self.exit_code = Some(crate::exit::AWAITING_APPROVAL);
            }
            Event::StepFinished {
                step,
                outcome,
                attempts,
                elapsed_ms,
                at,
                ..
            } => {
                let s = self.step_mut(index, step)?;
                s.outcome = Some(outcome.clone());
                s.attempts = *attempts;
                s.elapsed_ms = *elapsed_ms;
                s.finished_at = Some(*at);
            }
            Event::PhaseFinished { phase, status, .. } => {
                let p = self
                    .phases
                    .iter_mut()
                    .find(|p| &p.id == phase)
                    .ok_or_else(|| RecordError::Unknown {
                        index,
                        what: "phase",
                        id: phase.clone(),
                    })?;
                p.status = Some(*status);
            }
            Event::UndoFinished { step, outcome, .. } => {
                self.step_mut(index, step)?.undo = Some(outcome.clone())
            }
            Event::RollbackTriggered { reason, .. } => self.rollback = Some(reason.clone()),
            Event::RunResumed { resume } => {
                self.awaiting_approval = None;
                self.verdict = None;
                self.exit_code = None;
                self.finished_at = None;
                self.rollback_withheld = None;
                for r in &resume.resolutions {
                    if r.decision == InterruptedDecision::Done {
                        let outcome = resolved_done(r);
                        let s = self.step_mut(index, &r.step)?;
                        s.outcome = Some(outcome);
                        s.finished_at = Some(resume.at);
                    }
                }
                self.resumes.push(resume.clone());
            }
            Event::RuleTransition {
                phase,
                step,
                transition,
            } => self.rule_transitions.push(RecordedTransition {
                phase: phase.clone(),
                step: step.clone(),
                transition: transition.clone(),
            }),
            Event::LockLost { detail, .. } => self.lock_lost = Some(detail.clone()),
            Event::Notice { notice } => self.notices.push(notice.clone()),
            Event::LockBroken {
                previous,
                by,
                reason,
                at,
            } => self.broken_locks.push(BrokenLock {
                previous: previous.clone(),
                by: by.clone(),
                reason: reason.clone(),
                at: *at,
            }),
            Event::RunFinished {
                verdict,
                exit_code,
                at,
                rollback_withheld,
            } => {
                self.verdict = Some(*verdict);
                self.exit_code = Some(*exit_code);
                self.finished_at = Some(*at);
                self.rollback_withheld = rollback_withheld.clone();
            }
        }
        Ok(())
    }

    fn step_mut(&mut self, index: usize, id: &str) -> Result<&mut StepRecord, RecordError> {
        self.phases
            .iter_mut()
            .flat_map(|p| p.steps.iter_mut())
            .find(|s| s.outline.id == id)
            .ok_or_else(|| RecordError::Unknown {
                index,
                what: "step",
                id: id.to_owned(),
            })
    }

    /// Every step with its phase.
    pub fn steps(&self) -> impl Iterator<Item = (&PhaseRecord, &StepRecord)> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }

    /// The runbook the run last loaded: the latest resume's, else the
    /// run's own; `None` for a journal written before sources were
    /// recorded.
    pub fn source(&self) -> Option<&RunbookOrigin> {
        self.resumes
            .iter()
            .rev()
            .find_map(|r| r.source.as_ref())
            .or(self.run.source.as_ref())
    }

    /// The first step, in a phase that rolls back on failure, that may have
    /// changed something ([`StepRecord::changed_something`]): a failure
    /// rolls back only when there is one.
    pub fn first_change(&self) -> Option<(&PhaseRecord, &StepRecord)> {
        self.steps()
            .find(|(p, s)| p.rollback_on_failure && s.changed_something())
    }

    /// How many steps ended with each status, in [`Status::ALL`] order,
    /// leaving out statuses with no step, and steps whose outcome was not
    /// recorded (see [`RunRecord::unrecorded`]).
    pub fn counts(&self) -> Vec<(Status, usize)> {
        Status::ALL
            .iter()
            .map(|s| {
                let n = self
                    .steps()
                    .filter(|(_, r)| !r.outcome_unrecorded() && r.status() == *s)
                    .count();
                (*s, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// How many steps started and have no recorded outcome.
    pub fn unrecorded(&self) -> usize {
        self.steps().filter(|(_, r)| r.outcome_unrecorded()).count()
    }
}

/// The outcome recorded for an interrupted step the operator marked done.
pub(crate) fn resolved_done(r: &Resolution) -> Outcome {
    let comment = r
        .comment
        .as_deref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    Outcome::passed(format!(
        "marked done by {} after an interruption (not re-run){comment}",
        r.who
    ))
}

fn phase_record(p: &PhaseOutline) -> PhaseRecord {
    PhaseRecord {
        id: p.id.clone(),
        title: p.title.clone(),
        kind: p.kind,
        rollback_on_failure: p.rollback_on_failure,
        notes: p.notes.clone(),
        status: None,
        steps: p
            .steps
            .iter()
            .map(|s| StepRecord {
                outline: s.clone(),
                started_at: None,
                finished_at: None,
                elapsed_ms: 0,
                attempts: 0,
                retried: Vec::new(),
                confirmation: None,
                approval: None,
                outcome: None,
                undo: None,
                process_group: None,
            })
            .collect(),
    }
}

fn event_name(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "an unknown event".into())
}
