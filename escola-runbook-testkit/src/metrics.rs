//! The simulator's own Prometheus metrics: what it really served.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::mutex::lock;

/// Upper bounds (seconds) of the `http_request_duration_seconds` buckets:
/// Prometheus' default buckets, so 1 and 2.5 (the runbook's P95 > 2s alert
/// sits between them) are present.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    // Non-cumulative counts per bucket; the last slot is +Inf only.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<(String, String), Histogram>,
}

/// Counters and histograms, updated once per response.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub(crate) fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut inner = lock(&self.inner);
        *inner
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let h = inner
            .durations
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        h.counts[slot] += 1;
        h.sum += secs;
        h.count += 1;
    }

    pub(crate) fn total(&self) -> u64 {
        lock(&self.inner).requests.values().sum()
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let inner = lock(&self.inner);
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total Requests served, by method, route and status code.\n\
             # TYPE http_requests_total counter\n",
        );
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time to answer a request, by method and route.\n\
             # TYPE http_request_duration_seconds histogram\n",
        );
        for ((method, route), h) in &inner.durations {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let m = Metrics::default();
        m.observe("GET", "/v1/escolas", 200, Duration::from_millis(3));
        m.observe("GET", "/v1/escolas", 200, Duration::from_millis(700));
        m.observe("GET", "/v1/escolas", 500, Duration::from_secs(20));
        let text = m.render();
        assert!(text.contains(
            "http_requests_total{method=\"GET\",route=\"/v1/escolas\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "http_requests_total{method=\"GET\",route=\"/v1/escolas\",status=\"500\"} 1\n"
        ));
        let b = |le: &str| {
            let key = format!(
                "http_request_duration_seconds_bucket{{method=\"GET\",route=\"/v1/escolas\",le=\"{le}\"}} "
            );
            let line = text.lines().find(|l| l.starts_with(&key)).unwrap();
            line[key.len()..].parse::<u64>().unwrap()
        };
        assert_eq!(b("0.005"), 1);
        assert_eq!(b("0.5"), 1);
        assert_eq!(b("1"), 2);
        assert_eq!(b("2.5"), 2);
        assert_eq!(b("10"), 2);
        assert_eq!(b("+Inf"), 3);
        assert_eq!(m.total(), 3);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
