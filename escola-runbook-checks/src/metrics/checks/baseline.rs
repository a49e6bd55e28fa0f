//! "Record the baseline latency": P50/P95/P99 before the deploy, as values
//! later steps read.

use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};

use super::evidence::{bounds_text, with_source_evidence};
use super::gather::fetch;
use super::judge::{self, BASELINE_QUANTILES, BaselineVerdict};
use super::params::{BaselineParams, HISTOGRAM, SourceConfig, baseline_key, check_min_requests};
use crate::metrics::compare::histogram_value;
use crate::metrics::source::{MetricsQuery, Window};
use crate::metrics::summary::{seconds_text, trim_float};

/// "Record the baseline latency": P50/P95/P99 of the request histogram,
/// stored as values `baseline.latency.p50`, `.p95`, `.p99` (seconds),
/// `.count`, and the buckets themselves (`.histogram`) for later steps.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyBaselineCheck {
    params: BaselineParams,
}

impl LatencyBaselineCheck {
    /// Baseline of [`DEFAULT_HISTOGRAM`](super::DEFAULT_HISTOGRAM) from
    /// `source`, over the cumulative counters, needing at least 20
    /// requests.
    pub fn new(source: SourceConfig) -> Self {
        Self::from_params(BaselineParams::new(source))
    }

    pub(super) fn from_params(params: BaselineParams) -> Self {
        LatencyBaselineCheck { params }
    }

    escola_runbook_core::setters! {
        /// The histogram family (without `_bucket`).
        histogram(name: impl Into<String>) => params.histogram = name.into();

        /// Over what time.
        window(window: Window) => params.window = window;

        /// Fewer requests than this in the window is `no_data`.
        min_requests(n: f64) => params.min_requests = n;
    }
}

impl CheckConfig for BaselineParams {
    const NAME: &'static str = "metrics-baseline";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        check_min_requests(Self::NAME, self.min_requests)?;
        Ok(Arc::new(LatencyBaselineCheck::from_params(self)))
    }
}

#[async_trait]
impl Check for LatencyBaselineCheck {
    fn describe(&self) -> Description {
        let p = &self.params;
        let mut d = Description::read_only(
            "metrics-baseline",
            format!(
                "records P50/P95/P99 of `{}` from {} ({}) for later steps",
                p.histogram,
                p.source.url_text(),
                p.window.describe()
            ),
        );
        for (k, _) in BASELINE_QUANTILES {
            d = d.produces(baseline_key(k));
        }
        d.produces(baseline_key("count"))
            .produces(baseline_key(HISTOGRAM))
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let query = MetricsQuery {
            histogram: Some(p.histogram.clone()),
            counter: None,
            by: Some(Vec::new()),
            window: p.window,
            ..MetricsQuery::default()
        };
        let (data, described) = match fetch(ctx, &p.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let with = |o: Outcome| with_source_evidence(ctx, o, &described, &data, p.window);
        let h = data.histograms.first();
        let (count, qs) = match judge::baseline(h, p.min_requests) {
            BaselineVerdict::NoSeries => {
                return with(Outcome::no_data(format!(
                    "no `{}_bucket` series at {described}; nothing to take a baseline from",
                    p.histogram
                )));
            }
            BaselineVerdict::TooFew { count } => {
                return with(Outcome::no_data(format!(
                    "only {} requests in the window ({}), fewer than the {} needed for a baseline",
                    trim_float(count),
                    p.window.describe(),
                    trim_float(p.min_requests)
                )))
                .with_evidence("requests", trim_float(count));
            }
            BaselineVerdict::NoBuckets => {
                return with(Outcome::no_data(format!(
                    "`{}` has no usable buckets (a `+Inf` bucket and one more are needed); quantiles are NaN",
                    p.histogram
                )));
            }
            BaselineVerdict::Recorded { count, quantiles } => (count, quantiles),
        };
        let text = qs
            .iter()
            .map(|(k, q)| format!("{} {}", k.to_uppercase(), seconds_text(Some(q.value))))
            .collect::<Vec<_>>()
            .join(", ");
        let mut o = with(Outcome::passed(format!(
            "baseline {text} over {} requests ({})",
            trim_float(count),
            p.window.describe()
        )));
        for (k, q) in &qs {
            o = o
                .with_evidence(*k, seconds_text(Some(q.value)))
                .with_measurement(format!("latency_{k}"), q.value, Some("s"))
                .with_value(baseline_key(k), serde_json::json!(q.value));
        }
        for (k, q) in qs.iter().filter(|(_, q)| q.above_highest_bound) {
            o = o.with_evidence(
                format!("{k} caveat"),
                format!(
                    "falls in the +Inf bucket: the true {} is above {}, recorded as {} as Prometheus reports it",
                    k.to_uppercase(),
                    seconds_text(Some(q.value)),
                    seconds_text(Some(q.value))
                ),
            );
        }
        if qs[0].1.forced_monotonic {
            o = o.with_evidence(
                "bucket repair",
                "bucket counts decreased somewhere; flattened to the running maximum as Prometheus does",
            );
        }
        o = o.with_evidence("requests", trim_float(count));
        if let Some(h) = h {
            o = o
                .with_evidence("bucket bounds", bounds_text(&h.bounds()))
                .with_value(baseline_key(HISTOGRAM), histogram_value(h));
        }
        o.with_value(baseline_key("count"), serde_json::json!(count))
    }
}
