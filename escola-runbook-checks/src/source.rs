//! Where a runbook comes from: the built-in Escola runbook, a TOML runbook
//! file (`--runbook FILE.toml`), or a Markdown document imported on the fly
//! (`--markdown RUNBOOK.md`). One entry point, so the CLI's `plan`, `run`
//! and `resume` treat all three alike.

use std::path::PathBuf;

use escola_runbook_core::Runbook;

use crate::escola::{self, EscolaConfig, EscolaError};
use crate::markdown::{self, ImportOptions, MarkdownError};
use crate::runbook_file::{self, EnvironmentFile, RunbookFileError};

/// Which runbook to load.
#[derive(Debug, Clone)]
pub enum RunbookSource {
    /// The built-in Escola runbook.
    Builtin(Box<EscolaConfig>),
    /// A TOML runbook file.
    File(PathBuf),
    /// A Markdown runbook, imported with these options.
    Markdown {
        /// The document.
        path: PathBuf,
        /// How to import it (working directory and timeout of commands).
        options: ImportOptions,
    },
}

/// A runbook ready to plan or run.
#[derive(Debug, Clone)]
pub struct SourcedRunbook {
    /// The runbook.
    pub runbook: Runbook,
    /// The file's `[environment]` (empty for the built-in runbook): settings
    /// and the names of the variables holding secrets.
    pub environment: EnvironmentFile,
    /// Things to tell the operator before running: import caveats with
    /// their lines, file settings not evaluated yet.
    pub warnings: Vec<String>,
}

/// The runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The TOML file is unreadable or wrong (with file, line and column).
    #[error(transparent)]
    File(#[from] RunbookFileError),
    /// The Markdown document is unreadable or names an unknown check.
    #[error(transparent)]
    Markdown(#[from] MarkdownError),
    /// The built-in runbook is not valid (or its configuration is wrong).
    #[error("the built-in runbook is not valid: {0}")]
    Builtin(#[from] EscolaError),
}

/// Loads the runbook from `source`.
pub fn load(source: &RunbookSource) -> Result<SourcedRunbook, SourceError> {
    match source {
        RunbookSource::Builtin(config) => Ok(SourcedRunbook {
            runbook: escola::runbook(config)?,
            environment: EnvironmentFile::default(),
            warnings: Vec::new(),
        }),
        RunbookSource::File(path) => {
            let loaded = runbook_file::load(path)?;
            Ok(SourcedRunbook {
                runbook: loaded.runbook,
                environment: loaded.file.environment,
                warnings: loaded
                    .warnings
                    .iter()
                    .map(|w| format!("{}: {w}", path.display()))
                    .collect(),
            })
        }
        RunbookSource::Markdown { path, options } => {
            let loaded = markdown::load(path, options)?;
            let mut warnings: Vec<String> = loaded
                .imported
                .warnings
                .iter()
                .map(|w| format!("{}: {w}", path.display()))
                .collect();
            warnings.extend(
                loaded
                    .file_warnings
                    .iter()
                    .map(|w| format!("{}: {w}", path.display())),
            );
            Ok(SourcedRunbook {
                runbook: loaded.runbook,
                environment: loaded.imported.file.environment,
                warnings,
            })
        }
    }
}
