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

    /// Holds `lock` for the whole run (renewing it as it goes). With
    /// `break_reason`, displaces a current holder and journals who and why.
    pub fn lock(mut self, lock: Arc<dyn DeployLock>, break_reason: Option<String>) -> Self {
        self.lock = Some((lock, break_reason));
        self
    }

    /// Continues the run planned in `plan` instead of starting a new one:
    /// its journal is appended to, done steps are not repeated, and each
    /// interrupted step follows its resolution. The run's own dry-run flag
    /// and selection apply; `options` give the operator and host.
    pub fn resume(mut self, plan: ResumePlan, resolutions: Vec<Resolution>) -> Self {
        self.resume = Some((plan, resolutions));
        self
    }

    /// Sets the run options.
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the target environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Sets the secrets; their values are masked in every event.
    pub fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Sets how manual steps are confirmed.
    pub fn confirmer(mut self, confirmer: Arc<dyn Confirmer>) -> Self {
        self.confirmer = Some(confirmer);
        self
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

    /// Uses `clock` for timestamps.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Stops the run when `token` is cancelled (wire Ctrl-C to it).
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Writes the journal to `<root>/<run-id>/journal.jsonl`.
    pub fn run_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.run_root = Some(root.into());
        self
    }

    /// Checks `--phase` / `--only` against the runbook without running.
    pub fn validate_selection(runbook: &Runbook, options: &RunOptions) -> Result<(), RunError> {
        selection::validate(runbook, options)
    }
}
