//! An alert rule's state and its changes, as plain data: what a watch
//! step records through its [`Ctx`](crate::Ctx), what the journal keeps,
//! and what reports list under *Alerts*. The rule engine that decides them
//! is [`crate::rules`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A rule's alert state, as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Not breached.
    Inactive,
    /// Breached, window not yet satisfied.
    Pending,
    /// Firing.
    Firing,
}

impl AlertState {
    /// `inactive`, `pending`, `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// An alert rule's state change, with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleTransition {
    /// Rule id.
    pub rule: String,
    /// State before.
    pub from: AlertState,
    /// State after.
    pub to: AlertState,
    /// The value that caused it, if one was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The rule's condition ("p95 > 2s, for 5m").
    pub condition: String,
    /// What the evaluation saw (value with unit, or the error).
    pub detail: String,
    /// Time since the watch started.
    pub offset_ms: u64,
    /// Wall time.
    pub at: DateTime<Utc>,
}
