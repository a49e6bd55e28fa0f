//! `escola-runbook report RUN`: rebuilds the record from the journal alone.

use escola_runbook_core::RunRecord;
use escola_runbook_core::journal::read_journal;
use escola_runbook_core::report::{Format, render};

use crate::CliError;
use crate::cli::{ReportArgs, ReportFormat};

pub fn run(args: ReportArgs) -> Result<i32, CliError> {
    let journal = super::locate(&args.run, &args.run_dir)?;
    let contents = read_journal(&journal).map_err(|e| CliError::usage(e.to_string()))?;
    for warning in &contents.warnings {
        eprintln!("warning: {warning}");
    }
    let record = RunRecord::from_events(&contents.events)
        .map_err(|e| CliError::usage(format!("{}: {e}", journal.display())))?;
    let format = match args.format {
        ReportFormat::Md => Format::Markdown,
        ReportFormat::Json => Format::Json,
        ReportFormat::Junit => Format::Junit,
    };
    let text = match (&args.original, format) {
        (Some(original), Format::Markdown) => {
            let doc = std::fs::read_to_string(original).map_err(|e| {
                CliError::usage(format!(
                    "cannot read --original {}: {e}",
                    original.display()
                ))
            })?;
            escola_runbook_checks::markdown::export_run(&doc, &record)
                .map_err(|e| CliError::usage(format!("--original {}: {e}", original.display())))?
        }
        (Some(_), _) => {
            return Err(CliError::usage(
                "--original goes with --format md: it ticks the Markdown runbook the run was imported from",
            ));
        }
        (None, _) => render(&record, format).map_err(|e| CliError::failure(e.to_string()))?,
    };
    match &args.output {
        Some(path) => {
            super::write_atomically(path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(escola_runbook_core::exit::SUCCESS)
}
