//! Step extraction: a list item (or a code block on its own) becomes a
//! step, with its title, checkbox, options and the anchor export writes
//! evidence at.

use std::ops::Range;

use super::binding::is_binding;
use super::checkbox::{Checkbox, strip_checkbox};
use super::command::{Command, command_of};
use super::importer::{Importer, Mode, Scope, StepRef};
use super::metadata::mode_of;
use super::text::{begins_struck, render, render_text};
use crate::formats::markdown::imported::StepAnchor;
use crate::formats::markdown::slug::ascii_fold;
use crate::formats::markdown::tree::{Block, Inline, InlineKind, Item};
use crate::formats::runbook_file::{DurationText, StepFile};

impl Importer<'_> {
    pub(super) fn item(&mut self, item: &Item, scope: &Scope, parent: Option<StepRef>) {
        let (first, rest): (&[Inline], &[Block]) = match item.blocks.split_first() {
            Some((Block::Paragraph { inlines }, rest)) => (inlines.as_slice(), rest),
            _ => (&[], item.blocks.as_slice()),
        };
        let checkbox = self.checkbox(first);
        let title_inlines: Vec<Inline> = match &checkbox {
            Some(cb) => strip_checkbox(first, cb.token_end, self.src),
            None => first.to_vec(),
        };
        let title = render(&title_inlines);
        let nested = rest.iter().any(|b| matches!(b, Block::List { .. }));
        if self.struck(&title_inlines, item.range.start, nested) {
            return;
        }
        match scope.mode {
            Mode::Glossary => {
                self.glossary_entry(&title, item.range.start);
                self.nested(rest, scope, None);
                return;
            }
            Mode::Contacts => {
                self.contact_entry(&title, item.range.start);
                self.nested(rest, scope, None);
                return;
            }
            Mode::Steps => {}
        }
        let has_list = rest.iter().any(|b| matches!(b, Block::List { .. }));
        let has_command = rest.iter().any(|b| {
            matches!(b, Block::Code { lang, text, .. } if matches!(command_of(lang.as_deref(), text), Some(Ok(_))))
        });
        let has_binding = first
            .iter()
            .any(|i| matches!(&i.kind, InlineKind::Html(h) if is_binding(h)))
            || rest
                .iter()
                .any(|b| matches!(b, Block::Html { text, .. } if is_binding(text)));

        if checkbox.is_none() && !has_command && !has_binding && has_list {
            // A label over nested items: their section (or a glossary or
            // contacts list).
            let label = title.trim_end_matches(':').trim().to_owned();
            let inner = match mode_of(&label) {
                Mode::Steps => Scope {
                    section: if parent.is_none() && !label.is_empty() {
                        Some(label)
                    } else {
                        scope.section.clone()
                    },
                    mode: Mode::Steps,
                },
                mode => Scope {
                    section: scope.section.clone(),
                    mode,
                },
            };
            self.nested(rest, &inner, parent);
            return;
        }
        if checkbox.is_none() && !has_command && !has_binding && !has_list {
            if let Some(p) = parent {
                if !title.is_empty() {
                    let s = self.step_mut(p);
                    let line = format!("- {title}");
                    s.instructions = Some(match s.instructions.take() {
                        Some(text) => format!("{text}\n{line}"),
                        None => line,
                    });
                }
                return;
            }
        }
        if title.is_empty() && !has_command && !has_binding {
            if checkbox.is_some() {
                self.warn(
                    item.range.start,
                    "checkbox with no text: not imported (write what to check after the box)",
                );
            }
            self.nested(rest, scope, parent);
            return;
        }

        // A step.
        let phase = self.phase_for_steps(item.range.start);
        let fallback_title = rest.iter().find_map(|b| match b {
            Block::Code { lang, text, .. } => match command_of(lang.as_deref(), text) {
                Some(Ok(c)) => c
                    .script
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| format!("`{}`", l.trim())),
                _ => None,
            },
            _ => None,
        });
        let title = if title.is_empty() {
            fallback_title.unwrap_or_else(|| "Check".into())
        } else {
            title
        };
        let (at, id) = self.add_step(phase, title, "step", scope, checkbox.as_ref());

        // Where export ticks and writes evidence.
        let text_start = first
            .iter()
            .find(|i| !matches!(i.kind, InlineKind::TaskMarker(_)))
            .map(|i| i.range.start);
        let title_end = first.iter().map(|i| i.range.end).max();
        let anchor_line_offset = checkbox
            .as_ref()
            .map(|c| c.span.start)
            .or(text_start)
            .unwrap_or(item.range.start);
        let content_col = checkbox
            .as_ref()
            .map(|c| c.span.start)
            .or(text_start)
            .unwrap_or(item.range.start);
        let content_col = if let Some(first_inline) = first.first() {
            first_inline.range.start.min(content_col)
        } else {
            content_col
        };
        let evidence_at = match title_end {
            Some(end) => self.next_line_start(end.saturating_sub(1).max(content_col)),
            None => self.next_line_start(item.range.start),
        };
        self.anchors.push(StepAnchor {
            step_id: id,
            line: self.line_of(anchor_line_offset),
            checkbox: checkbox.as_ref().map(|c| c.span.clone()),
            insert_checkbox_at: if checkbox.is_none() { text_start } else { None },
            evidence_at,
            prefix: self.prefix_at(anchor_line_offset, content_col),
            after_table: false,
        });

        self.inline_bindings(first, Some(at));
        let rest_refs: Vec<&Block> = rest.iter().collect();
        self.container(&rest_refs, scope, Some(at));
    }

    /// A new step in `phase` titled `title` (its id from the title, else
    /// `fallback`), with what its checkbox and title say about it.
    pub(super) fn add_step(
        &mut self,
        phase: usize,
        title: String,
        fallback: &str,
        scope: &Scope,
        checkbox: Option<&Checkbox>,
    ) -> (StepRef, String) {
        let id = self.step_ids.unique(&title, fallback);
        let mut step = StepFile::manual(id.clone(), title);
        step.section = scope.section.clone();
        let folded = ascii_fold(&step.title);
        if folded.contains("(opcional)") || folded.contains("(optional)") {
            step.blocking = false;
            step.notes.push(
                "marked optional in the document: advisory (a failure is recorded and the run goes on)".into(),
            );
        }
        if let Some(cb) = checkbox {
            if cb.checked {
                step.notes
                    .push("already ticked ([x]) in the document before the run".into());
                self.warn(
                    cb.span.start,
                    format!("step `{id}` is already ticked ([x]) in the document; imported as a step to run, with a note"),
                );
            }
            if let Some(token) = &cb.malformed {
                step.notes.push(format!(
                    "the document writes this checkbox as `{token}` (malformed); imported as a normal item"
                ));
                self.warn(
                    cb.span.start,
                    format!("malformed checkbox `{token}` in step `{id}`; imported as `[ ]`"),
                );
            }
        }
        self.phases[phase].steps.push(step);
        let at = (phase, self.phases[phase].steps.len() - 1);
        self.last_step = Some(at);
        (at, id)
    }

    /// An item or row whose title begins struck through (`~~Old step~~
    /// (removed)`) is not a step: says so and returns true.
    pub(super) fn struck(&mut self, title_inlines: &[Inline], offset: usize, nested: bool) -> bool {
        if !begins_struck(title_inlines) {
            return false;
        }
        let title = render_text(title_inlines, true);
        self.warn(
            offset,
            format!(
                "struck-through item `{title}` is not a step{}",
                if nested {
                    " (nor is anything nested under it)"
                } else {
                    ""
                }
            ),
        );
        true
    }

    pub(super) fn set_command(&mut self, step: StepRef, cmd: Command) {
        let timeout = self.options.command_timeout;
        let cwd = self.options.command_cwd.clone();
        let s = self.step_mut(step);
        match &mut s.command {
            Some(existing) => {
                existing.push('\n');
                existing.push_str(&cmd.script);
                if !existing.starts_with("set -e\n") {
                    *existing = format!("set -e\n{existing}");
                }
            }
            None => s.command = Some(cmd.script),
        }
        if cmd.multi_line
            || s.command
                .as_deref()
                .is_some_and(|c| c.starts_with("set -e\n"))
        {
            let note = "the code block has several commands: it runs as one script with `set -e` (stops at the first failure)";
            if !s.notes.iter().any(|n| n == note) {
                s.notes.push(note.into());
            }
        }
        s.timeout = timeout.map(DurationText::from);
        s.cwd = cwd;
    }

    pub(super) fn standalone_command(&mut self, cmd: Command, scope: &Scope, range: &Range<usize>) {
        let phase = self.phase_for_steps(range.start);
        let first = cmd
            .script
            .lines()
            .find(|l| !l.trim().is_empty() && l.trim() != "set -e")
            .unwrap_or("command")
            .trim()
            .to_owned();
        let (at, id) = self.add_step(phase, format!("`{first}`"), "command", scope, None);
        self.set_command(at, cmd);
        let line = self.line_of(range.start);
        let after = self.next_line_start(range.end.saturating_sub(1));
        self.anchors.push(StepAnchor {
            step_id: id,
            line,
            checkbox: None,
            insert_checkbox_at: None,
            evidence_at: after,
            prefix: self.prefix_at(range.start, range.start),
            after_table: false,
        });
    }
}
