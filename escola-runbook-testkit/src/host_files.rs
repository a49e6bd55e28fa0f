//! The simulated host's files the simulator reads on every request (a leaf:
//! the app reads them, [`crate::SimulatedHost`] writes them).

use std::path::Path;

/// The maintenance flag `php artisan down` writes, relative to the app dir.
pub(crate) const DOWN_FILE: &str = "storage/framework/down";

/// The applied migrations, one per line, oldest first.
pub(crate) const APPLIED_FILE: &str = "storage/schema/applied";

/// The newest migration listed in `dir`'s applied file.
pub(crate) fn schema_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(APPLIED_FILE)).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_owned)
}

/// The `Retry-After` seconds of the maintenance flag in `dir`, if it is on
/// (60, Laravel's default, when the file does not say).
pub(crate) fn maintenance_retry(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(DOWN_FILE)).ok()?;
    let retry = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("retry").and_then(serde_json::Value::as_u64));
    Some(retry.unwrap_or(60))
}
