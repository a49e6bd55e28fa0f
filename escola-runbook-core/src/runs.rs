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

use chrono::{DateTime, Utc};

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
/// their recorded start time (generated ids carry it to the second only),
/// then by id, each with its first record. A journal whose first record
/// cannot be read takes its file's modification time, so a damaged latest
/// run is still the latest, and is reported rather than passed over.
pub fn list(root: &Path) -> std::io::Result<Vec<StoredRun>> {
    let mut runs: Vec<(Option<DateTime<Utc>>, StoredRun)> = std::fs::read_dir(root)?
        .filter_map(Result::ok)
        .filter(|e| e.path().join(JOURNAL_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|id| {
            let journal = root.join(&id).join(JOURNAL_FILE);
            let start = read_start(&journal);
            let at = match &start {
                Some(s) => Some(s.info.started_at),
                None => std::fs::metadata(&journal)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(DateTime::<Utc>::from),
            };
            (at, StoredRun { id, journal, start })
        })
        .collect();
    runs.sort_by(|(a_at, a), (b_at, b)| a_at.cmp(b_at).then_with(|| a.id.cmp(&b.id)));
    Ok(runs.into_iter().map(|(_, run)| run).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::Environment;
    use crate::event::SCHEMA_VERSION;
    use crate::model::{Phase, Runbook, Step};
    use crate::outline::RunbookOutline;

    fn started(root: &Path, id: &str, name: &str, source: Option<RunbookOrigin>, at: &str) {
        let runbook = Runbook::builder(name)
            .phase(Phase::new("p", "P").step(Step::manual("s", "S")))
            .build()
            .unwrap();
        let event = Event::RunStarted {
            schema_version: SCHEMA_VERSION,
            run: RunInfo {
                run_id: id.into(),
                operator: "ana".into(),
                host: "deploy-host".into(),
                environment: Environment::new("production"),
                dry_run: false,
                phases: Vec::new(),
                only: Vec::new(),
                tool_version: "0.1.0".into(),
                started_at: at.parse().unwrap(),
                source,
            },
            runbook: RunbookOutline::of(&runbook),
        };
        std::fs::create_dir_all(root.join(id)).unwrap();
        let line = format!("{}\n", serde_json::to_string(&event).unwrap());
        std::fs::write(root.join(id).join(JOURNAL_FILE), line).unwrap();
    }

    fn markdown(path: &str) -> RunbookOrigin {
        RunbookOrigin::MarkdownFile {
            path: path.into(),
            sha256: "ab".repeat(32),
            import: serde_json::Value::Null,
        }
    }

    #[test]
    fn runs_are_ordered_by_start_and_matched_by_name_and_source() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Ids that sort against their start times, as two runs started in
        // the same second may.
        started(
            root,
            "z-first",
            "A",
            Some(markdown("/rb/a.md")),
            "2000-01-01T02:00:00.1Z",
        );
        started(
            root,
            "a-second",
            "B",
            Some(markdown("/rb/b.md")),
            "2000-01-01T02:00:00.7Z",
        );
        started(root, "m-old-journal", "A", None, "2000-01-01T01:00:00Z");
        // A journal whose first record is gone is still the latest run.
        std::fs::create_dir_all(root.join("0-damaged")).unwrap();
        std::fs::write(root.join("0-damaged").join(JOURNAL_FILE), "").unwrap();
        let runs = list(root).unwrap();
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["m-old-journal", "z-first", "a-second", "0-damaged"]);
        let of_a: Vec<&str> = runs
            .iter()
            .filter(|r| r.is_of("A", &markdown("/rb/a.md")))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            of_a,
            ["m-old-journal", "z-first"],
            "an old journal matches by name"
        );
        assert!(!runs[1].is_of("A", &markdown("/elsewhere/a.md")));
        assert_eq!(
            runs[3].describe_runbook(),
            "a runbook its journal does not name (damaged journal)"
        );
    }
}
