//! `escola-runbook run` and `escola-runbook resume`: both build an executor
//! the same way and differ only in where the run comes from.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_checks::builtin_runbook::RunbookSource;
use escola_runbook_checks::db::lock::MysqlLock;
use escola_runbook_checks::escola;
use escola_runbook_checks::notify::WebhookNotifier;
use escola_runbook_core::deploy_lock::{DeployLock, FileLock, Locks};
use escola_runbook_core::formats::runbook_source::{self as source, SourceMismatch};
use escola_runbook_core::journal::read_journal;
use escola_runbook_core::report::write_reports;
use escola_runbook_core::{
    CancellationToken, Confirmer, Decision, Environment, Executor, InterruptedDecision, PhaseKind,
    PreapprovedConfirmer, Redactor, Resolution, ResumeError, ResumePlan, RunOptions, RunRecord,
    Runbook, RunbookOrigin, RunbookOutline, Secrets, StepKind, exit, run_directory,
};

use crate::cli::{DefaultDecision, ExecutionArgs, OnInterrupted, ResumeArgs, RunArgs};
use crate::cmd::Loaded;
use crate::error::{CliError, resume_error, run_error};
use crate::prompt::{PromptConfirmer, ask_line};
use crate::signals::{RunningGroups, StopSignals};
use crate::ui::{TermCaps, TerminalView};

/// How long a deploy lock lives without a heartbeat.
const LOCK_LEASE: Duration = Duration::from_secs(120);

pub async fn run(args: RunArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let loaded = super::load(&args.runbook, redactor)?;
    let mut options = super::options(&args.selection);
    options.dry_run = args.dry_run;
    Executor::validate_selection(&loaded.runbook, &options).map_err(run_error)?;
    let app_dir = args.runbook.app_dir();
    if !args.dry_run && !app_dir.is_dir() {
        return Err(CliError::usage(format!(
            "--app-dir {} is not a directory; point it at the application checkout where the runbook's commands run",
            app_dir.display()
        )));
    }
    execute(loaded, options, &args.execution, None).await
}

pub async fn resume(args: ResumeArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let (given_environment, secrets) = super::environment(&args.runbook, redactor)?;
    let journal = journal_to_resume(&args, &given_environment, &secrets)?;
    let contents = read_journal(&journal).map_err(|e| CliError::usage(e.to_string()))?;
    for warning in &contents.warnings {
        eprintln!("warning: {warning}");
    }
    let record = RunRecord::from_events(&contents.events)
        .map_err(|e| CliError::usage(format!("{}: {e}", journal.display())))?;
    let run_id = record.run.run_id.clone();
    let loaded = runbook_to_resume(&args, &record, given_environment, secrets)?;
    let plan = ResumePlan::new(&contents.events, &loaded.runbook).map_err(|e| match e {
        ResumeError::RunbookChanged { .. } => CliError::usage(format!(
            "{e}\n(run {run_id} came from {}; this resume loaded {})",
            record.source().map_or_else(
                || "a runbook its journal does not name".to_owned(),
                ToString::to_string
            ),
            loaded.source
        )),
        e => resume_error(e),
    })?;
    let operator = operator(&args.execution);
    let mut resolutions = Vec::new();
    for step in &plan.interrupted {
        let (decision, comment) = match args.on_interrupted {
            Some(choice) => (
                match choice {
                    OnInterrupted::Rerun => InterruptedDecision::Rerun,
                    OnInterrupted::Done => InterruptedDecision::Done,
                    OnInterrupted::Abort => InterruptedDecision::Abort,
                },
                args.execution.comment.clone(),
            ),
            None if std::io::stdin().is_terminal() => {
                ask_interrupted(&step.phase, &step.step, &step.title).await?
            }
            None => {
                return Err(CliError::usage(format!(
                    "step `{}` ({}) was interrupted while changing something, and what it changed is unknown; \
                     decide with --on-interrupted rerun|done|abort",
                    step.step, step.title
                )));
            }
        };
        resolutions.push(Resolution {
            step: step.step.clone(),
            decision,
            who: operator.clone(),
            comment,
        });
    }
    eprintln!(
        "resuming run {}: {} steps done, {} to run, {} interrupted",
        plan.record.run.run_id,
        plan.done.len(),
        plan.to_run.len(),
        plan.interrupted.len()
    );
    let options = RunOptions::default();
    execute(loaded, options, &args.execution, Some((plan, resolutions))).await
}

/// A resume refused because its runbook is not the run's: what differs,
/// and the flag that resolves it.
fn source_refused(run_id: &str, e: SourceMismatch) -> CliError {
    let todo = match &e {
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
            file_flag(&e)
        ),
        SourceMismatch::Changed { path, .. } => format!(
            "restore the version the run started with, or pass {} {} to resume with this version if no finished step changed (compared step by step)",
            file_flag(&e),
            path.display()
        ),
        SourceMismatch::ConfigChanged { .. } => {
            "resume with the run's --set, --secret and --app-dir, or pass --builtin to resume with this configuration (compared step by step)".to_owned()
        }
        SourceMismatch::ImportOptions(_) | SourceMismatch::Load(_) => {
            "pass the runbook explicitly (--markdown or --runbook)".to_owned()
        }
    };
    CliError::usage(format!(
        "cannot resume run {run_id}: {e}\n{todo}; nothing was run"
    ))
}

/// The flag that loads `origin` again (" --markdown PATH"), empty for the
/// built-in runbook.
fn runbook_flag(origin: &RunbookOrigin) -> String {
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

/// The runbook `resume` names on the command line (`--runbook`,
/// `--markdown`, `--builtin`), with commands in `app_dir`.
fn named_for_resume(
    args: &ResumeArgs,
    app_dir: &Path,
    environment: &Environment,
    secrets: &Secrets,
) -> Result<Option<RunbookSource>, CliError> {
    let source = super::named_source(&args.runbook, app_dir)?;
    Ok(source.or_else(|| {
        args.builtin.then(|| {
            RunbookSource::Builtin(Box::new(super::builtin_config(
                app_dir.to_owned(),
                environment,
                secrets,
            )))
        })
    }))
}

/// The journal to continue: RUN, or for `latest` the latest run of the
/// runbook named (of any runbook when none is).
fn journal_to_resume(
    args: &ResumeArgs,
    environment: &Environment,
    secrets: &Secrets,
) -> Result<PathBuf, CliError> {
    let run_dir = &args.execution.run_dir;
    if args.run != "latest" {
        return super::locate(&args.run, run_dir);
    }
    let app_dir = super::absolute(&args.runbook.app_dir());
    let identity = match named_for_resume(args, &app_dir, environment, secrets)? {
        Some(source) => {
            let loaded = source::load(&source, &escola_runbook_checks::catalog())
                .map_err(|e| CliError::usage(e.to_string()))?;
            Some((loaded.runbook.name().to_owned(), loaded.origin))
        }
        None => None,
    };
    super::latest_of(run_dir, identity.as_ref().map(|(n, o)| (n.as_str(), o)))
}

/// The run's runbook again, in its environment (`--set` overriding
/// settings) with commands where they ran; or the runbook named, if it is
/// of the run's kind.
fn runbook_to_resume(
    args: &ResumeArgs,
    record: &RunRecord,
    given_environment: Environment,
    secrets: Secrets,
) -> Result<Loaded, CliError> {
    let run_id = &record.run.run_id;
    // The run keeps its environment: the lock key and the record depend on it.
    let recorded_environment = &record.run.environment;
    if let Some(name) = &args.runbook.environment {
        if name != &recorded_environment.name {
            return Err(CliError::usage(format!(
                "--env {name}: run {run_id} targets environment `{}`; a run cannot change environment",
                recorded_environment.name
            )));
        }
    }
    let mut environment = recorded_environment.clone();
    environment.settings.extend(given_environment.settings);
    let recorded = record.source();
    let ran_in = recorded.and_then(source::recorded_app_dir);
    let app_dir = match &args.runbook.app_dir {
        Some(dir) => super::absolute(dir),
        None => ran_in
            .clone()
            .unwrap_or_else(|| super::absolute(Path::new("."))),
    };
    let given = named_for_resume(args, &app_dir, &environment, &secrets)?;
    // A Markdown import records where its commands run; moving them is a
    // change of runbook, made explicit by naming the document.
    if let (Some(RunbookOrigin::MarkdownFile { path, .. }), None, Some(ran_in)) =
        (recorded, &given, ran_in.filter(|dir| dir != &app_dir))
    {
        return Err(CliError::usage(format!(
            "--app-dir {}: run {run_id} ran its commands in {}; resume without --app-dir to keep them there, or pass --markdown {} --app-dir {0} to move them (compared step by step)",
            app_dir.display(),
            ran_in.display(),
            path.display()
        )));
    }
    let builtin = super::builtin_config(app_dir, &environment, &secrets);
    let sourced = source::load_for_resume(
        recorded,
        given.as_ref(),
        &builtin,
        &escola_runbook_checks::catalog(),
    )
    .map_err(|e| source_refused(run_id, e))?;
    Ok(super::finish(sourced, environment, secrets))
}

async fn ask_interrupted(
    phase: &str,
    step: &str,
    title: &str,
) -> Result<(InterruptedDecision, Option<String>), CliError> {
    let question = format!(
        "\n? [{phase}/{step}] {title}\n  was running when the run died: what it changed is unknown.\n  rerun · done (it completed; say how you know) · abort"
    );
    loop {
        let line = ask_line(&question).await.ok_or_else(|| {
            CliError::usage("standard input closed; decide with --on-interrupted rerun|done|abort")
        })?;
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let comment = (!rest.trim().is_empty()).then(|| rest.trim().to_owned());
        match word {
            "rerun" => return Ok((InterruptedDecision::Rerun, comment)),
            "done" => return Ok((InterruptedDecision::Done, comment)),
            "abort" => return Ok((InterruptedDecision::Abort, comment)),
            other => eprintln!("  `{other}` is not an answer: type rerun, done or abort"),
        }
    }
}

fn operator(args: &ExecutionArgs) -> String {
    super::operator_name(args.operator.as_deref())
}

/// Runs (or resumes) with the terminal view, prompts or `--yes`, Ctrl-C,
/// the deploy lock, and the reports written at the end.
async fn execute(
    loaded: Loaded,
    mut options: RunOptions,
    args: &ExecutionArgs,
    resume: Option<(ResumePlan, Vec<Resolution>)>,
) -> Result<i32, CliError> {
    let Loaded {
        mut runbook,
        environment,
        secrets,
        source,
    } = loaded;
    options.operator = operator(args);
    options.host = super::hostname();
    options.source = Some(source);
    let dry_run = resume
        .as_ref()
        .map_or(options.dry_run, |(plan, _)| plan.record.run.dry_run);
    if let Some(deadline) = args.confirm_timeout {
        let default = match args.confirm_default {
            DefaultDecision::Confirm => Decision::Confirmed,
            DefaultDecision::Decline => Decision::Declined,
            DefaultDecision::Skip => Decision::Skipped,
            DefaultDecision::Abort => Decision::Abort,
        };
        runbook = runbook.with_confirm_deadline(deadline, default);
    }
    if !dry_run
        && !args.yes
        && needs_answers(&runbook, &options, resume.as_ref())
        && !std::io::stdin().is_terminal()
    {
        return Err(CliError::usage(
            "the selected steps include manual steps, and standard input is not a terminal to confirm them: \
             run in a terminal, or pass --yes to confirm them non-interactively (recorded as such)",
        ));
    }

    let view = Arc::new(TerminalView::new(TermCaps::detect()));
    view.set_outline(RunbookOutline::of(&runbook));
    let confirmer: Arc<dyn Confirmer> = if args.yes {
        let mut c = PreapprovedConfirmer::new(options.operator.clone());
        if let Some(comment) = &args.comment {
            c = c.with_comment(comment.clone());
        }
        Arc::new(c)
    } else {
        Arc::new(PromptConfirmer::new(options.operator.clone(), view.clone()))
    };
    let cancel = CancellationToken::new();
    let groups = Arc::new(RunningGroups::default());
    let interrupt = {
        let view = view.clone();
        StopSignals::install()?.stop_run(cancel.clone(), groups.clone(), move |signal| {
            view.println(&format!(
                "\n{}: stopping the running step and finishing the record (press Ctrl-C again to quit at once)",
                signal.name()
            ));
        })
    };

    let db_url = match (args.db_lock, secrets.get(escola::DATABASE_SECRET)) {
        (false, _) => None,
        (true, Some(url)) => Some(url.clone()),
        (true, None) => {
            return Err(CliError::usage(format!(
                "--db-lock needs the database URL: pass --secret {}=ENV_VAR",
                escola::DATABASE_SECRET
            )));
        }
    };
    // With a webhook, the run's milestones are posted as they happen (not
    // in a dry-run); each message and its delivery lands in the journal.
    let notifier = match secrets.get(escola::WEBHOOK_SECRET) {
        Some(url) => Some(WebhookNotifier::new(url.clone(), None).map_err(|e| {
            CliError::usage(format!(
                "--secret {}: {e}; give the Slack-compatible incoming webhook URL (https://...)",
                escola::WEBHOOK_SECRET
            ))
        })?),
        None => None,
    };
    let runbook_name = runbook.name().to_owned();
    let environment_name = environment.name.clone();
    let run_root = args.run_dir.clone();
    let lock = FileLock::for_runbook(
        &run_root.join("locks"),
        runbook.name(),
        &environment.name,
        LOCK_LEASE,
    );
    let mut executor = Executor::new(runbook)
        .options(options)
        .environment(environment)
        .secrets(secrets)
        .confirmer(confirmer)
        .observer(view.clone())
        .observer(groups)
        .cancellation(cancel)
        .run_root(&run_root);
    // A dry-run changes nothing, so it neither needs nor blocks the lock.
    if !dry_run {
        let mut locks: Vec<Arc<dyn DeployLock>> = vec![Arc::new(lock)];
        if let Some(url) = db_url {
            let db = MysqlLock::new(&url, &runbook_name, &environment_name, LOCK_LEASE)
                .map_err(|e| CliError::usage(format!("--db-lock: {e}")))?;
            locks.push(Arc::new(db));
        }
        executor = executor.lock(
            Arc::new(Locks(locks)),
            args.reason.clone().filter(|_| args.break_lock),
        );
    }
    if let Some(notifier) = notifier {
        executor = executor.notifier(Arc::new(notifier));
    }
    if let Some((plan, resolutions)) = resume {
        executor = executor.resume(plan, resolutions);
    }
    let result = executor.run().await;
    interrupt.abort();
    let record = result.map_err(run_error)?;
    let dir = run_directory(&run_root, &record.run.run_id);
    let written = write_reports(&record, &dir).map_err(|e| {
        CliError::failure(format!(
            "{e}; the journal in {} is complete: `escola-runbook report {}` renders it again",
            dir.display(),
            record.run.run_id
        ))
    })?;
    if record.rollback_withheld.is_some() {
        if let Some(phase) = record.phases.iter().find(|p| p.kind == PhaseKind::Rollback) {
            view.println(&format!(
                "nothing was rolled back; to roll back anyway: escola-runbook run --phase {}{}",
                phase.id,
                record.source().map(runbook_flag).unwrap_or_default()
            ));
        }
    }
    view.println(&format!("journal and reports in {}:", dir.display()));
    for path in written {
        view.println(&format!("  {}", path.display()));
    }
    Ok(record.exit_code.unwrap_or(exit::STEP_FAILED))
}

/// Whether any manual step will be asked about.
fn needs_answers(
    runbook: &Runbook,
    options: &RunOptions,
    resume: Option<&(ResumePlan, Vec<Resolution>)>,
) -> bool {
    let (phases, only) = match resume {
        Some((plan, _)) => (&plan.record.run.phases, &plan.record.run.only),
        None => (&options.phases, &options.only),
    };
    runbook.steps().any(|(p, s)| {
        matches!(s.kind, StepKind::Manual { .. })
            && (phases.is_empty() || phases.contains(&p.id))
            && (only.is_empty() || only.contains(&s.id))
            && resume.is_none_or(|(plan, _)| !plan.done.contains_key(&s.id))
    })
}
