//! Waiting for an approval: the wait is journaled (who may approve, the
//! deadline), the run's decision file is polled while the clock runs, and
//! the accepted decision (or the deadline's) is copied into the journal.
//! Shared by steps that require an approval (`approval.rs`) and by checks
//! that ask for one while they run (`host.rs`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::error::RunError;
use crate::approval::{
    ApprovalDecision, ApprovalPolicy, ApprovalRequest, ApprovalResult, OnDeadline,
};
use crate::clock::Clock;
use crate::decisions::{DECISION_POLL, eligible, read_decisions};
use crate::dispatch::Dispatcher;
use crate::event::Event;
use crate::model::Runbook;
use crate::mutex::lock_unpoisoned as lock;
use crate::record::RunRecord;

/// What waiting for an approval needs of the run, shared by the steps that
/// require one ([`Run::await_approval`]) and the checks that ask for one
/// while they run (a watch rule's `ask`, through [`StepHost`]).
///
/// [`StepHost`]: crate::StepHost
pub(super) struct Approvals {
    pub(super) runbook: Arc<Runbook>,
    pub(super) operator: String,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) record: Arc<Mutex<RunRecord>>,
    pub(super) dispatcher: Dispatcher,
    /// Cancelled when the journal fails or a deadline aborts the run.
    pub(super) cancel: CancellationToken,
    /// The run directory, where approvers' decisions arrive; `None` for a
    /// run without a journal on disk (only deadlines decide there).
    pub(super) run_dir: Option<std::path::PathBuf>,
    /// End the run when a step begins to wait for an approval.
    pub(super) no_wait: bool,
}

impl Approvals {
    /// Waits for an approval of `step` under `policy`: until an approver's
    /// decision the run accepts, the deadline, or a stop (`None`). The
    /// wait and its result are journaled; a deadline that aborts cancels
    /// the run. A resumed run keeps waiting on the request it journaled
    /// before, so the deadline still counts from when the wait began.
    pub(super) async fn wait(
        &self,
        phase: &str,
        step: &str,
        policy: &ApprovalPolicy,
        stop: &CancellationToken,
    ) -> Result<Option<ApprovalResult>, RunError> {
        let request = match self.pending_request(step) {
            Some(request) => request,
            None => {
                let request = self.request(policy);
                self.publish(Event::ApprovalRequested {
                    phase: phase.to_owned(),
                    step: step.to_owned(),
                    request: request.clone(),
                })?;
                request
            }
        };
        let result = loop {
            if let Some(decision) = self.accepted_decision(step, &request.role) {
                break ApprovalResult::Approver { decision };
            }
            let now = self.clock.now();
            if let Some(deadline) = request.deadline.filter(|d| *d <= now) {
                break ApprovalResult::Deadline {
                    taken: request.on_deadline,
                    at: deadline,
                };
            }
            if self.no_wait {
                return Err(RunError::AwaitingApproval {
                    phase: phase.to_owned(),
                    step: step.to_owned(),
                });
            }
            let wait = request
                .deadline
                .and_then(|d| (d - now).to_std().ok())
                .map_or(DECISION_POLL, |left| left.min(DECISION_POLL));
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(None),
                () = tokio::time::sleep(wait) => {}
            }
        };
        self.publish(Event::ApprovalRecorded {
            phase: phase.to_owned(),
            step: step.to_owned(),
            result: result.clone(),
        })?;
        if matches!(
            result,
            ApprovalResult::Deadline {
                taken: OnDeadline::Abort,
                ..
            }
        ) {
            self.cancel.cancel();
        }
        Ok(Some(result))
    }

    fn publish(&self, event: Event) -> Result<(), RunError> {
        Ok(self.dispatcher.publish_or_cancel(event, &self.cancel)?)
    }

    /// The approvers of `role` other than the operator.
    pub(super) fn holders(&self, role: &str) -> Vec<String> {
        self.runbook.metadata().may_approve(role, &self.operator)
    }

    fn request(&self, policy: &ApprovalPolicy) -> ApprovalRequest {
        let since = self.clock.now();
        ApprovalRequest {
            role: policy.role.clone(),
            approvers: self.holders(&policy.role),
            since,
            deadline: policy.deadline.map(|d| after(since, d)),
            on_deadline: policy.on_deadline,
        }
    }

    /// The request `step` waits on from before a resume, if any.
    fn pending_request(&self, step: &str) -> Option<ApprovalRequest> {
        let record = lock(&self.record);
        record
            .steps()
            .find(|(_, s)| s.outline.id == step)
            .and_then(|(_, s)| crate::decisions::pending(s).cloned())
    }

    /// The first decision in the run's decision file for `step` that the
    /// run accepts: the eligibility rule asked again, since anyone may
    /// append to the file.
    fn accepted_decision(&self, step: &str, role: &str) -> Option<ApprovalDecision> {
        let dir = self.run_dir.as_deref()?;
        let decisions = match read_decisions(dir) {
            Ok(decisions) => decisions,
            Err(e) => {
                // Read again at the next poll.
                tracing::warn!("{e}");
                return None;
            }
        };
        let metadata = self.runbook.metadata();
        decisions.into_iter().find(|d| {
            d.step == step && eligible(metadata, &self.operator, step, role, &d.approver).is_ok()
        })
    }
}

/// `since + d`, saturating.
fn after(since: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| since.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
