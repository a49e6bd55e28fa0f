//! The serde model of a runbook file. Every table denies unknown keys, so a
//! typo is an error with a suggestion rather than a setting silently ignored.

use std::collections::BTreeMap;

use crate::formats::rules_file::RulesFile;
use crate::{Decision, OnDeadline, PhaseKind, When, duration};
use serde::{Deserialize, Serialize};

/// A check's parameters as a file holds them: TOML values as written
/// (arrays stay arrays, numbers numbers), as the JSON object the catalog
/// reads.
pub type ParamMap = serde_json::Map<String, serde_json::Value>;

/// The file format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

fn format_version() -> u32 {
    FORMAT_VERSION
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A whole runbook file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookFile {
    /// File format version ([`FORMAT_VERSION`]); a newer one is refused.
    #[serde(default = "format_version")]
    pub format: u32,
    /// The runbook's name (the document's title).
    pub name: String,
    /// Who to call, where to announce, what the words mean.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: MetadataFile,
    /// Where the run points: URLs and the names of the environment variables
    /// holding secrets (never the secrets).
    #[serde(default, skip_serializing_if = "is_default")]
    pub environment: EnvironmentFile,
    /// Rollback settings. Kept and written back, not evaluated yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackFile>,
    /// Phases in order.
    #[serde(default)]
    pub phases: Vec<PhaseFile>,
}

/// A contact, as written in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactFile {
    /// Their role ("Dev on-call").
    pub role: String,
    /// How to reach them ("@dev-escola").
    pub handle: String,
}

/// `[metadata]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataFile {
    /// Version of the runbook document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Chat channels the deploy is announced in ("#operacoes").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Who to call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactFile>,
    /// Terms and their meaning.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub glossary: BTreeMap<String, String>,
    /// Who may approve steps that require an approval, with their roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<ApproverFile>,
}

/// `[[metadata.approvers]]`: a person who may approve, and their roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverFile {
    /// Their name, as they give it to `approve --as`.
    pub name: String,
    /// The roles they hold.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `approval = { role = "dba", deadline = "30m", on_deadline = "reject" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFile {
    /// The role an approver must hold.
    pub role: String,
    /// How long to wait for a decision (no limit when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DurationText>,
    /// `approve`, `reject` (default) or `abort`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_deadline: OnDeadline,
}

/// `[environment]`: names, URLs, and the *names* of environment variables
/// holding secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentFile {
    /// Environment name ("production").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Base URL of the API under deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// URL of the Prometheus `/metrics` endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
    /// Name of the environment variable holding the metrics Bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token_env: Option<String>,
    /// Name of the environment variable holding the database URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url_env: Option<String>,
    /// Further settings handed to checks through the run's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

/// `[[phases]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFile {
    /// Stable slug.
    pub id: String,
    /// Heading.
    pub title: String,
    /// `normal` (default), `watch` or `rollback`.
    #[serde(default = "normal", skip_serializing_if = "is_normal")]
    pub kind: PhaseKind,
    /// A blocking failure here runs the rollback phase.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rollback_on_failure: bool,
    /// Concurrency limit for parallel groups (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<usize>,
    /// Remarks shown under the heading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Steps in order.
    #[serde(default)]
    pub steps: Vec<StepFile>,
}

fn normal() -> PhaseKind {
    PhaseKind::Normal
}

fn is_normal(kind: &PhaseKind) -> bool {
    *kind == PhaseKind::Normal
}

/// `[[phases.steps]]`: a manual step, a `command`, or a built-in `check`
/// with `params`, plus its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// Stable slug, unique in the runbook.
    pub id: String,
    /// The runbook's own wording.
    pub title: String,
    /// Sub-heading inside the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// A built-in check by name (`escola-runbook check --list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The check's parameters, typed as its parameter struct declares
    /// them (text where a number is expected is read as one; a single value
    /// where a list is expected is a list of one).
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub params: ParamMap,
    /// Shorthand for `check = "command"` with `params.shell`: a line (or
    /// script) for `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Working directory of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// For manual steps: what to do beyond the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What undoes this step if a rollback follows it (compensation):
    /// `undo = { command = "php artisan up" }` or a `check` with `params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoFile>,
    /// A failing blocking step stops the run (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub blocking: bool,
    /// Cancel an attempt after this long ("30s", "10m").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Extra attempts after a retryable status.
    #[serde(default, skip_serializing_if = "is_default")]
    pub retries: u32,
    /// Delay between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffFile>,
    /// Consecutive steps with the same group run concurrently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_group: Option<String>,
    /// `always` (default), `on_rollback` or `not_on_rollback`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub when: When,
    /// For manual steps: how long to wait for an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_deadline: Option<DurationText>,
    /// The decision taken at the deadline (`declined` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_default: Option<Decision>,
    /// For automated steps: ask the operator before running it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_first: bool,
    /// An approval by an approver holding a role, before the step runs (a
    /// manual step: the approval is the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalFile>,
    /// A watch step: alert rules in the rules-file syntax (`escola-runbook
    /// watch --rules`), inline or by `rules_file`, evaluated as the
    /// built-in alerts are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<RulesFile>,
}

impl StepFile {
    /// A manual step with default policy.
    pub fn manual(id: impl Into<String>, title: impl Into<String>) -> Self {
        StepFile {
            id: id.into(),
            title: title.into(),
            section: None,
            check: None,
            params: ParamMap::new(),
            command: None,
            cwd: None,
            instructions: None,
            notes: Vec::new(),
            undo: None,
            blocking: true,
            timeout: None,
            retries: 0,
            backoff: None,
            parallel_group: None,
            when: When::Always,
            confirm_deadline: None,
            confirm_default: None,
            confirm_first: false,
            approval: None,
            watch: None,
        }
    }
}

/// `undo = { command = "..." }`: what compensates a step on rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoFile {
    /// A built-in check by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Its parameters.
    #[serde(default, skip_serializing_if = "ParamMap::is_empty")]
    pub params: ParamMap,
    /// Shorthand for `check = "command"` with `params.shell`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Working directory of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// `backoff = { initial = "1s", factor = 2.0, max = "1m" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffFile {
    /// Delay before the first retry.
    pub initial: DurationText,
    /// Growth per retry (1.0: constant).
    #[serde(default = "two")]
    pub factor: f64,
    /// Upper bound on any delay.
    pub max: DurationText,
}

fn two() -> f64 {
    2.0
}

/// `[rollback]`: when a rollback starts and who must approve it. Kept and
/// written back, not evaluated yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackFile {
    /// Rules firing within this window after the deploy trigger the rollback
    /// phase; later they only alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DurationText>,
    /// Watch rule names that trigger a rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// Steps that need an explicit approval (e.g. restoring the snapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_approval: Vec<String>,
    /// Channels told about a rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

/// A duration written as text (`500ms`, `30s`, `5m`, `2h`, `1d`) or as a
/// whole number of seconds, within the standard range; written back exactly.
pub type DurationText = duration::Span;
