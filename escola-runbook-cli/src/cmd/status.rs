//! `escola-runbook status` and `history`: a run, or every run, read from
//! the run directory alone (no lock taken, nothing written), printed as
//! text or as the JSON of the core's `RunStatus` and `HistoryEntry`.

use std::fmt::Write as _;

use escola_runbook_core::runs;
use escola_runbook_core::status::{History, HistoryEntry, RunState, RunStatus, history};
use escola_runbook_core::{format_millis, format_timestamp as time};

use crate::cli::{HistoryArgs, PlanFormat, StatusArgs};
use crate::cmd::approve::approve_command;
use crate::error::CliError;

pub fn status(args: StatusArgs) -> Result<i32, CliError> {
    let journal = runs::locate(&args.run, &args.run_dir)?;
    let (record, _) = super::read_run(&journal)?;
    let status = RunStatus::read(&record, &args.run_dir, chrono::Utc::now())
        .map_err(|e| CliError::Run(e.into()))?;
    match args.format {
        PlanFormat::Json => println!("{}", to_json(&status)?),
        PlanFormat::Text => print!("{}", render_status(&status, &args.run_dir)),
    }
    Ok(escola_runbook_core::exit::SUCCESS)
}

pub fn history_of(args: HistoryArgs) -> Result<i32, CliError> {
    let History {
        runs: mut entries,
        unreadable,
    } = history(&args.run_dir)?;
    if let Some(limit) = args.limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    match args.format {
        PlanFormat::Json => println!("{}", to_json(&entries)?),
        PlanFormat::Text => print!("{}", render_history(&entries)),
    }
    // The other runs are listed; the damaged ones are named, and the exit
    // code says the history is not whole.
    for e in &unreadable {
        eprintln!("error: left out of the history: {e}");
    }
    Ok(if unreadable.is_empty() {
        escola_runbook_core::exit::SUCCESS
    } else {
        escola_runbook_core::exit::USAGE
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(CliError::render("the status as JSON"))
}

/// The status for people: the verdict or where the run is, each step, then
/// what waits for whom.
pub fn render_status(s: &RunStatus, run_dir: &std::path::Path) -> String {
    let mut out = String::new();
    let dry = if s.dry_run { " (dry-run)" } else { "" };
    let _ = writeln!(
        out,
        "run {} of {} in {}{dry}, by {} on {}, started {}",
        s.run_id,
        s.runbook,
        s.environment,
        s.operator,
        s.host,
        time(&s.started_at)
    );
    match (s.state, s.verdict) {
        (RunState::Finished, Some(v)) => {
            let _ = writeln!(
                out,
                "verdict: {} (exit {}){}",
                v.label(),
                v.exit_code(),
                s.finished_at
                    .map(|f| format!(", finished {}", time(&f)))
                    .unwrap_or_default()
            );
        }
        (state, _) => {
            let at = s
                .current
                .as_ref()
                .map(|c| format!(", at {}/{}", c.phase, c.step))
                .unwrap_or_default();
            let _ = writeln!(out, "state: {}{at}", state.label());
        }
    }
    let _ = writeln!(out, "\nsteps:");
    for step in &s.steps {
        let time = if step.elapsed_ms > 0 {
            format!(" ({})", format_millis(step.elapsed_ms))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:<17} {}/{}{time}",
            step.status, step.phase, step.step
        );
        if let Some(result) = step.approval.as_ref().and_then(|a| a.result.as_ref()) {
            let _ = writeln!(out, "  {:<17} {}", "", result.describe());
        }
    }
    if !s.pending_approvals.is_empty() {
        let _ = writeln!(out, "\npending approvals:");
        for p in &s.pending_approvals {
            let _ = writeln!(
                out,
                "  {}/{}: waits for {}\n    {}",
                p.phase,
                p.step,
                p.request.describe(),
                approve_command(&s.run_id, &p.step, run_dir)
            );
        }
    }
    if let Some(h) = &s.lock_holder {
        let gone = s
            .lock_stale
            .as_ref()
            .map(|why| match why.taken_over_by(h, &s.run_id) {
                true => format!("; stale: {why}; `resume` takes it over"),
                false => format!("; stale: {why}"),
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\nlock: held by {} on {} (pid {}, run {}) since {}{gone}",
            h.user,
            h.host,
            h.pid,
            h.run_id,
            time(&h.since)
        );
    }
    if let Some(r) = &s.rollback {
        let _ = writeln!(
            out,
            "\nrolled back: step {}/{} {}: {}",
            r.phase, r.step, r.status, r.summary
        );
    }
    if !s.rules.is_empty() {
        let _ = writeln!(out, "\nwatch rules:");
        for r in &s.rules {
            let _ = writeln!(
                out,
                "  {}/{}: {} ({}, {})",
                r.step,
                r.rule,
                r.state.as_str(),
                r.detail,
                time(&r.at)
            );
        }
    }
    out
}

/// One line per run, each column as wide as its widest cell (a runbook's
/// name can be long); the duration, a number, right-aligned.
pub fn render_history(entries: &[HistoryEntry]) -> String {
    const HEADER: [&str; 8] = [
        "run",
        "runbook",
        "environment",
        "operator",
        "started",
        "duration",
        "verdict",
        "exit",
    ];
    use crate::table::Align::{Left, Right};
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            [
                e.run_id.clone(),
                e.runbook.clone(),
                e.environment.clone(),
                e.operator.clone(),
                time(&e.started_at),
                format_millis(e.duration_ms),
                e.verdict_label(),
                e.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
            ]
        })
        .collect();
    crate::table::render(
        HEADER,
        [Left, Left, Left, Left, Left, Right, Left, Left],
        &rows,
    )
}
