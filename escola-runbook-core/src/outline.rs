//! The runbook's shape as a run records it at its start: plain data, so
//! reports and resume never need the code (the checks) that built it.

use serde::{Deserialize, Serialize};

use crate::approval::ApprovalPolicy;
use crate::check::Description;
use crate::model::{Metadata, PhaseKind, Runbook, StepKind, When};

/// The runbook's shape as recorded at the start of a run, so reports and
/// resume never need the code that built it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookOutline {
    /// Runbook name.
    pub name: String,
    /// Contacts, glossary, version.
    #[serde(default)]
    pub metadata: Metadata,
    /// Phases in order.
    pub phases: Vec<PhaseOutline>,
}

/// A phase in a [`RunbookOutline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseOutline {
    /// Phase id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Kind.
    pub kind: PhaseKind,
    /// Whether a blocking failure here triggers rollback.
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// Remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Steps in order.
    pub steps: Vec<StepOutline>,
}

/// How a step is carried out, in a [`StepOutline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Automation {
    /// A person acts and confirms.
    Manual {
        /// Instructions, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instructions: Option<String>,
    },
    /// A check or action.
    Check {
        /// Its self-description.
        description: Description,
    },
}

/// A step in a [`RunbookOutline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutline {
    /// Step id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Sub-heading inside the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Manual or automated.
    pub automation: Automation,
    /// Whether a failure stops the run.
    pub blocking: bool,
    /// When the step applies.
    #[serde(default)]
    pub when: When,
    /// Remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What undoes it on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Description>,
    /// An automated step the operator approves before it runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_first: bool,
    /// The approval it requires, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPolicy>,
}

impl RunbookOutline {
    /// The width of a column of step ids that lines up every step of this
    /// runbook: its longest id (imported ids come from whole checklist
    /// lines), and never less than 24.
    pub fn id_column(&self) -> usize {
        self.phases
            .iter()
            .flat_map(|p| &p.steps)
            .map(|s| s.id.chars().count())
            .max()
            .unwrap_or(0)
            .max(24)
    }

    /// The outline of `runbook`.
    pub fn of(runbook: &Runbook) -> Self {
        RunbookOutline {
            name: runbook.name().to_owned(),
            metadata: runbook.metadata().clone(),
            phases: runbook
                .phases()
                .iter()
                .map(|p| PhaseOutline {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    kind: p.kind,
                    rollback_on_failure: p.rollback_on_failure,
                    notes: p.notes.clone(),
                    steps: p
                        .steps
                        .iter()
                        .map(|s| StepOutline {
                            id: s.id.clone(),
                            title: s.title.clone(),
                            section: s.section.clone(),
                            automation: match &s.kind {
                                StepKind::Manual { instructions } => Automation::Manual {
                                    instructions: instructions.clone(),
                                },
                                StepKind::Check(c) => Automation::Check {
                                    description: c.describe(),
                                },
                            },
                            blocking: s.policy.blocking,
                            when: s.policy.when,
                            notes: s.notes.clone(),
                            undo: s.undo.as_ref().map(|u| u.describe()),
                            confirm_first: s.policy.confirm_first,
                            approval: s.policy.approval.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
