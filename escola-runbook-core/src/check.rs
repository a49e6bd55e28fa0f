//! The plugin point: a [`Check`] verifies something or performs an action, and
//! gets a [`Ctx`] with everything it may use.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::event::{Dispatcher, Event, JournalWriteError, RuleTransition};
use crate::executor::{Clock, SystemClock};
use crate::outcome::{Evidence, Outcome};
use crate::process::ProcessGroup;
use crate::secret::{Redactor, Secret, Secrets};

/// How long the executor waits, after a stop or a timeout, for a check that
/// started a process group ([`Ctx::record_process_group`]) to end it and
/// return its outcome. The check should ask its processes to stop (SIGTERM),
/// give them most of this time, then kill them; if it has not returned by
/// then, its future is dropped.
pub const CANCEL_GRACE: Duration = Duration::from_secs(15);

/// A check or action run by a step.
///
/// Object-safe, so runbooks hold `Arc<dyn Check>` and plugins from other
/// crates mix freely with built-in ones. A check reports everything through
/// its [`Outcome`]; it never prints. It should watch
/// [`Ctx::cancellation`] in long waits, though the executor also drops its
/// future on timeout or stop.
///
/// ```
/// use async_trait::async_trait;
/// use escola_runbook_core::{Check, Ctx, Description, Outcome};
///
/// struct DiskSpace { min_free_gib: u64 }
///
/// #[async_trait]
/// impl Check for DiskSpace {
///     fn describe(&self) -> Description {
///         Description::read_only("disk-space", format!("at least {} GiB free", self.min_free_gib))
///     }
///     async fn run(&self, _ctx: &Ctx) -> Outcome {
///         let free = 42; // measure it here
///         let o = if free >= self.min_free_gib { Outcome::passed("enough space") }
///                 else { Outcome::failed("not enough space") };
///         o.with_evidence("free", format!("{free} GiB"))
///          .with_evidence("limit", format!(">= {} GiB", self.min_free_gib))
///     }
/// }
/// ```
#[async_trait]
pub trait Check: Send + Sync {
    /// What the check is, for plans, dry-run and reports.
    fn describe(&self) -> Description;

    /// Runs the check once. Retries and timeouts are the executor's job.
    async fn run(&self, ctx: &Ctx) -> Outcome;

    /// The catalog name and parameters that rebuild this check, so a
    /// runbook can be written out as a file: a check that holds its
    /// parameter struct returns [`CheckParams::of`] it. `None` (the
    /// default) for checks that exist only in code; such steps are exported
    /// as manual steps with a note.
    fn params(&self) -> Option<CheckParams> {
        None
    }

    /// What a dry-run records as evidence instead of running this mutating
    /// check: what it would send and where, worked out from `ctx` with no
    /// side effect (a notice gives its message and destination host).
    /// Empty by default: the description's action says enough.
    fn preview(&self, ctx: &Ctx) -> Vec<Evidence> {
        let _ = ctx;
        Vec::new()
    }
}

/// A check as a runbook file names it: a catalog name and the parameters
/// that rebuild it, as a JSON object (lists are lists, numbers are
/// numbers). The catalog's `Catalog::build` turns it back into the check;
/// `CheckParams::of` writes a parameter struct (both in the `catalog`
/// module, so that this contract imports nothing of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckParams {
    /// Catalog name ("command", "smoke").
    pub check: String,
    /// Parameters by name.
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl CheckParams {
    /// Parameters for check `check`.
    pub fn new(check: impl Into<String>) -> Self {
        CheckParams {
            check: check.into(),
            params: serde_json::Map::new(),
        }
    }

    /// Adds a parameter written as text (`"30s"`, `"0,2"`): the catalog
    /// converts text to the parameter's type when it builds the check.
    pub fn with(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_value(key, value.into())
    }

    /// Adds a parameter as a JSON value (a list, a number).
    pub fn with_value(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }
}

/// A check's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// The check's kind ("command", "smoke", "metrics-endpoint").
    pub name: String,
    /// What it verifies or does, in one line.
    pub verifies: String,
    /// True when running it changes something outside (runs a command, takes
    /// a snapshot, sends a message). Dry-run skips mutating checks and says
    /// what they would do; read-only checks run in dry-run too.
    pub mutates: bool,
    /// What a real run would do, shown by `plan` and dry-run (a command
    /// line, a URL). Defaults to `verifies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Values this check reads from earlier steps ([`Ctx::value`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Values this check records for later steps ([`Outcome::values`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub produces: Vec<String>,
    /// A notice: a message to people, which never decides a deploy. The
    /// executor records any outcome but a pass (or a stop) as `warned`, so
    /// an undelivered message never fails its phase or triggers a rollback;
    /// as an action, a dry-run never runs it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

impl Description {
    /// A check that only reads.
    pub fn read_only(name: impl Into<String>, verifies: impl Into<String>) -> Self {
        Description {
            name: name.into(),
            verifies: verifies.into(),
            mutates: false,
            action: None,
            needs: Vec::new(),
            produces: Vec::new(),
            notice: false,
        }
    }

    /// An action that changes something; `action` is what it would do.
    pub fn mutating(
        name: impl Into<String>,
        verifies: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Description {
            mutates: true,
            action: Some(action.into()),
            ..Self::read_only(name, verifies)
        }
    }

    /// A notice (see [`Description::notice`](Self#structfield.notice)):
    /// `action` is the message it would send and where.
    pub fn notice(
        name: impl Into<String>,
        verifies: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Description {
            notice: true,
            ..Self::mutating(name, verifies, action)
        }
    }

    /// Declares a value read from an earlier step.
    pub fn needs(mut self, key: impl Into<String>) -> Self {
        self.needs.push(key.into());
        self
    }

    /// Declares a value recorded for later steps.
    pub fn produces(mut self, key: impl Into<String>) -> Self {
        self.produces.push(key.into());
        self
    }

    /// What a real run would do, in words.
    pub fn action_text(&self) -> &str {
        self.action.as_deref().unwrap_or(&self.verifies)
    }
}

/// Where the run points: a named environment and its settings (base URL,
/// metrics URL, database host...). Not secret; secrets live in [`Secrets`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// "production", "staging".
    pub name: String,
    /// Settings by key.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl Environment {
    /// An environment called `name` with no settings.
    pub fn new(name: impl Into<String>) -> Self {
        Environment {
            name: name.into(),
            settings: BTreeMap::new(),
        }
    }

    /// Adds a setting.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// The setting `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
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
    pub(crate) dispatcher: Dispatcher,
    pub(crate) clock: Arc<dyn Clock>,
    /// The machine the run is on, for recorded process groups.
    pub(crate) host: Arc<str>,
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
            dispatcher: Dispatcher::default(),
            clock: Arc::new(SystemClock),
            host: Arc::from("standalone"),
            process_group: Arc::default(),
        }
    }

    /// Uses `token` as the check's cancellation (wire Ctrl-C to it).
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
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
    /// [`preview`](Check::preview)) see `true` here.
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
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Records an alert rule's state change in the journal and the record.
    /// Fails only when the journal cannot be written: the caller should
    /// stop and report a check error, since its record would be incomplete.
    pub fn record_rule_transition(
        &self,
        transition: RuleTransition,
    ) -> Result<(), JournalWriteError> {
        self.dispatcher
            .publish(Event::RuleTransition {
                phase: self.phase.clone(),
                step: self.step.clone(),
                transition,
            })
            .map(|_| ())
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
        self.dispatcher
            .publish(Event::ProcessGroupStarted {
                phase: self.phase.clone(),
                step: self.step.clone(),
                attempt: self.attempt,
                group: ProcessGroup {
                    pgid,
                    host: self.host.to_string(),
                },
                at: self.now(),
            })
            .map(|_| ())
    }

    /// Whether the check said it started a process group: a tool that runs
    /// checks itself should then, after cancelling, give it
    /// [`CANCEL_GRACE`] to end the group, as the executor does.
    pub fn started_processes(&self) -> bool {
        self.process_group.load(Ordering::SeqCst) != 0
    }

    /// Reports progress ("3/12 requests") to observers; the terminal shows it
    /// beside the spinner.
    pub fn progress(&self, message: impl Into<String>) {
        self.dispatcher.emit(Event::StepProgress {
            phase: self.phase.clone(),
            step: self.step.clone(),
            message: message.into(),
        });
    }
}
