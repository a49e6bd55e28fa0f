//! Markdown -> runbook file. See the module docs of [`super`] for the rules.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use super::slug::{SlugSet, ascii_fold};
use super::tree::{self, Block, Inline, InlineKind, Item};
use super::{ImportOptions, ImportWarning, Imported, SourceMap, StepAnchor};
use crate::registry::{self, Params};
use crate::runbook_file::{
    ContactFile, DurationText, FORMAT_VERSION, MetadataFile, ParamValue, PhaseFile, RunbookFile,
    StepFile,
};
use escola_runbook_core::PhaseKind;

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
    rollback_seen: bool,
    /// The step created last, for a binding or code block right after a list.
    last_step: Option<StepRef>,
}

/// Imports `markdown`.
pub(crate) fn import(markdown: &str, options: &ImportOptions) -> Imported {
    let blocks = tree::parse(markdown);
    let mut im = Importer {
        src: markdown,
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
        rollback_seen: false,
        last_step: None,
    };
    let name = im.document(&blocks);
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

/// Plain text of inlines: emphasis dropped, inline code kept in backticks,
/// links as their text, breaks as spaces, HTML left out.
fn render(inlines: &[Inline]) -> String {
    let mut out = String::new();
    let mut link: Vec<(String, usize)> = Vec::new();
    for i in inlines {
        match &i.kind {
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
            InlineKind::TaskMarker(_)
            | InlineKind::Html(_)
            | InlineKind::StrikeStart
            | InlineKind::StrikeEnd
            | InlineKind::Style => {}
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

/// `1. Pré-Deploy` -> `Pré-Deploy`; `2.1) Deploy` -> `Deploy`.
fn strip_numbering(title: &str) -> &str {
    let t = title.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    if digits == 0 || !t[..digits].starts_with(|c: char| c.is_ascii_digit()) {
        return t;
    }
    let number = &t[..digits];
    let rest = &t[digits..];
    // `1. x`, `1) x`, `1 - x`: a bare year (`2024 plan`) is not numbering.
    let (punct, rest) = match rest.strip_prefix([')', ':', '-', '—']) {
        Some(r) => (true, r),
        None => (number.ends_with('.'), rest),
    };
    let rest = if !punct {
        match rest.trim_start().strip_prefix(['-', '—', '–']) {
            Some(r) if r.starts_with(char::is_whitespace) => r,
            _ => return t,
        }
    } else {
        rest
    };
    if rest.starts_with(char::is_whitespace) && !rest.trim().is_empty() {
        rest.trim()
    } else {
        t
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

    /// Walks the top level; returns the runbook name.
    fn document(&mut self, blocks: &[Block]) -> String {
        let headings: Vec<(usize, u8)> = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match b {
                Block::Heading { level, .. } => Some((i, *level)),
                _ => None,
            })
            .collect();
        // The document's title: the first heading, alone at the top level,
        // with other headings below it.
        let title_index = headings.first().and_then(|(i, level)| {
            let alone = headings.iter().skip(1).all(|(_, l)| l > level);
            (alone && headings.len() > 1).then_some(*i)
        });
        let phase_level = headings
            .iter()
            .filter(|(i, _)| Some(*i) != title_index)
            .map(|(_, l)| *l)
            .min()
            .unwrap_or(1);
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
            if let Block::Heading {
                level,
                inlines,
                range,
            } = block
            {
                self.container(&pending, &scope, None);
                pending.clear();
                let text = render(inlines);
                if Some(i) == title_index {
                    if !text.is_empty() {
                        name = text;
                    }
                    continue;
                }
                if *level <= phase_level {
                    scope = Scope {
                        section: None,
                        mode: mode_of(&text),
                    };
                    self.current = match scope.mode {
                        Mode::Steps => Some(self.new_phase(&text, range.start)),
                        _ => None,
                    };
                } else {
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
                continue;
            }
            pending.push(block);
        }
        self.container(&pending, &scope, None);
        name
    }

    fn new_phase(&mut self, heading: &str, offset: usize) -> usize {
        let title = strip_numbering(heading).to_owned();
        let title = if title.is_empty() {
            self.warn(offset, "empty heading; imported as phase `phase`");
            "Phase".to_owned()
        } else {
            title
        };
        let folded = ascii_fold(&title);
        let mut kind = PhaseKind::Normal;
        if folded.contains("rollback") || folded.contains("revers") || folded.contains("reverter") {
            if self.rollback_seen {
                self.warn(
                    offset,
                    format!("`{title}` looks like a second rollback section; a runbook has one rollback phase, so it is imported as a normal phase"),
                );
            } else {
                kind = PhaseKind::Rollback;
                self.rollback_seen = true;
            }
        } else if folded.contains("monitor")
            || folded.contains("watch")
            || folded.contains("observab")
        {
            kind = PhaseKind::Watch;
        }
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
        self.warn(
            offset,
            "list items outside any phase heading (before the first heading, or under a glossary/contacts heading) are imported into phase `checklist`",
        );
        let id = self.phase_ids.unique("checklist", "checklist");
        self.phases.push(PhaseFile {
            id,
            title: "Checklist".into(),
            kind: PhaseKind::Normal,
            rollback_on_failure: false,
            max_parallel: None,
            notes: Vec::new(),
            steps: Vec::new(),
        });
        self.phase_lines.push(self.line_of(offset));
        let p = self.phases.len() - 1;
        self.implicit_phase = Some(p);
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
                    let is_label = next_is_list
                        && (text.ends_with(':') || is_emphasised(inlines) || text.len() <= 60);
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
        s.timeout = timeout.map(DurationText);
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
        let title = format!("`{first}`");
        let id = self.step_ids.unique(&first, "command");
        let mut step = StepFile::manual(id.clone(), title);
        step.section = scope.section.clone();
        self.phases[phase].steps.push(step);
        let at = (phase, self.phases[phase].steps.len() - 1);
        self.set_command(at, cmd);
        self.last_step = Some(at);
        let line = self.line_of(range.start);
        let after = self.next_line_start(range.end.saturating_sub(1));
        self.anchors.push(StepAnchor {
            step_id: id,
            line,
            checkbox: None,
            insert_checkbox_at: None,
            evidence_at: after,
            prefix: self.prefix_at(range.start, range.start),
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
        match registry::find(&binding.name) {
            Err(e) => self.warn(offset, format!("step `{id}`: {e}")),
            Ok(spec) => {
                let params = Params::new(binding.params.clone());
                if let Err(e) = spec.instantiate(&params) {
                    self.warn(offset, format!("step `{id}`: {e}"));
                }
            }
        }
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
        s.params = binding
            .params
            .into_iter()
            .map(|(k, v)| (k, ParamValue(v)))
            .collect::<BTreeMap<_, _>>();
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
        if is_struck(&title_inlines) {
            let nested = rest
                .iter()
                .filter(|b| matches!(b, Block::List { .. }))
                .count();
            self.warn(
                item.range.start,
                format!(
                    "struck-through item `{title}` is not a step{}",
                    if nested > 0 {
                        " (nor is anything nested under it)"
                    } else {
                        ""
                    }
                ),
            );
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
        let id = self.step_ids.unique(&title, "step");
        let mut step = StepFile::manual(id.clone(), title.clone());
        step.section = scope.section.clone();
        let folded = ascii_fold(&title);
        if folded.contains("(opcional)") || folded.contains("(optional)") {
            step.blocking = false;
            step.notes.push(
                "marked optional in the document: advisory (a failure is recorded and the run goes on)".into(),
            );
        }
        if let Some(cb) = &checkbox {
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
        });

        self.inline_bindings(first, Some(at));
        let rest_refs: Vec<&Block> = rest.iter().collect();
        self.container(&rest_refs, scope, Some(at));
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

fn is_struck(inlines: &[Inline]) -> bool {
    let mut depth = 0usize;
    let mut struck_text = false;
    for i in inlines {
        match &i.kind {
            InlineKind::StrikeStart => depth += 1,
            InlineKind::StrikeEnd => depth = depth.saturating_sub(1),
            InlineKind::Text(t) if !t.trim().is_empty() => {
                if depth == 0 {
                    return false;
                }
                struck_text = true;
            }
            InlineKind::Code(_) if depth == 0 => return false,
            InlineKind::Code(_) => struck_text = true,
            _ => {}
        }
    }
    struck_text
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
            Some((k, v)) if !k.is_empty() => {
                if params.iter().any(|(p, _): &(String, String)| p == k) {
                    return Some(Err(format!("parameter `{k}` is given twice")));
                }
                params.push((k.to_owned(), v.to_owned()));
            }
            _ => return Some(Err(format!("`{word}` is not key=value"))),
        }
    }
    Some(Ok(Binding {
        name: name.clone(),
        params,
    }))
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
    fn numbering_is_stripped() {
        assert_eq!(strip_numbering("1. Pré-Deploy"), "Pré-Deploy");
        assert_eq!(strip_numbering("2.1) Deploy"), "Deploy");
        assert_eq!(strip_numbering("2024 plan"), "2024 plan");
        assert_eq!(strip_numbering("3."), "3.");
        assert_eq!(strip_numbering("4 - Rollback"), "Rollback");
    }

    #[test]
    fn channels() {
        assert_eq!(
            channels_in("Programar aviso nos canais #operacoes e #promotores (T -4h). `#no`"),
            vec!["#operacoes", "#promotores"]
        );
    }
}
