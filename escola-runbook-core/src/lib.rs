//! The embeddable core of escola-runbook: a deploy runbook as types, an
//! executor that runs it with gates, timeouts, retries, dry-run and
//! rollback, a crash-safe journal, and reports rendered from the record.
//!
//! No HTTP and no SQL here: concrete checks live in `escola-runbook-checks`,
//! and any crate can add its own by implementing [`Check`].
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use escola_runbook_core::*;
//!
//! struct AlwaysGreen;
//!
//! #[async_trait]
//! impl Check for AlwaysGreen {
//!     fn describe(&self) -> Description {
//!         Description::read_only("ci-status", "the CI pipeline of the commit is green")
//!     }
//!     async fn run(&self, _ctx: &Ctx) -> Outcome {
//!         Outcome::passed("pipeline #42 succeeded").with_evidence("pipeline", "#42")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runbook = Runbook::builder("escola-connect")
//!     .contact("Dev on-call", "@dev-escola")
//!     .phase(Phase::new("pre-deploy", "Pré-Deploy")
//!         .step(Step::check("ci-green", "Confirmar branch `main` verdinho", AlwaysGreen))
//!         .step(Step::manual("window", "Sincronizar janela com Infra + Produto")))
//!     .build()?;
//!
//! let record = Executor::new(runbook)
//!     .confirmer(Arc::new(PreapprovedConfirmer::new("ana")))
//!     .run()
//!     .await?;
//! assert_eq!(record.verdict, Some(Verdict::Succeeded));
//! let checklist = report::render_markdown(&record);
//! assert!(checklist.contains("- [x] Confirmar branch `main` verdinho"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod catalog;
mod check;
mod confirm;
pub mod duration;
mod event;
mod executor;
pub mod exit;
pub mod identity;
pub mod journal;
pub mod lock;
mod model;
mod notice;
mod outcome;
mod plan;
pub mod process;
mod record;
pub mod report;
mod resume;
pub mod rules;
pub mod runs;
mod secret;
pub mod suggest;
mod watch;

pub use check::{CANCEL_GRACE, Check, CheckParams, Ctx, Description, Environment, ValueError};
pub use confirm::{
    ConfirmError, ConfirmRequest, Confirmation, Confirmer, Decision, PreapprovedConfirmer,
    ScriptedConfirmer, Via,
};
pub use event::{
    Automation, Event, EventLog, InterruptedDecision, JournalWriteError, LockOwner, Observer,
    PhaseOutline, Resolution, ResumeInfo, RollbackReason, RollbackWithheld, RunInfo, RunbookOrigin,
    RunbookOutline, SCHEMA_VERSION, StepOutline, Verdict,
};
pub use executor::{
    Clock, Executor, RunError, RunOptions, SystemClock, TokioClock, generate_run_id, run_directory,
};
pub use model::{
    Backoff, Contact, Metadata, ModelError, Phase, PhaseKind, Policy, Runbook, RunbookBuilder,
    Step, StepKind, When,
};
pub use notice::{Delivery, DeliveryError, NOTICE_WAIT, Notice, Notifier};
pub use outcome::{Evidence, Measurement, Outcome, Series, SkipReason, Status, format_duration};
pub use plan::{Plan, PlannedStep};
pub use record::{
    BrokenLock, OUTCOME_NOT_RECORDED, PhaseRecord, RecordError, RunRecord, StepRecord,
};
pub use resume::{InterruptedStep, ResumeError, ResumePlan};
pub use secret::{MIN_SECRET_PART_LEN, Redactor, Secret, Secrets};
pub use watch::{DEFAULT_MAX_SEGMENTS, RuleLog, Schedule, Segment, Watch, WatchError};

/// Locks `m` even if a panicking thread poisoned it: the data behind these
/// mutexes (event lists, the record, the journal) stays consistent per
/// operation, and a crashed plugin must not stop the run from recording.
pub(crate) fn lock_unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Re-exported so plugins implement [`Check`] with the same macro version.
pub use async_trait::async_trait;
/// Re-exported so plugins derive the schema of their parameter structs
/// ([`catalog::CheckConfig`]) with the version the catalog reads.
pub use schemars;
/// Re-exported so embedders cancel runs with the same token type.
pub use tokio_util::sync::CancellationToken;
