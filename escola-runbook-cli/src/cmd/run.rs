//! `escola-runbook run` and `escola-runbook resume`: both build an executor
//! the same way and differ only in where the run comes from.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use escola_runbook_checks::builtin_runbook::RunbookSource;
use escola_runbook_checks::db::lock::MysqlLock;
use escola_runbook_checks::escola;
use escola_runbook_checks::notify::WebhookNotifier;
use escola_runbook_core::console::LinkNotifier;
use escola_runbook_core::deploy_lock::{DeployLock, Locks};
use escola_runbook_core::formats::runbook_source as source;
use escola_runbook_core::report::write_reports;
use escola_runbook_core::runs;
use escola_runbook_core::{
    Confirmer, Decision, Environment, Executor, InterruptedDecision, PhaseKind,
    PreapprovedConfirmer, Redactor, Resolution, ResumeError, ResumePlan, RunOptions, RunRecord,
    Runbook, RunbookOrigin, RunbookOutline, StepKind, exit, run_directory,
};

use crate::cli::{DefaultDecision, ExecutionArgs, OnInterrupted, ResumeArgs, RunArgs};
use crate::cmd::{Given, Loaded};
use crate::error::{CliError, runbook_flag};
use crate::prompt::{PromptConfirmer, ask_line};
use crate::signals::StopSignals;
use crate::ui::{TermCaps, TerminalView};

pub async fn run(args: RunArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let given = super::given(&args.runbook, redactor, None)?;
    let app_dir = given.app_dir(&args.runbook);
    let config = given.project.as_ref().map(|p| p.config.clone());
    let loaded = super::load_given(&args.runbook, given)?;
    let mut options = super::options(&args.selection);
    options.dry_run = args.dry_run;
    options.config = config;
    Executor::validate_selection(&loaded.runbook, &options)?;
    if !args.dry_run && !app_dir.is_dir() {
        return Err(CliError::NoAppDir(app_dir));
    }
    execute(loaded, options, &args.execution, None).await
}

pub async fn resume(args: ResumeArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let given = super::given(&args.runbook, redactor, None)?;
    let journal = journal_to_resume(&args, &given)?;
    let (record, events) = super::read_run(&journal)?;
    let given = recorded_project(&args, &record, redactor)?;
    let loaded = runbook_to_resume(&args, &record, given)?;
    let plan = ResumePlan::new(&events, &loaded.runbook).map_err(|e| match e {
        ResumeError::RunbookChanged { .. } => CliError::RunbookChanged {
            run_id: record.run.run_id.clone(),
            recorded: record.source().map_or_else(
                || "a runbook its journal does not name".to_owned(),
                ToString::to_string,
            ),
            loaded: Box::new(loaded.source.clone()),
            source: e,
        },
        e => e.into(),
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
                return Err(CliError::UndecidedInterrupted {
                    step: step.step.clone(),
                    title: step.title.clone(),
                });
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

/// What the run's own project file gives (the one it recorded, unless
/// `--config` names one), in the run's environment; a project file whose
/// bytes changed since the run started is refused, as a changed runbook is.
fn recorded_project(
    args: &ResumeArgs,
    record: &RunRecord,
    redactor: &Redactor,
) -> Result<Given, CliError> {
    let recorded = record.run.config.as_ref();
    let mut runbook = args.runbook.clone();
    if runbook.config.is_none() {
        runbook.config = recorded.map(|c| c.path.clone());
    }
    let given = super::given(&runbook, redactor, Some(&record.run.environment.name))?;
    if let (Some(recorded), Some(now)) = (recorded, &given.project) {
        if recorded.sha256 != now.config.sha256 {
            return Err(CliError::ConfigChanged {
                run_id: record.run.run_id.clone(),
                path: now.config.path.clone(),
                recorded: recorded.sha256.clone(),
                now: now.config.sha256.clone(),
            });
        }
    }
    Ok(given)
}

/// The runbook `resume` names on the command line (`--runbook`,
/// `--markdown`, `--builtin`), with commands in `app_dir`.
fn named_for_resume(
    args: &ResumeArgs,
    app_dir: &Path,
    environment: &Environment,
    given: &Given,
) -> Result<Option<RunbookSource>, CliError> {
    if let Some(source) = super::named_source(&args.runbook, app_dir, given.project.as_ref())? {
        return Ok(Some(source));
    }
    if !args.builtin {
        return Ok(None);
    }
    let config = super::builtin(
        given.project.as_ref(),
        app_dir.to_owned(),
        environment,
        &given.secrets,
    )?;
    Ok(Some(RunbookSource::Builtin(Box::new(config))))
}

/// The journal to continue: RUN, or for `latest` the latest run of the
/// runbook named (of any runbook when none is).
fn journal_to_resume(args: &ResumeArgs, given: &Given) -> Result<PathBuf, CliError> {
    let run_dir = &args.execution.run_dir;
    if args.run != "latest" {
        return Ok(runs::locate(&args.run, run_dir)?);
    }
    let app_dir = super::absolute(&given.app_dir(&args.runbook));
    let identity = match named_for_resume(args, &app_dir, &given.environment, given)? {
        Some(source) => {
            let loaded = source::load(&source, &escola_runbook_checks::catalog())?;
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
    given: Given,
) -> Result<Loaded, CliError> {
    let run_id = &record.run.run_id;
    // The run keeps its environment: the lock key and the record depend on it.
    let recorded_environment = &record.run.environment;
    if let Some(name) = &args.runbook.environment {
        if name != &recorded_environment.name {
            return Err(CliError::OtherEnvironment {
                given: name.clone(),
                run_id: run_id.clone(),
                recorded: recorded_environment.name.clone(),
            });
        }
    }
    let mut environment = recorded_environment.clone();
    environment
        .settings
        .extend(given.environment.settings.clone());
    let recorded = record.source();
    let ran_in = recorded.and_then(source::recorded_app_dir);
    let app_dir = match &args.runbook.app_dir {
        Some(dir) => super::absolute(dir),
        None => ran_in
            .clone()
            .unwrap_or_else(|| super::absolute(Path::new("."))),
    };
    let named = named_for_resume(args, &app_dir, &environment, &given)?;
    // A Markdown import records where its commands run; moving them is a
    // change of runbook, made explicit by naming the document.
    if let (Some(RunbookOrigin::MarkdownFile { path, .. }), None, Some(ran_in)) =
        (recorded, &named, ran_in.filter(|dir| dir != &app_dir))
    {
        return Err(CliError::CommandsMoved {
            app_dir,
            run_id: run_id.clone(),
            ran_in,
            document: path.clone(),
        });
    }
    let builtin = super::builtin(
        given.project.as_ref(),
        app_dir,
        &environment,
        &given.secrets,
    )?;
    let sourced = source::load_for_resume(
        recorded,
        named.as_ref(),
        &builtin,
        &escola_runbook_checks::catalog(),
    )
    .map_err(|source| CliError::SourceRefused {
        run_id: run_id.clone(),
        source: Box::new(source),
    })?;
    Ok(super::finish(sourced, environment, given.secrets))
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
        let line = ask_line(&question).await.ok_or(CliError::InputClosed)?;
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
    options.no_wait = args.no_wait;
    let run_id = match &resume {
        Some((plan, _)) => plan.record.run.run_id.clone(),
        None => options
            .run_id
            .get_or_insert_with(|| runs::generate_run_id(chrono::Utc::now()))
            .clone(),
    };
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
        return Err(CliError::NoTerminal);
    }

    let view = Arc::new(TerminalView::new(TermCaps::detect()));
    view.set_outline(RunbookOutline::of(&runbook));
    view.set_run(run_id.clone(), args.run_dir.clone());
    let confirmer: Arc<dyn Confirmer> = if args.yes {
        let mut c = PreapprovedConfirmer::new(options.operator.clone());
        if let Some(comment) = &args.comment {
            c = c.with_comment(comment.clone());
        }
        Arc::new(c)
    } else {
        Arc::new(PromptConfirmer::new(options.operator.clone(), view.clone()))
    };
    let stop = StopSignals::install()?.stop_run(
        view.clone(),
        "stopping the running step and finishing the record (press Ctrl-C again to quit at once)",
    );

    let db_url = match (args.db_lock, secrets.get(escola::DATABASE_SECRET)) {
        (false, _) => None,
        (true, Some(url)) => Some(url.clone()),
        (true, None) => return Err(CliError::DbLockWithoutUrl),
    };
    // With a webhook, the run's milestones are posted as they happen (not
    // in a dry-run); each message and its delivery lands in the journal.
    let notifier = match secrets.get(escola::WEBHOOK_SECRET) {
        Some(url) => Some(
            WebhookNotifier::new(url.clone(), None)
                .map_err(|source| CliError::Webhook { source })?,
        ),
        None => None,
    };
    let runbook_name = runbook.name().to_owned();
    let environment_name = environment.name.clone();
    let run_root = args.run_dir.clone();
    let redactor = secrets.redactor().clone();
    let lock = runs::file_lock(&run_root, runbook.name(), &environment.name);
    let mut executor = Executor::new(runbook)
        .options(options)
        .environment(environment)
        .secrets(secrets)
        .confirmer(confirmer)
        .observer(view.clone())
        .observer(stop.groups)
        .cancellation(stop.cancel)
        .run_root(&run_root);
    // A dry-run changes nothing, so it neither needs nor blocks the lock.
    if !dry_run {
        let mut locks: Vec<Arc<dyn DeployLock>> = vec![Arc::new(lock)];
        if let Some(url) = db_url {
            let db = MysqlLock::new(&url, &runbook_name, &environment_name, runs::LOCK_LEASE)
                .map_err(CliError::DbLock)?;
            locks.push(Arc::new(db));
        }
        executor = executor.lock(
            Arc::new(Locks(locks)),
            args.reason.clone().filter(|_| args.break_lock),
        );
    }
    if let Some(notifier) = notifier {
        // A console's public address, once recorded, puts approval links
        // into the approval messages.
        executor = executor.notifier(Arc::new(LinkNotifier::new(
            Arc::new(notifier),
            &run_root,
            run_id.clone(),
            redactor,
        )));
    }
    if let Some((plan, resolutions)) = resume {
        executor = executor.resume(plan, resolutions);
    }
    let result = executor.run().await;
    stop.watcher.abort();
    let record = result?;
    let dir = run_directory(&run_root, &record.run.run_id);
    let written = write_reports(&record, &dir).map_err(|source| CliError::Reports {
        dir: dir.clone(),
        run_id: record.run.run_id.clone(),
        source,
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
            && s.policy.approval.is_none()
            && (phases.is_empty() || phases.contains(&p.id))
            && (only.is_empty() || only.contains(&s.id))
            && resume.is_none_or(|(plan, _)| !plan.done.contains_key(&s.id))
    })
}
