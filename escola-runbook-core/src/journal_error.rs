//! The one way recording can fail: the journal cannot be written. Plain
//! data, so that the plugin contract ([`Ctx`](crate::Ctx)'s recording
//! methods) can name it without depending on the journal itself.

use std::path::PathBuf;

/// The journal could not be written: the run stops, because a run without
/// its record cannot be trusted or resumed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} the run journal {path}: {source}")]
pub struct JournalWriteError {
    /// The journal file.
    pub path: PathBuf,
    /// What was being done, in words: "create", "open", or "append
    /// step_finished of step `migrate` (passed) to" when a record was lost.
    pub action: String,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}
