//! `cargo run --example deploy`: the team's whole runbook, end to end, with
//! no setup, as a dry-run: commands that would change a server are shown,
//! not run, and manual steps are listed as skipped with what they would ask
//! (nobody is asked). Read-only steps run for real against the in-process
//! API simulator of `escola-runbook-testkit` (127.0.0.1, ephemeral port),
//! under simulated user traffic: the metrics baseline and endpoint, the
//! smoke tests and the alert rules (each evaluated once). The journal, the
//! three reports and the plots land in `target/escola-runbook-example/`.
//!
//! - `-- --fault latency`: the API turns slow (2.5 s per request) right
//!   after the deploy. The alert watches run for real, time-compressed (said
//!   on screen): "P95 > 2s" fires, the rollback phase is rehearsed, exit 3,
//!   and the report holds the latency chart.
//! - `-- --fault latency-doubled`: the API has a realistic spread of
//!   latencies (P95 about 0.23 s) and turns twice as slow after the deploy,
//!   still far below the runbook's 2 s: every fixed limit holds, and the
//!   before/after judge (`panel-latency`) says in one line that the release
//!   is slower than before.
//! - `-- --fault errors` (or another name of
//!   `escola_runbook_testkit::FAULT_NAMES`): the API is broken from the
//!   start. With `errors`, `slow`, `no-trace-id`, `ignore-if-match` or
//!   `rate-limit` the smoke tests fail and the rollback phase is rehearsed
//!   (exit 3); `down` and `wrong-metrics-auth` stop the run at the metrics
//!   baseline (exit 1).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_checks::escola::{self, EscolaConfig, WatchConfig};
use escola_runbook_checks::metrics::Window;
use escola_runbook_core::report::{LineReporter, write_reports};
use escola_runbook_core::{
    Environment, Event, Executor, Observer, PreapprovedConfirmer, RunOptions, RunRecord, Secret,
    Secrets, run_directory,
};
use escola_runbook_testkit::{FAULT_NAMES, Faults, Simulator, SimulatorConfig};

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
                    self.faults.set_latency(Duration::from_millis(2500));
                    eprintln!("(example) the new release is slow: every request now takes 2.5 s");
                }
            }
        }
    }
}

/// The typical latency of the API with `latency-doubled`, before the deploy.
const TYPICAL_LATENCY: Duration = Duration::from_millis(120);

/// Runs the built-in runbook as a dry-run against `api`, with `fault`
/// (`latency`, or a name of `escola_runbook_testkit::FAULT_NAMES`) switched
/// on, the step lines written to `log`, and the run directory under `root`
/// holding the journal and the reports.
pub async fn deploy<W: Write + Send + 'static>(
    api: &Simulator,
    fault: Option<&str>,
    root: &Path,
    log: W,
) -> Result<RunRecord, Box<dyn std::error::Error>> {
    let doubled = fault == Some(LATENCY_DOUBLED);
    let slow_after_deploy = fault == Some(LATENCY_AFTER_DEPLOY) || doubled;
    if let Some(name) = fault.filter(|_| !slow_after_deploy) {
        api.faults().apply_named(name).await?;
        eprintln!("fault `{name}` switched on");
    }
    if doubled {
        api.faults().set_latency_spread(TYPICAL_LATENCY);
    }
    // The simulator's URL runs the smoke tests, and its metrics token turns
    // the metrics steps and the alert watches into checks of its /metrics:
    // the rule the CLI applies to `--set` and `--secret`.
    // Carla, the DBA, approves restoring the snapshot if a rollback needs it.
    let environment = Environment::new("simulator")
        .with("base_url", api.base_url())
        .with("approver.carla", escola::DBA_ROLE);
    let mut secrets = Secrets::new();
    secrets.insert(
        escola::METRICS_TOKEN_SECRET,
        Secret::new(api.metrics_token()),
    );
    let mut config = EscolaConfig::from_settings(".".into(), &environment, &secrets);
    if let Some(metrics) = config.metrics.as_mut() {
        // The latency judge compares the first seconds after the deploy.
        metrics.judge_window = Window::Last(JUDGE_WINDOW);
    }
    if slow_after_deploy {
        config.watch = WatchConfig {
            interval: Duration::from_millis(500),
            duration: Duration::from_secs(60),
            rollback_window: Duration::from_secs(45),
            alert_for: Duration::from_secs(3),
            probe_window: Duration::from_secs(4),
            watch_in_dry_run: true,
            ..config.watch
        };
        eprintln!(
            "(example) time-compressed watch: the runbook's 5-minute alerts last 3 s here, its \
             15-minute rollback window 45 s, its 24-hour watch 60 s; evaluations every 0.5 s"
        );
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
    let mut executor = Executor::new(runbook)
        .options(RunOptions {
            operator: "example".into(),
            host: "localhost".into(),
            dry_run: true,
            ..RunOptions::default()
        })
        .environment(environment)
        .secrets(secrets)
        .confirmer(Arc::new(PreapprovedConfirmer::new("example")))
        .observer(Arc::new(LineReporter::new(log)))
        .run_root(root);
    if slow_after_deploy {
        executor = executor.observer(Arc::new(SlowAfterDeploy {
            faults: api.faults().clone(),
            doubled,
        }));
    }
    let record = executor.run().await;
    for user in users {
        user.abort();
    }
    let record = record?;
    let dir = run_directory(root, &record.run.run_id);
    for path in write_reports(&record, &dir)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(record)
}

/// The faults the example itself adds: a slow release after the deploy,
/// past the limit or twice as slow below it.
const LATENCY_AFTER_DEPLOY: &str = "latency";
const LATENCY_DOUBLED: &str = "latency-doubled";

/// The window after the deploy the latency judge reads here (the runbook's
/// is 5 minutes).
const JUDGE_WINDOW: Duration = Duration::from_secs(5);

/// Requests the API serves before the run, so the baseline has enough to
/// compare with.
const BASELINE_TRAFFIC: u64 = 400;

/// How long the users' traffic may take to reach the API before the run.
const TRAFFIC_WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fault = match args.as_slice() {
        [] => None,
        [flag, name]
            if flag == "--fault"
                && (name == LATENCY_AFTER_DEPLOY
                    || name == LATENCY_DOUBLED
                    || FAULT_NAMES.contains(&name.as_str())) =>
        {
            Some(name.as_str())
        }
        _ => {
            eprintln!(
                "usage: cargo run --example deploy [-- --fault {LATENCY_AFTER_DEPLOY}|{LATENCY_DOUBLED}|{}]",
                FAULT_NAMES.join("|")
            );
            std::process::exit(escola_runbook_core::exit::USAGE);
        }
    };
    let api = Simulator::start(SimulatorConfig::default()).await?;
    eprintln!("Escola Connect API simulator at {}", api.base_url());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/escola-runbook-example");
    let record = deploy(&api, fault, &root, std::io::stderr()).await?;
    api.shutdown().await;
    std::process::exit(
        record
            .exit_code
            .unwrap_or(escola_runbook_core::exit::STEP_FAILED),
    );
}
