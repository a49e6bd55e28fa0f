//! The Escola Connect API deploy runbook (`Runbook de Deploy`), encoded once
//! for the CLI and the examples. Every item of the team's document is a step
//! with the team's own Portuguese title, in the document's seven sections.
//!
//! Items that later checks automate are manual steps here, with the
//! runbook's instructions; commands the document spells out are command
//! steps run in [`EscolaConfig::app_dir`].
//!
//! The readiness items, the CDN purge and the log check become checks when
//! their part of the configuration is set ([`EscolaConfig::coverage`],
//! [`EscolaConfig::ci_status`], [`EscolaConfig::docs`],
//! [`EscolaConfig::changelog`], [`EscolaConfig::cdn_purge`],
//! [`EscolaConfig::app_log`]); a part left unset keeps the manual step, so the
//! runbook works with no configuration at all.
//!
//! The smoke tests run the native suite
//! ([`data::smoke_suite`]) against the
//! environment's `base_url` setting; [`SmokeTests::Script`] keeps the
//! team's `./scripts/smoke.sh` as the alternative.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CatalogError, CheckConfig, ParamProblem, ParamsError};
use escola_runbook_core::duration::{self, Span};
use escola_runbook_core::formats::runbook_file::RunbookFile;
use escola_runbook_core::rules::{Comparison, Probe, Rule, Window as RuleWindow};
use escola_runbook_core::{
    ApprovalPolicy, Approver, Check, ModelError, Phase, Runbook, Step, Watch, WatchError,
};
use serde::{Deserialize, Serialize};

use crate::cache_purge::CachePurgeParams;
use crate::changelog::ChangelogParams;
use crate::command::CommandCheck;
use crate::coverage::{CoverageParams, Percent};
use crate::db::scalar::SqlScalarProbe;
use crate::db::{
    DEFAULT_STATEMENT_TIMEOUT, DbSnapshotCheck, LossEstimateCheck, MigrationsCheck,
    SnapshotFreshCheck,
};
use crate::docs_freshness::{DocsFreshnessParams, Since};
use crate::http::HttpParams;
use crate::http_json::HttpJsonParams;
use crate::log_scan::{LogScanParams, UtcOffset};
use crate::metrics::Window;
use crate::metrics::checks::params as metrics_params;
use crate::metrics::checks::{
    BaselineParams, CompareParams, DEFAULT_COUNTER, DEFAULT_HISTOGRAM, EndpointParams, SourceConfig,
};
use crate::metrics::compute::StatusMatcher;
use crate::metrics::dashboard::{Dashboard, Panel, Query};
use crate::metrics::probe::{Measure, MetricsProbe};
use crate::notify::Notify;
use crate::smoke::SmokeCheck;

mod automation;
pub mod data;
pub mod project;

/// The runbook's name, as the document's title.
pub const RUNBOOK_NAME: &str = "Escola Connect API — Runbook de Deploy";

/// The secret name the CLI looks for to enable webhook notices.
pub const WEBHOOK_SECRET: &str = "webhook_url";

/// The secret name the CLI looks for to automate the database steps
/// (`mysql://USER:PASSWORD@HOST:PORT/DB`).
pub const DATABASE_SECRET: &str = crate::db::DEFAULT_SECRET;

/// The secret the CLI looks for to turn the metrics steps into checks.
pub const METRICS_TOKEN_SECRET: &str = crate::metrics::checks::DEFAULT_TOKEN_SECRET;

/// Limit for the metrics steps (one or two HTTP requests).
const METRICS_STEP_TIMEOUT: Duration = Duration::from_secs(60);

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
struct MetricsChecks {
    baseline: Arc<dyn Check>,
    endpoint: Arc<dyn Check>,
    judge: Arc<dyn Check>,
}

impl MetricsConfig {
    fn source(&self) -> SourceConfig {
        let source = SourceConfig::scrape().token_secret(&self.token_secret);
        match &self.url {
            Some(url) => source.url(url),
            None => source,
        }
    }

    /// The checks, built from their parameter structs: the baseline, the
    /// endpoint, and the before/after judge of the latency.
    fn checks(&self) -> Result<MetricsChecks, ParamsError> {
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

/// The checks the configuration turns on, built through the catalog so a
/// configuration error reads like a `check --param` error.
struct Automations {
    coverage: Option<(String, Arc<dyn Check>)>,
    ci_status: Option<Arc<dyn Check>>,
    docs: Option<Arc<dyn Check>>,
    changelog: Option<Arc<dyn Check>>,
    cdn_purge: Option<(Arc<dyn Check>, bool)>,
    app_log: Option<(Arc<dyn Check>, bool, bool)>,
}

/// A configured value that does not parse, as the catalog reports one.
fn unusable(check: &str, param: &str, e: impl std::fmt::Display) -> ParamsError {
    ParamsError::check(
        check,
        param,
        ParamProblem::Unusable {
            reason: e.to_string(),
        },
    )
}

impl EscolaConfig {
    fn automations(&self) -> Result<Automations, CatalogError> {
        let app = &self.app_dir;
        let release = self.release_dir.as_ref().unwrap_or(&self.app_dir);
        let coverage = self
            .coverage
            .as_ref()
            .map(|c| {
                let title = format!(
                    "Cobertura de linhas ≥ {}% (`{}`).",
                    c.min,
                    c.report.display()
                );
                let max_age = c
                    .max_age
                    .as_deref()
                    .map(|age| {
                        duration::parse_in(age, duration::Range::LOOK_BACK)
                            .map(Span::from)
                            .map_err(|e| unusable(CoverageParams::NAME, "max_age", e))
                    })
                    .transpose()?;
                CoverageParams {
                    report: release.join(&c.report),
                    min: Percent(c.min),
                    max_age,
                    worst: crate::coverage::DEFAULT_WORST,
                }
                .build()
                .map(|check| (title, check))
            })
            .transpose()?;
        let ci_status = self
            .ci_status
            .as_ref()
            .map(|c| {
                HttpJsonParams {
                    url: c.url.clone(),
                    path: c.path.clone(),
                    op: c.op.clone(),
                    value: c.value.clone(),
                    http: HttpParams {
                        token_secret: c.token_secret.clone(),
                        ..HttpParams::default()
                    },
                }
                .build()
            })
            .transpose()?;
        let docs = self
            .docs
            .as_ref()
            .map(|d| {
                let since = Since::parse(&d.since)
                    .map_err(|e| unusable(DocsFreshnessParams::NAME, "since", e))?;
                DocsFreshnessParams {
                    repo: release.clone(),
                    files: d.files.clone(),
                    since,
                }
                .build()
            })
            .transpose()?;
        let changelog = self
            .changelog
            .as_ref()
            .map(|c| {
                ChangelogParams {
                    file: release.join(&c.file),
                    version: c.version.clone(),
                    repo: release.clone(),
                }
                .build()
            })
            .transpose()?;
        let cdn_purge = self
            .cdn_purge
            .as_ref()
            .map(|c| c.purge.clone().build().map(|check| (check, c.blocking)))
            .transpose()?;
        let app_log = self
            .app_log
            .as_ref()
            .map(|l| {
                let name = LogScanParams::NAME;
                let since = l
                    .since
                    .clone()
                    .unwrap_or_else(|| format!("value:{}", crate::log_scan::DEPLOY_STARTED_AT));
                let level = l.level.parse().map_err(|e| unusable(name, "level", e))?;
                let offset = match &l.offset {
                    Some(o) => o.parse().map_err(|e| unusable(name, "offset", e))?,
                    None => UtcOffset::default(),
                };
                LogScanParams {
                    file: app.join(&l.file),
                    since,
                    max: l.max_errors,
                    level,
                    offset,
                    top: crate::log_scan::DEFAULT_TOP,
                }
                .build()
                .map(|check| (check, l.since.is_none(), l.blocking))
            })
            .transpose()?;
        Ok(Automations {
            coverage,
            ci_status,
            docs,
            changelog,
            cdn_purge,
            app_log,
        })
    }
}

/// A metrics check step (with a timeout) when configured, the manual step
/// otherwise.
fn metrics_step(id: &str, title: &str, check: Option<Arc<dyn Check>>) -> Step {
    match check {
        Some(check) => Step::check_arc(id, title, check).timeout(METRICS_STEP_TIMEOUT),
        None => Step::manual(id, title),
    }
}

/// The parallel group of the watch steps (fail-fast: the first alert to
/// fire inside the rollback window stops the others).
const ALERTS_GROUP: &str = "alerts";

/// The runbook's latency panel.
const LATENCY_PANEL: &str =
    "`Escolas > Latência (P50/P95/P99)` usando histograma `http_request_duration_seconds`.";

/// The latency panel with the metrics configured: the before/after judge
/// reads it — the window after the deploy against the pre-deploy baseline —
/// beside the alerts (their parallel group). Advisory: it tells a release
/// slower than before, which no fixed limit may catch, and leaves the
/// rollback to the limits and to the operator.
fn latency_panel(judge: Arc<dyn Check>, metrics: &MetricsConfig) -> Step {
    let window = match metrics.judge_window {
        Window::Last(d) => d,
        Window::Cumulative => Duration::ZERO,
    };
    Step::check_arc("panel-latency", LATENCY_PANEL, judge)
        .timeout(window + METRICS_STEP_TIMEOUT)
        .advisory()
        .parallel(ALERTS_GROUP)
        .note("Automated: the latency after the deploy against the pre-deploy baseline (metrics-compare, Mann-Whitney), beside the alerts; advisory, the alerts' limits decide a rollback.")
}

/// A check step when `check` is set, the manual step otherwise.
fn automated(id: &str, title: &str, check: Option<Arc<dyn Check>>) -> Step {
    match check {
        Some(check) => Step::check_arc(id, title, check),
        None => Step::manual(id, title),
    }
}

/// The snapshot: native when a database secret is configured, confirmed by a
/// person otherwise.
fn db_snapshot(config: &EscolaConfig) -> Step {
    let (id, title) = (
        "db-snapshot",
        "Snapshot do banco (`mysqldump` + storage seguro).",
    );
    with_database(config, id, title, |secret| {
        let mut check = DbSnapshotCheck::new(&config.snapshot_dir)
            .secret(secret)
            .encrypt_to(config.snapshot_encrypt_to.iter().cloned())
            .restore_test(config.snapshot_restore_test);
        if let Some(file) = &config.snapshot_identity_file {
            check = check.identity_file(file);
        }
        if let Some(to) = &config.snapshot_copy_to {
            check = check.copy_to(to);
        }
        Step::check(id, title, check)
            .note("Snapshot nativo consistente (zstd + sha256 em manifest.json, diretório 0700); restaurável com `escola-runbook snapshot restore` ou `zstd -dc | mariadb`.")
    })
}

/// The step `check` makes from the database secret when one is configured,
/// the manual step `id` otherwise.
fn with_database(
    config: &EscolaConfig,
    id: &str,
    title: &str,
    check: impl FnOnce(&str) -> Step,
) -> Step {
    match &config.database_secret {
        Some(secret) => check(secret),
        None => Step::manual(id, title),
    }
}

/// Migrations and the Escola tables: checked when a database secret is
/// configured, confirmed by a person otherwise.
fn migrations_consistent(config: &EscolaConfig) -> Step {
    let (id, title) = (
        "migrations-consistent",
        "Confirmar que `sync_mutations` e `eventos` estão consistentes.",
    );
    with_database(config, id, title, |secret| {
        let check = MigrationsCheck::default().secret(secret);
        let check = match &config.expected_migration {
            Some(v) => check.expected_version(v),
            None => check,
        };
        Step::check(id, title, check)
    })
}

/// A notice: posted to the webhook when one is configured, confirmed by a
/// person otherwise.
/// "Restaurar snapshot ... (com aval de DBA)": the DBA's approval is the
/// step when the configuration names an approver holding the role; else
/// the operator confirms it, and the note says why.
fn restore_snapshot(config: &EscolaConfig) -> Step {
    let step = Step::manual(
        "restore-snapshot",
        "Restaurar snapshot do banco apenas se dado corrompido (com aval de DBA).",
    );
    if config.approvers.iter().any(|a| a.holds(DBA_ROLE)) {
        step.approval(ApprovalPolicy::new(DBA_ROLE))
    } else {
        step.note("Nenhum aprovador com o papel `dba` configurado: o operador confirma este passo.")
    }
}

/// With the database configured, what a restore would lose, counted just
/// before the DBA is asked to approve it: the snapshot's age and the rows
/// written since, per table. Advisory: a failed estimate never blocks the
/// rollback, it only leaves the DBA without the numbers (and says so).
fn loss_estimate(config: &EscolaConfig) -> Option<Step> {
    let secret = config.database_secret.as_ref()?;
    Some(
        Step::check(
            "restore-loss-estimate",
            "Estimar o que um restore do snapshot perderia (idade, linhas escritas desde então por tabela).",
            LossEstimateCheck::new(&config.snapshot_dir).secret(secret),
        )
        .advisory(),
    )
}

fn notice(config: &EscolaConfig, id: &str, title: &str, message: &str) -> Step {
    let post = config
        .webhook_secret
        .as_ref()
        .map(|secret| Arc::new(Notify::new(secret.clone(), message)) as Arc<dyn Check>);
    automated(id, title, post)
}

fn advisory_unless(blocking: bool, step: Step) -> Step {
    if blocking { step } else { step.advisory() }
}

/// An alert of the runbook as a watch step of one rule, in the fail-fast
/// `alerts` group: the first to fire inside the rollback window stops the
/// others and rolls back.
/// `charts` are drawn beside the rule's values without being judged.
fn alert(
    watch: &WatchConfig,
    id: &str,
    title: &str,
    rule: Rule,
    charts: Vec<(&str, Arc<dyn Probe>)>,
) -> Result<Step, WatchError> {
    let unit = rule.unit.clone();
    let mut check = Watch::new(vec![rule], watch.interval, watch.duration)?
        .rollback_window(watch.rollback_window)
        .in_dry_run(watch.watch_in_dry_run);
    for (name, probe) in charts {
        check = check.chart(name, unit.clone(), probe);
    }
    Ok(Step::check(id, title, check)
        .parallel(ALERTS_GROUP)
        .section("Alertas sugeridos"))
}

/// One of the runbook's alerts: the watch step and the rule it watches.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The step id (`alert-latency-p95`).
    pub step: &'static str,
    /// The rule; its title is the runbook's wording.
    pub rule: Rule,
}

/// The runbook's three suggested alerts, measured from the app's metrics:
/// what the watch steps evaluate and what `export-alerts` writes for
/// Prometheus.
pub fn alerts(metrics: &MetricsConfig, watch: &WatchConfig) -> Result<[Alert; 3], EscolaError> {
    let matcher = |pattern: &str| {
        StatusMatcher::new(pattern)
            .map_err(|e| ParamsError::invalid("watch", "status", e.to_string()))
    };
    let p95 = quantile_probe(metrics, watch, 0.95);
    let errors = MetricsProbe::new(
        metrics.source(),
        Measure::ErrorPercent(matcher("5..")?),
        watch.probe_window,
    )
    .min_requests(ALERT_MIN_REQUESTS);
    let limited = MetricsProbe::new(
        metrics.source(),
        Measure::Count(matcher("429")?),
        Duration::ZERO,
    )
    .only("route", "/v1/escolas");
    let p95_title = "`Latência P95 > 2s` por 5 minutos.";
    let errors_title = "`HTTP 5xx > 1%` por 5 minutos.";
    let limited_title =
        "`Rate Limit` excedido para `/v1/escolas` por mais de 3 requisições consecutivas.";
    Ok([
        Alert {
            step: "alert-latency-p95",
            rule: Rule::new(
                "latency-p95",
                p95_title,
                Arc::new(p95),
                Comparison::Above,
                2.0,
                RuleWindow::For {
                    duration: watch.alert_for,
                },
            )
            .unit("s"),
        },
        Alert {
            step: "alert-5xx",
            rule: Rule::new(
                "error-5xx",
                errors_title,
                Arc::new(errors),
                Comparison::Above,
                1.0,
                RuleWindow::For {
                    duration: watch.alert_for,
                },
            )
            .unit("%"),
        },
        Alert {
            step: "alert-rate-limit",
            rule: Rule::new(
                "rate-limit-escolas",
                limited_title,
                Arc::new(limited),
                Comparison::AtLeast,
                1.0,
                RuleWindow::Consecutive { count: 3 },
            ),
        },
    ])
}

/// A latency quantile over the alerts' window, with their traffic floor.
fn quantile_probe(metrics: &MetricsConfig, watch: &WatchConfig, q: f64) -> MetricsProbe {
    MetricsProbe::new(metrics.source(), Measure::Quantile(q), watch.probe_window)
        .min_requests(ALERT_MIN_REQUESTS)
}

/// Fewer requests in an alert's window is no value, never a verdict.
const ALERT_MIN_REQUESTS: f64 = 20.0;

/// How the dashboard counts the sync backlog: the rows of `sync_mutations`
/// matching `pending_where`, with `limit` drawn as a line.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogPanel {
    /// SQL condition selecting pending rows (`status = 'pending'`).
    pub pending_where: String,
    /// The most pending rows the team accepts, if it has said.
    pub limit: Option<f64>,
}

/// The runbook's "Painéis recomendados" as a Grafana dashboard: latency
/// P50/P95/P99 from the histogram and the 5xx share, each with its alert's
/// limit, and the `sync_mutations` backlog from the database. The queries
/// are the alerts' own, so the panels show what the alerts judge.
pub fn dashboard(
    metrics: &MetricsConfig,
    watch: &WatchConfig,
    backlog: &BacklogPanel,
) -> Result<Dashboard, EscolaError> {
    let [p95, errors, _] = alerts(metrics, watch)?;
    let promql = |probe: &dyn Probe, legend: &str| Query::PromQl {
        legend: legend.into(),
        expr: probe.promql(watch.interval).unwrap_or_default(),
    };
    let latency = vec![
        promql(&quantile_probe(metrics, watch, 0.5), "P50"),
        promql(p95.rule.probe.as_ref(), "P95"),
        promql(&quantile_probe(metrics, watch, 0.99), "P99"),
    ];
    Ok(Dashboard {
        title: "Escola Connect API — deploy".into(),
        uid: "escola-runbook".into(),
        panels: vec![
            Panel {
                title: "Escolas > Latência (P50/P95/P99)".into(),
                unit: "s",
                queries: latency,
                threshold: Some(p95.rule.limit),
            },
            Panel {
                title: "Erro rate (HTTP 5xx)".into(),
                unit: "percent",
                queries: vec![promql(errors.rule.probe.as_ref(), "5xx %")],
                threshold: Some(errors.rule.limit),
            },
            Panel {
                title: "Sync Mutations Backlog".into(),
                unit: "short",
                queries: vec![Query::Sql {
                    legend: "pending".into(),
                    sql: format!(
                        "SELECT NOW() AS time, COUNT(*) AS pending FROM {} WHERE {}",
                        crate::db::params::DEFAULT_BACKLOG_TABLE,
                        backlog.pending_where
                    ),
                }],
                threshold: backlog.limit,
            },
        ],
    })
}

/// `panel-sync-backlog`: with the database and a limit configured, a watch
/// of the backlog query beside the alerts (alert only: the runbook's
/// rollback triggers are the smoke tests and the alerts, not the panels);
/// otherwise the manual step.
fn backlog_panel(config: &EscolaConfig) -> Result<Step, EscolaError> {
    let (id, title) = (
        "panel-sync-backlog",
        "`Sync Mutations Backlog` (consultar tabela `sync_mutations`).",
    );
    let (Some(secret), Some(limit)) = (&config.database_secret, config.watch.backlog_limit) else {
        return Ok(Step::manual(id, title));
    };
    let probe = SqlScalarProbe::new(BACKLOG_SQL, secret.clone(), DEFAULT_STATEMENT_TIMEOUT)
        .map_err(|e| ParamsError::invalid("watch", "backlog", e.to_string()))?;
    let rule = Rule::new(
        "sync-backlog",
        "Pending sync_mutations rows",
        Arc::new(probe),
        Comparison::Above,
        limit as f64,
        RuleWindow::For {
            duration: config.watch.alert_for,
        },
    )
    .unit("rows")
    .alert_only();
    Ok(
        alert(&config.watch, id, title, rule, Vec::new())?.note(format!(
            "Automated: `{BACKLOG_SQL}` (read-only) every {}, alerting when above {limit} for {}.",
            escola_runbook_core::format_duration(config.watch.interval),
            escola_runbook_core::format_duration(config.watch.alert_for)
        )),
    )
}

/// The three alerts as watch steps.
fn alert_steps(metrics: &MetricsConfig, watch: &WatchConfig) -> Result<[Step; 3], EscolaError> {
    let [p95, errors, limited] = alerts(metrics, watch)?;
    // The P95 rule's chart shows the whole distribution around it.
    let quantile = |q| Arc::new(quantile_probe(metrics, watch, q)) as Arc<dyn Probe>;
    let spread = vec![
        ("latency-p50", quantile(0.5)),
        ("latency-p99", quantile(0.99)),
    ];
    let step = |a: Alert, charts| {
        let title = a.rule.title.clone();
        alert(watch, a.step, &title, a.rule, charts)
    };
    Ok([
        step(p95, spread)?,
        step(errors, Vec::new())?,
        step(limited, Vec::new())?.note("Metrics cannot tell consecutive requests apart: the rule fires when /v1/escolas answered 429 in 3 evaluations in a row."),
    ])
}

/// The built-in runbook as a runbook file (`export-runbook`), with a
/// warning for each step that could not be expressed as a check.
pub fn runbook_file(config: &EscolaConfig) -> Result<(RunbookFile, Vec<String>), EscolaError> {
    Ok(RunbookFile::from_runbook(
        &runbook(config)?,
        &crate::catalog(),
    ))
}

/// The built-in runbook.
pub fn runbook(config: &EscolaConfig) -> Result<Runbook, EscolaError> {
    for a in &config.approvers {
        if let Some(role) = a
            .roles
            .iter()
            .find(|r| !APPROVER_ROLES.contains(&r.as_str()))
        {
            return Err(EscolaError::UnknownRole {
                name: a.name.clone(),
                role: role.clone(),
            });
        }
    }
    let auto = config.automations()?;
    let (metrics_baseline, metrics_endpoint, latency_judge) = match config
        .metrics
        .as_ref()
        .map(MetricsConfig::checks)
        .transpose()?
    {
        Some(c) => (Some(c.baseline), Some(c.endpoint), Some(c.judge)),
        None => (None, None, None),
    };
    let cmd = |line: &str, timeout: Duration| {
        config.command_env.iter().fold(
            CommandCheck::shell(line)
                .current_dir(&config.app_dir)
                .timeout(timeout),
            |check, (key, value)| check.env(key, value),
        )
    };
    let short = config.command_timeout;
    let long = config.long_command_timeout;

    let readiness = "Checklist de readiness";
    let window = "Janela & comunicações";
    let backups = "Backups & infra";
    let mut pre_deploy = Phase::new("pre-deploy", "Pré-Deploy").step(
        automated(
            "ci-green",
            "Confirmar branch `main` verdinho (CI ok, cobertura ≥ 85%).",
            auto.ci_status,
        )
        .section(readiness),
    );
    if let Some((title, check)) = auto.coverage {
        pre_deploy = pre_deploy.step(Step::check_arc("coverage", title, check).section(readiness));
    }
    let pre_deploy = pre_deploy
        .step(
            automated(
                "docs-updated",
                "Validar que `docs/api.md`, `docs/cache-strategy.md` e `docs/escola-module-todo.md` estão atualizados.",
                auto.docs,
            )
            .section(readiness),
        )
        .step(
            automated(
                "changelog-version",
                "Revisar `CHANGELOG.md` e anotar versão planejada (semver).",
                auto.changelog,
            )
            .section(readiness),
        )
        .step(Step::manual("window-agreed", "Sincronizar janela com Infra + Produto (evitar campanhas de campo).").section(window))
        .step(Step::manual("notice-scheduled", "Programar aviso nos canais #operacoes e #promotores (T -4h).").section(window))
        .step(Step::manual("squad-present", "Garantir presença do squad (dev, QA, suporte) no período.").section(window))
        .step(db_snapshot(config).section(backups));
    let pre_deploy = match config.snapshot_max_age {
        // After the snapshot: one it proved counts.
        Some(max_age) => pre_deploy.step(
            Step::check(
                "snapshot-fresh",
                "Snapshot restaurável comprovado (teste de restauração) e recente.",
                SnapshotFreshCheck::new(&config.snapshot_dir, max_age),
            )
            .section(backups),
        ),
        None => pre_deploy,
    };
    let pre_deploy = pre_deploy
        .step(
            metrics_step(
                "metrics-baseline",
                "Verificar métricas em Prometheus (`/metrics`) e latência base.",
                metrics_baseline,
            )
            .section(backups),
        )
        .step(
            Step::manual(
                "drain-queues",
                "Limpar filas/cron-sim (se aplicável) para evitar gatilhos durante deploy.",
            )
            .section(backups),
        );

    let (log_scan, mark_start, log_blocking) = match auto.app_log {
        Some((check, mark, blocking)) => (Some(check), mark, blocking),
        None => (None, false, true),
    };
    let (cdn_purge, purge_blocking) = match auto.cdn_purge {
        Some((check, blocking)) => (Some(check), blocking),
        None => (None, true),
    };
    let mut deploy = Phase::new("deploy", "Deploy").rollback_on_failure();
    if mark_start {
        deploy = deploy.step(
            Step::check(
                "deploy-started",
                "Registrar o início do deploy (janela da verificação de `app.log`).",
                crate::log_scan::RecordTimeCheck::new(crate::log_scan::DEPLOY_STARTED_AT),
            )
            .advisory(),
        );
    }
    let deploy = deploy
        .step(
            Step::check(
                "maintenance-on",
                "Entrar em modo manutenção (opcional)",
                cmd(r#"php artisan down --message="Atualizando Escola Connect API" --retry=60"#, short),
            )
            .advisory()
            .undo(cmd("php artisan up", short))
            .note("Se a aplicação não expõe comando próprio, utilizar reverse-proxy com flag de manutenção."),
        )
        .step(Step::check(
            "migrations",
            "Executar migrations",
            cmd("php vendor/bin/doctrine-migrations migrate --no-interaction", long),
        ))
        .step(migrations_consistent(config))
        .step(Step::check(
            "deploy-artifacts",
            "Deploy da aplicação: atualizar artefatos (`git pull`, `composer install --no-dev`, `php artisan config:cache` se aplicável)",
            cmd("git pull --ff-only && composer install --no-dev --no-interaction && php artisan config:cache", long),
        ))
        .step(Step::check(
            "phpunit",
            "Realizar `php vendor/bin/phpunit` no host ou pipeline.",
            cmd("php vendor/bin/phpunit", long),
        ))
        .step(
            Step::check(
                "cache-clear-aggregates",
                "Executar `php ./scripts/cache-clear-aggregates.php`",
                cmd("php ./scripts/cache-clear-aggregates.php", short),
            )
            .section("Limpeza de caches")
            .note("O runbook marca este script como TODO: confirme que ele existe antes do deploy."),
        )
        .step(
            advisory_unless(
                purge_blocking,
                automated(
                    "cdn-purge",
                    "Limpar caches HTTP/CDN relacionados a `/v1/cidades` e `/v1/escolas`.",
                    cdn_purge,
                ),
            )
            .section("Limpeza de caches"),
        )
        .step(
            Step::check("maintenance-off", "Retomar tráfego", cmd("php artisan up", short))
                .note("ou remover flag de manutenção no proxy."),
        );

    let smoke_title =
        "Validar smoke tests automatizados (Postman/Newman ou script `./scripts/smoke.sh`).";
    let post_deploy = Phase::new("post-deploy", "Pós-Deploy Imediato (0–30 min)")
        .rollback_on_failure()
        .step(match &config.smoke {
            SmokeTests::Native(check) => Step::check("smoke-tests", smoke_title, (**check).clone()),
            SmokeTests::Script => Step::check("smoke-tests", smoke_title, cmd("./scripts/smoke.sh", long).read_only()),
            SmokeTests::Manual => Step::manual("smoke-tests", smoke_title).instructions(
                "Run the smoke tests against the deployed API; give the run the API's URL (the environment setting `base_url`) to have them run automatically.",
            ),
        })
        .step(advisory_unless(
            log_blocking,
            automated(
                "app-log-errors",
                "Checar logs de erro (`var/logs/app.log`) e `Trace-Id`.",
                log_scan,
            ),
        ))
        .step(metrics_step(
            "metrics-endpoint",
            "Garantir que `/metrics` está respondendo (`curl -H \"Authorization: Bearer <token>\" http://api/metrics`).",
            metrics_endpoint,
        ))
        .step(Step::manual(
            "dashboards",
            "Verificar dashboards: latência (`http_request_duration_seconds`), erros 5xx, fila de sync.",
        ))
        .step(notice(
            config,
            "status-update",
            "Atualizar status nos canais internos (“deploy iniciado/concluído”).",
            "Escola Connect API: deploy {run_id} em {environment} concluído; monitoramento estendido iniciado.",
        ));

    let panels = "Painéis recomendados";
    let alerts = "Alertas sugeridos";
    let error_panel = Step::manual(
        "panel-error-rate",
        "`Erro rate` com contador `http_requests_total{status=~\"5..\"}`",
    )
    .section(panels);
    let backlog_panel = backlog_panel(config)?.section(panels);
    let monitoring = Phase::watch("monitoring", "Monitoramento Estendido (30 min – 24h)");
    let monitoring = match (&config.metrics, latency_judge) {
        (Some(metrics), Some(judge)) => {
            let [p95, errors, limited] = alert_steps(metrics, &config.watch)?;
            // The judge runs beside the alerts, from the first second after
            // the deploy, not before them.
            monitoring
                .rollback_on_failure()
                .fail_fast()
                .step(error_panel)
                .step(backlog_panel)
                .step(latency_panel(judge, metrics).section(panels))
                .step(p95)
                .step(errors)
                .step(limited)
        }
        _ => monitoring
            .step(Step::manual("panel-latency", LATENCY_PANEL).section(panels))
            .step(error_panel)
            .step(backlog_panel)
            .step(Step::manual("alert-latency-p95", "`Latência P95 > 2s` por 5 minutos.").section(alerts))
            .step(Step::manual("alert-5xx", "`HTTP 5xx > 1%` por 5 minutos.").section(alerts))
            .step(
                Step::manual(
                    "alert-rate-limit",
                    "`Rate Limit` excedido para `/v1/escolas` por mais de 3 requisições consecutivas.",
                )
                .section(alerts),
            ),
    }
    .step(Step::manual("incidents-trace-id", "Registrar incidentes no canal #observabilidade com `Trace-Id`."));

    let procedure = "Procedimento";
    let communication = "Comunicação";
    let rollback = Phase::rollback("rollback", "Rollback")
        .note("Detecção: se smoke tests falharem ou alertas dispararem continuamente em ≤15 min.")
        .step(Step::manual(
            "rollback-detection",
            "Detecção: smoke tests falharam ou alertas dispararam continuamente em ≤15 min.",
        ))
        .step(
            Step::manual("previous-version", "Recolocar a versão anterior do código (tag/commit anterior).")
                .section(procedure)
                .note("No documento este item está escrito `[ ]]` (erro de digitação); importado como item normal."),
        )
        .step(
            Step::check(
                "migrate-prev",
                "Executar `php vendor/bin/doctrine-migrations migrate prev` (ou script reverso) se migrations quebraram.",
                cmd("php vendor/bin/doctrine-migrations migrate prev --no-interaction", long),
            )
            .section(procedure)
            // "se migrations quebraram": reverting a migration that was fine
            // can lose data, so a person decides each time.
            .confirm_first()
            .note("Só se as migrations quebraram: o operador confirma antes (`skip` se não for o caso)."),
        )
        // Before the restore asks, so the DBA approves on numbers.
        .steps(loss_estimate(config).map(|s| s.section(procedure)))
        .step(restore_snapshot(config).section(procedure))
        .step(
            notice(
                config,
                "rollback-notice",
                "Avisar canais (#operacoes, #promotores) sobre rollback.",
                "Escola Connect API: rollback do deploy {run_id} em {environment} em andamento.",
            )
            .section(communication),
        )
        .step(
            Step::manual("rollback-incident", "Abrir incidente no Jira/Statuspage com causa e tempo estimado.")
                .section(communication),
        );

    let post_24h = Phase::new("post-deploy-24h", "Pós-Deploy (24h+)")
        .step(Step::manual(
            "final-docs",
            "Atualizar `docs/escola-module-todo.md` e `CHANGELOG.md` com status final.",
        ))
        .step(Step::manual(
            "post-deploy-metrics",
            "Registrar métricas pós-deploy (latência, uso de rate limit, conflitos If-Match).",
        ))
        .step(Step::manual(
            "retrospective",
            "Agendar retrospectiva com equipe e consolidar “lessons learned”.",
        ));

    let support = Phase::new("support", "Checklists de Suporte")
        .step(
            Step::manual(
                "kanban-post-deploy",
                "Tickets em aberto migrados para “Post-Deploy”.",
            )
            .section("Kanban pós-deploy"),
        )
        .step(
            Step::manual(
                "kanban-backlog",
                "Backlog residual anotado no Jira (sprint + epics).",
            )
            .section("Kanban pós-deploy"),
        );

    let builder = config
        .approvers
        .iter()
        .fold(Runbook::builder(RUNBOOK_NAME), |b, a| {
            b.approver(a.name.clone(), a.roles.clone())
        });
    builder
        .contact("Dev on-call", "@dev-escola")
        .contact("SRE / Infra", "@infra")
        .contact("Produto / Operações", "@produto-escola")
        .glossary(
            "Trace-Id",
            "header retornado pelo `ApiResponder` (inclusive em erros 5xx).",
        )
        .glossary(
            "If-Match",
            "utilizado pelo sync mobile; garantir que o header continue respeitado após deploy.",
        )
        .phase(pre_deploy)
        .phase(deploy)
        .phase(post_deploy)
        .phase(monitoring)
        .phase(rollback)
        .phase(post_24h)
        .phase(support)
        .build()
        .map_err(EscolaError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn has_the_seven_sections_and_every_item() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        let titles: Vec<&str> = rb.phases().iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Pré-Deploy",
                "Deploy",
                "Pós-Deploy Imediato (0–30 min)",
                "Monitoramento Estendido (30 min – 24h)",
                "Rollback",
                "Pós-Deploy (24h+)",
                "Checklists de Suporte"
            ]
        );
        let per_phase: Vec<usize> = rb.phases().iter().map(|p| p.steps.len()).collect();
        assert_eq!(per_phase, [9, 8, 5, 7, 6, 3, 2]);
        assert_eq!(rb.metadata().contacts.len(), 3);
    }

    fn kinds(rb: &Runbook) -> Vec<(String, Option<String>)> {
        rb.steps()
            .map(|(_, s)| (s.id.clone(), s.description().map(|d| d.name)))
            .collect()
    }

    fn kind_of(rb: &Runbook, id: &str) -> Option<String> {
        kinds(rb)
            .into_iter()
            .find(|(step, _)| step == id)
            .unwrap_or_else(|| panic!("no step {id}"))
            .1
    }

    #[test]
    fn database_steps_are_automated_with_a_database_secret() {
        use escola_runbook_core::StepKind;
        let manual = runbook(&EscolaConfig::default()).unwrap();
        assert_eq!(kind_of(&manual, "db-snapshot"), None);
        assert_eq!(kind_of(&manual, "migrations-consistent"), None);
        let config = EscolaConfig {
            database_secret: Some(DATABASE_SECRET.into()),
            expected_migration: Some("Version20250301120000".into()),
            ..EscolaConfig::default()
        };
        let rb = runbook(&config).unwrap();
        let step = |id: &str| rb.steps().map(|(_, s)| s).find(|s| s.id == id).unwrap();
        let StepKind::Check(snapshot) = &step("db-snapshot").kind else {
            panic!("db-snapshot should be a check");
        };
        let d = snapshot.describe();
        assert!(d.mutates, "a snapshot writes files: dry-run must skip it");
        assert_eq!(d.produces, ["snapshot.path"]);

        // The DBA sees what a restore would lose just before being asked.
        let rollback: Vec<&str> = rb
            .steps()
            .filter(|(p, _)| p.id == "rollback")
            .map(|(_, s)| s.id.as_str())
            .collect();
        let at = |id| rollback.iter().position(|s| *s == id).unwrap();
        assert_eq!(at("restore-loss-estimate") + 1, at("restore-snapshot"));
        assert_eq!(
            kind_of(&rb, "restore-loss-estimate").as_deref(),
            Some("db-loss-estimate")
        );
        assert!(
            !step("restore-loss-estimate").policy.blocking,
            "an estimate never blocks a rollback"
        );
        assert!(
            !kinds(&manual)
                .iter()
                .any(|(id, _)| id == "restore-loss-estimate"),
            "without a database there is nothing to count"
        );

        // Encrypted and proven, as configured.
        let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let sealed = runbook(&EscolaConfig {
            snapshot_encrypt_to: vec![recipient.into()],
            snapshot_restore_test: true,
            snapshot_identity_file: Some("key.txt".into()),
            snapshot_copy_to: Some("s3://backups/escola".into()),
            snapshot_max_age: Some(Duration::from_secs(26 * 3600)),
            ..config.clone()
        })
        .unwrap();
        assert_eq!(
            kind_of(&sealed, "snapshot-fresh").as_deref(),
            Some("snapshot-fresh"),
            "a proven snapshot is required when a limit is set"
        );
        let sealed_step = sealed
            .steps()
            .map(|(_, s)| s)
            .find(|s| s.id == "db-snapshot")
            .unwrap();
        let StepKind::Check(snapshot) = &sealed_step.kind else {
            panic!("db-snapshot should be a check");
        };
        let params = snapshot.params().unwrap();
        assert_eq!(params.params["encrypt_to"], serde_json::json!([recipient]));
        assert_eq!(params.params["restore_test"], true);
        assert_eq!(params.params["copy_to"], "s3://backups/escola");
        assert_eq!(
            crate::catalog().build(&params).unwrap().params(),
            Some(params)
        );
        let StepKind::Check(migrations) = &step("migrations-consistent").kind else {
            panic!("migrations-consistent should be a check");
        };
        assert!(!migrations.describe().mutates);
        let params = migrations.params().unwrap();
        assert_eq!(params.params["expected_version"], "Version20250301120000");
        // The catalog rebuilds it from its parameters.
        let rebuilt = crate::catalog().build(&params).unwrap();
        assert_eq!(rebuilt.params(), Some(params));
    }

    #[test]
    fn with_no_configuration_the_automatable_items_stay_manual() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        for id in [
            "ci-green",
            "docs-updated",
            "changelog-version",
            "cdn-purge",
            "app-log-errors",
        ] {
            assert_eq!(kind_of(&rb, id), None, "{id} must stay manual");
        }
        assert!(rb.find_step("coverage").is_none());
        assert!(rb.find_step("deploy-started").is_none());
    }

    fn full_config(app_dir: &Path, ci_url: &str, cache_url: &str) -> EscolaConfig {
        EscolaConfig {
            app_dir: app_dir.to_owned(),
            coverage: Some(CoverageConfig {
                report: "build/clover.xml".into(),
                min: 85.0,
                max_age: Some("1d".into()),
            }),
            ci_status: Some(CiStatusConfig::new(ci_url)),
            docs: Some(DocsConfig::default()),
            changelog: Some(ChangelogConfig::new("2.4.0")),
            cdn_purge: Some(CachePurgeConfig::new(cache_url)),
            app_log: Some(AppLogConfig::default()),
            ..EscolaConfig::default()
        }
    }

    #[test]
    fn configured_items_become_checks_in_place_of_the_manual_steps() {
        let rb = runbook(&full_config(
            Path::new("/srv/app"),
            "http://ci.invalid/s",
            "http://cache.invalid",
        ))
        .unwrap();
        let expect = [
            ("ci-green", "http-json"),
            ("coverage", "coverage"),
            ("docs-updated", "docs-freshness"),
            ("changelog-version", "changelog"),
            ("deploy-started", "record-time"),
            ("cdn-purge", "cache-purge"),
            ("app-log-errors", "log-scan"),
        ];
        for (id, kind) in expect {
            assert_eq!(kind_of(&rb, id).as_deref(), Some(kind), "{id}");
        }
        let per_phase: Vec<usize> = rb.phases().iter().map(|p| p.steps.len()).collect();
        assert_eq!(per_phase, [10, 9, 5, 7, 6, 3, 2]);
        let (_, step) = rb.find_step("changelog-version").unwrap();
        let Some(desc) = step.description() else {
            panic!()
        };
        assert!(
            desc.verifies
                .contains("/srv/app/CHANGELOG.md has a section for 2.4.0"),
            "{}",
            desc.verifies
        );
        let (_, purge) = rb.find_step("cdn-purge").unwrap();
        assert!(purge.mutates());
        assert!(
            !purge.policy.blocking,
            "a failed purge is reported, not a rollback"
        );
        assert!(!rb.find_step("app-log-errors").unwrap().1.policy.blocking);
        assert!(rb.find_step("docs-updated").unwrap().1.policy.blocking);
        // The readiness checks read the release checkout when there is one.
        let with_release = EscolaConfig {
            release_dir: Some("/builds/escola/api".into()),
            ..full_config(
                Path::new("/srv/app"),
                "http://ci.invalid/s",
                "http://cache.invalid",
            )
        };
        let rb2 = runbook(&with_release).unwrap();
        let verifies = |id: &str| rb2.find_step(id).unwrap().1.description().unwrap().verifies;
        assert!(verifies("changelog-version").starts_with("/builds/escola/api/CHANGELOG.md"));
        assert!(verifies("docs-updated").contains("(repository /builds/escola/api)"));
        assert!(verifies("coverage").contains("/builds/escola/api/build/clover.xml"));
        assert!(verifies("app-log-errors").contains("/srv/app/var/logs/app.log"));
        // A fixed window needs no start marker.
        let mut config = full_config(
            Path::new("/srv/app"),
            "http://ci.invalid/s",
            "http://cache.invalid",
        );
        config.app_log = Some(AppLogConfig {
            since: Some("30m".into()),
            ..AppLogConfig::default()
        });
        assert!(
            runbook(&config)
                .unwrap()
                .find_step("deploy-started")
                .is_none()
        );
    }

    #[test]
    fn a_bad_configuration_names_the_check_and_parameter() {
        let config = EscolaConfig {
            changelog: Some(ChangelogConfig::new("next")),
            ..EscolaConfig::default()
        };
        let err = runbook(&config).unwrap_err();
        assert!(matches!(err, EscolaError::Config(_)), "{err}");
        assert!(
            err.to_string()
                .contains("check `changelog`, parameter `version`"),
            "{err}"
        );
        let config = EscolaConfig {
            ci_status: Some(CiStatusConfig {
                op: "roughly".into(),
                ..CiStatusConfig::new("http://ci.invalid")
            }),
            ..EscolaConfig::default()
        };
        assert!(
            runbook(&config)
                .unwrap_err()
                .to_string()
                .contains("parameter `op`")
        );
    }

    #[test]
    fn configuration_reads_from_json_with_defaults() {
        let config: CachePurgeConfig =
            serde_json::from_str(r#"{"base_url":"http://varnish:6081","method":"BAN"}"#).unwrap();
        assert_eq!(config.purge.paths, ["/v1/cidades", "/v1/escolas"]);
        assert!(
            serde_json::from_str::<CachePurgeConfig>(r#"{"base_url":"http://v","pahts":[]}"#)
                .is_err()
        );
        let log: AppLogConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(log, AppLogConfig::default());
        assert!(serde_json::from_str::<DocsConfig>(r#"{"sinse":"30d"}"#).is_err());
    }

    #[tokio::test]
    async fn the_configured_runbook_runs_its_checks_against_real_inputs() {
        use crate::git::testing::{commit, init, tag};
        use crate::http::testing::serve;
        use escola_runbook_core::{Executor, PreapprovedConfirmer, RunOptions, Status};

        let app = tempfile::tempdir().unwrap();
        let d = app.path();
        init(d);
        commit(
            d,
            "2026-09-01T12:00:00Z",
            "2.3.0",
            &[
                (
                    "CHANGELOG.md",
                    "# Changelog\n\n## [2.3.0] - 2026-09-01\n- old\n",
                ),
                ("docs/api.md", "1"),
                ("docs/cache-strategy.md", "1"),
                ("docs/escola-module-todo.md", "1"),
            ],
        );
        tag(d, "2026-09-01T12:00:00Z", "v2.3.0");
        commit(
            d,
            "2026-11-28T12:00:00Z",
            "docs and changelog for 2.4.0",
            &[
                (
                    "CHANGELOG.md",
                    "# Changelog\n\n## [2.4.0] - 2026-11-29\n- If-Match on sync\n\n## [2.3.0] - 2026-09-01\n- old\n",
                ),
                ("docs/api.md", "2"),
                ("docs/cache-strategy.md", "2"),
                ("docs/escola-module-todo.md", "2"),
            ],
        );
        std::fs::create_dir_all(d.join("build")).unwrap();
        std::fs::write(d.join("build/clover.xml"), r#"<coverage><project><metrics statements="200" coveredstatements="180"/></project></coverage>"#).unwrap();
        std::fs::create_dir_all(d.join("var/logs")).unwrap();
        std::fs::write(d.join("var/logs/app.log"), "[2020-01-01T00:00:00+00:00] app.ERROR: long ago [] []\n[2999-01-01T00:00:00+00:00] app.ERROR: Escola 7 not found {\"trace_id\":\"t-77\"} []\n").unwrap();
        let ci = serve(std::sync::Arc::new(|_: &crate::http::testing::Received| {
            (200, r#"{"state":"success"}"#.into())
        }))
        .await;
        let cache = serve(std::sync::Arc::new(|_: &crate::http::testing::Received| {
            (200, "Purged".into())
        }))
        .await;
        let config = full_config(d, &format!("{}/status", ci.url), &cache.url);
        let rb = runbook(&config).unwrap();
        let runs = tempfile::tempdir().unwrap();
        let record = Executor::new(rb)
            .confirmer(std::sync::Arc::new(PreapprovedConfirmer::new("test")))
            .run_root(runs.path())
            .options(RunOptions {
                only: [
                    "ci-green",
                    "coverage",
                    "docs-updated",
                    "changelog-version",
                    "deploy-started",
                    "cdn-purge",
                    "app-log-errors",
                ]
                .map(String::from)
                .to_vec(),
                ..RunOptions::default()
            })
            .run()
            .await
            .unwrap();
        let status = |id: &str| {
            record
                .phases
                .iter()
                .flat_map(|p| &p.steps)
                .find(|s| s.outline.id == id)
                .and_then(|s| s.outcome.clone())
                .unwrap_or_else(|| panic!("no outcome for {id}"))
        };
        for id in [
            "ci-green",
            "coverage",
            "docs-updated",
            "changelog-version",
            "deploy-started",
            "cdn-purge",
        ] {
            assert_eq!(status(id).status, Status::Passed, "{id}: {:#?}", status(id));
        }
        assert!(
            status("coverage")
                .summary
                .starts_with("line coverage 90% (180/200 lines)")
        );
        let purged: Vec<String> = cache
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(purged, ["PURGE /v1/cidades", "PURGE /v1/escolas"]);
        // The window starts at the recorded deploy start: the old error is
        // out, the (future-dated) one is in.
        let log = status("app-log-errors");
        assert_eq!(log.status, Status::Failed, "{log:#?}");
        assert!(
            log.summary.starts_with("1 ERROR-or-above line in"),
            "{}",
            log.summary
        );
        assert!(
            log.evidence
                .iter()
                .any(|e| e.value.contains("Escola 7 not found — Trace-Id t-77")),
            "{log:#?}"
        );
    }

    #[test]
    fn metrics_steps_are_checks() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        assert_eq!(
            kind_of(&rb, "metrics-baseline"),
            None,
            "manual without configuration"
        );
        assert_eq!(kind_of(&rb, "metrics-endpoint"), None);
        let rb = runbook(&EscolaConfig {
            metrics: Some(MetricsConfig::default()),
            ..EscolaConfig::default()
        })
        .unwrap();
        let step = |id: &str| {
            rb.phases()
                .iter()
                .flat_map(|p| p.steps.iter())
                .find(|s| s.id == id)
                .and_then(|s| s.description())
                .unwrap()
        };
        let baseline = step("metrics-baseline");
        assert_eq!(baseline.name, "metrics-baseline");
        assert!(
            baseline
                .produces
                .contains(&"baseline.latency.p95".to_owned())
        );
        assert!(!baseline.mutates);
        let endpoint = step("metrics-endpoint");
        assert_eq!(endpoint.name, "metrics-endpoint");
        assert!(
            endpoint.verifies.contains("metrics_token"),
            "{}",
            endpoint.verifies
        );
        assert!(endpoint.verifies.contains("http_requests_total"));
    }

    #[test]
    fn with_metrics_the_alerts_are_fail_fast_watches_that_roll_back() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        assert_eq!(
            kind_of(&rb, "alert-5xx"),
            None,
            "manual without configuration"
        );
        let rb = runbook(&EscolaConfig {
            metrics: Some(MetricsConfig::default()),
            ..EscolaConfig::default()
        })
        .unwrap();
        let phase = rb.find_phase("monitoring").unwrap();
        assert!(phase.rollback_on_failure && phase.fail_fast);
        for id in ["alert-latency-p95", "alert-5xx", "alert-rate-limit"] {
            let (_, step) = rb.find_step(id).unwrap();
            let d = step.description().unwrap();
            assert_eq!(d.name, "watch", "{id}");
            assert!(d.verifies.contains("every 15s for 24h"), "{}", d.verifies);
            assert!(d.verifies.contains("within 15m"), "{}", d.verifies);
            assert_eq!(step.policy.parallel_group.as_deref(), Some("alerts"));
        }
        let per_phase: Vec<usize> = rb.phases().iter().map(|p| p.steps.len()).collect();
        assert_eq!(per_phase[3], 7, "every item of section 4 is still a step");
    }
}
