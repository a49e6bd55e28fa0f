use crate::record::RunRecord;

use super::error::ReportError;

/// The record as pretty JSON; `schema_version` says which shape it is
/// (documented in `docs/report-schema.md`).
pub fn render_json(record: &RunRecord) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(record)?;
    text.push('\n');
    Ok(text)
}
