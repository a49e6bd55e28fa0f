//! `escola-runbook plan`.

use escola_runbook_checks::escola::project;
use escola_runbook_core::{Automation, Plan, Redactor, RunbookOrigin};

use crate::cli::{PlanArgs, PlanFormat};
use crate::error::CliError;

pub fn run(args: PlanArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let loaded = super::load_to_describe(&args.runbook, redactor)?;
    let plan = Plan::new(&loaded.runbook, &super::options(&args.selection))?;
    // Only the built-in runbook's steps are shaped by the project file.
    let plan = match loaded.source {
        RunbookOrigin::Builtin { .. } => plan.automatable_by(project::automatable_by),
        _ => plan,
    };
    let text = match args.format {
        PlanFormat::Json => serde_json::to_string_pretty(&plan)
            .map(|mut t| {
                t.push('\n');
                t
            })
            .map_err(CliError::render("the plan as JSON"))?,
        PlanFormat::Text => render_text(&plan),
    };
    print!("{}", redactor.redact(&text));
    Ok(escola_runbook_core::exit::SUCCESS)
}

/// A multi-line text (a table kept as a note, instructions from several
/// cells) with its later lines under its first.
fn continued(text: &str, margin: &str) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{margin}"))
}

fn render_text(plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let outline = &plan.runbook;
    let (automated, manual) = plan.counts();
    let _ = writeln!(
        out,
        "{}\n{} phases, {} steps: {automated} automated, {manual} manual\n",
        outline.name,
        outline.phases.len(),
        plan.steps.len(),
    );
    let w = outline.id_column();
    let mut entries = plan.steps.iter();
    for (number, phase) in outline.phases.iter().enumerate() {
        let mut flags = vec![format!("{:?}", phase.kind).to_lowercase()];
        if phase.rollback_on_failure {
            flags.push("rollback on failure".into());
        }
        let _ = writeln!(
            out,
            "{}. {}  [{}] ({})",
            number + 1,
            phase.title,
            phase.id,
            flags.join(", ")
        );
        for note in &phase.notes {
            let _ = writeln!(out, "   > {}", continued(note, "   > "));
        }
        let mut section: Option<&str> = None;
        for step in &phase.steps {
            let Some(entry) = entries.next() else { break };
            if step.section.as_deref() != section {
                section = step.section.as_deref();
                if let Some(s) = section {
                    let _ = writeln!(out, "   {s}");
                }
            }
            let mut tags = vec![entry.kind.clone()];
            if !step.blocking {
                tags.push("advisory".into());
            }
            if !entry.selected {
                tags.push("not selected".into());
            }
            let _ = writeln!(
                out,
                "     {:<w$} {:<18} {}",
                step.id,
                tags.join(", "),
                step.title
            );
            let _ = writeln!(out, "     {:<w$} run:     {}", "", entry.real_run);
            let _ = writeln!(out, "     {:<w$} dry-run: {}", "", entry.dry_run);
            if !entry.automatable_by.is_empty() {
                let keys: Vec<String> = entry
                    .automatable_by
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect();
                let _ = writeln!(
                    out,
                    "     {:<w$} automate: set {} in the project file (docs/configuration.md)",
                    "",
                    keys.join(" or ")
                );
            }
            if let Some(undo) = &entry.on_rollback {
                let _ = writeln!(out, "     {:<w$} rollback: {undo}", "");
            }
            if let Automation::Manual {
                instructions: Some(text),
            } = &step.automation
            {
                let margin = format!("     {:<w$}          ", "");
                let _ = writeln!(out, "     {:<w$} how:     {}", "", continued(text, &margin));
            }
        }
        out.push('\n');
    }
    if !outline.metadata.contacts.is_empty() {
        let _ = writeln!(out, "Contacts:");
        for c in &outline.metadata.contacts {
            let _ = writeln!(out, "  {:<22} {}", c.role, c.handle);
        }
    }
    out
}
