//! What a restore would lose: the snapshot's age and, per table, the rows
//! written since it was taken, read from the live database against the
//! watermarks the snapshot recorded. The DBA who approves a restore
//! decides on these numbers, not on a guess.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use escola_runbook_core::format_duration;

use super::connect::Session;
use super::snapshot::{Manifest, Watermark, WatermarkKind};
use super::sql::ident;

/// `ER_NO_SUCH_TABLE`: the table is gone since the snapshot.
const NO_SUCH_TABLE: u16 = 1146;

/// Rows written to one table since the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLoss {
    /// Its database.
    pub database: String,
    /// The table.
    pub table: String,
    /// Rows the snapshot holds.
    pub rows_then: u64,
    /// Rows the table holds now; `None` when the table no longer exists.
    pub rows_now: Option<u64>,
    /// Rows past the `AUTO_INCREMENT` watermark: inserted since. `None`
    /// when the table has no such column.
    pub inserted: Option<u64>,
    /// Rows past the `ON UPDATE CURRENT_TIMESTAMP` watermark: inserted or
    /// updated since. `None` when the table has no such column.
    pub updated: Option<u64>,
}

impl TableLoss {
    /// Whether anything shows the table changed since the snapshot. A
    /// table without watermarks shows only a changed row count: rows
    /// updated in place go unseen there, which [`TableLoss::describe`] says.
    pub fn changed(&self) -> bool {
        self.rows_now != Some(self.rows_then)
            || self.inserted.is_some_and(|n| n > 0)
            || self.updated.is_some_and(|n| n > 0)
    }

    /// The table's figures, for a line labelled with its name: "2 rows
    /// inserted since, 3 inserted or updated since; 3 rows then, 5 now".
    pub fn describe(&self) -> String {
        let Some(now) = self.rows_now else {
            return format!(
                "the table no longer exists ({} in the snapshot)",
                rows(self.rows_then)
            );
        };
        let mut seen = Vec::new();
        if let Some(n) = self.inserted {
            seen.push(format!("{} inserted since", rows(n)));
        }
        if let Some(n) = self.updated {
            seen.push(format!("{n} inserted or updated since"));
        }
        if seen.is_empty() {
            seen.push("no watermark column (updates in place are not seen)".into());
        }
        format!(
            "{}; {} then, {now} now",
            seen.join(", "),
            rows(self.rows_then)
        )
    }
}

/// "1 row", "3 rows".
fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

/// The estimate for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossEstimate {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// The snapshot's point in time.
    pub taken_at: DateTime<Utc>,
    /// How long ago that was.
    pub age: Duration,
    /// Every table of the snapshot, in manifest order.
    pub tables: Vec<TableLoss>,
}

impl LossEstimate {
    /// One line: the age, and the tables that changed with the rows each
    /// would lose.
    pub fn summary(&self) -> String {
        let changed: Vec<&TableLoss> = self.tables.iter().filter(|t| t.changed()).collect();
        let age = format_duration(self.age);
        if changed.is_empty() {
            return format!(
                "restoring the snapshot of {} ({age} old) loses nothing seen: none of its {} tables changed since",
                self.taken_at.format("%Y-%m-%d %H:%M:%S UTC"),
                self.tables.len()
            );
        }
        let written: u64 = changed.iter().map(|t| t.written()).sum();
        format!(
            "restoring the snapshot of {} ({age} old) loses at least {} written since, in {} of {} tables: {}",
            self.taken_at.format("%Y-%m-%d %H:%M:%S UTC"),
            rows(written),
            changed.len(),
            self.tables.len(),
            changed
                .iter()
                .map(|t| format!("{} {}", t.table, t.written()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl TableLoss {
    /// The fewest rows a restore would lose here: the larger of what the
    /// watermarks counted and the growth of the row count.
    fn written(&self) -> u64 {
        let growth = self
            .rows_now
            .map_or(self.rows_then, |now| now.abs_diff(self.rows_then));
        growth
            .max(self.inserted.unwrap_or(0))
            .max(self.updated.unwrap_or(0))
    }
}

/// Why the estimate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A statement failed.
    #[error("{during}: {source}")]
    Query {
        /// What was being read.
        during: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
}

/// Counts, on the live server, what was written to each table of
/// `manifest` (the snapshot in `snapshot`) since it was taken.
pub async fn estimate(
    conn: &mut Session,
    snapshot: &Path,
    manifest: &Manifest,
    now: DateTime<Utc>,
) -> Result<LossEstimate, LossError> {
    let mut tables = Vec::new();
    for db in &manifest.databases {
        for t in &db.tables {
            let table = format!("{}.{}", ident(&db.name), ident(&t.name));
            let Some(rows_now) = count(conn, &table, None).await? else {
                tables.push(TableLoss {
                    database: db.name.clone(),
                    table: t.name.clone(),
                    rows_then: t.rows,
                    rows_now: None,
                    inserted: None,
                    updated: None,
                });
                continue;
            };
            let past = |kind| t.watermarks.iter().find(|w| w.kind == kind);
            let mut inserted = None;
            if let Some(mark) = past(WatermarkKind::Inserted) {
                inserted = count(conn, &table, Some(mark)).await?;
            }
            let mut updated = None;
            if let Some(mark) = past(WatermarkKind::Updated) {
                updated = count(conn, &table, Some(mark)).await?;
            }
            tables.push(TableLoss {
                database: db.name.clone(),
                table: t.name.clone(),
                rows_then: t.rows,
                rows_now: Some(rows_now),
                inserted,
                updated,
            });
        }
    }
    Ok(LossEstimate {
        snapshot: snapshot.to_owned(),
        taken_at: manifest.started_at,
        age: (now - manifest.started_at).to_std().unwrap_or_default(),
        tables,
    })
}

/// Rows of `table` (already quoted), all of them or those past `mark`;
/// `None` when the table does not exist.
async fn count(
    conn: &mut Session,
    table: &str,
    mark: Option<&Watermark>,
) -> Result<Option<u64>, LossError> {
    // An empty table at the snapshot has no watermark value: every row
    // now is past it.
    let answer = match mark {
        Some(Watermark {
            column,
            max: Some(max),
            ..
        }) => {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE {} > ?", ident(column));
            conn.exec_first::<u64, _, _>(sql, (max.as_str(),)).await
        }
        _ => {
            conn.query_first::<u64, _>(format!("SELECT COUNT(*) FROM {table}"))
                .await
        }
    };
    let during = match mark {
        Some(mark) => format!("counting the rows of {table} past `{}`", mark.column),
        None => format!("counting the rows of {table}"),
    };
    match answer {
        Ok(n) => Ok(Some(n.unwrap_or(0))),
        Err(mysql_async::Error::Server(e)) if e.code == NO_SUCH_TABLE => Ok(None),
        Err(source) => Err(LossError::Query { during, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows_now: Option<u64>, inserted: Option<u64>, updated: Option<u64>) -> TableLoss {
        TableLoss {
            database: "escola".into(),
            table: "sync_mutations".into(),
            rows_then: 100,
            rows_now,
            inserted,
            updated,
        }
    }

    #[test]
    fn a_table_changed_when_its_count_moved_or_rows_passed_a_watermark() {
        assert!(!table(Some(100), Some(0), None).changed());
        assert!(
            table(Some(100), Some(0), Some(3)).changed(),
            "updated in place"
        );
        assert!(table(Some(98), None, None).changed(), "rows deleted");
        assert!(table(None, None, None).changed(), "dropped");
    }

    #[test]
    fn the_rows_lost_are_the_most_any_figure_shows() {
        // 5 inserted and 5 deleted: the count did not move, the watermark did.
        assert_eq!(table(Some(100), Some(5), None).written(), 5);
        assert_eq!(table(Some(120), Some(20), Some(31)).written(), 31);
        assert_eq!(table(Some(90), None, None).written(), 10);
        assert_eq!(table(None, None, None).written(), 100);
    }

    #[test]
    fn lines_say_what_was_seen_and_what_cannot_be() {
        assert_eq!(
            table(Some(120), Some(20), Some(31)).describe(),
            "20 rows inserted since, 31 inserted or updated since; 100 rows then, 120 now"
        );
        assert!(
            table(Some(100), None, None)
                .describe()
                .contains("no watermark column (updates in place are not seen)")
        );
        assert!(
            table(None, None, None)
                .describe()
                .contains("no longer exists")
        );
    }

    #[test]
    fn the_summary_names_the_age_and_each_changed_table() {
        let estimate = LossEstimate {
            snapshot: "snap".into(),
            taken_at: DateTime::parse_from_rfc3339("2026-12-03T02:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            age: Duration::from_secs(2 * 3600 + 13 * 60),
            tables: vec![table(Some(120), Some(20), None), {
                let mut t = table(Some(7), None, None);
                t.table = "cidades".into();
                t.rows_then = 7;
                t
            }],
        };
        assert_eq!(
            estimate.summary(),
            "restoring the snapshot of 2026-12-03 02:00:00 UTC (2h13m old) loses at least 20 rows written since, in 1 of 2 tables: sync_mutations 20"
        );
    }
}
