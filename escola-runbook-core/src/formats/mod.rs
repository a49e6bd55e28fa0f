//! Runbook files, generic over a [`Catalog`](crate::catalog::Catalog): a
//! file names checks and probes by the names a catalog gives them, so a
//! team's registered check reads and writes like a built-in one.
//!
//! - [`runbook_file`]: TOML runbooks (parse, build through the catalog,
//!   export back).
//! - [`markdown`]: a Markdown runbook imported into a runbook file, and a
//!   run's evidence exported back into the document.
//! - [`rules_file`]: alert rules in TOML for `watch` and `replay`.
//! - [`runbook_source`]: one entry point for a built-in runbook, a TOML file
//!   or a Markdown document, with the provenance (path and sha256) a run
//!   records and a resume checks.
//!
//! Behind the cargo feature `formats` (on by default): it brings `toml`,
//! `pulldown-cmark` and `sha2`.

pub mod markdown;
pub mod rules_file;
pub mod runbook_file;
pub mod runbook_source;
