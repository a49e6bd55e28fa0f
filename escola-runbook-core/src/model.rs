//! The runbook as types: phases of steps, each step manual or automated, each
//! with a policy. Built with [`Runbook::builder`] and validated once, so the
//! executor never meets a duplicate id or a second rollback phase.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalPolicy, Approver};
use crate::check::{Check, Description};
use crate::confirm::Decision;

/// What a phase is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Runs in order with the others.
    Normal,
    /// Observes the deploy over time (alert rules, dashboards).
    Watch,
    /// Runs only when a rollback is triggered; at most one per runbook.
    Rollback,
}

/// When a step applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Every run.
    #[default]
    Always,
    /// Only while a rollback is in progress (for steps outside the rollback
    /// phase, such as a notification).
    OnRollback,
    /// Only when no rollback is in progress.
    NotOnRollback,
}

impl When {
    /// The condition in words, for skip reasons.
    pub fn describe(self) -> &'static str {
        match self {
            When::Always => "always",
            When::OnRollback => "only during a rollback",
            When::NotOnRollback => "only when not rolling back",
        }
    }
}

/// Delay between attempts: `initial`, multiplied by `factor` each time, capped
/// at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first retry.
    #[serde(with = "crate::duration::duration_ms")]
    pub initial: Duration,
    /// Growth per retry (1.0 for a constant delay).
    pub factor: f64,
    /// Upper bound on any delay.
    #[serde(with = "crate::duration::duration_ms")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let secs = self.initial.as_secs_f64() * factor.powi(retry.saturating_sub(1) as i32);
        let max = self.max.as_secs_f64();
        Duration::from_secs_f64(if secs.is_finite() { secs.min(max) } else { max })
    }
}

/// How the executor treats a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// A failing blocking step stops its phase and every phase after it.
    /// Advisory steps (false) are recorded and the run goes on.
    pub blocking: bool,
    /// Cancel the attempt after this long; `None` waits forever (manual steps
    /// wait for the operator unless a confirmation deadline is set).
    #[serde(
        default,
        with = "crate::duration::opt_duration_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Extra attempts after a retryable status.
    pub retries: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Consecutive steps with the same group run concurrently, at most the
    /// phase's `max_parallel` at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_group: Option<String>,
    /// When the step applies.
    pub when: When,
    /// For manual steps: how long to wait for an answer before taking
    /// `confirm_default`.
    #[serde(
        default,
        with = "crate::duration::opt_duration_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub confirm_deadline: Option<Duration>,
    /// The decision taken when the deadline passes.
    pub confirm_default: Decision,
    /// For automated steps: ask the operator before running it (an approval
    /// gate for a conditional or dangerous action); `skip` leaves it out.
    #[serde(default)]
    pub confirm_first: bool,
    /// An approver holding a role must approve the step before it runs (a
    /// manual step: the approval is the step). The operator's own answer
    /// (`--yes` included) never stands in for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPolicy>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            blocking: true,
            timeout: None,
            retries: 0,
            backoff: Backoff::default(),
            parallel_group: None,
            when: When::Always,
            confirm_deadline: None,
            confirm_default: Decision::Declined,
            confirm_first: false,
            approval: None,
        }
    }
}

/// What a step does.
#[derive(Clone)]
pub enum StepKind {
    /// A person acts, then confirms through the [`crate::Confirmer`].
    Manual {
        /// What to do, beyond the title (a command to type, a link).
        instructions: Option<String>,
    },
    /// A check or action run by the executor.
    Check(Arc<dyn Check>),
}

impl fmt::Debug for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepKind::Manual { instructions } => f
                .debug_struct("Manual")
                .field("instructions", instructions)
                .finish(),
            StepKind::Check(check) => f.debug_tuple("Check").field(&check.describe()).finish(),
        }
    }
}

/// One item of the runbook.
#[derive(Clone)]
pub struct Step {
    /// Stable slug, unique in the runbook (journal, `--only`, resume).
    pub id: String,
    /// The runbook's own wording.
    pub title: String,
    /// A sub-heading inside the phase ("Backups & infra"), so reports read as
    /// the team's checklist.
    pub section: Option<String>,
    /// Manual or automated.
    pub kind: StepKind,
    /// Execution policy.
    pub policy: Policy,
    /// Remarks from the runbook ("TODO: script", a typo fixed on import).
    pub notes: Vec<String>,
    /// What undoes this step if a rollback is triggered after it completed
    /// (compensation): run newest first, before the rollback phase.
    pub undo: Option<Arc<dyn Check>>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("title", &self.title)
            .field("section", &self.section)
            .field("kind", &self.kind)
            .field("policy", &self.policy)
            .field("notes", &self.notes)
            .field("undo", &self.undo.as_ref().map(|u| u.describe()))
            .finish()
    }
}

impl Step {
    /// A step a person performs and confirms.
    pub fn manual(id: impl Into<String>, title: impl Into<String>) -> Self {
        Step {
            id: id.into(),
            title: title.into(),
            section: None,
            kind: StepKind::Manual { instructions: None },
            policy: Policy::default(),
            notes: Vec::new(),
            undo: None,
        }
    }

    /// A step run by `check`.
    pub fn check(
        id: impl Into<String>,
        title: impl Into<String>,
        check: impl Check + 'static,
    ) -> Self {
        Self::check_arc(id, title, Arc::new(check))
    }

    /// A step run by a shared check.
    pub fn check_arc(
        id: impl Into<String>,
        title: impl Into<String>,
        check: Arc<dyn Check>,
    ) -> Self {
        Step {
            kind: StepKind::Check(check),
            ..Self::manual(id, title)
        }
    }

    /// Instructions shown with a manual step.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        if let StepKind::Manual { instructions } = &mut self.kind {
            *instructions = Some(text.into());
        }
        self
    }

    /// Places the step under a sub-heading of its phase.
    pub fn section(mut self, section: impl Into<String>) -> Self {
        self.section = Some(section.into());
        self
    }

    /// Advisory: a failure is recorded and the run goes on.
    pub fn advisory(mut self) -> Self {
        self.policy.blocking = false;
        self
    }

    /// Cancels an attempt after `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.policy.timeout = Some(limit);
        self
    }

    /// Retries up to `retries` times with `backoff` between attempts.
    pub fn retries(mut self, retries: u32, backoff: Backoff) -> Self {
        self.policy.retries = retries;
        self.policy.backoff = backoff;
        self
    }

    crate::setters! {
        /// Runs concurrently with adjacent steps of the same group.
        parallel(group: impl Into<String>) => policy.parallel_group = Some(group.into());

        /// Applies only under `when`.
        when(when: When) => policy.when = when;
    }

    /// For a manual step: take `default` if nobody answers within `deadline`.
    pub fn confirm_deadline(mut self, deadline: Duration, default: Decision) -> Self {
        self.policy.confirm_deadline = Some(deadline);
        self.policy.confirm_default = default;
        self
    }

    /// Asks the operator before running this automated step: `y` runs it,
    /// `skip` leaves it out, `n` fails it, `abort` stops the run.
    pub fn confirm_first(mut self) -> Self {
        self.policy.confirm_first = true;
        self
    }

    /// Requires an approval by an approver holding the policy's role.
    pub fn approval(mut self, approval: ApprovalPolicy) -> Self {
        self.policy.approval = Some(approval);
        self
    }

    /// Adds a remark.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Declares how to undo this step on rollback (`php artisan up` undoes
    /// `php artisan down`).
    pub fn undo(mut self, check: impl Check + 'static) -> Self {
        self.undo = Some(Arc::new(check));
        self
    }

    /// The check's description, for automated steps.
    pub fn description(&self) -> Option<Description> {
        match &self.kind {
            StepKind::Manual { .. } => None,
            StepKind::Check(check) => Some(check.describe()),
        }
    }

    /// True for automated steps that change something.
    pub fn mutates(&self) -> bool {
        self.description().is_some_and(|d| d.mutates)
    }
}

/// A section of the runbook.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Stable slug.
    pub id: String,
    /// The runbook's heading.
    pub title: String,
    /// Normal, watch or rollback.
    pub kind: PhaseKind,
    /// A blocking failure here runs the rollback phase.
    pub rollback_on_failure: bool,
    /// Concurrency limit for parallel groups.
    pub max_parallel: usize,
    /// A blocking failure in a parallel group cancels the group's other
    /// steps instead of letting them finish.
    pub fail_fast: bool,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Remarks shown under the heading.
    pub notes: Vec<String>,
}

impl Phase {
    /// A normal phase.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Phase {
            id: id.into(),
            title: title.into(),
            kind: PhaseKind::Normal,
            rollback_on_failure: false,
            max_parallel: 4,
            fail_fast: false,
            steps: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A watch phase.
    pub fn watch(id: impl Into<String>, title: impl Into<String>) -> Self {
        Phase {
            kind: PhaseKind::Watch,
            ..Self::new(id, title)
        }
    }

    /// The rollback phase.
    pub fn rollback(id: impl Into<String>, title: impl Into<String>) -> Self {
        Phase {
            kind: PhaseKind::Rollback,
            ..Self::new(id, title)
        }
    }

    /// A blocking failure in this phase triggers the rollback phase.
    pub fn rollback_on_failure(mut self) -> Self {
        self.rollback_on_failure = true;
        self
    }

    /// At most `n` steps of a parallel group at once (minimum 1).
    pub fn max_parallel(mut self, n: usize) -> Self {
        self.max_parallel = n.max(1);
        self
    }

    /// Cancels a parallel group's other steps at its first blocking failure.
    pub fn fail_fast(mut self) -> Self {
        self.fail_fast = true;
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Appends steps: an `Option<Step>` adds a step only where the
    /// configuration has one.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.steps.extend(steps);
        self
    }

    /// Adds a remark.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// A person or team to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Their role ("Dev on-call").
    pub role: String,
    /// How to reach them ("@dev-escola").
    pub handle: String,
}

/// Facts about the runbook that are not steps: contacts, glossary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who to call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Terms and their meaning.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub glossary: BTreeMap<String, String>,
    /// Version of the runbook document, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Who may approve steps that require an approval, with their roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Approver>,
}

impl Metadata {
    /// The approvers holding `role`.
    pub fn approvers_with(&self, role: &str) -> impl Iterator<Item = &Approver> {
        self.approvers.iter().filter(move |a| a.holds(role))
    }

    /// The names of those who may approve for `role` in a run by
    /// `operator`: the approvers holding it, the operator left out.
    pub fn may_approve(&self, role: &str, operator: &str) -> Vec<String> {
        self.approvers_with(role)
            .filter(|a| a.name != operator)
            .map(|a| a.name.clone())
            .collect()
    }
}

/// A validated runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    name: String,
    metadata: Metadata,
    phases: Vec<Phase>,
}

/// Why a runbook is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The runbook has no name.
    #[error("the runbook has no name; give it one, e.g. Runbook::builder(\"escola-connect\")")]
    EmptyName,
    /// The runbook has no phase.
    #[error("runbook `{0}` has no phase; add at least one")]
    NoPhases(String),
    /// An id is not a slug.
    #[error(
        "{what} id `{id}` is not a slug: use lowercase letters, digits and '-', starting with a letter or digit"
    )]
    BadId {
        /// "phase" or "step".
        what: &'static str,
        /// The offending id.
        id: String,
    },
    /// Two phases share an id.
    #[error("phase id `{0}` is used twice; phase ids must be unique")]
    DuplicatePhase(String),
    /// Two steps share an id.
    #[error(
        "step id `{id}` is used in phase `{first}` and again in phase `{second}`; step ids must be unique in the runbook"
    )]
    DuplicateStep {
        /// The id.
        id: String,
        /// Where it first appears.
        first: String,
        /// Where it appears again.
        second: String,
    },
    /// More than one rollback phase.
    #[error("phases `{0}` and `{1}` are both rollback phases; a runbook has at most one")]
    TwoRollbackPhases(String, String),
    /// `rollback_on_failure` without a rollback phase.
    #[error("phase `{0}` asks for rollback on failure, but the runbook has no rollback phase")]
    NoRollbackPhase(String),
    /// A step has an empty title.
    #[error("step `{0}` has an empty title; use the runbook's own wording")]
    EmptyTitle(String),
    /// A step requires an approval by a role no listed approver holds.
    #[error(
        "step `{step}` requires an approval by role `{role}`, which no approver holds ({}); list an approver with that role",
        if roles.is_empty() { "the runbook lists no approvers".to_owned() } else { format!("roles held: {}", roles.join(", ")) }
    )]
    NoApprover {
        /// The step.
        step: String,
        /// The role it requires.
        role: String,
        /// The roles the approvers hold.
        roles: Vec<String>,
    },
    /// A step needs a value no earlier step produces.
    #[error("step `{step}` needs value `{value}`, but no earlier step produces it")]
    UnproducedValue {
        /// The step.
        step: String,
        /// The value key.
        value: String,
    },
}

fn is_slug(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Builds a [`Runbook`]; see [`Runbook::builder`].
#[derive(Debug, Clone)]
pub struct RunbookBuilder {
    name: String,
    metadata: Metadata,
    phases: Vec<Phase>,
}

impl RunbookBuilder {
    /// Appends a phase.
    pub fn phase(mut self, phase: Phase) -> Self {
        self.phases.push(phase);
        self
    }

    /// Adds a contact.
    pub fn contact(mut self, role: impl Into<String>, handle: impl Into<String>) -> Self {
        self.metadata.contacts.push(Contact {
            role: role.into(),
            handle: handle.into(),
        });
        self
    }

    /// Adds a glossary entry.
    pub fn glossary(mut self, term: impl Into<String>, meaning: impl Into<String>) -> Self {
        self.metadata.glossary.insert(term.into(), meaning.into());
        self
    }

    /// Adds an approver holding `roles`.
    pub fn approver<R: Into<String>>(
        mut self,
        name: impl Into<String>,
        roles: impl IntoIterator<Item = R>,
    ) -> Self {
        self.metadata.approvers.push(Approver {
            name: name.into(),
            roles: roles.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Sets the document version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.metadata.version = Some(version.into());
        self
    }

    /// Validates and returns the runbook.
    pub fn build(self) -> Result<Runbook, ModelError> {
        if self.name.trim().is_empty() {
            return Err(ModelError::EmptyName);
        }
        if self.phases.is_empty() {
            return Err(ModelError::NoPhases(self.name));
        }
        let mut phase_ids = BTreeSet::new();
        let mut step_phase: BTreeMap<&str, &str> = BTreeMap::new();
        let mut rollback: Option<&str> = None;
        let mut produced: BTreeSet<String> = BTreeSet::new();
        for phase in &self.phases {
            if !is_slug(&phase.id) {
                return Err(ModelError::BadId {
                    what: "phase",
                    id: phase.id.clone(),
                });
            }
            if !phase_ids.insert(phase.id.as_str()) {
                return Err(ModelError::DuplicatePhase(phase.id.clone()));
            }
            if phase.kind == PhaseKind::Rollback {
                if let Some(first) = rollback {
                    return Err(ModelError::TwoRollbackPhases(
                        first.into(),
                        phase.id.clone(),
                    ));
                }
                rollback = Some(&phase.id);
            }
            for step in &phase.steps {
                if !is_slug(&step.id) {
                    return Err(ModelError::BadId {
                        what: "step",
                        id: step.id.clone(),
                    });
                }
                if step.title.trim().is_empty() {
                    return Err(ModelError::EmptyTitle(step.id.clone()));
                }
                if let Some(first) = step_phase.insert(&step.id, &phase.id) {
                    return Err(ModelError::DuplicateStep {
                        id: step.id.clone(),
                        first: first.into(),
                        second: phase.id.clone(),
                    });
                }
                if let Some(approval) = &step.policy.approval {
                    if self
                        .metadata
                        .approvers_with(&approval.role)
                        .next()
                        .is_none()
                    {
                        let roles: BTreeSet<&str> = self
                            .metadata
                            .approvers
                            .iter()
                            .flat_map(|a| a.roles.iter().map(String::as_str))
                            .collect();
                        return Err(ModelError::NoApprover {
                            step: step.id.clone(),
                            role: approval.role.clone(),
                            roles: roles.into_iter().map(str::to_owned).collect(),
                        });
                    }
                }
                if let Some(desc) = step.description() {
                    if let Some(value) = desc.needs.iter().find(|v| !produced.contains(*v)) {
                        return Err(ModelError::UnproducedValue {
                            step: step.id.clone(),
                            value: value.clone(),
                        });
                    }
                    produced.extend(desc.produces);
                }
            }
        }
        if rollback.is_none() {
            if let Some(p) = self.phases.iter().find(|p| p.rollback_on_failure) {
                return Err(ModelError::NoRollbackPhase(p.id.clone()));
            }
        }
        Ok(Runbook {
            name: self.name,
            metadata: self.metadata,
            phases: self.phases,
        })
    }
}

impl Runbook {
    /// Starts a runbook called `name`.
    ///
    /// ```
    /// use escola_runbook_core::{Phase, Runbook, Step};
    ///
    /// let runbook = Runbook::builder("escola-connect")
    ///     .contact("Dev on-call", "@dev-escola")
    ///     .phase(Phase::new("pre-deploy", "Pré-Deploy")
    ///         .step(Step::manual("window", "Sincronizar janela com Infra + Produto")))
    ///     .phase(Phase::rollback("rollback", "Rollback")
    ///         .step(Step::manual("previous-version", "Recolocar a versão anterior")))
    ///     .build()?;
    /// assert_eq!(runbook.phases().len(), 2);
    /// # Ok::<(), escola_runbook_core::ModelError>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> RunbookBuilder {
        RunbookBuilder {
            name: name.into(),
            metadata: Metadata::default(),
            phases: Vec::new(),
        }
    }

    /// The runbook's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Contacts, glossary, version.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Phases in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The rollback phase, if there is one.
    pub fn rollback_phase(&self) -> Option<&Phase> {
        self.phases.iter().find(|p| p.kind == PhaseKind::Rollback)
    }

    /// The phase holding step `id`, and the step.
    pub fn find_step(&self, id: &str) -> Option<(&Phase, &Step)> {
        self.phases
            .iter()
            .find_map(|p| p.steps.iter().find(|s| s.id == id).map(|s| (p, s)))
    }

    /// The phase `id`.
    pub fn find_phase(&self, id: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.id == id)
    }

    /// Gives every manual step without its own deadline this one: a run
    /// left unattended then decides by `default` instead of waiting forever.
    pub fn with_confirm_deadline(mut self, deadline: Duration, default: Decision) -> Self {
        for step in self.phases.iter_mut().flat_map(|p| p.steps.iter_mut()) {
            if matches!(step.kind, StepKind::Manual { .. })
                && step.policy.confirm_deadline.is_none()
            {
                step.policy.confirm_deadline = Some(deadline);
                step.policy.confirm_default = default;
            }
        }
        self
    }

    /// Every step, with its phase.
    pub fn steps(&self) -> impl Iterator<Item = (&Phase, &Step)> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_phase() -> Phase {
        Phase::new("a", "A").step(Step::manual("s1", "Do it"))
    }

    #[test]
    fn rejects_duplicate_step_ids_across_phases() {
        let err = Runbook::builder("r")
            .phase(ok_phase())
            .phase(Phase::new("b", "B").step(Step::manual("s1", "Again")))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "step id `s1` is used in phase `a` and again in phase `b`; step ids must be unique in the runbook"
        );
    }

    #[test]
    fn rejects_bad_slugs_and_rollback_without_phase() {
        let err = Runbook::builder("r")
            .phase(Phase::new("Pre Deploy", "x"))
            .build()
            .unwrap_err();
        assert!(matches!(err, ModelError::BadId { what: "phase", .. }));
        let err = Runbook::builder("r")
            .phase(ok_phase().rollback_on_failure())
            .build()
            .unwrap_err();
        assert_eq!(err, ModelError::NoRollbackPhase("a".into()));
        let err = Runbook::builder("r")
            .phase(Phase::rollback("r1", "R"))
            .phase(Phase::rollback("r2", "R"))
            .build()
            .unwrap_err();
        assert_eq!(err, ModelError::TwoRollbackPhases("r1".into(), "r2".into()));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(5),
        };
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(3), Duration::from_secs(4));
        assert_eq!(b.delay(4), Duration::from_secs(5));
        let weird = Backoff {
            factor: f64::NAN,
            ..b
        };
        assert_eq!(weird.delay(10), Duration::from_secs(1));
    }
}
