//! Approvals by a named person: who may approve (the runbook's approvers and
//! their roles), what a step requires (an [`ApprovalPolicy`]), and what an
//! approver decided ([`ApprovalDecision`]). Plain data: the decision store
//! and the eligibility rule are in `decisions.rs`, the waiting in the
//! executor.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::format_timestamp;

/// A person who may approve steps, and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// Their name, as they give it to `approve --as`.
    pub name: String,
    /// The roles they hold ("dba").
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Approver {
    /// Whether they hold `role`.
    pub fn holds(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What happens when nobody decides before the deadline.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnDeadline {
    /// The step goes on as if approved.
    Approve,
    /// The step ends rejected, as a failed step (the default: silence is
    /// no consent).
    #[default]
    Reject,
    /// The whole run stops (exit code 4).
    Abort,
}

impl OnDeadline {
    /// The choice as files and bindings write it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDeadline::Approve => "approve",
            OnDeadline::Reject => "reject",
            OnDeadline::Abort => "abort",
        }
    }
}

/// A step's requirement: an approver holding `role` decides before it
/// runs (a manual step: the approval is the step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// The role an approver must hold.
    pub role: String,
    /// How long to wait for a decision; `None` waits without limit.
    #[serde(
        default,
        with = "crate::duration::opt_duration_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<Duration>,
    /// What the deadline decides.
    #[serde(default)]
    pub on_deadline: OnDeadline,
}

impl ApprovalPolicy {
    /// What is waited for, given who may approve: "approval by role dba:
    /// carla".
    pub fn describe_wait(&self, approvers: &[String]) -> String {
        waited_for(&self.role, approvers)
    }

    /// An approval by `role`, without deadline.
    pub fn new(role: impl Into<String>) -> Self {
        ApprovalPolicy {
            role: role.into(),
            deadline: None,
            on_deadline: OnDeadline::default(),
        }
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalVerdict {
    /// The step may go on.
    Approved,
    /// The step ends failed.
    Rejected,
}

impl ApprovalVerdict {
    /// "approved" or "rejected".
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalVerdict::Approved => "approved",
            ApprovalVerdict::Rejected => "rejected",
        }
    }
}

/// One approver's decision about one step of one run: who, from where,
/// when, and why. One line of the run's decision file, and, once the run
/// accepted it, of its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    /// The step.
    pub step: String,
    /// Approve or reject.
    pub verdict: ApprovalVerdict,
    /// The approver's name (one of the runbook's approvers).
    pub approver: String,
    /// The OS account that recorded it.
    pub account: String,
    /// The machine it was recorded on.
    pub host: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl ApprovalDecision {
    /// The decision as reports word it: "approved by carla at 2026-… UTC
    /// from db-host (carla) — restore checked".
    pub fn describe(&self) -> String {
        let comment = self
            .comment
            .as_deref()
            .map(|c| format!(" — {c}"))
            .unwrap_or_default();
        format!(
            "{} by {} at {} from {} ({}){comment}",
            self.verdict.as_str(),
            self.approver,
            format_timestamp(&self.at),
            self.host,
            self.account
        )
    }
}

/// A step waiting for approval, as the run recorded it when it began to
/// wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The role required.
    pub role: String,
    /// The approvers who hold it (the run's operator left out).
    pub approvers: Vec<String>,
    /// When the wait began.
    pub since: DateTime<Utc>,
    /// When the deadline passes, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// What the deadline decides.
    pub on_deadline: OnDeadline,
}

impl ApprovalRequest {
    /// What is waited for, and until when: "approval by role dba: carla
    /// (deadline 2026-12-02 20:35:53 UTC, then reject)".
    pub fn describe(&self) -> String {
        let deadline = self
            .deadline
            .map(|d| {
                format!(
                    " (deadline {}, then {})",
                    format_timestamp(&d),
                    self.on_deadline.as_str()
                )
            })
            .unwrap_or_default();
        format!("{}{deadline}", waited_for(&self.role, &self.approvers))
    }
}

/// "approval by role dba: carla".
fn waited_for(role: &str, approvers: &[String]) -> String {
    format!(
        "approval by role {role}: {}",
        if approvers.is_empty() {
            "nobody but the operator".to_owned()
        } else {
            approvers.join(", ")
        }
    )
}

/// How a wait for approval ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum ApprovalResult {
    /// An approver decided.
    Approver {
        /// The decision.
        #[serde(flatten)]
        decision: ApprovalDecision,
    },
    /// Nobody decided in time; the policy's `on_deadline` was taken.
    Deadline {
        /// What was taken.
        taken: OnDeadline,
        /// When.
        at: DateTime<Utc>,
    },
}

impl ApprovalResult {
    /// The result in a few words, for a step's summary ("approved by
    /// carla"); [`describe`](Self::describe) gives when, where and why.
    pub fn headline(&self) -> String {
        match self {
            ApprovalResult::Approver { decision } => {
                format!("{} by {}", decision.verdict.as_str(), decision.approver)
            }
            ApprovalResult::Deadline { taken, .. } => {
                format!("no decision before the deadline: {} taken", taken.as_str())
            }
        }
    }

    /// The result as reports word it.
    pub fn describe(&self) -> String {
        match self {
            ApprovalResult::Approver { decision } => decision.describe(),
            ApprovalResult::Deadline { taken, at } => format!(
                "no decision before the deadline ({}): {} taken",
                format_timestamp(at),
                taken.as_str()
            ),
        }
    }
}

/// A step's approval as a run went: what was asked, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// What was asked, and of whom.
    pub request: ApprovalRequest,
    /// How it ended; `None` while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ApprovalResult>,
}
