//! SVG line charts of the series a step measured (a watch rule's values over
//! time, with its limit), written beside the reports.

use plotters::prelude::*;

use crate::outcome::Series;
use crate::record::RunRecord;

use super::error::ReportError;

/// The file name (relative to the run directory) of a step's series plot.
pub fn plot_path(step: &str, series: &str) -> String {
    let safe: String = series
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("plots/{step}--{safe}.svg")
}

/// Every series of the run, with the plot path it gets.
pub fn plots(record: &RunRecord) -> Vec<(String, &Series)> {
    record
        .steps()
        .filter_map(|(_, s)| s.outcome.as_ref().map(|o| (s, o)))
        .flat_map(|(s, o)| {
            o.series
                .iter()
                .map(move |series| (plot_path(&s.outline.id, &series.name), series))
        })
        .collect()
}

/// One series as an SVG document: the values over time and the limit.
pub fn render_svg(series: &Series) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| ReportError::Plot(e.to_string());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (x_max, mut y_min, mut y_max) = series.points.iter().fold(
            (1.0f64, f64::INFINITY, f64::NEG_INFINITY),
            |(x, lo, hi), [px, py]| (x.max(*px), lo.min(*py), hi.max(*py)),
        );
        if let Some(limit) = series.limit {
            y_min = y_min.min(limit);
            y_max = y_max.max(limit);
        }
        if !y_min.is_finite() || !y_max.is_finite() {
            (y_min, y_max) = (0.0, 1.0);
        }
        let pad = ((y_max - y_min) * 0.1).max(1e-9);
        let unit = series.unit.clone().unwrap_or_default();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{} ({})",
                    series.name,
                    if unit.is_empty() { "value" } else { &unit }
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("minutes since the watch started")
            .x_label_formatter(&|x| format!("{:.0}", x / 60.0))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                series.points.iter().map(|[x, y]| (*x, *y)),
                &BLUE,
            ))
            .map_err(|e| err(&e))?;
        if let Some(limit) = series.limit {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, limit), (x_max, limit)],
                    RED.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
