//! `escola-runbook watch` and `escola-runbook replay`: alert rules from a
//! file, evaluated live against the app's metrics or replayed on a past
//! run's recorded values.

use std::fmt::Write;
use std::sync::Arc;

use escola_runbook_checks::metrics::checks::PROMETHEUS_URL_SETTING;
use escola_runbook_checks::metrics::rule_probe::{RuleTarget, environment_target};
use escola_runbook_core::formats::rules_file::Rules;
use escola_runbook_core::report::write_reports;
use escola_runbook_core::rules::{AlertState, RuleAction, fmt_num};
use escola_runbook_core::runs;
use escola_runbook_core::{
    Executor, Phase, Redactor, RunOptions, Runbook, Step, Watch, exit, format_duration,
    run_directory,
};

use crate::cli::{ReplayArgs, WatchArgs};
use crate::error::CliError;
use crate::signals::StopSignals;
use crate::ui::{TermCaps, TerminalView};

pub async fn watch(args: WatchArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let rules = Rules::load(&args.rules)?;
    let (mut environment, secrets) = super::environment(&args.runbook, redactor)?;
    if let Some(url) = &args.prometheus {
        environment = environment.with(PROMETHEUS_URL_SETTING, url);
    }
    // A target the environment must name and does not: refused before
    // anything runs, not a watch whose every evaluation fails.
    for spec in &rules.specs {
        match environment_target(&spec.probe) {
            Some(RuleTarget::AppMetrics)
                if environment.get("metrics_url").is_none()
                    && environment.get("base_url").is_none() =>
            {
                return Err(CliError::NoWatchTarget);
            }
            Some(RuleTarget::Prometheus) if environment.get(PROMETHEUS_URL_SETTING).is_none() => {
                return Err(CliError::NoPrometheus(spec.id.clone()));
            }
            _ => {}
        }
    }
    // Every rule reads the app's metrics with the token and body cap this
    // command gives.
    let settings = serde_json::Map::from_iter([
        ("token_secret".to_owned(), "metrics_token".into()),
        ("max_body".to_owned(), args.max_body.into()),
    ]);
    let catalog = escola_runbook_checks::catalog();
    let live = rules
        .specs
        .iter()
        .map(|spec| rules.live_rule(spec, &catalog, &settings))
        .collect::<Result<Vec<_>, _>>()?;
    let watch =
        Watch::new(live, rules.interval, rules.duration)?.rollback_window(rules.rollback_window);
    let runbook = Runbook::builder(format!("watch {}", args.rules.display()))
        .phase(Phase::watch("watch", "Watch").step(Step::check("rules", "Alert rules", watch)))
        .build()?;
    let view = Arc::new(TerminalView::new(TermCaps::detect()));
    let stop = StopSignals::install()?
        .stop_run(view.clone(), "stopping the watch and finishing the record");
    let record = Executor::new(runbook)
        .options(RunOptions {
            operator: super::operator_name(None),
            host: super::hostname(),
            ..RunOptions::default()
        })
        .environment(environment)
        .secrets(secrets)
        .observer(view.clone())
        .observer(stop.groups)
        .cancellation(stop.cancel)
        .run_root(&args.run_dir)
        .run()
        .await?;
    stop.watcher.abort();
    let dir = run_directory(&args.run_dir, &record.run.run_id);
    write_reports(&record, &dir).map_err(|source| CliError::Reports {
        dir: dir.clone(),
        run_id: record.run.run_id.clone(),
        source,
    })?;
    view.println(&format!("journal, reports and plots in {}", dir.display()));
    Ok(record.exit_code.unwrap_or(exit::STEP_FAILED))
}

pub fn replay(args: ReplayArgs) -> Result<i32, CliError> {
    let rules = Rules::load(&args.rules)?;
    let journal = runs::locate(&args.run, &args.run_dir)?;
    let (record, _) = super::read_run(&journal)?;
    // Each series with when its watch step started, for wall-clock times.
    let series: Vec<_> = record
        .steps()
        .filter_map(|(_, s)| s.outcome.as_ref().map(|o| (s.started_at, o)))
        .flat_map(|(started, o)| o.series.iter().map(move |series| (started, series)))
        .collect();
    if series.is_empty() {
        return Err(CliError::NothingToReplay(record.run.run_id));
    }
    let mut out = String::new();
    let mut would_roll_back = false;
    let _ = writeln!(
        out,
        "replaying run {} under {} (rollback window {})",
        record.run.run_id,
        args.rules.display(),
        format_duration(rules.rollback_window)
    );
    for spec in &rules.specs {
        let Some((started, recorded)) = series.iter().find(|(_, s)| s.name == spec.id) else {
            let names: Vec<&str> = series.iter().map(|(_, s)| s.name.as_str()).collect();
            let _ = writeln!(
                out,
                "\n{}: not recorded in this run (recorded: {})",
                spec.id,
                names.join(", ")
            );
            continue;
        };
        let judging = rules.judgement(spec)?;
        let transitions = judging.tracker().replay(&recorded.points);
        let unit = spec
            .unit
            .clone()
            .or_else(|| recorded.unit.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{}: value {} {}{unit}, {}, action {} — {} recorded values",
            spec.id,
            judging.comparison.symbol(),
            fmt_num(judging.limit),
            judging.window,
            judging.action.as_str(),
            recorded.points.len()
        );
        for (at, from, to, value) in &transitions {
            let _ = writeln!(
                out,
                "  {:>8}  {} -> {}  ({}{unit})",
                format_duration(*at),
                from.as_str(),
                to.as_str(),
                fmt_num(*value)
            );
        }
        let fired = transitions
            .iter()
            .find(|(_, _, to, _)| *to == AlertState::Firing)
            .map(|(at, _, _, value)| (*at, *value));
        let verdict = match fired {
            None => "never fires".to_owned(),
            Some((at, value)) if judging.rollback && at <= rules.rollback_window => {
                let clock = started
                    .and_then(|t| chrono::Duration::from_std(at).ok().map(|d| t + d))
                    .map(|t| format!("{} ", t.format("%H:%M:%S UTC")))
                    .unwrap_or_default();
                let when = format!("{clock}({} into the watch)", format_duration(at));
                match judging.action {
                    RuleAction::Rollback => {
                        would_roll_back = true;
                        format!("rollback: rolled back at {when} (inside the window)")
                    }
                    RuleAction::Ask => format!(
                        "ask: would have asked at {when} ({}{unit}, limit {} {}{unit}) for approval by role {}; approved rolls back, rejected keeps watching",
                        fmt_num(value),
                        judging.comparison.symbol(),
                        fmt_num(judging.limit),
                        judging.ask.as_ref().map_or("", |a| a.role.as_str())
                    ),
                    RuleAction::Observe => format!(
                        "observe: would have rolled back at {when} ({}{unit}, limit {} {}{unit}); never acts",
                        fmt_num(value),
                        judging.comparison.symbol(),
                        fmt_num(judging.limit)
                    ),
                }
            }
            Some((at, _)) => format!("fires at {}: alert only", format_duration(at)),
        };
        let _ = writeln!(out, "  => {verdict}");
    }
    let _ = writeln!(
        out,
        "\nrecorded values may be thinned (at most 720 per rule, the worse of each pair kept), so replay is exact only for watches of up to 720 evaluations"
    );
    print!("{out}");
    Ok(if would_roll_back {
        exit::ROLLED_BACK
    } else {
        exit::SUCCESS
    })
}
