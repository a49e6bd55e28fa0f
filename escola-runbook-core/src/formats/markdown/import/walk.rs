//! The block walk: the document's top level under its phase headings,
//! then each container (a phase body, a quote, an item's remainder),
//! handing lists, tables, code blocks and bindings to their readers.

use super::command::command_of;
use super::importer::{Importer, Mode, Scope, StepRef};
use super::metadata::mode_of;
use super::text::{is_emphasised, render};
use crate::formats::markdown::headings::{Role, Style};
use crate::formats::markdown::imported::EVIDENCE_MARK;
use crate::formats::markdown::tree::{self, Block};

impl Importer<'_> {
    /// Walks the top level; returns the runbook name and the levels at
    /// which the document has headings.
    pub(super) fn document(&mut self, blocks: &[Block]) -> (String, Vec<u8>) {
        let (role_of, levels) = self.phase_headings(blocks);
        let mut name = self
            .options
            .name
            .clone()
            .unwrap_or_else(|| "Imported runbook".into());
        let mut scope = Scope {
            section: None,
            mode: Mode::Steps,
        };
        let mut pending: Vec<&Block> = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            let role = role_of[i].as_ref().map(|(role, style)| (role, *style));
            let (Some((role, style)), Some(offset)) = (role, block_start(block)) else {
                pending.push(block);
                continue;
            };
            let text = match block {
                Block::Heading { inlines, .. } | Block::Paragraph { inlines } => render(inlines),
                _ => String::new(),
            };
            if style == Style::Bold && !matches!(role, Role::Phase { .. }) {
                // A bold label over its items, as in any document.
                pending.push(block);
                continue;
            }
            self.container(&pending, &scope, None);
            pending.clear();
            match role {
                Role::Title => {
                    if !text.is_empty() {
                        name = text;
                    }
                }
                Role::Phase { title, kind } => {
                    if style == Style::Bold {
                        self.warn(
                            offset,
                            format!("bold paragraph `{title}` is read as a phase heading: the document has no heading"),
                        );
                    }
                    scope = Scope {
                        section: None,
                        mode: mode_of(&text),
                    };
                    self.current = match scope.mode {
                        Mode::Steps => Some(self.new_phase(title, *kind, offset)),
                        _ => None,
                    };
                }
                Role::Section => {
                    let mode = mode_of(&text);
                    scope = Scope {
                        section: (mode == Mode::Steps && !text.is_empty()).then_some(text),
                        mode: if mode == Mode::Steps && self.current.is_none() {
                            // A sub-heading under a glossary heading stays
                            // glossary; elsewhere it is a section.
                            scope.mode
                        } else {
                            mode
                        },
                    };
                }
            }
        }
        self.container(&pending, &scope, None);
        (name, levels)
    }

    /// Blocks of a phase body, a quote or an item's remainder. `parent` is
    /// the step that nested items and text belong to.
    pub(super) fn container(&mut self, blocks: &[&Block], scope: &Scope, parent: Option<StepRef>) {
        let mut label: Option<(String, Mode)> = None;
        let mut previous_was_list = false;
        for (i, block) in blocks.iter().enumerate() {
            let next_is_list = matches!(blocks.get(i + 1), Some(Block::List { .. }));
            let was_list = std::mem::replace(&mut previous_was_list, false);
            match block {
                Block::Paragraph { inlines } => {
                    let text = render(inlines);
                    self.inline_bindings(inlines, parent.or(self.last_step));
                    if text.is_empty() {
                        continue;
                    }
                    // A short line over a list labels it; a sentence
                    // (`Tick each box as you go.`) does not.
                    let is_label = next_is_list
                        && (text.ends_with(':')
                            || is_emphasised(inlines)
                            || (text.len() <= 60 && !text.ends_with('.')));
                    if is_label {
                        let l = text.trim_end_matches(':').trim().to_owned();
                        let mode = match mode_of(&l) {
                            Mode::Steps => scope.mode,
                            m => m,
                        };
                        label = Some((l, mode));
                    } else if scope.mode == Mode::Steps {
                        self.note(parent, text);
                    }
                }
                Block::Heading { inlines, .. } => {
                    let l = render(inlines);
                    let mode = match mode_of(&l) {
                        Mode::Steps => scope.mode,
                        m => m,
                    };
                    label = Some((l, mode));
                }
                Block::List { items } => {
                    let inner = match label.take() {
                        Some((l, mode)) => Scope {
                            section: if mode == Mode::Steps && parent.is_none() {
                                Some(l)
                            } else {
                                scope.section.clone()
                            },
                            mode,
                        },
                        None => scope.clone(),
                    };
                    for item in items {
                        self.item(item, &inner, parent);
                    }
                    previous_was_list = true;
                }
                Block::Code { lang, text, range } => {
                    if scope.mode != Mode::Steps {
                        continue;
                    }
                    match command_of(lang.as_deref(), text) {
                        Some(Ok(cmd)) => match parent {
                            Some(step) if self.step(step).check.is_none() => {
                                self.set_command(step, cmd);
                            }
                            // A block outside any item (or under a bound
                            // check) is a step of its own.
                            _ => self.standalone_command(cmd, scope, range),
                        },
                        Some(Err(why)) => self.warn(range.start, why.to_string()),
                        None => {
                            let body = text.trim_end();
                            if !body.is_empty() {
                                self.note(parent, fenced(lang.as_deref(), body));
                            }
                        }
                    }
                }
                Block::Quote { blocks } => {
                    let inner: Vec<&Block> = blocks.iter().collect();
                    if quote_is_evidence(blocks) {
                        continue;
                    }
                    self.container(&inner, scope, parent);
                }
                Block::Html { text, range } => {
                    let target = parent.or(if was_list { self.last_step } else { None });
                    self.html_binding(text, range.start, target);
                }
                Block::TooDeep { range } => self.warn(
                    range.start,
                    format!(
                        "nesting deeper than {} levels is not imported",
                        tree::MAX_DEPTH
                    ),
                ),
                Block::Table { head, rows, range } => {
                    self.table(head, rows, range, scope, parent);
                }
                Block::Other => {}
            }
        }
    }

    pub(super) fn nested(&mut self, blocks: &[Block], scope: &Scope, parent: Option<StepRef>) {
        let refs: Vec<&Block> = blocks.iter().collect();
        self.container(&refs, scope, parent);
    }

    pub(super) fn note(&mut self, parent: Option<StepRef>, text: String) {
        match parent {
            Some(step) => self.step_mut(step).notes.push(text),
            None => {
                if let Some(p) = self.current {
                    self.phases[p].notes.push(text);
                }
            }
        }
    }
}

/// Where a block's content starts, when the tree keeps it.
pub(super) fn content_start(block: &Block) -> Option<usize> {
    match block {
        Block::List { items } => items.first().map(|i| i.range.start),
        Block::Code { range, .. } | Block::Table { range, .. } => Some(range.start),
        Block::Quote { blocks } => blocks.iter().find_map(content_start),
        other => block_start(other),
    }
}

/// Where a heading or a paragraph starts.
pub(super) fn block_start(block: &Block) -> Option<usize> {
    match block {
        Block::Heading { range, .. } => Some(range.start),
        Block::Paragraph { inlines } => inlines.first().map(|i| i.range.start),
        _ => None,
    }
}

pub(super) fn quote_is_evidence(blocks: &[Block]) -> bool {
    match blocks.first() {
        Some(Block::Paragraph { inlines }) => render(inlines).starts_with(EVIDENCE_MARK),
        _ => false,
    }
}

pub(super) fn fenced(lang: Option<&str>, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{}\n{body}\n{fence}", lang.unwrap_or(""))
}
