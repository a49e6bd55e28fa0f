//! Concrete checks and actions for escola-runbook, and the built-in Escola
//! Connect runbook that the CLI and `cargo run --example deploy` share.

#![warn(missing_docs)]

pub mod builtins;
pub mod cache_purge;
#[cfg(feature = "readiness")]
pub mod changelog;
pub mod command;
#[cfg(feature = "readiness")]
pub mod coverage;
#[cfg(feature = "mysql")]
pub mod db;
#[cfg(feature = "readiness")]
pub mod docs_freshness;
#[cfg(feature = "escola")]
pub mod escola;
#[cfg(feature = "readiness")]
pub mod git;
pub mod http;
pub mod http_json;
pub mod legacy_spec;
#[cfg(feature = "logs")]
pub mod log_scan;
pub mod markdown;
pub mod metrics;
pub mod notify;
pub mod rules_file;
pub mod runbook_file;
pub mod smoke;
#[cfg(feature = "escola")]
pub mod source;
#[cfg(test)]
mod testing;

pub use builtins::catalog;
