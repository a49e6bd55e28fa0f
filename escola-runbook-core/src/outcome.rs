//! What a step produced: a status that never blurs, a one-line summary, the
//! evidence a person needs to trust it, and numbers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::environment::Need;

/// The verdict of one step.
///
/// The statuses are deliberately many: a check that could not measure
/// ([`Status::NoData`], [`Status::CheckError`], [`Status::TimedOut`]) is never
/// a pass and never an ordinary [`Status::Failed`], so a report can say "the
/// target did not answer" instead of "latency too high".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The condition held, or the operator confirmed the manual step.
    Passed,
    /// The condition was measured and did not hold.
    Failed,
    /// Passed with a caveat worth reading; never stops a run.
    Warned,
    /// Deliberately not run; [`Outcome::skip`] says why.
    Skipped,
    /// The check ran but there was nothing to judge (no traffic, empty series).
    NoData,
    /// The check could not do its job (target down, bad response, missing input).
    CheckError,
    /// The step exceeded its timeout and was cancelled.
    TimedOut,
    /// The run ended before reaching this step.
    NotRun,
    /// The step was interrupted by the operator or by a stop.
    Aborted,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 9] = [
        Status::Passed,
        Status::Failed,
        Status::Warned,
        Status::Skipped,
        Status::NoData,
        Status::CheckError,
        Status::TimedOut,
        Status::NotRun,
        Status::Aborted,
    ];

    /// True for statuses that let a run go on past a blocking step.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Passed | Status::Warned | Status::Skipped)
    }

    /// True for statuses worth another attempt under a retry policy: a
    /// measured failure may be transient, and so may an error or a timeout.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::CheckError | Status::TimedOut | Status::NoData
        )
    }

    /// The stable snake_case name used in JSON, JUnit and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Warned => "warned",
            Status::Skipped => "skipped",
            Status::NoData => "no_data",
            Status::CheckError => "check_error",
            Status::TimedOut => "timed_out",
            Status::NotRun => "not_run",
            Status::Aborted => "aborted",
        }
    }

    /// Human wording for reports and the terminal.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "FAILED",
            Status::Warned => "warned",
            Status::Skipped => "skipped",
            Status::NoData => "NO DATA",
            Status::CheckError => "CHECK ERROR",
            Status::TimedOut => "TIMED OUT",
            Status::NotRun => "not run",
            Status::Aborted => "ABORTED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a step was skipped. Typed, so reports and tools can tell a dry-run
/// preview from an operator's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Dry-run: the step mutates something (or asks a person), so it was
    /// described instead of run.
    DryRun {
        /// What the real run would do.
        would: String,
    },
    /// Dry-run: the step needs a value that a step skipped by the dry-run
    /// would have produced.
    UnknownInDryRun {
        /// The value's key.
        value: String,
        /// The step that would have produced it.
        producer: String,
    },
    /// Left out by `--phase` / `--only`.
    NotSelected,
    /// The step's `when` condition did not hold.
    Condition {
        /// The condition, in words.
        condition: String,
    },
    /// The rollback phase runs only when a rollback is triggered.
    RollbackNotTriggered,
    /// The operator chose to skip it at the confirmation prompt.
    Operator,
    /// A check decided the step does not apply.
    NotApplicable {
        /// Why not.
        detail: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::DryRun { would } => write!(f, "dry-run: would {would}"),
            SkipReason::UnknownInDryRun { value, producer } => write!(
                f,
                "unknown in dry-run: needs `{value}`, which `{producer}` would produce"
            ),
            SkipReason::NotSelected => f.write_str("not selected"),
            SkipReason::Condition { condition } => write!(f, "condition not met: {condition}"),
            SkipReason::RollbackNotTriggered => f.write_str("rollback not triggered"),
            SkipReason::Operator => f.write_str("skipped by the operator"),
            SkipReason::NotApplicable { detail } => write!(f, "not applicable: {detail}"),
        }
    }
}

/// One fact behind a verdict: the value seen, the limit, a status code, a
/// snapshot path and its sha256, a command's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What the fact is ("p95", "exit code", "stdout").
    pub label: String,
    /// The fact itself, as text.
    pub value: String,
}

/// A number the step measured, kept apart from evidence so tools can plot or
/// compare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Metric name ("latency_p95").
    pub name: String,
    /// The value.
    pub value: f64,
    /// Unit, if any ("s", "ratio", "rows").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A time series a step measured (a watch rule's values), kept small
/// enough to plot and to journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Name ("latency-p95").
    pub name: String,
    /// Unit of the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The rule's limit, drawn as a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// `[seconds since start, value]`, in time order.
    pub points: Vec<[f64; 2]>,
    /// Moments a chart draws as vertical lines (the end of the rollback
    /// window), in the points' time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// A moment on a series' time axis worth a line of its own on a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Seconds since the series started.
    pub at: f64,
    /// What happens then ("rollback window ends").
    pub label: String,
}

/// The result of running a step once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// One line a person reads first: value, condition and limit where there
    /// are any.
    pub summary: String,
    /// Why it was skipped, when [`Status::Skipped`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipReason>,
    /// Facts behind the verdict, in the order they matter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Numbers measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// Time series, for plots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    /// Values recorded for later steps (a baseline latency, a snapshot id).
    /// The executor makes them available through the context once the step
    /// has finished without failing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, serde_json::Value>,
    /// What the check needed from the run and was not given; a front end
    /// turns each into its own advice (which flag, which file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Need>,
}

impl Outcome {
    /// An outcome with `status` and `summary` and nothing else.
    pub fn new(status: Status, summary: impl Into<String>) -> Self {
        Outcome {
            status,
            summary: summary.into(),
            skip: None,
            evidence: Vec::new(),
            measurements: Vec::new(),
            series: Vec::new(),
            values: BTreeMap::new(),
            needs: Vec::new(),
        }
    }

    /// The condition held.
    pub fn passed(summary: impl Into<String>) -> Self {
        Self::new(Status::Passed, summary)
    }

    /// The condition was measured and did not hold.
    pub fn failed(summary: impl Into<String>) -> Self {
        Self::new(Status::Failed, summary)
    }

    /// Passed, with a caveat.
    pub fn warned(summary: impl Into<String>) -> Self {
        Self::new(Status::Warned, summary)
    }

    /// Nothing to judge.
    pub fn no_data(summary: impl Into<String>) -> Self {
        Self::new(Status::NoData, summary)
    }

    /// The check could not do its job.
    pub fn check_error(summary: impl Into<String>) -> Self {
        Self::new(Status::CheckError, summary)
    }

    /// The check could not do its job because the run lacks `need`; the
    /// summary names it.
    pub fn missing(need: Need) -> Self {
        Self::check_error(need.to_string()).with_need(need)
    }

    /// Skipped, with a typed reason; the summary is the reason in words.
    pub fn skipped(reason: SkipReason) -> Self {
        let mut o = Self::new(Status::Skipped, reason.to_string());
        o.skip = Some(reason);
        o
    }

    /// Not reached because the run ended first.
    pub fn not_run(summary: impl Into<String>) -> Self {
        Self::new(Status::NotRun, summary)
    }

    /// Interrupted.
    pub fn aborted(summary: impl Into<String>) -> Self {
        Self::new(Status::Aborted, summary)
    }

    /// Exceeded `limit`.
    pub fn timed_out(limit: Duration) -> Self {
        Self::new(
            Status::TimedOut,
            format!("cancelled after the {} timeout", format_duration(limit)),
        )
        .with_evidence("timeout", format_duration(limit))
    }

    /// Adds a piece of evidence.
    pub fn with_evidence(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.evidence.push(Evidence {
            label: label.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a measurement.
    pub fn with_measurement(
        mut self,
        name: impl Into<String>,
        value: f64,
        unit: Option<&str>,
    ) -> Self {
        self.measurements.push(Measurement {
            name: name.into(),
            value,
            unit: unit.map(str::to_owned),
        });
        self
    }

    /// Adds a time series.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Records something the run lacked (see [`Outcome::missing`]).
    pub fn with_need(mut self, need: Need) -> Self {
        self.needs.push(need);
        self
    }

    /// Records a value for later steps.
    pub fn with_value(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.values.insert(key.into(), value);
        self
    }
}

/// `2026-12-02 20:05:53 UTC`: an instant as reports and messages show it.
pub fn format_timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `1 table`, `2 tables`: a count and its noun (plural by `s`) for
/// messages a person reads.
pub fn counted(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// [`format_duration`] of `ms` milliseconds, as records and events keep
/// their times.
pub fn format_millis(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

/// `1.5s`, `2m`, `1h30m`: short and exact enough for evidence.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (ms % 1000) / 100;
        return if tenths == 0 {
            format!("{secs}s")
        } else {
            format!("{secs}.{tenths}s")
        };
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1u64, "table"), "1 table");
        assert_eq!(counted(0u64, "table"), "0 tables");
        assert_eq!(counted(2u32, "file"), "2 files");
    }

    #[test]
    fn could_not_measure_is_neither_ok_nor_plain_failure() {
        for s in [Status::NoData, Status::CheckError, Status::TimedOut] {
            assert!(!s.is_ok(), "{s} must not let a run go on");
            assert_ne!(s, Status::Failed);
        }
        assert!(Status::Warned.is_ok());
        assert!(!Status::Aborted.is_retryable());
    }

    #[test]
    fn status_names_round_trip_through_json() {
        for s in Status::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "24h");
    }
}
