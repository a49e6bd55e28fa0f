//! Concrete checks and actions for escola-runbook, and the built-in Escola
//! Connect runbook that the CLI and `cargo run --example deploy` share.

#![warn(missing_docs)]

#[cfg(feature = "escola")]
pub mod builtin_runbook;
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
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "http")]
pub mod notify;
#[cfg(feature = "http")]
pub mod smoke;
#[cfg(test)]
mod testing;

pub use builtins::catalog;
