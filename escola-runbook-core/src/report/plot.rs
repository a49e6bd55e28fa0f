//! SVG line charts of the series a run measured, written beside the
//! reports: one chart per series (a watch rule's values with its limit),
//! and one chart per phase that measured any, the view a person reads at a
//! glance during a watch: every series of the phase on one time axis (the
//! first unit on the left axis, a second unit on its own right axis), each
//! rule's limit, the deploy moment and the end of the rollback window.

use chrono::{DateTime, Utc};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::outcome::Series;
use crate::record::{PhaseRecord, RunRecord};

use super::error::ReportError;

/// The file name (relative to the run directory) of a step's series plot.
pub fn plot_path(step: &str, series: &str) -> String {
    format!("plots/{step}--{}.svg", file_safe(series))
}

/// The file name (relative to the run directory) of a phase's chart.
pub fn phase_chart_path(phase: &str) -> String {
    format!("plots/{}.svg", file_safe(phase))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
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

/// One series on a phase chart, placed on the chart's time axis.
#[derive(Debug, Clone)]
pub struct ChartLine<'a> {
    /// The step that measured it.
    pub step: &'a str,
    /// What it measured.
    pub series: &'a Series,
    /// Seconds from the chart's origin to the series' start.
    pub offset: f64,
    /// On the right axis (the chart's second unit).
    pub right: bool,
}

/// A vertical line on a phase chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartMark {
    /// Seconds since the chart's origin.
    pub at: f64,
    /// What happened then.
    pub label: String,
}

/// The chart of one phase's series, ready to draw.
#[derive(Debug, Clone)]
pub struct PhaseChart<'a> {
    /// Where it is written ([`phase_chart_path`]).
    pub path: String,
    /// The phase's title.
    pub title: String,
    /// Wall-clock time of the origin, when the record has it.
    pub origin: DateTime<Utc>,
    /// The left axis's unit, and the right axis's, if any.
    pub units: (String, Option<String>),
    /// The series drawn, in the record's order.
    pub lines: Vec<ChartLine<'a>>,
    /// The deploy moment and each distinct mark of the series.
    pub marks: Vec<ChartMark>,
    /// Series of a third unit or more: they have only their own plots.
    pub left_out: Vec<&'a Series>,
}

/// A chart for each phase whose steps measured series.
pub fn phase_charts(record: &RunRecord) -> Vec<PhaseChart<'_>> {
    record
        .phases
        .iter()
        .enumerate()
        .filter_map(|(i, phase)| phase_chart(record, i, phase))
        .collect()
}

fn phase_chart<'a>(
    record: &'a RunRecord,
    index: usize,
    phase: &'a PhaseRecord,
) -> Option<PhaseChart<'a>> {
    let measured: Vec<(&str, DateTime<Utc>, &Series)> = phase
        .steps
        .iter()
        .filter_map(|s| Some((s, s.started_at?, s.outcome.as_ref()?)))
        .flat_map(|(s, at, o)| {
            o.series
                .iter()
                .filter(|series| !series.points.is_empty())
                .map(move |series| (s.outline.id.as_str(), at, series))
        })
        .collect();
    let first_start = measured.iter().map(|(_, at, _)| *at).min()?;
    let deploy = deploy_moment(record, index, first_start);
    let origin = deploy.as_ref().map_or(first_start, |(at, _)| *at);
    let seconds = |at: DateTime<Utc>| (at - origin).num_milliseconds() as f64 / 1000.0;

    let mut units: Vec<String> = Vec::new();
    for (_, _, series) in &measured {
        let unit = series.unit.clone().unwrap_or_default();
        if !units.contains(&unit) {
            units.push(unit);
        }
    }
    let mut lines = Vec::new();
    let mut left_out = Vec::new();
    let mut marks: Vec<ChartMark> = deploy
        .map(|(_, step)| ChartMark {
            at: 0.0,
            label: format!("deploy ({step} done)"),
        })
        .into_iter()
        .collect();
    for (step, at, series) in measured {
        let unit = series.unit.clone().unwrap_or_default();
        let right = match units.iter().position(|u| *u == unit) {
            Some(0) => false,
            Some(1) => true,
            _ => {
                left_out.push(series);
                continue;
            }
        };
        let offset = seconds(at);
        for mark in &series.marks {
            let mark = ChartMark {
                at: offset + mark.at,
                label: mark.label.clone(),
            };
            // Steps watched side by side share their window: one line.
            if !marks
                .iter()
                .any(|m| m.label == mark.label && (m.at - mark.at).abs() < 1.0)
            {
                marks.push(mark);
            }
        }
        lines.push(ChartLine {
            step,
            series,
            offset,
            right,
        });
    }
    let mut units = units.into_iter();
    Some(PhaseChart {
        path: phase_chart_path(&phase.id),
        title: phase.title.clone(),
        origin,
        units: (units.next().unwrap_or_default(), units.next()),
        lines,
        marks,
        left_out,
    })
}

/// When the release went out, for a phase that starts at `before`: the
/// finish of the last step that changed something (what a rollback would
/// undo) in the first earlier phase that rolls back on failure, the phase
/// that deploys; in a runbook that marks none, in any earlier phase.
fn deploy_moment(
    record: &RunRecord,
    phase: usize,
    before: DateTime<Utc>,
) -> Option<(DateTime<Utc>, &str)> {
    let earlier = &record.phases[..phase];
    let deploys = earlier
        .iter()
        .position(|p| p.rollback_on_failure)
        .map_or(earlier, |i| &earlier[i..=i]);
    deploys
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| s.changed_something())
        .filter_map(|s| Some((s.finished_at?, s.outline.id.as_str())))
        .filter(|(at, _)| *at <= before)
        .max_by_key(|(at, _)| *at)
}

/// Tick spacings a person reads on a clock, from 1 second to 6 hours.
const TICK_STEPS: [f64; 17] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    10800.0, 14400.0, 21600.0,
];

/// Ticks at clock-round spacings, at most eight of them over `span`
/// seconds, from 0.
fn time_ticks(span: f64) -> (f64, Vec<f64>) {
    let step = TICK_STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 8.0)
        .unwrap_or(21600.0);
    let count = (span / step).floor() as usize;
    (step, (0..=count).map(|i| i as f64 * step).collect())
}

/// A tick's label: the wall-clock time, to the second when ticks are
/// closer than a minute.
fn tick_label(origin: DateTime<Utc>, step: f64, x: f64) -> String {
    let at = origin + chrono::Duration::milliseconds((x * 1000.0).round() as i64);
    if step < 60.0 {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

/// The time axis: seconds from `origin`, ticked at clock-round spacings
/// and labelled with the wall-clock time.
struct ClockAxis {
    span: f64,
    origin: DateTime<Utc>,
    step: f64,
    ticks: Vec<f64>,
}

impl ClockAxis {
    fn new(origin: DateTime<Utc>, span: f64) -> Self {
        let (step, ticks) = time_ticks(span);
        Self {
            span,
            origin,
            step,
            ticks,
        }
    }
}

impl Ranged for ClockAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = if self.span > 0.0 {
            value / self.span
        } else {
            0.0
        };
        limit.0 + ((limit.1 - limit.0) as f64 * share).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.span
    }
}

impl ValueFormatter<f64> for ClockAxis {
    fn format_ext(&self, value: &f64) -> String {
        tick_label(self.origin, self.step, *value)
    }
}

/// Line colours, one per series in order; limits share their series'.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn value_range<'a>(lines: impl Iterator<Item = &'a ChartLine<'a>>) -> std::ops::Range<f64> {
    let (lo, hi) = lines.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), line| {
        line.series
            .points
            .iter()
            .map(|[_, y]| *y)
            .chain(line.series.limit)
            .fold((lo, hi), |(lo, hi), y| (lo.min(y), hi.max(y)))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let lo = lo.min(0.0);
    let pad = ((hi - lo) * 0.1).max(1e-9);
    lo..hi + pad
}

fn axis_name(unit: &str) -> &str {
    if unit.is_empty() { "value" } else { unit }
}

/// A phase's chart as an SVG document.
pub fn render_phase_svg(chart: &PhaseChart<'_>) -> Result<String, ReportError> {
    let err = |e: &dyn std::fmt::Display| ReportError::Plot(e.to_string());
    let span = chart
        .lines
        .iter()
        .flat_map(|l| l.series.points.last().map(|[x, _]| l.offset + x))
        .chain(chart.marks.iter().map(|m| m.at))
        .fold(10.0f64, f64::max);
    let origin = chart.origin;
    let x_range = || ClockAxis::new(origin, span);
    let left = value_range(chart.lines.iter().filter(|l| !l.right));
    let right = value_range(chart.lines.iter().filter(|l| l.right));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&chart.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56);
        if chart.units.1.is_some() {
            builder.right_y_label_area_size(56);
        }
        let mut plot = builder
            .build_cartesian_2d(x_range(), left.clone())
            .map_err(|e| err(&e))?
            .set_secondary_coord(x_range(), right.clone());
        plot.configure_mesh()
            .x_desc(format!("UTC, from {}", origin.format("%Y-%m-%d %H:%M:%S")))
            .y_desc(axis_name(&chart.units.0))
            .draw()
            .map_err(|e| err(&e))?;
        if let Some(unit) = &chart.units.1 {
            plot.configure_secondary_axes()
                .y_desc(axis_name(unit))
                .draw()
                .map_err(|e| err(&e))?;
        }
        for (i, line) in chart.lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = line
                .series
                .points
                .iter()
                .map(|[x, y]| (line.offset + x, *y))
                .collect();
            let name = format!(
                "{} ({}{})",
                line.series.name,
                axis_name(line.series.unit.as_deref().unwrap_or_default()),
                if line.right { ", right" } else { "" }
            );
            let limit = line.series.limit.map(|limit| {
                (
                    format!(
                        "{} limit {}",
                        line.series.name,
                        crate::rules::fmt_num(limit)
                    ),
                    [(0.0, limit), (span, limit)],
                )
            });
            let style = color.stroke_width(2);
            let dashed =
                |points: [(f64, f64); 2]| DashedLineSeries::new(points, 6, 4, color.into());
            // The line and its dashed limit, through `draw_series` (left
            // axis) or `draw_secondary_series` (right): the same calls on
            // two chart types.
            macro_rules! draw_line {
                ($draw:ident) => {{
                    plot.$draw(LineSeries::new(points, style))
                        .map_err(|e| err(&e))?
                        .label(name)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
                    if let Some((name, at)) = limit {
                        plot.$draw(dashed(at))
                            .map_err(|e| err(&e))?
                            .label(name)
                            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
                    }
                }};
            }
            if line.right {
                draw_line!(draw_secondary_series);
            } else {
                draw_line!(draw_series);
            }
        }
        // Labels at the foot of their lines, clear of the legend.
        let foot = left.start + (left.end - left.start) * 0.06;
        for mark in &chart.marks {
            plot.draw_series(std::iter::once(PathElement::new(
                [(mark.at, left.start), (mark.at, left.end)],
                BLACK.stroke_width(1),
            )))
            .map_err(|e| err(&e))?;
            plot.draw_series(std::iter::once(Text::new(
                format!(" {} {}", mark.label, tick_label(origin, 1.0, mark.at)),
                (mark.at, foot),
                ("sans-serif", 12).into_font(),
            )))
            .map_err(|e| err(&e))?;
        }
        plot.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_clock_round_from_ten_seconds_to_a_day() {
        assert_eq!(time_ticks(10.0).0, 2.0);
        assert_eq!(time_ticks(60.0).0, 10.0);
        assert_eq!(time_ticks(15.0 * 60.0).0, 120.0);
        assert_eq!(time_ticks(3600.0).0, 600.0);
        assert_eq!(time_ticks(24.0 * 3600.0).0, 10800.0);
        let (_, ticks) = time_ticks(24.0 * 3600.0);
        assert_eq!(ticks.len(), 9);
        assert!(ticks.len() <= 9, "{ticks:?}");
    }

    #[test]
    fn labels_read_as_a_clock_to_the_second_only_when_ticks_are_that_close() {
        let origin = DateTime::parse_from_rfc3339("2026-12-02T14:32:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(tick_label(origin, 2.0, 10.0), "14:32:10");
        assert_eq!(tick_label(origin, 600.0, 3600.0), "15:32");
        assert_eq!(tick_label(origin, 10800.0, 12.0 * 3600.0), "02:32");
    }
}
