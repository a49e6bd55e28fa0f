//! The probe an alert rule of a rules file measures with, registered in the
//! catalog under the name rules files build it by
//! ([`RULE_PROBE`], `metrics`): its parameters are the measuring keys of a
//! `[[rules]]` entry, declared here once for every kind of probe: the
//! app's request metrics, any metric by name and labels, a PromQL
//! expression, a SQL scalar query, a smoke suite's pass ratio.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{
    EntryKind, ParamProblem, ParamsError, PathSegment, ProbeConfig,
};
use escola_runbook_core::duration::{Span, ZeroOrMore};
use escola_runbook_core::formats::rules_file::RULE_PROBE;
use escola_runbook_core::rules::{CheckProbe, Probe};
use escola_runbook_core::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::checks::params::SourceKind;
use super::checks::{DEFAULT_TOKEN_SECRET, HISTOGRAM, SourceConfig, baseline_key};
use super::compare::Thresholds;
use super::compute::StatusMatcher;
use super::probe::{Measure, MetricsProbe};
use super::promql_probe::PromqlProbe;
use super::selector::{Selector, SelectorError, valid_name};
use super::source::DEFAULT_MAX_BODY;

/// The secret a `promql` rule sends as Bearer token to Prometheus, when it
/// exists (never the app's metrics token).
pub const PROMETHEUS_TOKEN_SECRET: &str = "prometheus_token";

/// What a rule measures: the app's request metrics over a window (a
/// quantile of the request-duration histogram, the percentage of requests
/// with an error status, their number), any counter's rate or gauge's value
/// by name and labels, a PromQL expression through Prometheus, a SQL
/// SELECT's value, or a smoke suite's pass ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsProbeParams {
    /// What to measure: `quantile`, `error_percent`, `count`,
    /// `latency_shift` (against the recorded baseline), `rate` or `gauge`
    /// (of `metric`), `promql`, `sql`, `smoke_pass_percent`.
    #[serde(default)]
    pub measure: MeasureKind,
    /// The quantile measured by `quantile`, between 0 and 1.
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// Status pattern of the requests `error_percent` (default `5..`) and
    /// `count` (default `429`) count.
    #[serde(default)]
    pub status: Option<String>,
    /// Only requests of this route.
    #[serde(default)]
    pub route: Option<String>,
    /// The request-duration histogram `quantile` reads, without `_bucket`
    /// (default `http_request_duration_seconds`; Micrometer's is
    /// `http_server_requests_seconds`).
    #[serde(default)]
    pub histogram: Option<String>,
    /// The request counter `error_percent` and `count` read (default
    /// `http_requests_total`; a histogram's `NAME_count` counts its
    /// requests too).
    #[serde(default)]
    pub counter: Option<String>,
    /// The label holding the HTTP status, for `error_percent` and `count`
    /// (default `status`).
    #[serde(default)]
    pub status_label: Option<String>,
    /// The sample name `rate` and `gauge` read from the app's /metrics
    /// (`http_requests_total`, `queue_depth`).
    #[serde(default)]
    pub metric: Option<String>,
    /// Label matchers picking the series of `metric` (summed):
    /// `status=~"5.."`, `route!="/health"`, `job="api"`, `method!~"HEAD"`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The PromQL expression `promql` evaluates; its answer must be a
    /// scalar or a vector of one series.
    #[serde(default)]
    pub promql: Option<String>,
    /// The Prometheus server `promql` asks (default: the environment's
    /// `prometheus_url`, which `watch --prometheus` sets).
    #[serde(default)]
    pub prometheus: Option<String>,
    /// The SELECT `sql` runs, whose one row of one column is the value.
    #[serde(default)]
    pub sql: Option<String>,
    /// The secret holding the database URL `sql` connects with.
    #[serde(default = "default_database_secret")]
    pub database_secret: String,
    /// Longest the server may run the `sql` statement.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: Span,
    /// The suite `smoke_pass_percent` runs: a TOML or JSON suite file, or
    /// `escola` (the built-in one, the default).
    #[serde(default)]
    pub suite: Option<String>,
    /// How far back each evaluation looks; `0`: since the previous one.
    #[serde(default = "default_window")]
    pub window: Span<ZeroOrMore>,
    /// Fewer requests in the window is no data (default 20 for `quantile`
    /// and `error_percent`, 0 for `count`).
    #[serde(default)]
    pub min_requests: Option<f64>,
    /// The secret holding the Bearer token of `/metrics`.
    #[serde(default = "default_token_secret")]
    pub token_secret: String,
    /// Cap on one answer's body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body: u64,
}

/// What a rule's probe measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    /// A quantile of the request-duration histogram, in seconds.
    #[default]
    Quantile,
    /// The percentage of requests whose status matches.
    ErrorPercent,
    /// The number of requests whose status matches.
    Count,
    /// How much slower the window's requests are than the baseline
    /// `metrics-baseline` recorded: the Mann-Whitney effect minus 0.5 when
    /// significant, else 0 (a rule `above 0.05` fires on 55% slower).
    LatencyShift,
    /// The per-second rate of the counter `metric` over the window.
    Rate,
    /// The value of the gauge `metric` at each evaluation.
    Gauge,
    /// The value of the PromQL expression `promql`, now.
    Promql,
    /// The value of the SELECT `sql` on the application database.
    Sql,
    /// The percentage of the smoke suite's checks that held.
    SmokePassPercent,
}

impl MeasureKind {
    /// Whether the measure reads the app's `/metrics`.
    pub fn reads_app_metrics(self) -> bool {
        !matches!(
            self,
            MeasureKind::Promql | MeasureKind::Sql | MeasureKind::SmokePassPercent
        )
    }

    /// The measure a rule's parameters name (the default when they name
    /// none; `None` when the name is not a measure).
    pub fn of(params: &Map<String, Value>) -> Option<Self> {
        match params.get("measure") {
            None => Some(MeasureKind::default()),
            Some(v) => serde_json::from_value(v.clone()).ok(),
        }
    }
}

/// Where a rule reads from, when the environment must say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleTarget {
    /// The app's `/metrics`: the setting `metrics_url` or `base_url`.
    AppMetrics,
    /// A Prometheus server: the setting `prometheus_url`
    /// ([`PROMETHEUS_URL_SETTING`](super::checks::PROMETHEUS_URL_SETTING)).
    Prometheus,
}

/// The target a rule with probe parameters `params` reads and the
/// environment must name (`None`: the rule names its own, or needs none),
/// so a watch can refuse a missing one before it starts.
pub fn environment_target(params: &Map<String, Value>) -> Option<RuleTarget> {
    match MeasureKind::of(params)? {
        MeasureKind::Promql if !params.contains_key("prometheus") => Some(RuleTarget::Prometheus),
        m if m.reads_app_metrics() => Some(RuleTarget::AppMetrics),
        _ => None,
    }
}

fn default_quantile() -> f64 {
    0.95
}

fn default_window() -> Span<ZeroOrMore> {
    Span::from(Duration::from_secs(300))
}

fn default_token_secret() -> String {
    DEFAULT_TOKEN_SECRET.to_owned()
}

#[cfg(feature = "mysql")]
fn default_database_secret() -> String {
    crate::db::DEFAULT_SECRET.to_owned()
}

#[cfg(feature = "mysql")]
fn default_statement_timeout() -> Span {
    Span::from(crate::db::DEFAULT_STATEMENT_TIMEOUT)
}

// Without the database family, `sql` is refused: these are never used.
#[cfg(not(feature = "mysql"))]
fn default_database_secret() -> String {
    String::new()
}

#[cfg(not(feature = "mysql"))]
fn default_statement_timeout() -> Span {
    Span::from(Duration::ZERO)
}

/// The `sql` measure's probe.
#[cfg(feature = "mysql")]
fn sql_probe(p: &MetricsProbeParams) -> Result<Arc<dyn Probe>, ParamsError> {
    let sql = MetricsProbeParams::needed("sql", &p.sql, "sql")?;
    let probe = crate::db::scalar::SqlScalarProbe::new(
        sql,
        p.database_secret.clone(),
        p.statement_timeout.get(),
    )
    .map_err(|e| MetricsProbeParams::invalid("sql", e.to_string()))?;
    Ok(Arc::new(probe))
}

#[cfg(not(feature = "mysql"))]
fn sql_probe(_: &MetricsProbeParams) -> Result<Arc<dyn Probe>, ParamsError> {
    Err(MetricsProbeParams::invalid(
        "measure",
        "`sql` needs the `mysql` feature, which this build lacks".into(),
    ))
}

/// The `smoke_pass_percent` measure's probe: the suite's check, its
/// measurement [`PASS_PERCENT`](crate::smoke::PASS_PERCENT) sampled.
fn smoke_probe(p: &MetricsProbeParams) -> Result<Arc<dyn Probe>, ParamsError> {
    let file = p
        .suite
        .as_deref()
        .filter(|s| *s != crate::smoke::BUILTIN_ESCOLA)
        .map(Path::new);
    let check = crate::smoke::SmokeCheck::from_files(file, None)
        .map_err(|e| MetricsProbeParams::invalid("suite", format!("cannot be used: {e}")))?;
    if check.writes() {
        return Err(MetricsProbeParams::invalid(
            "suite",
            "changes data (allow_writes with a scratch path); a probe runs it at every evaluation, so give a read-only suite".into(),
        ));
    }
    Ok(Arc::new(CheckProbe::measurement(
        Arc::new(check),
        crate::smoke::PASS_PERCENT,
    )))
}

fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY
}

impl MetricsProbeParams {
    fn invalid(param: &str, message: String) -> ParamsError {
        ParamsError {
            kind: EntryKind::Probe,
            name: Self::NAME.to_owned(),
            path: vec![PathSegment::Key(param.to_owned())],
            problem: ParamProblem::Invalid { message },
        }
    }

    fn matcher(&self, default: &str) -> Result<StatusMatcher, ParamsError> {
        let pattern = self.status.as_deref().unwrap_or(default);
        StatusMatcher::new(pattern)
            .map_err(|e| Self::invalid("status", format!("is not a usable pattern: {e}")))
    }

    /// `value` of parameter `param`, which measure `measure` needs.
    fn needed<'a>(
        param: &str,
        value: &'a Option<String>,
        measure: &str,
    ) -> Result<&'a str, ParamsError> {
        value
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| Self::invalid(param, format!("is needed by measure `{measure}`")))
    }

    /// Refuses a measure-specific parameter given to another measure: it
    /// would be ignored, and the rule would not measure what it says.
    fn refuse_foreign(&self) -> Result<(), ParamsError> {
        let m = self.measure;
        let given = [
            (
                "metric",
                self.metric.is_some(),
                matches!(m, MeasureKind::Rate | MeasureKind::Gauge),
            ),
            (
                "labels",
                !self.labels.is_empty(),
                matches!(m, MeasureKind::Rate | MeasureKind::Gauge),
            ),
            (
                "status",
                self.status.is_some(),
                matches!(m, MeasureKind::ErrorPercent | MeasureKind::Count),
            ),
            ("route", self.route.is_some(), m.reads_app_metrics()),
            (
                "histogram",
                self.histogram.is_some(),
                m == MeasureKind::Quantile,
            ),
            (
                "counter",
                self.counter.is_some(),
                matches!(m, MeasureKind::ErrorPercent | MeasureKind::Count),
            ),
            (
                "status_label",
                self.status_label.is_some(),
                matches!(m, MeasureKind::ErrorPercent | MeasureKind::Count),
            ),
            (
                "min_requests",
                self.min_requests.is_some(),
                m.reads_app_metrics() && !matches!(m, MeasureKind::Rate | MeasureKind::Gauge),
            ),
            ("promql", self.promql.is_some(), m == MeasureKind::Promql),
            (
                "prometheus",
                self.prometheus.is_some(),
                m == MeasureKind::Promql,
            ),
            ("sql", self.sql.is_some(), m == MeasureKind::Sql),
            (
                "suite",
                self.suite.is_some(),
                m == MeasureKind::SmokePassPercent,
            ),
        ];
        match given.iter().find(|(_, set, applies)| *set && !*applies) {
            Some((param, ..)) => Err(Self::invalid(
                param,
                format!(
                    "does not apply to measure `{}`",
                    serde_json::to_value(m)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            )),
            None => Ok(()),
        }
    }

    fn selector(&self, measure: &str) -> Result<Selector, ParamsError> {
        let metric = Self::needed("metric", &self.metric, measure)?;
        Selector::new(metric, &self.labels).map_err(|e| {
            let param = match e {
                SelectorError::Metric { .. } => "metric",
                _ => "labels",
            };
            Self::invalid(param, e.to_string())
        })
    }

    fn source(&self) -> SourceConfig {
        SourceConfig::scrape()
            .token_secret(self.token_secret.clone())
            .max_body(self.max_body)
    }
}

impl ProbeConfig for MetricsProbeParams {
    const NAME: &'static str = RULE_PROBE;

    fn build(self) -> Result<Arc<dyn Probe>, ParamsError> {
        self.refuse_foreign()?;
        let (measure, min) = match self.measure {
            MeasureKind::Quantile => {
                if !(0.0..=1.0).contains(&self.quantile) {
                    return Err(Self::invalid(
                        "quantile",
                        format!("is {}, not between 0 and 1", self.quantile),
                    ));
                }
                (Measure::Quantile(self.quantile), 20.0)
            }
            MeasureKind::ErrorPercent => (Measure::ErrorPercent(self.matcher("5..")?), 20.0),
            MeasureKind::Count => (Measure::Count(self.matcher("429")?), 0.0),
            MeasureKind::LatencyShift => (
                Measure::LatencyShift(baseline_key(HISTOGRAM)),
                // Below the judge's floor the test has no power.
                Thresholds::default().min_requests,
            ),
            MeasureKind::Rate => (Measure::Rate(self.selector("rate")?), 0.0),
            MeasureKind::Gauge => (Measure::Gauge(self.selector("gauge")?), 0.0),
            MeasureKind::Promql => {
                let expr = Self::needed("promql", &self.promql, "promql")?;
                // The rule's server, else the environment's `prometheus_url`.
                let source = SourceConfig {
                    kind: SourceKind::Prometheus,
                    url: self.prometheus.clone(),
                    ..SourceConfig::scrape()
                }
                .token_secret(PROMETHEUS_TOKEN_SECRET)
                .max_body(self.max_body);
                return Ok(Arc::new(PromqlProbe::new(source, expr)));
            }
            MeasureKind::Sql => return sql_probe(&self),
            MeasureKind::SmokePassPercent => return smoke_probe(&self),
        };
        for (param, name) in [
            ("histogram", &self.histogram),
            ("counter", &self.counter),
            ("status_label", &self.status_label),
        ] {
            if let Some(name) = name.as_deref().filter(|n| !valid_name(n)) {
                return Err(Self::invalid(
                    param,
                    format!(
                        "`{name}` is not a name (letters, digits, `_`, `:`; not starting with a digit)"
                    ),
                ));
            }
        }
        let mut probe = MetricsProbe::new(self.source(), measure, self.window.get())
            .min_requests(self.min_requests.unwrap_or(min));
        if let Some(name) = &self.histogram {
            probe = probe.histogram(name.clone());
        }
        if let Some(name) = &self.counter {
            probe = probe.counter(name.clone());
        }
        if let Some(label) = &self.status_label {
            probe = probe.status_label(label.clone());
        }
        if let Some(route) = &self.route {
            probe = probe.only("route", route.clone());
        }
        Ok(Arc::new(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn build(params: Value) -> Result<Arc<dyn Probe>, ParamsError> {
        let Value::Object(object) = params else {
            panic!("an object");
        };
        let mut catalog = escola_runbook_core::catalog::Catalog::new();
        catalog.register_probe::<MetricsProbeParams>();
        catalog.find_probe("metrics").unwrap().build(object)
    }

    #[test]
    fn each_measure_builds_and_bad_values_name_their_parameter() {
        for measure in ["quantile", "error_percent", "count", "latency_shift"] {
            assert!(
                build(json!({"measure": measure, "window": "0"})).is_ok(),
                "{measure}"
            );
        }
        let rate = build(json!({"measure": "rate", "metric": "http_requests_total",
            "labels": ["status=~\"5..\"", "route!=/health"], "window": "1m"}))
        .unwrap();
        assert_eq!(
            rate.promql(Duration::from_secs(15)).unwrap(),
            r#"sum(rate(http_requests_total{status=~"5..",route!="/health"}[1m]))"#
        );
        let gauge = build(json!({"measure": "gauge", "metric": "queue_depth"})).unwrap();
        assert_eq!(
            gauge.promql(Duration::from_secs(15)).unwrap(),
            "sum(queue_depth)"
        );
        let promql = build(json!({"measure": "promql", "promql": "sum(up)"})).unwrap();
        assert_eq!(promql.query(), "sum(up)");
        let sql = build(json!({"measure": "sql",
            "sql": "SELECT COUNT(*) FROM sync_mutations WHERE status = 'pending'"}))
        .unwrap();
        assert!(sql.query().starts_with("SELECT COUNT(*)"));
        assert!(sql.promql(Duration::from_secs(15)).is_none());
        assert!(build(json!({"measure": "smoke_pass_percent"})).is_ok());
        let err = build(json!({"quantile": 1.5})).err().unwrap();
        assert_eq!(
            err.to_string(),
            "probe `metrics`, parameter `quantile` is 1.5, not between 0 and 1"
        );
        let err = build(json!({"measure": "error_percent", "status": "5..("}))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("probe `metrics`, parameter `status` is not a usable pattern"),
            "{err}"
        );
        for (params, says) in [
            (
                json!({"measure": "rate"}),
                "parameter `metric` is needed by measure `rate`",
            ),
            (
                json!({"measure": "gauge", "metric": "a-b"}),
                "parameter `metric` `a-b` is not a metric name",
            ),
            (
                json!({"measure": "gauge", "metric": "q", "labels": ["x>1"]}),
                "parameter `labels` `x>1` is not a label matcher",
            ),
            (json!({"measure": "promql"}), "parameter `promql` is needed"),
            (
                json!({"measure": "sql", "sql": "DELETE FROM sync_mutations"}),
                "parameter `sql` the SQL starts with `DELETE`",
            ),
            (
                json!({"measure": "quantile", "sql": "SELECT 1"}),
                "parameter `sql` does not apply to measure `quantile`",
            ),
            (
                json!({"measure": "gauge", "metric": "q", "status": "5.."}),
                "parameter `status` does not apply to measure `gauge`",
            ),
            (
                json!({"measure": "sql", "sql": "SELECT 1", "route": "/x"}),
                "parameter `route` does not apply to measure `sql`",
            ),
            (
                json!({"measure": "smoke_pass_percent", "suite": "/nonexistent.toml"}),
                "parameter `suite` cannot be used",
            ),
            (
                json!({"measure": "gauge", "metric": "q", "quantil": 0.5}),
                "parameter `quantil` is not a parameter of `metrics` (did you mean `quantile`?)",
            ),
        ] {
            let err = build(params.clone()).err().unwrap();
            assert!(err.to_string().contains(says), "{params}: {err}");
        }
        // An app whose families are named otherwise (Micrometer).
        let quantile = build(json!({"measure": "quantile", "quantile": 0.99,
            "histogram": "http_server_requests_seconds", "min_requests": 0, "window": "1m"}))
        .unwrap();
        assert_eq!(
            quantile.promql(Duration::from_secs(15)).unwrap(),
            "histogram_quantile(0.99, sum by (le) (rate(http_server_requests_seconds_bucket[1m])))"
        );
        let errors = build(
            json!({"measure": "error_percent", "window": "1m", "min_requests": 0,
            "counter": "http_server_requests_seconds_count", "status_label": "code"}),
        )
        .unwrap();
        assert_eq!(
            errors.promql(Duration::from_secs(15)).unwrap(),
            r#"100 * sum(rate(http_server_requests_seconds_count{code=~"5.."}[1m])) / sum(rate(http_server_requests_seconds_count[1m])) and on() sum(increase(http_server_requests_seconds_count[1m])) >= 1"#
        );
        for (params, says) in [
            (
                json!({"measure": "error_percent", "histogram": "h"}),
                "parameter `histogram` does not apply to measure `error_percent`",
            ),
            (
                json!({"measure": "quantile", "counter": "c"}),
                "parameter `counter` does not apply to measure `quantile`",
            ),
            (
                json!({"measure": "count", "counter": "http-requests"}),
                "parameter `counter` `http-requests` is not a name",
            ),
        ] {
            let err = build(params.clone()).err().unwrap();
            assert!(err.to_string().contains(says), "{params}: {err}");
        }
        let err = build(json!({"measure": "latency"})).err().unwrap();
        assert!(
            err.to_string().contains("unknown variant `latency`"),
            "{err}"
        );
    }
}
