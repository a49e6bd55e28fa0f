//! The watch phase on tokio's paused clock: 15-minute rollback windows and
//! 24-hour watches run in milliseconds.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::rules::{AlertState, Comparison, Probe, Rule, RuleAction, Sample, Window};
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
    watched_by(watch, Runbook::builder("watched"))
}

/// `watched`, from `builder` (with approvers who may decide an `ask`).
fn watched_by(watch: Watch, builder: RunbookBuilder) -> (Runbook, Scripted) {
    let revert = Scripted::passing("revert").mutating();
    let rb = builder
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
    )
    .unwrap();
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
async fn an_observed_rule_never_rolls_back_and_records_what_it_would_have_done() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(2 * MIN)).action(RuleAction::Observe)],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    )
    .unwrap();
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb).run().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(30 * MIN),
        "watched to the end instead of rolling back at 7m"
    );
    assert_eq!(revert.calls(), 0, "observe never acts");
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert!(record.rollback.is_none());
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Warned);
    // Fired at 7m of a run whose clock starts at the epoch below.
    let at = (epoch() + chrono::Duration::minutes(7)).format("%H:%M:%S UTC");
    let would = format!("would have rolled back at {at} (2.4s, limit > 2s)");
    assert!(
        outcome.summary.starts_with(&format!(
            "observed rules (action observe) never act: latency-p95 {would} — "
        )),
        "{}",
        outcome.summary
    );
    let evidence = outcome
        .evidence
        .iter()
        .find(|e| e.label == "latency-p95 (observe)")
        .unwrap();
    assert_eq!(evidence.value, would);
    // The firing transition, which notifications read, says it too.
    let fired = &record.rule_transitions[0].transition;
    assert_eq!(fired.to, AlertState::Firing);
    assert_eq!(fired.detail, format!("2.4s > 2s; observe: {would}"));
    assert!(report::render_markdown(&record).contains(&would));
}

fn asking(deadline: Option<u64>, on_deadline: OnDeadline) -> Watch {
    let policy = ApprovalPolicy {
        role: "oncall".into(),
        deadline: deadline.map(|m| Duration::from_secs(m * MIN)),
        on_deadline,
    };
    Watch::new(
        vec![p95_rule(latency_after(2 * MIN)).ask(policy)],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    )
    .unwrap()
}

fn carla(verdict: ApprovalVerdict) -> ApprovalDecision {
    ApprovalDecision {
        step: "watch".into(),
        verdict,
        approver: "carla".into(),
        account: "carla".into(),
        host: "ops-host".into(),
        at: epoch(),
        comment: None,
    }
}

/// Runs `watch` (an `ask` rule firing at 7m); at 8m, `carla` decides if
/// given. Returns the record, the revert's calls and the time it took.
async fn ask_run(watch: Watch, decision: Option<ApprovalVerdict>) -> (RunRecord, usize, Duration) {
    let root = tempfile::tempdir().unwrap();
    let builder = Runbook::builder("watched")
        .approver("ana", ["oncall"])
        .approver("carla", ["oncall"]);
    let (rb, revert) = watched_by(watch, builder);
    let started = Instant::now();
    let run = tokio::spawn(executor(rb).run_root(root.path()).run());
    tokio::time::sleep(Duration::from_secs(8 * MIN)).await;
    assert!(!run.is_finished(), "the watch waits for the approval");
    // The wait is journaled as the step's: `approve RUN watch` finds it.
    let dir = root.path().join("run-1");
    let contents = journal::read_journal(&dir.join(journal::JOURNAL_FILE)).unwrap();
    let waiting = RunRecord::from_events(&contents.events).unwrap();
    let request = decisions::check_decision(&waiting, "watch", "carla").unwrap();
    assert_eq!(request.approvers, ["carla"]);
    if let Some(verdict) = decision {
        decisions::append_decision(&dir, &carla(verdict)).unwrap();
    }
    let record = run.await.unwrap().unwrap();
    (record, revert.calls(), started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn an_asking_rule_rolls_back_once_approved() {
    let (record, reverts, took) = ask_run(
        asking(None, OnDeadline::Reject),
        Some(ApprovalVerdict::Approved),
    )
    .await;
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
    assert_eq!(reverts, 1);
    assert!(took < Duration::from_secs(9 * MIN), "{took:?}");
    let reason = &record.rollback.as_ref().unwrap().summary;
    assert!(
        reason.ends_with(&format!(
            "; asked at {} (2.4s, limit > 2s): rollback approved by carla at 2026-11-29 02:00:00 UTC from ops-host (carla)",
            (epoch() + chrono::Duration::minutes(7)).format("%H:%M:%S UTC")
        )),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_ask_keeps_watching() {
    let (record, reverts, took) = ask_run(
        asking(None, OnDeadline::Approve),
        Some(ApprovalVerdict::Rejected),
    )
    .await;
    assert_eq!(reverts, 0);
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert!(
        took >= Duration::from_secs(30 * MIN),
        "watched to the end: {took:?}"
    );
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Warned);
    let asked = outcome
        .evidence
        .iter()
        .find(|e| e.label == "latency-p95 (ask)")
        .unwrap();
    assert!(
        asked.value.ends_with(
            ": rejected by carla at 2026-11-29 02:00:00 UTC from ops-host (carla); kept watching"
        ),
        "{}",
        asked.value
    );
    assert!(
        outcome
            .summary
            .contains("rollback not approved: latency-p95 asked at"),
        "{}",
        outcome.summary
    );
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_ask_takes_its_default_at_the_deadline() {
    // Default approve: rolls back when the 10 minutes are up.
    let (record, reverts, took) = ask_run(asking(Some(10), OnDeadline::Approve), None).await;
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
    assert_eq!(reverts, 1);
    assert_eq!(
        took,
        Duration::from_secs(17 * MIN),
        "fired at 7m, 10m deadline"
    );
    assert!(
        record.rollback.as_ref().unwrap().summary.contains(
            "rollback no decision before the deadline (2026-11-29 02:17:00 UTC): approve taken"
        ),
        "{:?}",
        record.rollback
    );
    // Default reject: the watch goes on to its end.
    let (record, reverts, took) = ask_run(asking(Some(10), OnDeadline::Reject), None).await;
    assert_eq!((record.verdict, reverts), (Some(Verdict::Succeeded), 0));
    assert!(took >= Duration::from_secs(30 * MIN), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_run_that_does_not_wait_takes_the_ask_default_at_once() {
    let builder = Runbook::builder("watched").approver("carla", ["oncall"]);
    let (rb, revert) = watched_by(asking(None, OnDeadline::Approve), builder);
    let started = Instant::now();
    let record = executor(rb)
        .options(RunOptions {
            run_id: Some("run-1".into()),
            operator: "ana".into(),
            host: "deploy-host".into(),
            no_wait: true,
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(7 * MIN),
        "rolled back as it fired"
    );
    assert_eq!(
        (record.verdict, revert.calls()),
        (Some(Verdict::RolledBack), 1)
    );
    assert!(
        record
            .rollback
            .as_ref()
            .unwrap()
            .summary
            .ends_with("rollback the run does not wait for approvals (--no-wait): approve taken"),
        "{:?}",
        record.rollback
    );
    assert!(
        step_of(&record, "watch").approval.is_none(),
        "nothing was journaled as waiting"
    );
}

#[test]
fn an_asking_rule_without_an_approval_is_refused() {
    let rule = p95_rule(latency_after(0)).action(RuleAction::Ask);
    let err = Watch::new(
        vec![rule],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule `latency-p95` asks before rolling back but names no approval; give it one with Rule::ask"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_window_a_firing_rule_only_alerts() {
    let watch = Watch::new(
        vec![p95_rule(latency_after(20 * MIN))],
        Duration::from_secs(15),
        Duration::from_secs(30 * MIN),
    )
    .unwrap();
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
        "alerts fired without rolling back (alert-only or observed rules, or after the rollback window): \
         latency-p95 at 25m (2.4s > 2s) — the watch ended with rules not healthy: latency-p95 \
         ended firing — last value 2.4s against limit > 2s (41 of 121 evaluations breached; \
         window: for 5m)"
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    .unwrap()
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    let svgs: Vec<_> = written
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    // The phase's chart, then the series' own plot.
    assert_eq!(svgs.len(), 2, "{svgs:?}");
    assert!(svgs[0].ends_with("plots/monitoring.svg"), "{svgs:?}");
    assert!(
        svgs[1].ends_with("plots/watch--latency-p95.svg"),
        "{svgs:?}"
    );
    for path in svgs {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<polyline"),
            "{}",
            &svg[..200.min(svg.len())]
        );
    }
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
    )
    .unwrap();
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
    .unwrap()
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

#[test]
fn a_watch_that_could_never_fire_is_refused_naming_the_rule_and_the_numbers() {
    let rule = |window| {
        Rule::new(
            "p95",
            "P95",
            latency_after(0),
            Comparison::Above,
            2.0,
            window,
        )
    };
    let (every_2s, for_10s) = (Duration::from_secs(2), Duration::from_secs(10));
    let five_minutes = Window::For {
        duration: Duration::from_secs(5 * MIN),
    };
    let err = Watch::new(vec![rule(five_minutes)], every_2s, for_10s).unwrap_err();
    assert_eq!(
        err,
        WatchError::WindowCannotComplete {
            rule: "p95".into(),
            window: five_minutes,
            interval: every_2s,
            duration: for_10s,
            evaluations: 6,
        }
    );
    assert_eq!(
        err.to_string(),
        "rule `p95` fires only after for 5m, but a 10s watch evaluated every 2s has 6 evaluations \
         and ends before that: it could never fire"
    );
    for (window, fits) in [
        (Window::For { duration: for_10s }, true),
        (Window::Consecutive { count: 6 }, true),
        (Window::Consecutive { count: 7 }, false),
        (Window::Cumulative { count: 7 }, false),
        (Window::KOfN { k: 6, n: 20 }, true),
        (Window::KOfN { k: 7, n: 20 }, false),
    ] {
        let result = Watch::new(vec![rule(window)], every_2s, for_10s);
        assert_eq!(result.is_ok(), fits, "{window}");
        if let Err(e) = result {
            assert!(
                e.to_string()
                    .contains(&format!("fires only after {window}, but a 10s watch evaluated every 2s has 6 evaluations")),
                "{e}"
            );
        }
    }
    let err = Watch::new(
        vec![rule(Window::Consecutive { count: 1 })],
        Duration::from_secs(60),
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the watch interval 1m is longer than its duration 5s: it would evaluate once at the start and then wait past the end"
    );
    assert_eq!(
        Watch::new(vec![], Duration::ZERO, for_10s).unwrap_err(),
        WatchError::ZeroInterval
    );
    assert_eq!(
        Watch::new(vec![], every_2s, Duration::ZERO).unwrap_err(),
        WatchError::ZeroDuration
    );
    assert_eq!(
        Schedule::new(every_2s, Duration::from_secs(9))
            .unwrap()
            .evaluations(),
        6
    );
    assert_eq!(Schedule::new(for_10s, for_10s).unwrap().evaluations(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_watch_ending_with_a_rule_pending_warns_with_its_state_value_and_limit() {
    let rule = Rule::new(
        "latency-p95",
        "P95 > 2s for 8s",
        latency_after(4),
        Comparison::Above,
        2.0,
        Window::For {
            duration: Duration::from_secs(8),
        },
    )
    .unit("s");
    let watch = Watch::new(vec![rule], Duration::from_secs(2), Duration::from_secs(10)).unwrap();
    let (rb, revert) = watched(watch);
    let started = Instant::now();
    let record = executor(rb).run().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(revert.calls(), 0, "it never fired");
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Warned, "never `passed`");
    assert_eq!(
        outcome.summary,
        "the watch ended with rules not healthy: latency-p95 ended pending — last value 2.4s \
         against limit > 2s (4 of 6 evaluations breached; window: for 8s)"
    );
}

#[tokio::test(start_paused = true)]
async fn charted_values_are_sampled_beside_the_rule_and_never_judged() {
    // A P99 far above the rule's limit, with a gap where its probe fails:
    // drawn, never fired on.
    let p99 = Timeline::new("histogram_quantile(0.99, ...)", |t| {
        if (60..120).contains(&t.as_secs()) {
            Sample::Error {
                message: "scrape failed".into(),
            }
        } else {
            Sample::value(9.0)
        }
    });
    let watch = Watch::new(
        vec![p95_rule(latency_after(u64::MAX))],
        Duration::from_secs(15),
        Duration::from_secs(5 * MIN),
    )
    .unwrap()
    .rollback_window(Duration::from_secs(2 * MIN))
    .chart("latency-p99", "s", p99);
    let (rb, revert) = watched(watch);
    let record = executor(rb).run().await.unwrap();
    assert_eq!(revert.calls(), 0, "a charted value never rolls back");
    let outcome = step_of(&record, "watch").outcome.clone().unwrap();
    assert_eq!(outcome.status, Status::Passed, "{}", outcome.summary);
    let names: Vec<&str> = outcome.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["latency-p95", "latency-p99"]);
    let p99 = &outcome.series[1];
    assert_eq!((p99.unit.as_deref(), p99.limit), (Some("s"), None));
    // 21 evaluations over 5 min at 15 s, less the 4 inside the failing minute.
    assert_eq!(p99.points.len(), 17, "{:?}", p99.points);
    assert!(
        p99.points
            .iter()
            .all(|[at, v]| *v == 9.0 && !(60.0..120.0).contains(at))
    );
    for series in &outcome.series {
        assert_eq!(
            series.marks,
            [Mark {
                at: 120.0,
                label: "rollback window ends".into()
            }]
        );
    }
}
