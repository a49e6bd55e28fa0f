//! `escola-runbook import` and `export-runbook`: runbooks as files.

use escola_runbook_checks::escola::{self, EscolaConfig};
use escola_runbook_core::exit;
use escola_runbook_core::formats::markdown::{self, ImportOptions};

use crate::cli::{ExportRunbookArgs, ImportArgs};
use crate::error::CliError;

/// Imports a Markdown runbook: the TOML to stdout or `-o`, warnings (with
/// lines) to stderr. Exit 2 when the document cannot be read or names an
/// unknown check; 1 with `--strict` when there are warnings.
pub fn import(args: ImportArgs) -> Result<i32, CliError> {
    let options = ImportOptions {
        name: args.name.clone(),
        command_timeout: args.command_timeout.0,
        command_cwd: args.cwd.as_ref().map(|dir| dir.display().to_string()),
        phase_level: args.phases.phase_level,
        document_name: None,
    };
    let loaded = markdown::load(&args.markdown, &options, &escola_runbook_checks::catalog())?;
    let file = args.markdown.display();
    for warning in &loaded.imported.warnings {
        eprintln!("warning: {file}: {warning}");
    }
    let text = loaded.imported.file.to_toml()?;
    write_out(args.output.as_deref(), &text)?;
    let steps = loaded.runbook.steps().count();
    eprintln!(
        "imported {} phases, {steps} steps from {file}{}",
        loaded.runbook.phases().len(),
        match loaded.imported.warnings.len() {
            0 => String::new(),
            n => format!(" ({n} warnings)"),
        }
    );
    Ok(if args.strict && !loaded.imported.warnings.is_empty() {
        exit::STEP_FAILED
    } else {
        exit::SUCCESS
    })
}

/// Writes the built-in runbook as TOML; each step that cannot be expressed
/// in a file is named on stderr.
pub fn export_runbook(args: ExportRunbookArgs) -> Result<i32, CliError> {
    let config = EscolaConfig {
        app_dir: args.app_dir.clone(),
        ..EscolaConfig::default()
    };
    let (file, warnings) = escola::runbook_file(&config)?;
    let text = file.to_toml()?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    write_out(args.output.as_deref(), &text)?;
    Ok(exit::SUCCESS)
}

/// Writes `text` to `path` atomically (saying so), or to stdout.
pub fn write_out(path: Option<&std::path::Path>, text: &str) -> Result<(), CliError> {
    match path {
        Some(path) => {
            super::write_atomically(path, text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
