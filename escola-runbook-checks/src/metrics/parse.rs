//! Parser for the Prometheus text exposition format (0.0.4) and the
//! OpenMetrics text format.
//!
//! Zero-copy: metric and label names are `&str` slices of the input, label
//! values and help texts are `Cow` and allocate only when they contain an
//! escape. [`Lines`] is a streaming iterator over the entries of a text
//! (nothing is built beyond the current line); [`parse`] groups them into
//! families. A malformed line is a [`ParseError`] naming its line number and
//! content; no input makes the parser panic (it is fuzzed, see `fuzz/`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Which text format a payload is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: integer millisecond timestamps, `# EOF`
    /// is an ordinary comment.
    Prometheus,
    /// `application/openmetrics-text`: float second timestamps, exemplars,
    /// `# UNIT`, and a mandatory final `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The format announced by a `Content-Type` header, falling back to the
    /// body: a text whose last non-blank line is `# EOF` is OpenMetrics.
    pub fn detect(content_type: Option<&str>, body: &str) -> Format {
        if let Some(ct) = content_type {
            let ct = ct.to_ascii_lowercase();
            if ct.starts_with("application/openmetrics-text") {
                return Format::OpenMetrics;
            }
            if ct.starts_with("text/plain") {
                return Format::Prometheus;
            }
        }
        if body.trim_end().lines().next_back().map(str::trim) == Some("# EOF") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The format's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Prometheus => "Prometheus text 0.0.4",
            Format::OpenMetrics => "OpenMetrics text 1.0",
        }
    }
}

/// The declared type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Monotonic counter (`_total`, `_created` in OpenMetrics).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket{le=..}`), `_sum`, `_count`.
    Histogram,
    /// OpenMetrics gauge histogram (`_bucket`, `_gsum`, `_gcount`).
    GaugeHistogram,
    /// Client-side quantiles (`{quantile=..}`), `_sum`, `_count`.
    Summary,
    /// OpenMetrics info (`_info`).
    Info,
    /// OpenMetrics state set.
    StateSet,
    /// No TYPE line, or `untyped` / `unknown`.
    Untyped,
}

impl MetricType {
    fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Untyped,
            _ => return None,
        })
    }

    /// Sample-name suffixes a family of this type may use.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Histogram => &["_bucket", "_sum", "_count", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
            MetricType::Summary => &["_sum", "_count", "_created"],
            MetricType::Info => &["_info"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Untyped => &[],
        }
    }

    /// The type's name as written in a TYPE line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A label: name borrowed from the input, value unescaped only if needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value with `\\`, `\"` and `\n` unescaped.
    pub value: Cow<'a, str>,
}

/// An OpenMetrics exemplar attached to a sample (`# {trace_id="..."} 1 123`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    /// Exemplar labels.
    pub labels: Vec<Label<'a>>,
    /// Exemplar value.
    pub value: f64,
    /// Timestamp in seconds, if given.
    pub timestamp: Option<f64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The sample's metric name (with its `_bucket`/`_total`... suffix).
    pub name: &'a str,
    /// Labels in the order written.
    pub labels: Vec<Label<'a>>,
    /// The value (`NaN`, `+Inf`, `-Inf` included).
    pub value: f64,
    /// Timestamp in milliseconds since the epoch, if the line has one
    /// (OpenMetrics seconds are converted).
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics exemplar, if any.
    pub exemplar: Option<Exemplar<'a>>,
    /// 1-based line number, for messages about this sample.
    pub line: usize,
}

impl<'a> Sample<'a> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_ref())
    }
}

/// One meaningful line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text`.
    Help {
        /// Family name.
        name: &'a str,
        /// Help text, unescaped.
        text: Cow<'a, str>,
    },
    /// `# TYPE name type`.
    Type {
        /// Family name.
        name: &'a str,
        /// Declared type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// Family name.
        name: &'a str,
        /// Unit ("seconds").
        unit: &'a str,
    },
    /// A sample.
    Sample(Sample<'a>),
    /// `# EOF` (OpenMetrics).
    Eof,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The metric name is missing or has a character outside `[a-zA-Z0-9_:]`.
    InvalidMetricName,
    /// A label name is missing or has a character outside `[a-zA-Z0-9_]`.
    InvalidLabelName,
    /// Something else than the expected character.
    Expected(&'static str),
    /// A label value has no closing quote.
    UnterminatedLabelValue,
    /// A backslash followed by something other than `\`, `"` or `n`.
    InvalidEscape,
    /// The same label twice in one sample.
    DuplicateLabel(String),
    /// The sample has no value.
    MissingValue,
    /// The value is not a number.
    InvalidValue(String),
    /// The timestamp is not a number of the format's kind.
    InvalidTimestamp(String),
    /// Extra text after the value and timestamp.
    TrailingContent,
    /// A TYPE line names an unknown type.
    UnknownType(String),
    /// A TYPE, HELP or UNIT line without its parts.
    MalformedMetadata,
    /// A second TYPE (or HELP, UNIT) line for the same family.
    DuplicateMetadata(&'static str),
    /// A TYPE line after samples of its family.
    TypeAfterSamples,
    /// A histogram bucket without a parseable `le` label, or a summary
    /// quantile without a parseable `quantile` label.
    MissingBound(&'static str),
    /// OpenMetrics text not ending with `# EOF`.
    MissingEof,
    /// Content after `# EOF`.
    ContentAfterEof,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::InvalidMetricName => {
                f.write_str("invalid metric name (allowed: [a-zA-Z_:][a-zA-Z0-9_:]*)")
            }
            ParseErrorKind::InvalidLabelName => {
                f.write_str("invalid label name (allowed: [a-zA-Z_][a-zA-Z0-9_]*)")
            }
            ParseErrorKind::Expected(what) => write!(f, "expected {what}"),
            ParseErrorKind::UnterminatedLabelValue => {
                f.write_str("label value has no closing double quote")
            }
            ParseErrorKind::InvalidEscape => {
                f.write_str("invalid escape in label value (only \\\\, \\\" and \\n are allowed)")
            }
            ParseErrorKind::DuplicateLabel(name) => write!(f, "label `{name}` appears twice"),
            ParseErrorKind::MissingValue => f.write_str("sample has no value"),
            ParseErrorKind::InvalidValue(v) => write!(f, "value `{v}` is not a number"),
            ParseErrorKind::InvalidTimestamp(v) => write!(f, "timestamp `{v}` is not valid"),
            ParseErrorKind::TrailingContent => {
                f.write_str("unexpected text after the value and timestamp")
            }
            ParseErrorKind::UnknownType(t) => write!(f, "unknown metric type `{t}`"),
            ParseErrorKind::MalformedMetadata => {
                f.write_str("metadata line needs a metric name and a value")
            }
            ParseErrorKind::DuplicateMetadata(what) => {
                write!(f, "second {what} line for the same metric family")
            }
            ParseErrorKind::TypeAfterSamples => {
                f.write_str("TYPE line after samples of the same family")
            }
            ParseErrorKind::MissingBound(label) => {
                write!(f, "missing or non-numeric `{label}` label")
            }
            ParseErrorKind::MissingEof => f.write_str("OpenMetrics text must end with `# EOF`"),
            ParseErrorKind::ContentAfterEof => f.write_str("content after `# EOF`"),
        }
    }
}

/// A line that could not be parsed: where, what it said, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}: `{content}`")]
pub struct ParseError {
    /// 1-based line number (the line after the last for a missing `# EOF`).
    pub line: usize,
    /// The line, cut to 200 characters.
    pub content: String,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

fn error(line: usize, content: &str, kind: ParseErrorKind) -> ParseError {
    let content = match content.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &content[..cut]),
        None => content.to_owned(),
    };
    ParseError {
        line,
        content,
        kind,
    }
}

/// Streaming iterator over the entries of an exposition text. Blank lines
/// and plain comments are skipped.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a str,
    line: usize,
    format: Format,
    seen_eof: bool,
    done: bool,
}

impl<'a> Lines<'a> {
    /// Iterates over `text` in `format`.
    pub fn new(text: &'a str, format: Format) -> Self {
        Lines {
            rest: text,
            line: 0,
            format,
            seen_eof: false,
            done: false,
        }
    }

    fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        self.line += 1;
        let (line, rest) = match memchr_newline(self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    fn entry(&self, raw: &'a str) -> Result<Option<Entry<'a>>, ParseError> {
        let line = raw.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            return Ok(None);
        }
        if let Some(comment) = line.strip_prefix('#') {
            return self.metadata(raw, comment);
        }
        let mut cursor = Cursor::new(line.as_bytes(), line);
        parse_sample(&mut cursor, self.format, self.line)
            .map(|s| Some(Entry::Sample(s)))
            .map_err(|kind| error(self.line, raw, kind))
    }

    fn metadata(&self, raw: &'a str, comment: &'a str) -> Result<Option<Entry<'a>>, ParseError> {
        let err = |kind| error(self.line, raw, kind);
        let body = comment.trim_start_matches([' ', '\t']);
        if comment.len() == body.len() {
            // `#HELP` is a plain comment, as in Prometheus.
            return Ok(None);
        }
        if body.trim_end() == "EOF" && self.format == Format::OpenMetrics {
            return Ok(Some(Entry::Eof));
        }
        let (keyword, rest) = split_word(body);
        match keyword {
            "HELP" | "TYPE" | "UNIT" => {}
            _ => return Ok(None),
        }
        if keyword == "UNIT" && self.format == Format::Prometheus {
            return Ok(None);
        }
        let (name, rest) = split_word(rest);
        if name.is_empty() {
            return Err(err(ParseErrorKind::MalformedMetadata));
        }
        if !is_metric_name(name) {
            return Err(err(ParseErrorKind::InvalidMetricName));
        }
        match keyword {
            "HELP" => Ok(Some(Entry::Help {
                name,
                text: unescape_help(rest, self.format),
            })),
            "TYPE" => {
                let (word, tail) = split_word(rest);
                if word.is_empty() {
                    return Err(err(ParseErrorKind::MalformedMetadata));
                }
                if !tail.trim().is_empty() {
                    return Err(err(ParseErrorKind::TrailingContent));
                }
                let kind = MetricType::from_word(word)
                    .ok_or_else(|| err(ParseErrorKind::UnknownType(word.to_owned())))?;
                Ok(Some(Entry::Type { name, kind }))
            }
            _ => Ok(Some(Entry::Unit {
                name,
                unit: rest.trim(),
            })),
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        while let Some(raw) = self.next_line() {
            if self.seen_eof {
                if raw.trim().is_empty() {
                    continue;
                }
                self.done = true;
                return Some(Err(error(self.line, raw, ParseErrorKind::ContentAfterEof)));
            }
            match self.entry(raw) {
                Ok(None) => continue,
                Ok(Some(Entry::Eof)) => {
                    self.seen_eof = true;
                    return Some(Ok(Entry::Eof));
                }
                Ok(Some(entry)) => return Some(Ok(entry)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.done = true;
        if self.format == Format::OpenMetrics && !self.seen_eof {
            return Some(Err(error(self.line + 1, "", ParseErrorKind::MissingEof)));
        }
        None
    }
}

fn memchr_newline(s: &str) -> Option<usize> {
    s.as_bytes().iter().position(|&b| b == b'\n')
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i + 1..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn unescape_help(text: &str, format: Format) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if format == Format::OpenMetrics => out.push('"'),
            // Unknown escapes in help texts are kept as written.
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

fn is_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' || *b == b':' => {}
        _ => return false,
    }
    bytes[1..]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
}

/// Byte cursor over one line; every split happens at an ASCII byte, so the
/// slices are always valid `&str`.
struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], text: &'a str) -> Self {
        Cursor {
            bytes,
            text,
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

fn parse_sample<'a>(
    c: &mut Cursor<'a>,
    format: Format,
    line: usize,
) -> Result<Sample<'a>, ParseErrorKind> {
    let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(ParseErrorKind::InvalidMetricName);
    }
    let blank = c.skip_blanks();
    let mut labels = Vec::new();
    if c.peek() == Some(b'{') {
        c.pos += 1;
        labels = parse_labels(c)?;
        c.skip_blanks();
    } else if !blank {
        return Err(match c.peek() {
            None => ParseErrorKind::MissingValue,
            Some(_) => ParseErrorKind::InvalidMetricName,
        });
    }
    let value_text = c.token();
    if value_text.is_empty() {
        return Err(ParseErrorKind::MissingValue);
    }
    let value =
        parse_float(value_text).ok_or_else(|| ParseErrorKind::InvalidValue(value_text.into()))?;
    c.skip_blanks();
    let mut timestamp_ms = None;
    if !c.at_end() && c.peek() != Some(b'#') {
        let ts = c.token();
        timestamp_ms = Some(parse_timestamp(ts, format)?);
        c.skip_blanks();
    }
    let mut exemplar = None;
    if c.peek() == Some(b'#') {
        if format != Format::OpenMetrics {
            return Err(ParseErrorKind::TrailingContent);
        }
        c.pos += 1;
        c.skip_blanks();
        if c.peek() != Some(b'{') {
            return Err(ParseErrorKind::Expected(
                "`{` starting the exemplar's labels",
            ));
        }
        c.pos += 1;
        let labels = parse_labels(c)?;
        c.skip_blanks();
        let v = c.token();
        let value = parse_float(v).ok_or_else(|| ParseErrorKind::InvalidValue(v.into()))?;
        c.skip_blanks();
        let timestamp = if c.at_end() {
            None
        } else {
            let t = c.token();
            Some(
                parse_float(t)
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| ParseErrorKind::InvalidTimestamp(t.into()))?,
            )
        };
        c.skip_blanks();
        exemplar = Some(Exemplar {
            labels,
            value,
            timestamp,
        });
    }
    if !c.at_end() {
        return Err(ParseErrorKind::TrailingContent);
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
        exemplar,
        line,
    })
}

fn parse_labels<'a>(c: &mut Cursor<'a>) -> Result<Vec<Label<'a>>, ParseErrorKind> {
    let mut labels: Vec<Label<'a>> = Vec::new();
    loop {
        c.skip_blanks();
        if c.peek() == Some(b'}') {
            c.pos += 1;
            return Ok(labels);
        }
        let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Err(match c.peek() {
                None => ParseErrorKind::Expected("`}` closing the labels"),
                _ => ParseErrorKind::InvalidLabelName,
            });
        }
        c.skip_blanks();
        if c.peek() != Some(b'=') {
            return Err(ParseErrorKind::Expected("`=` after the label name"));
        }
        c.pos += 1;
        c.skip_blanks();
        if c.peek() != Some(b'"') {
            return Err(ParseErrorKind::Expected("`\"` opening the label value"));
        }
        c.pos += 1;
        let value = parse_label_value(c)?;
        if labels.iter().any(|l| l.name == name) {
            return Err(ParseErrorKind::DuplicateLabel(name.to_owned()));
        }
        labels.push(Label { name, value });
        c.skip_blanks();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {}
            _ => return Err(ParseErrorKind::Expected("`,` or `}` after a label")),
        }
    }
}

fn parse_label_value<'a>(c: &mut Cursor<'a>) -> Result<Cow<'a, str>, ParseErrorKind> {
    let start = c.pos;
    // Fast path: no escape before the closing quote.
    while let Some(b) = c.peek() {
        match b {
            b'"' => {
                let value = &c.text[start..c.pos];
                c.pos += 1;
                return Ok(Cow::Borrowed(value));
            }
            b'\\' => break,
            _ => c.pos += 1,
        }
    }
    if c.at_end() {
        return Err(ParseErrorKind::UnterminatedLabelValue);
    }
    let mut out = String::with_capacity(c.pos - start + 16);
    out.push_str(&c.text[start..c.pos]);
    let mut run = c.pos;
    while let Some(b) = c.peek() {
        match b {
            b'"' => {
                out.push_str(&c.text[run..c.pos]);
                c.pos += 1;
                return Ok(Cow::Owned(out));
            }
            b'\\' => {
                out.push_str(&c.text[run..c.pos]);
                let unescaped = match c.bytes.get(c.pos + 1) {
                    Some(b'\\') => '\\',
                    Some(b'"') => '"',
                    Some(b'n') => '\n',
                    None => return Err(ParseErrorKind::UnterminatedLabelValue),
                    Some(_) => return Err(ParseErrorKind::InvalidEscape),
                };
                out.push(unescaped);
                c.pos += 2;
                run = c.pos;
            }
            _ => c.pos += 1,
        }
    }
    Err(ParseErrorKind::UnterminatedLabelValue)
}

/// Parses a sample value as Go's `strconv.ParseFloat` would for the
/// exposition formats: decimals, exponents, `NaN`, `+Inf`, `-Inf`.
pub fn parse_float(text: &str) -> Option<f64> {
    // Rust's parser accepts "infinity"/"inf"/"nan" in any case, as Go does;
    // it rejects hex floats and underscores, which exporters never write.
    text.parse::<f64>().ok()
}

fn parse_timestamp(text: &str, format: Format) -> Result<i64, ParseErrorKind> {
    let bad = || ParseErrorKind::InvalidTimestamp(text.into());
    match format {
        Format::Prometheus => text.parse::<i64>().map_err(|_| bad()),
        Format::OpenMetrics => {
            let secs = parse_float(text)
                .filter(|f| f.is_finite())
                .ok_or_else(bad)?;
            let ms = secs * 1000.0;
            if ms.abs() >= 9.2e18 {
                return Err(bad());
            }
            Ok(ms as i64)
        }
    }
}

/// A metric family: its metadata and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// Family name (without `_bucket`, `_total`...; for untyped samples
    /// without a TYPE line, the sample's own name).
    pub name: &'a str,
    /// Declared type.
    pub kind: MetricType,
    /// Help text.
    pub help: Option<Cow<'a, str>>,
    /// Unit (OpenMetrics).
    pub unit: Option<&'a str>,
    /// Samples in input order.
    pub samples: Vec<Sample<'a>>,
}

/// A parsed exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition<'a> {
    /// The format it was parsed as.
    pub format: Format,
    /// Families in order of first appearance.
    pub families: Vec<Family<'a>>,
}

impl<'a> Exposition<'a> {
    /// Every sample called exactly `name` (e.g. `http_requests_total`,
    /// `http_request_duration_seconds_bucket`).
    pub fn samples_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Sample<'a>> {
        self.families
            .iter()
            .filter(move |f| name.starts_with(f.name))
            .flat_map(|f| f.samples.iter())
            .filter(move |s| s.name == name)
    }

    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&Family<'a>> {
        self.families.iter().find(|f| f.name == name)
    }

    /// True when metric `name` has a sample: a family of that name with
    /// samples, or a sample called `name` or `name` plus a histogram,
    /// summary or counter suffix (payloads without TYPE lines included).
    pub fn has_metric(&self, name: &str) -> bool {
        self.families.iter().any(|f| {
            f.samples.iter().any(|s| {
                s.name
                    .strip_prefix(name)
                    .is_some_and(|rest| ["", "_bucket", "_count", "_sum", "_total"].contains(&rest))
            })
        })
    }

    /// Number of samples.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// Parses a whole exposition into families, validating what Prometheus's
/// own parser validates: one TYPE/HELP per family, TYPE before samples,
/// `le` on histogram buckets, `quantile` on summary samples.
pub fn parse(text: &str, format: Format) -> Result<Exposition<'_>, ParseError> {
    let mut families: Vec<Building<'_>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    let mut lines = Lines::new(text, format);
    while let Some(entry) = lines.next() {
        let entry = entry?;
        let meta_err = |kind| {
            let content = line_content(text, lines.line);
            error(lines.line, content, kind)
        };
        match entry {
            Entry::Eof => {}
            Entry::Help { name, text } => {
                let i = family_index(&mut families, &mut index, name);
                if families[i].family.help.is_some() {
                    return Err(meta_err(ParseErrorKind::DuplicateMetadata("HELP")));
                }
                families[i].family.help = Some(text);
                current = Some(i);
            }
            Entry::Unit { name, unit } => {
                let i = family_index(&mut families, &mut index, name);
                if families[i].family.unit.is_some() {
                    return Err(meta_err(ParseErrorKind::DuplicateMetadata("UNIT")));
                }
                families[i].family.unit = Some(unit);
                current = Some(i);
            }
            Entry::Type { name, kind } => {
                let i = family_index(&mut families, &mut index, name);
                let f = &mut families[i];
                if f.typed {
                    return Err(meta_err(ParseErrorKind::DuplicateMetadata("TYPE")));
                }
                if !f.family.samples.is_empty() {
                    return Err(meta_err(ParseErrorKind::TypeAfterSamples));
                }
                f.family.kind = kind;
                f.typed = true;
                current = Some(i);
            }
            Entry::Sample(sample) => {
                let i = match current.filter(|&i| belongs(&families[i].family, sample.name)) {
                    Some(i) => i,
                    None => find_family(&families, &index, sample.name)
                        .unwrap_or_else(|| family_index(&mut families, &mut index, sample.name)),
                };
                let f = &mut families[i].family;
                let bound = match f.kind {
                    MetricType::Histogram | MetricType::GaugeHistogram
                        if sample.name.ends_with("_bucket") =>
                    {
                        Some("le")
                    }
                    MetricType::Summary if sample.name == f.name => Some("quantile"),
                    _ => None,
                };
                if let Some(label) =
                    bound.filter(|l| sample.label(l).and_then(parse_float).is_none())
                {
                    let content = line_content(text, sample.line);
                    return Err(error(
                        sample.line,
                        content,
                        ParseErrorKind::MissingBound(label),
                    ));
                }
                f.samples.push(sample);
                current = Some(i);
            }
        }
    }
    Ok(Exposition {
        format,
        families: families.into_iter().map(|f| f.family).collect(),
    })
}

struct Building<'a> {
    family: Family<'a>,
    typed: bool,
}

fn family_index<'a>(
    families: &mut Vec<Building<'a>>,
    index: &mut HashMap<&'a str, usize>,
    name: &'a str,
) -> usize {
    *index.entry(name).or_insert_with(|| {
        families.push(Building {
            family: Family {
                name,
                kind: MetricType::Untyped,
                help: None,
                unit: None,
                samples: Vec::new(),
            },
            typed: false,
        });
        families.len() - 1
    })
}

fn belongs(family: &Family<'_>, sample: &str) -> bool {
    match sample.strip_prefix(family.name) {
        Some("") => true,
        Some(suffix) => family.kind.suffixes().contains(&suffix),
        None => false,
    }
}

fn find_family(
    families: &[Building<'_>],
    index: &HashMap<&str, usize>,
    sample: &str,
) -> Option<usize> {
    for suffix in [
        "_bucket", "_count", "_sum", "_total", "_created", "_gsum", "_gcount", "_info",
    ] {
        if let Some(&i) = sample.strip_suffix(suffix).and_then(|base| index.get(base)) {
            if belongs(&families[i].family, sample) {
                return Some(i);
            }
        }
    }
    index.get(sample).copied()
}

fn line_content(text: &str, line: usize) -> &str {
    text.split('\n')
        .nth(line.saturating_sub(1))
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or("")
}
