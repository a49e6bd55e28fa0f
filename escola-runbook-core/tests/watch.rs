//! The watch phase on tokio's paused clock: 15-minute rollback windows and
//! 24-hour watches run in milliseconds.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::rules::{AlertState, Comparison, Probe, Rule, Sample, Window};
use escola_runbook_core::*;
use support::*;
use tokio::time::Instant;

const MIN: u64 = 60;

/// A probe whose value is a function of the time since it was made.
struct Timeline {
    query: &'static str,
    start: Instant,
    f: Box<dyn Fn(Duration) -> Sample + Send + Sync>,
}

impl Timeline {
    fn new(
        query: &'static str,
        f: impl Fn(Duration) -> Sample + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Timeline {
            query,
            start: Instant::now(),
            f: Box::new(f),
        })
    }
}

#[async_trait]
impl Probe for Timeline {
    fn query(&self) -> String {
        self.query.into()
    }
    async fn sample(&self, _ctx: &Ctx) -> Sample {
        (self.f)(self.start.elapsed())
    }
}

fn latency_after(from_secs: u64) -> Arc<Timeline> {
    Timeline::new(
        "histogram_quantile(0.95, http_request_duration_seconds)",
        move |t| {
            let mut s = Sample::value(if t.as_secs() >= from_secs { 2.4 } else { 0.4 });
            if let Sample::Value { trace_ids, .. } = &mut s {
                if t.as_secs() >= from_secs {
                    trace_ids.push(format!("trace-{}", t.as_secs() / MIN));
                }
            }
            s
        },
    )
}

fn p95_rule(probe: Arc<Timeline>) -> Rule {
    Rule::new(
        "latency-p95",
        "Latência P95 > 2s por 5 minutos",
        probe,
        Comparison::Above,
        2.0,
        Window::For {
            duration: Duration::from_secs(5 * MIN),
        },
    )
    .unit("s")
}

/// A release, then the watch: a rule firing in the window rolls back the
/// release (a watch alone has changed nothing to roll back).
fn watched(watch: Watch) -> (Runbook, Scripted) {
    let revert = Scripted::passing("revert").mutating();
    let rb = Runbook::builder("watched")
        .phase(deploy_phase("release"))
        .phase(
            Phase::watch("monitoring", "Monitoramento")
                .rollback_on_failure()
                .step(Step::check("watch", "Watch", watch)),
        )
        .phase(rollback_phase(revert.clone()))
        .build()
        .unwrap();
    (rb, revert)
}

#[tokio::test(start_paused = true)]
async fn a_rule_firing_inside_the_window_rolls_back_with_its_reason() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(2 * MIN))],
        Duration::from_secs(15),
        Duration::from_secs(24 * 3600),
    );
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb).run().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(7 * MIN),
        "pending at 2m, firing 5m later"
    );
    assert_eq!(revert.calls(), 1);
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
    let reason = record.rollback.as_ref().unwrap();
    assert_eq!(reason.step, "watch");
    assert_eq!(
        reason.summary,
        "rule `latency-p95` fired at 7m (inside the 15m rollback window): 2.4s > 2s — condition \
         histogram_quantile(0.95, http_request_duration_seconds) > 2s, for 5m; first breach at 2m; \
         Trace-Ids: trace-2, trace-3, trace-4, trace-5, trace-6, trace-7"
    );
    let transitions: Vec<(AlertState, AlertState, u64)> = record
        .rule_transitions
        .iter()
        .map(|t| {
            (
                t.transition.from,
                t.transition.to,
                t.transition.offset_ms / 1000,
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [(AlertState::Pending, AlertState::Firing, 420)]
    );
    assert!(report::render_markdown(&record).contains("**Rollback triggered** by step `watch`"));
}

#[tokio::test(start_paused = true)]
async fn after_the_window_a_firing_rule_only_alerts() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(20 * MIN))],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    );
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb).run().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(30 * MIN),
        "watched to the end"
    );
    assert_eq!(revert.calls(), 0);
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Warned);
    assert_eq!(
        outcome.summary,
        "alerts fired after the rollback window (alert only): latency-p95 at 25m (2.4s > 2s)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_never_measured_is_a_check_error_not_a_pass() {
    let down = Timeline::new("up", |_| Sample::Error {
        message: "connection refused".into(),
    });
    let rule = Rule::new(
        "error-rate",
        "HTTP 5xx > 1%",
        down,
        Comparison::Above,
        1.0,
        Window::For {
            duration: Duration::from_secs(300),
        },
    )
    .alert_only();
    let watch = Watch::new(
        vec![rule],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    );
    let (rb, _) = watched(watch);
    let record = executor(rb).run().await.unwrap();
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::CheckError);
    assert_eq!(
        outcome.summary,
        "never measured in 30m: error-rate (error: connection refused)"
    );
    // "no data is not healthy": after 3 errors the rule counted as breached.
    assert!(
        record
            .rule_transitions
            .iter()
            .any(|t| t.transition.to == AlertState::Firing)
    );
}

#[tokio::test(start_paused = true)]
async fn consecutive_rate_limits_fire_on_the_third_in_a_row() {
    // 429s seen at evaluations 2, 4, 5, 6 (0-based).
    let limited = Timeline::new("rate_limited(/v1/escolas)", |t| {
        let n = t.as_secs() / 15;
        Sample::value(if [2, 4, 5, 6].contains(&n) { 1.0 } else { 0.0 })
    });
    let rule = Rule::new(
        "rate-limit",
        "Rate Limit /v1/escolas 3x seguidas",
        limited,
        Comparison::AtLeast,
        1.0,
        Window::Consecutive { count: 3 },
    );
    let watch = Watch::new(
        vec![rule],
        Duration::from_secs(15),
        Duration::from_secs(60 * MIN),
    );
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb).run().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(6 * 15));
    assert_eq!(revert.calls(), 1);
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn a_24_hour_watch_keeps_a_bounded_record() {
    // Flaps every evaluation: the worst case for a run-length record.
    let flapping = Timeline::new("flap", |t| {
        Sample::value(if (t.as_secs() / 15) % 2 == 0 {
            0.1
        } else {
            9.0
        })
    });
    let rule = Rule::new(
        "flap",
        "Flap",
        flapping,
        Comparison::Above,
        5.0,
        Window::For {
            duration: Duration::from_secs(300),
        },
    )
    .alert_only();
    let watch = Watch::new(
        vec![rule],
        Duration::from_secs(15),
        Duration::from_secs(24 * 3600),
    )
    .max_segments(100);
    let (rb, _) = watched(watch);
    let started = Instant::now();
    let record = executor(rb).run().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(24 * 3600));
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Passed);
    let summary = &outcome
        .evidence
        .iter()
        .find(|e| e.label == "flap summary")
        .unwrap()
        .value;
    assert_eq!(
        summary,
        "flap: inactive, 5761 evaluations (2880 breached, 0 could not measure); min 0.1, max 9, last 0.1"
    );
    let timeline = &outcome
        .evidence
        .iter()
        .find(|e| e.label == "flap timeline")
        .unwrap()
        .value;
    assert!(
        timeline.starts_with("(5661 earlier evaluations folded into the totals)"),
        "{timeline}"
    );
    assert!(
        timeline.lines().count() <= 31,
        "the evidence shows at most 30 segments"
    );
    assert!(
        serde_json::to_string(&record).unwrap().len() < 20_000,
        "a 24-hour record stays small"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_evaluates_each_rule_once_without_waiting() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(0))],
        Duration::from_secs(15),
        Duration::from_secs(24 * 3600),
    );
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb)
        .options(RunOptions {
            dry_run: true,
            run_id: Some("dry".into()),
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(revert.calls(), 0);
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Warned);
    assert!(
        outcome
            .summary
            .starts_with("dry-run: each of 1 rules evaluated once"),
        "{}",
        outcome.summary
    );
}

#[tokio::test(start_paused = true)]
async fn the_watch_is_plotted_beside_the_reports() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(20 * MIN))],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    );
    let (rb, _) = watched(watch);
    let dir = tempfile::tempdir().unwrap();
    let record = executor(rb).run_root(dir.path()).run().await.unwrap();
    let series = &step_of(&record, "watch").outcome.as_ref().unwrap().series[0];
    assert_eq!(
        series.points.len(),
        121,
        "one point per evaluation, 30 min at 15 s"
    );
    assert_eq!(series.limit, Some(2.0));
    let written = report::write_reports(&record, &dir.path().join("run-1")).unwrap();
    let svg_path = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "svg"))
        .unwrap();
    assert!(
        svg_path.ends_with("plots/watch--latency-p95.svg"),
        "{svg_path:?}"
    );
    let svg = std::fs::read_to_string(svg_path).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(
        report::render_markdown(&record)
            .contains("- plot: ![latency-p95](plots/watch--latency-p95.svg)")
    );
}

#[tokio::test(start_paused = true)]
async fn errors_for_four_minutes_then_recovery_fire_nothing() {
    let errors = Timeline::new("5xx %", |t| {
        Sample::value(if t.as_secs() < 4 * MIN { 3.0 } else { 0.2 })
    });
    let rule = Rule::new(
        "error-5xx",
        "HTTP 5xx > 1% por 5 minutos",
        errors,
        Comparison::Above,
        1.0,
        Window::For {
            duration: Duration::from_secs(5 * MIN),
        },
    )
    .unit("%");
    let watch = Watch::new(
        vec![rule],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    );
    let (rb, revert) = watched(watch);
    let record = executor(rb).run().await.unwrap();
    assert_eq!(revert.calls(), 0);
    assert!(
        record.rule_transitions.is_empty(),
        "pending never reached firing: {:?}",
        record.rule_transitions
    );
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Passed);
    let summary = &outcome
        .evidence
        .iter()
        .find(|e| e.label == "error-5xx summary")
        .unwrap()
        .value;
    assert_eq!(
        summary,
        "error-5xx: inactive, 121 evaluations (16 breached, 0 could not measure); min 0.2%, max 3%, last 0.2%"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_may_run_whole_in_a_dry_run_when_asked() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(2 * MIN))],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    )
    .in_dry_run(true);
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb)
        .options(RunOptions {
            dry_run: true,
            run_id: Some("dry".into()),
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(7 * MIN),
        "watched, not rehearsed"
    );
    assert_eq!(
        revert.calls(),
        0,
        "the rollback is rehearsed, its actions are not run"
    );
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}
