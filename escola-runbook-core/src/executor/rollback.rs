//! Rolling back: whether a failure starts the rollback (only when the run
//! changed something), the compensation (each completed step's undo, newest
//! first), then the rollback phase.

use super::error::RunError;
use super::run::{Run, Stop};
use crate::event::{Event, RollbackReason, RollbackWithheld, Verdict};
use crate::model::Phase;
use crate::mutex::lock_unpoisoned as lock;
use crate::outcome::{Outcome, SkipReason};

/// Why a failure did not start the rollback ([`RollbackWithheld::detail`]).
const NOTHING_CHANGED: &str =
    "not rolled back: no step of this run changed anything in a phase that rolls back on failure";

impl Run {
    /// After the normal flow ended with `stop` (`None`: every phase ran):
    /// runs the rollback when `rollback_trigger` says a failure calls for it
    /// and the run changed something, or when the selection names the
    /// rollback phase; otherwise records it as not reached. Returns the
    /// run's verdict, and the failure whose rollback was withheld.
    pub(super) async fn conclude(
        &self,
        stop: Option<Stop>,
        mut rollback_trigger: Option<RollbackReason>,
    ) -> Result<(Verdict, Option<RollbackWithheld>), RunError> {
        let mut verdict = match &stop {
            None => Verdict::Succeeded,
            Some(Stop::Failed(_)) => Verdict::Failed,
            Some(Stop::Cancelled) => Verdict::Stopped,
        };
        // A failure rolls back only what this run (or the run it resumes)
        // changed: a failing re-check of read-only steps undoes nothing.
        let mut rollback_withheld = None;
        if rollback_trigger.is_some() && self.record().first_change().is_none() {
            rollback_withheld = rollback_trigger.take().map(|failure| RollbackWithheld {
                failure,
                detail: NOTHING_CHANGED.into(),
            });
        }
        if let Some(phase) = self.runbook.rollback_phase() {
            let explicit = self.selection.names_explicitly(phase);
            if let Some(reason) = rollback_trigger {
                self.publish(Event::RollbackTriggered {
                    reason,
                    at: self.clock.now(),
                })?;
                verdict = self.run_rollback(phase, true).await?;
            } else if explicit && stop.is_none() {
                verdict = self.run_rollback(phase, false).await?;
            } else {
                let outcome = match &stop {
                    Some(Stop::Cancelled) => {
                        Outcome::not_run("the run was stopped by the operator")
                    }
                    _ => Outcome::skipped(SkipReason::RollbackNotTriggered),
                };
                self.finish_unreached(phase, &outcome)?;
            }
        }
        Ok((verdict, rollback_withheld))
    }

    async fn run_rollback(&self, phase: &Phase, triggered: bool) -> Result<Verdict, RunError> {
        // Compensation first: each completed step's own undo, newest first,
        // then the rollback phase's procedure and verification.
        let undone = if triggered {
            self.run_undos().await?
        } else {
            true
        };
        let result = self.run_phase_with(phase, true, triggered).await?;
        Ok(if self.cancel.is_cancelled() {
            Verdict::Stopped
        } else if result.failure.is_some() || !undone {
            Verdict::RollbackFailed
        } else {
            Verdict::RolledBack
        })
    }

    /// Runs the undo of every completed step that declares one, newest
    /// first; true when all succeeded.
    async fn run_undos(&self) -> Result<bool, RunError> {
        let completed = lock(&self.completed).clone();
        let mut all_ok = true;
        for id in completed.iter().rev() {
            let Some((phase, step)) = self.runbook.find_step(id) else {
                continue;
            };
            let Some(undo) = &step.undo else { continue };
            let desc = undo.describe();
            let outcome = if self.dry_run && desc.mutates {
                Outcome::skipped(SkipReason::DryRun {
                    would: desc.action_text().to_owned(),
                })
            } else {
                let outcome = self
                    .attempt(
                        phase,
                        step,
                        undo.as_ref(),
                        1,
                        step.policy.timeout,
                        &self.cancel,
                    )
                    .await;
                self.secrets.redactor().redact_serde(&outcome)
            };
            all_ok &= outcome.status.is_ok();
            self.publish(Event::UndoFinished {
                phase: phase.id.clone(),
                step: step.id.clone(),
                outcome,
                at: self.clock.now(),
            })?;
        }
        Ok(all_ok)
    }
}
