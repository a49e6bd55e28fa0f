//! The runbook's metrics checks: the endpoint answers with the token, the
//! baseline latency is recorded for later steps, a latency quantile and the
//! error ratio stay below their limits.
//!
//! Statuses never blur: a source that cannot be read is `check_error`, too
//! little traffic in the window is `no_data` (a quantile of 3 requests
//! decides nothing), and every verdict's summary carries the value, the
//! condition and the limit.
//!
//! By job: [`params`] declares what each check takes, `gather` reads the
//! source, [`judge`] holds the verdicts as pure functions, `evidence`
//! writes the shared text; each check's file validates its parameters
//! (`CheckConfig::build`) and wires the three into its `run`. The modules
//! import one another in that order only, never back.

mod baseline;
mod compare;
mod endpoint;
mod error_ratio;
mod evidence;
mod gather;
pub mod judge;
mod latency;
pub mod params;

pub use baseline::LatencyBaselineCheck;
pub use compare::CompareCheck;
pub use endpoint::MetricsEndpointCheck;
pub use error_ratio::ErrorRatioCheck;
pub use gather::{MissingUrl, PROMETHEUS_URL_SETTING};
pub use judge::boundary_advice;
pub use latency::LatencyCheck;
pub use params::{
    BASELINE_PREFIX, BaselineParams, CompareParams, DEFAULT_COUNTER, DEFAULT_HISTOGRAM,
    DEFAULT_TOKEN_SECRET, EndpointParams, ErrorRatioParams, HISTOGRAM, LatencyParams, Ratio,
    SourceConfig, SourceKind, baseline_key, parse_ratio,
};
