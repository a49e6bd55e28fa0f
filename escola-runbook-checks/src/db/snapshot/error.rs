//! Why a snapshot failed, in terms of its data.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use escola_runbook_core::format_duration;

use crate::db::connect::{ConnectError, mask_url};
use crate::db::read_lock::Blocker;

/// Why a snapshot failed. The partial directory has been removed (or, if
/// that failed too, has no manifest and is listed as incomplete).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Connection problem.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// No database named, neither in the URL nor in the options.
    #[error("no database to snapshot: the URL (mysql://.../DB) names none and none was given")]
    NoDatabase,
    /// A named database does not exist.
    #[error("database `{0}` does not exist on the server")]
    UnknownDatabase(String),
    /// A query failed.
    #[error("{during}: {message}")]
    Query {
        /// What was being done.
        during: String,
        /// The server's message.
        message: String,
    },
    /// Filesystem trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Cancelled.
    #[error("the snapshot was cancelled; no snapshot was kept")]
    Cancelled,
    /// The global read lock was not granted in any try: the snapshot was
    /// not taken rather than hold up the server's writes any longer.
    #[error(
        "the global read lock (FLUSH TABLES WITH READ LOCK) on {server} was not granted within {} in {tries} {}, so no snapshot was taken (while it waits, every write on the server waits too); {}; try again when they are done, or allow a longer wait",
        format_duration(*wait),
        if *tries == 1 { "try" } else { "tries" },
        blocked_by(blockers)
    )]
    ReadLockRefused {
        /// host:port.
        server: String,
        /// The wait of each try.
        wait: Duration,
        /// How many tries.
        tries: u32,
        /// The sessions holding it up.
        blockers: Vec<Blocker>,
    },
}

fn blocked_by(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "no session holding it up could be named (a lock held by a replication thread or a server without PROCESS privilege for this user)".into();
    }
    format!(
        "held up by {}",
        blockers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    )
}

pub(super) fn query_err(
    during: impl Into<String>,
) -> impl FnOnce(mysql_async::Error) -> SnapshotError {
    let during = during.into();
    move |e| SnapshotError::Query {
        during,
        message: mask_url(&e.to_string()),
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}
