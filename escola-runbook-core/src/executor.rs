//! Runs a runbook: phases in order, gates, timeouts, retries, parallel
//! groups, dry-run, rollback, cancellation. Reports only through events.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::lock_unpoisoned as lock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::check::{CANCEL_GRACE, Check, Ctx, Environment};
use crate::confirm::{
    ConfirmRequest, Confirmation, Confirmer, Decision, PreapprovedConfirmer, Via,
};
use crate::event::{
    Dispatcher, Event, InterruptedDecision, JournalWriteError, LockOwner, Observer, Resolution,
    ResumeInfo, RollbackReason, RollbackWithheld, RunInfo, RunbookOrigin, RunbookOutline,
    SCHEMA_VERSION, Verdict,
};
use crate::identity;
use crate::journal::{JOURNAL_FILE, JournalWriter};
use crate::lock::{DeployLock, LockError};
use crate::model::{Phase, PhaseKind, Runbook, Step, StepKind, When};
use crate::notice::{Announcer, NOTICE_WAIT, Notifier};
use crate::outcome::{Evidence, Outcome, SkipReason, Status};
use crate::record::RunRecord;
use crate::resume::{ResumeError, ResumePlan};
use crate::secret::Secrets;

/// Wall-clock time for records. Elapsed times always come from tokio, so a
/// test on a paused clock gets both deterministic.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a fixed instant and advances with tokio's clock:
/// with `start_paused` it makes timestamps in tests exact.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: DateTime<Utc>,
    start: Instant,
}

impl TokioClock {
    /// A clock reading `epoch` now.
    pub fn starting_at(epoch: DateTime<Utc>) -> Self {
        TokioClock {
            epoch,
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed =
            chrono::Duration::from_std(self.start.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.epoch.checked_add_signed(elapsed).unwrap_or(self.epoch)
    }
}

/// What to run and as whom.
///
/// The defaults name the process's own operator and host
/// ([`identity::operator`], [`identity::host`]), the same rule the CLI
/// follows without `--operator`: a record never says "unknown". An
/// embedder acting for someone else sets `operator` to that person.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id; generated from the time when `None`.
    pub run_id: Option<String>,
    /// Who runs it (recorded, and the author of `--yes` confirmations).
    pub operator: String,
    /// The machine it runs on.
    pub host: String,
    /// Where the runbook came from, recorded in the run-started record (and
    /// with a resume) so that a later resume can reload it or refuse.
    pub source: Option<RunbookOrigin>,
    /// Preview mutating and manual steps instead of running them.
    pub dry_run: bool,
    /// Run only these phases (empty: all).
    pub phases: Vec<String>,
    /// Run only these steps (empty: all).
    pub only: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            run_id: None,
            operator: identity::operator(),
            host: identity::host(),
            source: None,
            dry_run: false,
            phases: Vec::new(),
            only: Vec::new(),
        }
    }
}

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--phase` names a phase the runbook lacks.
    #[error("unknown phase `{name}`; the runbook's phases are: {}", known.join(", "))]
    UnknownPhase {
        /// What was asked.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// `--only` names a step the runbook lacks.
    #[error(
        "unknown step `{name}`{}; list the steps with `escola-runbook plan`",
        crate::suggest::hint(crate::suggest::related(name, known.iter().map(String::as_str)))
    )]
    UnknownStep {
        /// What was asked.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// `--phase` and `--only` together select nothing.
    #[error(
        "--phase {phases:?} and --only {only:?} select no step: every --only step must be in a selected phase"
    )]
    EmptySelection {
        /// The phases asked.
        phases: Vec<String>,
        /// The steps asked.
        only: Vec<String>,
    },
    /// The run directory could not be created.
    #[error(
        "cannot create run directory {path}: {source}; pass --run-dir with a writable directory"
    )]
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
    /// The run cannot be resumed.
    #[error(transparent)]
    Resume(#[from] ResumeError),
}

impl From<LockError> for RunError {
    fn from(e: LockError) -> Self {
        RunError::Locked(Box::new(e))
    }
}

/// Why a failure did not start the rollback ([`RollbackWithheld::detail`]).
const NOTHING_CHANGED: &str =
    "not rolled back: no step of this run changed anything in a phase that rolls back on failure";

/// The directory of run `run_id` under `root`.
pub fn run_directory(root: &Path, run_id: &str) -> PathBuf {
    root.join(run_id)
}

/// A run id from the time and the process: sortable, unique enough for one
/// machine.
pub fn generate_run_id(now: DateTime<Utc>) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let salt = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(now.timestamp_subsec_nanos())
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{}-{:04x}", now.format("%Y%m%dT%H%M%SZ"), salt & 0xffff)
}

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
    runbook: Arc<Runbook>,
    environment: Environment,
    secrets: Secrets,
    confirmer: Option<Arc<dyn Confirmer>>,
    observers: Vec<Arc<dyn Observer>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    options: RunOptions,
    cancel: CancellationToken,
    clock: Arc<dyn Clock>,
    run_root: Option<PathBuf>,
    lock: Option<(Arc<dyn DeployLock>, Option<String>)>,
    resume: Option<(ResumePlan, Vec<Resolution>)>,
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
    /// [`NOTICE_WAIT`] for messages still being sent).
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
        for name in &options.phases {
            if runbook.find_phase(name).is_none() {
                return Err(RunError::UnknownPhase {
                    name: name.clone(),
                    known: runbook.phases().iter().map(|p| p.id.clone()).collect(),
                });
            }
        }
        for name in &options.only {
            if runbook.find_step(name).is_none() {
                return Err(RunError::UnknownStep {
                    name: name.clone(),
                    known: runbook.steps().map(|(_, s)| s.id.clone()).collect(),
                });
            }
        }
        let selection = Selection::from(options);
        if !runbook.steps().any(|(p, s)| selection.contains(p, s)) {
            return Err(RunError::EmptySelection {
                phases: options.phases.clone(),
                only: options.only.clone(),
            });
        }
        Ok(())
    }

    /// Runs the runbook to its end (or its stop) and returns the record.
    ///
    /// Errors only when the run cannot start (bad selection, run directory)
    /// or its journal cannot be written; every step failure is in the record.
    pub async fn run(mut self) -> Result<RunRecord, RunError> {
        let resume = self.resume.take();
        if let Some((plan, _)) = &resume {
            let prior = &plan.record.run;
            self.options.run_id = Some(prior.run_id.clone());
            self.options.dry_run = prior.dry_run;
            self.options.phases = prior.phases.clone();
            self.options.only = prior.only.clone();
        }
        Self::validate_selection(&self.runbook, &self.options)?;
        let started_at = self.clock.now();
        let run_id = self
            .options
            .run_id
            .clone()
            .unwrap_or_else(|| generate_run_id(started_at));
        let done = match &resume {
            Some((plan, resolutions)) => plan.apply(resolutions, &self.options.host)?,
            None => BTreeMap::new(),
        };
        let owner = LockOwner {
            user: self.options.operator.clone(),
            host: self.options.host.clone(),
            pid: std::process::id(),
            run_id: run_id.clone(),
            since: started_at,
            heartbeat: started_at,
        };
        // A new run's directory and first record exist before the lock is
        // taken: a run killed while it waits for the lock leaves the run the
        // lock names, which `resume` continues. (A resumed run's journal is
        // opened only under the lock: until then another process may be
        // appending to it.)
        let info = self.run_info(&run_id, started_at);
        let journal = match (&self.run_root, &resume) {
            (Some(root), None) => {
                let dir = run_directory(root, &run_id);
                let mut journal = open_journal(&dir)?;
                let started = self.secrets.redactor().redact_serde(&Event::RunStarted {
                    schema_version: SCHEMA_VERSION,
                    run: info.clone(),
                    runbook: RunbookOutline::of(&self.runbook),
                });
                journal.append(&started)?;
                Some((dir, journal))
            }
            _ => None,
        };
        let broken = match &self.lock {
            Some((lock, reason)) => match lock.acquire(&owner, reason.as_deref()).await {
                Ok(broken) => broken,
                Err(e) => {
                    // Refused: the run never started, so it leaves no trace
                    // for `resume` to pick up.
                    if let Some((dir, _)) = &journal {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                    return Err(e.into());
                }
            },
            None => None,
        };
        let result = self
            .run_locked(
                run_id,
                started_at,
                resume,
                info,
                journal.map(|(_, j)| j),
                done,
                &owner,
                broken,
            )
            .await;
        if let Some((lock, _)) = &self.lock {
            if let Err(e) = lock.release(&owner).await {
                tracing::warn!("releasing the deploy lock: {e}");
            }
        }
        result
    }

    /// The facts of a new run, fixed at its start.
    fn run_info(&self, run_id: &str, started_at: DateTime<Utc>) -> RunInfo {
        RunInfo {
            run_id: run_id.to_owned(),
            operator: self.options.operator.clone(),
            host: self.options.host.clone(),
            environment: self.environment.clone(),
            dry_run: self.options.dry_run,
            phases: self.options.phases.clone(),
            only: self.options.only.clone(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            source: self.options.source.clone(),
        }
    }

    /// Runs under the lock. For a new run, `journal` (when given) already
    /// holds its `run_started` record with `info`.
    #[allow(clippy::too_many_arguments)]
    async fn run_locked(
        &self,
        run_id: String,
        started_at: DateTime<Utc>,
        resume: Option<(ResumePlan, Vec<Resolution>)>,
        info: RunInfo,
        journal: Option<JournalWriter>,
        done: BTreeMap<String, Outcome>,
        owner: &LockOwner,
        broken: Option<LockOwner>,
    ) -> Result<RunRecord, RunError> {
        let started_journaled = journal.is_some();
        let journal = match (&self.run_root, &resume) {
            (Some(root), Some(_)) => Some(JournalWriter::open_existing(
                run_directory(root, &run_id).join(JOURNAL_FILE),
            )?),
            _ => journal,
        };
        let outline = RunbookOutline::of(&self.runbook);
        let confirmer = self
            .confirmer
            .clone()
            .unwrap_or_else(|| Arc::new(PreapprovedConfirmer::new(self.options.operator.clone())));
        let record = match &resume {
            Some((plan, _)) => plan.record.clone(),
            None => RunRecord::start(info.clone(), &outline),
        };
        let record = Arc::new(Mutex::new(record));
        let dispatcher = Dispatcher::new(
            self.secrets.redactor().clone(),
            self.observers.clone(),
            journal,
            record.clone(),
            Announcer::new(
                self.notifiers.clone(),
                self.options.dry_run,
                self.clock.clone(),
            ),
        );
        let values = done.values().flat_map(|o| o.values.clone()).collect();
        let run = Run {
            runbook: self.runbook.clone(),
            selection: Selection::from(&self.options),
            dry_run: self.options.dry_run,
            operator: self.options.operator.clone(),
            run_id,
            environment: Arc::new(self.environment.clone()),
            secrets: Arc::new(self.secrets.clone()),
            confirmer,
            cancel: self.cancel.clone(),
            clock: self.clock.clone(),
            record,
            values: Mutex::new(values),
            dry_unknown: Mutex::new(BTreeMap::new()),
            done,
            lock_lost: Arc::new(Mutex::new(None)),
            completed: Mutex::new(Vec::new()),
            dispatcher,
            host: Arc::from(self.options.host.as_str()),
        };
        let mut aborted_at_resume = Vec::new();
        match resume {
            Some((_, resolutions)) => {
                aborted_at_resume = resolutions
                    .iter()
                    .filter(|r| r.decision == InterruptedDecision::Abort)
                    .map(|r| r.step.clone())
                    .collect();
                run.publish(Event::RunResumed {
                    resume: ResumeInfo {
                        operator: self.options.operator.clone(),
                        host: self.options.host.clone(),
                        at: started_at,
                        resolutions,
                        source: self.options.source.clone(),
                    },
                })?;
            }
            None => {
                let started = Event::RunStarted {
                    schema_version: SCHEMA_VERSION,
                    run: info,
                    runbook: outline,
                };
                if started_journaled {
                    run.dispatcher.publish_journaled(started)?;
                } else {
                    run.publish(started)?;
                }
            }
        }
        if let Some(previous) = broken {
            run.publish(Event::LockBroken {
                previous,
                by: self.options.operator.clone(),
                reason: self
                    .lock
                    .as_ref()
                    .and_then(|(_, r)| r.clone())
                    .unwrap_or_else(|| {
                        "taken over from this run's own earlier process, which is no longer running"
                            .into()
                    }),
                at: started_at,
            })?;
        }
        if !aborted_at_resume.is_empty() {
            run.abort_at_resume(&aborted_at_resume)?;
            run.dispatcher.settle_notices(NOTICE_WAIT).await?;
            return Ok(run.record());
        }
        let heartbeat = self.lock.as_ref().map(|(lock, _)| {
            spawn_heartbeat(
                lock.clone(),
                owner.clone(),
                run.clock.clone(),
                run.cancel.clone(),
                run.lock_lost.clone(),
            )
        });
        let result = run.execute().await;
        if let Some(task) = heartbeat {
            task.abort();
        }
        result?;
        run.dispatcher.settle_notices(NOTICE_WAIT).await?;
        Ok(run.record())
    }
}

/// Renews the lease until aborted; if the lock is lost, stops the run and
/// says why.
fn spawn_heartbeat(
    lock: Arc<dyn DeployLock>,
    mut owner: LockOwner,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    lost: Arc<Mutex<Option<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = lock.heartbeat_interval().max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(interval).await;
            owner.heartbeat = clock.now();
            match lock.heartbeat(&owner).await {
                Ok(()) => {}
                Err(e @ LockError::Lost { .. }) => {
                    *self::lock(&lost) = Some(e.to_string());
                    cancel.cancel();
                    return;
                }
                // A storage hiccup is retried at the next beat; the lease
                // outlives a few missed beats.
                Err(e) => tracing::warn!("renewing the deploy lock: {e}"),
            }
        }
    })
}

fn open_journal(dir: &Path) -> Result<JournalWriter, RunError> {
    if dir.exists() {
        return Err(RunError::RunExists(dir.to_owned()));
    }
    std::fs::create_dir_all(dir).map_err(|source| RunError::RunDir {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| RunError::RunDir {
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    Ok(JournalWriter::create(dir.join(JOURNAL_FILE))?)
}

struct Selection {
    phases: BTreeSet<String>,
    only: BTreeSet<String>,
}

impl From<&RunOptions> for Selection {
    fn from(o: &RunOptions) -> Self {
        Selection {
            phases: o.phases.iter().cloned().collect(),
            only: o.only.iter().cloned().collect(),
        }
    }
}

impl Selection {
    fn contains(&self, phase: &Phase, step: &Step) -> bool {
        (self.phases.is_empty() || self.phases.contains(&phase.id))
            && (self.only.is_empty() || self.only.contains(&step.id))
    }

    fn names_explicitly(&self, phase: &Phase) -> bool {
        self.phases.contains(&phase.id) || phase.steps.iter().any(|s| self.only.contains(&s.id))
    }
}

/// Why the normal flow stopped.
#[derive(Debug, Clone)]
enum Stop {
    Failed(RollbackReason),
    Cancelled,
}

struct Run {
    runbook: Arc<Runbook>,
    selection: Selection,
    dry_run: bool,
    operator: String,
    run_id: String,
    environment: Arc<Environment>,
    secrets: Arc<Secrets>,
    confirmer: Arc<dyn Confirmer>,
    cancel: CancellationToken,
    clock: Arc<dyn Clock>,
    values: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Dry-run: values that skipped steps would have produced, and by whom.
    dry_unknown: Mutex<BTreeMap<String, String>>,
    /// The run record, folded by the dispatcher from every durable event.
    record: Arc<Mutex<RunRecord>>,
    /// Resume: steps already done, with their outcomes.
    done: BTreeMap<String, Outcome>,
    /// Steps with an undo that completed, in completion order.
    completed: Mutex<Vec<String>>,
    /// Set when the deploy lock was taken over.
    lock_lost: Arc<Mutex<Option<String>>>,
    dispatcher: Dispatcher,
    /// This machine, for the process groups steps start.
    host: Arc<str>,
}

/// How a phase ended.
struct PhaseResult {
    failure: Option<RollbackReason>,
}

impl Run {
    /// Publishes a durable event. If the journal cannot take it, the run
    /// stops at once (running steps are cancelled): nothing more could be
    /// recorded.
    fn publish(&self, event: Event) -> Result<(), RunError> {
        if let Err(e) = self.dispatcher.publish(event) {
            self.cancel.cancel();
            return Err(e.into());
        }
        Ok(())
    }

    /// The record as folded so far.
    fn record(&self) -> RunRecord {
        lock(&self.record).clone()
    }

    async fn execute(&self) -> Result<(), RunError> {
        let mut stop: Option<Stop> = None;
        let mut rollback_trigger: Option<RollbackReason> = None;
        for phase in self.runbook.phases() {
            if phase.kind == PhaseKind::Rollback {
                continue;
            }
            if let Some(stop) = &stop {
                self.finish_unreached(phase, &not_reached(stop))?;
                continue;
            }
            let result = self.run_phase(phase, false).await?;
            if self.cancel.is_cancelled() {
                stop = Some(Stop::Cancelled);
            } else if let Some(reason) = result.failure {
                if phase.rollback_on_failure {
                    rollback_trigger = Some(reason.clone());
                }
                stop = Some(Stop::Failed(reason));
            }
        }
        let mut verdict = match &stop {
            None => Verdict::Succeeded,
            Some(Stop::Failed(_)) => Verdict::Failed,
            Some(Stop::Cancelled) => Verdict::Stopped,
        };
        // A failure rolls back only what this run (or the run it resumes)
        // changed: a failing re-check of read-only steps undoes nothing.
        let mut rollback_withheld = None;
        if rollback_trigger.is_some() && self.record().first_change().is_none() {
            rollback_withheld = rollback_trigger.take().map(|failure| RollbackWithheld {
                failure,
                detail: NOTHING_CHANGED.into(),
            });
        }
        if let Some(phase) = self.runbook.rollback_phase() {
            let explicit = self.selection.names_explicitly(phase);
            if let Some(reason) = rollback_trigger {
                self.publish(Event::RollbackTriggered {
                    reason,
                    at: self.clock.now(),
                })?;
                verdict = self.run_rollback(phase, true).await?;
            } else if explicit && stop.is_none() {
                verdict = self.run_rollback(phase, false).await?;
            } else {
                let outcome = match &stop {
                    Some(Stop::Cancelled) => {
                        Outcome::not_run("the run was stopped by the operator")
                    }
                    _ => Outcome::skipped(SkipReason::RollbackNotTriggered),
                };
                self.finish_unreached(phase, &outcome)?;
            }
        }
        let lost = lock(&self.lock_lost).take();
        if let Some(detail) = lost {
            self.publish(Event::LockLost {
                detail,
                at: self.clock.now(),
            })?;
        }
        self.publish(Event::RunFinished {
            verdict,
            exit_code: verdict.exit_code(),
            at: self.clock.now(),
            rollback_withheld,
        })
    }

    /// The operator chose to abort at resume: the interrupted steps are
    /// recorded as aborted and the run ends stopped.
    fn abort_at_resume(&self, steps: &[String]) -> Result<(), RunError> {
        for id in steps {
            if let Some((phase, step)) = self.runbook.find_step(id) {
                self.finish(
                    phase,
                    step,
                    Outcome::aborted("interrupted earlier; the operator chose to abort at resume, so what it changed is unknown"),
                    0,
                    Duration::ZERO,
                )?;
            }
        }
        self.publish(Event::RunFinished {
            verdict: Verdict::Stopped,
            exit_code: Verdict::Stopped.exit_code(),
            at: self.clock.now(),
            rollback_withheld: None,
        })
    }

    async fn run_rollback(&self, phase: &Phase, triggered: bool) -> Result<Verdict, RunError> {
        // Compensation first: each completed step's own undo, newest first,
        // then the rollback phase's procedure and verification.
        let undone = if triggered {
            self.run_undos().await?
        } else {
            true
        };
        let result = self.run_phase_with(phase, true, triggered).await?;
        Ok(if self.cancel.is_cancelled() {
            Verdict::Stopped
        } else if result.failure.is_some() || !undone {
            Verdict::RollbackFailed
        } else {
            Verdict::RolledBack
        })
    }

    /// Records every step of a phase the run never reached.
    fn finish_unreached(&self, phase: &Phase, outcome: &Outcome) -> Result<(), RunError> {
        for step in &phase.steps {
            self.finish(phase, step, outcome.clone(), 0, Duration::ZERO)?;
        }
        self.publish(Event::PhaseFinished {
            phase: phase.id.clone(),
            status: outcome.status,
            at: self.clock.now(),
        })
    }

    fn finish(
        &self,
        phase: &Phase,
        step: &Step,
        outcome: Outcome,
        attempts: u32,
        elapsed: Duration,
    ) -> Result<(), RunError> {
        self.publish(Event::StepFinished {
            phase: phase.id.clone(),
            step: step.id.clone(),
            outcome,
            attempts,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            at: self.clock.now(),
        })
    }

    async fn run_phase(&self, phase: &Phase, rolling_back: bool) -> Result<PhaseResult, RunError> {
        self.run_phase_with(phase, rolling_back, false).await
    }

    /// Runs one phase. `select_all` overrides the selection (a triggered
    /// rollback runs whole, whatever `--only` said).
    async fn run_phase_with(
        &self,
        phase: &Phase,
        rolling_back: bool,
        select_all: bool,
    ) -> Result<PhaseResult, RunError> {
        self.publish(Event::PhaseStarted {
            phase: phase.id.clone(),
            at: self.clock.now(),
        })?;
        let mut failure: Option<RollbackReason> = None;
        let mut worst = Status::Passed;
        let mut index = 0;
        while index < phase.steps.len() {
            let group_end = match &phase.steps[index].policy.parallel_group {
                Some(group) => {
                    index
                        + phase.steps[index..]
                            .iter()
                            .take_while(|s| s.policy.parallel_group.as_ref() == Some(group))
                            .count()
                }
                None => index + 1,
            };
            let chunk = &phase.steps[index..group_end];
            index = group_end;
            if self.cancel.is_cancelled() || failure.is_some() {
                let outcome = match &failure {
                    Some(reason) => not_reached(&Stop::Failed(reason.clone())),
                    None => not_reached(&Stop::Cancelled),
                };
                for step in chunk {
                    worst = worse(worst, outcome.status);
                    self.finish(phase, step, outcome.clone(), 0, Duration::ZERO)?;
                }
                continue;
            }
            let outcomes = if chunk.len() == 1 {
                vec![
                    self.run_step(phase, &chunk[0], rolling_back, select_all, &self.cancel)
                        .await?,
                ]
            } else {
                let permits = Semaphore::new(phase.max_parallel.max(1));
                // Fail-fast groups stop their other steps at the first
                // blocking failure (a watch must not go on for 24 h after a
                // sibling decided the rollback).
                let group = self.cancel.child_token();
                let runs = chunk.iter().map(|step| {
                    let permits = &permits;
                    let group = &group;
                    async move {
                        // The semaphore is never closed, so acquire cannot fail;
                        // without a permit the step would run unthrottled.
                        let _permit = permits.acquire().await.ok();
                        if group.is_cancelled() {
                            let outcome = Outcome::not_run(
                                "not started: another step of its fail-fast parallel group failed",
                            );
                            self.finish(phase, step, outcome.clone(), 0, Duration::ZERO)?;
                            return Ok::<Outcome, RunError>(outcome);
                        }
                        let outcome = self
                            .run_step(phase, step, rolling_back, select_all, group)
                            .await?;
                        if phase.fail_fast && step.policy.blocking && !outcome.status.is_ok() {
                            group.cancel();
                        }
                        Ok(outcome)
                    }
                });
                join_all(runs)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?
            };
            for (step, outcome) in chunk.iter().zip(outcomes) {
                worst = worse(worst, outcome.status);
                if step.policy.blocking && !outcome.status.is_ok() && failure.is_none() {
                    failure = Some(RollbackReason {
                        phase: phase.id.clone(),
                        step: step.id.clone(),
                        status: outcome.status,
                        summary: outcome.summary.clone(),
                    });
                }
            }
        }
        if phase.steps.is_empty() {
            worst = Status::Skipped;
        }
        self.publish(Event::PhaseFinished {
            phase: phase.id.clone(),
            status: worst,
            at: self.clock.now(),
        })?;
        Ok(PhaseResult { failure })
    }

    /// Runs one step to its final outcome, publishing as it goes.
    async fn run_step(
        &self,
        phase: &Phase,
        step: &Step,
        rolling_back: bool,
        select_all: bool,
        stop: &CancellationToken,
    ) -> Result<Outcome, RunError> {
        if let Some(outcome) = self.done.get(&step.id) {
            // Done before the resume: recorded already, never repeated.
            return Ok(outcome.clone());
        }
        let skip = if !select_all && !self.selection.contains(phase, step) {
            Some(SkipReason::NotSelected)
        } else {
            match step.policy.when {
                When::OnRollback if !rolling_back => Some(SkipReason::Condition {
                    condition: When::OnRollback.describe().into(),
                }),
                When::NotOnRollback if rolling_back => Some(SkipReason::Condition {
                    condition: When::NotOnRollback.describe().into(),
                }),
                _ => None,
            }
        };
        if let Some(reason) = skip {
            self.note_dry_unknown(step);
            let outcome = Outcome::skipped(reason);
            self.finish(phase, step, outcome.clone(), 0, Duration::ZERO)?;
            return Ok(outcome);
        }
        let started = Instant::now();
        let (outcome, attempts) = match &step.kind {
            StepKind::Manual { instructions } => {
                if self.dry_run {
                    (
                        Outcome::skipped(SkipReason::DryRun {
                            would: "ask the operator to confirm".into(),
                        }),
                        0,
                    )
                } else {
                    (
                        self.confirm(phase, step, instructions.clone(), stop)
                            .await?,
                        1,
                    )
                }
            }
            StepKind::Check(check) if step.policy.confirm_first && !self.dry_run => {
                let ask = format!(
                    "About to {}; y runs it, skip leaves it out.",
                    check.describe().action_text()
                );
                let approval = self.confirm(phase, step, Some(ask), stop).await?;
                if approval.status == Status::Passed {
                    self.run_check(phase, step, check.as_ref(), stop).await?
                } else {
                    (approval, 1)
                }
            }
            StepKind::Check(check) => self.run_check(phase, step, check.as_ref(), stop).await?,
        };
        let outcome = match &step.kind {
            StepKind::Check(check) if check.describe().notice => notice_outcome(outcome),
            _ => outcome,
        };
        let outcome = self.secrets.redactor().redact_serde(&outcome);
        if outcome.status.is_ok() && !outcome.values.is_empty() {
            lock(&self.values).extend(outcome.values.clone());
        }
        if step.undo.is_some() && outcome.status.is_ok() {
            lock(&self.completed).push(step.id.clone());
        }
        self.finish(phase, step, outcome.clone(), attempts, started.elapsed())?;
        Ok(outcome)
    }

    /// In a dry-run, remembers that `step`'s values will not exist.
    fn note_dry_unknown(&self, step: &Step) {
        if let Some(desc) = step.description() {
            let mut unknown = lock(&self.dry_unknown);
            for key in desc.produces {
                unknown.entry(key).or_insert_with(|| step.id.clone());
            }
        }
    }

    async fn confirm(
        &self,
        phase: &Phase,
        step: &Step,
        instructions: Option<String>,
        stop: &CancellationToken,
    ) -> Result<Outcome, RunError> {
        self.publish(Event::StepStarted {
            phase: phase.id.clone(),
            step: step.id.clone(),
            attempt: 1,
            mutates: false,
            at: self.clock.now(),
        })?;
        let request = ConfirmRequest {
            run_id: self.run_id.clone(),
            phase: phase.id.clone(),
            step: step.id.clone(),
            title: step.title.clone(),
            instructions,
            deadline: step.policy.confirm_deadline,
            default: step.policy.confirm_default,
            now: self.clock.now(),
        };
        let ask = self.confirmer.confirm(&request);
        let answer = tokio::select! {
            biased;
            () = stop.cancelled() => {
                return Ok(Outcome::aborted("the run was stopped while waiting for confirmation"));
            }
            answer = with_deadline(step.policy.confirm_deadline, ask) => answer,
        };
        let confirmation = match answer {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Ok(Outcome::check_error(e.to_string())),
            None => Confirmation {
                decision: step.policy.confirm_default,
                who: self.operator.clone(),
                at: self.clock.now(),
                via: Via::DeadlineDefault,
                comment: step
                    .policy
                    .confirm_deadline
                    .map(|d| format!("no answer within {}", crate::outcome::format_duration(d))),
            },
        };
        self.publish(Event::ConfirmationRecorded {
            phase: phase.id.clone(),
            step: step.id.clone(),
            confirmation: confirmation.clone(),
        })?;
        let by = match &confirmation.comment {
            Some(comment) => format!("{} ({comment})", confirmation.who),
            None => confirmation.who.clone(),
        };
        Ok(match confirmation.decision {
            Decision::Confirmed => Outcome::passed(format!("confirmed by {by}")),
            Decision::Declined => Outcome::failed(format!("declined by {by}")),
            Decision::Skipped => {
                let mut o = Outcome::skipped(SkipReason::Operator);
                o.summary = format!("skipped by {by}");
                o
            }
            Decision::Abort => {
                self.cancel.cancel();
                Outcome::aborted(format!("run stopped by {by}"))
            }
        })
    }

    async fn run_check(
        &self,
        phase: &Phase,
        step: &Step,
        check: &dyn Check,
        stop: &CancellationToken,
    ) -> Result<(Outcome, u32), RunError> {
        let desc = check.describe();
        if self.dry_run {
            let unknown = desc.needs.iter().find_map(|v| {
                lock(&self.dry_unknown)
                    .get(v)
                    .map(|p| (v.clone(), p.clone()))
            });
            if let Some((value, producer)) = unknown {
                self.note_dry_unknown(step);
                return Ok((
                    Outcome::skipped(SkipReason::UnknownInDryRun { value, producer }),
                    0,
                ));
            }
            if desc.mutates {
                self.note_dry_unknown(step);
                let ctx = self.ctx(phase, step, 0, stop.child_token());
                let mut outcome = Outcome::skipped(SkipReason::DryRun {
                    would: desc.action_text().to_owned(),
                });
                // A plugin's preview must not take the dry-run down with it.
                outcome.evidence =
                    std::panic::catch_unwind(AssertUnwindSafe(|| check.preview(&ctx)))
                        .unwrap_or_else(|panic| {
                            vec![Evidence {
                                label: "preview".into(),
                                value: format!("the check panicked: {}", panic_message(&panic)),
                            }]
                        });
                return Ok((outcome, 0));
            }
        }
        let values = Arc::new(lock(&self.values).clone());
        if let Some(missing) = desc.needs.iter().find(|k| !values.contains_key(*k)) {
            return Ok((
                Outcome::check_error(format!(
                    "needs value `{missing}`, which no earlier step recorded (was its step skipped, not selected or failed?)"
                )),
                0,
            ));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.publish(Event::StepStarted {
                phase: phase.id.clone(),
                step: step.id.clone(),
                attempt,
                mutates: desc.mutates,
                at: self.clock.now(),
            })?;
            let outcome = self
                .attempt(phase, step, check, attempt, step.policy.timeout, stop)
                .await;
            if !outcome.status.is_retryable()
                || attempt > step.policy.retries
                || stop.is_cancelled()
            {
                return Ok((outcome, attempt));
            }
            let delay = step.policy.backoff.delay(attempt);
            self.publish(Event::StepRetrying {
                phase: phase.id.clone(),
                step: step.id.clone(),
                attempt,
                outcome: self.secrets.redactor().redact_serde(&outcome),
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            })?;
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    return Ok((Outcome::aborted(format!("stopped before retry {attempt}; last attempt: {}", outcome.summary)), attempt));
                }
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

impl Run {
    /// One attempt of `check` for `step`: cancelled on stop, bounded by
    /// `timeout`, a panic turned into a check error.
    async fn attempt(
        &self,
        phase: &Phase,
        step: &Step,
        check: &dyn Check,
        attempt: u32,
        timeout: Option<Duration>,
        stop: &CancellationToken,
    ) -> Outcome {
        let mutates = check.describe().mutates;
        let token = stop.child_token();
        let ctx = self.ctx(phase, step, attempt, token.clone());
        let run = AssertUnwindSafe(check.run(&ctx)).catch_unwind();
        tokio::pin!(run);
        let cut_short = tokio::select! {
            biased;
            () = stop.cancelled() => Outcome::aborted(match (mutates, self.cancel.is_cancelled()) {
                (true, _) => "interrupted while running: what it changed is unknown; verify before resuming",
                (false, true) => "interrupted by the operator",
                (false, false) => "cancelled: another step of its fail-fast parallel group failed",
            }),
            result = with_deadline(timeout, &mut run) => match result {
                None => Outcome::timed_out(timeout.unwrap_or_default()),
                Some(finished) => {
                    // Nothing the check left behind may outlive the attempt.
                    token.cancel();
                    return finished.unwrap_or_else(|panic| {
                        Outcome::check_error(format!("the check panicked: {}", panic_message(&panic)))
                    });
                }
            },
        };
        token.cancel();
        // A check that started processes gets a grace period to end them and
        // return what it saw (the output so far); its evidence is kept under
        // the executor's verdict. Any other check is dropped at once.
        if !ctx.started_processes() {
            return cut_short;
        }
        match tokio::time::timeout(CANCEL_GRACE, &mut run).await {
            Ok(Ok(late)) => keep_evidence(cut_short, late),
            Ok(Err(_)) | Err(_) => cut_short,
        }
    }

    /// The context for `attempt` of `step` (0: a dry-run preview).
    fn ctx(&self, phase: &Phase, step: &Step, attempt: u32, cancel: CancellationToken) -> Ctx {
        Ctx {
            run_id: self.run_id.clone(),
            phase: phase.id.clone(),
            step: step.id.clone(),
            attempt,
            dry_run: self.dry_run,
            environment: self.environment.clone(),
            secrets: self.secrets.clone(),
            values: Arc::new(lock(&self.values).clone()),
            cancel,
            dispatcher: self.dispatcher.clone(),
            clock: self.clock.clone(),
            host: self.host.clone(),
            process_group: Arc::default(),
        }
    }

    /// Runs the undo of every completed step that declares one, newest
    /// first; true when all succeeded.
    async fn run_undos(&self) -> Result<bool, RunError> {
        let completed = lock(&self.completed).clone();
        let mut all_ok = true;
        for id in completed.iter().rev() {
            let Some((phase, step)) = self.runbook.find_step(id) else {
                continue;
            };
            let Some(undo) = &step.undo else { continue };
            let desc = undo.describe();
            let outcome = if self.dry_run && desc.mutates {
                Outcome::skipped(SkipReason::DryRun {
                    would: desc.action_text().to_owned(),
                })
            } else {
                let outcome = self
                    .attempt(
                        phase,
                        step,
                        undo.as_ref(),
                        1,
                        step.policy.timeout,
                        &self.cancel,
                    )
                    .await;
                self.secrets.redactor().redact_serde(&outcome)
            };
            all_ok &= outcome.status.is_ok();
            self.publish(Event::UndoFinished {
                phase: phase.id.clone(),
                step: step.id.clone(),
                outcome,
                at: self.clock.now(),
            })?;
        }
        Ok(all_ok)
    }
}

/// The executor's verdict on an attempt it cut short, with the evidence and
/// measurements the check returned while it wound down.
fn keep_evidence(mut verdict: Outcome, late: Outcome) -> Outcome {
    verdict.evidence.extend(late.evidence);
    verdict.measurements.extend(late.measurements);
    verdict
}

/// `fut` bounded by `limit`: `None` when the limit passed first.
async fn with_deadline<F: std::future::Future>(
    limit: Option<Duration>,
    fut: F,
) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
        None => Some(fut.await),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}

/// A notice never decides the run: anything but a pass, a skip or a stop
/// (an undelivered message, a step timeout, a declined approval) is
/// recorded as `warned`, keeping what happened.
fn notice_outcome(mut outcome: Outcome) -> Outcome {
    if outcome.status.is_ok() || outcome.status == Status::Aborted {
        return outcome;
    }
    let was = outcome.status;
    outcome.status = Status::Warned;
    outcome.summary = format!("notice not delivered ({was}): {}", outcome.summary);
    outcome
}

fn not_reached(stop: &Stop) -> Outcome {
    match stop {
        Stop::Failed(reason) => Outcome::not_run(format!(
            "not reached: blocking step `{}` ended {}",
            reason.step, reason.status
        )),
        Stop::Cancelled => Outcome::not_run("not reached: the run was stopped by the operator"),
    }
}

/// The more serious of two statuses, for a phase's summary status.
fn worse(a: Status, b: Status) -> Status {
    fn rank(s: Status) -> u8 {
        match s {
            Status::Passed => 0,
            Status::Skipped => 1,
            Status::Warned => 2,
            Status::NotRun => 3,
            Status::NoData => 4,
            Status::Failed => 5,
            Status::CheckError => 6,
            Status::TimedOut => 7,
            Status::Aborted => 8,
        }
    }
    if rank(b) > rank(a) { b } else { a }
}
