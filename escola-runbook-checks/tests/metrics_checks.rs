//! The metrics checks against a local HTTP server: statuses that never
//! blur, values recorded for later steps, windows on tokio's paused clock,
//! the bucket-boundary lint, and secrets kept out of outcomes.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use escola_runbook_checks::metrics::checks::{
    CompareCheck, ErrorRatioCheck, LatencyBaselineCheck, LatencyCheck, MetricsEndpointCheck,
    SourceConfig, boundary_advice,
};
use escola_runbook_checks::metrics::compute::{Bucket, Histogram};
use escola_runbook_checks::metrics::{MetricsSource, PrometheusSource, Window};
/// `KEY=VALUE` pairs as the catalog takes them.
fn pairs<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    items
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
use escola_runbook_core::{Check, Ctx, Environment, Outcome, Secret, Secrets, Status};
use support::{Response, serve};

const TOKEN: &str = "s3cret-metrics-token";

fn ctx(url: &str) -> Ctx {
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new(TOKEN));
    Ctx::standalone(Environment::new("test").with("metrics_url", url), secrets)
}

fn histogram_text(buckets: &[(&str, f64)], requests: &[(&str, f64)]) -> String {
    let mut out = String::from("# TYPE http_request_duration_seconds histogram\n");
    for (le, count) in buckets {
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {count}\n"
        ));
    }
    out.push_str("# TYPE http_requests_total counter\n");
    for (status, count) in requests {
        out.push_str(&format!(
            "http_requests_total{{status=\"{status}\"}} {count}\n"
        ));
    }
    out
}

fn evidence<'a>(o: &'a Outcome, label: &str) -> Option<&'a str> {
    o.evidence
        .iter()
        .find(|e| e.label == label)
        .map(|e| e.value.as_str())
}

fn assert_no_token(o: &Outcome) {
    let json = serde_json::to_string(o).unwrap();
    assert!(!json.contains(TOKEN), "token leaked into {json}");
}

fn scrape() -> SourceConfig {
    // No per-request timer: on the paused clock it would fire at once.
    SourceConfig::scrape().timeout(Duration::ZERO)
}

/// A server requiring the token and answering with `pages` in turn (the
/// last one repeated).
fn app(pages: Vec<String>) -> support::Server {
    let n = Arc::new(AtomicUsize::new(0));
    serve(move |req| {
        if req.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return Response::status(401, "missing or bad token");
        }
        let i = n.fetch_add(1, Ordering::SeqCst).min(pages.len() - 1);
        Response::metrics(pages[i].clone())
    })
}

#[tokio::test]
async fn endpoint_passes_with_the_token_and_reports_what_it_saw() {
    let server = app(vec![histogram_text(
        &[("1", 1.0), ("+Inf", 2.0)],
        &[("200", 2.0)],
    )]);
    let check = MetricsEndpointCheck::new()
        .require(["http_requests_total", "http_request_duration_seconds"])
        .reject_anonymous(true);
    let o = check.run(&ctx(&server.url("/metrics"))).await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert!(o.summary.contains("HTTP 200"), "{}", o.summary);
    assert_eq!(evidence(&o, "samples"), Some("3"));
    assert_eq!(evidence(&o, "families"), Some("2"));
    assert!(evidence(&o, "without token").unwrap().contains("401"));
    assert_no_token(&o);
}

#[tokio::test]
async fn endpoint_statuses_never_blur() {
    let server = app(vec!["up 1\n".into()]);
    let url = server.url("/metrics");

    // Wrong token: measured, and the endpoint refused.
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new("wrong-token"));
    let wrong = Ctx::standalone(Environment::new("t").with("metrics_url", &url), secrets);
    let o = MetricsEndpointCheck::new().run(&wrong).await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.summary.contains("401"), "{}", o.summary);
    assert!(!serde_json::to_string(&o).unwrap().contains("wrong-token"));

    // No token provided: cannot check.
    let none = Ctx::standalone(
        Environment::new("t").with("metrics_url", &url),
        Secrets::new(),
    );
    let o = MetricsEndpointCheck::new().run(&none).await;
    assert_eq!(o.status, Status::CheckError);
    assert!(
        o.summary
            .starts_with("secret `metrics_token` (the Bearer token for http://"),
        "{}",
        o.summary
    );
    assert!(
        matches!(&o.needs[..], [escola_runbook_core::Need::Secret { name, .. }] if name == "metrics_token"),
        "{:?}",
        o.needs
    );

    // A required metric missing: failed, naming it.
    let o = MetricsEndpointCheck::new()
        .require(["http_requests_total"])
        .run(&ctx(&url))
        .await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.summary.contains("`http_requests_total` is missing"),
        "{}",
        o.summary
    );

    // Nobody listening: could not measure.
    let closed = format!("http://127.0.0.1:{}/metrics", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let o = MetricsEndpointCheck::new().run(&ctx(&closed)).await;
    assert_eq!(o.status, Status::CheckError, "{o:?}");

    // No URL anywhere: a configuration error saying what to set.
    let o = MetricsEndpointCheck::new()
        .run(&Ctx::standalone(Environment::new("t"), Secrets::new()))
        .await;
    assert_eq!(o.status, Status::CheckError);
    assert!(o.summary.contains("metrics_url"), "{}", o.summary);
}

#[tokio::test]
async fn endpoint_with_garbage_is_a_check_error_naming_the_line() {
    let server = app(vec!["ok 1\nhttp_requests_total{status=\"200\" 5\n".into()]);
    let o = MetricsEndpointCheck::new()
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::CheckError, "{o:?}");
    assert!(o.summary.contains("line 2"), "{}", o.summary);
}

#[tokio::test]
async fn open_endpoint_is_a_warning_when_anonymous_access_must_be_refused() {
    let server = serve(|_| Response::metrics("up 1\n"));
    let o = MetricsEndpointCheck::new()
        .reject_anonymous(true)
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::Warned, "{o:?}");
    assert!(o.summary.contains("WITHOUT a token"));
}

#[tokio::test]
async fn baseline_records_quantiles_for_later_steps() {
    // 100 requests: 50 ≤ 0.1s, 90 ≤ 0.5s, 99 ≤ 1s.
    let page = histogram_text(
        &[("0.1", 50.0), ("0.5", 90.0), ("1", 99.0), ("+Inf", 100.0)],
        &[],
    );
    let server = app(vec![page]);
    let o = LatencyBaselineCheck::new(scrape())
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.values["baseline.latency.p50"], serde_json::json!(0.1));
    // P95: rank 95 in (0.5, 1]: 0.5 + 0.5 * 5/9.
    assert_eq!(
        o.values["baseline.latency.p95"].as_f64().unwrap(),
        0.5 + 0.5 * (5.0 / 9.0)
    );
    assert_eq!(o.values["baseline.latency.p99"], serde_json::json!(1.0));
    assert_eq!(o.values["baseline.latency.count"], serde_json::json!(100.0));
    assert!(o.summary.contains("P95 0.7778s"), "{}", o.summary);
    assert_no_token(&o);

    // Too little traffic: no data, and nothing recorded.
    let o = LatencyBaselineCheck::new(scrape())
        .min_requests(500.0)
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::NoData);
    assert!(o.values.is_empty());
    assert!(o.summary.contains("only 100 requests"), "{}", o.summary);

    // No such histogram: no data, naming it.
    let o = LatencyBaselineCheck::new(scrape())
        .histogram("nope_seconds")
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::NoData);
    assert!(o.summary.contains("nope_seconds_bucket"));
}

#[tokio::test(start_paused = true)]
async fn compare_fails_a_release_that_doubled_latency_below_any_fixed_limit() {
    // Before: 900 of 1 000 requests under 0.25 s (P95 about 0.4 s).
    let before = histogram_text(
        &[
            ("0.25", 900.0),
            ("0.5", 990.0),
            ("1", 1000.0),
            ("+Inf", 1000.0),
        ],
        &[],
    );
    let server = app(vec![before.clone()]);
    let baseline = LatencyBaselineCheck::new(scrape())
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(baseline.status, Status::Passed, "{baseline:?}");
    let recorded = baseline.values["baseline.latency.histogram"].clone();
    assert_eq!(recorded["bounds"][3], "+Inf");

    // After, over a 5-minute window: the next 1 000 requests twice as slow,
    // P95 still far below 2 s.
    let slower = histogram_text(
        &[
            ("0.25", 1300.0),
            ("0.5", 1900.0),
            ("1", 2000.0),
            ("+Inf", 2000.0),
        ],
        &[],
    );
    let server = app(vec![before.clone(), slower]);
    let check = CompareCheck::new(scrape());
    assert_eq!(check.describe().needs, ["baseline.latency.histogram"]);
    let o = check
        .run(
            &ctx(&server.url("/metrics"))
                .with_value("baseline.latency.histogram", recorded.clone()),
        )
        .await;
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(
        o.summary
            .contains("after slower than before with probability"),
        "{}",
        o.summary
    );
    assert!(
        o.summary
            .ends_with("(Mann-Whitney, 1 000 vs 1 000 requests): regressed"),
        "{}",
        o.summary
    );
    assert_eq!(evidence(&o, "verdict"), Some("regressed"));
    assert_no_token(&o);

    // The same traffic after: passes.
    let same = histogram_text(
        &[
            ("0.25", 1800.0),
            ("0.5", 1980.0),
            ("1", 2000.0),
            ("+Inf", 2000.0),
        ],
        &[],
    );
    let server = app(vec![before, same]);
    let o = CompareCheck::new(scrape())
        .run(&ctx(&server.url("/metrics")).with_value("baseline.latency.histogram", recorded))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert!(o.summary.ends_with(": unchanged"), "{}", o.summary);

    // No baseline recorded: a check error saying which step records it.
    let o = CompareCheck::new(scrape())
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::CheckError);
    assert!(o.summary.contains("metrics-baseline"), "{}", o.summary);
}

#[tokio::test(start_paused = true)]
async fn latency_over_a_window_uses_the_deltas_between_two_scrapes() {
    // Cumulative counters were terrible before the window (everything slow);
    // in the window, 200 new requests, 196 of them ≤ 1s.
    let before = histogram_text(&[("1", 0.0), ("2.5", 0.0), ("+Inf", 1000.0)], &[]);
    let after = histogram_text(&[("1", 196.0), ("2.5", 199.0), ("+Inf", 1200.0)], &[]);
    let server = app(vec![before, after]);
    let started = tokio::time::Instant::now();
    let check =
        LatencyCheck::new(scrape(), 0.95, 2.5).window(Window::Last(Duration::from_secs(300)));
    let o = check.run(&ctx(&server.url("/metrics"))).await;
    assert_eq!(server.hits(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(300),
        "waited the window on tokio's clock"
    );
    // rank 190 ≤ 196 in (0, 1]: 1 * 190/196.
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.measurements[0].value, 190.0 / 196.0);
    assert!(o.summary.contains("≤ limit 2.5s"), "{}", o.summary);
    assert!(o.summary.contains("(200 requests)"), "{}", o.summary);
    // 2.5 is a bound: the exact share is shown.
    assert!(evidence(&o, "exact").unwrap().contains("0.5%"), "{o:?}");
}

#[tokio::test]
async fn latency_limit_between_buckets_warns_and_offers_the_exact_form() {
    // The runbook's "P95 > 2s" against buckets 1 and 2.5.
    let page = histogram_text(&[("1", 90.0), ("2.5", 98.0), ("+Inf", 100.0)], &[]);
    let server = app(vec![page]);
    let o = LatencyCheck::new(scrape(), 0.95, 2.0)
        .window(Window::Cumulative)
        .run(&ctx(&server.url("/metrics")))
        .await;
    // P95: rank 95 in (1, 2.5]: 1 + 1.5 * 5/8 = 1.9375 ≤ 2, but interpolated.
    assert_eq!(o.status, Status::Warned, "{o:?}");
    assert!(o.summary.contains("1.9375s ≤ limit 2s"), "{}", o.summary);
    let advice = evidence(&o, "advisory").unwrap();
    assert!(advice.contains("not a bucket boundary"), "{advice}");
    assert!(
        advice.contains("share of requests slower than 1s ≤ 5% (measured 10%)"),
        "{advice}"
    );
    assert!(
        advice.contains("share of requests slower than 2.5s ≤ 5% (measured 2%)"),
        "{advice}"
    );

    // Over the limit stays failed; the advisory is still there.
    let o = LatencyCheck::new(scrape(), 0.99, 2.0)
        .window(Window::Cumulative)
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(
        o.summary
            .contains("P99 > 2.5s (in the +Inf bucket; Prometheus reports 2.5s) > limit 2s"),
        "{}",
        o.summary
    );
    assert!(evidence(&o, "advisory").is_some());
}

#[tokio::test]
async fn latency_refuses_to_judge_thin_traffic() {
    let page = histogram_text(&[("1", 3.0), ("+Inf", 4.0)], &[]);
    let server = app(vec![page]);
    let o = LatencyCheck::new(scrape(), 0.95, 1.0)
        .window(Window::Cumulative)
        .min_requests(100.0)
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::NoData, "{o:?}");
    assert!(o.summary.contains("4 requests"), "{}", o.summary);
    assert!(o.summary.contains("at least 100"), "{}", o.summary);
}

#[tokio::test]
async fn latency_by_route_judges_the_worst_group() {
    let page = "\
http_request_duration_seconds_bucket{route=\"/a\",le=\"1\"} 100
http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 100
http_request_duration_seconds_bucket{route=\"/b\",le=\"1\"} 10
http_request_duration_seconds_bucket{route=\"/b\",le=\"+Inf\"} 100
http_request_duration_seconds_bucket{route=\"/c\",le=\"1\"} 1
http_request_duration_seconds_bucket{route=\"/c\",le=\"+Inf\"} 1
";
    let server = app(vec![page.into()]);
    let o = LatencyCheck::new(scrape(), 0.95, 1.0)
        .window(Window::Cumulative)
        .min_requests(50.0)
        .by(["route"])
        .run(&ctx(&server.url("/metrics")))
        .await;
    // /b has 90% of its requests in +Inf: Prometheus says P95 = 1s, which
    // an alert `> 1` would let pass; the true P95 is above 1s.
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(
        o.summary.contains(
            "P95{route=\"/b\"} > 1s (in the +Inf bucket; Prometheus reports 1s) > limit 1s"
        ),
        "{}",
        o.summary
    );
    assert!(
        evidence(&o, "P95{route=\"/c\"}")
            .unwrap()
            .contains("not judged")
    );

    // With a limit above the highest bound, nothing can be concluded.
    let o = LatencyCheck::new(scrape(), 0.95, 2.0)
        .window(Window::Cumulative)
        .min_requests(50.0)
        .by(["route"])
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::CheckError, "{o:?}");
    assert!(
        o.summary.contains("cannot tell whether it is ≤ 2s"),
        "{}",
        o.summary
    );
}

#[tokio::test(start_paused = true)]
async fn error_ratio_over_a_window_handles_a_restart() {
    // Between the scrapes the app restarted: 200 went 5000 -> 480, 500 went
    // 40 -> 20 (both reset), 503 appeared with 5.
    let before = histogram_text(&[], &[("200", 5000.0), ("500", 40.0)]);
    let after = histogram_text(&[], &[("200", 480.0), ("500", 20.0), ("503", 5.0)]);
    let server = app(vec![before, after]);
    let o = ErrorRatioCheck::new(scrape(), 0.01)
        .window(Window::Last(Duration::from_secs(300)))
        .run(&ctx(&server.url("/metrics")))
        .await;
    // 25 of 505.
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert_eq!(o.measurements[0].value, 25.0 / 505.0);
    assert!(
        o.summary.contains("(25 of 505 requests) > limit 1%"),
        "{}",
        o.summary
    );
    assert!(evidence(&o, "how").unwrap().starts_with("2 scrapes"));
}

#[tokio::test]
async fn error_ratio_passes_below_the_limit_and_needs_traffic() {
    let server = app(vec![histogram_text(&[], &[("200", 995.0), ("503", 5.0)])]);
    let url = server.url("/metrics");
    let o = ErrorRatioCheck::new(scrape(), 0.01)
        .window(Window::Cumulative)
        .run(&ctx(&url))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert!(o.summary.contains("0.5%"), "{}", o.summary);
    let o = ErrorRatioCheck::new(scrape(), 0.01)
        .window(Window::Cumulative)
        .min_requests(5000.0)
        .run(&ctx(&url))
        .await;
    assert_eq!(o.status, Status::NoData, "{o:?}");
}

#[tokio::test]
async fn prometheus_source_surfaces_warnings_and_errors() {
    let api = serve(|req| {
        if req.path.contains("bad") {
            return Response {
                status: 400,
                content_type: "application/json",
                body:
                    r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#
                        .into(),
            };
        }
        Response {
            status: 200,
            content_type: "application/json",
            body: r#"{"status":"success","warnings":["partial response: store-2 down"],"data":{"resultType":"vector","result":[
                {"metric":{"status":"200"},"value":[1700000000.5,"990"]},
                {"metric":{"status":"502"},"value":[1700000000.5,"10"]}]}}"#
                .into(),
        }
    });
    let source = SourceConfig::prometheus(api.url("/prom"));
    let o = ErrorRatioCheck::new(source, 0.05).run(&ctx("unused")).await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert!(
        o.summary.contains("1% (10 of 1000 requests)"),
        "{}",
        o.summary
    );
    assert!(
        evidence(&o, "source warning")
            .unwrap()
            .contains("store-2 down")
    );
    assert!(
        evidence(&o, "how")
            .unwrap()
            .contains("increase(http_requests_total[300000ms])")
    );

    let err = PrometheusSource::new(api.url("/bad"))
        .query("sum(", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Prometheus rejected `sum(`: bad_data: parse error at char 5"
    );
    assert!(
        PrometheusSource::new(api.url("/prom"))
            .describe()
            .contains("/prom")
    );
}

#[test]
fn advice_is_silent_on_a_boundary() {
    let h = Histogram {
        labels: Default::default(),
        buckets: vec![
            Bucket {
                upper_bound: 1.0,
                count: 9.0,
            },
            Bucket {
                upper_bound: 2.0,
                count: 10.0,
            },
            Bucket {
                upper_bound: f64::INFINITY,
                count: 10.0,
            },
        ],
    };
    assert_eq!(boundary_advice(&h, 0.95, 2.0), None);
    assert!(boundary_advice(&h, 0.95, 1.5).is_some());
}

#[test]
fn registry_builds_every_metrics_check_and_round_trips_params() {
    for (name, params) in [
        (
            "metrics-endpoint",
            vec![
                ("require", "http_requests_total"),
                ("reject_anonymous", "true"),
            ],
        ),
        (
            "metrics-baseline",
            vec![("window", "1m"), ("min_requests", "10"), ("every", "15s")],
        ),
        (
            "metrics-compare",
            vec![("window", "10m"), ("alpha", "0.001"), ("min_effect", "0.1")],
        ),
        (
            "metrics-latency",
            vec![
                ("threshold", "2s"),
                ("by", "route"),
                ("quantile", "0.99995"),
            ],
        ),
        (
            "metrics-latency",
            vec![("baseline_factor", "1.5"), ("window", "10m")],
        ),
        (
            "metrics-error-ratio",
            vec![
                ("threshold", "0.125%"),
                ("source", "prometheus"),
                ("url", "http://p:9090"),
            ],
        ),
    ] {
        let catalog = escola_runbook_checks::catalog();
        let spec = catalog.find(name).unwrap();
        let check = spec.build_from_pairs(&pairs(params)).unwrap();
        let exported = check.params().expect("metrics checks export their params");
        assert_eq!(exported.check, name);
        let rebuilt = spec.build(exported.params.clone()).unwrap();
        assert_eq!(rebuilt.describe(), check.describe(), "{name}");
        assert_eq!(rebuilt.params().as_ref(), Some(&exported));
        assert!(!check.describe().mutates, "{name} only reads");
        for (k, v) in &exported.params {
            if ["threshold", "quantile"].contains(&k.as_str()) {
                // Typed: a span stays text, ratios and quantiles are numbers.
                assert!(
                    v == "2s" || v == 0.00125 || v == 0.99995 || v == 0.95,
                    "{k}={v} kept exactly"
                );
            }
        }
    }
    let catalog = escola_runbook_checks::catalog();
    let spec = catalog.find("metrics-latency").unwrap();
    let err = spec
        .build_from_pairs(&pairs([("threshold", "fast")]))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("`fast` is not a duration"),
        "{err}"
    );
    let err = spec.build_from_pairs(&pairs([])).err().unwrap();
    assert!(err.to_string().contains("threshold"), "{err}");
    let catalog = escola_runbook_checks::catalog();
    let spec = catalog.find("metrics-error-ratio").unwrap();
    let err = spec
        .build_from_pairs(&pairs([("threshold", "1%"), ("errors", "5..(")]))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("not a valid regular expression"),
        "{err}"
    );
    let d = catalog
        .build_from_pairs("metrics-baseline", &[])
        .unwrap()
        .describe();
    assert!(d.produces.contains(&"baseline.latency.p95".to_string()));
}

#[tokio::test(start_paused = true)]
async fn scraping_every_step_sees_a_restart_that_two_scrapes_miss() {
    use escola_runbook_checks::metrics::{MetricsQuery, ScrapeSource};
    // 1000 -> (restart) 400 -> 1300: two scrapes see +300, three see 400 + 900.
    let pages: Vec<String> = [1000.0, 400.0, 1300.0]
        .iter()
        .map(|v| histogram_text(&[], &[("200", *v)]))
        .collect();
    let query = MetricsQuery {
        histogram: None,
        window: Window::Last(Duration::from_secs(60)),
        ..MetricsQuery::default()
    };
    let token = Secret::new(TOKEN);
    let two = app(vec![pages[0].clone(), pages[2].clone()]);
    let data = ScrapeSource::new(two.url("/metrics"))
        .token(token.clone())
        .timeout(Duration::ZERO)
        .fetch(&query)
        .await
        .unwrap();
    assert_eq!(data.counters[0].value, 300.0);
    let three = app(pages);
    let data = ScrapeSource::new(three.url("/metrics"))
        .token(token)
        .timeout(Duration::ZERO)
        .every(Duration::from_secs(30))
        .fetch(&query)
        .await
        .unwrap();
    assert_eq!(three.hits(), 3);
    assert_eq!(data.counters[0].value, 400.0 + 900.0);
    assert_eq!(data.seconds, Some(60.0));
    assert!(
        data.provenance[0].starts_with("3 scrapes"),
        "{:?}",
        data.provenance
    );
}

#[tokio::test]
async fn latency_against_the_recorded_baseline() {
    // P95 now: rank 95 in (0.5, 1] of 50/90/100 -> 0.5 + 0.5 * 5/10 = 0.75s.
    let page = histogram_text(
        &[("0.1", 50.0), ("0.5", 90.0), ("1", 100.0), ("+Inf", 100.0)],
        &[],
    );
    let server = app(vec![page]);
    let url = server.url("/metrics");
    let check = LatencyCheck::against_baseline(scrape(), 0.95, 1.5).window(Window::Cumulative);
    assert_eq!(check.describe().needs, ["baseline.latency.p95"]);

    // Baseline 0.4s: limit 0.6s, 0.75s is over.
    let o = check
        .run(&ctx(&url).with_value("baseline.latency.p95", serde_json::json!(0.4)))
        .await;
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(o.summary.contains("0.75s > limit 0.6s"), "{}", o.summary);
    assert_eq!(
        evidence(&o, "limit"),
        Some("baseline P95 0.4s × 1.5 = 0.6s")
    );

    // Baseline 0.6s: limit 0.9s; with a fixed 0.7s limit too, the stricter wins.
    let o = check
        .clone()
        .run(&ctx(&url).with_value("baseline.latency.p95", serde_json::json!(0.6)))
        .await;
    assert_eq!(
        o.status,
        Status::Warned,
        "passes, but 0.9s is no bucket bound: {o:?}"
    );
    let o = LatencyCheck::new(scrape(), 0.95, 0.7)
        .baseline_factor(1.5)
        .window(Window::Cumulative)
        .run(&ctx(&url).with_value("baseline.latency.p95", serde_json::json!(0.6)))
        .await;
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(o.summary.contains("> limit 0.7s"), "{}", o.summary);

    // No baseline recorded: cannot judge, and nothing was fetched.
    let hits = server.hits();
    let o = check.run(&ctx(&url)).await;
    assert_eq!(o.status, Status::CheckError, "{o:?}");
    assert!(o.summary.contains("baseline.latency.p95"), "{}", o.summary);
    assert_eq!(server.hits(), hits);
}

#[tokio::test]
async fn openmetrics_answers_are_read_too() {
    let page = "# TYPE http_requests counter
http_requests_total{status=\"200\"} 196
http_requests_created{status=\"200\"} 1.7e9
http_requests_total{status=\"500\"} 4 # {trace_id=\"abc\"} 1 1.7e9
# TYPE http_request_duration_seconds histogram
# UNIT http_request_duration_seconds seconds
http_request_duration_seconds_bucket{le=\"1\"} 200
http_request_duration_seconds_bucket{le=\"+Inf\"} 200
http_request_duration_seconds_count 200
http_request_duration_seconds_sum 12.5
# EOF
";
    let server = serve(move |_| Response {
        status: 200,
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body: page.into(),
    });
    let url = server.url("/metrics");
    let o = MetricsEndpointCheck::new()
        .require(["http_requests_total", "http_request_duration_seconds"])
        .run(&ctx(&url))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(evidence(&o, "format"), Some("OpenMetrics text 1.0"));
    let o = ErrorRatioCheck::new(scrape(), 0.01)
        .window(Window::Cumulative)
        .run(&ctx(&url))
        .await;
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(
        o.summary.contains("(4 of 200 requests) > limit 1%"),
        "{}",
        o.summary
    );
}

#[tokio::test]
async fn credentials_in_the_url_stay_out_of_outcomes() {
    let page = histogram_text(&[("1", 50.0), ("+Inf", 50.0)], &[("200", 50.0)]);
    let server = app(vec![page]);
    let url = format!("http://scraper:pw-in-url-77@{}/metrics", server.addr);
    let o = LatencyBaselineCheck::new(scrape().url(&url))
        .run(&ctx("unused"))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    let o2 = MetricsEndpointCheck::new()
        .source(scrape().url(&url))
        .run(&ctx("unused"))
        .await;
    assert_eq!(o2.status, Status::Passed, "{o2:?}");
    // Unreachable, so the error message names the URL too.
    let down = "http://scraper:pw-in-url-77@127.0.0.1:9/metrics";
    let o3 = LatencyBaselineCheck::new(scrape().url(down))
        .run(&ctx("unused"))
        .await;
    assert_eq!(o3.status, Status::CheckError, "{o3:?}");
    for o in [o, o2, o3] {
        let json = serde_json::to_string(&o).unwrap();
        assert!(!json.contains("pw-in-url-77"), "{json}");
        assert!(json.contains("127.0.0.1"), "the URL is still shown: {json}");
    }
}

#[tokio::test]
async fn answers_larger_than_the_cap_are_check_errors_naming_cap_and_size() {
    let big = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        vec![r#"{"metric":{"status":"200"},"value":[1700000000.5,"990"]}"#; 100].join(",")
    );
    let api = serve(move |_| Response {
        status: 200,
        content_type: "application/json",
        body: big.clone(),
    });
    let err = PrometheusSource::new(api.url("/prom"))
        .max_body(2048)
        .query("up", None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("more than the 2 KiB cap") && text.contains("Content-Length 5"),
        "{text}"
    );
    let page = histogram_text(&[("0.5", 90.0), ("+Inf", 100.0)], &[]).repeat(50);
    let server = app(vec![page]);
    let o = LatencyBaselineCheck::new(scrape().max_body(1024))
        .run(&ctx(&server.url("/metrics")))
        .await;
    assert_eq!(o.status, Status::CheckError, "{o:?}");
    assert!(
        o.summary.contains("more than the 1 KiB cap"),
        "{}",
        o.summary
    );
    let err = escola_runbook_checks::catalog()
        .build_from_pairs("metrics-endpoint", &pairs([("max_body", "12")]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("below 1 KiB"), "{err}");
    use escola_runbook_checks::metrics::source;
    assert_eq!(
        source::parse_bytes(source::DEFAULT_MAX_BODY_TEXT),
        Ok(source::DEFAULT_MAX_BODY)
    );
}
