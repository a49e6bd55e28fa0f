//! The library side of `escola-runbook metrics`: one call that reads a
//! source and returns P50/P95/P99 per histogram series plus the error ratio,
//! rendered as a terminal table or JSON.

use std::fmt::Write;

use serde::Serialize;

use super::compute::{self, Labels, StatusMatcher};
use super::source::{MetricsQuery, MetricsSource, SourceError};

/// What to summarize.
#[derive(Debug, Clone)]
pub struct SummaryRequest {
    /// Metrics, grouping and window.
    pub query: MetricsQuery,
    /// Which statuses are errors (`5..`).
    pub errors: StatusMatcher,
}

/// Quantiles of one histogram series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSummary {
    /// Labels without `le`.
    pub labels: Labels,
    /// Median (`null` where Prometheus gives NaN).
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Observations (the `+Inf` bucket).
    pub count: f64,
    /// Bucket counts had to be flattened to compute these.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forced_monotonic: bool,
}

/// The answer of [`summarize`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Where the numbers come from.
    pub source: String,
    /// The window in words.
    pub window: String,
    /// Seconds the deltas cover, when windowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// One entry per histogram series.
    pub series: Vec<SeriesSummary>,
    /// Share of requests whose status matched (`null` without requests).
    pub error_ratio: Option<f64>,
    /// Requests counted for the ratio.
    pub requests: f64,
    /// Requests whose status matched.
    pub errors: f64,
    /// Series of the request counter the source had: none means the counter
    /// is named otherwise there (or the app counts no requests), not that
    /// nothing failed.
    pub counter_series: usize,
    /// The status pattern.
    pub error_status: String,
    /// How the numbers were obtained.
    pub provenance: Vec<String>,
    /// Warnings from the source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn finite(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// Reads `source` once (or twice, `window` apart) and computes the summary.
pub async fn summarize(
    source: &dyn MetricsSource,
    request: &SummaryRequest,
) -> Result<Summary, SourceError> {
    let data = source.fetch(&request.query).await?;
    let series = data
        .histograms
        .iter()
        .map(|h| {
            let [p50, p95, p99] = [0.5, 0.95, 0.99].map(|q| h.quantile(q));
            SeriesSummary {
                labels: h.labels.clone(),
                p50: finite(p50.value),
                p95: finite(p95.value),
                p99: finite(p99.value),
                count: h.count(),
                forced_monotonic: p50.forced_monotonic,
            }
        })
        .collect();
    let ratio = compute::error_ratio(&data.counters, &request.query.status_label, &request.errors);
    Ok(Summary {
        source: source.describe(),
        window: request.query.window.describe(),
        seconds: data.seconds,
        series,
        error_ratio: finite(ratio.value()),
        requests: ratio.total,
        errors: ratio.matched,
        counter_series: data.counters.len(),
        error_status: request.errors.pattern().to_owned(),
        provenance: data.provenance,
        warnings: data.warnings,
    })
}

/// Seconds for people: `0.412s`, `1.25s`, `—` for no value.
pub fn seconds_text(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v.is_infinite() => format!("{v}"),
        Some(v) => format!("{}s", trim_float(v)),
    }
}

/// A ratio as a percentage with enough digits to compare with a limit.
pub fn percent_text(v: f64) -> String {
    if v.is_nan() {
        return "—".into();
    }
    format!("{}%", trim_float(v * 100.0))
}

/// A float with at most 4 decimals and no trailing zeros.
pub fn trim_float(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Labels as `k="v",...`, `(all)` for none.
pub(super) fn labels_text(labels: &Labels) -> String {
    if labels.is_empty() {
        return "(all)".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Summary {
    /// A table for the terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "source: {}", self.source);
        let _ = writeln!(out, "window: {}", self.window);
        let rows: Vec<[String; 5]> = self
            .series
            .iter()
            .map(|s| {
                [
                    labels_text(&s.labels),
                    seconds_text(s.p50),
                    seconds_text(s.p95),
                    seconds_text(s.p99),
                    trim_float(s.count),
                ]
            })
            .collect();
        let header = ["series", "p50", "p95", "p99", "count"].map(String::from);
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        out.push('\n');
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = format!("{:<w$}", row[0], w = widths[0]);
            for (cell, w) in row.iter().zip(widths).skip(1) {
                let _ = write!(line, "  {cell:>w$}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if rows.is_empty() {
            let _ = writeln!(out, "(no histogram series)");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "error ratio (status =~ \"{}\"): {} ({} of {} requests)",
            self.error_status,
            self.error_ratio.map_or_else(|| "—".into(), percent_text),
            trim_float(self.errors),
            trim_float(self.requests)
        );
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// The JSON form (one entry per series, `null` where Prometheus gives NaN).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
