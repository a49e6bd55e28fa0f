//! `escola-runbook`: argument parsing and terminal UI over the escola-runbook
//! library. Nothing here decides a verdict; the library does.

mod cli;
mod cmd;
mod dispatch;
mod error;
mod logging;
mod prompt;
mod signals;
mod ui;

use clap::Parser;

use crate::cli::Cli;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help/version to stdout with 0 and usage errors to
        // stderr with 2, matching our exit codes.
        Err(e) => e.exit(),
    };
    let redactor = escola_runbook_core::Redactor::new();
    logging::init(cli.verbose, redactor.clone());
    let code = match dispatch::execute(cli.command, &redactor) {
        Ok(code) => code,
        Err(e) => {
            // A closed terminal (SIGHUP) must not turn the exit into a panic.
            let line = format!("error: {}\n", redactor.redact(&e.to_string()));
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            e.process_exit_code()
        }
    };
    std::process::exit(code);
}
