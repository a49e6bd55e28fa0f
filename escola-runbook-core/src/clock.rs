//! Wall-clock time for records and for checks ([`Ctx::now`](crate::Ctx::now)).
//! Elapsed times always come from tokio, so a test on a paused clock gets
//! both deterministic.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Wall-clock time for records. Elapsed times always come from tokio, so a
/// test on a paused clock gets both deterministic.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a fixed instant and advances with tokio's clock:
/// with `start_paused` it makes timestamps in tests exact.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: DateTime<Utc>,
    start: Instant,
}

impl TokioClock {
    /// A clock reading `epoch` now.
    pub fn starting_at(epoch: DateTime<Utc>) -> Self {
        TokioClock {
            epoch,
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed =
            chrono::Duration::from_std(self.start.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.epoch.checked_add_signed(elapsed).unwrap_or(self.epoch)
    }
}
