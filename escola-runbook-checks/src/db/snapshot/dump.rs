//! Dumping data: the planned files shared among worker sessions, each
//! table (or key range) streamed as INSERT statements into its file.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use escola_runbook_core::CancellationToken;
use mysql_async::prelude::Queryable;

use super::digest::{ContentDigest, dumped, write_values};
use super::error::{SnapshotError, query_err};
use super::manifest::{FileEntry, FileKind};
use super::options::{ProgressFn, SnapshotOptions, SnapshotProgress};
use super::plan::WorkItem;
use super::write::{Encoding, Sink, header};
use crate::db::connect::Session;
use crate::db::sql::ident;

/// What the workers share: the queue of files and the progress counts.
pub(super) struct Shared {
    dir: PathBuf,
    statement_bytes: usize,
    encoding: Encoding,
    cancel: CancellationToken,
    progress: Option<ProgressFn>,
    files_total: u64,
    files_done: AtomicU64,
    rows: AtomicU64,
    sql_bytes: AtomicU64,
    queue: Mutex<VecDeque<WorkItem>>,
}

impl Shared {
    /// For `files_total` files written into `dir` as `opts` says.
    pub(super) fn new(
        dir: PathBuf,
        opts: &SnapshotOptions,
        encoding: Encoding,
        files_total: usize,
    ) -> Self {
        Shared {
            dir,
            statement_bytes: opts.statement_bytes.max(1024),
            encoding,
            cancel: opts.cancel.child_token(),
            progress: opts.progress.clone(),
            files_total: files_total as u64,
            files_done: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            sql_bytes: AtomicU64::new(0),
            queue: Mutex::new(VecDeque::new()),
        }
    }

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

/// A data file written: its index in the plan, its entry, and the content
/// digest of its rows.
pub(super) type Dumped = (usize, FileEntry, ContentDigest);

/// Dumps `items` on `workers` (one task each); returns the sessions and
/// the files written. The first real error wins.
pub(super) async fn run_items(
    workers: Vec<Session>,
    items: Vec<WorkItem>,
    shared: &Arc<Shared>,
) -> Result<(Vec<Session>, Vec<Dumped>), SnapshotError> {
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
                    Ok((entry, digest)) => {
                        shared.files_done.fetch_add(1, Ordering::Relaxed);
                        shared.report();
                        done.push((item.index, entry, digest));
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
) -> Result<(FileEntry, ContentDigest), SnapshotError> {
    let t = &item.table;
    let (columns, list, from) = dumped(&t.db, &t.name, &t.columns);
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
    let sink = Sink::open(shared.dir.join(&item.file), &shared.encoding)?;
    let mut digest = ContentDigest::default();
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
        let start = buf.len();
        write_values(&mut buf, &row, &columns);
        digest.add_row(&buf[start..]);
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
            // The next statement is about as big: no regrowth from empty.
            let next = Vec::with_capacity(buf.capacity());
            sink.send(std::mem::replace(&mut buf, next)).await?;
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
    Ok((
        written.entry(FileKind::Data, &t.db, Some(t.name.clone()), item.chunk),
        digest,
    ))
}

/// Puts each finished file at its planned index, and adds its digest to
/// its table's (by `(database, table)`).
pub(super) fn place(
    files: &mut [Option<FileEntry>],
    digests: &mut BTreeMap<(String, String), ContentDigest>,
    done: Vec<Dumped>,
) {
    for (i, f, digest) in done {
        if let Some(table) = &f.table {
            digests
                .entry((f.database.clone(), table.clone()))
                .or_default()
                .merge(&digest);
        }
        if let Some(slot) = files.get_mut(i) {
            *slot = Some(f);
        }
    }
}
