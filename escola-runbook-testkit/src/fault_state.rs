//! What the fault switches are set to: shared by the handle a test holds
//! ([`Faults`](crate::Faults)) and the app that obeys them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::mutex::lock;

/// At most `requests` requests to `/v1/*` per `window`; more get 429 with a
/// `Retry-After` saying when the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

/// The switches, read by the app on every request.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    // Fraction of API requests answered 500, in millionths.
    pub(crate) error_rate_ppm: AtomicU64,
    // Counter of requests subject to the error rate (Bresenham selection).
    pub(crate) error_counter: AtomicU64,
    pub(crate) latency_ms: AtomicU64,
    pub(crate) drop_trace_id: AtomicBool,
    pub(crate) ignore_if_match: AtomicBool,
    pub(crate) wrong_metrics_auth: AtomicBool,
    pub(crate) rate_limit: Mutex<Option<RateLimit>>,
}

impl FaultState {
    /// Whether the next API request is to fail: exactly floor(n × rate) of
    /// the first n requests fail, spread evenly, with no randomness.
    pub(crate) fn next_is_error(&self) -> bool {
        let ppm = self.error_rate_ppm.load(Ordering::Relaxed);
        if ppm == 0 {
            return false;
        }
        let n = self.error_counter.fetch_add(1, Ordering::Relaxed);
        ((n + 1) * ppm) / 1_000_000 > (n * ppm) / 1_000_000
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        *lock(&self.rate_limit)
    }
}
