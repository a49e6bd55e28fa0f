//! `report.html`: the Markdown report as a page a person leaves open — the
//! checklist, the evidence, and every chart inline — in one file that needs
//! no network and runs no script. Text from outside (response bodies, log
//! lines in evidence) is shown as text, never as markup.

use pulldown_cmark::{Event, Options, Parser, html};

use super::error::ReportError;
use super::markdown::render_markdown;
use super::plot::{phase_charts, plots, render_phase_svg, render_svg};
use crate::outcome::Series;
use crate::record::RunRecord;

/// The page's look: readable on a laptop and on a wall screen, status
/// words coloured as the terminal colours them (the console's pages wear
/// it too).
pub const REPORT_STYLE: &str = "\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1b1f24}
h1{font-size:1.7em}h2{margin-top:1.6em;border-bottom:1px solid #d0d7de}
code{background:#f3f4f6;padding:0 .25em;border-radius:3px;font-size:.92em}
pre{background:#f3f4f6;padding:.6em;overflow-x:auto}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.2em .5em}
li{margin:.15em 0}ul.contains-task-list{list-style:none;padding-left:1em}
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}
figure svg{max-width:100%;height:auto;border:1px solid #d0d7de}";

/// The page of `record`.
pub fn render_html(record: &RunRecord) -> Result<String, ReportError> {
    let body = render_html_body(record)?;
    Ok(format!(
        "<!doctype html>\n<html lang=\"pt-BR\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:\">\n\
         <title>{}</title>\n<style>{REPORT_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&record.runbook)
    ))
}

/// The inside of the page of `record`: the checklist with its evidence,
/// then every chart inline; for pages that wrap it in their own (the
/// console's run page).
pub fn render_html_body(record: &RunRecord) -> Result<String, ReportError> {
    let markdown = render_markdown(record);
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH;
    // Raw HTML in the report is someone's text: escaped, never markup.
    let events = Parser::new_ext(&markdown, options).map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    });
    let mut body = String::new();
    html::push_html(&mut body, events);
    // Each phase's chart first: the view a person reads at a glance. A
    // series gets a figure of its own only when no phase chart draws it.
    let phase_charts = phase_charts(record);
    let drawn = |series: &Series| {
        phase_charts
            .iter()
            .flat_map(|c| &c.lines)
            .any(|line| std::ptr::eq(line.series, series))
    };
    let mut charts = String::new();
    for chart in &phase_charts {
        push_figure(
            &mut charts,
            &chart.path,
            &chart.title,
            &render_phase_svg(chart)?,
        );
    }
    for (path, series) in plots(record) {
        if !drawn(series) {
            push_figure(&mut charts, &path, &series.name, &render_svg(series)?);
        }
    }
    let charts = if charts.is_empty() {
        String::new()
    } else {
        format!("<h2>Charts</h2>\n{charts}")
    };
    Ok(format!("{body}{charts}"))
}

fn push_figure(page: &mut String, id: &str, caption: &str, svg: &str) {
    page.push_str(&format!(
        "<figure id=\"{}\"><figcaption>{}</figcaption>{}</figure>\n",
        escape(id),
        escape(caption),
        strip_xml_declaration(svg)
    ));
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map_or(svg, |(_, after)| after.trim_start()),
        None => svg,
    }
}

/// `text` safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
