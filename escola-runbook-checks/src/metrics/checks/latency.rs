//! "Latency quantile below threshold" (the runbook's `P95 > 2s`), absolute
//! or relative to the baseline recorded before the deploy.

use std::time::Duration;

use escola_runbook_core::duration::Span;
use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Outcome, Status, ValueError, async_trait,
};

use super::evidence::{labels_text, quantile_name, with_source_evidence};
use super::gather::fetch;
use super::judge::{self, LatencyVerdict};
use super::params::{LatencyParams, SourceConfig, baseline_key, check_min_requests};
use crate::metrics::source::{MetricsQuery, Window};
use crate::metrics::summary::{percent_text, seconds_text, trim_float};

/// "Latency quantile below threshold" (the runbook's `P95 > 2s`), per group
/// of `by` labels; the worst group decides. Lints a threshold that is not a
/// bucket boundary and offers the exact form.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyCheck {
    params: LatencyParams,
}

/// The limit relative to the baseline cannot be derived.
#[derive(Debug, thiserror::Error)]
enum LimitError {
    /// The recorded baseline is not a positive number.
    #[error(
        "`{key}` is {value}, not a positive number of seconds; cannot derive the limit {limit}"
    )]
    NotPositive {
        key: String,
        value: serde_json::Value,
        limit: String,
    },
    /// No baseline was recorded.
    #[error(
        "cannot derive the limit {limit}: {source} (metrics-baseline records p50, p95 and p99)"
    )]
    NoBaseline { limit: String, source: ValueError },
}

/// A threshold in seconds as a span; a negative or NaN one is zero, a
/// limit nothing meets.
fn span_of_seconds(seconds: f64) -> Span {
    Span::from(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO))
}

impl LatencyCheck {
    /// `quantile` of [`DEFAULT_HISTOGRAM`](super::DEFAULT_HISTOGRAM) must
    /// be ≤ `threshold_seconds` over the last 5 minutes, with at least 100
    /// requests.
    pub fn new(source: SourceConfig, quantile: f64, threshold_seconds: f64) -> Self {
        Self::from_params(LatencyParams {
            threshold: Some(span_of_seconds(threshold_seconds)),
            ..LatencyParams::new(source, quantile)
        })
    }

    pub(super) fn from_params(params: LatencyParams) -> Self {
        LatencyCheck { params }
    }

    escola_runbook_core::setters! {
        /// The histogram family (without `_bucket`).
        histogram(name: impl Into<String>) => params.histogram = name.into();

        /// Over what time.
        window(window: Window) => params.window = window;

        /// Fewer requests than this (per group) is `no_data`.
        min_requests(n: f64) => params.min_requests = n;
    }

    /// Judge each group of these labels (e.g. `route`) separately.
    pub fn by<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.params.by = labels.into_iter().map(Into::into).collect();
        self
    }

    /// `quantile` must be ≤ `factor` × the baseline recorded earlier by
    /// `metrics-baseline` (value `baseline.latency.p95` for P95): "no worse
    /// than 1.5× before the deploy". Only P50, P95 and P99 have baselines.
    pub fn against_baseline(source: SourceConfig, quantile: f64, factor: f64) -> Self {
        Self::from_params(LatencyParams {
            baseline_factor: Some(factor),
            ..LatencyParams::new(source, quantile)
        })
    }

    /// Also limits the quantile to `factor` × its baseline; the stricter of
    /// the two limits applies.
    pub fn baseline_factor(mut self, factor: f64) -> Self {
        self.params.baseline_factor = Some(factor);
        self
    }

    fn threshold(&self) -> Option<f64> {
        self.params.threshold.map(|t| t.get().as_secs_f64())
    }

    fn baseline_key(&self) -> String {
        baseline_key(&quantile_name(self.params.quantile).to_lowercase())
    }

    fn limit_text(&self) -> String {
        let relative = self.params.baseline_factor.map(|f| {
            format!(
                "{} × baseline {}",
                trim_float(f),
                quantile_name(self.params.quantile)
            )
        });
        match (self.threshold(), relative) {
            (Some(t), None) => seconds_text(Some(t)),
            (None, Some(r)) => r,
            (Some(t), Some(r)) => format!("min({}, {r})", seconds_text(Some(t))),
            (None, None) => "(no limit)".into(),
        }
    }

    fn condition(&self) -> String {
        format!(
            "{} of `{}` ≤ {}",
            quantile_name(self.params.quantile),
            self.params.histogram,
            self.limit_text()
        )
    }

    /// The limit in seconds for this run, and how it was derived.
    fn limit(&self, ctx: &Ctx) -> Result<(f64, Option<String>), LimitError> {
        let Some(factor) = self.params.baseline_factor else {
            return Ok((judge::latency_limit(self.threshold(), None), None));
        };
        let key = self.baseline_key();
        let value = ctx.value(&key).map_err(|source| LimitError::NoBaseline {
            limit: self.limit_text(),
            source,
        })?;
        let baseline = value
            .as_f64()
            .filter(|b| b.is_finite() && *b > 0.0)
            .ok_or_else(|| LimitError::NotPositive {
                key: key.clone(),
                value: value.clone(),
                limit: self.limit_text(),
            })?;
        let relative = factor * baseline;
        let note = format!(
            "baseline {} {} × {} = {}",
            quantile_name(self.params.quantile),
            seconds_text(Some(baseline)),
            trim_float(factor),
            seconds_text(Some(relative))
        );
        Ok((
            judge::latency_limit(self.threshold(), Some(relative)),
            Some(note),
        ))
    }
}

impl CheckConfig for LatencyParams {
    const NAME: &'static str = "metrics-latency";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if !(0.0..=1.0).contains(&self.quantile) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "quantile",
                "must be between 0 and 1 (0.95 for P95)",
            ));
        }
        if self
            .baseline_factor
            .is_some_and(|f| !(f.is_finite() && f > 0.0))
        {
            return Err(ParamsError::invalid(
                Self::NAME,
                "baseline_factor",
                "must be a positive number, e.g. 1.5",
            ));
        }
        if self.threshold.is_none() && self.baseline_factor.is_none() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "threshold",
                "or `baseline_factor` is required: a limit such as 2s, or a multiple of the baseline such as 1.5",
            ));
        }
        check_min_requests(Self::NAME, self.min_requests)?;
        Ok(Arc::new(LatencyCheck::from_params(self)))
    }
}

#[async_trait]
impl Check for LatencyCheck {
    fn describe(&self) -> Description {
        let d = Description::read_only(
            "metrics-latency",
            format!(
                "{} over {} from {}",
                self.condition(),
                self.params.window.describe(),
                self.params.source.url_text()
            ),
        );
        if self.params.baseline_factor.is_some() {
            d.needs(self.baseline_key())
        } else {
            d
        }
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let (limit, derived) = match self.limit(ctx) {
            Ok(l) => l,
            Err(e) => {
                return Outcome::check_error(e.to_string())
                    .with_evidence("condition", self.condition());
            }
        };
        let query = MetricsQuery {
            histogram: Some(p.histogram.clone()),
            counter: None,
            by: Some(p.by.clone()),
            window: p.window,
            ..MetricsQuery::default()
        };
        let (data, described) = match fetch(ctx, &p.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let name = quantile_name(p.quantile);
        let with = |o: Outcome| {
            let o = o.with_evidence("condition", self.condition());
            let o = match &derived {
                Some(note) => o.with_evidence("limit", note.clone()),
                None => o,
            };
            with_source_evidence(ctx, o, &described, &data, p.window)
        };
        if data.histograms.is_empty() {
            return with(Outcome::no_data(format!(
                "no `{}_bucket` series at {described}; cannot judge {}",
                p.histogram,
                self.condition()
            )));
        }
        let (judged, thin) = judge::split_by_traffic(&data.histograms, p.quantile, p.min_requests);
        let mut evidence: Vec<(String, String)> = Vec::new();
        for j in &judged {
            evidence.push((
                format!("{name}{}", labels_text(j.histogram)),
                format!(
                    "{} over {} requests{}",
                    seconds_text(Some(j.quantile.value)),
                    trim_float(j.count),
                    if j.quantile.forced_monotonic {
                        " (buckets repaired)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        for (h, count) in &thin {
            evidence.push((
                format!("{name}{}", labels_text(h)),
                format!(
                    "not judged: {} requests, fewer than {}",
                    trim_float(*count),
                    trim_float(p.min_requests)
                ),
            ));
        }
        let with_groups = |mut o: Outcome, evidence: Vec<(String, String)>| {
            for (k, v) in evidence {
                o = o.with_evidence(k, v);
            }
            o
        };
        let Some(worst) = judge::worst(&judged).copied() else {
            let total: f64 = thin.iter().map(|(_, c)| c).sum();
            let o = with(Outcome::no_data(format!(
                "too little traffic to judge {}: {} requests in the window ({}), at least {} needed{}",
                self.condition(),
                trim_float(total),
                p.window.describe(),
                trim_float(p.min_requests),
                if p.by.is_empty() { "" } else { " per group" }
            )));
            return with_groups(o, evidence);
        };
        let q = worst.quantile;
        let value = q.value;
        let group = labels_text(worst.histogram);
        let over = match judge::latency(&q, limit) {
            LatencyVerdict::Undecidable => {
                // Prometheus would report `value` and an alert at the limit
                // would stay silent, but the true quantile is anywhere
                // above `value`.
                let o = with(Outcome::check_error(format!(
                    "{name}{group} lies above {}, the highest finite bucket bound (it falls in the +Inf bucket; Prometheus reports {}), so the histogram cannot tell whether it is ≤ {}; add a bucket boundary at the limit",
                    seconds_text(Some(value)),
                    seconds_text(Some(value)),
                    seconds_text(Some(limit))
                )));
                return with_groups(o, evidence);
            }
            LatencyVerdict::Over => true,
            LatencyVerdict::Within => false,
        };
        let shown = if q.above_highest_bound {
            format!(
                "> {} (in the +Inf bucket; Prometheus reports {})",
                seconds_text(Some(value)),
                seconds_text(Some(value))
            )
        } else {
            format!("= {}", seconds_text(Some(value)))
        };
        let summary = format!(
            "{name}{group} {shown} {} limit {} over {} ({} requests)",
            if over { ">" } else { "≤" },
            seconds_text(Some(limit)),
            p.window.describe(),
            trim_float(worst.count)
        );
        let o = with(if over {
            Outcome::failed(summary)
        } else {
            Outcome::passed(summary)
        })
        .with_measurement(format!("latency_{}", name.to_lowercase()), value, Some("s"));
        let mut o = with_groups(o, evidence);
        match judge::boundary_advice(worst.histogram, p.quantile, limit) {
            Some(advice) => {
                if o.status == Status::Passed {
                    o.status = Status::Warned;
                    o.summary
                        .push_str(" — limit is not a bucket boundary, see advisory");
                }
                o = o.with_evidence("advisory", advice);
            }
            None => {
                if let Some(share) = worst.histogram.share_above(limit) {
                    o = o.with_evidence(
                        "exact",
                        format!(
                            "share of requests slower than {}: {} (the {name} limit allows {})",
                            seconds_text(Some(limit)),
                            percent_text(share),
                            percent_text(1.0 - p.quantile)
                        ),
                    );
                }
            }
        }
        o
    }
}
