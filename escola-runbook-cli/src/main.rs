//! The `escola-runbook` command (work in progress in this commit).
fn main() {
    std::process::exit(escola_runbook_core::exit::USAGE);
}
