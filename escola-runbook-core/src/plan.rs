//! What a run would do, before anything runs: `escola-runbook plan`, and a
//! preview any embedding tool can show.

use serde::{Deserialize, Serialize};

use crate::event::SCHEMA_VERSION;
use crate::executor::{Executor, RunError, RunOptions};
use crate::model::{PhaseKind, Runbook, StepKind};
use crate::outline::RunbookOutline;

/// How a step behaves in a real run and in a dry-run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Phase id.
    pub phase: String,
    /// Step id.
    pub step: String,
    /// `manual`, `check` (read-only) or `action` (mutating).
    pub kind: String,
    /// Inside the `--phase` / `--only` selection.
    pub selected: bool,
    /// What a real run does.
    pub real_run: String,
    /// What a dry-run does.
    pub dry_run: String,
    /// What a rollback does to it, once it has completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_rollback: Option<String>,
    /// `automated` (a check or action runs it) or `manual` (a person does).
    #[serde(default)]
    pub automation: Automated,
    /// For a manual step: the configuration keys that would automate it
    /// (named by whoever built the runbook, see [`Plan::automatable_by`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub automatable_by: Vec<String>,
}

/// Whether a person or the tool does a step, as a plan's reader counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Automated {
    /// A check or an action runs it.
    Automated,
    /// A person does it and confirms.
    #[default]
    Manual,
}

/// The plan of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Schema version of this JSON.
    pub schema_version: u32,
    /// The runbook.
    pub runbook: RunbookOutline,
    /// One entry per step, in runbook order.
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// The plan for `runbook` under `options` (selection checked as `run`
    /// would check it).
    pub fn new(runbook: &Runbook, options: &RunOptions) -> Result<Self, RunError> {
        Executor::validate_selection(runbook, options)?;
        let steps = runbook
            .steps()
            .map(|(phase, step)| {
                let selected = (options.phases.is_empty() || options.phases.contains(&phase.id))
                    && (options.only.is_empty() || options.only.contains(&step.id));
                let rollback = if phase.kind == PhaseKind::Rollback {
                    " (only if a rollback is triggered)"
                } else {
                    ""
                };
                let wait = step.policy.approval.as_ref().map(|a| {
                    a.describe_wait(&runbook.metadata().may_approve(&a.role, &options.operator))
                });
                let (kind, real_run, dry_run) = match (&step.kind, &wait) {
                    (StepKind::Manual { .. }, Some(wait)) => (
                        "manual",
                        format!("waits for {wait}{rollback}"),
                        format!("described: would wait for {wait}"),
                    ),
                    (StepKind::Manual { .. }, None) => (
                        "manual",
                        format!("asks the operator to confirm{rollback}"),
                        "described, nobody is asked".to_owned(),
                    ),
                    (StepKind::Check(check), _) => {
                        let d = check.describe();
                        let ask = match (&wait, step.policy.confirm_first) {
                            (Some(wait), _) => format!("waits for {wait}, then "),
                            (None, true) => "asks the operator, then ".to_owned(),
                            (None, false) => String::new(),
                        };
                        if d.mutates {
                            (
                                "action",
                                format!("{ask}{}{rollback}", d.action_text()),
                                format!("not run; would {}", d.action_text()),
                            )
                        } else {
                            (
                                "check",
                                format!("{ask}checks that {}{rollback}", d.verifies),
                                format!("runs (read-only): checks that {}", d.verifies),
                            )
                        }
                    }
                };
                PlannedStep {
                    automation: if kind == "manual" {
                        Automated::Manual
                    } else {
                        Automated::Automated
                    },
                    automatable_by: Vec::new(),
                    phase: phase.id.clone(),
                    step: step.id.clone(),
                    kind: kind.into(),
                    selected,
                    real_run,
                    dry_run,
                    on_rollback: step
                        .undo
                        .as_ref()
                        .map(|u| format!("undone first: {}", u.describe().action_text())),
                }
            })
            .collect();
        Ok(Plan {
            schema_version: SCHEMA_VERSION,
            runbook: RunbookOutline::of(runbook),
            steps,
        })
    }

    /// Names, for each manual step, the configuration keys that would
    /// automate it: the runbook's builder knows them, the plan does not.
    pub fn automatable_by<K: Into<String>>(mut self, keys: impl Fn(&str) -> Vec<K>) -> Self {
        for step in &mut self.steps {
            if step.automation == Automated::Manual {
                step.automatable_by = keys(&step.step).into_iter().map(Into::into).collect();
            }
        }
        self
    }

    /// How many steps are automated, and how many manual.
    pub fn counts(&self) -> (usize, usize) {
        let automated = self
            .steps
            .iter()
            .filter(|s| s.automation == Automated::Automated)
            .count();
        (automated, self.steps.len() - automated)
    }
}
