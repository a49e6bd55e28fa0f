//! Loading a snapshot's files into a database: the statements of one file
//! streamed from a blocking reader thread (decrypt, decompress, split) to
//! one connection, and several files at once over several connections.
//!
//! Memory stays bounded whatever the snapshot's size: each connection has
//! at most [`QUEUED_STATEMENTS`] statements (about 1 MiB each as dumped)
//! waiting between its reader and the server, besides the one being sent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use escola_runbook_core::CancellationToken;
use futures_util::future::try_join_all;
use mysql_async::prelude::Queryable;

use super::connect::{Session, mask_url};
use super::crypt::Identities;
use super::crypt::open_stream;
use super::deferred_keys::KeyBuild;
use super::files::{SnapshotFiles, blocking};
use super::load_data::rows_load;
use super::restore_error::{RestoreError, VerifyError};
use super::snapshot::{FileEntry, FileKind};
use super::sql::{Splitter, ident};

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
    /// The server takes `LOAD DATA LOCAL INFILE` (its `local_infile` is
    /// on): data files' INSERTs are sent as rows (see [`super::load_data`]).
    pub(crate) load_data: bool,
}

/// One statement of a file, as it is sent.
enum Statement {
    /// Run as SQL.
    Sql(Vec<u8>),
    /// An INSERT sent as the rows `LOAD DATA LOCAL INFILE` reads.
    Rows {
        /// The `LOAD DATA` statement.
        load: String,
        /// Its rows.
        rows: bytes::Bytes,
    },
}

/// What loading a file did: statements run, and how many of them were
/// INSERTs sent as rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Statements run.
    pub(crate) statements: u64,
    /// Of them, INSERTs sent as `LOAD DATA` rows.
    pub(crate) as_rows: u64,
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, other: Applied) {
        self.statements += other.statements;
        self.as_rows += other.as_rows;
    }
}

/// A piece of work for one connection.
pub(crate) enum Job {
    /// Every statement of a file, in order.
    File(FileEntry),
    /// The statement that adds a table's keys after its rows: it answers
    /// only when done, so it is waited for without the read timeout, and
    /// stops on cancel. It starts once every file of its table is loaded,
    /// while other tables may still be loading; for a table whose files
    /// load one after the other ([`KeyBuild::serial`]), already once half
    /// of them are, online ([`ONLINE`]) beside the rest.
    Build(KeyBuild),
}

impl Job {
    /// The table whose rows a file holds, or whose keys a build adds,
    /// quoted.
    fn table(&self) -> Option<String> {
        match self {
            Job::File(f) => f.table.as_deref().map(ident),
            Job::Build(b) => Some(b.table.clone()),
        }
    }
}

/// What an early key build adds to its `ALTER TABLE`: built in place,
/// with the table's remaining loads going on beside it; InnoDB logs their
/// rows and applies them to the new keys at the end.
const ONLINE: &str = ", ALGORITHM=INPLACE, LOCK=NONE";

/// Whether the server refused an online build, which leaves the table as
/// it was: then the build runs again once every row is in. Any answer
/// from the server counts (the log of rows loaded meanwhile outgrew
/// `innodb_online_alter_log_max_size`, 1799; keys that cannot be built
/// with `LOCK=NONE`, 1845 and 1846; a deadlock with a load), since a
/// lasting cause fails the later build too, and is told then; a lost
/// connection is not a refusal.
fn online_refused(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(_))
}

/// A key build the server failed.
fn build_failed(sql: &str, e: &mysql_async::Error) -> RestoreError {
    RestoreError::Query {
        during: sql.to_owned(),
        message: mask_url(&e.to_string()),
    }
}

/// What a connection does next.
enum Next {
    /// Starts this job.
    Start(Job),
    /// Starts this build online, while its table's last files load.
    Online(KeyBuild),
    /// Waits for a file to be loaded: only jobs waiting for files remain.
    Wait,
    /// Stops: nothing is left.
    Done,
}

/// The files of one table, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Files {
    /// Queued or loading.
    left: usize,
    /// Loading now.
    loading: usize,
    /// Loaded.
    loaded: usize,
}

/// The jobs not started yet, and where each table's files are: a table's
/// build waits for them, and a serial table loads one file at a time.
struct Jobs {
    queue: VecDeque<Job>,
    tables: BTreeMap<String, Files>,
    /// Tables whose files load one after the other: see [`KeyBuild::serial`].
    serial: BTreeSet<String>,
    /// Tables whose online build the server refused: built after all rows.
    offline: BTreeSet<String>,
    /// More than one connection takes these jobs: only then can a table
    /// load beside its online build (alone, the rest of its rows would go
    /// into the new keys one by one).
    side_by_side: bool,
}

impl Jobs {
    /// `jobs` for `connections` connections.
    fn new(jobs: Vec<Job>, connections: usize) -> Self {
        let mut tables: BTreeMap<String, Files> = BTreeMap::new();
        let mut serial = BTreeSet::new();
        for job in &jobs {
            match job {
                Job::File(_) => {
                    if let Some(table) = job.table() {
                        tables.entry(table).or_default().left += 1;
                    }
                }
                Job::Build(b) if b.serial => {
                    serial.insert(b.table.clone());
                }
                Job::Build(_) => {}
            }
        }
        Jobs {
            queue: jobs.into(),
            tables,
            serial,
            offline: BTreeSet::new(),
            side_by_side: connections > 1,
        }
    }

    fn files(&self, table: &str) -> Files {
        self.tables.get(table).copied().unwrap_or_default()
    }

    /// The next job to start: a build whose table is loaded first (it is
    /// the longest single statement), then one that can run online, else
    /// the next file that may load now.
    fn next(&mut self) -> Next {
        let Some((i, online)) = self.pick() else {
            return if self.queue.is_empty() {
                Next::Done
            } else {
                Next::Wait
            };
        };
        match self.queue.remove(i) {
            Some(Job::Build(b)) if online => Next::Online(b),
            Some(job) => {
                if let (Job::File(_), Some(t)) = (&job, job.table()) {
                    self.tables.entry(t).or_default().loading += 1;
                }
                Next::Start(job)
            }
            None => Next::Done,
        }
    }

    /// Where in the queue the next job is, and whether it is a build to
    /// run online.
    fn pick(&self) -> Option<(usize, bool)> {
        let queue = &self.queue;
        let find = |ready: &dyn Fn(&Job) -> bool| queue.iter().position(ready);
        find(&|j| self.built_after(j))
            .map(|i| (i, false))
            .or_else(|| find(&|j| self.built_online(j)).map(|i| (i, true)))
            .or_else(|| find(&|j| self.file_ready(j)).map(|i| (i, false)))
    }

    /// A build whose table's files are all loaded.
    fn built_after(&self, job: &Job) -> bool {
        matches!(job, Job::Build(b) if self.files(&b.table).left == 0)
    }

    /// A build of a serial table half of whose files are loaded, the rest
    /// loading or queued, that the server has not refused online, when
    /// another connection can load the rest.
    fn built_online(&self, job: &Job) -> bool {
        let Job::Build(b) = job else { return false };
        let f = self.files(&b.table);
        self.side_by_side
            && self.serial.contains(&b.table)
            && !self.offline.contains(&b.table)
            && f.left > 0
            && f.loaded >= f.left
    }

    /// A file that may load now: not while another file of its serial
    /// table does.
    fn file_ready(&self, job: &Job) -> bool {
        match (job, job.table()) {
            (Job::File(_), Some(t)) => !self.serial.contains(&t) || self.files(&t).loading == 0,
            (Job::File(_), None) => true,
            (Job::Build(_), _) => false,
        }
    }

    /// A file of `table` is loaded.
    fn loaded(&mut self, table: Option<&str>) {
        if let Some(f) = table.and_then(|t| self.tables.get_mut(t)) {
            f.left = f.left.saturating_sub(1);
            f.loading = f.loading.saturating_sub(1);
            f.loaded += 1;
        }
    }

    /// The server refused `build` online: it runs again once every row of
    /// its table is in.
    fn offline(&mut self, build: KeyBuild) {
        self.offline.insert(build.table.clone());
        self.queue.push_back(Job::Build(build));
    }
}

impl Source {
    /// Every statement of the file `f`, read into memory: for the schema,
    /// which is small and rewritten before it runs.
    pub(crate) async fn read_all(&self, f: &FileEntry) -> Result<Vec<Vec<u8>>, RestoreError> {
        let reading = self.clone();
        let entry = f.clone();
        blocking(move || {
            let mut all = Vec::new();
            // Not as rows: every statement comes as SQL.
            reading.statements(&entry, None, false, |s| {
                if let Statement::Sql(s) = s {
                    all.push(s);
                }
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
            self.run(conn, f, n, &Statement::Sql(stmt)).await?;
        }
        Ok(n)
    }

    /// Streams the statements of the file `f` to `conn`, the INSERTs of a
    /// data file as rows where the server takes them.
    pub(crate) async fn apply(
        &self,
        conn: &mut Session,
        f: &FileEntry,
    ) -> Result<Applied, RestoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUED_STATEMENTS);
        let (ran_tx, ran_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = {
            let reading = self.clone();
            let entry = f.clone();
            let as_rows = self.load_data && entry.kind == FileKind::Data;
            tokio::task::spawn_blocking(move || {
                let sent = reading.statements(&entry, Some(&ran_rx), as_rows, |stmt| {
                    tx.blocking_send(Ok(stmt)).is_ok()
                });
                if let Err(e) = sent {
                    let _ = tx.blocking_send(Err(e));
                }
            })
        };
        let mut done = Applied::default();
        while let Some(next) = rx.recv().await {
            done.statements += 1;
            let stmt = next?;
            self.run(conn, f, done.statements, &stmt).await?;
            // The reader writes the next statement into this one's buffer.
            let buf = match stmt {
                Statement::Sql(buf) => Some(buf),
                Statement::Rows { rows, .. } => {
                    done.as_rows += 1;
                    rows.try_into_mut().ok().map(Vec::from)
                }
            };
            if let Some(buf) = buf {
                let _ = ran_tx.send(buf);
            }
        }
        // The channel closes when the reader is done, or when it panicked:
        // only the first is the whole file.
        reader
            .await
            .map_err(|e| self.io(f, io::Error::other(format!("reading stopped: {e}"))))?;
        Ok(done)
    }

    /// Runs `jobs` over `conns`, each connection taking the next job as it
    /// finishes one (see [`Jobs::next`]), and stops at the first error.
    pub(crate) async fn in_parallel(
        &self,
        conns: &mut [Session],
        jobs: Vec<Job>,
    ) -> Result<Applied, RestoreError> {
        let jobs = Mutex::new(Jobs::new(jobs, conns.len()));
        let with_jobs = |act: &mut dyn FnMut(&mut Jobs)| match jobs.lock() {
            Ok(mut j) => act(&mut j),
            Err(poisoned) => act(&mut poisoned.into_inner()),
        };
        let file_loaded = tokio::sync::Notify::new();
        let done = try_join_all(conns.iter_mut().map(|conn| async {
            let mut done = Applied::default();
            loop {
                let mut notified = std::pin::pin!(file_loaded.notified());
                notified.as_mut().enable();
                let mut next = Next::Done;
                with_jobs(&mut |j| next = j.next());
                let job = match next {
                    Next::Start(job) => job,
                    Next::Online(b) => {
                        let sql = format!("{}{ONLINE}", b.sql);
                        match self.build(conn, &sql).await? {
                            Ok(()) => done.statements += 1,
                            Err(e) if online_refused(&e) => {
                                with_jobs(&mut |j| j.offline(b.clone()));
                                file_loaded.notify_waiters();
                            }
                            Err(e) => return Err(build_failed(&sql, &e)),
                        }
                        continue;
                    }
                    Next::Done => break,
                    Next::Wait => {
                        notified.await;
                        continue;
                    }
                };
                match job {
                    Job::File(f) => {
                        done += self.apply(conn, &f).await?;
                        let table = f.table.as_deref().map(ident);
                        with_jobs(&mut |j| j.loaded(table.as_deref()));
                        file_loaded.notify_waiters();
                    }
                    Job::Build(b) => {
                        self.build(conn, &b.sql)
                            .await?
                            .map_err(|e| build_failed(&b.sql, &e))?;
                        done.statements += 1;
                    }
                }
            }
            Ok::<_, RestoreError>(done)
        }))
        .await?;
        let mut all = Applied::default();
        for d in done {
            all += d;
        }
        Ok(all)
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

    /// Runs the key build `sql` on `conn`: the server's error as the inner
    /// `Err`, for the caller to judge; a cancel stops it.
    async fn build(
        &self,
        conn: &mut Session,
        sql: &str,
    ) -> Result<Result<(), mysql_async::Error>, RestoreError> {
        let (raw, _) = conn.parts();
        tokio::select! {
            done = raw.query_drop(sql) => Ok(done),
            _ = self.cancel.cancelled() => Err(RestoreError::Cancelled),
        }
    }

    async fn run(
        &self,
        conn: &mut Session,
        f: &FileEntry,
        n: u64,
        stmt: &Statement,
    ) -> Result<(), RestoreError> {
        let mut retries = DEADLOCK_RETRIES;
        loop {
            if self.cancel.is_cancelled() {
                return Err(RestoreError::Cancelled);
            }
            let ran = match stmt {
                Statement::Sql(sql) => conn.query_drop(sql.as_slice()).await,
                Statement::Rows { load, rows } => conn.load_local(load, rows.clone()).await,
            };
            match ran {
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
    /// `send`, its INSERTs as `LOAD DATA` rows when `as_rows` (converted
    /// here, in the reader's thread, beside the server's work); `false`
    /// when `send` stopped taking them. The buffers of statements that ran
    /// come back through `ran`, so that a restore allocates a few statement
    /// buffers, not one per statement. Blocking.
    fn statements(
        &self,
        f: &FileEntry,
        ran: Option<&std::sync::mpsc::Receiver<Vec<u8>>>,
        as_rows: bool,
        mut send: impl FnMut(Statement) -> bool,
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
            for mut stmt in ready.drain(..) {
                let next = match as_rows.then(|| rows_load(&mut stmt)).flatten() {
                    Some(load) => Statement::Rows {
                        load,
                        rows: stmt.into(),
                    },
                    None => Statement::Sql(stmt),
                };
                if !send(next) {
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

    fn chunk(table: &str, n: u32) -> Job {
        let mut f = crate::db::snapshot::manifest::tests::file(FileKind::Data, Some(table), 10);
        f.name = format!("{table}.{n}");
        f.chunk = Some(n);
        Job::File(f)
    }

    fn build(table: &str, serial: bool) -> Job {
        Job::Build(KeyBuild {
            table: format!("`{table}`"),
            sql: format!("ALTER TABLE `{table}` ADD KEY `k` (`v`)"),
            serial,
        })
    }

    /// What `next` gives, by name: a file's, `build`, `online` or `wait`.
    fn take(jobs: &mut Jobs) -> String {
        match jobs.next() {
            Next::Start(Job::File(f)) => f.name,
            Next::Start(Job::Build(_)) => "build".into(),
            Next::Online(_) => "online".into(),
            Next::Wait => "wait".into(),
            Next::Done => "done".into(),
        }
    }

    #[test]
    fn a_serial_table_loads_one_file_at_a_time_and_builds_online_at_half() {
        let mut jobs = Jobs::new(
            vec![
                chunk("s", 0),
                chunk("s", 1),
                chunk("p", 0),
                chunk("p", 1),
                build("s", true),
                build("p", false),
            ],
            4,
        );
        assert_eq!(take(&mut jobs), "s.0");
        // Not s.1 beside s.0; p's chunks load side by side.
        assert_eq!(take(&mut jobs), "p.0");
        assert_eq!(take(&mut jobs), "p.1");
        assert_eq!(take(&mut jobs), "wait");
        jobs.loaded(Some("`s`"));
        // Half of s is in: its keys are built online while s.1 loads.
        assert_eq!(take(&mut jobs), "online");
        assert_eq!(take(&mut jobs), "s.1");
        jobs.loaded(Some("`p`"));
        // p's build waits for all of p.
        assert_eq!(take(&mut jobs), "wait");
        jobs.loaded(Some("`p`"));
        assert_eq!(take(&mut jobs), "build");
        jobs.loaded(Some("`s`"));
        assert_eq!(take(&mut jobs), "done");
    }

    #[test]
    fn a_refused_online_build_runs_after_the_last_file() {
        let mut jobs = Jobs::new(vec![chunk("s", 0), chunk("s", 1), build("s", true)], 2);
        assert_eq!(take(&mut jobs), "s.0");
        jobs.loaded(Some("`s`"));
        let Next::Online(b) = jobs.next() else {
            panic!("an online build");
        };
        assert_eq!(take(&mut jobs), "s.1");
        jobs.offline(b);
        assert_eq!(take(&mut jobs), "wait");
        jobs.loaded(Some("`s`"));
        assert_eq!(take(&mut jobs), "build");
        assert_eq!(take(&mut jobs), "done");
    }

    #[test]
    fn one_file_or_one_connection_builds_after_the_rows_and_only_the_server_refuses() {
        let mut jobs = Jobs::new(vec![chunk("s", 0), build("s", true)], 2);
        assert_eq!(take(&mut jobs), "s.0");
        assert_eq!(take(&mut jobs), "wait");
        jobs.loaded(Some("`s`"));
        assert_eq!(take(&mut jobs), "build");
        // One connection: no online build, the keys after the last file.
        let mut alone = Jobs::new(vec![chunk("s", 0), chunk("s", 1), build("s", true)], 1);
        assert_eq!(take(&mut alone), "s.0");
        alone.loaded(Some("`s`"));
        assert_eq!(take(&mut alone), "s.1");
        alone.loaded(Some("`s`"));
        assert_eq!(take(&mut alone), "build");
        assert!(online_refused(&server_error(1799)));
        assert!(online_refused(&server_error(1846)));
        assert!(!online_refused(&mysql_async::Error::Other("gone".into())));
    }
}
