//! The watch step: evaluates alert rules at an interval for a duration
//! (30 minutes to 24 hours), decides rollback inside the rollback window and
//! only alerts after it, and keeps a compact, bounded record of every
//! evaluation.

use std::collections::{BTreeSet, VecDeque};
use std::fmt::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, MissedTickBehavior};

use crate::alert::AlertState;
use crate::alert::RuleTransition;
use crate::approval::{ApprovalResult, ApprovalVerdict, OnDeadline};
use crate::check::{Check, Description};
use crate::ctx::{ApprovalWaitError, Ctx};
use crate::outcome::{Mark, Outcome, Series, Status, format_duration};
use crate::rules::{Judgement, Probe, Rule, RuleAction, RuleTracker, Sample, Window, fmt_num};

/// Segments kept per rule; older ones are folded into the totals.
pub const DEFAULT_MAX_SEGMENTS: usize = 200;
/// Trace-Ids kept per rule.
const MAX_TRACE_IDS: usize = 20;

/// A watch that could not do what it says: it would report rules as held
/// that it never gave the chance to fire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// Evaluating continuously is not a schedule.
    #[error("the watch interval is 0; give the time between evaluations (e.g. 15s)")]
    ZeroInterval,
    /// A watch of no time watches nothing.
    #[error("the watch duration is 0; give how long to watch (e.g. 30m)")]
    ZeroDuration,
    /// The first evaluation after the start would come after the end.
    #[error(
        "the watch interval {} is longer than its duration {}: it would evaluate once at the start and then wait past the end",
        format_duration(*.interval),
        format_duration(*.duration)
    )]
    IntervalLongerThanDuration {
        /// Time between evaluations.
        interval: Duration,
        /// How long the watch lasts.
        duration: Duration,
    },
    /// A rule whose window needs more than the watch gives.
    #[error(
        "rule `{rule}` fires only after {window}, but a {} watch evaluated every {} has {evaluations} evaluations{}: it could never fire",
        format_duration(*.duration),
        format_duration(*.interval),
        if matches!(window, Window::For { .. }) { " and ends before that" } else { "" }
    )]
    WindowCannotComplete {
        /// The rule's id.
        rule: String,
        /// Its window.
        window: Window,
        /// Time between evaluations.
        interval: Duration,
        /// How long the watch lasts.
        duration: Duration,
        /// Evaluations the watch makes.
        evaluations: u64,
    },
    /// A rule whose action is `ask` names nobody to ask.
    #[error(
        "rule `{0}` asks before rolling back but names no approval; give it one with Rule::ask"
    )]
    AskWithoutApproval(String),
}

/// A rule whose action is `ask` must say whom it asks.
impl WatchError {
    fn check_rule(rule: &Rule) -> Result<(), WatchError> {
        if rule.action == RuleAction::Ask && rule.ask.is_none() {
            return Err(WatchError::AskWithoutApproval(rule.id.clone()));
        }
        Ok(())
    }
}

/// When a watch evaluates: every `interval` from the start (the first
/// evaluation at once) until an evaluation at or after `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
    duration: Duration,
}

impl Schedule {
    /// Every `interval` for `duration`; refused when the interval is zero
    /// or longer than the duration.
    pub fn new(interval: Duration, duration: Duration) -> Result<Self, WatchError> {
        if interval.is_zero() {
            return Err(WatchError::ZeroInterval);
        }
        if duration.is_zero() {
            return Err(WatchError::ZeroDuration);
        }
        if interval > duration {
            return Err(WatchError::IntervalLongerThanDuration { interval, duration });
        }
        Ok(Schedule { interval, duration })
    }

    /// Time between evaluations.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long the watch lasts.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How many evaluations a watch makes when none runs late: one at the
    /// start, then one per interval up to the first at or past the end.
    pub fn evaluations(&self) -> u64 {
        let (d, i) = (self.duration.as_nanos(), self.interval.as_nanos());
        u64::try_from(d.div_ceil(i)).map_or(u64::MAX, |n| n.saturating_add(1))
    }

    /// Refuses a rule `rule` whose `window` cannot complete within this
    /// schedule: `for` D needs D ≤ the duration; `consecutive` and
    /// `cumulative` N need N evaluations; k of n needs k.
    pub fn admits(&self, rule: &str, window: Window) -> Result<(), WatchError> {
        let evaluations = self.evaluations();
        let fits = match window {
            Window::For { duration } => duration <= self.duration,
            Window::Consecutive { count } | Window::Cumulative { count } => {
                u64::from(count) <= evaluations
            }
            Window::KOfN { k, .. } => u64::from(k) <= evaluations,
        };
        if fits {
            Ok(())
        } else {
            Err(WatchError::WindowCannotComplete {
                rule: rule.to_owned(),
                window,
                interval: self.interval,
                duration: self.duration,
                evaluations,
            })
        }
    }
}

/// Watches rules; see the module docs.
#[derive(Debug, Clone)]
pub struct Watch {
    rules: Vec<Rule>,
    interval: Duration,
    duration: Duration,
    rollback_window: Duration,
    max_segments: usize,
    watch_in_dry_run: bool,
    charted: Vec<Charted>,
}

impl Watch {
    /// Evaluates `rules` every `interval` for `duration`; a rollback rule
    /// firing within the first 15 minutes fails the step (and so triggers
    /// the rollback of a phase that rolls back on failure).
    ///
    /// Refused ([`Schedule::new`], [`Schedule::admits`]) when the interval
    /// is zero or longer than the duration, or a rule's window could not
    /// complete in the evaluations the watch makes: such a watch would end
    /// "held" having never given the rule the chance to fire. This holds
    /// for a dry-run too, which evaluates each rule once (see
    /// [`Watch::in_dry_run`]) but describes the watch the real run makes.
    pub fn new(
        rules: Vec<Rule>,
        interval: Duration,
        duration: Duration,
    ) -> Result<Self, WatchError> {
        let schedule = Schedule::new(interval, duration)?;
        for rule in &rules {
            schedule.admits(&rule.id, rule.window)?;
            WatchError::check_rule(rule)?;
        }
        Ok(Watch {
            rules,
            interval,
            duration,
            rollback_window: Duration::from_secs(15 * 60),
            max_segments: DEFAULT_MAX_SEGMENTS,
            watch_in_dry_run: false,
            charted: Vec::new(),
        })
    }

    crate::setters! {
        /// Sets the rollback window (from the start of the watch).
        rollback_window(window: Duration) => rollback_window = window;

        /// Sets how many segments of the record are kept per rule.
        max_segments(n: usize) => max_segments = n.max(2);

        /// Watches for the whole duration in a dry-run too, instead of one
        /// evaluation per rule. Watching only reads, so it is allowed; it is off
        /// by default so a dry-run does not take 24 hours (demos and rehearsals
        /// with a short duration turn it on). The single evaluation of a
        /// rehearsal shows that each probe answers and how its value compares
        /// with the limit; it never says a rule held, since no window ran.
        in_dry_run(watch: bool) => watch_in_dry_run = watch;
    }

    /// Also charts `probe`'s value, named `name` in `unit`, at each
    /// evaluation, without judging it: the P50 and P99 beside a P95 rule,
    /// so the watch chart shows the whole distribution. A sample that is
    /// not a value leaves a gap.
    pub fn chart(
        mut self,
        name: impl Into<String>,
        unit: impl Into<String>,
        probe: Arc<dyn Probe>,
    ) -> Self {
        self.charted.push(Charted {
            name: name.into(),
            unit: unit.into(),
            probe,
        });
        self
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A run of evaluations with the same judgement and state.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// How they were judged.
    pub judgement: Judgement,
    /// The state during them.
    pub state: AlertState,
    /// First evaluation, since the watch started.
    pub from: Duration,
    /// Last evaluation.
    pub to: Duration,
    /// Evaluations in the run.
    pub count: u64,
    /// Smallest value measured, if any.
    pub min: Option<f64>,
    /// Largest value measured, if any.
    pub max: Option<f64>,
}

/// Everything kept about one rule's evaluations, in bounded memory.
#[derive(Debug, Clone, Default)]
pub struct RuleLog {
    segments: VecDeque<Segment>,
    folded: u64,
    evaluations: u64,
    breached: u64,
    failed: u64,
    min: Option<f64>,
    max: Option<f64>,
    last_value: Option<f64>,
    last_problem: Option<String>,
    trace_ids: BTreeSet<String>,
    fired_at: Option<Duration>,
    firing_detail: Option<String>,
    /// An `observe` rule's first call for the rollback: "would have rolled
    /// back at 14:32:10 UTC (2.5s, limit > 2s)".
    would_have: Option<String>,
    /// An `ask` rule's refused approval: "asked at 14:32:10 UTC (2.5s,
    /// limit > 2s): rejected by carla; kept watching".
    asked: Option<String>,
    points: Points,
}

/// `[seconds, value]` for a chart, halved in resolution (keeping the
/// larger value of each pair) whenever it reaches twice [`MAX_POINTS`], so
/// a 24-hour watch keeps as few points as a 1-hour one.
#[derive(Debug, Clone, Default)]
struct Points(Vec<[f64; 2]>);

impl Points {
    fn push(&mut self, at: Duration, value: f64) {
        self.0.push([at.as_secs_f64(), value]);
        if self.0.len() >= 2 * MAX_POINTS {
            self.0 = self
                .0
                .chunks(2)
                .map(|pair| {
                    if pair.len() == 2 && pair[1][1] > pair[0][1] {
                        pair[1]
                    } else {
                        pair[0]
                    }
                })
                .collect();
        }
    }
}

/// Points kept per series for the plot (between this and twice this).
const MAX_POINTS: usize = 360;

/// A value the watch charts beside its rules without judging it (the P50
/// and P99 around a P95 rule), so a person sees the whole distribution move.
#[derive(Clone)]
struct Charted {
    name: String,
    unit: String,
    probe: Arc<dyn Probe>,
}

impl fmt::Debug for Charted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Charted")
            .field("name", &self.name)
            .field("query", &self.probe.query())
            .finish()
    }
}

fn min_opt(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn max_opt(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl RuleLog {
    fn record(
        &mut self,
        at: Duration,
        sample: &Sample,
        judgement: Judgement,
        state: AlertState,
        max_segments: usize,
    ) {
        self.evaluations += 1;
        let value = match sample {
            Sample::Value {
                value, trace_ids, ..
            } if !value.is_nan() => {
                for id in trace_ids {
                    if self.trace_ids.len() < MAX_TRACE_IDS {
                        self.trace_ids.insert(id.clone());
                    }
                }
                self.min = min_opt(self.min, *value);
                self.max = max_opt(self.max, *value);
                self.last_value = Some(*value);
                self.points.push(at, *value);
                Some(*value)
            }
            Sample::Value { .. } => {
                self.last_problem = Some("the value is NaN (no observations)".into());
                None
            }
            Sample::NoData { reason } => {
                self.last_problem = Some(format!("no data: {reason}"));
                None
            }
            Sample::Error { message } => {
                self.last_problem = Some(format!("error: {message}"));
                None
            }
        };
        if matches!(
            judgement,
            Judgement::Breached | Judgement::ErrorCountedAsBreached
        ) {
            self.breached += 1;
        }
        if value.is_none() {
            self.failed += 1;
        }
        match self.segments.back_mut() {
            Some(last) if last.judgement == judgement && last.state == state => {
                last.to = at;
                last.count += 1;
                if let Some(v) = value {
                    last.min = min_opt(last.min, v);
                    last.max = max_opt(last.max, v);
                }
            }
            _ => {
                self.segments.push_back(Segment {
                    judgement,
                    state,
                    from: at,
                    to: at,
                    count: 1,
                    min: value,
                    max: value,
                });
                while self.segments.len() > max_segments {
                    if let Some(old) = self.segments.pop_front() {
                        self.folded += old.count;
                    }
                }
            }
        }
    }

    /// Segments kept (the most recent ones).
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &Segment> {
        self.segments.iter()
    }
}

fn value_text(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "none".into(), |v| format!("{}{unit}", fmt_num(v)))
}

fn offset_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Watch {
    fn summary_line(&self, rule: &Rule, log: &RuleLog, state: AlertState) -> String {
        format!(
            "{}: {}, {} evaluations ({} breached, {} could not measure); min {}, max {}, last {}",
            rule.id,
            state.as_str(),
            log.evaluations,
            log.breached,
            log.failed,
            value_text(log.min, &rule.unit),
            value_text(log.max, &rule.unit),
            value_text(log.last_value, &rule.unit),
        )
    }

    fn segments_text(&self, rule: &Rule, log: &RuleLog) -> String {
        let mut text = String::new();
        if log.folded > 0 {
            let _ = writeln!(
                text,
                "({} earlier evaluations folded into the totals)",
                log.folded
            );
        }
        for s in log
            .segments()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let range = match (s.min, s.max) {
                (Some(a), Some(b)) if a == b => {
                    format!(" value {}", value_text(Some(a), &rule.unit))
                }
                (Some(a), Some(b)) => format!(
                    " values {}..{}",
                    value_text(Some(a), &rule.unit),
                    value_text(Some(b), &rule.unit)
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                text,
                "{}–{} {}, {} ×{}{range}",
                format_duration(s.from),
                format_duration(s.to),
                s.judgement.as_str(),
                s.state.as_str(),
                s.count
            );
        }
        text
    }

    fn evidence(
        &self,
        mut outcome: Outcome,
        logs: &[RuleLog],
        trackers: &[RuleTracker],
        charts: &[Points],
    ) -> Outcome {
        for ((rule, log), tracker) in self.rules.iter().zip(logs).zip(trackers) {
            outcome = outcome
                .with_evidence(
                    format!("rule {}", rule.id),
                    format!("{} — {}", rule.title, rule.condition()),
                )
                .with_evidence(
                    format!("{} summary", rule.id),
                    self.summary_line(rule, log, tracker.state()),
                )
                .with_evidence(
                    format!("{} timeline", rule.id),
                    self.segments_text(rule, log),
                );
            if let Some(would) = &log.would_have {
                outcome = outcome.with_evidence(format!("{} (observe)", rule.id), would.clone());
            }
            if let Some(asked) = &log.asked {
                outcome = outcome.with_evidence(format!("{} (ask)", rule.id), asked.clone());
            }
            if !log.trace_ids.is_empty() {
                outcome = outcome.with_evidence(
                    format!("{} Trace-Ids", rule.id),
                    log.trace_ids.iter().cloned().collect::<Vec<_>>().join(", "),
                );
            }
            if let Some(max) = log.max {
                outcome =
                    outcome.with_measurement(format!("{}.max", rule.id), max, Some(&rule.unit));
            }
            if let Some(last) = log.last_value {
                outcome =
                    outcome.with_measurement(format!("{}.last", rule.id), last, Some(&rule.unit));
            }
            if !log.points.0.is_empty() {
                outcome = outcome.with_series(Series {
                    name: rule.id.clone(),
                    unit: (!rule.unit.is_empty()).then(|| rule.unit.clone()),
                    limit: Some(rule.limit),
                    points: log.points.0.clone(),
                    marks: self.marks(),
                });
            }
        }
        for (charted, points) in self.charted.iter().zip(charts) {
            if !points.0.is_empty() {
                outcome = outcome.with_series(Series {
                    name: charted.name.clone(),
                    unit: (!charted.unit.is_empty()).then(|| charted.unit.clone()),
                    limit: None,
                    points: points.0.clone(),
                    marks: self.marks(),
                });
            }
        }
        outcome
    }

    /// The end of the rollback window, where a chart of the watch draws it.
    fn marks(&self) -> Vec<Mark> {
        vec![Mark {
            at: self.rollback_window.as_secs_f64(),
            label: "rollback window ends".into(),
        }]
    }

    /// One sample of each charted value, kept where it is a value.
    async fn sample_charted(&self, ctx: &Ctx, at: Duration, charts: &mut [Points]) {
        for (charted, points) in self.charted.iter().zip(charts.iter_mut()) {
            if let Sample::Value { value, .. } = self.sample_probe(&*charted.probe, ctx).await {
                if !value.is_nan() {
                    points.push(at, value);
                }
            }
        }
    }

    async fn sample(&self, rule: &Rule, ctx: &Ctx) -> Sample {
        self.sample_probe(&*rule.probe, ctx).await
    }

    async fn sample_probe(&self, probe: &dyn Probe, ctx: &Ctx) -> Sample {
        match tokio::time::timeout(self.interval, probe.sample(ctx)).await {
            Ok(sample) => sample,
            Err(_) => Sample::Error {
                message: format!(
                    "the probe did not answer within the {} interval",
                    format_duration(self.interval)
                ),
            },
        }
    }

    /// Pauses the watch for the approval an `ask` rule calls for: `Ok((true,
    /// "; rollback approved by carla ..."))` rolls back, `Ok((false, what
    /// was asked and answered))` keeps watching, and `Err` ends the watch
    /// (stopped, aborted at the deadline or by the default, or nobody could
    /// decide).
    async fn ask(
        &self,
        rule: &Rule,
        value: Option<f64>,
        ctx: &Ctx,
    ) -> Result<(bool, String), Outcome> {
        let asked = format!(
            "asked at {} ({}, limit {} {}{})",
            ctx.now().format("%H:%M:%S UTC"),
            value_text(value, &rule.unit),
            rule.comparison.symbol(),
            fmt_num(rule.limit),
            rule.unit
        );
        // Watch::new refuses an `ask` rule without one.
        let Some(policy) = &rule.ask else {
            return Err(Outcome::check_error(
                WatchError::AskWithoutApproval(rule.id.clone()).to_string(),
            ));
        };
        ctx.progress(format!(
            "rule {} fired: {asked}, waiting for approval by role {}",
            rule.id, policy.role
        ));
        // Nothing waits in a run told not to (`--no-wait`): the default
        // decides at once, as the deadline would.
        let (taken, said) = match ctx.await_approval(policy).await {
            Ok(ApprovalResult::Approver { decision }) => (
                if decision.verdict == ApprovalVerdict::Approved {
                    OnDeadline::Approve
                } else {
                    OnDeadline::Reject
                },
                decision.describe(),
            ),
            Ok(result @ ApprovalResult::Deadline { taken, .. }) => (taken, result.describe()),
            Err(ApprovalWaitError::NoWait) => (
                policy.on_deadline,
                format!(
                    "the run does not wait for approvals (--no-wait): {} taken",
                    policy.on_deadline.as_str()
                ),
            ),
            Err(e @ ApprovalWaitError::Stopped) => {
                return Err(Outcome::aborted(format!("the watch was stopped: {e}")));
            }
            Err(other) => {
                return Err(Outcome::check_error(format!(
                    "rule `{}` {asked}, but {other}",
                    rule.id
                )));
            }
        };
        let roll_back = match taken {
            OnDeadline::Approve => true,
            OnDeadline::Reject => false,
            OnDeadline::Abort => {
                return Err(Outcome::aborted(format!(
                    "rule `{}` {asked}: {said}",
                    rule.id
                )));
            }
        };
        Ok(if roll_back {
            (true, format!("; {asked}: rollback {said}"))
        } else {
            (false, format!("{asked}: {said}; kept watching"))
        })
    }

    /// Dry-run: one evaluation of each rule, to show the probes work.
    async fn rehearse(&self, ctx: &Ctx) -> Outcome {
        let mut worst = Status::Passed;
        let mut lines = Vec::new();
        for rule in &self.rules {
            let sample = self.sample(rule, ctx).await;
            let (status, text) = match &sample {
                Sample::Value { value, .. } if rule.comparison.breached(*value, rule.limit) => (
                    Status::Warned,
                    format!(
                        "{} breaches {}",
                        value_text(Some(*value), &rule.unit),
                        rule.condition()
                    ),
                ),
                Sample::Value { value, .. } if value.is_nan() => {
                    (Status::NoData, "NaN (no observations)".into())
                }
                Sample::Value { value, .. } => (
                    Status::Passed,
                    format!(
                        "{} within {}",
                        value_text(Some(*value), &rule.unit),
                        rule.condition()
                    ),
                ),
                // One evaluation cannot fill a window: a probe that answered
                // without data yet is working, which is what a rehearsal shows.
                Sample::NoData { reason } => {
                    (Status::Warned, format!("answered, no data yet: {reason}"))
                }
                Sample::Error { message } => {
                    (Status::CheckError, format!("could not measure: {message}"))
                }
            };
            if status_rank(status) > status_rank(worst) {
                worst = status;
            }
            lines.push((rule.id.clone(), text));
        }
        let mut outcome = Outcome::new(
            worst,
            format!(
                "dry-run: each of {} rules evaluated once; a real run watches every {} for {}",
                self.rules.len(),
                format_duration(self.interval),
                format_duration(self.duration)
            ),
        );
        for (id, text) in lines {
            outcome = outcome.with_evidence(id, text);
        }
        outcome
    }
}

/// What an `observe` rule would have done when it called for the
/// rollback at `now`: "would have rolled back at 14:32:10 UTC (2.5s, limit
/// > 2s)".
fn would_have(rule: &Rule, value: Option<f64>, now: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "would have rolled back at {} ({}, limit {} {}{})",
        now.format("%H:%M:%S UTC"),
        value_text(value, &rule.unit),
        rule.comparison.symbol(),
        fmt_num(rule.limit),
        rule.unit
    )
}

fn status_rank(s: Status) -> u8 {
    match s {
        Status::Passed => 0,
        Status::Warned => 1,
        Status::NoData => 2,
        _ => 3,
    }
}

#[async_trait]
impl Check for Watch {
    fn describe(&self) -> Description {
        let ids: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        Description::read_only(
            "watch",
            format!(
                "rules {} hold, evaluated every {} for {} (rollback if a rollback rule fires within {})",
                ids.join(", "),
                format_duration(self.interval),
                format_duration(self.duration),
                format_duration(self.rollback_window)
            ),
        )
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        if self.rules.is_empty() {
            return Outcome::check_error("the watch has no rules; add at least one");
        }
        if ctx.is_dry_run() && !self.watch_in_dry_run {
            return self.rehearse(ctx).await;
        }
        let start = Instant::now();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut trackers: Vec<RuleTracker> = self.rules.iter().map(RuleTracker::new).collect();
        let mut logs: Vec<RuleLog> = vec![RuleLog::default(); self.rules.len()];
        let mut charts: Vec<Points> = vec![Points::default(); self.charted.len()];
        // The step's approval, once refused: it stands for the rest of the
        // watch (one approval per step), so no rule asks again.
        let mut decided: Option<String> = None;
        loop {
            tokio::select! {
                biased;
                () = ctx.cancellation().cancelled() => {
                    return self.evidence(Outcome::aborted("the watch was stopped"), &logs, &trackers, &charts);
                }
                _ = ticker.tick() => {}
            }
            let at = start.elapsed();
            self.sample_charted(ctx, at, &mut charts).await;
            for (i, rule) in self.rules.iter().enumerate() {
                let sample = self.sample(rule, ctx).await;
                let evaluation = trackers[i].observe(at, &sample);
                logs[i].record(
                    at,
                    &sample,
                    evaluation.judgement,
                    evaluation.state,
                    self.max_segments,
                );
                let value = match &sample {
                    Sample::Value { value, .. } if !value.is_nan() => Some(*value),
                    _ => None,
                };
                let calls_for_rollback = evaluation.state == AlertState::Firing
                    && rule.rollback
                    && at <= self.rollback_window;
                if calls_for_rollback
                    && rule.action == RuleAction::Observe
                    && logs[i].would_have.is_none()
                {
                    logs[i].would_have = Some(would_have(rule, value, ctx.now()));
                }
                // Only changes into or out of firing are journaled: pending
                // flaps would grow the journal with every evaluation, and the
                // segments already keep them.
                if let Some((from, to)) = evaluation
                    .transition
                    .filter(|(f, t)| *f == AlertState::Firing || *t == AlertState::Firing)
                {
                    let mut detail = match value {
                        Some(v) => format!(
                            "{} {} {}{}",
                            value_text(Some(v), &rule.unit),
                            rule.comparison.symbol(),
                            fmt_num(rule.limit),
                            rule.unit
                        ),
                        None => logs[i].last_problem.clone().unwrap_or_default(),
                    };
                    // Notifications read the transition: an observed rule
                    // says what it would have done.
                    if let Some(would) = logs[i]
                        .would_have
                        .as_ref()
                        .filter(|_| to == AlertState::Firing && calls_for_rollback)
                    {
                        detail = format!("{detail}; observe: {would}");
                    }
                    let transition = RuleTransition {
                        rule: rule.id.clone(),
                        from,
                        to,
                        value,
                        condition: rule.condition(),
                        detail: detail.clone(),
                        offset_ms: offset_ms(at),
                        at: ctx.now(),
                    };
                    if let Err(e) = ctx.record_rule_transition(transition) {
                        return Outcome::check_error(format!("the watch stopped: {e}"));
                    }
                    if to == AlertState::Firing && logs[i].fired_at.is_none() {
                        logs[i].fired_at = Some(at);
                        logs[i].firing_detail = Some(detail);
                    }
                }
                let approved = match rule.action {
                    RuleAction::Ask if calls_for_rollback && decided.is_none() => {
                        match self.ask(rule, value, ctx).await {
                            Ok((true, said)) => Some(said),
                            Ok((false, said)) => {
                                logs[i].asked = Some(said.clone());
                                decided = Some(said);
                                None
                            }
                            Err(outcome) => {
                                return self.evidence(outcome, &logs, &trackers, &charts);
                            }
                        }
                    }
                    RuleAction::Rollback if calls_for_rollback => Some(String::new()),
                    _ => None,
                };
                if let Some(approval) = approved {
                    let log = &logs[i];
                    let traces = if log.trace_ids.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; Trace-Ids: {}",
                            log.trace_ids.iter().cloned().collect::<Vec<_>>().join(", ")
                        )
                    };
                    let outcome = Outcome::failed(format!(
                        "rule `{}` fired at {} (inside the {} rollback window): {} — condition {}; first breach at {}{traces}{approval}",
                        rule.id,
                        format_duration(at),
                        format_duration(self.rollback_window),
                        log.firing_detail.clone().unwrap_or_default(),
                        rule.condition(),
                        log.segments()
                            .find(|s| s.state != AlertState::Inactive)
                            .map_or_else(|| format_duration(at), |s| format_duration(s.from)),
                    ));
                    return self.evidence(outcome, &logs, &trackers, &charts);
                }
            }
            let left = self.duration.saturating_sub(at);
            let states: Vec<String> = self
                .rules
                .iter()
                .zip(&trackers)
                .zip(&logs)
                .map(|((r, t), l)| {
                    format!(
                        "{} {} ({})",
                        r.id,
                        t.state().as_str(),
                        value_text(l.last_value, &r.unit)
                    )
                })
                .collect();
            ctx.progress(format!(
                "{} left · {}",
                format_duration(left),
                states.join(" · ")
            ));
            if at >= self.duration {
                break;
            }
        }
        let never: Vec<&Rule> = self
            .rules
            .iter()
            .zip(&logs)
            .filter(|(_, l)| l.last_value.is_none())
            .map(|(r, _)| r)
            .collect();
        let fired: Vec<String> = self
            .rules
            .iter()
            .zip(&logs)
            .filter_map(|(r, l)| {
                l.fired_at.map(|at| {
                    format!(
                        "{} at {} ({})",
                        r.id,
                        format_duration(at),
                        l.firing_detail.clone().unwrap_or_default()
                    )
                })
            })
            .collect();
        // A rule still pending or firing when time runs out did not hold:
        // the watch only ran out before its window did.
        let unsettled: Vec<String> = self
            .rules
            .iter()
            .zip(&trackers)
            .zip(&logs)
            .filter(|((_, t), _)| t.state() != AlertState::Inactive)
            .map(|((r, t), l)| {
                format!(
                    "{} ended {} — last value {} against limit {} {}{} ({} of {} evaluations breached; window: {})",
                    r.id,
                    t.state().as_str(),
                    value_text(l.last_value, &r.unit),
                    r.comparison.symbol(),
                    fmt_num(r.limit),
                    r.unit,
                    l.breached,
                    l.evaluations,
                    r.window
                )
            })
            .collect();
        let outcome = if !never.is_empty() {
            let names: Vec<String> = never
                .iter()
                .zip(
                    self.rules
                        .iter()
                        .zip(&logs)
                        .filter(|(_, l)| l.last_value.is_none()),
                )
                .map(|(r, (_, l))| {
                    format!("{} ({})", r.id, l.last_problem.clone().unwrap_or_default())
                })
                .collect();
            let all_errors = self
                .rules
                .iter()
                .zip(&logs)
                .filter(|(_, l)| l.last_value.is_none())
                .all(|(_, l)| {
                    l.last_problem
                        .as_deref()
                        .is_some_and(|p| p.starts_with("error"))
                });
            let text = format!(
                "never measured in {}: {}",
                format_duration(self.duration),
                names.join("; ")
            );
            if all_errors {
                Outcome::check_error(text)
            } else {
                Outcome::no_data(text)
            }
        } else if !fired.is_empty() || !unsettled.is_empty() {
            let mut parts = Vec::new();
            // What observed and refused rules did instead of rolling back.
            for (what, said) in [
                (
                    "observed rules (action observe) never act",
                    (|l: &RuleLog| l.would_have.clone()) as fn(&RuleLog) -> Option<String>,
                ),
                ("rollback not approved", |l: &RuleLog| l.asked.clone()),
            ] {
                let rules: Vec<String> = self
                    .rules
                    .iter()
                    .zip(&logs)
                    .filter_map(|(r, l)| said(l).map(|s| format!("{} {s}", r.id)))
                    .collect();
                if !rules.is_empty() {
                    parts.push(format!("{what}: {}", rules.join("; ")));
                }
            }
            if !fired.is_empty() {
                parts.push(format!(
                    "alerts fired without rolling back (alert-only or observed rules, or after the rollback window): {}",
                    fired.join("; ")
                ));
            }
            if !unsettled.is_empty() {
                parts.push(format!(
                    "the watch ended with rules not healthy: {}",
                    unsettled.join("; ")
                ));
            }
            Outcome::warned(parts.join(" — "))
        } else {
            Outcome::passed(format!(
                "{} rules held for {}, evaluated every {}",
                self.rules.len(),
                format_duration(self.duration),
                format_duration(self.interval)
            ))
        };
        self.evidence(outcome, &logs, &trackers, &charts)
    }
}
