//! The run store: the runs kept under a run root
//! (`<root>/<run-id>/journal.jsonl`), their ids, which exist and what each
//! started as, so a caller can find a run by its journal, its directory or
//! its id, or pick "the latest run of this runbook" from a directory several
//! runbooks share without folding every journal.
//!
//! A run is *of* a runbook when its run-started record names the same
//! runbook (its name) from the same source ([`RunbookOrigin::same_runbook`]:
//! the same kind and, for files, the same path). A journal written before
//! sources were recorded matches by name alone.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::deploy_lock::FileLock;
use crate::event::{Event, RunInfo, RunbookOrigin};
use crate::journal::JOURNAL_FILE;

/// How long a run's deploy lock lives without a heartbeat.
pub const LOCK_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// The local deploy lock of `runbook` in `environment` under the run root
/// `root`: a run takes it; `status` and the console read its holder.
pub fn file_lock(root: &Path, runbook: &str, environment: &str) -> FileLock {
    FileLock::for_runbook(&root.join("locks"), runbook, environment, LOCK_LEASE)
}

/// The directory of run `run_id` under `root`.
pub fn run_directory(root: &Path, run_id: &str) -> PathBuf {
    root.join(run_id)
}

/// A run id from the time and the process: sortable, unique enough for one
/// machine.
pub fn generate_run_id(now: DateTime<Utc>) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let salt = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(now.timestamp_subsec_nanos())
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{}-{:04x}", now.format("%Y%m%dT%H%M%SZ"), salt & 0xffff)
}

/// Why no run was found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// What was asked names no journal file, run directory or run id under
    /// the run root.
    #[error(
        "no run `{asked}`: neither a journal file, a run directory, nor a run id under {}; {}",
        root.display(),
        match known.last() {
            Some(latest) => format!(
                "the latest run there is `{latest}` ({} runs); `latest` also works",
                known.len()
            ),
            None => "no runs are recorded there".to_owned(),
        }
    )]
    NotFound {
        /// What was asked.
        asked: String,
        /// The run root.
        root: PathBuf,
        /// The ids of the runs there, oldest first (the last is the latest).
        known: Vec<String>,
    },
    /// The run root could not be listed.
    #[error("cannot list runs in {}: {source}", root.display())]
    CannotList {
        /// The run root.
        root: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The run root holds no run.
    #[error("no runs recorded in {}", root.display())]
    NoRuns {
        /// The run root.
        root: PathBuf,
    },
    /// No run of the runbook asked for; the latest run there is of another.
    #[error(
        "no run of runbook `{runbook}` ({origin}) in {}; the latest there, {}, is of {}",
        root.display(),
        latest.id,
        latest.describe_runbook()
    )]
    NoRunOf {
        /// The runbook's name.
        runbook: String,
        /// Where it was loaded from.
        origin: Box<RunbookOrigin>,
        /// The run root.
        root: PathBuf,
        /// The latest run there.
        latest: Box<StoredRun>,
    },
}

/// The latest run asked for, and the later run of another runbook it
/// passed over, if any (a caller may want to say so).
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The run.
    pub run: StoredRun,
    /// The run root's latest run, when it is of another runbook.
    pub passed_over: Option<StoredRun>,
}

/// The journal of `run`: a journal file, a run directory, `latest` (the
/// latest run under `root`), or a run id under `root`.
pub fn locate(run: &str, root: &Path) -> Result<PathBuf, LookupError> {
    let as_path = Path::new(run);
    if as_path.is_file() {
        return Ok(as_path.to_owned());
    }
    if as_path.join(JOURNAL_FILE).is_file() {
        return Ok(as_path.join(JOURNAL_FILE));
    }
    if run == "latest" {
        return latest(root, None).map(|found| found.run.journal);
    }
    let candidate = run_directory(root, run).join(JOURNAL_FILE);
    if candidate.is_file() {
        return Ok(candidate);
    }
    Err(LookupError::NotFound {
        asked: run.to_owned(),
        root: root.to_owned(),
        known: list(root)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.id)
            .collect(),
    })
}

/// The latest run under `root` of the runbook called `name` loaded from
/// `origin` ([`StoredRun::is_of`]), or with `None` the latest run of any
/// runbook.
pub fn latest(root: &Path, runbook: Option<(&str, &RunbookOrigin)>) -> Result<Latest, LookupError> {
    let all = list(root).map_err(|source| LookupError::CannotList {
        root: root.to_owned(),
        source,
    })?;
    let last = all.last().ok_or_else(|| LookupError::NoRuns {
        root: root.to_owned(),
    })?;
    let Some((name, origin)) = runbook else {
        return Ok(Latest {
            run: last.clone(),
            passed_over: None,
        });
    };
    match all.iter().rev().find(|r| r.is_of(name, origin)) {
        Some(run) => Ok(Latest {
            run: run.clone(),
            passed_over: (run.id != last.id).then(|| last.clone()),
        }),
        None => Err(LookupError::NoRunOf {
            runbook: name.to_owned(),
            origin: Box::new(origin.clone()),
            root: root.to_owned(),
            latest: Box::new(last.clone()),
        }),
    }
}
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
                config: None,
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

    #[test]
    fn a_run_is_found_by_journal_directory_id_or_latest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = Some(markdown("/rb/a.md"));
        started(root, "r1", "A", a.clone(), "2000-01-01T01:00:00Z");
        started(root, "r2", "A", a, "2000-01-01T02:00:00Z");
        let journal = root.join("r1").join(JOURNAL_FILE);
        let j = journal.to_str().unwrap();
        assert_eq!(locate(j, Path::new("/elsewhere")).unwrap(), journal);
        let d = root.join("r1");
        assert_eq!(locate(d.to_str().unwrap(), root).unwrap(), journal);
        assert_eq!(locate("r1", root).unwrap(), journal);
        assert_eq!(
            locate("latest", root).unwrap(),
            root.join("r2").join(JOURNAL_FILE)
        );
        match locate("r9", root).unwrap_err() {
            LookupError::NotFound { asked, known, .. } => {
                assert_eq!(asked, "r9");
                assert_eq!(known, ["r1", "r2"]);
            }
            e => panic!("{e}"),
        }
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            locate("latest", empty.path()),
            Err(LookupError::NoRuns { .. })
        ));
        assert!(matches!(
            locate("latest", &root.join("missing")),
            Err(LookupError::CannotList { .. })
        ));
    }

    #[test]
    fn the_latest_run_of_a_runbook_says_which_later_run_it_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        started(
            root,
            "a1",
            "A",
            Some(markdown("/rb/a.md")),
            "2000-01-01T01:00:00Z",
        );
        started(
            root,
            "b1",
            "B",
            Some(markdown("/rb/b.md")),
            "2000-01-01T02:00:00Z",
        );
        let found = latest(root, Some(("A", &markdown("/rb/a.md")))).unwrap();
        assert_eq!(found.run.id, "a1");
        assert_eq!(found.passed_over.map(|r| r.id).as_deref(), Some("b1"));
        let found = latest(root, Some(("B", &markdown("/rb/b.md")))).unwrap();
        assert_eq!((found.run.id.as_str(), found.passed_over), ("b1", None));
        let err = latest(root, Some(("C", &markdown("/rb/c.md")))).unwrap_err();
        assert!(
            matches!(&err, LookupError::NoRunOf { runbook, latest, .. } if runbook == "C" && latest.id == "b1"),
            "{err}"
        );
    }
}
