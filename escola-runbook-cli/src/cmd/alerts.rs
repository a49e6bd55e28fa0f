//! `escola-runbook export-alerts` and `export-dashboard`: what the run
//! watches, for the Prometheus and Grafana the team keeps after it.

use escola_runbook_checks::escola::{self, BacklogPanel, MetricsConfig, WatchConfig};
use escola_runbook_core::alerting::{self, WatchedRule};
use escola_runbook_core::exit;
use escola_runbook_core::formats::rules_file::Rules;

use super::import::write_out;
use crate::cli::{ExportAlertsArgs, ExportDashboardArgs};
use crate::error::CliError;

/// The step id `watch --rules` gives its rules; their alerts carry it.
const RULES_FILE_STEP: &str = "rules";

pub fn export(args: ExportAlertsArgs) -> Result<i32, CliError> {
    let (rules, interval, source) = match &args.rules {
        Some(path) => {
            let file = Rules::load(path)?;
            let catalog = escola_runbook_checks::catalog();
            let rules = file
                .specs
                .iter()
                .map(|spec| {
                    let rule = file.live_rule(spec, &catalog, &serde_json::Map::new())?;
                    Ok((RULES_FILE_STEP, rule))
                })
                .collect::<Result<Vec<_>, CliError>>()?;
            (rules, file.interval, path.display().to_string())
        }
        None => {
            let watch = WatchConfig::default();
            let rules = escola::alerts(&MetricsConfig::default(), &watch)?
                .into_iter()
                .map(|a| (a.step, a.rule))
                .collect();
            (
                rules,
                watch.interval,
                "the built-in Escola runbook".to_owned(),
            )
        }
    };
    let watched: Vec<WatchedRule<'_>> = rules
        .iter()
        .map(|(step, rule)| WatchedRule {
            step,
            rule,
            interval,
        })
        .collect();
    let (alerts, refused) = alerting::alerts(&watched);
    for e in &refused {
        eprintln!("warning: {e}; left out");
    }
    let text = alerting::rule_file("escola-runbook", interval, &source, &alerts);
    write_out(args.output.as_deref(), &text)?;
    Ok(exit::SUCCESS)
}

pub fn export_dashboard(args: ExportDashboardArgs) -> Result<i32, CliError> {
    let dashboard = escola::dashboard(
        &MetricsConfig::default(),
        &WatchConfig::default(),
        &BacklogPanel {
            pending_where: args.pending_where,
            limit: args.backlog_limit,
        },
    )?;
    let text =
        serde_json::to_string_pretty(&dashboard.to_grafana()).map_err(CliError::render("JSON"))?;
    write_out(args.output.as_deref(), &format!("{text}\n"))?;
    Ok(exit::SUCCESS)
}
