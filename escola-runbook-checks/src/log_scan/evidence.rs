//! The evidence of a log scan: what was read, the window, and the most
//! frequent messages with their `Trace-Id`s (secrets masked).

use escola_runbook_core::{Outcome, Redactor};

use super::judge::Facts;
use super::line::Level;
use super::read::{Group, Rotated};
use super::read::{MAX_GROUPS, MAX_LINE};

/// `outcome` with the evidence of `f`, listing the `top` most frequent
/// messages, and its measurements.
pub(super) fn attach(outcome: Outcome, f: &Facts<'_>, top: usize, redactor: &Redactor) -> Outcome {
    let scan = f.scan;
    let mut outcome = outcome
        .with_evidence("log", f.shown)
        .with_evidence("since", f.since.to_rfc3339())
        .with_evidence("level", format!("{} and above", f.level.name()))
        .with_evidence(
            "lines",
            format!(
                "{} read, {} recognised, {} in the window",
                scan.lines, scan.recognised, scan.in_window
            ),
        );
    if let Some(Rotated::Read(p)) = f.rotated {
        outcome = outcome.with_evidence("rotated file also read", p.display().to_string());
    }
    if let (Some(first), Some(last)) = (scan.first, scan.last) {
        outcome = outcome.with_evidence(
            "log spans",
            format!("{} to {}", first.to_rfc3339(), last.to_rfc3339()),
        );
    }
    if scan.long_lines > 0 {
        outcome = outcome.with_evidence(
            "long lines",
            format!(
                "{} lines over {} KiB, read in part",
                scan.long_lines,
                MAX_LINE / 1024
            ),
        );
    }
    let top = scan.top(top);
    if !top.is_empty() {
        let lines: Vec<String> = top.iter().map(|g| message_line(g)).collect();
        outcome = outcome.with_evidence(
            format!("top messages ({} of {})", top.len(), scan.groups.len()),
            redactor.redact(&lines.join("\n")).into_owned(),
        );
    }
    if scan.ungrouped > 0 {
        outcome = outcome.with_evidence(
            "other messages",
            format!(
                "{} lines beyond the {MAX_GROUPS} distinct messages tracked",
                scan.ungrouped
            ),
        );
    }
    outcome
        .with_measurement("error_lines", scan.errors as f64, Some("lines"))
        .with_measurement("lines_in_window", scan.in_window as f64, Some("lines"))
}

/// One message of the top list: `3× ERROR: message — Trace-Id a, b (+1
/// more lines with one)`.
fn message_line(g: &Group) -> String {
    let ids = if g.trace_ids.is_empty() {
        "no Trace-Id".to_owned()
    } else {
        let more = g.with_trace_id.saturating_sub(g.trace_ids.len() as u64);
        format!(
            "Trace-Id {}{}",
            g.trace_ids.join(", "),
            if more > 0 {
                format!(" (+{more} more lines with one)")
            } else {
                String::new()
            }
        )
    };
    format!(
        "{}× {}: {} — {ids}",
        g.count,
        g.level.map_or("?", Level::name),
        g.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_line_counts_the_trace_ids_not_kept() {
        let g = Group {
            message: "Deadlock found".into(),
            level: Some(Level::ERROR),
            count: 3,
            trace_ids: vec!["t-aaa".into(), "t-bbb".into()],
            with_trace_id: 3,
            ..Group::default()
        };
        assert_eq!(
            message_line(&g),
            "3× ERROR: Deadlock found — Trace-Id t-aaa, t-bbb (+1 more lines with one)"
        );
        let quiet = Group {
            message: "boom".into(),
            count: 1,
            ..Group::default()
        };
        assert_eq!(message_line(&quiet), "1× ?: boom — no Trace-Id");
    }
}
