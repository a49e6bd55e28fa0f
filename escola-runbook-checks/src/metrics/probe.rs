//! Probes for the watch phase's alert rules: a latency quantile, an error
//! ratio, a status count or any counter's rate over a sliding window, from
//! successive cumulative reads of the same source, or any gauge's value at
//! each read. Each evaluation reads once and never waits, so a rule can be
//! evaluated every 15 seconds over a 5-minute window.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use escola_runbook_core::alerting::prometheus_duration;
use escola_runbook_core::rules::{Probe, Sample, fmt_num};
use escola_runbook_core::{Ctx, async_trait, format_duration};
use tokio::time::Instant;

use super::checks::SourceConfig;
use super::compare::{Thresholds, compare_histograms, histogram_of_value};
use super::compute::{Bucket, Histogram, Series, StatusMatcher, counter_delta, error_ratio};
use super::selector::Selector;
use super::source::{MetricsQuery, Window};

/// What a [`MetricsProbe`] measures over its window.
#[derive(Debug, Clone)]
pub enum Measure {
    /// The φ-quantile of the histogram, in its unit (seconds).
    Quantile(f64),
    /// The share of requests whose status matches, in percent.
    ErrorPercent(StatusMatcher),
    /// The number of requests whose status matches.
    Count(StatusMatcher),
    /// How much slower the window's requests are than the before histogram
    /// recorded under this value key (`baseline.latency.histogram`): the
    /// Mann-Whitney effect minus 0.5 when the shift is significant (p below
    /// [`Thresholds::alpha`](super::compare::Thresholds)), else 0 — so a
    /// rule "above 0.05" fires on a release measurably slower than before.
    LatencyShift(String),
    /// The per-second rate of the counter series the selector picks,
    /// summed (PromQL `sum(rate(selector[window]))`, without
    /// extrapolation).
    Rate(Selector),
    /// The value of the gauge series the selector picks, summed, at each
    /// read (PromQL `sum(selector)`).
    Gauge(Selector),
}

impl Measure {
    /// The selector of a measure of any metric by name.
    fn selector(&self) -> Option<&Selector> {
        match self {
            Measure::Rate(s) | Measure::Gauge(s) => Some(s),
            _ => None,
        }
    }
}

/// Cumulative histograms and counters at one read.
#[derive(Debug, Clone)]
struct Snapshot {
    buckets: Vec<Bucket>,
    counters: Vec<Series>,
}

/// A windowed metric for an alert rule.
#[derive(Debug)]
pub struct MetricsProbe {
    source: SourceConfig,
    histogram: String,
    counter: String,
    status_label: String,
    filter: BTreeMap<String, String>,
    measure: Measure,
    window: Duration,
    min_requests: f64,
    history: Mutex<VecDeque<(Instant, Snapshot)>>,
}

impl MetricsProbe {
    /// Measures `measure` over the last `window` (`Duration::ZERO`: since
    /// the previous evaluation), reading `source`.
    pub fn new(source: SourceConfig, measure: Measure, window: Duration) -> Self {
        MetricsProbe {
            source,
            histogram: super::checks::DEFAULT_HISTOGRAM.into(),
            counter: super::checks::DEFAULT_COUNTER.into(),
            status_label: "status".into(),
            filter: BTreeMap::new(),
            measure,
            window,
            min_requests: 1.0,
            history: Mutex::new(VecDeque::new()),
        }
    }

    /// Only series whose label `name` equals `value` (e.g. route=/v1/escolas).
    pub fn only(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter.insert(name.into(), value.into());
        self
    }

    /// Reads the request-duration histogram `name` (without `_bucket`)
    /// instead of `http_request_duration_seconds`.
    pub fn histogram(mut self, name: impl Into<String>) -> Self {
        self.histogram = name.into();
        self
    }

    /// Counts requests with the counter `name` instead of
    /// `http_requests_total`.
    pub fn counter(mut self, name: impl Into<String>) -> Self {
        self.counter = name.into();
        self
    }

    /// Reads the HTTP status from label `label` instead of `status`.
    pub fn status_label(mut self, label: impl Into<String>) -> Self {
        self.status_label = label.into();
        self
    }

    /// Fewer requests than this in the window is no data, never a verdict.
    pub fn min_requests(mut self, n: f64) -> Self {
        self.min_requests = n.max(0.0);
        self
    }

    fn query(&self) -> MetricsQuery {
        if let Some(selector) = self.measure.selector() {
            // Every series apart: the matchers pick them, not a `sum by`.
            return MetricsQuery {
                histogram: None,
                counter: Some(selector.metric.clone()),
                by: None,
                status_label: self.status_label.clone(),
                window: Window::Cumulative,
            };
        }
        MetricsQuery {
            histogram: Some(self.histogram.clone()),
            counter: Some(self.counter.clone()),
            by: Some(self.filter.keys().cloned().collect()),
            status_label: self.status_label.clone(),
            window: Window::Cumulative,
        }
    }

    /// The requests of the window as a histogram: `after − before` per
    /// bucket; too few of them is no data (the sample to return).
    fn window_histogram(
        &self,
        before: &Snapshot,
        current: &Snapshot,
        span: Duration,
        detail: &mut BTreeMap<String, String>,
    ) -> Result<Histogram, Sample> {
        let delta = Histogram {
            labels: BTreeMap::new(),
            buckets: bucket_delta(&before.buckets, &current.buckets),
        };
        let requests = delta.count();
        detail.insert("requests".into(), fmt_num(requests));
        if requests < self.min_requests {
            return Err(Sample::NoData {
                reason: format!(
                    "{} requests in the last {} (fewer than {})",
                    fmt_num(requests),
                    format_duration(span),
                    fmt_num(self.min_requests)
                ),
            });
        }
        Ok(delta)
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.filter.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.measure.selector().is_none_or(|s| s.matches(labels))
    }

    fn snapshot(&self, histograms: &[Histogram], counters: &[Series]) -> Snapshot {
        let mut by_bound: BTreeMap<u64, Bucket> = BTreeMap::new();
        for h in histograms.iter().filter(|h| self.matches(&h.labels)) {
            for b in &h.buckets {
                by_bound
                    .entry(b.upper_bound.to_bits())
                    .and_modify(|e| e.count += b.count)
                    .or_insert(*b);
            }
        }
        Snapshot {
            buckets: by_bound.into_values().collect(),
            counters: counters
                .iter()
                .filter(|s| self.matches(&s.labels))
                .cloned()
                .collect(),
        }
    }

    /// Keeps the reads the window needs and returns the oldest of them as
    /// the baseline (or `None` on the first read).
    fn baseline(&self, now: Instant, current: Snapshot) -> Option<(Duration, Snapshot)> {
        let mut history = match self.history.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        history.push_back((now, current));
        // Keep one read at or before the window's start, and all after it.
        while history.len() > 2 && now.duration_since(history[1].0) >= self.window {
            history.pop_front();
        }
        if history.len() < 2 {
            return None;
        }
        history
            .front()
            .map(|(at, snap)| (now.duration_since(*at), snap.clone()))
    }
}

/// `after − before` per bucket; a counter reset (any bucket decreased) makes
/// the current counts the delta, as Prometheus's increase does.
fn bucket_delta(before: &[Bucket], after: &[Bucket]) -> Vec<Bucket> {
    let old: BTreeMap<u64, f64> = before
        .iter()
        .map(|b| (b.upper_bound.to_bits(), b.count))
        .collect();
    let reset = after.iter().any(|b| {
        old.get(&b.upper_bound.to_bits())
            .is_some_and(|o| b.count < *o)
    });
    after
        .iter()
        .map(|b| Bucket {
            upper_bound: b.upper_bound,
            count: if reset {
                b.count
            } else {
                b.count - old.get(&b.upper_bound.to_bits()).copied().unwrap_or(0.0)
            },
        })
        .collect()
}

#[async_trait]
impl Probe for MetricsProbe {
    fn query(&self) -> String {
        let filter = if self.filter.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = self
                .filter
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            format!("{{{}}}", pairs.join(","))
        };
        let window = if self.window.is_zero() {
            "since the previous evaluation".to_owned()
        } else {
            format!("[{}]", format_duration(self.window))
        };
        match &self.measure {
            Measure::Quantile(q) => format!(
                "p{} of {}{filter} {window}",
                fmt_num(q * 100.0),
                self.histogram
            ),
            Measure::ErrorPercent(m) => {
                format!(
                    "% of {}{filter} with {}=~\"{}\" {window}",
                    self.counter,
                    self.status_label,
                    m.pattern()
                )
            }
            Measure::Count(m) => {
                format!(
                    "count of {}{filter} with {}=~\"{}\" {window}",
                    self.counter,
                    self.status_label,
                    m.pattern()
                )
            }
            Measure::LatencyShift(key) => format!(
                "latency shift of {}{filter} {window} against `{key}`",
                self.histogram
            ),
            Measure::Rate(selector) => format!("rate of {selector} per second {window}"),
            Measure::Gauge(selector) => format!("sum of {selector}"),
        }
    }

    /// The measure over the same window (since the previous evaluation:
    /// over `interval`), with the same traffic floor: fewer requests than
    /// `min_requests` is no value, as here.
    fn promql(&self, interval: Duration) -> Option<String> {
        // Since the previous evaluation: two intervals, so the range holds
        // the two scrapes a difference needs (PromQL's range is open at its
        // start) when the scrape interval is the evaluation interval.
        let range = prometheus_duration(if self.window.is_zero() {
            interval * 2
        } else {
            self.window
        });
        let selector = |extra: Option<String>| {
            let mut pairs: Vec<String> = self
                .filter
                .iter()
                .map(|(k, v)| format!("{k}={}", promql_string(v)))
                .collect();
            pairs.extend(extra);
            if pairs.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", pairs.join(","))
            }
        };
        let status = |m: &StatusMatcher| {
            Some(format!(
                "{}=~{}",
                self.status_label,
                promql_string(m.pattern())
            ))
        };
        let requests = |metric: &str| format!("sum(rate({metric}{}[{range}]))", selector(None));
        let floor = |metric: &str, n: f64| {
            (n > 0.0).then(|| {
                format!(
                    " and on() sum(increase({metric}{}[{range}])) >= {}",
                    selector(None),
                    fmt_num(n)
                )
            })
        };
        Some(match &self.measure {
            Measure::Quantile(q) => format!(
                "histogram_quantile({}, sum by (le) (rate({}_bucket{}[{range}]))){}",
                fmt_num(*q),
                self.histogram,
                selector(None),
                floor(&format!("{}_count", self.histogram), self.min_requests).unwrap_or_default()
            ),
            Measure::ErrorPercent(m) => format!(
                "100 * sum(rate({}{}[{range}])) / {}{}",
                self.counter,
                selector(status(m)),
                requests(&self.counter),
                floor(&self.counter, self.min_requests.max(1.0)).unwrap_or_default()
            ),
            Measure::Count(m) => format!(
                "sum(increase({}{}[{range}]))",
                self.counter,
                selector(status(m))
            ),
            // A test against a recorded histogram: no PromQL computes it.
            Measure::LatencyShift(_) => return None,
            Measure::Rate(selector) => format!("sum(rate({selector}[{range}]))"),
            Measure::Gauge(selector) => format!("sum({selector})"),
        })
    }

    async fn sample(&self, ctx: &Ctx) -> Sample {
        let source = match self.source.resolve(ctx) {
            Ok(s) => s,
            Err(e) => {
                return Sample::Error {
                    message: e.to_string(),
                };
            }
        };
        let data = match source.fetch(&self.query()).await {
            Ok(d) => d,
            Err(e) => {
                return Sample::Error {
                    message: ctx.redactor().redact(&e.to_string()).into_owned(),
                };
            }
        };
        let current = self.snapshot(&data.histograms, &data.counters);
        let unmatched = |selector: &Selector| Sample::NoData {
            reason: format!("no series of {} matches {selector}", source.describe()),
        };
        if let Measure::Gauge(selector) = &self.measure {
            if current.counters.is_empty() {
                return unmatched(selector);
            }
            let mut detail = BTreeMap::new();
            detail.insert("series".to_owned(), current.counters.len().to_string());
            return Sample::Value {
                value: current.counters.iter().map(|s| s.value).sum(),
                detail,
                trace_ids: Vec::new(),
            };
        }
        let Some((span, before)) = self.baseline(Instant::now(), current.clone()) else {
            return Sample::NoData {
                reason: format!("first read of {}; the window starts now", source.describe()),
            };
        };
        let mut detail = BTreeMap::new();
        detail.insert("over".to_owned(), format_duration(span));
        let value = match &self.measure {
            Measure::Quantile(q) => {
                match self.window_histogram(&before, &current, span, &mut detail) {
                    Ok(delta) => delta.quantile(*q).value,
                    Err(no_data) => return no_data,
                }
            }
            Measure::LatencyShift(key) => {
                match self.window_histogram(&before, &current, span, &mut detail) {
                    Ok(delta) => match latency_shift(ctx, key, &delta) {
                        Ok(shift) => shift,
                        Err(unusable) => return unusable,
                    },
                    Err(no_data) => return no_data,
                }
            }
            Measure::ErrorPercent(m) => {
                let ratio = error_ratio(
                    &counter_delta(&before.counters, &current.counters),
                    &self.status_label,
                    m,
                );
                detail.insert("requests".into(), fmt_num(ratio.total));
                detail.insert("matched".into(), fmt_num(ratio.matched));
                if ratio.total < self.min_requests.max(1.0) {
                    return Sample::NoData {
                        reason: format!(
                            "{} requests in the last {} (fewer than {})",
                            fmt_num(ratio.total),
                            format_duration(span),
                            fmt_num(self.min_requests.max(1.0))
                        ),
                    };
                }
                ratio.value() * 100.0
            }
            Measure::Rate(selector) | Measure::Gauge(selector) => {
                // A series absent before counts from zero (as a reset does).
                if current.counters.is_empty() {
                    return unmatched(selector);
                }
                if span.is_zero() {
                    return Sample::NoData {
                        reason: "two reads at the same instant: no time to take a rate over".into(),
                    };
                }
                let delta = counter_delta(&before.counters, &current.counters);
                detail.insert("series".into(), delta.len().to_string());
                let increase: f64 = delta.iter().map(|s| s.value).sum();
                detail.insert("increase".into(), fmt_num(increase));
                increase / span.as_secs_f64()
            }
            Measure::Count(m) => {
                let ratio = error_ratio(
                    &counter_delta(&before.counters, &current.counters),
                    &self.status_label,
                    m,
                );
                detail.insert("requests".into(), fmt_num(ratio.total));
                ratio.matched
            }
        };
        if value.is_nan() {
            return Sample::NoData {
                reason: "no observations in the window".into(),
            };
        }
        Sample::Value {
            value,
            detail,
            trace_ids: Vec::new(),
        }
    }
}

/// A PromQL string literal.
fn promql_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The window's shift against the before histogram recorded under `key`:
/// the effect minus 0.5 when significant, else 0; an error when nothing
/// usable is recorded there.
fn latency_shift(ctx: &Ctx, key: &str, window: &Histogram) -> Result<f64, Sample> {
    let unusable = |message| Sample::Error { message };
    let recorded = ctx.value(key).map_err(|e| {
        unusable(format!(
            "{e}: a metrics-baseline step before the watch records it"
        ))
    })?;
    let before = histogram_of_value(recorded)
        .ok_or_else(|| unusable(format!("`{key}` is not a recorded histogram")))?;
    let thresholds = Thresholds {
        min_effect: 0.0,
        min_requests: 0.0,
        ..Thresholds::default()
    };
    Ok(
        match compare_histograms(&before, window, &thresholds).test {
            Some(t) if t.p < thresholds.alpha => t.effect - 0.5,
            _ => 0.0,
        },
    )
}
