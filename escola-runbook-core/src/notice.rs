//! Notices: messages to people about the run ("deploy started", "rollback
//! started"). A notice never decides a deploy and a dry-run never sends it.
//!
//! Two shapes, one rule. A notice *step* is a check whose
//! [`Description::notice`](crate::Description::notice) is set: the executor
//! records anything but a pass as `warned`, and a dry-run skips it with its
//! [`Check::preview`](crate::Check::preview) as evidence. A [`Notifier`]
//! announces the run's milestones beside the steps: the executor hands it
//! each milestone, sends nothing in a dry-run, and journals every message
//! with its [`Delivery`], so the record shows what people were told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::event::{Dispatcher, Event};
use crate::journal_error::JournalWriteError;
use crate::mutex::lock_unpoisoned as lock;

/// How long the end of a run waits for milestone messages still being
/// sent; a message not delivered by then is recorded as
/// [`Delivery::Unfinished`].
pub const NOTICE_WAIT: Duration = Duration::from_secs(15);

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

/// What happened to one notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Delivery {
    /// The destination took it.
    Delivered {
        /// Attempts it took.
        attempts: u32,
    },
    /// Every attempt failed.
    Undelivered {
        /// Attempts made.
        attempts: u32,
        /// What the last attempt got.
        error: String,
    },
    /// Still being sent when the run stopped waiting ([`NOTICE_WAIT`]).
    Unfinished {
        /// How long the end of the run waited.
        waited_ms: u64,
    },
    /// Not sent: the run was a dry-run.
    DryRun,
}

impl Delivery {
    /// Words for reports.
    pub fn describe(&self) -> String {
        match self {
            Delivery::Delivered { attempts: 1 } => "delivered".into(),
            Delivery::Delivered { attempts } => format!("delivered after {attempts} attempts"),
            Delivery::Undelivered { attempts, error } => {
                format!("NOT delivered: {error} after {attempts} attempts")
            }
            Delivery::Unfinished { waited_ms } => format!(
                "NOT delivered: still being sent when the run ended (waited {})",
                crate::outcome::format_duration(Duration::from_millis(*waited_ms))
            ),
            Delivery::DryRun => "not sent (dry-run)".into(),
        }
    }
}

/// One message to people, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The message.
    pub text: String,
    /// Where it went (or would have gone): a host name.
    pub to: String,
    /// What happened to it.
    pub delivery: Delivery,
    /// When that was known.
    pub at: DateTime<Utc>,
}

/// The run's notifiers, driven by the dispatcher: each milestone is
/// journaled as not sent (dry-run) or handed to a task whose delivery is
/// journaled when it ends.
pub(crate) struct Announcer {
    notifiers: Vec<Arc<dyn Notifier>>,
    dry_run: bool,
    clock: Arc<dyn Clock>,
    pending: Mutex<Vec<Pending>>,
}

/// A message being sent.
struct Pending {
    text: String,
    to: String,
    task: tokio::task::JoinHandle<()>,
}

impl Announcer {
    pub(crate) fn new(
        notifiers: Vec<Arc<dyn Notifier>>,
        dry_run: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Announcer {
            notifiers,
            dry_run,
            clock,
            pending: Mutex::default(),
        }
    }

    /// Announces `event` if it is a milestone: in a dry-run by journaling
    /// what would have been sent, otherwise by starting the delivery.
    pub(crate) fn announce(
        &self,
        event: &Event,
        dispatcher: &Dispatcher,
    ) -> Result<(), JournalWriteError> {
        if matches!(event, Event::Notice { .. }) {
            return Ok(());
        }
        for notifier in &self.notifiers {
            let Some(text) = notifier.message(event) else {
                continue;
            };
            let to = notifier.destination();
            if self.dry_run {
                let delivery = Delivery::DryRun;
                dispatcher.publish(self.notice(text, to, delivery))?;
                continue;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                let delivery = Delivery::Undelivered {
                    attempts: 0,
                    error: "no async runtime to send from".into(),
                };
                dispatcher.publish(self.notice(text, to, delivery))?;
                continue;
            };
            let (notifier, dispatcher, clock) =
                (notifier.clone(), dispatcher.clone(), self.clock.clone());
            let (message, destination) = (text.clone(), to.clone());
            let task = runtime.spawn(async move {
                let sent = std::panic::AssertUnwindSafe(notifier.deliver(&message))
                    .catch_unwind()
                    .await;
                let delivery = match sent {
                    Ok(Ok(attempts)) => Delivery::Delivered { attempts },
                    Ok(Err(e)) => Delivery::Undelivered {
                        attempts: e.attempts,
                        error: e.error,
                    },
                    Err(_) => Delivery::Undelivered {
                        attempts: 1,
                        error: "the notifier panicked".into(),
                    },
                };
                let notice = Notice {
                    text: message,
                    to: destination,
                    delivery,
                    at: clock.now(),
                };
                if let Err(e) = dispatcher.publish(Event::Notice { notice }) {
                    tracing::warn!("recording a notice: {e}");
                }
            });
            lock(&self.pending).push(Pending { text, to, task });
        }
        Ok(())
    }

    fn notice(&self, text: String, to: String, delivery: Delivery) -> Event {
        Event::Notice {
            notice: Notice {
                text,
                to,
                delivery,
                at: self.clock.now(),
            },
        }
    }

    /// Waits at most `limit` for the messages still being sent; each one
    /// not done by then is stopped and journaled as unfinished.
    pub(crate) async fn settle(
        &self,
        limit: Duration,
        dispatcher: &Dispatcher,
    ) -> Result<(), JournalWriteError> {
        let deadline = tokio::time::Instant::now() + limit;
        let pending = std::mem::take(&mut *lock(&self.pending));
        for mut p in pending {
            if tokio::time::timeout_at(deadline, &mut p.task)
                .await
                .is_err()
            {
                p.task.abort();
                let waited_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                let delivery = Delivery::Unfinished { waited_ms };
                dispatcher.publish(self.notice(p.text, p.to, delivery))?;
            }
        }
        Ok(())
    }
}
