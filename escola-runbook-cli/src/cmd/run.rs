//! `escola-runbook run`.

use std::io::IsTerminal;
use std::sync::Arc;

use escola_runbook_checks::registry::parse_duration;
use escola_runbook_core::report::write_reports;
use escola_runbook_core::{
    CancellationToken, Confirmer, Decision, Executor, PreapprovedConfirmer, Redactor, RunError,
    StepKind, exit, run_directory,
};

use crate::CliError;
use crate::cli::{DefaultDecision, RunArgs};
use crate::prompt::PromptConfirmer;
use crate::ui::{TermCaps, TerminalView};

pub async fn run(args: RunArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let loaded = super::load(&args.runbook, redactor)?;
    let mut runbook = loaded.runbook;
    let mut options = super::options(&args.selection);
    options.dry_run = args.dry_run;
    options.operator = args
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    options.host = hostname();
    Executor::validate_selection(&runbook, &options).map_err(|e| CliError::usage(e.to_string()))?;

    if !args.dry_run && !args.runbook.app_dir.is_dir() {
        return Err(CliError::usage(format!(
            "--app-dir {} is not a directory; point it at the application checkout where the runbook's commands run",
            args.runbook.app_dir.display()
        )));
    }
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
    let needs_answers = !args.dry_run
        && !args.yes
        && runbook.steps().any(|(p, s)| {
            matches!(s.kind, StepKind::Manual { .. })
                && (options.phases.is_empty() || options.phases.contains(&p.id))
                && (options.only.is_empty() || options.only.contains(&s.id))
        });
    if needs_answers && !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "the selected steps include manual steps, and standard input is not a terminal to confirm them: \
             run in a terminal, or pass --yes to confirm them non-interactively (recorded as such)",
        ));
    }

    let caps = TermCaps::detect();
    let view = Arc::new(TerminalView::new(caps));
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

    let run_root = args.run_dir.clone();
    let result = Executor::new(runbook)
        .options(options)
        .environment(loaded.environment)
        .secrets(loaded.secrets)
        .confirmer(confirmer)
        .observer(view.clone())
        .cancellation(cancel)
        .run_root(&run_root)
        .run()
        .await;
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

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end]) {
            if !name.is_empty() {
                return name.to_owned();
            }
        }
    }
    "unknown".into()
}
