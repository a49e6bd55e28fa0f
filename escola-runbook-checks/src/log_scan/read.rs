//! Reading a log: the file streamed line by line with bounded memory,
//! tallied into a [`Scan`]; the plain-text `.1` file beside it read too when
//! the live log starts after the window (rotation); the rotated files
//! beside a missing log listed.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use escola_runbook_core::CancellationToken;

use super::line::{Level, find_trace_id_in_text, parse_line_in};

/// Longest line read in full; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// Distinct messages tracked; further ones are counted together.
pub const MAX_GROUPS: usize = 1000;
/// `Trace-Id`s kept per message.
pub(super) const TRACE_IDS_KEPT: usize = 5;

/// A message and where it was seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// The message (first 300 characters).
    pub message: String,
    /// Highest level seen with it.
    pub level: Option<Level>,
    /// How many lines.
    pub count: u64,
    /// The first `Trace-Id`s seen with it.
    pub trace_ids: Vec<String>,
    /// Lines that had a `Trace-Id`.
    pub with_trace_id: u64,
    /// First and last time seen.
    pub first: Option<DateTime<FixedOffset>>,
    /// Last time seen.
    pub last: Option<DateTime<FixedOffset>>,
}

impl Group {
    /// One of its lines had Trace-Id `id`.
    fn traced(&mut self, id: String) {
        self.with_trace_id += 1;
        if self.trace_ids.len() < TRACE_IDS_KEPT && !self.trace_ids.contains(&id) {
            self.trace_ids.push(id);
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Lines read.
    pub lines: u64,
    /// Lines in a recognised format.
    pub recognised: u64,
    /// Recognised lines at or after the window start.
    pub in_window: u64,
    /// Of those, at or above the level.
    pub errors: u64,
    /// Lines longer than [`MAX_LINE`] (only their start was read).
    pub long_lines: u64,
    /// First recognised timestamp.
    pub first: Option<DateTime<FixedOffset>>,
    /// Last recognised timestamp.
    pub last: Option<DateTime<FixedOffset>>,
    /// First line not recognised (for the error message), shortened.
    pub first_unrecognised: Option<String>,
    /// Error messages, up to [`MAX_GROUPS`].
    pub groups: HashMap<String, Group>,
    /// Error lines whose message did not fit in the groups.
    pub ungrouped: u64,
}

impl Scan {
    /// Folds another file's scan in (an older, rotated file).
    fn merge(&mut self, older: Scan) {
        self.lines += older.lines;
        self.recognised += older.recognised;
        self.in_window += older.in_window;
        self.errors += older.errors;
        self.long_lines += older.long_lines;
        self.first = earliest(self.first, older.first);
        self.last = latest(self.last, older.last);
        self.ungrouped += older.ungrouped;
        for (k, g) in older.groups {
            if let Some(mine) = self.groups.get_mut(&k) {
                mine.count += g.count;
                mine.with_trace_id += g.with_trace_id;
                // The older file's ids come first.
                let mut ids = g.trace_ids;
                for id in mine.trace_ids.drain(..) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                ids.truncate(TRACE_IDS_KEPT);
                mine.trace_ids = ids;
                mine.first = earliest(mine.first, g.first);
                mine.last = latest(mine.last, g.last);
                mine.level = mine.level.max(g.level);
            } else if self.groups.len() < MAX_GROUPS {
                self.groups.insert(k, g);
            } else {
                self.ungrouped += g.count;
            }
        }
    }

    /// Groups by count, highest first (ties: earliest first).
    pub fn top(&self, n: usize) -> Vec<&Group> {
        let mut groups: Vec<&Group> = self.groups.values().collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.first.cmp(&b.first)));
        groups.truncate(n);
        groups
    }
}

fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A log that could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Missing or unreadable.
    #[error("cannot read log {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Compressed (a rotated log).
    #[error(
        "log {path} is gzip-compressed (a rotated log?); point `file` at the live, uncompressed log"
    )]
    Compressed {
        /// The file.
        path: PathBuf,
    },
    /// Binary content.
    #[error(
        "log {path} is not text (it has NUL bytes among its first {checked} bytes); is `file` the right path?"
    )]
    Binary {
        /// The file.
        path: PathBuf,
        /// Bytes looked at.
        checked: usize,
    },
    /// Stopped.
    #[error("the scan of {path} was cancelled")]
    Cancelled {
        /// The file.
        path: PathBuf,
    },
}

/// Reads one line into `buf`, keeping at most `MAX_LINE` bytes; returns
/// `None` at end of file, `Some(true)` when the line was cut.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let mut part = &chunk[..take];
        if buf.is_empty() {
            // NUL padding (a copytruncate hole) never fills the line buffer.
            let first = part.iter().position(|b| *b != 0).unwrap_or(part.len());
            part = &part[first..];
        }
        let room = MAX_LINE.saturating_sub(buf.len());
        if part.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        reader.consume(take);
        if done {
            return Ok(Some(cut));
        }
    }
}

/// A failed read of the log at `path`, for `map_err`.
fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Scans `reader` for lines at or after `since` with a level of at least
/// `min`; timestamps without an offset are taken in `naive`. `path` names
/// the log in errors; `cancel` stops a long scan.
pub fn scan<R: Read>(
    reader: R,
    path: &Path,
    since: DateTime<FixedOffset>,
    min: Level,
    naive: FixedOffset,
    cancel: &CancellationToken,
) -> Result<Scan, LogError> {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf().map_err(read_err(path))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(LogError::Compressed {
            path: path.to_owned(),
        });
    }
    let checked = head.len().min(8192);
    // logrotate's copytruncate leaves a run of NUL bytes at the start when
    // the application keeps writing at its old offset: that is still a log.
    let text_start = head[..checked]
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(checked);
    if head[text_start..checked].contains(&0) {
        return Err(LogError::Binary {
            path: path.to_owned(),
            checked,
        });
    }
    let mut scan = Scan::default();
    let mut buf = Vec::with_capacity(4096);
    // The group of the last error line counted without a Trace-Id: a
    // record Monolog wrote over several lines (a stack trace in its
    // context) carries its extra, and so its Trace-Id, on its last line.
    let mut untraced: Option<String> = None;
    while let Some(cut) = read_line_capped(&mut reader, &mut buf).map_err(read_err(path))? {
        scan.lines += 1;
        if scan.lines % 8192 == 0 && cancel.is_cancelled() {
            return Err(LogError::Cancelled {
                path: path.to_owned(),
            });
        }
        if cut {
            scan.long_lines += 1;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_start_matches('\0');
        let Some(entry) = parse_line_in(text, naive) else {
            if let Some(id) = untraced.as_ref().and_then(|_| find_trace_id_in_text(text)) {
                if let Some(group) = untraced.take().and_then(|k| scan.groups.get_mut(&k)) {
                    group.traced(id);
                }
            } else if scan.first_unrecognised.is_none() && !text.trim().is_empty() {
                scan.first_unrecognised = Some(text.trim().chars().take(160).collect());
            }
            continue;
        };
        untraced = None;
        scan.recognised += 1;
        scan.first = earliest(scan.first, Some(entry.at));
        scan.last = latest(scan.last, Some(entry.at));
        if entry.at < since {
            continue;
        }
        scan.in_window += 1;
        if entry.level.is_none_or(|l| l < min) {
            continue;
        }
        scan.errors += 1;
        let key: String = entry.message.chars().take(300).collect();
        let groups = scan.groups.len();
        let group = match scan.groups.get_mut(&key) {
            Some(g) => g,
            None if groups < MAX_GROUPS => scan.groups.entry(key.clone()).or_insert(Group {
                message: key,
                ..Group::default()
            }),
            None => {
                scan.ungrouped += 1;
                continue;
            }
        };
        group.count += 1;
        group.level = group.level.max(entry.level);
        group.first = earliest(group.first, Some(entry.at));
        group.last = latest(group.last, Some(entry.at));
        match entry.trace_id {
            Some(id) => group.traced(id),
            None => untraced = Some(group.message.clone()),
        }
    }
    Ok(scan)
}

fn scan_file(
    path: &Path,
    since: DateTime<FixedOffset>,
    min: Level,
    naive: FixedOffset,
    cancel: &CancellationToken,
) -> Result<Scan, LogError> {
    let file = std::fs::File::open(path).map_err(read_err(path))?;
    scan(file, path, since, min, naive, cancel)
}

/// What became of the rotated file (`app.log.1`) read because the live log
/// starts after the window.
#[derive(Debug)]
pub enum Rotated {
    /// Read and folded into the scan.
    Read(PathBuf),
    /// There, and could not be read.
    Unreadable(LogError),
}

/// Scans `file`, and its plain-text `.1` sibling when `file` does not reach
/// back to `since` (logrotate's `delaycompress` leaves it uncompressed).
pub fn scan_window(
    file: &Path,
    since: DateTime<FixedOffset>,
    min: Level,
    naive: FixedOffset,
    cancel: &CancellationToken,
) -> Result<(Scan, Option<Rotated>), LogError> {
    let main = scan_file(file, since, min, naive, cancel)?;
    let covered = main.first.is_some_and(|f| f <= since);
    let mut rotated = PathBuf::from(file.as_os_str());
    rotated.as_mut_os_string().push(".1");
    if covered || !rotated.is_file() {
        return Ok((main, None));
    }
    match scan_file(&rotated, since, min, naive, cancel) {
        Ok(older) => {
            let mut all = main;
            all.merge(older);
            Ok((all, Some(Rotated::Read(rotated))))
        }
        Err(e) => Ok((main, Some(Rotated::Unreadable(e)))),
    }
}

/// Log files beside `file` with its stem (`app-2026-11-29.log`,
/// `app.log.1.gz`), sorted, at most ten.
pub fn rotated_siblings(file: &Path) -> Vec<String> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let stem = name.split('.').next().unwrap_or(&name).to_owned();
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| *n != name && n.starts_with(&stem) && n.contains(".log"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.truncate(10);
    found
}
