//! Verifying (no server needed), restoring and listing snapshots.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use escola_runbook_core::{CancellationToken, Secret};
use sha2::{Digest, Sha256};

use super::connect::{DbTarget, DbTimeouts, mask_url};
use super::crypt::Identities;
use super::deferred_keys::{DeferredKeys, defer_keys};
use super::files::{LocalDir, SnapshotFiles, blocking};
use super::load::{Job, Source, open_file};
use super::params::DEFAULT_THREADS;
pub use super::restore_error::{RestoreError, VerifyError};
use super::snapshot::FileKind;
use super::snapshot::{FORMAT, FileEntry, MANIFEST, Manifest, PRUNING, hex_digest};
use super::sql::ident;
use super::verified::{Verified, last_verified};

/// What verifying a snapshot found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// The manifest.
    pub manifest: Manifest,
    /// sha256 of `manifest.json` itself, for evidence.
    pub manifest_sha256: String,
    /// Files checked.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Encrypted files whose plaintext was decrypted and checked too.
    pub plaintexts: usize,
}

/// Reads and parses the manifest of the snapshot in `dir`.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, String), VerifyError> {
    read_manifest_in(&LocalDir::new(dir))
}

/// Reads and parses the manifest of the snapshot `files`, and its sha256.
/// Blocking.
pub fn read_manifest_in(files: &dyn SnapshotFiles) -> Result<(Manifest, String), VerifyError> {
    let path = files.locate(MANIFEST);
    let io = |source| VerifyError::Io {
        path: path.clone(),
        source,
    };
    let mut bytes = Vec::new();
    match files.open(MANIFEST) {
        Ok(mut r) => r.read_to_end(&mut bytes).map_err(io)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(VerifyError::NoManifest(files.location()));
        }
        Err(source) => return Err(io(source)),
    };
    let manifest = parse_manifest(&bytes, &path)?;
    Ok((manifest, hex_digest(Sha256::digest(&bytes).as_slice())))
}

/// The manifest in `bytes` (read from `path`), its format and file names
/// checked.
pub(crate) fn parse_manifest(bytes: &[u8], path: &Path) -> Result<Manifest, VerifyError> {
    let bad = |message| VerifyError::BadManifest {
        path: path.to_owned(),
        message,
    };
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format `{}`, expected `{FORMAT}`",
            manifest.format
        )));
    }
    for f in &manifest.files {
        if f.name.contains('/') || f.name.starts_with('.') || f.name.is_empty() {
            return Err(bad(format!(
                "file name `{}` is not a plain file name",
                f.name
            )));
        }
    }
    Ok(manifest)
}

/// Told the verify report of a snapshot once every file matched its
/// manifest, before anything is restored (see
/// [`RestoreTestOptions::on_verified`](super::RestoreTestOptions::on_verified)).
pub type VerifiedFilesFn = Arc<dyn Fn(&VerifyReport) + Send + Sync>;

/// A reader that hashes and counts the bytes that pass through it, so
/// that one read of a file can both be checked and be decrypted.
struct Hashed<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Hashed<R> {
    fn new(inner: R) -> Self {
        Hashed {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what is left, then gives the size and sha256 of all of it.
    fn finish(mut self) -> io::Result<(u64, String)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.bytes, hex_digest(self.hasher.finalize().as_slice())))
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// `n` bytes with sha256 `actual`, read from `path`, against the manifest
/// entry `f`: size first, then sha256.
fn matches_entry(path: PathBuf, f: &FileEntry, n: u64, actual: String) -> Result<(), VerifyError> {
    if n != f.bytes {
        return Err(VerifyError::Mismatch {
            path,
            what: "size",
            expected: f.bytes.to_string(),
            actual: n.to_string(),
        });
    }
    if actual != f.sha256 {
        return Err(VerifyError::Mismatch {
            path,
            what: "sha256",
            expected: f.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Checks the file `f` of the snapshot `files` against its manifest entry
/// (size, then sha256), streaming it; its size. Blocking.
pub fn check_file(files: &dyn SnapshotFiles, f: &FileEntry) -> Result<u64, VerifyError> {
    let path = files.locate(&f.name);
    let io = |source| VerifyError::Io {
        path: path.clone(),
        source,
    };
    let (n, actual) = Hashed::new(files.open(&f.name).map_err(io)?)
        .finish()
        .map_err(io)?;
    matches_entry(path, f, n, actual)?;
    Ok(n)
}

/// [`check_file`] of the encrypted file `f`, which in the same read is
/// decrypted with `identities` and its plaintext's sha256 checked; its
/// size, and `false` for a file with no plaintext hash (only its
/// ciphertext is checked). A ciphertext that differs from the manifest is
/// the error even when decrypting it failed too: it is the cause.
fn check_sealed_file(
    files: &dyn SnapshotFiles,
    f: &FileEntry,
    identities: &Identities,
    recipients: &[String],
) -> Result<(u64, bool), VerifyError> {
    let Some(expected) = &f.plaintext_sha256 else {
        return Ok((check_file(files, f)?, false));
    };
    let path = files.locate(&f.name);
    let io = |source| VerifyError::Io {
        path: path.clone(),
        source,
    };
    let mut sealed = Hashed::new(files.open(&f.name).map_err(io)?);
    let plaintext = identities
        .open(
            io::BufReader::with_capacity(1 << 16, &mut sealed),
            &path,
            recipients,
        )
        .map_err(VerifyError::from)
        .and_then(|plain| Hashed::new(plain).finish().map_err(io));
    let (n, actual) = sealed.finish().map_err(io)?;
    matches_entry(path.clone(), f, n, actual)?;
    let (_, actual) = plaintext?;
    if &actual != expected {
        return Err(VerifyError::Mismatch {
            path,
            what: "plaintext sha256",
            expected: expected.clone(),
            actual,
        });
    }
    Ok((n, true))
}

/// Checks every file of the snapshot in `dir` against its manifest (size
/// and sha256 of the file on disk: for an encrypted snapshot, the
/// ciphertext, no key needed). With `identities`, encrypted files are also
/// decrypted and their plaintext's sha256 checked. Needs no server.
pub fn verify(dir: &Path, identities: Option<&Identities>) -> Result<VerifyReport, VerifyError> {
    verify_in(&LocalDir::new(dir), identities)
}

/// [`verify`] for the snapshot `files`, wherever they are: every file is
/// streamed and hashed, nothing is written. Blocking.
pub fn verify_in(
    files: &dyn SnapshotFiles,
    identities: Option<&Identities>,
) -> Result<VerifyReport, VerifyError> {
    let (manifest, manifest_sha256) = read_manifest_in(files)?;
    let mut bytes = 0;
    let mut plaintexts = 0;
    let recipients = manifest.recipients();
    for f in &manifest.files {
        match identities {
            Some(ids) => {
                let (n, decrypted) = check_sealed_file(files, f, ids, recipients)?;
                bytes += n;
                plaintexts += usize::from(decrypted);
            }
            None => bytes += check_file(files, f)?,
        }
    }
    Ok(VerifyReport {
        files: manifest.files.len(),
        manifest,
        manifest_sha256,
        bytes,
        plaintexts,
    })
}

/// [`verify_in`] on a blocking thread, for async callers (the remote
/// snapshots of `offsite`).
pub async fn verify_files(
    files: Arc<dyn SnapshotFiles>,
    identities: Option<Identities>,
) -> Result<VerifyReport, VerifyError> {
    let reading = files.clone();
    blocking(move || verify_in(&*reading, identities.as_ref()))
        .await
        .map_err(|source| VerifyError::Io {
            path: files.location(),
            source,
        })?
}

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Database to restore into (created if missing).
    pub target_database: String,
    /// Which database of the snapshot; may be omitted when it holds one.
    pub source_database: Option<String>,
    /// Drop and recreate a target that already holds tables, views or
    /// routines. Without it such a target is refused.
    pub force: bool,
    /// Stops between statements.
    pub cancel: CancellationToken,
    /// Connect and read timeouts (each statement's answer).
    pub timeouts: DbTimeouts,
    /// Decrypts an encrypted snapshot; required for one.
    pub identities: Option<Identities>,
    /// Connections loading rows and building keys at once; each loads
    /// whole files (tables, or primary-key ranges of big ones).
    pub threads: usize,
}

impl RestoreOptions {
    /// Restore into `target`, refusing a non-empty one.
    pub fn new(target: impl Into<String>) -> Self {
        RestoreOptions {
            target_database: target.into(),
            source_database: None,
            force: false,
            cancel: CancellationToken::new(),
            timeouts: DbTimeouts::SNAPSHOT,
            identities: None,
            threads: DEFAULT_THREADS,
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The database restored from.
    pub source_database: String,
    /// The database written.
    pub target_database: String,
    /// Files applied.
    pub files: usize,
    /// Statements executed.
    pub statements: u64,
    /// Rows the manifest says were restored.
    pub rows: u64,
    /// Connections the rows were loaded over.
    pub connections: usize,
    /// Secondary keys built after the rows instead of row by row (see
    /// `deferred_keys`).
    pub deferred_keys: usize,
    /// INSERT statements sent as the rows `LOAD DATA LOCAL INFILE` reads,
    /// which the server loads faster than it parses SQL; 0 when its
    /// `local_infile` is off (then every INSERT runs as SQL).
    pub load_data_statements: u64,
}

fn query_err(during: &str) -> impl FnOnce(mysql_async::Error) -> RestoreError + '_ {
    move |e| RestoreError::Query {
        during: during.to_owned(),
        message: mask_url(&e.to_string()),
    }
}

/// Restores one database of the snapshot in `dir` into
/// `opts.target_database`, after verifying every checksum.
pub async fn restore(
    dir: &Path,
    url: &Secret,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    restore_from(Arc::new(LocalDir::new(dir)), url, opts).await
}

/// [`restore`] from the snapshot `files`, wherever they are: every file is
/// verified first (streamed, nothing written to disk), then streamed again,
/// decompressed and decrypted on blocking threads, into the server: the
/// schema on one connection, the rows over `opts.threads` (see `load`),
/// the keys deferred until after the rows, then the post-data objects.
pub async fn restore_from(
    files: Arc<dyn SnapshotFiles>,
    url: &Secret,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let (report, identities) =
        verified(files.clone(), opts.identities.clone(), false, None).await?;
    restore_verified(files, &report.manifest, identities, url, opts).await
}

/// [`restore_from`] of the snapshot `files` that [`verified`] checked
/// and gave `manifest` and `identities` of (`opts.identities` is not
/// read): for a caller that restores one verified snapshot more than
/// once, so that it is read whole once more per restore, not twice.
pub(crate) async fn restore_verified(
    files: Arc<dyn SnapshotFiles>,
    manifest: &Manifest,
    identities: Option<Identities>,
    url: &Secret,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let recipients = manifest.recipients();
    let available = manifest
        .databases
        .iter()
        .map(|d| format!("`{}`", d.name))
        .collect::<Vec<_>>()
        .join(", ");
    let source = match (&opts.source_database, manifest.databases.as_slice()) {
        (Some(name), dbs) => {
            dbs.iter()
                .find(|d| &d.name == name)
                .ok_or_else(|| RestoreError::UnknownSource {
                    name: name.clone(),
                    available: available.clone(),
                })?
        }
        (None, [one]) => one,
        (None, _) => return Err(RestoreError::ChooseSource { available }),
    };
    let target = &opts.target_database;
    // The manifest is not covered by the file checksums: never splice its
    // charset names into SQL unchecked.
    for name in [&source.charset, &source.collation] {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(RestoreError::Verify(VerifyError::BadManifest {
                path: files.locate(MANIFEST),
                message: format!("character set or collation `{name}` is not a plain name"),
            }));
        }
    }
    let server = DbTarget::from_secret(url)?
        .with_database(None)
        .with_timeouts(opts.timeouts);
    let mut conn = server.connect().await?;

    let during = format!("inspecting target database `{target}`");
    let objects: u64 = conn
        .exec_first(
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
            (target.as_str(), target.as_str(), target.as_str()),
        )
        .await
        .map_err(query_err(&during))?
        .unwrap_or(0);
    if objects > 0 {
        if !opts.force {
            return Err(RestoreError::TargetNotEmpty {
                target: target.clone(),
                objects,
            });
        }
        conn.query_drop(format!("DROP DATABASE {}", ident(target)))
            .await
            .map_err(query_err("dropping the target database (forced)"))?;
    }
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET {} COLLATE {}",
        ident(target),
        source.charset,
        source.collation
    ))
    .await
    .map_err(query_err("creating the target database"))?;
    conn.query_drop(format!("USE {}", ident(target)))
        .await
        .map_err(query_err("switching to the target database"))?;

    let entries: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.database == source.name)
        .collect();
    let of_kind = |kind| entries.iter().filter(move |f| f.kind == kind).copied();
    // Unreadable (an old server, a proxy): the rows go as SQL.
    let local_infile: Option<i64> = conn
        .query_first("SELECT @@GLOBAL.local_infile")
        .await
        .ok()
        .flatten();
    let load = Source {
        files: files.clone(),
        identities,
        recipients: recipients.into(),
        cancel: opts.cancel.clone(),
        load_data: local_infile == Some(1),
    };
    // The tables, without the keys that are faster built after the rows.
    let mut statements = 0;
    let mut deferred = DeferredKeys::default();
    for f in of_kind(FileKind::Schema) {
        let mut schema = load.read_all(f).await?;
        let d = defer_keys(&mut schema);
        deferred.alters.extend(d.alters);
        deferred.keys += d.keys;
        statements += load.run_all(&mut conn, f, schema).await?;
    }
    // The rows, biggest files first so that the connections finish
    // together; each table's deferred keys as soon as its rows are in.
    let mut data: Vec<&FileEntry> = of_kind(FileKind::Data).collect();
    data.sort_by_key(|f| std::cmp::Reverse(f.sql_bytes));
    let connections = opts
        .threads
        .clamp(1, data.len().max(deferred.alters.len()).max(1));
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut worker = server.connect().await?;
        worker
            .query_drop(format!("USE {}", ident(target)))
            .await
            .map_err(query_err("switching to the target database"))?;
        Source::prepare(&mut worker).await?;
        workers.push(worker);
    }
    let jobs = data
        .into_iter()
        .cloned()
        .map(Job::File)
        .chain(deferred.alters.into_iter().map(Job::Build))
        .collect();
    let loaded = load.in_parallel(&mut workers, jobs).await?;
    statements += loaded.statements;
    for worker in workers {
        worker.disconnect().await;
    }
    // Views, routines and triggers last, so triggers do not fire on the
    // restored rows.
    for f in of_kind(FileKind::PostData) {
        statements += load.apply(&mut conn, f).await?.statements;
    }
    conn.disconnect().await;
    Ok(RestoreReport {
        source_database: source.name.clone(),
        target_database: target.clone(),
        files: entries.len(),
        statements,
        rows: entries.iter().map(|f| f.rows).sum(),
        connections,
        deferred_keys: deferred.keys,
        load_data_statements: loaded.as_rows,
    })
}

/// The verify report of the snapshot `files` (every file read whole:
/// see [`verify_in`]; with `plaintexts`, encrypted files are decrypted and
/// checked in the same read), and the identities to decrypt it with (none
/// for a plain snapshot). `told` gets the report as soon as every file
/// matched, before the key is looked at. An encrypted snapshot is opened
/// with the identities before anything is written, so a missing or wrong
/// key changes nothing.
pub(crate) async fn verified(
    files: Arc<dyn SnapshotFiles>,
    identities: Option<Identities>,
    plaintexts: bool,
    told: Option<VerifiedFilesFn>,
) -> Result<(VerifyReport, Option<Identities>), RestoreError> {
    let reading = files.clone();
    blocking(move || checked(&*reading, identities, plaintexts, told))
        .await
        .map_err(|source| RestoreError::Io {
            path: files.location(),
            source,
        })?
}

/// [`verified`], blocking.
fn checked(
    files: &dyn SnapshotFiles,
    identities: Option<Identities>,
    plaintexts: bool,
    told: Option<VerifiedFilesFn>,
) -> Result<(VerifyReport, Option<Identities>), RestoreError> {
    let plaintexts = identities.as_ref().filter(|_| plaintexts);
    let report = verify_in(files, plaintexts).map_err(refused)?;
    if let Some(told) = told {
        told(&report);
    }
    let manifest = &report.manifest;
    let recipients = manifest.recipients();
    let identities = match (&manifest.encryption, identities) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(RestoreError::NeedsIdentity {
                dir: files.location(),
                recipients: recipients.join(", "),
            });
        }
        (Some(_), Some(ids)) => {
            // Unless the verify pass decrypted the files already.
            if let (Some(first), 0) = (manifest.files.first(), report.plaintexts) {
                open_file(files, first, Some(&ids), recipients).map_err(refused)?;
            }
            Some(ids)
        }
    };
    Ok((report, identities))
}

/// A verify error as the reason a restore is refused: a key that does not
/// open the snapshot is told as such, anything else as a snapshot that is
/// not intact.
fn refused(e: VerifyError) -> RestoreError {
    match e {
        VerifyError::Crypt(e) => RestoreError::Crypt(e),
        other => RestoreError::Verify(other),
    }
}

/// The state of a snapshot directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Manifest present, every file present with the right size (and, when
    /// checksums were asked for, the right sha256).
    Complete,
    /// Interrupted: a `.partial` directory, or no manifest.
    Incomplete,
    /// Files missing, resized or (with checksums) altered.
    Damaged(String),
    /// A prune began deleting it and was cut short: its manifest is gone
    /// and its [`PRUNING`] marker says why. The next
    /// prune finishes the deletion.
    BeingDeleted,
}

impl std::fmt::Display for SnapshotStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotStatus::Complete => f.write_str("complete"),
            SnapshotStatus::Incomplete => f.write_str("incomplete"),
            SnapshotStatus::Damaged(why) => write!(f, "damaged: {why}"),
            SnapshotStatus::BeingDeleted => f.write_str("being deleted (a prune was cut short)"),
        }
    }
}

/// One entry of [`list`].
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotListing {
    /// Directory.
    pub path: PathBuf,
    /// State.
    pub status: SnapshotStatus,
    /// When it finished (from the manifest), else the directory's mtime.
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes on disk.
    pub bytes: u64,
    /// Databases, from the manifest.
    pub databases: Vec<String>,
    /// Rows, from the manifest.
    pub rows: u64,
    /// Encrypted (the manifest names recipients).
    pub encrypted: bool,
    /// The last restore test, if one was recorded.
    pub verified: Option<Verified>,
}

impl SnapshotListing {
    /// A snapshot whose manifest could not be read: `status` says why.
    pub(crate) fn unread(
        path: PathBuf,
        status: SnapshotStatus,
        finished_at: Option<DateTime<Utc>>,
        bytes: u64,
    ) -> Self {
        SnapshotListing {
            path,
            status,
            finished_at,
            bytes,
            databases: Vec::new(),
            rows: 0,
            encrypted: false,
            verified: None,
        }
    }

    /// Age relative to `now`.
    pub fn age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.finished_at.map(|t| now - t)
    }
}

/// The snapshots under `dir`, newest first. With `checksums`, every file's
/// sha256 is checked (slow on big snapshots); otherwise sizes only.
pub fn list(dir: &Path, checksums: bool) -> io::Result<Vec<SnapshotListing>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = dir_size(&path);
        let mtime = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .map(DateTime::<Utc>::from);
        let partial = name.starts_with('.') && name.ends_with(".partial");
        let unread = |status| SnapshotListing::unread(path.clone(), status, mtime, bytes);
        let listed = match read_manifest(&path) {
            _ if partial => unread(SnapshotStatus::Incomplete),
            Err(VerifyError::NoManifest(_)) if path.join(PRUNING).is_file() => {
                unread(SnapshotStatus::BeingDeleted)
            }
            Err(VerifyError::NoManifest(_)) => {
                // Only directories that look like ours are listed.
                let looks_like_snapshot = fs::read_dir(&path)
                    .map(|mut d| {
                        d.any(|e| {
                            e.map(|e| e.file_name().to_string_lossy().contains(".sql.zst"))
                                .unwrap_or(false)
                        })
                    })
                    .unwrap_or(false);
                if !looks_like_snapshot {
                    continue;
                }
                unread(SnapshotStatus::Incomplete)
            }
            Err(e) => unread(SnapshotStatus::Damaged(e.to_string())),
            Ok((m, _)) => {
                let problem = m.files.iter().find_map(|f| {
                    if checksums {
                        check_file(&LocalDir::new(&path), f)
                            .err()
                            .map(|e| e.to_string())
                    } else {
                        let size = fs::metadata(path.join(&f.name)).map(|md| md.len());
                        size_problem(f, size)
                    }
                });
                let verified = last_verified(&path);
                listing(path, &m, problem, bytes, verified)
            }
        };
        out.push(listed);
    }
    out.sort_by_key(|l| std::cmp::Reverse(l.finished_at));
    Ok(out)
}

/// The listing of the snapshot at `path` from its manifest `m`: complete
/// unless `problem` names a file that does not match.
pub(crate) fn listing(
    path: PathBuf,
    m: &Manifest,
    problem: Option<String>,
    bytes: u64,
    verified: Option<Verified>,
) -> SnapshotListing {
    SnapshotListing {
        status: problem.map_or(SnapshotStatus::Complete, SnapshotStatus::Damaged),
        finished_at: Some(m.finished_at),
        bytes,
        databases: m.databases.iter().map(|d| d.name.clone()).collect(),
        rows: m.total_rows,
        encrypted: m.encryption.is_some(),
        verified,
        path,
    }
}

/// What is wrong with the file `f` given its `size` (or why it could not
/// be read): `None` when it has the manifest's size.
pub(crate) fn size_problem(
    f: &FileEntry,
    size: Result<u64, impl std::fmt::Display>,
) -> Option<String> {
    match size {
        Ok(n) if n == f.bytes => None,
        Ok(n) => Some(format!(
            "{} is {n} bytes, the manifest says {}",
            f.name, f.bytes
        )),
        Err(e) => Some(format!("{}: {e}", f.name)),
    }
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
