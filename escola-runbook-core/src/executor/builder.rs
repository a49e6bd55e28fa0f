//! The [`Executor`] and the builder methods that say what it runs, for
//! whom, and where it records; [`Executor::run`] is in `start.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::error::RunError;
use super::options::RunOptions;
use super::selection;
use crate::clock::{Clock, SystemClock};
use crate::confirm::Confirmer;
use crate::deploy_lock::DeployLock;
use crate::environment::Environment;
use crate::event::{Observer, Resolution};
use crate::model::Runbook;
use crate::notifier::Notifier;
use crate::resume::ResumePlan;
use crate::secret::Secrets;

/// Runs a runbook.
///
/// ```
/// use escola_runbook_core::{Executor, Phase, Runbook, RunOptions, Step, Verdict};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runbook = Runbook::builder("demo")
///     .phase(Phase::new("pre", "Pre").step(Step::manual("window", "Agree the window")))
///     .build()?;
/// let record = Executor::new(runbook)
///     .options(RunOptions { operator: "ana".into(), ..RunOptions::default() })
///     .run()
///     .await?;
/// assert_eq!(record.verdict, Some(Verdict::Succeeded));
/// # Ok(()) }
/// ```
pub struct Executor {
    pub(super) runbook: Arc<Runbook>,
    pub(super) environment: Environment,
    pub(super) secrets: Secrets,
    pub(super) confirmer: Option<Arc<dyn Confirmer>>,
    pub(super) observers: Vec<Arc<dyn Observer>>,
    pub(super) notifiers: Vec<Arc<dyn Notifier>>,
    pub(super) options: RunOptions,
    pub(super) cancel: CancellationToken,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) run_root: Option<PathBuf>,
    pub(super) lock: Option<(Arc<dyn DeployLock>, Option<String>)>,
    pub(super) resume: Option<(ResumePlan, Vec<Resolution>)>,
}

impl Executor {
    /// An executor for `runbook` with default options, no journal, and
    /// `--yes`-style confirmation as the operator.
    pub fn new(runbook: Runbook) -> Self {
        Executor {
            runbook: Arc::new(runbook),
            environment: Environment::new("default"),
            secrets: Secrets::new(),
            confirmer: None,
            observers: Vec::new(),
            notifiers: Vec::new(),
            options: RunOptions::default(),
            cancel: CancellationToken::new(),
            clock: Arc::new(SystemClock),
            run_root: None,
            lock: None,
            resume: None,
        }
    }

    crate::setters! {
        /// Holds `lock` for the whole run (renewing it as it goes). With
        /// `break_reason`, displaces a current holder and journals who and why.
        lock(lock: Arc<dyn DeployLock>, break_reason: Option<String>) => lock = Some((lock, break_reason));

        /// Continues the run planned in `plan` instead of starting a new one:
        /// its journal is appended to, done steps are not repeated, and each
        /// interrupted step follows its resolution. The run's own dry-run flag
        /// and selection apply; `options` give the operator and host.
        resume(plan: ResumePlan, resolutions: Vec<Resolution>) => resume = Some((plan, resolutions));

        /// Sets the run options.
        options(options: RunOptions) => options = options;

        /// Sets the target environment.
        environment(environment: Environment) => environment = environment;

        /// Sets the secrets; their values are masked in every event.
        secrets(secrets: Secrets) => secrets = secrets;

        /// Sets how manual steps are confirmed.
        confirmer(confirmer: Arc<dyn Confirmer>) => confirmer = Some(confirmer);
    }

    /// Adds an observer.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Announces the run's milestones through `notifier`: never in a
    /// dry-run, never able to fail or hold up the run; every message and
    /// its delivery is journaled (the end of the run waits at most
    /// [`NOTICE_WAIT`](crate::NOTICE_WAIT) for messages still being sent).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    crate::setters! {
        /// Uses `clock` for timestamps.
        clock(clock: Arc<dyn Clock>) => clock = clock;

        /// Stops the run when `token` is cancelled (wire Ctrl-C to it).
        cancellation(token: CancellationToken) => cancel = token;

        /// Writes the journal to `<root>/<run-id>/journal.jsonl`.
        run_root(root: impl Into<PathBuf>) => run_root = Some(root.into());
    }

    /// Checks `--phase` / `--only` against the runbook without running.
    pub fn validate_selection(runbook: &Runbook, options: &RunOptions) -> Result<(), RunError> {
        selection::validate(runbook, options)
    }
}
