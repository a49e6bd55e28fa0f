//! Manual steps: a person acts and confirms. The [`Confirmer`] is how the
//! executor asks; the CLI prompts, CI passes `--yes`, tests script answers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The operator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Done; the step passes.
    Confirmed,
    /// Not done, or not OK; the step fails (and stops the run if blocking).
    Declined,
    /// Deliberately skipped; the run goes on.
    Skipped,
    /// Stop the whole run now (exit code 4).
    Abort,
}

/// How the answer was given, so the record says whether a person saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Typed at an interactive prompt.
    Prompt,
    /// Given in advance for every step (`--yes`).
    Preapproved,
    /// Taken from a script of answers (CI, tests).
    Scripted,
    /// Nobody answered before the deadline; the step's default was taken.
    DeadlineDefault,
}

impl Via {
    /// How the answer was given, as reports and exports word it
    /// (`confirmed by ana (pre-approved, ...)`).
    pub fn describe(self) -> &'static str {
        match self {
            Via::Prompt => "at the prompt",
            Via::Preapproved => "pre-approved",
            Via::Scripted => "by script",
            Via::DeadlineDefault => "by default after the deadline",
        }
    }
}

/// A recorded answer: who, when, how, and an optional comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The answer.
    pub decision: Decision,
    /// Who answered (operator name).
    pub who: String,
    /// When.
    pub at: DateTime<Utc>,
    /// How.
    pub via: Via,
    /// Free text from the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// What the executor asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmRequest {
    /// The run.
    pub run_id: String,
    /// Phase id.
    pub phase: String,
    /// Step id.
    pub step: String,
    /// The step's title (the runbook's words).
    pub title: String,
    /// Extra instructions.
    pub instructions: Option<String>,
    /// How long the executor will wait before taking `default`.
    pub deadline: Option<Duration>,
    /// The decision taken at the deadline.
    pub default: Decision,
    /// The time to stamp on an answer given now.
    pub now: DateTime<Utc>,
}

/// Why no answer could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    /// The prompt's input is closed (no terminal, stdin at end).
    #[error("cannot ask for confirmation of step `{step}`: {reason}")]
    Unavailable {
        /// The step.
        step: String,
        /// What went wrong, in the confirmer's words (which may say how its
        /// tool confirms steps otherwise).
        reason: String,
    },
}

/// Asks a person (or a script) to confirm a manual step.
///
/// The executor applies the deadline itself, so an implementation may wait
/// as long as it likes; it is dropped when the deadline passes.
#[async_trait]
pub trait Confirmer: Send + Sync {
    /// Returns the operator's answer for `request`.
    async fn confirm(&self, request: &ConfirmRequest) -> Result<Confirmation, ConfirmError>;
}

/// Confirms everything on behalf of `operator` (`--yes`). The record says
/// `via: preapproved`, so nobody mistakes it for a person's check.
#[derive(Debug, Clone)]
pub struct PreapprovedConfirmer {
    operator: String,
    comment: Option<String>,
}

impl PreapprovedConfirmer {
    /// Confirms as `operator`.
    pub fn new(operator: impl Into<String>) -> Self {
        PreapprovedConfirmer {
            operator: operator.into(),
            comment: None,
        }
    }

    /// Attaches `comment` to every confirmation.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

#[async_trait]
impl Confirmer for PreapprovedConfirmer {
    async fn confirm(&self, request: &ConfirmRequest) -> Result<Confirmation, ConfirmError> {
        Ok(Confirmation {
            decision: Decision::Confirmed,
            who: self.operator.clone(),
            at: request.now,
            via: Via::Preapproved,
            comment: self.comment.clone(),
        })
    }
}

/// Answers from a script: a decision per step id, and a fallback.
///
/// A step with no scripted answer and no fallback waits forever, which lets a
/// test exercise confirmation deadlines.
#[derive(Debug, Default)]
pub struct ScriptedConfirmer {
    operator: String,
    answers: Mutex<BTreeMap<String, (Decision, Option<String>)>>,
    fallback: Option<Decision>,
}

impl ScriptedConfirmer {
    /// A script answered as `operator`.
    pub fn new(operator: impl Into<String>) -> Self {
        ScriptedConfirmer {
            operator: operator.into(),
            ..Default::default()
        }
    }

    /// Answers `decision` for step `step`.
    pub fn answer(
        self,
        step: impl Into<String>,
        decision: Decision,
        comment: Option<&str>,
    ) -> Self {
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(step.into(), (decision, comment.map(str::to_owned)));
        }
        self
    }

    /// Answers `decision` for every step not scripted.
    pub fn otherwise(mut self, decision: Decision) -> Self {
        self.fallback = Some(decision);
        self
    }
}

#[async_trait]
impl Confirmer for ScriptedConfirmer {
    async fn confirm(&self, request: &ConfirmRequest) -> Result<Confirmation, ConfirmError> {
        let scripted = self
            .answers
            .lock()
            .ok()
            .and_then(|a| a.get(&request.step).cloned());
        let (decision, comment) = match (scripted, self.fallback) {
            (Some(answer), _) => answer,
            (None, Some(fallback)) => (fallback, None),
            (None, None) => std::future::pending().await,
        };
        Ok(Confirmation {
            decision,
            who: self.operator.clone(),
            at: request.now,
            via: Via::Scripted,
            comment,
        })
    }
}
