//! The run's append-only JSONL journal: one event per line, fsynced per
//! record, so a run killed at any instant leaves a record that reports (and
//! resume) can trust.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::event::Event;
use crate::journal_error::JournalWriteError;

/// The journal's file name inside a run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Appends events to a journal file.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
}

impl JournalWriter {
    /// Creates a new journal at `path`; refuses to overwrite one that exists,
    /// because a journal is never rewritten.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, JournalWriteError> {
        let path = path.into();
        let mut options = OpenOptions::new();
        options.append(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|source| JournalWriteError {
            path: path.clone(),
            action: "create".into(),
            source,
        })?;
        Ok(JournalWriter { file, path })
    }

    /// Opens an existing journal to append to it (resume). A torn last line
    /// (a write cut by a crash, never a complete record) is cut off first,
    /// so the next record starts on a line of its own.
    pub fn open_existing(path: impl Into<PathBuf>) -> Result<Self, JournalWriteError> {
        let path = path.into();
        let err = |source| JournalWriteError {
            path: path.clone(),
            action: "open".into(),
            source,
        };
        let bytes = std::fs::read(&path).map_err(err)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(err)?;
        if bytes.last().is_some_and(|b| *b != b'\n') {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)
                .and_then(|()| file.sync_data())
                .map_err(err)?;
        }
        Ok(JournalWriter { file, path })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `event` as one line and waits until it is on disk.
    pub fn append(&mut self, event: &Event) -> Result<(), JournalWriteError> {
        let lost = |source| JournalWriteError {
            path: self.path.clone(),
            action: format!("append {} to", describe(event)),
            source,
        };
        let mut line = serde_json::to_vec(event).map_err(|e| lost(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(lost)
    }
}

/// A record in words, for the message that says it was lost:
/// "step_finished of step `migrate` (passed)".
fn describe(event: &Event) -> String {
    let json = serde_json::to_value(event).unwrap_or_default();
    let name = json
        .get("event")
        .and_then(|v| v.as_str())
        .unwrap_or("a record");
    let step = json
        .get("step")
        .and_then(|v| v.as_str())
        .map(|s| format!(" of step `{s}`"))
        .unwrap_or_default();
    let status = json
        .pointer("/outcome/status")
        .and_then(|v| v.as_str())
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    format!("{name}{step}{status}")
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalContents {
    /// The events, in order.
    pub events: Vec<Event>,
    /// Things worth telling the reader (a torn last line ignored).
    pub warnings: Vec<String>,
}

/// Why a journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalReadError {
    /// The file could not be opened or read.
    #[error("cannot read journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A complete line is not a valid event: the file was edited or damaged.
    #[error(
        "journal {path} is corrupt at line {line}: {reason} (line starts: {excerpt:?}); restore it from a backup or remove the run directory"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
        /// The first characters of the line.
        excerpt: String,
    },
    /// The journal holds no event at all.
    #[error("journal {0} is empty: the run never started")]
    Empty(PathBuf),
}

/// Reads a journal. A torn last line (no newline, not valid JSON: the process
/// died while writing it) is ignored with a warning; any other bad line is an
/// error naming it.
pub fn read_journal(path: &Path) -> Result<JournalContents, JournalReadError> {
    let io_err = |source| JournalReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut line = Vec::new();
    let mut number = 0;
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io_err)? == 0 {
            break;
        }
        number += 1;
        let complete = line.last() == Some(&b'\n');
        match serde_json::from_slice::<Event>(&line) {
            Ok(event) => events.push(event),
            Err(_) if !complete => warnings.push(format!(
                "journal {}: ignored a torn last line {number} (the run was interrupted while writing it)",
                path.display()
            )),
            Err(e) => {
                return Err(JournalReadError::Corrupt {
                    path: path.to_owned(),
                    line: number,
                    reason: e.to_string(),
                    excerpt: String::from_utf8_lossy(&line).trim_end().chars().take(80).collect(),
                });
            }
        }
    }
    if events.is_empty() {
        return Err(JournalReadError::Empty(path.to_owned()));
    }
    Ok(JournalContents { events, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    #[test]
    fn a_record_that_cannot_be_written_is_named_in_the_error() {
        if !Path::new("/dev/full").exists() {
            eprintln!("skipping: no /dev/full on this system");
            return;
        }
        // /dev/full accepts the open and fails every write with ENOSPC, as a
        // full disk does.
        let mut journal = JournalWriter {
            file: OpenOptions::new().append(true).open("/dev/full").unwrap(),
            path: PathBuf::from("/runs/r1/journal.jsonl"),
        };
        let err = journal
            .append(&Event::StepFinished {
                phase: "deploy".into(),
                step: "migrate".into(),
                outcome: Outcome::passed("migrated"),
                attempts: 1,
                elapsed_ms: 10,
                at: chrono::Utc::now(),
            })
            .unwrap_err();
        assert_eq!(err.source.kind(), std::io::ErrorKind::StorageFull);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "cannot append step_finished of step `migrate` (passed) to the run journal /runs/r1/journal.jsonl: "
            ),
            "{text}"
        );
    }
}
