//! A manual step, or an automated one approved first: the confirmer is
//! asked, within the step's deadline, and the answer recorded.

use tokio_util::sync::CancellationToken;

use super::error::RunError;
use super::run::Run;
use super::step::with_deadline;
use crate::confirm::{ConfirmRequest, Confirmation, Decision, Via};
use crate::event::Event;
use crate::model::{Phase, Step};
use crate::outcome::{Outcome, SkipReason, format_duration};

impl Run {
    pub(super) async fn confirm(
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
                    .map(|d| format!("no answer within {}", format_duration(d))),
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
}
