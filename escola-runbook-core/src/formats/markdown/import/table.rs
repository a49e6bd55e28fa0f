//! Tables: rows with a checkbox are steps, other tables notes (or
//! glossary and contacts entries).

use std::ops::Range;

use super::checkbox::{Checkbox, strip_checkbox};
use super::importer::{Importer, Mode, Scope, StepRef};
use super::text::render;
use crate::formats::markdown::imported::StepAnchor;
use crate::formats::markdown::tree::{Cell, Row};

impl Importer<'_> {
    /// A table. Rows with a checkbox cell are steps: the text after the box
    /// (or the first other cell) is the title, the other cells, under their
    /// headers, the instructions; export ticks the box in its cell and
    /// writes the evidence after the table. A table without any box is kept
    /// whole as a note; under a glossary or contacts heading, each row is
    /// an entry.
    pub(super) fn table(
        &mut self,
        head: &[Cell],
        rows: &[Row],
        range: &Range<usize>,
        scope: &Scope,
        parent: Option<StepRef>,
    ) {
        let texts =
            |cells: &[Cell]| -> Vec<String> { cells.iter().map(|c| render(&c.inlines)).collect() };
        if scope.mode != Mode::Steps {
            for row in rows {
                let cells: Vec<String> = texts(&row.cells)
                    .into_iter()
                    .filter(|c| !c.is_empty())
                    .collect();
                let entry = cells.join(": ");
                match scope.mode {
                    Mode::Glossary => self.glossary_entry(&entry, row.range.start),
                    _ => self.contact_entry(&entry, row.range.start),
                }
            }
            return;
        }
        let boxes: Vec<Option<(usize, Checkbox)>> = rows
            .iter()
            .map(|row| {
                row.cells
                    .iter()
                    .enumerate()
                    .find_map(|(i, c)| self.checkbox(&c.inlines).map(|b| (i, b)))
            })
            .collect();
        if boxes.iter().all(Option::is_none) {
            if parent.is_none() && self.current.is_none() {
                self.warn(
                    range.start,
                    "a table before the first phase heading is not imported (no phase to keep it as a note)",
                );
                return;
            }
            self.note(
                parent,
                table_text(self.src.get(range.clone()).unwrap_or("")),
            );
            return;
        }
        let headers = texts(head);
        let phase = self.phase_for_steps(range.start);
        let after_table = self.next_line_start(range.end.saturating_sub(1).max(range.start));
        let prefix = self.prefix_at(range.start, range.start);
        for (row, found) in rows.iter().zip(boxes) {
            let cells = texts(&row.cells);
            let Some((column, cb)) = found else {
                let text = labelled(&headers, &cells, &[]).join("; ");
                self.warn(
                    row.range.start,
                    format!("table row `{text}` has no checkbox: kept as a note, not a step"),
                );
                match parent {
                    Some(step) => self.step_mut(step).notes.push(text),
                    None => self.phases[phase].notes.push(text),
                }
                continue;
            };
            let boxed = strip_checkbox(&row.cells[column].inlines, cb.token_end, self.src);
            let in_box_cell = render(&boxed);
            let title_column = if in_box_cell.is_empty() {
                cells
                    .iter()
                    .enumerate()
                    .position(|(i, c)| i != column && !c.is_empty())
            } else {
                Some(column)
            };
            let Some(title_column) = title_column else {
                self.warn(
                    cb.span.start,
                    "checkbox with no text: not imported (write what to check after the box)",
                );
                continue;
            };
            let title_inlines = if title_column == column {
                boxed
            } else {
                row.cells[title_column].inlines.clone()
            };
            if self.struck(&title_inlines, row.range.start, false) {
                continue;
            }
            let title = render(&title_inlines);
            let (at, id) = self.add_step(phase, title, "step", scope, Some(&cb));
            let instructions = labelled(&headers, &cells, &[column, title_column]);
            if !instructions.is_empty() {
                self.step_mut(at).instructions = Some(instructions.join("\n"));
            }
            for cell in &row.cells {
                self.inline_bindings(&cell.inlines, Some(at));
            }
            self.anchors.push(StepAnchor {
                step_id: id,
                line: self.line_of(cb.span.start),
                checkbox: Some(cb.span.clone()),
                insert_checkbox_at: None,
                evidence_at: after_table,
                prefix: prefix.clone(),
                after_table: true,
            });
        }
    }
}

/// A row's non-empty cells but those at `skip`, each under its header
/// (`Owner: @dba`).
pub(super) fn labelled(headers: &[String], cells: &[String], skip: &[usize]) -> Vec<String> {
    cells
        .iter()
        .enumerate()
        .filter(|(i, c)| !skip.contains(i) && !c.is_empty())
        .map(|(i, c)| match headers.get(i).filter(|h| !h.is_empty()) {
            Some(h) => format!("{h}: {c}"),
            None => c.clone(),
        })
        .collect()
}

/// A table's source as a note: its lines without the indentation or quote
/// markers that kept it inside an item, and without `\r`.
pub(super) fn table_text(source: &str) -> String {
    source
        .lines()
        .map(|l| {
            l.trim_start_matches(|c: char| c.is_whitespace() || c == '>')
                .trim_end()
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
