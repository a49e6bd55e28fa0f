//! One module per subcommand, plus what they share: loading the runbook,
//! the environment and the secrets from the project file and arguments.

pub mod alerts;
pub mod approve;
pub mod check;
pub mod compare;
pub mod console;
pub mod import;
pub mod init;
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
use escola_runbook_checks::escola::project::{self, Project, ProjectEnvironment, RunbookChoice};
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

/// A runbook ready to plan or run.
pub struct Loaded {
    pub runbook: Runbook,
    pub environment: Environment,
    pub secrets: Secrets,
    /// Where the runbook came from, for the run's record.
    pub source: RunbookOrigin,
}

/// What the command line and the project file give a command: the
/// environment, the secrets, and the project file's environment if any.
pub struct Given {
    /// The target: the project file's settings, `--set` over them.
    pub environment: Environment,
    /// `--secret`, then the secrets the project file names.
    pub secrets: Secrets,
    /// The project file's environment, when a project file is read.
    pub project: Option<ProjectEnvironment>,
    /// Secrets the project file names whose values were not read
    /// ([`SecretValues::Named`]): they count as given for the plan.
    pub unread: Vec<&'static str>,
}

impl Given {
    /// Where the commands run: `--app-dir`, else the project file's
    /// `app_dir`, else the current directory.
    pub fn app_dir(&self, args: &RunbookArgs) -> PathBuf {
        args.app_dir
            .clone()
            .or_else(|| self.project.as_ref().and_then(|p| p.app_dir.clone()))
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The built-in runbook's configuration for commands in `app_dir`:
    /// what the settings and secrets automate, and the project file's parts.
    pub fn builtin(&self, app_dir: PathBuf) -> Result<EscolaConfig, CliError> {
        let named = |name: &str| self.secrets.get(name).is_some() || self.unread.contains(&name);
        configured(
            self.project.as_ref(),
            EscolaConfig::from_named(app_dir, &self.environment, named),
        )
    }
}

/// The built-in runbook's configuration: what `environment` and `secrets`
/// automate, with the project file's parts set.
pub fn builtin(
    project: Option<&ProjectEnvironment>,
    app_dir: PathBuf,
    environment: &Environment,
    secrets: &Secrets,
) -> Result<EscolaConfig, CliError> {
    configured(
        project,
        EscolaConfig::from_settings(app_dir, environment, secrets),
    )
}

/// `base` with the project file's parts set.
fn configured(
    project: Option<&ProjectEnvironment>,
    base: EscolaConfig,
) -> Result<EscolaConfig, CliError> {
    Ok(match project {
        Some(project) => project.configure(base)?,
        None => base,
    })
}

/// The project file: `--config FILE`, else `./escola-runbook.toml` when it
/// exists; its environment `name`, else `--env`, else its default.
fn project(args: &RunbookArgs, name: Option<&str>) -> Result<Option<ProjectEnvironment>, CliError> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None => {
            let default = PathBuf::from(project::FILE_NAME);
            if !default.is_file() {
                return Ok(None);
            }
            default
        }
    };
    let name = name.or(args.environment.as_deref());
    Ok(Some(Project::load(&path)?.environment(name)?))
}

/// Whether a command needs the values of the secrets the project file
/// names, or only to know they are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretValues {
    /// To run: a secret that cannot be read stops the command.
    Read,
    /// To describe (`plan`): one that cannot be read is a warning, and
    /// counts as given, as it will be when `run` reads it.
    Named,
}

/// The environment and secrets from the project file (environment `name`,
/// else `--env`), with `--set` and `--secret` overriding it.
pub fn given(
    args: &RunbookArgs,
    redactor: &Redactor,
    name: Option<&str>,
) -> Result<Given, CliError> {
    given_with(args, redactor, name, SecretValues::Read)
}

/// [`given`], reading the project file's secrets as `values` says.
fn given_with(
    args: &RunbookArgs,
    redactor: &Redactor,
    name: Option<&str>,
    values: SecretValues,
) -> Result<Given, CliError> {
    let project = project(args, name)?;
    let name = match (name, &args.environment, &project) {
        (Some(name), _, _) => name.to_owned(),
        (None, Some(name), _) => name.clone(),
        (None, None, Some(project)) => project.name.clone(),
        (None, None, None) => project::DEFAULT_ENVIRONMENT.to_owned(),
    };
    let mut environment = Environment::new(name);
    for (key, value) in project.iter().flat_map(|p| &p.settings) {
        environment = environment.with(*key, value);
    }
    for Pair { key, value } in &args.settings {
        environment = environment.with(key, value);
    }
    let mut secrets = secrets(&args.secrets, redactor)?;
    let mut unread = Vec::new();
    for (secret, source) in project.iter().flat_map(|p| &p.secrets) {
        if secrets.get(secret).is_some() {
            continue;
        }
        match (source.read(secret), values) {
            (Ok(value), _) => secrets.insert(*secret, value),
            (
                Err(
                    e @ (project::ProjectError::SecretVarUnset { .. }
                    | project::ProjectError::SecretFile { .. }),
                ),
                SecretValues::Named,
            ) => {
                eprintln!("warning: {e} (the plan counts it as given)");
                unread.push(*secret);
            }
            (Err(e), _) => return Err(e.into()),
        }
    }
    Ok(Given {
        environment,
        secrets,
        project,
        unread,
    })
}

/// Builds the environment and secrets from the project file, `--env`,
/// `--set`, `--secret`.
pub fn environment(
    args: &RunbookArgs,
    redactor: &Redactor,
) -> Result<(Environment, Secrets), CliError> {
    given(args, redactor, None).map(|g| (g.environment, g.secrets))
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
/// The project file's secrets need only be named, not readable: this is
/// for describing the runbook (`plan`).
pub fn load_to_describe(args: &RunbookArgs, redactor: &Redactor) -> Result<Loaded, CliError> {
    load_given(args, given_with(args, redactor, None, SecretValues::Named)?)
}

/// [`load`] with what is already [`given`].
pub fn load_given(args: &RunbookArgs, given: Given) -> Result<Loaded, CliError> {
    let app_dir = absolute(&given.app_dir(args));
    let source = match named_source(args, &app_dir, given.project.as_ref())? {
        Some(source) => source,
        None => RunbookSource::Builtin(Box::new(given.builtin(app_dir)?)),
    };
    let sourced = match (
        source::load(&source, &escola_runbook_checks::catalog()),
        &given.project,
    ) {
        (Ok(sourced), _) => sourced,
        (Err(e @ source::SourceError::Builtin(_)), Some(project)) => {
            return Err(CliError::ProjectRunbook {
                file: project.config.path.clone(),
                environment: project.name.clone(),
                source: e,
            });
        }
        (Err(e), _) => return Err(e.into()),
    };
    Ok(finish(sourced, given.environment, given.secrets))
}

/// `path` made absolute, so plans and records say exactly where commands run.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The runbook file `--runbook` or `--markdown` names, else the project
/// file's (a Markdown import's commands run in `app_dir`); `None` for the
/// built-in runbook.
pub fn named_source(
    args: &RunbookArgs,
    app_dir: &Path,
    project: Option<&ProjectEnvironment>,
) -> Result<Option<RunbookSource>, CliError> {
    let is_markdown = |path: &Path| {
        path.extension()
            .is_some_and(|e| e == "md" || e == "markdown")
    };
    let markdown = |path: &Path| RunbookSource::Markdown {
        path: path.to_owned(),
        options: ImportOptions {
            command_cwd: Some(app_dir.display().to_string()),
            phase_level: args.phases.phase_level,
            ..ImportOptions::default()
        },
    };
    let from_project = || match project.map(|p| &p.runbook) {
        Some(RunbookChoice::File(path)) if is_markdown(path) => Some(markdown(path)),
        Some(RunbookChoice::File(path)) => Some(RunbookSource::File(path.clone())),
        Some(RunbookChoice::Builtin) | None => None,
    };
    Ok(match (&args.runbook_file, &args.markdown) {
        (Some(path), _) if is_markdown(path) => {
            return Err(CliError::MarkdownAsRunbook(path.clone()));
        }
        (Some(path), _) => Some(RunbookSource::File(path.clone())),
        (None, Some(path)) => Some(markdown(path)),
        (None, None) => from_project(),
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
