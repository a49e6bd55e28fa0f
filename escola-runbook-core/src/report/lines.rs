use std::io::Write;
use std::sync::Mutex;

use crate::event::{Event, Observer};
use crate::outcome::format_millis;

/// An observer writing one plain line per step outcome and phase to any
/// writer: for logs, CI output, and embedding tools without a terminal UI.
pub struct LineReporter<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> LineReporter<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        LineReporter {
            out: Mutex::new(out),
        }
    }

    /// The line for `event`, if it gets one.
    pub fn line(event: &Event) -> Option<String> {
        match event {
            Event::RunStarted { run, runbook, .. } => Some(format!(
                "run {} of {} on {}{}",
                run.run_id,
                runbook.name,
                run.environment.name,
                if run.dry_run { " (dry-run)" } else { "" }
            )),
            Event::PhaseStarted { phase, .. } => Some(format!("== {phase}")),
            Event::StepRetrying {
                step,
                attempt,
                outcome,
                delay_ms,
                ..
            } => Some(format!(
                "   {step}: attempt {attempt} {}: {}; retrying in {}",
                outcome.status.label(),
                outcome.summary,
                format_millis(*delay_ms)
            )),
            Event::StepFinished {
                step,
                outcome,
                elapsed_ms,
                ..
            } => Some(format!(
                "   {:<11} {step} — {} ({})",
                outcome.status.label(),
                outcome.summary,
                format_millis(*elapsed_ms)
            )),
            Event::RollbackTriggered { reason, .. } => Some(format!(
                "!! rollback triggered by {}: {} — {}",
                reason.step,
                reason.status.label(),
                reason.summary
            )),
            Event::RunFinished {
                verdict,
                exit_code,
                rollback_withheld,
                ..
            } => Some(match rollback_withheld {
                Some(w) => format!(
                    "run {} (exit code {exit_code}): `{}` ended {}; {}",
                    verdict.label(),
                    w.failure.step,
                    w.failure.status.label(),
                    w.detail
                ),
                None => format!("run {} (exit code {exit_code})", verdict.label()),
            }),
            Event::Notice { notice } => Some(format!(
                "notice to {}: {} — {}",
                notice.to,
                notice.delivery.describe(),
                notice.text
            )),
            _ => None,
        }
    }
}

impl<W: Write + Send> Observer for LineReporter<W> {
    fn on_event(&self, event: &Event) {
        if let Some(line) = Self::line(event) {
            let mut out = crate::mutex::lock_unpoisoned(&self.out);
            // An observer cannot fail the run; a closed pipe only loses the view.
            let _ = writeln!(out, "{line}");
        }
    }
}
