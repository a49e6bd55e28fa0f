//! The parameters of the database checks, declared once: `db-snapshot`,
//! `migrations-consistent` and `sync-backlog`. Each struct lists the
//! connection parameters itself (serde cannot flatten into a struct that
//! refuses unknown names); their defaults are declared once, here.

use std::path::PathBuf;

use escola_runbook_core::duration::Span;
use escola_runbook_core::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::connect::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, DbTimeouts,
};
use super::read_lock::{DEFAULT_LOCK_TRIES, DEFAULT_LOCK_WAIT};

/// Default secret holding the database URL.
pub const DEFAULT_SECRET: &str = "database_url";
/// Parallel connections of a snapshot, by default.
pub const DEFAULT_THREADS: usize = 4;
/// The tables the Escola runbook names ("`sync_mutations` e `eventos`").
pub const ESCOLA_TABLES: [&str; 2] = ["sync_mutations", "eventos"];
/// The table holding the sync queue, by default.
pub const DEFAULT_BACKLOG_TABLE: &str = "sync_mutations";

fn default_secret() -> String {
    DEFAULT_SECRET.to_owned()
}
fn default_connect() -> Span {
    Span::from(DEFAULT_CONNECT_TIMEOUT)
}
fn default_read() -> Span {
    Span::from(DEFAULT_READ_TIMEOUT)
}
fn default_statement() -> Span {
    Span::from(DEFAULT_STATEMENT_TIMEOUT)
}
fn default_threads() -> usize {
    DEFAULT_THREADS
}
fn default_lock_wait() -> Span {
    Span::from(DEFAULT_LOCK_WAIT)
}
fn default_lock_tries() -> u32 {
    DEFAULT_LOCK_TRIES
}
fn default_tables() -> Vec<String> {
    ESCOLA_TABLES.iter().map(|t| (*t).to_owned()).collect()
}
fn default_backlog_table() -> String {
    DEFAULT_BACKLOG_TABLE.to_owned()
}

/// Writes a consistent zstd+sha256 snapshot of the database; records
/// snapshot.path.
///
/// The parameters of [`DbSnapshotCheck`](super::DbSnapshotCheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbSnapshotParams {
    /// Secret holding the URL mysql://USER:PASSWORD@HOST:PORT/DB.
    #[serde(default = "default_secret")]
    pub secret: String,
    /// Directory that receives the snapshot directory.
    pub out_dir: PathBuf,
    /// Databases to dump (default: the URL's).
    #[serde(default)]
    pub databases: Vec<String>,
    /// Parallel connections (0 counts as 1).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Longest wait to connect and log in (e.g. 10s).
    #[serde(default = "default_connect")]
    pub connect_timeout: Span,
    /// Longest wait for any answer from the server (e.g. 60s).
    #[serde(default = "default_read")]
    pub read_timeout: Span,
    /// Longest wait for the global read lock per try (every write on the
    /// server waits meanwhile).
    #[serde(default = "default_lock_wait")]
    pub lock_wait: Span,
    /// Tries of the global read lock before the snapshot is refused.
    #[serde(default = "default_lock_tries")]
    pub lock_tries: u32,
    /// age recipients (public keys age1...) every file is encrypted to;
    /// none: not encrypted.
    #[serde(default)]
    pub encrypt_to: Vec<String>,
    /// Prove the snapshot: restore it into a scratch database on the same
    /// server and compare every table's rows and content checksum (the
    /// step fails on a mismatch).
    #[serde(default)]
    pub restore_test: bool,
    /// The age identity file the restore test decrypts an encrypted
    /// snapshot with (mode 600).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// Then copy the snapshot off-site to s3://BUCKET/PREFIX (after its
    /// restore test, so the copy carries verified.json); endpoint and
    /// credentials from the AWS_* variables. The step fails if the copy
    /// does; the local snapshot is kept.
    #[serde(default)]
    pub copy_to: Option<String>,
}

impl DbSnapshotParams {
    /// A snapshot into `out_dir` with the defaults.
    pub(super) fn of(out_dir: PathBuf) -> Self {
        DbSnapshotParams {
            secret: default_secret(),
            out_dir,
            databases: Vec::new(),
            threads: default_threads(),
            connect_timeout: default_connect(),
            read_timeout: default_read(),
            lock_wait: default_lock_wait(),
            lock_tries: default_lock_tries(),
            encrypt_to: Vec::new(),
            restore_test: false,
            identity_file: None,
            copy_to: None,
        }
    }

    /// Connect and read limits; a snapshot bounds each answer, not each
    /// statement.
    pub(super) fn timeouts(&self) -> DbTimeouts {
        DbTimeouts {
            connect: self.connect_timeout.get(),
            read: self.read_timeout.get(),
            statement: None,
        }
    }
}

/// The newest snapshot that passed its restore test is recent enough.
///
/// The parameters of [`SnapshotFreshCheck`](super::SnapshotFreshCheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFreshParams {
    /// Directory holding the snapshots.
    pub dir: PathBuf,
    /// Oldest the newest restore-tested snapshot may be (e.g. 26h).
    pub max_age: Span,
}

/// What restoring a snapshot would lose: its age, and per table the rows
/// written since, counted on the live database.
///
/// The parameters of [`LossEstimateCheck`](super::LossEstimateCheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LossEstimateParams {
    /// Secret holding the URL mysql://USER:PASSWORD@HOST:PORT/DB.
    #[serde(default = "default_secret")]
    pub secret: String,
    /// Directory holding the snapshots: the newest complete one is the
    /// one estimated, unless this run's db-snapshot step recorded its own
    /// (snapshot.path).
    pub dir: PathBuf,
    /// Longest wait to connect and log in (e.g. 10s).
    #[serde(default = "default_connect")]
    pub connect_timeout: Span,
    /// Longest wait for any answer from the server (e.g. 60s).
    #[serde(default = "default_read")]
    pub read_timeout: Span,
    /// Longest the server may run one statement (max_statement_time; e.g.
    /// 30s): a count on a huge table is cut there, not waited for.
    #[serde(default = "default_statement")]
    pub statement_timeout: Span,
}

impl LossEstimateParams {
    /// The newest snapshot under `dir`, with the defaults.
    pub(super) fn of(dir: PathBuf) -> Self {
        LossEstimateParams {
            secret: default_secret(),
            dir,
            connect_timeout: default_connect(),
            read_timeout: default_read(),
            statement_timeout: default_statement(),
        }
    }
}

/// Doctrine migrations applied up to a version; sync_mutations and eventos
/// present.
///
/// The parameters of [`MigrationsCheck`](super::MigrationsCheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationsParams {
    /// Secret holding the URL mysql://USER:PASSWORD@HOST:PORT/DB.
    #[serde(default = "default_secret")]
    pub secret: String,
    /// Doctrine version that must be applied (e.g. Version20250101120000).
    #[serde(default)]
    pub expected_version: Option<String>,
    /// Tables that must exist.
    #[serde(default = "default_tables")]
    pub tables: Vec<String>,
    /// Columns that must exist, as table.column.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Directory of Version*.php migration classes, to count pending ones.
    #[serde(default)]
    pub migrations_dir: Option<PathBuf>,
    /// Longest wait to connect and log in (e.g. 10s).
    #[serde(default = "default_connect")]
    pub connect_timeout: Span,
    /// Longest wait for any answer from the server (e.g. 60s).
    #[serde(default = "default_read")]
    pub read_timeout: Span,
    /// Longest the server may run one statement (max_statement_time; e.g.
    /// 30s).
    #[serde(default = "default_statement")]
    pub statement_timeout: Span,
}

impl Default for MigrationsParams {
    fn default() -> Self {
        MigrationsParams {
            secret: default_secret(),
            expected_version: None,
            tables: default_tables(),
            columns: Vec::new(),
            migrations_dir: None,
            connect_timeout: default_connect(),
            read_timeout: default_read(),
            statement_timeout: default_statement(),
        }
    }
}

impl MigrationsParams {
    /// The `columns` as (table, column).
    pub(super) fn columns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.columns.iter().filter_map(|c| c.split_once('.'))
    }
}

/// Pending rows in sync_mutations at most a limit; records sync.backlog.
///
/// The parameters of [`SyncBacklogCheck`](super::SyncBacklogCheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBacklogParams {
    /// Secret holding the URL mysql://USER:PASSWORD@HOST:PORT/DB.
    #[serde(default = "default_secret")]
    pub secret: String,
    /// Table holding the sync queue.
    #[serde(default = "default_backlog_table")]
    pub table: String,
    /// SQL condition selecting pending rows (e.g. processed_at IS NULL).
    pub pending_where: String,
    /// Most pending rows allowed.
    pub max_pending: u64,
    /// Creation-time column, to report the oldest pending row's age.
    #[serde(default)]
    pub age_column: Option<String>,
    /// Oldest pending row allowed (e.g. 10m; whole seconds count); needs
    /// age_column.
    #[serde(default)]
    pub max_age: Option<Span>,
    /// Longest wait to connect and log in (e.g. 10s).
    #[serde(default = "default_connect")]
    pub connect_timeout: Span,
    /// Longest wait for any answer from the server (e.g. 60s).
    #[serde(default = "default_read")]
    pub read_timeout: Span,
    /// Longest the server may run one statement (max_statement_time; e.g.
    /// 30s).
    #[serde(default = "default_statement")]
    pub statement_timeout: Span,
}

impl SyncBacklogParams {
    /// Rows of the default table matching `pending_where`, at most
    /// `max_pending`, with the defaults.
    pub(super) fn of(pending_where: String, max_pending: u64) -> Self {
        SyncBacklogParams {
            secret: default_secret(),
            table: default_backlog_table(),
            pending_where,
            max_pending,
            age_column: None,
            max_age: None,
            connect_timeout: default_connect(),
            read_timeout: default_read(),
            statement_timeout: default_statement(),
        }
    }
}

/// The limits of a check that bounds each statement.
pub(super) fn check_timeouts(connect: Span, read: Span, statement: Span) -> DbTimeouts {
    DbTimeouts {
        connect: connect.get(),
        read: read.get(),
        statement: Some(statement.get()),
    }
}

/// Sets the spans from `t`; a `statement` of `None` keeps `statement`
/// (the checks always bound a statement).
pub(super) fn set_timeouts(
    t: DbTimeouts,
    connect: &mut Span,
    read: &mut Span,
    statement: Option<&mut Span>,
) {
    *connect = Span::from(t.connect);
    *read = Span::from(t.read);
    if let (Some(s), Some(limit)) = (statement, t.statement) {
        *s = Span::from(limit);
    }
}

/// A check's parameters that bound connecting, reading and each statement
/// in three fields of their own (serde cannot flatten a shared struct into
/// one that refuses unknown keys), set from one [`DbTimeouts`].
pub(super) trait StatementLimits {
    /// The connect, read and statement limits.
    fn limits_mut(&mut self) -> [&mut Span; 3];

    /// Sets the limits from `t`; a `statement` of `None` keeps the
    /// statement limit.
    fn set_timeouts(&mut self, t: DbTimeouts) {
        let [connect, read, statement] = self.limits_mut();
        set_timeouts(t, connect, read, Some(statement));
    }
}

/// The structs whose limits are the fields `connect_timeout`,
/// `read_timeout` and `statement_timeout`.
macro_rules! statement_limits {
    ($($params:ty),+) => {$(
        impl StatementLimits for $params {
            fn limits_mut(&mut self) -> [&mut Span; 3] {
                [
                    &mut self.connect_timeout,
                    &mut self.read_timeout,
                    &mut self.statement_timeout,
                ]
            }
        }
    )+};
}

statement_limits!(LossEstimateParams, MigrationsParams, SyncBacklogParams);
