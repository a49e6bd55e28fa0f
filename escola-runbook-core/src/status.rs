//! Where a run stands, and the runs a run directory holds: read from the
//! journals alone (no lock taken, nothing written), as typed data the CLI's
//! `status` and `history` print as text or JSON and a console can show.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::AlertState;
use crate::approval::{ApprovalRecord, ApprovalRequest};
use crate::decisions::pending;
use crate::deploy_lock::{LockError, LockOwner, Staleness};
use crate::event::{RollbackReason, Verdict};
use crate::journal::{JournalReadError, read_journal};
use crate::record::{RecordError, RunRecord};
use crate::runs;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// It ended with a verdict.
    Finished,
    /// Its process holds the deploy lock: it runs now.
    Running,
    /// It stopped to wait for an approval (`run --no-wait`); resumable.
    AwaitingApproval,
    /// No verdict and no live process holding its lock (none holds it,
    /// or its holder looks gone): it died, or runs without a lock (a
    /// dry-run); resumable.
    Unfinished,
}

impl RunState {
    /// The state in words.
    pub fn label(self) -> &'static str {
        match self {
            RunState::Finished => "finished",
            RunState::Running => "running",
            RunState::AwaitingApproval => "awaiting approval",
            RunState::Unfinished => "unfinished (no process holds its lock)",
        }
    }
}

/// A step as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    /// Phase id.
    pub phase: String,
    /// Step id.
    pub step: String,
    /// Title.
    pub title: String,
    /// Its status (`passed`, `failed`, ...), `waiting_approval` while it
    /// waits for one, `running` while it runs, `interrupted` when the
    /// process that started it is known to be gone (its lock is stale),
    /// `pending` before it starts.
    pub status: String,
    /// Time spent on it so far (finished: first start to finish).
    pub elapsed_ms: u64,
    /// The outcome's summary, once it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Its approval, if it requires one and the run reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
}

/// A step waiting for an approval, and who may give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// Phase id.
    pub phase: String,
    /// Step id.
    pub step: String,
    /// The role, who may approve, since when, the deadline.
    #[serde(flatten)]
    pub request: ApprovalRequest,
}

/// An alert rule of a watch step, as its latest transition left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// The watch step.
    pub step: String,
    /// Rule id.
    pub rule: String,
    /// Its state now.
    pub state: AlertState,
    /// The last value measured, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// What the evaluation saw.
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A run as it stands, from its journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Run id.
    pub run_id: String,
    /// Runbook name.
    pub runbook: String,
    /// Environment name.
    pub environment: String,
    /// Who started it.
    pub operator: String,
    /// Where.
    pub host: String,
    /// A dry-run.
    pub dry_run: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Where it stands.
    pub state: RunState,
    /// Its verdict, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Its exit code, once finished (or awaiting approval: 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The step it is at (running or waiting), if not finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<StepStatus>,
    /// Every step.
    pub steps: Vec<StepStatus>,
    /// Steps waiting for an approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_approvals: Vec<PendingApproval>,
    /// Who holds the deploy lock of its runbook and environment, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_holder: Option<LockOwner>,
    /// Why that holder looks gone (its process died on this host, or its
    /// heartbeat is older than the lease), if it does: the lock file is
    /// still there, but nobody runs under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_stale: Option<Staleness>,
    /// Why a rollback ran, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReason>,
    /// The watch rules' current state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleStatus>,
}

impl RunStatus {
    /// The status of the run in `record` at `now`, with the holder of the
    /// deploy lock its run directory `root` keeps for it, and whether that
    /// holder looks gone from this host.
    pub fn read(record: &RunRecord, root: &Path, now: DateTime<Utc>) -> Result<Self, LockError> {
        let lock = runs::file_lock(root, &record.runbook, &record.run.environment.name);
        let holder = lock.holder()?;
        let stale = holder
            .as_ref()
            .and_then(|h| lock.staleness(h, now, &crate::identity::host()));
        Ok(Self::of(record, holder, stale, now))
    }

    /// The status of the run in `record` at `now`, with the holder of its
    /// deploy lock (`None`: nobody holds it) and why it looks gone, if it
    /// does (then the run is not running, whatever the lock file says).
    pub fn of(
        record: &RunRecord,
        lock_holder: Option<LockOwner>,
        lock_stale: Option<Staleness>,
        now: DateTime<Utc>,
    ) -> Self {
        let run = &record.run;
        let own_lock = lock_holder.as_ref().is_some_and(|o| o.run_id == run.run_id);
        let holds = own_lock && lock_stale.is_none();
        // Known gone: its own lock's holder died. (A dry-run takes no lock,
        // so without one nothing says whether its process still runs.)
        let gone = own_lock && lock_stale.is_some();
        let state = if record.verdict.is_some() {
            RunState::Finished
        } else if record.awaiting_approval.is_some() {
            RunState::AwaitingApproval
        } else if holds {
            RunState::Running
        } else {
            RunState::Unfinished
        };
        let steps: Vec<StepStatus> = record
            .steps()
            .map(|(p, s)| {
                let waiting = pending(s).is_some();
                let (status, elapsed_ms) = match (&s.outcome, s.started_at, &s.approval) {
                    (Some(o), _, _) => (o.status.as_str().to_owned(), s.elapsed_ms),
                    (None, _, Some(a)) if waiting => {
                        ("waiting_approval".to_owned(), since(a.request.since, now))
                    }
                    // Started by a process that is gone: `resume` decides.
                    (None, Some(_), _) if gone => ("interrupted".to_owned(), 0),
                    (None, Some(at), _) => ("running".to_owned(), since(at, now)),
                    (None, None, _) => ("pending".to_owned(), 0),
                };
                StepStatus {
                    phase: p.id.clone(),
                    step: s.outline.id.clone(),
                    title: s.outline.title.clone(),
                    status,
                    elapsed_ms,
                    summary: s.outcome.as_ref().map(|o| o.summary.clone()),
                    approval: s.approval.clone(),
                }
            })
            .collect();
        let pending_approvals = record
            .steps()
            .filter_map(|(p, s)| {
                pending(s).map(|r| PendingApproval {
                    phase: p.id.clone(),
                    step: s.outline.id.clone(),
                    request: r.clone(),
                })
            })
            .collect();
        let current = (state != RunState::Finished)
            .then(|| {
                steps
                    .iter()
                    .find(|s| {
                        matches!(
                            s.status.as_str(),
                            "running" | "waiting_approval" | "interrupted"
                        )
                    })
                    .cloned()
            })
            .flatten();
        let mut rules: Vec<RuleStatus> = Vec::new();
        for t in &record.rule_transitions {
            let latest = RuleStatus {
                step: t.step.clone(),
                rule: t.transition.rule.clone(),
                state: t.transition.to,
                value: t.transition.value,
                detail: t.transition.detail.clone(),
                at: t.transition.at,
            };
            match rules
                .iter_mut()
                .find(|r| r.step == t.step && r.rule == t.transition.rule)
            {
                Some(r) => *r = latest,
                None => rules.push(latest),
            }
        }
        RunStatus {
            run_id: run.run_id.clone(),
            runbook: record.runbook.clone(),
            environment: run.environment.name.clone(),
            operator: run.operator.clone(),
            host: run.host.clone(),
            dry_run: run.dry_run,
            started_at: run.started_at,
            state,
            verdict: record.verdict,
            exit_code: record.exit_code,
            finished_at: record.finished_at,
            current,
            steps,
            pending_approvals,
            lock_holder,
            lock_stale,
            rollback: record.rollback.clone(),
            rules,
        }
    }
}

fn since(at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((now - at).num_milliseconds().max(0)).unwrap_or(0)
}

/// One run in a run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Run id.
    pub run_id: String,
    /// Runbook name.
    pub runbook: String,
    /// Environment name.
    pub environment: String,
    /// Who started it.
    pub operator: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// From start to finish (to its last record when unfinished).
    pub duration_ms: u64,
    /// A dry-run.
    pub dry_run: bool,
    /// Its verdict, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Its exit code, once finished (or awaiting approval: 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl HistoryEntry {
    /// Its verdict in words, as `history` and the console's run list show
    /// it: the verdict, "awaiting approval" or "unfinished", then
    /// " (dry-run)" for a dry-run.
    pub fn verdict_label(&self) -> String {
        let verdict = match (self.verdict, self.exit_code) {
            (Some(v), _) => v.label(),
            (None, Some(crate::exit::AWAITING_APPROVAL)) => "awaiting approval",
            (None, _) => "unfinished",
        };
        let dry = if self.dry_run { " (dry-run)" } else { "" };
        format!("{verdict}{dry}")
    }
}

/// Why the history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The run directory could not be listed.
    #[error(transparent)]
    Lookup(#[from] runs::LookupError),
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalReadError),
    /// A journal's records do not make a run.
    #[error("{}: {source}", journal.display())]
    Record {
        /// The journal.
        journal: std::path::PathBuf,
        /// What is wrong.
        source: RecordError,
    },
}

/// The runs a run directory holds, and the journals among them that could
/// not be read.
#[derive(Debug, Default)]
pub struct History {
    /// The runs whose journals were read, oldest first.
    pub runs: Vec<HistoryEntry>,
    /// One error per journal that could not be read or does not make a
    /// run ([`HistoryError::Journal`] or [`HistoryError::Record`], each
    /// naming its journal): one damaged run does not hide the others.
    pub unreadable: Vec<HistoryError>,
}

/// The runs under `root`, oldest first, each folded from its journal. Only
/// a run directory that cannot be listed is an error; a journal that
/// cannot be read is set aside in [`History::unreadable`].
pub fn history(root: &Path) -> Result<History, HistoryError> {
    let stored = runs::list(root).map_err(|source| runs::LookupError::CannotList {
        root: root.to_owned(),
        source,
    })?;
    let mut history = History::default();
    for run in stored {
        match entry(&run.journal) {
            Ok(entry) => history.runs.push(entry),
            Err(e) => history.unreadable.push(e),
        }
    }
    Ok(history)
}

/// The history line of the run whose journal is `journal`.
fn entry(journal: &Path) -> Result<HistoryEntry, HistoryError> {
    let contents = read_journal(journal)?;
    let record =
        RunRecord::from_events(&contents.events).map_err(|source| HistoryError::Record {
            journal: journal.to_owned(),
            source,
        })?;
    let last = contents
        .events
        .iter()
        .rev()
        .find_map(crate::event::Event::at);
    let end = record.finished_at.or(last).unwrap_or(record.run.started_at);
    Ok(HistoryEntry {
        run_id: record.run.run_id.clone(),
        runbook: record.runbook.clone(),
        environment: record.run.environment.name.clone(),
        operator: record.run.operator.clone(),
        started_at: record.run.started_at,
        duration_ms: since(record.run.started_at, end),
        dry_run: record.run.dry_run,
        verdict: record.verdict,
        exit_code: record.exit_code,
    })
}
