//! `escola-runbook report RUN`: rebuilds the record from the journal alone.

use std::path::{Path, PathBuf};

use escola_runbook_core::RunRecord;
use escola_runbook_core::journal::{JOURNAL_FILE, read_journal};
use escola_runbook_core::report::{Format, render};

use crate::CliError;
use crate::cli::{ReportArgs, ReportFormat};

pub fn run(args: ReportArgs) -> Result<i32, CliError> {
    let journal = locate(&args.run, &args.run_dir)?;
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
    let text = render(&record, format).map_err(|e| CliError::failure(e.to_string()))?;
    match &args.output {
        Some(path) => {
            super::write_atomically(path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(escola_runbook_core::exit::SUCCESS)
}

/// Finds the journal for RUN: a journal file, a run directory, a run id
/// under `run_dir`, or `latest`.
fn locate(run: &str, run_dir: &Path) -> Result<PathBuf, CliError> {
    let as_path = Path::new(run);
    if as_path.is_file() {
        return Ok(as_path.to_owned());
    }
    if as_path.join(JOURNAL_FILE).is_file() {
        return Ok(as_path.join(JOURNAL_FILE));
    }
    if run == "latest" {
        return latest(run_dir);
    }
    let candidate = run_dir.join(run).join(JOURNAL_FILE);
    if candidate.is_file() {
        return Ok(candidate);
    }
    let known = run_ids(run_dir).unwrap_or_default();
    let hint = match known.last() {
        Some(last) => format!(
            "the latest run there is `{last}` ({} runs); `latest` also works",
            known.len()
        ),
        None => "no runs are recorded there; pass --run-dir where `run` wrote them".to_owned(),
    };
    Err(CliError::usage(format!(
        "no run `{run}`: neither a journal file, a run directory, nor a run id under {}; {hint}",
        run_dir.display()
    )))
}

fn latest(run_dir: &Path) -> Result<PathBuf, CliError> {
    let ids = run_ids(run_dir).map_err(|e| {
        CliError::usage(format!(
            "cannot list runs in {}: {e}; pass --run-dir where `run` wrote them",
            run_dir.display()
        ))
    })?;
    ids.last()
        .map(|id| run_dir.join(id).join(JOURNAL_FILE))
        .ok_or_else(|| CliError::usage(format!("no runs recorded in {}", run_dir.display())))
}

/// Run ids with a journal, oldest first (ids sort by start time).
fn run_ids(run_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut ids: Vec<String> = std::fs::read_dir(run_dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().join(JOURNAL_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}
