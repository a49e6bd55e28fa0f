//! Our numbers against a real Prometheus (Debian package `prometheus`):
//! the test serves fixed exposition text, starts Prometheus on loopback
//! scraping it every second, and compares `histogram_quantile`, `sum by`,
//! the 5xx ratio and `rate`/`increase` (with a counter reset) with our
//! computation on the same data.
//!
//! Without a `prometheus` binary the test is skipped with a reason, unless
//! `ESCOLA_REQUIRE_SERVICES=1`, where it fails.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use escola_runbook_checks::metrics::compute::{self, Point, StatusMatcher};
use escola_runbook_checks::metrics::parse::{Format, parse};
use escola_runbook_checks::metrics::source::{QueryData, QueryResponse};
use escola_runbook_checks::metrics::{
    MetricsQuery, MetricsSource, PrometheusSource, ScrapeSource, Window,
};
use support::{Response, serve};

const TOKEN: &str = "scrape-token-for-prometheus";

const PAYLOAD: &str = r#"# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{case="normal",le="0.05"} 24
http_request_duration_seconds_bucket{case="normal",le="0.1"} 33.5
http_request_duration_seconds_bucket{case="normal",le="0.25"} 70
http_request_duration_seconds_bucket{case="normal",le="0.5"} 88.25
http_request_duration_seconds_bucket{case="normal",le="1"} 97
http_request_duration_seconds_bucket{case="normal",le="2.5"} 99.5
http_request_duration_seconds_bucket{case="normal",le="+Inf"} 100
http_request_duration_seconds_bucket{case="empty",le="0.1"} 0
http_request_duration_seconds_bucket{case="empty",le="1"} 0
http_request_duration_seconds_bucket{case="empty",le="+Inf"} 0
http_request_duration_seconds_bucket{case="nonmonotonic",le="0.1"} 10
http_request_duration_seconds_bucket{case="nonmonotonic",le="0.25"} 8
http_request_duration_seconds_bucket{case="nonmonotonic",le="0.5"} 30
http_request_duration_seconds_bucket{case="nonmonotonic",le="1"} 25
http_request_duration_seconds_bucket{case="nonmonotonic",le="+Inf"} 40
http_request_duration_seconds_bucket{case="all_in_inf",le="0.1"} 0
http_request_duration_seconds_bucket{case="all_in_inf",le="1"} 0
http_request_duration_seconds_bucket{case="all_in_inf",le="+Inf"} 12
http_request_duration_seconds_bucket{case="inf_only",le="+Inf"} 5
http_request_duration_seconds_bucket{case="no_inf",le="0.1"} 3
http_request_duration_seconds_bucket{case="no_inf",le="1"} 5
http_request_duration_seconds_bucket{case="negative",le="-1"} 2
http_request_duration_seconds_bucket{case="negative",le="0"} 3
http_request_duration_seconds_bucket{case="negative",le="1"} 10
http_request_duration_seconds_bucket{case="negative",le="+Inf"} 10
http_request_duration_seconds_bucket{case="dup_bounds",le="1"} 2
http_request_duration_seconds_bucket{case="dup_bounds",le="1.0"} 3
http_request_duration_seconds_bucket{case="dup_bounds",le="2"} 9
http_request_duration_seconds_bucket{case="dup_bounds",le="+Inf"} 10
http_request_duration_seconds_bucket{case="escaped",path="C:\\dir \"q\"\nnext",le="0.5"} 1
http_request_duration_seconds_bucket{case="escaped",path="C:\\dir \"q\"\nnext",le="1"} 3
http_request_duration_seconds_bucket{case="escaped",path="C:\\dir \"q\"\nnext",le="+Inf"} 4
http_request_duration_seconds_bucket{case="summed",route="/a",le="0.1"} 3
http_request_duration_seconds_bucket{case="summed",route="/a",le="0.7"} 7
http_request_duration_seconds_bucket{case="summed",route="/a",le="+Inf"} 9
http_request_duration_seconds_bucket{case="summed",route="/b",le="0.1"} 1
http_request_duration_seconds_bucket{case="summed",route="/b",le="0.7"} 13
http_request_duration_seconds_bucket{case="summed",route="/b",le="+Inf"} 17
http_request_duration_seconds_sum{case="normal"} 23.5
http_request_duration_seconds_count{case="normal"} 100
# TYPE http_requests_total counter
http_requests_total{route="/v1/escolas",status="200"} 1000
http_requests_total{route="/v1/escolas",status="404"} 12
http_requests_total{route="/v1/escolas",status="500"} 7
http_requests_total{route="/v1/cidades",status="503"} 5
http_requests_total{route="/v1/cidades",status="200"} 37.5
http_requests_total{route="/v1/cidades",status="5031"} 2
"#;

/// The counter Prometheus sees grow scrape by scrape, resetting every
/// fourth scrape (so every 4s window holds a reset).
fn ticks(n: usize) -> f64 {
    1.5 + 6.125 * (n % 4) as f64
}

fn same(ours: f64, theirs: f64) -> bool {
    if ours.is_nan() || theirs.is_nan() {
        return ours.is_nan() && theirs.is_nan();
    }
    ours == theirs || ((ours - theirs) / theirs).abs() <= 1e-12
}

fn vector(r: QueryResponse) -> Vec<(BTreeMap<String, String>, f64)> {
    match r.data {
        QueryData::Vector(v) => v.into_iter().map(|s| (s.metric, s.value.value)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

async fn wait_for(api: &PrometheusSource, promql: &str, min: f64, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(r) = api.query(promql, None).await {
            if let QueryData::Vector(v) = r.data {
                if v.first().is_some_and(|s| s.value.value >= min) {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantiles_ratios_and_rates_equal_prometheus() {
    let scrapes = Arc::new(AtomicUsize::new(0));
    let seen = scrapes.clone();
    let app = serve(move |req| match req.path.as_str() {
        "/metrics" if req.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")) => {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Response::metrics(format!(
                "{PAYLOAD}# TYPE ticks_total counter\nticks_total {}\n",
                ticks(n)
            ))
        }
        "/fixed" => Response::metrics(PAYLOAD),
        _ => Response::status(401, "unauthorized"),
    });

    let Some(prometheus) = support::prometheus(app.addr, TOKEN) else {
        return;
    };
    let api = PrometheusSource::new(prometheus.url.clone());
    // Enough samples for rate(ticks_total[4s]) two seconds ago to cover its
    // whole range (the series must start before the range does).
    assert!(
        wait_for(
            &api,
            "count_over_time(ticks_total[1m])",
            9.0,
            Duration::from_secs(40)
        )
        .await,
        "Prometheus at {} never scraped the test target",
        prometheus.url
    );

    let exposition = parse(PAYLOAD, Format::Prometheus).unwrap();
    let buckets = compute::series(&exposition, "http_request_duration_seconds_bucket");

    // histogram_quantile on every raw series, for several quantiles.
    let ours = compute::histograms::<&str>(&buckets, None);
    let mut compared = 0;
    for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
        let theirs = vector(
            api.query(
                &format!("histogram_quantile({q}, http_request_duration_seconds_bucket)"),
                None,
            )
            .await
            .unwrap(),
        );
        assert_eq!(theirs.len(), ours.len(), "q={q}: one result per series");
        for (mut labels, value) in theirs {
            labels.remove("job");
            labels.remove("instance");
            let case = &labels["case"];
            let h = ours
                .iter()
                .find(|h| h.labels == labels)
                .unwrap_or_else(|| panic!("no series like {labels:?}"));
            let mine = h.quantile(q).value;
            assert!(
                same(mine, value),
                "case {case}, q={q}: ours {mine:?}, Prometheus {value:?}"
            );
            if case == "escaped" {
                assert_eq!(
                    labels["path"], h.labels["path"],
                    "unescaped label values agree"
                );
                assert_eq!(labels["path"], "C:\\dir \"q\"\nnext");
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 7 * 11);

    // sum by (case, le) then the quantile.
    let theirs = vector(
        api.query(
            "histogram_quantile(0.95, sum by (case, le) (http_request_duration_seconds_bucket))",
            None,
        )
        .await
        .unwrap(),
    );
    let summed = compute::histograms(&buckets, Some(&["case"]));
    for (labels, value) in &theirs {
        let h = summed
            .iter()
            .find(|h| h.labels.get("case") == labels.get("case"))
            .unwrap();
        assert!(same(h.quantile(0.95).value, *value), "summed {labels:?}");
    }
    assert!(
        theirs.iter().any(|(l, _)| l["case"] == "summed"),
        "the two-route case was summed"
    );

    // The 5xx ratio.
    let theirs = vector(
        api.query(
            r#"sum(http_requests_total{status=~"5.."}) / sum(http_requests_total)"#,
            None,
        )
        .await
        .unwrap(),
    );
    let counters = compute::series(&exposition, "http_requests_total");
    let ratio = compute::error_ratio(&counters, "status", &StatusMatcher::five_xx());
    assert_eq!(ratio.matched, 12.0, "5031 is not 5..");
    assert!(
        same(ratio.value(), theirs[0].1),
        "ratio {ratio:?} vs {theirs:?}"
    );

    // Both sources behind the trait give the same histograms and ratio.
    let query = MetricsQuery {
        by: Some(vec!["case".into()]),
        window: Window::Cumulative,
        ..MetricsQuery::default()
    };
    let from_prometheus = api.fetch(&query).await.unwrap();
    let from_scrape = ScrapeSource::new(app.url("/fixed"))
        .fetch(&query)
        .await
        .unwrap();
    assert_eq!(
        from_prometheus.histograms.len(),
        from_scrape.histograms.len()
    );
    for (a, b) in from_prometheus
        .histograms
        .iter()
        .zip(&from_scrape.histograms)
    {
        assert_eq!(a.labels, b.labels);
        for q in [0.5, 0.95, 0.99] {
            assert!(
                same(a.quantile(q).value, b.quantile(q).value),
                "{:?} q={q}",
                a.labels
            );
        }
    }
    let five = StatusMatcher::five_xx();
    assert!(same(
        compute::error_ratio(&from_prometheus.counters, "status", &five).value(),
        compute::error_ratio(&from_scrape.counters, "status", &five).value(),
    ));

    // rate() and increase() over raw samples with a counter reset. The
    // window ends two seconds ago, so no scrape can land in it between the
    // queries below; on a loaded machine Prometheus may have skipped
    // scrapes in it, so a window of fewer than 3 samples is passed over for
    // a later one (up to 30 s).
    let started = Instant::now();
    let (now_ms, at, points) = loop {
        let now_ms = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()) as i64
            - 2_000;
        let at = now_ms as f64 / 1000.0;
        let raw = api.query("ticks_total[4s]", Some(at)).await.unwrap();
        let QueryData::Matrix(series) = raw.data else {
            panic!("a range selector gives a matrix");
        };
        let points: Vec<Point> = series[0]
            .values
            .iter()
            .map(|v| Point {
                t: (v.time * 1000.0).round() as i64,
                v: v.value,
            })
            .collect();
        if points.len() >= 3 || started.elapsed() > Duration::from_secs(30) {
            break (now_ms, at, points);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(points.len() >= 3, "{points:?}");
    for (function, is_rate) in [("increase", false), ("rate", true)] {
        let theirs = vector(
            api.query(&format!("{function}(ticks_total[4s])"), Some(at))
                .await
                .unwrap(),
        );
        let mine =
            compute::extrapolated_rate(&points, now_ms - 4000, now_ms, true, is_rate).unwrap();
        assert!(
            same(mine, theirs[0].1),
            "{function}: ours {mine}, Prometheus {} over {points:?}",
            theirs[0].1
        );
    }

    // Errors from the API are surfaced with Prometheus's own message.
    let err = api.query("sum(", None).await.unwrap_err();
    assert!(err.to_string().contains("bad_data"), "{err}");
}
