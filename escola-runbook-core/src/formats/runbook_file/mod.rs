//! Runbooks as TOML files, so any team can describe its runbook without
//! writing Rust, and the built-in one can be written out and edited.
//!
//! A file is read in two stages, each of which names the file, line and
//! column of a mistake and suggests the nearest valid key or check name:
//! [`parse`] checks the shape (unknown keys are errors, never ignored), and
//! [`RunbookFile::to_runbook`] builds the steps through a
//! [`Catalog`] (the checks crate's built-in checks, and any a team
//! registers). [`load`] does both. A
//! step's `params` are typed as the check declares them: lists are TOML
//! arrays, numbers numbers, durations text such as `"1500ms"`.
//!
//! ```
//! use escola_runbook_core::catalog::Catalog;
//! use escola_runbook_core::formats::runbook_file;
//!
//! // Manual steps need no check; a catalog names the checks a file may use.
//! let catalog = Catalog::new();
//!
//! let text = r#"
//! name = "demo"
//!
//! [[phases]]
//! id = "deploy"
//! title = "Deploy"
//!
//! [[phases.steps]]
//! id = "window"
//! title = "Sincronizar janela com Infra + Produto"
//! confirm_deadline = "10m"
//! timeout = "30m"
//! "#;
//! let loaded = runbook_file::load_str(text, "runbook.toml", &catalog)?;
//! assert_eq!(loaded.runbook.phases()[0].steps[0].id, "window");
//!
//! let typo = text.replace("timeout", "timout");
//! let err = runbook_file::load_str(&typo, "runbook.toml", &catalog).unwrap_err().to_string();
//! assert!(err.starts_with("runbook.toml:12:1:"), "{err}");
//! assert!(err.contains("did you mean `timeout`?"), "{err}");
//! # Ok::<(), runbook_file::RunbookFileError>(())
//! ```

mod convert;
mod locate;
mod model;

use std::path::{Path, PathBuf};

use crate::Runbook;
use crate::catalog::Catalog;

pub use convert::{Invalid, PathSeg, PathWarning, SECRET_DATABASE_URL, SECRET_METRICS_TOKEN};
pub use model::{
    ApprovalFile, ApproverFile, BackoffFile, ContactFile, DurationText, EnvironmentFile,
    FORMAT_VERSION, MetadataFile, ParamMap, PhaseFile, RollbackFile, RunbookFile, StepFile,
    UndoFile,
};

/// A runbook file could not be read, understood or written.
#[derive(Debug, thiserror::Error)]
pub enum RunbookFileError {
    /// The file could not be read.
    #[error("cannot read runbook file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mistake at a place in the file.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The file, as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong and what to do.
        message: String,
    },
    /// The runbook could not be written as TOML.
    #[error("cannot write the runbook as TOML: {0}")]
    Serialize(String),
}

/// Something worth knowing about a file that still loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWarning {
    /// 1-based line (0 when not tied to a place).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The warning, in words.
    pub message: String,
}

impl std::fmt::Display for FileWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}:{}: {}", self.line, self.column, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// A file read and turned into a runbook.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// The file as written.
    pub file: RunbookFile,
    /// The runbook built from it.
    pub runbook: Runbook,
    /// Things that loaded but deserve attention (settings not evaluated yet).
    pub warnings: Vec<FileWarning>,
}

/// Parses the text of a runbook file (shape only: keys, types, values).
/// `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<RunbookFile, RunbookFileError> {
    parse_toml(text, file)
}

/// Parses `text` as any TOML shape `T` (a runbook file, a project file),
/// so every file the tool reads reports a mistake the same way: file, line,
/// column, and the nearest valid key for an unknown one.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, RunbookFileError> {
    toml::from_str::<T>(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| locate::line_col(text, s.start))
            .unwrap_or((1, 1));
        RunbookFileError::At {
            file: file.to_owned(),
            line,
            column,
            message: locate::with_suggestion(e.message().trim()),
        }
    })
}

/// Parses `text` and builds the runbook through `catalog`.
pub fn load_str(text: &str, file: &str, catalog: &Catalog) -> Result<LoadedFile, RunbookFileError> {
    let parsed = parse(text, file)?;
    // Paths in the file (a watch step's `rules_file`) are relative to it.
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let (runbook, warnings) = parsed.to_runbook(catalog, base).map_err(|invalid| {
        let (line, column) = locate::path_position(text, &invalid.path);
        RunbookFileError::At {
            file: file.to_owned(),
            line,
            column,
            message: invalid.message,
        }
    })?;
    let warnings = warnings
        .into_iter()
        .map(|w| {
            let (line, column) = locate::path_position(text, &w.path);
            FileWarning {
                line,
                column,
                message: w.message,
            }
        })
        .collect();
    Ok(LoadedFile {
        file: parsed,
        runbook,
        warnings,
    })
}

/// Reads and loads the runbook file at `path` (`run --runbook FILE.toml`).
pub fn load(path: &Path, catalog: &Catalog) -> Result<LoadedFile, RunbookFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunbookFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, &path.display().to_string(), catalog)
}

/// The header written above an exported file.
const HEADER: &str = "# escola-runbook runbook file (format 1).\n\
# Steps are manual, `command`, or a built-in `check` with `params`\n\
# (`escola-runbook check --list` shows the checks and their parameters).\n\
# The environment names the variables that hold secrets, never the secrets.\n";

impl RunbookFile {
    /// The file as TOML text, with a short header.
    pub fn to_toml(&self) -> Result<String, RunbookFileError> {
        let body =
            toml::to_string_pretty(self).map_err(|e| RunbookFileError::Serialize(e.to_string()))?;
        Ok(format!("{HEADER}\n{body}"))
    }
}
