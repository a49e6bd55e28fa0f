//! The embeddable core of escola-runbook: a deploy runbook as types, an
//! executor that runs it with gates, timeouts, retries, dry-run and
//! rollback, a crash-safe journal, and reports rendered from the record.
//!
//! No SQL here, and no HTTP but the web console (feature `console`, off by
//! default): concrete checks live in `escola-runbook-checks`, and any crate
//! can add its own by implementing [`Check`].
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

mod alert;
pub mod alerting;
mod approval;
pub mod catalog;
mod check;
mod clock;
mod confirm;
#[cfg(feature = "console")]
pub mod console;
mod ctx;
pub mod decisions;
pub mod deploy_lock;
mod dispatch;
pub mod duration;
mod environment;
mod event;
mod executor;
pub mod exit;
#[cfg(feature = "formats")]
pub mod formats;
pub mod identity;
pub mod journal;
mod journal_error;
mod model;
mod mutex;
mod notice;
mod notifier;
mod outcome;
mod outline;
mod plan;
pub mod process;
mod record;
pub mod report;
mod resume;
pub mod rules;
pub mod runs;
mod secret;
mod setters;
pub mod status;
pub mod suggest;
mod watch;

pub use alert::RuleTransition;
pub use approval::{
    ApprovalDecision, ApprovalPolicy, ApprovalRecord, ApprovalRequest, ApprovalResult,
    ApprovalVerdict, Approver, OnDeadline,
};
pub use check::{Check, CheckParams, Description};
pub use clock::{Clock, SystemClock, TokioClock};
pub use confirm::{
    ConfirmError, ConfirmRequest, Confirmation, Confirmer, Decision, PreapprovedConfirmer,
    ScriptedConfirmer, Via,
};
pub use ctx::{ApprovalWaitError, CANCEL_GRACE, Ctx, StepHost, ValueError};
pub use deploy_lock::LockOwner;
pub use environment::{Environment, Need};
pub use event::{
    ConfigFile, Event, EventLog, InterruptedDecision, Observer, Resolution, ResumeInfo,
    RollbackReason, RollbackWithheld, RunInfo, RunbookOrigin, SCHEMA_VERSION, Verdict,
};
pub use executor::{Executor, RunError, RunOptions};
pub use journal_error::JournalWriteError;
pub use model::{
    Backoff, Contact, Metadata, ModelError, Phase, PhaseKind, Policy, Runbook, RunbookBuilder,
    Step, StepKind, When,
};
pub use notice::{Delivery, NOTICE_WAIT, Notice};
pub use notifier::{DeliveryError, Notifier};
pub use outcome::{
    Evidence, Mark, Measurement, Outcome, Series, SkipReason, Status, counted, format_duration,
    format_millis, format_timestamp,
};
pub use outline::{Automation, PhaseOutline, RunbookOutline, StepOutline};
pub use plan::{Automated, Plan, PlannedStep};
pub use record::{
    BrokenLock, OUTCOME_NOT_RECORDED, PhaseRecord, RecordError, RunRecord, StepRecord,
};
pub use resume::{InterruptedStep, ResumeError, ResumePlan};
pub use runs::{generate_run_id, run_directory};
pub use secret::{MIN_SECRET_PART_LEN, Redactor, Secret, Secrets};
pub use watch::{DEFAULT_MAX_SEGMENTS, RuleLog, Schedule, Segment, Watch, WatchError};

/// Re-exported so plugins implement [`Check`] with the same macro version.
pub use async_trait::async_trait;
/// Re-exported so plugins derive the schema of their parameter structs
/// ([`catalog::CheckConfig`]) with the version the catalog reads.
pub use schemars;
/// Re-exported so embedders cancel runs with the same token type.
pub use tokio_util::sync::CancellationToken;
