//! The record of a snapshot's last restore test, `verified.json` beside
//! its manifest: written by the restore test, read by `list` and the
//! freshness check.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::snapshot::{ContentDigest, DatabaseEntry};

/// The file, beside the manifest, that records the last restore test.
pub const VERIFIED: &str = "verified.json";

/// One table as the manifest has it and as it was restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProof {
    /// `db.table` in the snapshot.
    pub table: String,
    /// Rows the manifest records.
    pub expected_rows: u64,
    /// Rows restored.
    pub restored_rows: u64,
    /// The content checksum the manifest records (none in snapshots taken
    /// before checksums were recorded: rows are compared alone).
    pub expected_checksum: Option<String>,
    /// The content checksum of the restored rows.
    pub restored_checksum: String,
}

impl TableProof {
    /// Each table of `db` as the manifest has it, against the digests of
    /// its restored copy (a table missing there restored nothing): what
    /// the restore test and a swapped restore both prove.
    pub(crate) fn of_database(
        db: &DatabaseEntry,
        restored: &BTreeMap<String, ContentDigest>,
    ) -> Vec<TableProof> {
        db.tables
            .iter()
            .map(|t| {
                let got = restored.get(&t.name).copied().unwrap_or_default();
                TableProof {
                    table: format!("{}.{}", db.name, t.name),
                    expected_rows: t.rows,
                    restored_rows: got.rows(),
                    expected_checksum: t.content_checksum.clone(),
                    restored_checksum: got.checksum(),
                }
            })
            .collect()
    }

    /// Same rows and, where recorded, the same checksum.
    pub fn matches(&self) -> bool {
        self.expected_rows == self.restored_rows
            && self
                .expected_checksum
                .as_ref()
                .is_none_or(|c| c == &self.restored_checksum)
    }
}

/// The last restore test of a snapshot, as `verified.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    /// When the test finished.
    pub verified_at: DateTime<Utc>,
    /// Every table matched.
    pub passed: bool,
    /// host:port of the server restored on (no credentials).
    pub server: String,
    /// sha256 of the manifest tested.
    pub manifest_sha256: String,
    /// How long the test took, in ms (whole, so the record reads back
    /// equal).
    pub elapsed_ms: u64,
    /// Every table compared.
    pub tables: Vec<TableProof>,
    /// Why the snapshot did not restore (the file and statement that
    /// failed; never the server's message, which may quote the data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_failed: Option<String>,
}

impl Verified {
    /// The tables that did not match.
    pub fn mismatches(&self) -> impl Iterator<Item = &TableProof> {
        self.tables.iter().filter(|t| !t.matches())
    }
}

/// Writes `verified.json` into `dir` atomically (temp file, fsync, rename).
pub(crate) fn record(dir: &Path, verified: &Verified) -> Result<(), RecordError> {
    let path = dir.join(VERIFIED);
    let tmp = dir.join(format!(".{VERIFIED}.tmp"));
    let io = |source| RecordError {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec_pretty(verified).map_err(|e| io(io::Error::other(e)))?;
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)
}

/// The last restore test recorded in the snapshot `dir`, if any (an
/// unreadable record counts as none).
pub fn last_verified(dir: &Path) -> Option<Verified> {
    let bytes = fs::read(dir.join(VERIFIED)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `verified.json` could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct RecordError {
    /// The file (or, for a remote snapshot, its URL).
    pub path: PathBuf,
    /// The error.
    pub source: io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_matches_on_rows_and_recorded_checksum() {
        let mut t = TableProof {
            table: "escola.eventos".into(),
            expected_rows: 2,
            restored_rows: 2,
            expected_checksum: Some("ab".into()),
            restored_checksum: "ab".into(),
        };
        assert!(t.matches());
        t.restored_checksum = "cd".into();
        assert!(!t.matches());
        t.expected_checksum = None;
        assert!(t.matches(), "rows alone without a recorded checksum");
        t.restored_rows = 3;
        assert!(!t.matches());
    }
}
