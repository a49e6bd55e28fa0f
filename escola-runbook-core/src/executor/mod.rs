//! Runs a runbook: phases in order, gates, timeouts, retries, parallel
//! groups, dry-run, rollback, cancellation. Reports only through events.
//!
//! One job per file, in the order a run meets them:
//!
//! - `builder.rs`: the [`Executor`] and what it is told (runbook,
//!   environment, secrets, confirmer, observers, notifiers, clock, lock);
//!   `options.rs`: [`RunOptions`], who runs what; `error.rs`: [`RunError`].
//! - `selection.rs`: which phases and steps run (`phases`, `only`), checked
//!   against the runbook before anything starts.
//! - `start.rs`: [`Executor::run`]: the run's id, directory and first
//!   record, the deploy lock and its heartbeat, a resume's decisions; it
//!   hands a `Run` to the phases.
//! - `run.rs`: the `Run` in progress, the phases in order, how it ends.
//! - `phase.rs`: one phase, its parallel groups and its first blocking
//!   failure. `step.rs`: one step, its dry-run preview, its attempts with
//!   timeouts and retries. `manual.rs`: asking the confirmer.
//!   `approval.rs`: a step that requires an approval; `approval_wait.rs`:
//!   waiting for an approver's decision (the run's decision file polled,
//!   the deadline kept), for such a step and for a check asking through
//!   its `Ctx`.
//! - `rollback.rs`: whether a failure rolls back, the undos, the rollback
//!   phase.
//! - `host.rs`: the run as a step's [`Ctx`](crate::Ctx) reaches it
//!   ([`StepHost`](crate::StepHost)).

mod approval;
mod approval_wait;
mod builder;
mod error;
mod host;
mod manual;
mod options;
mod phase;
mod rollback;
mod run;
mod selection;
mod start;
mod step;

pub use builder::Executor;
pub use error::RunError;
pub use options::RunOptions;
