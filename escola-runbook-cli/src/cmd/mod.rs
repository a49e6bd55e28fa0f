//! One module per subcommand, plus what they share: loading the runbook,
//! the environment and the secrets from arguments.

pub mod check;
pub mod import;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod run;
pub mod smoke;
pub mod snapshot;
pub mod watch;

use std::path::{Path, PathBuf};

use escola_runbook_checks::builtin_runbook::RunbookSource;
use escola_runbook_checks::escola::{self, EscolaConfig, SmokeTests};
use escola_runbook_core::formats::markdown::ImportOptions;
use escola_runbook_core::formats::runbook_source::{self as source, SourcedRunbook};
use escola_runbook_core::runs::{self, LookupError};
use escola_runbook_core::{
    Environment, Redactor, RunOptions, Runbook, RunbookOrigin, Secret, Secrets, identity,
};

use crate::cli::{RunbookArgs, SelectionArgs};
use crate::error::CliError;

/// The environment name when `--env` is not given.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// A runbook ready to plan or run.
pub struct Loaded {
    pub runbook: Runbook,
    pub environment: Environment,
    pub secrets: Secrets,
    /// Where the runbook came from, for the run's record.
    pub source: RunbookOrigin,
}

/// Builds the environment and secrets from `--env`, `--set`, `--secret`.
pub fn environment(
    args: &RunbookArgs,
    redactor: &Redactor,
) -> Result<(Environment, Secrets), CliError> {
    let name = args
        .environment
        .clone()
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
    let mut environment = Environment::new(name);
    for pair in &args.settings {
        let (key, value) = split_pair(
            pair,
            "--set",
            "KEY=VALUE, e.g. --set base_url=https://api.example.org",
        )?;
        environment = environment.with(key, value);
    }
    Ok((environment, secrets(&args.secrets, redactor)?))
}

/// Reads `--secret NAME=ENV_VAR` pairs, registering each value with
/// `redactor`.
pub fn secrets(pairs: &[String], redactor: &Redactor) -> Result<Secrets, CliError> {
    let mut secrets = Secrets::with_redactor(redactor.clone());
    for pair in pairs {
        let (name, var) = split_pair(
            pair,
            "--secret",
            "NAME=ENV_VAR, e.g. --secret metrics_token=METRICS_TOKEN",
        )?;
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => secrets.insert(name, Secret::new(value)),
            Ok(_) => {
                return Err(CliError::usage(format!(
                    "--secret {pair}: environment variable {var} is empty; export it with the secret's value"
                )));
            }
            Err(_) => {
                return Err(CliError::usage(format!(
                    "--secret {pair}: environment variable {var} is not set; export it with the secret's value"
                )));
            }
        }
    }
    Ok(secrets)
}

fn split_pair<'a>(
    pair: &'a str,
    flag: &str,
    expected: &str,
) -> Result<(&'a str, &'a str), CliError> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => Err(CliError::usage(format!(
            "{flag} {pair:?}: expected {expected}"
        ))),
    }
}

/// The runbook for `args`: `--runbook FILE.toml`, `--markdown RUNBOOK.md`
/// (its commands run in `--app-dir`), or the built-in Escola runbook. A
/// file's `[environment]` fills settings that `--set` does not give, and
/// its secret variables are read when set; caveats go to stderr.
pub fn load(args: &RunbookArgs, redactor: &Redactor) -> Result<Loaded, CliError> {
    let (environment, secrets) = environment(args, redactor)?;
    let app_dir = absolute(&args.app_dir());
    let source = match named_source(args, &app_dir)? {
        Some(source) => source,
        None => RunbookSource::Builtin(Box::new(builtin_config(app_dir, &environment, &secrets))),
    };
    let sourced = source::load(&source, &escola_runbook_checks::catalog())
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(finish(sourced, environment, secrets))
}

/// `path` made absolute, so plans and records say exactly where commands run.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The runbook file `--runbook` or `--markdown` names (a Markdown import's
/// commands run in `app_dir`); `None` for the built-in runbook.
pub fn named_source(args: &RunbookArgs, app_dir: &Path) -> Result<Option<RunbookSource>, CliError> {
    Ok(match (&args.runbook_file, &args.markdown) {
        (Some(path), _)
            if path
                .extension()
                .is_some_and(|e| e == "md" || e == "markdown") =>
        {
            return Err(CliError::usage(format!(
                "--runbook {}: that is a Markdown document; run it with --markdown {0}, or convert it with `escola-runbook import {0}`",
                path.display()
            )));
        }
        (Some(path), _) => Some(RunbookSource::File(path.clone())),
        (None, Some(path)) => Some(RunbookSource::Markdown {
            path: path.clone(),
            options: ImportOptions {
                command_cwd: Some(app_dir.display().to_string()),
                phase_level: args.phases.phase_level,
                ..ImportOptions::default()
            },
        }),
        (None, None) => None,
    })
}

/// The built-in runbook's configuration: commands in `app_dir`, and each
/// part turned on by the settings and secrets given.
pub fn builtin_config(
    app_dir: PathBuf,
    environment: &Environment,
    secrets: &Secrets,
) -> EscolaConfig {
    EscolaConfig {
        app_dir,
        webhook_secret: secrets
            .get(escola::WEBHOOK_SECRET)
            .map(|_| escola::WEBHOOK_SECRET.to_owned()),
        // With no API to point at, the smoke tests stay a person's job
        // rather than a check that can only error.
        smoke: if environment.get("base_url").is_some() {
            SmokeTests::default()
        } else {
            SmokeTests::Manual
        },
        // `--set metrics_url=...` or `--secret metrics_token=...` turns
        // the runbook's metrics steps into checks of that endpoint.
        metrics: (environment.get("metrics_url").is_some()
            || secrets.get(escola::METRICS_TOKEN_SECRET).is_some())
        .then(escola::MetricsConfig::default),
        // `--secret database_url=...` turns the snapshot and the
        // migrations/tables step into checks of that database.
        database_secret: secrets
            .get(escola::DATABASE_SECRET)
            .map(|_| escola::DATABASE_SECRET.to_owned()),
        ..EscolaConfig::default()
    }
}

/// A loaded runbook with its file's `[environment]` folded in: its settings
/// fill those not given, and its secret variables are read when set.
/// Caveats go to stderr.
pub fn finish(
    sourced: SourcedRunbook,
    mut environment: Environment,
    mut secrets: Secrets,
) -> Loaded {
    for warning in &sourced.warnings {
        eprintln!("warning: {warning}");
    }
    let file_env = sourced.environment.to_environment(&environment.name);
    for (key, value) in file_env.settings {
        if environment.get(&key).is_none() {
            environment = environment.with(key, value);
        }
    }
    for (name, var) in sourced.environment.secret_vars() {
        if secrets.get(name).is_some() {
            continue;
        }
        match std::env::var(&var) {
            Ok(value) if !value.is_empty() => secrets.insert(name, Secret::new(value)),
            _ => eprintln!(
                "warning: the runbook names environment variable {var} for secret `{name}`, and it is not set; steps that need it will report a check error"
            ),
        }
    }
    Loaded {
        runbook: sourced.runbook,
        environment,
        secrets,
        source: sourced.origin,
    }
}

/// Run options from the selection flags.
pub fn options(selection: &SelectionArgs) -> RunOptions {
    RunOptions {
        phases: selection.phases.clone(),
        only: selection.only.clone(),
        ..RunOptions::default()
    }
}

/// Writes `text` to `path` atomically (temporary file, then rename), so an
/// interrupted write never leaves half a file under the real name.
pub fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| CliError::usage(format!("{} is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CliError::failure(format!("cannot write {}: {e}", path.display()))
        })
}

/// Finds the journal for RUN: a journal file, a run directory, a run id
/// under `run_dir`, or `latest`.
pub fn locate(run: &str, run_dir: &Path) -> Result<PathBuf, CliError> {
    runs::locate(run, run_dir).map_err(lookup_error)
}

/// The journal of the latest run under `run_dir` of the runbook called
/// `name` from `source` (`None`: the latest run of any runbook). When the
/// directory's latest run is of another runbook, says which one was
/// passed over.
pub fn latest_of(
    run_dir: &Path,
    runbook: Option<(&str, &RunbookOrigin)>,
) -> Result<PathBuf, CliError> {
    let found = runs::latest(run_dir, runbook).map_err(lookup_error)?;
    if let (Some(last), Some((name, _))) = (&found.passed_over, runbook) {
        eprintln!(
            "the latest run in {}, {}, is of {}; resuming {}, the latest of runbook `{name}`",
            run_dir.display(),
            last.id,
            last.describe_runbook(),
            found.run.id
        );
    }
    Ok(found.run.journal)
}

/// A run that could not be found, with what to pass to find it.
fn lookup_error(e: LookupError) -> CliError {
    const RUN_DIR: &str = "; pass --run-dir where `run` wrote them";
    let hint = match &e {
        LookupError::NotFound { known, .. } if known.is_empty() => RUN_DIR,
        LookupError::CannotList { .. } => RUN_DIR,
        LookupError::NoRunOf { .. } => ": resume it by id, or give the runbook it ran",
        LookupError::NotFound { .. } | LookupError::NoRuns { .. } => "",
    };
    CliError::usage(format!("{e}{hint}"))
}

/// Who is running: `--operator`, else the process's operator
/// ([`identity::operator`]: `$USER`, `$LOGNAME`, the account).
pub fn operator_name(explicit: Option<&str>) -> String {
    explicit
        .filter(|name| !name.trim().is_empty())
        .map_or_else(identity::operator, str::to_owned)
}

/// This machine's name, for the record and the deploy lock.
pub fn hostname() -> String {
    identity::host()
}
