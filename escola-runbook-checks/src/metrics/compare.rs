//! The before/after judge: did the release make requests slower, or fail
//! more often, than before — beyond what chance explains? Fixed thresholds
//! (P95 > 2 s) miss a release that doubles latency below the limit; this
//! compares the two distributions themselves: latency by the Mann-Whitney U
//! test on histogram buckets, the error share by Fisher's exact test
//! ([`super::stats`]), one verdict per series.

use std::collections::BTreeMap;

use serde::Serialize;

use super::compute::{self, Histogram, Labels, Series, StatusMatcher};
use super::parse::{self, Format, ParseError};
use super::source::{MetricsData, MetricsQuery};
use super::stats::{self, MannWhitney};
use super::summary::{labels_text, percent_text, seconds_text, trim_float};

/// When a difference counts. The defaults suit one deploy judged on
/// minutes of traffic: a 1% false alarm per series, and differences too
/// small for anyone to notice left alone however certain they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// A difference is significant below this p value (default 0.01: with a
    /// handful of series per deploy, about one deploy in 30 raises a false
    /// alarm on some series, not one in 5 as at 0.05).
    pub alpha: f64,
    /// The least latency shift that counts: the probability that an after
    /// request is slower must differ from 0.5 by at least this (default
    /// 0.05, i.e. 55% of after requests slower; about Cohen's d = 0.18, a
    /// "small" effect, the least a user is likely to feel).
    pub min_effect: f64,
    /// The least rise (or fall) of the error share that counts, as a
    /// fraction of requests (default 0.001: one more failed request in a
    /// thousand).
    pub min_error_change: f64,
    /// Fewer requests than this on either side is `no_data` (default 100:
    /// below it a P95 is one or two requests and neither test has power).
    pub min_requests: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            alpha: 0.01,
            min_effect: 0.05,
            min_error_change: 0.001,
            min_requests: 100.0,
        }
    }
}

/// A threshold outside what it can mean.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} is {value}; it must be {range}")]
pub struct ThresholdError {
    /// The threshold (`alpha`, `min_effect`, ...).
    pub name: &'static str,
    /// Its value.
    pub value: f64,
    /// What it may be.
    pub range: &'static str,
}

impl Thresholds {
    /// Refuses a threshold that cannot mean anything: alpha outside (0, 1),
    /// a latency shift outside [0, 0.5], an error change outside [0, 1], a
    /// negative request count (NaN is refused everywhere).
    pub fn validate(&self) -> Result<(), ThresholdError> {
        let checks: [(&'static str, f64, bool, &'static str); 4] = [
            (
                "alpha",
                self.alpha,
                self.alpha > 0.0 && self.alpha < 1.0,
                "between 0 and 1, e.g. 0.01",
            ),
            (
                "min_effect",
                self.min_effect,
                (0.0..=0.5).contains(&self.min_effect),
                "from 0 to 0.5, e.g. 0.05",
            ),
            (
                "min_error_change",
                self.min_error_change,
                (0.0..=1.0).contains(&self.min_error_change),
                "from 0 to 1, e.g. 0.001",
            ),
            (
                "min_requests",
                self.min_requests,
                self.min_requests >= 0.0,
                "0 or more, e.g. 100",
            ),
        ];
        match checks.into_iter().find(|(_, _, ok, _)| !ok) {
            Some((name, value, _, range)) => Err(ThresholdError { name, value, range }),
            None => Ok(()),
        }
    }
}

/// The power [`LatencyComparison::detectable_effect`] is computed for.
pub const POWER: f64 = 0.8;

/// A series' verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly worse, by at least the minimum effect.
    Regressed,
    /// Significantly better, by at least the minimum effect.
    Improved,
    /// No significant difference, with enough requests to have seen one of
    /// the minimum size.
    Unchanged,
    /// Significant but smaller than the minimum effect, or too few requests
    /// for the test to see an effect of the minimum size.
    Inconclusive,
    /// Fewer requests than the minimum on a side.
    NoData,
}

impl Verdict {
    /// The word reports use.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NoData => "no_data",
        }
    }
}

/// One side's latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySide {
    /// Requests observed.
    pub requests: f64,
    /// P50, P95 and P99 in seconds, as `histogram_quantile` gives them
    /// (`None` where it gives NaN).
    pub p50: Option<f64>,
    /// P95.
    pub p95: Option<f64>,
    /// P99.
    pub p99: Option<f64>,
}

/// One histogram series, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyComparison {
    /// The series' labels (without `le`).
    pub labels: Labels,
    /// Before.
    pub before: LatencySide,
    /// After.
    pub after: LatencySide,
    /// The bucket bounds both sides share, which the test counts in
    /// (written as `le` labels are: `"0.25"`, `"+Inf"`).
    #[serde(serialize_with = "le_labels")]
    pub bounds: Vec<f64>,
    /// The test (`None` without requests on a side).
    pub test: Option<MannWhitney>,
    /// The least shift of [`MannWhitney::effect`] away from 0.5 this many
    /// requests would show at `alpha` with [`POWER`].
    pub detectable_effect: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// One side's errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorSide {
    /// Requests whose status matches the error pattern.
    pub errors: u64,
    /// All requests.
    pub requests: u64,
    /// errors / requests (NaN without requests).
    pub share: f64,
}

/// One request-counter series, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorComparison {
    /// The series' labels (without the status label).
    pub labels: Labels,
    /// Before.
    pub before: ErrorSide,
    /// After.
    pub after: ErrorSide,
    /// Fisher's exact test, one-sided: the after share is greater.
    pub p_greater: f64,
    /// The other side: the after share is smaller.
    pub p_less: f64,
    /// The verdict.
    pub verdict: Verdict,
}

/// Every series compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// What counted.
    pub thresholds: Thresholds,
    /// The error statuses (`5..`).
    pub error_status: String,
    /// Latency, per histogram series.
    pub latency: Vec<LatencyComparison>,
    /// Error share, per counter series.
    pub errors: Vec<ErrorComparison>,
}

impl Comparison {
    /// Some series regressed.
    pub fn regressed(&self) -> bool {
        self.latency.iter().any(|l| l.verdict == Verdict::Regressed)
            || self.errors.iter().any(|e| e.verdict == Verdict::Regressed)
    }

    /// One line per series, e.g. "P95 600ms vs 300ms before (+100%); after
    /// slower than before with probability 0.71; p = 3e-12 (Mann-Whitney,
    /// 41 200 vs 39 800 requests): regressed".
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for l in &self.latency {
            out.push_str(&format!(
                "latency {}: {}\n",
                labels_text(&l.labels),
                l.line()
            ));
        }
        for e in &self.errors {
            out.push_str(&format!(
                "errors {} ({}): {}\n",
                labels_text(&e.labels),
                self.error_status,
                e.line()
            ));
        }
        if out.is_empty() {
            out.push_str("no series found on both sides\n");
        }
        out
    }
}

impl LatencyComparison {
    /// The series' verdict in one line.
    pub fn line(&self) -> String {
        let p95 = format!(
            "P95 {} vs {} before{}",
            seconds_text(self.after.p95),
            seconds_text(self.before.p95),
            match (self.after.p95, self.before.p95) {
                (Some(a), Some(b)) if b > 0.0 => format!(" ({})", signed_percent(a / b - 1.0)),
                _ => String::new(),
            }
        );
        let Some(t) = &self.test else {
            return format!("{p95}; no requests on a side: {}", self.verdict.label());
        };
        let direction = if t.effect >= 0.5 { "slower" } else { "faster" };
        let probability = if t.effect >= 0.5 {
            t.effect
        } else {
            1.0 - t.effect
        };
        format!(
            "{p95}; after {direction} than before with probability {}; {} (Mann-Whitney, {} vs {} requests): {}",
            trim_float((probability * 100.0).round() / 100.0),
            p_text(t.p),
            count_text(t.n_after),
            count_text(t.n_before),
            self.verdict.label()
        )
    }
}

impl ErrorComparison {
    /// The series' verdict in one line.
    pub fn line(&self) -> String {
        let change = self.after.share - self.before.share;
        let p = if change >= 0.0 {
            self.p_greater
        } else {
            self.p_less
        };
        format!(
            "{} vs {} before ({} points); {} (Fisher exact, {} vs {} requests): {}",
            percent_text(self.after.share),
            percent_text(self.before.share),
            if change.is_nan() {
                "—".into()
            } else {
                format!(
                    "{}{}",
                    if change >= 0.0 { "+" } else { "" },
                    trim_float(change * 100.0)
                )
            },
            p_text(p),
            count_text(self.after.requests as f64),
            count_text(self.before.requests as f64),
            self.verdict.label()
        )
    }
}

/// Compares `after` with `before`: each histogram series found on both
/// sides (by labels), and each counter series grouped by its labels other
/// than `status_label`, `errors` selecting the failed requests.
pub fn compare(
    before: &MetricsData,
    after: &MetricsData,
    errors: &StatusMatcher,
    status_label: &str,
    thresholds: &Thresholds,
) -> Comparison {
    let before_h: BTreeMap<&Labels, &Histogram> =
        before.histograms.iter().map(|h| (&h.labels, h)).collect();
    let latency = after
        .histograms
        .iter()
        .filter_map(|a| Some(compare_histograms(before_h.get(&a.labels)?, a, thresholds)))
        .collect();
    let before_e = error_counts(&before.counters, errors, status_label);
    let after_e = error_counts(&after.counters, errors, status_label);
    let errors_cmp = after_e
        .iter()
        .filter_map(|(labels, a)| {
            let b = before_e.get(labels)?;
            Some(compare_errors(labels.clone(), *b, *a, thresholds))
        })
        .collect();
    Comparison {
        thresholds: *thresholds,
        error_status: errors.pattern().to_owned(),
        latency,
        errors: errors_cmp,
    }
}

/// The histograms and counters `query` asks for from a saved scrape (the
/// text of a `/metrics` page), read as one cumulative scrape.
pub fn saved_scrape(text: &str, query: &MetricsQuery) -> Result<MetricsData, ParseError> {
    let exposition = parse::parse(text, Format::detect(None, text))?;
    let by = query.by.as_deref();
    let histograms = match &query.histogram {
        Some(h) => {
            let buckets = compute::series(&exposition, &format!("{h}_bucket"));
            compute::histograms(&buckets, by)
        }
        None => Vec::new(),
    };
    let counters = match &query.counter {
        Some(c) => {
            let series = compute::series(&exposition, c);
            match by {
                Some(by) => {
                    let mut keys = by.to_vec();
                    if !keys.contains(&query.status_label) {
                        keys.push(query.status_label.clone());
                    }
                    compute::sum_by(&series, &keys)
                }
                None => series,
            }
        }
        None => Vec::new(),
    };
    Ok(MetricsData {
        histograms,
        counters,
        warnings: Vec::new(),
        provenance: vec!["a saved scrape, cumulative counters".into()],
        seconds: None,
    })
}

/// A histogram as a value a step records and a later one reads back
/// (`{"bounds": ["0.1", ..., "+Inf"], "cumulative": [...]}`): how
/// `metrics-baseline` keeps the before distribution for `metrics-compare`.
pub fn histogram_value(h: &Histogram) -> serde_json::Value {
    let mut buckets: Vec<(f64, f64)> = h.buckets.iter().map(|b| (b.upper_bound, b.count)).collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    serde_json::json!({
        "bounds": buckets.iter().map(|(b, _)| le_label(*b)).collect::<Vec<_>>(),
        "cumulative": buckets.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
    })
}

/// The histogram [`histogram_value`] wrote; `None` for anything else.
pub fn histogram_of_value(value: &serde_json::Value) -> Option<Histogram> {
    let bounds = value.get("bounds")?.as_array()?;
    let counts = value.get("cumulative")?.as_array()?;
    if bounds.len() != counts.len() {
        return None;
    }
    let buckets = bounds
        .iter()
        .zip(counts)
        .map(|(b, c)| {
            Some(compute::Bucket {
                upper_bound: parse::parse_float(b.as_str()?)?,
                count: c.as_f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Histogram {
        labels: Labels::new(),
        buckets,
    })
}

/// One histogram against another: the latency half of [`compare`], for a
/// single series (what `metrics-compare` judges).
pub fn compare_histograms(
    before: &Histogram,
    after: &Histogram,
    t: &Thresholds,
) -> LatencyComparison {
    let side = |h: &Histogram| {
        let q = |p: f64| Some(h.quantile(p).value).filter(|v| !v.is_nan());
        LatencySide {
            requests: h.count(),
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
        }
    };
    let (before_side, after_side) = (side(before), side(after));
    let bounds = shared_bounds(before, after);
    let test = stats::mann_whitney(
        &bucket_counts(after, &bounds),
        &bucket_counts(before, &bounds),
    );
    let detectable_effect = test.map(|m| detectable_effect(m.n_after, m.n_before, t.alpha));
    let verdict = match (test, detectable_effect) {
        (Some(m), Some(detectable))
            if m.n_after >= t.min_requests && m.n_before >= t.min_requests =>
        {
            let shift = m.effect - 0.5;
            if m.p < t.alpha {
                match () {
                    _ if shift >= t.min_effect => Verdict::Regressed,
                    _ if -shift >= t.min_effect => Verdict::Improved,
                    _ => Verdict::Inconclusive,
                }
            } else if detectable > t.min_effect {
                Verdict::Inconclusive
            } else {
                Verdict::Unchanged
            }
        }
        _ => Verdict::NoData,
    };
    LatencyComparison {
        labels: after.labels.clone(),
        before: before_side,
        after: after_side,
        bounds,
        test,
        detectable_effect,
        verdict,
    }
}

/// The bounds both histograms have (a release may change its buckets; a
/// cumulative count is only known at a bound the histogram has).
fn shared_bounds(a: &Histogram, b: &Histogram) -> Vec<f64> {
    let theirs = b.bounds();
    let mut bounds: Vec<f64> = a
        .bounds()
        .into_iter()
        .filter(|x| theirs.contains(x))
        .collect();
    let has_inf = |h: &Histogram| h.buckets.iter().any(|x| x.upper_bound == f64::INFINITY);
    if has_inf(a) && has_inf(b) {
        bounds.push(f64::INFINITY);
    }
    bounds
}

/// Requests per bucket of `bounds` (not cumulative), from the cumulative
/// counts, sorted by bound with decreases flattened as Prometheus does.
fn bucket_counts(h: &Histogram, bounds: &[f64]) -> Vec<f64> {
    let mut previous = 0.0_f64;
    bounds
        .iter()
        .map(|bound| {
            let cumulative: f64 = h
                .buckets
                .iter()
                .filter(|b| b.upper_bound == *bound)
                .map(|b| b.count)
                .sum::<f64>()
                .max(previous);
            let in_bucket = cumulative - previous;
            previous = cumulative;
            in_bucket
        })
        .collect()
}

/// The least shift of P(after slower) from 0.5 that `n_after` against
/// `n_before` requests detect at `alpha` (two-sided) with [`POWER`]: the
/// effect's standard error under no difference is
/// √((n₁ + n₂ + 1) / (12 n₁ n₂)).
fn detectable_effect(n_after: f64, n_before: f64, alpha: f64) -> f64 {
    let se = ((n_after + n_before + 1.0) / (12.0 * n_after * n_before)).sqrt();
    (stats::normal_upper_quantile(alpha / 2.0) + stats::normal_upper_quantile(1.0 - POWER)) * se
}

fn error_counts(
    counters: &[Series],
    errors: &StatusMatcher,
    status_label: &str,
) -> BTreeMap<Labels, (f64, f64)> {
    let mut out: BTreeMap<Labels, (f64, f64)> = BTreeMap::new();
    for s in counters {
        let mut labels = s.labels.clone();
        let status = labels.remove(status_label).unwrap_or_default();
        let entry = out.entry(labels).or_default();
        if errors.matches(&status) {
            entry.0 += s.value;
        }
        entry.1 += s.value;
    }
    out
}

fn compare_errors(
    labels: Labels,
    (err_b, all_b): (f64, f64),
    (err_a, all_a): (f64, f64),
    t: &Thresholds,
) -> ErrorComparison {
    // Counters hold whole requests; a fraction is float noise.
    let whole = |v: f64| v.max(0.0).round() as u64;
    let side = |errors: f64, requests: f64| {
        let (errors, requests) = (whole(errors), whole(requests));
        ErrorSide {
            errors,
            requests,
            share: errors as f64 / requests as f64,
        }
    };
    let (before, after) = (side(err_b, all_b), side(err_a, all_a));
    let ok = |s: &ErrorSide| s.requests.saturating_sub(s.errors);
    let p_greater = stats::fisher_greater(after.errors, ok(&after), before.errors, ok(&before));
    let p_less = stats::fisher_less(after.errors, ok(&after), before.errors, ok(&before));
    let change = after.share - before.share;
    let verdict =
        if (after.requests as f64) < t.min_requests || (before.requests as f64) < t.min_requests {
            Verdict::NoData
        } else if p_greater < t.alpha {
            if change >= t.min_error_change {
                Verdict::Regressed
            } else {
                Verdict::Inconclusive
            }
        } else if p_less < t.alpha {
            if -change >= t.min_error_change {
                Verdict::Improved
            } else {
                Verdict::Inconclusive
            }
        } else {
            Verdict::Unchanged
        };
    ErrorComparison {
        labels,
        before,
        after,
        p_greater,
        p_less,
        verdict,
    }
}

fn signed_percent(v: f64) -> String {
    format!(
        "{}{}%",
        if v >= 0.0 { "+" } else { "" },
        (v * 100.0).round()
    )
}

/// Bounds as Prometheus writes `le`: JSON has no infinity.
fn le_labels<S: serde::Serializer>(bounds: &[f64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(bounds.iter().map(|b| le_label(*b)))
}

fn le_label(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_owned()
    } else {
        bound.to_string()
    }
}

/// A p value for people: `p = 0.035`, `p = 3e-12`, and below what an f64
/// holds, `p < 1e-300`.
fn p_text(p: f64) -> String {
    if p < 1e-300 {
        "p < 1e-300".into()
    } else if p < 0.001 {
        format!("p = {p:.0e}")
    } else {
        format!("p = {}", trim_float((p * 1000.0).round() / 1000.0))
    }
}

/// Request counts with a space between thousands: `41 200`.
fn count_text(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::compute::Bucket;

    fn histogram(cumulative: &[(f64, f64)]) -> Histogram {
        Histogram {
            labels: Labels::new(),
            buckets: cumulative
                .iter()
                .map(|&(upper_bound, count)| Bucket { upper_bound, count })
                .collect(),
        }
    }

    fn data(h: Histogram, counters: &[(&str, f64)]) -> MetricsData {
        MetricsData {
            histograms: vec![h],
            counters: counters
                .iter()
                .map(|(status, value)| Series {
                    labels: [("status".to_owned(), (*status).to_owned())].into(),
                    value: *value,
                })
                .collect(),
            warnings: Vec::new(),
            provenance: Vec::new(),
            seconds: None,
        }
    }

    fn judge(before: MetricsData, after: MetricsData) -> Comparison {
        compare(
            &before,
            &after,
            &StatusMatcher::five_xx(),
            "status",
            &Thresholds::default(),
        )
    }

    #[test]
    fn a_doubled_latency_below_any_fixed_limit_is_a_regression() {
        // Before: most requests under 0.25 s; after: most between 0.25 and 0.5 s.
        let before = histogram(&[
            (0.25, 900.0),
            (0.5, 990.0),
            (1.0, 1000.0),
            (f64::INFINITY, 1000.0),
        ]);
        let after = histogram(&[
            (0.25, 300.0),
            (0.5, 900.0),
            (1.0, 1000.0),
            (f64::INFINITY, 1000.0),
        ]);
        let c = judge(data(before, &[]), data(after, &[]));
        let l = &c.latency[0];
        assert_eq!(l.verdict, Verdict::Regressed, "{}", l.line());
        assert!(l.test.unwrap().effect > 0.55);
        assert!(c.regressed());
        assert!(
            l.line()
                .contains("after slower than before with probability"),
            "{}",
            l.line()
        );
        assert!(l.line().ends_with(": regressed"), "{}", l.line());
    }

    #[test]
    fn the_same_distribution_is_unchanged_and_a_small_one_inconclusive() {
        let h = || histogram(&[(0.25, 9000.0), (0.5, 9900.0), (f64::INFINITY, 10000.0)]);
        assert_eq!(
            judge(data(h(), &[]), data(h(), &[])).latency[0].verdict,
            Verdict::Unchanged
        );
        let small = || histogram(&[(0.25, 90.0), (0.5, 99.0), (f64::INFINITY, 100.0)]);
        // 100 requests a side cannot show a shift of 0.05.
        assert_eq!(
            judge(data(small(), &[]), data(small(), &[])).latency[0].verdict,
            Verdict::Inconclusive
        );
        let few = || histogram(&[(0.25, 9.0), (f64::INFINITY, 10.0)]);
        assert_eq!(
            judge(data(few(), &[]), data(few(), &[])).latency[0].verdict,
            Verdict::NoData
        );
    }

    #[test]
    fn only_shared_bounds_are_counted_when_a_release_changes_its_buckets() {
        let before = histogram(&[(0.1, 50.0), (0.25, 900.0), (f64::INFINITY, 1000.0)]);
        let after = histogram(&[(0.25, 900.0), (0.75, 990.0), (f64::INFINITY, 1000.0)]);
        let l = &judge(data(before, &[]), data(after, &[])).latency[0];
        assert_eq!(l.bounds, vec![0.25, f64::INFINITY]);
        assert_eq!(l.test.unwrap().effect, 0.5);
    }

    #[test]
    fn a_rise_of_sparse_errors_is_judged_exactly() {
        let h = || histogram(&[(f64::INFINITY, 5000.0)]);
        let c = judge(
            data(h(), &[("200", 5000.0)]),
            data(h(), &[("200", 4960.0), ("503", 40.0)]),
        );
        let e = &c.errors[0];
        assert_eq!((e.before.errors, e.after.errors), (0, 40));
        assert!(e.p_greater < 1e-9, "{}", e.p_greater);
        assert_eq!(e.verdict, Verdict::Regressed, "{}", e.line());
        assert!(e.line().contains("Fisher exact"), "{}", e.line());
    }

    #[test]
    fn thresholds_that_mean_nothing_are_refused_by_name() {
        assert_eq!(Thresholds::default().validate(), Ok(()));
        let e = Thresholds {
            min_effect: 0.7,
            ..Thresholds::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.name, "min_effect");
        let nan = Thresholds {
            alpha: f64::NAN,
            ..Thresholds::default()
        };
        assert_eq!(nan.validate().unwrap_err().name, "alpha");
    }

    #[test]
    fn a_recorded_histogram_reads_back_the_same() {
        let h = histogram(&[(0.5, 9.0), (0.1, 5.0), (f64::INFINITY, 10.0)]);
        let back = histogram_of_value(&histogram_value(&h)).unwrap();
        assert_eq!(back.buckets.len(), 3);
        assert_eq!(back.buckets[0].upper_bound, 0.1);
        assert_eq!(back.buckets[2].upper_bound, f64::INFINITY);
        assert_eq!(back.count(), 10.0);
        assert_eq!(histogram_of_value(&serde_json::json!(0.4)), None);
    }

    #[test]
    fn counts_are_written_for_people() {
        assert_eq!(count_text(41200.0), "41 200");
        assert_eq!(count_text(999.0), "999");
        assert_eq!(count_text(1234567.0), "1 234 567");
        assert_eq!(p_text(3.2e-12), "p = 3e-12");
        assert_eq!(p_text(0.0345), "p = 0.035");
        assert_eq!(p_text(0.0), "p < 1e-300");
    }
}
