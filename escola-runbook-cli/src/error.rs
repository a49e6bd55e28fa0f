//! The error that ends a command: every library error the CLI meets
//! converts into it (`?`), its message adds the flags that resolve it, and
//! [`CliError::process_exit_code`] is the one place that gives each kind its
//! exit code. The library says what happened, in terms of its data; this
//! says what to type next. The CLI's own refusals are variants here too, so
//! every message the CLI ends with is written in this file.
//!
//! The model is cargo-nextest's `ExpectedError`: one enum at the edge, one
//! match for the codes, so a code never depends on which call site
//! happened to meet the error.

use std::path::PathBuf;

use escola_runbook_checks::db::offsite::OffsiteError;
use escola_runbook_checks::db::{
    ConnectError, CryptError, PruneError, RestoreError, RestoreTestError, SnapshotError, SwapError,
    VerifyError,
};
use escola_runbook_checks::escola::project::ProjectError;
use escola_runbook_checks::escola::{self, EscolaError};
use escola_runbook_checks::metrics::compute::MatcherError;
use escola_runbook_checks::notify::WebhookError;
use escola_runbook_checks::smoke::{LoadError as SuiteLoadError, SmokeError};
use escola_runbook_core::catalog::{PairError, ParamsError, UnknownName};
use escola_runbook_core::console::{ConsoleError, LinkError};
use escola_runbook_core::decisions::{DecideError, DecisionError, Refusal};
use escola_runbook_core::deploy_lock::LockError;
use escola_runbook_core::formats::markdown::{ExportError, MarkdownError};
use escola_runbook_core::formats::rules_file::RulesFileError;
use escola_runbook_core::formats::runbook_file::RunbookFileError;
use escola_runbook_core::formats::runbook_source::{SourceError, SourceMismatch};
use escola_runbook_core::journal::JournalReadError;
use escola_runbook_core::report::ReportError;
use escola_runbook_core::runs::LookupError;
use escola_runbook_core::status::HistoryError;
use escola_runbook_core::{
    ModelError, Need, RecordError, ResumeError, RunError, RunbookOrigin, WatchError, exit,
};

use crate::cli::Pair;

/// Why a command ended without its result. `Display` is the whole message
/// the user reads.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--runbook` names a Markdown document.
    #[error(
        "--runbook {path}: that is a Markdown document; run it with --markdown {path}, or convert it with `escola-runbook import {path}`",
        path = .0.display()
    )]
    MarkdownAsRunbook(PathBuf),
    /// `--app-dir` is not a directory (and the run is real).
    #[error(
        "--app-dir {} is not a directory; point it at the application checkout where the runbook's commands run",
        .0.display()
    )]
    NoAppDir(PathBuf),
    /// `resume --env` names another environment than the run's.
    #[error(
        "--env {given}: run {run_id} targets environment `{recorded}`; a run cannot change environment"
    )]
    OtherEnvironment {
        /// The one given.
        given: String,
        /// The run.
        run_id: String,
        /// The run's.
        recorded: String,
    },
    /// `resume --app-dir` would move a Markdown import's commands.
    #[error(
        "--app-dir {}: run {run_id} ran its commands in {}; resume without --app-dir to keep them there, or pass --markdown {} --app-dir {0} to move them (compared step by step)",
        app_dir.display(),
        ran_in.display(),
        document.display()
    )]
    CommandsMoved {
        /// The one given.
        app_dir: PathBuf,
        /// The run.
        run_id: String,
        /// Where its commands ran.
        ran_in: PathBuf,
        /// Its Markdown document.
        document: PathBuf,
    },
    /// A step interrupted while changing something, and no decision.
    #[error(
        "step `{step}` ({title}) was interrupted while changing something, and what it changed is unknown; \
         decide with {ON_INTERRUPTED}"
    )]
    UndecidedInterrupted {
        /// The step.
        step: String,
        /// Its title.
        title: String,
    },
    /// Standard input closed while asking about an interrupted step.
    #[error("standard input closed; decide with {ON_INTERRUPTED}")]
    InputClosed,
    /// Manual steps, no terminal to confirm them, and no `--yes`.
    #[error(
        "the selected steps include manual steps, and standard input is not a terminal to confirm them: \
         run in a terminal, or pass --yes to confirm them non-interactively (recorded as such)"
    )]
    NoTerminal,
    /// `--db-lock` without the database URL secret.
    #[error(
        "--db-lock needs the database URL: pass --secret {}=ENV_VAR",
        escola::DATABASE_SECRET
    )]
    DbLockWithoutUrl,
    /// `watch` of rules reading the app's metrics without a metrics target.
    #[error(
        "no target: rules that read the app's /metrics need --set metrics_url=https://api.example.org/metrics (or --set base_url=...)"
    )]
    NoWatchTarget,
    /// `watch` of a `promql` rule with no Prometheus server named.
    #[error(
        "rule `{0}` evaluates PromQL but no Prometheus server is named: pass --prometheus http://prometheus:9090 (or write prometheus = \"URL\" in the rule)"
    )]
    NoPrometheus(String),
    /// `replay` of a run that watched nothing.
    #[error("run {0} recorded no measurements over time (no watch step ran); nothing to replay")]
    NothingToReplay(String),
    /// `--original` with another format than Markdown.
    #[error(
        "--original goes with --format md: it ticks the Markdown runbook the run was imported from"
    )]
    OriginalNeedsMarkdown,
    /// `--original` without a path, for a run that did not come from Markdown.
    #[error(
        "--original: run {run_id} ran {origin}, not a Markdown document; --original ticks the Markdown runbook a run was imported from"
    )]
    OriginalNotMarkdown {
        /// The run.
        run_id: String,
        /// What it ran.
        origin: Box<RunbookOrigin>,
    },
    /// `--original` without a path, for a run whose journal names no runbook.
    #[error(
        "--original: run {0}'s journal does not record its runbook (it predates that record); pass the document: --original RUNBOOK.md"
    )]
    OriginalNotRecorded(String),
    /// `-o` (or another output path) that names no file.
    #[error("{} is not a file path", .0.display())]
    NotAFilePath(PathBuf),
    /// `--token-env` names an unset or empty variable.
    #[error(
        "--token-env {0}: environment variable {0} is not set or empty; export it with the token"
    )]
    TokenEnvUnset(String),
    /// `--token-file` is empty.
    #[error("--token-file {}: the file is empty", .0.display())]
    TokenFileEmpty(PathBuf),
    /// A saved scrape is not a metrics page.
    #[error("{flag} {}: not a Prometheus or OpenMetrics page: {source}", path.display())]
    SavedScrape {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: escola_runbook_checks::metrics::parse::ParseError,
    },
    /// A `compare` threshold outside what it can mean.
    #[error("--{}: {source}", source.name.replace('_', "-"))]
    Threshold {
        /// The threshold and why.
        #[from]
        source: escola_runbook_checks::metrics::compare::ThresholdError,
    },
    /// `metrics --url` is not an http(s) URL.
    #[error("--url {0:?} is not an http(s) URL; write e.g. https://api.example.org/metrics")]
    NotHttpUrl(String),
    /// A path given as a snapshot is not a directory.
    #[error(
        "{} is not a directory; give a snapshot directory (see `escola-runbook snapshot list`)",
        .0.display()
    )]
    NotASnapshot(PathBuf),
    /// `--db-url-env` names an unset variable.
    #[error(
        "--db-url-env {0}: the variable is not set; export it as mysql://USER:PASSWORD@HOST:PORT/DB"
    )]
    DbUrlEnvUnset(String),
    /// No database URL source (clap's argument group requires one).
    #[error("give --db-url-env VAR or --db-url-file FILE")]
    NoDbUrl,
    /// The database URL read is empty.
    #[error("the database URL is empty")]
    EmptyDbUrl,
    /// A `--secret NAME=ENV_VAR` whose variable holds nothing.
    #[error(
        "--secret {pair}: environment variable {} is {}; export it with the secret's value",
        pair.value,
        if *.empty { "empty" } else { "not set" }
    )]
    SecretUnset {
        /// What was given.
        pair: Pair,
        /// Set, but empty.
        empty: bool,
    },
    /// A file a flag names (`--token-file`, `--db-url-file`, `--original`)
    /// cannot be read.
    #[error("{flag} {}: cannot read it: {source}", path.display())]
    ReadFlagFile {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// `--original` names a document that is not text.
    #[error("--original {}: not UTF-8 text: {source}", path.display())]
    NotText {
        /// The document.
        path: PathBuf,
        /// Where it stops being UTF-8.
        source: std::string::FromUtf8Error,
    },
    /// A run could not start or had to stop.
    #[error("{}", run_message(.0))]
    Run(#[from] RunError),
    /// A run cannot be resumed.
    #[error("{}", resume_message(.0))]
    Resume(#[from] ResumeError),
    /// A resume whose runbook no longer matches the run's steps.
    #[error("{source}\n(run {run_id} came from {recorded}; this resume loaded {loaded})")]
    RunbookChanged {
        /// The run.
        run_id: String,
        /// What the journal records as the run's runbook.
        recorded: String,
        /// What this resume loaded.
        loaded: Box<RunbookOrigin>,
        /// The difference.
        source: ResumeError,
    },
    /// A resume whose runbook is not the run's.
    #[error("cannot resume run {run_id}: {source}\n{}; nothing was run", mismatch_todo(.source))]
    SourceRefused {
        /// The run.
        run_id: String,
        /// What differs.
        source: Box<SourceMismatch>,
    },
    /// No run was found.
    #[error("{}", lookup_message(.0))]
    Lookup(#[from] LookupError),
    /// A journal could not be read.
    #[error(transparent)]
    ReadJournal(#[from] JournalReadError),
    /// An approval decision was refused; nothing was recorded.
    #[error("refused, nothing recorded: {0}")]
    Refused(#[from] Refusal),
    /// The console could not start or stopped.
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// An approval link could not be made.
    #[error("no link made: {0}")]
    Link(#[from] LinkError),
    /// `--viewer-token-env` names a variable that is not set.
    #[error("--viewer-token-env {var}: the variable is {}; export the token every page will require", if *.empty { "empty" } else { "not set" })]
    ViewerTokenUnset {
        /// The variable.
        var: String,
        /// Set, but empty.
        empty: bool,
    },
    /// An approval decision could not be recorded.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// The run history could not be read.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A journal's records do not make a run.
    #[error("{}: {source}", journal.display())]
    Record {
        /// The journal.
        journal: PathBuf,
        /// What is wrong with its records.
        source: RecordError,
    },
    /// The runbook (file, Markdown or built-in) could not be loaded.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A Markdown runbook could not be imported.
    #[error(transparent)]
    Markdown(#[from] MarkdownError),
    /// A runbook file could not be written as TOML.
    #[error(transparent)]
    RunbookFile(#[from] RunbookFileError),
    /// The built-in runbook cannot be built from its own configuration.
    #[error("the built-in runbook is not valid: {0}")]
    Builtin(#[from] EscolaError),
    /// The built-in runbook, as a project file's environment configures
    /// it, cannot be built: the fault is in that file.
    #[error("project file {}: environment `{environment}`: {source}", file.display())]
    ProjectRunbook {
        /// The project file.
        file: PathBuf,
        /// The environment.
        environment: String,
        /// Why.
        source: SourceError,
    },
    /// `--original`: the document cannot be ticked.
    #[error("--original {}: {source}", path.display())]
    Original {
        /// The document.
        path: PathBuf,
        /// Why not.
        source: ExportError,
    },
    /// `--original` without a path: the recorded document is not there as
    /// the run imported it.
    #[error(
        "--original: {0}; restore that version, or pass --original RUNBOOK.md to tick another one by step id"
    )]
    OriginalGone(#[source] SourceMismatch),
    /// A rules file is unreadable or wrong.
    #[error(transparent)]
    Rules(#[from] RulesFileError),
    /// A watch's schedule is wrong.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// A runbook built here is not valid.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// `check NAME` names no check.
    #[error("{0}; `escola-runbook check --list` shows them all")]
    UnknownCheck(#[from] UnknownName),
    /// A `--param` word is not `KEY=VALUE`.
    #[error("--param: {0}")]
    Param(#[from] PairError),
    /// A check's parameters are wrong.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A smoke suite or collection could not be loaded.
    #[error(transparent)]
    SmokeSuite(#[from] SuiteLoadError),
    /// A smoke suite could not be run (bad input: nothing was sent).
    #[error("{}", smoke_message(.0))]
    Smoke(#[from] SmokeError),
    /// A snapshot could not be taken (or was stopped).
    #[error("{}", snapshot_message(.0))]
    Snapshot(#[from] SnapshotError),
    /// A snapshot does not match its manifest.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A snapshot could not be restored.
    #[error("{}", restore_message(.0))]
    Restore(#[from] RestoreError),
    /// A restore with a swap did not happen, or did not finish.
    #[error(transparent)]
    Swap(#[from] SwapError),
    /// An age recipient or identity was refused.
    #[error(transparent)]
    Crypt(#[from] CryptError),
    /// Snapshots could not be pruned.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// A restore test could not give a verdict.
    #[error("{}", restore_test_message(.0))]
    RestoreTest(#[from] RestoreTestError),
    /// An off-site copy could not be made, listed or read.
    #[error("{}", offsite_message(.0))]
    Offsite(#[from] OffsiteError),
    /// `snapshot verify --db-url-env` (or `--db-url-file`) without
    /// `--restore-test`: verify needs no server, so the URL would be ignored.
    #[error(
        "--db-url-env and --db-url-file name the server of --restore-test; verify alone needs no server: add --restore-test to restore-test the snapshot, or drop the flag"
    )]
    DbUrlWithoutRestoreTest,
    /// `snapshot prune` with neither a directory nor `--from` (clap
    /// requires one).
    #[error("give the snapshot directory, or --from s3://BUCKET/PREFIX")]
    NoPruneTarget,
    /// A snapshot directory could not be listed.
    #[error("cannot list {}: {source}", dir.display())]
    ListSnapshots {
        /// The directory.
        dir: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// `--errors` is not a regular expression.
    #[error("--errors: {0}")]
    Matcher(#[from] MatcherError),
    /// The metrics could not be read.
    #[error("{}", metrics_message(.0))]
    Metrics(#[from] escola_runbook_checks::metrics::SourceError),
    /// `--secret webhook_url=...` is not a webhook URL.
    #[error(
        "--secret {}: {source}; give the Slack-compatible incoming webhook URL (https://...)",
        escola::WEBHOOK_SECRET
    )]
    Webhook {
        /// Why it is not.
        source: WebhookError,
    },
    /// `--db-lock` with a database URL that cannot be used.
    #[error("--db-lock: {0}")]
    DbLock(#[source] ConnectError),
    /// A report could not be rendered.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A run's reports could not be written; its journal is complete.
    #[error(
        "{source}; the journal in {} is complete: `escola-runbook report {run_id}` renders it again",
        dir.display()
    )]
    Reports {
        /// The run directory.
        dir: PathBuf,
        /// The run.
        run_id: String,
        /// Why not.
        source: ReportError,
    },
    /// Output could not be rendered (`what` says which, in which format).
    #[error("cannot render {what}: {source}")]
    Render {
        /// "the plan as JSON".
        what: &'static str,
        /// Why not.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A stop signal cannot be listened for, so a run could not stop
    /// cleanly.
    #[error("cannot listen for {signal} to stop cleanly: {source}")]
    Signals {
        /// "Ctrl-C", "SIGTERM", "SIGHUP".
        signal: &'static str,
        /// Why not.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The project file cannot be used.
    #[error("{}", project_message(.0))]
    Project(#[from] ProjectError),
    /// The run's project file changed since it started.
    #[error(
        "run {run_id} started with project file {} (sha256 {recorded}); it is now {now}: restore it to resume, or start a new run",
        path.display()
    )]
    ConfigChanged {
        /// The run.
        run_id: String,
        /// The project file.
        path: PathBuf,
        /// Its hash when the run started.
        recorded: String,
        /// Its hash now.
        now: String,
    },
    /// `init` would overwrite a project file.
    #[error(
        "{} already exists; edit it, or replace it with `escola-runbook init --force`",
        .0.display()
    )]
    ProjectExists(PathBuf),
}

/// A project-file error, with the flag that picks another environment.
fn project_message(e: &ProjectError) -> String {
    match e {
        ProjectError::NoEnvironment { .. } => format!("{e}; pick one with --env NAME"),
        _ => e.to_string(),
    }
}

impl From<DecideError> for CliError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::Refused(r) => CliError::Refused(r),
            DecideError::Write(w) => CliError::Decision(w),
        }
    }
}

impl CliError {
    /// Output that could not be rendered as `what` ("the plan as JSON"),
    /// for `map_err`.
    pub fn render<E>(what: &'static str) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |source| CliError::Render {
            what,
            source: Box::new(source),
        }
    }

    /// The exit code this error ends the process with, one of [`exit`]:
    /// [`exit::USAGE`] when the input was refused and nothing was done,
    /// [`exit::STEP_FAILED`] when something failed after it was accepted,
    /// [`exit::STOPPED`] for a stop signal, [`exit::JOURNAL_FAILED`] for a
    /// journal that cannot be written. The codes are documented (README,
    /// `docs/`) and never change meaning.
    pub fn process_exit_code(&self) -> i32 {
        match self {
            CliError::Run(RunError::Journal(_)) => exit::JOURNAL_FAILED,
            CliError::Snapshot(SnapshotError::Cancelled)
            | CliError::Offsite(OffsiteError::Cancelled(_))
            | CliError::RestoreTest(RestoreTestError::Restore(RestoreError::Cancelled)) => {
                exit::STOPPED
            }
            CliError::Restore(
                RestoreError::TargetNotEmpty { .. }
                | RestoreError::ChooseSource { .. }
                | RestoreError::UnknownSource { .. }
                | RestoreError::NeedsIdentity { .. }
                | RestoreError::Crypt(_),
            )
            | CliError::RestoreTest(RestoreTestError::Restore(
                RestoreError::NeedsIdentity { .. } | RestoreError::Crypt(_),
            ))
            | CliError::Swap(
                SwapError::BackupNotEmpty(_)
                | SwapError::NoTarget(_)
                | SwapError::Restore {
                    source:
                        RestoreError::ChooseSource { .. }
                        | RestoreError::UnknownSource { .. }
                        | RestoreError::NeedsIdentity { .. }
                        | RestoreError::Crypt(_),
                    ..
                },
            )
            | CliError::Verify(VerifyError::Crypt(CryptError::WrongIdentity { .. })) => exit::USAGE,
            CliError::Swap(SwapError::Restore {
                source: RestoreError::Cancelled,
                ..
            }) => exit::STOPPED,
            CliError::Decision(DecisionError::TooLong { .. }) => exit::USAGE,
            CliError::Link(LinkError::Refused(_) | LinkError::DeadlinePassed { .. })
            | CliError::Console(
                ConsoleError::ViewerTokenRequired { .. } | ConsoleError::Io { .. },
            )
            | CliError::ViewerTokenUnset { .. } => exit::USAGE,
            CliError::Link(_) | CliError::Console(_) => exit::STEP_FAILED,
            CliError::RunbookFile(_)
            | CliError::Decision(_)
            | CliError::Builtin(_)
            | CliError::Snapshot(_)
            | CliError::Offsite(
                OffsiteError::NoBucket { .. }
                | OffsiteError::AccessDenied { .. }
                | OffsiteError::Store { .. }
                | OffsiteError::NoSnapshot(_)
                | OffsiteError::Local(_)
                | OffsiteError::Mismatch { .. }
                | OffsiteError::Io { .. }
                | OffsiteError::Runs(_)
                | OffsiteError::NotPruned(_)
                | OffsiteError::PruneStopped { .. },
            )
            | CliError::Verify(_)
            | CliError::Restore(_)
            | CliError::Swap(_)
            | CliError::RestoreTest(_)
            | CliError::Prune(_)
            | CliError::Metrics(_)
            | CliError::Report(_)
            | CliError::Reports { .. }
            | CliError::Render { .. }
            | CliError::Write { .. }
            | CliError::Signals { .. }
            | CliError::Runtime(_) => exit::STEP_FAILED,
            CliError::MarkdownAsRunbook(_)
            | CliError::NoAppDir(_)
            | CliError::OtherEnvironment { .. }
            | CliError::CommandsMoved { .. }
            | CliError::UndecidedInterrupted { .. }
            | CliError::InputClosed
            | CliError::NoTerminal
            | CliError::DbLockWithoutUrl
            | CliError::NoWatchTarget
            | CliError::NoPrometheus(_)
            | CliError::NothingToReplay(_)
            | CliError::OriginalNeedsMarkdown
            | CliError::OriginalNotMarkdown { .. }
            | CliError::OriginalNotRecorded(_)
            | CliError::NotAFilePath(_)
            | CliError::TokenEnvUnset(_)
            | CliError::TokenFileEmpty(_)
            | CliError::NotHttpUrl(_)
            | CliError::SavedScrape { .. }
            | CliError::Threshold { .. }
            | CliError::NotASnapshot(_)
            | CliError::DbUrlEnvUnset(_)
            | CliError::NoDbUrl
            | CliError::EmptyDbUrl
            | CliError::SecretUnset { .. }
            | CliError::ReadFlagFile { .. }
            | CliError::NotText { .. }
            | CliError::Run(_)
            | CliError::Resume(_)
            | CliError::RunbookChanged { .. }
            | CliError::SourceRefused { .. }
            | CliError::Lookup(_)
            | CliError::ReadJournal(_)
            | CliError::Refused(_)
            | CliError::History(_)
            | CliError::Record { .. }
            | CliError::Source(_)
            | CliError::ProjectRunbook { .. }
            | CliError::Markdown(_)
            | CliError::Original { .. }
            | CliError::OriginalGone(_)
            | CliError::Rules(_)
            | CliError::Watch(_)
            | CliError::Model(_)
            | CliError::UnknownCheck(_)
            | CliError::Param(_)
            | CliError::Params(_)
            | CliError::SmokeSuite(_)
            | CliError::Smoke(_)
            | CliError::ListSnapshots { .. }
            | CliError::Offsite(
                OffsiteError::BadUrl { .. }
                | OffsiteError::Config { .. }
                | OffsiteError::NoCredentials { .. },
            )
            | CliError::DbUrlWithoutRestoreTest
            | CliError::NoPruneTarget
            | CliError::Crypt(_)
            | CliError::Matcher(_)
            | CliError::Webhook { .. }
            | CliError::DbLock(_)
            | CliError::Project(_)
            | CliError::ConfigChanged { .. }
            | CliError::ProjectExists(_) => exit::USAGE,
        }
    }
}

/// A run that could not start or had to stop: a journal that cannot be
/// written says what to do; a bad selection or directory names its flag.
fn run_message(e: &RunError) -> String {
    match e {
        RunError::Journal(e) => format!(
            "the run stopped because its journal cannot be written: {e}. \
             The journal keeps every record written before; a step whose outcome was lost shows as \
             \"outcome not recorded\". Free the space (or fix the mount), then continue with \
             `escola-runbook resume`"
        ),
        RunError::Resume(e) => resume_message(e),
        RunError::UnknownStep { .. } => format!("{e}; list the steps with `escola-runbook plan`"),
        RunError::EmptySelection { phases, only } => format!(
            "--phase {phases:?} and --only {only:?} select no step: every --only step must be in a selected phase"
        ),
        RunError::RunDir { .. } => format!("{e}; pass --run-dir with a writable directory"),
        RunError::Locked(lock) => lock_message(lock),
        other => other.to_string(),
    }
}

/// The flag that decides an interrupted step.
const ON_INTERRUPTED: &str = "--on-interrupted rerun|done|abort";

/// A run that cannot be resumed, and what to do instead.
fn resume_message(e: &ResumeError) -> String {
    match e {
        ResumeError::RolledBack(..) => {
            format!("{e}; start a new run, or run the rollback phase with `run --phase rollback`")
        }
        ResumeError::Undecided(step) => format!(
            "step `{step}` was interrupted while changing something; decide: {ON_INTERRUPTED}"
        ),
        other => other.to_string(),
    }
}

/// A deploy lock held by someone else: wait, or break it.
fn lock_message(e: &LockError) -> String {
    match e {
        LockError::Held { .. } => format!(
            "{e}; wait for that run to finish, or break the lock with --break-lock --reason \"...\""
        ),
        other => other.to_string(),
    }
}

/// What a check needed and was not given, as the flag that gives it.
pub fn need_hint(need: &Need) -> String {
    match need {
        Need::Setting { name, example, .. } => format!("give it with --set {name}={example}"),
        Need::Secret { name, .. } => format!("pass it with --secret {name}=ENV_VAR"),
    }
}

fn metrics_message(e: &escola_runbook_checks::metrics::SourceError) -> String {
    use escola_runbook_checks::metrics::SourceError;
    match e {
        SourceError::TooLarge { .. } => format!("{e} (--max-body)"),
        SourceError::TooManySeries { .. } => format!("{e} (--by LABELS, --max-body)"),
        other => other.to_string(),
    }
}

fn smoke_message(e: &SmokeError) -> String {
    match e {
        SmokeError::UndefinedVariable { name, .. } => {
            format!("{e}; give it with --var {name}=VALUE")
        }
        SmokeError::NoBaseUrl { .. } => format!("{e}; pass --base-url"),
        other => other.to_string(),
    }
}

fn snapshot_message(e: &SnapshotError) -> String {
    match e {
        SnapshotError::NoDatabase => format!("{e}; name one in the URL or with --database"),
        other => other.to_string(),
    }
}

fn restore_test_message(e: &RestoreTestError) -> String {
    match e {
        RestoreTestError::Restore(r) => format!("restore test: {}", restore_message(r)),
        other => other.to_string(),
    }
}

fn offsite_message(e: &OffsiteError) -> String {
    match e {
        OffsiteError::Config { .. } => format!(
            "{e}; set AWS_ENDPOINT_URL (with AWS_ALLOW_HTTP=true for http), AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        other => other.to_string(),
    }
}

fn restore_message(e: &RestoreError) -> String {
    match e {
        RestoreError::NeedsIdentity { .. } => format!("{e} with --identity FILE"),
        other => other.to_string(),
    }
}

/// A run that could not be found, with what to pass to find it.
fn lookup_message(e: &LookupError) -> String {
    const RUN_DIR: &str = "; pass --run-dir where `run` wrote them";
    let hint = match e {
        LookupError::NotFound { known, .. } if known.is_empty() => RUN_DIR,
        LookupError::CannotList { .. } => RUN_DIR,
        LookupError::NoRunOf { .. } => ": resume it by id, or give the runbook it ran",
        LookupError::NotFound { .. } | LookupError::NoRuns { .. } => "",
    };
    format!("{e}{hint}")
}

/// What resolves a resume refused because its runbook is not the run's.
fn mismatch_todo(e: &SourceMismatch) -> String {
    match e {
        SourceMismatch::NotRecorded => {
            "give its runbook: --markdown RUNBOOK.md, --runbook FILE.toml or --builtin (finished steps are then compared step by step)".to_owned()
        }
        SourceMismatch::OtherKind { recorded, .. } => format!(
            "resume with no runbook flag to reload it{}, or start a new run",
            match recorded.as_ref() {
                RunbookOrigin::Builtin { .. } => " (or --builtin)".to_owned(),
                file => format!(" (or{})", runbook_flag(file)),
            }
        ),
        SourceMismatch::Gone { path, .. } => format!(
            "put the file back at {}, or pass the runbook where it is now ({} FILE) to compare it step by step",
            path.display(),
            file_flag(e)
        ),
        SourceMismatch::Changed { path, .. } => format!(
            "restore the version the run started with, or pass {} {} to resume with this version if no finished step changed (compared step by step)",
            file_flag(e),
            path.display()
        ),
        SourceMismatch::ConfigChanged { .. } => {
            "resume with the run's --set, --secret and --app-dir, or pass --builtin to resume with this configuration (compared step by step)".to_owned()
        }
        SourceMismatch::ImportOptions(_) | SourceMismatch::Load(_) => {
            "pass the runbook explicitly (--markdown or --runbook)".to_owned()
        }
    }
}

/// The flag that loads `origin` again (" --markdown PATH"), empty for the
/// built-in runbook.
pub fn runbook_flag(origin: &RunbookOrigin) -> String {
    match origin {
        RunbookOrigin::Builtin { .. } => String::new(),
        RunbookOrigin::TomlFile { path, .. } => format!(" --runbook {}", path.display()),
        RunbookOrigin::MarkdownFile { path, .. } => format!(" --markdown {}", path.display()),
    }
}

/// The flag that names a file of the kind `e` is about.
fn file_flag(e: &SourceMismatch) -> &'static str {
    match e {
        SourceMismatch::Gone { kind, .. } | SourceMismatch::Changed { kind, .. }
            if *kind == "TOML runbook file" =>
        {
            "--runbook"
        }
        _ => "--markdown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_get_the_flags_that_resolve_them() {
        let e = CliError::from(RunError::Resume(ResumeError::Undecided("migrate".into())));
        assert_eq!(
            e.to_string(),
            "step `migrate` was interrupted while changing something; decide: --on-interrupted rerun|done|abort"
        );
        assert_eq!(e.process_exit_code(), exit::USAGE);
        let e = CliError::from(RunError::EmptySelection {
            phases: vec!["deploy".into()],
            only: vec!["smoke-tests".into()],
        });
        assert_eq!(
            e.to_string(),
            "--phase [\"deploy\"] and --only [\"smoke-tests\"] select no step: every --only step must be in a selected phase"
        );
        let held = LockError::Held {
            lock: "deploy lock x".into(),
            holder: Box::new(escola_runbook_core::LockOwner {
                user: "ana".into(),
                host: "laptop".into(),
                pid: 7,
                run_id: "r0".into(),
                since: chrono::DateTime::UNIX_EPOCH,
                heartbeat: chrono::DateTime::UNIX_EPOCH,
            }),
            stale: None,
        };
        assert_eq!(
            CliError::from(RunError::Locked(Box::new(held))).to_string(),
            "deploy lock x is held by ana on laptop (pid 7, run r0) since 1970-01-01 00:00:00 UTC, \
             last heartbeat 00:00:00 UTC; wait for that run to finish, or break the lock with \
             --break-lock --reason \"...\""
        );
        let unknown = UnknownName {
            kind: escola_runbook_core::catalog::EntryKind::Check,
            name: "comand".into(),
            suggestion: Some("command".into()),
        };
        assert_eq!(
            CliError::from(unknown).to_string(),
            "no built-in check is called `comand` (did you mean `command`?); \
             `escola-runbook check --list` shows them all"
        );
        let e = CliError::from(ResumeError::RolledBack("r1".into(), "rollback completed"));
        assert_eq!(
            e.to_string(),
            "run r1 was rolled back (rollback completed); start a new run, or run the rollback phase with `run --phase rollback`"
        );
    }

    #[test]
    fn each_kind_of_error_has_its_documented_exit_code() {
        let journal = escola_runbook_core::JournalWriteError {
            path: PathBuf::from("/runs/r1/journal.jsonl"),
            action: "append to".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(
            CliError::from(RunError::Journal(journal)).process_exit_code(),
            exit::JOURNAL_FAILED
        );
        assert_eq!(
            CliError::from(SnapshotError::Cancelled).process_exit_code(),
            exit::STOPPED
        );
        assert_eq!(
            CliError::Write {
                path: "/x".into(),
                source: std::io::Error::other("read-only")
            }
            .process_exit_code(),
            exit::STEP_FAILED
        );
        assert_eq!(
            CliError::NoAppDir("/nope".into()).process_exit_code(),
            exit::USAGE
        );
        assert_eq!(
            CliError::from(LookupError::NoRuns {
                root: "/runs".into()
            })
            .process_exit_code(),
            exit::USAGE
        );
        let url: escola_runbook_checks::db::offsite::SnapshotUrl = "s3://b/p".parse().unwrap();
        assert_eq!(
            CliError::from(OffsiteError::NoCredentials {
                url,
                message: "PUT http://169.254.169.254/latest/api/token: 403".into(),
            })
            .process_exit_code(),
            exit::USAGE
        );
    }

    #[test]
    fn a_run_store_error_says_where_to_look() {
        let e = CliError::from(LookupError::NotFound {
            asked: "r9".into(),
            root: "/runs".into(),
            known: Vec::new(),
        });
        assert!(
            e.to_string()
                .ends_with("; pass --run-dir where `run` wrote them"),
            "{e}"
        );
    }
}
