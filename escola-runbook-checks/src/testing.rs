//! What the checks' tests share.

use escola_runbook_core::{Ctx, Environment, Outcome, Secrets};

/// A standalone context with no settings and no secrets.
pub fn ctx() -> Ctx {
    Ctx::standalone(Environment::new("test"), Secrets::new())
}

/// The value of the first evidence whose label starts with `label`.
pub fn evidence<'a>(o: &'a Outcome, label: &str) -> &'a str {
    o.evidence
        .iter()
        .find(|e| e.label.starts_with(label))
        .map(|e| e.value.as_str())
        .unwrap_or_else(|| panic!("no evidence `{label}` in {o:#?}"))
}

/// `KEY=VALUE` pairs as the catalog takes them.
pub fn pairs<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    items
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
