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
/// The operator stopped the run (Ctrl-C, or "abort" at a confirmation).
pub const STOPPED: i32 = 4;
