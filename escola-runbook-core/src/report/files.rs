//! The reports of a run directory: which files, in which format, written
//! so that a reader never sees half of one.

use std::path::{Path, PathBuf};

use super::error::ReportError;
#[cfg(feature = "html")]
use super::html::render_html;
use super::json::render_json;
#[cfg(feature = "junit")]
use super::junit::render_junit;
use super::markdown::render_markdown;
#[cfg(feature = "plots")]
use super::plot::{phase_charts, plots, render_phase_svg, render_svg};
use crate::record::RunRecord;

/// The file names `write_reports` uses inside a run directory.
pub const REPORT_FILES: &[(&str, Format)] = &[
    ("report.md", Format::Markdown),
    ("report.json", Format::Json),
    #[cfg(feature = "junit")]
    ("junit.xml", Format::Junit),
    #[cfg(feature = "html")]
    ("report.html", Format::Html),
];

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown checklist.
    Markdown,
    /// Versioned JSON.
    Json,
    /// JUnit XML.
    #[cfg(feature = "junit")]
    Junit,
    /// One self-contained page, the plots inline.
    #[cfg(feature = "html")]
    Html,
}

/// Renders `record` in `format`.
pub fn render(record: &RunRecord, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Markdown => Ok(render_markdown(record)),
        Format::Json => render_json(record),
        #[cfg(feature = "junit")]
        Format::Junit => render_junit(record),
        #[cfg(feature = "html")]
        Format::Html => render_html(record),
    }
}

/// Writes the reports of [`REPORT_FILES`] (and, with feature `plots`, a
/// chart per phase that measured series and an SVG plot per series) into `dir`, each under a temporary name
/// first and renamed when complete, so a reader never sees half a report.
/// Returns the paths written.
pub fn write_reports(record: &RunRecord, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for &(name, format) in REPORT_FILES {
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
    #[cfg(feature = "plots")]
    {
        for chart in phase_charts(record) {
            written.push(write_plot(dir, &chart.path, &render_phase_svg(&chart)?)?);
        }
        for (relative, series) in plots(record) {
            written.push(write_plot(dir, &relative, &render_svg(series)?)?);
        }
    }
    Ok(written)
}

/// Writes one SVG under `dir` (creating `plots/`), renamed into place when
/// complete.
#[cfg(feature = "plots")]
fn write_plot(dir: &Path, relative: &str, svg: &str) -> Result<PathBuf, ReportError> {
    let path = dir.join(relative);
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("svg.tmp");
    std::fs::write(&tmp, svg).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}
