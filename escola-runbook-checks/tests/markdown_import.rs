//! Markdown import: the team's runbook, messy inputs, bindings.

use escola_runbook_checks::markdown::{self, ImportOptions};

const TEAM: &str = include_str!("fixtures/escola-runbook.md");

#[test]
fn debug_print() {
    let imported = markdown::import(TEAM, &ImportOptions::default());
    println!("{}", imported.file.to_toml().unwrap());
    for w in &imported.warnings {
        println!("W {w}");
    }
}
