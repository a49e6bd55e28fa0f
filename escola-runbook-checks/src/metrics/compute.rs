//! The numbers a deploy decision rests on, computed as Prometheus computes
//! them: `histogram_quantile` over classic buckets (with Prometheus's bucket
//! repair), `sum by (...)`, counter deltas with reset handling, rates, the
//! PromQL extrapolated `rate`/`increase`, and the error ratio for a status
//! matcher such as `5..`.

use std::collections::BTreeMap;

use super::parse::{Exposition, Sample, parse_float};

/// A label set, sorted by name (as Prometheus orders labels).
pub type Labels = BTreeMap<String, String>;

/// One series at one point: its labels (without the metric name) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Labels, without `__name__`.
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

/// Every sample called `name` in `exposition`, as owned series.
pub fn series(exposition: &Exposition<'_>, name: &str) -> Vec<Series> {
    exposition.samples_named(name).map(owned_series).collect()
}

/// One sample as an owned series.
pub fn owned_series(sample: &Sample<'_>) -> Series {
    Series {
        labels: sample
            .labels
            .iter()
            .map(|l| (l.name.to_owned(), l.value.clone().into_owned()))
            .collect(),
        value: sample.value,
    }
}

/// PromQL `sum by (by...)`: series grouped by the values of `by` (a missing
/// label counts as empty and is left out of the result, as in PromQL), each
/// group summed in label order. The result is sorted by labels.
pub fn sum_by<S: AsRef<str>>(input: &[Series], by: &[S]) -> Vec<Series> {
    let mut sorted: Vec<&Series> = input.iter().collect();
    sorted.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
    for s in sorted {
        *groups.entry(project(&s.labels, by)).or_insert(0.0) += s.value;
    }
    groups
        .into_iter()
        .map(|(labels, value)| Series { labels, value })
        .collect()
}

/// `labels` cut down to `by`, a missing or empty label left out (the group
/// key of PromQL's `sum by`).
pub fn project<S: AsRef<str>>(labels: &Labels, by: &[S]) -> Labels {
    by.iter()
        .filter_map(|l| {
            let l = l.as_ref();
            labels
                .get(l)
                .filter(|v| !v.is_empty())
                .map(|v| (l.to_owned(), v.clone()))
        })
        .collect()
}

/// Increase of each counter between two scrapes, matched by labels.
///
/// A value lower than before is a counter reset (the process restarted):
/// the counter started again from zero, so the increase is the new value,
/// as PromQL's reset handling counts it. A series absent from `before`
/// appeared in between (client libraries create a label set on its first
/// observation) and is counted from zero; PromQL's `increase` would ignore
/// it until it has two samples, hiding the first errors of a new status.
/// Series gone from `after` are dropped.
pub fn counter_delta(before: &[Series], after: &[Series]) -> Vec<Series> {
    let previous: BTreeMap<&Labels, f64> = before.iter().map(|s| (&s.labels, s.value)).collect();
    after
        .iter()
        .map(|s| {
            let value = match previous.get(&s.labels) {
                Some(&old) if s.value >= old => s.value - old,
                _ => s.value,
            };
            Series {
                labels: s.labels.clone(),
                value,
            }
        })
        .collect()
}

/// Increase of each counter over successive scrapes (oldest first), with a
/// reset between any two of them handled as in [`counter_delta`]. For one
/// series this is PromQL's non-extrapolated increase: last − first plus the
/// value before each reset.
pub fn window_delta(scrapes: &[Vec<Series>]) -> Vec<Series> {
    let Some(last) = scrapes.last() else {
        return Vec::new();
    };
    let mut total: BTreeMap<Labels, f64> = last.iter().map(|s| (s.labels.clone(), 0.0)).collect();
    for pair in scrapes.windows(2) {
        for s in counter_delta(&pair[0], &pair[1]) {
            if let Some(t) = total.get_mut(&s.labels) {
                *t += s.value;
            }
        }
    }
    total
        .into_iter()
        .map(|(labels, value)| Series { labels, value })
        .collect()
}

/// Per-second rate of a delta observed over `seconds` (NaN for a
/// non-positive interval: there is no rate over no time).
pub fn rate(delta: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        delta / seconds
    } else {
        f64::NAN
    }
}

/// One sample of a range: timestamp in milliseconds and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// PromQL's `extrapolatedRate` (behind `rate`, `increase` and `delta`) for
/// float samples in `(range_start, range_end]`: counter resets handled,
/// extrapolated to the range's edges when the samples come close enough to
/// them (1.1 × the average interval), never below zero for a counter.
/// `None` with fewer than two points, as PromQL returns no sample then.
pub fn extrapolated_rate(
    points: &[Point],
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n_minus_one = points.len() - 1;
    let (first, last) = (points[0], points[n_minus_one]);
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut to_start = (first.t - range_start_ms) as f64 / 1000.0;
    let mut to_end = (range_end_ms - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let average = sampled / n_minus_one as f64;
    let threshold = average * 1.1;
    if to_start >= threshold {
        to_start = average / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (range_end_ms - range_start_ms) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// A classic histogram bucket: cumulative count of observations ≤ bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The `le` bound.
    pub upper_bound: f64,
    /// Observations at or below it.
    pub count: f64,
}

/// A quantile and what Prometheus had to repair to compute it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    /// The estimate (NaN where Prometheus gives NaN).
    pub value: f64,
    /// Bucket counts decreased somewhere and were flattened to the running
    /// maximum (Prometheus annotates this).
    pub forced_monotonic: bool,
    /// Differences below 1e-12 relative were treated as float noise.
    pub fixed_precision: bool,
    /// The rank fell into the `+Inf` bucket: `value` is the highest finite
    /// bound, which Prometheus reports, but the true quantile lies *above*
    /// it by an unknown amount.
    pub above_highest_bound: bool,
}

const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Prometheus's `bucketQuantile` (PromQL `histogram_quantile` on classic
/// buckets), operation for operation:
///
/// - NaN for NaN q; -Inf below 0, +Inf above 1;
/// - buckets sorted by bound, equal bounds merged by adding their counts;
/// - NaN without a `+Inf` bucket, with fewer than two buckets, or with no
///   observations;
/// - counts within 1e-12 relative of the previous accepted count are taken
///   as equal, and any decrease is flattened (the running maximum);
/// - rank = q × total; a rank in the `+Inf` bucket gives the highest finite
///   bound; a rank in a first bucket whose bound is ≤ 0 gives that bound;
///   otherwise linear interpolation inside the bucket, the first bucket
///   starting at 0.
pub fn bucket_quantile(q: f64, buckets: &[Bucket]) -> Quantile {
    let plain = |value| Quantile {
        value,
        forced_monotonic: false,
        fixed_precision: false,
        above_highest_bound: false,
    };
    if q.is_nan() {
        return plain(f64::NAN);
    }
    if q < 0.0 {
        return plain(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return plain(f64::INFINITY);
    }
    let mut b: Vec<Bucket> = buckets.to_vec();
    b.sort_by(|x, y| x.upper_bound.total_cmp(&y.upper_bound));
    match b.last() {
        Some(last) if last.upper_bound == f64::INFINITY => {}
        _ => return plain(f64::NAN),
    }
    let mut b = coalesce(b);
    let (forced_monotonic, fixed_precision) = ensure_monotonic(&mut b);
    if b.len() < 2 {
        return plain(f64::NAN);
    }
    let observations = b[b.len() - 1].count;
    if observations == 0.0 {
        return plain(f64::NAN);
    }
    let with = |value| Quantile {
        value,
        forced_monotonic,
        fixed_precision,
        above_highest_bound: false,
    };
    let mut rank = q * observations;
    // sort.Search over all but the +Inf bucket: first index with count >= rank.
    let searched = b.len() - 1;
    let i = b[..searched].partition_point(|x| x.count < rank);
    if i == searched {
        return Quantile {
            above_highest_bound: true,
            ..with(b[b.len() - 2].upper_bound)
        };
    }
    if i == 0 && b[0].upper_bound <= 0.0 {
        return with(b[0].upper_bound);
    }
    let mut start = 0.0;
    let end = b[i].upper_bound;
    let mut count = b[i].count;
    if i > 0 {
        start = b[i - 1].upper_bound;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    with(start + (end - start) * (rank / count))
}

fn coalesce(sorted: Vec<Bucket>) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::with_capacity(sorted.len());
    for b in sorted {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(b),
        }
    }
    out
}

fn ensure_monotonic(buckets: &mut [Bucket]) -> (bool, bool) {
    let (mut forced, mut fixed) = (false, false);
    let Some(first) = buckets.first() else {
        return (false, false);
    };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            fixed = true;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    (forced, fixed)
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// A classic histogram: the buckets of one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Labels without `le`.
    pub labels: Labels,
    /// Buckets as found (unsorted, unrepaired: [`bucket_quantile`] does that).
    pub buckets: Vec<Bucket>,
}

impl Histogram {
    /// The φ-quantile, as `histogram_quantile(q, ...)`.
    pub fn quantile(&self, q: f64) -> Quantile {
        bucket_quantile(q, &self.buckets)
    }

    /// Total observations: the `+Inf` bucket's count (what the quantile
    /// divides), 0 when there is none.
    pub fn count(&self) -> f64 {
        self.buckets
            .iter()
            .filter(|b| b.upper_bound == f64::INFINITY)
            .map(|b| b.count)
            .sum()
    }

    /// Finite bucket bounds, sorted and distinct.
    pub fn bounds(&self) -> Vec<f64> {
        let mut bounds: Vec<f64> = self
            .buckets
            .iter()
            .map(|b| b.upper_bound)
            .filter(|b| b.is_finite())
            .collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        bounds
    }

    /// Exact share of observations above `bound`, which must be a bucket
    /// bound: 1 − count(le = bound) / count(+Inf). `None` if `bound` is not a
    /// bound or there are no observations. This is the question "how many
    /// requests were slower than 2s" answered without interpolation.
    pub fn share_above(&self, bound: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let at: f64 = self
            .buckets
            .iter()
            .filter(|b| b.upper_bound == bound)
            .map(|b| b.count)
            .sum();
        if !self.buckets.iter().any(|b| b.upper_bound == bound) {
            return None;
        }
        Some((total - at.min(total)) / total)
    }
}

/// Groups `_bucket` series into histograms, as `histogram_quantile` does:
/// with `by = None`, one histogram per label set without `le`; with
/// `by = Some(labels)`, first `sum by (labels, le)`. Series whose `le` does
/// not parse are ignored (Prometheus ignores them too).
pub fn histograms<S: AsRef<str>>(bucket_series: &[Series], by: Option<&[S]>) -> Vec<Histogram> {
    let summed;
    let input = match by {
        Some(by) => {
            let mut keys: Vec<&str> = by.iter().map(AsRef::as_ref).collect();
            keys.push("le");
            summed = sum_by(bucket_series, &keys);
            &summed
        }
        None => bucket_series,
    };
    let mut groups: BTreeMap<Labels, Vec<Bucket>> = BTreeMap::new();
    for s in input {
        let Some(bound) = s.labels.get("le").and_then(|le| parse_float(le)) else {
            continue;
        };
        let mut labels = s.labels.clone();
        labels.remove("le");
        groups.entry(labels).or_default().push(Bucket {
            upper_bound: bound,
            count: s.value,
        });
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| Histogram { labels, buckets })
        .collect()
}

/// Builds histograms from `_bucket` samples as they stream by, one label
/// set (without `le`) per histogram rather than one per bucket: a page of
/// buckets costs about what its text does. Samples whose `le` does not
/// parse are ignored, as in [`histograms`]. [`HistogramCollector::summing`]
/// also sums by labels as it goes, keeping one histogram per group.
#[derive(Debug, Default)]
pub struct HistogramCollector {
    groups: BTreeMap<Labels, Vec<Bucket>>,
    cost: usize,
    // `sum by (these, le)` on the way in; `None` keeps every histogram.
    by: Option<Vec<String>>,
    // The label set of the last sample's histogram: buckets of one
    // histogram come together, so most samples find it without allocating.
    last: Option<Labels>,
}

impl HistogramCollector {
    /// A collector that sums by `by` (and `le`) as samples come: right for
    /// one scrape read as it is (cumulative), never for deltas, which
    /// must be taken per series first.
    pub fn summing(by: &[String]) -> Self {
        HistogramCollector {
            by: Some(by.to_vec()),
            ..HistogramCollector::default()
        }
    }

    fn keeps(&self, name: &str, value: &str) -> bool {
        name != "le"
            && match &self.by {
                None => true,
                Some(by) => !value.is_empty() && by.iter().any(|b| b == name),
            }
    }

    /// Adds one bucket sample.
    pub fn add(&mut self, sample: &Sample<'_>) {
        let Some(bound) = sample.label("le").and_then(parse_float) else {
            return;
        };
        let bucket = Bucket {
            upper_bound: bound,
            count: sample.value,
        };
        let same = self.last.as_ref().is_some_and(|last| {
            let others = sample
                .labels
                .iter()
                .filter(|l| self.keeps(l.name, &l.value));
            others.clone().count() == last.len()
                && others.into_iter().all(|l| {
                    last.get(l.name)
                        .is_some_and(|v| v.as_str() == l.value.as_ref())
                })
        });
        if !same {
            let labels: Labels = sample
                .labels
                .iter()
                .filter(|l| self.keeps(l.name, &l.value))
                .map(|l| (l.name.to_owned(), l.value.clone().into_owned()))
                .collect();
            self.last = Some(labels);
        }
        if let Some(labels) = &self.last {
            self.cost += std::mem::size_of::<Bucket>();
            match self.groups.get_mut(labels) {
                Some(buckets) => match buckets
                    .iter_mut()
                    .find(|b| self.by.is_some() && b.upper_bound == bound)
                {
                    Some(b) => b.count += bucket.count,
                    None => buckets.push(bucket),
                },
                None => {
                    self.cost += labels_cost(labels);
                    self.groups.insert(labels.clone(), vec![bucket]);
                }
            }
        }
    }

    /// About how many bytes the histograms take.
    pub fn cost(&self) -> usize {
        self.cost
    }

    /// The histograms, sorted by labels.
    pub fn finish(self) -> Vec<Histogram> {
        self.groups
            .into_iter()
            .map(|(labels, buckets)| Histogram { labels, buckets })
            .collect()
    }
}

/// About how many bytes an owned label set takes: a B-tree node (room for
/// 11 pairs), each name and value in its own allocation.
pub fn labels_cost(labels: &Labels) -> usize {
    let nodes = labels.len().div_ceil(11).max(1);
    nodes * 560
        + labels
            .iter()
            .map(|(k, v)| k.len().max(16) + v.len().max(16) + 16)
            .sum::<usize>()
}

/// PromQL `sum by (by..., le)` over histograms: label sets projected on
/// `by` (empty values left out), buckets of equal bound added. Takes the
/// histograms so each is freed as it is added.
pub fn sum_histograms<S: AsRef<str>>(input: Vec<Histogram>, by: &[S]) -> Vec<Histogram> {
    let mut groups: BTreeMap<Labels, Vec<Bucket>> = BTreeMap::new();
    for h in input {
        let buckets = groups.entry(project(&h.labels, by)).or_default();
        for b in &h.buckets {
            match buckets.iter_mut().find(|x| x.upper_bound == b.upper_bound) {
                Some(x) => x.count += b.count,
                None => buckets.push(*b),
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| Histogram { labels, buckets })
        .collect()
}

/// [`window_delta`] for histograms: the increase of each bucket of each
/// histogram of the last scrape over successive scrapes, a reset handled
/// per bucket as a counter reset.
pub fn histogram_window_delta(scrapes: &[Vec<Histogram>]) -> Vec<Histogram> {
    let Some(last) = scrapes.last() else {
        return Vec::new();
    };
    let indexed: Vec<BTreeMap<&Labels, &Histogram>> = scrapes
        .iter()
        .map(|s| s.iter().map(|h| (&h.labels, h)).collect())
        .collect();
    last.iter()
        .map(|h| {
            let count_in = |scrape: &BTreeMap<&Labels, &Histogram>, bound: f64| {
                scrape.get(&h.labels).and_then(|h| {
                    h.buckets
                        .iter()
                        .find(|b| b.upper_bound == bound)
                        .map(|b| b.count)
                })
            };
            let buckets = h
                .buckets
                .iter()
                .map(|b| {
                    let mut count = 0.0;
                    for pair in indexed.windows(2) {
                        match (
                            count_in(&pair[0], b.upper_bound),
                            count_in(&pair[1], b.upper_bound),
                        ) {
                            (Some(old), Some(new)) if new >= old => count += new - old,
                            (_, Some(new)) => count += new,
                            (_, None) => {}
                        }
                    }
                    Bucket {
                        upper_bound: b.upper_bound,
                        count,
                    }
                })
                .collect();
            Histogram {
                labels: h.labels.clone(),
                buckets,
            }
        })
        .collect()
}

/// A share of requests: matched over total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// Requests whose status matched.
    pub matched: f64,
    /// All requests.
    pub total: f64,
}

impl Ratio {
    /// matched / total; NaN when there were no requests (as PromQL's 0/0).
    pub fn value(&self) -> f64 {
        self.matched / self.total
    }
}

/// A status matcher with PromQL `=~` semantics: an RE2 pattern anchored at
/// both ends (`5..` matches `503`, not `5031`).
#[derive(Debug, Clone)]
pub struct StatusMatcher {
    pattern: String,
    regex: Option<regex::Regex>,
}

/// The status pattern is not a valid regular expression.
#[derive(Debug, Clone, thiserror::Error)]
#[error("status pattern `{pattern}` is not a valid regular expression: {message}")]
pub struct MatcherError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub message: String,
}

impl StatusMatcher {
    /// A matcher for `pattern` (e.g. `5..`, `5..|429`).
    pub fn new(pattern: &str) -> Result<Self, MatcherError> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(|regex| StatusMatcher {
                pattern: pattern.to_owned(),
                regex: Some(regex),
            })
            .map_err(|e| MatcherError {
                pattern: pattern.to_owned(),
                message: e.to_string(),
            })
    }

    /// `5..`, the runbook's server errors, without compiling anything.
    pub fn five_xx() -> Self {
        StatusMatcher {
            pattern: "5..".into(),
            regex: None,
        }
    }

    /// True when `value` matches the whole pattern.
    pub fn matches(&self, value: &str) -> bool {
        match &self.regex {
            Some(regex) => regex.is_match(value),
            // `^(?:5..)$`: three characters, a 5 then two that are not a
            // newline (RE2's `.`).
            None => {
                let mut chars = value.chars();
                chars.next() == Some('5')
                    && chars.next().is_some_and(|c| c != '\n')
                    && chars.next().is_some_and(|c| c != '\n')
                    && chars.next().is_none()
            }
        }
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// `sum(x{label=~m}) / sum(x)` over counter series (or their deltas): the
/// numerator and denominator are summed in label order as PromQL sums; a
/// series without `label` has it empty, as in PromQL.
pub fn error_ratio(counters: &[Series], label: &str, matcher: &StatusMatcher) -> Ratio {
    let mut sorted: Vec<&Series> = counters.iter().collect();
    sorted.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut ratio = Ratio {
        matched: 0.0,
        total: 0.0,
    };
    for s in sorted {
        ratio.total += s.value;
        if matcher.matches(s.labels.get(label).map_or("", String::as_str)) {
            ratio.matched += s.value;
        }
    }
    ratio
}
