//! The runs kept under a run root (`<root>/<run-id>/journal.jsonl`): which
//! exist, and what each started as, so a caller can pick "the latest run of
//! this runbook" from a directory several runbooks share without folding
//! every journal.
//!
//! A run is *of* a runbook when its run-started record names the same
//! runbook (its name) from the same source ([`RunbookOrigin::same_runbook`]:
//! the same kind and, for files, the same path). A journal written before
//! sources were recorded matches by name alone.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::event::{Event, RunInfo, RunbookOrigin};
use crate::journal::JOURNAL_FILE;

/// A run found under a run root.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// Its id: the directory's name.
    pub id: String,
    /// Its journal.
    pub journal: PathBuf,
    /// What its run-started record says; `None` when that first record
    /// cannot be read (an empty or damaged journal).
    pub start: Option<RunStart>,
}

/// The first record of a run: its runbook and the facts fixed at its start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// The runbook's name.
    pub runbook: String,
    /// Run id, operator, environment, source...
    pub info: RunInfo,
}

impl StoredRun {
    /// Whether this run is of the runbook called `name` loaded from `source`.
    pub fn is_of(&self, name: &str, source: &RunbookOrigin) -> bool {
        self.start.as_ref().is_some_and(|s| {
            s.runbook == name
                && s.info
                    .source
                    .as_ref()
                    .is_none_or(|recorded| recorded.same_runbook(source))
        })
    }

    /// "runbook `NAME` (SOURCE)", for messages.
    pub fn describe_runbook(&self) -> String {
        match &self.start {
            Some(RunStart { runbook, info }) => match &info.source {
                Some(source) => format!("runbook `{runbook}` ({source})"),
                None => format!("runbook `{runbook}`"),
            },
            None => "a runbook its journal does not name (damaged journal)".into(),
        }
    }
}

/// The runs under `root` (directories holding a journal), oldest first by
/// their recorded start time, then by id (generated ids carry the start
/// time to the second only), each with its first record.
pub fn list(root: &Path) -> std::io::Result<Vec<StoredRun>> {
    let mut runs: Vec<StoredRun> = std::fs::read_dir(root)?
        .filter_map(Result::ok)
        .filter(|e| e.path().join(JOURNAL_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|id| {
            let journal = root.join(&id).join(JOURNAL_FILE);
            let start = read_start(&journal);
            StoredRun { id, journal, start }
        })
        .collect();
    runs.sort_by(|a, b| {
        let started = |r: &StoredRun| r.start.as_ref().map(|s| s.info.started_at);
        started(a).cmp(&started(b)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(runs)
}

/// The run-started record of a journal: its first line only.
fn read_start(journal: &Path) -> Option<RunStart> {
    let mut line = Vec::new();
    BufReader::new(File::open(journal).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    match serde_json::from_slice(&line).ok()? {
        Event::RunStarted { run, runbook, .. } => Some(RunStart {
            runbook: runbook.name,
            info: run,
        }),
        _ => None,
    }
}
