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

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, Utc};
use escola_runbook_core::duration::{self, DurationError};
use escola_runbook_core::{
    CancellationToken, Check, CheckParams, Ctx, Description, Outcome, async_trait, format_duration,
};

use crate::legacy_spec::{CheckSpec, ParamSpec};

/// Longest line read in full; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// Distinct messages tracked; further ones are counted together.
pub const MAX_GROUPS: usize = 1000;
/// `Trace-Id`s kept per message.
const TRACE_IDS_KEPT: usize = 5;
/// The value key [`RecordTimeCheck`] writes by default and the runbook's log
/// scan reads.
pub const DEPLOY_STARTED_AT: &str = "deploy_started_at";

/// Monolog's severities (RFC 5424 names, Monolog's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(pub u16);

impl Level {
    /// `ERROR` and above.
    pub const ERROR: Level = Level(400);

    /// Parses a level name (`error`, `ERR`, `critical`, `fatal`...) or a
    /// Monolog number (100-600).
    pub fn parse(text: &str) -> Option<Level> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u16>() {
            return (100..=600).contains(&n).then_some(Level(n));
        }
        Some(Level(match t.to_ascii_lowercase().as_str() {
            "debug" | "trace" => 100,
            "info" | "informational" => 200,
            "notice" => 250,
            "warning" | "warn" => 300,
            "error" | "err" => 400,
            "critical" | "crit" | "fatal" => 500,
            "alert" => 550,
            "emergency" | "emerg" | "panic" => 600,
            _ => return None,
        }))
    }

    /// The Monolog name.
    pub fn name(self) -> &'static str {
        match self.0 {
            0..=199 => "DEBUG",
            200..=249 => "INFO",
            250..=299 => "NOTICE",
            300..=399 => "WARNING",
            400..=499 => "ERROR",
            500..=549 => "CRITICAL",
            550..=599 => "ALERT",
            _ => "EMERGENCY",
        }
    }
}

/// One recognised log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it was written.
    pub at: DateTime<FixedOffset>,
    /// Its severity, if the level was recognised.
    pub level: Option<Level>,
    /// The message without context.
    pub message: String,
    /// The `Trace-Id` found in the line (context, extra, or text).
    pub trace_id: Option<String>,
}

/// Parses a timestamp as loggers write them: RFC 3339, ISO 8601 with a
/// `+0000` offset, or `YYYY-MM-DD HH:MM:SS[.f]` (taken as UTC).
pub fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    parse_time_in(text, utc())
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap_or_else(|| Utc.fix())
}

/// Parses an offset like `-03:00`, `+0100` or `Z`.
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Some(utc());
    }
    DateTime::parse_from_str(&format!("2000-01-01T00:00:00{t}"), "%Y-%m-%dT%H:%M:%S%z")
        .ok()
        .map(|d| *d.offset())
}

/// Like [`parse_time`], with timestamps that carry no offset taken in
/// `naive` (Monolog 1's `Y-m-d H:i:s` is in PHP's `date.timezone`).
pub fn parse_time_in(text: &str, naive: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d);
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return n.and_local_timezone(naive).single();
        }
    }
    None
}

/// Parses one line in Monolog's line format or as a JSON object.
pub fn parse_line(line: &str) -> Option<Entry> {
    parse_line_in(line, utc())
}

/// Like [`parse_line`], with timestamps that carry no offset taken in
/// `naive`.
pub fn parse_line_in(line: &str, naive: FixedOffset) -> Option<Entry> {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim_start();
    if trimmed.starts_with('{') {
        parse_json_line(trimmed, naive)
    } else if let Some(rest) = line.strip_prefix('[') {
        parse_monolog_line(rest, naive)
    } else {
        None
    }
}

fn parse_monolog_line(rest: &str, naive: FixedOffset) -> Option<Entry> {
    let (stamp, rest) = rest.split_once(']')?;
    let at = parse_time_in(stamp, naive)?;
    let rest = rest.trim_start();
    let (head, body) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|h| (h, "")))?;
    if head.contains(char::is_whitespace) {
        return None;
    }
    let level_text = head.rsplit_once('.').map_or(head, |(_, l)| l);
    let level = Level::parse(level_text);
    let message = strip_context(body).trim().to_owned();
    Some(Entry {
        at,
        level,
        message,
        trace_id: find_trace_id_in_text(body),
    })
}

/// Removes Monolog's trailing context and extra (` {...} []`) from a message.
fn strip_context(body: &str) -> &str {
    let mut text = body.trim_end();
    for _ in 0..2 {
        if let Some(t) = text.strip_suffix("[]") {
            text = t.trim_end();
            continue;
        }
        if let Some(i) = trailing_json(text) {
            text = text[..i].trim_end();
            continue;
        }
        // A context that continues on the next lines (Laravel's
        // `{"exception":"[object] ...` before a stack trace): cut at its
        // start.
        if let Some(i) = text.find(" {\"") {
            text = text[..i].trim_end();
        }
        break;
    }
    text
}

/// Where the JSON value that ends `text` starts: the shortest suffix that
/// parses, beginning after a space.
fn trailing_json(text: &str) -> Option<usize> {
    if !(text.ends_with('}') || text.ends_with(']')) {
        return None;
    }
    text.char_indices()
        .rev()
        .filter(|&(i, c)| (c == '{' || c == '[') && i > 0 && text.as_bytes()[i - 1] == b' ')
        .take(32)
        .find(|&(i, _)| serde_json::from_str::<serde_json::Value>(&text[i..]).is_ok())
        .map(|(i, _)| i)
}

const TRACE_KEYS: [&str; 4] = ["x-trace-id", "trace-id", "trace_id", "traceid"];

fn is_trace_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    k == "traceid" || k == "xtraceid"
}

/// Finds `Trace-Id: abc`, `"trace_id":"abc"`, `traceId=abc` in text.
fn find_trace_id_in_text(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    for key in TRACE_KEYS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key) {
            let start = from + pos + key.len();
            from = start;
            let rest = &text[start..];
            let rest = rest.strip_prefix('"').unwrap_or(rest).trim_start();
            let Some(rest) = rest.strip_prefix([':', '=']) else {
                continue;
            };
            let rest = rest.trim_start();
            let rest = rest.strip_prefix('"').unwrap_or(rest);
            let value: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
                .take(128)
                .collect();
            if !value.is_empty() {
                return Some(value);
            }
        }
    }
    None
}

fn find_trace_id_in_json(value: &serde_json::Value, depth: u8) -> Option<String> {
    let serde_json::Value::Object(map) = value else {
        return None;
    };
    for (k, v) in map {
        if is_trace_key(k) {
            match v {
                serde_json::Value::String(s) if !s.is_empty() => return Some(s.clone()),
                serde_json::Value::Number(n) => return Some(n.to_string()),
                // A header bag: {"Trace-Id": ["abc"]}.
                serde_json::Value::Array(a) => {
                    if let Some(serde_json::Value::String(s)) = a.first() {
                        return Some(s.clone());
                    }
                }
                _ => {}
            }
        }
    }
    if depth == 0 {
        return None;
    }
    map.values()
        .find_map(|v| find_trace_id_in_json(v, depth - 1))
}

fn parse_json_line(line: &str, naive: FixedOffset) -> Option<Entry> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = value.as_object()?;
    let at = ["datetime", "@timestamp", "timestamp", "time", "ts"]
        .iter()
        .find_map(|k| match obj.get(*k)? {
            serde_json::Value::String(s) => parse_time_in(s, naive),
            serde_json::Value::Number(n) => {
                let secs = n.as_f64()?;
                // Milliseconds when the number is too big for seconds.
                let secs = if secs > 1e11 { secs / 1000.0 } else { secs };
                DateTime::from_timestamp_millis((secs * 1000.0) as i64).map(|d| d.fixed_offset())
            }
            _ => None,
        })?;
    let level = ["level_name", "level", "severity", "levelname", "log.level"]
        .iter()
        .find_map(|k| match obj.get(*k)? {
            serde_json::Value::String(s) => Level::parse(s),
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| Level::parse(&n.to_string())),
            _ => None,
        });
    let message = ["message", "msg", "@message"]
        .iter()
        .find_map(|k| obj.get(*k)?.as_str())
        .unwrap_or_default()
        .trim()
        .to_owned();
    Some(Entry {
        at,
        level,
        trace_id: find_trace_id_in_json(&value, 3).or_else(|| find_trace_id_in_text(&message)),
        message,
    })
}

/// A message and where it was seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// The message (first 300 characters).
    pub message: String,
    /// Highest level seen with it.
    pub level: Option<Level>,
    /// How many lines.
    pub count: u64,
    /// The first `Trace-Id`s seen with it.
    pub trace_ids: Vec<String>,
    /// Lines that had a `Trace-Id`.
    pub with_trace_id: u64,
    /// First and last time seen.
    pub first: Option<DateTime<FixedOffset>>,
    /// Last time seen.
    pub last: Option<DateTime<FixedOffset>>,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Lines read.
    pub lines: u64,
    /// Lines in a recognised format.
    pub recognised: u64,
    /// Recognised lines at or after the window start.
    pub in_window: u64,
    /// Of those, at or above the level.
    pub errors: u64,
    /// Lines longer than [`MAX_LINE`] (only their start was read).
    pub long_lines: u64,
    /// First recognised timestamp.
    pub first: Option<DateTime<FixedOffset>>,
    /// Last recognised timestamp.
    pub last: Option<DateTime<FixedOffset>>,
    /// First line not recognised (for the error message), shortened.
    pub first_unrecognised: Option<String>,
    /// Error messages, up to [`MAX_GROUPS`].
    pub groups: HashMap<String, Group>,
    /// Error lines whose message did not fit in the groups.
    pub ungrouped: u64,
}

impl Scan {
    /// Folds another file's scan in (an older, rotated file).
    fn merge(&mut self, older: Scan) {
        self.lines += older.lines;
        self.recognised += older.recognised;
        self.in_window += older.in_window;
        self.errors += older.errors;
        self.long_lines += older.long_lines;
        self.first = earliest(self.first, older.first);
        self.last = latest(self.last, older.last);
        self.ungrouped += older.ungrouped;
        for (k, g) in older.groups {
            if let Some(mine) = self.groups.get_mut(&k) {
                mine.count += g.count;
                mine.with_trace_id += g.with_trace_id;
                // The older file's ids come first.
                let mut ids = g.trace_ids;
                for id in mine.trace_ids.drain(..) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                ids.truncate(TRACE_IDS_KEPT);
                mine.trace_ids = ids;
                mine.first = earliest(mine.first, g.first);
                mine.last = latest(mine.last, g.last);
                mine.level = mine.level.max(g.level);
            } else if self.groups.len() < MAX_GROUPS {
                self.groups.insert(k, g);
            } else {
                self.ungrouped += g.count;
            }
        }
    }

    /// Groups by count, highest first (ties: earliest first).
    pub fn top(&self, n: usize) -> Vec<&Group> {
        let mut groups: Vec<&Group> = self.groups.values().collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.first.cmp(&b.first)));
        groups.truncate(n);
        groups
    }
}

fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A log that could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Missing or unreadable.
    #[error("cannot read log {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Compressed (a rotated log).
    #[error(
        "log {path} is gzip-compressed (a rotated log?); point `file` at the live, uncompressed log"
    )]
    Compressed {
        /// The file.
        path: PathBuf,
    },
    /// Binary content.
    #[error(
        "log {path} is not text (it has NUL bytes among its first {checked} bytes); is `file` the right path?"
    )]
    Binary {
        /// The file.
        path: PathBuf,
        /// Bytes looked at.
        checked: usize,
    },
    /// Stopped.
    #[error("the scan of {path} was cancelled")]
    Cancelled {
        /// The file.
        path: PathBuf,
    },
}

/// Reads one line into `buf`, keeping at most `MAX_LINE` bytes; returns
/// `None` at end of file, `Some(true)` when the line was cut.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let mut part = &chunk[..take];
        if buf.is_empty() {
            // NUL padding (a copytruncate hole) never fills the line buffer.
            let first = part.iter().position(|b| *b != 0).unwrap_or(part.len());
            part = &part[first..];
        }
        let room = MAX_LINE.saturating_sub(buf.len());
        if part.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        reader.consume(take);
        if done {
            return Ok(Some(cut));
        }
    }
}

/// Scans `reader` for lines at or after `since` with a level of at least
/// `min`; timestamps without an offset are taken in `naive`. `path` names
/// the log in errors; `cancel` stops a long scan.
pub fn scan<R: Read>(
    reader: R,
    path: &Path,
    since: DateTime<FixedOffset>,
    min: Level,
    naive: FixedOffset,
    cancel: &CancellationToken,
) -> Result<Scan, LogError> {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf().map_err(|source| LogError::Read {
        path: path.to_owned(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(LogError::Compressed {
            path: path.to_owned(),
        });
    }
    let checked = head.len().min(8192);
    // logrotate's copytruncate leaves a run of NUL bytes at the start when
    // the application keeps writing at its old offset: that is still a log.
    let text_start = head[..checked]
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(checked);
    if head[text_start..checked].contains(&0) {
        return Err(LogError::Binary {
            path: path.to_owned(),
            checked,
        });
    }
    let mut scan = Scan::default();
    let mut buf = Vec::with_capacity(4096);
    while let Some(cut) =
        read_line_capped(&mut reader, &mut buf).map_err(|source| LogError::Read {
            path: path.to_owned(),
            source,
        })?
    {
        scan.lines += 1;
        if scan.lines % 8192 == 0 && cancel.is_cancelled() {
            return Err(LogError::Cancelled {
                path: path.to_owned(),
            });
        }
        if cut {
            scan.long_lines += 1;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_start_matches('\0');
        let Some(entry) = parse_line_in(text, naive) else {
            if scan.first_unrecognised.is_none() && !text.trim().is_empty() {
                scan.first_unrecognised = Some(text.trim().chars().take(160).collect());
            }
            continue;
        };
        scan.recognised += 1;
        scan.first = earliest(scan.first, Some(entry.at));
        scan.last = latest(scan.last, Some(entry.at));
        if entry.at < since {
            continue;
        }
        scan.in_window += 1;
        if entry.level.is_none_or(|l| l < min) {
            continue;
        }
        scan.errors += 1;
        let key: String = entry.message.chars().take(300).collect();
        let groups = scan.groups.len();
        let group = match scan.groups.get_mut(&key) {
            Some(g) => g,
            None if groups < MAX_GROUPS => scan.groups.entry(key.clone()).or_insert(Group {
                message: key,
                ..Group::default()
            }),
            None => {
                scan.ungrouped += 1;
                continue;
            }
        };
        group.count += 1;
        group.level = group.level.max(entry.level);
        group.first = earliest(group.first, Some(entry.at));
        group.last = latest(group.last, Some(entry.at));
        if let Some(id) = entry.trace_id {
            group.with_trace_id += 1;
            if group.trace_ids.len() < TRACE_IDS_KEPT && !group.trace_ids.contains(&id) {
                group.trace_ids.push(id);
            }
        }
    }
    Ok(scan)
}

fn scan_file(
    path: &Path,
    since: DateTime<FixedOffset>,
    min: Level,
    naive: FixedOffset,
    cancel: &CancellationToken,
) -> Result<Scan, LogError> {
    let file = std::fs::File::open(path).map_err(|source| LogError::Read {
        path: path.to_owned(),
        source,
    })?;
    scan(file, path, since, min, naive, cancel)
}

/// Where the window starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// A fixed instant.
    At(DateTime<FixedOffset>),
    /// This long before the check runs.
    Ago(Duration),
    /// An RFC 3339 time an earlier step recorded under this key.
    Value(String),
}

impl Since {
    /// Parses an RFC 3339 time, a duration (`30m`) or `value:KEY`; a time
    /// without an offset is UTC. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Since, String> {
        Self::parse_in(text, utc())
    }

    /// Like [`Since::parse`], a time without an offset taken in `naive`.
    pub fn parse_in(text: &str, naive: FixedOffset) -> Result<Since, String> {
        let t = text.trim();
        let unknown = || format!("`{t}` is not an RFC 3339 time, a duration (30m) or value:KEY");
        if let Some(key) = t.strip_prefix("value:") {
            return if key.is_empty() {
                Err(unknown())
            } else {
                Ok(Since::Value(key.to_owned()))
            };
        }
        if let Some(at) = parse_time_in(t, naive) {
            return Ok(Since::At(at));
        }
        match duration::parse(t) {
            Ok(d) => Ok(Since::Ago(d)),
            Err(e @ DurationError::OutOfRange { .. }) => Err(e.to_string()),
            Err(DurationError::Syntax { .. }) => Err(unknown()),
        }
    }

    fn param(&self) -> String {
        match self {
            Since::At(at) => at.to_rfc3339(),
            Since::Ago(d) => duration::exact(*d),
            Since::Value(k) => format!("value:{k}"),
        }
    }

    fn resolve(&self, ctx: &Ctx) -> Result<DateTime<FixedOffset>, String> {
        match self {
            Since::At(at) => Ok(*at),
            Since::Ago(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| ctx.now().checked_sub_signed(d))
                .map(|t| t.fixed_offset())
                .ok_or_else(|| format!("{} ago is out of range", format_duration(*d))),
            Since::Value(key) => {
                let value = ctx.value(key).map_err(|e| e.to_string())?;
                value
                    .as_str()
                    .and_then(parse_time)
                    .ok_or_else(|| format!("value `{key}` is {value}, not an RFC 3339 time"))
            }
        }
    }
}

/// Error-level log lines since a point in time, at most `max`.
///
/// ```
/// use escola_runbook_checks::log_scan::{LogScanCheck, Since, DEPLOY_STARTED_AT};
/// let check = LogScanCheck::new("/srv/escola-connect/var/logs/app.log", Since::Value(DEPLOY_STARTED_AT.into()));
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct LogScanCheck {
    file: PathBuf,
    since: Since,
    max: u64,
    level: Level,
    top: usize,
    naive_offset: FixedOffset,
}

impl LogScanCheck {
    /// Scans `file` for lines at or after `since` of level ERROR or above;
    /// passes when there are none.
    pub fn new(file: impl Into<PathBuf>, since: Since) -> Self {
        LogScanCheck {
            file: file.into(),
            since,
            max: 0,
            level: Level::ERROR,
            top: 5,
            naive_offset: utc(),
        }
    }

    /// The offset of timestamps written without one (default UTC).
    pub fn naive_offset(mut self, offset: FixedOffset) -> Self {
        self.naive_offset = offset;
        self
    }

    /// Error lines tolerated.
    pub fn max(mut self, max: u64) -> Self {
        self.max = max;
        self
    }

    /// The lowest level counted.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// How many messages the evidence lists.
    pub fn top(mut self, n: usize) -> Self {
        self.top = n;
        self
    }

    fn rotated_siblings(&self) -> Vec<String> {
        let (Some(dir), Some(name)) = (self.file.parent(), self.file.file_name()) else {
            return Vec::new();
        };
        let name = name.to_string_lossy();
        let stem = name.split('.').next().unwrap_or(&name).to_owned();
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| *n != name && n.starts_with(&stem) && n.contains(".log"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found.truncate(10);
        found
    }
}

#[async_trait]
impl Check for LogScanCheck {
    fn describe(&self) -> Description {
        let since = match &self.since {
            Since::At(at) => at.to_rfc3339(),
            Since::Ago(d) => format!("the last {}", format_duration(*d)),
            Since::Value(k) => format!("`{k}`"),
        };
        let d = Description::read_only(
            "log-scan",
            format!(
                "at most {} {}-level lines in {} since {since}",
                self.max,
                self.level.name(),
                self.file.display()
            ),
        );
        match &self.since {
            Since::Value(k) => d.needs(k.clone()),
            _ => d,
        }
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("log-scan")
            .with("file", self.file.display().to_string())
            .with("since", self.since.param());
        if self.max != 0 {
            p = p.with("max", self.max.to_string());
        }
        if self.level != Level::ERROR {
            p = p.with("level", self.level.name().to_ascii_lowercase());
        }
        if self.top != 5 {
            p = p.with("top", self.top.to_string());
        }
        if self.naive_offset != utc() {
            p = p.with("offset", self.naive_offset.to_string());
        }
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let since = match self.since.resolve(ctx) {
            Ok(t) => t,
            Err(e) => {
                return Outcome::check_error(format!("cannot tell when the window starts: {e}"));
            }
        };
        let file = self.file.clone();
        let level = self.level;
        let cancel = ctx.cancellation().clone();
        let naive = self.naive_offset;
        let siblings = self.rotated_siblings();
        let scanned = tokio::task::spawn_blocking(move || {
            let main = scan_file(&file, since, level, naive, &cancel)?;
            let covered = main.first.is_some_and(|f| f <= since);
            let mut rotated = PathBuf::from(file.as_os_str());
            rotated.as_mut_os_string().push(".1");
            if covered || !rotated.is_file() {
                return Ok((main, None));
            }
            match scan_file(&rotated, since, level, naive, &cancel) {
                Ok(older) => {
                    let mut all = main;
                    all.merge(older);
                    Ok((all, Some(Ok(rotated))))
                }
                Err(e) => Ok((main, Some(Err(e.to_string())))),
            }
        })
        .await;
        let shown = self.file.display().to_string();
        let since_text = since.to_rfc3339();
        let (scan, rotated) = match scanned {
            Ok(Ok(s)) => s,
            Ok(Err(LogError::Read { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let mut o = Outcome::check_error(format!(
                    "log {shown} does not exist{}",
                    if siblings.is_empty() {
                        "; check `file` (the app's log directory, e.g. var/logs/app.log)".to_owned()
                    } else {
                        format!(
                            "; beside it: {} (Monolog's RotatingFileHandler writes dated files: point `file` at the current one)",
                            siblings.join(", ")
                        )
                    }
                ));
                o = o.with_evidence("log", shown);
                return o;
            }
            Ok(Err(e)) => return Outcome::check_error(e.to_string()).with_evidence("log", shown),
            Err(e) => return Outcome::check_error(format!("the log scan stopped: {e}")),
        };
        if scan.lines > 0 && scan.recognised == 0 {
            return Outcome::check_error(format!(
                "none of the {} lines of {shown} is in Monolog's line format (`[time] channel.LEVEL: message`) or a JSON object with a time",
                scan.lines
            ))
            .with_evidence("log", shown)
            .with_evidence(
                "first line",
                ctx.redactor()
                    .redact(scan.first_unrecognised.as_deref().unwrap_or(""))
                    .into_owned(),
            );
        }
        let covered = scan.first.is_some_and(|f| f <= since);
        let level = self.level.name();
        let limit = self.max;
        let count = scan.errors;
        let plural = if count == 1 { "" } else { "s" };
        let head = format!(
            "{count} {level}-or-above line{plural} in {shown} since {since_text} (limit {limit})"
        );
        let mut outcome = if count > limit {
            Outcome::failed(head)
        } else if covered {
            Outcome::passed(head)
        } else {
            // The log does not reach back to the window start: rotated,
            // truncated, or simply quiet. Say which we can tell.
            let starts = scan.first.map_or_else(
                || "is empty".to_owned(),
                |f| format!("starts at {}", f.to_rfc3339()),
            );
            let compressed: Vec<&String> = siblings
                .iter()
                .filter(|n| n.ends_with(".gz") || n.ends_with(".zst") || n.ends_with(".bz2"))
                .collect();
            match &rotated {
                Some(Err(e)) => Outcome::check_error(format!(
                    "{head}, but the log {starts}, after the window start, and the rotated file could not be read ({e}): lines written between are not checked"
                )),
                _ if !compressed.is_empty() => Outcome::check_error(format!(
                    "{head}, but the log {starts}, after the window start: it was rotated, and the earlier part is compressed ({}), not read",
                    compressed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => {
                    let modified = std::fs::metadata(&self.file)
                        .and_then(|m| m.modified())
                        .ok()
                        .map(DateTime::<Utc>::from);
                    match (scan.first, modified) {
                        (None, Some(m)) if m < since => Outcome::passed(format!(
                            "{head}; the log is empty and unchanged since {}",
                            m.to_rfc3339()
                        )),
                        _ => Outcome::warned(format!(
                            "{head}; note: the log {starts}, after the window start: if it was rotated or truncated during the deploy, earlier lines are not in it"
                        )),
                    }
                }
            }
        };
        outcome = outcome
            .with_evidence("log", shown)
            .with_evidence("since", since_text)
            .with_evidence("level", format!("{level} and above"))
            .with_evidence(
                "lines",
                format!(
                    "{} read, {} recognised, {} in the window",
                    scan.lines, scan.recognised, scan.in_window
                ),
            );
        if let Some(Ok(p)) = &rotated {
            outcome = outcome.with_evidence("rotated file also read", p.display().to_string());
        }
        if let (Some(f), Some(l)) = (scan.first, scan.last) {
            outcome = outcome.with_evidence(
                "log spans",
                format!("{} to {}", f.to_rfc3339(), l.to_rfc3339()),
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
        let top = scan.top(self.top);
        if !top.is_empty() {
            let lines: Vec<String> = top
                .iter()
                .map(|g| {
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
                })
                .collect();
            outcome = outcome.with_evidence(
                format!("top messages ({} of {})", top.len(), scan.groups.len()),
                ctx.redactor().redact(&lines.join("\n")).into_owned(),
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
            .with_measurement("error_lines", count as f64, Some("lines"))
            .with_measurement("lines_in_window", scan.in_window as f64, Some("lines"))
    }
}

/// Records the current time under a key, so a later log scan knows when the
/// deploy started. Read-only: it changes nothing outside, so it runs in
/// dry-run too.
#[derive(Debug, Clone)]
pub struct RecordTimeCheck {
    key: String,
}

impl RecordTimeCheck {
    /// Records under `key`.
    pub fn new(key: impl Into<String>) -> Self {
        RecordTimeCheck { key: key.into() }
    }
}

#[async_trait]
impl Check for RecordTimeCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "record-time",
            format!("records the current time as `{}`", self.key),
        )
        .produces(self.key.clone())
    }

    fn params(&self) -> Option<CheckParams> {
        Some(CheckParams::new("record-time").with("key", &self.key))
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let now = ctx
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Outcome::passed(format!("recorded `{}` = {now}", self.key))
            .with_evidence(self.key.clone(), now.clone())
            .with_value(self.key.clone(), serde_json::Value::String(now))
    }
}

/// The registry entry for `log-scan`.
pub(crate) fn spec() -> CheckSpec {
    const PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "file",
            help: "the application log: Monolog line format `[time] channel.LEVEL: message {context} {extra}` or JSON lines",
            required: false,
            default: Some("var/logs/app.log"),
        },
        ParamSpec {
            name: "since",
            help: "window start: an RFC 3339 time (2026-11-29T02:30:00Z; without offset: in `offset`), a duration back from now (30m, 2h), or value:KEY (a time an earlier step recorded)",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "max",
            help: "error lines tolerated in the window; fails above it",
            required: false,
            default: Some("0"),
        },
        ParamSpec {
            name: "level",
            help: "lowest level counted: debug, info, notice, warning, error, critical, alert, emergency (or Monolog's 100-600)",
            required: false,
            default: Some("error"),
        },
        ParamSpec {
            name: "offset",
            help: "UTC offset of log timestamps written without one, and of `since` without one (Monolog 1's `Y-m-d H:i:s` is in PHP's date.timezone), e.g. -03:00",
            required: false,
            default: Some("+00:00"),
        },
        ParamSpec {
            name: "top",
            help: "how many of the most frequent messages the evidence lists, with their Trace-Ids",
            required: false,
            default: Some("5"),
        },
    ];
    CheckSpec {
        name: "log-scan",
        summary: "counts error-level log lines since a time (Monolog/JSON), lists top messages with Trace-Ids",
        params: PARAMS,
        build: |p| {
            let offset_text = p.require("offset")?;
            let offset = parse_offset(offset_text).ok_or_else(|| {
                p.error(
                    "offset",
                    format!(
                        "has value `{offset_text}`, which is not a UTC offset; write e.g. -03:00"
                    ),
                )
            })?;
            let since_text = p.require("since")?;
            let since = Since::parse_in(since_text, offset)
                .map_err(|e| p.error("since", format!("is not usable: {e}")))?;
            let level_text = p.require("level")?;
            let level = Level::parse(level_text).ok_or_else(|| {
                p.error("level", format!("has value `{level_text}`, which is not a log level; write e.g. error or warning"))
            })?;
            Ok(std::sync::Arc::new(
                LogScanCheck::new(p.require("file")?, since)
                    .max(p.parse::<u64>("max")?.unwrap_or(0))
                    .level(level)
                    .top(p.parse::<usize>("top")?.unwrap_or(5))
                    .naive_offset(offset),
            ))
        },
    }
}

/// The registry entry for `record-time`.
pub(crate) fn record_time_spec() -> CheckSpec {
    const PARAMS: &[ParamSpec] = &[ParamSpec {
        name: "key",
        help: "value key the current time (RFC 3339, UTC) is recorded under, for later steps (log-scan since=value:KEY)",
        required: false,
        default: Some(DEPLOY_STARTED_AT),
    }];
    CheckSpec {
        name: "record-time",
        summary: "records the current time as a value for later steps (e.g. when the deploy started)",
        params: PARAMS,
        build: |p| Ok(std::sync::Arc::new(RecordTimeCheck::new(p.require("key")?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, evidence};
    use escola_runbook_core::Status;

    fn at(text: &str) -> DateTime<FixedOffset> {
        parse_time(text).unwrap()
    }

    const APP_LOG: &str = r#"[2026-11-29T02:10:00.000000+00:00] app.ERROR: Before the deploy {"trace_id":"old-1"} []
[2026-11-29T02:40:00.123456+00:00] app.INFO: Deploy finished {"version":"2.4.0"} []
[2026-11-29T02:41:00.000000+00:00] doctrine.ERROR: SQLSTATE[40001]: Deadlock found {"exception":"[object] (PDOException(code: 40001): Deadlock at /app/src/Sync.php:42)","trace_id":"t-aaa"} {"uid":"f00"}
#0 /app/vendor/doctrine/dbal/src/Connection.php(1234): PDO->exec()
#1 {main}
[2026-11-29T02:41:30.000000+00:00] app.WARNING: Slow query {"ms":1200} []
[2026-11-29T02:42:00.000000+00:00] doctrine.ERROR: SQLSTATE[40001]: Deadlock found {"trace_id":"t-bbb"} []
{"message":"Upstream timeout on /v1/escolas","context":{"headers":{"Trace-Id":["t-ccc"]}},"level":500,"level_name":"CRITICAL","channel":"app","datetime":"2026-11-29T02:43:00.000000+00:00","extra":{}}
[2026-11-29T02:44:00.000000+00:00] doctrine.ERROR: SQLSTATE[40001]: Deadlock found {"trace_id":"t-aaa"} []
"#;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn parses_monolog_lines_json_lines_and_old_timestamps() {
        let e = parse_line(r#"[2026-11-29T02:40:00.123456+00:00] app.ERROR: Escola 42 not found {"id":42,"nested":{"a":[1,2]}} {"Trace-Id":"abc-123"}"#).unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00.123456Z"));
        assert_eq!(e.level, Some(Level::ERROR));
        assert_eq!(e.message, "Escola 42 not found");
        assert_eq!(e.trace_id.as_deref(), Some("abc-123"));

        let e = parse_line(r#"[2026-11-29 02:40:00] production.ERROR: Undefined index: id {"userId":7,"exception":"[object] (ErrorException(code: 0): Undefined index: id at /app/Http/EscolaController.php:42)"#).unwrap();
        assert_eq!(
            e.message, "Undefined index: id",
            "a context continued on later lines is cut"
        );

        let e = parse_line("[2026-11-29 02:40:00] app.CRITICAL: Out of memory [] []").unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00Z"));
        assert_eq!(e.level, Some(Level(500)));
        assert_eq!(e.message, "Out of memory");
        assert_eq!(e.trace_id, None);

        let e = parse_line("[2026-11-29T02:40:00+0100] app.error: Trace-Id: zz-9 failed").unwrap();
        assert_eq!(e.at, at("2026-11-29T01:40:00Z"));
        assert_eq!(e.trace_id.as_deref(), Some("zz-9"));

        let e = parse_line(r#"{"msg":"boom","level":"error","time":1795919400,"traceId":"j-1"}"#)
            .unwrap();
        assert_eq!(e.at, at("2026-11-29T02:30:00Z"));
        assert_eq!(
            (e.level, e.message.as_str(), e.trace_id.as_deref()),
            (Some(Level::ERROR), "boom", Some("j-1"))
        );

        for not_a_line in [
            "#0 /app/src/Foo.php(12): bar()",
            "",
            "Stack trace:",
            "[not a time] app.ERROR: x",
            "{broken json",
        ] {
            assert_eq!(parse_line(not_a_line), None, "{not_a_line}");
        }
    }

    #[tokio::test]
    async fn counts_errors_since_the_window_and_lists_top_messages_with_trace_ids() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "app.log", APP_LOG.as_bytes());
        let o = LogScanCheck::new(&log, Since::At(at("2026-11-29T02:30:00Z")))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert_eq!(
            o.summary,
            format!(
                "4 ERROR-or-above lines in {} since 2026-11-29T02:30:00+00:00 (limit 0)",
                log.display()
            )
        );
        let top: Vec<&str> = evidence(&o, "top messages (2 of 2)").lines().collect();
        assert_eq!(
            top,
            [
                "3× ERROR: SQLSTATE[40001]: Deadlock found — Trace-Id t-aaa, t-bbb (+1 more lines with one)",
                "1× CRITICAL: Upstream timeout on /v1/escolas — Trace-Id t-ccc",
            ]
        );
        assert_eq!(
            evidence(&o, "lines"),
            "9 read, 7 recognised, 6 in the window"
        );
        assert_eq!(o.measurements[0].value, 4.0);

        let o = LogScanCheck::new(&log, Since::At(at("2026-11-29T02:30:00Z")))
            .max(4)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        let o = LogScanCheck::new(&log, Since::At(at("2026-11-29T02:43:30Z")))
            .level(Level::parse("critical").unwrap())
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert!(
            o.summary.starts_with("0 CRITICAL-or-above lines"),
            "{}",
            o.summary
        );
    }

    #[tokio::test]
    async fn since_comes_from_a_value_recorded_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "app.log", APP_LOG.as_bytes());
        let check = LogScanCheck::new(&log, Since::Value(DEPLOY_STARTED_AT.into()));
        assert_eq!(check.describe().needs, [DEPLOY_STARTED_AT]);
        let o = check.run(&ctx()).await;
        assert_eq!(o.status, Status::CheckError);
        assert!(
            o.summary
                .contains("no earlier step recorded `deploy_started_at`"),
            "{}",
            o.summary
        );
        let c = ctx().with_value(DEPLOY_STARTED_AT, serde_json::json!("2026-11-29T02:43:30Z"));
        let o = check.run(&c).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(
            o.summary.starts_with("1 ERROR-or-above line in"),
            "{}",
            o.summary
        );

        let recorded = RecordTimeCheck::new("t0").run(&ctx()).await;
        let value = recorded.values["t0"].as_str().unwrap();
        assert!(parse_time(value).is_some(), "{value}");
    }

    #[tokio::test]
    async fn missing_log_names_the_rotated_files_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "app-2026-11-29.log", b"");
        write(dir.path(), "app-2026-11-28.log", b"");
        let o = LogScanCheck::new(
            dir.path().join("app.log"),
            Since::Ago(Duration::from_secs(60)),
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(o.summary.contains("does not exist; beside it: app-2026-11-28.log, app-2026-11-29.log (Monolog's RotatingFileHandler"), "{}", o.summary);
    }

    #[tokio::test]
    async fn compressed_binary_and_foreign_logs_are_check_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 3] = [
            (&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0], "gzip-compressed"),
            (b"ELF\x00\x01\x02 binary", "is not text"),
            (
                b"GET /v1/escolas 200\nGET /v1/cidades 500\n",
                "none of the 2 lines",
            ),
        ];
        for (i, (bytes, expected)) in cases.iter().enumerate() {
            let log = write(dir.path(), &format!("case{i}.log"), bytes);
            let o = LogScanCheck::new(&log, Since::Ago(Duration::from_secs(60)))
                .run(&ctx())
                .await;
            assert_eq!(o.status, Status::CheckError, "{expected}: {o:#?}");
            assert!(o.summary.contains(expected), "{expected}: {}", o.summary);
        }
    }

    #[tokio::test]
    async fn a_log_rotated_during_the_window_reads_app_log_1_or_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer) = APP_LOG.split_at(APP_LOG.find("[2026-11-29T02:42").unwrap());
        let log = write(dir.path(), "app.log", newer.as_bytes());
        let since = Since::At(at("2026-11-29T02:30:00Z"));

        // Only the newer part: starts after the window start, nothing says why.
        let o = LogScanCheck::new(&log, since.clone())
            .max(10)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Warned, "{o:#?}");
        assert!(
            o.summary
                .contains("the log starts at 2026-11-29T02:42:00+00:00, after the window start"),
            "{}",
            o.summary
        );

        // The rotated part compressed beside it: cannot be checked.
        write(dir.path(), "app.log.1.gz", &[0x1f, 0x8b]);
        let o = LogScanCheck::new(&log, since.clone())
            .max(10)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(
            o.summary.contains("compressed (app.log.1.gz)"),
            "{}",
            o.summary
        );

        // logrotate's delaycompress leaves app.log.1 plain: both are read.
        write(dir.path(), "app.log.1", older.as_bytes());
        let o = LogScanCheck::new(&log, since.clone()).run(&ctx()).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(o.summary.starts_with("4 ERROR-or-above"), "{}", o.summary);
        assert!(evidence(&o, "rotated file also read").ends_with("app.log.1"));
        assert!(
            evidence(&o, "top messages")
                .starts_with("3× ERROR: SQLSTATE[40001]: Deadlock found — Trace-Id t-aaa, t-bbb")
        );
    }

    #[tokio::test]
    async fn an_empty_log_untouched_since_the_window_passes() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "app.log", b"");
        let o = LogScanCheck::new(&log, Since::At(at("2999-01-01T00:00:00Z")))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert!(
            o.summary.contains("the log is empty and unchanged since"),
            "{}",
            o.summary
        );
        let o = LogScanCheck::new(&log, Since::At(at("2000-01-01T00:00:00Z")))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Warned, "{o:#?}");
    }

    #[test]
    fn timestamps_without_offset_take_the_configured_one() {
        let brt = parse_offset("-03:00").unwrap();
        let e = parse_line_in("[2026-11-28 23:40:00] app.ERROR: late [] []", brt).unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00Z"));
        let e =
            parse_line_in("[2026-11-29T02:40:00+00:00] app.ERROR: explicit [] []", brt).unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00Z"), "an explicit offset wins");
        assert_eq!(
            parse_offset("+0530"),
            FixedOffset::east_opt(5 * 3600 + 1800)
        );
        assert_eq!(parse_offset("Z"), Some(utc()));
        assert_eq!(parse_offset("Brasília"), None);
        let catalog = crate::catalog();
        let spec = catalog.find("log-scan").unwrap();
        let check = spec
            .build_from_pairs(&crate::testing::pairs([
                ("since", "2026-11-28 23:30:00"),
                ("offset", "-03:00"),
            ]))
            .unwrap();
        let params = check.params().unwrap();
        assert_eq!(params.params["since"], "2026-11-28T23:30:00-03:00");
        assert_eq!(params.params["offset"], "-03:00");
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
    }

    #[test]
    fn a_copytruncate_hole_of_nul_bytes_is_skipped() {
        let mut bytes = vec![0u8; 3 * MAX_LINE];
        bytes.extend_from_slice(b"[2026-11-29T02:41:00+00:00] app.ERROR: after rotation [] []\n");
        let scan = scan(
            bytes.as_slice(),
            Path::new("app.log"),
            at("2026-11-29T02:00:00Z"),
            Level::ERROR,
            utc(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_eq!((scan.recognised, scan.errors), (1, 1));
        assert_eq!(scan.top(1)[0].message, "after rotation");
    }

    #[test]
    fn memory_stays_bounded_on_long_lines_and_many_messages() {
        let mut text = String::new();
        text.push_str("[2026-11-29T02:40:00+00:00] app.ERROR: ");
        text.push_str(&"x".repeat(MAX_LINE * 3));
        text.push('\n');
        for i in 0..(MAX_GROUPS + 500) {
            text.push_str(&format!(
                "[2026-11-29T02:41:00+00:00] app.ERROR: distinct message {i} []\n"
            ));
        }
        let scan = scan(
            text.as_bytes(),
            Path::new("big.log"),
            at("2026-11-29T02:00:00Z"),
            Level::ERROR,
            utc(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_eq!(scan.long_lines, 1);
        assert_eq!(scan.errors, (MAX_GROUPS + 501) as u64);
        assert_eq!(scan.groups.len(), MAX_GROUPS);
        assert_eq!(scan.ungrouped, 501);
        assert!(scan.groups.keys().all(|k| k.chars().count() <= 300));
    }

    #[test]
    fn registry_parses_since_and_round_trips() {
        let catalog = crate::catalog();
        let spec = catalog.find("log-scan").unwrap();
        for since in ["2026-11-29T02:30:00Z", "30m", "value:deploy_started_at"] {
            let check = spec
                .build_from_pairs(&crate::testing::pairs([("since", since), ("max", "3")]))
                .unwrap();
            let params = check.params().unwrap();
            assert_eq!(params.params["file"], "var/logs/app.log");
            let again = spec.build(params.params.clone()).unwrap();
            assert_eq!(again.params(), Some(params));
        }
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("since", "yesterday")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an RFC 3339 time"), "{err}");
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("since", "5m"), ("level", "loud")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a log level"), "{err}");
    }
}
