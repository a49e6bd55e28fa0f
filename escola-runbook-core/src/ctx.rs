//! What a running step gets: a [`Ctx`], and through it the run it runs in,
//! which it reaches by the small [`StepHost`] trait (the run's clock, its
//! observers, its journal) and never by the executor's types. The executor
//! is one host; [`Ctx::standalone`] has a plain one (the system clock, no
//! observers, no journal).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use futures_util::future::BoxFuture;

use crate::alert::RuleTransition;
use crate::approval::{ApprovalPolicy, ApprovalResult};
use crate::clock::{Clock, SystemClock};
use crate::environment::Environment;
use crate::journal_error::JournalWriteError;
use crate::secret::{Redactor, Secret, Secrets};

/// How long the executor waits, after a stop or a timeout, for a check that
/// started a process group ([`Ctx::record_process_group`]) to end it and
/// return its outcome. The check should ask its processes to stop (SIGTERM),
/// give them most of this time, then kill them; if it has not returned by
/// then, its future is dropped.
pub const CANCEL_GRACE: Duration = Duration::from_secs(15);

/// The run a step runs in, as the step reaches it: what [`Ctx`] forwards.
///
/// The executor implements it (its clock, its observers, its journal); a
/// tool that runs checks itself may give its own to [`Ctx::with_host`]
/// (a test's paused clock, a log of progress). Each method gets the `Ctx`
/// that speaks, for its run, phase, step and attempt.
pub trait StepHost: Send + Sync {
    /// The run's wall clock.
    fn now(&self) -> DateTime<Utc>;

    /// Passes on what `ctx`'s step said about its progress; not journaled.
    fn progress(&self, ctx: &Ctx, message: String);

    /// Records an alert rule's state change of `ctx`'s step (a watch) in
    /// the journal and the record.
    fn record_rule_transition(
        &self,
        ctx: &Ctx,
        transition: RuleTransition,
    ) -> Result<(), JournalWriteError>;

    /// Records that `ctx`'s attempt started processes in group `pgid` on
    /// this machine.
    fn record_process_group(&self, ctx: &Ctx, pgid: u32) -> Result<(), JournalWriteError>;

    /// Waits for an approval of `ctx`'s step under `policy`, as a step
    /// that requires one waits: the executor journals the wait, takes an
    /// approver's decision from another shell (`approve`, `reject`), or the
    /// deadline's. The default, for hosts no approver can reach, is the
    /// deadline's decision, and [`ApprovalWaitError::Undecidable`] without
    /// a deadline.
    fn await_approval<'a>(
        &'a self,
        ctx: &'a Ctx,
        policy: &'a ApprovalPolicy,
    ) -> BoxFuture<'a, Result<ApprovalResult, ApprovalWaitError>> {
        Box::pin(async move {
            let deadline = policy.deadline.ok_or(ApprovalWaitError::Undecidable)?;
            let at =
                self.now() + chrono::Duration::from_std(deadline).unwrap_or(chrono::Duration::MAX);
            tokio::select! {
                biased;
                () = ctx.cancellation().cancelled() => Err(ApprovalWaitError::Stopped),
                () = tokio::time::sleep(deadline) => Ok(ApprovalResult::Deadline {
                    taken: policy.on_deadline,
                    at,
                }),
            }
        })
    }
}

/// Why a check's wait for an approval ([`Ctx::await_approval`]) ended
/// without a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalWaitError {
    /// The run was stopped while waiting.
    #[error("the run was stopped while waiting for approval")]
    Stopped,
    /// Nobody can decide: no approver reaches this run, and the approval
    /// has no deadline.
    #[error("no approver can reach this run and the approval has no deadline")]
    Undecidable,
    /// The run was told not to wait for approvals (`run --no-wait`).
    #[error("the run was told not to wait for approvals")]
    NoWait,
    /// The wait could not be journaled; the run stops.
    #[error("the wait for approval could not be journaled: {0}")]
    Journal(String),
}

/// The host of [`Ctx::standalone`]: the system clock, and nobody to tell.
struct Standalone;

impl StepHost for Standalone {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now()
    }

    fn progress(&self, _ctx: &Ctx, _message: String) {}

    fn record_rule_transition(
        &self,
        _ctx: &Ctx,
        _transition: RuleTransition,
    ) -> Result<(), JournalWriteError> {
        Ok(())
    }

    fn record_process_group(&self, _ctx: &Ctx, _pgid: u32) -> Result<(), JournalWriteError> {
        Ok(())
    }
}

/// A value a check asked for and could not get.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// No earlier step recorded it.
    #[error("no earlier step recorded `{key}`; run the step that produces it first")]
    Missing {
        /// The key asked for.
        key: String,
    },
}

/// What a step gets while it runs.
///
/// Cheap to clone; the executor makes one per attempt.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) run_id: String,
    pub(crate) phase: String,
    pub(crate) step: String,
    pub(crate) attempt: u32,
    pub(crate) dry_run: bool,
    pub(crate) environment: Arc<Environment>,
    pub(crate) secrets: Arc<Secrets>,
    pub(crate) values: Arc<BTreeMap<String, serde_json::Value>>,
    pub(crate) cancel: CancellationToken,
    /// The run this step runs in.
    pub(crate) host: Arc<dyn StepHost>,
    /// The group this attempt said it started (0: none).
    pub(crate) process_group: Arc<AtomicU32>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("run_id", &self.run_id)
            .field("phase", &self.phase)
            .field("step", &self.step)
            .field("attempt", &self.attempt)
            .field("dry_run", &self.dry_run)
            .field("environment", &self.environment)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// A context for running a check outside the executor: in a plugin's
    /// tests, or for a one-off `check` command.
    pub fn standalone(environment: Environment, secrets: Secrets) -> Self {
        Ctx {
            run_id: "standalone".into(),
            phase: "standalone".into(),
            step: "standalone".into(),
            attempt: 1,
            dry_run: false,
            environment: Arc::new(environment),
            secrets: Arc::new(secrets),
            values: Arc::new(BTreeMap::new()),
            cancel: CancellationToken::new(),
            host: Arc::new(Standalone),
            process_group: Arc::default(),
        }
    }

    crate::setters! {
        /// Runs the check in `host`'s run: its clock, and where its progress,
        /// rule transitions and process groups go.
        with_host(host: Arc<dyn StepHost>) => host = host;

        /// Uses `token` as the check's cancellation (wire Ctrl-C to it).
        with_cancellation(token: CancellationToken) => cancel = token;
    }

    /// Adds a value as if an earlier step had recorded it (for tests and
    /// one-off runs).
    pub fn with_value(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        Arc::make_mut(&mut self.values).insert(key.into(), value);
        self
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The id of the step being run.
    pub fn step_id(&self) -> &str {
        &self.step
    }

    /// The id of the phase being run.
    pub fn phase_id(&self) -> &str {
        &self.phase
    }

    /// 1 for the first attempt, 2 for the first retry...
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// True in a dry-run. Mutating checks are not run in a dry-run at all, so
    /// only read-only checks (and a mutating check's
    /// [`preview`](crate::Check::preview)) see `true` here.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The target environment.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The secret `name`.
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name)
    }

    /// The redactor for every secret of this run. Checks that produce text
    /// from outside (command output, response bodies) should pass it through
    /// this before putting it into evidence; the executor masks outcomes
    /// again before anything is recorded.
    pub fn redactor(&self) -> &Redactor {
        self.secrets.redactor()
    }

    /// A value recorded by an earlier step.
    pub fn value(&self, key: &str) -> Result<&serde_json::Value, ValueError> {
        self.values.get(key).ok_or_else(|| ValueError::Missing {
            key: key.to_owned(),
        })
    }

    /// Fires when the step must stop (timeout, Ctrl-C).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The run's wall clock (deterministic in tests on a paused clock).
    /// Checks read "now" here, never from the system directly, so a run's
    /// record and its checks agree on the time.
    pub fn now(&self) -> DateTime<Utc> {
        self.host.now()
    }

    /// Records an alert rule's state change in the journal and the record.
    /// Fails only when the journal cannot be written: the caller should
    /// stop and report a check error, since its record would be incomplete.
    pub fn record_rule_transition(
        &self,
        transition: RuleTransition,
    ) -> Result<(), JournalWriteError> {
        self.host.record_rule_transition(self, transition)
    }

    /// Records that this attempt started processes in group `pgid`: call it
    /// right after spawning the group's first process. The journal keeps the
    /// group and this host, so that `resume` refuses to run the step again
    /// while the group still runs; and on a stop or a timeout the executor
    /// waits up to [`CANCEL_GRACE`] for the check to end the group and
    /// return, keeping the evidence of that outcome (the output so far).
    ///
    /// Fails only when the journal cannot be written: the caller should end
    /// the group and report a check error.
    pub fn record_process_group(&self, pgid: u32) -> Result<(), JournalWriteError> {
        self.process_group.store(pgid, Ordering::SeqCst);
        self.host.record_process_group(self, pgid)
    }

    /// Whether the check said it started a process group: a tool that runs
    /// checks itself should then, after cancelling, give it
    /// [`CANCEL_GRACE`] to end the group, as the executor does.
    pub fn started_processes(&self) -> bool {
        self.process_group.load(Ordering::SeqCst) != 0
    }

    /// Waits for an approver's decision about this step under `policy`
    /// (see [`StepHost::await_approval`]): a check that must ask before it
    /// acts, such as a watch rule whose action is `ask`.
    pub async fn await_approval(
        &self,
        policy: &ApprovalPolicy,
    ) -> Result<ApprovalResult, ApprovalWaitError> {
        self.host.await_approval(self, policy).await
    }

    /// Reports progress ("3/12 requests") to observers; the terminal shows it
    /// beside the spinner.
    pub fn progress(&self, message: impl Into<String>) {
        self.host.progress(self, message.into());
    }
}
