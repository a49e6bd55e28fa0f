//! The restore test: a snapshot proven, not just taken. Each database of
//! the snapshot is restored into a scratch database on a server, every
//! table's row count and content checksum are recomputed from the restored
//! rows and compared with the manifest's (computed as dumped), the scratch
//! database is dropped, and the result is written beside the manifest as
//! `verified.json` (see [`super::verified`]; the manifest itself is never
//! rewritten). The test reads the snapshot through [`SnapshotFiles`], so a
//! remote copy is tested streamed from its store (`offsite::restore_test`).
//! It reads each file whole twice: once to verify it (ciphertext and, with
//! a key, plaintext in the same read), once to load it.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use escola_runbook_core::{CancellationToken, Secret};

use super::connect::{ConnectError, DbTarget, DbTimeouts, mask_url};
use super::crypt::Identities;
use super::files::{LocalDir, SnapshotFiles};
use super::restore::{
    RestoreError, RestoreOptions, VerifiedFilesFn, VerifyError, VerifyReport, restore_verified,
    verified,
};
use super::snapshot::{SnapshotError, table_digests};
use super::sql::ident;
use super::verified::{RecordError, TableProof, Verified, record};

/// How to run a restore test.
#[derive(Clone)]
pub struct RestoreTestOptions {
    /// Decrypts an encrypted snapshot; every plaintext is then checked
    /// against its sha256 too, in the read that checks the ciphertext.
    pub identities: Option<Identities>,
    /// Connect and read timeouts.
    pub timeouts: DbTimeouts,
    /// Stops the restore between statements (the scratch database is
    /// still dropped).
    pub cancel: CancellationToken,
    /// Told the verify report, so a caller that shows it needs no verify
    /// pass of its own.
    pub on_verified: Option<VerifiedFilesFn>,
}

impl std::fmt::Debug for RestoreTestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreTestOptions")
            .field("identities", &self.identities)
            .field("timeouts", &self.timeouts)
            .field("cancel", &self.cancel)
            .field("on_verified", &self.on_verified.is_some())
            .finish()
    }
}

impl Default for RestoreTestOptions {
    fn default() -> Self {
        RestoreTestOptions {
            identities: None,
            timeouts: DbTimeouts::SNAPSHOT,
            cancel: CancellationToken::new(),
            on_verified: None,
        }
    }
}

/// Why a restore test could not give a verdict (a mismatch is a verdict:
/// see [`Verified::passed`]).
#[derive(Debug, thiserror::Error)]
pub enum RestoreTestError {
    /// The snapshot could not be restored (not intact, no key...).
    #[error("restore test: {0}")]
    Restore(#[from] RestoreError),
    /// The restored rows could not be read back.
    #[error("restore test, reading the restored rows: {0}")]
    Recompute(#[from] SnapshotError),
    /// Connection problem.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The scratch database could not be dropped.
    #[error("dropping the scratch database `{database}`: {message}; drop it by hand")]
    Drop {
        /// Its name.
        database: String,
        /// The server's message.
        message: String,
    },
    /// `verified.json` could not be written.
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl From<VerifyError> for RestoreTestError {
    fn from(e: VerifyError) -> Self {
        RestoreTestError::Restore(RestoreError::Verify(e))
    }
}

/// The scratch database for database number `n` of the snapshot at `dir`
/// (a directory or a URL): unique to this process, within MariaDB's 64
/// characters.
fn scratch_name(dir: &Path, n: usize) -> String {
    let id: String = dir
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tail = id.len().saturating_sub(28);
    format!(
        "escola_restore_test_{}_{}_{n}",
        &id[tail..],
        std::process::id()
    )
}

/// Restores the snapshot in `dir` on the server of `url` into scratch
/// databases, compares every table with the manifest, drops them, and
/// records the verdict in `verified.json` (also when it failed, or when a
/// statement of the snapshot failed on the server).
pub async fn restore_test(
    dir: &Path,
    url: &Secret,
    opts: &RestoreTestOptions,
) -> Result<Verified, RestoreTestError> {
    let verified = restore_test_files(Arc::new(LocalDir::new(dir)), url, opts).await?;
    record(dir, &verified)?;
    Ok(verified)
}

/// [`restore_test`] of the snapshot `files`, wherever they are, without
/// recording the verdict: the caller writes `verified.json` where the
/// snapshot is.
pub async fn restore_test_files(
    files: Arc<dyn SnapshotFiles>,
    url: &Secret,
    opts: &RestoreTestOptions,
) -> Result<Verified, RestoreTestError> {
    let started = std::time::Instant::now();
    let location = files.location();
    // Verified once for all its databases, not once per restore.
    let (report, identities) = verified(
        files.clone(),
        opts.identities.clone(),
        true,
        opts.on_verified.clone(),
    )
    .await?;
    let VerifyReport {
        manifest,
        manifest_sha256,
        ..
    } = report;
    let server = DbTarget::from_secret(url)?
        .with_database(None)
        .with_timeouts(opts.timeouts);
    let mut tables = Vec::new();
    let mut restore_failed = None;
    for (n, db) in manifest.databases.iter().enumerate() {
        let scratch = scratch_name(&location, n);
        let restore_opts = scratch_restore(opts, &db.name, &scratch);
        let compared = async {
            restore_verified(
                files.clone(),
                &manifest,
                identities.clone(),
                url,
                &restore_opts,
            )
            .await?;
            let mut conn = server.connect().await?;
            let digests = table_digests(&mut conn, &scratch).await;
            conn.disconnect().await;
            Ok::<_, RestoreTestError>(digests?)
        }
        .await;
        // Dropped whatever happened, before the verdict is looked at.
        let mut conn = server.connect().await?;
        conn.query_drop(format!("DROP DATABASE IF EXISTS {}", ident(&scratch)))
            .await
            .map_err(|e| RestoreTestError::Drop {
                database: scratch.clone(),
                message: mask_url(&e.to_string()),
            })?;
        conn.disconnect().await;
        let restored = match compared {
            Ok(r) => r,
            // The snapshot itself does not restore: that is a verdict.
            Err(RestoreTestError::Restore(RestoreError::Statement {
                file, statement, ..
            })) => {
                restore_failed = Some(format!(
                    "{file}, statement {statement}, failed on the server"
                ));
                break;
            }
            Err(e) => return Err(e),
        };
        tables.extend(TableProof::of_database(db, &restored));
    }
    Ok(Verified {
        verified_at: Utc::now(),
        passed: restore_failed.is_none() && tables.iter().all(TableProof::matches),
        server: server.server(),
        manifest_sha256,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        tables,
        restore_failed,
    })
}

/// How a restore test restores database `source` into `scratch`.
fn scratch_restore(opts: &RestoreTestOptions, source: &str, scratch: &str) -> RestoreOptions {
    let mut restore_opts = RestoreOptions::new(scratch);
    restore_opts.source_database = Some(source.to_owned());
    // A scratch database of the same name can only be a leftover.
    restore_opts.force = true;
    restore_opts.timeouts = opts.timeouts;
    restore_opts.cancel = opts.cancel.clone();
    restore_opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_fit_and_differ_by_database() {
        let dir = Path::new("/s/escola_connect_production-20261202T200000Z-2");
        let a = scratch_name(dir, 0);
        assert!(a.starts_with("escola_restore_test_"), "{a}");
        assert!(a.len() <= 64, "{a}");
        assert!(a.contains("20261202T200000Z_2"), "{a}");
        assert_ne!(a, scratch_name(dir, 1));
    }
}
