//! One step to its outcome: skipped, done before a resume, confirmed, or
//! checked; in a dry-run, previewed; its attempts, each bounded by the
//! step's timeout, retried with backoff, cancelled on a stop.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::approval::{Approval, approval_evidence};
use super::error::RunError;
use super::run::Run;
use crate::check::Check;
use crate::ctx::{CANCEL_GRACE, Ctx};
use crate::event::Event;
use crate::model::{Phase, Step, StepKind, When};
use crate::mutex::lock_unpoisoned as lock;
use crate::outcome::{Evidence, Outcome, SkipReason, Status};

impl Run {
    pub(super) fn finish(
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

    /// Runs one step to its final outcome, publishing as it goes.
    pub(super) async fn run_step(
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
        let mut granted = None;
        if let Some(policy) = &step.policy.approval {
            if self.dry_run {
                self.note_dry_unknown(step);
                let would = match &step.kind {
                    StepKind::Manual { .. } => self.approval_preview(policy),
                    StepKind::Check(check) => format!(
                        "{}, then {}",
                        self.approval_preview(policy),
                        check.describe().action_text()
                    ),
                };
                let outcome = Outcome::skipped(SkipReason::DryRun { would });
                self.finish(phase, step, outcome.clone(), 0, started.elapsed())?;
                return Ok(outcome);
            }
            match self.await_approval(phase, step, policy, stop).await? {
                Approval::Granted(result) => granted = Some(result),
                Approval::Ended(outcome) => {
                    self.finish(phase, step, outcome.clone(), 1, started.elapsed())?;
                    return Ok(outcome);
                }
            }
        }
        let (outcome, attempts) = match (&step.kind, &granted) {
            // The approval is the step.
            (StepKind::Manual { .. }, Some(result)) => (Outcome::passed(result.headline()), 1),
            (StepKind::Manual { instructions }, None) => {
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
            (StepKind::Check(check), _) if step.policy.confirm_first && !self.dry_run => {
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
            (StepKind::Check(check), _) => {
                self.run_check(phase, step, check.as_ref(), stop).await?
            }
        };
        let outcome = match &granted {
            Some(result) => approval_evidence(outcome, result),
            None => outcome,
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

    /// One attempt of `check` for `step`: cancelled on stop, bounded by
    /// `timeout`, a panic turned into a check error.
    pub(super) async fn attempt(
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
            host: self.host.clone(),
            process_group: Arc::default(),
        }
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
pub(super) async fn with_deadline<F: std::future::Future>(
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
