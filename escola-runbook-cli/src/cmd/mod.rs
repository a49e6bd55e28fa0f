//! One module per subcommand, plus what they share: loading the runbook,
//! the environment and the secrets from arguments.

pub mod approve;
pub mod check;
pub mod import;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod run;
pub mod smoke;
pub mod snapshot;
pub mod status;
pub mod watch;

use std::path::{Path, PathBuf};

use escola_runbook_checks::builtin_runbook::RunbookSource;
use escola_runbook_checks::escola::EscolaConfig;
use escola_runbook_core::formats::markdown::ImportOptions;
use escola_runbook_core::formats::runbook_source::{self as source, SourcedRunbook};
use escola_runbook_core::journal::read_journal;
use escola_runbook_core::runs;
use escola_runbook_core::{
    Environment, Event, Redactor, RunOptions, RunRecord, Runbook, RunbookOrigin, Secret, Secrets,
    identity,
};

use crate::cli::{Pair, RunbookArgs, SelectionArgs};
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
    for Pair { key, value } in &args.settings {
        environment = environment.with(key, value);
    }
    Ok((environment, secrets(&args.secrets, redactor)?))
}

/// Reads `--secret NAME=ENV_VAR` pairs, registering each value with
/// `redactor`.
pub fn secrets(pairs: &[Pair], redactor: &Redactor) -> Result<Secrets, CliError> {
    let mut secrets = Secrets::with_redactor(redactor.clone());
    for pair in pairs {
        match std::env::var(&pair.value) {
            Ok(value) if !value.is_empty() => secrets.insert(&pair.key, Secret::new(value)),
            unset => {
                return Err(CliError::SecretUnset {
                    pair: pair.clone(),
                    empty: unset.is_ok(),
                });
            }
        }
    }
    Ok(secrets)
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
        None => RunbookSource::Builtin(Box::new(EscolaConfig::from_settings(
            app_dir,
            &environment,
            &secrets,
        ))),
    };
    let sourced = source::load(&source, &escola_runbook_checks::catalog())?;
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
            return Err(CliError::MarkdownAsRunbook(path.clone()));
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
        .ok_or_else(|| CliError::NotAFilePath(path.to_owned()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            CliError::Write {
                path: path.to_owned(),
                source,
            }
        })
}

/// The run `journal` records, and its events; the journal's caveats (a
/// torn last line...) go to stderr.
pub fn read_run(journal: &Path) -> Result<(RunRecord, Vec<Event>), CliError> {
    let contents = read_journal(journal)?;
    for warning in &contents.warnings {
        eprintln!("warning: {warning}");
    }
    let record = RunRecord::from_events(&contents.events).map_err(|source| CliError::Record {
        journal: journal.to_owned(),
        source,
    })?;
    Ok((record, contents.events))
}

/// The journal of the latest run under `run_dir` of the runbook called
/// `name` from `source` (`None`: the latest run of any runbook). When the
/// directory's latest run is of another runbook, says which one was
/// passed over.
pub fn latest_of(
    run_dir: &Path,
    runbook: Option<(&str, &RunbookOrigin)>,
) -> Result<PathBuf, CliError> {
    let found = runs::latest(run_dir, runbook)?;
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
