//! The one step between parsing and a subcommand: its runtime, and which
//! `cmd/` module does the work.

use escola_runbook_core::Redactor;

use crate::cli::Command;
use crate::cmd;
use crate::error::CliError;

/// Runs `command` on its own async runtime; the exit code, or the error
/// that ended it.
pub fn execute(command: Command, redactor: &Redactor) -> Result<i32, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let result = runtime.block_on(async {
        match command {
            Command::Plan(args) => cmd::plan::run(args, redactor),
            Command::Run(args) => cmd::run::run(args, redactor).await,
            Command::Resume(args) => cmd::run::resume(args, redactor).await,
            Command::Report(args) => cmd::report::run(args),
            Command::Check(args) => cmd::check::run(args, redactor).await,
            Command::Import(args) => cmd::import::import(args),
            Command::ExportRunbook(args) => cmd::import::export_runbook(args),
            Command::ExportAlerts(args) => cmd::alerts::export(args),
            Command::ExportDashboard(args) => cmd::alerts::export_dashboard(args),
            Command::Smoke(args) => cmd::smoke::run(args, redactor).await,
            Command::Metrics(args) => cmd::metrics::run(args, redactor).await,
            Command::Compare(args) => cmd::compare::run(args, redactor).await,
            Command::Watch(args) => cmd::watch::watch(args, redactor).await,
            Command::Replay(args) => cmd::watch::replay(args),
            Command::Init(args) => cmd::init::run(&args),
            Command::Approve(args) => cmd::approve::approve(args),
            Command::Reject(args) => cmd::approve::reject(args),
            Command::Status(args) => cmd::status::status(args),
            Command::History(args) => cmd::status::history_of(args),
            Command::Serve(args) => cmd::console::serve(args, redactor).await,
            Command::ApprovalLink(args) => cmd::console::approval_link(args),
            Command::Snapshot(args) => cmd::snapshot::run(args, redactor).await,
        }
    });
    // Leave no check's background work running past the verdict.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}
