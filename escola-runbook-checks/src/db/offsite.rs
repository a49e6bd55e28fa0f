//! Off-site copies of snapshots on S3-compatible object storage, through
//! the `object_store` crate (Apache Arrow's, feature `aws`): push a local
//! snapshot, list the snapshots under a prefix, prune them by the local
//! retention rules, restore-test one, and give verify and restore the
//! remote files as [`SnapshotFiles`], streamed (nothing is downloaded to
//! disk).
//!
//! A snapshot `NAME` pushed to `s3://BUCKET/PREFIX` is the objects
//! `PREFIX/NAME/<file>`, its manifest uploaded last, and only once every
//! other object's size and sha256 match it: a remote snapshot without its
//! manifest is incomplete (an interrupted push), and restore refuses it.
//!
//! Endpoint, region and credentials come only from the `AWS_*` environment
//! variables (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`); no
//! message here shows them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use escola_runbook_core::{CancellationToken, Secret};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

use super::files::{SnapshotFiles, blocking};
use super::proof::{RestoreTestError, RestoreTestOptions, restore_test_files};
use super::prune::{
    Decision, Matching, PruneError, Retention, decide, needed_by_runs, pruning_note,
};
use super::restore::{
    SnapshotListing, SnapshotStatus, VerifyError, check_file, listing, parse_manifest,
    size_problem, verify,
};
use super::snapshot::{FileEntry, MANIFEST, PRUNING, hex_digest};
use super::verified::{RecordError, VERIFIED, Verified};

/// Multipart part size: a file larger than this goes up in parts of this
/// size, at most [`PARTS_IN_FLIGHT`] at once, so a push holds at most
/// about `PART_SIZE × (PARTS_IN_FLIGHT + 1)` in memory whatever the file's
/// size (S3 wants parts of at least 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// Parts of one file uploaded concurrently.
pub const PARTS_IN_FLIGHT: usize = 2;

/// `s3://BUCKET/PREFIX`: where snapshots are kept (push, list), or one
/// snapshot (verify, restore). Holds no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotUrl {
    bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
}

impl SnapshotUrl {
    /// The URL of `name` under this one (a snapshot under its prefix).
    pub fn join(&self, name: &str) -> SnapshotUrl {
        SnapshotUrl {
            bucket: self.bucket.clone(),
            prefix: if self.prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{}/{name}", self.prefix)
            },
        }
    }

    fn key(&self, name: &str) -> Key {
        Key::from(self.join(name).prefix)
    }

    fn prefix_key(&self) -> Option<Key> {
        (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()))
    }
}

impl fmt::Display for SnapshotUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl FromStr for SnapshotUrl {
    type Err = OffsiteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| OffsiteError::BadUrl {
            url: s.to_owned(),
            why: why.to_owned(),
        };
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(match s.split_once("://") {
                Some((scheme, _)) => bad(&format!("scheme `{scheme}` is not supported")),
                None => bad("not a URL"),
            });
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['@', ':', '?', '#']) {
            return Err(bad("no plain bucket name after s3://"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|seg| matches!(seg, "." | "..") || (seg.is_empty() && !prefix.is_empty()))
        {
            return Err(bad("the prefix has an empty, `.` or `..` segment"));
        }
        Ok(SnapshotUrl {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// Why an off-site operation failed. Messages name the URL, never the
/// endpoint's credentials.
#[derive(Debug, thiserror::Error)]
pub enum OffsiteError {
    /// Not an `s3://BUCKET/PREFIX` URL.
    #[error("`{url}`: {why}; give s3://BUCKET/PREFIX")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The client could not be configured from the `AWS_*` variables.
    #[error("{url}: cannot configure the S3 client from the AWS_* variables: {message}")]
    Config {
        /// The URL.
        url: SnapshotUrl,
        /// object_store's message.
        message: String,
    },
    /// The bucket does not exist.
    #[error(
        "{url}: bucket `{bucket}` does not exist on the endpoint; create it, or correct the URL or AWS_ENDPOINT_URL"
    )]
    NoBucket {
        /// The URL.
        url: SnapshotUrl,
        /// The bucket.
        bucket: String,
    },
    /// The store refused the credentials or the operation.
    #[error(
        "{url}: access denied ({message}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's policy"
    )]
    AccessDenied {
        /// The URL.
        url: SnapshotUrl,
        /// The store's message.
        message: String,
    },
    /// No credentials: none in the `AWS_*` variables, so the client asked
    /// the instance metadata service (EC2's), which gave none: this is not
    /// an EC2 host with a role.
    #[error(
        "{url}: no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and no instance metadata service gave any ({message}); set them, and AWS_ENDPOINT_URL for a store that is not AWS"
    )]
    NoCredentials {
        /// The URL.
        url: SnapshotUrl,
        /// object_store's message.
        message: String,
    },
    /// Any other failure of the store.
    #[error("{url}: {message}")]
    Store {
        /// The URL (of the object, when one was being read or written).
        url: SnapshotUrl,
        /// object_store's message.
        message: String,
    },
    /// Nothing under the URL.
    #[error(
        "{0}: no snapshot there (no object under this prefix); see `snapshot list --from` the prefix above it"
    )]
    NoSnapshot(SnapshotUrl),
    /// The local snapshot is not complete and intact: nothing was pushed.
    #[error("refusing to push: {0}")]
    Local(#[from] VerifyError),
    /// An uploaded object does not match the manifest; the remote
    /// snapshot has no manifest, so it stays incomplete.
    #[error(
        "{url}: {what} is {actual} after the upload, the manifest says {expected}; the remote snapshot is incomplete, push it again"
    )]
    Mismatch {
        /// The object.
        url: SnapshotUrl,
        /// "size" or "sha256".
        what: &'static str,
        /// The manifest's value.
        expected: String,
        /// What was uploaded.
        actual: String,
    },
    /// A local file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The runs could not be read: a snapshot one needs cannot be told
    /// apart, so nothing was deleted.
    #[error(transparent)]
    Runs(#[from] PruneError),
    /// The snapshots to prune could not be listed; nothing was deleted.
    #[error("{0}; nothing was deleted")]
    NotPruned(#[source] Box<OffsiteError>),
    /// A snapshot could not be deleted: those before it were, the rest
    /// was not tried.
    #[error(
        "deleting {url}: {source}; {}{}",
        if *.manifest_deleted {
            "its manifest is deleted, so it lists as incomplete and prune keeps it: delete the objects left under it by hand"
        } else {
            "nothing of it was deleted"
        },
        deleted_before(.deleted)
    )]
    PruneStopped {
        /// The snapshot.
        url: SnapshotUrl,
        /// Its manifest was deleted before the failure.
        manifest_deleted: bool,
        /// The snapshots deleted before it.
        deleted: Vec<PathBuf>,
        /// Why not.
        source: Box<OffsiteError>,
    },
    /// Cancelled before the manifest was uploaded.
    #[error(
        "the push to {0} was stopped; the remote snapshot has no manifest (listed incomplete), push it again to complete it"
    )]
    Cancelled(SnapshotUrl),
}

/// "; deleted before it: a, b", or nothing.
fn deleted_before(deleted: &[PathBuf]) -> String {
    if deleted.is_empty() {
        return String::new();
    }
    let names: Vec<String> = deleted
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    format!("; deleted before it: {}", names.join(", "))
}

/// What an object-store error means for `url`: a missing bucket and a
/// refusal are told apart (by the S3 error codes) from the rest.
fn store_err(url: &SnapshotUrl, e: &object_store::Error) -> OffsiteError {
    let message = e.to_string();
    if message.contains("NoSuchBucket") {
        return OffsiteError::NoBucket {
            url: url.clone(),
            bucket: url.bucket.clone(),
        };
    }
    // The paths of the instance metadata service, where the client goes
    // for credentials the environment does not hold.
    if ["/latest/api/token", "/latest/meta-data/iam"]
        .iter()
        .any(|path| message.contains(path))
    {
        return OffsiteError::NoCredentials {
            url: url.clone(),
            message,
        };
    }
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    ]
    .iter()
    .any(|code| message.contains(code));
    if denied {
        OffsiteError::AccessDenied {
            url: url.clone(),
            message,
        }
    } else {
        OffsiteError::Store {
            url: url.clone(),
            message,
        }
    }
}

/// A prefix of an S3-compatible store, configured from the `AWS_*`
/// environment variables. Debug shows the URL only (the client's own
/// holds the credentials).
#[derive(Clone)]
pub struct Store {
    url: SnapshotUrl,
    store: Arc<dyn ObjectStore>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

impl Store {
    /// The store of `url`'s bucket, its endpoint, region and credentials
    /// from the environment (the AWS SDKs' variables).
    pub fn from_env(url: &SnapshotUrl) -> Result<Store, OffsiteError> {
        Store::from_vars(url, std::env::vars())
    }

    /// The store of `url`'s bucket configured from `vars`, read as
    /// [`from_env`](Store::from_env) reads the environment: the `AWS_*`
    /// names, others ignored. Requests are retried a few times, for at most
    /// 30 s.
    pub fn from_vars(
        url: &SnapshotUrl,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Store, OffsiteError> {
        let mut builder = AmazonS3Builder::new();
        for (name, value) in vars {
            if !name.starts_with("AWS_") {
                continue;
            }
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder
            .with_bucket_name(&url.bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| OffsiteError::Config {
                url: url.clone(),
                message: e.to_string(),
            })?;
        Ok(Store {
            url: url.clone(),
            store: Arc::new(store),
        })
    }

    /// The URL.
    pub fn url(&self) -> &SnapshotUrl {
        &self.url
    }

    /// The store of `name` under this prefix.
    pub fn join(&self, name: &str) -> Store {
        Store {
            url: self.url.join(name),
            store: self.store.clone(),
        }
    }

    /// The snapshot at this URL as files for [`verify_files`] and
    /// [`restore_from`], after checking that the bucket answers and holds
    /// something there: a missing bucket, refused credentials or an empty
    /// prefix are told here, before any reading.
    ///
    /// [`verify_files`]: super::restore::verify_files
    /// [`restore_from`]: super::restore::restore_from
    pub async fn snapshot(&self) -> Result<Arc<dyn SnapshotFiles>, OffsiteError> {
        let prefix = self.url.prefix_key();
        let first = self
            .store
            .list(prefix.as_ref())
            .try_next()
            .await
            .map_err(|e| store_err(&self.url, &e))?;
        if first.is_none() {
            return Err(OffsiteError::NoSnapshot(self.url.clone()));
        }
        Ok(Arc::new(self.files()))
    }

    /// The objects under this prefix as a snapshot's files (not checked).
    fn files(&self) -> RemoteFiles {
        RemoteFiles {
            url: self.url.clone(),
            store: self.store.clone(),
            handle: Handle::current(),
        }
    }
}

/// The objects of one remote snapshot, read as blocking streams.
struct RemoteFiles {
    url: SnapshotUrl,
    store: Arc<dyn ObjectStore>,
    handle: Handle,
}

impl SnapshotFiles for RemoteFiles {
    fn location(&self) -> PathBuf {
        PathBuf::from(self.url.to_string())
    }

    fn locate(&self, name: &str) -> PathBuf {
        PathBuf::from(self.url.join(name).to_string())
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let got = self.handle.block_on(self.store.get(&self.url.key(name)))?;
        let body = tokio_util::io::StreamReader::new(got.into_stream().map_err(io::Error::from));
        Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
            body,
            self.handle.clone(),
        )))
    }
}

/// One object of a push, as it was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The file's name in the snapshot.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Already there and matching the manifest: not uploaded again.
    pub skipped: bool,
}

/// Told each object once it is in place (before the manifest).
pub type PushedFn = Arc<dyn Fn(&Pushed) + Send + Sync>;

/// How to push.
#[derive(Clone, Default)]
pub struct PushOptions {
    /// Stops between parts; the manifest is then not uploaded.
    pub cancel: CancellationToken,
    /// Told each object in place.
    pub on_object: Option<PushedFn>,
}

impl fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushOptions")
            .field("on_object", &self.on_object.is_some())
            .finish_non_exhaustive()
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The remote snapshot.
    pub url: SnapshotUrl,
    /// Objects uploaded, the manifest included.
    pub uploaded: usize,
    /// Objects already there and matching, not uploaded again.
    pub skipped: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// sha256 of the manifest.
    pub manifest_sha256: String,
}

/// Pushes the snapshot in `dir` to `PREFIX/NAME/` of `to`: the snapshot is
/// verified locally first, every file is uploaded (or skipped when the
/// object there already has the manifest's size and sha256), each upload
/// hashed as it streams and its size read back, and the manifest goes last,
/// only when everything else matches. A `verified.json` follows the
/// manifest.
pub async fn push(dir: &Path, to: &Store, opts: &PushOptions) -> Result<PushReport, OffsiteError> {
    let local = dir.to_owned();
    let io = |source| OffsiteError::Io {
        path: dir.to_owned(),
        source,
    };
    let checked = blocking(move || verify(&local, None)).await.map_err(io)??;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .ok_or_else(|| VerifyError::NoManifest(dir.to_owned()))?;
    let remote = to.join(&name);
    let mut report = PushReport {
        url: remote.url.clone(),
        uploaded: 0,
        skipped: 0,
        bytes_uploaded: 0,
        manifest_sha256: checked.manifest_sha256.clone(),
    };
    // A copy a prune began deleting is pushed again: its marker goes first,
    // or a push cut short would look like a deletion to finish.
    match remote.store.delete(&remote.url.key(PRUNING)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store_err(&remote.url.join(PRUNING), &e)),
    }
    for f in &checked.manifest.files {
        let skipped = matches_already(&remote, f).await?;
        if !skipped {
            upload_file(&remote, dir, f, &opts.cancel).await?;
            report.uploaded += 1;
            report.bytes_uploaded += f.bytes;
        } else {
            report.skipped += 1;
        }
        if let Some(tell) = &opts.on_object {
            tell(&Pushed {
                name: f.name.clone(),
                bytes: f.bytes,
                skipped,
            });
        }
    }
    // The manifest, byte for byte as verified: only now the snapshot is
    // complete on the store.
    for extra in [MANIFEST, VERIFIED] {
        let path = dir.join(extra);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if extra == VERIFIED && e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(OffsiteError::Io { path, source }),
        };
        let sha = hex_digest(Sha256::digest(&bytes).as_slice());
        if extra == MANIFEST && sha != checked.manifest_sha256 {
            return Err(VerifyError::BadManifest {
                path,
                message: "it changed while the snapshot was pushed".into(),
            }
            .into());
        }
        if opts.cancel.is_cancelled() {
            return Err(OffsiteError::Cancelled(remote.url.clone()));
        }
        let len = bytes.len() as u64;
        if same_small(&remote, extra, &sha).await? {
            report.skipped += 1;
            continue;
        }
        let key = remote.url.key(extra);
        remote
            .store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|e| store_err(&remote.url.join(extra), &e))?;
        check_size(&remote, extra, len).await?;
        report.uploaded += 1;
        report.bytes_uploaded += len;
    }
    Ok(report)
}

/// Whether the object for `f` is already on the store with the manifest's
/// size and sha256 (read back, streamed).
async fn matches_already(remote: &Store, f: &FileEntry) -> Result<bool, OffsiteError> {
    match remote.store.head(&remote.url.key(&f.name)).await {
        Err(object_store::Error::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(store_err(&remote.url.join(&f.name), &e)),
        Ok(meta) if meta.size != f.bytes => return Ok(false),
        Ok(_) => {}
    }
    let files = remote.files();
    let entry = f.clone();
    let checked = blocking(move || check_file(&files, &entry))
        .await
        .map_err(|source| OffsiteError::Io {
            path: PathBuf::from(remote.url.join(&f.name).to_string()),
            source,
        })?;
    Ok(checked.is_ok())
}

/// Uploads the file `f` of the snapshot in `dir`, in parts, hashing it as
/// it streams: aborted unless its size and sha256 are the manifest's; then
/// the object's size is read back.
async fn upload_file(
    remote: &Store,
    dir: &Path,
    f: &FileEntry,
    cancel: &CancellationToken,
) -> Result<(), OffsiteError> {
    let (name, bytes, sha256) = (f.name.as_str(), f.bytes, f.sha256.as_str());
    let path = &dir.join(name);
    let url = remote.url.join(name);
    let io = |source| OffsiteError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let upload = remote
        .store
        .put_multipart(&remote.url.key(name))
        .await
        .map_err(|e| store_err(&url, &e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let streamed = loop {
        if cancel.is_cancelled() {
            break Err(OffsiteError::Cancelled(remote.url.clone()));
        }
        let read = match file.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(e) => break Err(io(e)),
        };
        hasher.update(&buf[..read]);
        n += read as u64;
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            break Err(store_err(&url, &e));
        }
        writer.write(&buf[..read]);
    };
    let actual = hex_digest(hasher.finalize().as_slice());
    let mismatch = if n != bytes {
        Some(("size", bytes.to_string(), n.to_string()))
    } else if actual != sha256 {
        Some(("sha256", sha256.to_owned(), actual))
    } else {
        None
    };
    match (streamed, mismatch) {
        (Err(e), _) => {
            let _ = writer.abort().await;
            return Err(e);
        }
        (Ok(()), Some((what, expected, actual))) => {
            let _ = writer.abort().await;
            return Err(OffsiteError::Mismatch {
                url,
                what,
                expected,
                actual,
            });
        }
        (Ok(()), None) => {}
    }
    writer.finish().await.map_err(|e| store_err(&url, &e))?;
    check_size(remote, name, bytes).await
}

/// The object `name` of `remote` is there with `bytes` bytes.
async fn check_size(remote: &Store, name: &str, bytes: u64) -> Result<(), OffsiteError> {
    let url = remote.url.join(name);
    let meta = remote
        .store
        .head(&remote.url.key(name))
        .await
        .map_err(|e| store_err(&url, &e))?;
    if meta.size != bytes {
        return Err(OffsiteError::Mismatch {
            url,
            what: "size",
            expected: bytes.to_string(),
            actual: meta.size.to_string(),
        });
    }
    Ok(())
}

/// The snapshots under the prefix of `from`, newest first, as
/// [`list`](super::restore::list) shows local ones: complete when the
/// manifest is there and every object it names has its size, incomplete
/// without a manifest (an interrupted push), damaged otherwise.
pub async fn list(from: &Store) -> Result<Vec<SnapshotListing>, OffsiteError> {
    let err = |e: object_store::Error| store_err(&from.url, &e);
    let top = from
        .store
        .list_with_delimiter(from.url.prefix_key().as_ref())
        .await
        .map_err(err)?;
    let mut out = Vec::new();
    for dir in top.common_prefixes {
        let Some(name) = dir.filename().map(str::to_owned) else {
            continue;
        };
        let snapshot = from.join(&name);
        let objects: Vec<_> = from
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(err)?;
        let sizes: BTreeMap<String, u64> = objects
            .iter()
            .filter_map(|o| Some((o.location.filename()?.to_owned(), o.size)))
            .collect();
        let bytes = sizes.values().sum();
        let newest = objects.iter().map(|o| o.last_modified).max();
        let path = PathBuf::from(snapshot.url.to_string());
        let manifest = match sizes.contains_key(MANIFEST) {
            true => Some(read_small(&snapshot, MANIFEST).await?),
            false => None,
        };
        let listed = match manifest {
            None if sizes.contains_key(PRUNING) => {
                SnapshotListing::unread(path, SnapshotStatus::BeingDeleted, newest, bytes)
            }
            None => SnapshotListing::unread(path, SnapshotStatus::Incomplete, newest, bytes),
            Some(text) => match parse_manifest(&text, &path.join(MANIFEST)) {
                Err(e) => SnapshotListing::unread(
                    path,
                    SnapshotStatus::Damaged(e.to_string()),
                    newest,
                    bytes,
                ),
                Ok(m) => {
                    let problem = m.files.iter().find_map(|f| {
                        size_problem(f, sizes.get(&f.name).copied().ok_or("missing"))
                    });
                    let verified = match sizes.contains_key(VERIFIED) {
                        true => serde_json::from_slice::<Verified>(
                            &read_small(&snapshot, VERIFIED).await?,
                        )
                        .ok(),
                        false => None,
                    };
                    listing(path, &m, problem, bytes, verified)
                }
            },
        };
        out.push(listed);
    }
    out.sort_by_key(|l| std::cmp::Reverse(l.finished_at));
    Ok(out)
}

/// The restore test ([`restore_test_files`]) of the remote snapshot
/// `snapshot`, streamed from the store, its verdict then written beside
/// the manifest as `verified.json` (also when it failed), so `list` shows
/// it and [`prune`] keeps the newest that passed.
pub async fn restore_test(
    snapshot: &Store,
    url: &Secret,
    opts: &RestoreTestOptions,
) -> Result<Verified, RestoreTestError> {
    let verified = restore_test_files(Arc::new(snapshot.files()), url, opts).await?;
    let record = |source| RecordError {
        path: PathBuf::from(snapshot.url.to_string()),
        source,
    };
    let json = serde_json::to_vec_pretty(&verified).map_err(|e| record(io::Error::other(e)))?;
    snapshot
        .store
        .put(&snapshot.url.key(VERIFIED), PutPayload::from(json))
        .await
        .map_err(|e| {
            record(io::Error::other(store_err(
                &snapshot.url.join(VERIFIED),
                &e,
            )))
        })?;
    Ok(verified)
}

/// Told each remote snapshot once [`prune`] has deleted it.
pub type DeletedFn = Arc<dyn Fn(&Decision) + Send + Sync>;

/// How to prune a prefix.
#[derive(Clone, Default)]
pub struct PruneOptions {
    /// Decide and say, delete nothing.
    pub dry_run: bool,
    /// Told each snapshot deleted, as it is.
    pub on_deleted: Option<DeletedFn>,
}

impl fmt::Debug for PruneOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PruneOptions")
            .field("dry_run", &self.dry_run)
            .field("on_deleted", &self.on_deleted.is_some())
            .finish()
    }
}

/// [`prune`](super::prune::prune) for the snapshots under the prefix of
/// `from`: the same rules on the remote listing, a run's snapshot matched
/// by name ([`Matching::Name`]). Each snapshot no rule keeps loses its
/// manifest first, so a deletion cut short leaves a snapshot that lists
/// as incomplete (and is then kept), never one that looks complete with
/// objects missing; then its other objects.
pub async fn prune(
    from: &Store,
    run_root: &Path,
    retention: Retention,
    opts: &PruneOptions,
) -> Result<Vec<Decision>, OffsiteError> {
    let needed = needed_by_runs(run_root)?;
    let listed = list(from)
        .await
        .map_err(|e| OffsiteError::NotPruned(Box::new(e)))?;
    let decisions = decide(&listed, &needed, Matching::Name, retention, Utc::now());
    if opts.dry_run {
        return Ok(decisions);
    }
    let mut deleted = Vec::new();
    for d in decisions.iter().filter(|d| d.kept_because.is_empty()) {
        let Some(name) = d.path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let snapshot = from.join(&name);
        if let Err((manifest_deleted, source)) = delete(&snapshot).await {
            return Err(OffsiteError::PruneStopped {
                url: snapshot.url,
                manifest_deleted,
                deleted,
                source: Box::new(source),
            });
        }
        deleted.push(d.path.clone());
        if let Some(tell) = &opts.on_deleted {
            tell(d);
        }
    }
    Ok(decisions)
}

/// Deletes every object of `snapshot`: the [`PRUNING`] marker put first,
/// then the manifest, the files, and the marker last, so that a deletion
/// cut short anywhere is finished by the next prune. On failure, whether
/// the manifest was already gone.
async fn delete(snapshot: &Store) -> Result<(), (bool, OffsiteError)> {
    let marker = snapshot.url.key(PRUNING);
    snapshot
        .store
        .put(
            &marker,
            PutPayload::from(pruning_note(Utc::now()).into_bytes()),
        )
        .await
        .map_err(|e| (false, store_err(&snapshot.url.join(PRUNING), &e)))?;
    let manifest = snapshot.url.key(MANIFEST);
    match snapshot.store.delete(&manifest).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err((false, store_err(&snapshot.url.join(MANIFEST), &e))),
    }
    let gone = |e: object_store::Error| (true, store_err(&snapshot.url, &e));
    let objects: Vec<_> = snapshot
        .store
        .list(snapshot.url.prefix_key().as_ref())
        .try_collect()
        .await
        .map_err(gone)?;
    let (markers, files): (Vec<_>, Vec<_>) =
        objects.into_iter().partition(|o| o.location == marker);
    for object in files.into_iter().chain(markers) {
        match snapshot.store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(gone(e)),
        }
    }
    Ok(())
}

/// Whether the small object `name` (a manifest) is there with sha256
/// `sha`.
async fn same_small(remote: &Store, name: &str, sha: &str) -> Result<bool, OffsiteError> {
    match read_small(remote, name).await {
        Ok(bytes) => Ok(hex_digest(Sha256::digest(&bytes).as_slice()) == sha),
        Err(OffsiteError::Store { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The whole of a small object (a manifest, `verified.json`).
async fn read_small(snapshot: &Store, name: &str) -> Result<Vec<u8>, OffsiteError> {
    let url = snapshot.url.join(name);
    let got = snapshot
        .store
        .get(&snapshot.url.key(name))
        .await
        .map_err(|e| store_err(&url, &e))?;
    Ok(got.bytes().await.map_err(|e| store_err(&url, &e))?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_say_what_to_give() {
        let u: SnapshotUrl = "s3://backups/escola/prod/".parse().unwrap();
        assert_eq!(u.to_string(), "s3://backups/escola/prod");
        assert_eq!(
            u.join("escola-1").to_string(),
            "s3://backups/escola/prod/escola-1"
        );
        assert_eq!(u.key("x").as_ref(), "escola/prod/x");
        let root: SnapshotUrl = "s3://backups".parse().unwrap();
        assert_eq!(root.prefix_key(), None);
        assert_eq!(root.key("manifest.json").as_ref(), "manifest.json");
        for (bad, why) in [
            ("gs://b/p", "scheme `gs` is not supported"),
            ("snapshots/x", "not a URL"),
            ("s3:///p", "no plain bucket name"),
            ("s3://key:secret@b/p", "no plain bucket name"),
            ("s3://b/a//c", "empty, `.` or `..` segment"),
            ("s3://b/a/../c", "empty, `.` or `..` segment"),
        ] {
            let err = bad.parse::<SnapshotUrl>().unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("s3://BUCKET/PREFIX"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn store_errors_tell_a_missing_bucket_and_a_refusal() {
        let url: SnapshotUrl = "s3://b/p".parse().unwrap();
        let generic = |msg: &str| object_store::Error::Generic {
            store: "S3",
            source: msg.to_owned().into(),
        };
        assert!(matches!(
            store_err(&url, &generic("<Code>NoSuchBucket</Code>")),
            OffsiteError::NoBucket { .. }
        ));
        let denied = object_store::Error::PermissionDenied {
            path: "p/x".into(),
            source: "forbidden".into(),
        };
        let e = store_err(&url, &denied);
        assert!(matches!(e, OffsiteError::AccessDenied { .. }));
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        assert!(matches!(
            store_err(&url, &generic("<Code>InvalidAccessKeyId</Code>")),
            OffsiteError::AccessDenied { .. }
        ));
        assert!(matches!(
            store_err(&url, &generic("timeout")),
            OffsiteError::Store { .. }
        ));
        // As object_store words it when no AWS_* credentials are set, off EC2.
        let imds = generic(
            "Error performing PUT http://169.254.169.254/latest/api/token in 2ms - Server returned non-2xx status code: 403 Forbidden",
        );
        let e = store_err(&url, &imds);
        assert!(matches!(e, OffsiteError::NoCredentials { .. }), "{e}");
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
    }
}
