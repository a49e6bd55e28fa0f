//! One event enum for everything that happens in a run, and the
//! [`Observer`]s that receive it (terminal view, JSON lines, report
//! writers). The executor never prints; it emits, through the dispatcher
//! (`dispatch.rs`), which also journals each event. Plain data: nothing here
//! runs anything.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::RuleTransition;
use crate::approval::{ApprovalRequest, ApprovalResult};
use crate::confirm::Confirmation;
use crate::deploy_lock::LockOwner;
use crate::environment::Environment;
use crate::mutex::lock_unpoisoned;
use crate::notice::Notice;
use crate::outcome::{Outcome, Status};
use crate::outline::RunbookOutline;
use crate::process::ProcessGroup;

/// The version of the event and report JSON schema. Bumped on any change a
/// reader must know about; see `docs/report-schema.md`.
pub const SCHEMA_VERSION: u32 = 1;

/// Facts about a run, fixed at its start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Unique id, also the run directory's name.
    pub run_id: String,
    /// Who started it.
    pub operator: String,
    /// Where it ran.
    pub host: String,
    /// The target.
    pub environment: Environment,
    /// Mutating and manual steps were previewed, not run.
    pub dry_run: bool,
    /// `--phase` filter (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<String>,
    /// `--only` filter (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// This library's version.
    pub tool_version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Where the runbook came from, so `resume` reloads exactly that;
    /// absent in journals written before it was recorded, and when the
    /// embedder did not say ([`crate::RunOptions::source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RunbookOrigin>,
    /// The configuration file the run was started with (a project file),
    /// so `resume` reads the same one or refuses a changed one; absent
    /// when there was none ([`crate::RunOptions::config`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigFile>,
}

/// A configuration file as a run read it: where, and the sha256 of its
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Absolute path.
    pub path: PathBuf,
    /// sha256 (hex) of the bytes read.
    pub sha256: String,
}

/// Where a run's runbook came from: the file and the sha256 of its bytes,
/// or, for a runbook built in code, the tool version and a hash of the
/// configuration that shaped it. Recorded at the start of a run and at
/// each resume, so a resume reloads the same runbook or refuses, and a
/// report names the document it describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunbookOrigin {
    /// Built in code (the built-in Escola runbook, or an embedder's own).
    Builtin {
        /// Version of the tool that built it.
        tool_version: String,
        /// sha256 (hex) of `config` written as compact JSON with sorted keys.
        config_sha256: String,
        /// The configuration that shaped the runbook. It names secrets,
        /// never holds their values.
        #[serde(default)]
        config: serde_json::Value,
    },
    /// A TOML runbook file.
    TomlFile {
        /// Absolute path.
        path: PathBuf,
        /// sha256 (hex) of its bytes.
        sha256: String,
    },
    /// A Markdown document imported when the run started.
    MarkdownFile {
        /// Absolute path.
        path: PathBuf,
        /// sha256 (hex) of its bytes.
        sha256: String,
        /// The import options (commands' working directory, timeout...),
        /// so a resume imports it the same way.
        #[serde(default)]
        import: serde_json::Value,
    },
}

impl RunbookOrigin {
    /// The kind in words: "the built-in runbook", "TOML runbook file",
    /// "Markdown runbook".
    pub fn kind(&self) -> &'static str {
        match self {
            RunbookOrigin::Builtin { .. } => "the built-in runbook",
            RunbookOrigin::TomlFile { .. } => "TOML runbook file",
            RunbookOrigin::MarkdownFile { .. } => "Markdown runbook",
        }
    }

    /// The file, for the file kinds.
    pub fn path(&self) -> Option<&Path> {
        match self {
            RunbookOrigin::Builtin { .. } => None,
            RunbookOrigin::TomlFile { path, .. } | RunbookOrigin::MarkdownFile { path, .. } => {
                Some(path)
            }
        }
    }

    /// The hash that pins it: the file's bytes, or the built-in
    /// runbook's configuration.
    pub fn sha256(&self) -> &str {
        match self {
            RunbookOrigin::Builtin { config_sha256, .. } => config_sha256,
            RunbookOrigin::TomlFile { sha256, .. } | RunbookOrigin::MarkdownFile { sha256, .. } => {
                sha256
            }
        }
    }

    /// Whether `other` names the same runbook: the same kind and, for
    /// files, the same path. The content may differ (an edited file, another
    /// configuration); that is for the caller to compare.
    pub fn same_runbook(&self, other: &RunbookOrigin) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other) && self.path() == other.path()
    }
}

impl fmt::Display for RunbookOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunbookOrigin::Builtin {
                tool_version,
                config_sha256,
                ..
            } => write!(
                f,
                "the built-in runbook of version {tool_version} (configuration sha256 {})",
                short_hash(config_sha256)
            ),
            RunbookOrigin::TomlFile { path, sha256 }
            | RunbookOrigin::MarkdownFile { path, sha256, .. } => {
                write!(
                    f,
                    "{} {} (sha256 {})",
                    self.kind(),
                    path.display(),
                    short_hash(sha256)
                )
            }
        }
    }
}

/// The first 12 hex digits of a sha256: enough to tell versions apart in
/// a sentence; errors that compare hashes give them whole.
fn short_hash(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// What the operator decided for a step that was running when the previous
/// process died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterruptedDecision {
    /// Run it again.
    Rerun,
    /// It completed before the interruption: record it as done.
    Done,
    /// Do not continue the run.
    Abort,
}

/// One decision about an interrupted step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The step.
    pub step: String,
    /// The decision.
    pub decision: InterruptedDecision,
    /// Who decided.
    pub who: String,
    /// Why, in their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A resumption of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeInfo {
    /// Who resumed it.
    pub operator: String,
    /// Where.
    pub host: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Decisions about interrupted mutating steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolutions: Vec<Resolution>,
    /// The runbook this resumption loaded (the run's own, or one given
    /// explicitly that the step-by-step comparison accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RunbookOrigin>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every blocking step passed (or was confirmed or skipped on purpose).
    Succeeded,
    /// A blocking step failed and no rollback ran.
    Failed,
    /// A failure triggered the rollback phase, which completed.
    RolledBack,
    /// The rollback phase itself failed: a person must act now.
    RollbackFailed,
    /// The operator stopped the run.
    Stopped,
}

impl Verdict {
    /// The process exit code for this verdict (see [`crate::exit`]).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Succeeded => crate::exit::SUCCESS,
            Verdict::Failed | Verdict::RollbackFailed => crate::exit::STEP_FAILED,
            Verdict::RolledBack => crate::exit::ROLLED_BACK,
            Verdict::Stopped => crate::exit::STOPPED,
        }
    }

    /// Words for reports.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Succeeded => "succeeded",
            Verdict::Failed => "FAILED",
            Verdict::RolledBack => "ROLLED BACK",
            Verdict::RollbackFailed => "ROLLBACK FAILED",
            Verdict::Stopped => "STOPPED by the operator",
        }
    }
}

/// Why the rollback phase ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReason {
    /// The phase that failed.
    pub phase: String,
    /// The blocking step that failed.
    pub step: String,
    /// Its status.
    pub status: Status,
    /// Its summary (value, condition, limit).
    pub summary: String,
}

/// A blocking failure that would have started the rollback, and why it did
/// not: a run that changed nothing has nothing to roll back (a failing
/// re-check of read-only steps must not undo a deploy it did not make).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackWithheld {
    /// The failure.
    pub failure: RollbackReason,
    /// Why nothing was rolled back, in words.
    pub detail: String,
}

/// Everything that happens in a run, in order.
// One `RunStarted` per run, built once and journaled: its size costs
// nothing, and boxing it would change every embedder's match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Schema version of this journal.
        schema_version: u32,
        /// Facts about the run.
        run: RunInfo,
        /// The runbook as it was.
        runbook: RunbookOutline,
    },
    /// An interrupted or failed run was continued (`escola-runbook resume`).
    RunResumed {
        /// Who continued it, where, when, and what they decided.
        resume: ResumeInfo,
    },
    /// A deploy lock held by someone else was broken to start or resume
    /// this run.
    LockBroken {
        /// The holder that was displaced.
        previous: LockOwner,
        /// Who broke it.
        by: String,
        /// Why (required).
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The run's deploy lock was taken over by someone else; the run stopped.
    LockLost {
        /// What happened, in words.
        detail: String,
        /// When it was noticed.
        at: DateTime<Utc>,
    },
    /// An alert rule of a watch step changed state.
    RuleTransition {
        /// Phase id.
        phase: String,
        /// Step id (the watch).
        step: String,
        /// The change.
        transition: RuleTransition,
    },
    /// A phase began.
    PhaseStarted {
        /// Phase id.
        phase: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// An attempt of a step began.
    StepStarted {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// 1-based attempt number.
        attempt: u32,
        /// Whether the step changes something outside.
        mutates: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// A running attempt started processes in a group of their own (a
    /// command step). Journaled at once, so that if this process dies,
    /// `resume` can tell whether the group still runs before running the
    /// step again.
    ProcessGroupStarted {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// The attempt that started it.
        attempt: u32,
        /// The group and its host.
        #[serde(flatten)]
        group: ProcessGroup,
        /// When.
        at: DateTime<Utc>,
    },
    /// A running step said how far it got. Not journaled.
    StepProgress {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// What it said.
        message: String,
    },
    /// An attempt did not pass and another follows after `delay_ms`.
    StepRetrying {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// The attempt that just ended.
        attempt: u32,
        /// Its outcome.
        outcome: Outcome,
        /// Wait before the next attempt.
        delay_ms: u64,
    },
    /// A manual step was answered.
    ConfirmationRecorded {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// The answer.
        confirmation: Confirmation,
    },
    /// A step began to wait for an approval.
    ApprovalRequested {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// The role, who may approve, the deadline.
        request: ApprovalRequest,
    },
    /// A step's wait for approval ended: an approver decided (copied from
    /// the run's decision file once the run accepted it), or the deadline
    /// passed.
    ApprovalRecorded {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// How it ended.
        result: ApprovalResult,
    },
    /// The run stopped to wait for an approval without waiting
    /// (`run --no-wait`): it is resumable, and a resume waits on.
    RunAwaitingApproval {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A step reached its final outcome.
    StepFinished {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
        /// The outcome.
        outcome: Outcome,
        /// Attempts made (0 when it was not started).
        attempts: u32,
        /// Wall time from first start to finish.
        elapsed_ms: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// A completed step's undo ran during a rollback.
    UndoFinished {
        /// Phase id.
        phase: String,
        /// Step id (the step undone).
        step: String,
        /// The undo's outcome.
        outcome: Outcome,
        /// When.
        at: DateTime<Utc>,
    },
    /// A phase ended.
    PhaseFinished {
        /// Phase id.
        phase: String,
        /// The worst status among its steps.
        status: Status,
        /// When.
        at: DateTime<Utc>,
    },
    /// A blocking failure in a `rollback_on_failure` phase started the
    /// rollback phase.
    RollbackTriggered {
        /// Why.
        reason: RollbackReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// A message to people about the run (a milestone announced by a
    /// [`Notifier`](crate::Notifier)) and what became of it. Journaled
    /// when its delivery ends, so it may follow `run_finished`.
    Notice {
        /// The message, where it went, and its delivery.
        notice: Notice,
    },
    /// The run ended.
    RunFinished {
        /// How.
        verdict: Verdict,
        /// The process exit code that goes with it.
        exit_code: i32,
        /// When.
        at: DateTime<Utc>,
        /// A failure that did not start the rollback, and why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollback_withheld: Option<RollbackWithheld>,
    },
}

impl Event {
    /// When it happened, for the events that say.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Event::RunStarted { run, .. } => Some(run.started_at),
            Event::RunResumed { resume } => Some(resume.at),
            Event::LockBroken { at, .. }
            | Event::LockLost { at, .. }
            | Event::PhaseStarted { at, .. }
            | Event::StepStarted { at, .. }
            | Event::ProcessGroupStarted { at, .. }
            | Event::StepFinished { at, .. }
            | Event::UndoFinished { at, .. }
            | Event::PhaseFinished { at, .. }
            | Event::RollbackTriggered { at, .. }
            | Event::RunAwaitingApproval { at, .. }
            | Event::RunFinished { at, .. } => Some(*at),
            Event::RuleTransition { transition, .. } => Some(transition.at),
            Event::ConfirmationRecorded { confirmation, .. } => Some(confirmation.at),
            Event::ApprovalRequested { request, .. } => Some(request.since),
            Event::Notice { notice } => Some(notice.at),
            Event::ApprovalRecorded { .. }
            | Event::StepProgress { .. }
            | Event::StepRetrying { .. } => None,
        }
    }

    /// Whether the journal keeps this event (progress chatter it does not).
    pub fn is_durable(&self) -> bool {
        !matches!(self, Event::StepProgress { .. })
    }
}

/// Receives every event of a run, already redacted, in order.
///
/// Called synchronously from the executor: keep it quick, and hand slow work
/// to a task of your own. To tell people about the run (a chat webhook),
/// implement [`Notifier`](crate::Notifier) instead: the executor keeps it
/// out of dry-runs and journals each message's delivery.
pub trait Observer: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

/// An observer that keeps every event, for tests and embedding tools.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        lock_unpoisoned(&self.events).clone()
    }
}

impl Observer for EventLog {
    fn on_event(&self, event: &Event) {
        lock_unpoisoned(&self.events).push(event.clone())
    }
}
