//! The session settings every snapshot session reads under, declared once
//! for the dump and for recomputing its figures from a restored copy.

use super::error::{SnapshotError, query_err};
use crate::db::connect::Session;

/// UTF-8 names, UTC times, long writes, one repeatable-read snapshot.
const SESSION_SETUP: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET SESSION net_write_timeout = 3600",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
];

/// Sets up `conn`; a session reading rows (`raw`) gets column bytes
/// unconverted (latin1 text must reach the file as stored).
pub(crate) async fn prepare(
    conn: &mut Session,
    raw: bool,
    during: &str,
) -> Result<(), SnapshotError> {
    let raw_results = raw.then_some("SET character_set_results = NULL");
    for stmt in SESSION_SETUP.iter().copied().chain(raw_results) {
        conn.query_drop(stmt).await.map_err(query_err(during))?;
    }
    Ok(())
}
