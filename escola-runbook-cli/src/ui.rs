//! The live terminal view: a line per finished step with its status and
//! elapsed time, a spinner per running step on a terminal, plain lines when
//! piped. `NO_COLOR` and non-TTY output are respected.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use console::{Style, style};
use escola_runbook_core::report::LineReporter;
use escola_runbook_core::{
    Automation, Delivery, Event, Observer, Outcome, RunbookOutline, Status, Verdict, format_millis,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cmd::approve::approve_command;
use crate::error::need_hint;

/// How the terminal may be used.
#[derive(Debug, Clone, Copy)]
pub struct TermCaps {
    /// Spinners and redraws (stderr is a terminal).
    pub interactive: bool,
    /// ANSI colours.
    pub color: bool,
}

impl TermCaps {
    /// Detects stderr's capabilities; `NO_COLOR` (any non-empty value) and
    /// `TERM=dumb` turn colour off.
    pub fn detect() -> Self {
        let tty = std::io::stderr().is_terminal();
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let caps = TermCaps {
            interactive: tty && !dumb,
            color: tty && !dumb && !no_color,
        };
        console::set_colors_enabled_stderr(caps.color);
        caps
    }
}

/// The terminal observer.
pub struct TerminalView {
    caps: TermCaps,
    multi: MultiProgress,
    state: Mutex<ViewState>,
}

#[derive(Default)]
struct ViewState {
    outline: Option<RunbookOutline>,
    /// The phase whose heading was printed last.
    heading: Option<String>,
    spinners: HashMap<String, ProgressBar>,
    /// The run's id and run directory, for the `approve` command a waiting
    /// step prints.
    run: Option<(String, std::path::PathBuf)>,
}

impl TerminalView {
    pub fn new(caps: TermCaps) -> Self {
        let target = if caps.interactive {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        TerminalView {
            caps,
            multi: MultiProgress::with_draw_target(target),
            state: Mutex::new(ViewState::default()),
        }
    }

    /// Gives the view the runbook's titles before the first event (a resumed
    /// run has no `run_started` event to carry them).
    pub fn set_outline(&self, outline: RunbookOutline) {
        self.state().outline = Some(outline);
    }

    /// Gives the view the run's id and run directory, so a step waiting for
    /// approval prints the exact command that approves it.
    pub fn set_run(&self, run_id: String, run_dir: std::path::PathBuf) {
        self.state().run = Some((run_id, run_dir));
    }

    /// Prints a line above any spinners. A terminal that went away (SIGHUP)
    /// only loses the view.
    pub fn println(&self, line: &str) {
        if self.caps.interactive {
            let _ = self.multi.println(line);
        } else {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    /// Runs `f` with the spinners hidden (for a prompt).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ViewState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Prints the heading of `phase` unless it was the last one printed
    /// (phases the run never reached get their heading with their steps).
    fn heading(&self, phase: &str) {
        let mut state = self.state();
        if state.heading.as_deref() == Some(phase) {
            return;
        }
        state.heading = Some(phase.to_owned());
        let title = state
            .outline
            .as_ref()
            .and_then(|o| {
                o.phases
                    .iter()
                    .position(|p| p.id == phase)
                    .map(|i| format!("{}. {}", i + 1, o.phases[i].title))
            })
            .unwrap_or_else(|| phase.to_owned());
        drop(state);
        self.println(&format!(
            "\n{}",
            style(title).bold().underlined().for_stderr()
        ));
    }

    fn title_of(&self, step: &str) -> (String, bool) {
        let state = self.state();
        state
            .outline
            .as_ref()
            .and_then(|o| {
                o.phases
                    .iter()
                    .flat_map(|p| p.steps.iter())
                    .find(|s| s.id == step)
            })
            .map(|s| {
                (
                    s.title.clone(),
                    matches!(s.automation, Automation::Manual { .. }),
                )
            })
            .unwrap_or_else(|| (step.to_owned(), false))
    }
}

/// The lines a terminal shows of a failed command's output: the last
/// [`TAIL_LINES`] of its stderr, else of its stdout.
fn output_tail(outcome: &Outcome) -> Vec<&str> {
    let text = |label: &str| {
        outcome
            .evidence
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.trim_end())
            .filter(|v| !v.is_empty())
    };
    let Some(output) = text("stderr").or_else(|| text("stdout")) else {
        return Vec::new();
    };
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}

/// How many lines of a failed command's output the terminal shows.
const TAIL_LINES: usize = 5;

fn status_style(status: Status) -> Style {
    match status {
        Status::Passed => Style::new().green(),
        Status::Warned => Style::new().yellow(),
        Status::Skipped | Status::NotRun => Style::new().dim(),
        Status::Failed | Status::Aborted => Style::new().red().bold(),
        Status::NoData | Status::CheckError | Status::TimedOut => Style::new().magenta().bold(),
    }
}

fn verdict_style(verdict: Verdict) -> Style {
    match verdict {
        Verdict::Succeeded => Style::new().green().bold(),
        Verdict::Stopped | Verdict::RolledBack => Style::new().yellow().bold(),
        Verdict::Failed | Verdict::RollbackFailed => Style::new().red().bold(),
    }
}

impl Observer for TerminalView {
    fn on_event(&self, event: &Event) {
        match event {
            Event::RunStarted { runbook, .. } => {
                self.state().outline = Some(runbook.clone());
                if let Some(line) = LineReporter::<std::io::Stderr>::line(event) {
                    self.println(&style(line).bold().for_stderr().to_string());
                }
            }
            Event::PhaseStarted { phase, .. } => self.heading(phase),
            Event::StepStarted { step, attempt, .. } => {
                let (title, manual) = self.title_of(step);
                if !self.caps.interactive || manual {
                    return;
                }
                let bar = self.multi.add(ProgressBar::new_spinner());
                let template = "  {spinner} {prefix} {wide_msg} {elapsed}";
                if let Ok(s) = ProgressStyle::with_template(template) {
                    bar.set_style(s);
                }
                let retry = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                bar.set_prefix(format!("{step}{retry}"));
                bar.set_message(title);
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Some(old) = self.state().spinners.insert(step.clone(), bar) {
                    old.finish_and_clear();
                }
            }
            Event::StepProgress { step, message, .. } => {
                if let Some(bar) = self.state().spinners.get(step) {
                    bar.set_message(message.clone());
                }
            }
            Event::StepRetrying { .. } => {
                if let Some(line) = LineReporter::<std::io::Stderr>::line(event) {
                    self.println(&style(line).yellow().for_stderr().to_string());
                }
            }
            Event::StepFinished {
                phase,
                step,
                outcome,
                elapsed_ms,
                ..
            } => {
                if let Some(bar) = self.state().spinners.remove(step) {
                    bar.finish_and_clear();
                }
                self.heading(phase);
                let label = status_style(outcome.status)
                    .apply_to(format!("{:<11}", outcome.status.label()));
                let elapsed = if *elapsed_ms > 0 {
                    format!(" ({})", format_millis(*elapsed_ms))
                } else {
                    String::new()
                };
                let (title, _) = self.title_of(step);
                // Padded before styling: escape codes would count as width.
                let w = self.state().outline.as_ref().map_or(0, |o| o.id_column());
                let mut line = format!(
                    "  {} {} {}{}",
                    label.for_stderr(),
                    style(format!("{step:<w$}")).bold().for_stderr(),
                    title,
                    style(elapsed).dim().for_stderr()
                );
                if !matches!(outcome.status, Status::Passed) || !outcome.evidence.is_empty() {
                    line.push_str(&format!(
                        "\n  {:<11}   {}",
                        "",
                        style(&outcome.summary).dim().for_stderr()
                    ));
                }
                // What a failed command printed last is what the operator
                // needs first; the report keeps all of it.
                if !outcome.status.is_ok() && outcome.status != Status::NotRun {
                    for text in output_tail(outcome) {
                        line.push_str(&format!(
                            "\n  {:<11}   {}",
                            "",
                            style(format!("| {text}")).dim().for_stderr()
                        ));
                    }
                }
                for need in &outcome.needs {
                    line.push_str(&format!(
                        "\n  {:<11}   {}",
                        "",
                        style(need_hint(need)).yellow().for_stderr()
                    ));
                }
                self.println(&line);
            }
            Event::RollbackTriggered { .. } => {
                if let Some(line) = LineReporter::<std::io::Stderr>::line(event) {
                    self.println(&format!("\n{}", style(line).red().bold().for_stderr()));
                }
            }
            Event::RunFinished { verdict, .. } => {
                if let Some(line) = LineReporter::<std::io::Stderr>::line(event) {
                    self.println(&format!(
                        "\n{}",
                        verdict_style(*verdict).apply_to(line).for_stderr()
                    ));
                }
            }
            Event::RunResumed { resume } => {
                let decided: Vec<String> = resume
                    .resolutions
                    .iter()
                    .map(|r| format!("{}: {:?}", r.step, r.decision).to_lowercase())
                    .collect();
                let decided = if decided.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", decided.join(", "))
                };
                self.println(
                    &style(format!(
                        "resumed by {} on {}{decided}",
                        resume.operator, resume.host
                    ))
                    .bold()
                    .for_stderr()
                    .to_string(),
                );
            }
            Event::LockBroken {
                previous,
                by,
                reason,
                ..
            } => self.println(
                &style(format!(
                    "deploy lock of {} on {} (run {}) broken by {by}: {reason}",
                    previous.user, previous.host, previous.run_id
                ))
                .yellow()
                .for_stderr()
                .to_string(),
            ),
            Event::RuleTransition {
                step, transition, ..
            } => {
                let line = format!(
                    "  {step}: rule {} {} -> {} ({}; {})",
                    transition.rule,
                    transition.from.as_str(),
                    transition.to.as_str(),
                    transition.detail,
                    transition.condition
                );
                let styled = if transition.to == escola_runbook_core::rules::AlertState::Firing {
                    style(line).red().bold()
                } else {
                    style(line).yellow()
                };
                self.println(&styled.for_stderr().to_string());
            }
            Event::UndoFinished { step, outcome, .. } => {
                let label = status_style(outcome.status)
                    .apply_to(format!("{:<11}", outcome.status.label()));
                self.println(&format!(
                    "  {} undo {} — {}",
                    label.for_stderr(),
                    style(step).bold().for_stderr(),
                    outcome.summary
                ));
            }
            Event::LockLost { detail, .. } => {
                self.println(&style(detail).red().bold().for_stderr().to_string())
            }
            Event::Notice { notice } => {
                // Delivered milestones are the normal case; a message
                // people did not get (or a dry-run did not send) is shown.
                if matches!(notice.delivery, Delivery::Delivered { .. }) {
                    return;
                }
                if let Some(line) = LineReporter::<std::io::Stderr>::line(event) {
                    self.println(&style(line).yellow().for_stderr().to_string());
                }
            }
            Event::ApprovalRequested { step, request, .. } => {
                let command = match &self.state().run {
                    Some((run_id, run_dir)) => approve_command(run_id, step, run_dir),
                    None => approve_command("latest", step, std::path::Path::new(".")),
                };
                self.println(
                    &style(format!(
                        "  {step} waits for {}; approve with: {command}",
                        request.describe()
                    ))
                    .yellow()
                    .bold()
                    .for_stderr()
                    .to_string(),
                );
            }
            Event::ApprovalRecorded { step, result, .. } => {
                self.println(&format!("  {step}: {}", result.describe()));
            }
            Event::RunAwaitingApproval { step, .. } => {
                let run_id = self
                    .state()
                    .run
                    .as_ref()
                    .map_or_else(|| "latest".to_owned(), |(id, _)| id.clone());
                self.println(
                &style(format!(
                    "\nthe run stops here, resumable: step {step} waits for approval; once decided, continue with: escola-runbook resume {run_id}"
                ))
                .yellow()
                .bold()
                .for_stderr()
                .to_string(),
            );
            }
            Event::PhaseFinished { .. }
            | Event::ConfirmationRecorded { .. }
            | Event::ProcessGroupStarted { .. } => {}
        }
    }
}
