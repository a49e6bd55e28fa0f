//! One log line: Monolog's line format or a JSON object, its time, level,
//! message and `Trace-Id`. Pure text in, [`Entry`] out.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, Utc};
use serde::{Deserialize, Serialize};

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

/// A level name or number that is not a log level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a log level; write e.g. error or warning")]
pub struct LevelError {
    /// The text given.
    pub text: String,
}

impl FromStr for Level {
    type Err = LevelError;

    fn from_str(text: &str) -> Result<Level, LevelError> {
        Level::parse(text).ok_or_else(|| LevelError {
            text: text.to_owned(),
        })
    }
}

/// Written as its lowercase name (`error`), read as [`Level::parse`] does.
impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name().to_ascii_lowercase())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = escola_runbook_core::catalog::number_or_text(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

escola_runbook_core::text_param_schema!(
    Level,
    "LogLevel",
    ["string", "integer"],
    "debug, info, notice, warning, error, critical, alert, emergency (or Monolog's 100-600)"
);

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

pub(super) fn utc() -> FixedOffset {
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
pub(super) fn find_trace_id_in_text(text: &str) -> Option<String> {
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
