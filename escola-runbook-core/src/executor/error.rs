//! Why a run could not start or had to stop.

use std::path::PathBuf;

use crate::deploy_lock::LockError;
use crate::journal_error::JournalWriteError;
use crate::resume::ResumeError;

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A selected phase ([`RunOptions::phases`](crate::RunOptions::phases))
    /// the runbook lacks.
    #[error("unknown phase `{name}`; the runbook's phases are: {}", known.join(", "))]
    UnknownPhase {
        /// What was asked.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// A selected step ([`RunOptions::only`](crate::RunOptions::only)) the
    /// runbook lacks.
    #[error(
        "unknown step `{name}`{}",
        crate::suggest::hint(crate::suggest::related(name, known.iter().map(String::as_str)))
    )]
    UnknownStep {
        /// What was asked.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// The selected phases and steps together select nothing.
    #[error(
        "phases {phases:?} and steps {only:?} select no step: every selected step must be in a selected phase"
    )]
    EmptySelection {
        /// The phases asked.
        phases: Vec<String>,
        /// The steps asked.
        only: Vec<String>,
    },
    /// The run directory could not be created.
    #[error("cannot create run directory {path}: {source}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A run with this id already exists.
    #[error("run directory {0} already exists; choose another run id")]
    RunExists(PathBuf),
    /// The journal could not be written; the run stopped.
    #[error(transparent)]
    Journal(#[from] JournalWriteError),
    /// The deploy lock is held by someone else (or could not be taken).
    #[error(transparent)]
    Locked(Box<LockError>),
    /// A step began to wait for an approval and the run was told not to
    /// wait ([`RunOptions::no_wait`](crate::RunOptions::no_wait)). Never
    /// returned by [`Executor::run`](crate::Executor::run), which ends the
    /// run resumable instead.
    #[error("step `{step}` (phase `{phase}`) waits for an approval")]
    AwaitingApproval {
        /// Phase id.
        phase: String,
        /// Step id.
        step: String,
    },
    /// The run cannot be resumed.
    #[error(transparent)]
    Resume(#[from] ResumeError),
}

impl From<LockError> for RunError {
    fn from(e: LockError) -> Self {
        RunError::Locked(Box::new(e))
    }
}
