//! Reports rendered from a [`RunRecord`](crate::RunRecord): JSON for
//! machines, Markdown for people (the runbook as a ticked checklist), JUnit
//! XML for CI dashboards (feature `junit`), SVG plots of measured series
//! (feature `plots`), one self-contained HTML page with the plots inline
//! (feature `html`), and plain lines for logs.
//!
//! Each file renders one format from the record and nothing else;
//! `files.rs` says which files a run directory gets and writes them.

mod error;
mod files;
#[cfg(feature = "html")]
pub(crate) mod html;
mod json;
#[cfg(feature = "junit")]
mod junit;
mod lines;
mod markdown;
#[cfg(feature = "plots")]
mod plot;

pub use error::ReportError;
pub use files::{Format, REPORT_FILES, render, write_reports};
#[cfg(feature = "html")]
pub use html::{REPORT_STYLE, render_html, render_html_body};
pub use json::render_json;
#[cfg(feature = "junit")]
pub use junit::render_junit;
pub use lines::LineReporter;
pub use markdown::{checkbox, render_markdown};
#[cfg(feature = "plots")]
pub use plot::{
    ChartLine, ChartMark, PhaseChart, phase_chart_path, phase_charts, plot_path, plots,
    render_phase_svg, render_svg,
};
