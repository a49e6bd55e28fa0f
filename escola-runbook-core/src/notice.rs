//! A notice as the journal keeps it: a message to people about the run
//! ("deploy started", "rollback started"), where it went, and what became of
//! it. Plain data; who sends notices is a [`Notifier`](crate::Notifier).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::format_millis;

/// How long the end of a run waits for milestone messages still being
/// sent; a message not delivered by then is recorded as
/// [`Delivery::Unfinished`].
pub const NOTICE_WAIT: Duration = Duration::from_secs(15);

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
                format_millis(*waited_ms)
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
