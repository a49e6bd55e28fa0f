//! What a smoke run found, its verdict, and renderings for people (text),
//! tools (JSON) and CI dashboards (JUnit XML).

use std::fmt::Write;
use std::time::Duration;

use escola_runbook_core::{Outcome, Status};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

/// The verdict of one assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertionVerdict {
    /// It held.
    Passed,
    /// It was checked and did not hold.
    Failed,
    /// It could not be translated or checked (a Postman script line): never
    /// counted as passed.
    NotEvaluated,
}

/// One assertion on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssertionResult {
    /// What was asserted ("status 200", a Postman test's name).
    pub name: String,
    /// The verdict.
    pub verdict: AssertionVerdict,
    /// What was expected.
    pub expected: String,
    /// What came back.
    pub got: String,
}

/// One HTTP exchange and the assertions on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestResult {
    /// `folder / name`.
    pub name: String,
    /// Method.
    pub method: String,
    /// The URL sent (secrets masked).
    pub url: String,
    /// The status code, when the target answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time to the full response (or to the error), in milliseconds.
    pub latency_ms: f64,
    /// The response's trace id, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Why there is no response (connection refused, timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The assertions, in suite order.
    pub assertions: Vec<AssertionResult>,
}

impl RequestResult {
    /// True when the target answered.
    pub fn answered(&self) -> bool {
        self.error.is_none()
    }

    /// `GET http://host/path`.
    pub fn request_line(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// Counts behind the verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests sent.
    pub requests: usize,
    /// Requests the target answered.
    pub answered: usize,
    /// Assertions that held.
    pub passed: usize,
    /// Assertions that did not hold.
    pub failed: usize,
    /// Assertions not evaluated.
    pub not_evaluated: usize,
}

impl Counts {
    /// The share of what was checked that held, in percent: assertions
    /// passed over assertions evaluated plus requests never answered (each
    /// counts as one failure); `None` when nothing was checked.
    pub fn pass_percent(&self) -> Option<f64> {
        let unanswered = self.requests.saturating_sub(self.answered);
        let checked = self.passed + self.failed + unanswered;
        (checked > 0).then(|| 100.0 * self.passed as f64 / checked as f64)
    }
}

/// The measurement of a suite's [`Counts::pass_percent`], which a watch
/// rule reads to judge smoke runs over time.
pub const PASS_PERCENT: &str = "pass_percent";

/// The result of running a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeReport {
    /// The suite's name.
    pub suite: String,
    /// The base URL used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The verdict: passed, failed, warned (everything evaluated passed but
    /// some assertions were not evaluated), no_data (nothing was evaluated)
    /// or check_error (the target answered no request).
    pub status: Status,
    /// One line with the counts and the first failures.
    pub summary: String,
    /// The counts.
    pub counts: Counts,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: f64,
    /// Every exchange, in suite order (the `If-Match` round trip last).
    pub results: Vec<RequestResult>,
}

/// A failed assertion or an unanswered request, with what a person needs to
/// trust it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<'a> {
    /// The exchange.
    pub request: &'a RequestResult,
    /// What was expected.
    pub expected: String,
    /// What came back.
    pub got: String,
}

impl Failure<'_> {
    /// The failure as evidence text: request, expected, got, Trace-Id.
    pub fn evidence(&self) -> String {
        format!(
            "request: {} [{}]\nexpected: {}\ngot: {}\nTrace-Id: {}",
            self.request.request_line(),
            self.request.name,
            self.expected,
            self.got,
            trace_text(self.request)
        )
    }

    fn one_line(&self) -> String {
        format!(
            "{}: expected {}, got {}",
            self.request.request_line(),
            self.expected,
            self.got
        )
    }
}

fn trace_text(r: &RequestResult) -> String {
    match (&r.trace_id, r.answered()) {
        (Some(t), _) => t.clone(),
        (None, true) => "none in the response".into(),
        (None, false) => "none (no response)".into(),
    }
}

const MAX_FAILURE_EVIDENCE: usize = 20;

impl SmokeReport {
    /// Builds the report and its verdict from the exchanges.
    pub(crate) fn new(
        suite: String,
        base_url: Option<String>,
        results: Vec<RequestResult>,
        took: Duration,
        timeout: Duration,
    ) -> Self {
        let mut counts = Counts {
            requests: results.len(),
            answered: results.iter().filter(|r| r.answered()).count(),
            ..Counts::default()
        };
        for a in results.iter().flat_map(|r| &r.assertions) {
            match a.verdict {
                AssertionVerdict::Passed => counts.passed += 1,
                AssertionVerdict::Failed => counts.failed += 1,
                AssertionVerdict::NotEvaluated => counts.not_evaluated += 1,
            }
        }
        let mut report = SmokeReport {
            suite,
            base_url,
            status: Status::NoData,
            summary: String::new(),
            counts,
            duration_ms: took.as_secs_f64() * 1000.0,
            results,
        };
        (report.status, report.summary) = report.verdict(timeout);
        report
    }

    fn target(&self) -> String {
        self.base_url.clone().unwrap_or_else(|| "the target".into())
    }

    fn verdict(&self, timeout: Duration) -> (Status, String) {
        let c = self.counts;
        let target = self.target();
        if c.requests == 0 {
            return (
                Status::NoData,
                format!(
                    "suite `{}` has no requests: nothing was checked",
                    self.suite
                ),
            );
        }
        if c.answered == 0 {
            let why = self
                .results
                .iter()
                .find_map(|r| r.error.clone())
                .unwrap_or_default();
            return (
                Status::CheckError,
                format!(
                    "{target} did not answer any of {} requests (within {} each): {why}",
                    c.requests,
                    escola_runbook_core::format_duration(timeout)
                ),
            );
        }
        let failures = self.failures();
        let ne = self.not_evaluated_names();
        let ne_text = if ne.is_empty() {
            String::new()
        } else {
            format!(
                "; {} not evaluated: {}",
                ne.len(),
                ne.iter()
                    .take(5)
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if ne.len() > 5 { ", ..." } else { "" }
            )
        };
        if !failures.is_empty() {
            let unanswered = c.requests - c.answered;
            let first: Vec<String> = failures.iter().take(3).map(Failure::one_line).collect();
            return (
                Status::Failed,
                format!(
                    "{} of {} checks failed against {target}{}: {}{}{ne_text}",
                    failures.len(),
                    c.passed + failures.len(),
                    if unanswered > 0 {
                        format!(" ({unanswered} of {} requests unanswered)", c.requests)
                    } else {
                        String::new()
                    },
                    first.join("; "),
                    if failures.len() > 3 { "; ..." } else { "" },
                ),
            );
        }
        if c.passed == 0 {
            return (
                Status::NoData,
                format!(
                    "no assertion was evaluated against {target} ({} requests answered){ne_text}; a suite whose assertions are all unevaluated verifies nothing",
                    c.answered
                ),
            );
        }
        let slowest = self
            .results
            .iter()
            .map(|r| r.latency_ms)
            .fold(0.0_f64, f64::max);
        let base = format!(
            "{} of {} assertions passed in {} requests to {target}; slowest {:.0}ms",
            c.passed,
            c.passed + c.not_evaluated,
            c.requests,
            slowest
        );
        if ne.is_empty() {
            (Status::Passed, base)
        } else {
            (Status::Warned, format!("{base}{ne_text}"))
        }
    }

    /// Every failed assertion and every unanswered request.
    pub fn failures(&self) -> Vec<Failure<'_>> {
        let mut out = Vec::new();
        for r in &self.results {
            if let Some(err) = &r.error {
                out.push(Failure {
                    request: r,
                    expected: "an HTTP response".into(),
                    got: format!("no answer ({err})"),
                });
            }
            for a in r
                .assertions
                .iter()
                .filter(|a| a.verdict == AssertionVerdict::Failed)
            {
                out.push(Failure {
                    request: r,
                    expected: a.expected.clone(),
                    got: a.got.clone(),
                });
            }
        }
        out
    }

    /// Names of the assertions not evaluated, as `request: name`.
    pub fn not_evaluated_names(&self) -> Vec<String> {
        self.results
            .iter()
            .flat_map(|r| {
                r.assertions
                    .iter()
                    .filter(|a| a.verdict == AssertionVerdict::NotEvaluated)
                    .map(move |a| format!("{}: {}", r.name, a.name))
            })
            .collect()
    }

    /// The report as a step outcome: the verdict, the summary, one piece of
    /// evidence per failure (request, expected, got, Trace-Id), and the
    /// counts and latencies as measurements.
    pub fn outcome(&self) -> Outcome {
        let mut o = Outcome::new(self.status, self.summary.clone())
            .with_evidence("suite", self.suite.clone());
        if let Some(b) = &self.base_url {
            o = o.with_evidence("base URL", b.clone());
        }
        o = o.with_evidence(
            "counts",
            format!(
                "{} requests ({} answered); assertions: {} passed, {} failed, {} not evaluated",
                self.counts.requests,
                self.counts.answered,
                self.counts.passed,
                self.counts.failed,
                self.counts.not_evaluated
            ),
        );
        let failures = self.failures();
        for (i, f) in failures.iter().take(MAX_FAILURE_EVIDENCE).enumerate() {
            o = o.with_evidence(format!("failure {}", i + 1), f.evidence());
        }
        if failures.len() > MAX_FAILURE_EVIDENCE {
            o = o.with_evidence(
                "more failures",
                format!(
                    "{} more not listed; run `escola-runbook smoke` for all",
                    failures.len() - MAX_FAILURE_EVIDENCE
                ),
            );
        }
        let ne = self.not_evaluated_names();
        if !ne.is_empty() {
            o = o.with_evidence("not evaluated", ne.join("\n"));
        }
        let mut latencies: Vec<f64> = self
            .results
            .iter()
            .filter(|r| r.answered())
            .map(|r| r.latency_ms / 1000.0)
            .collect();
        latencies.sort_by(f64::total_cmp);
        o = o
            .with_measurement("requests", self.counts.requests as f64, None)
            .with_measurement("assertions_failed", self.counts.failed as f64, None)
            .with_measurement(
                "assertions_not_evaluated",
                self.counts.not_evaluated as f64,
                None,
            );
        if let Some(max) = latencies.last() {
            o = o.with_measurement("latency_max", *max, Some("s"));
        }
        if let Some(percent) = self.counts.pass_percent() {
            o = o.with_measurement(PASS_PERCENT, percent, Some("%"));
        }
        o
    }

    /// For a terminal: one line per request, one per assertion that did not
    /// pass, the verdict last.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "smoke suite `{}` against {}",
            self.suite,
            self.target()
        );
        for r in &self.results {
            let mark = if !r.answered()
                || r.assertions
                    .iter()
                    .any(|a| a.verdict == AssertionVerdict::Failed)
            {
                "FAIL"
            } else if r
                .assertions
                .iter()
                .any(|a| a.verdict == AssertionVerdict::NotEvaluated)
            {
                "N/E "
            } else {
                "ok  "
            };
            let status = r.status.map_or_else(|| "---".to_owned(), |s| s.to_string());
            let _ = writeln!(
                out,
                "  {mark} {status} {:>6.0}ms  {}  ({})",
                r.latency_ms,
                r.name,
                r.request_line()
            );
            if let Some(err) = &r.error {
                let _ = writeln!(out, "         no answer: {err}");
            }
            for a in &r.assertions {
                match a.verdict {
                    AssertionVerdict::Passed => {}
                    AssertionVerdict::Failed => {
                        let _ = writeln!(
                            out,
                            "         failed: {}: expected {}, got {} (Trace-Id: {})",
                            a.name,
                            a.expected,
                            a.got,
                            trace_text(r)
                        );
                    }
                    AssertionVerdict::NotEvaluated => {
                        let _ = writeln!(out, "         not evaluated: {}: {}", a.name, a.got);
                    }
                }
            }
        }
        let _ = writeln!(out, "{}: {}", self.status.label(), self.summary);
        out
    }

    /// The report as pretty JSON.
    pub fn render_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|s| s + "\n")
    }

    /// JUnit XML: one test case per assertion (classname = the request),
    /// failures as `<failure>`, unanswered requests as `<error>`, not
    /// evaluated assertions as `<skipped>` with the reason.
    pub fn render_junit(&self) -> Result<String, quick_junit::SerializeError> {
        let mut report = Report::new(format!("smoke: {}", self.suite));
        report.set_time(Duration::from_secs_f64(self.duration_ms / 1000.0));
        let mut suite = TestSuite::new(self.suite.clone());
        for r in &self.results {
            let time = Duration::from_secs_f64(r.latency_ms.max(0.0) / 1000.0);
            if let Some(err) = &r.error {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(format!("no answer: {err}"));
                status.set_type("no_answer");
                let mut case = TestCase::new(r.request_line(), status);
                case.set_classname(r.name.clone());
                case.set_time(time);
                suite.add_test_case(case);
                continue;
            }
            for a in &r.assertions {
                let status = match a.verdict {
                    AssertionVerdict::Passed => TestCaseStatus::success(),
                    AssertionVerdict::Failed => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(format!(
                            "{}: expected {}, got {} (Trace-Id: {})",
                            r.request_line(),
                            a.expected,
                            a.got,
                            trace_text(r)
                        ));
                        s.set_type("failed");
                        s
                    }
                    AssertionVerdict::NotEvaluated => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(format!("not evaluated: {}", a.got));
                        s.set_type("not_evaluated");
                        s
                    }
                };
                let mut case = TestCase::new(a.name.clone(), status);
                case.set_classname(r.name.clone());
                case.set_time(time);
                suite.add_test_case(case);
            }
        }
        report.add_test_suite(suite);
        report.to_string()
    }
}
