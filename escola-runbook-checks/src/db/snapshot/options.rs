//! What a snapshot is asked to do, and how it reports its progress.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::CancellationToken;

use crate::db::connect::DbTimeouts;
use crate::db::crypt::Recipient;
use crate::db::read_lock::{DEFAULT_LOCK_TRIES, DEFAULT_LOCK_WAIT};

/// Progress of a running snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotProgress {
    /// Data files finished.
    pub files_done: u64,
    /// Data files planned.
    pub files_total: u64,
    /// Rows written so far.
    pub rows: u64,
    /// SQL bytes produced so far (before compression).
    pub sql_bytes: u64,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&SnapshotProgress) + Send + Sync>;

/// How to take a snapshot.
#[derive(Clone)]
pub struct SnapshotOptions {
    /// Parent directory; the snapshot becomes a subdirectory.
    pub out_dir: PathBuf,
    /// Databases to dump; empty means the one named in the URL.
    pub databases: Vec<String>,
    /// Parallel connections.
    pub threads: usize,
    /// Tables with more (estimated) rows and a single integer primary key
    /// are split into ranges of about this many rows.
    pub chunk_rows: u64,
    /// Target size of one INSERT statement (a bigger row makes a bigger one).
    pub statement_bytes: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// age recipients every file is encrypted to; none: not encrypted.
    pub encrypt_to: Vec<Recipient>,
    /// How long each try of the global read lock waits. While the lock is
    /// pending every write on the server waits behind it, so keep it short.
    pub lock_wait_timeout: Duration,
    /// How many times to try the global read lock before refusing.
    pub lock_tries: u32,
    /// Connect and read timeouts for every session of the snapshot.
    pub timeouts: DbTimeouts,
    /// Stops the snapshot (the partial output is removed).
    pub cancel: CancellationToken,
    /// Called as data is written.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for SnapshotOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotOptions")
            .field("out_dir", &self.out_dir)
            .field("databases", &self.databases)
            .field("threads", &self.threads)
            .field("chunk_rows", &self.chunk_rows)
            .field("encrypt_to", &self.encrypt_to)
            .finish_non_exhaustive()
    }
}

impl SnapshotOptions {
    /// Defaults: 4 threads, 500 000-row chunks, 1 MiB statements, zstd 3,
    /// 3 tries of 2 s for the global read lock, [`DbTimeouts::SNAPSHOT`].
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        SnapshotOptions {
            out_dir: out_dir.into(),
            databases: Vec::new(),
            threads: crate::db::params::DEFAULT_THREADS,
            chunk_rows: 500_000,
            statement_bytes: 1 << 20,
            zstd_level: 3,
            encrypt_to: Vec::new(),
            lock_wait_timeout: DEFAULT_LOCK_WAIT,
            lock_tries: DEFAULT_LOCK_TRIES,
            timeouts: DbTimeouts::SNAPSHOT,
            cancel: CancellationToken::new(),
            progress: None,
        }
    }
}
