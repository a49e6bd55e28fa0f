//! The probe an alert rule of a rules file measures with, registered in the
//! catalog under the name rules files build it by
//! ([`RULE_PROBE`], `metrics`): its parameters are the measuring keys of a
//! `[[rules]]` entry.

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{
    EntryKind, ParamProblem, ParamsError, PathSegment, ProbeConfig,
};
use escola_runbook_core::duration::{Span, ZeroOrMore};
use escola_runbook_core::formats::rules_file::RULE_PROBE;
use escola_runbook_core::rules::Probe;
use escola_runbook_core::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::checks::{DEFAULT_TOKEN_SECRET, HISTOGRAM, SourceConfig, baseline_key};
use super::compare::Thresholds;
use super::compute::StatusMatcher;
use super::probe::{Measure, MetricsProbe};
use super::source::DEFAULT_MAX_BODY;

/// Measures the app's scraped metrics over a window: a quantile of the
/// request-duration histogram, the percentage of requests with an error
/// status, or the number of requests with a status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsProbeParams {
    /// What to measure: `quantile`, `error_percent`, `count` or
    /// `latency_shift` (against the recorded baseline).
    #[serde(default)]
    pub measure: MeasureKind,
    /// The quantile measured by `quantile`, between 0 and 1.
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// Status pattern of the requests `error_percent` (default `5..`) and
    /// `count` (default `429`) count.
    #[serde(default)]
    pub status: Option<String>,
    /// Only requests of this route.
    #[serde(default)]
    pub route: Option<String>,
    /// How far back each evaluation looks; `0`: since the previous one.
    #[serde(default = "default_window")]
    pub window: Span<ZeroOrMore>,
    /// Fewer requests in the window is no data (default 20 for `quantile`
    /// and `error_percent`, 0 for `count`).
    #[serde(default)]
    pub min_requests: Option<f64>,
    /// The secret holding the Bearer token of `/metrics`.
    #[serde(default = "default_token_secret")]
    pub token_secret: String,
    /// Cap on one answer's body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body: u64,
}

/// What a rule's probe measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    /// A quantile of the request-duration histogram, in seconds.
    #[default]
    Quantile,
    /// The percentage of requests whose status matches.
    ErrorPercent,
    /// The number of requests whose status matches.
    Count,
    /// How much slower the window's requests are than the baseline
    /// `metrics-baseline` recorded: the Mann-Whitney effect minus 0.5 when
    /// significant, else 0 (a rule `above 0.05` fires on 55% slower).
    LatencyShift,
}

fn default_quantile() -> f64 {
    0.95
}

fn default_window() -> Span<ZeroOrMore> {
    Span::from(Duration::from_secs(300))
}

fn default_token_secret() -> String {
    DEFAULT_TOKEN_SECRET.to_owned()
}

fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY
}

impl MetricsProbeParams {
    fn invalid(param: &str, message: String) -> ParamsError {
        ParamsError {
            kind: EntryKind::Probe,
            name: Self::NAME.to_owned(),
            path: vec![PathSegment::Key(param.to_owned())],
            problem: ParamProblem::Invalid { message },
        }
    }

    fn matcher(&self, default: &str) -> Result<StatusMatcher, ParamsError> {
        let pattern = self.status.as_deref().unwrap_or(default);
        StatusMatcher::new(pattern)
            .map_err(|e| Self::invalid("status", format!("is not a usable pattern: {e}")))
    }
}

impl ProbeConfig for MetricsProbeParams {
    const NAME: &'static str = RULE_PROBE;

    fn build(self) -> Result<Arc<dyn Probe>, ParamsError> {
        let (measure, min) = match self.measure {
            MeasureKind::Quantile => {
                if !(0.0..=1.0).contains(&self.quantile) {
                    return Err(Self::invalid(
                        "quantile",
                        format!("is {}, not between 0 and 1", self.quantile),
                    ));
                }
                (Measure::Quantile(self.quantile), 20.0)
            }
            MeasureKind::ErrorPercent => (Measure::ErrorPercent(self.matcher("5..")?), 20.0),
            MeasureKind::Count => (Measure::Count(self.matcher("429")?), 0.0),
            MeasureKind::LatencyShift => (
                Measure::LatencyShift(baseline_key(HISTOGRAM)),
                // Below the judge's floor the test has no power.
                Thresholds::default().min_requests,
            ),
        };
        let source = SourceConfig::scrape()
            .token_secret(self.token_secret)
            .max_body(self.max_body);
        let mut probe = MetricsProbe::new(source, measure, self.window.get())
            .min_requests(self.min_requests.unwrap_or(min));
        if let Some(route) = self.route {
            probe = probe.only("route", route);
        }
        Ok(Arc::new(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn build(params: Value) -> Result<Arc<dyn Probe>, ParamsError> {
        let Value::Object(object) = params else {
            panic!("an object");
        };
        let mut catalog = escola_runbook_core::catalog::Catalog::new();
        catalog.register_probe::<MetricsProbeParams>();
        catalog.find_probe("metrics").unwrap().build(object)
    }

    #[test]
    fn each_measure_builds_and_bad_values_name_their_parameter() {
        for measure in ["quantile", "error_percent", "count", "latency_shift"] {
            assert!(
                build(json!({"measure": measure, "window": "0"})).is_ok(),
                "{measure}"
            );
        }
        let err = build(json!({"quantile": 1.5})).err().unwrap();
        assert_eq!(
            err.to_string(),
            "probe `metrics`, parameter `quantile` is 1.5, not between 0 and 1"
        );
        let err = build(json!({"measure": "error_percent", "status": "5..("}))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("probe `metrics`, parameter `status` is not a usable pattern"),
            "{err}"
        );
        let err = build(json!({"measure": "latency"})).err().unwrap();
        assert!(
            err.to_string().contains("unknown variant `latency`"),
            "{err}"
        );
    }
}
