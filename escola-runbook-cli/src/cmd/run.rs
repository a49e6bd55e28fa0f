//! `escola-runbook run` and `escola-runbook resume`: both build an executor
//! the same way and differ only in where the run comes from.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_checks::db::lock::MysqlLock;
use escola_runbook_checks::escola;
use escola_runbook_checks::notify::WebhookNotifier;
use escola_runbook_checks::registry::parse_duration;
use escola_runbook_core::journal::read_journal;
use escola_runbook_core::lock::{DeployLock, FileLock, Locks};
use escola_runbook_core::report::write_reports;
use escola_runbook_core::{
    CancellationToken, Confirmer, Decision, Executor, InterruptedDecision, PreapprovedConfirmer,
    Redactor, Resolution, ResumePlan, RunError, RunOptions, Runbook, RunbookOutline, StepKind,
    exit, run_directory,
};

use crate::CliError;
use crate::cli::{DefaultDecision, ExecutionArgs, OnInterrupted, ResumeArgs, RunArgs};
use crate::cmd::Loaded;
use crate::prompt::{PromptConfirmer, ask_line};
use crate::ui::{TermCaps, TerminalView};

/// How long a deploy lock lives without a heartbeat.
const LOCK_LEASE: Duration = Duration::from_secs(120);

pub async fn run(args: RunArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let loaded = super::load(&args.runbook, redactor)?;
    let mut options = super::options(&args.selection);
    options.dry_run = args.dry_run;
    Executor::validate_selection(&loaded.runbook, &options)
        .map_err(|e| CliError::usage(e.to_string()))?;
    if !args.dry_run && !args.runbook.app_dir.is_dir() {
        return Err(CliError::usage(format!(
            "--app-dir {} is not a directory; point it at the application checkout where the runbook's commands run",
            args.runbook.app_dir.display()
        )));
    }
    execute(loaded, options, &args.execution, None).await
}

pub async fn resume(args: ResumeArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let journal = super::locate(&args.run, &args.execution.run_dir)?;
    let contents = read_journal(&journal).map_err(|e| CliError::usage(e.to_string()))?;
    for warning in &contents.warnings {
        eprintln!("warning: {warning}");
    }
    let mut loaded = super::load(&args.runbook, redactor)?;
    let plan = ResumePlan::new(&contents.events, &loaded.runbook)
        .map_err(|e| CliError::usage(e.to_string()))?;
    // The run keeps its environment: the lock key and the record depend on it.
    let recorded = &plan.record.run.environment;
    if let Some(name) = &args.runbook.environment {
        if name != &recorded.name {
            return Err(CliError::usage(format!(
                "--env {name}: run {} targets environment `{}`; a run cannot change environment",
                plan.record.run.run_id, recorded.name
            )));
        }
    }
    let mut environment = recorded.clone();
    environment
        .settings
        .extend(loaded.environment.settings.clone());
    loaded.environment = environment;
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
    } = loaded;
    options.operator = operator(args);
    options.host = super::hostname();
    let dry_run = resume
        .as_ref()
        .map_or(options.dry_run, |(plan, _)| plan.record.run.dry_run);
    if let Some(text) = &args.confirm_timeout {
        let deadline = parse_duration(text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--confirm-timeout {text:?} is not a duration; write e.g. 30s, 5m or 1h"
                ))
            })?;
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
    let interrupt = {
        let cancel = cancel.clone();
        let view = view.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                view.println(
                    "\nstopping: finishing the record (press Ctrl-C again to quit at once)",
                );
                cancel.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("quit at once: the journal holds every record written so far");
                std::process::exit(exit::STOPPED);
            }
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
    let record = result.map_err(|e| match e {
        RunError::Journal(_) => CliError::failure(e.to_string()),
        _ => CliError::usage(e.to_string()),
    })?;
    let dir = run_directory(&run_root, &record.run.run_id);
    let written = write_reports(&record, &dir).map_err(|e| {
        CliError::failure(format!(
            "{e}; the journal in {} is complete: `escola-runbook report {}` renders it again",
            dir.display(),
            record.run.run_id
        ))
    })?;
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
