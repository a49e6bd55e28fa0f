//! A finished run written back into the team's own document.

use super::import::import;
use super::imported::{EVIDENCE_MARK, ImportOptions, SourceMap, StepAnchor, fnv1a};
use crate::catalog::Catalog;
use crate::report::checkbox;
use crate::{RunRecord, Status, StepRecord, format_millis};

/// The run cannot be written into this document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The source map was made from another document (or another version).
    #[error(
        "the document is not the one the run's steps were imported from (it changed since); \
         export from the same Markdown file the runbook was imported from"
    )]
    DocumentChanged,
    /// None of the document's steps is in the run.
    #[error(
        "none of the document's {steps} steps is in run `{run}`; was the run made from this document?"
    )]
    NotThisRun {
        /// Steps in the document.
        steps: usize,
        /// The run id.
        run: String,
    },
}

/// Longest summary kept on an evidence line; the full record is in the
/// run's reports.
const MAX_SUMMARY: usize = 200;

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX_SUMMARY {
        let cut: String = flat.chars().take(MAX_SUMMARY).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// `run: passed — confirmed by ana (pre-approved, 2026-11-29 02:00:00 UTC)`;
/// `named` puts the step's id after `run:`, for rows of a table whose
/// evidence lines stand together after it.
fn evidence_line(step: &StepRecord, named: bool) -> String {
    let status = step.status();
    // An approval's decision says who, when, from where and why; the
    // step's own summary follows when it says more (an automated step's).
    let decided = step
        .approval
        .as_ref()
        .and_then(|a| a.result.as_ref())
        .map(|r| (r.describe(), r.headline()));
    let stamped = decided.is_some();
    let summary = match decided {
        Some((said, headline)) if step.summary() == headline => one_line(&said),
        Some((said, _)) => one_line(&format!("{said}; {}", step.summary())),
        None => one_line(step.summary()),
    };
    let name = if named {
        format!("`{}` ", step.outline.id)
    } else {
        String::new()
    };
    let mut line = format!(
        "**{EVIDENCE_MARK}** {name}{} — {summary}",
        step.status_label()
    );
    if let Some(c) = &step.confirmation {
        let via = c.via.describe();
        line.push_str(&format!(
            " ({via}, {})",
            c.at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        if let Some(comment) = c.comment.as_deref().map(one_line) {
            if !summary.contains(&comment) {
                line.push_str(&format!(": “{comment}”"));
            }
        }
    } else if let Some(at) = step.finished_at.filter(|_| !stamped) {
        line.push_str(&format!(" ({})", at.format("%Y-%m-%d %H:%M:%S UTC")));
    }
    if step.elapsed_ms > 0 && step.confirmation.is_none() {
        line.push_str(&format!(" · {}", format_millis(step.elapsed_ms)));
    }
    if step.attempts > 1 {
        line.push_str(&format!(" · {} attempts", step.attempts));
    }
    // Something went wrong: the first piece of evidence says what.
    if !matches!(status, Status::Passed | Status::Skipped | Status::NotRun) {
        if let Some(e) = step.outcome.as_ref().and_then(|o| o.evidence.first()) {
            let value = one_line(e.value.lines().find(|l| !l.trim().is_empty()).unwrap_or(""));
            if !value.is_empty() && !summary.contains(&value) {
                line.push_str(&format!(" · {}: `{}`", e.label, value.replace('`', "'")));
            }
        }
    }
    line
}

/// The closing line: which run this record is, and how it ended.
fn run_line(record: &RunRecord) -> String {
    let run = &record.run;
    let verdict = match (record.verdict, record.exit_code) {
        (Some(v), Some(code)) => format!("**{}** (exit code {code})", v.label()),
        _ => "**unfinished**: the record stops before the end of the run".into(),
    };
    let mut line = format!(
        "**{EVIDENCE_MARK}** `{}` — {verdict} · {} on {} · environment `{}` · started {}",
        run.run_id,
        run.operator,
        run.host,
        run.environment.name,
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    if run.dry_run {
        line.push_str(" · dry-run: nothing was changed, no one was asked");
    }
    if let Some(at) = record.finished_at {
        line.push_str(&format!(
            ", finished {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if let Some(r) = &record.rollback {
        line.push_str(&format!(
            " · rollback triggered by `{}` ({})",
            r.step,
            r.status.label()
        ));
    }
    line
}

/// Writes `record` into `original`, the document `map` was imported from:
/// each step's checkbox becomes `[x]`, `[!]` or `[ ]` where it stands (an
/// item without one gets one), and a quoted evidence line goes under the
/// item's title, and one line at the end names the run and its verdict.
/// Everything else in the document is left byte for byte.
pub fn export(original: &str, map: &SourceMap, record: &RunRecord) -> Result<String, ExportError> {
    if original.len() != map.source_len || fnv1a(original.as_bytes()) != map.source_hash {
        return Err(ExportError::DocumentChanged);
    }
    let steps: Vec<(&StepAnchor, &StepRecord)> = map
        .steps
        .iter()
        .filter_map(|a| {
            record
                .steps()
                .find(|(_, s)| s.outline.id == a.step_id)
                .map(|(_, s)| (a, s))
        })
        .collect();
    if steps.is_empty() && !map.steps.is_empty() {
        return Err(ExportError::NotThisRun {
            steps: map.steps.len(),
            run: record.run.run_id.clone(),
        });
    }
    // (offset, bytes replaced, text), applied from the end so earlier
    // offsets stay valid.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (anchor, step) in steps {
        // The same box as the core's own Markdown report.
        let mark = checkbox(step);
        if let Some(span) = &anchor.checkbox {
            edits.push((span.start, span.len(), mark.to_owned()));
        } else if let Some(at) = anchor.insert_checkbox_at {
            edits.push((at, 0, format!("{mark} ")));
        }
        let at = anchor.evidence_at.min(original.len());
        let ending = if original[..at].ends_with("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let lead = if at == original.len() && !original.is_empty() && !original.ends_with('\n') {
            ending
        } else {
            ""
        };
        edits.push((
            at,
            0,
            format!(
                "{lead}{}> {}{ending}",
                anchor.prefix.trim_end_matches(['\r', '\n']),
                evidence_line(step, anchor.after_table)
            ),
        ));
    }
    // Applied from the end; at one offset, a replaced checkbox first, then
    // the insertions there (the evidence lines of a table's rows) as one,
    // in document order.
    edits.sort_by_key(|e| (std::cmp::Reverse(e.0), e.1 == 0));
    let mut merged: Vec<(usize, usize, String)> = Vec::with_capacity(edits.len());
    for edit in edits {
        match merged.last_mut() {
            Some(last) if last.0 == edit.0 && last.1 == 0 && edit.1 == 0 => {
                last.2.push_str(&edit.2);
            }
            _ => merged.push(edit),
        }
    }
    let mut out = original.to_owned();
    let ending = if original.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(ending);
    }
    out.push_str(&format!("{ending}> {}{ending}", run_line(record)));
    for (at, len, text) in merged {
        if out.is_char_boundary(at) && out.is_char_boundary(at + len) {
            out.replace_range(at..at + len, &text);
        }
    }
    Ok(out)
}

/// Imports `original` again (same ids as when the run's runbook was
/// imported from it) and exports `record` into it: what
/// `report RUN --format md --original RUNBOOK.md` does. Only the places of
/// the steps matter here, which no catalog changes, so bindings are not
/// looked up.
pub fn export_run(original: &str, record: &RunRecord) -> Result<String, ExportError> {
    let imported = import(original, &ImportOptions::default(), &Catalog::new());
    export(original, &imported.source_map, record)
}
