//! One phase: its steps in order, parallel groups with their limit and
//! fail-fast, the first blocking failure, and the phase's status.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::error::RunError;
use super::run::{Run, Stop, not_reached};
use crate::event::{Event, RollbackReason};
use crate::model::Phase;
use crate::outcome::{Outcome, Status};

/// How a phase ended.
pub(super) struct PhaseResult {
    pub(super) failure: Option<RollbackReason>,
}

impl Run {
    /// Records every step of a phase the run never reached.
    pub(super) fn finish_unreached(
        &self,
        phase: &Phase,
        outcome: &Outcome,
    ) -> Result<(), RunError> {
        for step in &phase.steps {
            self.finish(phase, step, outcome.clone(), 0, Duration::ZERO)?;
        }
        self.publish(Event::PhaseFinished {
            phase: phase.id.clone(),
            status: outcome.status,
            at: self.clock.now(),
        })
    }

    pub(super) async fn run_phase(
        &self,
        phase: &Phase,
        rolling_back: bool,
    ) -> Result<PhaseResult, RunError> {
        self.run_phase_with(phase, rolling_back, false).await
    }

    /// Runs one phase. `select_all` overrides the selection (a triggered
    /// rollback runs whole, whatever `--only` said).
    pub(super) async fn run_phase_with(
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
