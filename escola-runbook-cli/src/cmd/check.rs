//! `escola-runbook check`: list the built-in checks, or run one ad hoc.

use escola_runbook_core::catalog::{Catalog, params::split_pairs};
use escola_runbook_core::{
    CANCEL_GRACE, CancellationToken, Ctx, Outcome, Redactor, SkipReason, Status, exit,
};

use crate::cli::{CheckArgs, PlanFormat};
use crate::error::{CliError, need_hint};
use crate::signals::StopSignals;

pub async fn run(args: CheckArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let catalog = escola_runbook_checks::catalog();
    let Some(name) = args.name.as_deref().filter(|_| !args.list) else {
        print!("{}", list(&catalog, args.format)?);
        return Ok(exit::SUCCESS);
    };
    let entry = catalog.find(name)?;
    let pairs = split_pairs(args.params.iter().map(String::as_str))?;
    let check = entry.build_from_pairs(&pairs)?;
    let (environment, secrets) = super::environment(&args.runbook, redactor)?;
    let description = check.describe();
    let cancel = CancellationToken::new();
    let ctx = Ctx::standalone(environment, secrets).with_cancellation(cancel.clone());
    let outcome = if args.dry_run && description.mutates {
        let mut outcome = Outcome::skipped(SkipReason::DryRun {
            would: description.action_text().to_owned(),
        });
        outcome.evidence = check.preview(&ctx);
        outcome
    } else {
        let mut signals = StopSignals::install()?;
        let run = check.run(&ctx);
        tokio::pin!(run);
        tokio::select! {
            outcome = &mut run => outcome,
            signal = signals.next() => {
                // As in a run: the check may end what it started and report
                // what it saw, within the grace period.
                cancel.cancel();
                let verdict = Outcome::aborted(format!("stopped by {}", signal.name()));
                if !ctx.started_processes() {
                    verdict
                } else {
                    match tokio::time::timeout(CANCEL_GRACE, &mut run).await {
                        Ok(late) => Outcome { evidence: late.evidence, ..verdict },
                        Err(_) => verdict,
                    }
                }
            }
        }
    };
    let outcome = redactor.redact_serde(&outcome);
    match args.format {
        PlanFormat::Json => {
            let text = serde_json::to_string_pretty(&outcome)
                .map_err(CliError::render("the outcome as JSON"))?;
            println!("{text}");
        }
        PlanFormat::Text => {
            println!(
                "{}: {} — {}",
                entry.name(),
                outcome.status.label(),
                outcome.summary
            );
            for need in &outcome.needs {
                println!("  {}", need_hint(need));
            }
            for e in &outcome.evidence {
                if e.value.contains('\n') {
                    println!("  {}:", e.label);
                    for line in e.value.lines() {
                        println!("    {line}");
                    }
                } else {
                    println!("  {}: {}", e.label, e.value);
                }
            }
        }
    }
    Ok(match outcome.status {
        // In a run a notice never decides; run alone, its whole point is
        // whether people got the message.
        Status::Warned if description.notice => exit::STEP_FAILED,
        Status::Passed | Status::Warned | Status::Skipped => exit::SUCCESS,
        Status::Aborted => exit::STOPPED,
        _ => exit::STEP_FAILED,
    })
}

/// Every check of `catalog` with its parameters, as the schema of each
/// declares them.
fn list(catalog: &Catalog, format: PlanFormat) -> Result<String, CliError> {
    use std::fmt::Write;
    if let PlanFormat::Json = format {
        let json: Vec<serde_json::Value> = catalog
            .entries()
            .map(|e| {
                serde_json::json!({
                    "name": e.name(),
                    "summary": e.summary(),
                    "params": e.param_docs(),
                })
            })
            .collect();
        return serde_json::to_string_pretty(&json)
            .map(|t| t + "\n")
            .map_err(CliError::render("the list as JSON"));
    }
    let mut out = String::new();
    for entry in catalog.entries() {
        let _ = writeln!(out, "{} — {}", entry.name(), entry.summary());
        let params = entry.param_docs();
        // The help of every parameter starts in one column.
        let w = params
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(14);
        for p in params {
            let mut tags = Vec::new();
            if !p.kind.is_empty() {
                tags.push(p.kind.clone());
            }
            if p.required {
                tags.push("required".to_owned());
            }
            if let Some(d) = &p.default {
                tags.push(format!("default {d}"));
            }
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!(" ({})", tags.join(", "))
            };
            let _ = writeln!(out, "    {:<w$} {}{tags}", p.name, p.help);
        }
        out.push('\n');
    }
    Ok(out)
}
