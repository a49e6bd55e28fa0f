//! Alert rules with Prometheus alerting semantics, plus the window modes
//! deploy tools use: a condition on a measured value, a window that decides
//! when a breached condition fires, and an explicit policy for evaluations
//! that could not measure.
//!
//! The engine is a pure state machine ([`RuleTracker`]) fed with samples,
//! so its semantics are tested without a clock or a network; the watch step
//! ([`crate::Watch`]) drives it over time.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::alert::AlertState;
use crate::ctx::Ctx;
use crate::outcome::format_duration;

/// How the value is compared with the limit; the rule is *breached* when the
/// comparison holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// value > limit
    Above,
    /// value >= limit
    AtLeast,
    /// value < limit
    Below,
    /// value <= limit
    AtMost,
}

impl Comparison {
    /// Whether `value` breaches `limit`. NaN never breaches: it is no data.
    pub fn breached(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Above => value > limit,
            Comparison::AtLeast => value >= limit,
            Comparison::Below => value < limit,
            Comparison::AtMost => value <= limit,
        }
    }

    /// `>`, `>=`, `<`, `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }
}

/// When a breached condition counts as firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Window {
    /// Prometheus `for`: pending from the first breached evaluation, firing
    /// once breached at every evaluation for the whole duration; one healthy
    /// evaluation resets it.
    For {
        /// The duration.
        #[serde(with = "crate::duration::duration_ms")]
        duration: Duration,
    },
    /// `count` breached evaluations in a row ("3 requests in a row"); one
    /// healthy evaluation resets it.
    Consecutive {
        /// How many.
        count: u32,
    },
    /// `count` breached evaluations in total (Argo's failureLimit, Flagger's
    /// threshold); never resets.
    Cumulative {
        /// How many.
        count: u32,
    },
    /// At least `k` breached among the last `n` evaluations.
    KOfN {
        /// Breaches needed.
        k: u32,
        /// Evaluations considered.
        n: u32,
    },
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::For { duration } => write!(f, "for {}", format_duration(*duration)),
            Window::Consecutive { count } => write!(f, "{count} evaluations in a row"),
            Window::Cumulative { count } => write!(f, "{count} evaluations in total"),
            Window::KOfN { k, n } => write!(f, "{k} of the last {n} evaluations"),
        }
    }
}

/// What an evaluation that could not measure (target down, no data) counts
/// as. Always shown in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The default: a failed evaluation changes nothing (as in
    /// Prometheus), until `after` of them in a row, which count as breached
    /// from then on ("no data is not healthy").
    BreachedAfter {
        /// Consecutive failed evaluations tolerated before they count.
        after: u32,
    },
    /// Failed evaluations never change the state.
    Ignore,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy::BreachedAfter { after: 3 }
    }
}

/// What a rule that calls for a rollback (fires inside the rollback
/// window) does about it: graduated trust, from watching a new rule's
/// verdicts to letting it act.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Never acts: the breach is recorded, and reports and notifications
    /// say when it would have rolled back, with the value and the limit.
    Observe,
    /// Pauses the watch for an approval (the rule's [`Rule::ask`] policy):
    /// approved, it rolls back; rejected, the watch goes on; at the
    /// deadline, the policy's `on_deadline` decides (approve rolls back,
    /// reject goes on, abort stops the run).
    Ask,
    /// Rolls back (the default, and what the built-in rules do).
    #[default]
    Rollback,
}

impl RuleAction {
    /// The name files and bindings write.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Observe => "observe",
            RuleAction::Ask => "ask",
            RuleAction::Rollback => "rollback",
        }
    }
}

/// One measurement by a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// A value, with what it was computed from.
    Value {
        /// The value.
        value: f64,
        /// Resolved arguments and context ("requests": "1200", "window": "5m").
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        detail: BTreeMap<String, String>,
        /// Trace-Ids seen in the failures behind it, for incident reports.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        trace_ids: Vec<String>,
    },
    /// The probe ran and there was nothing to judge (no traffic).
    NoData {
        /// Why.
        reason: String,
    },
    /// The probe could not measure (target down, bad answer).
    Error {
        /// What went wrong.
        message: String,
    },
}

impl Sample {
    /// A plain value.
    pub fn value(value: f64) -> Self {
        Sample::Value {
            value,
            detail: BTreeMap::new(),
            trace_ids: Vec::new(),
        }
    }
}

/// Measures the value a rule judges: a latency quantile, an error ratio, a
/// backlog count, a smoke result.
#[async_trait]
pub trait Probe: Send + Sync {
    /// The query or expression, as the record shows it.
    fn query(&self) -> String;

    /// The same measure as a PromQL expression, for alerting rules that
    /// outlive the run (`alerting::alerts`); `interval` is the evaluation
    /// interval, the range of a probe that measures since the previous
    /// evaluation. `None` (the default) when Prometheus cannot compute it
    /// (a smoke suite, a database query).
    fn promql(&self, interval: Duration) -> Option<String> {
        let _ = interval;
        None
    }

    /// Takes one sample.
    async fn sample(&self, ctx: &Ctx) -> Sample;
}

/// Any check as a probe: a smoke suite's or a database query's verdict over
/// time. The value is the outcome's measurement `measurement` when named
/// (a backlog count), else 1 when the check failed and 0 when it passed, so
/// `AtLeast 1` with `Consecutive { count: 3 }` reads "failed 3 times in a
/// row". A check that could not measure is an error sample, never a value.
#[derive(Clone)]
pub struct CheckProbe {
    check: Arc<dyn crate::check::Check>,
    measurement: Option<String>,
}

impl fmt::Debug for CheckProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckProbe")
            .field("check", &self.check.describe().name)
            .field("measurement", &self.measurement)
            .finish()
    }
}

impl CheckProbe {
    /// Samples `check`'s pass/fail as 0/1.
    pub fn verdict(check: Arc<dyn crate::check::Check>) -> Self {
        CheckProbe {
            check,
            measurement: None,
        }
    }

    /// Samples the measurement `name` of `check`'s outcome.
    pub fn measurement(check: Arc<dyn crate::check::Check>, name: impl Into<String>) -> Self {
        CheckProbe {
            check,
            measurement: Some(name.into()),
        }
    }
}

#[async_trait]
impl Probe for CheckProbe {
    fn query(&self) -> String {
        let d = self.check.describe();
        match &self.measurement {
            Some(m) => format!("{m} of {}", d.name),
            None => format!("failed({})", d.name),
        }
    }

    async fn sample(&self, ctx: &Ctx) -> Sample {
        use crate::outcome::Status;
        let outcome = self.check.run(ctx).await;
        let mut detail = BTreeMap::new();
        detail.insert(
            "outcome".to_owned(),
            format!("{}: {}", outcome.status.as_str(), outcome.summary),
        );
        match outcome.status {
            Status::CheckError | Status::TimedOut | Status::Aborted | Status::NotRun => {
                return Sample::Error {
                    message: outcome.summary,
                };
            }
            Status::NoData | Status::Skipped => {
                return Sample::NoData {
                    reason: outcome.summary,
                };
            }
            _ => {}
        }
        let trace_ids = outcome
            .evidence
            .iter()
            .filter(|e| e.label.eq_ignore_ascii_case("trace-id"))
            .map(|e| e.value.clone())
            .collect();
        let value = match &self.measurement {
            Some(name) => match outcome.measurements.iter().find(|m| &m.name == name) {
                Some(m) => m.value,
                None => {
                    return Sample::Error {
                        message: format!("the check reported no measurement `{name}`"),
                    };
                }
            },
            None => f64::from(u8::from(outcome.status == Status::Failed)),
        };
        Sample::Value {
            value,
            detail,
            trace_ids,
        }
    }
}

/// An alert rule.
#[derive(Clone)]
pub struct Rule {
    /// Stable id ("latency-p95").
    pub id: String,
    /// The runbook's wording ("Latência P95 > 2s por 5 minutos").
    pub title: String,
    /// What is measured.
    pub probe: Arc<dyn Probe>,
    /// Breached when `value <comparison> limit`.
    pub comparison: Comparison,
    /// The limit.
    pub limit: f64,
    /// Unit of value and limit, for messages ("s", "%").
    pub unit: String,
    /// When a breach fires.
    pub window: Window,
    /// Keep firing this long after the condition clears (Prometheus
    /// `keep_firing_for`).
    pub keep_firing_for: Option<Duration>,
    /// What a failed evaluation counts as.
    pub on_error: ErrorPolicy,
    /// Firing inside the rollback window calls for the rollback (`false`:
    /// an alert-only rule).
    pub rollback: bool,
    /// What a call for the rollback does.
    pub action: RuleAction,
    /// Who is asked, for how long, and what the deadline decides, when
    /// `action` is [`RuleAction::Ask`].
    pub ask: Option<crate::approval::ApprovalPolicy>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("query", &self.probe.query())
            .field("condition", &self.condition())
            .field("window", &self.window)
            .field("rollback", &self.rollback)
            .field("action", &self.action)
            .finish()
    }
}

impl Rule {
    /// A rule breached when the probe's value is above `limit`, firing per
    /// `window`, with the default error policy, triggering rollback.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        probe: Arc<dyn Probe>,
        comparison: Comparison,
        limit: f64,
        window: Window,
    ) -> Self {
        Rule {
            id: id.into(),
            title: title.into(),
            probe,
            comparison,
            limit,
            unit: String::new(),
            window,
            keep_firing_for: None,
            on_error: ErrorPolicy::default(),
            rollback: true,
            action: RuleAction::default(),
            ask: None,
        }
    }

    /// Sets the unit shown with values.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }

    /// Only alerts, never triggers rollback.
    pub fn alert_only(mut self) -> Self {
        self.rollback = false;
        self
    }

    crate::setters! {
        /// Sets the error policy.
        on_error(policy: ErrorPolicy) => on_error = policy;

        /// Sets `keep_firing_for`.
        keep_firing_for(d: Duration) => keep_firing_for = Some(d);

        /// Sets what a call for the rollback does (for `ask`, see
        /// [`Rule::ask`]).
        action(action: RuleAction) => action = action;
    }

    /// Asks an approver under `policy` before rolling back.
    pub fn ask(mut self, policy: crate::approval::ApprovalPolicy) -> Self {
        self.action = RuleAction::Ask;
        self.ask = Some(policy);
        self
    }

    /// "value > 2s for 5m", for verdicts.
    pub fn condition(&self) -> String {
        format!(
            "{} {} {}{}, {}",
            self.probe.query(),
            self.comparison.symbol(),
            fmt_num(self.limit),
            self.unit,
            self.window
        )
    }
}

/// How one evaluation judged its sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Value within the limit.
    Healthy,
    /// Value breaches the limit.
    Breached,
    /// Nothing to judge; no state change (policy permitting).
    NoData,
    /// Could not measure; no state change (policy permitting).
    Error,
    /// No data or error counted as breached by the error policy.
    ErrorCountedAsBreached,
}

impl Judgement {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Healthy => "healthy",
            Judgement::Breached => "breached",
            Judgement::NoData => "no data",
            Judgement::Error => "error",
            Judgement::ErrorCountedAsBreached => "error counted as breached",
        }
    }
}

/// The result of feeding one sample to a tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The judgement.
    pub judgement: Judgement,
    /// The state after it.
    pub state: AlertState,
    /// `(from, to)` when the state changed.
    pub transition: Option<(AlertState, AlertState)>,
}

/// The state machine of one rule.
#[derive(Debug, Clone)]
pub struct RuleTracker {
    window: Window,
    keep_firing_for: Option<Duration>,
    on_error: ErrorPolicy,
    comparison: Comparison,
    limit: f64,
    state: AlertState,
    active_since: Option<Duration>,
    last_breach: Option<Duration>,
    consecutive: u32,
    total: u32,
    recent: VecDeque<bool>,
    errors_in_a_row: u32,
}

impl RuleTracker {
    /// A tracker for `rule`, inactive.
    pub fn new(rule: &Rule) -> Self {
        Self::from_parts(
            rule.comparison,
            rule.limit,
            rule.window,
            rule.keep_firing_for,
            rule.on_error,
        )
    }

    /// A tracker from a rule's judging parts, without a probe (for
    /// replaying recorded values).
    pub fn from_parts(
        comparison: Comparison,
        limit: f64,
        window: Window,
        keep_firing_for: Option<Duration>,
        on_error: ErrorPolicy,
    ) -> Self {
        RuleTracker {
            window,
            keep_firing_for,
            on_error,
            comparison,
            limit,
            state: AlertState::Inactive,
            active_since: None,
            last_breach: None,
            consecutive: 0,
            total: 0,
            recent: VecDeque::new(),
            errors_in_a_row: 0,
        }
    }

    /// Feeds recorded `[seconds, value]` points and returns every state
    /// change with its time and value: what the rule would have done.
    pub fn replay(mut self, points: &[[f64; 2]]) -> Vec<(Duration, AlertState, AlertState, f64)> {
        points
            .iter()
            // A point at a time no duration can hold (a damaged journal) is
            // skipped, not a panic.
            .filter_map(|[t, v]| Some((Duration::try_from_secs_f64(*t).ok()?, v)))
            .filter_map(|(at, v)| {
                self.observe(at, &Sample::value(*v))
                    .transition
                    .map(|(from, to)| (at, from, to, *v))
            })
            .collect()
    }

    /// The current state.
    pub fn state(&self) -> AlertState {
        self.state
    }

    /// Feeds a sample taken at `at` (time since the watch started).
    pub fn observe(&mut self, at: Duration, sample: &Sample) -> Evaluation {
        let judgement = match sample {
            Sample::Value { value, .. } if value.is_nan() => self.failed(Judgement::NoData),
            Sample::Value { value, .. } => {
                self.errors_in_a_row = 0;
                if self.comparison.breached(*value, self.limit) {
                    Judgement::Breached
                } else {
                    Judgement::Healthy
                }
            }
            Sample::NoData { .. } => self.failed(Judgement::NoData),
            Sample::Error { .. } => self.failed(Judgement::Error),
        };
        let before = self.state;
        match judgement {
            Judgement::Breached | Judgement::ErrorCountedAsBreached => self.breach(at),
            Judgement::Healthy => self.heal(at),
            Judgement::NoData | Judgement::Error => {}
        }
        Evaluation {
            judgement,
            state: self.state,
            transition: (before != self.state).then_some((before, self.state)),
        }
    }

    fn failed(&mut self, kind: Judgement) -> Judgement {
        self.errors_in_a_row += 1;
        match self.on_error {
            ErrorPolicy::BreachedAfter { after } if self.errors_in_a_row >= after.max(1) => {
                Judgement::ErrorCountedAsBreached
            }
            _ => kind,
        }
    }

    fn push_recent(&mut self, breached: bool) {
        if let Window::KOfN { n, .. } = self.window {
            self.recent.push_back(breached);
            while self.recent.len() > n.max(1) as usize {
                self.recent.pop_front();
            }
        }
    }

    fn breach(&mut self, at: Duration) {
        self.last_breach = Some(at);
        self.consecutive += 1;
        self.total += 1;
        self.push_recent(true);
        let since = *self.active_since.get_or_insert(at);
        let fires = match self.window {
            Window::For { duration } => at.saturating_sub(since) >= duration,
            Window::Consecutive { count } => self.consecutive >= count.max(1),
            Window::Cumulative { count } => self.total >= count.max(1),
            Window::KOfN { k, .. } => {
                self.recent.iter().filter(|b| **b).count() >= k.max(1) as usize
            }
        };
        if fires {
            self.state = AlertState::Firing;
        } else if self.state != AlertState::Firing {
            self.state = AlertState::Pending;
        }
    }

    fn heal(&mut self, at: Duration) {
        self.consecutive = 0;
        self.push_recent(false);
        let still_firing = match self.window {
            // A cumulative count never resets: once firing, it stays.
            Window::Cumulative { .. } => self.state == AlertState::Firing,
            Window::KOfN { k, .. } => {
                self.recent.iter().filter(|b| **b).count() >= k.max(1) as usize
            }
            _ => false,
        };
        let kept = self.state == AlertState::Firing
            && matches!((self.keep_firing_for, self.last_breach), (Some(keep), Some(last)) if at.saturating_sub(last) < keep);
        if still_firing || kept {
            return;
        }
        let pending = match self.window {
            Window::Cumulative { .. } => self.total > 0,
            Window::KOfN { .. } => self.recent.iter().any(|b| *b),
            _ => false,
        };
        self.state = if pending {
            AlertState::Pending
        } else {
            AlertState::Inactive
        };
        if !pending {
            self.active_since = None;
        }
    }
}

/// A number for messages: up to 4 significant decimals, no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    #[async_trait]
    impl Probe for Fixed {
        fn query(&self) -> String {
            "p95".into()
        }
        async fn sample(&self, _ctx: &Ctx) -> Sample {
            Sample::value(1.0)
        }
    }

    fn tracker(window: Window) -> RuleTracker {
        RuleTracker::new(&Rule::new(
            "r",
            "R",
            Arc::new(Fixed),
            Comparison::Above,
            2.0,
            window,
        ))
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn states(t: &mut RuleTracker, samples: &[(u64, Sample)]) -> Vec<AlertState> {
        samples
            .iter()
            .map(|(at, sample)| t.observe(s(*at), sample).state)
            .collect()
    }

    use AlertState::{Firing, Inactive, Pending};

    #[test]
    fn for_fires_only_after_the_whole_duration_and_resets_on_one_healthy() {
        let mut t = tracker(Window::For { duration: s(300) });
        let high = Sample::value(2.5);
        let low = Sample::value(1.0);
        let got = states(
            &mut t,
            &[
                (0, high.clone()),
                (150, high.clone()),
                (285, high.clone()),
                (300, high.clone()),
                (315, low.clone()),
                (330, high.clone()),
                (600, high.clone()),
                (630, high.clone()),
            ],
        );
        assert_eq!(
            got,
            [
                Pending, Pending, Pending, Firing, Inactive, Pending, Pending, Firing
            ]
        );
    }

    #[test]
    fn for_zero_fires_at_once_and_the_limit_itself_is_not_a_breach() {
        let mut t = tracker(Window::For {
            duration: Duration::ZERO,
        });
        assert_eq!(
            states(
                &mut t,
                &[(0, Sample::value(2.0)), (15, Sample::value(2.01))]
            ),
            [Inactive, Firing]
        );
    }

    #[test]
    fn a_query_error_changes_nothing_until_the_policy_counts_it() {
        let mut t = tracker(Window::For { duration: s(30) });
        let err = Sample::Error {
            message: "connection refused".into(),
        };
        let got = states(
            &mut t,
            &[
                (0, Sample::value(3.0)),
                (15, err.clone()),
                (30, Sample::value(3.0)),
                (45, err.clone()),
                (60, err.clone()),
                (75, err.clone()),
            ],
        );
        // Pending survives errors, fires at 30s; three errors in a row
        // then count as breached and keep it firing.
        assert_eq!(got, [Pending, Pending, Firing, Firing, Firing, Firing]);
        let mut t = tracker(Window::Consecutive { count: 3 });
        let got = states(
            &mut t,
            &[
                (0, err.clone()),
                (15, err.clone()),
                (30, err.clone()),
                (45, err.clone()),
                (60, err.clone()),
            ],
        );
        assert_eq!(
            got,
            [Inactive, Inactive, Pending, Pending, Firing],
            "no data is not healthy after 3"
        );
        let mut t = RuleTracker::new(
            &Rule::new(
                "r",
                "R",
                Arc::new(Fixed),
                Comparison::Above,
                2.0,
                Window::Consecutive { count: 1 },
            )
            .on_error(ErrorPolicy::Ignore),
        );
        assert_eq!(
            states(
                &mut t,
                &[
                    (0, err.clone()),
                    (15, err.clone()),
                    (30, err.clone()),
                    (45, err)
                ]
            ),
            [Inactive; 4]
        );
    }

    #[test]
    fn nan_is_no_data_not_healthy() {
        let mut t = tracker(Window::Consecutive { count: 2 });
        let ev = t.observe(s(0), &Sample::value(f64::NAN));
        assert_eq!(ev.judgement, Judgement::NoData);
    }

    #[test]
    fn consecutive_cumulative_and_k_of_n() {
        let hi = Sample::value(5.0);
        let lo = Sample::value(0.0);
        let mut t = tracker(Window::Consecutive { count: 3 });
        assert_eq!(
            states(
                &mut t,
                &[
                    (0, hi.clone()),
                    (1, hi.clone()),
                    (2, lo.clone()),
                    (3, hi.clone()),
                    (4, hi.clone()),
                    (5, hi.clone())
                ]
            ),
            [Pending, Pending, Inactive, Pending, Pending, Firing]
        );
        let mut t = tracker(Window::Cumulative { count: 3 });
        assert_eq!(
            states(
                &mut t,
                &[
                    (0, hi.clone()),
                    (1, lo.clone()),
                    (2, hi.clone()),
                    (3, lo.clone()),
                    (4, hi.clone()),
                    (5, lo.clone())
                ]
            ),
            [Pending, Pending, Pending, Pending, Firing, Firing]
        );
        let mut t = tracker(Window::KOfN { k: 2, n: 3 });
        assert_eq!(
            states(
                &mut t,
                &[
                    (0, hi.clone()),
                    (1, lo.clone()),
                    (2, hi.clone()),
                    (3, lo.clone()),
                    (4, lo.clone()),
                    (5, lo.clone())
                ]
            ),
            [Pending, Pending, Firing, Pending, Pending, Inactive]
        );
    }

    #[test]
    fn keep_firing_for_holds_after_the_condition_clears() {
        let mut t = RuleTracker::new(
            &Rule::new(
                "r",
                "R",
                Arc::new(Fixed),
                Comparison::Above,
                2.0,
                Window::For {
                    duration: Duration::ZERO,
                },
            )
            .keep_firing_for(s(60)),
        );
        let got = states(
            &mut t,
            &[
                (0, Sample::value(3.0)),
                (30, Sample::value(1.0)),
                (59, Sample::value(1.0)),
                (61, Sample::value(1.0)),
            ],
        );
        assert_eq!(got, [Firing, Firing, Firing, Inactive]);
    }

    #[test]
    fn transitions_are_reported_once() {
        let mut t = tracker(Window::For { duration: s(10) });
        assert_eq!(
            t.observe(s(0), &Sample::value(3.0)).transition,
            Some((Inactive, Pending))
        );
        assert_eq!(t.observe(s(5), &Sample::value(3.0)).transition, None);
        assert_eq!(
            t.observe(s(10), &Sample::value(3.0)).transition,
            Some((Pending, Firing))
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(0.0123456), "0.0123");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }

    struct Flaky(std::sync::atomic::AtomicU32);

    #[async_trait]
    impl crate::check::Check for Flaky {
        fn describe(&self) -> crate::check::Description {
            crate::check::Description::read_only("smoke", "the API answers")
        }
        async fn run(&self, _ctx: &Ctx) -> crate::outcome::Outcome {
            use crate::outcome::Outcome;
            match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Outcome::passed("ok").with_measurement("backlog", 12.0, None),
                1 => Outcome::failed("503")
                    .with_evidence("Trace-Id", "abc")
                    .with_measurement("backlog", 40.0, None),
                _ => Outcome::check_error("connection refused"),
            }
        }
    }

    #[tokio::test]
    async fn any_check_can_feed_a_rule() {
        let ctx = Ctx::standalone(
            crate::environment::Environment::new("t"),
            crate::secret::Secrets::new(),
        );
        let probe = CheckProbe::verdict(Arc::new(Flaky(0.into())));
        assert_eq!(probe.query(), "failed(smoke)");
        assert!(matches!(probe.sample(&ctx).await, Sample::Value { value, .. } if value == 0.0));
        match probe.sample(&ctx).await {
            Sample::Value {
                value, trace_ids, ..
            } => assert_eq!((value, trace_ids), (1.0, vec!["abc".to_owned()])),
            other => panic!("{other:?}"),
        }
        assert!(matches!(probe.sample(&ctx).await, Sample::Error { .. }));
        let probe = CheckProbe::measurement(Arc::new(Flaky(0.into())), "backlog");
        assert!(matches!(probe.sample(&ctx).await, Sample::Value { value, .. } if value == 12.0));
        assert!(matches!(probe.sample(&ctx).await, Sample::Value { value, .. } if value == 40.0));
    }
}
