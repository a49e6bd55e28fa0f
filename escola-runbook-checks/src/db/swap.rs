//! A restore that leaves production as it was unless it fully succeeds:
//! the snapshot is restored into a shadow database, every table of it is
//! proven against the manifest (row count and content checksum), and only
//! then are the tables swapped in with one `RENAME TABLE`, atomic on the
//! server, the replaced tables kept in a backup database. Killed at any
//! point before the rename, production is untouched; the rename itself
//! happens entirely or not at all.
//!
//! `RENAME TABLE` refuses to move a table that has triggers to another
//! database, so the shadow's triggers (the snapshot's) are read, dropped,
//! and created again on the swapped-in tables; the target's own triggers
//! are dropped with its tables' move (their definitions are in the
//! report). Views, routines and events of the target are left as they are:
//! a view names its tables, so it reads the swapped-in ones.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use escola_runbook_core::{CancellationToken, Secret};
use mysql_async::Row;

use super::connect::{ConnectError, DbTarget, DbTimeouts, Session, mask_url};
use super::crypt::Identities;
use super::files::{LocalDir, SnapshotFiles, blocking};
use super::params::DEFAULT_THREADS;
use super::restore::{
    RestoreError, RestoreOptions, RestoreReport, VerifyError, read_manifest_in, restore_from,
};
use super::snapshot::{Manifest, SnapshotError, table_digests};
use super::sql::ident;
use super::verified::TableProof;

/// How to restore with a swap.
#[derive(Debug, Clone)]
pub struct SwapOptions {
    /// The database whose tables are replaced (production).
    pub target_database: String,
    /// Where the replaced tables go; must not exist or be empty. Default:
    /// `TARGET_before_restore_YYYYMMDDTHHMMSS`.
    pub backup_database: Option<String>,
    /// Which database of the snapshot; may be omitted when it holds one.
    pub source_database: Option<String>,
    /// Decrypts an encrypted snapshot; required for one.
    pub identities: Option<Identities>,
    /// Connect and read timeouts.
    pub timeouts: DbTimeouts,
    /// Stops the shadow restore between statements (production untouched).
    pub cancel: CancellationToken,
    /// Connections the shadow restore loads over (see
    /// [`RestoreOptions::threads`]).
    pub threads: usize,
}

impl SwapOptions {
    /// Swap the snapshot's tables into `target`.
    pub fn new(target: impl Into<String>) -> Self {
        SwapOptions {
            target_database: target.into(),
            backup_database: None,
            source_database: None,
            identities: None,
            timeouts: DbTimeouts::SNAPSHOT,
            cancel: CancellationToken::new(),
            threads: DEFAULT_THREADS,
        }
    }
}

/// What a swap did.
#[derive(Debug, Clone)]
pub struct SwapReport {
    /// The shadow restore.
    pub restored: RestoreReport,
    /// Every table of the shadow, proven before the swap.
    pub proven: Vec<TableProof>,
    /// The database now holding the replaced tables.
    pub backup_database: String,
    /// Tables moved from the target into the backup.
    pub replaced: Vec<String>,
    /// Tables swapped into the target.
    pub swapped_in: Vec<String>,
    /// Triggers of the target dropped with the move (`name: CREATE ...`).
    pub dropped_triggers: Vec<String>,
    /// The snapshot's triggers created again on the swapped-in tables.
    pub triggers: usize,
}

/// Why a swap did not happen (production unchanged) or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The shadow restore failed; production is unchanged.
    #[error("restoring into the shadow database `{shadow}` (production unchanged): {source}")]
    Restore {
        /// The shadow database.
        shadow: String,
        /// Why.
        #[source]
        source: RestoreError,
    },
    /// The shadow's tables could not be read back; production is unchanged.
    #[error("reading back the shadow database `{shadow}` (production unchanged): {source}")]
    Recompute {
        /// The shadow database.
        shadow: String,
        /// Why.
        #[source]
        source: SnapshotError,
    },
    /// A restored table differs from the manifest; production is unchanged.
    #[error(
        "the shadow restore does not match the snapshot (production unchanged): {}",
        tables.join(", ")
    )]
    Mismatch {
        /// `db.table: expected N rows, restored M` for each.
        tables: Vec<String>,
    },
    /// The target does not exist: there is nothing to swap out.
    #[error(
        "database `{0}` does not exist: there is nothing to swap; restore into it with --database instead"
    )]
    NoTarget(String),
    /// The backup database already holds tables.
    #[error(
        "backup database `{0}` already holds tables; name another with --backup-into, or drop it"
    )]
    BackupNotEmpty(String),
    /// Connection problem.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A statement of the swap failed; `done` says how far it got.
    #[error("{during}: {message} ({done})")]
    Query {
        /// What was being done.
        during: String,
        /// The server's message.
        message: String,
        /// Where that leaves production.
        done: &'static str,
    },
    /// The manifest could not be read.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// Before the rename, production has not been touched.
const UNCHANGED: &str = "production unchanged";
/// After the rename, the tables are the snapshot's.
const SWAPPED: &str = "the tables are swapped in; the replaced ones are in the backup database";

fn query_err(
    during: impl Into<String>,
    done: &'static str,
) -> impl FnOnce(mysql_async::Error) -> SwapError {
    let during = during.into();
    move |e| SwapError::Query {
        during,
        message: mask_url(&e.to_string()),
        done,
    }
}

/// The shadow database for `target`: unique to this process, within
/// MariaDB's 64 characters.
fn shadow_name(target: &str) -> String {
    let head: String = target.chars().take(36).collect();
    format!("{head}_shadow_restore_{}", std::process::id())
}

/// The default backup database for `target` at `now`.
fn backup_name(target: &str, now: chrono::DateTime<Utc>) -> String {
    let head: String = target.chars().take(40).collect();
    format!("{head}_before_{}", now.format("%Y%m%dT%H%M%S"))
}

/// Restores the snapshot in `dir` into a shadow database on the server of
/// `url`, proves it, and swaps its tables into `opts.target_database`.
pub async fn restore_swapped(
    dir: &Path,
    url: &Secret,
    opts: &SwapOptions,
) -> Result<SwapReport, SwapError> {
    restore_swapped_from(Arc::new(LocalDir::new(dir)), url, opts).await
}

/// [`restore_swapped`] from any snapshot source (a local directory, an
/// off-site copy), streamed.
pub async fn restore_swapped_from(
    files: Arc<dyn SnapshotFiles>,
    url: &Secret,
    opts: &SwapOptions,
) -> Result<SwapReport, SwapError> {
    let reading = files.clone();
    let (manifest, _) = blocking(move || read_manifest_in(&*reading))
        .await
        .map_err(|source| {
            SwapError::Verify(VerifyError::Io {
                path: files.location(),
                source,
            })
        })??;
    let target = opts.target_database.as_str();
    let shadow = shadow_name(target);
    let backup = opts
        .backup_database
        .clone()
        .unwrap_or_else(|| backup_name(target, Utc::now()));
    let server = DbTarget::from_secret(url)?
        .with_database(None)
        .with_timeouts(opts.timeouts);
    let mut conn = server.connect().await?;
    let exists: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (target,),
        )
        .await
        .map_err(query_err(format!("looking up `{target}`"), UNCHANGED))?;
    if exists.is_none() {
        return Err(SwapError::NoTarget(target.to_owned()));
    }
    if count_tables(&mut conn, &backup).await? > 0 {
        return Err(SwapError::BackupNotEmpty(backup));
    }

    let mut restore_opts = RestoreOptions::new(&shadow);
    restore_opts.source_database = opts.source_database.clone();
    // A shadow of this name can only be a leftover of this process id.
    restore_opts.force = true;
    restore_opts.identities = opts.identities.clone();
    restore_opts.timeouts = opts.timeouts;
    restore_opts.cancel = opts.cancel.clone();
    restore_opts.threads = opts.threads;
    let restored = match restore_from(files, url, &restore_opts).await {
        Ok(r) => r,
        Err(source) => {
            drop_database(&mut conn, &shadow).await;
            return Err(SwapError::Restore { shadow, source });
        }
    };
    let proven = match prove(&mut conn, &shadow, &manifest, &restored.source_database).await {
        Ok(p) => p,
        Err(e) => {
            drop_database(&mut conn, &shadow).await;
            return Err(e);
        }
    };
    let mismatched: Vec<String> = proven
        .iter()
        .filter(|p| !p.matches())
        .map(|p| {
            format!(
                "{}: expected {} rows, restored {}",
                p.table, p.expected_rows, p.restored_rows
            )
        })
        .collect();
    if !mismatched.is_empty() {
        drop_database(&mut conn, &shadow).await;
        return Err(SwapError::Mismatch { tables: mismatched });
    }

    let report = swap(&mut conn, target, &shadow, &backup).await;
    if report.is_ok() {
        drop_database(&mut conn, &shadow).await;
    }
    conn.disconnect().await;
    let (replaced, swapped_in, dropped_triggers, triggers) = report?;
    Ok(SwapReport {
        restored,
        proven,
        backup_database: backup,
        replaced,
        swapped_in,
        dropped_triggers,
        triggers,
    })
}

/// Each table of the snapshot's `source` database, as restored in
/// `shadow`, against the manifest.
async fn prove(
    conn: &mut Session,
    shadow: &str,
    manifest: &Manifest,
    source: &str,
) -> Result<Vec<TableProof>, SwapError> {
    let digests = table_digests(conn, shadow)
        .await
        .map_err(|source| SwapError::Recompute {
            shadow: shadow.to_owned(),
            source,
        })?;
    Ok(manifest
        .databases
        .iter()
        .filter(|d| d.name == source)
        .flat_map(|d| TableProof::of_database(d, &digests))
        .collect())
}

type Swapped = (Vec<String>, Vec<String>, Vec<String>, usize);

/// The swap proper: triggers out of the way, one atomic rename, the
/// snapshot's triggers back on the swapped-in tables.
async fn swap(
    conn: &mut Session,
    target: &str,
    shadow: &str,
    backup: &str,
) -> Result<Swapped, SwapError> {
    let snapshot_triggers = triggers(conn, shadow).await?;
    let target_triggers = triggers(conn, target).await?;
    create_like(conn, target, backup).await?;
    for (name, _, _) in &snapshot_triggers {
        drop_trigger(conn, shadow, name, "the shadow").await?;
    }
    let replaced = base_tables(conn, target).await?;
    let swapped_in = base_tables(conn, shadow).await?;
    let mut dropped = Vec::new();
    for (name, sql_mode, create) in &target_triggers {
        drop_trigger(conn, target, name, &format!("`{target}`")).await?;
        dropped.push(format!("{name} (sql_mode {sql_mode}): {create}"));
    }
    let rename = |from: &str, to: &str, t: &str| {
        format!("{}.{} TO {}.{}", ident(from), ident(t), ident(to), ident(t))
    };
    let moves: Vec<String> = replaced
        .iter()
        .map(|t| rename(target, backup, t))
        .chain(swapped_in.iter().map(|t| rename(shadow, target, t)))
        .collect();
    if !moves.is_empty() {
        conn.query_drop(format!("RENAME TABLE {}", moves.join(", ")))
            .await
            .map_err(query_err("swapping the tables (RENAME TABLE)", UNCHANGED))?;
    }
    conn.query_drop(format!("USE {}", ident(target)))
        .await
        .map_err(query_err(format!("switching to `{target}`"), SWAPPED))?;
    for (name, sql_mode, create) in &snapshot_triggers {
        conn.exec_drop("SET SESSION sql_mode = ?", (sql_mode.as_str(),))
            .await
            .map_err(query_err(
                format!("setting the sql_mode of trigger `{name}`"),
                SWAPPED,
            ))?;
        conn.query_drop(create.as_str()).await.map_err(query_err(
            format!("creating trigger `{name}` on `{target}`"),
            SWAPPED,
        ))?;
    }
    Ok((replaced, swapped_in, dropped, snapshot_triggers.len()))
}

/// Drops trigger `name` of database `db` (`of` names the database in the
/// error), before the rename: production is unchanged if it fails.
async fn drop_trigger(conn: &mut Session, db: &str, name: &str, of: &str) -> Result<(), SwapError> {
    conn.query_drop(format!("DROP TRIGGER {}.{}", ident(db), ident(name)))
        .await
        .map_err(query_err(
            format!("dropping trigger `{name}` of {of}"),
            UNCHANGED,
        ))
}

/// Creates `backup` with `target`'s character set and collation.
async fn create_like(conn: &mut Session, target: &str, backup: &str) -> Result<(), SwapError> {
    let meta: Option<(String, String)> = conn
        .exec_first(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (target,),
        )
        .await
        .map_err(query_err(format!("looking up `{target}`"), UNCHANGED))?;
    let create = match meta {
        Some((charset, collation))
            if [&charset, &collation]
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) =>
        {
            format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET {charset} COLLATE {collation}",
                ident(backup)
            )
        }
        _ => format!("CREATE DATABASE IF NOT EXISTS {}", ident(backup)),
    };
    conn.query_drop(create).await.map_err(query_err(
        format!("creating the backup database `{backup}`"),
        UNCHANGED,
    ))
}

/// `(name, sql_mode, CREATE TRIGGER ...)` of every trigger in `db`, in the
/// order they fire.
async fn triggers(
    conn: &mut Session,
    db: &str,
) -> Result<Vec<(String, String, String)>, SwapError> {
    let during = format!("listing the triggers of `{db}`");
    let names: Vec<String> = conn
        .exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            (db,),
        )
        .await
        .map_err(query_err(&during, UNCHANGED))?;
    let mut out = Vec::new();
    for name in names {
        let row: Option<Row> = conn
            .query_first(format!(
                "SHOW CREATE TRIGGER {}.{}",
                ident(db),
                ident(&name)
            ))
            .await
            .map_err(query_err(&during, UNCHANGED))?;
        let text = |i: usize| {
            row.as_ref()
                .and_then(|r| r.get_opt::<String, _>(i))
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        out.push((name, text(1), text(2)));
    }
    Ok(out)
}

async fn base_tables(conn: &mut Session, db: &str) -> Result<Vec<String>, SwapError> {
    conn.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
        (db,),
    )
    .await
    .map_err(query_err(format!("listing the tables of `{db}`"), UNCHANGED))
}

async fn count_tables(conn: &mut Session, db: &str) -> Result<u64, SwapError> {
    Ok(conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (db,),
        )
        .await
        .map_err(query_err(format!("inspecting `{db}`"), UNCHANGED))?
        .unwrap_or(0))
}

/// Drops the shadow; a failure leaves a database named for this process,
/// which the next swap of the same process id replaces.
async fn drop_database(conn: &mut Session, db: &str) {
    let _ = conn
        .query_drop(format!("DROP DATABASE IF EXISTS {}", ident(db)))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_and_backup_names_fit_in_64_characters() {
        let long = "x".repeat(64);
        assert!(shadow_name(&long).len() <= 64, "{}", shadow_name(&long));
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T02:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(backup_name("escola", at), "escola_before_20261203T020000");
        assert!(backup_name(&long, at).len() <= 64);
    }
}
