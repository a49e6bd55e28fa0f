//! A run in progress: its state, the order of its phases, and how it ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::RunError;
use super::host::RunHost;
use super::selection::Selection;
use crate::clock::Clock;
use crate::confirm::Confirmer;
use crate::dispatch::Dispatcher;
use crate::environment::Environment;
use crate::event::{Event, RollbackReason, Verdict};
use crate::model::{PhaseKind, Runbook};
use crate::mutex::lock_unpoisoned as lock;
use crate::outcome::Outcome;
use crate::record::RunRecord;
use crate::secret::Secrets;

/// Why the normal flow stopped.
#[derive(Debug, Clone)]
pub(super) enum Stop {
    Failed(RollbackReason),
    Cancelled,
}

pub(super) struct Run {
    pub(super) runbook: Arc<Runbook>,
    pub(super) selection: Selection,
    pub(super) dry_run: bool,
    pub(super) operator: String,
    pub(super) run_id: String,
    pub(super) environment: Arc<Environment>,
    pub(super) secrets: Arc<Secrets>,
    pub(super) confirmer: Arc<dyn Confirmer>,
    pub(super) cancel: CancellationToken,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) values: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Dry-run: values that skipped steps would have produced, and by whom.
    pub(super) dry_unknown: Mutex<BTreeMap<String, String>>,
    /// The run record, folded by the dispatcher from every durable event.
    pub(super) record: Arc<Mutex<RunRecord>>,
    /// Resume: steps already done, with their outcomes.
    pub(super) done: BTreeMap<String, Outcome>,
    /// Steps with an undo that completed, in completion order.
    pub(super) completed: Mutex<Vec<String>>,
    /// Set when the deploy lock was taken over.
    pub(super) lock_lost: Arc<Mutex<Option<String>>>,
    pub(super) dispatcher: Dispatcher,
    /// What each step's `Ctx` reaches the run through, approvals too.
    pub(super) host: Arc<RunHost>,
}

impl Run {
    /// Publishes a durable event. If the journal cannot take it, the run
    /// stops at once (running steps are cancelled): nothing more could be
    /// recorded.
    pub(super) fn publish(&self, event: Event) -> Result<(), RunError> {
        Ok(self.dispatcher.publish_or_cancel(event, &self.cancel)?)
    }

    /// The record as folded so far.
    pub(super) fn record(&self) -> RunRecord {
        lock(&self.record).clone()
    }

    /// Runs the phases in order until one stops the run, then rolls back
    /// or not, and records how the run ended.
    pub(super) async fn execute(&self) -> Result<(), RunError> {
        let mut stop: Option<Stop> = None;
        let mut rollback_trigger: Option<RollbackReason> = None;
        for phase in self.runbook.phases() {
            if phase.kind == PhaseKind::Rollback {
                continue;
            }
            if let Some(stop) = &stop {
                self.finish_unreached(phase, &not_reached(stop))?;
                continue;
            }
            let result = self.run_phase(phase, false).await?;
            if self.cancel.is_cancelled() {
                stop = Some(Stop::Cancelled);
            } else if let Some(reason) = result.failure {
                if phase.rollback_on_failure {
                    rollback_trigger = Some(reason.clone());
                }
                stop = Some(Stop::Failed(reason));
            }
        }
        let (verdict, rollback_withheld) = self.conclude(stop, rollback_trigger).await?;
        let lost = lock(&self.lock_lost).take();
        if let Some(detail) = lost {
            self.publish(Event::LockLost {
                detail,
                at: self.clock.now(),
            })?;
        }
        self.publish(Event::RunFinished {
            verdict,
            exit_code: verdict.exit_code(),
            at: self.clock.now(),
            rollback_withheld,
        })
    }

    /// The operator chose to abort at resume: the interrupted steps are
    /// recorded as aborted and the run ends stopped.
    pub(super) fn abort_at_resume(&self, steps: &[String]) -> Result<(), RunError> {
        for id in steps {
            if let Some((phase, step)) = self.runbook.find_step(id) {
                self.finish(
                    phase,
                    step,
                    Outcome::aborted("interrupted earlier; the operator chose to abort at resume, so what it changed is unknown"),
                    0,
                    Duration::ZERO,
                )?;
            }
        }
        self.publish(Event::RunFinished {
            verdict: Verdict::Stopped,
            exit_code: Verdict::Stopped.exit_code(),
            at: self.clock.now(),
            rollback_withheld: None,
        })
    }
}

/// The outcome of a step the run never reached because of `stop`.
pub(super) fn not_reached(stop: &Stop) -> Outcome {
    match stop {
        Stop::Failed(reason) => Outcome::not_run(format!(
            "not reached: blocking step `{}` ended {}",
            reason.step, reason.status
        )),
        Stop::Cancelled => Outcome::not_run("not reached: the run was stopped by the operator"),
    }
}
