//! The verdicts, as pure functions of the numbers read: no I/O, no
//! context, no text beyond the bucket-boundary advice. The checks turn
//! each verdict into an outcome with its evidence.

use crate::metrics::compute::{Histogram, Quantile, Ratio};
use crate::metrics::summary::{percent_text, seconds_text};

use super::evidence::{bounds_text, quantile_name};

/// What a scrape of the endpoint shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointVerdict<'a> {
    /// Required metrics are not in the page.
    Missing(Vec<&'a str>),
    /// A valid page without a single sample.
    Empty,
    /// Every required metric is present and there are samples.
    Healthy,
}

/// The endpoint's verdict: `found[i]` says whether `required[i]` was seen.
pub fn endpoint<'a>(required: &'a [String], found: &[bool], samples: usize) -> EndpointVerdict<'a> {
    let missing: Vec<&str> = required
        .iter()
        .zip(found)
        .filter(|(_, found)| !**found)
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        EndpointVerdict::Missing(missing)
    } else if samples == 0 {
        EndpointVerdict::Empty
    } else {
        EndpointVerdict::Healthy
    }
}

/// The quantiles a baseline records, by key.
pub const BASELINE_QUANTILES: [(&str, f64); 3] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)];

/// What a baseline can be taken from.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineVerdict {
    /// No histogram series at all.
    NoSeries,
    /// Fewer requests than needed.
    TooFew {
        /// Requests in the window.
        count: f64,
    },
    /// The buckets give no quantile (NaN).
    NoBuckets,
    /// P50, P95 and P99 over `count` requests.
    Recorded {
        /// Requests in the window.
        count: f64,
        /// [`BASELINE_QUANTILES`] computed.
        quantiles: [(&'static str, Quantile); 3],
    },
}

/// The baseline from the (single, summed) histogram, if any.
pub fn baseline(h: Option<&Histogram>, min_requests: f64) -> BaselineVerdict {
    let Some(h) = h else {
        return BaselineVerdict::NoSeries;
    };
    let count = h.count();
    if count < min_requests {
        return BaselineVerdict::TooFew { count };
    }
    let quantiles = BASELINE_QUANTILES.map(|(k, q)| (k, h.quantile(q)));
    if quantiles.iter().any(|(_, q)| q.value.is_nan()) {
        return BaselineVerdict::NoBuckets;
    }
    BaselineVerdict::Recorded { count, quantiles }
}

/// The limit for this run: `threshold` and `factor` × `baseline`, the
/// stricter of the two; no limit at all is infinite.
pub fn latency_limit(threshold: Option<f64>, relative: Option<f64>) -> f64 {
    match (threshold, relative) {
        (Some(t), Some(r)) => t.min(r),
        (Some(t), None) => t,
        (None, Some(r)) => r,
        (None, None) => f64::INFINITY,
    }
}

/// One group's quantile, with enough traffic to be judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged<'h> {
    /// The group's histogram.
    pub histogram: &'h Histogram,
    /// Its requests.
    pub count: f64,
    /// Its quantile.
    pub quantile: Quantile,
}

/// The groups, split into those with enough traffic (and a quantile) and
/// the thin ones, with their request counts.
pub fn split_by_traffic(
    histograms: &[Histogram],
    quantile: f64,
    min_requests: f64,
) -> (Vec<Judged<'_>>, Vec<(&Histogram, f64)>) {
    let mut judged = Vec::new();
    let mut thin = Vec::new();
    for h in histograms {
        let count = h.count();
        let q = h.quantile(quantile);
        if count < min_requests || q.value.is_nan() {
            thin.push((h, count));
        } else {
            judged.push(Judged {
                histogram: h,
                count,
                quantile: q,
            });
        }
    }
    (judged, thin)
}

/// The group that decides: the highest quantile, one in the `+Inf` bucket
/// above any measured one.
pub fn worst<'a, 'h>(judged: &'a [Judged<'h>]) -> Option<&'a Judged<'h>> {
    judged.iter().max_by(|a, b| {
        (a.quantile.above_highest_bound, a.quantile.value)
            .partial_cmp(&(b.quantile.above_highest_bound, b.quantile.value))
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// A quantile against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyVerdict {
    /// The quantile is in the `+Inf` bucket and the highest finite bound
    /// is below the limit: the histogram cannot tell.
    Undecidable,
    /// Above the limit (or in the `+Inf` bucket, above a limit it
    /// exceeds).
    Over,
    /// At or below the limit.
    Within,
}

/// Judges quantile `q` against `limit` (seconds).
pub fn latency(q: &Quantile, limit: f64) -> LatencyVerdict {
    if q.above_highest_bound && q.value < limit {
        LatencyVerdict::Undecidable
    } else if q.value > limit || q.above_highest_bound {
        LatencyVerdict::Over
    } else {
        LatencyVerdict::Within
    }
}

/// The bucket-boundary lint: `None` when `threshold` is a bound of `h`,
/// otherwise the advice with the exact share of slower requests at the
/// neighbouring bounds.
pub fn boundary_advice(h: &Histogram, quantile: f64, threshold: f64) -> Option<String> {
    let bounds = h.bounds();
    if bounds.contains(&threshold) {
        return None;
    }
    let below = bounds.iter().copied().rfind(|b| *b < threshold);
    let above = bounds.iter().copied().find(|b| *b > threshold);
    let allowed = percent_text(1.0 - quantile);
    let mut parts = vec![format!(
        "the limit {} is not a bucket boundary (bounds: {}), so the {} compared with it is interpolated inside a bucket, not measured",
        seconds_text(Some(threshold)),
        bounds_text(&bounds),
        quantile_name(quantile)
    )];
    for b in [below, above].into_iter().flatten() {
        if let Some(share) = h.share_above(b) {
            parts.push(format!(
                "exact form: share of requests slower than {} ≤ {allowed} (measured {})",
                seconds_text(Some(b)),
                percent_text(share)
            ));
        }
    }
    Some(parts.join("; "))
}

/// An error ratio against its limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RatioVerdict {
    /// Fewer requests than needed (or none).
    TooLittle,
    /// Above the limit.
    Over(f64),
    /// At or below the limit.
    Within(f64),
}

/// Judges `ratio` against `threshold` when there were `min_requests`.
pub fn error_ratio(ratio: &Ratio, min_requests: f64, threshold: f64) -> RatioVerdict {
    if ratio.total < min_requests || ratio.total <= 0.0 {
        return RatioVerdict::TooLittle;
    }
    let value = ratio.value();
    if value > threshold {
        RatioVerdict::Over(value)
    } else {
        RatioVerdict::Within(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::compute::{Bucket, Labels};

    fn histogram(buckets: &[(f64, f64)]) -> Histogram {
        Histogram {
            labels: Labels::new(),
            buckets: buckets
                .iter()
                .map(|&(upper_bound, count)| Bucket { upper_bound, count })
                .collect(),
        }
    }

    fn grouped(route: &str, buckets: &[(f64, f64)]) -> Histogram {
        Histogram {
            labels: [("route".to_owned(), route.to_owned())].into(),
            ..histogram(buckets)
        }
    }

    #[test]
    fn endpoint_missing_names_beat_an_empty_page() {
        let required = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            endpoint(&required, &[true, false], 0),
            EndpointVerdict::Missing(vec!["b"])
        );
        assert_eq!(
            endpoint(&required, &[true, true], 0),
            EndpointVerdict::Empty
        );
        assert_eq!(endpoint(&[], &[], 3), EndpointVerdict::Healthy);
    }

    #[test]
    fn a_baseline_needs_series_traffic_and_buckets() {
        assert_eq!(baseline(None, 20.0), BaselineVerdict::NoSeries);
        let few = histogram(&[(0.5, 5.0), (f64::INFINITY, 10.0)]);
        assert_eq!(
            baseline(Some(&few), 20.0),
            BaselineVerdict::TooFew { count: 10.0 }
        );
        let one_bucket = histogram(&[(f64::INFINITY, 50.0)]);
        assert_eq!(
            baseline(Some(&one_bucket), 20.0),
            BaselineVerdict::NoBuckets
        );
        let h = histogram(&[(0.1, 50.0), (1.0, 100.0), (f64::INFINITY, 100.0)]);
        let BaselineVerdict::Recorded { count, quantiles } = baseline(Some(&h), 20.0) else {
            panic!("recorded");
        };
        assert_eq!(count, 100.0);
        assert_eq!(quantiles[0].0, "p50");
        assert_eq!(quantiles[0].1.value, 0.1);
    }

    #[test]
    fn the_stricter_limit_applies() {
        assert_eq!(latency_limit(Some(2.0), Some(1.5)), 1.5);
        assert_eq!(latency_limit(Some(2.0), None), 2.0);
        assert_eq!(latency_limit(None, Some(3.0)), 3.0);
        assert_eq!(latency_limit(None, None), f64::INFINITY);
    }

    #[test]
    fn thin_groups_are_set_aside_and_the_slowest_decides() {
        let fast = grouped("/a", &[(0.5, 200.0), (1.0, 200.0), (f64::INFINITY, 200.0)]);
        let slow = grouped("/b", &[(0.5, 0.0), (1.0, 150.0), (f64::INFINITY, 150.0)]);
        let thin = grouped("/c", &[(0.5, 0.0), (1.0, 1.0), (f64::INFINITY, 1.0)]);
        let all = [fast, slow, thin];
        let (judged, thin) = split_by_traffic(&all, 0.95, 100.0);
        assert_eq!(judged.len(), 2);
        assert_eq!(thin.len(), 1);
        assert_eq!(thin[0].1, 1.0);
        let w = worst(&judged).unwrap();
        assert_eq!(w.histogram.labels["route"], "/b");
        assert!(worst(&[]).is_none());
    }

    #[test]
    fn a_quantile_in_the_inf_bucket_is_over_or_undecidable() {
        let q = |value, above_highest_bound| Quantile {
            value,
            forced_monotonic: false,
            fixed_precision: false,
            above_highest_bound,
        };
        assert_eq!(latency(&q(1.0, false), 2.0), LatencyVerdict::Within);
        assert_eq!(latency(&q(2.0, false), 2.0), LatencyVerdict::Within);
        assert_eq!(latency(&q(2.5, false), 2.0), LatencyVerdict::Over);
        assert_eq!(latency(&q(1.0, true), 2.0), LatencyVerdict::Undecidable);
        assert_eq!(latency(&q(2.0, true), 2.0), LatencyVerdict::Over);
    }

    #[test]
    fn boundary_advice_only_off_the_bounds() {
        let h = histogram(&[(1.0, 90.0), (2.5, 99.0), (f64::INFINITY, 100.0)]);
        assert_eq!(boundary_advice(&h, 0.95, 2.5), None);
        let advice = boundary_advice(&h, 0.95, 2.0).unwrap();
        assert!(advice.contains("not a bucket boundary"), "{advice}");
        assert!(advice.contains("slower than 1s"), "{advice}");
    }

    #[test]
    fn error_ratio_needs_traffic_and_is_inclusive_at_the_limit() {
        let r = |matched, total| Ratio { matched, total };
        assert_eq!(
            error_ratio(&r(0.0, 0.0), 0.0, 0.01),
            RatioVerdict::TooLittle
        );
        assert_eq!(
            error_ratio(&r(1.0, 50.0), 100.0, 0.01),
            RatioVerdict::TooLittle
        );
        assert_eq!(
            error_ratio(&r(1.0, 100.0), 100.0, 0.01),
            RatioVerdict::Within(0.01)
        );
        assert_eq!(
            error_ratio(&r(2.0, 100.0), 100.0, 0.01),
            RatioVerdict::Over(0.02)
        );
    }
}
