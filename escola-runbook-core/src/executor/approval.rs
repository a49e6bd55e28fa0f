//! A step that requires an approval: it waits (`approval_wait.rs`), then
//! goes on, or ends rejected or aborted with the decision as evidence.

use tokio_util::sync::CancellationToken;

use super::error::RunError;
use super::run::Run;
use crate::approval::{ApprovalPolicy, ApprovalResult, ApprovalVerdict, OnDeadline};
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
    /// Waits for an approval of `step` under `policy`, and says whether
    /// the step goes on.
    pub(super) async fn await_approval(
        &self,
        phase: &Phase,
        step: &Step,
        policy: &ApprovalPolicy,
        stop: &CancellationToken,
    ) -> Result<Approval, RunError> {
        let Some(result) = self
            .host
            .approvals
            .wait(&phase.id, &step.id, policy, stop)
            .await?
        else {
            return Ok(Approval::Ended(Outcome::aborted(
                "the run was stopped while waiting for approval",
            )));
        };
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
            } => Approval::Ended(approval_evidence(Outcome::aborted(said), &result)),
            _ => Approval::Granted(result),
        })
    }

    /// What a dry-run says instead of waiting.
    pub(super) fn approval_preview(&self, policy: &ApprovalPolicy) -> String {
        format!(
            "wait for {}",
            policy.describe_wait(&self.host.approvals.holders(&policy.role))
        )
    }
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
