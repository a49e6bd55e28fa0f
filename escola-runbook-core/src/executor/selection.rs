//! Which phases and steps a run runs (`RunOptions::phases`, `only`), and
//! the check that a selection names what the runbook has.

use std::collections::BTreeSet;

use super::error::RunError;
use super::options::RunOptions;
use crate::model::{Phase, Runbook, Step};

/// Checks `options`' phases and steps against `runbook`.
pub(super) fn validate(runbook: &Runbook, options: &RunOptions) -> Result<(), RunError> {
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

pub(super) struct Selection {
    pub(super) phases: BTreeSet<String>,
    pub(super) only: BTreeSet<String>,
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
    pub(super) fn contains(&self, phase: &Phase, step: &Step) -> bool {
        (self.phases.is_empty() || self.phases.contains(&phase.id))
            && (self.only.is_empty() || self.only.contains(&step.id))
    }

    pub(super) fn names_explicitly(&self, phase: &Phase) -> bool {
        self.phases.contains(&phase.id) || phase.steps.iter().any(|s| self.only.contains(&s.id))
    }
}
