//! `escola-runbook`: argument parsing and terminal UI over the escola-runbook
//! library. Nothing here decides a verdict; the library does.

mod cli;
mod cmd;
mod dispatch;
mod error;
mod logging;
mod prompt;
mod signals;
mod table;
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
    if cli.command.prints_only() {
        // A reader that goes away (`status | head`) ends the process
        // quietly, as it ends any Unix tool, instead of a panic on the
        // closed pipe. Commands that act keep the signal ignored: a deploy
        // never dies because its output went nowhere.
        // SAFETY: called before any thread starts; SIG_DFL is a valid
        // disposition for SIGPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
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
