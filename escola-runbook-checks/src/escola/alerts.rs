//! The runbook's suggested alerts (P95 latency, 5xx ratio, 429 on
//! `/v1/escolas`) as rules and watch steps, and its dashboard: shared by the
//! watch steps and `export-alerts`/`export-dashboard`, so the alert a deploy
//! watches is the one Prometheus is given.

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::ParamsError;
use escola_runbook_core::rules::{Comparison, Probe, Rule, Window as RuleWindow};
use escola_runbook_core::{Step, Watch, WatchError};

use crate::db::DEFAULT_STATEMENT_TIMEOUT;
use crate::db::scalar::SqlScalarProbe;
use crate::metrics::compute::StatusMatcher;
use crate::metrics::dashboard::{Dashboard, Panel, Query};
use crate::metrics::probe::{Measure, MetricsProbe};

use super::config::{BACKLOG_SQL, EscolaConfig, EscolaError, MetricsConfig, WatchConfig};

/// The parallel group of the watch steps (fail-fast: the first alert to
/// fire inside the rollback window stops the others).
pub(super) const ALERTS_GROUP: &str = "alerts";

/// An alert of the runbook as a watch step of one rule, in the fail-fast
/// `alerts` group: the first to fire inside the rollback window stops the
/// others and rolls back.
/// `charts` are drawn beside the rule's values without being judged.
fn alert(
    watch: &WatchConfig,
    id: &str,
    title: &str,
    rule: Rule,
    charts: Vec<(&str, Arc<dyn Probe>)>,
) -> Result<Step, WatchError> {
    let unit = rule.unit.clone();
    let mut check = Watch::new(vec![rule], watch.interval, watch.duration)?
        .rollback_window(watch.rollback_window)
        .in_dry_run(watch.watch_in_dry_run);
    for (name, probe) in charts {
        check = check.chart(name, unit.clone(), probe);
    }
    Ok(Step::check(id, title, check)
        .parallel(ALERTS_GROUP)
        .section("Alertas sugeridos"))
}

/// One of the runbook's alerts: the watch step and the rule it watches.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The step id (`alert-latency-p95`).
    pub step: &'static str,
    /// The rule; its title is the runbook's wording.
    pub rule: Rule,
}

/// The runbook's three suggested alerts, measured from the app's metrics:
/// what the watch steps evaluate and what `export-alerts` writes for
/// Prometheus.
pub fn alerts(metrics: &MetricsConfig, watch: &WatchConfig) -> Result<[Alert; 3], EscolaError> {
    let matcher = |pattern: &str| {
        StatusMatcher::new(pattern)
            .map_err(|e| ParamsError::invalid("watch", "status", e.to_string()))
    };
    let p95 = quantile_probe(metrics, watch, 0.95);
    let errors = MetricsProbe::new(
        metrics.source(),
        Measure::ErrorPercent(matcher("5..")?),
        watch.probe_window,
    )
    .min_requests(ALERT_MIN_REQUESTS);
    let limited = MetricsProbe::new(
        metrics.source(),
        Measure::Count(matcher("429")?),
        Duration::ZERO,
    )
    .only("route", "/v1/escolas");
    let p95_title = "`Latência P95 > 2s` por 5 minutos.";
    let errors_title = "`HTTP 5xx > 1%` por 5 minutos.";
    let limited_title =
        "`Rate Limit` excedido para `/v1/escolas` por mais de 3 requisições consecutivas.";
    Ok([
        Alert {
            step: "alert-latency-p95",
            rule: Rule::new(
                "latency-p95",
                p95_title,
                Arc::new(p95),
                Comparison::Above,
                2.0,
                RuleWindow::For {
                    duration: watch.alert_for,
                },
            )
            .unit("s"),
        },
        Alert {
            step: "alert-5xx",
            rule: Rule::new(
                "error-5xx",
                errors_title,
                Arc::new(errors),
                Comparison::Above,
                1.0,
                RuleWindow::For {
                    duration: watch.alert_for,
                },
            )
            .unit("%"),
        },
        Alert {
            step: "alert-rate-limit",
            rule: Rule::new(
                "rate-limit-escolas",
                limited_title,
                Arc::new(limited),
                Comparison::AtLeast,
                1.0,
                RuleWindow::Consecutive { count: 3 },
            ),
        },
    ])
}

/// A latency quantile over the alerts' window, with their traffic floor.
fn quantile_probe(metrics: &MetricsConfig, watch: &WatchConfig, q: f64) -> MetricsProbe {
    MetricsProbe::new(metrics.source(), Measure::Quantile(q), watch.probe_window)
        .min_requests(ALERT_MIN_REQUESTS)
}

/// Fewer requests in an alert's window is no value, never a verdict.
const ALERT_MIN_REQUESTS: f64 = 20.0;

/// How the dashboard counts the sync backlog: the rows of `sync_mutations`
/// matching `pending_where`, with `limit` drawn as a line.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogPanel {
    /// SQL condition selecting pending rows (`status = 'pending'`).
    pub pending_where: String,
    /// The most pending rows the team accepts, if it has said.
    pub limit: Option<f64>,
}

/// The runbook's "Painéis recomendados" as a Grafana dashboard: latency
/// P50/P95/P99 from the histogram and the 5xx share, each with its alert's
/// limit, and the `sync_mutations` backlog from the database. The queries
/// are the alerts' own, so the panels show what the alerts judge.
pub fn dashboard(
    metrics: &MetricsConfig,
    watch: &WatchConfig,
    backlog: &BacklogPanel,
) -> Result<Dashboard, EscolaError> {
    let [p95, errors, _] = alerts(metrics, watch)?;
    let promql = |probe: &dyn Probe, legend: &str| Query::PromQl {
        legend: legend.into(),
        expr: probe.promql(watch.interval).unwrap_or_default(),
    };
    let latency = vec![
        promql(&quantile_probe(metrics, watch, 0.5), "P50"),
        promql(p95.rule.probe.as_ref(), "P95"),
        promql(&quantile_probe(metrics, watch, 0.99), "P99"),
    ];
    Ok(Dashboard {
        title: "Escola Connect API — deploy".into(),
        uid: "escola-runbook".into(),
        panels: vec![
            Panel {
                title: "Escolas > Latência (P50/P95/P99)".into(),
                unit: "s",
                queries: latency,
                threshold: Some(p95.rule.limit),
            },
            Panel {
                title: "Erro rate (HTTP 5xx)".into(),
                unit: "percent",
                queries: vec![promql(errors.rule.probe.as_ref(), "5xx %")],
                threshold: Some(errors.rule.limit),
            },
            Panel {
                title: "Sync Mutations Backlog".into(),
                unit: "short",
                queries: vec![Query::Sql {
                    legend: "pending".into(),
                    sql: format!(
                        "SELECT NOW() AS time, COUNT(*) AS pending FROM {} WHERE {}",
                        crate::db::params::DEFAULT_BACKLOG_TABLE,
                        backlog.pending_where
                    ),
                }],
                threshold: backlog.limit,
            },
        ],
    })
}

/// `panel-sync-backlog`: with the database and a limit configured, a watch
/// of the backlog query beside the alerts (alert only: the runbook's
/// rollback triggers are the smoke tests and the alerts, not the panels);
/// otherwise the manual step.
pub(super) fn backlog_panel(config: &EscolaConfig) -> Result<Step, EscolaError> {
    let (id, title) = (
        "panel-sync-backlog",
        "`Sync Mutations Backlog` (consultar tabela `sync_mutations`).",
    );
    let (Some(secret), Some(limit)) = (&config.database_secret, config.watch.backlog_limit) else {
        return Ok(Step::manual(id, title));
    };
    let probe = SqlScalarProbe::new(BACKLOG_SQL, secret.clone(), DEFAULT_STATEMENT_TIMEOUT)
        .map_err(|e| ParamsError::invalid("watch", "backlog", e.to_string()))?;
    let rule = Rule::new(
        "sync-backlog",
        "Pending sync_mutations rows",
        Arc::new(probe),
        Comparison::Above,
        limit as f64,
        RuleWindow::For {
            duration: config.watch.alert_for,
        },
    )
    .unit("rows")
    .alert_only();
    Ok(
        alert(&config.watch, id, title, rule, Vec::new())?.note(format!(
            "Automated: `{BACKLOG_SQL}` (read-only) every {}, alerting when above {limit} for {}.",
            escola_runbook_core::format_duration(config.watch.interval),
            escola_runbook_core::format_duration(config.watch.alert_for)
        )),
    )
}

/// The three alerts as watch steps.
pub(super) fn alert_steps(
    metrics: &MetricsConfig,
    watch: &WatchConfig,
) -> Result<[Step; 3], EscolaError> {
    let [p95, errors, limited] = alerts(metrics, watch)?;
    // The P95 rule's chart shows the whole distribution around it.
    let quantile = |q| Arc::new(quantile_probe(metrics, watch, q)) as Arc<dyn Probe>;
    let spread = vec![
        ("latency-p50", quantile(0.5)),
        ("latency-p99", quantile(0.99)),
    ];
    let step = |a: Alert, charts| {
        let title = a.rule.title.clone();
        alert(watch, a.step, &title, a.rule, charts)
    };
    Ok([
        step(p95, spread)?,
        step(errors, Vec::new())?,
        step(limited, Vec::new())?.note("Metrics cannot tell consecutive requests apart: the rule fires when /v1/escolas answered 429 in 3 evaluations in a row."),
    ])
}
