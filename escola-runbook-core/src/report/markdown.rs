use std::fmt::Write;

use crate::event::RunbookOrigin;
use crate::outcome::{Status, format_millis};
use crate::outline::Automation;
use crate::record::{RunRecord, StepRecord};

/// The runbook as the team wrote it, ticked: a heading per phase, `[x]`,
/// `[!]` or `[ ]` per step, with who/when/evidence beneath each (and, with
/// feature `plots`, a link to the plot of each series a step measured).
pub fn render_markdown(record: &RunRecord) -> String {
    let mut md = String::new();
    let run = &record.run;
    let _ = writeln!(md, "# {}\n", record.runbook);
    let _ = writeln!(
        md,
        "- **Run:** `{}`{}\n- **Environment:** `{}`\n- **Operator:** {} on `{}`\n- **Started:** {}",
        run.run_id,
        if run.dry_run {
            " (dry-run: nothing was changed, no one was asked)"
        } else {
            ""
        },
        run.environment.name,
        run.operator,
        run.host,
        timestamp(&run.started_at),
    );
    match (record.verdict, record.finished_at, record.exit_code) {
        (Some(verdict), Some(at), Some(code)) => {
            let _ = writeln!(
                md,
                "- **Finished:** {}\n- **Verdict:** **{}** (exit code {code})",
                timestamp(&at),
                verdict.label()
            );
        }
        _ => match &record.awaiting_approval {
            Some(step) => {
                let _ = writeln!(
                    md,
                    "- **Verdict:** **awaiting approval** of step `{step}` (exit code {}); the run continues when resumed",
                    crate::exit::AWAITING_APPROVAL
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- **Verdict:** **unfinished** — the record stops before the end of the run"
                );
            }
        },
    }
    if let Some(source) = record.source() {
        let _ = writeln!(md, "- **Runbook source:** {}", origin_line(source));
    }
    if !run.phases.is_empty() || !run.only.is_empty() {
        let _ = writeln!(
            md,
            "- **Selection:** phases {:?}, steps {:?}",
            run.phases, run.only
        );
    }
    let mut counts: Vec<String> = record
        .counts()
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str().replace('_', " ")))
        .collect();
    match record.unrecorded() {
        0 => {}
        n => counts.push(format!("{n} {}", crate::record::OUTCOME_NOT_RECORDED)),
    }
    let _ = writeln!(md, "- **Steps:** {}", counts.join(", "));
    if let Some(reason) = &record.rollback {
        let _ = writeln!(
            md,
            "\n> **Rollback triggered** by step `{}` in phase `{}`: {} — {}",
            reason.step,
            reason.phase,
            reason.status.label(),
            reason.summary
        );
    }
    if let Some(withheld) = &record.rollback_withheld {
        let _ = writeln!(
            md,
            "\n> **Not rolled back:** step `{}` in phase `{}` ended {} — {}; {}",
            withheld.failure.step,
            withheld.failure.phase,
            withheld.failure.status.label(),
            withheld.failure.summary,
            withheld.detail
        );
    }
    #[cfg(feature = "plots")]
    let phase_charts = super::plot::phase_charts(record);
    for (number, phase) in record.phases.iter().enumerate() {
        let status = phase
            .status
            .map(|s| format!(" — {}", s.label()))
            .unwrap_or_default();
        let _ = writeln!(md, "\n## {}. {}{status}\n", number + 1, phase.title);
        for note in &phase.notes {
            let _ = writeln!(md, "> {note}\n");
        }
        let mut section: Option<&str> = None;
        for step in &phase.steps {
            let indent = match step.outline.section.as_deref() {
                Some(s) => {
                    if section != Some(s) {
                        let _ = writeln!(md, "- **{s}**");
                    }
                    section = Some(s);
                    "  "
                }
                None => {
                    section = None;
                    ""
                }
            };
            write_step(&mut md, indent, step);
        }
        #[cfg(feature = "plots")]
        if phase_charts
            .iter()
            .any(|c| c.path == super::plot::phase_chart_path(&phase.id))
        {
            let _ = writeln!(
                md,
                "- chart: ![{}]({})",
                phase.title,
                super::plot::phase_chart_path(&phase.id)
            );
        }
    }
    if !record.rule_transitions.is_empty() {
        let _ = writeln!(
            md,
            "\n## Alerts\n\n| when | after | rule | change | seen | condition |\n|---|---|---|---|---|---|"
        );
        for t in &record.rule_transitions {
            let tr = &t.transition;
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} → {} | {} | {} |",
                timestamp(&tr.at),
                format_millis(tr.offset_ms),
                tr.rule,
                tr.from.as_str(),
                tr.to.as_str(),
                tr.detail.replace('|', "\\|"),
                tr.condition.replace('|', "\\|"),
            );
        }
    }
    if !record.notices.is_empty() {
        let _ = writeln!(
            md,
            "\n## Notices\n\n| when | to | message | delivery |\n|---|---|---|---|"
        );
        for n in &record.notices {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} |",
                timestamp(&n.at),
                n.to,
                n.text.replace('|', "\\|").replace('\n', " "),
                n.delivery.describe().replace('|', "\\|"),
            );
        }
    }
    let meta = &record.metadata;
    if !meta.contacts.is_empty() {
        let _ = writeln!(md, "\n## Contacts\n\n| Role | Handle |\n|---|---|");
        for c in &meta.contacts {
            let _ = writeln!(md, "| {} | `{}` |", c.role, c.handle);
        }
    }
    if !meta.glossary.is_empty() {
        let _ = writeln!(md, "\n## Glossary\n");
        for (term, meaning) in &meta.glossary {
            let _ = writeln!(md, "- *{term}*: {meaning}");
        }
    }
    md
}

fn write_step(md: &mut String, indent: &str, step: &StepRecord) {
    let status = step.status();
    let automation = match &step.outline.automation {
        Automation::Manual { .. } => "",
        Automation::Check { description } if description.mutates => " *(action)*",
        Automation::Check { .. } => " *(check)*",
    };
    let _ = writeln!(
        md,
        "{indent}- {} {}{automation}",
        checkbox(step),
        step.outline.title
    );
    let sub = format!("{indent}  ");
    let summary = step.summary();
    let timing = if step.elapsed_ms > 0 {
        format!(" · {}", format_millis(step.elapsed_ms))
    } else {
        String::new()
    };
    let attempts = if step.attempts > 1 {
        format!(" · {} attempts", step.attempts)
    } else {
        String::new()
    };
    let line = match (status, &step.confirmation) {
        (_, Some(c)) => {
            let via = c.via.describe();
            format!("{} {via}, {}{timing}", summary, timestamp(&c.at))
        }
        (Status::Passed, None) => format!("{summary}{timing}{attempts}"),
        (Status::Skipped | Status::NotRun, None) => format!("*{} — {summary}*", status.label()),
        (_, None) => format!("**{}** — {summary}{timing}{attempts}", step.status_label()),
    };
    let _ = writeln!(md, "{sub}- {line}");
    if let Some(outcome) = &step.outcome {
        for e in &outcome.evidence {
            write_evidence(md, &sub, &e.label, &e.value);
        }
    }
    // The plots exist only where they are drawn.
    #[cfg(feature = "plots")]
    if let Some(outcome) = &step.outcome {
        for series in &outcome.series {
            let _ = writeln!(
                md,
                "{sub}- plot: ![{}]({})",
                series.name,
                super::plot::plot_path(&step.outline.id, &series.name)
            );
        }
    }
    if let Some(undo) = &step.undo {
        let _ = writeln!(
            md,
            "{sub}- undone on rollback: {} — {}",
            undo.status.label(),
            undo.summary
        );
    }
    for retried in &step.retried {
        let _ = writeln!(
            md,
            "{sub}- retried after {}: {}",
            retried.status.label(),
            retried.summary
        );
    }
    for note in &step.outline.notes {
        let _ = writeln!(md, "{sub}- note: {note}");
    }
}

fn write_evidence(md: &mut String, indent: &str, label: &str, value: &str) {
    if !value.contains('\n') {
        let _ = writeln!(md, "{indent}- {label}: `{}`", value.replace('`', "'"));
        return;
    }
    let longest_run = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let _ = writeln!(md, "{indent}- {label}:\n\n{indent}  {fence}text");
    for line in value.trim_end_matches('\n').lines() {
        let _ = writeln!(md, "{indent}  {line}");
    }
    let _ = writeln!(md, "{indent}  {fence}\n");
}

fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    crate::outcome::format_timestamp(at)
}

/// The runbook source with its whole hash, as an audit line.
fn origin_line(source: &RunbookOrigin) -> String {
    match source {
        RunbookOrigin::Builtin {
            tool_version,
            config_sha256,
            ..
        } => format!(
            "built-in runbook of version {tool_version}, configuration sha256 `{config_sha256}`"
        ),
        RunbookOrigin::TomlFile { path, sha256 }
        | RunbookOrigin::MarkdownFile { path, sha256, .. } => {
            format!("{} `{}`, sha256 `{sha256}`", source.kind(), path.display())
        }
    }
}

/// The checkbox for a step: `[x]` done, `[!]` went wrong, `[ ]` not done.
pub fn checkbox(step: &StepRecord) -> &'static str {
    match step.status() {
        Status::Passed | Status::Warned => "[x]",
        Status::Failed
        | Status::NoData
        | Status::CheckError
        | Status::TimedOut
        | Status::Aborted => "[!]",
        Status::Skipped | Status::NotRun => "[ ]",
    }
}
