//! The executor as a step reaches it ([`StepHost`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use futures_util::future::BoxFuture;

use super::approval_wait::Approvals;
use crate::alert::RuleTransition;
use crate::approval::{ApprovalPolicy, ApprovalResult};
use crate::clock::Clock;
use crate::ctx::ApprovalWaitError;
use crate::ctx::{Ctx, StepHost};
use crate::dispatch::Dispatcher;
use crate::event::Event;
use crate::journal_error::JournalWriteError;
use crate::process::ProcessGroup;

/// The run as its steps reach it ([`StepHost`]): its clock, and its
/// dispatcher, which journals and fans out what they record.
pub(super) struct RunHost {
    pub(super) dispatcher: Dispatcher,
    pub(super) clock: Arc<dyn Clock>,
    /// This machine, for the process groups steps start.
    pub(super) machine: String,
    /// Where approvals are waited for.
    pub(super) approvals: Approvals,
}

impl StepHost for RunHost {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn progress(&self, ctx: &Ctx, message: String) {
        self.dispatcher.emit(Event::StepProgress {
            phase: ctx.phase_id().to_owned(),
            step: ctx.step_id().to_owned(),
            message,
        });
    }

    fn record_rule_transition(
        &self,
        ctx: &Ctx,
        transition: RuleTransition,
    ) -> Result<(), JournalWriteError> {
        self.dispatcher
            .publish(Event::RuleTransition {
                phase: ctx.phase_id().to_owned(),
                step: ctx.step_id().to_owned(),
                transition,
            })
            .map(|_| ())
    }

    fn await_approval<'a>(
        &'a self,
        ctx: &'a Ctx,
        policy: &'a ApprovalPolicy,
    ) -> BoxFuture<'a, Result<ApprovalResult, ApprovalWaitError>> {
        Box::pin(async move {
            // A step's approval ends a `--no-wait` run resumable; a check
            // cannot, so it is told before anything is journaled.
            if self.approvals.no_wait {
                return Err(ApprovalWaitError::NoWait);
            }
            self.approvals
                .wait(ctx.phase_id(), ctx.step_id(), policy, ctx.cancellation())
                .await
                .map_err(|e| ApprovalWaitError::Journal(e.to_string()))?
                .ok_or(ApprovalWaitError::Stopped)
        })
    }

    fn record_process_group(&self, ctx: &Ctx, pgid: u32) -> Result<(), JournalWriteError> {
        self.dispatcher
            .publish(Event::ProcessGroupStarted {
                phase: ctx.phase_id().to_owned(),
                step: ctx.step_id().to_owned(),
                attempt: ctx.attempt(),
                group: ProcessGroup {
                    pgid,
                    host: self.machine.clone(),
                },
                at: self.now(),
            })
            .map(|_| ())
    }
}
