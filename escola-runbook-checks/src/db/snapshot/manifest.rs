//! The manifest: what a snapshot says about itself (every file with its
//! sha256, the point in time and its limits), and the pure rules that fill
//! it from what was dumped.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use escola_runbook_core::format_millis;
use serde::{Deserialize, Serialize};

/// The manifest's format identifier; restore refuses others.
pub const FORMAT: &str = "escola-runbook-snapshot/1";

/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "manifest.json";

/// The marker a prune writes into a snapshot before deleting its manifest:
/// a snapshot with it and without a manifest is one whose deletion was
/// begun (`SnapshotStatus::BeingDeleted`), not one being written.
pub const PRUNING: &str = "pruning";

/// What the snapshot of a server says about itself: enough to verify every
/// file without a server and to restore in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The tool and version that wrote it.
    pub tool: String,
    /// host:port of the server (no credentials).
    pub server: String,
    /// `SELECT VERSION()`.
    pub server_version: String,
    /// When the snapshot started.
    pub started_at: DateTime<Utc>,
    /// When the last file was complete.
    pub finished_at: DateTime<Utc>,
    /// How the point in time was obtained, and its limits.
    pub consistency: Consistency,
    /// Who can decrypt the files, when they are encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Binary log position at the snapshot's point in time, when binlog is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<BinlogPosition>,
    /// GTID position at the snapshot's point in time, where available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// What was dumped.
    pub databases: Vec<DatabaseEntry>,
    /// Every file, in restore order.
    pub files: Vec<FileEntry>,
    /// Rows in all data files.
    pub total_rows: u64,
    /// Compressed bytes of all files.
    pub total_bytes: u64,
    /// How to restore with the stock client.
    pub restore_with: String,
}

/// The name of the encryption every file of an encrypted snapshot has.
pub const AGE_X25519: &str = "age X25519";

/// How an encrypted snapshot's files are encrypted: each one an age file
/// (of its zstd stream) to the same recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// [`AGE_X25519`].
    pub scheme: String,
    /// The recipients' public keys (`age1...`); never an identity.
    pub recipients: Vec<String>,
}

impl Manifest {
    /// The recipients of an encrypted snapshot; empty when not encrypted.
    pub fn recipients(&self) -> &[String] {
        self.encryption
            .as_ref()
            .map_or(&[], |e| e.recipients.as_slice())
    }
}

/// How the snapshot's point in time was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    /// `global read lock + consistent snapshot` or `consistent snapshot only`.
    pub method: String,
    /// How long the global read lock was held (writes blocked), from the
    /// moment it was granted until it was released, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_read_lock_ms: Option<u64>,
    /// How long it took to be granted (tries and pauses), in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_read_lock_wait_ms: Option<u64>,
    /// `db.table` of non-transactional tables (MyISAM, Aria, MEMORY...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_transactional_tables: Vec<String>,
    /// What the method does not guarantee.
    pub caveat: String,
}

impl Consistency {
    /// How long the global read lock was held and waited for, in words
    /// ("held 35ms, granted after 2ms"); `None` without the lock.
    pub fn global_read_lock(&self) -> Option<String> {
        let held = format!("held {}", format_millis(self.global_read_lock_ms?));
        Some(match self.global_read_lock_wait_ms {
            Some(w) => format!("{held}, granted after {}", format_millis(w)),
            None => held,
        })
    }
}

/// A binlog coordinate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file name.
    pub file: String,
    /// Offset in it.
    pub position: u64,
}

/// One database of the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    /// Its name on the source server.
    pub name: String,
    /// Default character set.
    pub charset: String,
    /// Default collation.
    pub collation: String,
    /// Base tables (and sequences).
    pub tables: Vec<TableEntry>,
    /// Views.
    pub views: Vec<String>,
    /// Stored procedures and functions.
    pub routines: Vec<String>,
    /// Triggers.
    pub triggers: Vec<String>,
    /// Events.
    pub events: Vec<String>,
}

/// One table of the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Name.
    pub name: String,
    /// Storage engine.
    pub engine: String,
    /// Rows dumped.
    pub rows: u64,
    /// The rows' content checksum as dumped (see [`ContentDigest`]); a
    /// restore test recomputes it from the restored rows.
    ///
    /// [`ContentDigest`]: super::ContentDigest
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_checksum: Option<String>,
    /// Generated columns, recomputed by the server on restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated_columns: Vec<String>,
    /// Columns whose largest value at the snapshot's point in time tells,
    /// later, how many rows were written since: what a restore would lose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watermarks: Vec<Watermark>,
}

/// A column that grows with writes, and its largest value at the
/// snapshot's point in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The column.
    pub column: String,
    /// What a larger value means.
    pub kind: WatermarkKind,
    /// `MAX(column)` as the server writes it; absent for an empty table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

/// What rows past a [`Watermark`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatermarkKind {
    /// An `AUTO_INCREMENT` column: larger values are rows inserted since.
    Inserted,
    /// A timestamp `ON UPDATE CURRENT_TIMESTAMP`: larger values are rows
    /// inserted or updated since.
    Updated,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// CREATE TABLE statements.
    Schema,
    /// INSERT statements of one table (or one primary-key range of it).
    Data,
    /// Routines, views, triggers, events: after the data, so triggers do
    /// not fire during the restore.
    PostData,
}

/// One file of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the snapshot directory.
    pub name: String,
    /// What it holds.
    pub kind: FileKind,
    /// Source database.
    pub database: String,
    /// Table, for data files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Chunk number within the table, for tables split by primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
    /// Rows in the file.
    pub rows: u64,
    /// Compressed size.
    pub bytes: u64,
    /// SQL size before compression.
    pub sql_bytes: u64,
    /// sha256 of the file as it is on disk (compressed; for an encrypted
    /// snapshot, the ciphertext), lower-case hex.
    pub sha256: String,
    /// For an encrypted file, sha256 of its plaintext: the zstd stream
    /// that `age -d` gives back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_sha256: Option<String>,
}

/// The global read lock as held: how long writes were blocked, and how
/// long it took to be granted, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LockHeld {
    pub(super) held_ms: u64,
    pub(super) waited_ms: u64,
}

/// How the point in time was obtained: with the global read lock (`lock`)
/// or without it, and what that guarantees.
pub(super) fn consistency(
    lock: Option<LockHeld>,
    non_transactional_tables: Vec<String>,
) -> Consistency {
    match lock {
        Some(lock) => Consistency {
            method: "global read lock + consistent snapshot".into(),
            global_read_lock_ms: Some(lock.held_ms),
            global_read_lock_wait_ms: Some(lock.waited_ms),
            caveat: if non_transactional_tables.is_empty() {
                "every table is transactional; all tables are from one point in time".into()
            } else {
                "non-transactional tables were dumped while the global read lock blocked writes (see global_read_lock_ms); all tables are from one point in time".into()
            },
            non_transactional_tables,
        },
        None => Consistency {
            method: "consistent snapshot only (no RELOAD privilege for FLUSH TABLES WITH READ LOCK)".into(),
            global_read_lock_ms: None,
            global_read_lock_wait_ms: None,
            caveat: "transactional (InnoDB) tables come from snapshots started within moments of each other on each worker, not provably one instant; non-transactional tables (MyISAM, Aria, MEMORY) may have changed while they were read; the binlog position is approximate".into(),
            non_transactional_tables,
        },
    }
}

/// Rows per table in `manifest`, as `db.table -> rows`.
pub fn row_counts(manifest: &Manifest) -> BTreeMap<String, u64> {
    manifest
        .databases
        .iter()
        .flat_map(|d| {
            d.tables
                .iter()
                .map(move |t| (format!("{}.{}", d.name, t.name), t.rows))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::snapshot::plan::tests::table;
    use crate::db::snapshot::plan::{fill_tables, non_transactional};

    pub(crate) fn file(kind: FileKind, table: Option<&str>, rows: u64) -> FileEntry {
        FileEntry {
            name: format!("{kind:?}-{table:?}"),
            kind,
            database: "escola".into(),
            table: table.map(str::to_owned),
            chunk: None,
            rows,
            bytes: 100,
            sql_bytes: 300,
            sha256: "ab".repeat(32),
            plaintext_sha256: None,
        }
    }

    pub(crate) fn database(name: &str) -> DatabaseEntry {
        DatabaseEntry {
            name: name.into(),
            charset: "utf8mb4".into(),
            collation: "utf8mb4_general_ci".into(),
            tables: Vec::new(),
            views: Vec::new(),
            routines: Vec::new(),
            triggers: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn table_rows_add_up_their_data_files_and_name_generated_columns() {
        let tables = [
            Arc::new(table("escola", "eventos", "InnoDB", 10)),
            Arc::new(table("outra", "eventos", "InnoDB", 10)),
        ];
        let files = [
            file(FileKind::Schema, None, 0),
            file(FileKind::Data, Some("eventos"), 7),
            file(FileKind::Data, Some("eventos"), 5),
        ];
        let mut dbs = [database("escola")];
        let checksums = BTreeMap::from([(("escola".into(), "eventos".into()), "cafe".into())]);
        let mark = Watermark {
            column: "id".into(),
            kind: WatermarkKind::Inserted,
            max: Some("12".into()),
        };
        let watermarks =
            BTreeMap::from([(("escola".into(), "eventos".into()), vec![mark.clone()])]);
        fill_tables(&mut dbs, &tables, &files, &checksums, &watermarks, "0");
        assert_eq!(
            dbs[0].tables,
            [TableEntry {
                name: "eventos".into(),
                engine: "InnoDB".into(),
                rows: 12,
                content_checksum: Some("cafe".into()),
                generated_columns: vec!["total".into()],
                watermarks: vec![mark],
            }]
        );
    }

    #[test]
    fn consistency_says_what_the_point_in_time_guarantees() {
        let tables = [
            Arc::new(table("escola", "eventos", "InnoDB", 1)),
            Arc::new(table("escola", "cache", "MyISAM", 1)),
        ];
        let non_tx = non_transactional(&tables);
        assert_eq!(non_tx, ["escola.cache"]);
        let locked = consistency(
            Some(LockHeld {
                held_ms: 35,
                waited_ms: 2,
            }),
            non_tx.clone(),
        );
        assert_eq!(locked.method, "global read lock + consistent snapshot");
        assert_eq!(
            locked.global_read_lock().as_deref(),
            Some("held 35ms, granted after 2ms")
        );
        assert!(
            locked
                .caveat
                .contains("while the global read lock blocked writes")
        );
        let all_tx = consistency(
            Some(LockHeld {
                held_ms: 1,
                waited_ms: 0,
            }),
            Vec::new(),
        );
        assert!(all_tx.caveat.starts_with("every table is transactional"));
        let unlocked = consistency(None, non_tx);
        assert!(unlocked.method.starts_with("consistent snapshot only"));
        assert_eq!(unlocked.global_read_lock(), None);
    }
}
