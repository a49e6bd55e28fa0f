//! Alerting rules that outlive the run: the runbook's alert rules written as
//! a Prometheus rule file, so the same conditions keep paging after the
//! 24-hour watch ends. Each rule keeps its id (as an UpperCamelCase alert
//! name), its `for`, and the runbook step it belongs to; the severity says
//! whether the runbook rolls back on it.

use std::fmt::Write;
use std::time::Duration;

use crate::rules::{Rule, Window};

/// A rule of the runbook with where it is watched.
#[derive(Debug, Clone, Copy)]
pub struct WatchedRule<'a> {
    /// The runbook step that watches it.
    pub step: &'a str,
    /// The rule.
    pub rule: &'a Rule,
    /// How often the watch evaluates it.
    pub interval: Duration,
}

/// A rule that has no Prometheus form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Its probe is not a metrics query.
    #[error("rule `{rule}` (step `{step}`) measures {query}, which Prometheus cannot compute")]
    NoPromql {
        /// The rule id.
        rule: String,
        /// Its step.
        step: String,
        /// What it measures.
        query: String,
    },
    /// Its window counts evaluations in a way `for` cannot say.
    #[error(
        "rule `{rule}` (step `{step}`) fires after {window}, which a Prometheus `for` cannot express"
    )]
    Window {
        /// The rule id.
        rule: String,
        /// Its step.
        step: String,
        /// The window, in words.
        window: String,
    },
}

/// One Prometheus alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedAlert {
    /// `latency-p95` → `LatencyP95`.
    pub alert: String,
    /// The condition as PromQL: the probe's expression, compared with the
    /// limit.
    pub expr: String,
    /// How long the condition must hold.
    pub for_: Duration,
    /// How long it keeps firing after the condition clears.
    pub keep_firing_for: Option<Duration>,
    /// `critical` for a rule the runbook rolls back on (action `rollback`
    /// or `ask`), `warning` otherwise (an `observe` rule too).
    pub severity: &'static str,
    /// The runbook step (label `runbook_step`).
    pub step: String,
    /// The condition in words.
    pub summary: String,
    /// The runbook's wording of the rule.
    pub description: String,
}

/// The alert name of rule id `id`: its words in UpperCamelCase
/// (`latency-p95` → `LatencyP95`, `error-5xx` → `Error5xx`).
pub fn alert_name(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The rules as Prometheus alerts; those without a Prometheus form are
/// returned apart, each saying why.
pub fn alerts(rules: &[WatchedRule<'_>]) -> (Vec<ExportedAlert>, Vec<ExportError>) {
    let mut exported = Vec::new();
    let mut refused = Vec::new();
    for w in rules {
        match alert(w) {
            Ok(a) => exported.push(a),
            Err(e) => refused.push(e),
        }
    }
    (exported, refused)
}

fn alert(w: &WatchedRule<'_>) -> Result<ExportedAlert, ExportError> {
    let rule = w.rule;
    let Some(expr) = rule.probe.promql(w.interval) else {
        return Err(ExportError::NoPromql {
            rule: rule.id.clone(),
            step: w.step.to_owned(),
            query: rule.probe.query(),
        });
    };
    // Prometheus is pending from the first breached evaluation and fires
    // once `for` has passed: n evaluations in a row are n − 1 intervals.
    let for_ = match rule.window {
        Window::For { duration } => duration,
        Window::Consecutive { count } => w.interval * count.saturating_sub(1),
        Window::Cumulative { .. } | Window::KOfN { .. } => {
            return Err(ExportError::Window {
                rule: rule.id.clone(),
                step: w.step.to_owned(),
                window: rule.window.to_string(),
            });
        }
    };
    Ok(ExportedAlert {
        alert: alert_name(&rule.id),
        expr: format!(
            "({expr}) {} {}",
            rule.comparison.symbol(),
            crate::rules::fmt_num(rule.limit)
        ),
        for_,
        keep_firing_for: rule.keep_firing_for,
        // An observed rule never rolls back: it pages as a warning.
        severity: if rule.rollback && rule.action != crate::rules::RuleAction::Observe {
            "critical"
        } else {
            "warning"
        },
        step: w.step.to_owned(),
        summary: rule.condition(),
        description: rule.title.clone(),
    })
}

/// The alerts as a Prometheus rule file (YAML) of one group, evaluated
/// every `interval`. `source` says in the header where they came from.
pub fn rule_file(
    group: &str,
    interval: Duration,
    source: &str,
    alerts: &[ExportedAlert],
) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Prometheus alerting rules written by escola-runbook from {source}:\n\
         # the runbook's alert rules, so they keep paging after the run's watch ends."
    );
    let _ = writeln!(out, "groups:");
    let _ = writeln!(out, "  - name: {}", q(group));
    let _ = writeln!(out, "    interval: {}", prometheus_duration(interval));
    let _ = writeln!(out, "    rules:");
    for a in alerts {
        let _ = writeln!(out, "      - alert: {}", q(&a.alert));
        let _ = writeln!(out, "        expr: {}", q(&a.expr));
        let _ = writeln!(out, "        for: {}", prometheus_duration(a.for_));
        if let Some(keep) = a.keep_firing_for {
            let _ = writeln!(
                out,
                "        keep_firing_for: {}",
                prometheus_duration(keep)
            );
        }
        let _ = writeln!(out, "        labels:");
        let _ = writeln!(out, "          severity: {}", q(a.severity));
        let _ = writeln!(out, "          runbook_step: {}", q(&a.step));
        let _ = writeln!(out, "        annotations:");
        let _ = writeln!(out, "          summary: {}", q(&a.summary));
        let _ = writeln!(out, "          description: {}", q(&a.description));
    }
    out
}

/// A duration as Prometheus writes one: `5m`, `1h30m`, `45s`, `500ms`.
pub fn prometheus_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_upper_camel_case_ids() {
        assert_eq!(alert_name("latency-p95"), "LatencyP95");
        assert_eq!(alert_name("error-5xx"), "Error5xx");
        assert_eq!(alert_name("rate_limit.escolas"), "RateLimitEscolas");
    }

    #[test]
    fn an_observed_rule_pages_as_a_warning() {
        struct P95;
        #[async_trait::async_trait]
        impl crate::rules::Probe for P95 {
            fn query(&self) -> String {
                "p95".into()
            }
            fn promql(&self, _interval: Duration) -> Option<String> {
                Some("p95".into())
            }
            async fn sample(&self, _ctx: &crate::Ctx) -> crate::rules::Sample {
                crate::rules::Sample::value(1.0)
            }
        }
        let rule = |action| {
            Rule::new(
                "latency-p95",
                "P95",
                std::sync::Arc::new(P95),
                crate::rules::Comparison::Above,
                2.0,
                crate::rules::Window::For {
                    duration: Duration::from_secs(300),
                },
            )
            .action(action)
        };
        let severity = |rule: &Rule| {
            let (exported, _) = alerts(&[WatchedRule {
                step: "alerts",
                rule,
                interval: Duration::from_secs(15),
            }]);
            exported[0].severity
        };
        use crate::rules::RuleAction;
        assert_eq!(severity(&rule(RuleAction::Rollback)), "critical");
        assert_eq!(severity(&rule(RuleAction::Observe)), "warning");
        assert_eq!(
            severity(&rule(RuleAction::Rollback).alert_only()),
            "warning"
        );
    }

    #[test]
    fn durations_are_written_as_prometheus_reads_them() {
        assert_eq!(prometheus_duration(Duration::from_secs(300)), "5m");
        assert_eq!(prometheus_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(prometheus_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(prometheus_duration(Duration::ZERO), "0s");
    }
}
