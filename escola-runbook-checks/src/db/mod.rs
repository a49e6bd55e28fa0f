//! MySQL/MariaDB: a native consistent snapshot (zstd SQL files, optionally
//! age-encrypted, + sha256 manifest with per-table content checksums) with
//! verify, restore, the restore test and list; and the database checks of
//! the Escola runbook (snapshot, snapshot freshness, migrations, sync
//! backlog), and a SELECT's one value as an alert rule's probe ([`scalar`]).
//!
//! The connection always comes from a [`Secret`] holding a
//! `mysql://user:pass@host:port/db` URL; nothing here prints it, and every
//! URL shown is masked with [`mask_url`].
//!
//! [`Secret`]: escola_runbook_core::Secret

pub mod checks;
mod connect;
pub mod crypt;
mod deferred_keys;
pub mod files;
mod load;
mod load_data;
pub mod lock;
pub mod loss;
#[cfg(feature = "s3")]
pub mod offsite;
pub mod params;
pub mod proof;
pub mod prune;
pub mod read_lock;
pub mod restore;
mod restore_error;
pub mod scalar;
pub mod snapshot;
pub(crate) mod sql;
pub mod swap;
pub mod verified;

pub use checks::{
    DbSnapshotCheck, LossEstimateCheck, MigrationsCheck, SnapshotFreshCheck, SyncBacklogCheck,
};
pub use crypt::{CryptError, Identities, Recipient};
pub use files::{LocalDir, SnapshotFiles};
pub use loss::{LossError, LossEstimate, TableLoss, estimate};
pub use params::{
    DEFAULT_SECRET, DbSnapshotParams, LossEstimateParams, MigrationsParams, SnapshotFreshParams,
    SyncBacklogParams,
};
pub use proof::{RestoreTestError, RestoreTestOptions, restore_test, restore_test_files};
pub use prune::{Decision, Matching, PruneError, Retention, RunNeeds, prune};
pub use restore::{
    RestoreError, RestoreOptions, RestoreReport, SnapshotListing, SnapshotStatus, VerifiedFilesFn,
    VerifyError, VerifyReport, check_file, list, read_manifest_in, restore, restore_from, verify,
    verify_files, verify_in,
};
pub use snapshot::{
    FileEntry, FileKind, Manifest, PRUNING, SnapshotError, SnapshotOptions, SnapshotProgress,
    create,
};
pub use swap::{SwapError, SwapOptions, SwapReport, restore_swapped, restore_swapped_from};
pub use verified::{TableProof, VERIFIED, Verified, last_verified};

pub use connect::{
    ConnectError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT,
    DbTarget, DbTimeouts, Session, mask_url,
};
