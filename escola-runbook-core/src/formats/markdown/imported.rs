//! What an import takes and gives: its options, the runbook file with its
//! warnings, and the source map export writes evidence back by.

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::headings::PhaseLevel;
use crate::formats::runbook_file::RunbookFile;

/// The prefix of the evidence line `export` writes under each item; such
/// quotes are the tool's own output and are not imported as notes.
pub const EVIDENCE_MARK: &str = "run:";

/// The default limit put on imported commands, so a hung command cannot
/// hold the deploy forever; written into the file where it can be changed.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How to import. Serializable, so a run records the options it imported
/// with and a resume imports the document the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportOptions {
    /// The runbook's name when the document has no title heading.
    pub name: Option<String>,
    /// Limit written on every imported command step (default 30 minutes),
    /// so a hung command cannot hold the deploy forever; `None` for none.
    pub command_timeout: Option<Duration>,
    /// Working directory written on every imported command step.
    pub command_cwd: Option<String>,
    /// The heading level of the phases, overriding the inference: headings
    /// at this level or above are phases (except a title above them),
    /// deeper ones sections.
    pub phase_level: Option<PhaseLevel>,
    /// The document's file name without its extension: the name of the one
    /// phase of a document without headings ("Runbook" when `None`).
    /// [`load`](super::load) sets it from the path.
    pub document_name: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            command_timeout: Some(DEFAULT_COMMAND_TIMEOUT),
            command_cwd: None,
            phase_level: None,
            document_name: None,
        }
    }
}

/// Something in the document that was imported with a caveat, or skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    /// 1-based line in the document.
    pub line: usize,
    /// What, and what was done about it.
    pub message: String,
}

impl std::fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Where each step came from in the document: what [`export`](super::export) needs to tick
/// it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMap {
    /// Length of the document imported, in bytes.
    pub source_len: usize,
    /// FNV-1a hash of the document, so a map is never applied to another.
    pub source_hash: u64,
    /// One anchor per step, in document order.
    pub steps: Vec<StepAnchor>,
}

/// One step's place in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAnchor {
    /// The step's id.
    pub step_id: String,
    /// 1-based line of the item.
    pub line: usize,
    /// Bytes of the checkbox, `[` to the first `]`, when the item has one.
    pub checkbox: Option<Range<usize>>,
    /// Where to insert a checkbox when the item has none.
    pub insert_checkbox_at: Option<usize>,
    /// Byte offset of the line after the item's title, where the evidence
    /// line goes.
    pub evidence_at: usize,
    /// Indentation (and quote markers) that keeps the evidence line inside
    /// the item.
    pub prefix: String,
    /// The step is a table row: its evidence line goes after the table
    /// (inside it would cut the table) and names the step.
    pub after_table: bool,
}

impl SourceMap {
    /// The anchor of step `id`.
    pub fn anchor(&self, id: &str) -> Option<&StepAnchor> {
        self.steps.iter().find(|a| a.step_id == id)
    }
}

/// The result of [`import`](super::import()).
#[derive(Debug, Clone)]
pub struct Imported {
    /// The runbook file (write it with [`RunbookFile::to_toml`]).
    pub file: RunbookFile,
    /// Caveats, each with its line.
    pub warnings: Vec<ImportWarning>,
    /// The levels (1 to 6) at which the document has headings, outside
    /// lists and quotes, ascending.
    pub heading_levels: Vec<u8>,
    /// Where each step came from.
    pub source_map: SourceMap,
}

/// FNV-1a, 64 bits: a cheap fingerprint of the document.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
