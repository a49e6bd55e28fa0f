//! `escola-runbook serve` and `approval-link`: the arguments turned into
//! the core's console (`escola_runbook_core::console`), which does the
//! work; refusals it reports are printed here, one line each.

use std::path::Path;
use std::sync::Arc;

use escola_runbook_core::console::{
    ApprovalLink, Console, ConsoleOptions, DEFAULT_LISTEN, LinkKey, RefusedRequest, link,
};
use escola_runbook_core::{Redactor, Secret, runs};

use crate::cli::{ApprovalLinkArgs, ServeArgs};
use crate::error::CliError;

pub async fn serve(args: ServeArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let viewer_token = match &args.viewer_token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(token) if !token.is_empty() => {
                redactor.register("viewer token", &token);
                Some(Secret::new(token))
            }
            unset => {
                return Err(CliError::ViewerTokenUnset {
                    var: var.clone(),
                    empty: unset.is_ok(),
                });
            }
        },
    };
    let console = Console::bind(ConsoleOptions {
        run_root: args.run_dir.clone(),
        listen: args.listen,
        viewer_token,
        observer: Arc::new(print_refusal),
    })
    .await?;
    if let Some(url) = &args.public_url {
        link::record_public_url(&args.run_dir, url)?;
    }
    let addr = console.local_addr()?;
    let reached = args
        .public_url
        .as_ref()
        .map(|u| format!(", reached as {u}"))
        .unwrap_or_default();
    println!(
        "console at http://{addr} for the runs in {}{reached} (Ctrl-C stops it)",
        args.run_dir.display()
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    console.serve(shutdown).await?;
    Ok(escola_runbook_core::exit::SUCCESS)
}

/// One line on stderr per refused request: what, from whom, why.
fn print_refusal(r: &RefusedRequest) {
    eprintln!(
        "refused {} {} {} from {}: {}",
        r.status, r.method, r.path, r.peer, r.reason
    );
}

pub fn approval_link(args: ApprovalLinkArgs) -> Result<i32, CliError> {
    let journal = runs::locate(&args.run, &args.run_dir)?;
    let (record, _) = super::read_run(&journal)?;
    let root = journal
        .parent()
        .and_then(Path::parent)
        .unwrap_or(&args.run_dir);
    let issued = ApprovalLink::issue(&record, &args.step, &args.approver, chrono::Utc::now())?;
    let key = LinkKey::load_or_create(root)?;
    let base = args
        .base_url
        .or_else(|| link::public_url(root))
        .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"));
    println!("{}", issued.url(&base, &key));
    Ok(escola_runbook_core::exit::SUCCESS)
}
