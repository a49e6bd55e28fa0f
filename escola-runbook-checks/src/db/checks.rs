//! The runbook's database steps: take a snapshot, check migrations and the
//! Escola tables, and measure the `sync_mutations` backlog.

use std::path::PathBuf;
use std::time::Duration;

use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};
use mysql_async::Row;

use super::read_lock::{DEFAULT_LOCK_TRIES, DEFAULT_LOCK_WAIT};
use super::snapshot::{SnapshotOptions, create, row_counts};
use super::sql::ident;
use super::{DbTarget, DbTimeouts, Session, mask_url};
use crate::legacy_spec::{CheckSpec, ParamError, ParamSpec, Params};

/// Default secret holding the database URL.
pub const DEFAULT_SECRET: &str = "database_url";

fn connect_target(ctx: &Ctx, secret: &str) -> Result<DbTarget, Box<Outcome>> {
    let Some(url) = ctx.secret(secret) else {
        return Err(Box::new(Outcome::check_error(format!(
            "secret `{secret}` (mysql://USER:PASSWORD@HOST:PORT/DB) was not provided; pass it with --secret {secret}=ENV_VAR"
        ))));
    };
    DbTarget::from_secret(url)
        .map_err(|e| Box::new(Outcome::check_error(redact(ctx, &e.to_string()))))
}

fn redact(ctx: &Ctx, text: &str) -> String {
    ctx.redactor().redact(&mask_url(text)).into_owned()
}

async fn open(
    ctx: &Ctx,
    secret: &str,
    timeouts: DbTimeouts,
) -> Result<(DbTarget, Session), Box<Outcome>> {
    let target = connect_target(ctx, secret)?.with_timeouts(timeouts);
    match target.connect().await {
        Ok(conn) => Ok((target, conn)),
        Err(e) => Err(Box::new(Outcome::check_error(redact(ctx, &e.to_string())))),
    }
}

/// Takes a native consistent snapshot (see [`super::snapshot`]) and records
/// its path as `snapshot.path` for the restore step.
#[derive(Debug, Clone)]
pub struct DbSnapshotCheck {
    secret: String,
    out_dir: PathBuf,
    databases: Vec<String>,
    threads: usize,
    timeouts: DbTimeouts,
    lock_wait: Duration,
    lock_tries: u32,
}

impl DbSnapshotCheck {
    /// Snapshots the database of secret `database_url` into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        DbSnapshotCheck {
            secret: DEFAULT_SECRET.into(),
            out_dir: out_dir.into(),
            databases: Vec::new(),
            threads: 4,
            timeouts: DbTimeouts::SNAPSHOT,
            lock_wait: DEFAULT_LOCK_WAIT,
            lock_tries: DEFAULT_LOCK_TRIES,
        }
    }

    /// Connect and read timeouts (default [`DbTimeouts::SNAPSHOT`]).
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Each try of the global read lock waits at most `wait`, `tries`
    /// times (default 2 s, 3 tries), before the snapshot is refused.
    pub fn global_read_lock(mut self, wait: Duration, tries: u32) -> Self {
        self.lock_wait = wait;
        self.lock_tries = tries.max(1);
        self
    }

    /// Reads the URL from secret `name`.
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        self.secret = name.into();
        self
    }

    /// Dumps these databases instead of the URL's.
    pub fn databases(mut self, dbs: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.databases = dbs.into_iter().map(Into::into).collect();
        self
    }

    /// Parallel connections.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
}

#[async_trait]
impl Check for DbSnapshotCheck {
    fn describe(&self) -> Description {
        Description::mutating(
            "db-snapshot",
            "a consistent, checksummed snapshot of the database exists before the deploy",
            format!(
                "write a snapshot of the database in secret `{}` under {}",
                self.secret,
                self.out_dir.display()
            ),
        )
        .produces("snapshot.path")
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("db-snapshot")
            .with("out_dir", self.out_dir.display().to_string())
            .with("threads", self.threads.to_string());
        if self.secret != DEFAULT_SECRET {
            p = p.with("secret", &self.secret);
        }
        if !self.databases.is_empty() {
            p = p.with("databases", self.databases.join(","));
        }
        p = timeout_params(p, self.timeouts, DbTimeouts::SNAPSHOT);
        if self.lock_wait != DEFAULT_LOCK_WAIT {
            p = p.with(LOCK_WAIT_PARAM.name, millis(self.lock_wait));
        }
        if self.lock_tries != DEFAULT_LOCK_TRIES {
            p = p.with(LOCK_TRIES_PARAM.name, self.lock_tries.to_string());
        }
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let Some(url) = ctx.secret(&self.secret) else {
            return connect_target(ctx, &self.secret).err().map_or_else(
                || Outcome::check_error(format!("secret `{}` was not provided", self.secret)),
                |o| *o,
            );
        };
        let mut opts = SnapshotOptions::new(&self.out_dir);
        opts.databases = self.databases.clone();
        opts.threads = self.threads;
        opts.timeouts = self.timeouts;
        opts.lock_wait_timeout = self.lock_wait;
        opts.lock_tries = self.lock_tries;
        opts.cancel = ctx.cancellation().child_token();
        let progress_ctx = ctx.clone();
        opts.progress = Some(std::sync::Arc::new(move |p| {
            progress_ctx.progress(format!(
                "{}/{} files, {} rows, {} MiB of SQL",
                p.files_done,
                p.files_total,
                p.rows,
                p.sql_bytes >> 20
            ));
        }));
        let (path, manifest) = match create(url, &opts).await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::check_error(format!(
                    "snapshot failed, nothing kept: {}",
                    redact(ctx, &e.to_string())
                ))
                .with_evidence("output directory", self.out_dir.display().to_string());
            }
        };
        let manifest_sha = match super::restore::read_manifest(&path) {
            Ok((_, sha)) => sha,
            Err(e) => {
                return Outcome::check_error(format!(
                    "the snapshot was written but its manifest cannot be read back: {e}"
                ));
            }
        };
        let secs = (manifest.finished_at - manifest.started_at).num_milliseconds() as f64 / 1000.0;
        let mut outcome = Outcome::passed(format!(
            "snapshot of {} written: {} rows in {} files, {} bytes compressed",
            manifest
                .databases
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            manifest.total_rows,
            manifest.files.len(),
            manifest.total_bytes
        ))
        .with_evidence("path", path.display().to_string())
        .with_evidence("manifest sha256", &manifest_sha)
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
            outcome =
                outcome.with_evidence("binlog position", format!("{}:{}", b.file, b.position));
        }
        if let Some(g) = &manifest.gtid {
            outcome = outcome.with_evidence("gtid", g);
        }
        if let Some(text) = manifest.consistency.global_read_lock() {
            outcome = outcome.with_evidence("global read lock", text);
        }
        let counts = row_counts(&manifest);
        let shown: Vec<String> = counts
            .iter()
            .take(50)
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
            outcome.status = escola_runbook_core::Status::Warned;
            outcome
                .summary
                .push_str("; without the global read lock (see consistency)");
        }
        outcome
            .with_measurement("snapshot_rows", manifest.total_rows as f64, Some("rows"))
            .with_measurement("snapshot_bytes", manifest.total_bytes as f64, Some("bytes"))
            .with_measurement("snapshot_duration", secs, Some("s"))
            .with_value(
                "snapshot.path",
                serde_json::json!(path.display().to_string()),
            )
            .with_value("snapshot.manifest_sha256", serde_json::json!(manifest_sha))
    }
}

/// Doctrine migrations applied up to the expected version, and the Escola
/// tables (`sync_mutations`, `eventos`) present with their columns.
#[derive(Debug, Clone)]
pub struct MigrationsCheck {
    secret: String,
    expected_version: Option<String>,
    tables: Vec<String>,
    columns: Vec<(String, String)>,
    migrations_dir: Option<PathBuf>,
    timeouts: DbTimeouts,
}

impl Default for MigrationsCheck {
    fn default() -> Self {
        MigrationsCheck {
            secret: DEFAULT_SECRET.into(),
            expected_version: None,
            tables: vec!["sync_mutations".into(), "eventos".into()],
            columns: Vec::new(),
            migrations_dir: None,
            timeouts: DbTimeouts::CHECK,
        }
    }
}

impl MigrationsCheck {
    /// Reads the URL from secret `name`.
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        self.secret = name.into();
        self
    }

    /// The version that must be applied (`Version20250101120000` or the full
    /// `DoctrineMigrations\Version...`).
    pub fn expected_version(mut self, v: impl Into<String>) -> Self {
        self.expected_version = Some(v.into());
        self
    }

    /// Tables that must exist (default `sync_mutations`, `eventos`).
    pub fn tables(mut self, t: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tables = t.into_iter().map(Into::into).collect();
        self
    }

    /// Columns that must exist, as `table.column`.
    pub fn columns(mut self, c: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.columns = c
            .into_iter()
            .filter_map(|s| {
                let s: String = s.into();
                s.split_once('.').map(|(t, c)| (t.to_owned(), c.to_owned()))
            })
            .collect();
        self
    }

    /// Directory of the application's migration classes (`Version*.php`):
    /// those not applied are counted as pending.
    pub fn migrations_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations_dir = Some(dir.into());
        self
    }

    /// Connect, read and statement timeouts (default [`DbTimeouts::CHECK`]).
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }
}

fn short_version(v: &str) -> &str {
    v.rsplit('\\').next().unwrap_or(v)
}

async fn rows(
    conn: &mut Session,
    sql: &str,
    params: Vec<mysql_async::Value>,
) -> Result<Vec<Row>, String> {
    conn.exec(sql, params)
        .await
        .map_err(|e| mask_url(&e.to_string()))
}

/// The first column of every row of `sql` (one `?` bound to `db`).
async fn strings(conn: &mut Session, sql: &str, db: &str) -> Result<Vec<String>, String> {
    Ok(rows(conn, sql, vec![db.into()])
        .await?
        .iter()
        .filter_map(|r| r.get_opt::<String, usize>(0).and_then(Result::ok))
        .collect())
}

#[async_trait]
impl Check for MigrationsCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "migrations-consistent",
            format!(
                "doctrine_migration_versions has {} applied and tables {} exist",
                self.expected_version.as_deref().unwrap_or("migrations"),
                self.tables.join(", ")
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("migrations-consistent").with("tables", self.tables.join(","));
        if self.secret != DEFAULT_SECRET {
            p = p.with("secret", &self.secret);
        }
        if let Some(v) = &self.expected_version {
            p = p.with("expected_version", v);
        }
        if !self.columns.is_empty() {
            p = p.with(
                "columns",
                self.columns
                    .iter()
                    .map(|(t, c)| format!("{t}.{c}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        if let Some(d) = &self.migrations_dir {
            p = p.with("migrations_dir", d.display().to_string());
        }
        Some(timeout_params(p, self.timeouts, DbTimeouts::CHECK))
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let (target, mut conn) = match open(ctx, &self.secret, self.timeouts).await {
            Ok(c) => c,
            Err(o) => return *o,
        };
        let Some(db) = target.database().map(str::to_owned) else {
            return Outcome::check_error("the database URL names no database (mysql://.../DB)");
        };
        let outcome = self.inspect(ctx, &mut conn, &db).await;
        conn.disconnect().await;
        outcome.with_evidence("database", target.display())
    }
}

impl MigrationsCheck {
    async fn inspect(&self, ctx: &Ctx, conn: &mut Session, db: &str) -> Outcome {
        let mut wanted: Vec<String> = self.tables.clone();
        wanted.push("doctrine_migration_versions".into());
        let present = match strings(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            db,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::check_error(format!("cannot list tables: {}", redact(ctx, &e)));
            }
        };
        let missing: Vec<&String> = wanted.iter().filter(|t| !present.contains(t)).collect();
        if !missing.is_empty() {
            return Outcome::failed(format!(
                "tables missing: {}; expected all of {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                wanted.join(", ")
            ));
        }
        let mut problems = Vec::new();
        if !self.columns.is_empty() {
            let cols = match strings(
                conn,
                "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?",
                db,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    return Outcome::check_error(format!("cannot list columns: {}", redact(ctx, &e)));
                }
            };
            for (t, c) in &self.columns {
                if !cols.contains(&format!("{t}.{c}")) {
                    problems.push(format!("column {t}.{c} missing"));
                }
            }
        }
        let versions: Vec<(String, bool)> = match rows(
            conn,
            "SELECT version, executed_at IS NOT NULL FROM doctrine_migration_versions ORDER BY version",
            vec![],
        )
        .await
        {
            Ok(r) => r
                .iter()
                .filter_map(|r| {
                    let v = r.get_opt::<String, usize>(0).and_then(Result::ok)?;
                    let done = r.get_opt::<i64, usize>(1).and_then(Result::ok).unwrap_or(0) != 0;
                    Some((v, done))
                })
                .collect(),
            Err(e) => return Outcome::check_error(format!("cannot read doctrine_migration_versions: {}", redact(ctx, &e))),
        };
        let applied: Vec<&str> = versions
            .iter()
            .filter(|(_, d)| *d)
            .map(|(v, _)| v.as_str())
            .collect();
        let latest = applied.iter().max_by_key(|v| short_version(v)).copied();
        let outcome_ev = vec![
            ("latest applied", latest.unwrap_or("none").to_owned()),
            ("applied count", applied.len().to_string()),
        ];
        if let Some(expected) = &self.expected_version {
            let want = short_version(expected);
            if !applied.iter().any(|v| short_version(v) == want) {
                problems.push(format!(
                    "expected migration {want} is not applied (latest applied: {})",
                    latest.unwrap_or("none")
                ));
            }
        }
        if applied.is_empty() {
            problems.push("doctrine_migration_versions holds no applied migration".to_owned());
        }
        let mut pending = None;
        if let Some(dir) = &self.migrations_dir {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    let names: Vec<String> = entries
                        .filter_map(Result::ok)
                        .filter_map(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            n.strip_suffix(".php")
                                .filter(|s| s.starts_with("Version"))
                                .map(str::to_owned)
                        })
                        .collect();
                    let p: Vec<String> = names
                        .into_iter()
                        .filter(|n| !applied.iter().any(|v| short_version(v) == n))
                        .collect();
                    if !p.is_empty() {
                        problems.push(format!("{} migrations pending: {}", p.len(), p.join(", ")));
                    }
                    pending = Some(p.len());
                }
                Err(e) => {
                    return Outcome::check_error(format!(
                        "cannot read migrations directory {}: {e}",
                        dir.display()
                    ));
                }
            }
        }
        let mut counts = Vec::new();
        for t in &self.tables {
            let q = format!("SELECT COUNT(*) FROM {}", ident(t));
            match conn.query_first::<u64, _>(q).await {
                Ok(n) => counts.push((t.clone(), n.unwrap_or(0))),
                Err(e) => {
                    return Outcome::check_error(format!(
                        "cannot count {t}: {}",
                        redact(ctx, &e.to_string())
                    ));
                }
            }
        }
        let mut outcome = if problems.is_empty() {
            Outcome::passed(format!(
                "migrations at {}{}; tables {} present",
                latest.map(short_version).unwrap_or("none"),
                self.expected_version
                    .as_deref()
                    .map(|e| format!(" (expected {} applied)", short_version(e)))
                    .unwrap_or_default(),
                self.tables.join(", ")
            ))
        } else {
            Outcome::failed(problems.join("; "))
        };
        for (l, v) in outcome_ev {
            outcome = outcome.with_evidence(l, v);
        }
        if let Some(e) = &self.expected_version {
            outcome = outcome.with_evidence("expected", short_version(e));
        }
        if let Some(p) = pending {
            outcome = outcome
                .with_evidence("pending", p.to_string())
                .with_measurement("migrations_pending", p as f64, None);
        }
        for (t, n) in counts {
            // An earlier run of this check (before the deploy) recorded the
            // counts: show the change.
            let before = ctx
                .value(&format!("db.rows.{t}"))
                .ok()
                .and_then(serde_json::Value::as_u64);
            let shown = match before {
                Some(b) => format!(
                    "{n} (before: {b}, change {:+})",
                    i128::from(n) - i128::from(b)
                ),
                None => n.to_string(),
            };
            outcome = outcome
                .with_evidence(format!("rows in {t}"), shown)
                .with_measurement(format!("rows_{t}"), n as f64, Some("rows"))
                .with_value(format!("db.rows.{t}"), serde_json::json!(n));
        }
        outcome
    }
}

/// Pending rows in `sync_mutations` (by a WHERE clause) below a limit, and
/// the oldest one's age; records `sync.backlog` for watch rules.
#[derive(Debug, Clone)]
pub struct SyncBacklogCheck {
    secret: String,
    table: String,
    pending_where: String,
    max_pending: u64,
    age_column: Option<String>,
    max_age_secs: Option<u64>,
    timeouts: DbTimeouts,
}

impl SyncBacklogCheck {
    /// Rows of `sync_mutations` matching `pending_where` must be at most
    /// `max_pending`. The clause is operator configuration, run inside a
    /// read-only transaction as one prepared statement.
    pub fn new(pending_where: impl Into<String>, max_pending: u64) -> Self {
        SyncBacklogCheck {
            secret: DEFAULT_SECRET.into(),
            table: "sync_mutations".into(),
            pending_where: pending_where.into(),
            max_pending,
            age_column: None,
            max_age_secs: None,
            timeouts: DbTimeouts::CHECK,
        }
    }

    /// Connect, read and statement timeouts (default [`DbTimeouts::CHECK`]).
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Reads the URL from secret `name`.
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        self.secret = name.into();
        self
    }

    /// Another table.
    pub fn table(mut self, t: impl Into<String>) -> Self {
        self.table = t.into();
        self
    }

    /// Column with the row's creation time, to report the oldest pending
    /// row's age (and check it against `max_age_secs`).
    pub fn age_column(mut self, c: impl Into<String>, max_age_secs: Option<u64>) -> Self {
        self.age_column = Some(c.into());
        self.max_age_secs = max_age_secs;
        self
    }
}

#[async_trait]
impl Check for SyncBacklogCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "sync-backlog",
            format!(
                "rows of {} WHERE {} <= {}",
                self.table, self.pending_where, self.max_pending
            ),
        )
        .produces("sync.backlog")
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("sync-backlog")
            .with("table", &self.table)
            .with("pending_where", &self.pending_where)
            .with("max_pending", self.max_pending.to_string());
        if self.secret != DEFAULT_SECRET {
            p = p.with("secret", &self.secret);
        }
        if let Some(c) = &self.age_column {
            p = p.with("age_column", c);
        }
        if let Some(a) = self.max_age_secs {
            p = p.with("max_age", format!("{a}s"));
        }
        Some(timeout_params(p, self.timeouts, DbTimeouts::CHECK))
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let (target, mut conn) = match open(ctx, &self.secret, self.timeouts).await {
            Ok(c) => c,
            Err(o) => return *o,
        };
        let age = self
            .age_column
            .as_deref()
            .map(|c| format!("TIMESTAMPDIFF(SECOND, MIN({}), NOW())", ident(c)))
            .unwrap_or_else(|| "NULL".into());
        let q = format!(
            "SELECT COUNT(*), {age} FROM {} WHERE ({})",
            ident(&self.table),
            self.pending_where
        );
        let result = async {
            conn.query_drop("START TRANSACTION READ ONLY").await?;
            let r: Option<(u64, Option<i64>)> = conn.exec_first(q.as_str(), ()).await?;
            conn.query_drop("ROLLBACK").await?;
            Ok::<_, mysql_async::Error>(r)
        }
        .await;
        conn.disconnect().await;
        let (pending, oldest) = match result {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::check_error("the backlog query returned no row"),
            Err(e) => {
                return Outcome::check_error(format!(
                    "backlog query failed: {}",
                    redact(ctx, &e.to_string())
                ))
                .with_evidence("query", redact(ctx, &q));
            }
        };
        let condition = format!("<= {}", self.max_pending);
        let mut failures = Vec::new();
        if pending > self.max_pending {
            failures.push(format!("{pending} pending rows, limit {condition}"));
        }
        if let (Some(age), Some(max)) = (oldest, self.max_age_secs) {
            if age > 0 && age as u64 > max {
                failures.push(format!("oldest pending row is {age}s old, limit <= {max}s"));
            }
        }
        let mut outcome = if failures.is_empty() {
            Outcome::passed(format!(
                "{pending} pending rows in {} (limit {condition}){}",
                self.table,
                oldest
                    .map(|a| format!(", oldest {a}s old"))
                    .unwrap_or_default()
            ))
        } else {
            Outcome::failed(failures.join("; "))
        }
        .with_evidence("pending", pending.to_string())
        .with_evidence("condition", format!("WHERE {}", self.pending_where))
        .with_evidence("limit", condition)
        .with_evidence("database", target.display())
        .with_measurement("sync_backlog", pending as f64, Some("rows"))
        .with_value("sync.backlog", serde_json::json!(pending));
        if let Some(a) = oldest {
            outcome = outcome
                .with_evidence("oldest pending age", format!("{a}s"))
                .with_measurement("sync_backlog_oldest", a as f64, Some("s"))
                .with_value("sync.backlog_oldest_seconds", serde_json::json!(a));
        }
        outcome
    }
}

const SECRET_PARAM: ParamSpec = ParamSpec {
    name: "secret",
    help: "secret holding the URL mysql://USER:PASSWORD@HOST:PORT/DB",
    required: false,
    default: Some(DEFAULT_SECRET),
};

/// Connect timeout: see [`DbTimeouts::connect`]; default
/// [`super::DEFAULT_CONNECT_TIMEOUT`].
const CONNECT_TIMEOUT_PARAM: ParamSpec = ParamSpec {
    name: "connect_timeout",
    help: "longest wait to connect and log in (e.g. 10s)",
    required: false,
    default: Some("10s"),
};

/// Read timeout: see [`DbTimeouts::read`]; default
/// [`super::DEFAULT_READ_TIMEOUT`].
const READ_TIMEOUT_PARAM: ParamSpec = ParamSpec {
    name: "read_timeout",
    help: "longest wait for any answer from the server (e.g. 60s)",
    required: false,
    default: Some("60s"),
};

/// Statement timeout: see [`DbTimeouts::statement`]; default
/// [`super::DEFAULT_STATEMENT_TIMEOUT`].
const STATEMENT_TIMEOUT_PARAM: ParamSpec = ParamSpec {
    name: "statement_timeout",
    help: "longest the server may run one statement (max_statement_time; e.g. 30s)",
    required: false,
    default: Some("30s"),
};

/// Each try of the snapshot's global read lock; default
/// [`DEFAULT_LOCK_WAIT`].
const LOCK_WAIT_PARAM: ParamSpec = ParamSpec {
    name: "lock_wait",
    help: "longest wait for the global read lock per try (every write on the server waits meanwhile)",
    required: false,
    default: Some("2s"),
};

/// Tries of the snapshot's global read lock; default [`DEFAULT_LOCK_TRIES`].
const LOCK_TRIES_PARAM: ParamSpec = ParamSpec {
    name: "lock_tries",
    help: "tries of the global read lock before the snapshot is refused",
    required: false,
    default: Some("3"),
};

/// `base` with the timeouts given in `p` (`statement_timeout` only where
/// `base` has a statement limit).
fn timeouts_from(p: &Params, base: DbTimeouts) -> Result<DbTimeouts, ParamError> {
    let mut t = base;
    if let Some(d) = p.duration(CONNECT_TIMEOUT_PARAM.name)? {
        t.connect = d;
    }
    if let Some(d) = p.duration(READ_TIMEOUT_PARAM.name)? {
        t.read = d;
    }
    if base.statement.is_some() {
        if let Some(d) = p.duration(STATEMENT_TIMEOUT_PARAM.name)? {
            t.statement = Some(d);
        }
    }
    Ok(t)
}

/// Adds the timeouts that differ from `base` to `p`.
fn timeout_params(mut p: CheckParams, t: DbTimeouts, base: DbTimeouts) -> CheckParams {
    if t.connect != base.connect {
        p = p.with(CONNECT_TIMEOUT_PARAM.name, millis(t.connect));
    }
    if t.read != base.read {
        p = p.with(READ_TIMEOUT_PARAM.name, millis(t.read));
    }
    if let (Some(limit), true) = (t.statement, t.statement != base.statement) {
        p = p.with(STATEMENT_TIMEOUT_PARAM.name, millis(limit));
    }
    p
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Registry entries for the database checks.
pub(crate) fn specs() -> Vec<CheckSpec> {
    const SNAPSHOT: &[ParamSpec] = &[
        SECRET_PARAM,
        ParamSpec {
            name: "out_dir",
            help: "directory that receives the snapshot directory",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "databases",
            help: "databases to dump, comma-separated (default: the URL's)",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "threads",
            help: "parallel connections",
            required: false,
            default: Some("4"),
        },
        CONNECT_TIMEOUT_PARAM,
        READ_TIMEOUT_PARAM,
        LOCK_WAIT_PARAM,
        LOCK_TRIES_PARAM,
    ];
    const MIGRATIONS: &[ParamSpec] = &[
        SECRET_PARAM,
        ParamSpec {
            name: "expected_version",
            help: "Doctrine version that must be applied (e.g. Version20250101120000)",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "tables",
            help: "tables that must exist, comma-separated",
            required: false,
            default: Some("sync_mutations,eventos"),
        },
        ParamSpec {
            name: "columns",
            help: "columns that must exist, as table.column, comma-separated",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "migrations_dir",
            help: "directory of Version*.php migration classes, to count pending ones",
            required: false,
            default: None,
        },
        CONNECT_TIMEOUT_PARAM,
        READ_TIMEOUT_PARAM,
        STATEMENT_TIMEOUT_PARAM,
    ];
    const BACKLOG: &[ParamSpec] = &[
        SECRET_PARAM,
        ParamSpec {
            name: "table",
            help: "table holding the sync queue",
            required: false,
            default: Some("sync_mutations"),
        },
        ParamSpec {
            name: "pending_where",
            help: "SQL condition selecting pending rows (e.g. processed_at IS NULL)",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "max_pending",
            help: "most pending rows allowed",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "age_column",
            help: "creation-time column, to report the oldest pending row's age",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "max_age",
            help: "oldest pending row allowed (e.g. 10m); needs age_column",
            required: false,
            default: None,
        },
        CONNECT_TIMEOUT_PARAM,
        READ_TIMEOUT_PARAM,
        STATEMENT_TIMEOUT_PARAM,
    ];
    vec![
        CheckSpec {
            name: "db-snapshot",
            summary: "writes a consistent zstd+sha256 snapshot of the database; records snapshot.path",
            params: SNAPSHOT,
            build: |p| {
                let lock_wait = p
                    .duration(LOCK_WAIT_PARAM.name)?
                    .unwrap_or(DEFAULT_LOCK_WAIT);
                let lock_tries = match p.parse::<u32>(LOCK_TRIES_PARAM.name)? {
                    Some(0) => return Err(p.error(LOCK_TRIES_PARAM.name, "must be at least 1")),
                    other => other.unwrap_or(DEFAULT_LOCK_TRIES),
                };
                let mut c = DbSnapshotCheck::new(p.require("out_dir")?)
                    .secret(p.require("secret")?)
                    .threads(p.parse("threads")?.unwrap_or(4))
                    .timeouts(timeouts_from(p, DbTimeouts::SNAPSHOT)?)
                    .global_read_lock(lock_wait, lock_tries);
                if let Some(dbs) = p.list("databases") {
                    c = c.databases(dbs);
                }
                Ok(std::sync::Arc::new(c))
            },
        },
        CheckSpec {
            name: "migrations-consistent",
            summary: "Doctrine migrations applied up to a version; sync_mutations and eventos present",
            params: MIGRATIONS,
            build: |p| {
                let mut c = MigrationsCheck::default()
                    .secret(p.require("secret")?)
                    .tables(p.list("tables").unwrap_or_default())
                    .timeouts(timeouts_from(p, DbTimeouts::CHECK)?);
                if let Some(v) = p.get("expected_version") {
                    c = c.expected_version(v);
                }
                if let Some(cols) = p.list("columns") {
                    if let Some(bad) = cols.iter().find(|c| !c.contains('.')) {
                        return Err(
                            p.error("columns", format!("has `{bad}`, which is not table.column"))
                        );
                    }
                    c = c.columns(cols);
                }
                if let Some(d) = p.get("migrations_dir") {
                    c = c.migrations_dir(d);
                }
                Ok(std::sync::Arc::new(c))
            },
        },
        CheckSpec {
            name: "sync-backlog",
            summary: "pending rows in sync_mutations at most a limit; records sync.backlog",
            params: BACKLOG,
            build: |p| {
                let max = p.parse::<u64>("max_pending")?.unwrap_or(0);
                let mut c = SyncBacklogCheck::new(p.require("pending_where")?, max)
                    .secret(p.require("secret")?)
                    .table(p.require("table")?)
                    .timeouts(timeouts_from(p, DbTimeouts::CHECK)?);
                let max_age = p.duration("max_age")?.map(|d| d.as_secs());
                match (p.get("age_column"), max_age) {
                    (Some(col), a) => c = c.age_column(col, a),
                    (None, Some(_)) => return Err(p.error("max_age", "needs `age_column`")),
                    (None, None) => {}
                }
                Ok(std::sync::Arc::new(c))
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_defaults_are_declared_once() {
        let default = |spec: &ParamSpec| {
            spec.default
                .and_then(|d| escola_runbook_core::duration::parse(d).ok())
        };
        assert_eq!(
            default(&CONNECT_TIMEOUT_PARAM),
            Some(super::super::DEFAULT_CONNECT_TIMEOUT)
        );
        assert_eq!(
            default(&READ_TIMEOUT_PARAM),
            Some(super::super::DEFAULT_READ_TIMEOUT)
        );
        assert_eq!(
            default(&STATEMENT_TIMEOUT_PARAM),
            Some(super::super::DEFAULT_STATEMENT_TIMEOUT)
        );
        assert_eq!(default(&LOCK_WAIT_PARAM), Some(DEFAULT_LOCK_WAIT));
        assert_eq!(
            LOCK_TRIES_PARAM.default,
            Some(DEFAULT_LOCK_TRIES.to_string().as_str())
        );
    }

    #[test]
    fn timeouts_come_from_parameters_and_zero_is_refused() {
        let catalog = crate::catalog();
        let spec = catalog.find("migrations-consistent").unwrap();
        let check = spec
            .build_from_pairs(&crate::testing::pairs([
                ("connect_timeout", "2s"),
                ("statement_timeout", "5s"),
            ]))
            .unwrap();
        let params = check.params().unwrap().params;
        assert_eq!(
            params.get("connect_timeout").and_then(|v| v.as_str()),
            Some("2000ms")
        );
        assert_eq!(
            params.get("statement_timeout").and_then(|v| v.as_str()),
            Some("5000ms")
        );
        assert_eq!(params.get("read_timeout"), None);
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("read_timeout", "0s")]))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("`0s` is outside the accepted range, 1ms to 30d"),
            "{err}"
        );
        let catalog = crate::catalog();
        let snapshot = catalog.find("db-snapshot").unwrap();
        assert!(
            snapshot
                .build_from_pairs(&crate::testing::pairs([
                    ("out_dir", "s"),
                    ("statement_timeout", "5s")
                ]))
                .is_err(),
            "a snapshot has no statement limit"
        );
        let err = snapshot
            .build_from_pairs(&crate::testing::pairs([
                ("out_dir", "s"),
                ("lock_tries", "0"),
            ]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
