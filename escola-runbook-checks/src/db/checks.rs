//! The runbook's database steps: take (and prove) a snapshot, require a
//! recent proven one, check migrations and the Escola tables, and measure
//! the `sync_mutations` backlog.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::duration::Span;
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Need, Outcome, Status, async_trait, format_duration,
};
use mysql_async::Row;

use super::connect::{DbTarget, DbTimeouts, Session, mask_url};
use super::crypt::{CryptError, Identities, Recipient};
#[cfg(feature = "s3")]
use super::offsite::{OffsiteError, PushOptions, SnapshotUrl, Store, push};
pub use super::params::DEFAULT_SECRET;
use super::params::{
    DbSnapshotParams, LossEstimateParams, MigrationsParams, SnapshotFreshParams, StatementLimits,
    SyncBacklogParams, check_timeouts, set_timeouts,
};
use super::proof::{RestoreTestOptions, restore_test};
use super::restore::read_manifest;
use super::restore::{SnapshotListing, SnapshotStatus, list};
use super::snapshot::{SNAPSHOT_PATH, SnapshotOptions, create};
use super::sql::ident;
use super::verified::Verified;

fn connect_target(ctx: &Ctx, secret: &str) -> Result<DbTarget, Box<Outcome>> {
    let Some(url) = ctx.secret(secret) else {
        return Err(Box::new(Outcome::missing(Need::secret(
            secret,
            "mysql://USER:PASSWORD@HOST:PORT/DB",
        ))));
    };
    DbTarget::from_secret(url)
        .map_err(|e| Box::new(Outcome::check_error(redact(ctx, &e.to_string()))))
}

pub(super) fn redact(ctx: &Ctx, text: &str) -> String {
    ctx.redactor().redact(&mask_url(text)).into_owned()
}

pub(super) async fn open(
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
    pub(super) params: DbSnapshotParams,
}

impl DbSnapshotCheck {
    /// Snapshots the database of secret `database_url` into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        DbSnapshotCheck {
            params: DbSnapshotParams::of(out_dir.into()),
        }
    }

    /// Connect and read timeouts (default [`DbTimeouts::SNAPSHOT`]).
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        let p = &mut self.params;
        set_timeouts(timeouts, &mut p.connect_timeout, &mut p.read_timeout, None);
        self
    }

    /// Each try of the global read lock waits at most `wait`, `tries`
    /// times (default 2 s, 3 tries), before the snapshot is refused.
    pub fn global_read_lock(mut self, wait: Duration, tries: u32) -> Self {
        self.params.lock_wait = Span::from(wait);
        self.params.lock_tries = tries.max(1);
        self
    }

    escola_runbook_core::setters! {
        /// Reads the URL from secret `name`.
        secret(name: impl Into<String>) => params.secret = name.into();

        /// Dumps these databases instead of the URL's.
        databases(dbs: impl IntoIterator<Item = impl Into<String>>) => params.databases = dbs.into_iter().map(Into::into).collect();

        /// Parallel connections.
        threads(n: usize) => params.threads = n.max(1);

        /// Encrypts every file to these age recipients (public keys `age1...`).
        encrypt_to(recipients: impl IntoIterator<Item = impl Into<String>>) => params.encrypt_to = recipients.into_iter().map(Into::into).collect();

        /// Proves the snapshot with a restore test on the same server.
        restore_test(on: bool) => params.restore_test = on;

        /// The age identity file the restore test decrypts with.
        identity_file(path: impl Into<PathBuf>) => params.identity_file = Some(path.into());

        /// Copies the snapshot to `s3://BUCKET/PREFIX` once taken (and proven).
        copy_to(url: impl Into<String>) => params.copy_to = Some(url.into());
    }
}

#[async_trait]
impl Check for DbSnapshotCheck {
    fn describe(&self) -> Description {
        Description::mutating(
            "db-snapshot",
            "a consistent, checksummed snapshot of the database exists before the deploy",
            format!(
                "write a snapshot of the database in secret `{}` under {}{}",
                self.params.secret,
                self.params.out_dir.display(),
                self.params
                    .copy_to
                    .as_deref()
                    .map(|to| format!(" and copy it to {to}"))
                    .unwrap_or_default()
            ),
        )
        .produces(SNAPSHOT_PATH)
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let Some(url) = ctx.secret(&p.secret) else {
            return connect_target(ctx, &p.secret).err().map_or_else(
                || Outcome::check_error(format!("secret `{}` was not provided", p.secret)),
                |o| *o,
            );
        };
        let mut opts = SnapshotOptions::new(&p.out_dir);
        opts.encrypt_to = match recipients(&p.encrypt_to) {
            Ok(r) => r,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        let identities = match p.identity_file.as_deref().map(Identities::read).transpose() {
            Ok(ids) => ids,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        let copy_to = match copy_target(p.copy_to.as_deref()) {
            Ok(to) => to,
            Err(e) => return Outcome::check_error(format!("copy_to: {e}")),
        };
        opts.databases = p.databases.clone();
        opts.threads = p.threads;
        opts.timeouts = p.timeouts();
        opts.lock_wait_timeout = p.lock_wait.get();
        opts.lock_tries = p.lock_tries;
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
                .with_evidence("output directory", p.out_dir.display().to_string());
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
        let mut outcome = super::snapshot::evidence::outcome(&path, &manifest, &manifest_sha);
        if p.restore_test {
            let test = RestoreTestOptions {
                identities,
                timeouts: p.timeouts(),
                cancel: ctx.cancellation().child_token(),
                on_verified: None,
            };
            ctx.progress("restore test: restoring into a scratch database".to_owned());
            outcome = match restore_test(&path, url, &test).await {
                Ok(verified) => proven(outcome, &verified),
                Err(e) => {
                    return Outcome::check_error(format!(
                        "the snapshot was written to {} but its restore test could not run: {}",
                        path.display(),
                        redact(ctx, &e.to_string())
                    ));
                }
            };
        }
        match copy_to {
            None => outcome,
            // A snapshot that does not restore is not worth a copy.
            Some(to) if outcome.status == Status::Failed => outcome.with_evidence(
                "off-site copy",
                format!("not made to {to}: the restore test failed"),
            ),
            Some(to) => copied(ctx, outcome, &path, &to).await,
        }
    }
}

/// Where `copy_to` sends the snapshot, parsed (validated when the step is
/// built, and again when it runs, as the builder takes any text).
#[cfg(feature = "s3")]
fn copy_target(copy_to: Option<&str>) -> Result<Option<SnapshotUrl>, String> {
    copy_to
        .map(|to| to.parse().map_err(|e: OffsiteError| e.to_string()))
        .transpose()
}

/// Without the `s3` feature there is nowhere to copy to.
#[cfg(not(feature = "s3"))]
fn copy_target(copy_to: Option<&str>) -> Result<Option<std::convert::Infallible>, String> {
    match copy_to {
        None => Ok(None),
        Some(_) => Err("needs escola-runbook-checks built with its `s3` feature".to_owned()),
    }
}

/// The snapshot's outcome once it is pushed to `to` (endpoint and
/// credentials from the AWS_* variables): failed if the push fails, the
/// local snapshot kept and said so.
#[cfg(feature = "s3")]
async fn copied(ctx: &Ctx, mut outcome: Outcome, path: &Path, to: &SnapshotUrl) -> Outcome {
    ctx.progress(format!("copying the snapshot to {to}"));
    let opts = PushOptions {
        cancel: ctx.cancellation().child_token(),
        on_object: None,
    };
    let pushed = match Store::from_env(to) {
        Ok(store) => push(path, &store, &opts).await,
        Err(e) => Err(e),
    };
    match pushed {
        Ok(report) => outcome
            .with_evidence("off-site copy", report.url.to_string())
            .with_evidence(
                "pushed",
                format!(
                    "{} objects uploaded ({} bytes), {} already there and matching; manifest last",
                    report.uploaded, report.bytes_uploaded, report.skipped
                ),
            )
            .with_value(SNAPSHOT_COPY, serde_json::json!(report.url.to_string())),
        Err(e) => {
            let why = redact(ctx, &e.to_string());
            outcome.status = Status::Failed;
            outcome.summary = format!(
                "the snapshot was taken, but its off-site copy to {to} failed; the local snapshot is kept at {}",
                path.display()
            );
            outcome
                .with_evidence("off-site copy", format!("failed: {why}"))
                .with_evidence("local snapshot kept", path.display().to_string())
        }
    }
}

#[cfg(not(feature = "s3"))]
async fn copied(_: &Ctx, _: Outcome, _: &Path, to: &std::convert::Infallible) -> Outcome {
    match *to {}
}

/// The value `db-snapshot` records for the off-site copy's URL.
pub const SNAPSHOT_COPY: &str = "snapshot.copy_url";

/// The recipients of the `encrypt_to` parameter.
fn recipients(texts: &[String]) -> Result<Vec<Recipient>, CryptError> {
    texts.iter().map(|t| t.parse()).collect()
}

/// The snapshot's outcome with its restore test: failed on a mismatch.
fn proven(mut outcome: Outcome, verified: &Verified) -> Outcome {
    let mismatches: Vec<String> = verified
        .mismatches()
        .map(|t| {
            format!(
                "{}: {} rows restored, {} recorded; checksum {}",
                t.table,
                t.restored_rows,
                t.expected_rows,
                if t.expected_checksum.as_deref() == Some(t.restored_checksum.as_str()) {
                    "matches"
                } else {
                    "differs"
                }
            )
        })
        .collect();
    let summary = format!(
        "restore test on {}: {} of {} tables match",
        verified.server,
        verified.tables.len() - mismatches.len(),
        verified.tables.len()
    );
    outcome = outcome
        .with_evidence("restore test", summary.clone())
        .with_value("snapshot.verified", serde_json::json!(verified.passed));
    if let Some(why) = &verified.restore_failed {
        outcome.status = Status::Failed;
        outcome.summary = format!("the snapshot does not restore: {why}");
        return outcome;
    }
    if !mismatches.is_empty() {
        outcome.status = Status::Failed;
        outcome.summary = format!("{summary}; the snapshot does not restore faithfully");
        outcome = outcome.with_evidence("mismatches", mismatches.join("\n"));
    }
    outcome
}

/// The newest snapshot under a directory whose restore test passed is at
/// most a limit old: a deploy does not lean on a backup never proven.
#[derive(Debug, Clone)]
pub struct SnapshotFreshCheck {
    pub(super) params: SnapshotFreshParams,
}

impl SnapshotFreshCheck {
    /// The newest restore-tested snapshot under `dir` is at most `max_age` old.
    pub fn new(dir: impl Into<PathBuf>, max_age: Duration) -> Self {
        SnapshotFreshCheck {
            params: SnapshotFreshParams {
                dir: dir.into(),
                max_age: Span::from(max_age),
            },
        }
    }
}

#[async_trait]
impl Check for SnapshotFreshCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "snapshot-fresh",
            format!(
                "a snapshot under {} passed its restore test and is at most {} old",
                self.params.dir.display(),
                self.params.max_age
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, _ctx: &Ctx) -> Outcome {
        let p = &self.params;
        match list(&p.dir, false) {
            Ok(listed) => freshness(&p.dir, &listed, p.max_age.get(), chrono::Utc::now()),
            Err(e) => Outcome::check_error(format!("cannot list {}: {e}", p.dir.display())),
        }
    }
}

/// What restoring a snapshot would lose, shown before the restore is
/// approved: the snapshot's age and, per table, the rows written since
/// ([`super::loss`]). Warned when rows would be lost, passed when none
/// would; it only reads.
#[derive(Debug, Clone)]
pub struct LossEstimateCheck {
    pub(super) params: LossEstimateParams,
}

impl LossEstimateCheck {
    /// Estimates the newest snapshot under `dir` (or the one this run's
    /// `db-snapshot` step took) against the database in secret
    /// `database_url`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LossEstimateCheck {
            params: LossEstimateParams::of(dir.into()),
        }
    }

    escola_runbook_core::setters! {
        /// Reads the URL from secret `name`.
        secret(name: impl Into<String>) => params.secret = name.into();
    }

    /// Connect, read and statement limits.
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.params.set_timeouts(timeouts);
        self
    }

    /// The snapshot estimated: this run's, else the newest complete one.
    fn snapshot(&self, ctx: &Ctx) -> Result<PathBuf, NoSnapshot> {
        if let Some(path) = ctx.value(SNAPSHOT_PATH).ok().and_then(|v| v.as_str()) {
            return Ok(PathBuf::from(path));
        }
        let dir = &self.params.dir;
        let listed = list(dir, false).map_err(|source| NoSnapshot::Unlistable {
            dir: dir.clone(),
            source,
        })?;
        listed
            .into_iter()
            .find(|l| l.status == SnapshotStatus::Complete)
            .map(|l| l.path)
            .ok_or_else(|| NoSnapshot::NoneComplete { dir: dir.clone() })
    }
}

/// Why the loss estimate has no snapshot to estimate.
#[derive(Debug, thiserror::Error)]
enum NoSnapshot {
    #[error("cannot list {}: {source}", dir.display())]
    Unlistable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("no complete snapshot under {}: a restore would have nothing to restore", dir.display())]
    NoneComplete { dir: PathBuf },
}

#[async_trait]
impl Check for LossEstimateCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "db-loss-estimate",
            format!(
                "what restoring the newest snapshot under {} would lose, per table, on the database in secret `{}`",
                self.params.dir.display(),
                self.params.secret
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let snapshot = match self.snapshot(ctx) {
            Ok(s) => s,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        let manifest = match read_manifest(&snapshot) {
            Ok((m, _)) => m,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        let limits = check_timeouts(p.connect_timeout, p.read_timeout, p.statement_timeout);
        let (_, mut conn) = match open(ctx, &p.secret, limits).await {
            Ok(c) => c,
            Err(o) => return *o,
        };
        let estimated = super::loss::estimate(&mut conn, &snapshot, &manifest, ctx.now()).await;
        conn.disconnect().await;
        let estimate = match estimated {
            Ok(e) => e,
            Err(e) => return Outcome::check_error(redact(ctx, &e.to_string())),
        };
        let summary = estimate.summary();
        let lost = estimate.tables.iter().any(super::loss::TableLoss::changed);
        let mut outcome = if lost {
            Outcome::warned(summary)
        } else {
            Outcome::passed(summary)
        }
        .with_evidence("snapshot", snapshot.display().to_string())
        .with_evidence(
            "taken at",
            estimate
                .taken_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        )
        .with_evidence("age", format_duration(estimate.age));
        for table in &estimate.tables {
            outcome = outcome.with_evidence(
                format!("{}.{}", table.database, table.table),
                table.describe(),
            );
        }
        outcome
    }
}

/// The verdict of [`SnapshotFreshCheck`] on the snapshots `listed` under
/// `dir` at `now`.
fn freshness(
    dir: &Path,
    listed: &[SnapshotListing],
    max_age: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Outcome {
    let proven = listed
        .iter()
        .filter(|l| l.status == SnapshotStatus::Complete)
        .filter(|l| l.verified.as_ref().is_some_and(|v| v.passed))
        .filter_map(|l| Some((l, l.finished_at?)))
        .max_by_key(|(_, at)| *at);
    let Some((newest, taken)) = proven else {
        return Outcome::failed(format!(
            "no snapshot under {} has passed a restore test",
            dir.display()
        ))
        .with_evidence("snapshots", listed.len().to_string());
    };
    let age = (now - taken).to_std().unwrap_or_default();
    let limit = format_duration(max_age);
    let outcome = if age <= max_age {
        Outcome::passed(format!(
            "the newest restore-tested snapshot is {} old (limit {limit})",
            format_duration(Duration::from_secs(age.as_secs()))
        ))
    } else {
        Outcome::failed(format!(
            "the newest restore-tested snapshot is {} old, older than {limit}; take and prove a new one",
            format_duration(Duration::from_secs(age.as_secs()))
        ))
    };
    let verified_at = newest
        .verified
        .as_ref()
        .map(|v| v.verified_at.to_rfc3339())
        .unwrap_or_default();
    outcome
        .with_evidence("snapshot", newest.path.display().to_string())
        .with_evidence("restore test", verified_at)
        .with_measurement("snapshot_age", age.as_secs_f64(), Some("s"))
}

/// Doctrine migrations applied up to the expected version, and the Escola
/// tables (`sync_mutations`, `eventos`) present with their columns.
#[derive(Debug, Clone, Default)]
pub struct MigrationsCheck {
    pub(super) params: MigrationsParams,
}

impl MigrationsCheck {
    escola_runbook_core::setters! {
        /// Reads the URL from secret `name`.
        secret(name: impl Into<String>) => params.secret = name.into();

        /// The version that must be applied (`Version20250101120000` or the full
        /// `DoctrineMigrations\Version...`).
        expected_version(v: impl Into<String>) => params.expected_version = Some(v.into());

        /// Tables that must exist (default `sync_mutations`, `eventos`).
        tables(t: impl IntoIterator<Item = impl Into<String>>) => params.tables = t.into_iter().map(Into::into).collect();
    }

    /// Columns that must exist, as `table.column` (others are left out).
    pub fn columns(mut self, c: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.params.columns = c
            .into_iter()
            .map(Into::into)
            .filter(|s: &String| s.contains('.'))
            .collect();
        self
    }

    /// Directory of the application's migration classes (`Version*.php`):
    /// those not applied are counted as pending.
    pub fn migrations_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.params.migrations_dir = Some(dir.into());
        self
    }

    /// Connect, read and statement timeouts (default [`DbTimeouts::CHECK`];
    /// a `statement` of `None` keeps the statement limit).
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.params.set_timeouts(timeouts);
        self
    }

    fn limits(&self) -> DbTimeouts {
        let p = &self.params;
        check_timeouts(p.connect_timeout, p.read_timeout, p.statement_timeout)
    }
}

fn short_version(v: &str) -> &str {
    v.rsplit('\\').next().unwrap_or(v)
}

/// The first column of every row of `sql` (one `?` bound to `db`). The
/// error is the driver's: shown through [`redact`], which masks URLs.
async fn strings(
    conn: &mut Session,
    sql: &str,
    db: &str,
) -> Result<Vec<String>, mysql_async::Error> {
    Ok(conn
        .exec::<Row, _, _>(sql, (db,))
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
                self.params
                    .expected_version
                    .as_deref()
                    .unwrap_or("migrations"),
                self.params.tables.join(", ")
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let (target, mut conn) = match open(ctx, &self.params.secret, self.limits()).await {
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
        let mut wanted: Vec<String> = self.params.tables.clone();
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
                return Outcome::check_error(format!(
                    "cannot list tables: {}",
                    redact(ctx, &e.to_string())
                ));
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
        if !self.params.columns.is_empty() {
            let cols = match strings(
                conn,
                "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?",
                db,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    return Outcome::check_error(format!("cannot list columns: {}", redact(ctx, &e.to_string())));
                }
            };
            for (t, c) in self.params.columns() {
                if !cols.contains(&format!("{t}.{c}")) {
                    problems.push(format!("column {t}.{c} missing"));
                }
            }
        }
        let versions: Vec<(String, bool)> = match conn
            .exec::<Row, _, _>(
                "SELECT version, executed_at IS NOT NULL FROM doctrine_migration_versions ORDER BY version",
                (),
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
            Err(e) => return Outcome::check_error(format!("cannot read doctrine_migration_versions: {}", redact(ctx, &e.to_string()))),
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
        if let Some(expected) = &self.params.expected_version {
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
        if let Some(dir) = &self.params.migrations_dir {
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
        for t in &self.params.tables {
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
                self.params
                    .expected_version
                    .as_deref()
                    .map(|e| format!(" (expected {} applied)", short_version(e)))
                    .unwrap_or_default(),
                self.params.tables.join(", ")
            ))
        } else {
            Outcome::failed(problems.join("; "))
        };
        for (l, v) in outcome_ev {
            outcome = outcome.with_evidence(l, v);
        }
        if let Some(e) = &self.params.expected_version {
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
    pub(super) params: SyncBacklogParams,
}

impl SyncBacklogCheck {
    /// Rows of `sync_mutations` matching `pending_where` must be at most
    /// `max_pending`. The clause is operator configuration, run inside a
    /// read-only transaction as one prepared statement.
    pub fn new(pending_where: impl Into<String>, max_pending: u64) -> Self {
        SyncBacklogCheck {
            params: SyncBacklogParams::of(pending_where.into(), max_pending),
        }
    }

    /// Connect, read and statement timeouts (default [`DbTimeouts::CHECK`];
    /// a `statement` of `None` keeps the statement limit).
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.params.set_timeouts(timeouts);
        self
    }

    escola_runbook_core::setters! {
        /// Reads the URL from secret `name`.
        secret(name: impl Into<String>) => params.secret = name.into();

        /// Another table.
        table(t: impl Into<String>) => params.table = t.into();
    }

    /// Column with the row's creation time, to report the oldest pending
    /// row's age (and check it against `max_age_secs`).
    pub fn age_column(mut self, c: impl Into<String>, max_age_secs: Option<u64>) -> Self {
        self.params.age_column = Some(c.into());
        self.params.max_age = max_age_secs.map(|s| Span::from(Duration::from_secs(s)));
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
                self.params.table, self.params.pending_where, self.params.max_pending
            ),
        )
        .produces("sync.backlog")
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let limits = check_timeouts(p.connect_timeout, p.read_timeout, p.statement_timeout);
        let max_age_secs = p.max_age.map(|a| a.get().as_secs());
        let (target, mut conn) = match open(ctx, &p.secret, limits).await {
            Ok(c) => c,
            Err(o) => return *o,
        };
        let age = p
            .age_column
            .as_deref()
            .map(|c| format!("TIMESTAMPDIFF(SECOND, MIN({}), NOW())", ident(c)))
            .unwrap_or_else(|| "NULL".into());
        let q = format!(
            "SELECT COUNT(*), {age} FROM {} WHERE ({})",
            ident(&self.params.table),
            self.params.pending_where
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
        let condition = format!("<= {}", self.params.max_pending);
        let mut failures = Vec::new();
        if pending > self.params.max_pending {
            failures.push(format!("{pending} pending rows, limit {condition}"));
        }
        if let (Some(age), Some(max)) = (oldest, max_age_secs) {
            if age > 0 && age as u64 > max {
                failures.push(format!("oldest pending row is {age}s old, limit <= {max}s"));
            }
        }
        let mut outcome = if failures.is_empty() {
            Outcome::passed(format!(
                "{pending} pending rows in {} (limit {condition}){}",
                self.params.table,
                oldest
                    .map(|a| format!(", oldest {a}s old"))
                    .unwrap_or_default()
            ))
        } else {
            Outcome::failed(failures.join("; "))
        }
        .with_evidence("pending", pending.to_string())
        .with_evidence("condition", format!("WHERE {}", self.params.pending_where))
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

impl CheckConfig for DbSnapshotParams {
    const NAME: &'static str = "db-snapshot";

    fn build(mut self) -> Result<Arc<dyn Check>, ParamsError> {
        if self.lock_tries == 0 {
            return Err(ParamsError::invalid(
                Self::NAME,
                "lock_tries",
                "must be at least 1",
            ));
        }
        if let Err(e) = recipients(&self.encrypt_to) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "encrypt_to",
                e.to_string(),
            ));
        }
        if let Err(e) = copy_target(self.copy_to.as_deref()) {
            return Err(ParamsError::invalid(Self::NAME, "copy_to", e));
        }
        if self.restore_test && !self.encrypt_to.is_empty() && self.identity_file.is_none() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "identity_file",
                "is needed: the restore test of an encrypted snapshot decrypts it",
            ));
        }
        self.threads = self.threads.max(1);
        Ok(Arc::new(DbSnapshotCheck { params: self }))
    }
}

impl CheckConfig for SnapshotFreshParams {
    const NAME: &'static str = "snapshot-fresh";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        Ok(Arc::new(SnapshotFreshCheck { params: self }))
    }
}

impl CheckConfig for LossEstimateParams {
    const NAME: &'static str = "db-loss-estimate";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        Ok(Arc::new(LossEstimateCheck { params: self }))
    }
}

impl CheckConfig for MigrationsParams {
    const NAME: &'static str = "migrations-consistent";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if let Some(bad) = self.columns.iter().find(|c| !c.contains('.')) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "columns",
                format!("has `{bad}`, which is not table.column"),
            ));
        }
        Ok(Arc::new(MigrationsCheck { params: self }))
    }
}

impl CheckConfig for SyncBacklogParams {
    const NAME: &'static str = "sync-backlog";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if self.age_column.is_none() && self.max_age.is_some() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "max_age",
                "needs `age_column`",
            ));
        }
        Ok(Arc::new(SyncBacklogCheck { params: self }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use escola_runbook_core::Status;

    use super::super::restore::{SnapshotListing, SnapshotStatus};
    use super::super::verified::Verified;

    fn listing(name: &str, hours_ago: i64, verified: Option<bool>) -> SnapshotListing {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        SnapshotListing {
            path: PathBuf::from(name),
            status: SnapshotStatus::Complete,
            finished_at: Some(now - chrono::Duration::hours(hours_ago)),
            bytes: 1,
            databases: vec!["escola".into()],
            rows: 1,
            encrypted: false,
            verified: verified.map(|passed| Verified {
                verified_at: now,
                passed,
                server: "127.0.0.1:3306".into(),
                manifest_sha256: "ab".into(),
                elapsed_ms: 1000,
                tables: Vec::new(),
                restore_failed: None,
            }),
        }
    }

    #[test]
    fn freshness_counts_only_snapshots_that_passed_their_restore_test() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let day = Duration::from_secs(24 * 3600);
        let dir = Path::new("snapshots");
        let listed = [
            listing("new-untested", 1, None),
            listing("new-failed", 2, Some(false)),
            listing("old-proven", 30, Some(true)),
        ];
        let o = super::freshness(dir, &listed, day, now);
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert!(
            o.summary.contains("30h old, older than 24h"),
            "{}",
            o.summary
        );
        assert_eq!(crate::testing::evidence(&o, "snapshot"), "old-proven");
        let o = super::freshness(dir, &listed, Duration::from_secs(31 * 3600), now);
        assert_eq!(o.status, Status::Passed, "{o:?}");
        let o = super::freshness(dir, &listed[..2], day, now);
        assert_eq!(o.status, Status::Failed);
        assert!(o.summary.contains("no snapshot under snapshots has passed"));
    }

    #[test]
    fn a_bad_recipient_or_a_restore_test_without_its_key_is_refused() {
        let catalog = crate::catalog();
        let snapshot = catalog.find("db-snapshot").unwrap();
        let err = snapshot
            .build_from_pairs(&crate::testing::pairs([
                ("out_dir", "s"),
                ("encrypt_to", "[\"age1nope\"]"),
            ]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("age1nope"), "{err}");
        let err = snapshot
            .build_from_pairs(&crate::testing::pairs([
                ("out_dir", "s"),
                (
                    "encrypt_to",
                    "[\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]",
                ),
                ("restore_test", "true"),
            ]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("identity_file"), "{err}");
    }

    #[test]
    fn timeout_defaults_are_declared_once() {
        let catalog = crate::catalog();
        let default = |check: &str, param: &str| {
            catalog
                .find(check)
                .unwrap()
                .param_docs()
                .into_iter()
                .find(|d| d.name == param)
                .and_then(|d| d.default)
                .and_then(|d| escola_runbook_core::duration::parse(&d).ok())
        };
        for check in ["db-snapshot", "migrations-consistent", "sync-backlog"] {
            assert_eq!(
                default(check, "connect_timeout"),
                Some(super::super::DEFAULT_CONNECT_TIMEOUT)
            );
            assert_eq!(
                default(check, "read_timeout"),
                Some(super::super::DEFAULT_READ_TIMEOUT)
            );
        }
        for check in ["migrations-consistent", "sync-backlog"] {
            assert_eq!(
                default(check, "statement_timeout"),
                Some(super::super::DEFAULT_STATEMENT_TIMEOUT)
            );
        }
        assert_eq!(
            default("db-snapshot", "lock_wait"),
            Some(super::super::read_lock::DEFAULT_LOCK_WAIT)
        );
        let tries = catalog.find("db-snapshot").unwrap().param_docs();
        let tries = tries.iter().find(|d| d.name == "lock_tries").unwrap();
        assert_eq!(
            tries.default.as_deref(),
            Some(
                super::super::read_lock::DEFAULT_LOCK_TRIES
                    .to_string()
                    .as_str()
            )
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
            Some("2s")
        );
        assert_eq!(
            params.get("statement_timeout").and_then(|v| v.as_str()),
            Some("5s")
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
