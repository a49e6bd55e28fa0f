//! The project file (`escola-runbook.toml`): which runbook, and per
//! environment everything the built-in runbook's configuration takes, so a
//! team writes its targets once instead of a row of settings on every
//! command.
//!
//! An environment section maps onto [`EscolaConfig`] through one function
//! (`EnvironmentSection::resolve`); the same module says which key
//! automates which manual step ([`automatable_by`]) and holds the commented
//! file `init` writes ([`TEMPLATE`]), so a new key is one edit the tests tie
//! together. Secrets are never values in the file: only the names of
//! environment variables (`*_env`) or of files (`*_file`) holding them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use escola_runbook_core::duration::{self, DurationError};
use escola_runbook_core::formats::runbook_file::{self, RunbookFileError};
use escola_runbook_core::{ConfigFile, Secret};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use super::config::{
    AppLogConfig, CachePurgeConfig, ChangelogConfig, CiStatusConfig, CoverageConfig,
    DATABASE_SECRET, DocsConfig, EscolaConfig, METRICS_TOKEN_SECRET, WEBHOOK_SECRET,
};

/// The project file looked for in the working directory.
pub const FILE_NAME: &str = "escola-runbook.toml";

/// The environment chosen when the file has several and none is named.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// The commented project file for the built-in runbook, every key present.
pub const TEMPLATE: &str = include_str!("project_template.toml");

/// The secrets an environment may name, by the secret's name.
const SECRETS: [&str; 3] = [METRICS_TOKEN_SECRET, DATABASE_SECRET, WEBHOOK_SECRET];

/// The steps the app's metrics automate (a URL or a token is enough).
const METRICS_STEPS: &[&str] = &[
    "metrics-baseline",
    "metrics-endpoint",
    "panel-latency",
    "alert-latency-p95",
    "alert-5xx",
    "alert-rate-limit",
];

/// Which key of an environment section automates which manual steps of the
/// built-in runbook (`plan` names them).
const AUTOMATES: &[(&str, &[&str])] = &[
    ("ci_status", &["ci-green"]),
    ("coverage", &["ci-green"]),
    ("docs", &["docs-updated"]),
    ("changelog", &["changelog-version"]),
    ("cdn_purge", &["cdn-purge"]),
    ("app_log", &["app-log-errors"]),
    ("base_url", &["smoke-tests"]),
    ("metrics_url", METRICS_STEPS),
    ("metrics_token_env", METRICS_STEPS),
    (
        "database_url_env",
        &["db-snapshot", "migrations-consistent", "panel-sync-backlog"],
    ),
    ("watch.backlog_limit", &["panel-sync-backlog"]),
    ("webhook_url_env", &["status-update", "rollback-notice"]),
];

/// The project-file keys that would turn the built-in runbook's manual step
/// `step` into a check (empty: none can).
pub fn automatable_by(step: &str) -> Vec<&'static str> {
    AUTOMATES
        .iter()
        .filter(|(_, steps)| steps.contains(&step))
        .map(|(key, _)| *key)
        .collect()
}

/// The project file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The file could not be read.
    #[error("cannot read project file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mistake at a place in the file.
    #[error(transparent)]
    Parse(#[from] RunbookFileError),
    /// The environment asked for is not in the file.
    #[error("project file {} has no environment `{name}`; it has: {}", file.display(), available.join(", "))]
    NoEnvironment {
        /// The file.
        file: PathBuf,
        /// The environment asked for.
        name: String,
        /// The environments it has.
        available: Vec<String>,
    },
    /// A duration of the `watch` section does not parse.
    #[error("project file {}: environment `{environment}`, watch.{key}: {source}", file.display())]
    Duration {
        /// The file.
        file: PathBuf,
        /// The environment.
        environment: String,
        /// The key.
        key: &'static str,
        /// Why.
        #[source]
        source: DurationError,
    },
    /// `snapshot_copy_to` is not an `s3://BUCKET/PREFIX` URL.
    #[error("project file {}: environment `{environment}`, snapshot_copy_to: {source}", file.display())]
    CopyTo {
        /// The file.
        file: PathBuf,
        /// The environment.
        environment: String,
        /// Why.
        #[source]
        source: Box<crate::db::offsite::OffsiteError>,
    },
    /// A secret's environment variable is unset or empty.
    #[error(
        "secret `{secret}`: environment variable {var} is not set (or is empty); export it before running"
    )]
    SecretVarUnset {
        /// The secret's name.
        secret: String,
        /// The variable.
        var: String,
    },
    /// A secret's file could not be read.
    #[error("secret `{secret}`: cannot read {}: {source}", path.display())]
    SecretFile {
        /// The secret's name.
        secret: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret's file may be read by other accounts.
    #[error("secret `{secret}`: {} is readable by group or others (mode {mode:o}); restrict it with `chmod 600 {}`", path.display(), path.display())]
    SecretFileOpen {
        /// The secret's name.
        secret: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Which runbook the project runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunbookChoice {
    /// The built-in Escola runbook, shaped by the environment.
    Builtin,
    /// A `.toml` runbook file or a `.md` runbook, relative to the project
    /// file.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for RunbookChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(if text == "builtin" {
            RunbookChoice::Builtin
        } else {
            RunbookChoice::File(PathBuf::from(text))
        })
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// `builtin`, or a runbook file's path.
    pub runbook: RunbookChoice,
    /// The environments, by name.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSection>,
}

/// The alert watch's timing (`[environments.NAME.watch]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    /// Time between evaluations (default 15s).
    pub interval: Option<String>,
    /// How long to watch (default 24h).
    pub duration: Option<String>,
    /// A firing alert inside this window rolls back (default 15m).
    pub rollback_window: Option<String>,
    /// The most pending `sync_mutations` rows accepted: with the database
    /// URL, `panel-sync-backlog` watches the backlog against it.
    pub backlog_limit: Option<u64>,
}

/// One environment of the project file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSection {
    /// The API's URL: the smoke tests run against it.
    pub base_url: Option<String>,
    /// The app's `/metrics`: the metrics steps and alerts read it.
    pub metrics_url: Option<String>,
    /// Environment variable holding the metrics Bearer token.
    pub metrics_token_env: Option<String>,
    /// File holding the metrics Bearer token.
    pub metrics_token_file: Option<PathBuf>,
    /// Environment variable holding `mysql://USER:PASSWORD@HOST:PORT/DB`.
    pub database_url_env: Option<String>,
    /// File holding the database URL.
    pub database_url_file: Option<PathBuf>,
    /// Environment variable holding the Slack-compatible webhook URL.
    pub webhook_url_env: Option<String>,
    /// File holding the webhook URL.
    pub webhook_url_file: Option<PathBuf>,
    /// The application checkout where the commands run.
    pub app_dir: Option<PathBuf>,
    /// The checkout of the release where readiness checks look.
    pub release_dir: Option<PathBuf>,
    /// Where the database snapshot is written.
    pub snapshot_dir: Option<PathBuf>,
    /// Where the snapshot is copied off-site once taken (`s3://BUCKET/PREFIX`).
    pub snapshot_copy_to: Option<String>,
    /// Adds the coverage check after `ci-green`.
    pub coverage: Option<CoverageConfig>,
    /// Makes `ci-green` a check of the CI status API.
    pub ci_status: Option<CiStatusConfig>,
    /// Makes `docs-updated` a check.
    pub docs: Option<DocsConfig>,
    /// Makes `changelog-version` a check.
    pub changelog: Option<ChangelogConfig>,
    /// Makes `app-log-errors` a check.
    pub app_log: Option<AppLogConfig>,
    /// Makes `cdn-purge` an action.
    pub cdn_purge: Option<CachePurgeConfig>,
    /// The alert watch's timing.
    pub watch: Option<WatchSection>,
}

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file only its owner may read (trailing newline ignored).
    File(PathBuf),
}

impl SecretSource {
    /// The value of secret `name`, never kept anywhere but the result.
    pub fn read(&self, name: &str) -> Result<Secret, ProjectError> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
                _ => Err(ProjectError::SecretVarUnset {
                    secret: name.to_owned(),
                    var: var.clone(),
                }),
            },
            SecretSource::File(path) => {
                let failed = |source| ProjectError::SecretFile {
                    secret: name.to_owned(),
                    path: path.clone(),
                    source,
                };
                let metadata = std::fs::metadata(path).map_err(failed)?;
                refuse_open_file(name, path, &metadata)?;
                let text = std::fs::read_to_string(path).map_err(failed)?;
                Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
            }
        }
    }
}

#[cfg(unix)]
fn refuse_open_file(
    name: &str,
    path: &Path,
    metadata: &std::fs::Metadata,
) -> Result<(), ProjectError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ProjectError::SecretFileOpen {
            secret: name.to_owned(),
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_open_file(_: &str, _: &Path, _: &std::fs::Metadata) -> Result<(), ProjectError> {
    Ok(())
}

/// A project file read from disk.
#[derive(Debug, Clone)]
pub struct Project {
    /// The file, absolute.
    pub path: PathBuf,
    /// The sha256 of the bytes parsed.
    pub sha256: String,
    /// What it says.
    pub file: ProjectFile,
}

/// An environment of the project, resolved against the file's directory:
/// what the run's settings, secrets and built-in configuration take from it.
#[derive(Debug, Clone)]
pub struct ProjectEnvironment {
    /// The environment's name.
    pub name: String,
    /// The runbook, its path made absolute.
    pub runbook: RunbookChoice,
    /// Environment settings (`base_url`, `metrics_url`).
    pub settings: Vec<(&'static str, String)>,
    /// Secrets by name, and where to read each.
    pub secrets: Vec<(&'static str, SecretSource)>,
    /// Where the commands run.
    pub app_dir: Option<PathBuf>,
    /// The project file it came from, as a run records it.
    pub config: ConfigFile,
    section: EnvironmentSection,
    dir: PathBuf,
}

impl Project {
    /// Reads and parses the project file at `path`.
    pub fn load(path: &Path) -> Result<Project, ProjectError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let bytes = std::fs::read(&path).map_err(|source| ProjectError::Read {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let file = parse(&text, &path.display().to_string())?;
        Ok(Project {
            sha256: hex(&Sha256::digest(&bytes)),
            path,
            file,
        })
    }

    /// The environment `name`; unnamed: the only one, else
    /// [`DEFAULT_ENVIRONMENT`].
    pub fn environment(&self, name: Option<&str>) -> Result<ProjectEnvironment, ProjectError> {
        let envs = &self.file.environments;
        let name = match (name, envs.len()) {
            (Some(name), _) => name.to_owned(),
            (None, 1) => envs.keys().next().cloned().unwrap_or_default(),
            (None, _) => DEFAULT_ENVIRONMENT.to_owned(),
        };
        let section = envs.get(&name).ok_or_else(|| ProjectError::NoEnvironment {
            file: self.path.clone(),
            name: name.clone(),
            available: envs.keys().cloned().collect(),
        })?;
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        let runbook = match &self.file.runbook {
            RunbookChoice::Builtin => RunbookChoice::Builtin,
            RunbookChoice::File(path) => RunbookChoice::File(dir.join(path)),
        };
        let config = ConfigFile {
            path: self.path.clone(),
            sha256: self.sha256.clone(),
        };
        Ok(section.clone().resolve(name, runbook, dir, config))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a project file's text; `file` names it in errors. A secret given
/// as a value is refused with the key to use instead.
pub fn parse(text: &str, file: &str) -> Result<ProjectFile, ProjectError> {
    runbook_file::parse_toml(text, file).map_err(|e| match e {
        RunbookFileError::At {
            file,
            line,
            column,
            message,
        } => {
            let secret = SECRETS
                .iter()
                .find(|name| message.starts_with(&format!("unknown field `{name}`")));
            let message = match secret {
                Some(name) => format!(
                    "`{name}` would put a secret in the file: name the environment variable holding it (`{name}_env = \"VAR\"`) or a file only you can read (`{name}_file = \"path\"`)"
                ),
                None => message,
            };
            ProjectError::Parse(RunbookFileError::At {
                file,
                line,
                column,
                message,
            })
        }
        other => ProjectError::Parse(other),
    })
}

impl EnvironmentSection {
    /// The one place a section's keys become settings, secrets and the
    /// built-in configuration: every field is named here, so a new key
    /// does not compile until it is mapped.
    fn resolve(
        self,
        name: String,
        runbook: RunbookChoice,
        dir: PathBuf,
        config: ConfigFile,
    ) -> ProjectEnvironment {
        let EnvironmentSection {
            base_url,
            metrics_url,
            metrics_token_env,
            metrics_token_file,
            database_url_env,
            database_url_file,
            webhook_url_env,
            webhook_url_file,
            app_dir,
            release_dir: _,
            snapshot_dir: _,
            snapshot_copy_to: _,
            coverage: _,
            ci_status: _,
            docs: _,
            changelog: _,
            app_log: _,
            cdn_purge: _,
            watch: _,
        } = &self;
        let settings = [("base_url", base_url), ("metrics_url", metrics_url)]
            .into_iter()
            .filter_map(|(key, value)| value.clone().map(|v| (key, v)))
            .collect();
        let secrets = [
            (METRICS_TOKEN_SECRET, metrics_token_env, metrics_token_file),
            (DATABASE_SECRET, database_url_env, database_url_file),
            (WEBHOOK_SECRET, webhook_url_env, webhook_url_file),
        ]
        .into_iter()
        .filter_map(|(secret, var, path)| {
            let source = match (var, path) {
                (Some(var), _) => SecretSource::Env(var.clone()),
                (None, Some(path)) => SecretSource::File(dir.join(path)),
                (None, None) => return None,
            };
            Some((secret, source))
        })
        .collect();
        ProjectEnvironment {
            name,
            runbook,
            settings,
            secrets,
            app_dir: app_dir.as_ref().map(|d| dir.join(d)),
            config,
            section: self,
            dir,
        }
    }
}

impl ProjectEnvironment {
    /// The built-in runbook's configuration `base` (from the run's settings
    /// and secrets) with this environment's parts set.
    pub fn configure(&self, base: EscolaConfig) -> Result<EscolaConfig, ProjectError> {
        let EnvironmentSection {
            release_dir,
            snapshot_dir,
            snapshot_copy_to,
            coverage,
            ci_status,
            docs,
            changelog,
            app_log,
            cdn_purge,
            watch,
            ..
        } = &self.section;
        let mut config = EscolaConfig {
            release_dir: release_dir.as_ref().map(|d| self.dir.join(d)),
            coverage: coverage.clone(),
            ci_status: ci_status.clone(),
            docs: docs.clone(),
            changelog: changelog.clone(),
            app_log: app_log.clone(),
            cdn_purge: cdn_purge.clone(),
            snapshot_copy_to: snapshot_copy_to.clone().or(base.snapshot_copy_to),
            ..base
        };
        // Refused now, not when the step runs after the deploy began.
        if let Some(to) = &config.snapshot_copy_to {
            to.parse::<crate::db::offsite::SnapshotUrl>()
                .map_err(|source| ProjectError::CopyTo {
                    file: self.config.path.clone(),
                    environment: self.name.clone(),
                    source: Box::new(source),
                })?;
        }
        if let Some(dir) = snapshot_dir {
            config.snapshot_dir = self.dir.join(dir);
        }
        if let Some(watch) = watch {
            let parse = |key: &'static str, text: &Option<String>| {
                text.as_deref()
                    .map(duration::parse)
                    .transpose()
                    .map_err(|source| ProjectError::Duration {
                        file: self.config.path.clone(),
                        environment: self.name.clone(),
                        key,
                        source,
                    })
            };
            if let Some(d) = parse("interval", &watch.interval)? {
                config.watch.interval = d;
            }
            if let Some(d) = parse("duration", &watch.duration)? {
                config.watch.duration = d;
            }
            if let Some(d) = parse("rollback_window", &watch.rollback_window)? {
                config.watch.rollback_window = d;
            }
            config.watch.backlog_limit = watch.backlog_limit.or(config.watch.backlog_limit);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use escola_runbook_core::{Environment, Plan, RunOptions, Secrets};

    use super::*;

    fn template_env() -> ProjectEnvironment {
        let file = parse(TEMPLATE, FILE_NAME).expect("the template parses");
        let project = Project {
            path: PathBuf::from("/srv/deploy").join(FILE_NAME),
            sha256: String::new(),
            file,
        };
        project.environment(None).expect("one environment")
    }

    #[test]
    fn a_copy_to_that_is_not_an_s3_url_is_refused_when_configured() {
        let text =
            "runbook = \"builtin\"\n[environments.production]\nsnapshot_copy_to = \"gs://b/p\"\n";
        let project = Project {
            path: PathBuf::from("/srv/deploy").join(FILE_NAME),
            sha256: String::new(),
            file: parse(text, FILE_NAME).unwrap(),
        };
        let env = project.environment(None).unwrap();
        let err = env.configure(EscolaConfig::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("environment `production`, snapshot_copy_to"),
            "{text}"
        );
        assert!(text.contains("scheme `gs` is not supported"), "{text}");
    }

    #[test]
    fn the_template_parses_back_with_every_key_set() {
        let env = template_env();
        let settings: Vec<&str> = env.settings.iter().map(|(key, _)| *key).collect();
        assert_eq!(settings, ["base_url", "metrics_url"]);
        // One source per secret: the `_file` alternatives are commented out.
        let secrets: Vec<_> = env
            .secrets
            .iter()
            .map(|(name, s)| (*name, s.clone()))
            .collect();
        assert_eq!(
            secrets,
            [
                (
                    METRICS_TOKEN_SECRET,
                    SecretSource::Env("METRICS_TOKEN".into())
                ),
                (DATABASE_SECRET, SecretSource::Env("DATABASE_URL".into())),
                (WEBHOOK_SECRET, SecretSource::Env("SLACK_WEBHOOK".into())),
            ]
        );
        for key in [
            "metrics_token_file",
            "database_url_file",
            "webhook_url_file",
        ] {
            assert!(TEMPLATE.contains(&format!("# {key} = ")), "{key}");
        }
        assert_eq!(env.app_dir, Some(PathBuf::from("/srv/escola-connect")));
        assert!(env.section.watch.is_some(), "the template sets `watch`");
        let config = env
            .configure(EscolaConfig::default())
            .expect("the template's durations parse");
        assert_eq!(config.release_dir, Some(PathBuf::from("/srv/deploy/.")));
        assert_eq!(config.snapshot_dir, Path::new("/srv/deploy/snapshots"));
        assert_eq!(
            config.snapshot_copy_to.as_deref(),
            Some("s3://backups/escola/staging")
        );
        let parts = [
            ("coverage", config.coverage.is_some()),
            ("ci_status", config.ci_status.is_some()),
            ("docs", config.docs.is_some()),
            ("changelog", config.changelog.is_some()),
            ("app_log", config.app_log.is_some()),
            ("cdn_purge", config.cdn_purge.is_some()),
        ];
        for (key, set) in parts {
            assert!(set, "the template sets `{key}`");
        }
    }

    #[test]
    fn every_step_the_template_automates_is_named_by_its_key() {
        let env = template_env();
        let mut environment = Environment::new(&env.name);
        for (key, value) in &env.settings {
            environment = environment.with(*key, value);
        }
        let mut secrets = Secrets::new();
        for (name, _) in &env.secrets {
            secrets.insert(*name, Secret::new("x"));
        }
        let base = EscolaConfig::from_settings(".".into(), &environment, &secrets);
        let full = super::super::runbook(&env.configure(base).unwrap()).unwrap();
        let bare = super::super::runbook(&EscolaConfig::from_settings(
            ".".into(),
            &Environment::new("p"),
            &Secrets::new(),
        ))
        .unwrap();
        let kinds = |rb| Plan::new(rb, &RunOptions::default()).unwrap();
        let full = kinds(&full);
        for step in kinds(&bare).steps {
            let now = full.steps.iter().find(|s| s.step == step.step);
            let automated_now = now.is_some_and(|s| s.kind != "manual");
            if step.kind == "manual" && automated_now {
                assert!(!automatable_by(&step.step).is_empty(), "{}", step.step);
            }
        }
        for (key, _) in AUTOMATES {
            // `table.key`: the key inside the environment's table.
            let written = match key.split_once('.') {
                Some((table, key)) => {
                    TEMPLATE.contains(&format!("[environments.staging.{table}]\n"))
                        && TEMPLATE.contains(&format!("\n{key} = "))
                }
                None => {
                    TEMPLATE.contains(&format!("\n{key} = "))
                        || TEMPLATE.contains(&format!("[environments.staging.{key}]"))
                }
            };
            assert!(written, "the template lacks `{key}`");
        }
    }

    #[test]
    fn the_backlog_panel_is_watched_with_the_database_and_a_limit() {
        let env = template_env();
        let with_db = |secret: bool| {
            let mut secrets = Secrets::new();
            if secret {
                secrets.insert(DATABASE_SECRET, Secret::new("mysql://u:p@h/db"));
            }
            EscolaConfig::from_settings(".".into(), &Environment::new("s"), &secrets)
        };
        let kind = |config: &EscolaConfig| {
            let rb = super::super::runbook(config).unwrap();
            let plan = Plan::new(&rb, &RunOptions::default()).unwrap();
            let step = plan
                .steps
                .into_iter()
                .find(|s| s.step == "panel-sync-backlog")
                .unwrap();
            step.kind
        };
        let configured = env.configure(with_db(true)).unwrap();
        assert_eq!(configured.watch.backlog_limit, Some(500));
        assert_ne!(kind(&configured), "manual");
        // No database, or no limit: the panel stays a person's.
        assert_eq!(kind(&env.configure(with_db(false)).unwrap()), "manual");
        assert_eq!(kind(&with_db(true)), "manual");
        assert_eq!(
            automatable_by("panel-sync-backlog"),
            ["database_url_env", "watch.backlog_limit"]
        );
    }

    #[test]
    fn docs_configuration_names_every_key_of_the_template() {
        let doc = include_str!("../../../docs/configuration.md");
        for line in TEMPLATE.lines() {
            let line = line.trim_start_matches("# ").trim();
            let key = line
                .strip_prefix("[environments.staging.")
                .map(|part| part.trim_end_matches(']'))
                .or_else(|| line.split_once(" = ").map(|(k, _)| k.trim()));
            if let Some(key) = key.filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            {
                assert!(
                    doc.contains(&format!("`{key}`")),
                    "docs/configuration.md lacks `{key}`"
                );
            }
        }
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has a TOML example");
        parse(block, "docs/configuration.md").expect("the documented example parses");
    }

    #[test]
    fn a_secret_as_a_value_is_refused_with_the_key_to_use() {
        let text = "runbook = \"builtin\"\n[environments.p]\nmetrics_token = \"abc\"\n";
        let err = parse(text, "p.toml").unwrap_err().to_string();
        assert!(err.starts_with("p.toml:3:1:"), "{err}");
        assert!(err.contains("metrics_token_env"), "{err}");
        assert!(!err.contains("abc"), "{err}");
    }

    #[test]
    fn unknown_keys_name_their_place_and_the_nearest_key() {
        let text = "runbook = \"builtin\"\n[environments.p]\nbase_ulr = \"x\"\n";
        let err = parse(text, "p.toml").unwrap_err().to_string();
        assert!(err.starts_with("p.toml:3:1:"), "{err}");
        assert!(err.contains("did you mean `base_url`?"), "{err}");
    }

    #[test]
    fn the_environment_is_the_only_one_else_production_else_an_error() {
        let project = |text: &str| Project {
            path: PathBuf::from("/p/escola-runbook.toml"),
            sha256: String::new(),
            file: parse(text, "p").unwrap(),
        };
        let one = project("runbook = \"builtin\"\n[environments.staging]\n");
        assert_eq!(one.environment(None).unwrap().name, "staging");
        let two =
            project("runbook = \"r.toml\"\n[environments.staging]\n[environments.production]\n");
        let production = two.environment(None).unwrap();
        assert_eq!(production.name, "production");
        assert_eq!(production.runbook, RunbookChoice::File("/p/r.toml".into()));
        let err = two.environment(Some("qa")).unwrap_err().to_string();
        assert!(
            err.contains("no environment `qa`") && err.contains("production, staging"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let source = SecretSource::File(path.clone());
        let err = source.read("metrics_token").unwrap_err().to_string();
        assert!(err.contains("chmod 600") && err.contains("token"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.read("metrics_token").unwrap().expose(), "s3cret");
    }
}
