//! A step that requires an approval: the wait is journaled (who may
//! approve, the deadline), the run's decision file is polled while the
//! clock runs, and the accepted decision (or the deadline's) is copied into
//! the journal.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::error::RunError;
use super::run::Run;
use crate::approval::{
    ApprovalDecision, ApprovalPolicy, ApprovalRequest, ApprovalResult, ApprovalVerdict, OnDeadline,
};
use crate::decisions::{DECISION_POLL, eligible, read_decisions};
use crate::event::Event;
use crate::model::{Phase, Step};
use crate::outcome::{Evidence, Outcome};

/// How a wait for approval ended.
pub(super) enum Approval {
    /// Go on with the step; the result says who (or the deadline) let it.
    Granted(ApprovalResult),
    /// The step ends with this outcome (rejected, aborted, stopped).
    Ended(Outcome),
}

impl Run {
    /// Waits for an approval of `step` under `policy`: until an approver's
    /// decision the run accepts, the deadline, or a stop. A resumed run
    /// keeps waiting on the request it journaled before, so the deadline
    /// still counts from when the wait began.
    pub(super) async fn await_approval(
        &self,
        phase: &Phase,
        step: &Step,
        policy: &ApprovalPolicy,
        stop: &CancellationToken,
    ) -> Result<Approval, RunError> {
        let request = match self.pending_request(&step.id) {
            Some(request) => request,
            None => {
                let request = self.request(policy);
                self.publish(Event::ApprovalRequested {
                    phase: phase.id.clone(),
                    step: step.id.clone(),
                    request: request.clone(),
                })?;
                request
            }
        };
        let result = loop {
            if let Some(decision) = self.accepted_decision(&step.id, &request.role) {
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
                    phase: phase.id.clone(),
                    step: step.id.clone(),
                });
            }
            let wait = request
                .deadline
                .and_then(|d| (d - now).to_std().ok())
                .map_or(DECISION_POLL, |left| left.min(DECISION_POLL));
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    return Ok(Approval::Ended(Outcome::aborted(
                        "the run was stopped while waiting for approval",
                    )));
                }
                () = tokio::time::sleep(wait) => {}
            }
        };
        self.publish(Event::ApprovalRecorded {
            phase: phase.id.clone(),
            step: step.id.clone(),
            result: result.clone(),
        })?;
        let said = result.headline();
        Ok(match &result {
            ApprovalResult::Approver { decision }
                if decision.verdict == ApprovalVerdict::Rejected =>
            {
                Approval::Ended(approval_evidence(Outcome::failed(said), &result))
            }
            ApprovalResult::Deadline {
                taken: OnDeadline::Reject,
                ..
            } => Approval::Ended(approval_evidence(Outcome::failed(said), &result)),
            ApprovalResult::Deadline {
                taken: OnDeadline::Abort,
                ..
            } => {
                self.cancel.cancel();
                Approval::Ended(approval_evidence(Outcome::aborted(said), &result))
            }
            _ => Approval::Granted(result),
        })
    }

    /// What a dry-run says instead of waiting.
    pub(super) fn approval_preview(&self, policy: &ApprovalPolicy) -> String {
        format!(
            "wait for {}",
            policy.describe_wait(&self.holders(&policy.role))
        )
    }

    /// The approvers of `role` other than the operator.
    fn holders(&self, role: &str) -> Vec<String> {
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
        let record = self.record();
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

/// The evidence line every report shows for an approved step.
pub(super) fn approval_evidence(outcome: Outcome, result: &ApprovalResult) -> Outcome {
    let mut outcome = outcome;
    outcome.evidence.insert(
        0,
        Evidence {
            label: "approval".into(),
            value: result.describe(),
        },
    );
    outcome
}
