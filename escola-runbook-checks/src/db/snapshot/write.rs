//! Writing the snapshot's files: each SQL file zstd-compressed (and, with
//! recipients, age-encrypted) on a blocking thread and hashed (sha256) as
//! it is written, 0600; the manifest
//! written last, everything fsynced, and the directory renamed from
//! `.NAME.partial` to `NAME` only then (removed on every other way out).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::error::{SnapshotError, io_err};
use super::manifest::{FileEntry, FileKind, MANIFEST, Manifest};
use crate::db::crypt::{Recipient, SEALED_SUFFIX, encryptor};
use crate::db::sql::{DUMP_CHARSET, ident};

/// Removes the partial directory when dropped, unless disarmed.
pub(super) struct PartialDir(pub(super) Option<PathBuf>);

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

/// A directory name for a snapshot of `db` at `at` not taken in `out`.
pub(super) fn snapshot_name(out: &Path, db: &str, at: DateTime<Utc>) -> String {
    let base = format!("{}-{}", sanitize(db), at.format("%Y%m%dT%H%M%SZ"));
    let mut name = base.clone();
    let mut n = 2;
    while out.join(&name).exists() || out.join(format!(".{name}.partial")).exists() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// `name` as a file name part: letters, digits, `_` and `-`, at most 48.
pub(super) fn sanitize(name: &str) -> String {
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

/// Writes the manifest into `partial`, fsyncs, and renames it to
/// `final_dir` (in `out`).
pub(super) fn seal(
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

/// The first lines of every SQL file: what it holds, and the session
/// settings a restore needs.
pub(super) fn header(db: &str, what: &str) -> String {
    format!(
        "-- escola-runbook {} snapshot of database {}: {what}\nSET NAMES {DUMP_CHARSET};\nSET time_zone = '+00:00';\nSET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET foreign_key_checks = 0;\nSET unique_checks = 0;\n\n",
        env!("CARGO_PKG_VERSION"),
        ident(db).replace('\n', " ")
    )
}

/// How every file of a snapshot is encoded: the zstd level, and the age
/// recipients it is encrypted to (none: not encrypted).
#[derive(Debug, Clone)]
pub(super) struct Encoding {
    pub(super) zstd_level: i32,
    pub(super) recipients: Arc<[Recipient]>,
}

/// A compressed (and, with recipients, encrypted) file written on a
/// blocking thread, fed through a bounded channel so memory stays at a few
/// statements per worker; no plaintext reaches the disk.
pub(super) struct Sink {
    tx: mpsc::Sender<Vec<u8>>,
    handle: tokio::task::JoinHandle<Result<Written, SnapshotError>>,
}

pub(super) struct Written {
    name: String,
    bytes: u64,
    sql_bytes: u64,
    sha256: String,
    plaintext_sha256: Option<String>,
    pub(super) rows: u64,
}

impl Written {
    pub(super) fn entry(
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
            plaintext_sha256: self.plaintext_sha256,
        }
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
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

/// Where the zstd stream goes: the file, or age encrypting into the file
/// (hashed as written, for the ciphertext's sha256).
enum Destination {
    Plain(BufWriter<File>),
    Sealed(age::stream::StreamWriter<HashingWriter<BufWriter<File>>>),
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Destination::Plain(w) => w.write(buf),
            Destination::Sealed(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Destination::Plain(w) => w.flush(),
            Destination::Sealed(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Opens `path` (with [`SEALED_SUFFIX`] added when encrypting).
    pub(super) fn open(path: PathBuf, encoding: &Encoding) -> Result<Self, SnapshotError> {
        let sealed = !encoding.recipients.is_empty();
        let path = if sealed {
            let mut p = path.into_os_string();
            p.push(SEALED_SUFFIX);
            PathBuf::from(p)
        } else {
            path
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let encoding = encoding.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let io = |source| SnapshotError::Io {
                path: path.clone(),
                source,
            };
            let file = BufWriter::with_capacity(1 << 16, file);
            let seal = if sealed {
                Destination::Sealed(
                    encryptor(&encoding.recipients)
                        .and_then(|e| e.wrap_output(HashingWriter::new(file)))
                        .map_err(io)?,
                )
            } else {
                Destination::Plain(file)
            };
            // One zstd frame per chunk (a statement of about 1 MiB), each
            // compressed from one contiguous buffer: a streaming encoder
            // matched across its ring buffer's wrap (zstd's "extDict" path),
            // which perf showed at 30% of a snapshot's CPU against 4% for
            // the contiguous path. A file of several frames is one zstd
            // stream to every reader (`zstd -dc` too).
            let mut compressor = zstd::bulk::Compressor::new(encoding.zstd_level).map_err(io)?;
            compressor
                .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
                .map_err(io)?;
            let mut zstd = HashingWriter::new(seal);
            let mut frame = Vec::new();
            let mut write_frame = |chunk: &[u8], zstd: &mut HashingWriter<_>| {
                frame.clear();
                frame.reserve(zstd::zstd_safe::compress_bound(chunk.len()));
                compressor.compress_to_buffer(chunk, &mut frame)?;
                zstd.write_all(&frame)
            };
            let mut sql_bytes = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                sql_bytes += chunk.len() as u64;
                write_frame(&chunk, &mut zstd).map_err(io)?;
            }
            if sql_bytes == 0 {
                // An empty file is still one (empty) frame.
                write_frame(&[], &mut zstd).map_err(io)?;
            }
            let zstd_sha = hex_digest(zstd.hasher.finalize().as_slice());
            let (file, bytes, sha256, plaintext_sha256) = match zstd.inner {
                Destination::Plain(file) => (file, zstd.bytes, zstd_sha, None),
                Destination::Sealed(age) => {
                    let cipher = age.finish().map_err(io)?;
                    (
                        cipher.inner,
                        cipher.bytes,
                        hex_digest(cipher.hasher.finalize().as_slice()),
                        Some(zstd_sha),
                    )
                }
            };
            let file = file.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            Ok(Written {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
                sql_bytes,
                sha256,
                plaintext_sha256,
                rows: 0,
            })
        });
        Ok(Sink { tx, handle })
    }

    pub(super) async fn send(&self, chunk: Vec<u8>) -> Result<(), SnapshotError> {
        if self.tx.send(chunk).await.is_err() {
            // The writer stopped early: its error says why.
            return Err(SnapshotError::Io {
                path: PathBuf::from("(snapshot file)"),
                source: io::Error::other("the file writer stopped"),
            });
        }
        Ok(())
    }

    pub(super) async fn finish(self) -> Result<Written, SnapshotError> {
        drop(self.tx);
        self.handle.await.map_err(|e| SnapshotError::Io {
            path: PathBuf::from("(snapshot file)"),
            source: io::Error::other(e.to_string()),
        })?
    }
}

/// One whole SQL text as a compressed file.
pub(super) async fn write_text(
    dir: &Path,
    name: &str,
    text: &str,
    encoding: &Encoding,
) -> Result<Written, SnapshotError> {
    let sink = Sink::open(dir.join(name), encoding)?;
    sink.send(text.as_bytes().to_vec()).await?;
    sink.finish().await
}

/// Lower-case hex of a digest.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_parts_keep_letters_digits_dash_and_underscore() {
        assert_eq!(sanitize("escola_connect-2"), "escola_connect-2");
        assert_eq!(sanitize("a b/c`d"), "a_b_c_d");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize(&"x".repeat(60)).len(), 48);
        assert_eq!(hex_digest(&[0, 15, 255]), "000fff");
    }
}
