//! `cargo run --example deploy`: the team's whole runbook, end to end, with
//! no setup, for real, against the in-process API simulator of
//! `escola-runbook-testkit` (127.0.0.1, ephemeral port) under simulated user
//! traffic, and a simulated application host ([`SimulatedHost`]: a
//! temporary app directory whose `bin/php`, `bin/git` and `bin/composer`
//! act on the simulator). The commands run: `php artisan down` puts the API
//! in maintenance (503 with `Retry-After`), the migrations advance the schema
//! version the API reports, the CDN purge reaches the simulator, `php
//! artisan up` brings the API back. Manual steps are confirmed by a script
//! recorded as `example` (never as a person). When MariaDB answers on
//! 127.0.0.1:3306 (`root`, no password) and the `mariadb` client is
//! installed, the database steps run too, on a scratch database the example
//! creates and drops (the snapshot, the migrations recorded in
//! `doctrine_migration_versions` and checked, the loss estimate); otherwise
//! they stay manual (skipped, and the output says so). The alert watch is
//! time-compressed (said on screen). The journal, the reports and the plots
//! land in `target/escola-runbook-example/<run-id>/`.
//!
//! - `-- --fault errors` (or another name of
//!   `escola_runbook_testkit::FAULT_NAMES`): the API is broken from the
//!   start. With `errors`, `slow`, `no-trace-id`, `ignore-if-match` or
//!   `rate-limit` the smoke tests fail and the rollback runs (exit 3); `down`
//!   and `wrong-metrics-auth` stop the run at the metrics baseline, before
//!   the deploy (exit 1).
//! - `-- --fault latency`: the API turns slow (2.2 to 3 s per request) right
//!   after the deploy: "P95 > 2s" fires, the rollback runs, exit 3.
//! - `-- --fault migration`: the newest migration fails: the deploy stops,
//!   `php artisan up` undoes the maintenance mode and the rollback runs
//!   `migrate prev`, exit 3.
//! - `-- --fault latency-doubled`: the API has a realistic spread of
//!   latencies and turns twice as slow after the deploy, still below the
//!   runbook's 2 s: every fixed limit holds, and the before/after judge
//!   (`panel-latency`) says in one line that the release is slower (exit 0).
//! - `-- --dry-run`: nothing is changed: commands are shown, not run, and
//!   manual steps are skipped with what they would ask; the read-only checks
//!   run against the simulator.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use escola_runbook_checks::escola::{self, CachePurgeConfig, EscolaConfig, WatchConfig};
use escola_runbook_checks::metrics::Window;
use escola_runbook_core::report::{LineReporter, write_reports};
use escola_runbook_core::rules::AlertState;
use escola_runbook_core::{
    Confirmer, Decision, Environment, Event, Executor, Observer, PreapprovedConfirmer, RunOptions,
    RunRecord, RunbookOutline, ScriptedConfirmer, Secret, Secrets, run_directory,
};
use escola_runbook_testkit::{
    FAULT_NAMES, Faults, HostDatabase, MIGRATIONS, SimulatedHost, Simulator, SimulatorConfig,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Turns the API slow when the extended monitoring starts: the deploy
/// "went out" with a latency regression — past the runbook's limit
/// (`latency`), or twice as slow but below it (`latency-doubled`).
struct SlowAfterDeploy {
    faults: Faults,
    doubled: bool,
}

impl Observer for SlowAfterDeploy {
    fn on_event(&self, event: &Event) {
        if let Event::PhaseStarted { phase, .. } = event {
            if phase == "monitoring" {
                if self.doubled {
                    self.faults.set_latency_spread(TYPICAL_LATENCY * 2);
                    eprintln!(
                        "(example) the new release is twice as slow: P95 from about 0.23 s to 0.46 s, still below the runbook's 2 s"
                    );
                } else {
                    // Spread, not one fixed delay: users whose requests all
                    // took the same time would finish in bursts, and a 2 s
                    // probe window between two bursts would see only the
                    // fast /health requests.
                    self.faults.set_latency(Duration::from_secs(2));
                    self.faults.set_latency_spread(SLOW_SPREAD);
                    eprintln!(
                        "(example) the new release is slow: every API request now takes 2.2 to 3 s (P95 about 2.8 s)"
                    );
                }
            }
        }
    }
}

/// The run as the example shows it: a heading per phase with the runbook's
/// Portuguese title, one line per step (status, id, title, then its
/// evidence in one line), the rule that fires, and the library's lines
/// ([`LineReporter::line`]) for the run's start, end and rollback. On a
/// terminal a spinner shows each running step; piped, plain lines only.
struct ExampleView<W: Write + Send> {
    out: Mutex<W>,
    state: Mutex<ViewState>,
    /// The spinners' area on stderr, on a terminal only.
    spinners: Option<MultiProgress>,
}

#[derive(Default)]
struct ViewState {
    outline: Option<RunbookOutline>,
    heading: Option<String>,
    running: HashMap<String, ProgressBar>,
}

impl<W: Write + Send> ExampleView<W> {
    fn new(out: W, spinners: bool) -> Self {
        ExampleView {
            out: Mutex::new(out),
            state: Mutex::new(ViewState::default()),
            spinners: spinners
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    fn print(&self, line: &str) {
        if let Some(spinners) = &self.spinners {
            let _ = spinners.println(line);
        } else if let Ok(mut out) = self.out.lock() {
            // A closed pipe only loses the view.
            let _ = writeln!(out, "{line}");
        }
    }

    /// `1. Pré-Deploy`, once per phase, before its first line.
    fn heading(&self, phase: &str) -> Option<String> {
        let mut state = self.state.lock().ok()?;
        if state.heading.as_deref() == Some(phase) {
            return None;
        }
        state.heading = Some(phase.to_owned());
        let outline = state.outline.as_ref()?;
        let at = outline.phases.iter().position(|p| p.id == phase)?;
        Some(format!("\n{}. {}", at + 1, outline.phases[at].title))
    }

    fn title(&self, step: &str) -> String {
        self.state
            .lock()
            .ok()
            .and_then(|s| {
                s.outline
                    .as_ref()?
                    .phases
                    .iter()
                    .flat_map(|p| &p.steps)
                    .find(|s| s.id == step)
                    .map(|s| s.title.clone())
            })
            .unwrap_or_default()
    }
}

impl<W: Write + Send> Observer for ExampleView<W> {
    fn on_event(&self, event: &Event) {
        match event {
            Event::RunStarted { runbook, .. } => {
                if let Ok(mut state) = self.state.lock() {
                    state.outline = Some(runbook.clone());
                }
            }
            Event::PhaseStarted { phase, .. } => {
                if let Some(heading) = self.heading(phase) {
                    self.print(&heading);
                }
                return;
            }
            Event::StepStarted { step, .. } => {
                if let Some(spinners) = &self.spinners {
                    let bar = spinners.add(ProgressBar::new_spinner());
                    if let Ok(style) =
                        ProgressStyle::with_template("  {spinner} {prefix} {wide_msg} {elapsed}")
                    {
                        bar.set_style(style);
                    }
                    bar.set_prefix(step.clone());
                    bar.set_message(self.title(step));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    if let Ok(mut state) = self.state.lock() {
                        state.running.insert(step.clone(), bar);
                    }
                }
                return;
            }
            Event::StepFinished {
                phase,
                step,
                outcome,
                ..
            } => {
                let bar = self
                    .state
                    .lock()
                    .ok()
                    .and_then(|mut s| s.running.remove(step));
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                if let Some(heading) = self.heading(phase) {
                    self.print(&heading);
                }
                let summary = outcome.summary.lines().next().unwrap_or_default();
                let w = self
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.outline.as_ref().map(RunbookOutline::id_column))
                    .unwrap_or(24);
                self.print(&format!(
                    "  {:<11} {step:<w$} {} — {summary}",
                    outcome.status.label(),
                    self.title(step)
                ));
                return;
            }
            Event::UndoFinished { step, outcome, .. } => {
                self.print(&format!(
                    "  {:<11} undo {step} — {}",
                    outcome.status.label(),
                    outcome.summary
                ));
                return;
            }
            Event::RuleTransition {
                step, transition, ..
            } if transition.to == AlertState::Firing => {
                self.print(&format!(
                    "  !! {step}: {} firing ({}; {})",
                    transition.rule, transition.detail, transition.condition
                ));
                return;
            }
            _ => {}
        }
        if let Some(line) = LineReporter::<W>::line(event) {
            self.print(&line);
        }
    }
}

/// The spread added to the 2 s of `latency` (0.4× to 2.5× of it: 0.16 s
/// to 1 s).
const SLOW_SPREAD: Duration = Duration::from_millis(400);

/// The typical latency of the API with `latency-doubled`, before the deploy.
const TYPICAL_LATENCY: Duration = Duration::from_millis(120);

/// What to run: a fault (`latency`, `migration`, or a name of
/// `escola_runbook_testkit::FAULT_NAMES`) and whether it is a dry-run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The fault switched on, if any.
    pub fault: Option<String>,
    /// Show what would change instead of changing it.
    pub dry_run: bool,
    /// Spinners for the running steps (stderr is a terminal).
    pub spinners: bool,
}

impl Options {
    /// Refuses a fault the run could not show.
    pub fn check(&self) -> Result<(), String> {
        if self.dry_run && self.fault.as_deref() == Some(MIGRATION) {
            return Err(
                "`--fault migration` breaks a command, which a dry-run does not run; drop `--dry-run`"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A run and the host it deployed to (none in a dry-run).
pub struct Deployed {
    /// The run.
    pub record: RunRecord,
    /// The simulated host, for a test to inspect.
    pub host: Option<SimulatedHost>,
}

/// Runs the built-in runbook against `api` as `options` say, the simulated
/// host written into `app_dir`, the step lines written to `log`, `extra`
/// observers told every event, and the run directory under `root` holding
/// the journal and the reports.
pub async fn deploy<W: Write + Send + 'static>(
    api: &Simulator,
    options: &Options,
    root: &Path,
    app_dir: &Path,
    log: W,
    extra: Vec<Arc<dyn Observer>>,
) -> Result<Deployed, Box<dyn std::error::Error>> {
    let fault = options.fault.as_deref();
    let doubled = fault == Some(LATENCY_DOUBLED);
    let slow_after_deploy = fault == Some(LATENCY_AFTER_DEPLOY) || doubled;
    let real = !options.dry_run;
    options.check()?;
    if let Some(name) = fault.filter(|f| FAULT_NAMES.contains(f)) {
        api.faults().apply_named(name).await?;
        eprintln!("fault `{name}` switched on");
    }
    if doubled {
        api.faults().set_latency_spread(TYPICAL_LATENCY);
    }
    // The simulator's URL runs the smoke tests, and its metrics token turns
    // the metrics steps and the alert watches into checks of its /metrics:
    // the rule the CLI applies to `--set` and `--secret`.
    let mut environment = Environment::new("simulator").with("base_url", api.base_url());
    if !real {
        // Carla, the DBA, would approve restoring the snapshot (from another
        // shell); a real run here has nobody to ask, so the script answers.
        environment = environment.with("approver.carla", escola::DBA_ROLE);
    }
    let mut secrets = Secrets::new();
    secrets.insert(
        escola::METRICS_TOKEN_SECRET,
        Secret::new(api.metrics_token()),
    );
    let host = if real {
        let host = SimulatedHost::create(app_dir, api)?;
        if fault == Some(MIGRATION) {
            host.fail_migrations(true)?;
            eprintln!("fault `migration` switched on: the newest migration will fail");
        }
        eprintln!(
            "(example) simulated app host at {} (php, git and composer in its bin/ act on the simulator)",
            app_dir.display()
        );
        Some(host)
    } else {
        None
    };
    let database = host.as_ref().and_then(ScratchDatabase::create);
    if let Some(db) = &database {
        secrets.insert(escola::DATABASE_SECRET, Secret::new(db.url()));
    }
    let mut config = EscolaConfig::from_settings(app_dir.into(), &environment, &secrets);
    if let Some(host) = &host {
        config.command_env.insert(
            "PATH".into(),
            host.path_env().to_string_lossy().into_owned(),
        );
    }
    if database.is_some() {
        // Kept beside the runs, so the report's snapshot path stays true.
        config.snapshot_dir = root.join("snapshots");
        config.expected_migration = MIGRATIONS.last().map(|m| (*m).to_owned());
    }
    // The simulator also plays the HTTP cache in front of the API.
    config.cdn_purge = Some(CachePurgeConfig::new(api.base_url()));
    if let Some(metrics) = config.metrics.as_mut() {
        // The latency judge compares the first seconds after the deploy.
        metrics.judge_window = Window::Last(JUDGE_WINDOW);
    }
    if real || slow_after_deploy {
        config.watch = COMPRESSED_WATCH;
        eprintln!(
            "(example) time-compressed watch: the runbook's 5-minute alerts last {} s here, its \
             15-minute rollback window {} s, its 24-hour watch {} s; evaluations every {} s",
            COMPRESSED_WATCH.alert_for.as_secs_f64(),
            COMPRESSED_WATCH.rollback_window.as_secs_f64(),
            COMPRESSED_WATCH.duration.as_secs_f64(),
            COMPRESSED_WATCH.interval.as_secs_f64()
        );
    }
    match &database {
        Some(db) => eprintln!(
            "(example) MariaDB on {MARIADB}: scratch database `{}` (dropped at the end) for the snapshot and the migrations check",
            db.name
        ),
        None if real => eprintln!(
            "(example) no MariaDB on {MARIADB} (or no `mariadb` client): `db-snapshot` and `migrations-consistent` stay manual (skipped by the script); the rest runs for real"
        ),
        None => {}
    }
    let runbook = escola::runbook(&config)?;
    // Users keep using the API during the deploy: without their traffic the
    // baseline latency would honestly be "no data". Forty of them, so a slow
    // API still serves enough requests to judge.
    let users: Vec<_> = (0..40u64)
        .map(|user| {
            let base = api.base_url();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in user.. {
                    let path = ["/v1/escolas", "/v1/cidades", "/health"][(n % 3) as usize];
                    let _ = client.get(format!("{base}{path}")).send().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    // A fault may keep the traffic out (`down`): wait for it only so long.
    // The latency judge wants a baseline of a few hundred requests.
    let warm_up = tokio::time::timeout(TRAFFIC_WAIT, async {
        while api.requests_served() < BASELINE_TRAFFIC {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    if warm_up.await.is_err() {
        eprintln!(
            "(example) the API served {} requests to its users in {}s; going on",
            api.requests_served(),
            TRAFFIC_WAIT.as_secs()
        );
    }
    let confirmer: Arc<dyn Confirmer> = if real {
        Arc::new(scripted_confirmer(fault == Some(MIGRATION)))
    } else {
        Arc::new(PreapprovedConfirmer::new(OPERATOR))
    };
    let mut executor = Executor::new(runbook)
        .options(RunOptions {
            operator: OPERATOR.into(),
            host: "localhost".into(),
            dry_run: !real,
            ..RunOptions::default()
        })
        .environment(environment)
        .secrets(secrets)
        .confirmer(confirmer)
        .observer(Arc::new(ExampleView::new(log, options.spinners)))
        .run_root(root);
    if slow_after_deploy {
        executor = executor.observer(Arc::new(SlowAfterDeploy {
            faults: api.faults().clone(),
            doubled,
        }));
    }
    for observer in extra {
        executor = executor.observer(observer);
    }
    let record = executor.run().await;
    for user in users {
        user.abort();
    }
    drop(database);
    let record = record?;
    let dir = run_directory(root, &record.run.run_id);
    eprintln!("\nrun directory {}:", dir.display());
    let mut written = vec![dir.join("journal.jsonl")];
    written.extend(write_reports(&record, &dir)?);
    for path in written {
        let name = path.strip_prefix(&dir).unwrap_or(&path);
        eprintln!("  {}", name.display());
    }
    eprintln!("{}", verdict_line(&record));
    Ok(Deployed { record, host })
}

/// The run's verdict in one line: how it ended, its exit code and why.
fn verdict_line(record: &RunRecord) -> String {
    let verdict = record.verdict.map_or("unfinished", |v| v.label());
    let code = record
        .exit_code
        .map_or_else(|| "none".to_owned(), |c| c.to_string());
    let why = match (&record.rollback, failed_step(record)) {
        (Some(r), _) => format!(": `{}` {} — {}", r.step, r.status.label(), r.summary),
        (None, Some((step, status, summary))) => format!(": `{step}` {status} — {summary}"),
        (None, None) => String::new(),
    };
    format!("verdict: {verdict} (exit code {code}){why}")
}

/// The first step that stopped the run, when no rollback ran.
fn failed_step(record: &RunRecord) -> Option<(&str, &str, &str)> {
    record
        .steps()
        .map(|(_, s)| s)
        .filter(|s| s.outline.blocking)
        .find_map(|s| {
            let o = s.outcome.as_ref()?;
            (!o.status.is_ok())
                .then(|| (s.outline.id.as_str(), o.status.label(), o.summary.as_str()))
        })
}

/// Where the example looks for MariaDB.
const MARIADB: &str = "127.0.0.1:3306";

/// A scratch database on the local MariaDB, with the tables the runbook's
/// database steps read, the host's first migration applied; dropped when
/// this is dropped.
struct ScratchDatabase {
    name: String,
}

impl ScratchDatabase {
    /// Creates it and points `host`'s migrations at it; `None` when no
    /// MariaDB answers or the `mariadb` client is missing.
    fn create(host: &SimulatedHost) -> Option<Self> {
        let addr = MARIADB.parse().ok()?;
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // Short: a URL path of 8 characters or more is masked wherever it
        // appears, and the snapshot directory is named after the database.
        let name = format!(
            "ex{:04x}",
            (u128::from(std::process::id()) ^ stamp) & 0xffff
        );
        let first = MIGRATIONS[0];
        let sql = format!(
            "CREATE DATABASE `{name}`; USE `{name}`; \
             CREATE TABLE doctrine_migration_versions (version VARCHAR(191) PRIMARY KEY, executed_at DATETIME NULL, execution_time INT NULL); \
             INSERT INTO doctrine_migration_versions VALUES ('DoctrineMigrations\\\\{first}', NOW(), 1); \
             CREATE TABLE sync_mutations (id INT AUTO_INCREMENT PRIMARY KEY, escola_id INT NOT NULL, status VARCHAR(10) NOT NULL, created_at DATETIME NOT NULL); \
             INSERT INTO sync_mutations (escola_id, status, created_at) VALUES (1, 'done', NOW()), (2, 'pending', NOW()); \
             CREATE TABLE eventos (id INT AUTO_INCREMENT PRIMARY KEY, nome VARCHAR(80) NOT NULL, escola_id INT NOT NULL); \
             INSERT INTO eventos (nome, escola_id) VALUES ('Feira de ciências', 1);"
        );
        let db = ScratchDatabase { name };
        mariadb(&sql).ok()?;
        let (ip, port) = MARIADB.split_once(':')?;
        host.use_database(&HostDatabase {
            host: ip.into(),
            port: port.parse().ok()?,
            user: "root".into(),
            database: db.name.clone(),
        })
        .ok()?;
        Some(db)
    }

    /// The URL the database steps read from their secret.
    fn url(&self) -> String {
        format!("mysql://root@{MARIADB}/{}", self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Err(e) = mariadb(&format!("DROP DATABASE IF EXISTS `{}`", self.name)) {
            eprintln!(
                "(example) could not drop scratch database `{}`: {e}",
                self.name
            );
        }
    }
}

/// Runs `sql` with the `mariadb` client as root on [`MARIADB`].
fn mariadb(sql: &str) -> Result<(), String> {
    let (host, port) = MARIADB.split_once(':').unwrap_or((MARIADB, "3306"));
    let out = std::process::Command::new("mariadb")
        .args([
            &format!("--host={host}"),
            &format!("--port={port}"),
            "--user=root",
            "-e",
            sql,
        ])
        .output()
        .map_err(|e| format!("`mariadb` client: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Who runs the example's deploy, and answers its manual steps.
const OPERATOR: &str = "example";

/// The script that answers the manual steps of a real run, as `example`:
/// it confirms them, except where confirming would claim what did not
/// happen: the database steps when they are manual (no MariaDB), the
/// restore (no data is corrupted) and, unless a migration broke,
/// `migrate prev`.
fn scripted_confirmer(migration_broke: bool) -> ScriptedConfirmer {
    let no_database = Some("sem banco de dados no exemplo: este passo fica manual");
    let revert = if migration_broke {
        (Decision::Confirmed, Some("a migration quebrou: reverter"))
    } else {
        (Decision::Skipped, Some("as migrations não quebraram"))
    };
    ScriptedConfirmer::new(OPERATOR)
        .answer("db-snapshot", Decision::Skipped, no_database)
        .answer("migrations-consistent", Decision::Skipped, no_database)
        .answer("migrate-prev", revert.0, revert.1)
        .answer(
            "restore-snapshot",
            Decision::Skipped,
            Some("nenhum dado corrompido"),
        )
        .otherwise(Decision::Confirmed)
}

/// The faults the example itself adds: a slow release after the deploy,
/// past the limit or twice as slow below it, and a migration that fails.
const LATENCY_AFTER_DEPLOY: &str = "latency";
const LATENCY_DOUBLED: &str = "latency-doubled";
const MIGRATION: &str = "migration";

/// The faults `--fault` takes.
fn fault_names() -> Vec<&'static str> {
    let mut names = vec![LATENCY_AFTER_DEPLOY, LATENCY_DOUBLED, MIGRATION];
    names.extend(FAULT_NAMES);
    names
}

/// The runbook's watch, time-compressed so the example ends in seconds
/// (long enough that a busy machine still sees "P95 > 2s" fire inside it).
/// The probes' 2 s window lets the 503s of the maintenance mode age out
/// before an alert could hold for its 3 s.
const COMPRESSED_WATCH: WatchConfig = WatchConfig {
    interval: Duration::from_millis(500),
    duration: Duration::from_secs(15),
    rollback_window: Duration::from_secs(15),
    alert_for: Duration::from_secs(3),
    probe_window: Duration::from_secs(2),
    watch_in_dry_run: true,
    backlog_limit: None,
};

/// The window after the deploy the latency judge reads here (the runbook's
/// is 5 minutes).
const JUDGE_WINDOW: Duration = Duration::from_secs(5);

/// Requests the API serves before the run, so the baseline has enough to
/// compare with.
const BASELINE_TRAFFIC: u64 = 400;

/// How long the users' traffic may take to reach the API before the run.
const TRAFFIC_WAIT: Duration = Duration::from_secs(10);

/// `[--dry-run] [--fault NAME]`, in either order.
fn parse(args: &[String]) -> Option<Options> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dry-run" if !options.dry_run => options.dry_run = true,
            "--fault" if options.fault.is_none() => {
                let name = args
                    .next()
                    .filter(|n| fault_names().contains(&n.as_str()))?;
                options.fault = Some(name.clone());
            }
            _ => return None,
        }
    }
    Some(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        format!(
            "usage: cargo run --example deploy [-- [--dry-run] [--fault {}]]",
            fault_names().join("|")
        )
    };
    let options = parse(&args)
        .ok_or_else(usage)
        .and_then(|o| o.check().map(|()| o));
    let options = match options {
        Ok(options) => Options {
            spinners: std::io::stderr().is_terminal(),
            ..options
        },
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(escola_runbook_core::exit::USAGE);
        }
    };
    let api = Simulator::start(SimulatorConfig::default()).await?;
    eprintln!("Escola Connect API simulator at {}", api.base_url());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/escola-runbook-example");
    let app = tempfile::Builder::new().prefix("escola-app-").tempdir()?;
    let app_dir: PathBuf = app.path().into();
    let deployed = deploy(
        &api,
        &options,
        &root,
        &app_dir,
        std::io::stderr(),
        Vec::new(),
    )
    .await?;
    api.shutdown().await;
    drop(app);
    std::process::exit(
        deployed
            .record
            .exit_code
            .unwrap_or(escola_runbook_core::exit::STEP_FAILED),
    );
}
