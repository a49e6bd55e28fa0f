//! Headings -> phases: which headings are phases (the inference is
//! `headings`), phases for items outside any, and which phases roll back
//! on failure.

use super::importer::Importer;
use super::text::render;
use super::walk::{block_start, content_start};
use crate::PhaseKind;
use crate::formats::markdown::headings::{self, BOLD_LEVEL, Heading, Role, Style};
use crate::formats::markdown::imported::ImportWarning;
use crate::formats::markdown::tree::{Block, Inline, InlineKind};
use crate::formats::runbook_file::PhaseFile;

impl Importer<'_> {
    /// The document's headings (outside lists and quotes), as the phase
    /// inference sees them: `(block index, level, title, style)`. A document
    /// without any heading has its wholly bold paragraphs over a list
    /// instead (`**Rollout**`), ranked below `######`.
    pub(super) fn headings(&self, blocks: &[Block]) -> Vec<(usize, u8, String, Style)> {
        let headings: Vec<(usize, u8, String, Style)> = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match b {
                Block::Heading {
                    level,
                    inlines,
                    range,
                } => {
                    let line = self.src.get(range.start..).unwrap_or("");
                    let style = if line.trim_start_matches(' ').starts_with('#') {
                        Style::Atx
                    } else {
                        Style::Setext
                    };
                    Some((i, *level, render(inlines), style))
                }
                _ => None,
            })
            .collect();
        if !headings.is_empty() {
            return headings;
        }
        blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match (b, blocks.get(i + 1)) {
                (Block::Paragraph { inlines }, Some(Block::List { .. }))
                    if self.is_wholly_bold(inlines) =>
                {
                    let title = render(inlines).trim_end_matches(':').trim().to_owned();
                    Some((i, BOLD_LEVEL, title, Style::Bold))
                }
                _ => None,
            })
            .collect()
    }

    /// `**Rollout**` (or `**Rollout**:`) alone on its line.
    pub(super) fn is_wholly_bold(&self, inlines: &[Inline]) -> bool {
        let Some(first) = inlines.first() else {
            return false;
        };
        let strong = self
            .src
            .get(first.range.clone())
            .is_some_and(|t| t.starts_with("**") || t.starts_with("__"));
        let inside = inlines.iter().all(|i| match &i.kind {
            InlineKind::Break => false,
            InlineKind::Style => true,
            InlineKind::Text(t) if t.trim() == ":" => true,
            _ => i.range.end <= first.range.end,
        });
        first.kind == InlineKind::Style && strong && inside && !render(inlines).is_empty()
    }

    /// Reads the document's headings as phases, sections and its title:
    /// the role of each block that is a heading (by block index), and the
    /// levels at which the document has headings. Notes what it inferred.
    pub(super) fn phase_headings(
        &mut self,
        blocks: &[Block],
    ) -> (Vec<Option<(Role, Style)>>, Vec<u8>) {
        let found = self.headings(blocks);
        let top = blocks.iter().position(|b| !matches!(b, Block::Html { .. }));
        let offsets: Vec<usize> = found
            .iter()
            .map(|(i, ..)| block_start(&blocks[*i]).unwrap_or(0))
            .collect();
        let inputs: Vec<Heading<'_>> = found
            .iter()
            .zip(&offsets)
            .map(|((i, level, title, style), offset)| Heading {
                level: *level,
                title,
                style: *style,
                at_top: Some(*i) == top,
                line: self.line_of(*offset),
            })
            .collect();
        let mut levels: Vec<u8> = found
            .iter()
            .filter(|(.., style)| *style != Style::Bold)
            .map(|(_, level, ..)| *level)
            .collect();
        levels.sort_unstable();
        levels.dedup();
        if let Some(asked) = self.options.phase_level {
            if !levels.contains(&asked.get()) {
                self.warn(
                    0,
                    format!(
                        "phase level {asked} was asked, but the document has no level-{asked} heading ({})",
                        headings::describe_levels(&levels)
                    ),
                );
            }
        }
        let reading = headings::classify(&inputs, self.options.phase_level);
        self.headingless = found.is_empty();
        if self.headingless {
            // The whole document is one phase, its text included.
            let content = blocks
                .iter()
                .find(|b| !matches!(b, Block::Html { .. } | Block::Other | Block::TooDeep { .. }));
            if let Some(offset) = content.and_then(content_start) {
                self.phase_for_steps(offset);
            }
        }
        for (line, message) in reading.notes {
            self.warnings.push(ImportWarning { line, message });
        }
        let mut role_of: Vec<Option<(Role, Style)>> = vec![None; blocks.len()];
        for ((i, _, _, style), role) in found.iter().zip(reading.roles) {
            role_of[*i] = Some((role, *style));
        }
        (role_of, levels)
    }

    pub(super) fn new_phase(&mut self, title: &str, kind: PhaseKind, offset: usize) -> usize {
        let title = if title.is_empty() {
            self.warn(offset, "empty heading; imported as phase `phase`");
            "Phase".to_owned()
        } else {
            title.to_owned()
        };
        let id = self.phase_ids.unique(&title, "phase");
        self.phases.push(PhaseFile {
            id,
            title,
            kind,
            rollback_on_failure: false,
            max_parallel: None,
            notes: Vec::new(),
            steps: Vec::new(),
        });
        self.phase_lines.push(self.line_of(offset));
        self.phases.len() - 1
    }

    /// The phase steps go into, creating one for items before any heading.
    pub(super) fn phase_for_steps(&mut self, offset: usize) -> usize {
        if let Some(p) = self.current {
            return p;
        }
        if let Some(p) = self.implicit_phase {
            return p;
        }
        let title = if self.headingless {
            let title = self
                .options
                .document_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "Runbook".into());
            self.warn(
                offset,
                format!("the document has no heading: all its items are imported into one phase `{title}`"),
            );
            title
        } else {
            self.warn(
                offset,
                "list items outside any phase heading (before the first heading, or under a glossary/contacts heading) are imported into phase `checklist`",
            );
            "Checklist".to_owned()
        };
        let id = self.phase_ids.unique(&title, "checklist");
        self.phases.push(PhaseFile {
            id,
            title,
            kind: PhaseKind::Normal,
            rollback_on_failure: false,
            max_parallel: None,
            notes: Vec::new(),
            steps: Vec::new(),
        });
        self.phase_lines.push(self.line_of(offset));
        let p = self.phases.len() - 1;
        self.implicit_phase = Some(p);
        if self.headingless {
            self.current = Some(p);
        }
        p
    }
}

/// A document with a rollback phase means "if this fails, roll back": the
/// phases from the first one that runs a command up to the rollback phase
/// roll back on failure (those before run no command, so a failure there
/// has nothing to undo; those after it are follow-up work). The executor
/// still rolls back only when a step of the run changed something. Where
/// the rollback heading was itself an inference worth a warning, the
/// warning says which phases lead to it; `plan` shows it for every phase.
pub(super) fn roll_back_on_failure(
    phases: &mut [PhaseFile],
    lines: &[usize],
    warnings: &mut [ImportWarning],
) {
    let Some(rollback) = phases.iter().position(|p| p.kind == PhaseKind::Rollback) else {
        return;
    };
    let Some(first) = phases[..rollback]
        .iter()
        .position(|p| p.steps.iter().any(|s| s.command.is_some()))
    else {
        return;
    };
    for p in &mut phases[first..rollback] {
        p.rollback_on_failure = true;
    }
    if let Some(w) = warnings
        .iter_mut()
        .find(|w| w.line == lines[rollback] && w.message.contains("is the rollback phase"))
    {
        w.message.push_str(&format!(
            "; a failure from `{}` (line {}) on runs it, once a step of the run has changed something",
            phases[first].title, lines[first]
        ));
    }
}
