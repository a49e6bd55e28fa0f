//! The error that ends a command, with its exit code, and the one place
//! that turns the library's errors into messages: the library says what
//! happened, in terms of its data; this adds the flags that resolve it.

use escola_runbook_core::deploy_lock::LockError;
use escola_runbook_core::{ResumeError, RunError, exit};

/// An error that ends the command, with the exit code it deserves.
#[derive(Debug)]
pub struct CliError {
    pub(crate) message: String,
    pub(crate) code: i32,
}

impl CliError {
    /// Bad arguments, files or configuration: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: exit::USAGE,
        }
    }

    /// Something failed after the input was accepted: exit 1.
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(exit::STEP_FAILED, message)
    }

    /// An error with exit code `code` (one of [`exit`]).
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code,
        }
    }
}

/// The exit for a run that could not start or had to stop: a journal that
/// cannot be written has its own code and says what to do; anything else
/// means nothing was run.
pub fn run_error(e: RunError) -> CliError {
    match e {
        RunError::Journal(e) => CliError::new(
            exit::JOURNAL_FAILED,
            format!(
                "the run stopped because its journal cannot be written: {e}. \
                 The journal keeps every record written before; a step whose outcome was lost shows as \
                 \"outcome not recorded\". Free the space (or fix the mount), then continue with \
                 `escola-runbook resume`"
            ),
        ),
        RunError::Resume(e) => resume_error(e),
        RunError::UnknownStep { .. } => {
            CliError::usage(format!("{e}; list the steps with `escola-runbook plan`"))
        }
        RunError::EmptySelection { phases, only } => CliError::usage(format!(
            "--phase {phases:?} and --only {only:?} select no step: every --only step must be in a selected phase"
        )),
        RunError::RunDir { .. } => {
            CliError::usage(format!("{e}; pass --run-dir with a writable directory"))
        }
        RunError::Locked(lock) => lock_error(&lock),
        other => CliError::usage(other.to_string()),
    }
}

/// A run that cannot be resumed, and what to do instead.
pub fn resume_error(e: ResumeError) -> CliError {
    match e {
        ResumeError::RolledBack(..) => CliError::usage(format!(
            "{e}; start a new run, or run the rollback phase with `run --phase rollback`"
        )),
        ResumeError::Undecided(step) => CliError::usage(format!(
            "step `{step}` was interrupted while changing something; decide: --on-interrupted rerun|done|abort"
        )),
        other => CliError::usage(other.to_string()),
    }
}

/// A deploy lock held by someone else: wait, or break it.
pub fn lock_error(e: &LockError) -> CliError {
    CliError::usage(match e {
        LockError::Held { .. } => format!(
            "{e}; wait for that run to finish, or break the lock with --break-lock --reason \"...\""
        ),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_get_the_flags_that_resolve_them() {
        let e = run_error(RunError::Resume(ResumeError::Undecided("migrate".into())));
        assert_eq!(
            e.message,
            "step `migrate` was interrupted while changing something; decide: --on-interrupted rerun|done|abort"
        );
        assert_eq!(e.code, exit::USAGE);
        let e = run_error(RunError::EmptySelection {
            phases: vec!["deploy".into()],
            only: vec!["smoke-tests".into()],
        });
        assert_eq!(
            e.message,
            "--phase [\"deploy\"] and --only [\"smoke-tests\"] select no step: every --only step must be in a selected phase"
        );
        let held = LockError::Held {
            lock: "deploy lock x".into(),
            holder: Box::new(escola_runbook_core::LockOwner {
                user: "ana".into(),
                host: "laptop".into(),
                pid: 7,
                run_id: "r0".into(),
                since: chrono::DateTime::UNIX_EPOCH,
                heartbeat: chrono::DateTime::UNIX_EPOCH,
            }),
            stale: None,
        };
        assert_eq!(
            run_error(RunError::Locked(Box::new(held))).message,
            "deploy lock x is held by ana on laptop (pid 7, run r0) since 1970-01-01 00:00:00 UTC, \
             last heartbeat 00:00:00 UTC; wait for that run to finish, or break the lock with \
             --break-lock --reason \"...\""
        );
        let e = resume_error(ResumeError::RolledBack("r1".into(), "rollback completed"));
        assert_eq!(
            e.message,
            "run r1 was rolled back (rollback completed); start a new run, or run the rollback phase with `run --phase rollback`"
        );
    }
}
