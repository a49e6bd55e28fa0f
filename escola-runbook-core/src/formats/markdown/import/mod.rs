//! Markdown -> runbook file. See the module docs of [`super`] for the
//! rules. One job per file: [`walk`] goes through the blocks, [`phases`]
//! turns headings into phases, [`steps`] and [`table`] make steps of
//! items and rows ([`checkbox`], [`command`] and [`binding`] read what an
//! item carries), [`metadata`] keeps the glossary, contacts and channels,
//! [`warnings`] says what could not be used, and [`text`] renders inlines.

mod binding;
mod checkbox;
mod command;
mod metadata;
mod phases;
mod steps;
mod table;
mod text;
mod walk;
mod warnings;

use std::time::Duration;

use metadata::channels_of;
use phases::roll_back_on_failure;

use super::slug::SlugSet;
use super::tree;
use super::{ImportOptions, ImportWarning, Imported, SourceMap, StepAnchor};
use crate::catalog::Catalog;
use crate::formats::runbook_file::{
    FORMAT_VERSION, MetadataFile, PhaseFile, RunbookFile, StepFile,
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
    im.warn_empty_parts();
    let mut metadata = im.metadata;
    metadata.channels = channels_of(&im.phases);
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

impl Importer<'_> {
    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
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

    fn step(&self, (p, s): StepRef) -> &StepFile {
        &self.phases[p].steps[s]
    }

    fn step_mut(&mut self, (p, s): StepRef) -> &mut StepFile {
        &mut self.phases[p].steps[s]
    }
}

/// The default limit put on imported commands, so a hung command cannot
/// hold the deploy forever; written into the file where it can be changed.
pub(crate) const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);
