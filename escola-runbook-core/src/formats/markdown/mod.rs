//! Markdown runbooks: a team keeps its runbook as a Markdown document,
//! [`import`] turns it into a [`RunbookFile`], and [`export`] writes a
//! finished run back into the same document, each item ticked in place
//! (`[x]` done, `[!]` went wrong, `[ ]` not done) with a short evidence line
//! under it, so the team's document becomes the deploy record.
//!
//! Parsed with pulldown-cmark's offset iterator rather than comrak's AST:
//! export must rewrite the exact bytes of each `[ ]` (including the team's
//! backticked `` `[ ]` `` and typos like `[ ]]`, which no Markdown parser
//! treats as a task marker), so what matters is a byte range for every
//! event, which `into_offset_iter` gives directly; comrak's line/column
//! source positions would have to be mapped back to bytes.
//!
//! # How a document is read
//!
//! - **Headings** (ATX or setext) are phases or sections, as a reader takes
//!   them: headings that name themselves like their
//!   siblings (`Phase A`/`Phase B`, `Fase 1`/`Fase 2`, `Step`, `Etapa`,
//!   numbered `1.`/`2)`/`3 Deploy`) are the phases whatever their level;
//!   without such siblings, the shallowest headings are. A single top
//!   heading above all others, or a `===` title at the top, is the runbook's
//!   name; other headings are sections inside the phase above them.
//!   [`ImportOptions::phase_level`] overrides the inference. A heading that
//!   says rollback (`Rollback`, `Roll back`, `Revert`, `Reverter`,
//!   `Reversão`) makes the rollback phase. A document without headings
//!   reads its wholly bold paragraphs over a list (`**Rollout**`) as phase
//!   headings, and without those is one phase. Ids are slugs of the title
//!   with accents folded (`Pré-Deploy` -> `pre-deploy`), made unique with
//!   `-2`, `-3`.
//! - **List items** (`-`, `*`, `+`, `1.`, nested at any depth) are steps
//!   when they have a checkbox (`[ ]`, `[x]`, or backticked `` `[ ]` ``), a
//!   shell code block, or a check binding, or when they are plain items
//!   with nothing nested. A plain item with nested items is a label: the
//!   section of the steps under it. A plain item nested in a step is part of
//!   that step's instructions.
//! - **Fenced code blocks** in `bash`, `sh`, `shell`, `zsh`, `console` (the
//!   `$ ` prompts stripped, output lines dropped) or with no language make
//!   the item they sit in a command step; several commands run as one
//!   script with `set -e`. Other code blocks become notes; inline code stays
//!   text.
//! - **Bindings**: `<!-- check: NAME key=value key="two words" -->` inside
//!   or right after an item makes it the check NAME of the
//!   [`Catalog`] (a built-in or a team's own); the pairs are typed through
//!   its parameters' schema (see [`crate::catalog::params`]:
//!   `args=a,b`, a repeated key, or `args='["a","b,c"]'` for a list).
//! - **Tables**: rows with a checkbox cell are steps (the other cells,
//!   under their headers, are the instructions); a table without a box is
//!   kept whole as a note.
//! - **Not steps**: items whose title begins struck through (`~~...~~`),
//!   and items under a glossary or contact-list label or heading, which
//!   fill the metadata.
//! - **Warnings** name the line: every inference a reader might not expect
//!   (a phase at another level than its siblings, a rollback phase found by
//!   a word in a longer title, a struck-through item skipped), malformed
//!   checkboxes (imported as `[ ]`), items already ticked `[x]`, bindings
//!   that name no known check, empty sections, code blocks outside their
//!   item.

mod export;
mod headings;
mod import;
mod imported;
pub mod slug;
mod tree;

use std::path::{Path, PathBuf};

use crate::Runbook;
use crate::catalog::Catalog;

pub use export::{ExportError, export, export_run};
pub use headings::{PhaseLevel, PhaseLevelError};
pub use imported::{EVIDENCE_MARK, ImportOptions, ImportWarning, Imported, SourceMap, StepAnchor};

use crate::formats::runbook_file::{FileWarning, PathSeg, RunbookFile};

/// Imports a Markdown runbook; bindings name checks of `catalog`. Never
/// fails: anything it cannot use is reported as a warning with its line.
///
/// ```
/// use escola_runbook_core::catalog::Catalog;
/// use escola_runbook_core::formats::markdown::{import, ImportOptions};
///
/// let doc = "# Deploy da API\n\n## 1. Pré-Deploy\n- [ ] Avisar #operacoes\n- [ ]] Snapshot do banco\n";
/// let imported = import(doc, &ImportOptions::default(), &Catalog::new());
/// let phase = &imported.file.phases[0];
/// assert_eq!((phase.id.as_str(), phase.title.as_str()), ("pre-deploy", "Pré-Deploy"));
/// assert_eq!(phase.steps.len(), 2);
/// assert_eq!(imported.warnings[0].line, 5);
/// ```
pub fn import(markdown: &str, options: &ImportOptions, catalog: &Catalog) -> Imported {
    import::import(markdown, options, catalog)
}

/// A Markdown runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MarkdownError {
    /// The file could not be read.
    #[error("cannot read Markdown runbook {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A phase level was asked at which the document has no heading.
    #[error(
        "{file}: phase level {level}: the document has no level-{level} heading ({})",
        headings::describe_levels(present)
    )]
    NoHeadingAtLevel {
        /// The document.
        file: String,
        /// The level asked.
        level: PhaseLevel,
        /// The levels it has headings at.
        present: Vec<u8>,
    },
    /// The imported runbook is not valid (a binding names an unknown check,
    /// or has a bad parameter).
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The document.
        file: String,
        /// 1-based line of the offending item.
        line: usize,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A Markdown runbook imported and built, ready to run
/// (`run --markdown RUNBOOK.md`).
#[derive(Debug, Clone)]
pub struct LoadedMarkdown {
    /// The import (file model, warnings, source map).
    pub imported: Imported,
    /// The runbook built from it.
    pub runbook: Runbook,
    /// Warnings from building (none today for imported files).
    pub file_warnings: Vec<FileWarning>,
}

/// Imports `markdown` and builds the runbook through `catalog`; `file`
/// names the document in errors, which carry the line of the item at fault.
pub fn load_str(
    markdown: &str,
    file: &str,
    options: &ImportOptions,
    catalog: &Catalog,
) -> Result<LoadedMarkdown, MarkdownError> {
    let imported = import(markdown, options, catalog);
    if let Some(level) = options.phase_level {
        if !imported.heading_levels.contains(&level.get()) {
            return Err(MarkdownError::NoHeadingAtLevel {
                file: file.to_owned(),
                level,
                present: imported.heading_levels,
            });
        }
    }
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let (runbook, warnings) = imported.file.to_runbook(catalog, base).map_err(|invalid| {
        let line = step_of_path(&imported.file, &invalid.path)
            .and_then(|id| imported.source_map.anchor(&id))
            .map_or(1, |a| a.line);
        MarkdownError::Invalid {
            file: file.to_owned(),
            line,
            message: invalid.message,
        }
    })?;
    let file_warnings = warnings
        .into_iter()
        .map(|w| FileWarning {
            line: 0,
            column: 0,
            message: w.message,
        })
        .collect();
    Ok(LoadedMarkdown {
        imported,
        runbook,
        file_warnings,
    })
}

/// Reads and loads the Markdown runbook at `path`; a document without
/// headings has its one phase named after the file.
pub fn load(
    path: &Path,
    options: &ImportOptions,
    catalog: &Catalog,
) -> Result<LoadedMarkdown, MarkdownError> {
    let text = std::fs::read_to_string(path).map_err(|source| MarkdownError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut options = options.clone();
    if options.document_name.is_none() {
        options.document_name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned());
    }
    load_str(&text, &path.display().to_string(), &options, catalog)
}

fn step_of_path(file: &RunbookFile, path: &[PathSeg]) -> Option<String> {
    match path {
        [
            PathSeg::Key(p),
            PathSeg::Index(pi),
            PathSeg::Key(s),
            PathSeg::Index(si),
            ..,
        ] if p == "phases" && s == "steps" => {
            Some(file.phases.get(*pi)?.steps.get(*si)?.id.clone())
        }
        _ => None,
    }
}
