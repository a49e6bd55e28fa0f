//! Quantiles, deltas, rates and ratios, against hand-derived Prometheus
//! semantics (the real server comparison is in `metrics_prometheus.rs`).

use escola_runbook_checks::metrics::compute::{
    Bucket, Labels, Point, Series, StatusMatcher, bucket_quantile, counter_delta, error_ratio,
    extrapolated_rate, histograms, sum_by, window_delta,
};

fn b(upper_bound: f64, count: f64) -> Bucket {
    Bucket { upper_bound, count }
}

fn s(labels: &[(&str, &str)], value: f64) -> Series {
    Series {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
    }
}

#[test]
fn interpolates_linearly_inside_the_bucket() {
    // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, 100 ≤ 1.
    let buckets = [
        b(0.1, 50.0),
        b(0.5, 90.0),
        b(1.0, 100.0),
        b(f64::INFINITY, 100.0),
    ];
    // P50: rank 50, exactly the first bucket's count -> its bound.
    assert_eq!(bucket_quantile(0.5, &buckets).value, 0.1);
    // P75: rank 75 in (0.1, 0.5]: 0.1 + 0.4 * (25 / 40).
    assert_eq!(
        bucket_quantile(0.75, &buckets).value,
        0.1 + 0.4 * (25.0 / 40.0)
    );
    // P25: first bucket starts at 0: 0.1 * (25 / 50).
    assert_eq!(bucket_quantile(0.25, &buckets).value, 0.1 * 0.5);
    // Order of input does not matter.
    let mut shuffled = buckets;
    shuffled.reverse();
    assert_eq!(
        bucket_quantile(0.75, &shuffled),
        bucket_quantile(0.75, &buckets)
    );
}

#[test]
fn special_cases_match_prometheus() {
    let buckets = [b(1.0, 10.0), b(f64::INFINITY, 10.0)];
    assert!(bucket_quantile(f64::NAN, &buckets).value.is_nan());
    assert_eq!(bucket_quantile(-0.1, &buckets).value, f64::NEG_INFINITY);
    assert_eq!(bucket_quantile(1.1, &buckets).value, f64::INFINITY);
    // No +Inf bucket, a single bucket, no observations: NaN.
    assert!(
        bucket_quantile(0.5, &[b(1.0, 3.0), b(2.0, 5.0)])
            .value
            .is_nan()
    );
    assert!(
        bucket_quantile(0.5, &[b(f64::INFINITY, 5.0)])
            .value
            .is_nan()
    );
    assert!(
        bucket_quantile(0.5, &[b(1.0, 0.0), b(f64::INFINITY, 0.0)])
            .value
            .is_nan()
    );
    assert!(bucket_quantile(0.5, &[]).value.is_nan());
    // Everything in +Inf: the highest finite bound.
    let all_inf = [b(0.5, 0.0), b(2.5, 0.0), b(f64::INFINITY, 7.0)];
    let q = bucket_quantile(0.95, &all_inf);
    assert_eq!(q.value, 2.5);
    assert!(q.above_highest_bound, "the true value is above 2.5");
    assert!(!bucket_quantile(0.5, &buckets).above_highest_bound);
    // A first bucket with bound <= 0 returns that bound.
    let negative = [b(-1.0, 5.0), b(1.0, 10.0), b(f64::INFINITY, 10.0)];
    assert_eq!(bucket_quantile(0.2, &negative).value, -1.0);
    // q = 0 and q = 1.
    assert_eq!(
        bucket_quantile(0.0, &[b(1.0, 4.0), b(2.0, 8.0), b(f64::INFINITY, 8.0)]).value,
        0.0
    );
    assert_eq!(
        bucket_quantile(1.0, &[b(1.0, 4.0), b(2.0, 8.0), b(f64::INFINITY, 8.0)]).value,
        2.0
    );
}

#[test]
fn repairs_buckets_as_prometheus_does() {
    // Non-monotonic: 10, 8 (!), 20 -> flattened to 10, 10, 20.
    let broken = [
        b(1.0, 10.0),
        b(2.0, 8.0),
        b(4.0, 20.0),
        b(f64::INFINITY, 20.0),
    ];
    let q = bucket_quantile(0.5, &broken);
    assert!(q.forced_monotonic);
    // rank 10 -> first bucket reaching 10 is le=1.
    assert_eq!(q.value, 1.0);
    let q = bucket_quantile(0.75, &broken);
    // rank 15 in (2, 4] with counts 10 -> 20: 2 + 2 * (5 / 10).
    assert_eq!(q.value, 3.0);
    // Equal bounds are merged by adding counts (le="1" and le="1.0").
    let dup = [b(1.0, 2.0), b(1.0, 3.0), b(f64::INFINITY, 10.0)];
    assert_eq!(bucket_quantile(0.5, &dup).value, 1.0);
    // A relative difference below 1e-12 is float noise, not a decrease.
    let noisy = [b(1.0, 10.0), b(2.0, 10.0 - 1e-14), b(f64::INFINITY, 20.0)];
    let q = bucket_quantile(0.5, &noisy);
    assert!(q.fixed_precision && !q.forced_monotonic);
}

#[test]
fn groups_buckets_into_histograms_and_sums_by_labels() {
    let series = vec![
        s(&[("route", "/a"), ("method", "GET"), ("le", "1")], 3.0),
        s(&[("route", "/a"), ("method", "GET"), ("le", "+Inf")], 4.0),
        s(&[("route", "/a"), ("method", "POST"), ("le", "1")], 1.0),
        s(&[("route", "/a"), ("method", "POST"), ("le", "+Inf")], 6.0),
        s(&[("route", "/b"), ("method", "GET"), ("le", "1.0")], 2.0),
        s(&[("route", "/b"), ("method", "GET"), ("le", "+Inf")], 2.0),
        s(
            &[("route", "/b"), ("method", "GET"), ("le", "not-a-number")],
            99.0,
        ),
    ];
    let raw = histograms::<&str>(&series, None);
    assert_eq!(raw.len(), 3, "one per label set without le");
    let by_route = histograms(&series, Some(&["route"]));
    assert_eq!(by_route.len(), 2);
    assert_eq!(
        by_route[0].labels.get("route").map(String::as_str),
        Some("/a")
    );
    assert_eq!(by_route[0].count(), 10.0);
    assert_eq!(by_route[1].count(), 2.0);
    assert_eq!(by_route[0].share_above(1.0), Some(0.6));
    assert_eq!(by_route[0].share_above(0.7), None, "0.7 is not a bound");
    let all = histograms::<&str>(&series, Some(&[]));
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].count(), 12.0);
    assert!(all[0].labels.is_empty());

    let summed = sum_by(&series, &["method"]);
    let get: f64 = summed
        .iter()
        .find(|s| s.labels.get("method").map(String::as_str) == Some("GET"))
        .unwrap()
        .value;
    assert_eq!(get, 3.0 + 4.0 + 2.0 + 2.0 + 99.0);
}

#[test]
fn counter_deltas_handle_resets_and_new_series() {
    let before = vec![s(&[("status", "200")], 100.0), s(&[("status", "500")], 7.0)];
    let after = vec![
        s(&[("status", "200")], 130.0),
        s(&[("status", "500")], 2.0), // reset: restarted and counted 2
        s(&[("status", "503")], 4.0), // new series: counted from zero
    ];
    let d = counter_delta(&before, &after);
    let values: Vec<f64> = d.iter().map(|s| s.value).collect();
    assert_eq!(values, [30.0, 2.0, 4.0]);

    // Over a window: 10 -> 15 -> 3 (reset) -> 8: 5 + 3 + 5 = 13.
    let scrapes: Vec<Vec<Series>> = [10.0, 15.0, 3.0, 8.0]
        .iter()
        .map(|v| vec![s(&[("status", "200")], *v)])
        .collect();
    assert_eq!(window_delta(&scrapes)[0].value, 13.0);
    assert!(window_delta(&[]).is_empty());
}

#[test]
fn error_ratio_uses_anchored_promql_matching() {
    let counters = vec![
        s(&[("status", "200")], 900.0),
        s(&[("status", "503")], 60.0),
        s(&[("status", "500")], 30.0),
        s(&[("status", "5031")], 5.0), // not 5.. (anchored)
        s(&[("status", "429")], 5.0),
        s(&[], 0.0),
    ];
    let r = error_ratio(&counters, "status", &StatusMatcher::five_xx());
    assert_eq!((r.matched, r.total), (90.0, 1000.0));
    assert_eq!(r.value(), 0.09);
    let with_429 = StatusMatcher::new("5..|429").unwrap();
    assert_eq!(error_ratio(&counters, "status", &with_429).matched, 95.0);
    let compiled = StatusMatcher::new("5..").unwrap();
    for v in ["500", "5xx", "50", "5000", "", "5\n0"] {
        assert_eq!(
            compiled.matches(v),
            StatusMatcher::five_xx().matches(v),
            "the built-in 5.. must agree with the regex on {v:?}"
        );
    }
    assert!(StatusMatcher::new("5..(").is_err());
    assert!(error_ratio(&[], "status", &compiled).value().is_nan());
}

#[test]
fn extrapolated_rate_matches_promql_rules() {
    // Samples every 10s inside a 60s range ending at t=60s.
    let pts: Vec<Point> = (1..=6)
        .map(|i| Point {
            t: i * 10_000,
            v: 100.0 + 10.0 * i as f64,
        })
        .collect();
    // first at 10s (10s from start, < 1.1 * 10s): extrapolate to start;
    // last at 60s = end. increase = 50 * (50 + 10 + 0) / 50 = 60.
    let inc = extrapolated_rate(&pts, 0, 60_000, true, false).unwrap();
    assert_eq!(inc, 60.0);
    let rate = extrapolated_rate(&pts, 0, 60_000, true, true).unwrap();
    assert_eq!(rate, 1.0);
    // A counter starting near zero is not extrapolated below zero:
    // values 1, 11, ... 51 -> zero point 1s before the first sample.
    let low: Vec<Point> = pts
        .iter()
        .map(|p| Point {
            t: p.t,
            v: p.v - 109.0,
        })
        .collect();
    let inc = extrapolated_rate(&low, 0, 60_000, true, false).unwrap();
    assert_eq!(inc, 50.0 * (50.0 + 1.0) / 50.0);
    // A reset adds the value before it.
    let reset = [
        Point { t: 0, v: 5.0 },
        Point { t: 10_000, v: 8.0 },
        Point { t: 20_000, v: 2.0 },
    ];
    let inc = extrapolated_rate(&reset, 0, 20_000, true, false).unwrap();
    assert_eq!(inc, 8.0 - 5.0 + 2.0);
    assert_eq!(extrapolated_rate(&reset[..1], 0, 1, true, true), None);
}

#[test]
fn labels_are_sorted_like_prometheus() {
    let l: Labels = [("b", "1"), ("a", "2")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(l.keys().collect::<Vec<_>>(), ["a", "b"]);
}
