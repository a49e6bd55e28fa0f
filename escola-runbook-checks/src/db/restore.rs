//! Verifying (no server needed), restoring and listing snapshots.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use escola_runbook_core::{CancellationToken, Secret};
use sha2::{Digest, Sha256};

use super::connect::{ConnectError, DbTarget, DbTimeouts, mask_url};
use super::crypt::{CryptError, Identities, open_stream};
use super::snapshot::{FORMAT, FileEntry, MANIFEST, Manifest, hex_digest};
use super::sql::{Splitter, ident};
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

/// Reads and parses the manifest of `dir`.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, String), VerifyError> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(VerifyError::NoManifest(dir.to_owned()));
        }
        Err(source) => return Err(VerifyError::Io { path, source }),
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| VerifyError::BadManifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if manifest.format != FORMAT {
        return Err(VerifyError::BadManifest {
            path,
            message: format!("format `{}`, expected `{FORMAT}`", manifest.format),
        });
    }
    for f in &manifest.files {
        if f.name.contains('/') || f.name.starts_with('.') || f.name.is_empty() {
            return Err(VerifyError::BadManifest {
                path,
                message: format!("file name `{}` is not a plain file name", f.name),
            });
        }
    }
    Ok((manifest, hex_digest(Sha256::digest(&bytes).as_slice())))
}

/// The size and sha256 of everything `reader` gives.
fn digest_all(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let read = reader.read(&mut buf)?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
        n += read as u64;
    }
    Ok((n, hex_digest(hasher.finalize().as_slice())))
}

fn check_file(dir: &Path, f: &FileEntry) -> Result<u64, VerifyError> {
    let path = dir.join(&f.name);
    let io = |source| VerifyError::Io {
        path: path.clone(),
        source,
    };
    let (n, actual) = digest_all(File::open(&path).map_err(io)?).map_err(io)?;
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
    Ok(n)
}

/// Decrypts the encrypted file `f` with `identities` and checks its
/// plaintext's sha256; `false` for a file with no plaintext hash.
fn check_plaintext(
    dir: &Path,
    f: &FileEntry,
    identities: &Identities,
    recipients: &[String],
) -> Result<bool, VerifyError> {
    let Some(expected) = &f.plaintext_sha256 else {
        return Ok(false);
    };
    let path = dir.join(&f.name);
    let reader = open_stream(&path, Some(identities), recipients)?;
    let (_, actual) = digest_all(reader).map_err(|source| VerifyError::Io {
        path: path.clone(),
        source,
    })?;
    if &actual != expected {
        return Err(VerifyError::Mismatch {
            path,
            what: "plaintext sha256",
            expected: expected.clone(),
            actual,
        });
    }
    Ok(true)
}

/// Checks every file of the snapshot in `dir` against its manifest (size
/// and sha256 of the file on disk: for an encrypted snapshot, the
/// ciphertext, no key needed). With `identities`, encrypted files are also
/// decrypted and their plaintext's sha256 checked. Needs no server.
pub fn verify(dir: &Path, identities: Option<&Identities>) -> Result<VerifyReport, VerifyError> {
    let (manifest, manifest_sha256) = read_manifest(dir)?;
    let mut bytes = 0;
    let mut plaintexts = 0;
    for f in &manifest.files {
        bytes += check_file(dir, f)?;
        if let Some(ids) = identities {
            if check_plaintext(dir, f, ids, manifest.recipients())? {
                plaintexts += 1;
            }
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
    let report = verify(dir, None)?;
    let manifest = report.manifest;
    let recipients = manifest.recipients();
    // An encrypted snapshot is opened with the identity before anything is
    // written: a missing or wrong key changes nothing.
    let identities = match (&manifest.encryption, &opts.identities) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(RestoreError::NeedsIdentity {
                dir: dir.to_owned(),
                recipients: recipients.join(", "),
            });
        }
        (Some(_), Some(ids)) => {
            if let Some(first) = manifest.files.first() {
                open_stream(&dir.join(&first.name), Some(ids), recipients)?;
            }
            Some(ids)
        }
    };
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
                path: dir.join(MANIFEST),
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

    let files: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.database == source.name)
        .collect();
    let mut statements = 0u64;
    for f in &files {
        let path = dir.join(&f.name);
        let io = |source| RestoreError::Io {
            path: path.clone(),
            source,
        };
        let stream = open_stream(&path, identities, recipients)?;
        let mut reader = BufReader::new(zstd::Decoder::new(stream).map_err(io)?);
        let mut splitter = Splitter::new();
        let mut line = Vec::new();
        let mut ready = Vec::new();
        let mut n = 0u64;
        let mut eof = false;
        while !eof {
            line.clear();
            // Decompression is synchronous, one line (at most one INSERT
            // statement) at a time.
            let read = reader.read_until(b'\n', &mut line).map_err(io)?;
            if read == 0 {
                eof = true;
                ready.extend(std::mem::take(&mut splitter).finish());
            } else {
                splitter.push_line(&line, &mut ready);
            }
            for stmt in ready.drain(..) {
                n += 1;
                if opts.cancel.is_cancelled() {
                    return Err(RestoreError::Cancelled);
                }
                conn.query_drop(stmt)
                    .await
                    .map_err(|e| RestoreError::Statement {
                        file: f.name.clone(),
                        statement: n,
                        message: mask_url(&e.to_string()),
                    })?;
            }
        }
        statements += n;
    }
    conn.disconnect().await;
    Ok(RestoreReport {
        source_database: source.name.clone(),
        target_database: target.clone(),
        files: files.len(),
        statements,
        rows: files.iter().map(|f| f.rows).sum(),
    })
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
}

impl std::fmt::Display for SnapshotStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotStatus::Complete => f.write_str("complete"),
            SnapshotStatus::Incomplete => f.write_str("incomplete"),
            SnapshotStatus::Damaged(why) => write!(f, "damaged: {why}"),
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
        let unread = |status| SnapshotListing {
            path: path.clone(),
            status,
            finished_at: mtime,
            bytes,
            databases: Vec::new(),
            rows: 0,
            encrypted: false,
            verified: None,
        };
        let listing = match read_manifest(&path) {
            _ if partial => unread(SnapshotStatus::Incomplete),
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
                        check_file(&path, f).err().map(|e| e.to_string())
                    } else {
                        match fs::metadata(path.join(&f.name)) {
                            Ok(md) if md.len() == f.bytes => None,
                            Ok(md) => Some(format!(
                                "{} is {} bytes, the manifest says {}",
                                f.name,
                                md.len(),
                                f.bytes
                            )),
                            Err(e) => Some(format!("{}: {e}", f.name)),
                        }
                    }
                });
                SnapshotListing {
                    status: problem.map_or(SnapshotStatus::Complete, SnapshotStatus::Damaged),
                    finished_at: Some(m.finished_at),
                    bytes,
                    databases: m.databases.iter().map(|d| d.name.clone()).collect(),
                    rows: m.total_rows,
                    encrypted: m.encryption.is_some(),
                    verified: last_verified(&path),
                    path,
                }
            }
        };
        out.push(listing);
    }
    out.sort_by_key(|l| std::cmp::Reverse(l.finished_at));
    Ok(out)
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
