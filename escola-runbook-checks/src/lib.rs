//! Concrete checks and actions for escola-runbook, and the built-in Escola
//! Connect runbook that the CLI and `cargo run --example deploy` share.

#![warn(missing_docs)]

pub mod builtins;
#[cfg(feature = "http")]
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
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod http_json;
#[cfg(feature = "logs")]
pub mod log_scan;
pub mod markdown;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "http")]
pub mod notify;
#[cfg(feature = "metrics")]
pub mod rules_file;
pub mod runbook_file;
#[cfg(feature = "http")]
pub mod smoke;
#[cfg(feature = "escola")]
pub mod source;
#[cfg(test)]
mod testing;

pub use builtins::catalog;
