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

/// Factors of the typical latency a spread walks through: most requests
/// near it, a slow tail (P95 about 1.9×) as real traffic has.
pub(crate) const SPREAD: [f64; 20] = [
    0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9, 1.0, 1.0, 1.0, 1.1, 1.1, 1.2, 1.2, 1.3, 1.4, 1.6, 1.9,
    2.5,
];

/// The switches, read by the app on every request.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    // Fraction of API requests answered 500, in millionths.
    pub(crate) error_rate_ppm: AtomicU64,
    // Counter of requests subject to the error rate (Bresenham selection).
    pub(crate) error_counter: AtomicU64,
    pub(crate) latency_ms: AtomicU64,
    // The typical latency of a realistic spread (0: none), in ms.
    pub(crate) spread_ms: AtomicU64,
    // Counter of requests walking the spread.
    pub(crate) spread_counter: AtomicU64,
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

    /// The delay of the next API request: the added latency plus, with a
    /// spread, the typical latency times the next of [`SPREAD`]'s factors,
    /// in turn — the same distribution every time, no randomness.
    pub(crate) fn next_latency(&self) -> Duration {
        let typical = self.spread_ms.load(Ordering::Relaxed);
        let spread = if typical == 0 {
            Duration::ZERO
        } else {
            let n = self.spread_counter.fetch_add(1, Ordering::Relaxed);
            let factor = SPREAD[(n % SPREAD.len() as u64) as usize];
            Duration::from_secs_f64(typical as f64 / 1000.0 * factor)
        };
        self.latency() + spread
    }

    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        *lock(&self.rate_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doubled_spread_doubles_every_request() {
        let state = FaultState::default();
        state.spread_ms.store(100, Ordering::Relaxed);
        let once: Vec<Duration> = (0..SPREAD.len()).map(|_| state.next_latency()).collect();
        state.spread_ms.store(200, Ordering::Relaxed);
        let twice: Vec<Duration> = (0..SPREAD.len()).map(|_| state.next_latency()).collect();
        for (a, b) in once.iter().zip(&twice) {
            assert_eq!(*a * 2, *b);
        }
        assert_eq!(once[18], Duration::from_millis(190), "the 95th percentile");
    }
}
