//! The importer's state while it walks a document: the phases and steps
//! made so far, where items go, and the positions export needs.

use crate::catalog::Catalog;
use crate::formats::markdown::imported::{ImportOptions, ImportWarning, StepAnchor};
use crate::formats::markdown::slug::SlugSet;
use crate::formats::runbook_file::{MetadataFile, PhaseFile, StepFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Steps,
    Glossary,
    Contacts,
}

#[derive(Debug, Clone)]
pub(super) struct Scope {
    pub(super) section: Option<String>,
    pub(super) mode: Mode,
}

/// Which step (phase index, step index) items nested here belong to.
pub(super) type StepRef = (usize, usize);

pub(super) struct Importer<'a> {
    pub(super) src: &'a str,
    /// Where bindings name their checks.
    pub(super) catalog: &'a Catalog,
    pub(super) line_starts: Vec<usize>,
    pub(super) options: &'a ImportOptions,
    pub(super) phases: Vec<PhaseFile>,
    /// The heading line of each phase.
    pub(super) phase_lines: Vec<usize>,
    pub(super) phase_ids: SlugSet,
    pub(super) step_ids: SlugSet,
    pub(super) metadata: MetadataFile,
    pub(super) warnings: Vec<ImportWarning>,
    pub(super) anchors: Vec<StepAnchor>,
    /// Index into `phases` of the phase being filled; `None` under a
    /// glossary or contacts heading, or before the first heading.
    pub(super) current: Option<usize>,
    /// Where steps go when no phase heading precedes them.
    pub(super) implicit_phase: Option<usize>,
    /// The document has no heading (nor bold paragraph standing for one).
    pub(super) headingless: bool,
    /// The step created last, for a binding or code block right after a list.
    pub(super) last_step: Option<StepRef>,
}

impl Importer<'_> {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    pub(super) fn next_line_start(&self, offset: usize) -> usize {
        let line = self.line_of(offset);
        self.line_starts
            .get(line)
            .copied()
            .unwrap_or(self.src.len())
    }

    /// The indentation that keeps a line inside the container at `content`
    /// (the item's text column): quote markers kept, list markers blanked.
    pub(super) fn prefix_at(&self, line_offset: usize, content: usize) -> String {
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

    pub(super) fn step(&self, (p, s): StepRef) -> &StepFile {
        &self.phases[p].steps[s]
    }

    pub(super) fn step_mut(&mut self, (p, s): StepRef) -> &mut StepFile {
        &mut self.phases[p].steps[s]
    }
}
