//! A consistent, streaming, parallel snapshot of MySQL/MariaDB databases as
//! zstd-compressed SQL files with a sha256 manifest.
//!
//! Consistency: one control connection takes `FLUSH TABLES WITH READ LOCK`;
//! while it is held every worker connection starts `START TRANSACTION WITH
//! CONSISTENT SNAPSHOT`, the binlog/GTID position is read, the schema is
//! read, and the non-transactional tables (MyISAM, Aria, MEMORY...) are
//! dumped; then the lock is released and the transactional tables (InnoDB)
//! are dumped from the shared point in time. Without the RELOAD privilege
//! the lock is skipped: InnoDB tables stay consistent with each other (each
//! worker's snapshot starts within milliseconds, but not provably at the same
//! instant) and the manifest says so.
//!
//! Files are written to `.NAME.partial/` and renamed to `NAME/` only once the
//! manifest is written and everything is fsynced: an interrupted snapshot
//! never looks complete.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use escola_runbook_core::{CancellationToken, Secret, format_duration};
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::read_lock::{self, Attempt, Blocker, DEFAULT_LOCK_TRIES, DEFAULT_LOCK_WAIT};
use super::sql::{self, ColumnKind, ident, quote_text};
use super::{ConnectError, DbTarget, DbTimeouts, Session, mask_url};

/// The manifest's format identifier; restore refuses others.
pub const FORMAT: &str = "escola-runbook-snapshot/1";

/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "manifest.json";

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
        let ms = |n: u64| format_duration(Duration::from_millis(n));
        let held = format!("held {}", ms(self.global_read_lock_ms?));
        Some(match self.global_read_lock_wait_ms {
            Some(w) => format!("{held}, granted after {}", ms(w)),
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
    /// Generated columns, recomputed by the server on restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated_columns: Vec<String>,
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
    /// sha256 of the compressed file, lower-case hex.
    pub sha256: String,
}

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
            threads: 4,
            chunk_rows: 500_000,
            statement_bytes: 1 << 20,
            zstd_level: 3,
            lock_wait_timeout: DEFAULT_LOCK_WAIT,
            lock_tries: DEFAULT_LOCK_TRIES,
            timeouts: DbTimeouts::SNAPSHOT,
            cancel: CancellationToken::new(),
            progress: None,
        }
    }
}

/// Why a snapshot failed. The partial directory has been removed (or, if
/// that failed too, has no manifest and is listed as incomplete).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Connection problem.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// No database named, neither in the URL nor in the options.
    #[error("no database to snapshot: name one in the URL (mysql://.../DB) or with --database")]
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

fn query_err(during: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> SnapshotError {
    let during = during.into();
    move |e| SnapshotError::Query {
        during,
        message: mask_url(&e.to_string()),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

fn get<T: mysql_async::prelude::FromValue>(
    row: &Row,
    i: usize,
    during: &str,
) -> Result<T, SnapshotError> {
    match row.get_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(SnapshotError::Query {
            during: during.into(),
            message: format!("unexpected value in column {i}: {e}"),
        }),
        None => Err(SnapshotError::Query {
            during: during.into(),
            message: format!("the result has no column {i}"),
        }),
    }
}

fn opt_string(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: ColumnKind,
    generated: bool,
    integer: bool,
}

#[derive(Debug, Clone)]
struct Table {
    db: String,
    name: String,
    engine: String,
    transactional: bool,
    estimated_rows: u64,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    sequence: bool,
}

#[derive(Debug, Clone)]
struct WorkItem {
    index: usize,
    table: Arc<Table>,
    range: Option<(Value, Value)>,
    chunk: Option<u32>,
    file: String,
}

/// Takes a snapshot of `opts.databases` (or the URL's database) into a new
/// directory under `opts.out_dir`, and returns its path and manifest.
pub async fn create(
    url: &Secret,
    opts: &SnapshotOptions,
) -> Result<(PathBuf, Manifest), SnapshotError> {
    let target = DbTarget::from_secret(url)?;
    let databases: Vec<String> = if opts.databases.is_empty() {
        target
            .database()
            .map(|d| vec![d.to_owned()])
            .ok_or(SnapshotError::NoDatabase)?
    } else {
        opts.databases.clone()
    };
    let server = target.with_database(None).with_timeouts(opts.timeouts);
    let started_at = Utc::now();

    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&opts.out_dir)
        .map_err(io_err(&opts.out_dir))?;
    let name = snapshot_name(&opts.out_dir, &databases[0], started_at);
    let final_dir = opts.out_dir.join(&name);
    let partial = opts.out_dir.join(format!(".{name}.partial"));
    DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(io_err(&partial))?;

    // Removes the partial directory on every way out but success, including
    // the future being dropped (a step timeout, Ctrl-C in the executor).
    let mut guard = PartialDir(Some(partial.clone()));
    // A stop ends the snapshot at once, whatever the server is doing.
    let manifest = tokio::select! {
        biased;
        () = opts.cancel.cancelled() => Err(SnapshotError::Cancelled),
        taken = take(&server, &databases, opts, &partial, started_at) => taken,
    }?;
    let finished = finish(&partial, &final_dir, &opts.out_dir, &manifest);
    if finished.is_ok() {
        guard.0 = None;
    }
    finished.map(|()| (final_dir, manifest))
}

struct PartialDir(Option<PathBuf>);

impl Drop for PartialDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            // A worker being stopped may still create a file as the
            // directory is emptied: try again rather than leave it.
            for _ in 0..3 {
                if fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn snapshot_name(out: &Path, db: &str, at: DateTime<Utc>) -> String {
    let base = format!("{}-{}", sanitize(db), at.format("%Y%m%dT%H%M%SZ"));
    let mut name = base.clone();
    let mut n = 2;
    while out.join(&name).exists() || out.join(format!(".{name}.partial")).exists() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

fn finish(
    partial: &Path,
    final_dir: &Path,
    out: &Path,
    manifest: &Manifest,
) -> Result<(), SnapshotError> {
    let path = partial.join(MANIFEST);
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| SnapshotError::Io {
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(&json).map_err(io_err(&path))?;
    file.sync_all().map_err(io_err(&path))?;
    File::open(partial)
        .and_then(|d| d.sync_all())
        .map_err(io_err(partial))?;
    fs::rename(partial, final_dir).map_err(io_err(final_dir))?;
    File::open(out)
        .and_then(|d| d.sync_all())
        .map_err(io_err(out))?;
    Ok(())
}

const SESSION_SETUP: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET SESSION net_write_timeout = 3600",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
];

async fn take(
    server: &DbTarget,
    databases: &[String],
    opts: &SnapshotOptions,
    dir: &Path,
    started_at: DateTime<Utc>,
) -> Result<Manifest, SnapshotError> {
    let mut control = server.connect().await?;
    for stmt in SESSION_SETUP {
        control
            .query_drop(*stmt)
            .await
            .map_err(query_err("preparing the session"))?;
    }
    let server_version: String = control
        .query_first("SELECT VERSION()")
        .await
        .map_err(query_err("reading the server version"))?
        .unwrap_or_default();

    let mut db_meta = Vec::new();
    let mut tables = Vec::new();
    for db in databases {
        let row: Option<(String, String)> = control
            .exec_first(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db.as_str(),),
            )
            .await
            .map_err(query_err(format!("looking up database `{db}`")))?;
        let (charset, collation) = row.ok_or_else(|| SnapshotError::UnknownDatabase(db.clone()))?;
        db_meta.push((db.clone(), charset, collation));
        tables.extend(read_tables(&mut control, db).await?);
    }

    let threads = opts.threads.max(1);
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let mut conn = server.connect().await?;
        for stmt in SESSION_SETUP {
            conn.query_drop(*stmt)
                .await
                .map_err(query_err("preparing a worker session"))?;
        }
        // Raw column bytes: latin1 text must reach the file unconverted.
        conn.query_drop("SET character_set_results = NULL")
            .await
            .map_err(query_err("preparing a worker session"))?;
        workers.push(conn);
    }

    // The point in time.
    let ours: Vec<u32> = std::iter::once(control.id())
        .chain(workers.iter().map(Session::id))
        .collect();
    let (killer, _) = workers
        .split_first_mut()
        .ok_or_else(|| SnapshotError::Query {
            during: "opening the worker sessions".into(),
            message: "no worker session".into(),
        })?;
    let lock = match read_lock::take(
        &mut control,
        killer,
        opts.lock_wait_timeout,
        opts.lock_tries,
        &ours,
    )
    .await
    .map_err(query_err(
        "taking the global read lock (FLUSH TABLES WITH READ LOCK)",
    ))? {
        Attempt::Granted(granted) => Some(granted),
        Attempt::NoPrivilege => None,
        Attempt::Refused { blockers } => {
            return Err(SnapshotError::ReadLockRefused {
                server: server.server(),
                wait: opts.lock_wait_timeout,
                tries: opts.lock_tries.max(1),
                blockers,
            });
        }
    };
    let locked = lock.is_some();
    for conn in &mut workers {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(query_err("starting the consistent snapshot"))?;
    }
    let (binlog, gtid) = binlog_position(&mut control).await;

    // Schema, under the lock so that it matches the data.
    let mut files: Vec<Option<FileEntry>> = Vec::new();
    let mut manifest_dbs = Vec::new();
    let mut post = Vec::new();
    for (db, charset, collation) in &db_meta {
        control
            .query_drop(format!("USE {}", ident(db)))
            .await
            .map_err(query_err(format!("switching to `{db}`")))?;
        let db_tables: Vec<&Table> = tables.iter().filter(|t| &t.db == db).collect();
        let mut text = header(db, "tables");
        for t in &db_tables {
            let create = show_create(&mut control, "TABLE", &t.name, 1).await?;
            text.push_str(&format!(
                "DROP TABLE IF EXISTS {};\n{create};\n\n",
                ident(&t.name)
            ));
        }
        files.push(Some(
            write_text(
                dir,
                &format!("{:04}-{}.schema.sql.zst", files.len(), sanitize(db)),
                &text,
                opts.zstd_level,
            )
            .await?
            .entry(FileKind::Schema, db, None, None),
        ));
        let objects = read_objects(&mut control, db).await?;
        post.push((db.clone(), objects.text.clone()));
        manifest_dbs.push(DatabaseEntry {
            name: db.clone(),
            charset: charset.clone(),
            collation: collation.clone(),
            tables: Vec::new(),
            views: objects.views,
            routines: objects.routines,
            triggers: objects.triggers,
            events: objects.events,
        });
    }

    // Plan data files; ranges are read inside the snapshot.
    let tables: Vec<Arc<Table>> = tables.into_iter().map(Arc::new).collect();
    let mut items = Vec::new();
    for t in &tables {
        if t.sequence {
            continue;
        }
        let ranges = match &workers[0] {
            _ if t.estimated_rows > opts.chunk_rows && t.primary_key.len() == 1 => {
                pk_ranges(&mut workers[0], t, opts.chunk_rows).await?
            }
            _ => Vec::new(),
        };
        let base = files.len() + items.len();
        if ranges.is_empty() {
            items.push(WorkItem {
                index: base,
                table: Arc::clone(t),
                range: None,
                chunk: None,
                file: format!(
                    "{base:04}-{}.{}.sql.zst",
                    sanitize(&t.db),
                    sanitize(&t.name)
                ),
            });
        } else {
            for (n, r) in ranges.into_iter().enumerate() {
                let index = files.len() + items.len();
                items.push(WorkItem {
                    index,
                    table: Arc::clone(t),
                    range: Some(r),
                    chunk: Some(n as u32),
                    file: format!(
                        "{index:04}-{}.{}.{n:04}.sql.zst",
                        sanitize(&t.db),
                        sanitize(&t.name)
                    ),
                });
            }
        }
    }
    files.resize(files.len() + items.len(), None);

    let shared = Arc::new(Shared {
        dir: dir.to_owned(),
        statement_bytes: opts.statement_bytes.max(1024),
        zstd_level: opts.zstd_level,
        cancel: opts.cancel.child_token(),
        progress: opts.progress.clone(),
        files_total: items.len() as u64,
        files_done: AtomicU64::new(0),
        rows: AtomicU64::new(0),
        sql_bytes: AtomicU64::new(0),
        queue: Mutex::new(VecDeque::new()),
    });
    let (non_tx, tx): (Vec<WorkItem>, Vec<WorkItem>) =
        items.into_iter().partition(|i| !i.table.transactional);
    let non_transactional_tables: Vec<String> = tables
        .iter()
        .filter(|t| !t.transactional && !t.sequence)
        .map(|t| format!("{}.{}", t.db, t.name))
        .collect();

    // Non-transactional tables while writes are blocked, then release.
    let (workers, done) = run_items(workers, non_tx, &shared).await?;
    place(&mut files, done);
    let held_ms = lock.map(|l| l.at.elapsed().as_millis() as u64);
    if locked {
        control
            .query_drop("UNLOCK TABLES")
            .await
            .map_err(query_err("releasing the global read lock"))?;
    }
    let (workers, done) = run_items(workers, tx, &shared).await?;
    place(&mut files, done);
    for mut conn in workers {
        let _ = conn.query_drop("COMMIT").await;
        conn.disconnect().await;
    }

    for (db, text) in post {
        let index = files.len();
        files.push(Some(
            write_text(
                dir,
                &format!("{index:04}-{}.post.sql.zst", sanitize(&db)),
                &text,
                opts.zstd_level,
            )
            .await?
            .entry(FileKind::PostData, &db, None, None),
        ));
    }
    control.disconnect().await;

    let files: Vec<FileEntry> = files.into_iter().flatten().collect();
    for entry in &mut manifest_dbs {
        for t in tables.iter().filter(|t| t.db == entry.name) {
            let rows = files
                .iter()
                .filter(|f| {
                    f.kind == FileKind::Data
                        && f.database == t.db
                        && f.table.as_deref() == Some(&t.name)
                })
                .map(|f| f.rows)
                .sum();
            entry.tables.push(TableEntry {
                name: t.name.clone(),
                engine: t.engine.clone(),
                rows,
                generated_columns: t
                    .columns
                    .iter()
                    .filter(|c| c.generated)
                    .map(|c| c.name.clone())
                    .collect(),
            });
        }
    }
    let consistency = if locked {
        Consistency {
            method: "global read lock + consistent snapshot".into(),
            global_read_lock_ms: held_ms,
            global_read_lock_wait_ms: lock.map(|l| l.waited.as_millis() as u64),
            caveat: if non_transactional_tables.is_empty() {
                "every table is transactional; all tables are from one point in time".into()
            } else {
                "non-transactional tables were dumped while the global read lock blocked writes (see global_read_lock_ms); all tables are from one point in time".into()
            },
            non_transactional_tables,
        }
    } else {
        Consistency {
            method: "consistent snapshot only (no RELOAD privilege for FLUSH TABLES WITH READ LOCK)".into(),
            global_read_lock_ms: None,
            global_read_lock_wait_ms: None,
            caveat: "transactional (InnoDB) tables come from snapshots started within moments of each other on each worker, not provably one instant; non-transactional tables (MyISAM, Aria, MEMORY) may have changed while they were read; the binlog position is approximate".into(),
            non_transactional_tables,
        }
    };
    Ok(Manifest {
        format: FORMAT.into(),
        tool: format!("escola-runbook {}", env!("CARGO_PKG_VERSION")),
        server: server.display().trim_end_matches('/').to_owned(),
        server_version,
        started_at,
        finished_at: Utc::now(),
        consistency,
        binlog,
        gtid,
        total_rows: files.iter().map(|f| f.rows).sum(),
        total_bytes: files.iter().map(|f| f.bytes).sum(),
        restore_with: "mariadb -e 'CREATE DATABASE target'; then, for one source database, in manifest order: zstd -dc FILE... | mariadb target".into(),
        databases: manifest_dbs,
        files,
    })
}

fn place(files: &mut [Option<FileEntry>], done: Vec<(usize, FileEntry)>) {
    for (i, f) in done {
        if let Some(slot) = files.get_mut(i) {
            *slot = Some(f);
        }
    }
}

fn header(db: &str, what: &str) -> String {
    format!(
        "-- escola-runbook {} snapshot of database {}: {what}\nSET NAMES utf8mb4;\nSET time_zone = '+00:00';\nSET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET foreign_key_checks = 0;\nSET unique_checks = 0;\n\n",
        env!("CARGO_PKG_VERSION"),
        ident(db).replace('\n', " ")
    )
}

async fn read_tables(conn: &mut Session, db: &str) -> Result<Vec<Table>, SnapshotError> {
    let during = format!("listing the tables of `{db}`");
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, ''), COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .map_err(query_err(during.clone()))?;
    let mut tables = Vec::new();
    for row in &rows {
        let engine: String = get(row, 2, &during)?;
        let kind: String = get(row, 1, &during)?;
        tables.push(Table {
            db: db.to_owned(),
            name: get(row, 0, &during)?,
            transactional: matches!(
                engine.to_ascii_lowercase().as_str(),
                "innodb" | "xtradb" | "rocksdb" | "tokudb"
            ),
            engine,
            estimated_rows: get(row, 3, &during)?,
            columns: Vec::new(),
            primary_key: Vec::new(),
            sequence: kind == "SEQUENCE",
        });
    }
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), CHARACTER_SET_NAME, EXTRA, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .map_err(query_err(during.clone()))?;
    for row in &rows {
        let table: String = get(row, 0, &during)?;
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        let data_type: String = get(row, 2, &during)?;
        let extra = opt_string(row, 4).unwrap_or_default().to_ascii_uppercase();
        let kind = ColumnKind::classify(&data_type, opt_string(row, 3).as_deref());
        let name: String = get(row, 1, &during)?;
        if opt_string(row, 5).as_deref() == Some("PRI") {
            t.primary_key.push(name.clone());
        }
        t.columns.push(Column {
            name,
            integer: kind == ColumnKind::Integer && data_type != "year",
            kind,
            generated: extra.contains("VIRTUAL")
                || extra.contains("STORED GENERATED")
                || extra.contains("PERSISTENT"),
        });
    }
    Ok(tables)
}

async fn show_create(
    conn: &mut Session,
    what: &str,
    name: &str,
    column: usize,
) -> Result<String, SnapshotError> {
    let during = format!("SHOW CREATE {what} {}", ident(name));
    let row: Option<Row> = conn
        .query_first(&during)
        .await
        .map_err(query_err(during.clone()))?;
    let row = row.ok_or_else(|| SnapshotError::Query {
        during: during.clone(),
        message: "no row returned".into(),
    })?;
    match opt_string(&row, column) {
        Some(text) => Ok(text),
        None => Err(SnapshotError::Query {
            during,
            message: "the definition is empty: the user lacks the privilege to read it (SHOW_ROUTINE/SELECT on mysql.proc or TRIGGER/EVENT)".into(),
        }),
    }
}

struct Objects {
    text: String,
    views: Vec<String>,
    routines: Vec<String>,
    triggers: Vec<String>,
    events: Vec<String>,
}

async fn names(conn: &mut Session, sql: &str, db: &str) -> Result<Vec<Vec<String>>, SnapshotError> {
    let rows: Vec<Row> = conn
        .exec(sql, (db,))
        .await
        .map_err(query_err(format!("listing objects of `{db}`")))?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| opt_string(r, i).unwrap_or_default())
                .collect()
        })
        .collect())
}

/// Routines, then views (in dependency order), triggers and events, each
/// with the sql_mode it was created under.
async fn read_objects(conn: &mut Session, db: &str) -> Result<Objects, SnapshotError> {
    let mut text = header(db, "routines, views, triggers, events");
    let mut routines = Vec::new();
    for r in names(
        conn,
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
        db,
    )
    .await?
    {
        let (name, kind) = (&r[0], &r[1]);
        let (mode, create) = show_with_mode(conn, kind, name, 1, 2).await?;
        text.push_str(&format!(
            "DROP {kind} IF EXISTS {};\nSET SESSION sql_mode = {};\nDELIMITER ;;\n{create} ;;\nDELIMITER ;\n\n",
            ident(name),
            quote_text(&mode)
        ));
        routines.push(name.clone());
    }
    text.push_str("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n");
    let view_names: Vec<String> = names(
        conn,
        "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
        db,
    )
    .await?
    .into_iter()
    .map(|mut r| r.swap_remove(0))
    .collect();
    let mut defs = Vec::new();
    for v in &view_names {
        defs.push((v.clone(), show_create(conn, "VIEW", v, 1).await?));
    }
    for (name, def) in order_views(defs) {
        text.push_str(&format!(
            "DROP VIEW IF EXISTS {};\n{def};\n\n",
            ident(&name)
        ));
    }
    let mut triggers = Vec::new();
    for r in names(
        conn,
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
        db,
    )
    .await?
    {
        let (mode, create) = show_with_mode(conn, "TRIGGER", &r[0], 1, 2).await?;
        text.push_str(&format!(
            "SET SESSION sql_mode = {};\nDELIMITER ;;\n{create} ;;\nDELIMITER ;\n\n",
            quote_text(&mode)
        ));
        triggers.push(r[0].clone());
    }
    let mut events = Vec::new();
    for r in names(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME", db).await? {
        let (mode, create) = show_with_mode(conn, "EVENT", &r[0], 1, 3).await?;
        text.push_str(&format!(
            "DROP EVENT IF EXISTS {};\nSET SESSION sql_mode = {};\nDELIMITER ;;\n{create} ;;\nDELIMITER ;\n\n",
            ident(&r[0]),
            quote_text(&mode)
        ));
        events.push(r[0].clone());
    }
    text.push_str("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n");
    Ok(Objects {
        text,
        views: view_names,
        routines,
        triggers,
        events,
    })
}

async fn show_with_mode(
    conn: &mut Session,
    what: &str,
    name: &str,
    mode_col: usize,
    create_col: usize,
) -> Result<(String, String), SnapshotError> {
    let during = format!("SHOW CREATE {what} {}", ident(name));
    let row: Option<Row> = conn
        .query_first(&during)
        .await
        .map_err(query_err(during.clone()))?;
    let row = row.ok_or_else(|| SnapshotError::Query {
        during: during.clone(),
        message: "no row returned".into(),
    })?;
    let mode = opt_string(&row, mode_col).unwrap_or_default();
    let create = opt_string(&row, create_col).ok_or_else(|| SnapshotError::Query {
        during,
        message: "the definition is empty: the user lacks the privilege to read it".into(),
    })?;
    Ok((mode, create))
}

/// Views that use other views come after them.
fn order_views(mut defs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut ordered: Vec<(String, String)> = Vec::new();
    while !defs.is_empty() {
        let ready = defs.iter().position(|(name, def)| {
            !defs
                .iter()
                .any(|(other, _)| other != name && def.contains(&ident(other)))
        });
        // A cycle cannot exist between views; fall back to name order.
        let i = ready.unwrap_or(0);
        ordered.push(defs.remove(i));
    }
    ordered
}

async fn binlog_position(conn: &mut Session) -> (Option<BinlogPosition>, Option<String>) {
    let binlog = match conn.query_first::<Row, _>("SHOW MASTER STATUS").await {
        Ok(Some(row)) => match (
            opt_string(&row, 0),
            row.get_opt::<u64, usize>(1).and_then(Result::ok),
        ) {
            (Some(file), Some(position)) => Some(BinlogPosition { file, position }),
            _ => None,
        },
        _ => None,
    };
    let mut gtid = None;
    for q in [
        "SELECT @@GLOBAL.gtid_binlog_pos",
        "SELECT @@GLOBAL.gtid_executed",
    ] {
        if let Ok(Some(Some(v))) = conn.query_first::<Option<String>, _>(q).await {
            if !v.is_empty() {
                gtid = Some(v);
                break;
            }
        }
    }
    (binlog, gtid)
}

async fn pk_ranges(
    conn: &mut Session,
    t: &Table,
    chunk_rows: u64,
) -> Result<Vec<(Value, Value)>, SnapshotError> {
    let pk = &t.primary_key[0];
    if !t.columns.iter().any(|c| &c.name == pk && c.integer) {
        return Ok(Vec::new());
    }
    let during = format!("reading the key range of `{}`.`{}`", t.db, t.name);
    let q = format!(
        "SELECT MIN({0}), MAX({0}) FROM {1}.{2}",
        ident(pk),
        ident(&t.db),
        ident(&t.name)
    );
    let row: Option<Row> = conn.query_first(q).await.map_err(query_err(during))?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let as_i128 = |v: Option<&Value>| match v {
        Some(Value::Int(i)) => Some(i128::from(*i)),
        Some(Value::UInt(u)) => Some(i128::from(*u)),
        Some(Value::Bytes(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    };
    let (Some(lo), Some(hi)) = (as_i128(row.as_ref(0)), as_i128(row.as_ref(1))) else {
        return Ok(Vec::new());
    };
    let chunks = t
        .estimated_rows
        .div_ceil(chunk_rows.max(1))
        .clamp(1, 10_000) as i128;
    let width = ((hi - lo + 1) + chunks - 1) / chunks;
    let value = |x: i128| match i64::try_from(x) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::UInt(u64::try_from(x).unwrap_or(u64::MAX)),
    };
    let mut out = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = (start + width - 1).min(hi);
        out.push((value(start), value(end)));
        start = end + 1;
    }
    Ok(out)
}

struct Shared {
    dir: PathBuf,
    statement_bytes: usize,
    zstd_level: i32,
    cancel: CancellationToken,
    progress: Option<ProgressFn>,
    files_total: u64,
    files_done: AtomicU64,
    rows: AtomicU64,
    sql_bytes: AtomicU64,
    queue: Mutex<VecDeque<WorkItem>>,
}

impl Shared {
    fn report(&self) {
        if let Some(p) = &self.progress {
            p(&SnapshotProgress {
                files_done: self.files_done.load(Ordering::Relaxed),
                files_total: self.files_total,
                rows: self.rows.load(Ordering::Relaxed),
                sql_bytes: self.sql_bytes.load(Ordering::Relaxed),
            });
        }
    }

    fn next(&self) -> Option<WorkItem> {
        self.queue.lock().ok()?.pop_front()
    }
}

async fn run_items(
    workers: Vec<Session>,
    items: Vec<WorkItem>,
    shared: &Arc<Shared>,
) -> Result<(Vec<Session>, Vec<(usize, FileEntry)>), SnapshotError> {
    if let Ok(mut q) = shared.queue.lock() {
        q.extend(items);
    }
    // A JoinSet aborts its workers when dropped: a snapshot stopped while
    // they run leaves none writing into the directory being removed.
    let mut handles = tokio::task::JoinSet::new();
    for conn in workers {
        let shared = Arc::clone(shared);
        handles.spawn(async move {
            let mut conn = conn;
            let mut done = Vec::new();
            while let Some(item) = shared.next() {
                match dump_item(&mut conn, &item, &shared).await {
                    Ok(entry) => {
                        shared.files_done.fetch_add(1, Ordering::Relaxed);
                        shared.report();
                        done.push((item.index, entry));
                    }
                    Err(e) => {
                        shared.cancel.cancel();
                        return (conn, Err(e));
                    }
                }
            }
            (conn, Ok(done))
        });
    }
    let mut conns = Vec::new();
    let mut done = Vec::new();
    let mut first_error = None;
    while let Some(joined) = handles.join_next().await {
        match joined {
            Ok((conn, result)) => {
                conns.push(conn);
                match result {
                    Ok(d) => done.extend(d),
                    Err(e) => {
                        // A cancellation caused by another worker's error is not the cause.
                        if first_error.is_none()
                            || matches!(first_error, Some(SnapshotError::Cancelled))
                        {
                            first_error = Some(e);
                        }
                    }
                }
            }
            Err(e) => {
                first_error.get_or_insert(SnapshotError::Query {
                    during: "a snapshot worker".into(),
                    message: e.to_string(),
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok((conns, done)),
    }
}

async fn dump_item(
    conn: &mut Session,
    item: &WorkItem,
    shared: &Shared,
) -> Result<FileEntry, SnapshotError> {
    let t = &item.table;
    let columns: Vec<&Column> = t.columns.iter().filter(|c| !c.generated).collect();
    let list = columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(",");
    let from = format!("{}.{}", ident(&t.db), ident(&t.name));
    let (query, params) = match &item.range {
        Some((lo, hi)) => {
            let pk = ident(&t.primary_key[0]);
            (
                format!("SELECT {list} FROM {from} WHERE {pk} >= ? AND {pk} <= ?"),
                mysql_async::Params::Positional(vec![lo.clone(), hi.clone()]),
            )
        }
        None => (
            format!("SELECT {list} FROM {from}"),
            mysql_async::Params::Empty,
        ),
    };
    let sink = Sink::open(shared.dir.join(&item.file), shared.zstd_level)?;
    let mut buf: Vec<u8> = header(&t.db, &format!("data of {}", ident(&t.name))).into_bytes();
    let prefix = format!("INSERT INTO {} ({list}) VALUES\n", ident(&t.name));
    let mut rows = 0u64;
    let mut file_rows = 0u64;
    let mut in_statement = false;
    let mut statements = 0u64;
    let during = format!("reading {from}");
    let (conn, answers) = conn.parts();
    let mut result = answers
        .within(conn.exec_iter(query, params))
        .await
        .map_err(query_err(during.clone()))?;
    while let Some(row) = answers
        .within(result.next())
        .await
        .map_err(query_err(during.clone()))?
    {
        if in_statement {
            buf.extend_from_slice(b",\n(");
        } else {
            buf.extend_from_slice(prefix.as_bytes());
            buf.push(b'(');
            in_statement = true;
        }
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            sql::literal(&mut buf, row.as_ref(i).unwrap_or(&Value::NULL), c.kind);
        }
        buf.push(b')');
        rows += 1;
        if buf.len() >= shared.statement_bytes {
            buf.extend_from_slice(b";\n");
            in_statement = false;
            shared.rows.fetch_add(rows, Ordering::Relaxed);
            file_rows += rows;
            rows = 0;
            shared
                .sql_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            sink.send(std::mem::take(&mut buf)).await?;
            statements += 1;
            if statements % 64 == 0 {
                shared.report();
            }
            if shared.cancel.is_cancelled() {
                drop(result);
                return Err(SnapshotError::Cancelled);
            }
        }
    }
    drop(result);
    if in_statement {
        buf.extend_from_slice(b";\n");
    }
    shared.rows.fetch_add(rows, Ordering::Relaxed);
    shared
        .sql_bytes
        .fetch_add(buf.len() as u64, Ordering::Relaxed);
    sink.send(buf).await?;
    let mut written = sink.finish().await?;
    written.rows = file_rows + rows;
    Ok(written.entry(FileKind::Data, &t.db, Some(t.name.clone()), item.chunk))
}

/// A compressed file written on a blocking thread, fed through a bounded
/// channel so memory stays at a few statements per worker.
struct Sink {
    tx: mpsc::Sender<Vec<u8>>,
    handle: tokio::task::JoinHandle<Result<Written, SnapshotError>>,
}

struct Written {
    name: String,
    bytes: u64,
    sql_bytes: u64,
    sha256: String,
    rows: u64,
}

impl Written {
    fn entry(
        self,
        kind: FileKind,
        db: &str,
        table: Option<String>,
        chunk: Option<u32>,
    ) -> FileEntry {
        FileEntry {
            name: self.name,
            kind,
            database: db.to_owned(),
            table,
            chunk,
            rows: self.rows,
            bytes: self.bytes,
            sql_bytes: self.sql_bytes,
            sha256: self.sha256,
        }
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Sink {
    fn open(path: PathBuf, level: i32) -> Result<Self, SnapshotError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let handle = tokio::task::spawn_blocking(move || {
            let io = |source| SnapshotError::Io {
                path: path.clone(),
                source,
            };
            let hashing = HashingWriter {
                inner: BufWriter::with_capacity(1 << 16, file),
                hasher: Sha256::new(),
                bytes: 0,
            };
            let mut enc = zstd::Encoder::new(hashing, level).map_err(io)?;
            enc.include_checksum(true).map_err(io)?;
            let mut sql_bytes = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                sql_bytes += chunk.len() as u64;
                enc.write_all(&chunk).map_err(io)?;
            }
            let mut hashing = enc.finish().map_err(io)?;
            hashing.flush().map_err(io)?;
            let file = hashing.inner.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            Ok(Written {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: hashing.bytes,
                sql_bytes,
                sha256: hex_digest(hashing.hasher.finalize().as_slice()),
                rows: 0,
            })
        });
        Ok(Sink { tx, handle })
    }

    async fn send(&self, chunk: Vec<u8>) -> Result<(), SnapshotError> {
        if self.tx.send(chunk).await.is_err() {
            // The writer stopped early: its error says why.
            return Err(SnapshotError::Io {
                path: PathBuf::from("(snapshot file)"),
                source: io::Error::other("the file writer stopped"),
            });
        }
        Ok(())
    }

    async fn finish(self) -> Result<Written, SnapshotError> {
        drop(self.tx);
        self.handle.await.map_err(|e| SnapshotError::Io {
            path: PathBuf::from("(snapshot file)"),
            source: io::Error::other(e.to_string()),
        })?
    }
}

async fn write_text(
    dir: &Path,
    name: &str,
    text: &str,
    level: i32,
) -> Result<Written, SnapshotError> {
    let sink = Sink::open(dir.join(name), level)?;
    sink.send(text.as_bytes().to_vec()).await?;
    sink.finish().await
}

/// Lower-case hex of a digest.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
