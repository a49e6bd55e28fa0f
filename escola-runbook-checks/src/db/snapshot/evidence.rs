//! The `db-snapshot` check's outcome from a snapshot's manifest: what was
//! written, how consistent it is, and the rows per table. Pure, so the
//! verdict (a snapshot without the global read lock only warns) is tested
//! without a server.

use std::path::Path;

use escola_runbook_core::{Outcome, Status, counted};

use super::manifest::{Manifest, row_counts};

/// The value a `db-snapshot` step records its snapshot's path under, for
/// the steps after it (restore, loss estimate, prune).
pub const SNAPSHOT_PATH: &str = "snapshot.path";

/// Tables listed one per line in the evidence; the rest are counted.
const TABLES_SHOWN: usize = 50;

/// Passed for a snapshot at `path` whose manifest (with sha256
/// `manifest_sha`) is `manifest`; warned when it was taken without the
/// global read lock.
pub(crate) fn outcome(path: &Path, manifest: &Manifest, manifest_sha: &str) -> Outcome {
    let secs = (manifest.finished_at - manifest.started_at).num_milliseconds() as f64 / 1000.0;
    let mut outcome = Outcome::passed(format!(
        "snapshot of {} written: {} in {}, {} bytes compressed",
        manifest
            .databases
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        counted(manifest.total_rows, "row"),
        counted(manifest.files.len() as u64, "file"),
        manifest.total_bytes
    ))
    .with_evidence("path", path.display().to_string())
    .with_evidence("manifest sha256", manifest_sha)
    .with_evidence(
        "server",
        format!("{} ({})", manifest.server, manifest.server_version),
    )
    .with_evidence(
        "consistency",
        format!(
            "{}: {}",
            manifest.consistency.method, manifest.consistency.caveat
        ),
    )
    .with_evidence(
        "size",
        format!(
            "{} bytes compressed, {} bytes of SQL",
            manifest.total_bytes,
            manifest.files.iter().map(|f| f.sql_bytes).sum::<u64>()
        ),
    );
    if let Some(b) = &manifest.binlog {
        outcome = outcome.with_evidence("binlog position", format!("{}:{}", b.file, b.position));
    }
    if let Some(g) = &manifest.gtid {
        outcome = outcome.with_evidence("gtid", g);
    }
    if let Some(text) = manifest.consistency.global_read_lock() {
        outcome = outcome.with_evidence("global read lock", text);
    }
    let counts = row_counts(manifest);
    let shown: Vec<String> = counts
        .iter()
        .take(TABLES_SHOWN)
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    let more = counts.len().saturating_sub(shown.len());
    outcome = outcome.with_evidence(
        "rows per table",
        if more > 0 {
            format!(
                "{}\n(and {more} more tables; see manifest.json)",
                shown.join("\n")
            )
        } else {
            shown.join("\n")
        },
    );
    if manifest.consistency.global_read_lock_ms.is_none() {
        outcome.status = Status::Warned;
        outcome
            .summary
            .push_str("; without the global read lock (see consistency)");
    }
    outcome
        .with_measurement("snapshot_rows", manifest.total_rows as f64, Some("rows"))
        .with_measurement("snapshot_bytes", manifest.total_bytes as f64, Some("bytes"))
        .with_measurement("snapshot_duration", secs, Some("s"))
        .with_value(SNAPSHOT_PATH, serde_json::json!(path.display().to_string()))
        .with_value("snapshot.manifest_sha256", serde_json::json!(manifest_sha))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::db::snapshot::manifest::tests::{database, file};
    use crate::db::snapshot::manifest::{Consistency, FORMAT, FileKind, TableEntry};

    fn manifest(lock_ms: Option<u64>) -> Manifest {
        let mut db = database("escola");
        db.tables.push(TableEntry {
            name: "eventos".into(),
            engine: "InnoDB".into(),
            rows: 12,
            content_checksum: None,
            generated_columns: Vec::new(),
            watermarks: Vec::new(),
        });
        Manifest {
            format: FORMAT.into(),
            tool: "escola-runbook test".into(),
            server: "127.0.0.1:3306".into(),
            server_version: "11.8.3-MariaDB".into(),
            started_at: Utc.with_ymd_and_hms(2026, 11, 29, 2, 30, 0).unwrap(),
            finished_at: Utc.with_ymd_and_hms(2026, 11, 29, 2, 30, 3).unwrap(),
            consistency: Consistency {
                method: "m".into(),
                global_read_lock_ms: lock_ms,
                global_read_lock_wait_ms: None,
                non_transactional_tables: Vec::new(),
                caveat: "c".into(),
            },
            encryption: None,
            binlog: None,
            gtid: None,
            databases: vec![db],
            files: vec![file(FileKind::Data, Some("eventos"), 12)],
            total_rows: 12,
            total_bytes: 100,
            restore_with: String::new(),
        }
    }

    #[test]
    fn a_snapshot_passes_with_the_lock_and_warns_without_it() {
        let path = Path::new("/snapshots/escola-20261129T023000Z");
        let o = outcome(path, &manifest(Some(35)), "cafe");
        assert_eq!(o.status, Status::Passed);
        assert_eq!(
            o.summary,
            "snapshot of escola written: 12 rows in 1 file, 100 bytes compressed"
        );
        assert_eq!(
            crate::testing::evidence(&o, "rows per table"),
            "escola.eventos: 12"
        );
        assert_eq!(crate::testing::evidence(&o, "manifest sha256"), "cafe");
        assert_eq!(o.values["snapshot.path"], path.display().to_string());

        let o = outcome(path, &manifest(None), "cafe");
        assert_eq!(o.status, Status::Warned);
        assert!(
            o.summary
                .ends_with("; without the global read lock (see consistency)")
        );
    }
}
