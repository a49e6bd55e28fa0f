//! MySQL/MariaDB: a native consistent snapshot (zstd SQL files + sha256
//! manifest) with verify, restore and list; and the database checks of the
//! Escola runbook (snapshot, migrations, sync backlog).
//!
//! The connection always comes from a [`Secret`] holding a
//! `mysql://user:pass@host:port/db` URL; nothing here prints it, and every
//! URL shown is masked with [`mask_url`].
//!
//! [`Secret`]: escola_runbook_core::Secret

pub mod checks;
mod connect;
pub mod lock;
pub mod params;
pub mod read_lock;
pub mod restore;
pub mod snapshot;
pub(crate) mod sql;

pub use checks::{DbSnapshotCheck, MigrationsCheck, SyncBacklogCheck};
pub use params::{DEFAULT_SECRET, DbSnapshotParams, MigrationsParams, SyncBacklogParams};
pub use restore::{
    RestoreError, RestoreOptions, RestoreReport, SnapshotListing, SnapshotStatus, VerifyError,
    VerifyReport, list, restore, verify,
};
pub use snapshot::{
    FileEntry, FileKind, Manifest, SnapshotError, SnapshotOptions, SnapshotProgress, create,
};

pub use connect::{
    ConnectError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT,
    DbTarget, DbTimeouts, Session, mask_url,
};
