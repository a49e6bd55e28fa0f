//! Notifiers: who tells people about the run ("deploy started", "rollback
//! started"). A notice never decides a deploy and a dry-run never sends it.
//!
//! Two shapes, one rule. A notice *step* is a check whose
//! [`Description::notice`](crate::Description::notice) is set: the executor
//! records anything but a pass as `warned`, and a dry-run skips it with its
//! [`Check::preview`](crate::Check::preview) as evidence. A [`Notifier`]
//! announces the run's milestones beside the steps: the executor hands it
//! each milestone, sends nothing in a dry-run, and journals every message
//! with its [`Delivery`](crate::Delivery), so the record shows what people were told.

use async_trait::async_trait;

use crate::event::Event;

/// Announces a run's milestones to people (a chat webhook, an e-mail
/// gateway).
///
/// The executor calls [`message`](Self::message) for every event (already
/// redacted) and, outside a dry-run, [`deliver`](Self::deliver) for each
/// message in a task of its own: a slow or failing destination never holds
/// up or fails the run.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Where messages go, safe to record: a host name, never a secret URL.
    fn destination(&self) -> String;

    /// The message for `event`, if it is a milestone this notifier
    /// announces.
    fn message(&self, event: &Event) -> Option<String>;

    /// Sends one message, retrying as the destination deserves; the number
    /// of attempts it took, or why it could not.
    async fn deliver(&self, text: &str) -> Result<u32, DeliveryError>;
}

/// A message that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({attempts} attempts)")]
pub struct DeliveryError {
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt got ("HTTP 500", "cannot connect").
    pub error: String,
}
