//! Markdown -> runbook file. See the module docs of [`super`] for the
//! rules. One job per file: [`walk`] goes through the blocks, [`phases`]
//! turns headings into phases, [`steps`] and [`table`] make steps of
//! items and rows ([`checkbox`], [`command`] and [`binding`] read what an
//! item carries), [`metadata`] keeps the glossary, contacts and channels,
//! [`warnings`] says what could not be used, [`text`] renders inlines, and
//! [`importer`] holds the state they share.

mod binding;
mod checkbox;
mod command;
mod importer;
mod metadata;
mod phases;
mod steps;
mod table;
mod text;
mod walk;
mod warnings;

use importer::Importer;
use metadata::channels_of;
use phases::roll_back_on_failure;

use super::imported::{ImportOptions, Imported, SourceMap, fnv1a};
use super::slug::SlugSet;
use super::tree;
use crate::catalog::Catalog;
use crate::formats::runbook_file::{FORMAT_VERSION, MetadataFile, RunbookFile};

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
            rollback: None,
            phases: im.phases,
        },
        warnings: im.warnings,
        heading_levels,
        source_map: SourceMap {
            source_len: markdown.len(),
            source_hash: fnv1a(markdown.as_bytes()),
            steps: im.anchors,
        },
    }
}
