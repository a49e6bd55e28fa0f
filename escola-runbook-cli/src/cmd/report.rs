//! `escola-runbook report RUN`: rebuilds the record from the journal alone.

use std::path::{Path, PathBuf};

use escola_runbook_core::formats::runbook_source::{read_recorded, sha256_hex};
use escola_runbook_core::report::{Format, render};
use escola_runbook_core::runs;
use escola_runbook_core::{RunRecord, RunbookOrigin};

use crate::cli::{ReportArgs, ReportFormat};
use crate::error::CliError;

pub fn run(args: ReportArgs) -> Result<i32, CliError> {
    let journal = runs::locate(&args.run, &args.run_dir)?;
    let (record, _) = super::read_run(&journal)?;
    let format = match args.format {
        ReportFormat::Md => Format::Markdown,
        ReportFormat::Json => Format::Json,
        ReportFormat::Junit => Format::Junit,
        ReportFormat::Html => Format::Html,
    };
    let text = match (&args.original, format) {
        (Some(given), Format::Markdown) => {
            let (path, doc) = original_document(given.as_deref(), &record)?;
            escola_runbook_core::formats::markdown::export_run(&doc, &record)
                .map_err(|source| CliError::Original { path, source })?
        }
        (Some(_), _) => {
            return Err(CliError::OriginalNeedsMarkdown);
        }
        (None, _) => render(&record, format)?,
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
            let bytes = std::fs::read(path).map_err(|source| CliError::ReadFlagFile {
                flag: "--original",
                path: path.to_owned(),
                source,
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
            let bytes =
                read_recorded(origin.kind(), path, sha256).map_err(CliError::OriginalGone)?;
            (path.clone(), bytes)
        }
        (None, Some(other)) => {
            return Err(CliError::OriginalNotMarkdown {
                run_id: run_id.clone(),
                origin: Box::new(other.clone()),
            });
        }
        (None, None) => {
            return Err(CliError::OriginalNotRecorded(run_id.clone()));
        }
    };
    match String::from_utf8(bytes) {
        Ok(doc) => Ok((path, doc)),
        Err(source) => Err(CliError::NotText { path, source }),
    }
}
