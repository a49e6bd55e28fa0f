//! Retention: which snapshots of a directory to keep and which to delete.
//! A snapshot is kept when any rule keeps it: among the newest
//! `keep_last`, younger than `keep_for`, the newest one whose restore test
//! passed, or taken by a run that has not finished (it may still be in its
//! watch or rollback window and need it). Incomplete and damaged snapshots
//! are never deleted here: one may be still being written, the other is
//! for a person to look at. A prune marks a snapshot ([`PRUNING`]) before
//! it deletes anything of it, so that a deletion cut short is finished by
//! the next prune instead of being kept as incomplete forever.
//!
//! The same rules ([`decide`]) prune a local directory ([`prune`]) and an
//! off-site prefix (`offsite::prune`, feature `s3`); only how a listed
//! snapshot is matched with the one a run recorded differs ([`Matching`]).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use escola_runbook_core::RunRecord;
use escola_runbook_core::format_duration;
use escola_runbook_core::journal::read_journal;
use escola_runbook_core::runs;

use super::restore::{SnapshotListing, SnapshotStatus, list};
use super::snapshot::{MANIFEST, PRUNING, SNAPSHOT_PATH};

/// What [`PRUNING`] holds: when, for a person who finds it.
pub(crate) fn pruning_note(now: DateTime<Utc>) -> String {
    format!(
        "escola-runbook snapshot prune began deleting this snapshot at {}\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// The newest this many complete snapshots.
    pub keep_last: usize,
    /// Snapshots younger than this.
    pub keep_for: Option<Duration>,
}

/// What becomes of one snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot directory.
    pub path: PathBuf,
    /// Every reason to keep it; empty: deleted.
    pub kept_because: Vec<String>,
}

/// How a listed snapshot is matched with the snapshots unfinished runs
/// recorded (`snapshot.path`, a local directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// The same directory (canonical paths): a local snapshot.
    Path,
    /// The same snapshot name, the recorded directory's last component: a
    /// remote copy `PREFIX/NAME` of the directory `.../NAME`, whose path
    /// the run never saw. Names carry the database and the second the
    /// snapshot was taken, so two snapshots rarely share one; when they
    /// do, both are kept, never both deleted.
    Name,
}

/// The snapshots unfinished runs took, each with why it is needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunNeeds {
    /// Canonical path recorded -> why it is needed.
    taken: BTreeMap<PathBuf, String>,
}

impl RunNeeds {
    /// Needs from recorded paths and why each is needed (paths are made
    /// canonical where they exist).
    pub fn new(taken: impl IntoIterator<Item = (PathBuf, String)>) -> Self {
        RunNeeds {
            taken: taken
                .into_iter()
                .map(|(path, why)| (canonical(&path), why))
                .collect(),
        }
    }

    /// Why a run needs the listed snapshot at `path`, if one does.
    pub fn why(&self, path: &Path, matching: Matching) -> Option<&str> {
        match matching {
            Matching::Path => self.taken.get(&canonical(path)).map(String::as_str),
            Matching::Name => {
                let name = path.file_name()?;
                self.taken
                    .iter()
                    .find(|(taken, _)| taken.file_name() == Some(name))
                    .map(|(_, why)| why.as_str())
            }
        }
    }
}

/// Why pruning failed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The snapshot directory cannot be listed.
    #[error("cannot list {}: {source}", dir.display())]
    List {
        /// The directory.
        dir: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// The run directory cannot be listed: without it, a snapshot a run
    /// still needs cannot be told apart, so nothing is deleted.
    #[error("cannot list the runs in {}: {source}; nothing was deleted", dir.display())]
    Runs {
        /// The run directory.
        dir: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// A snapshot could not be deleted (those before it were).
    #[error("deleting {}: {source}", path.display())]
    Delete {
        /// The snapshot.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
}

/// The snapshots that unfinished runs under `run_root` took, with why they
/// protect them (a missing run directory has no runs).
pub fn needed_by_runs(run_root: &Path) -> Result<RunNeeds, PruneError> {
    let stored = match runs::list(run_root) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RunNeeds::default()),
        Err(source) => {
            return Err(PruneError::Runs {
                dir: run_root.to_owned(),
                source,
            });
        }
    };
    let mut needed = Vec::new();
    for run in stored {
        // A journal that cannot be read is not proof that its run is over.
        let record = read_journal(&run.journal)
            .ok()
            .and_then(|j| RunRecord::from_events(&j.events).ok());
        let Some(record) = record else {
            continue;
        };
        if record.finished_at.is_some() {
            continue;
        }
        for (_, step) in record.steps() {
            let path = step
                .outcome
                .as_ref()
                .and_then(|o| o.values.get(SNAPSHOT_PATH))
                .and_then(|v| v.as_str());
            if let Some(path) = path {
                needed.push((
                    PathBuf::from(path),
                    format!("taken by run {}, which has not finished", run.id),
                ));
            }
        }
    }
    Ok(RunNeeds::new(needed))
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// The decision on each of `listed` (newest first, as [`list`] gives them)
/// at `now`; `needed` says which a run needs, matched as `matching` says.
pub fn decide(
    listed: &[SnapshotListing],
    needed: &RunNeeds,
    matching: Matching,
    retention: Retention,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let newest_proven = listed
        .iter()
        .filter(|l| l.status == SnapshotStatus::Complete)
        .find(|l| l.verified.as_ref().is_some_and(|v| v.passed))
        .map(|l| l.path.clone());
    let mut complete = 0usize;
    listed
        .iter()
        .map(|l| {
            let mut why = Vec::new();
            match &l.status {
                SnapshotStatus::Complete => {
                    complete += 1;
                    if complete <= retention.keep_last {
                        why.push(format!("one of the newest {}", retention.keep_last));
                    }
                }
                SnapshotStatus::Incomplete => why.push("incomplete (may be being written)".into()),
                SnapshotStatus::Damaged(_) => why.push("damaged (for a person to look at)".into()),
                SnapshotStatus::BeingDeleted => {
                    // Decided and begun by an earlier prune: finished now,
                    // whatever would keep it.
                    return Decision {
                        path: l.path.clone(),
                        kept_because: why,
                    };
                }
            }
            if let (Some(limit), Some(age)) = (retention.keep_for, l.age(now)) {
                if age.to_std().is_ok_and(|a| a < limit) {
                    why.push(format!("younger than {}", format_duration(limit)));
                }
            }
            if newest_proven.as_ref() == Some(&l.path) {
                why.push("the newest that passed its restore test".into());
            }
            if let Some(run) = needed.why(&l.path, matching) {
                why.push(run.to_owned());
            }
            Decision {
                path: l.path.clone(),
                kept_because: why,
            }
        })
        .collect()
}

/// Decides on every snapshot under `dir` (the runs under `run_root`
/// protecting theirs) and, unless `dry_run`, deletes those no rule keeps:
/// the [`PRUNING`] marker written, then the manifest, so an interrupted
/// deletion never looks complete and the next prune finishes it.
pub fn prune(
    dir: &Path,
    run_root: &Path,
    retention: Retention,
    dry_run: bool,
) -> Result<Vec<Decision>, PruneError> {
    let needed = needed_by_runs(run_root)?;
    let listed = list(dir, false).map_err(|source| PruneError::List {
        dir: dir.to_owned(),
        source,
    })?;
    let decisions = decide(&listed, &needed, Matching::Path, retention, Utc::now());
    if !dry_run {
        for d in decisions.iter().filter(|d| d.kept_because.is_empty()) {
            let delete = |source| PruneError::Delete {
                path: d.path.clone(),
                source,
            };
            fs::write(d.path.join(PRUNING), pruning_note(Utc::now())).map_err(delete)?;
            match fs::remove_file(d.path.join(MANIFEST)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(delete(e)),
                _ => {}
            }
            fs::remove_dir_all(&d.path).map_err(delete)?;
        }
    }
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::db::verified::Verified;

    fn snap(name: &str, hours_ago: i64, status: SnapshotStatus, proven: bool) -> SnapshotListing {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        SnapshotListing {
            path: PathBuf::from(format!("/nonexistent/{name}")),
            status,
            finished_at: Some(now - chrono::Duration::hours(hours_ago)),
            bytes: 1,
            databases: Vec::new(),
            rows: 0,
            encrypted: false,
            verified: proven.then(|| Verified {
                verified_at: now,
                passed: true,
                server: "s".into(),
                manifest_sha256: "ab".into(),
                elapsed_ms: 1000,
                tables: Vec::new(),
                restore_failed: None,
            }),
        }
    }

    #[test]
    fn every_rule_keeps_and_says_why() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let c = || SnapshotStatus::Complete;
        let listed = [
            snap("a", 1, c(), false),
            snap("partial", 2, SnapshotStatus::Incomplete, false),
            snap("b", 30, c(), false),
            snap("c", 50, c(), true),
            snap("d", 70, c(), false),
            snap("e", 90, c(), false),
        ];
        let needed = RunNeeds::new([(
            PathBuf::from("/nonexistent/e"),
            "taken by run r1, which has not finished".to_owned(),
        )]);
        let retention = Retention {
            keep_last: 2,
            keep_for: Some(Duration::from_secs(24 * 3600)),
        };
        let d = decide(&listed, &needed, Matching::Path, retention, now);
        let why = |name: &str| {
            d.iter()
                .find(|d| d.path.ends_with(name))
                .unwrap()
                .kept_because
                .join("; ")
        };
        assert_eq!(why("a"), "one of the newest 2; younger than 24h");
        assert!(why("partial").starts_with("incomplete"));
        assert_eq!(why("b"), "one of the newest 2");
        assert_eq!(why("c"), "the newest that passed its restore test");
        assert_eq!(why("d"), "", "deleted");
        assert_eq!(why("e"), "taken by run r1, which has not finished");
    }

    #[test]
    fn a_deletion_cut_short_is_finished_whatever_would_keep_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let listed = [snap("cut", 0, SnapshotStatus::BeingDeleted, true)];
        let needed = RunNeeds::new([(
            PathBuf::from("/nonexistent/cut"),
            "taken by run r1, which has not finished".to_owned(),
        )]);
        let retention = Retention {
            keep_last: 5,
            keep_for: Some(Duration::from_secs(24 * 3600)),
        };
        let d = decide(&listed, &needed, Matching::Path, retention, now);
        assert!(d[0].kept_because.is_empty(), "{:?}", d[0].kept_because);
    }

    #[test]
    fn a_local_prune_cut_short_is_listed_as_such_and_finished_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("escola-20261202T100000Z");
        fs::create_dir(&cut).unwrap();
        // What a prune stopped after deleting the manifest leaves.
        fs::write(cut.join("escola.eventos.sql.zst"), b"rows").unwrap();
        fs::write(cut.join(PRUNING), pruning_note(Utc::now())).unwrap();
        let listed = list(dir.path(), false).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, SnapshotStatus::BeingDeleted);
        assert_eq!(
            listed[0].status.to_string(),
            "being deleted (a prune was cut short)"
        );
        let keep_all = Retention {
            keep_last: 10,
            keep_for: Some(Duration::from_secs(3600)),
        };
        let runs = dir.path().join("no-runs");
        let d = prune(dir.path(), &runs, keep_all, false).unwrap();
        assert!(d[0].kept_because.is_empty(), "{:?}", d[0].kept_because);
        assert!(!cut.exists(), "the deletion was finished");
    }

    #[test]
    fn a_remote_copy_is_matched_with_the_run_by_name_a_local_one_by_path() {
        let needed = RunNeeds::new([(
            PathBuf::from("/srv/deploy/snapshots/escola-20261202T100000Z"),
            "taken by run r1, which has not finished".to_owned(),
        )]);
        let remote = Path::new("s3://backups/escola/escola-20261202T100000Z");
        assert_eq!(
            needed.why(remote, Matching::Name),
            Some("taken by run r1, which has not finished")
        );
        assert_eq!(needed.why(remote, Matching::Path), None);
        let other = Path::new("s3://backups/escola/escola-20261202T100000Z-2");
        assert_eq!(needed.why(other, Matching::Name), None, "whole names only");
        let elsewhere = Path::new("/other/escola-20261202T100000Z");
        assert_eq!(needed.why(elsewhere, Matching::Path), None);
    }
}
