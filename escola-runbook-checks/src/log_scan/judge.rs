//! The verdict on a scanned log: pure functions of what was read, so each
//! rule is tested without files.
//!
//! - A log none of whose lines is in a known format is a check error.
//! - More error lines than the limit fail.
//! - Within the limit, a log reaching back to the window start passes.
//! - A log starting after the window start (rotated, truncated, or quiet)
//!   is a check error when the earlier part could not be read (the rotated
//!   file unreadable, or compressed), passes when it is empty and unchanged
//!   since the window start, and warns otherwise.

use chrono::{DateTime, FixedOffset, Utc};
use escola_runbook_core::Outcome;

use super::line::Level;
use super::read::{Rotated, Scan};

/// What the check read, and what it judges against.
#[derive(Debug)]
pub(super) struct Facts<'a> {
    /// The tally of the log (and its rotated file, if read).
    pub(super) scan: &'a Scan,
    /// The log's path, as shown.
    pub(super) shown: &'a str,
    /// The window start.
    pub(super) since: DateTime<FixedOffset>,
    /// The lowest level counted.
    pub(super) level: Level,
    /// Error lines tolerated.
    pub(super) max: u64,
    /// The rotated file read, or not readable.
    pub(super) rotated: Option<&'a Rotated>,
    /// Log files beside the log.
    pub(super) siblings: &'a [String],
    /// The log's modification time.
    pub(super) modified: Option<DateTime<Utc>>,
}

/// The check error for a log that does not exist, naming the rotated files
/// beside it.
pub(super) fn missing(shown: &str, siblings: &[String]) -> Outcome {
    Outcome::check_error(format!(
        "log {shown} does not exist{}",
        if siblings.is_empty() {
            "; check `file` (the app's log directory, e.g. var/logs/app.log)".to_owned()
        } else {
            format!(
                "; beside it: {} (Monolog's RotatingFileHandler writes dated files: point `file` at the current one)",
                siblings.join(", ")
            )
        }
    ))
}

/// The check error for a log with lines, none of them recognised.
pub(super) fn unrecognised(scan: &Scan, shown: &str) -> Option<Outcome> {
    (scan.lines > 0 && scan.recognised == 0).then(|| {
        Outcome::check_error(format!(
            "none of the {} lines of {shown} is in Monolog's line format (`[time] channel.LEVEL: message`) or a JSON object with a time",
            scan.lines
        ))
    })
}

/// The verdict on a log whose lines were recognised.
pub(super) fn verdict(f: &Facts<'_>) -> Outcome {
    let scan = f.scan;
    let covered = scan.first.is_some_and(|first| first <= f.since);
    let count = scan.errors;
    let plural = if count == 1 { "" } else { "s" };
    let head = format!(
        "{count} {}-or-above line{plural} in {} since {} (limit {})",
        f.level.name(),
        f.shown,
        f.since.to_rfc3339(),
        f.max
    );
    if count > f.max {
        return Outcome::failed(head);
    }
    if covered {
        return Outcome::passed(head);
    }
    // The log does not reach back to the window start: rotated, truncated,
    // or simply quiet. Say which we can tell.
    let starts = scan.first.map_or_else(
        || "is empty".to_owned(),
        |first| format!("starts at {}", first.to_rfc3339()),
    );
    let compressed: Vec<&str> = f
        .siblings
        .iter()
        .map(String::as_str)
        .filter(|n| n.ends_with(".gz") || n.ends_with(".zst") || n.ends_with(".bz2"))
        .collect();
    match f.rotated {
        Some(Rotated::Unreadable(e)) => Outcome::check_error(format!(
            "{head}, but the log {starts}, after the window start, and the rotated file could not be read ({e}): lines written between are not checked"
        )),
        _ if !compressed.is_empty() => Outcome::check_error(format!(
            "{head}, but the log {starts}, after the window start: it was rotated, and the earlier part is compressed ({}), not read",
            compressed.join(", ")
        )),
        _ => match (scan.first, f.modified) {
            (None, Some(m)) if m < f.since => Outcome::passed(format!(
                "{head}; the log is empty and unchanged since {}",
                m.to_rfc3339()
            )),
            _ => Outcome::warned(format!(
                "{head}; note: the log {starts}, after the window start: if it was rotated or truncated during the deploy, earlier lines are not in it"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use escola_runbook_core::Status;

    use super::*;
    use crate::log_scan::read::LogError;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn facts<'a>(scan: &'a Scan, siblings: &'a [String]) -> Facts<'a> {
        Facts {
            scan,
            shown: "app.log",
            since: at("2026-11-29T02:30:00Z"),
            level: Level::ERROR,
            max: 0,
            rotated: None,
            siblings,
            modified: None,
        }
    }

    fn scan(first: Option<&str>, errors: u64) -> Scan {
        Scan {
            lines: 10,
            recognised: 10,
            errors,
            first: first.map(at),
            ..Scan::default()
        }
    }

    #[test]
    fn over_the_limit_fails_with_count_level_and_limit() {
        let s = scan(Some("2026-11-29T02:00:00Z"), 2);
        let o = verdict(&Facts {
            max: 1,
            ..facts(&s, &[])
        });
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.summary,
            "2 ERROR-or-above lines in app.log since 2026-11-29T02:30:00+00:00 (limit 1)"
        );
        let o = verdict(&Facts {
            max: 2,
            ..facts(&s, &[])
        });
        assert_eq!(o.status, Status::Passed, "at the limit passes");
    }

    #[test]
    fn a_log_starting_late_warns_unless_the_earlier_part_is_known_lost() {
        let s = scan(Some("2026-11-29T02:42:00Z"), 0);
        let o = verdict(&facts(&s, &[]));
        assert_eq!(o.status, Status::Warned);
        assert!(o.summary.contains("starts at 2026-11-29T02:42:00+00:00"));

        let gz = ["app.log.1.gz".to_owned()];
        let o = verdict(&facts(&s, &gz));
        assert_eq!(o.status, Status::CheckError);
        assert!(
            o.summary.contains("compressed (app.log.1.gz)"),
            "{}",
            o.summary
        );

        let lost = Rotated::Unreadable(LogError::Compressed {
            path: PathBuf::from("app.log.1"),
        });
        let o = verdict(&Facts {
            rotated: Some(&lost),
            ..facts(&s, &[])
        });
        assert_eq!(o.status, Status::CheckError);
        assert!(o.summary.contains("the rotated file could not be read"));
    }

    #[test]
    fn an_empty_log_passes_only_when_unchanged_since_the_window_start() {
        let s = Scan::default();
        let before = Some(at("2026-11-29T02:00:00Z").to_utc());
        let o = verdict(&Facts {
            modified: before,
            ..facts(&s, &[])
        });
        assert_eq!(o.status, Status::Passed);
        assert!(o.summary.contains("empty and unchanged since"));
        let after = Some(at("2026-11-29T02:40:00Z").to_utc());
        let o = verdict(&Facts {
            modified: after,
            ..facts(&s, &[])
        });
        assert_eq!(o.status, Status::Warned);
    }

    #[test]
    fn missing_and_unrecognised_logs_are_check_errors() {
        let o = missing("app.log", &["app-2026-11-29.log".to_owned()]);
        assert_eq!(o.status, Status::CheckError);
        assert!(o.summary.contains("beside it: app-2026-11-29.log"));
        let foreign = Scan {
            lines: 2,
            ..Scan::default()
        };
        let o = unrecognised(&foreign, "access.log").unwrap();
        assert!(o.summary.starts_with("none of the 2 lines of access.log"));
        assert!(unrecognised(&scan(None, 0), "app.log").is_none());
    }
}
