//! Inline text as a reader reads it: titles and notes from inlines.

use crate::formats::markdown::tree::{Inline, InlineKind};

/// Plain text of inlines as a reader reads them: struck-through text left
/// out (`Keep ~~both~~ one` -> `Keep one`), emphasis dropped, inline code
/// kept in backticks, links as their text, breaks as spaces, HTML left out.
pub(super) fn render(inlines: &[Inline]) -> String {
    render_text(inlines, false)
}

/// [`render`], with struck-through text kept when `struck` (to name an
/// item that is struck through).
pub(super) fn render_text(inlines: &[Inline], struck: bool) -> String {
    let mut out = String::new();
    let mut link: Vec<(String, usize)> = Vec::new();
    let mut strike = 0usize;
    for i in inlines {
        match &i.kind {
            InlineKind::StrikeStart => strike += 1,
            InlineKind::StrikeEnd => strike = strike.saturating_sub(1),
            _ if strike > 0 && !struck => {}
            InlineKind::Text(t) => out.push_str(t),
            InlineKind::Code(t) => {
                let fence = if t.contains('`') { "`` " } else { "`" };
                let close = if t.contains('`') { " ``" } else { "`" };
                out.push_str(fence);
                out.push_str(t);
                out.push_str(close);
            }
            InlineKind::Break => out.push(' '),
            InlineKind::LinkStart(url) => link.push((url.clone(), out.len())),
            InlineKind::LinkEnd => {
                if let Some((url, start)) = link.pop() {
                    let text = out.get(start..).unwrap_or("").trim().to_owned();
                    if !url.is_empty() && text != url && !url.starts_with('#') {
                        out.push_str(&format!(" ({url})"));
                    }
                }
            }
            InlineKind::TaskMarker(_) | InlineKind::Html(_) | InlineKind::Style => {}
        }
    }
    collapse_spaces(&out)
}

pub(super) fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn is_emphasised(inlines: &[Inline]) -> bool {
    matches!(inlines.first().map(|i| &i.kind), Some(InlineKind::Style))
        && matches!(inlines.last().map(|i| &i.kind), Some(InlineKind::Style))
}

/// The title begins with a struck-through span (`~~Old step~~ (removed)`):
/// the author crossed the item out.
pub(super) fn begins_struck(inlines: &[Inline]) -> bool {
    inlines
        .iter()
        .find(|i| match &i.kind {
            InlineKind::Style | InlineKind::TaskMarker(_) => false,
            InlineKind::Text(t) => !t.trim().is_empty(),
            _ => true,
        })
        .is_some_and(|i| i.kind == InlineKind::StrikeStart)
}
