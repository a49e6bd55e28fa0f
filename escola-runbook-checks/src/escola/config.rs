//! The built-in runbook's configuration: where the application lives, which
//! parts of the runbook are automated and with what, and the team's names
//! for its secrets and approver roles. Plain data with its defaults; turning
//! it into steps is the parent module's job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CatalogError, CheckConfig, ParamsError};
use escola_runbook_core::{Approver, Check, ModelError, WatchError};
use serde::{Deserialize, Serialize};

use crate::cache_purge::CachePurgeParams;
use crate::metrics::Window;
use crate::metrics::checks::params as metrics_params;
use crate::metrics::checks::{
    BaselineParams, CompareParams, DEFAULT_COUNTER, DEFAULT_HISTOGRAM, EndpointParams, SourceConfig,
};
use crate::smoke::SmokeCheck;

use super::data;

/// The runbook's name, as the document's title.
pub const RUNBOOK_NAME: &str = "Escola Connect API — Runbook de Deploy";

/// The secret name the CLI looks for to enable webhook notices.
pub const WEBHOOK_SECRET: &str = "webhook_url";

/// The secret name the CLI looks for to automate the database steps
/// (`mysql://USER:PASSWORD@HOST:PORT/DB`).
pub const DATABASE_SECRET: &str = crate::db::DEFAULT_SECRET;

/// The secret the CLI looks for to turn the metrics steps into checks.
pub const METRICS_TOKEN_SECRET: &str = crate::metrics::checks::DEFAULT_TOKEN_SECRET;

/// Where the application lives and how long its commands may take.
///
/// Serializes to the canonical form a run records and hashes as its
/// source ([`escola_runbook_core::RunbookOrigin::Builtin`]), so a resume
/// can tell that the same configuration shaped the runbook. It holds the
/// *names* of secrets, never their values.
#[derive(Debug, Clone, Serialize)]
pub struct EscolaConfig {
    /// The application checkout on the deploy host, where `php artisan` and
    /// the scripts run.
    pub app_dir: PathBuf,
    /// Limit for ordinary commands (maintenance mode, cache scripts).
    pub command_timeout: Duration,
    /// Environment variables the runbook's commands get on top of the
    /// run's own (`PATH` with a host's programs first).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub command_env: BTreeMap<String, String>,
    /// Limit for migrations, composer and phpunit.
    pub long_command_timeout: Duration,
    /// A checkout of the version being deployed (the CI workspace), where
    /// the readiness checks (coverage, docs, changelog) look. Unset: the
    /// app directory, which before the deploy's `git pull` still holds
    /// the previous release, so set this when the pre-deploy phase runs on
    /// the deploy host.
    pub release_dir: Option<PathBuf>,
    /// "cobertura ≥ 85%": adds a `coverage` check after `ci-green`.
    pub coverage: Option<CoverageConfig>,
    /// "CI ok": makes `ci-green` an `http-json` check of the CI status API.
    pub ci_status: Option<CiStatusConfig>,
    /// Makes `docs-updated` a `docs-freshness` check of the app's git repo.
    pub docs: Option<DocsConfig>,
    /// Makes `changelog-version` a `changelog` check of the planned version.
    pub changelog: Option<ChangelogConfig>,
    /// Makes `cdn-purge` a `cache-purge` action.
    pub cdn_purge: Option<CachePurgeConfig>,
    /// Makes `app-log-errors` a `log-scan` check (and, by default, adds a
    /// `deploy-started` step that records when the deploy began).
    pub app_log: Option<AppLogConfig>,
    /// Name of the secret holding a Slack-compatible webhook URL: when set,
    /// the status and rollback notices are posted instead of confirmed.
    pub webhook_secret: Option<String>,
    /// How the `smoke-tests` step runs.
    pub smoke: SmokeTests,
    /// Makes `metrics-baseline` and `metrics-endpoint` checks of the app's
    /// `/metrics` (the URL from the environment setting `metrics_url`, else
    /// `<base_url>/metrics`; the token from a secret).
    pub metrics: Option<MetricsConfig>,
    /// How the runbook's alerts are watched once `metrics` is set.
    pub watch: WatchConfig,
    /// Where the pre-deploy database snapshot is written (a 0700 directory
    /// per snapshot, on storage the team considers safe).
    pub snapshot_dir: PathBuf,
    /// age recipients (public keys `age1...`) the snapshot is encrypted
    /// to; none: not encrypted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshot_encrypt_to: Vec<String>,
    /// Prove the snapshot with a restore test into a scratch database on
    /// the same server (the step fails on a mismatch).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot_restore_test: bool,
    /// The age identity file the restore test decrypts an encrypted
    /// snapshot with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_identity_file: Option<PathBuf>,
    /// Copy the snapshot to `s3://BUCKET/PREFIX` once taken (and proven);
    /// credentials from the `AWS_*` variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_copy_to: Option<String>,
    /// Adds the `snapshot-fresh` check: the newest snapshot under
    /// `snapshot_dir` that passed its restore test is at most this old.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_max_age: Option<Duration>,
    /// Name of the secret holding `mysql://USER:PASSWORD@HOST:PORT/DB`: when
    /// set, the snapshot and the migrations/tables check run as checks;
    /// otherwise they stay manual steps.
    pub database_secret: Option<String>,
    /// Doctrine migration that must be applied after `migrations`
    /// (`Version20250101120000`); `None` checks only that some are applied.
    pub expected_migration: Option<String>,
    /// Who may approve steps, with their roles ([`APPROVER_ROLES`]): with
    /// an approver holding [`DBA_ROLE`], `restore-snapshot` ("com aval de
    /// DBA") waits for that approver's decision instead of the operator's
    /// confirmation.
    pub approvers: Vec<Approver>,
}

/// The environment settings that name approvers: `approver.carla = dba`.
pub const APPROVER_SETTING: &str = "approver.";

/// The role that approves restoring the database snapshot.
pub const DBA_ROLE: &str = "dba";

/// The roles an approver may hold in the built-in runbook: the DBA, and
/// the roles of its contact list.
pub const APPROVER_ROLES: [&str; 4] = [DBA_ROLE, "dev-on-call", "sre-infra", "produto-operacoes"];

/// The extended monitoring's alert watch: how often, how long, and the
/// rollback window ("alertas dispararem continuamente em ≤15 min").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WatchConfig {
    /// Time between evaluations.
    pub interval: Duration,
    /// How long to watch (the runbook says 30 min to 24 h).
    pub duration: Duration,
    /// A firing alert inside this window rolls back; after it, it only alerts.
    pub rollback_window: Duration,
    /// The alerts' `for` ("por 5 minutos").
    pub alert_for: Duration,
    /// The window the latency and 5xx probes measure over (5 minutes).
    pub probe_window: Duration,
    /// Watch for the whole duration in a dry-run too (a time-compressed
    /// demo); by default a dry-run evaluates each alert once.
    pub watch_in_dry_run: bool,
    /// The most pending `sync_mutations` rows the team accepts: with the
    /// database configured, `panel-sync-backlog` watches the backlog query
    /// ([`BACKLOG_SQL`]) against it; unset, the panel stays a manual step
    /// (and the configuration's canonical form, which runs hash, is as
    /// before the key existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog_limit: Option<u64>,
}

/// The literal both constants below are made of, written once.
macro_rules! pending_where {
    () => {
        "status = 'pending'"
    };
}

/// The rows of `sync_mutations` the runbook's backlog panel counts as
/// pending (the dashboard's default too).
pub const PENDING_WHERE: &str = pending_where!();

/// The backlog query `panel-sync-backlog` watches.
pub const BACKLOG_SQL: &str = concat!(
    "SELECT COUNT(*) FROM sync_mutations WHERE ",
    pending_where!()
);

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            interval: Duration::from_secs(15),
            duration: Duration::from_secs(24 * 3600),
            rollback_window: Duration::from_secs(15 * 60),
            alert_for: Duration::from_secs(5 * 60),
            probe_window: Duration::from_secs(5 * 60),
            watch_in_dry_run: false,
            backlog_limit: None,
        }
    }
}

/// How the post-deploy `smoke-tests` step runs: one of these, never both.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmokeTests {
    /// The native smoke suite against the environment's `base_url` setting
    /// (`--set base_url=https://api.example.org`): by default
    /// [`SmokeCheck::escola`] (health, `/v1/cidades`, `/v1/escolas`,
    /// `Trace-Id` on errors, the `If-Match` round trip with its two refused
    /// writes). It changes no data, so it runs in dry-run too.
    #[serde(serialize_with = "smoke_check_settings")]
    Native(Box<SmokeCheck>),
    /// The team's `./scripts/smoke.sh` in the application directory, as the
    /// runbook names it: a read-only command step, exit 0 meaning passed.
    Script,
    /// A person runs them and confirms: for a runbook built with no target
    /// URL to test (the CLI without `--set base_url=`).
    Manual,
}

/// A smoke check in the configuration's canonical form: the parameters that
/// rebuild it, or its whole suite for one built in code.
fn smoke_check_settings<C, S>(check: &C, serializer: S) -> Result<S::Ok, S::Error>
where
    C: std::ops::Deref<Target = SmokeCheck>,
    S: serde::Serializer,
{
    match check.params() {
        Some(params) => params.serialize(serializer),
        None => check.suite().serialize(serializer),
    }
}

impl Default for SmokeTests {
    fn default() -> Self {
        SmokeTests::Native(Box::new(SmokeCheck::escola()))
    }
}

/// The app's `/metrics` as the runbook's metrics steps read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The metrics URL; unset: the environment's `metrics_url`, else
    /// `<base_url>/metrics`, read when the step runs.
    #[serde(default)]
    pub url: Option<String>,
    /// Secret holding the Bearer token (default `metrics_token`).
    #[serde(default = "default_metrics_token")]
    pub token_secret: String,
    /// Baseline window: `cumulative` (one scrape, since the process
    /// started; the default) or a duration such as `1m` (two scrapes).
    #[serde(default = "metrics_params::cumulative")]
    pub baseline_window: Window,
    /// Fewer requests than this in the window: the baseline is `no_data`.
    #[serde(default = "metrics_params::baseline_min_requests")]
    pub baseline_min_requests: f64,
    /// The window after the deploy the before/after latency judge reads
    /// (`panel-latency`): a duration such as `5m` (two scrapes that far
    /// apart), or `cumulative` when the new release's process started with
    /// the deploy.
    #[serde(default = "default_judge_window")]
    pub judge_window: Window,
}

fn default_judge_window() -> Window {
    CompareParams::new(SourceConfig::scrape()).window
}

fn default_metrics_token() -> String {
    crate::metrics::checks::DEFAULT_TOKEN_SECRET.into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            url: None,
            token_secret: default_metrics_token(),
            baseline_window: metrics_params::cumulative(),
            baseline_min_requests: metrics_params::baseline_min_requests(),
            judge_window: default_judge_window(),
        }
    }
}

/// The metrics steps' checks.
pub(super) struct MetricsChecks {
    pub(super) baseline: Arc<dyn Check>,
    pub(super) endpoint: Arc<dyn Check>,
    pub(super) judge: Arc<dyn Check>,
}

impl MetricsConfig {
    pub(super) fn source(&self) -> SourceConfig {
        let source = SourceConfig::scrape().token_secret(&self.token_secret);
        match &self.url {
            Some(url) => source.url(url),
            None => source,
        }
    }

    /// The checks, built from their parameter structs: the baseline, the
    /// endpoint, and the before/after judge of the latency.
    pub(super) fn checks(&self) -> Result<MetricsChecks, ParamsError> {
        let baseline = BaselineParams {
            window: self.baseline_window,
            min_requests: self.baseline_min_requests,
            ..BaselineParams::new(self.source())
        }
        .build()?;
        let endpoint = EndpointParams {
            source: self.source(),
            require: owned(&[DEFAULT_HISTOGRAM, DEFAULT_COUNTER]),
            reject_anonymous: false,
        }
        .build()?;
        let judge = CompareParams {
            window: self.judge_window,
            ..CompareParams::new(self.source())
        }
        .build()?;
        Ok(MetricsChecks {
            baseline,
            endpoint,
            judge,
        })
    }
}

impl Default for EscolaConfig {
    fn default() -> Self {
        EscolaConfig {
            app_dir: PathBuf::from("."),
            command_timeout: Duration::from_secs(120),
            command_env: BTreeMap::new(),
            long_command_timeout: Duration::from_secs(1800),
            release_dir: None,
            coverage: None,
            ci_status: None,
            docs: None,
            changelog: None,
            cdn_purge: None,
            app_log: None,
            webhook_secret: None,
            smoke: SmokeTests::default(),
            metrics: None,
            watch: WatchConfig::default(),
            snapshot_dir: PathBuf::from("snapshots"),
            snapshot_encrypt_to: Vec::new(),
            snapshot_restore_test: false,
            snapshot_identity_file: None,
            snapshot_copy_to: None,
            snapshot_max_age: None,
            database_secret: None,
            expected_migration: None,
            approvers: Vec::new(),
        }
    }
}

/// The coverage report and its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageConfig {
    /// Clover (`phpunit --coverage-clover`) or Cobertura XML; relative to
    /// the app directory.
    pub report: PathBuf,
    /// Minimum line coverage in percent (the runbook says 85).
    #[serde(default = "default_min")]
    pub min: f64,
    /// Refuse a report older than this (`2h`, `1d`); unset: any age.
    #[serde(default)]
    pub max_age: Option<String>,
}

fn default_min() -> f64 {
    85.0
}

/// A CI status API and the condition that means "green".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiStatusConfig {
    /// The status URL of the commit being deployed; `{commit}` takes the
    /// environment setting `commit` (e.g. GitHub's
    /// `/repos/OWNER/REPO/commits/SHA/status`).
    pub url: String,
    /// JSON pointer or dotted path of the status (default `/state`).
    #[serde(default = "default_ci_path")]
    pub path: String,
    /// `equals`, `in`, `below`, `above` (default `equals`).
    #[serde(default = "default_ci_op")]
    pub op: String,
    /// Expected value (default `success`).
    #[serde(default = "default_ci_value")]
    pub value: String,
    /// Secret sent as a Bearer token.
    #[serde(default)]
    pub token_secret: Option<String>,
}

fn default_ci_path() -> String {
    "/state".into()
}
fn default_ci_op() -> String {
    "equals".into()
}
fn default_ci_value() -> String {
    "success".into()
}

impl CiStatusConfig {
    /// `url` with the defaults: `/state` equals `success`.
    pub fn new(url: impl Into<String>) -> Self {
        CiStatusConfig {
            url: url.into(),
            path: default_ci_path(),
            op: default_ci_op(),
            value: default_ci_value(),
            token_secret: None,
        }
    }
}

/// The documents that must have changed, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsConfig {
    /// Paths relative to the repository root (default: the three the
    /// runbook names).
    #[serde(default = "default_docs")]
    pub files: Vec<String>,
    /// `last-tag`, a duration (`30d`) or `ref:TAG` (default `last-tag`).
    #[serde(default = "default_since")]
    pub since: String,
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn default_docs() -> Vec<String> {
    crate::docs_freshness::default_files()
}
fn default_since() -> String {
    "last-tag".into()
}

impl Default for DocsConfig {
    fn default() -> Self {
        DocsConfig {
            files: default_docs(),
            since: default_since(),
        }
    }
}

/// The planned version and the changelog that must announce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangelogConfig {
    /// The planned semver version.
    pub version: String,
    /// The changelog, relative to the app directory (default `CHANGELOG.md`).
    #[serde(default = "default_changelog")]
    pub file: PathBuf,
}

fn default_changelog() -> PathBuf {
    PathBuf::from("CHANGELOG.md")
}

impl ChangelogConfig {
    /// `version`, announced in `CHANGELOG.md`.
    pub fn new(version: impl Into<String>) -> Self {
        ChangelogConfig {
            version: version.into(),
            file: default_changelog(),
        }
    }
}

/// The HTTP cache or CDN and how to purge it: the `cache-purge` check's
/// parameters, and whether a failed purge stops the deploy. Unknown keys
/// are refused by the flattened parameters (serde refuses every flattened
/// key when this struct denies unknown fields itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachePurgeConfig {
    /// The purge: endpoint, paths (default `/v1/cidades`, `/v1/escolas`),
    /// method (default `PURGE`), Host header, accepted statuses (default
    /// `200-299`), Bearer token secret, timeout.
    #[serde(flatten)]
    pub purge: CachePurgeParams,
    /// A failed purge stops the deploy (and so starts the rollback).
    /// Default false: a stale cache is reported, not worth a rollback.
    #[serde(default)]
    pub blocking: bool,
}

/// Reads the check's parameters with the team's paths
/// ([`data::CDN_PATHS`]) where none are given: the `cache-purge` check
/// itself requires them.
impl<'de> Deserialize<'de> for CachePurgeConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Given {
            #[serde(flatten)]
            purge: CachePurgeParams,
            #[serde(default)]
            blocking: bool,
        }
        let mut given = serde_json::Value::deserialize(d)?;
        if let Some(map) = given.as_object_mut() {
            map.entry("paths")
                .or_insert_with(|| serde_json::json!(data::CDN_PATHS));
        }
        let Given { purge, blocking } =
            Given::deserialize(given).map_err(serde::de::Error::custom)?;
        Ok(CachePurgeConfig { purge, blocking })
    }
}

impl CachePurgeConfig {
    /// PURGE of the runbook's two paths at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        CachePurgeConfig {
            purge: CachePurgeParams::new(base_url, data::CDN_PATHS),
            blocking: false,
        }
    }
}

/// The application log and what it may contain after the deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppLogConfig {
    /// The log, relative to the app directory (default `var/logs/app.log`).
    #[serde(default = "default_log")]
    pub file: PathBuf,
    /// Window start; unset means "when the deploy phase began" (recorded
    /// by the `deploy-started` step). Otherwise an RFC 3339 time or a
    /// duration back from now (`30m`).
    #[serde(default)]
    pub since: Option<String>,
    /// Error lines tolerated (default 0).
    #[serde(default)]
    pub max_errors: u64,
    /// Lowest level counted (default `error`).
    #[serde(default = "default_level")]
    pub level: String,
    /// UTC offset of timestamps written without one (e.g. `-03:00`);
    /// unset: UTC.
    #[serde(default)]
    pub offset: Option<String>,
    /// Errors in the log fail the post-deploy phase (and so start the
    /// rollback). Default false: the runbook's rollback criteria are smoke
    /// tests and alerts; log errors are reported for a person to judge.
    #[serde(default)]
    pub blocking: bool,
}

fn default_log() -> PathBuf {
    PathBuf::from("var/logs/app.log")
}
fn default_level() -> String {
    "error".into()
}

impl Default for AppLogConfig {
    fn default() -> Self {
        AppLogConfig {
            file: default_log(),
            since: None,
            max_errors: 0,
            level: default_level(),
            offset: None,
            blocking: false,
        }
    }
}

/// The runbook could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscolaError {
    /// The model is inconsistent.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A configured check has a bad parameter.
    #[error("runbook configuration: {0}")]
    Config(#[from] CatalogError),
    /// An alert watch could never fire as configured.
    #[error("runbook configuration, alert watch: {0}")]
    Watch(#[from] WatchError),
    /// An approver holds a role the runbook does not offer.
    #[error(
        "runbook configuration: approver `{name}` holds role `{role}`, which the runbook does not offer; its roles are: {}",
        APPROVER_ROLES.join(", ")
    )]
    UnknownRole {
        /// The approver.
        name: String,
        /// The role given.
        role: String,
    },
}

impl From<ParamsError> for EscolaError {
    fn from(e: ParamsError) -> Self {
        EscolaError::Config(e.into())
    }
}
