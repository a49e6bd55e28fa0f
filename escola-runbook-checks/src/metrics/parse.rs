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
        if let Some(format) = Format::declared(content_type) {
            return format;
        }
        if body.trim_end().lines().next_back().map(str::trim) == Some("# EOF") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The format a `Content-Type` header announces, if it names one.
    pub fn declared(content_type: Option<&str>) -> Option<Format> {
        let ct = content_type?.to_ascii_lowercase();
        if ct.starts_with("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else if ct.starts_with("text/plain") {
            Some(Format::Prometheus)
        } else {
            None
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
    /// So many metric families that tracking them would take more memory
    /// than the budget (the answer's cap) allows.
    TooManyFamilies {
        /// Families seen.
        families: usize,
        /// The budget, in bytes.
        budget: usize,
    },
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
            ParseErrorKind::TooManyFamilies { families, budget } => write!(
                f,
                "{families} metric families so far, more than the {} cap on one answer can keep track of; no exporter writes that many",
                super::bytes::format_bytes(*budget as u64)
            ),
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

/// Reads an exposition one line at a time: line numbers, `# EOF` and what
/// may follow it. [`Lines`] drives it over a whole text, [`StreamParser`]
/// over pieces as they arrive.
#[derive(Debug, Clone)]
pub struct LineReader {
    line: usize,
    format: Format,
    seen_eof: bool,
}

impl LineReader {
    /// A reader for `format`, before line 1.
    pub fn new(format: Format) -> Self {
        LineReader {
            line: 0,
            format,
            seen_eof: false,
        }
    }

    /// The number of the last line read (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Reads the next line (without its `\n`); blank lines and plain
    /// comments give `None`.
    pub fn read<'l>(&mut self, raw: &'l str) -> Result<Option<Entry<'l>>, ParseError> {
        self.line += 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if self.seen_eof {
            if raw.trim().is_empty() {
                return Ok(None);
            }
            return Err(error(self.line, raw, ParseErrorKind::ContentAfterEof));
        }
        let entry = self.entry(raw)?;
        if matches!(entry, Some(Entry::Eof)) {
            self.seen_eof = true;
        }
        Ok(entry)
    }

    /// After the last line: OpenMetrics must have ended with `# EOF`.
    pub fn finish(&self) -> Result<(), ParseError> {
        if self.format == Format::OpenMetrics && !self.seen_eof {
            return Err(error(self.line + 1, "", ParseErrorKind::MissingEof));
        }
        Ok(())
    }

    fn entry<'l>(&self, raw: &'l str) -> Result<Option<Entry<'l>>, ParseError> {
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
    fn metadata<'l>(
        &self,
        raw: &'l str,
        comment: &'l str,
    ) -> Result<Option<Entry<'l>>, ParseError> {
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

/// Streaming iterator over the entries of an exposition text. Blank lines
/// and plain comments are skipped.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a str,
    reader: LineReader,
    done: bool,
}

impl<'a> Lines<'a> {
    /// Iterates over `text` in `format`.
    pub fn new(text: &'a str, format: Format) -> Self {
        Lines {
            rest: text,
            reader: LineReader::new(format),
            done: false,
        }
    }

    /// The number of the last line read.
    pub fn line(&self) -> usize {
        self.reader.line()
    }

    fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr_newline(self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line)
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        while let Some(raw) = self.next_line() {
            match self.reader.read(raw) {
                Ok(None) => continue,
                Ok(Some(entry)) => return Some(Ok(entry)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.done = true;
        self.reader.finish().err().map(Err)
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
        self.families
            .iter()
            .any(|f| f.samples.iter().any(|s| names_metric(s.name, name)))
    }

    /// Number of samples.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// True when a sample called `sample` is of metric `metric`: the same
/// name, or it plus a histogram, summary or counter suffix.
pub fn names_metric(sample: &str, metric: &str) -> bool {
    sample
        .strip_prefix(metric)
        .is_some_and(|rest| ["", "_bucket", "_count", "_sum", "_total"].contains(&rest))
}

/// Parses a whole exposition into families, validating what Prometheus's
/// own parser validates: one TYPE/HELP per family, TYPE before samples,
/// `le` on histogram buckets, `quantile` on summary samples. Holds every
/// sample; [`StreamParser`] validates the same without holding any.
pub fn parse(text: &str, format: Format) -> Result<Exposition<'_>, ParseError> {
    let mut families: Vec<Family<'_>> = Vec::new();
    let mut tracker = FamilyTracker::default();
    let mut lines = Lines::new(text, format);
    while let Some(entry) = lines.next() {
        let entry = entry?;
        let line = lines.line();
        let Some(accepted) = tracker
            .accept(&entry)
            .map_err(|kind| error(line, line_content(text, line), kind))?
        else {
            continue;
        };
        if accepted.created {
            let name = match &entry {
                Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => {
                    *name
                }
                Entry::Sample(sample) => sample.name,
                Entry::Eof => continue,
            };
            families.push(Family {
                name,
                kind: MetricType::Untyped,
                help: None,
                unit: None,
                samples: Vec::new(),
            });
        }
        let family = &mut families[accepted.family];
        match entry {
            Entry::Help { text, .. } => family.help = Some(text),
            Entry::Unit { unit, .. } => family.unit = Some(unit),
            Entry::Type { kind, .. } => family.kind = kind,
            Entry::Sample(sample) => family.samples.push(sample),
            Entry::Eof => {}
        }
    }
    Ok(Exposition { format, families })
}

/// Where [`FamilyTracker::accept`] put an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The family's number, in order of first appearance.
    pub family: usize,
    /// True when this entry opened the family.
    pub created: bool,
}

#[derive(Debug)]
struct FamilyState {
    name: std::sync::Arc<str>,
    kind: MetricType,
    typed: bool,
    help: bool,
    unit: bool,
    sampled: bool,
}

/// Groups entries into families as they come and checks what [`parse`]
/// checks. It keeps per family only its name and what was declared, never
/// a sample, so its memory follows the number of families, not the size of
/// the page.
#[derive(Debug, Default)]
pub struct FamilyTracker {
    states: Vec<FamilyState>,
    index: HashMap<std::sync::Arc<str>, usize>,
    current: Option<usize>,
    samples: usize,
    cost: usize,
}

/// Bytes one tracked family takes besides its name: its state, the shared
/// name's header, the index entry and their growth slack (measured).
const FAMILY_COST: usize = 128;

impl FamilyTracker {
    /// Families seen.
    pub fn families(&self) -> usize {
        self.states.len()
    }

    /// Samples seen.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// About how many bytes the tracking takes.
    pub fn cost(&self) -> usize {
        self.cost
    }

    /// Files `entry` under its family (`None` for `# EOF`), or says what is
    /// wrong with it.
    pub fn accept(&mut self, entry: &Entry<'_>) -> Result<Option<Accepted>, ParseErrorKind> {
        let accepted = match entry {
            Entry::Eof => return Ok(None),
            Entry::Help { name, .. } => self.declare(name, "HELP", |f| &mut f.help)?,
            Entry::Unit { name, .. } => self.declare(name, "UNIT", |f| &mut f.unit)?,
            Entry::Type { name, kind } => {
                let accepted = self.family(name);
                let f = &mut self.states[accepted.family];
                if f.typed {
                    return Err(ParseErrorKind::DuplicateMetadata("TYPE"));
                }
                if f.sampled {
                    return Err(ParseErrorKind::TypeAfterSamples);
                }
                f.kind = *kind;
                f.typed = true;
                accepted
            }
            Entry::Sample(sample) => {
                let accepted = match self
                    .current
                    .filter(|&i| belongs(&self.states[i], sample.name))
                    .or_else(|| self.find_family(sample.name))
                {
                    Some(family) => Accepted {
                        family,
                        created: false,
                    },
                    None => self.family(sample.name),
                };
                let f = &mut self.states[accepted.family];
                let bound = match f.kind {
                    MetricType::Histogram | MetricType::GaugeHistogram
                        if sample.name.ends_with("_bucket") =>
                    {
                        Some("le")
                    }
                    MetricType::Summary if sample.name == &*f.name => Some("quantile"),
                    _ => None,
                };
                if let Some(label) =
                    bound.filter(|l| sample.label(l).and_then(parse_float).is_none())
                {
                    return Err(ParseErrorKind::MissingBound(label));
                }
                f.sampled = true;
                self.samples += 1;
                accepted
            }
        };
        self.current = Some(accepted.family);
        Ok(Some(accepted))
    }

    /// Files a `# HELP` or `# UNIT` line (`what`) under the family `name`;
    /// `seen` is the family's flag for it, as a second one is an error.
    fn declare(
        &mut self,
        name: &str,
        what: &'static str,
        seen: fn(&mut FamilyState) -> &mut bool,
    ) -> Result<Accepted, ParseErrorKind> {
        let accepted = self.family(name);
        if std::mem::replace(seen(&mut self.states[accepted.family]), true) {
            return Err(ParseErrorKind::DuplicateMetadata(what));
        }
        Ok(accepted)
    }

    fn family(&mut self, name: &str) -> Accepted {
        if let Some(&family) = self.index.get(name) {
            return Accepted {
                family,
                created: false,
            };
        }
        self.cost += FAMILY_COST + name.len();
        let name: std::sync::Arc<str> = name.into();
        self.states.push(FamilyState {
            name: name.clone(),
            kind: MetricType::Untyped,
            typed: false,
            help: false,
            unit: false,
            sampled: false,
        });
        let family = self.states.len() - 1;
        self.index.insert(name, family);
        Accepted {
            family,
            created: true,
        }
    }

    fn find_family(&self, sample: &str) -> Option<usize> {
        for suffix in [
            "_bucket", "_count", "_sum", "_total", "_created", "_gsum", "_gcount", "_info",
        ] {
            if let Some(&i) = sample
                .strip_suffix(suffix)
                .and_then(|base| self.index.get(base))
            {
                if belongs(&self.states[i], sample) {
                    return Some(i);
                }
            }
        }
        self.index.get(sample).copied()
    }
}

fn belongs(family: &FamilyState, sample: &str) -> bool {
    match sample.strip_prefix(&*family.name) {
        Some("") => true,
        Some(suffix) => family.kind.suffixes().contains(&suffix),
        None => false,
    }
}

/// What a streamed exposition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Metric families.
    pub families: usize,
    /// Samples.
    pub samples: usize,
    /// Bytes read.
    pub bytes: usize,
}

/// Parses an exposition that arrives in pieces (an HTTP body), validating
/// what [`parse`] validates and handing each sample to a callback as its
/// line completes. Nothing is kept of a sample after its callback: memory
/// is the longest line plus the family names, whatever the page's size.
#[derive(Debug)]
pub struct StreamParser {
    reader: LineReader,
    tracker: FamilyTracker,
    pending: Vec<u8>,
    bytes: usize,
    budget: usize,
}

impl StreamParser {
    /// A parser for `format` whose family tracking may take up to `budget`
    /// bytes (a page of millions of one-line families is refused, not
    /// tracked into gigabytes).
    pub fn new(format: Format, budget: usize) -> Self {
        StreamParser {
            reader: LineReader::new(format),
            tracker: FamilyTracker::default(),
            pending: Vec::new(),
            bytes: 0,
            budget,
        }
    }

    /// Feeds the next piece of the body; `each` sees every sample whose line
    /// it completes.
    pub fn feed(
        &mut self,
        piece: &[u8],
        each: &mut dyn FnMut(&Sample<'_>),
    ) -> Result<(), ParseError> {
        self.bytes += piece.len();
        let Some(last) = piece.iter().rposition(|&b| b == b'\n') else {
            self.pending.extend_from_slice(piece);
            return Ok(());
        };
        let (complete, rest) = piece.split_at(last + 1);
        if self.pending.is_empty() {
            self.lines(complete, each)?;
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(complete);
            self.lines(&joined, each)?;
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Ends the body: the last line (without a newline) and the `# EOF`
    /// rule of OpenMetrics.
    pub fn finish(mut self, each: &mut dyn FnMut(&Sample<'_>)) -> Result<Shape, ParseError> {
        let tail = std::mem::take(&mut self.pending);
        if !tail.is_empty() {
            self.line(&tail, each)?;
        }
        self.reader.finish()?;
        Ok(Shape {
            families: self.tracker.families(),
            samples: self.tracker.samples(),
            bytes: self.bytes,
        })
    }

    fn lines(&mut self, bytes: &[u8], each: &mut dyn FnMut(&Sample<'_>)) -> Result<(), ParseError> {
        // `bytes` ends with a newline, which ends its last line.
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        for raw in body.split(|&b| b == b'\n') {
            self.line(raw, each)?;
        }
        Ok(())
    }

    fn line(&mut self, raw: &[u8], each: &mut dyn FnMut(&Sample<'_>)) -> Result<(), ParseError> {
        let text = String::from_utf8_lossy(raw);
        let Some(entry) = self.reader.read(&text)? else {
            return Ok(());
        };
        let line = self.reader.line();
        let raw = text.strip_suffix('\r').unwrap_or(&text);
        self.tracker
            .accept(&entry)
            .map_err(|kind| error(line, raw, kind))?;
        if self.tracker.cost() > self.budget {
            let kind = ParseErrorKind::TooManyFamilies {
                families: self.tracker.families(),
                budget: self.budget,
            };
            return Err(error(line, raw, kind));
        }
        if let Entry::Sample(sample) = &entry {
            each(sample);
        }
        Ok(())
    }
}

fn line_content(text: &str, line: usize) -> &str {
    text.split('\n')
        .nth(line.saturating_sub(1))
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or("")
}
