//! Line coverage from the report PHPUnit writes (`--coverage-clover`) or a
//! Cobertura report (`--coverage-cobertura`, most other tools), against the
//! runbook's threshold ("cobertura ≥ 85%").
//!
//! The report is read as a stream (quick-xml), so a report of a large code
//! base costs memory per file, not per line.
//!
//! What counts as a line:
//! - Clover (PHPUnit): `coveredstatements / statements` of the project
//!   `<metrics>`; PHPUnit fills these with executed / executable lines.
//!   Without project metrics, the files' metrics are summed.
//! - Cobertura: `lines-covered / lines-valid` of the root element; without
//!   them, the `<line>` elements of every class (a line with `hits > 0` is
//!   covered); with neither, the root `line-rate`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::duration::{LookBack, Span, format_span};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

/// Which dialect the report was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Clover XML, as PHPUnit writes it.
    Clover,
    /// Cobertura XML.
    Cobertura,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Clover => "Clover",
            Format::Cobertura => "Cobertura",
        }
    }
}

/// Coverage of one source file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCoverage {
    /// The path as the report names it.
    pub path: String,
    /// Executable lines.
    pub lines_valid: u64,
    /// Executed lines.
    pub lines_covered: u64,
}

impl FileCoverage {
    /// Percentage of lines covered.
    pub fn percent(&self) -> f64 {
        percent(self.lines_covered, self.lines_valid)
    }
}

/// What a report says.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The dialect.
    pub format: Format,
    /// Executable and executed lines of the whole report, when it gives
    /// counts (a Cobertura report may give only a rate).
    pub totals: Option<(u64, u64)>,
    /// Line coverage of the whole report, in percent.
    pub percent: f64,
    /// Per-file figures, in report order.
    pub files: Vec<FileCoverage>,
    /// When the report was generated (Unix seconds), if it says.
    pub generated: Option<i64>,
}

/// A report that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// The file is missing or unreadable.
    #[error(
        "cannot read coverage report {path}: {source}; generate it with `php vendor/bin/phpunit --coverage-clover {path}`"
    )]
    Read {
        /// The report.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not well-formed XML.
    #[error("coverage report {path} is not well-formed XML (near byte {position}): {message}")]
    Xml {
        /// The report.
        path: PathBuf,
        /// Byte offset.
        position: u64,
        /// The parser's message.
        message: String,
    },
    /// XML, but neither dialect.
    #[error("coverage report {path} is not a Clover or Cobertura report: {detail}")]
    NotCoverage {
        /// The report.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
}

fn percent(covered: u64, valid: u64) -> f64 {
    if valid == 0 {
        0.0
    } else {
        covered as f64 * 100.0 / valid as f64
    }
}

/// Formats a percentage rounded down to two decimals, so a figure just under
/// the limit never prints as the limit itself.
pub fn format_percent(p: f64) -> String {
    let floored = (p * 100.0).floor() / 100.0;
    let text = format!("{floored:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

#[derive(Default)]
struct Metrics {
    statements: Option<u64>,
    covered: Option<u64>,
}

impl Metrics {
    fn read(e: &BytesStart<'_>) -> Metrics {
        Metrics {
            statements: attr(e, b"statements").and_then(|v| v.parse().ok()),
            covered: attr(e, b"coveredstatements").and_then(|v| v.parse().ok()),
        }
    }

    fn pair(&self) -> Option<(u64, u64)> {
        Some((self.statements?, self.covered?))
    }
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    let a = e.try_get_attribute(name).ok()??;
    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .ok()
        .map(|v| v.into_owned())
}

/// Per-file accumulation while streaming.
#[derive(Default)]
struct OpenFile {
    path: String,
    metrics: Option<(u64, u64)>,
    // Line counts from <line type="stmt"> (Clover) or <line> (Cobertura).
    lines: BTreeMap<u64, bool>,
}

/// Reads a Clover or Cobertura report from `reader`; `path` names it in errors.
pub fn parse<R: BufRead>(reader: R, path: &Path) -> Result<Report, CoverageError> {
    let mut xml = quick_xml::Reader::from_reader(reader);
    let mut buf = Vec::new();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut root_seen = false;
    let mut format: Option<Format> = None;
    let mut generated = None;
    let mut project_metrics: Option<(u64, u64)> = None;
    let mut cobertura_totals: (Option<u64>, Option<u64>, Option<f64>) = (None, None, None);
    let mut files: Vec<FileCoverage> = Vec::new();
    // Cobertura lists one file under several classes; merge by filename.
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut merged_lines: Vec<BTreeMap<u64, bool>> = Vec::new();
    let mut open: Option<OpenFile> = None;
    let xml_error = |xml: &quick_xml::Reader<R>, message: String| CoverageError::Xml {
        path: path.to_owned(),
        position: xml.buffer_position(),
        message,
    };

    loop {
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(&xml, e.to_string()))?;
        let (start, is_empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if name == b"file" && format == Some(Format::Clover) {
                    finish_clover_file(&mut open, &mut files);
                }
                if name == b"class" && format == Some(Format::Cobertura) {
                    finish_cobertura_class(&mut open, &mut by_name, &mut merged_lines);
                }
                buf.clear();
                continue;
            }
            Event::Text(t) if !root_seen => {
                if t.iter().any(|b| !b.is_ascii_whitespace()) {
                    return Err(CoverageError::NotCoverage {
                        path: path.to_owned(),
                        detail: "text before the root element".into(),
                    });
                }
                (None, false)
            }
            Event::Eof => break,
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name().as_ref().to_vec();
            let parent = stack.last().map(Vec::as_slice);
            if !root_seen {
                root_seen = true;
                if name != b"coverage" {
                    let hint = if name == b"phpunit" {
                        " (this is PHPUnit's --coverage-xml index; write --coverage-clover FILE instead)"
                    } else {
                        ""
                    };
                    return Err(CoverageError::NotCoverage {
                        path: path.to_owned(),
                        detail: format!(
                            "the root element is <{}>, expected <coverage>{hint}",
                            String::from_utf8_lossy(&name)
                        ),
                    });
                }
                if let Some(rate) = attr(&e, b"line-rate") {
                    format = Some(Format::Cobertura);
                    cobertura_totals = (
                        attr(&e, b"lines-valid").and_then(|v| v.parse().ok()),
                        attr(&e, b"lines-covered").and_then(|v| v.parse().ok()),
                        rate.parse().ok(),
                    );
                    generated = attr(&e, b"timestamp")
                        .and_then(|v| v.parse::<i64>().ok())
                        // Cobertura writes milliseconds; some tools seconds.
                        .map(|t| if t > 100_000_000_000 { t / 1000 } else { t });
                } else {
                    generated = attr(&e, b"generated").and_then(|v| v.parse().ok());
                }
            } else {
                match (name.as_slice(), parent) {
                    (b"project", Some(b"coverage")) => {
                        format.get_or_insert(Format::Clover);
                        if generated.is_none() {
                            generated = attr(&e, b"timestamp").and_then(|v| v.parse().ok());
                        }
                    }
                    (b"packages" | b"sources", Some(b"coverage")) => {
                        format.get_or_insert(Format::Cobertura);
                    }
                    (b"file", _) if format == Some(Format::Clover) => {
                        finish_clover_file(&mut open, &mut files);
                        open = Some(OpenFile {
                            path: attr(&e, b"name")
                                .or_else(|| attr(&e, b"path"))
                                .unwrap_or_default(),
                            ..OpenFile::default()
                        });
                    }
                    (b"metrics", Some(b"file")) if format == Some(Format::Clover) => {
                        if let Some(f) = open.as_mut() {
                            f.metrics = Metrics::read(&e).pair();
                        }
                    }
                    (b"metrics", Some(b"project")) => {
                        project_metrics = Metrics::read(&e).pair();
                    }
                    (b"line", Some(b"file")) if format == Some(Format::Clover) => {
                        if attr(&e, b"type").as_deref() == Some("stmt")
                            && let (Some(f), Some(num)) = (
                                open.as_mut(),
                                attr(&e, b"num").and_then(|v| v.parse::<u64>().ok()),
                            )
                        {
                            let count: u64 =
                                attr(&e, b"count").and_then(|v| v.parse().ok()).unwrap_or(0);
                            *f.lines.entry(num).or_default() |= count > 0;
                        }
                    }
                    (b"class", _) if format == Some(Format::Cobertura) => {
                        open = Some(OpenFile {
                            path: attr(&e, b"filename").unwrap_or_default(),
                            ..OpenFile::default()
                        });
                        if is_empty {
                            finish_cobertura_class(&mut open, &mut by_name, &mut merged_lines);
                        }
                    }
                    (b"line", Some(b"lines"))
                        if format == Some(Format::Cobertura)
                            && stack.len() >= 2
                            && stack[stack.len() - 2] == b"class" =>
                    {
                        if let (Some(f), Some(num)) = (
                            open.as_mut(),
                            attr(&e, b"number").and_then(|v| v.parse::<u64>().ok()),
                        ) {
                            let hits: f64 = attr(&e, b"hits")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0.0);
                            *f.lines.entry(num).or_default() |= hits > 0.0;
                        }
                    }
                    _ => {}
                }
            }
            if !is_empty {
                stack.push(name);
            }
        }
        buf.clear();
    }
    if let Some(unclosed) = stack.last() {
        return Err(xml_error(
            &xml,
            format!(
                "the file ends inside <{}>: it is truncated (was the test run interrupted?)",
                String::from_utf8_lossy(unclosed)
            ),
        ));
    }
    let Some(format) = format else {
        return Err(CoverageError::NotCoverage {
            path: path.to_owned(),
            detail: if root_seen {
                "<coverage> has neither a Clover <project> nor a Cobertura line-rate".into()
            } else {
                "the file has no XML element (is it empty?)".into()
            },
        });
    };
    if format == Format::Cobertura {
        let mut names: Vec<(String, usize)> = by_name.into_iter().collect();
        names.sort_by_key(|(_, i)| *i);
        for (name, i) in names {
            let lines = &merged_lines[i];
            files.push(FileCoverage {
                path: name,
                lines_valid: lines.len() as u64,
                lines_covered: lines.values().filter(|c| **c).count() as u64,
            });
        }
    }
    let summed = || {
        let valid: u64 = files.iter().map(|f| f.lines_valid).sum();
        let covered: u64 = files.iter().map(|f| f.lines_covered).sum();
        (valid, covered)
    };
    let (totals, pct) = match format {
        Format::Clover => {
            let t = project_metrics.unwrap_or_else(summed);
            (Some(t), percent(t.1, t.0))
        }
        Format::Cobertura => match cobertura_totals {
            (Some(valid), Some(covered), _) => (Some((valid, covered)), percent(covered, valid)),
            _ if files.iter().any(|f| f.lines_valid > 0) => {
                let t = summed();
                (Some(t), percent(t.1, t.0))
            }
            (_, _, Some(rate)) if rate.is_finite() => (None, rate * 100.0),
            _ => (Some((0, 0)), 0.0),
        },
    };
    Ok(Report {
        format,
        totals,
        percent: pct,
        files,
        generated,
    })
}

fn finish_clover_file(open: &mut Option<OpenFile>, files: &mut Vec<FileCoverage>) {
    if let Some(f) = open.take() {
        let (valid, covered) = f.metrics.unwrap_or_else(|| {
            (
                f.lines.len() as u64,
                f.lines.values().filter(|c| **c).count() as u64,
            )
        });
        files.push(FileCoverage {
            path: f.path,
            lines_valid: valid,
            lines_covered: covered,
        });
    }
}

fn finish_cobertura_class(
    open: &mut Option<OpenFile>,
    by_name: &mut BTreeMap<String, usize>,
    merged: &mut Vec<BTreeMap<u64, bool>>,
) {
    if let Some(f) = open.take() {
        let next = merged.len();
        let i = *by_name.entry(f.path).or_insert(next);
        if i == next {
            merged.push(BTreeMap::new());
        }
        for (line, covered) in f.lines {
            *merged[i].entry(line).or_default() |= covered;
        }
    }
}

/// Reads the report at `path`.
pub fn read(path: &Path) -> Result<Report, CoverageError> {
    let file = std::fs::File::open(path).map_err(|source| CoverageError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(std::io::BufReader::new(file), path)
}

/// The longest directory prefix shared by every path, so evidence shows
/// `src/Escola/Foo.php` rather than `/builds/app/src/Escola/Foo.php`.
fn common_dir(paths: &[&str]) -> usize {
    let Some(first) = paths.first() else {
        return 0;
    };
    let mut len = first.rfind('/').map_or(0, |i| i + 1);
    for p in &paths[1..] {
        while len > 0 && !(p.len() >= len && p.as_bytes()[..len] == first.as_bytes()[..len]) {
            len = first[..len - 1].rfind('/').map_or(0, |i| i + 1);
        }
    }
    len
}

/// Line coverage in a Clover (PHPUnit) or Cobertura XML report is at
/// least a minimum.
///
/// The parameters of [`CoverageCheck`], declared once (see
/// [`CheckConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoverageParams {
    /// Path of the coverage report: Clover XML (phpunit --coverage-clover
    /// FILE) or Cobertura XML.
    pub report: PathBuf,
    /// Minimum line coverage in percent, 0-100 (`85` or `85%`); passes when
    /// coverage >= min.
    #[serde(default = "default_min")]
    pub min: Percent,
    /// Refuse (check error) a report older than this, by its timestamp or
    /// file time (e.g. 2h, 1d); unset: any age.
    #[serde(default)]
    pub max_age: Option<Span<LookBack>>,
    /// How many of the worst-covered files the evidence lists.
    #[serde(default = "default_worst")]
    pub worst: usize,
}

/// The runbook's threshold ("cobertura ≥ 85%").
pub const DEFAULT_MIN: f64 = 85.0;

fn default_min() -> Percent {
    Percent(DEFAULT_MIN)
}
fn default_worst() -> usize {
    DEFAULT_WORST
}

/// A percentage, written as a number (`85.5`) or as text with or without
/// a percent sign (`"85.5%"`), so `-p min=85%` reads as the runbook says
/// it. The range (0 to 100) is checked by [`CoverageParams`]' build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

/// A whole percentage is written as an integer (`85`, not `85.0`).
impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let whole = self.0.fract() == 0.0 && (0.0..=100.0).contains(&self.0);
        if whole {
            s.serialize_u64(self.0 as u64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = escola_runbook_core::catalog::number_or_text(d)?;
        text.trim()
            .trim_end_matches('%')
            .trim()
            .parse()
            .map(Percent)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a percentage from 0 to 100 (write 85 or 85%)"
                ))
            })
    }
}

escola_runbook_core::text_param_schema!(
    Percent,
    "Percent",
    ["number", "string"],
    "a percentage from 0 to 100 (85, 85.5 or \"85%\")"
);

impl CheckConfig for CoverageParams {
    const NAME: &'static str = "coverage";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        let min = self.min.0;
        if !(min.is_finite() && (0.0..=100.0).contains(&min)) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "min",
                format!("has value `{min}`, which is not a percentage from 0 to 100"),
            ));
        }
        Ok(Arc::new(CoverageCheck { params: self }))
    }
}

/// Line coverage at or above a threshold.
///
/// ```
/// use escola_runbook_checks::coverage::CoverageCheck;
/// let check = CoverageCheck::new("build/logs/clover.xml", 85.0);
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct CoverageCheck {
    params: CoverageParams,
}

/// Files listed as the worst covered, by default.
pub const DEFAULT_WORST: usize = 5;

impl CoverageCheck {
    /// Passes when the report at `report` shows at least `min` percent of
    /// lines covered.
    pub fn new(report: impl Into<PathBuf>, min: f64) -> Self {
        CoverageCheck {
            params: CoverageParams {
                report: report.into(),
                min: Percent(min),
                max_age: None,
                worst: DEFAULT_WORST,
            },
        }
    }

    escola_runbook_core::setters! {
        /// Refuses a report older than `age` (by its own timestamp, or the
        /// file's modification time when it has none): last week's report says
        /// nothing about the commit being deployed.
        max_age(age: Duration) => params.max_age = Some(Span::from(age));

        /// How many of the worst-covered files the evidence lists.
        worst(n: usize) => params.worst = n;
    }
}

#[async_trait]
impl Check for CoverageCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "coverage",
            format!(
                "line coverage in {} is at least {}",
                self.params.report.display(),
                format_percent(self.params.min.0)
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let path = self.params.report.clone();
        let parsed = tokio::task::spawn_blocking(move || read(&path)).await;
        let report = match parsed {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Outcome::check_error(e.to_string())
                    .with_evidence("report", self.params.report.display().to_string());
            }
            Err(e) => return Outcome::check_error(format!("the report reader stopped: {e}")),
        };
        if let Some(max_age) = self.params.max_age.map(Span::get) {
            let made = report
                .generated
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| (t, "its timestamp"))
                .or_else(|| {
                    std::fs::metadata(&self.params.report)
                        .and_then(|m| m.modified())
                        .ok()
                        .map(|t| {
                            (
                                chrono::DateTime::<chrono::Utc>::from(t),
                                "the file's modification time",
                            )
                        })
                });
            let Some((made, source)) = made else {
                return Outcome::check_error(format!(
                    "cannot tell how old {} is (no timestamp, no modification time)",
                    self.params.report.display()
                ));
            };
            let age = (ctx.now() - made).to_std().unwrap_or_default();
            if age > max_age {
                return Outcome::check_error(format!(
                    "coverage report {} is {} old (generated {}, by {source}), over the {} limit: regenerate it for the commit being deployed",
                    self.params.report.display(),
                    format_span(Duration::from_secs(age.as_secs())),
                    made.to_rfc3339(),
                    format_span(max_age)
                ))
                .with_evidence("report", self.params.report.display().to_string())
                .with_evidence("line coverage", format_percent(report.percent));
            }
        }
        let limit = format_percent(self.params.min.0);
        let figure = format_percent(report.percent);
        let counted = match report.totals {
            Some((valid, covered)) => format!(" ({covered}/{valid} lines)"),
            None => " (rate only; the report gives no line counts)".into(),
        };
        let mut outcome = match report.totals {
            Some((0, _)) => Outcome::no_data(format!(
                "{} report {} has no executable lines; nothing to judge against {limit}",
                report.format.name(),
                self.params.report.display()
            )),
            Some((valid, covered))
                if covered as f64 * 100.0 >= self.params.min.0 * valid as f64 =>
            {
                Outcome::passed(format!("line coverage {figure}{counted} ≥ {limit} minimum"))
            }
            None if report.percent >= self.params.min.0 => {
                Outcome::passed(format!("line coverage {figure}{counted} ≥ {limit} minimum"))
            }
            _ => Outcome::failed(format!(
                "line coverage {figure}{counted} is below the {limit} minimum"
            )),
        };
        outcome = outcome
            .with_evidence("report", self.params.report.display().to_string())
            .with_evidence("format", report.format.name())
            .with_evidence("line coverage", format!("{figure}{counted}"))
            .with_evidence("minimum", limit)
            .with_measurement("line_coverage", report.percent, Some("%"));
        if let Some((valid, covered)) = report.totals {
            outcome = outcome
                .with_measurement("lines_valid", valid as f64, Some("lines"))
                .with_measurement("lines_covered", covered as f64, Some("lines"));
        }
        if let Some(ts) = report
            .generated
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        {
            outcome = outcome.with_evidence("generated", ts.to_rfc3339());
        }
        let mut ranked: Vec<&FileCoverage> =
            report.files.iter().filter(|f| f.lines_valid > 0).collect();
        ranked.sort_by(|a, b| {
            a.percent()
                .total_cmp(&b.percent())
                .then((b.lines_valid - b.lines_covered).cmp(&(a.lines_valid - a.lines_covered)))
        });
        if self.params.worst > 0 && !ranked.is_empty() {
            let names: Vec<&str> = ranked.iter().map(|f| f.path.as_str()).collect();
            let cut = common_dir(&names);
            let lines: Vec<String> = ranked
                .iter()
                .take(self.params.worst)
                .map(|f| {
                    format!(
                        "{} {} ({}/{} lines)",
                        &f.path[cut.min(f.path.len())..],
                        format_percent(f.percent()),
                        f.lines_covered,
                        f.lines_valid
                    )
                })
                .collect();
            outcome = outcome.with_evidence(
                format!("worst files ({} of {})", lines.len(), ranked.len()),
                lines.join("\n"),
            );
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, evidence};
    use escola_runbook_core::Status;

    /// The shape PHPUnit 10 (php-code-coverage) writes.
    const CLOVER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<coverage generated="1764383400">
  <project timestamp="1764383400">
    <package name="App\Escola">
      <file name="/builds/app/src/Escola/EscolaController.php">
        <class name="App\Escola\EscolaController" namespace="App\Escola">
          <metrics complexity="4" methods="2" coveredmethods="2" conditionals="0" coveredconditionals="0" statements="40" coveredstatements="40" elements="42" coveredelements="42"/>
        </class>
        <line num="12" type="method" name="index" visibility="public" complexity="1" crap="1" count="3"/>
        <line num="14" type="stmt" count="3"/>
        <metrics loc="80" ncloc="70" classes="1" methods="2" coveredmethods="2" conditionals="0" coveredconditionals="0" statements="40" coveredstatements="40" elements="42" coveredelements="42"/>
      </file>
      <file name="/builds/app/src/Escola/CacheWarmer.php">
        <metrics loc="50" ncloc="45" classes="1" methods="3" coveredmethods="1" conditionals="0" coveredconditionals="0" statements="20" coveredstatements="5" elements="23" coveredelements="6"/>
      </file>
    </package>
    <file name="/builds/app/src/Sync/Mutations.php">
      <metrics loc="90" ncloc="80" classes="1" methods="4" coveredmethods="3" conditionals="0" coveredconditionals="0" statements="40" coveredstatements="30" elements="44" coveredelements="33"/>
    </file>
    <metrics files="3" loc="220" ncloc="195" classes="3" methods="9" coveredmethods="6" conditionals="0" coveredconditionals="0" statements="100" coveredstatements="75" elements="109" coveredelements="81"/>
  </project>
</coverage>
"#;

    const COBERTURA: &str = r#"<?xml version="1.0" ?>
<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">
<coverage line-rate="0.9" branch-rate="0" lines-covered="9" lines-valid="10" branches-covered="0" branches-valid="0" complexity="0" version="0.4" timestamp="1764383400000">
  <sources><source>/builds/app/src</source></sources>
  <packages>
    <package name="Escola" line-rate="0.9" branch-rate="0" complexity="0">
      <classes>
        <class name="EscolaController" filename="Escola/EscolaController.php" line-rate="1" branch-rate="0" complexity="0">
          <methods>
            <method name="index" signature="" line-rate="1" branch-rate="0" complexity="0">
              <lines><line number="14" hits="3"/></lines>
            </method>
          </methods>
          <lines>
            <line number="14" hits="3"/><line number="15" hits="3"/><line number="16" hits="1"/>
            <line number="17" hits="1"/><line number="18" hits="2"/><line number="19" hits="2"/>
          </lines>
        </class>
        <class name="CacheWarmer" filename="Escola/CacheWarmer.php" line-rate="0.75" branch-rate="0" complexity="0">
          <methods/>
          <lines>
            <line number="3" hits="1"/><line number="4" hits="0"/><line number="5" hits="1"/><line number="6" hits="1"/>
          </lines>
        </class>
      </classes>
    </package>
  </packages>
</coverage>
"#;

    fn write(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.xml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    async fn run(text: &[u8], min: f64) -> Outcome {
        let (_dir, path) = write(text);
        CoverageCheck::new(&path, min).run(&ctx()).await
    }

    #[test]
    fn clover_totals_and_files() {
        let r = parse(CLOVER.as_bytes(), Path::new("clover.xml")).unwrap();
        assert_eq!(r.format, Format::Clover);
        assert_eq!(r.totals, Some((100, 75)));
        assert_eq!(r.generated, Some(1_764_383_400));
        let files: Vec<(&str, u64, u64)> = r
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.lines_valid, f.lines_covered))
            .collect();
        assert_eq!(
            files,
            [
                ("/builds/app/src/Escola/EscolaController.php", 40, 40),
                ("/builds/app/src/Escola/CacheWarmer.php", 20, 5),
                ("/builds/app/src/Sync/Mutations.php", 40, 30),
            ]
        );
    }

    #[tokio::test]
    async fn clover_below_threshold_fails_with_figure_limit_and_worst_files() {
        let o = run(CLOVER.as_bytes(), 85.0).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert_eq!(
            o.summary,
            "line coverage 75% (75/100 lines) is below the 85% minimum"
        );
        let worst = evidence(&o, "worst files");
        let lines: Vec<&str> = worst.lines().collect();
        assert_eq!(
            lines,
            [
                "Escola/CacheWarmer.php 25% (5/20 lines)",
                "Sync/Mutations.php 75% (30/40 lines)",
                "Escola/EscolaController.php 100% (40/40 lines)",
            ]
        );
        assert_eq!(evidence(&o, "generated"), "2025-11-29T02:30:00+00:00");
        assert_eq!(o.measurements[0].value, 75.0);
    }

    #[tokio::test]
    async fn at_the_threshold_passes_and_just_below_never_prints_as_the_limit() {
        let exact = CLOVER.replace(
            r#"statements="100" coveredstatements="75""#,
            r#"statements="100" coveredstatements="85""#,
        );
        let o = run(exact.as_bytes(), 85.0).await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert_eq!(o.summary, "line coverage 85% (85/100 lines) ≥ 85% minimum");

        let under = CLOVER.replace(
            r#"statements="100" coveredstatements="75""#,
            r#"statements="10000" coveredstatements="8499""#,
        );
        let o = run(under.as_bytes(), 85.0).await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.summary
                .starts_with("line coverage 84.99% (8499/10000 lines)"),
            "{}",
            o.summary
        );
    }

    #[tokio::test]
    async fn clover_without_project_metrics_sums_files_or_counts_lines() {
        let text = r#"<coverage generated="1"><project timestamp="1">
            <file name="a.php"><line num="1" type="stmt" count="1"/><line num="2" type="stmt" count="0"/>
              <line num="3" type="method" count="0"/><line num="4" type="stmt" count="2"/></file>
            <file name="b.php"><metrics statements="4" coveredstatements="1"/></file>
          </project></coverage>"#;
        let r = parse(text.as_bytes(), Path::new("x")).unwrap();
        assert_eq!(r.totals, Some((7, 3)));
        assert_eq!(r.files[0].lines_valid, 3);
        assert_eq!(r.files[0].lines_covered, 2);
    }

    #[tokio::test]
    async fn cobertura_uses_root_counts_and_class_lines_per_file() {
        let r = parse(COBERTURA.as_bytes(), Path::new("cobertura.xml")).unwrap();
        assert_eq!(r.format, Format::Cobertura);
        assert_eq!(r.totals, Some((10, 9)));
        assert_eq!(r.generated, Some(1_764_383_400));
        assert_eq!(r.files.len(), 2);
        assert_eq!((r.files[1].lines_valid, r.files[1].lines_covered), (4, 3));
        let o = run(COBERTURA.as_bytes(), 85.0).await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert_eq!(o.summary, "line coverage 90% (9/10 lines) ≥ 85% minimum");
        assert_eq!(
            evidence(&o, "worst files").lines().next(),
            Some("CacheWarmer.php 75% (3/4 lines)")
        );
    }

    #[tokio::test]
    async fn cobertura_without_counts_falls_back_to_lines_then_rate() {
        let no_counts = COBERTURA.replace(r#"lines-covered="9" lines-valid="10" "#, "");
        let r = parse(no_counts.as_bytes(), Path::new("x")).unwrap();
        assert_eq!(r.totals, Some((10, 9)));
        let rate_only = r#"<coverage line-rate="0.8" version="1"><packages/></coverage>"#;
        let o = run(rate_only.as_bytes(), 85.0).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(o.summary.contains("80% (rate only"), "{}", o.summary);
    }

    #[tokio::test]
    async fn malformed_reports_are_check_errors_that_say_why() {
        let cases: [(&[u8], &str); 7] = [
            (
                b"<coverage><project><file></project></coverage>",
                "not well-formed XML",
            ),
            (
                &CLOVER.as_bytes()[..CLOVER.find("</package>").unwrap()],
                "truncated",
            ),
            (
                &CLOVER.as_bytes()[..CLOVER.len() / 2],
                "not well-formed XML",
            ),
            (b"", "has no XML element"),
            (
                b"<html><body>502 Bad Gateway</body></html>",
                "root element is <html>",
            ),
            (b"<coverage generated=\"1\"></coverage>", "neither a Clover"),
            (b"\x00\x01\x02binary\xff\xfe", "coverage report"),
        ];
        for (text, expected) in cases {
            let o = run(text, 85.0).await;
            assert_eq!(o.status, Status::CheckError, "{expected}: {o:#?}");
            assert!(o.summary.contains(expected), "{expected}: {}", o.summary);
        }
        let o = CoverageCheck::new("/nonexistent/clover.xml", 85.0)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError);
        assert!(o.summary.contains("--coverage-clover"), "{}", o.summary);
    }

    #[tokio::test]
    async fn a_stale_report_is_refused_when_max_age_is_set() {
        let (_dir, path) = write(CLOVER.as_bytes());
        let o = CoverageCheck::new(&path, 50.0)
            .max_age(Duration::from_secs(86_400))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(
            o.summary.contains(
                "(generated 2025-11-29T02:30:00+00:00, by its timestamp), over the 1d limit"
            ),
            "{}",
            o.summary
        );
        // Without a timestamp, the file's modification time (just now) counts.
        let (_dir, path) = write(br#"<coverage><project><metrics statements="10" coveredstatements="9"/></project></coverage>"#);
        let o = CoverageCheck::new(&path, 85.0)
            .max_age(Duration::from_secs(3600))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        let o = run(
            br#"<phpunit xmlns="https://schema.phpunit.de/coverage/1.0"/>"#,
            85.0,
        )
        .await;
        assert!(
            o.summary.contains("--coverage-clover FILE instead"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_accepted() {
        let text = format!("\u{feff}{}", CLOVER.replace('\n', "\r\n"));
        let r = parse(text.as_bytes(), Path::new("bom.xml")).unwrap();
        assert_eq!(r.totals, Some((100, 75)));
    }

    #[tokio::test]
    async fn no_executable_lines_is_no_data() {
        let text = r#"<coverage generated="1"><project timestamp="1"><metrics statements="0" coveredstatements="0"/></project></coverage>"#;
        let o = run(text.as_bytes(), 85.0).await;
        assert_eq!(o.status, Status::NoData, "{o:#?}");
    }

    #[test]
    fn registry_parses_min_and_round_trips() {
        let catalog = crate::catalog();
        let spec = catalog.find("coverage").unwrap();
        let p = crate::testing::pairs([("report", "build/clover.xml"), ("min", "85.5%")]);
        let check = spec.build_from_pairs(&p).unwrap();
        let params = check.params().unwrap();
        assert_eq!(params.params["min"], 85.5);
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
        for bad in ["abc", "120", "-1"] {
            let err = spec
                .build_from_pairs(&crate::testing::pairs([("report", "x"), ("min", bad)]))
                .err()
                .unwrap();
            assert!(err.to_string().contains("not a percentage"), "{err}");
        }
    }
}
