//! "Error ratio below threshold": the runbook's `5xx > 1%`.

use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};

use super::evidence::with_source_evidence;
use super::gather::fetch;
use super::judge::{self, RatioVerdict};
use super::params::{ErrorRatioParams, Ratio, SourceConfig, check_min_requests};
use crate::metrics::compute::{self, StatusMatcher};
use crate::metrics::source::{MetricsQuery, Window};
use crate::metrics::summary::{percent_text, trim_float};

/// "Error ratio below threshold": the share of requests whose status
/// matches (`5..`) over the window.
#[derive(Debug, Clone)]
pub struct ErrorRatioCheck {
    params: ErrorRatioParams,
    /// `params.errors`, compiled.
    errors: StatusMatcher,
}

impl ErrorRatioCheck {
    /// Share of [`DEFAULT_COUNTER`](super::DEFAULT_COUNTER) with
    /// `status=~"5.."` must be ≤ `threshold` (0.01 for 1%) over the last 5
    /// minutes, with at least 100 requests.
    pub fn new(source: SourceConfig, threshold: f64) -> Self {
        Self::from_params(
            ErrorRatioParams::new(source, threshold),
            StatusMatcher::five_xx(),
        )
    }

    pub(super) fn from_params(params: ErrorRatioParams, errors: StatusMatcher) -> Self {
        ErrorRatioCheck { params, errors }
    }

    escola_runbook_core::setters! {
        /// The counter.
        counter(name: impl Into<String>) => params.counter = name.into();

        /// Label holding the status (`status`, `code`).
        status_label(name: impl Into<String>) => params.status_label = name.into();
    }

    /// Which statuses are errors.
    pub fn errors(mut self, matcher: StatusMatcher) -> Self {
        self.params.errors = matcher.pattern().to_owned();
        self.errors = matcher;
        self
    }

    escola_runbook_core::setters! {
        /// Over what time.
        window(window: Window) => params.window = window;

        /// Fewer requests than this is `no_data`.
        min_requests(n: f64) => params.min_requests = n;
    }

    fn threshold(&self) -> f64 {
        let Ratio(t) = self.params.threshold;
        t
    }

    fn condition(&self) -> String {
        format!(
            "share of `{}` with {}=~\"{}\" ≤ {}",
            self.params.counter,
            self.params.status_label,
            self.errors.pattern(),
            percent_text(self.threshold())
        )
    }
}

impl CheckConfig for ErrorRatioParams {
    const NAME: &'static str = "metrics-error-ratio";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        check_min_requests(Self::NAME, self.min_requests)?;
        let matcher = StatusMatcher::new(&self.errors)
            .map_err(|e| ParamsError::invalid(Self::NAME, "errors", e.to_string()))?;
        Ok(Arc::new(ErrorRatioCheck::from_params(self, matcher)))
    }
}

#[async_trait]
impl Check for ErrorRatioCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "metrics-error-ratio",
            format!(
                "{} over {} from {}",
                self.condition(),
                self.params.window.describe(),
                self.params.source.url_text()
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let query = MetricsQuery {
            histogram: None,
            counter: Some(p.counter.clone()),
            by: Some(Vec::new()),
            status_label: p.status_label.clone(),
            window: p.window,
        };
        let (data, described) = match fetch(ctx, &p.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let with = |o: Outcome| {
            let o = o.with_evidence("condition", self.condition());
            with_source_evidence(ctx, o, &described, &data, p.window)
        };
        if data.counters.is_empty() {
            return with(Outcome::no_data(format!(
                "no `{}` series at {described}; cannot judge {}",
                p.counter,
                self.condition()
            )));
        }
        let ratio = compute::error_ratio(&data.counters, &p.status_label, &self.errors);
        let counts = format!(
            "{} of {} requests",
            trim_float(ratio.matched),
            trim_float(ratio.total)
        );
        let breakdown = data
            .counters
            .iter()
            .map(|s| {
                format!(
                    "{}={}",
                    s.labels
                        .get(&p.status_label)
                        .map_or("(none)", String::as_str),
                    trim_float(s.value)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let (value, over) = match judge::error_ratio(&ratio, p.min_requests, self.threshold()) {
            RatioVerdict::TooLittle => {
                return with(Outcome::no_data(format!(
                    "too little traffic to judge the error ratio: {} requests in the window ({}), at least {} needed",
                    trim_float(ratio.total),
                    p.window.describe(),
                    trim_float(p.min_requests)
                )))
                .with_evidence("requests by status", breakdown);
            }
            RatioVerdict::Over(value) => (value, true),
            RatioVerdict::Within(value) => (value, false),
        };
        let summary = format!(
            "{}=~\"{}\" ratio = {} ({counts}) {} limit {} over {}",
            p.status_label,
            self.errors.pattern(),
            percent_text(value),
            if over { ">" } else { "≤" },
            percent_text(self.threshold()),
            p.window.describe()
        );
        with(if over {
            Outcome::failed(summary)
        } else {
            Outcome::passed(summary)
        })
        .with_evidence("requests by status", breakdown)
        .with_measurement("error_ratio", value, Some("ratio"))
        .with_measurement("requests", ratio.total, Some("requests"))
    }
}
