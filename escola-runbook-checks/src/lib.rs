//! Concrete checks and actions for escola-runbook, and the built-in Escola
//! Connect runbook that the CLI and `cargo run --example deploy` share.

#![warn(missing_docs)]

pub mod command;
pub mod escola;
pub mod notify;
pub mod registry;
