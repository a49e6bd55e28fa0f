//! Concrete checks and actions for escola-runbook, and the built-in Escola
//! Connect runbook that the CLI and `cargo run --example deploy` share.

#![warn(missing_docs)]

pub mod builtin_runbook;
pub mod builtins;
pub mod cache_purge;
pub mod changelog;
pub mod command;
pub mod coverage;
pub mod db;
pub mod docs_freshness;
pub mod escola;
pub mod git;
pub mod http;
pub mod http_json;
pub mod legacy_spec;
pub mod log_scan;
pub mod metrics;
pub mod notify;
pub mod smoke;
#[cfg(test)]
mod testing;

pub use builtins::catalog;
