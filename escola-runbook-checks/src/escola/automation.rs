//! Which of the runbook's steps run as checks, decided by what the run is
//! given: the rule every caller of the built-in runbook (the CLI, the
//! examples, a team's own tool) shares, so that the same settings and
//! secrets always automate the same steps.

use std::path::PathBuf;
use std::sync::Arc;

use escola_runbook_core::catalog::{CatalogError, CheckConfig, ParamProblem, ParamsError};
use escola_runbook_core::duration::{self, Span};
use escola_runbook_core::{Approver, Check, Environment, Secrets};

use crate::changelog::ChangelogParams;
use crate::coverage::{CoverageParams, Percent};
use crate::docs_freshness::{DocsFreshnessParams, Since};
use crate::http::HttpParams;
use crate::http_json::HttpJsonParams;
use crate::log_scan::{LogScanParams, UtcOffset};

use super::config::{
    APPROVER_SETTING, DATABASE_SECRET, EscolaConfig, METRICS_TOKEN_SECRET, MetricsConfig,
    SmokeTests, WEBHOOK_SECRET,
};

impl EscolaConfig {
    /// The built-in runbook's configuration for a run with `environment`
    /// and `secrets`, its commands in `app_dir`: each part whose target is
    /// given becomes automated, every other stays a person's step.
    ///
    /// - setting `base_url`: the native smoke suite (without it the smoke
    ///   tests stay manual rather than a check that can only error);
    /// - setting `metrics_url` or secret [`METRICS_TOKEN_SECRET`]: the
    ///   metrics baseline and endpoint checks, and the alert watches;
    /// - secret [`DATABASE_SECRET`]: the snapshot and the migrations/tables
    ///   check of that database;
    /// - secret [`WEBHOOK_SECRET`]: the notices are posted, not confirmed;
    /// - settings `approver.NAME = ROLE[,ROLE]` ([`APPROVER_SETTING`]): the
    ///   runbook's approvers; one holding `dba` approves `restore-snapshot`.
    ///
    /// Only the secrets' names are kept, never their values.
    pub fn from_settings(app_dir: PathBuf, environment: &Environment, secrets: &Secrets) -> Self {
        Self::from_named(app_dir, environment, |name| secrets.get(name).is_some())
    }

    /// [`from_settings`](Self::from_settings) where `named` says which
    /// secrets will be given: to describe a runbook (`plan`) before their
    /// values can be read.
    pub fn from_named(
        app_dir: PathBuf,
        environment: &Environment,
        named: impl Fn(&str) -> bool,
    ) -> Self {
        let secret_name = |name: &str| named(name).then(|| name.to_owned());
        EscolaConfig {
            app_dir,
            webhook_secret: secret_name(WEBHOOK_SECRET),
            smoke: if environment.get("base_url").is_some() {
                SmokeTests::default()
            } else {
                SmokeTests::Manual
            },
            metrics: (environment.get("metrics_url").is_some() || named(METRICS_TOKEN_SECRET))
                .then(MetricsConfig::default),
            database_secret: secret_name(DATABASE_SECRET),
            approvers: environment
                .settings
                .iter()
                .filter_map(|(key, roles)| {
                    let name = key.strip_prefix(APPROVER_SETTING)?;
                    Some(Approver {
                        name: name.to_owned(),
                        roles: roles
                            .split(',')
                            .map(str::trim)
                            .filter(|r| !r.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    })
                })
                .collect(),
            ..EscolaConfig::default()
        }
    }
}

/// The checks the configuration turns on, built through the catalog so a
/// configuration error reads like a `check --param` error.
pub(super) struct Automations {
    pub(super) coverage: Option<(String, Arc<dyn Check>)>,
    pub(super) ci_status: Option<Arc<dyn Check>>,
    pub(super) docs: Option<Arc<dyn Check>>,
    pub(super) changelog: Option<Arc<dyn Check>>,
    pub(super) cdn_purge: Option<(Arc<dyn Check>, bool)>,
    pub(super) app_log: Option<(Arc<dyn Check>, bool, bool)>,
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
    pub(super) fn automations(&self) -> Result<Automations, CatalogError> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use escola_runbook_core::Secret;

    use super::*;

    fn secrets(names: &[&str]) -> Secrets {
        let mut secrets = Secrets::new();
        for name in names {
            secrets.insert(*name, Secret::new(format!("value of {name}")));
        }
        secrets
    }

    #[test]
    fn with_nothing_given_every_part_stays_manual() {
        let config = EscolaConfig::from_settings(
            PathBuf::from("/srv/app"),
            &Environment::new("production"),
            &Secrets::new(),
        );
        assert_eq!(config.app_dir, Path::new("/srv/app"));
        assert!(matches!(config.smoke, SmokeTests::Manual));
        assert_eq!(config.metrics, None);
        assert_eq!(config.database_secret, None);
        assert_eq!(config.webhook_secret, None);
    }

    #[test]
    fn approver_settings_name_the_approvers_and_a_dba_approves_the_restore() {
        let environment = Environment::new("production")
            .with("approver.carla", "dba, sre-infra")
            .with("approver.bob", "dev-on-call");
        let config = EscolaConfig::from_settings(".".into(), &environment, &Secrets::new());
        let names: Vec<(&str, &[String])> = config
            .approvers
            .iter()
            .map(|a| (a.name.as_str(), a.roles.as_slice()))
            .collect();
        assert_eq!(
            names,
            [
                ("bob", &["dev-on-call".to_owned()][..]),
                ("carla", &["dba".to_owned(), "sre-infra".to_owned()][..])
            ]
        );
        let rb = super::super::runbook(&config).unwrap();
        let (_, restore) = rb.find_step("restore-snapshot").unwrap();
        assert_eq!(
            restore.policy.approval.as_ref().map(|a| a.role.as_str()),
            Some("dba")
        );
        let without =
            EscolaConfig::from_settings(".".into(), &Environment::new("p"), &Secrets::new());
        let rb = super::super::runbook(&without).unwrap();
        let (_, restore) = rb.find_step("restore-snapshot").unwrap();
        assert_eq!(restore.policy.approval, None);
        let typo = Environment::new("p").with("approver.carla", "dab");
        let err = super::super::runbook(&EscolaConfig::from_settings(
            ".".into(),
            &typo,
            &Secrets::new(),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "runbook configuration: approver `carla` holds role `dab`, which the runbook does not offer; its roles are: dba, dev-on-call, sre-infra, produto-operacoes"
        );
    }

    #[test]
    fn a_base_url_runs_the_native_smoke_suite() {
        let environment = Environment::new("staging").with("base_url", "http://127.0.0.1:1");
        let config = EscolaConfig::from_settings(".".into(), &environment, &Secrets::new());
        assert!(matches!(config.smoke, SmokeTests::Native(_)));
        assert_eq!(config.metrics, None, "base_url alone does not read metrics");
    }

    #[test]
    fn a_metrics_url_or_token_automates_the_metrics_steps() {
        let environment = Environment::new("p").with("metrics_url", "http://127.0.0.1:1/metrics");
        let by_url = EscolaConfig::from_settings(".".into(), &environment, &Secrets::new());
        assert_eq!(by_url.metrics, Some(MetricsConfig::default()));
        let by_token = EscolaConfig::from_settings(
            ".".into(),
            &Environment::new("p"),
            &secrets(&[METRICS_TOKEN_SECRET]),
        );
        assert_eq!(by_token.metrics, Some(MetricsConfig::default()));
    }

    #[test]
    fn secrets_name_the_database_and_the_webhook_never_their_values() {
        let config = EscolaConfig::from_settings(
            ".".into(),
            &Environment::new("p"),
            &secrets(&[DATABASE_SECRET, WEBHOOK_SECRET, "unrelated"]),
        );
        assert_eq!(config.database_secret.as_deref(), Some(DATABASE_SECRET));
        assert_eq!(config.webhook_secret.as_deref(), Some(WEBHOOK_SECRET));
        let recorded = serde_json::to_string(&config).expect("the configuration serializes");
        assert!(!recorded.contains("value of"), "{recorded}");
    }
}
