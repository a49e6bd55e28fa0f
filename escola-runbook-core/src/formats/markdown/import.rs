//! Markdown -> runbook file. See the module docs of [`super`] for the rules.

use std::ops::Range;
use std::time::Duration;

use super::headings::{self, BOLD_LEVEL, Heading, Role, Style};
use super::slug::{SlugSet, ascii_fold};
use super::tree::{self, Block, Cell, Inline, InlineKind, Item, Row};
use super::{ImportOptions, ImportWarning, Imported, SourceMap, StepAnchor};
use crate::PhaseKind;
use crate::catalog::{Catalog, ParamProblem};
use crate::formats::runbook_file::{
    ContactFile, DurationText, FORMAT_VERSION, MetadataFile, ParamMap, PhaseFile, RunbookFile,
    StepFile,
};

/// The prefix of the evidence line `export` writes under each item; such
/// quotes are the tool's own output and are not imported as notes.
pub const EVIDENCE_MARK: &str = "run:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Steps,
    Glossary,
    Contacts,
}

#[derive(Debug, Clone)]
struct Scope {
    section: Option<String>,
    mode: Mode,
}

/// Which step (phase index, step index) items nested here belong to.
type StepRef = (usize, usize);

struct Importer<'a> {
    src: &'a str,
    /// Where bindings name their checks.
    catalog: &'a Catalog,
    line_starts: Vec<usize>,
    options: &'a ImportOptions,
    phases: Vec<PhaseFile>,
    /// The heading line of each phase.
    phase_lines: Vec<usize>,
    phase_ids: SlugSet,
    step_ids: SlugSet,
    metadata: MetadataFile,
    warnings: Vec<ImportWarning>,
    anchors: Vec<StepAnchor>,
    /// Index into `phases` of the phase being filled; `None` under a
    /// glossary or contacts heading, or before the first heading.
    current: Option<usize>,
    /// Where steps go when no phase heading precedes them.
    implicit_phase: Option<usize>,
    /// The document has no heading (nor bold paragraph standing for one).
    headingless: bool,
    /// The step created last, for a binding or code block right after a list.
    last_step: Option<StepRef>,
}

/// A document with a rollback phase means "if this fails, roll back": the
/// phases from the first one that runs a command up to the rollback phase
/// roll back on failure (those before run no command, so a failure there
/// has nothing to undo; those after it are follow-up work). The executor
/// still rolls back only when a step of the run changed something. Where
/// the rollback heading was itself an inference worth a warning, the
/// warning says which phases lead to it; `plan` shows it for every phase.
fn roll_back_on_failure(phases: &mut [PhaseFile], lines: &[usize], warnings: &mut [ImportWarning]) {
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

/// Imports `markdown`.
pub(crate) fn import(markdown: &str, options: &ImportOptions, catalog: &Catalog) -> Imported {
    let blocks = tree::parse(markdown);
    let mut im = Importer {
        src: markdown,
        catalog,
        line_starts: std::iter::once(0)
            .chain(markdown.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        options,
        phases: Vec::new(),
        phase_lines: Vec::new(),
        phase_ids: SlugSet::default(),
        step_ids: SlugSet::default(),
        metadata: MetadataFile::default(),
        warnings: Vec::new(),
        anchors: Vec::new(),
        current: None,
        implicit_phase: None,
        headingless: false,
        last_step: None,
    };
    let (name, heading_levels) = im.document(&blocks);
    let mut channels: Vec<String> = Vec::new();
    for p in &im.phases {
        for s in &p.steps {
            for c in channels_in(&s.title) {
                if !channels.contains(&c) {
                    channels.push(c);
                }
            }
        }
    }
    let mut metadata = im.metadata;
    metadata.channels = channels;
    if im.phases.is_empty() {
        im.warnings.push(ImportWarning {
            line: 1,
            message: "the document has no heading and no list item: nothing to import".into(),
        });
    }
    for (p, line) in im.phases.iter().zip(&im.phase_lines) {
        if p.steps.is_empty() {
            im.warnings.push(ImportWarning {
                line: *line,
                message: format!(
                    "section `{}` has no item: imported as an empty phase",
                    p.title
                ),
            });
        }
    }
    roll_back_on_failure(&mut im.phases, &im.phase_lines, &mut im.warnings);
    im.warnings.sort_by_key(|w| w.line);
    Imported {
        file: RunbookFile {
            format: FORMAT_VERSION,
            name,
            metadata,
            environment: Default::default(),
            watch: None,
            rollback: None,
            phases: im.phases,
        },
        warnings: im.warnings,
        heading_levels,
        source_map: SourceMap {
            source_len: markdown.len(),
            source_hash: super::fnv1a(markdown.as_bytes()),
            steps: im.anchors,
        },
    }
}

fn channels_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut prev = ' ';
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            in_code = !in_code;
        } else if c == '#'
            && !in_code
            && (prev.is_whitespace() || prev == '(' || prev == ',')
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic())
        {
            let name: String = chars[i + 1..]
                .iter()
                .take_while(|n| n.is_alphanumeric() || **n == '-' || **n == '_')
                .collect();
            out.push(format!("#{name}"));
            i += name.chars().count();
        }
        prev = c;
        i += 1;
    }
    out
}

/// Plain text of inlines as a reader reads them: struck-through text left
/// out (`Keep ~~both~~ one` -> `Keep one`), emphasis dropped, inline code
/// kept in backticks, links as their text, breaks as spaces, HTML left out.
fn render(inlines: &[Inline]) -> String {
    render_text(inlines, false)
}

/// [`render`], with struck-through text kept when `struck` (to name an
/// item that is struck through).
fn render_text(inlines: &[Inline], struck: bool) -> String {
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

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_glossary(label: &str) -> bool {
    let f = ascii_fold(label);
    f.contains("glossar") || f.contains("glosario")
}

fn is_contacts(label: &str) -> bool {
    let f = ascii_fold(label);
    f.contains("contact") || f.contains("contato") || f.contains("contacto")
}

fn mode_of(label: &str) -> Mode {
    if is_glossary(label) {
        Mode::Glossary
    } else if is_contacts(label) {
        Mode::Contacts
    } else {
        Mode::Steps
    }
}

/// A checkbox as written: `[ ]`, `[x]`, or a near miss like `[ ]]` or `[]`.
#[derive(Debug, Clone)]
struct Checkbox {
    checked: bool,
    /// `[` to the first `]`, inclusive: what export rewrites.
    span: Range<usize>,
    /// The token as written, when it is not a clean `[ ]`/`[x]`.
    malformed: Option<String>,
    /// End of the whole token (closing backtick, extra `]`).
    token_end: usize,
}

/// Reads a checkbox token at the start of `s`: returns (checked, bytes up
/// to and including the first `]`, whole token length, exact).
fn checkbox_token(s: &str) -> Option<(bool, usize, usize, bool)> {
    let rest = s.strip_prefix('[')?;
    let inner_len = rest.find(']')?;
    let inner = &rest[..inner_len];
    let mark = inner.trim();
    let checked = match mark {
        // `!` is what export writes for a step that went wrong: not done.
        "" | "!" => false,
        "x" | "X" => true,
        _ => return None,
    };
    if inner.len() > 3 {
        return None;
    }
    let first_close = 1 + inner_len + 1;
    let extra = s[first_close..].chars().take_while(|c| *c == ']').count();
    let exact = inner.len() == 1 && extra == 0;
    Some((checked, first_close, first_close + extra, exact))
}

impl Importer<'_> {
    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn warn(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.warnings.push(ImportWarning {
            line,
            message: message.into(),
        });
    }

    /// The document's headings (outside lists and quotes), as the phase
    /// inference sees them: `(block index, level, title, style)`. A document
    /// without any heading has its wholly bold paragraphs over a list
    /// instead (`**Rollout**`), ranked below `######`.
    fn headings(&self, blocks: &[Block]) -> Vec<(usize, u8, String, Style)> {
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
    fn is_wholly_bold(&self, inlines: &[Inline]) -> bool {
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

    /// Walks the top level; returns the runbook name and the levels at
    /// which the document has headings.
    fn document(&mut self, blocks: &[Block]) -> (String, Vec<u8>) {
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
        let mut role_of: Vec<Option<(&Role, Style)>> = vec![None; blocks.len()];
        for ((i, _, _, style), role) in found.iter().zip(&reading.roles) {
            role_of[*i] = Some((role, *style));
        }

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
            let (Some((role, style)), Some(offset)) = (role_of[i], block_start(block)) else {
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

    fn new_phase(&mut self, title: &str, kind: PhaseKind, offset: usize) -> usize {
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
    fn phase_for_steps(&mut self, offset: usize) -> usize {
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

    /// Blocks of a phase body, a quote or an item's remainder. `parent` is
    /// the step that nested items and text belong to.
    fn container(&mut self, blocks: &[&Block], scope: &Scope, parent: Option<StepRef>) {
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
                        Some(Err(why)) => self.warn(range.start, why),
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

    fn step(&self, (p, s): StepRef) -> &StepFile {
        &self.phases[p].steps[s]
    }

    fn step_mut(&mut self, (p, s): StepRef) -> &mut StepFile {
        &mut self.phases[p].steps[s]
    }

    fn note(&mut self, parent: Option<StepRef>, text: String) {
        match parent {
            Some(step) => self.step_mut(step).notes.push(text),
            None => {
                if let Some(p) = self.current {
                    self.phases[p].notes.push(text);
                }
            }
        }
    }

    fn set_command(&mut self, step: StepRef, cmd: Command) {
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

    fn standalone_command(&mut self, cmd: Command, scope: &Scope, range: &Range<usize>) {
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

    fn inline_bindings(&mut self, inlines: &[Inline], target: Option<StepRef>) {
        for i in inlines {
            if let InlineKind::Html(text) = &i.kind {
                self.html_binding(text, i.range.start, target);
            }
        }
    }

    fn html_binding(&mut self, html: &str, offset: usize, target: Option<StepRef>) {
        let Some(binding) = parse_binding(html) else {
            return;
        };
        let binding = match binding {
            Ok(b) => b,
            Err(why) => {
                self.warn(
                    offset,
                    format!("check binding not understood: {why}; the item stays as it is"),
                );
                return;
            }
        };
        let Some(step) = target else {
            self.warn(
                offset,
                format!("check binding `{}` follows no list item; put it right after the item it automates", binding.name),
            );
            return;
        };
        self.apply_binding(step, binding, offset);
    }

    fn apply_binding(&mut self, step: StepRef, binding: Binding, offset: usize) {
        let id = self.step(step).id.clone();
        // Typed through the check's schema when it is known (`retries=3` a
        // number, `args=a,b` a list); as written otherwise, so that loading
        // reports the same mistake at the item's line.
        let params = match self.catalog.find(&binding.name) {
            Err(e) => {
                self.warn(offset, format!("step `{id}`: {e}"));
                as_written(&binding.params)
            }
            Ok(entry) => match entry.object_from_pairs(&binding.params) {
                Ok(object) => {
                    if let Err(e) = entry.build(object.clone()) {
                        self.warn(offset, format!("step `{id}`: {e}"));
                    }
                    object
                }
                Err(e) if e.problem == ParamProblem::Repeated => {
                    self.warn(
                        offset,
                        format!("check binding not understood: {e}; the item stays as it is"),
                    );
                    return;
                }
                Err(e) => {
                    self.warn(offset, format!("step `{id}`: {e}"));
                    as_written(&binding.params)
                }
            },
        };
        if self.step(step).check.is_some() {
            self.warn(
                offset,
                format!("step `{id}` has a second check binding; the last one wins"),
            );
        }
        let s = self.step_mut(step);
        if let Some(cmd) = s.command.take() {
            s.notes.push(format!(
                "the document's command, replaced by check `{}`: {cmd}",
                binding.name
            ));
            s.cwd = None;
            s.timeout = None;
        }
        if let Some(text) = s.instructions.take() {
            s.notes.push(text);
        }
        s.confirm_deadline = None;
        s.confirm_default = None;
        s.check = Some(binding.name);
        s.params = params;
    }

    fn next_line_start(&self, offset: usize) -> usize {
        let line = self.line_of(offset);
        self.line_starts
            .get(line)
            .copied()
            .unwrap_or(self.src.len())
    }

    /// The indentation that keeps a line inside the container at `content`
    /// (the item's text column): quote markers kept, list markers blanked.
    fn prefix_at(&self, line_offset: usize, content: usize) -> String {
        let line = self.line_of(line_offset);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let end = content.max(start).min(self.src.len());
        let mut prefix = String::new();
        for c in self.src.get(start..end).unwrap_or("").chars() {
            match c {
                '>' | '\t' | ' ' => prefix.push(c),
                _ => prefix.push(' '),
            }
        }
        prefix
    }

    fn item(&mut self, item: &Item, scope: &Scope, parent: Option<StepRef>) {
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
            .any(|i| matches!(&i.kind, InlineKind::Html(h) if parse_binding(h).is_some()))
            || rest
                .iter()
                .any(|b| matches!(b, Block::Html { text, .. } if parse_binding(text).is_some()));

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
    fn add_step(
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
    fn struck(&mut self, title_inlines: &[Inline], offset: usize, nested: bool) -> bool {
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

    /// A table. Rows with a checkbox cell are steps: the text after the box
    /// (or the first other cell) is the title, the other cells, under their
    /// headers, the instructions; export ticks the box in its cell and
    /// writes the evidence after the table. A table without any box is kept
    /// whole as a note; under a glossary or contacts heading, each row is
    /// an entry.
    fn table(
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

    fn nested(&mut self, blocks: &[Block], scope: &Scope, parent: Option<StepRef>) {
        let refs: Vec<&Block> = blocks.iter().collect();
        self.container(&refs, scope, parent);
    }

    fn checkbox(&self, inlines: &[Inline]) -> Option<Checkbox> {
        let mut leading = String::new();
        let mut start = None;
        for i in inlines {
            match &i.kind {
                InlineKind::TaskMarker(checked) => {
                    // `[ ]]`: the parser takes `[ ]` and leaves `]` as text.
                    let extra = self
                        .src
                        .get(i.range.end..)
                        .unwrap_or("")
                        .chars()
                        .take_while(|c| *c == ']')
                        .count();
                    let written = self.src.get(i.range.clone()).unwrap_or("[ ]");
                    return Some(Checkbox {
                        checked: *checked,
                        span: i.range.clone(),
                        malformed: (extra > 0).then(|| format!("{written}{}", "]".repeat(extra))),
                        token_end: i.range.end + extra,
                    });
                }
                InlineKind::Style => {}
                InlineKind::Code(code) if leading.trim().is_empty() => {
                    let token = code.trim();
                    let (checked, first_close, whole, exact) = checkbox_token(token)?;
                    if whole != token.len() {
                        return None;
                    }
                    let open = self.src.get(i.range.clone())?.find('[')? + i.range.start;
                    return Some(Checkbox {
                        checked,
                        span: open..open + first_close,
                        malformed: (!exact).then(|| token.to_owned()),
                        token_end: i.range.end,
                    });
                }
                InlineKind::Text(t) => {
                    if start.is_none() && !t.trim().is_empty() {
                        start = Some(i.range.start);
                    }
                    leading.push_str(t);
                    if leading.trim_start().len() >= 5 {
                        break;
                    }
                }
                _ => break,
            }
        }
        let trimmed = leading.trim_start();
        let (checked, first_close, whole, exact) = checkbox_token(trimmed)?;
        if trimmed[whole..]
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace())
            && whole == first_close
        {
            // `[x]foo` or `[link]`: not a box.
            return None;
        }
        let open = start? + self.src.get(start?..)?.find('[')?;
        Some(Checkbox {
            checked,
            span: open..open + first_close,
            malformed: (!exact).then(|| trimmed[..whole].to_owned()),
            token_end: open + whole,
        })
    }

    fn glossary_entry(&mut self, text: &str, offset: usize) {
        match split_entry(text) {
            Some((term, meaning)) => {
                self.metadata
                    .glossary
                    .insert(term.trim_matches('`').to_owned(), meaning.to_owned());
            }
            None if text.is_empty() => {}
            None => {
                self.warn(
                    offset,
                    format!("glossary entry `{text}` has no `term: meaning` form; kept with an empty meaning"),
                );
                self.metadata
                    .glossary
                    .insert(text.to_owned(), String::new());
            }
        }
    }

    fn contact_entry(&mut self, text: &str, offset: usize) {
        match split_entry(text) {
            Some((role, handle)) => self.metadata.contacts.push(ContactFile {
                role: role.to_owned(),
                handle: handle.trim_matches('`').trim().to_owned(),
            }),
            None if text.is_empty() => {}
            None => {
                self.warn(
                    offset,
                    format!("contact `{text}` has no `role: handle` form; kept with the whole text as its role"),
                );
                self.metadata.contacts.push(ContactFile {
                    role: text.to_owned(),
                    handle: String::new(),
                });
            }
        }
    }
}

/// `Role: handle`, `Term — meaning`, `Term - meaning`.
fn split_entry(text: &str) -> Option<(&str, &str)> {
    for sep in [":", " — ", " – ", " - "] {
        if let Some((a, b)) = text.split_once(sep) {
            let (a, b) = (a.trim(), b.trim());
            if !a.is_empty() && !b.is_empty() {
                return Some((a, b));
            }
        }
    }
    None
}

fn is_emphasised(inlines: &[Inline]) -> bool {
    matches!(inlines.first().map(|i| &i.kind), Some(InlineKind::Style))
        && matches!(inlines.last().map(|i| &i.kind), Some(InlineKind::Style))
}

/// The title begins with a struck-through span (`~~Old step~~ (removed)`):
/// the author crossed the item out.
fn begins_struck(inlines: &[Inline]) -> bool {
    inlines
        .iter()
        .find(|i| match &i.kind {
            InlineKind::Style | InlineKind::TaskMarker(_) => false,
            InlineKind::Text(t) => !t.trim().is_empty(),
            _ => true,
        })
        .is_some_and(|i| i.kind == InlineKind::StrikeStart)
}

/// A row's non-empty cells but those at `skip`, each under its header
/// (`Owner: @dba`).
fn labelled(headers: &[String], cells: &[String], skip: &[usize]) -> Vec<String> {
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

/// Where a block's content starts, when the tree keeps it.
fn content_start(block: &Block) -> Option<usize> {
    match block {
        Block::List { items } => items.first().map(|i| i.range.start),
        Block::Code { range, .. } | Block::Table { range, .. } => Some(range.start),
        Block::Quote { blocks } => blocks.iter().find_map(content_start),
        other => block_start(other),
    }
}

/// Where a heading or a paragraph starts.
fn block_start(block: &Block) -> Option<usize> {
    match block {
        Block::Heading { range, .. } => Some(range.start),
        Block::Paragraph { inlines } => inlines.first().map(|i| i.range.start),
        _ => None,
    }
}

/// A table's source as a note: its lines without the indentation or quote
/// markers that kept it inside an item, and without `\r`.
fn table_text(source: &str) -> String {
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

/// The inlines after the checkbox token (which ends at `token_end`).
fn strip_checkbox(inlines: &[Inline], token_end: usize, src: &str) -> Vec<Inline> {
    inlines
        .iter()
        .filter_map(|i| match &i.kind {
            InlineKind::TaskMarker(_) => None,
            InlineKind::Style => Some(i.clone()),
            _ if i.range.end <= token_end => None,
            InlineKind::Text(_) if i.range.start < token_end => Some(Inline {
                kind: InlineKind::Text(src.get(token_end..i.range.end).unwrap_or("").to_owned()),
                range: token_end..i.range.end,
            }),
            _ => Some(i.clone()),
        })
        .collect()
}

fn quote_is_evidence(blocks: &[Block]) -> bool {
    match blocks.first() {
        Some(Block::Paragraph { inlines }) => render(inlines).starts_with(EVIDENCE_MARK),
        _ => false,
    }
}

fn fenced(lang: Option<&str>, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{}\n{body}\n{fence}", lang.unwrap_or(""))
}

/// A shell command taken from a code block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub(crate) script: String,
    pub(crate) multi_line: bool,
}

/// The command in a fenced block: `Some(Ok)` for a shell block with a
/// command, `Some(Err)` for a console block with no `$` prompt, `None` for
/// other languages and indented blocks.
pub(crate) fn command_of(lang: Option<&str>, text: &str) -> Option<Result<Command, String>> {
    let lang = lang?;
    let console = matches!(
        lang,
        "console" | "shell-session" | "shellsession" | "terminal"
    );
    let shell = matches!(lang, "" | "bash" | "sh" | "shell" | "zsh" | "ksh");
    if !console && !shell {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let prompted = |l: &str| {
        let t = l.trim_start();
        t == "$" || t.starts_with("$ ")
    };
    let mut kept: Vec<String> = Vec::new();
    let all_prompted = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .all(|l| prompted(l));
    if console || all_prompted {
        let mut continuing = false;
        for l in &lines {
            let t = l.trim_start();
            if prompted(l) {
                let cmd = t.trim_start_matches('$').trim_start();
                continuing = cmd.ends_with('\\');
                kept.push(cmd.to_owned());
            } else if continuing {
                continuing = l.ends_with('\\');
                kept.push((*l).to_owned());
            }
        }
        if kept.iter().all(|l| l.trim().is_empty()) {
            return if console {
                Some(Err(
                    "console block has no `$ ` prompt line, so no command was found in it; prefix commands with `$ `".into(),
                ))
            } else {
                None
            };
        }
    } else {
        kept = lines.iter().map(|l| (*l).to_owned()).collect();
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    if kept.is_empty() {
        return None;
    }
    let commands = kept
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let t = l.trim();
            let continuation = *i > 0 && kept[i - 1].trim_end().ends_with('\\');
            !(t.is_empty() || t.starts_with('#') || continuation)
        })
        .count();
    let multi_line = commands > 1;
    let body = kept.join("\n");
    Some(Ok(Command {
        script: if multi_line {
            format!("set -e\n{body}")
        } else {
            body
        },
        multi_line,
    }))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, String)>,
}

/// `<!-- check: NAME key=value key="two words" -->`; `None` for any other
/// HTML.
pub(crate) fn parse_binding(html: &str) -> Option<Result<Binding, String>> {
    let inner = html.trim().strip_prefix("<!--")?.trim_start();
    let body = inner
        .strip_prefix("check:")
        .or_else(|| inner.strip_prefix("check :"))?;
    let Some(body) = body.trim_end().strip_suffix("-->") else {
        return Some(Err(
            "the comment is not closed with `-->` on the same line".into()
        ));
    };
    let words = match split_words(body) {
        Ok(w) => w,
        Err(e) => return Some(Err(e)),
    };
    let Some((name, pairs)) = words.split_first() else {
        return Some(Err("no check name after `check:`".into()));
    };
    let mut params = Vec::new();
    for word in pairs {
        match word.split_once('=') {
            Some((k, v)) if !k.is_empty() => params.push((k.to_owned(), v.to_owned())),
            _ => return Some(Err(format!("`{word}` is not key=value"))),
        }
    }
    Some(Ok(Binding {
        name: name.clone(),
        params,
    }))
}

/// A binding's pairs as written, each value text (a repeated key keeps its
/// last value): for a check the catalog cannot type them for.
fn as_written(pairs: &[(String, String)]) -> ParamMap {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect()
}

fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            (None, c) => {
                current.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if started {
        words.push(current);
    }
    Ok(words)
}

/// The default limit put on imported commands, so a hung command cannot
/// hold the deploy forever; written into the file where it can be changed.
pub(crate) const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkbox_tokens() {
        assert_eq!(checkbox_token("[ ] x"), Some((false, 3, 3, true)));
        assert_eq!(checkbox_token("[x]"), Some((true, 3, 3, true)));
        assert_eq!(checkbox_token("[ ]]"), Some((false, 3, 4, false)));
        assert_eq!(checkbox_token("[]"), Some((false, 2, 2, false)));
        assert_eq!(checkbox_token("[!] again"), Some((false, 3, 3, true)));
        assert_eq!(checkbox_token("[link]"), None);
        assert_eq!(checkbox_token("no"), None);
    }

    #[test]
    fn commands_from_code_blocks() {
        let c = command_of(Some("bash"), "php artisan up\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.script, "php artisan up");
        assert!(!c.multi_line);
        let c = command_of(
            Some("console"),
            "$ php artisan up\nApplication is now live.\n$ echo \\\n  done\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.script, "set -e\nphp artisan up\necho \\\n  done");
        assert!(
            command_of(Some("console"), "just output\n")
                .unwrap()
                .is_err()
        );
        assert_eq!(command_of(Some("json"), "{}"), None);
        assert_eq!(command_of(None, "indented"), None);
        let c = command_of(Some(""), "$ ls\n").unwrap().unwrap();
        assert_eq!(c.script, "ls");
    }

    #[test]
    fn bindings() {
        let b = parse_binding("<!-- check: smoke base_url=http://x timeout=\"30 s\" -->")
            .unwrap()
            .unwrap();
        assert_eq!(b.name, "smoke");
        assert_eq!(
            b.params,
            vec![
                ("base_url".into(), "http://x".into()),
                ("timeout".into(), "30 s".into())
            ]
        );
        assert!(parse_binding("<!-- just a comment -->").is_none());
        assert!(parse_binding("<!-- check: a b -->").unwrap().is_err());
        assert!(parse_binding("<!-- check: -->").unwrap().is_err());
    }

    #[test]
    fn channels() {
        assert_eq!(
            channels_in("Programar aviso nos canais #operacoes e #promotores (T -4h). `#no`"),
            vec!["#operacoes", "#promotores"]
        );
    }
}
