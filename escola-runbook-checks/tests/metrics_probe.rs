//! Watch probes against the simulator's real `/metrics`: windowed error
//! share, status counts by route, latency quantiles, and a watch that
//! decides a rollback from them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_checks::metrics::SourceConfig;
use escola_runbook_checks::metrics::compute::StatusMatcher;
use escola_runbook_checks::metrics::probe::{Measure, MetricsProbe};
use escola_runbook_core::rules::{Comparison, Probe, Rule, Sample, Window};
use escola_runbook_core::{Check, Ctx, Environment, Secret, Secrets, Status, Watch};
use escola_runbook_testkit::{Simulator, SimulatorConfig};

fn ctx(sim: &Simulator) -> Ctx {
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new(sim.metrics_token()));
    Ctx::standalone(
        Environment::new("test").with("metrics_url", format!("{}/metrics", sim.base_url())),
        secrets,
    )
}

fn source() -> SourceConfig {
    SourceConfig::scrape().token_secret("metrics_token")
}

async fn traffic(sim: &Simulator, path: &str, n: usize) {
    support::traffic(&sim.base_url(), path, n).await;
}

fn value(sample: &Sample) -> f64 {
    match sample {
        Sample::Value { value, .. } => *value,
        other => panic!("expected a value, got {other:?}"),
    }
}

#[tokio::test]
async fn the_error_share_is_measured_over_the_window_only() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let ctx = ctx(&sim);
    // Old traffic, all good: must not dilute the window.
    traffic(&sim, "/v1/cidades", 40).await;
    let probe = MetricsProbe::new(
        source(),
        Measure::ErrorPercent(StatusMatcher::new("5..").unwrap()),
        Duration::ZERO,
    );
    assert!(
        matches!(probe.sample(&ctx).await, Sample::NoData { .. }),
        "the first read has no window"
    );
    sim.faults().set_error_rate(0.25);
    traffic(&sim, "/v1/cidades", 20).await;
    let share = value(&probe.sample(&ctx).await);
    // 20 requests with exactly 5 failing, plus the probe's own scrape (a
    // 200 of /metrics) in the window.
    assert!((share - 5.0 / 21.0 * 100.0).abs() < 1e-9, "share {share}");
    assert!(
        probe
            .query()
            .starts_with("% of http_requests_total with status=~\"5..\""),
        "{}",
        probe.query()
    );
}

#[tokio::test]
async fn counts_by_route_ignore_other_routes() {
    let sim = Simulator::start(SimulatorConfig::rate_limited(5, Duration::from_secs(60)))
        .await
        .unwrap();
    let ctx = ctx(&sim);
    let probe = MetricsProbe::new(
        source(),
        Measure::Count(StatusMatcher::new("429").unwrap()),
        Duration::ZERO,
    )
    .only("route", "/v1/escolas");
    probe.sample(&ctx).await;
    traffic(&sim, "/v1/escolas", 9).await;
    let limited = value(&probe.sample(&ctx).await);
    assert!(
        limited >= 3.0,
        "at least the requests past the limit were refused: {limited}"
    );
    traffic(&sim, "/health", 3).await;
    assert_eq!(
        value(&probe.sample(&ctx).await),
        0.0,
        "no /v1/escolas traffic since"
    );
}

#[tokio::test]
async fn a_quantile_needs_enough_requests() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let ctx = ctx(&sim);
    let probe =
        MetricsProbe::new(source(), Measure::Quantile(0.95), Duration::ZERO).min_requests(10.0);
    probe.sample(&ctx).await;
    traffic(&sim, "/v1/escolas", 3).await;
    match probe.sample(&ctx).await {
        Sample::NoData { reason } => assert!(reason.contains("fewer than 10"), "{reason}"),
        other => panic!("{other:?}"),
    }
    traffic(&sim, "/v1/escolas", 30).await;
    let p95 = value(&probe.sample(&ctx).await);
    assert!(p95 > 0.0 && p95 <= 0.1, "a fast simulator: {p95}");
}

#[tokio::test]
async fn an_unreachable_source_is_an_error_sample() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let ctx = ctx(&sim);
    sim.faults().set_down(true).await.unwrap();
    let probe = MetricsProbe::new(source(), Measure::Quantile(0.95), Duration::ZERO);
    assert!(matches!(probe.sample(&ctx).await, Sample::Error { .. }));
}

#[tokio::test]
async fn a_watch_on_the_simulator_fires_and_fails_inside_the_window() {
    let sim = Arc::new(Simulator::start(SimulatorConfig::default()).await.unwrap());
    sim.faults().set_error_rate(0.5);
    let load = {
        let sim = sim.clone();
        tokio::spawn(async move {
            loop {
                traffic(&sim, "/v1/escolas", 5).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let probe = Arc::new(MetricsProbe::new(
        source(),
        Measure::ErrorPercent(StatusMatcher::new("5..").unwrap()),
        Duration::from_millis(500),
    ));
    let rule = Rule::new(
        "error-5xx",
        "HTTP 5xx > 1%",
        probe,
        Comparison::Above,
        1.0,
        Window::Consecutive { count: 2 },
    )
    .unit("%");
    let watch = Watch::new(
        vec![rule],
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .unwrap()
    .rollback_window(Duration::from_secs(10));
    let outcome = watch.run(&ctx(&sim)).await;
    load.abort();
    assert_eq!(outcome.status, Status::Failed, "{outcome:?}");
    assert!(
        outcome.summary.starts_with("rule `error-5xx` fired at"),
        "{}",
        outcome.summary
    );
    assert!(outcome.summary.contains("% > 1%"), "{}", outcome.summary);
}

#[tokio::test]
async fn a_latency_shift_against_the_recorded_baseline_is_measured_and_only_when_significant() {
    use escola_runbook_checks::metrics::LatencyBaselineCheck;
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    sim.faults().set_latency_spread(Duration::from_millis(10));
    traffic(&sim, "/v1/escolas", 150).await;
    let baseline = LatencyBaselineCheck::new(source()).run(&ctx(&sim)).await;
    assert_eq!(baseline.status, Status::Passed, "{baseline:?}");
    let key = "baseline.latency.histogram";
    let ctx = ctx(&sim).with_value(key, baseline.values[key].clone());
    let probe = MetricsProbe::new(source(), Measure::LatencyShift(key.into()), Duration::ZERO)
        .min_requests(100.0);
    assert!(matches!(probe.sample(&ctx).await, Sample::NoData { .. }));

    // Twice as slow: the window's requests are slower than the baseline's.
    sim.faults().set_latency_spread(Duration::from_millis(20));
    traffic(&sim, "/v1/escolas", 150).await;
    let slower = value(&probe.sample(&ctx).await);
    assert!(slower > 0.1, "{slower}");

    // As fast as before: no significant shift, so 0.
    sim.faults().set_latency_spread(Duration::from_millis(10));
    traffic(&sim, "/v1/escolas", 150).await;
    assert_eq!(value(&probe.sample(&ctx).await), 0.0);

    // Without a recorded baseline the probe cannot measure: an error, never 0.
    let bare = MetricsProbe::new(source(), Measure::LatencyShift(key.into()), Duration::ZERO);
    let plain = self::ctx(&sim);
    bare.sample(&plain).await;
    traffic(&sim, "/v1/escolas", 5).await;
    assert!(matches!(bare.sample(&plain).await, Sample::Error { .. }));
    assert_eq!(
        probe.promql(Duration::from_secs(15)),
        None,
        "no PromQL computes it"
    );
    sim.shutdown().await;
}
