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
//!
//! With recipients, every file is an age file (X25519) of its zstd stream,
//! encrypted as it is written: no plaintext reaches the disk.
//!
//! By job: `plan` (what to dump), `dump` (data to files, in parallel),
//! `digest` (each table's content checksum, as dumped and as restored),
//! `session` (the settings rows are read under),
//! `write` (compressed, encrypted, hashed files; the directory sealed),
//! [`manifest`] (what the snapshot says about itself) and `evidence` (the
//! check's outcome from a manifest).

use std::collections::BTreeMap;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use escola_runbook_core::Secret;

use super::connect::{DbTarget, Session};
use super::read_lock::{self, Attempt, Granted};
use super::sql::ident;

mod digest;
mod dump;
mod error;
pub(crate) mod evidence;
pub mod manifest;
mod options;
mod plan;
mod session;
mod write;

pub use digest::ContentDigest;
pub(crate) use digest::table_digests;
pub use evidence::SNAPSHOT_PATH;
use manifest::LockHeld;
pub use manifest::{
    AGE_X25519, BinlogPosition, Consistency, DatabaseEntry, Encryption, FORMAT, FileEntry,
    FileKind, MANIFEST, Manifest, PRUNING, TableEntry, Watermark, WatermarkKind, row_counts,
};
use plan::{Table, WorkItem};
use write::Encoding;
pub(crate) use write::hex_digest;

pub use error::SnapshotError;
use error::{io_err, query_err};
pub use options::{ProgressFn, SnapshotOptions, SnapshotProgress};

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
    let name = write::snapshot_name(&opts.out_dir, &databases[0], started_at);
    let final_dir = opts.out_dir.join(&name);
    let partial = opts.out_dir.join(format!(".{name}.partial"));
    DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(io_err(&partial))?;

    // Removes the partial directory on every way out but success, including
    // the future being dropped (a step timeout, Ctrl-C in the executor).
    let mut guard = write::PartialDir(Some(partial.clone()));
    // A stop ends the snapshot at once, whatever the server is doing.
    let manifest = tokio::select! {
        biased;
        () = opts.cancel.cancelled() => Err(SnapshotError::Cancelled),
        taken = take(&server, &databases, opts, &partial, started_at) => taken,
    }?;
    let finished = write::seal(&partial, &final_dir, &opts.out_dir, &manifest);
    if finished.is_ok() {
        guard.0 = None;
    }
    finished.map(|()| (final_dir, manifest))
}

/// Opens the control session: the session set up, the server's version.
async fn control_session(server: &DbTarget) -> Result<(Session, String), SnapshotError> {
    let mut control = server.connect().await?;
    session::prepare(&mut control, false, "preparing the session").await?;
    let version: String = control
        .query_first("SELECT VERSION()")
        .await
        .map_err(query_err("reading the server version"))?
        .unwrap_or_default();
    Ok((control, version))
}

/// Opens `threads` worker sessions reading raw column bytes.
async fn worker_sessions(server: &DbTarget, threads: usize) -> Result<Vec<Session>, SnapshotError> {
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads.max(1) {
        let mut conn = server.connect().await?;
        session::prepare(&mut conn, true, "preparing a worker session").await?;
        workers.push(conn);
    }
    Ok(workers)
}

/// A database to dump: name, default character set and collation.
type DbMeta = (String, String, String);

/// Looks up each of `databases` and lists its tables.
async fn read_databases(
    control: &mut Session,
    databases: &[String],
) -> Result<(Vec<DbMeta>, Vec<Table>), SnapshotError> {
    let mut meta = Vec::new();
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
        meta.push((db.clone(), charset, collation));
        tables.extend(plan::read_tables(control, db).await?);
    }
    Ok((meta, tables))
}

/// Takes the global read lock (all sessions of the snapshot spared from
/// the blockers it names): `None` without the privilege.
async fn lock_writes(
    control: &mut Session,
    workers: &mut [Session],
    server: &DbTarget,
    opts: &SnapshotOptions,
) -> Result<Option<Granted>, SnapshotError> {
    let ours: Vec<u32> = std::iter::once(control.id())
        .chain(workers.iter().map(Session::id))
        .collect();
    let (killer, _) = workers
        .split_first_mut()
        .ok_or_else(|| SnapshotError::Query {
            during: "opening the worker sessions".into(),
            message: "no worker session".into(),
        })?;
    match read_lock::take(
        control,
        killer,
        opts.lock_wait_timeout,
        opts.lock_tries,
        &ours,
    )
    .await
    .map_err(query_err(
        "taking the global read lock (FLUSH TABLES WITH READ LOCK)",
    ))? {
        Attempt::Granted(granted) => Ok(Some(granted)),
        Attempt::NoPrivilege => Ok(None),
        Attempt::Refused { blockers } => Err(SnapshotError::ReadLockRefused {
            server: server.server(),
            wait: opts.lock_wait_timeout,
            tries: opts.lock_tries.max(1),
            blockers,
        }),
    }
}

/// The schema file of each database (under the lock, so that it matches
/// the data), their database entries, and the text of their objects for
/// the post-data files.
async fn write_schemas(
    control: &mut Session,
    db_meta: &[DbMeta],
    tables: &[Table],
    dir: &Path,
    encoding: &Encoding,
) -> Result<
    (
        Vec<Option<FileEntry>>,
        Vec<DatabaseEntry>,
        Vec<(String, String)>,
    ),
    SnapshotError,
> {
    let mut files = Vec::new();
    let mut entries = Vec::new();
    let mut post = Vec::new();
    for (db, charset, collation) in db_meta {
        control
            .query_drop(format!("USE {}", ident(db)))
            .await
            .map_err(query_err(format!("switching to `{db}`")))?;
        let mut text = write::header(db, "tables");
        for t in tables.iter().filter(|t| &t.db == db) {
            let create = plan::show_create(control, "TABLE", &t.name, 1).await?;
            text.push_str(&format!(
                "DROP TABLE IF EXISTS {};\n{create};\n\n",
                ident(&t.name)
            ));
        }
        let name = format!("{:04}-{}.schema.sql.zst", files.len(), write::sanitize(db));
        files.push(Some(
            write::write_text(dir, &name, &text, encoding).await?.entry(
                FileKind::Schema,
                db,
                None,
                None,
            ),
        ));
        let objects = plan::read_objects(control, db).await?;
        post.push((db.clone(), objects.text));
        entries.push(DatabaseEntry {
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
    Ok((files, entries, post))
}

async fn take(
    server: &DbTarget,
    databases: &[String],
    opts: &SnapshotOptions,
    dir: &Path,
    started_at: DateTime<Utc>,
) -> Result<Manifest, SnapshotError> {
    let encoding = Encoding {
        zstd_level: opts.zstd_level,
        recipients: opts.encrypt_to.clone().into(),
    };
    let (mut control, server_version) = control_session(server).await?;
    let (db_meta, tables) = read_databases(&mut control, databases).await?;
    let mut workers = worker_sessions(server, opts.threads).await?;

    // The point in time.
    let lock = lock_writes(&mut control, &mut workers, server, opts).await?;
    for conn in &mut workers {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(query_err("starting the consistent snapshot"))?;
    }
    let (binlog, gtid) = plan::binlog_position(&mut control).await;
    let (mut files, mut manifest_dbs, post) =
        write_schemas(&mut control, &db_meta, &tables, dir, &encoding).await?;

    // Plan data files; ranges are read inside the snapshot.
    let tables: Vec<Arc<Table>> = tables.into_iter().map(Arc::new).collect();
    let ranges = match workers.first_mut() {
        Some(first) => plan::ranges(first, &tables, opts.chunk_rows).await?,
        None => vec![Vec::new(); tables.len()],
    };
    let items = plan::work_items(&tables, ranges, files.len());
    files.resize(files.len() + items.len(), None);
    let shared = Arc::new(dump::Shared::new(
        dir.to_owned(),
        opts,
        encoding.clone(),
        items.len(),
    ));
    let mut digests = BTreeMap::new();
    let (non_tx, tx): (Vec<WorkItem>, Vec<WorkItem>) =
        items.into_iter().partition(|i| !i.table.transactional);

    // Non-transactional tables while writes are blocked, then release.
    // Their watermarks are read under the lock too; the transactional
    // tables' after it, in the snapshot, so no scan blocks writes.
    let (mut workers, done) = dump::run_items(workers, non_tx, &shared).await?;
    dump::place(&mut files, &mut digests, done);
    let mut watermarks = match workers.first_mut() {
        Some(first) => {
            plan::watermarks(
                first,
                tables.iter().filter(|t| !t.transactional).map(|t| &**t),
            )
            .await?
        }
        None => BTreeMap::new(),
    };
    let held = lock.map(|l| LockHeld {
        held_ms: l.at.elapsed().as_millis() as u64,
        waited_ms: l.waited.as_millis() as u64,
    });
    if lock.is_some() {
        control
            .query_drop("UNLOCK TABLES")
            .await
            .map_err(query_err("releasing the global read lock"))?;
    }
    if let Some(first) = workers.first_mut() {
        watermarks.extend(
            plan::watermarks(
                first,
                tables.iter().filter(|t| t.transactional).map(|t| &**t),
            )
            .await?,
        );
    }
    let (workers, done) = dump::run_items(workers, tx, &shared).await?;
    dump::place(&mut files, &mut digests, done);
    for mut conn in workers {
        let _ = conn.query_drop("COMMIT").await;
        conn.disconnect().await;
    }

    for (db, text) in post {
        let name = format!("{:04}-{}.post.sql.zst", files.len(), write::sanitize(&db));
        files.push(Some(
            write::write_text(dir, &name, &text, &encoding)
                .await?
                .entry(FileKind::PostData, &db, None, None),
        ));
    }
    control.disconnect().await;

    let files: Vec<FileEntry> = files.into_iter().flatten().collect();
    let checksums = digests
        .into_iter()
        .map(|(table, d)| (table, d.checksum()))
        .collect();
    plan::fill_tables(
        &mut manifest_dbs,
        &tables,
        &files,
        &checksums,
        &watermarks,
        &ContentDigest::default().checksum(),
    );
    let encryption = (!opts.encrypt_to.is_empty()).then(|| Encryption {
        scheme: AGE_X25519.into(),
        recipients: opts
            .encrypt_to
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
    });
    Ok(Manifest {
        format: FORMAT.into(),
        tool: format!("escola-runbook {}", env!("CARGO_PKG_VERSION")),
        server: server.display().trim_end_matches('/').to_owned(),
        server_version,
        started_at,
        finished_at: Utc::now(),
        consistency: manifest::consistency(held, plan::non_transactional(&tables)),
        binlog,
        gtid,
        total_rows: files.iter().map(|f| f.rows).sum(),
        total_bytes: files.iter().map(|f| f.bytes).sum(),
        restore_with: if encryption.is_some() {
            "mariadb -e 'CREATE DATABASE target'; then, for one source database, in manifest order, each FILE: age -d -i KEY.txt FILE | zstd -dc | mariadb target"
        } else {
            "mariadb -e 'CREATE DATABASE target'; then, for one source database, in manifest order: zstd -dc FILE... | mariadb target"
        }
        .into(),
        encryption,
        databases: manifest_dbs,
        files,
    })
}
