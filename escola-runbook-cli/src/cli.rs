//! Command-line arguments. Each subcommand's arguments live here; its work
//! lives in `cmd/<name>.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use escola_runbook_checks::db::Recipient;
use escola_runbook_checks::db::offsite::{OffsiteError, SnapshotUrl};
use escola_runbook_checks::db::params::DEFAULT_THREADS;
use escola_runbook_checks::metrics::compare::Thresholds;
use escola_runbook_core::duration::DurationError;
use escola_runbook_core::formats::markdown::PhaseLevel;

/// Every duration flag is typed here, in the one syntax and range of
/// [`escola_runbook_core::duration`]: a bad value is a usage error (exit 2)
/// naming the value and the range.
fn duration(text: &str) -> Result<Duration, DurationError> {
    escola_runbook_core::duration::parse(text)
}

/// A limit that may be switched off by name (`none`), never by a zero.
fn limit_or_none(text: &str) -> Result<Limit, DurationError> {
    match text.trim() {
        "none" => Ok(Limit(None)),
        other => duration(other).map(|d| Limit(Some(d))),
    }
}

/// A size in bytes (`64MiB`, `200MB`, `1000000`).
fn bytes(text: &str) -> Result<u64, escola_runbook_checks::metrics::bytes::BytesError> {
    escola_runbook_checks::metrics::bytes::parse_bytes(text)
}

/// `KEY=VALUE` (`--set`, `--secret`, `--var`), split at its first `=`,
/// the key trimmed; a value may be empty or hold more `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Before the `=`.
    pub key: String,
    /// After it.
    pub value: String,
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// A pair flag's value with no key before an `=`.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected}")]
pub struct PairSyntax {
    /// The syntax, with an example.
    expected: &'static str,
}

fn pair(text: &str, expected: &'static str) -> Result<Pair, PairSyntax> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok(Pair {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        }),
        _ => Err(PairSyntax { expected }),
    }
}

/// `--set KEY=VALUE`.
fn setting(text: &str) -> Result<Pair, PairSyntax> {
    pair(
        text,
        "KEY=VALUE, e.g. --set base_url=https://api.example.org",
    )
}

/// `--secret NAME=ENV_VAR`.
fn secret(text: &str) -> Result<Pair, PairSyntax> {
    pair(
        text,
        "NAME=ENV_VAR, e.g. --secret metrics_token=METRICS_TOKEN",
    )
}

/// `--var KEY=VALUE`.
fn variable(text: &str) -> Result<Pair, PairSyntax> {
    pair(text, "KEY=VALUE, e.g. --var escolaId=3")
}

/// Where runs are kept unless `--run-dir` says otherwise.
pub const DEFAULT_RUN_DIR: &str = ".escola-runbook/runs";

/// A duration limit, or none (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<Duration>);

/// Run the Escola Connect deploy runbook: plan it, run it with evidence, and
/// report what was checked, by whom, with what result.
///
/// Exit codes: 0 success, 1 a blocking step failed, 2 usage or
/// configuration error, 3 rolled back, 4 stopped (Ctrl-C, SIGTERM, SIGHUP),
/// 5 the run waits for an approval (`run --no-wait`; resumable), 6 the
/// run's journal could not be written.
#[derive(Debug, Parser)]
#[command(name = "escola-runbook", version, propagate_version = true)]
pub struct Cli {
    /// Debug logs on stderr (secrets are masked). Also RUST_LOG.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the phases and steps, which are automated, and what a dry-run would do.
    Plan(PlanArgs),
    /// Run the runbook (or a selection of it), writing a journal and reports.
    Run(RunArgs),
    /// Continue a run that was interrupted or failed, without repeating what is done.
    Resume(ResumeArgs),
    /// Render a finished (or interrupted) run's report from its journal.
    Report(ReportArgs),
    /// List the built-in checks, or run one ad hoc.
    Check(CheckArgs),
    /// Import a Markdown runbook into a TOML runbook file.
    Import(ImportArgs),
    /// Write the built-in Escola runbook as a TOML runbook file, to edit or reuse.
    ExportRunbook(ExportRunbookArgs),
    /// Write the runbook's alert rules (or a rules file's) as Prometheus alerting rules.
    ExportAlerts(ExportAlertsArgs),
    /// Write the runbook's recommended panels as a Grafana dashboard (JSON).
    ExportDashboard(ExportDashboardArgs),
    /// Run an HTTP smoke suite (native, or a Postman v2.1 collection) against a base URL.
    ///
    /// Exit codes: 0 every assertion passed, 1 one failed (or was not
    /// evaluated, or the target did not answer), 2 bad input (nothing sent).
    Smoke(SmokeArgs),
    /// Read request metrics: P50/P95/P99 per histogram series and the 5xx ratio.
    Metrics(MetricsArgs),
    /// Judge after against before: latency (Mann-Whitney U) and 5xx share (Fisher exact).
    ///
    /// Exit codes: 0 no series regressed, 1 one did (or a scrape could not be read, or no
    /// series was on both sides to judge), 2 bad input.
    Compare(CompareArgs),
    /// Watch alert rules from a file against the app's metrics, journaled like a run.
    ///
    /// Exit codes: 0 the rules held (or fired only after the rollback window), 1 a rollback
    /// rule fired inside the window or the metrics could not be read, 2 bad input, 4 Ctrl-C.
    Watch(WatchArgs),
    /// Re-evaluate a past run's recorded measurements under the rules of a file.
    ///
    /// Exit codes: 0 no rule would have rolled back, 3 one would have, 2 bad input.
    Replay(ReplayArgs),
    /// Write a commented project file (escola-runbook.toml) for the built-in runbook.
    Init(InitArgs),
    /// Approve a step waiting for an approval, as one of the runbook's approvers.
    ///
    /// Exit codes: 0 recorded (the waiting run picks it up within 2 s), 2 refused, nothing recorded.
    Approve(ApproveArgs),
    /// Reject a step waiting for an approval (the step fails), as one of the runbook's approvers.
    ///
    /// Exit codes: 0 recorded, 2 refused, nothing recorded.
    Reject(RejectArgs),
    /// Show a run: its verdict or where it is, each step, pending approvals, the lock, the watch rules.
    Status(StatusArgs),
    /// One line per run: id, runbook, environment, operator, start, duration, verdict, exit code.
    History(HistoryArgs),
    /// Serve the live web console: the runs, each run's checklist, rules and charts as it goes, and approval links.
    ///
    /// Exit codes: 0 stopped (Ctrl-C), 2 bad input (beyond loopback without --viewer-token-env, address in use).
    Serve(ServeArgs),
    /// Print a signed, single-use link through which one approver decides one waiting step in the console.
    ///
    /// Exit codes: 0 printed, 2 refused (not an approver, missing role, the operator, the step not waiting, the run finished).
    ApprovalLink(ApprovalLinkArgs),
    /// Database snapshots: create, verify, restore, push off-site, list, prune.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

impl Command {
    /// Whether the command only prints what it read (nothing to finish or
    /// undo if its reader goes away).
    pub fn prints_only(&self) -> bool {
        matches!(
            self,
            Command::Plan(_)
                | Command::Report(_)
                | Command::Replay(_)
                | Command::Status(_)
                | Command::History(_)
        )
    }
}

/// Where the database URL (mysql://USER:PASSWORD@HOST:PORT/DB) comes from:
/// never the command line, where `ps` and shell history would show it.
/// Not a required group, so `snapshot verify` can take it only with
/// `--restore-test`; the commands that need it refuse its absence.
#[derive(Debug, Args, Clone)]
#[group(required = false, multiple = false)]
pub struct DbUrlArgs {
    /// Environment variable holding the URL.
    #[arg(long, value_name = "VAR")]
    pub db_url_env: Option<String>,
    /// File holding the URL (first line).
    #[arg(long, value_name = "FILE")]
    pub db_url_file: Option<PathBuf>,
}

/// How long to wait on the database server.
#[derive(Debug, Args, Clone)]
pub struct DbWaitArgs {
    /// Longest wait to connect and log in [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub connect_timeout: Option<Duration>,
    /// Longest wait for any answer from the server, such as the next rows of a table [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub read_timeout: Option<Duration>,
}

/// `snapshot ...`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a consistent snapshot (zstd SQL files + sha256 manifest) into a new directory under --out.
    Create(SnapshotCreateArgs),
    /// Check every file of a snapshot against its manifest (no server, no key needed); with
    /// --restore-test, also restore it into a scratch database and compare every table.
    Verify(SnapshotVerifyArgs),
    /// Restore one database of a snapshot into a named database (verified first).
    Restore(SnapshotRestoreArgs),
    /// Copy a snapshot to S3-compatible storage (s3://BUCKET/PREFIX), its manifest last.
    Push(SnapshotPushArgs),
    /// List snapshots with age, size, last restore test and status.
    List(SnapshotListArgs),
    /// Delete old snapshots, local or under s3://BUCKET/PREFIX: keeps the newest N, those younger
    /// than D days, the newest that passed its restore test, and those taken by a run that has not
    /// finished.
    Prune(SnapshotPruneArgs),
}

/// `snapshot create`.
#[derive(Debug, Args)]
pub struct SnapshotCreateArgs {
    /// The server.
    #[command(flatten)]
    pub db: DbUrlArgs,
    /// Parent directory of the snapshot (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Database to dump (repeatable) [default: the one named in the URL].
    #[arg(long = "database", value_name = "NAME")]
    pub databases: Vec<String>,
    /// Parallel connections.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS, value_parser = connections())]
    pub threads: usize,
    /// Longest wait for the global read lock per try; every write on the server waits meanwhile [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub lock_wait: Option<Duration>,
    /// Tries of the global read lock before the snapshot is refused [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub lock_tries: Option<u32>,
    /// Encrypt every file to this age recipient (public key age1..., repeatable); files become
    /// *.sql.zst.age.
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    pub encrypt_to: Vec<Recipient>,
    /// Encrypt to the age recipients in FILE (one age1... per line, # comments).
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_file: Option<PathBuf>,
    /// Then push the snapshot to s3://BUCKET/PREFIX (endpoint and credentials from AWS_*).
    #[arg(long, value_name = "URL", value_parser = snapshot_url)]
    pub copy_to: Option<SnapshotUrl>,
    /// Timeouts.
    #[command(flatten)]
    pub waits: DbWaitArgs,
}

/// `snapshot verify`.
#[derive(Debug, Args)]
pub struct SnapshotVerifyArgs {
    /// The snapshot directory, or s3://BUCKET/PREFIX/NAME.
    #[arg(value_name = "SNAPSHOT", value_parser = snapshot_at)]
    pub snapshot: SnapshotAt,
    /// Also decrypt every file of an encrypted snapshot with the age identity in FILE and
    /// check its plaintext's sha256.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Also restore into a scratch database on the server (--db-url-env/--db-url-file),
    /// compare every table's rows and content checksum with the manifest, drop it, and
    /// record the result in verified.json (beside the manifest, locally or on the store).
    #[arg(long)]
    pub restore_test: bool,
    /// The server of the restore test (only with --restore-test).
    #[command(flatten)]
    pub db: DbUrlArgs,
    /// Timeouts.
    #[command(flatten)]
    pub waits: DbWaitArgs,
}

/// `snapshot restore`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("into").required(true).args(["database", "swap_into"])))]
pub struct SnapshotRestoreArgs {
    /// The snapshot directory, or s3://BUCKET/PREFIX/NAME (streamed, nothing downloaded to disk).
    #[arg(value_name = "SNAPSHOT", value_parser = snapshot_at)]
    pub snapshot: SnapshotAt,
    /// The server.
    #[command(flatten)]
    pub db: DbUrlArgs,
    /// Database to restore into (created if missing).
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// Replace the tables of this existing database: restore into a shadow database, prove every
    /// table against the manifest, then swap them in with one atomic RENAME TABLE, keeping the
    /// replaced tables in --backup-into. A failed or interrupted restore leaves it as it was.
    #[arg(long, value_name = "DB", conflicts_with = "force")]
    pub swap_into: Option<String>,
    /// With --swap-into: the database that keeps the replaced tables (must not hold any)
    /// [default: DB_before_YYYYMMDDTHHMMSS].
    #[arg(long, value_name = "NAME", requires = "swap_into")]
    pub backup_into: Option<String>,
    /// Database of the snapshot to restore, when it holds several.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Drop and recreate the target database if it already holds tables, views or routines.
    #[arg(long)]
    pub force: bool,
    /// The age identity file that decrypts an encrypted snapshot (kept private: mode 600).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Connections loading rows at once (whole files each: tables, or primary-key ranges of big
    /// ones), then building the secondary keys deferred until after the rows.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS, value_parser = connections())]
    pub threads: usize,
    /// Timeouts.
    #[command(flatten)]
    pub waits: DbWaitArgs,
}

/// `snapshot push`.
#[derive(Debug, Args)]
pub struct SnapshotPushArgs {
    /// The snapshot directory (complete; verified before anything is sent).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: PathBuf,
    /// Where to: s3://BUCKET/PREFIX; the snapshot becomes PREFIX/NAME/. Endpoint, region and
    /// credentials come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY (AWS_ALLOW_HTTP=true for an http endpoint).
    #[arg(long, value_name = "URL", value_parser = snapshot_url)]
    pub to: SnapshotUrl,
}

/// A snapshot given on the command line: a local directory, or an
/// `s3://` URL.
#[derive(Debug, Clone)]
pub enum SnapshotAt {
    /// A directory.
    Local(PathBuf),
    /// A snapshot on S3-compatible storage.
    Remote(SnapshotUrl),
}

/// Anything with `://` is a URL (and must be s3://), anything else a path.
/// A number of database connections: at least one.
fn connections() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=256)
}

fn snapshot_at(s: &str) -> Result<SnapshotAt, OffsiteError> {
    if s.contains("://") {
        s.parse().map(SnapshotAt::Remote)
    } else {
        Ok(SnapshotAt::Local(PathBuf::from(s)))
    }
}

fn snapshot_url(s: &str) -> Result<SnapshotUrl, OffsiteError> {
    s.parse()
}

/// `--from` of `list` and `prune`: a store's URL; a local directory is
/// their positional DIR, and the refusal says so.
fn store_url(s: &str) -> Result<SnapshotUrl, String> {
    s.parse()
        .map_err(|e: OffsiteError| match s.contains("://") {
            true => e.to_string(),
            false => format!("{e}; a local directory goes without --from (DIR)"),
        })
}

/// `snapshot list`.
#[derive(Debug, Args)]
pub struct SnapshotListArgs {
    /// Directory holding snapshots.
    #[arg(value_name = "DIR", default_value = "snapshots")]
    pub dir: PathBuf,
    /// List the snapshots under s3://BUCKET/PREFIX instead.
    #[arg(long, value_name = "URL", value_parser = store_url, conflicts_with_all = ["dir", "checksums"])]
    pub from: Option<SnapshotUrl>,
    /// Also check every file's sha256 (reads everything).
    #[arg(long)]
    pub checksums: bool,
}

/// `snapshot prune`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("keep").required(true).multiple(true).args(["keep_last", "keep_days"])))]
pub struct SnapshotPruneArgs {
    /// Directory holding snapshots.
    #[arg(value_name = "DIR", required_unless_present = "from")]
    pub dir: Option<PathBuf>,
    /// Prune the snapshots under s3://BUCKET/PREFIX instead (endpoint and credentials from AWS_*).
    #[arg(long, value_name = "URL", value_parser = store_url, conflicts_with = "dir")]
    pub from: Option<SnapshotUrl>,
    /// Keep the newest N complete snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the snapshots younger than D days.
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_days: Option<u32>,
    /// Say what would be kept and deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the runs are kept: the snapshot of a run that has not finished is kept (a remote
    /// copy is matched by its name).
    #[arg(long, value_name = "DIR", default_value = ".escola-runbook/runs")]
    pub run_dir: PathBuf,
}

/// Which runbook, against which environment.
#[derive(Debug, Args, Clone)]
pub struct RunbookArgs {
    /// The project file naming the runbook and its environments [default:
    /// ./escola-runbook.toml if present; see `init`].
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The application checkout where the runbook's commands run [default: .; for `resume`,
    /// the run's own].
    #[arg(long, value_name = "DIR")]
    pub app_dir: Option<PathBuf>,

    /// Name of the target environment, recorded in the journal and reports and part of the
    /// deploy lock's key; with a project file, the environment it configures [default: the
    /// project file's only environment, else production; for `resume`, the run's own].
    #[arg(long = "env", value_name = "NAME")]
    pub environment: Option<String>,

    /// An environment setting, e.g. --set base_url=https://api.example.org (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = setting)]
    pub settings: Vec<Pair>,

    /// A secret read from an environment variable, e.g. --secret metrics_token=METRICS_TOKEN
    /// (repeatable). Values never appear in output, journals or reports.
    #[arg(long = "secret", value_name = "NAME=ENV_VAR", value_parser = secret)]
    pub secrets: Vec<Pair>,

    /// A runbook file (TOML, see `export-runbook`) instead of the built-in Escola runbook.
    #[arg(
        long = "runbook",
        value_name = "FILE.toml",
        conflicts_with = "markdown"
    )]
    pub runbook_file: Option<PathBuf>,

    /// A Markdown runbook, imported on the fly (see `import`); its commands run in --app-dir.
    #[arg(long, value_name = "RUNBOOK.md")]
    pub markdown: Option<PathBuf>,

    /// How the Markdown runbook's phases are found.
    #[command(flatten)]
    pub phases: PhaseLevelArg,
}

/// `--phase-level`, for every command that imports a Markdown runbook.
#[derive(Debug, Args, Clone, Default)]
pub struct PhaseLevelArg {
    /// The heading level of the Markdown runbook's phases (1 for `#` to 6 for `######`),
    /// instead of inferring them from headings named alike (`Phase A`/`Phase B`, `1.`/`2.`):
    /// headings at that level or above are phases, deeper ones sections.
    #[arg(long = "phase-level", value_name = "N", requires = "markdown")]
    pub phase_level: Option<PhaseLevel>,
}

/// Which part of the runbook.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectionArgs {
    /// Run only this phase (repeatable); see the ids with `plan`.
    #[arg(long = "phase", value_name = "PHASE")]
    pub phases: Vec<String>,

    /// Run only this step (repeatable).
    #[arg(long = "only", value_name = "STEP")]
    pub only: Vec<String>,
}

/// Output format of `plan`, `status` and `history`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    /// For people.
    Text,
    /// For tools (versioned schema).
    Json,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook.
    #[command(flatten)]
    pub runbook: RunbookArgs,
    /// Which part.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
}

/// What to do when nobody answers a confirmation in time.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DefaultDecision {
    /// Treat as confirmed.
    Confirm,
    /// Treat as not done (the step fails).
    Decline,
    /// Skip the step.
    Skip,
    /// Stop the run.
    Abort,
}

/// How a run is carried out, shared by `run` and `resume`.
#[derive(Debug, Args)]
pub struct ExecutionArgs {
    /// Confirm every manual step without asking (recorded as "pre-approved").
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Who is running the deploy [default: $USER, else $LOGNAME, else the process's account].
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// A comment recorded with every --yes confirmation (and with --on-interrupted done).
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Where runs are kept; each run gets <DIR>/<run-id>/ and locks live in <DIR>/locks/.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Wait at most this long at a confirmation prompt (e.g. 5m), then take --confirm-default.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub confirm_timeout: Option<Duration>,
    /// Decision taken when --confirm-timeout passes.
    #[arg(
        long,
        value_enum,
        default_value = "decline",
        requires = "confirm_timeout"
    )]
    pub confirm_default: DefaultDecision,
    /// Take the deploy lock even though someone holds it (needs --reason; journaled).
    #[arg(long, requires = "reason")]
    pub break_lock: bool,
    /// Why the lock is broken.
    #[arg(long, value_name = "TEXT", requires = "break_lock")]
    pub reason: Option<String>,
    /// Also hold the deploy lock on the application database (MySQL GET_LOCK), so engineers
    /// on different machines exclude each other; needs --secret database_url=ENV_VAR.
    #[arg(long)]
    pub db_lock: bool,
    /// When a step begins to wait for an approval, stop there (exit 5, resumable) instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook.
    #[command(flatten)]
    pub runbook: RunbookArgs,
    /// Which part.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Run read-only checks; describe actions and manual steps without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirmation, operator, run directory, lock.
    #[command(flatten)]
    pub execution: ExecutionArgs,
}

/// What to do with a step that was changing something when the run died.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnInterrupted {
    /// Run it again.
    Rerun,
    /// It completed: record it as done (add --comment to say how you know).
    Done,
    /// Stop here; the run ends as stopped.
    Abort,
}

/// `resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id, run directory, journal file, or `latest` (default): the latest run of the
    /// runbook given with --runbook/--markdown/--builtin, else the latest run.
    #[arg(value_name = "RUN", default_value = "latest")]
    pub run: String,
    /// Settings overriding the recorded ones, secrets; the runbook is the run's own unless
    /// --runbook or --markdown names one (then compared step by step).
    #[command(flatten)]
    pub runbook: RunbookArgs,
    /// Resume with the built-in runbook, compared step by step (for a run whose journal does
    /// not record its runbook, or whose configuration changed on purpose).
    #[arg(long, conflicts_with_all = ["runbook_file", "markdown"])]
    pub builtin: bool,
    /// Decision for steps interrupted while changing something (asked at the terminal otherwise).
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_interrupted: Option<OnInterrupted>,
    /// Confirmation, operator, run directory, lock.
    #[command(flatten)]
    pub execution: ExecutionArgs,
}

/// Report formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// The runbook as a ticked Markdown checklist.
    Md,
    /// The run record as JSON.
    Json,
    /// JUnit XML for CI dashboards.
    Junit,
    /// One self-contained HTML page, the charts inline.
    Html,
}

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id, run directory, journal file, or `latest`.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With --format md: the Markdown runbook the run was imported from (without a value, the
    /// one its journal records); the report is that document with each item ticked in place
    /// and an evidence line under it.
    #[arg(long, value_name = "RUNBOOK.md", num_args = 0..=1)]
    pub original: Option<Option<PathBuf>>,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Markdown runbook.
    #[arg(value_name = "RUNBOOK.md")]
    pub markdown: PathBuf,
    /// Write the TOML runbook file here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The runbook's name when the document has no title heading.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Working directory written on every imported command.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Limit written on every imported command (e.g. 10m), or `none`.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = limit_or_none)]
    pub command_timeout: Limit,
    /// Exit with 1 when the import has warnings (malformed boxes, unknown bindings...).
    #[arg(long)]
    pub strict: bool,
    /// How the phases are found.
    #[command(flatten)]
    pub phases: PhaseLevelArg,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(long, short = 'o', value_name = "FILE", default_value = escola_runbook_checks::escola::project::FILE_NAME)]
    pub output: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `export-runbook`.
#[derive(Debug, Args)]
pub struct ExportRunbookArgs {
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The application checkout written as the commands' working directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub app_dir: PathBuf,
}

/// `export-alerts`.
#[derive(Debug, Args)]
pub struct ExportAlertsArgs {
    /// The rules of this rules file (the `watch --rules` format) instead of the built-in
    /// runbook's alerts.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `export-dashboard`.
#[derive(Debug, Args)]
pub struct ExportDashboardArgs {
    /// SQL condition selecting the pending rows of `sync_mutations`.
    #[arg(long, value_name = "SQL", default_value = escola_runbook_checks::escola::PENDING_WHERE)]
    pub pending_where: String,
    /// The most pending rows accepted, drawn as a line on the backlog panel.
    #[arg(long, value_name = "N")]
    pub backlog_limit: Option<f64>,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// List the built-in checks and their parameters.
    #[arg(long, conflicts_with = "name")]
    pub list: bool,
    /// The check to run.
    #[arg(value_name = "NAME", required_unless_present = "list")]
    pub name: Option<String>,
    /// A parameter, e.g. --param min=85 (repeatable).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Environment settings and secrets.
    #[command(flatten)]
    pub runbook: RunbookArgs,
    /// Describe an action instead of running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
}

/// Output format of `smoke`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SmokeFormat {
    /// For people.
    Text,
    /// For tools.
    Json,
    /// JUnit XML for CI dashboards.
    Junit,
}

/// `smoke`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The target, e.g. https://api.example.org; also the collection's {{baseUrl}}.
    #[arg(long, value_name = "URL", env = "ESCOLA_BASE_URL")]
    pub base_url: String,
    /// A Postman Collection v2.1 JSON file.
    #[arg(long, value_name = "FILE")]
    pub collection: Option<PathBuf>,
    /// A native suite file (TOML or JSON). Without --suite and --collection, the built-in Escola suite runs.
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// A Postman environment export (as Newman's --environment): its values beat the
    /// collection's; --base-url, --secret and --var beat them. Values of type `secret` are masked.
    #[arg(long, short = 'e', value_name = "FILE")]
    pub environment: Option<PathBuf>,
    /// A {{variable}} value, e.g. --var escolaId=3 (repeatable; beats the collection's and --base-url).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = variable)]
    pub vars: Vec<Pair>,
    /// A secret for a {{NAME}} placeholder, read from an environment variable, e.g.
    /// --secret token=API_TOKEN (repeatable). Its value is masked in every output.
    #[arg(long = "secret", value_name = "NAME=ENV_VAR", value_parser = secret)]
    pub secrets: Vec<Pair>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Limit for each request (e.g. 10s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: SmokeFormat,
}

/// `metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The app's metrics URL (e.g. https://api.example.org/metrics), or with
    /// --prometheus the Prometheus base URL.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The Bearer token, if the endpoint wants one.
    #[command(flatten)]
    pub token: TokenArgs,
    /// URL is a Prometheus HTTP API (or Thanos, Mimir, VictoriaMetrics): ask it with PromQL.
    #[arg(long)]
    pub prometheus: bool,
    /// Sum by these labels (comma-separated, e.g. method,route); default: every series apart.
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub by: Option<Vec<String>>,
    /// Two scrapes this far apart and their deltas (e.g. 30s, 5m); default: one scrape, cumulative.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub interval: Option<Duration>,
    /// With --interval: also scrape this often in between (e.g. 15s), so a restart is always seen.
    #[arg(long, value_name = "DURATION", requires = "interval", value_parser = duration)]
    pub every: Option<Duration>,
    /// Which series.
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Limit for one HTTP request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// Refuse an answer larger than this (e.g. 64MiB, 200MB), reading no further.
    #[arg(long, value_name = "SIZE", default_value = escola_runbook_checks::metrics::source::DEFAULT_MAX_BODY_TEXT, value_parser = bytes)]
    pub max_body: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
}

/// Where a metrics endpoint's Bearer token comes from: never the command
/// line, where `ps` and shell history would show it.
#[derive(Debug, Args, Clone)]
pub struct TokenArgs {
    /// Environment variable holding the Bearer token (never pass it in argv).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// File holding the Bearer token (e.g. a mounted Kubernetes secret); trailing newline ignored.
    #[arg(long, value_name = "FILE", conflicts_with = "token_env")]
    pub token_file: Option<PathBuf>,
}

/// The request series read from a metrics page.
#[derive(Debug, Args, Clone)]
pub struct SeriesArgs {
    /// Histogram family, without _bucket.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "http_request_duration_seconds"
    )]
    pub histogram: String,
    /// Request counter for the error ratio.
    #[arg(long, value_name = "NAME", default_value = "http_requests_total")]
    pub counter: String,
    /// Label holding the HTTP status.
    #[arg(long, value_name = "LABEL", default_value = "status")]
    pub status_label: String,
    /// Statuses counted as errors (PromQL =~ regex).
    #[arg(long, value_name = "REGEX", default_value = "5..")]
    pub errors: String,
}

/// `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The scrape before the deploy: a saved `/metrics` page (file) or a URL.
    #[arg(long, value_name = "SCRAPE")]
    pub before: String,
    /// The scrape after it: a file or a URL.
    #[arg(long, value_name = "SCRAPE")]
    pub after: String,
    /// The Bearer token for URLs, if the endpoint wants one.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Which series.
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Sum by these labels (comma-separated, e.g. route); default: every request together.
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub by: Option<Vec<String>>,
    /// A difference is significant below this p value.
    #[arg(long, value_name = "P", default_value_t = Thresholds::default().alpha)]
    pub alpha: f64,
    /// The least latency shift that counts: |P(after slower) − 0.5|.
    #[arg(long, value_name = "SHIFT", default_value_t = Thresholds::default().min_effect)]
    pub min_effect: f64,
    /// The least change of the error share that counts (0.001 = 0.1 points).
    #[arg(long, value_name = "SHARE", default_value_t = Thresholds::default().min_error_change)]
    pub min_error_change: f64,
    /// Fewer requests than this on a side is no_data.
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().min_requests)]
    pub min_requests: f64,
    /// Limit for one HTTP request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// Refuse an answer larger than this (e.g. 64MiB, 200MB), reading no further.
    #[arg(long, value_name = "SIZE", default_value = escola_runbook_checks::metrics::source::DEFAULT_MAX_BODY_TEXT, value_parser = bytes)]
    pub max_body: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
}

/// `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The rules file (TOML; see docs).
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// Environment (`--set metrics_url=...` or `base_url`) and secrets (`--secret metrics_token=ENV_VAR`).
    #[command(flatten)]
    pub runbook: RunbookArgs,
    /// Where runs are kept (the watch is journaled like a run; `replay` reads it).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Refuse a metrics answer larger than this (e.g. 64MiB, 200MB), reading no further.
    #[arg(long, value_name = "SIZE", default_value = escola_runbook_checks::metrics::source::DEFAULT_MAX_BODY_TEXT, value_parser = bytes)]
    pub max_body: u64,
    /// The Prometheus server `measure = "promql"` rules ask (its instant-query API), unless a rule names its own with `prometheus = "URL"`.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
}

/// `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Run id, run directory, journal file, or `latest`.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The rules to judge the recorded measurements by.
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

/// The step a decision is about, and who decides.
#[derive(Debug, Args)]
pub struct DecisionTarget {
    /// Run id, run directory, journal file, or `latest`.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The step waiting for the approval.
    #[arg(value_name = "STEP")]
    pub step: String,
    /// The approver deciding (one of the runbook's approvers).
    #[arg(long = "as", value_name = "NAME")]
    pub approver: String,
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

/// `approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The step and the approver.
    #[command(flatten)]
    pub target: DecisionTarget,
    /// Why, in the approver's words (recorded in the journal and reports).
    #[arg(long, value_name = "TEXT", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub comment: Option<String>,
}

/// `reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The step and the approver.
    #[command(flatten)]
    pub target: DecisionTarget,
    /// Why it is rejected (required; recorded in the journal and reports).
    #[arg(long, value_name = "TEXT", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub comment: String,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Run id, run directory, journal file, or `latest`.
    #[arg(value_name = "RUN", default_value = "latest")]
    pub run: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

/// `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most the N latest runs.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// The address to listen on; beyond loopback it needs --viewer-token-env.
    #[arg(long, value_name = "ADDR", default_value = escola_runbook_core::console::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// The console's address as approvers reach it (https://runbook.example.org); approval links
    /// and the run's approval notifications use it.
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub public_url: Option<String>,
    /// The environment variable holding the token every page requires.
    #[arg(long, value_name = "VAR")]
    pub viewer_token_env: Option<String>,
}

/// `approval-link`.
#[derive(Debug, Args)]
pub struct ApprovalLinkArgs {
    /// Run id, run directory, journal file, or `latest`.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The step waiting for the approval.
    #[arg(value_name = "STEP")]
    pub step: String,
    /// The one approver the link is for.
    #[arg(long = "for", value_name = "NAME")]
    pub approver: String,
    /// The console's address; default: the --public-url `serve` was given, else
    /// http://127.0.0.1:8600.
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub base_url: Option<String>,
    /// Where runs are kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

/// An http:// or https:// URL, its trailing slash dropped.
fn http_url(text: &str) -> Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err(format!("`{text}` is not an http:// or https:// URL"))
    }
}
