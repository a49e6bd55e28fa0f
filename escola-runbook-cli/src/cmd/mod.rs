//! One module per subcommand, plus what they share: loading the runbook,
//! the environment and the secrets from arguments.

pub mod check;
pub mod plan;
pub mod report;
pub mod run;

use escola_runbook_checks::escola::{self, EscolaConfig};
use escola_runbook_core::{Environment, Redactor, RunOptions, Runbook, Secret, Secrets};

use crate::CliError;
use crate::cli::{RunbookArgs, SelectionArgs};

/// A runbook ready to plan or run.
pub struct Loaded {
    pub runbook: Runbook,
    pub environment: Environment,
    pub secrets: Secrets,
}

/// Builds the environment and secrets from `--env`, `--set`, `--secret`.
pub fn environment(
    args: &RunbookArgs,
    redactor: &Redactor,
) -> Result<(Environment, Secrets), CliError> {
    let mut environment = Environment::new(args.environment.clone());
    for pair in &args.settings {
        let (key, value) = split_pair(
            pair,
            "--set",
            "KEY=VALUE, e.g. --set base_url=https://api.example.org",
        )?;
        environment = environment.with(key, value);
    }
    let mut secrets = Secrets::with_redactor(redactor.clone());
    for pair in &args.secrets {
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
    Ok((environment, secrets))
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

/// The built-in Escola runbook for `args`.
pub fn load(args: &RunbookArgs, redactor: &Redactor) -> Result<Loaded, CliError> {
    let (environment, secrets) = environment(args, redactor)?;
    // Absolute, so plans and records say exactly where commands run.
    let app_dir = std::path::absolute(&args.app_dir).unwrap_or_else(|_| args.app_dir.clone());
    let config = EscolaConfig {
        app_dir,
        ..EscolaConfig::default()
    };
    let runbook = escola::runbook(&config)
        .map_err(|e| CliError::usage(format!("the runbook is not valid: {e}")))?;
    Ok(Loaded {
        runbook,
        environment,
        secrets,
    })
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
