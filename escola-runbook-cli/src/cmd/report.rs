//! `escola-runbook report RUN`: rebuilds the record from the journal alone.

use std::path::{Path, PathBuf};

use escola_runbook_core::formats::runbook_source::{read_recorded, sha256_hex};
use escola_runbook_core::journal::read_journal;
use escola_runbook_core::report::{Format, render};
use escola_runbook_core::{RunRecord, RunbookOrigin};

use crate::cli::{ReportArgs, ReportFormat};
use crate::error::CliError;

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
        (Some(given), Format::Markdown) => {
            let (path, doc) = original_document(given.as_deref(), &record)?;
            escola_runbook_core::formats::markdown::export_run(&doc, &record)
                .map_err(|e| CliError::usage(format!("--original {}: {e}", path.display())))?
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

/// The Markdown document to tick: `given`, or the one the run's journal
/// records, which must still have the bytes the run imported (evidence
/// placed by step in another version could land under the wrong items).
fn original_document(
    given: Option<&Path>,
    record: &RunRecord,
) -> Result<(PathBuf, String), CliError> {
    let run_id = &record.run.run_id;
    let recorded = record.source();
    let (path, bytes) = match (given, recorded) {
        (Some(path), _) => {
            let bytes = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("cannot read --original {}: {e}", path.display()))
            })?;
            if let Some(RunbookOrigin::MarkdownFile {
                path: ran, sha256, ..
            }) = recorded
            {
                let now = sha256_hex(&bytes);
                if &now != sha256 {
                    eprintln!(
                        "warning: --original {} is not the document run {run_id} imported ({}, sha256 {sha256}; this one has sha256 {now}): items are ticked by step id",
                        path.display(),
                        ran.display()
                    );
                }
            }
            (path.to_owned(), bytes)
        }
        (None, Some(origin @ RunbookOrigin::MarkdownFile { path, sha256, .. })) => {
            let bytes = read_recorded(origin.kind(), path, sha256).map_err(|e| {
                CliError::usage(format!(
                    "--original: {e}; restore that version, or pass --original RUNBOOK.md to tick another one by step id"
                ))
            })?;
            (path.clone(), bytes)
        }
        (None, Some(other)) => {
            return Err(CliError::usage(format!(
                "--original: run {run_id} ran {other}, not a Markdown document; --original ticks the Markdown runbook a run was imported from"
            )));
        }
        (None, None) => {
            return Err(CliError::usage(format!(
                "--original: run {run_id}'s journal does not record its runbook (it predates that record); pass the document: --original RUNBOOK.md"
            )));
        }
    };
    let doc = String::from_utf8(bytes).map_err(|e| {
        CliError::usage(format!(
            "--original {}: not UTF-8 text: {e}",
            path.display()
        ))
    })?;
    Ok((path, doc))
}
