//! What to dump: the databases' tables, columns and keys, their schema and
//! objects (routines, views, triggers, events), the binlog position, and
//! the data files planned from them (big tables split by primary key).

use std::collections::BTreeMap;
use std::sync::Arc;

use mysql_async::{Row, Value};

use super::error::{SnapshotError, query_err};
use super::manifest::{
    BinlogPosition, DatabaseEntry, FileEntry, FileKind, TableEntry, Watermark, WatermarkKind,
};
use super::write::{header, sanitize};
use crate::db::connect::Session;
use crate::db::sql::{ColumnKind, ident, quote_text};

pub(super) fn get<T: mysql_async::prelude::FromValue>(
    row: &Row,
    i: usize,
    during: &str,
) -> Result<T, SnapshotError> {
    match row.get_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(SnapshotError::Query {
            during: during.into(),
            message: format!("unexpected value in column {i}: {e}"),
        }),
        None => Err(SnapshotError::Query {
            during: during.into(),
            message: format!("the result has no column {i}"),
        }),
    }
}

fn opt_string(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) kind: ColumnKind,
    pub(super) generated: bool,
    pub(super) integer: bool,
    pub(super) watermark: Option<WatermarkKind>,
}

#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) db: String,
    pub(super) name: String,
    pub(super) engine: String,
    pub(super) transactional: bool,
    pub(super) estimated_rows: u64,
    pub(super) columns: Vec<Column>,
    pub(super) primary_key: Vec<String>,
    pub(super) sequence: bool,
}

#[derive(Debug, Clone)]
pub(super) struct WorkItem {
    pub(super) index: usize,
    pub(super) table: Arc<Table>,
    pub(super) range: Option<(Value, Value)>,
    pub(super) chunk: Option<u32>,
    pub(super) file: String,
}

pub(super) async fn read_tables(conn: &mut Session, db: &str) -> Result<Vec<Table>, SnapshotError> {
    let during = format!("listing the tables of `{db}`");
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, ''), COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .map_err(query_err(during.clone()))?;
    let mut tables = Vec::new();
    for row in &rows {
        let engine: String = get(row, 2, &during)?;
        let kind: String = get(row, 1, &during)?;
        tables.push(Table {
            db: db.to_owned(),
            name: get(row, 0, &during)?,
            transactional: matches!(
                engine.to_ascii_lowercase().as_str(),
                "innodb" | "xtradb" | "rocksdb" | "tokudb"
            ),
            engine,
            estimated_rows: get(row, 3, &during)?,
            columns: Vec::new(),
            primary_key: Vec::new(),
            sequence: kind == "SEQUENCE",
        });
    }
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), CHARACTER_SET_NAME, EXTRA, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .map_err(query_err(during.clone()))?;
    for row in &rows {
        let table: String = get(row, 0, &during)?;
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        let data_type: String = get(row, 2, &during)?;
        let extra = opt_string(row, 4).unwrap_or_default().to_ascii_uppercase();
        let kind = ColumnKind::classify(&data_type, opt_string(row, 3).as_deref());
        let name: String = get(row, 1, &during)?;
        if opt_string(row, 5).as_deref() == Some("PRI") {
            t.primary_key.push(name.clone());
        }
        t.columns.push(Column {
            name,
            integer: kind == ColumnKind::Integer && data_type != "year",
            kind,
            generated: extra.contains("VIRTUAL")
                || extra.contains("STORED GENERATED")
                || extra.contains("PERSISTENT"),
            watermark: if extra.contains("AUTO_INCREMENT") {
                Some(WatermarkKind::Inserted)
            } else if extra.contains("ON UPDATE") {
                Some(WatermarkKind::Updated)
            } else {
                None
            },
        });
    }
    Ok(tables)
}

/// The row of `SHOW CREATE {what} name`, with the statement (what the
/// errors about it say was being done).
async fn show_create_row(
    conn: &mut Session,
    what: &str,
    name: &str,
) -> Result<(Row, String), SnapshotError> {
    let during = format!("SHOW CREATE {what} {}", ident(name));
    let row: Option<Row> = conn
        .query_first(&during)
        .await
        .map_err(query_err(during.clone()))?;
    let row = row.ok_or_else(|| SnapshotError::Query {
        during: during.clone(),
        message: "no row returned".into(),
    })?;
    Ok((row, during))
}

pub(super) async fn show_create(
    conn: &mut Session,
    what: &str,
    name: &str,
    column: usize,
) -> Result<String, SnapshotError> {
    let (row, during) = show_create_row(conn, what, name).await?;
    match opt_string(&row, column) {
        Some(text) => Ok(text),
        None => Err(SnapshotError::Query {
            during,
            message: "the definition is empty: the user lacks the privilege to read it (SHOW_ROUTINE/SELECT on mysql.proc or TRIGGER/EVENT)".into(),
        }),
    }
}

pub(super) struct Objects {
    pub(super) text: String,
    pub(super) views: Vec<String>,
    pub(super) routines: Vec<String>,
    pub(super) triggers: Vec<String>,
    pub(super) events: Vec<String>,
}

async fn names(conn: &mut Session, sql: &str, db: &str) -> Result<Vec<Vec<String>>, SnapshotError> {
    let rows: Vec<Row> = conn
        .exec(sql, (db,))
        .await
        .map_err(query_err(format!("listing objects of `{db}`")))?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| opt_string(r, i).unwrap_or_default())
                .collect()
        })
        .collect())
}

/// Routines, then views (in dependency order), triggers and events, each
/// with the sql_mode it was created under.
pub(super) async fn read_objects(conn: &mut Session, db: &str) -> Result<Objects, SnapshotError> {
    let mut text = header(db, "routines, views, triggers, events");
    let mut routines = Vec::new();
    for r in names(
        conn,
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
        db,
    )
    .await?
    {
        let (name, kind) = (&r[0], &r[1]);
        let (mode, create) = show_with_mode(conn, kind, name, 1, 2).await?;
        push_with_mode(&mut text, Some((kind, name)), &mode, &create);
        routines.push(name.clone());
    }
    text.push_str("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n");
    let view_names: Vec<String> = names(
        conn,
        "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
        db,
    )
    .await?
    .into_iter()
    .map(|mut r| r.swap_remove(0))
    .collect();
    let mut defs = Vec::new();
    for v in &view_names {
        defs.push((v.clone(), show_create(conn, "VIEW", v, 1).await?));
    }
    for (name, def) in order_views(defs) {
        text.push_str(&format!(
            "DROP VIEW IF EXISTS {};\n{def};\n\n",
            ident(&name)
        ));
    }
    let mut triggers = Vec::new();
    for r in names(
        conn,
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
        db,
    )
    .await?
    {
        let (mode, create) = show_with_mode(conn, "TRIGGER", &r[0], 1, 2).await?;
        push_with_mode(&mut text, None, &mode, &create);
        triggers.push(r[0].clone());
    }
    let mut events = Vec::new();
    for r in names(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME", db).await? {
        let (mode, create) = show_with_mode(conn, "EVENT", &r[0], 1, 3).await?;
        push_with_mode(&mut text, Some(("EVENT", &r[0])), &mode, &create);
        events.push(r[0].clone());
    }
    text.push_str("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n");
    Ok(Objects {
        text,
        views: view_names,
        routines,
        triggers,
        events,
    })
}

/// Appends `create` under the sql_mode it was created with, between
/// `DELIMITER ;;` lines (its body may hold `;`), after `DROP kind IF EXISTS
/// name` when `drop` gives the kind and name.
fn push_with_mode(text: &mut String, drop: Option<(&str, &str)>, mode: &str, create: &str) {
    if let Some((kind, name)) = drop {
        text.push_str(&format!("DROP {kind} IF EXISTS {};\n", ident(name)));
    }
    text.push_str(&format!(
        "SET SESSION sql_mode = {};\nDELIMITER ;;\n{create} ;;\nDELIMITER ;\n\n",
        quote_text(mode)
    ));
}

async fn show_with_mode(
    conn: &mut Session,
    what: &str,
    name: &str,
    mode_col: usize,
    create_col: usize,
) -> Result<(String, String), SnapshotError> {
    let (row, during) = show_create_row(conn, what, name).await?;
    let mode = opt_string(&row, mode_col).unwrap_or_default();
    let create = opt_string(&row, create_col).ok_or_else(|| SnapshotError::Query {
        during,
        message: "the definition is empty: the user lacks the privilege to read it".into(),
    })?;
    Ok((mode, create))
}

/// Views that use other views come after them.
pub(super) fn order_views(mut defs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut ordered: Vec<(String, String)> = Vec::new();
    while !defs.is_empty() {
        let ready = defs.iter().position(|(name, def)| {
            !defs
                .iter()
                .any(|(other, _)| other != name && def.contains(&ident(other)))
        });
        // A cycle cannot exist between views; fall back to name order.
        let i = ready.unwrap_or(0);
        ordered.push(defs.remove(i));
    }
    ordered
}

/// The binlog file and position, and the GTID position, where the server
/// has them.
pub(super) async fn binlog_position(
    conn: &mut Session,
) -> (Option<BinlogPosition>, Option<String>) {
    let binlog = match conn.query_first::<Row, _>("SHOW MASTER STATUS").await {
        Ok(Some(row)) => match (
            opt_string(&row, 0),
            row.get_opt::<u64, usize>(1).and_then(Result::ok),
        ) {
            (Some(file), Some(position)) => Some(BinlogPosition { file, position }),
            _ => None,
        },
        _ => None,
    };
    let mut gtid = None;
    for q in [
        "SELECT @@GLOBAL.gtid_binlog_pos",
        "SELECT @@GLOBAL.gtid_executed",
    ] {
        if let Ok(Some(Some(v))) = conn.query_first::<Option<String>, _>(q).await {
            if !v.is_empty() {
                gtid = Some(v);
                break;
            }
        }
    }
    (binlog, gtid)
}

/// The primary-key ranges `t` is dumped in: none (one file) unless its
/// single integer key has values.
pub(super) async fn pk_ranges(
    conn: &mut Session,
    t: &Table,
    chunk_rows: u64,
) -> Result<Vec<(Value, Value)>, SnapshotError> {
    let pk = &t.primary_key[0];
    if !t.columns.iter().any(|c| &c.name == pk && c.integer) {
        return Ok(Vec::new());
    }
    let during = format!("reading the key range of `{}`.`{}`", t.db, t.name);
    let q = format!(
        "SELECT MIN({0}), MAX({0}) FROM {1}.{2}",
        ident(pk),
        ident(&t.db),
        ident(&t.name)
    );
    let row: Option<Row> = conn.query_first(q).await.map_err(query_err(during))?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let as_i128 = |v: Option<&Value>| match v {
        Some(Value::Int(i)) => Some(i128::from(*i)),
        Some(Value::UInt(u)) => Some(i128::from(*u)),
        Some(Value::Bytes(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    };
    let (Some(lo), Some(hi)) = (as_i128(row.as_ref(0)), as_i128(row.as_ref(1))) else {
        return Ok(Vec::new());
    };
    let value = |x: i128| match i64::try_from(x) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::UInt(u64::try_from(x).unwrap_or(u64::MAX)),
    };
    Ok(split_range(lo, hi, t.estimated_rows, chunk_rows)
        .into_iter()
        .map(|(a, b)| (value(a), value(b)))
        .collect())
}

/// `lo..=hi` cut into consecutive ranges of equal width, as many as
/// `estimated_rows` needs chunks of `chunk_rows` (1 to 10 000).
pub(super) fn split_range(
    lo: i128,
    hi: i128,
    estimated_rows: u64,
    chunk_rows: u64,
) -> Vec<(i128, i128)> {
    let chunks = estimated_rows.div_ceil(chunk_rows.max(1)).clamp(1, 10_000) as i128;
    let width = ((hi - lo + 1) + chunks - 1) / chunks;
    let mut out = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = (start + width - 1).min(hi);
        out.push((start, end));
        start = end + 1;
    }
    out
}

/// The data files of `tables`, numbered from `first` in restore order: one
/// per table, or one per range of `ranges` (same order as `tables`).
/// Sequences have no data file.
pub(super) fn work_items(
    tables: &[Arc<Table>],
    ranges: Vec<Vec<(Value, Value)>>,
    first: usize,
) -> Vec<WorkItem> {
    let mut items = Vec::new();
    for (t, ranges) in tables.iter().zip(ranges) {
        if t.sequence {
            continue;
        }
        let base = first + items.len();
        if ranges.is_empty() {
            items.push(WorkItem {
                index: base,
                table: Arc::clone(t),
                range: None,
                chunk: None,
                file: format!(
                    "{base:04}-{}.{}.sql.zst",
                    sanitize(&t.db),
                    sanitize(&t.name)
                ),
            });
        } else {
            for (n, r) in ranges.into_iter().enumerate() {
                let index = first + items.len();
                items.push(WorkItem {
                    index,
                    table: Arc::clone(t),
                    range: Some(r),
                    chunk: Some(n as u32),
                    file: format!(
                        "{index:04}-{}.{}.{n:04}.sql.zst",
                        sanitize(&t.db),
                        sanitize(&t.name)
                    ),
                });
            }
        }
    }
    items
}

/// The ranges of each of `tables` (see [`work_items`]): tables bigger than
/// `chunk_rows` with a single-column key are split.
pub(super) async fn ranges(
    conn: &mut Session,
    tables: &[Arc<Table>],
    chunk_rows: u64,
) -> Result<Vec<Vec<(Value, Value)>>, SnapshotError> {
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        out.push(
            if !t.sequence && t.estimated_rows > chunk_rows && t.primary_key.len() == 1 {
                pk_ranges(conn, t, chunk_rows).await?
            } else {
                Vec::new()
            },
        );
    }
    Ok(out)
}

/// The largest value of each watermark column of `tables`, read in
/// `conn`'s snapshot, by `(database, table)`.
pub(super) async fn watermarks(
    conn: &mut Session,
    tables: impl Iterator<Item = &Table>,
) -> Result<BTreeMap<(String, String), Vec<Watermark>>, SnapshotError> {
    let mut out = BTreeMap::new();
    for t in tables.filter(|t| !t.sequence) {
        let mut marks = Vec::new();
        for c in &t.columns {
            let Some(kind) = c.watermark else { continue };
            let sql = format!(
                "SELECT CAST(MAX({}) AS CHAR) FROM {}.{}",
                ident(&c.name),
                ident(&t.db),
                ident(&t.name)
            );
            let max: Option<Option<String>> = conn.query_first(&sql).await.map_err(query_err(
                format!("reading the watermark of `{}`.`{}`", t.db, t.name),
            ))?;
            marks.push(Watermark {
                column: c.name.clone(),
                kind,
                max: max.flatten(),
            });
        }
        if !marks.is_empty() {
            out.insert((t.db.clone(), t.name.clone()), marks);
        }
    }
    Ok(out)
}

/// `db.table` of the non-transactional tables (sequences are not dumped).
pub(super) fn non_transactional(tables: &[std::sync::Arc<Table>]) -> Vec<String> {
    tables
        .iter()
        .filter(|t| !t.transactional && !t.sequence)
        .map(|t| format!("{}.{}", t.db, t.name))
        .collect()
}

/// Adds each table of `tables` to its database entry, with the rows of its
/// data files and their content checksum from `checksums` (by
/// `(database, table)`; a table without rows has none there).
pub(super) fn fill_tables(
    databases: &mut [DatabaseEntry],
    tables: &[std::sync::Arc<Table>],
    files: &[FileEntry],
    checksums: &BTreeMap<(String, String), String>,
    watermarks: &BTreeMap<(String, String), Vec<Watermark>>,
    empty_checksum: &str,
) {
    for entry in databases {
        for t in tables.iter().filter(|t| t.db == entry.name) {
            let rows = files
                .iter()
                .filter(|f| {
                    f.kind == FileKind::Data
                        && f.database == t.db
                        && f.table.as_deref() == Some(&t.name)
                })
                .map(|f| f.rows)
                .sum();
            entry.tables.push(TableEntry {
                name: t.name.clone(),
                engine: t.engine.clone(),
                rows,
                content_checksum: (!t.sequence).then(|| {
                    checksums
                        .get(&(t.db.clone(), t.name.clone()))
                        .map_or(empty_checksum, String::as_str)
                        .to_owned()
                }),
                generated_columns: t
                    .columns
                    .iter()
                    .filter(|c| c.generated)
                    .map(|c| c.name.clone())
                    .collect(),
                watermarks: watermarks
                    .get(&(t.db.clone(), t.name.clone()))
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A table of `db` with an integer key, `rows` rows estimated.
    pub(crate) fn table(db: &str, name: &str, engine: &str, rows: u64) -> Table {
        Table {
            db: db.into(),
            name: name.into(),
            engine: engine.into(),
            transactional: engine == "InnoDB",
            estimated_rows: rows,
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: ColumnKind::Integer,
                    generated: false,
                    integer: true,
                    watermark: Some(WatermarkKind::Inserted),
                },
                Column {
                    name: "total".into(),
                    kind: ColumnKind::Integer,
                    generated: true,
                    integer: true,
                    watermark: None,
                },
            ],
            primary_key: vec!["id".into()],
            sequence: false,
        }
    }

    #[test]
    fn key_ranges_cover_the_keys_once_in_equal_widths() {
        assert_eq!(split_range(1, 10, 10, 100), [(1, 10)]);
        assert_eq!(split_range(1, 10, 1_000, 400), [(1, 4), (5, 8), (9, 10)]);
        assert_eq!(split_range(5, 5, 1_000, 1), [(5, 5)], "one key, one range");
        let many = split_range(0, 1_000_000_000, u64::MAX, 1);
        assert_eq!(many.len(), 10_000, "at most 10 000 chunks");
        assert_eq!(many.first().map(|r| r.0), Some(0));
        assert_eq!(many.last().map(|r| r.1), Some(1_000_000_000));
    }

    #[test]
    fn data_files_are_numbered_after_the_schema_files_in_table_order() {
        let mut seq = table("escola", "ids", "InnoDB", 0);
        seq.sequence = true;
        let tables: Vec<Arc<Table>> = [
            table("escola", "eventos", "InnoDB", 10),
            seq,
            table("escola", "sync mutations", "Aria", 10),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let ranges = vec![
            vec![
                (Value::Int(1), Value::Int(5)),
                (Value::Int(6), Value::Int(9)),
            ],
            Vec::new(),
            Vec::new(),
        ];
        let items = work_items(&tables, ranges, 2);
        let files: Vec<(usize, &str, Option<u32>)> = items
            .iter()
            .map(|i| (i.index, i.file.as_str(), i.chunk))
            .collect();
        assert_eq!(
            files,
            [
                (2, "0002-escola.eventos.0000.sql.zst", Some(0)),
                (3, "0003-escola.eventos.0001.sql.zst", Some(1)),
                (4, "0004-escola.sync_mutations.sql.zst", None),
            ]
        );
    }

    #[test]
    fn views_come_after_the_views_they_use() {
        let defs = vec![
            (
                "b".to_owned(),
                "CREATE VIEW `b` AS SELECT * FROM `a`".to_owned(),
            ),
            ("a".to_owned(), "CREATE VIEW `a` AS SELECT 1".to_owned()),
        ];
        let names: Vec<String> = order_views(defs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
