//! The metrics checks' parameters, declared once: where to read
//! ([`SourceConfig`], flattened into each) and what each check judges.
//! Each check's file validates its struct in `CheckConfig::build`; the
//! checks trust what they hold.

use std::time::Duration;

use escola_runbook_core::catalog::ParamsError;
use escola_runbook_core::duration::Span;
use escola_runbook_core::schemars::{self, JsonSchema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::metrics::compare::Thresholds;
use crate::metrics::compute::StatusMatcher;
use crate::metrics::source::{ByteSize, Window};

/// Prefix of the values `metrics-baseline` records.
pub const BASELINE_PREFIX: &str = "baseline.latency";

/// The recorded value holding the baseline's buckets
/// (`baseline.latency.histogram`), which `metrics-compare` judges against.
pub const HISTOGRAM: &str = "histogram";

/// The key under which the baseline of quantile `p` ("p95"), its `count`
/// or its `histogram` is recorded.
pub fn baseline_key(p: &str) -> String {
    format!("{BASELINE_PREFIX}.{p}")
}

/// Default histogram of request durations.
pub const DEFAULT_HISTOGRAM: &str = "http_request_duration_seconds";
/// Default request counter.
pub const DEFAULT_COUNTER: &str = "http_requests_total";
/// Default name of the secret holding the Bearer token.
pub const DEFAULT_TOKEN_SECRET: &str = "metrics_token";

/// Which kind of source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The application's `/metrics`.
    #[default]
    Scrape,
    /// A Prometheus HTTP API.
    Prometheus,
}

/// Where a check reads metrics, resolved against the environment at run
/// time: the scrape URL defaults to the setting `metrics_url`, then
/// `<base_url>/metrics`; the Prometheus URL to `prometheus_url`. The token
/// comes from a named secret and is sent only when that secret exists.
/// Flattened into every metrics check's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `scrape` (the app's /metrics) or `prometheus` (a Prometheus HTTP
    /// API).
    #[serde(rename = "source", default)]
    pub kind: SourceKind,
    /// Metrics URL, or Prometheus base URL (default: environment
    /// `metrics_url`, `base_url`/metrics, `prometheus_url`).
    #[serde(default)]
    pub url: Option<String>,
    /// Secret holding the Bearer token (sent when provided).
    #[serde(default = "default_token_secret")]
    pub token_secret: String,
    /// Limit for one HTTP request (e.g. 10s).
    #[serde(default = "crate::http::default_timeout")]
    pub timeout: Span,
    /// Scrape source over a window: scrape this often (e.g. 30s) to catch
    /// restarts; default only at both ends.
    #[serde(default)]
    pub every: Option<Span>,
    /// Refuse an answer larger than this (e.g. 64MiB, 200MB), reading no
    /// further.
    #[serde(default = "ByteSize::default_max_body")]
    pub max_body: ByteSize,
}

fn default_token_secret() -> String {
    DEFAULT_TOKEN_SECRET.into()
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::scrape()
    }
}

impl SourceConfig {
    /// Scrape the app; URL from the environment.
    pub fn scrape() -> Self {
        SourceConfig {
            kind: SourceKind::Scrape,
            url: None,
            token_secret: default_token_secret(),
            timeout: crate::http::default_timeout(),
            every: None,
            max_body: ByteSize::default_max_body(),
        }
    }

    /// Ask the Prometheus API at `url`.
    pub fn prometheus(url: impl Into<String>) -> Self {
        SourceConfig {
            kind: SourceKind::Prometheus,
            url: Some(url.into()),
            ..Self::scrape()
        }
    }

    escola_runbook_core::setters! {
        /// Sets an explicit URL.
        url(url: impl Into<String>) => url = Some(url.into());

        /// Reads the token from secret `name`.
        token_secret(name: impl Into<String>) => token_secret = name.into();

        /// Limit for one request (zero: none).
        timeout(limit: Duration) => timeout = Span::from(limit);

        /// Scrape source over a window: scrape every `step`, not only at both
        /// ends.
        every(step: Duration) => every = Some(Span::from(step));

        /// Cap on one answer's body, in bytes.
        max_body(bytes: u64) => max_body = ByteSize(bytes);
    }
}

/// An error ratio: `0.01` or `1%`, between 0 and 1. Written as the
/// number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

/// Parses a ratio such as `0.01` or `1%`.
pub fn parse_ratio(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => text.parse::<f64>().ok()?,
    };
    (value.is_finite() && (0.0..=1.0).contains(&value)).then_some(value)
}

impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = escola_runbook_core::catalog::number_or_text(d)?;
        parse_ratio(&text).map(Ratio).ok_or_else(|| {
            serde::de::Error::custom(format!("is `{text}`; write a ratio such as 0.01 or 1%"))
        })
    }
}

escola_runbook_core::text_param_schema!(
    Ratio,
    "Ratio",
    ["number", "string"],
    "a ratio between 0 and 1 (0.01) or a percentage (1%)"
);

fn default_histogram() -> String {
    DEFAULT_HISTOGRAM.into()
}
/// The baseline's default window: the counters since the process started.
pub fn cumulative() -> Window {
    Window::Cumulative
}
fn five_minutes() -> Window {
    Window::Last(Duration::from_secs(300))
}
/// The fewest requests a baseline is taken from, by default.
pub fn baseline_min_requests() -> f64 {
    20.0
}
fn judged_min_requests() -> f64 {
    100.0
}
fn default_quantile() -> f64 {
    0.95
}
fn default_counter() -> String {
    DEFAULT_COUNTER.into()
}
fn default_status_label() -> String {
    "status".into()
}
fn five_xx() -> String {
    StatusMatcher::five_xx().pattern().to_owned()
}

/// `min_requests` must be a number ≥ 0.
pub(super) fn check_min_requests(name: &str, n: f64) -> Result<(), ParamsError> {
    if n.is_finite() && n >= 0.0 {
        Ok(())
    } else {
        Err(ParamsError::invalid(
            name,
            "min_requests",
            "must be a number ≥ 0",
        ))
    }
}

/// The /metrics endpoint answers with the Bearer token and a valid
/// exposition.
///
/// The parameters of [`MetricsEndpointCheck`](super::MetricsEndpointCheck); it always scrapes, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointParams {
    /// Where to scrape and with which secret (`source` must stay
    /// `scrape`; `every` does not apply to one scrape).
    #[serde(flatten)]
    pub source: SourceConfig,
    /// Metric names that must be present.
    #[serde(default)]
    pub require: Vec<String>,
    /// True to also require that a request without the token is refused.
    #[serde(default)]
    pub reject_anonymous: bool,
}

/// Records baseline P50/P95/P99 latency (values
/// baseline.latency.p50/p95/p99) for later steps.
///
/// The parameters of [`LatencyBaselineCheck`](super::LatencyBaselineCheck).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineParams {
    /// Where to read.
    #[serde(flatten)]
    pub source: SourceConfig,
    /// Histogram family, without _bucket.
    #[serde(default = "default_histogram")]
    pub histogram: String,
    /// `cumulative` (one scrape) or a duration such as 1m (two scrapes
    /// that far apart).
    #[serde(default = "cumulative")]
    pub window: Window,
    /// Fewer requests in the window is no_data.
    #[serde(default = "baseline_min_requests")]
    pub min_requests: f64,
}

impl BaselineParams {
    /// A baseline from `source` with the defaults.
    pub fn new(source: SourceConfig) -> Self {
        BaselineParams {
            source,
            histogram: default_histogram(),
            window: cumulative(),
            min_requests: baseline_min_requests(),
        }
    }
}

/// A latency quantile (default P95) of the request histogram stays at or
/// below a threshold.
///
/// The parameters of [`LatencyCheck`](super::LatencyCheck).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyParams {
    /// Where to read.
    #[serde(flatten)]
    pub source: SourceConfig,
    /// Histogram family, without _bucket.
    #[serde(default = "default_histogram")]
    pub histogram: String,
    /// The quantile, between 0 and 1.
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// Latency limit, e.g. 2s or 500ms (passes when the quantile is ≤ it);
    /// this or baseline_factor.
    #[serde(default)]
    pub threshold: Option<Span>,
    /// Limit as a multiple of the baseline metrics-baseline recorded (e.g.
    /// 1.5); with threshold, the stricter applies.
    #[serde(default)]
    pub baseline_factor: Option<f64>,
    /// `cumulative` or a duration such as 5m.
    #[serde(default = "five_minutes")]
    pub window: Window,
    /// Fewer requests (per group) is no_data.
    #[serde(default = "judged_min_requests")]
    pub min_requests: f64,
    /// Labels to judge separately (e.g. route).
    #[serde(default)]
    pub by: Vec<String>,
}

impl LatencyParams {
    pub(super) fn new(source: SourceConfig, quantile: f64) -> Self {
        LatencyParams {
            source,
            histogram: default_histogram(),
            quantile,
            threshold: None,
            baseline_factor: None,
            window: five_minutes(),
            min_requests: judged_min_requests(),
            by: Vec::new(),
        }
    }
}

/// Latency after the deploy is no worse than the baseline metrics-baseline
/// recorded: a Mann-Whitney U test of the window's requests against the
/// baseline's, failing on a significant shift of at least min_effect.
///
/// The parameters of [`CompareCheck`](super::CompareCheck).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    /// Where to read.
    #[serde(flatten)]
    pub source: SourceConfig,
    /// Histogram family, without _bucket.
    #[serde(default = "default_histogram")]
    pub histogram: String,
    /// The window after the deploy: `cumulative` (since the new process
    /// started) or a duration such as 5m.
    #[serde(default = "five_minutes")]
    pub window: Window,
    /// The recorded value holding the before histogram.
    #[serde(default = "default_baseline_histogram")]
    pub baseline: String,
    /// A shift is significant below this p value.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The least shift of P(after slower) from 0.5 that fails the step.
    #[serde(default = "default_min_effect")]
    pub min_effect: f64,
    /// Fewer requests on a side is no_data.
    #[serde(default = "judged_min_requests")]
    pub min_requests: f64,
}

impl CompareParams {
    /// The window after the deploy from `source`, against the recorded
    /// baseline, with the default thresholds.
    pub fn new(source: SourceConfig) -> Self {
        CompareParams {
            source,
            histogram: default_histogram(),
            window: five_minutes(),
            baseline: default_baseline_histogram(),
            alpha: default_alpha(),
            min_effect: default_min_effect(),
            min_requests: judged_min_requests(),
        }
    }

    /// The thresholds the verdict uses.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            alpha: self.alpha,
            min_effect: self.min_effect,
            min_requests: self.min_requests,
            ..Thresholds::default()
        }
    }
}

fn default_baseline_histogram() -> String {
    baseline_key(HISTOGRAM)
}
fn default_alpha() -> f64 {
    Thresholds::default().alpha
}
fn default_min_effect() -> f64 {
    Thresholds::default().min_effect
}

/// The share of requests with an error status (default 5..) stays at or
/// below a threshold.
///
/// The parameters of [`ErrorRatioCheck`](super::ErrorRatioCheck).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRatioParams {
    /// Where to read.
    #[serde(flatten)]
    pub source: SourceConfig,
    /// Request counter.
    #[serde(default = "default_counter")]
    pub counter: String,
    /// Label holding the HTTP status.
    #[serde(default = "default_status_label")]
    pub status_label: String,
    /// Statuses counted as errors (PromQL =~ regex).
    #[serde(default = "five_xx")]
    pub errors: String,
    /// Error ratio limit: 0.01 or 1% (passes when the ratio is ≤ it).
    pub threshold: Ratio,
    /// `cumulative` or a duration such as 5m.
    #[serde(default = "five_minutes")]
    pub window: Window,
    /// Fewer requests is no_data.
    #[serde(default = "judged_min_requests")]
    pub min_requests: f64,
}

impl ErrorRatioParams {
    pub(super) fn new(source: SourceConfig, threshold: f64) -> Self {
        ErrorRatioParams {
            source,
            counter: default_counter(),
            status_label: default_status_label(),
            errors: five_xx(),
            threshold: Ratio(threshold),
            window: five_minutes(),
            min_requests: judged_min_requests(),
        }
    }
}
