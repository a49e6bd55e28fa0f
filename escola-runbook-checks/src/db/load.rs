//! Loading a snapshot's files into a database: the statements of one file
//! streamed from a blocking reader thread (decrypt, decompress, split) to
//! one connection, and several files at once over several connections.
//!
//! Memory stays bounded whatever the snapshot's size: each connection has
//! at most [`QUEUED_STATEMENTS`] statements (about 1 MiB each as dumped)
//! waiting between its reader and the server, besides the one being sent.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use escola_runbook_core::CancellationToken;
use futures_util::future::try_join_all;
use mysql_async::prelude::Queryable;

use super::connect::{Session, mask_url};
use super::crypt::Identities;
use super::crypt::open_stream;
use super::files::{SnapshotFiles, blocking};
use super::restore_error::{RestoreError, VerifyError};
use super::snapshot::FileEntry;
use super::sql::Splitter;

/// Statements read ahead per connection.
pub(crate) const QUEUED_STATEMENTS: usize = 1;

/// How many times a statement the server chose as a deadlock's victim is
/// run again. Two connections loading chunks of one empty table both ask
/// InnoDB for its bulk-insert table lock on their first INSERT, and one of
/// them is refused with a deadlock (ER_LOCK_DEADLOCK). The server rolled that
/// statement back whole (each INSERT commits on its own, see
/// [`LOAD_SESSION`]), so running it again is safe.
const DEADLOCK_RETRIES: u32 = 5;

/// The pause before the first retry of a deadlocked statement; each retry
/// waits one more of it.
const DEADLOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// ER_LOCK_DEADLOCK: the server rolled the statement's transaction back.
fn is_deadlock(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1213)
}

/// What every loading connection runs first: the settings each data file's
/// header sets too, so a connection is in the same state before its first
/// file and for building keys. Each INSERT commits on its own: committing
/// a whole file at once measured slower (InnoDB's bulk load into an empty
/// table then serializes the ranges of one table), and batches of 16 no
/// faster.
const LOAD_SESSION: &str =
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', foreign_key_checks = 0, unique_checks = 0";

/// The snapshot being loaded, and how to read it.
#[derive(Clone)]
pub(crate) struct Source {
    /// Its files.
    pub(crate) files: Arc<dyn SnapshotFiles>,
    /// Decrypts an encrypted one.
    pub(crate) identities: Option<Identities>,
    /// Its recipients, for messages.
    pub(crate) recipients: Arc<[String]>,
    /// Stops loading between statements.
    pub(crate) cancel: CancellationToken,
}

/// A piece of work for one connection.
pub(crate) enum Job {
    /// Every statement of a file, in order.
    File(FileEntry),
    /// One statement that builds something after the rows (`ALTER TABLE
    /// ... ADD KEY`): it answers only when done, so it is waited for
    /// without the read timeout, and stops on cancel.
    Build(String),
}

impl Source {
    /// Every statement of the file `f`, read into memory: for the schema,
    /// which is small and rewritten before it runs.
    pub(crate) async fn read_all(&self, f: &FileEntry) -> Result<Vec<Vec<u8>>, RestoreError> {
        let reading = self.clone();
        let entry = f.clone();
        blocking(move || {
            let mut all = Vec::new();
            reading.statements(&entry, None, |s| {
                all.push(s);
                true
            })?;
            Ok(all)
        })
        .await
        .map_err(|source| self.io(f, source))?
    }

    /// Runs `statements` of the file `f` on `conn`, in order; how many ran.
    pub(crate) async fn run_all(
        &self,
        conn: &mut Session,
        f: &FileEntry,
        statements: Vec<Vec<u8>>,
    ) -> Result<u64, RestoreError> {
        let mut n = 0;
        for stmt in statements {
            n += 1;
            self.run(conn, f, n, &stmt).await?;
        }
        Ok(n)
    }

    /// Streams the statements of the file `f` to `conn`; how many ran.
    pub(crate) async fn apply(
        &self,
        conn: &mut Session,
        f: &FileEntry,
    ) -> Result<u64, RestoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUED_STATEMENTS);
        let (ran_tx, ran_rx) = std::sync::mpsc::channel();
        let reader = {
            let reading = self.clone();
            let entry = f.clone();
            tokio::task::spawn_blocking(move || {
                let sent = reading.statements(&entry, Some(&ran_rx), |stmt| {
                    tx.blocking_send(Ok(stmt)).is_ok()
                });
                if let Err(e) = sent {
                    let _ = tx.blocking_send(Err(e));
                }
            })
        };
        let mut n = 0;
        while let Some(next) = rx.recv().await {
            n += 1;
            let stmt = next?;
            self.run(conn, f, n, &stmt).await?;
            // The reader writes the next statement into this one's buffer.
            let _ = ran_tx.send(stmt);
        }
        // The channel closes when the reader is done, or when it panicked:
        // only the first is the whole file.
        reader
            .await
            .map_err(|e| self.io(f, io::Error::other(format!("reading stopped: {e}"))))?;
        Ok(n)
    }

    /// Runs `jobs` over `conns`, each connection taking the next job as it
    /// finishes one, and stops at the first error; statements run.
    pub(crate) async fn in_parallel(
        &self,
        conns: &mut [Session],
        jobs: Vec<Job>,
    ) -> Result<u64, RestoreError> {
        let queue = Mutex::new(VecDeque::from(jobs));
        let next = || match queue.lock() {
            Ok(mut q) => q.pop_front(),
            Err(poisoned) => poisoned.into_inner().pop_front(),
        };
        let done = try_join_all(conns.iter_mut().map(|conn| async {
            let mut n = 0;
            while let Some(job) = next() {
                n += match job {
                    Job::File(f) => self.apply(conn, &f).await?,
                    Job::Build(sql) => self.build(conn, sql).await?,
                };
            }
            Ok::<_, RestoreError>(n)
        }))
        .await?;
        Ok(done.iter().sum())
    }

    /// Prepares a connection for loading: see [`LOAD_SESSION`].
    pub(crate) async fn prepare(conn: &mut Session) -> Result<(), RestoreError> {
        conn.query_drop(LOAD_SESSION)
            .await
            .map_err(|e| RestoreError::Query {
                during: "setting up a loading connection".into(),
                message: mask_url(&e.to_string()),
            })
    }

    async fn build(&self, conn: &mut Session, sql: String) -> Result<u64, RestoreError> {
        let failed = |e: mysql_async::Error| RestoreError::Query {
            during: sql.clone(),
            message: mask_url(&e.to_string()),
        };
        let (raw, _) = conn.parts();
        tokio::select! {
            done = raw.query_drop(sql.as_str()) => done.map_err(failed)?,
            _ = self.cancel.cancelled() => return Err(RestoreError::Cancelled),
        }
        Ok(1)
    }

    async fn run(
        &self,
        conn: &mut Session,
        f: &FileEntry,
        n: u64,
        stmt: &[u8],
    ) -> Result<(), RestoreError> {
        let mut retries = DEADLOCK_RETRIES;
        loop {
            if self.cancel.is_cancelled() {
                return Err(RestoreError::Cancelled);
            }
            match conn.query_drop(stmt).await {
                Ok(()) => return Ok(()),
                Err(e) if retries > 0 && is_deadlock(&e) => {
                    let pause = DEADLOCK_PAUSE * (DEADLOCK_RETRIES - retries + 1);
                    retries -= 1;
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.cancel.cancelled() => return Err(RestoreError::Cancelled),
                    }
                }
                Err(e) => {
                    return Err(RestoreError::Statement {
                        file: f.name.clone(),
                        statement: n,
                        message: mask_url(&e.to_string()),
                    });
                }
            }
        }
    }

    fn io(&self, f: &FileEntry, source: io::Error) -> RestoreError {
        RestoreError::Io {
            path: self.files.locate(&f.name),
            source,
        }
    }

    /// Reads the statements of the file `f`, decrypted and decompressed,
    /// one line (at most one INSERT statement) at a time, and gives each to
    /// `send`; `false` when `send` stopped taking them. The buffers of
    /// statements that ran come back through `ran`, so that a restore
    /// allocates a few statement buffers, not one per statement. Blocking.
    fn statements(
        &self,
        f: &FileEntry,
        ran: Option<&std::sync::mpsc::Receiver<Vec<u8>>>,
        mut send: impl FnMut(Vec<u8>) -> bool,
    ) -> Result<bool, RestoreError> {
        let io = |source| self.io(f, source);
        let stream = open_file(&*self.files, f, self.identities.as_ref(), &self.recipients)?;
        let mut reader = BufReader::new(zstd::Decoder::new(stream).map_err(io)?);
        let mut splitter = Splitter::new();
        let mut line = Vec::new();
        let mut ready = Vec::new();
        loop {
            if let Some(back) = ran.and_then(|r| r.try_recv().ok()) {
                splitter.recycle(back);
            }
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(io)?;
            if read == 0 {
                ready.extend(std::mem::take(&mut splitter).finish());
            } else {
                splitter.push_line(&line, &mut ready);
            }
            for stmt in ready.drain(..) {
                if !send(stmt) {
                    return Ok(false);
                }
            }
            if read == 0 {
                return Ok(true);
            }
        }
    }
}

/// The zstd stream of the file `f`: decrypted with `identities` when
/// given.
pub(crate) fn open_file(
    files: &dyn SnapshotFiles,
    f: &FileEntry,
    identities: Option<&Identities>,
    recipients: &[String],
) -> Result<Box<dyn Read + Send>, VerifyError> {
    let path = files.locate(&f.name);
    let input = files.open(&f.name).map_err(|source| VerifyError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(open_stream(input, &path, identities, recipients)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "Deadlock found when trying to get lock; try restarting transaction".into(),
            state: "40001".into(),
        })
    }

    #[test]
    fn only_a_deadlock_is_run_again() {
        assert!(is_deadlock(&server_error(1213)));
        // A lock wait timeout rolls back only the statement under
        // innodb_rollback_on_timeout=OFF, but it says the lock is held for
        // long: a restore stops on it rather than waiting again.
        assert!(!is_deadlock(&server_error(1205)));
        assert!(!is_deadlock(&server_error(1062)));
        assert!(!is_deadlock(&mysql_async::Error::Other("1213".into())));
    }
}
