//! `escola-runbook init`: the commented project file, to edit.

use escola_runbook_checks::escola::project;
use escola_runbook_core::exit;

use crate::cli::InitArgs;
use crate::error::CliError;

/// Writes [`project::TEMPLATE`] to `--output`, never over an existing file
/// unless `--force`.
pub fn run(args: &InitArgs) -> Result<i32, CliError> {
    if args.output.exists() && !args.force {
        return Err(CliError::ProjectExists(args.output.clone()));
    }
    super::write_atomically(&args.output, project::TEMPLATE)?;
    eprintln!(
        "wrote {}; edit its environments, then `escola-runbook plan --env staging`",
        args.output.display()
    );
    Ok(exit::SUCCESS)
}
