//! Process exit codes shared by the CLI and by tools that embed the core.
//!
//! They are part of the public contract: CI pipelines branch on them, so they
//! never change meaning between releases.

/// Every selected step passed, was confirmed, warned or was skipped on purpose.
pub const SUCCESS: i32 = 0;
/// A blocking step failed (or could not measure) and no rollback ran, or the
/// rollback itself failed.
pub const STEP_FAILED: i32 = 1;
/// Bad command-line arguments, runbook or configuration: nothing was run.
pub const USAGE: i32 = 2;
/// A failure triggered the rollback phase and it completed.
pub const ROLLED_BACK: i32 = 3;
/// The run was stopped: Ctrl-C, SIGTERM or SIGHUP (what systemd, CI runners
/// and a dropped SSH session send), or "abort" at a confirmation.
pub const STOPPED: i32 = 4;
/// The run stopped to wait for an approval (`run --no-wait`): nothing
/// failed, the deploy lock is released, and `resume` continues once an
/// approver decided (or waits for the decision).
pub const AWAITING_APPROVAL: i32 = 5;
/// The run's journal could not be written (a full disk, a lost mount): the
/// run stopped at once, because a run without its record can be neither
/// trusted nor resumed safely. The journal holds every record written
/// before; a step whose outcome was lost shows as "outcome not recorded".
pub const JOURNAL_FAILED: i32 = 6;
