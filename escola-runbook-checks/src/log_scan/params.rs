//! The parameters of `log-scan` and `record-time`, declared once, and the
//! window start they name ([`Since`]).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use escola_runbook_core::duration::{self, DurationError};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Ctx, ValueError, format_duration};
use serde::{Deserialize, Serialize};

use super::line::{Level, parse_offset, parse_time, parse_time_in, utc};

/// The value key [`RecordTimeCheck`](super::RecordTimeCheck) writes by default and the runbook's log
/// scan reads.
pub const DEPLOY_STARTED_AT: &str = "deploy_started_at";

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

/// Text that does not name a window start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinceError {
    /// Neither a time, a duration nor `value:KEY`.
    #[error("`{text}` is not an RFC 3339 time, a duration (30m) or value:KEY")]
    Unknown {
        /// The text given.
        text: String,
    },
    /// A well-formed duration out of range.
    #[error(transparent)]
    Duration(DurationError),
}

/// The window start could not be told when the check ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A look-back that reaches before the calendar's start.
    #[error("{} ago is out of range", format_duration(*ago))]
    OutOfRange {
        /// The look-back.
        ago: Duration,
    },
    /// The value was not recorded.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The value recorded is not a time.
    #[error("value `{key}` is {value}, not an RFC 3339 time")]
    NotATime {
        /// The key.
        key: String,
        /// What was recorded.
        value: serde_json::Value,
    },
}

impl Since {
    /// Parses an RFC 3339 time, a duration (`30m`) or `value:KEY`; a time
    /// without an offset is UTC.
    pub fn parse(text: &str) -> Result<Since, SinceError> {
        Self::parse_in(text, utc())
    }

    /// Like [`Since::parse`], a time without an offset taken in `naive`.
    pub fn parse_in(text: &str, naive: FixedOffset) -> Result<Since, SinceError> {
        let t = text.trim();
        let unknown = || SinceError::Unknown { text: t.to_owned() };
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
            Err(e @ DurationError::OutOfRange { .. }) => Err(SinceError::Duration(e)),
            Err(DurationError::Syntax { .. }) => Err(unknown()),
        }
    }

    /// The text [`Since::parse`] reads back to `self`.
    pub(super) fn param(&self) -> String {
        match self {
            Since::At(at) => at.to_rfc3339(),
            Since::Ago(d) => duration::exact(*d),
            Since::Value(k) => format!("value:{k}"),
        }
    }

    pub(super) fn resolve(&self, ctx: &Ctx) -> Result<DateTime<FixedOffset>, WindowError> {
        match self {
            Since::At(at) => Ok(*at),
            Since::Ago(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| ctx.now().checked_sub_signed(d))
                .map(|t| t.fixed_offset())
                .ok_or(WindowError::OutOfRange { ago: *d }),
            Since::Value(key) => {
                let value = ctx.value(key)?;
                value
                    .as_str()
                    .and_then(parse_time)
                    .ok_or_else(|| WindowError::NotATime {
                        key: key.clone(),
                        value: value.clone(),
                    })
            }
        }
    }
}

/// A UTC offset (`-03:00`, `+0530`, `Z`), written as `-03:00`; UTC by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset(pub FixedOffset);

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset(utc())
    }
}

/// Text that is not a UTC offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a UTC offset; write e.g. -03:00")]
pub struct OffsetError {
    /// The text given.
    pub text: String,
}

impl FromStr for UtcOffset {
    type Err = OffsetError;

    fn from_str(text: &str) -> Result<UtcOffset, OffsetError> {
        parse_offset(text)
            .map(UtcOffset)
            .ok_or_else(|| OffsetError {
                text: text.to_owned(),
            })
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

escola_runbook_core::text_param_schema!(
    UtcOffset,
    "UtcOffset",
    "a UTC offset such as -03:00, +0530 or Z"
);

/// Counts error-level log lines since a time (Monolog/JSON), lists top
/// messages with Trace-Ids.
///
/// The parameters of [`LogScanCheck`](super::LogScanCheck), declared once (see [`CheckConfig`](escola_runbook_core::catalog::CheckConfig)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogScanParams {
    /// The application log: Monolog line format `[time] channel.LEVEL:
    /// message {context} {extra}` or JSON lines.
    #[serde(default = "default_file")]
    pub file: PathBuf,
    /// Window start: an RFC 3339 time (2026-11-29T02:30:00Z; without
    /// offset: in `offset`), a duration back from now (30m, 2h), or
    /// value:KEY (a time an earlier step recorded).
    // Text, not `Since`: a time without an offset is read in `offset`, so
    // the build reads it, and writes it back with its offset.
    pub since: String,
    /// Error lines tolerated in the window; fails above it.
    #[serde(default)]
    pub max: u64,
    /// Lowest level counted: debug, info, notice, warning, error, critical,
    /// alert, emergency (or Monolog's 100-600).
    #[serde(default = "default_level")]
    pub level: Level,
    /// UTC offset of log timestamps written without one, and of `since`
    /// without one (Monolog 1's `Y-m-d H:i:s` is in PHP's date.timezone),
    /// e.g. -03:00.
    #[serde(default)]
    pub offset: UtcOffset,
    /// How many of the most frequent messages the evidence lists, with
    /// their Trace-Ids.
    #[serde(default = "default_top")]
    pub top: usize,
}

/// Where Symfony applications write their log.
pub const DEFAULT_LOG: &str = "var/logs/app.log";
/// Messages the evidence lists, by default.
pub const DEFAULT_TOP: usize = 5;

fn default_file() -> PathBuf {
    PathBuf::from(DEFAULT_LOG)
}
fn default_level() -> Level {
    Level::ERROR
}
fn default_top() -> usize {
    DEFAULT_TOP
}

impl LogScanParams {
    /// Scans `file` from `since`, with the defaults.
    pub(super) fn of(file: PathBuf, since: &Since) -> Self {
        LogScanParams {
            file,
            since: since.param(),
            max: 0,
            level: default_level(),
            offset: UtcOffset::default(),
            top: default_top(),
        }
    }
}

/// Records the current time as a value for later steps (e.g. when the
/// deploy started).
///
/// The parameters of [`RecordTimeCheck`](super::RecordTimeCheck), declared once (see
/// [`CheckConfig`](escola_runbook_core::catalog::CheckConfig)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTimeParams {
    /// Value key the current time (RFC 3339, UTC) is recorded under, for
    /// later steps (log-scan since=value:KEY).
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_key() -> String {
    DEPLOY_STARTED_AT.to_owned()
}
