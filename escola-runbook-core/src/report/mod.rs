//! Reports rendered from a [`RunRecord`]: JSON for machines, Markdown for
//! people (the runbook as a ticked checklist), JUnit XML for CI dashboards,
//! and plain lines for logs.

mod json;
mod junit;
mod lines;
mod markdown;
mod plot;

pub use json::render_json;
pub use junit::render_junit;
pub use lines::LineReporter;
pub use markdown::render_markdown;
pub use plot::{plot_path, plots, render_svg};

use crate::outcome::Status;
use crate::record::StepRecord;

/// The file names `write_reports` uses inside a run directory.
pub const REPORT_FILES: [(&str, Format); 3] = [
    ("report.md", Format::Markdown),
    ("report.json", Format::Json),
    ("junit.xml", Format::Junit),
];

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown checklist.
    Markdown,
    /// Versioned JSON.
    Json,
    /// JUnit XML.
    Junit,
}

/// A report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// JSON serialization failed.
    #[error("cannot render the JSON report: {0}")]
    Json(#[from] serde_json::Error),
    /// JUnit serialization failed.
    #[error("cannot render the JUnit report: {0}")]
    Junit(String),
    /// A plot could not be drawn.
    #[error("cannot draw a plot: {0}")]
    Plot(String),
    /// A report file could not be written.
    #[error("cannot write report {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Renders `record` in `format`.
pub fn render(record: &crate::RunRecord, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Markdown => Ok(render_markdown(record)),
        Format::Json => render_json(record),
        Format::Junit => render_junit(record),
    }
}

/// Writes the three reports (and an SVG plot per measured series) into `dir`, each under a temporary name first and
/// renamed when complete, so a reader never sees half a report. Returns the
/// paths written.
pub fn write_reports(
    record: &crate::RunRecord,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let mut written = Vec::new();
    for (name, format) in REPORT_FILES {
        let text = render(record, format)?;
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let io = |source| ReportError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        written.push(path);
    }
    for (relative, series) in plots(record) {
        let path = dir.join(&relative);
        let io = |source| ReportError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = path.with_extension("svg.tmp");
        std::fs::write(&tmp, render_svg(series)?).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

/// The checkbox for a step: `[x]` done, `[!]` went wrong, `[ ]` not done.
pub fn checkbox(step: &StepRecord) -> &'static str {
    match step.status() {
        Status::Passed | Status::Warned => "[x]",
        Status::Failed
        | Status::NoData
        | Status::CheckError
        | Status::TimedOut
        | Status::Aborted => "[!]",
        Status::Skipped | Status::NotRun => "[ ]",
    }
}
