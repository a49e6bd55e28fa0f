//! Where a runbook comes from: a built-in runbook built from its
//! configuration (any [`BuiltinRunbook`]; the checks crate's Escola runbook
//! is one), a TOML runbook file, or a Markdown document imported on the
//! fly. One entry point, so a tool's `plan`, `run` and `resume` treat all
//! three alike.
//!
//! Loading also says where the runbook came from ([`RunbookOrigin`]: the
//! file's absolute path and the sha256 of the very bytes parsed, or the
//! version and configuration hash of the built-in runbook). A run records
//! it, and [`load_for_resume`] reloads exactly that runbook or refuses.

use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::{Runbook, RunbookOrigin};
use serde_json::Value;
use sha2::{Digest, Sha256};

use serde::Serialize;

use crate::formats::markdown::{self, ImportOptions, MarkdownError};
use crate::formats::runbook_file::{self, EnvironmentFile, RunbookFileError};

/// A runbook built in code from a configuration: what
/// [`RunbookSource::Builtin`] loads. The configuration is recorded (as
/// JSON, with its sha256) so a resume can tell whether it would build the
/// same runbook.
pub trait BuiltinRunbook: Serialize {
    /// Why the configuration builds no valid runbook.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The runbook this configuration describes.
    fn runbook(&self) -> Result<Runbook, Self::Error>;

    /// The version of the tool that builds it, recorded beside the
    /// configuration (a resume by another version warns).
    fn tool_version(&self) -> String;
}

/// Which runbook to load; `B` is the built-in runbook's configuration.
#[derive(Debug, Clone)]
pub enum RunbookSource<B> {
    /// The built-in runbook.
    Builtin(Box<B>),
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
    /// Where it came from, for the run's record.
    pub origin: RunbookOrigin,
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
    Builtin(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The built-in runbook's configuration could not be written down for
    /// the record.
    #[error("cannot record the built-in runbook's configuration: {0}")]
    Config(#[source] serde_json::Error),
}

/// Loads the runbook from `source`; files name checks of `catalog` (the
/// built-in runbook builds its checks itself).
pub fn load<B: BuiltinRunbook>(
    source: &RunbookSource<B>,
    catalog: &Catalog,
) -> Result<SourcedRunbook, SourceError> {
    match source {
        RunbookSource::Builtin(config) => Ok(SourcedRunbook {
            runbook: config
                .runbook()
                .map_err(|e| SourceError::Builtin(Box::new(e)))?,
            environment: EnvironmentFile::default(),
            warnings: Vec::new(),
            origin: builtin_origin(config.as_ref())?,
        }),
        RunbookSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|source| RunbookFileError::Read {
                path: path.clone(),
                source,
            })?;
            load_toml(path, &bytes, catalog)
        }
        RunbookSource::Markdown { path, options } => {
            let bytes = std::fs::read(path).map_err(|source| MarkdownError::Read {
                path: path.clone(),
                source,
            })?;
            load_markdown(path, &bytes, options, catalog)
        }
    }
}

/// The record of the built-in runbook built from `config`.
fn builtin_origin<B: BuiltinRunbook>(config: &B) -> Result<RunbookOrigin, SourceError> {
    let tool_version = config.tool_version();
    let config = serde_json::to_value(config).map_err(SourceError::Config)?;
    Ok(RunbookOrigin::Builtin {
        tool_version,
        config_sha256: sha256_hex(canonical_json(&config).as_bytes()),
        config,
    })
}

/// `value` as compact JSON with object keys sorted (serde_json's map is
/// ordered by key), so equal configurations hash equal.
fn canonical_json(value: &Value) -> String {
    value.to_string()
}

/// `path` made absolute, so the record names the file wherever the next
/// command runs from.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, std::io::Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text: {e}", path.display()),
        )
    })
}

/// Parses a TOML runbook from the bytes read, and records their hash.
fn load_toml(path: &Path, bytes: &[u8], catalog: &Catalog) -> Result<SourcedRunbook, SourceError> {
    let text = utf8(path, bytes).map_err(|source| RunbookFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let loaded = runbook_file::load_str(text, &path.display().to_string(), catalog)?;
    Ok(SourcedRunbook {
        runbook: loaded.runbook,
        environment: loaded.file.environment,
        warnings: loaded
            .warnings
            .iter()
            .map(|w| format!("{}: {w}", path.display()))
            .collect(),
        origin: RunbookOrigin::TomlFile {
            path: absolute(path),
            sha256: sha256_hex(bytes),
        },
    })
}

/// Imports a Markdown runbook from the bytes read, and records their hash
/// and the import options.
fn load_markdown(
    path: &Path,
    bytes: &[u8],
    options: &ImportOptions,
    catalog: &Catalog,
) -> Result<SourcedRunbook, SourceError> {
    let text = utf8(path, bytes).map_err(|source| MarkdownError::Read {
        path: path.to_owned(),
        source,
    })?;
    let loaded = markdown::load_str(text, &path.display().to_string(), options, catalog)?;
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
        origin: RunbookOrigin::MarkdownFile {
            path: absolute(path),
            sha256: sha256_hex(bytes),
            import: serde_json::to_value(options).map_err(SourceError::Config)?,
        },
    })
}

/// Why a resumed run cannot have the runbook asked for.
#[derive(Debug, thiserror::Error)]
pub enum SourceMismatch {
    /// The journal does not say which runbook the run ran.
    #[error(
        "the run's journal does not record which runbook it ran (journals written before runbook sources were recorded, and runs started by tools that do not say, lack it)"
    )]
    NotRecorded,
    /// The runbook given is of another kind than the run's.
    #[error("the run came from {recorded}, not from {given}")]
    OtherKind {
        /// The run's.
        recorded: Box<RunbookOrigin>,
        /// The one given.
        given: Box<RunbookOrigin>,
    },
    /// The run's file cannot be read any more.
    #[error("the run's {kind} {} cannot be read: {source} (it had sha256 {sha256})", path.display())]
    Gone {
        /// "Markdown runbook", "TOML runbook file".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// Its hash when the run started.
        sha256: String,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The run's file has other bytes now.
    #[error("the run's {kind} {} changed since the run loaded it: sha256 {recorded} then, {now} now", path.display())]
    Changed {
        /// "Markdown runbook", "TOML runbook file".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// Its hash when the run loaded it.
        recorded: String,
        /// Its hash now.
        now: String,
    },
    /// The built-in runbook would be shaped by another configuration.
    #[error(
        "the built-in runbook's configuration differs from the run's (sha256 {recorded} then, {now} now):\n  - {}",
        differences.join("\n  - ")
    )]
    ConfigChanged {
        /// The run's configuration hash.
        recorded: String,
        /// This resume's.
        now: String,
        /// Each difference: the setting, its value then and now.
        differences: Vec<String>,
    },
    /// The recorded import options cannot be read back.
    #[error("the run's recorded import options cannot be read: {0}")]
    ImportOptions(#[source] serde_json::Error),
    /// The runbook does not load.
    #[error(transparent)]
    Load(#[from] SourceError),
}

/// Loads the runbook to resume a run whose journal recorded `recorded`.
///
/// With `given` (a runbook named explicitly), it must be of the recorded
/// kind; a content that differs (an edited file, another configuration) is
/// a warning, and the step-by-step comparison of the resume decides.
/// Without, the recorded source is reloaded: the file must be where it was
/// with the same bytes (imported with the recorded options), and for the
/// built-in runbook `builtin` (the configuration this resume would use)
/// must hash as the run's did; a newer tool version is a warning.
pub fn load_for_resume<B: BuiltinRunbook + Clone>(
    recorded: Option<&RunbookOrigin>,
    given: Option<&RunbookSource<B>>,
    builtin: &B,
    catalog: &Catalog,
) -> Result<SourcedRunbook, SourceMismatch> {
    let Some(recorded) = recorded else {
        return match given {
            Some(given) => {
                let mut loaded = load(given, catalog)?;
                loaded.warnings.push(
                    "the run's journal does not record which runbook it ran; finished steps are compared step by step with this one".into(),
                );
                Ok(loaded)
            }
            None => Err(SourceMismatch::NotRecorded),
        };
    };
    if let Some(given) = given {
        let mut loaded = load(given, catalog)?;
        if !recorded.same_runbook(&loaded.origin) {
            if std::mem::discriminant(recorded) != std::mem::discriminant(&loaded.origin) {
                return Err(SourceMismatch::OtherKind {
                    recorded: Box::new(recorded.clone()),
                    given: Box::new(loaded.origin),
                });
            }
            loaded.warnings.push(format!(
                "the run came from {recorded}; resuming with {} instead, compared step by step",
                loaded.origin
            ));
        } else if recorded.sha256() != loaded.origin.sha256() {
            loaded.warnings.push(format!(
                "{} differs from the run's (sha256 {} then, {} now); finished steps are compared step by step",
                loaded.origin,
                recorded.sha256(),
                loaded.origin.sha256()
            ));
        }
        return Ok(loaded);
    }
    match recorded {
        RunbookOrigin::Builtin {
            tool_version,
            config_sha256,
            config,
        } => {
            let mut loaded = load(&RunbookSource::Builtin(Box::new(builtin.clone())), catalog)?;
            if let RunbookOrigin::Builtin {
                config_sha256: now,
                config: now_config,
                tool_version: now_version,
            } = &loaded.origin
            {
                if now != config_sha256 {
                    return Err(SourceMismatch::ConfigChanged {
                        recorded: config_sha256.clone(),
                        now: now.clone(),
                        differences: differences(config, now_config),
                    });
                }
                if now_version != tool_version {
                    loaded.warnings.push(format!(
                        "the run's built-in runbook was built by version {tool_version}, this is {now_version}; finished steps are compared step by step"
                    ));
                }
            }
            Ok(loaded)
        }
        RunbookOrigin::TomlFile { path, sha256 } => {
            let bytes = read_recorded(recorded.kind(), path, sha256)?;
            Ok(load_toml(path, &bytes, catalog)?)
        }
        RunbookOrigin::MarkdownFile {
            path,
            sha256,
            import,
        } => {
            let options = match import {
                Value::Null => ImportOptions::default(),
                import => {
                    serde_json::from_value(import.clone()).map_err(SourceMismatch::ImportOptions)?
                }
            };
            let bytes = read_recorded(recorded.kind(), path, sha256)?;
            Ok(load_markdown(path, &bytes, &options, catalog)?)
        }
    }
}

/// Where the recorded runbook ran its commands: the built-in runbook's
/// `app_dir`, or the working directory a Markdown import gave its
/// commands. A resume keeps it unless told otherwise.
pub fn recorded_app_dir(recorded: &RunbookOrigin) -> Option<PathBuf> {
    let dir = match recorded {
        RunbookOrigin::Builtin { config, .. } => config.get("app_dir"),
        RunbookOrigin::MarkdownFile { import, .. } => import.get("command_cwd"),
        RunbookOrigin::TomlFile { .. } => None,
    };
    dir.and_then(Value::as_str).map(PathBuf::from)
}

/// The sha256 (hex) of `bytes`, as a run records a file's.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of the file a run recorded (`kind` names it in errors),
/// refused when it is gone or its bytes changed.
pub fn read_recorded(
    kind: &'static str,
    path: &Path,
    sha256: &str,
) -> Result<Vec<u8>, SourceMismatch> {
    let bytes = std::fs::read(path).map_err(|source| SourceMismatch::Gone {
        kind,
        path: path.to_owned(),
        sha256: sha256.to_owned(),
        source,
    })?;
    let now = sha256_hex(&bytes);
    if now != sha256 {
        return Err(SourceMismatch::Changed {
            kind,
            path: path.to_owned(),
            recorded: sha256.to_owned(),
            now,
        });
    }
    Ok(bytes)
}

/// Each setting that differs between two configurations, as
/// "`path`: `then` then, `now` now".
fn differences(then: &Value, now: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(&mut out, "", then, now);
    out
}

fn diff_into(out: &mut Vec<String>, at: &str, then: &Value, now: &Value) {
    match (then, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                diff_into(
                    out,
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
            }
        }
        (a, b) if a != b => out.push(format!("`{at}`: {a} then, {b} now")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A built-in runbook whose configuration is any JSON value.
    #[derive(Debug, Clone, Serialize)]
    struct Configured(Value);

    impl BuiltinRunbook for Configured {
        type Error = crate::ModelError;
        fn runbook(&self) -> Result<Runbook, Self::Error> {
            Runbook::builder("configured")
                .phase(crate::Phase::new("p", "P").step(crate::Step::manual("s", "S")))
                .build()
        }
        fn tool_version(&self) -> String {
            "1.0.0".into()
        }
    }

    #[test]
    fn a_configuration_hashes_the_same_every_time_and_differently_when_it_changes() {
        let config = Configured(serde_json::json!({"smoke": {"native": {}}, "webhook": null}));
        let a = builtin_origin(&config).unwrap();
        let b = builtin_origin(&config.clone()).unwrap();
        assert_eq!(a.sha256(), b.sha256());
        let other = Configured(serde_json::json!({"smoke": "manual", "webhook": "url"}));
        let c = builtin_origin(&other).unwrap();
        assert_ne!(a.sha256(), c.sha256());
        let (
            RunbookOrigin::Builtin { config: then, .. },
            RunbookOrigin::Builtin { config: now, .. },
        ) = (&a, &c)
        else {
            panic!("built-in origins");
        };
        assert_eq!(
            differences(then, now),
            [
                r#"`smoke`: {"native":{}} then, "manual" now"#,
                r#"`webhook`: null then, "url" now"#,
            ]
        );
    }

    #[test]
    fn a_file_is_recorded_by_absolute_path_and_the_hash_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rb.md");
        let doc = "# Deploy\n\n## Passos\n- [ ] Avisar o time\n";
        std::fs::write(&path, doc).unwrap();
        let loaded = load(
            &RunbookSource::<Configured>::Markdown {
                path: path.clone(),
                options: ImportOptions::default(),
            },
            &Catalog::new(),
        )
        .unwrap();
        let RunbookOrigin::MarkdownFile {
            path: recorded,
            sha256,
            import,
        } = &loaded.origin
        else {
            panic!("{:?}", loaded.origin);
        };
        assert_eq!(recorded, &path);
        // sha256 of the document's bytes, as `sha256sum` prints it.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256, &sha256_hex(doc.as_bytes()));
        assert_eq!(
            serde_json::from_value::<ImportOptions>(import.clone()).unwrap(),
            ImportOptions::default()
        );
    }
}
