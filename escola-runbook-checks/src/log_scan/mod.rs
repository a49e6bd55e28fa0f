//! "Checar logs de erro (`var/logs/app.log`) e `Trace-Id`": counts
//! error-level lines written since the deploy started, in Monolog's line
//! format (`[2026-11-29T02:40:00.123456+00:00] app.ERROR: message {...} []`)
//! or JSON lines (Monolog's `JsonFormatter` and most JSON loggers), and lists
//! the most frequent messages with their `Trace-Id`s.
//!
//! The log is streamed line by line: memory is bounded by the longest line
//! kept ([`MAX_LINE`]) and the number of distinct messages kept
//! ([`MAX_GROUPS`]), not by the size of the file.
//!
//! A missing log, a compressed or binary file, and a log that starts after
//! the window (rotated or truncated during the deploy) are reported as such;
//! when `app.log` starts late, a plain-text `app.log.1` beside it is read too.
//!
//! By job: [`params`](LogScanParams) (what the check is given), `line`
//! (one line parsed), `read` (files, rotation), `judge` (the verdict, pure),
//! `evidence` (what the outcome shows) and `check` (the checks that tie them
//! together).

mod check;
mod evidence;
mod judge;
mod line;
mod params;
mod read;

pub use check::{LogScanCheck, RecordTimeCheck};
pub use line::{
    Entry, Level, LevelError, parse_line, parse_line_in, parse_offset, parse_time, parse_time_in,
};
pub use params::{
    DEFAULT_LOG, DEFAULT_TOP, DEPLOY_STARTED_AT, LogScanParams, OffsetError, RecordTimeParams,
    Since, SinceError, UtcOffset, WindowError,
};
pub use read::{Group, LogError, MAX_GROUPS, MAX_LINE, Scan, scan};
