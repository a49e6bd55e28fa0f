//! `escola-runbook`: argument parsing and terminal UI over the escola-runbook
//! library. Nothing here decides a verdict; the library does.

mod cli;
mod cmd;
mod error;
mod logging;
mod prompt;
mod signals;
mod ui;

use clap::Parser;
use escola_runbook_core::exit;

use crate::cli::{Cli, Command};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help/version to stdout with 0 and usage errors to
        // stderr with 2, matching our exit codes.
        Err(e) => e.exit(),
    };
    let redactor = escola_runbook_core::Redactor::new();
    logging::init(cli.verbose, redactor.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::STEP_FAILED);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plan(args) => cmd::plan::run(args, &redactor),
            Command::Run(args) => cmd::run::run(args, &redactor).await,
            Command::Resume(args) => cmd::run::resume(args, &redactor).await,
            Command::Report(args) => cmd::report::run(args),
            Command::Check(args) => cmd::check::run(args, &redactor).await,
            Command::Import(args) => cmd::import::import(args),
            Command::ExportRunbook(args) => cmd::import::export_runbook(args),
            Command::Smoke(args) => cmd::smoke::run(args, &redactor).await,
            Command::Metrics(args) => cmd::metrics::run(args, &redactor).await,
            Command::Watch(args) => cmd::watch::watch(args, &redactor).await,
            Command::Replay(args) => cmd::watch::replay(args),
            Command::Snapshot(args) => cmd::snapshot::run(args, &redactor).await,
        }
    });
    // Leave no check's background work running past the verdict.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // A closed terminal (SIGHUP) must not turn the exit into a panic.
            let line = format!("error: {}\n", redactor.redact(&e.message));
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            std::process::exit(e.code);
        }
    }
}
