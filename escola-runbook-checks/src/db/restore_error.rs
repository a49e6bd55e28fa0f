//! Why verifying or restoring a snapshot fails: shared by `restore` (the
//! whole restore) and `load` (loading one file), which both return them.

use std::io;
use std::path::PathBuf;

use super::connect::ConnectError;
use super::crypt::CryptError;

/// Why a snapshot is not intact.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No manifest: the snapshot is incomplete (interrupted) or not a snapshot.
    #[error(
        "{0}: no manifest.json; this snapshot is incomplete (interrupted) or not a snapshot directory"
    )]
    NoManifest(PathBuf),
    /// The manifest cannot be read.
    #[error("{path}: the manifest is not valid: {message}")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An encrypted file cannot be decrypted with the identity given.
    #[error(transparent)]
    Crypt(#[from] CryptError),
    /// A file's content differs from the manifest.
    #[error(
        "{path}: {what} is {actual}, the manifest says {expected}; the file is corrupted, do not restore from it"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// "sha256", "size" or "plaintext sha256".
        what: &'static str,
        /// The manifest's value.
        expected: String,
        /// The file's value.
        actual: String,
    },
}

/// Why a restore failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot is not intact; nothing was written.
    #[error("refusing to restore: {0}")]
    Verify(#[from] VerifyError),
    /// Connection problem.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The snapshot is encrypted and no identity was given; nothing was
    /// written.
    #[error(
        "{}: the snapshot is encrypted (to {recipients}); give the age identity file of one of its recipients",
        dir.display()
    )]
    NeedsIdentity {
        /// The snapshot.
        dir: PathBuf,
        /// Its recipients, comma-separated.
        recipients: String,
    },
    /// The identity does not decrypt the snapshot (or a file does not
    /// decrypt); checked before anything is written.
    #[error(transparent)]
    Crypt(#[from] CryptError),
    /// The snapshot holds several databases and none was chosen.
    #[error("the snapshot holds databases {available}; choose one to restore (source database)")]
    ChooseSource {
        /// Names, comma-separated.
        available: String,
    },
    /// The chosen source database is not in the snapshot.
    #[error("database `{name}` is not in the snapshot (it holds {available})")]
    UnknownSource {
        /// Asked for.
        name: String,
        /// Names, comma-separated.
        available: String,
    },
    /// The target holds objects and force was not given.
    #[error(
        "target database `{target}` is not empty ({objects} tables, views or routines); restore into a new database, or force to drop and recreate it"
    )]
    TargetNotEmpty {
        /// Target name.
        target: String,
        /// Objects found.
        objects: u64,
    },
    /// A statement failed; the target is partially restored.
    #[error(
        "{file}, statement {statement}: {message}; the target database is partially restored, drop it before retrying"
    )]
    Statement {
        /// File name.
        file: String,
        /// 1-based statement number in the file.
        statement: u64,
        /// Server message.
        message: String,
    },
    /// A query around the restore failed.
    #[error("{during}: {message}")]
    Query {
        /// What was being done.
        during: String,
        /// Server message.
        message: String,
    },
    /// A file could not be read or decompressed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Cancelled between statements.
    #[error("the restore was cancelled; the target database is partially restored")]
    Cancelled,
}
