//! `escola-runbook snapshot create|verify|restore|push|list|prune`: thin wrappers over
//! `escola_runbook_checks::db` (and `db::offsite` for s3:// URLs).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use escola_runbook_checks::db::offsite::{self, PushOptions, SnapshotUrl, Store};
use escola_runbook_checks::db::{
    self, DbTimeouts, Identities, LocalDir, RestoreOptions, RestoreTestOptions, Retention,
    SnapshotFiles, SnapshotListing, SnapshotOptions,
};
use escola_runbook_core::exit;
use escola_runbook_core::{Redactor, Secret, counted};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{DbUrlArgs, DbWaitArgs, SnapshotAt, SnapshotCommand, SnapshotPruneArgs};
use crate::error::CliError;
use crate::signals::StopSignals;

pub async fn run(command: SnapshotCommand, redactor: &Redactor) -> Result<i32, CliError> {
    match command {
        SnapshotCommand::Create(args) => {
            let url = db_url(&args.db, redactor)?;
            let mut opts = SnapshotOptions::new(&args.out);
            opts.databases = args.databases;
            opts.threads = args.threads;
            opts.timeouts = timeouts(&args.waits);
            if let Some(wait) = args.lock_wait {
                opts.lock_wait_timeout = wait;
            }
            if let Some(tries) = args.lock_tries {
                opts.lock_tries = tries;
            }
            opts.encrypt_to = args.encrypt_to;
            if let Some(file) = &args.encrypt_to_file {
                opts.encrypt_to.extend(db::crypt::read_recipients(file)?);
            }
            let bar = progress_bar();
            if let Some(bar) = &bar {
                let bar = bar.clone();
                opts.progress = Some(Arc::new(move |p| {
                    bar.set_length(p.files_total);
                    bar.set_position(p.files_done);
                    bar.set_message(format!("{} rows, {} MiB of SQL", p.rows, p.sql_bytes >> 20));
                }));
            }
            let interrupt = cancel_on_stop(opts.cancel.clone())?;
            let result = db::snapshot::create(&url, &opts).await;
            interrupt.abort();
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let (path, manifest) = result?;
            let (_, sha) = db::restore::read_manifest(&path)?;
            println!("{}", path.display());
            let lock = manifest
                .consistency
                .global_read_lock()
                .map(|t| format!(" (global read lock {t})"))
                .unwrap_or_default();
            let sealed = match manifest.recipients() {
                [] => String::new(),
                to => format!("; encrypted to {}", to.join(", ")),
            };
            eprintln!(
                "snapshot complete: {} in {}, {} bytes; manifest sha256 {sha}; {}{lock}{sealed}",
                counted(manifest.total_rows, "row"),
                counted(manifest.files.len() as u64, "file"),
                manifest.total_bytes,
                manifest.consistency.method
            );
            if let Some(to) = &args.copy_to {
                push(&path, to, redactor).await?;
            }
            Ok(exit::SUCCESS)
        }
        SnapshotCommand::Push(args) => {
            push(&args.snapshot, &args.to, redactor).await?;
            Ok(exit::SUCCESS)
        }
        SnapshotCommand::Verify(args) => {
            let identities = identities(args.identity.as_deref())?;
            let url = match (args.restore_test, &args.db) {
                (true, db) => Some(db_url(db, redactor)?),
                (
                    false,
                    DbUrlArgs {
                        db_url_env: None,
                        db_url_file: None,
                    },
                ) => None,
                (false, _) => return Err(CliError::DbUrlWithoutRestoreTest),
            };
            let location = match &args.snapshot {
                SnapshotAt::Local(dir) => dir.display().to_string(),
                SnapshotAt::Remote(at) => at.to_string(),
            };
            let tested = match (args.snapshot, url) {
                (SnapshotAt::Local(dir), _) if !dir.is_dir() => {
                    return Err(CliError::NotASnapshot(dir));
                }
                (SnapshotAt::Local(dir), None) => {
                    print_verified(&location, &db::verify(&dir, identities.as_ref())?);
                    return Ok(exit::SUCCESS);
                }
                (SnapshotAt::Local(dir), Some(url)) => {
                    let line = VerifyLine::new(location);
                    let opts = line.restore_test_options(identities, &args.waits);
                    let test = db::restore_test(&dir, &url, &opts);
                    restore_tested(&line, opts.cancel.clone(), test).await?
                }
                (SnapshotAt::Remote(at), url) => {
                    let remote = store(&at, redactor)?;
                    let files = remote.snapshot().await?;
                    let Some(url) = url else {
                        print_verified(&location, &db::verify_files(files, identities).await?);
                        return Ok(exit::SUCCESS);
                    };
                    let line = VerifyLine::new(location);
                    let opts = line.restore_test_options(identities, &args.waits);
                    let test = offsite::restore_test(&remote, &url, &opts);
                    restore_tested(&line, opts.cancel.clone(), test).await?
                }
            };
            Ok(print_restore_test(&tested))
        }
        SnapshotCommand::Restore(args) => {
            let url = db_url(&args.db, redactor)?;
            let identities = identities(args.identity.as_deref())?;
            let spinner = progress_bar();
            if let (Some(target), None) = (&args.swap_into, &args.database) {
                if let Some(s) = &spinner {
                    s.set_message(format!("restoring into a shadow of `{target}`"));
                }
                let mut opts = db::SwapOptions::new(target);
                opts.backup_database = args.backup_into;
                opts.source_database = args.source;
                opts.timeouts = timeouts(&args.waits);
                opts.identities = identities;
                opts.threads = args.threads;
                let files = snapshot_files(&args.snapshot, redactor).await?;
                let result = db::restore_swapped_from(files, &url, &opts).await;
                if let Some(s) = spinner {
                    s.finish_and_clear();
                }
                let report = result?;
                println!(
                    "restored `{}` into a shadow database: {} files, {} statements, {} rows; all {} tables match the snapshot",
                    report.restored.source_database,
                    report.restored.files,
                    report.restored.statements,
                    report.restored.rows,
                    report.proven.len()
                );
                println!(
                    "swapped {} tables into `{target}` in one RENAME TABLE ({} triggers recreated); the {} replaced tables are in `{}`",
                    report.swapped_in.len(),
                    report.triggers,
                    report.replaced.len(),
                    report.backup_database
                );
                for trigger in &report.dropped_triggers {
                    println!("dropped trigger of the replaced tables: {trigger}");
                }
                return Ok(exit::SUCCESS);
            }
            let target = args.database.unwrap_or_default();
            let mut opts = RestoreOptions::new(&target);
            opts.source_database = args.source;
            opts.force = args.force;
            opts.timeouts = timeouts(&args.waits);
            opts.identities = identities;
            opts.threads = args.threads;
            if let Some(s) = &spinner {
                s.set_message(format!("restoring into `{target}`"));
            }
            let files = snapshot_files(&args.snapshot, redactor).await?;
            let result = db::restore_from(files, &url, &opts).await;
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            let report = result?;
            println!(
                "restored `{}` into `{}`: {}, {}, {} over {} ({} INSERTs sent as LOAD DATA rows); {} secondary keys built after the rows",
                report.source_database,
                report.target_database,
                counted(report.files as u64, "file"),
                counted(report.statements as u64, "statement"),
                counted(report.rows, "row"),
                counted(report.connections as u64, "connection"),
                report.load_data_statements,
                report.deferred_keys
            );
            Ok(exit::SUCCESS)
        }
        SnapshotCommand::Prune(args) => prune(&args, redactor).await,
        SnapshotCommand::List(args) => {
            let listed = match &args.from {
                Some(url) => offsite::list(&store(url, redactor)?).await?,
                None => db::list(&args.dir, args.checksums).map_err(|source| {
                    CliError::ListSnapshots {
                        dir: args.dir.clone(),
                        source,
                    }
                })?,
            };
            print_listing(&listed);
            let bad = listed
                .iter()
                .any(|l| l.status != db::SnapshotStatus::Complete);
            Ok(if bad {
                exit::STEP_FAILED
            } else {
                exit::SUCCESS
            })
        }
    }
}

/// The verify line of `verify --restore-test` for `location`: the restore
/// test verifies every file before it restores anything, and its report is
/// printed as this command's verify line (above the spinner), so the files
/// are not read for a verify of its own.
struct VerifyLine {
    location: String,
    spinner: Option<ProgressBar>,
    /// The verify pass finished: an error after it is the restore test's.
    printed: AtomicBool,
}

impl VerifyLine {
    fn new(location: String) -> Arc<Self> {
        Arc::new(VerifyLine {
            location,
            spinner: progress_bar(),
            printed: AtomicBool::new(false),
        })
    }

    /// The restore test's options, printing this line when its verify
    /// pass is done.
    fn restore_test_options(
        self: &Arc<Self>,
        identities: Option<db::Identities>,
        waits: &DbWaitArgs,
    ) -> RestoreTestOptions {
        let line = self.clone();
        RestoreTestOptions {
            identities,
            timeouts: timeouts(waits),
            on_verified: Some(Arc::new(move |report| line.print(report))),
            ..RestoreTestOptions::default()
        }
    }

    fn print(&self, report: &db::VerifyReport) {
        match &self.spinner {
            Some(s) => {
                s.suspend(|| print_verified(&self.location, report));
                s.set_message("restore test: restoring into a scratch database");
            }
            None => print_verified(&self.location, report),
        }
        self.printed.store(true, Ordering::SeqCst);
    }

    /// `e` as this command's error: one from before the verify line is a
    /// verify error, told as `verify` alone tells it (the library reports
    /// a key that opens nothing as a restore refusal, with its crypt
    /// error); later ones are the restore test's.
    fn error(&self, e: db::RestoreTestError) -> CliError {
        if self.printed.load(Ordering::SeqCst) {
            return e.into();
        }
        match e {
            db::RestoreTestError::Restore(db::RestoreError::Verify(e)) => CliError::Verify(e),
            db::RestoreTestError::Restore(db::RestoreError::Crypt(e)) => {
                CliError::Verify(db::VerifyError::Crypt(e))
            }
            other => other.into(),
        }
    }
}

/// Runs the restore test `test` under `line`'s spinner; a stop signal
/// cancels `cancel`, ending the restore between statements (the scratch
/// database is still dropped).
async fn restore_tested(
    line: &VerifyLine,
    cancel: escola_runbook_core::CancellationToken,
    test: impl std::future::Future<Output = Result<db::Verified, db::RestoreTestError>>,
) -> Result<db::Verified, CliError> {
    if let Some(s) = &line.spinner {
        s.set_message("restore test: verifying every file");
    }
    let interrupt = cancel_on_stop(cancel)?;
    let result = test.await;
    interrupt.abort();
    if let Some(s) = &line.spinner {
        s.finish_and_clear();
    }
    result.map_err(|e| line.error(e))
}

/// What the restore test found, and the exit code it gives.
fn print_restore_test(verified: &db::Verified) -> i32 {
    let rows: u64 = verified.tables.iter().map(|t| t.restored_rows).sum();
    for t in verified.mismatches() {
        println!(
            "{}: {} rows, checksum {} restored; the manifest says {} rows, checksum {}",
            t.table,
            t.restored_rows,
            t.restored_checksum,
            t.expected_rows,
            t.expected_checksum.as_deref().unwrap_or("(none recorded)")
        );
    }
    if let Some(why) = &verified.restore_failed {
        println!("the snapshot does not restore: {why}");
    }
    println!(
        "restore test {} on {}: {}, {}, in {} (recorded in {})",
        if verified.passed { "passed" } else { "FAILED" },
        verified.server,
        counted(verified.tables.len() as u64, "table"),
        counted(rows, "row"),
        escola_runbook_core::format_millis(verified.elapsed_ms),
        db::VERIFIED
    );
    if verified.passed {
        exit::SUCCESS
    } else {
        exit::STEP_FAILED
    }
}

/// `snapshot verify`'s line for the snapshot at `location`.
fn print_verified(location: &str, report: &db::VerifyReport) {
    let plaintexts = if report.plaintexts > 0 {
        format!(", {} decrypted plaintexts match", report.plaintexts)
    } else {
        String::new()
    };
    println!(
        "{location}: ok, {} files, {} bytes match the manifest (sha256 {}){plaintexts}",
        report.files, report.bytes, report.manifest_sha256
    );
}

/// The table `snapshot list` prints, local or remote.
fn print_listing(listed: &[SnapshotListing]) {
    use crate::table::Align::{Left, Right};
    let now = chrono::Utc::now();
    let rows: Vec<[String; 6]> = listed
        .iter()
        .map(|l| {
            let verified = l.verified.as_ref().map_or_else(
                || "never".to_owned(),
                |v| {
                    format!(
                        "{} {} ago",
                        if v.passed { "passed" } else { "FAILED" },
                        ago(now - v.verified_at)
                    )
                },
            );
            let sealed = if l.encrypted { ", encrypted" } else { "" };
            [
                snapshot_name(&l.path),
                l.age(now).map_or_else(|| "?".into(), ago),
                l.bytes.to_string(),
                l.rows.to_string(),
                verified,
                format!("{}{sealed}", l.status),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::table::render(
            ["SNAPSHOT", "AGE", "SIZE", "ROWS", "LAST VERIFIED", "STATUS"],
            [Left, Right, Right, Right, Left, Left],
            &rows,
        )
    );
}

/// `snapshot push`, and `create --copy-to`: the snapshot in `dir` to
/// `to`; Ctrl-C stops it before the manifest is sent.
async fn push(
    dir: &std::path::Path,
    to: &SnapshotUrl,
    redactor: &Redactor,
) -> Result<(), CliError> {
    let store = store(to, redactor)?;
    let opts = PushOptions::default();
    let interrupt = cancel_on_stop(opts.cancel.clone())?;
    let result = offsite::push(dir, &store, &opts).await;
    interrupt.abort();
    let report = result?;
    println!("{}", report.url);
    eprintln!(
        "pushed: {} objects uploaded ({} bytes), {} already there and matching; manifest sha256 {}",
        report.uploaded, report.bytes_uploaded, report.skipped, report.manifest_sha256
    );
    Ok(())
}

/// The files of the snapshot `at`: a local directory, or an off-site copy.
async fn snapshot_files(
    at: &SnapshotAt,
    redactor: &Redactor,
) -> Result<Arc<dyn SnapshotFiles>, CliError> {
    Ok(match at {
        SnapshotAt::Local(dir) => Arc::new(LocalDir::new(dir)),
        SnapshotAt::Remote(url) => store(url, redactor)?.snapshot().await?,
    })
}

/// The store of `url`, configured from the AWS_* variables; the secret
/// ones are registered with the redactor so no message can show them.
fn store(url: &SnapshotUrl, redactor: &Redactor) -> Result<Store, CliError> {
    for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(value) = std::env::var(var) {
            redactor.register(var, &value);
        }
    }
    Ok(Store::from_env(url)?)
}

/// `snapshot prune`, local or remote: what was kept and why, what was
/// deleted (a remote deletion printed as it happens, so a prune cut short
/// has said what it did).
async fn prune(args: &SnapshotPruneArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let retention = Retention {
        keep_last: args.keep_last.unwrap_or(0),
        keep_for: args
            .keep_days
            .map(|d| std::time::Duration::from_secs(u64::from(d) * 86_400)),
    };
    let deleted = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let decisions = match (&args.from, &args.dir) {
        (Some(url), _) => {
            let opts = offsite::PruneOptions {
                dry_run: args.dry_run,
                on_deleted: Some(Arc::new(move |d| {
                    println!("{deleted:<12} {}", snapshot_name(&d.path));
                })),
            };
            offsite::prune(&store(url, redactor)?, &args.run_dir, retention, &opts).await?
        }
        (None, Some(dir)) => db::prune(dir, &args.run_dir, retention, args.dry_run)?,
        (None, None) => return Err(CliError::NoPruneTarget),
    };
    let mut gone = 0;
    for d in &decisions {
        let name = snapshot_name(&d.path);
        if d.kept_because.is_empty() {
            gone += 1;
            // A remote deletion was printed as it happened.
            if args.from.is_none() || args.dry_run {
                println!("{deleted:<12} {name}");
            }
        } else {
            println!("{:<12} {name}: {}", "kept", d.kept_because.join("; "));
        }
    }
    eprintln!(
        "{} kept, {gone} {deleted}{}",
        decisions.len() - gone,
        if args.dry_run { " (dry run)" } else { "" }
    );
    Ok(exit::SUCCESS)
}

/// The snapshot's name: the last component of its directory or URL.
fn snapshot_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Cancels `cancel` on the first stop signal (Ctrl-C, SIGTERM, SIGHUP);
/// abort the task once the work is done.
fn cancel_on_stop(
    cancel: escola_runbook_core::CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, CliError> {
    let mut signals = StopSignals::install()?;
    Ok(tokio::spawn(async move {
        signals.next().await;
        cancel.cancel();
    }))
}

/// A time span in whole seconds, as the listing shows ages.
fn ago(span: chrono::Duration) -> String {
    let secs = span.to_std().map_or(0, |d| d.as_secs());
    escola_runbook_core::format_duration(std::time::Duration::from_secs(secs))
}

/// The age identities of `--identity FILE`, if given.
fn identities(path: Option<&std::path::Path>) -> Result<Option<Identities>, CliError> {
    Ok(path.map(Identities::read).transpose()?)
}

/// The snapshot timeouts, with `--connect-timeout` and `--read-timeout`.
fn timeouts(args: &DbWaitArgs) -> DbTimeouts {
    let mut t = DbTimeouts::SNAPSHOT;
    if let Some(d) = args.connect_timeout {
        t.connect = d;
    }
    if let Some(d) = args.read_timeout {
        t.read = d;
    }
    t
}

/// The URL from the environment variable or file; registered with the
/// redactor so no message can show it.
fn db_url(args: &DbUrlArgs, redactor: &Redactor) -> Result<Secret, CliError> {
    let value = match (&args.db_url_env, &args.db_url_file) {
        (Some(var), _) => std::env::var(var).map_err(|_| CliError::DbUrlEnvUnset(var.clone()))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|source| CliError::ReadFlagFile {
                flag: "--db-url-file",
                path: path.clone(),
                source,
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        (None, None) => return Err(CliError::NoDbUrl),
    };
    if value.is_empty() {
        return Err(CliError::EmptyDbUrl);
    }
    redactor.register("database_url", &value);
    Ok(Secret::new(value))
}

/// A bar on a terminal; nothing otherwise.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos}/{len} files {msg} [{elapsed}]")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}
