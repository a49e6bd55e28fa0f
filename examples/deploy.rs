//! `cargo run --example deploy`: the team's whole runbook, end to end, with
//! no setup. Manual steps are confirmed as "example"; commands that would
//! change a server are shown, not run (a dry-run), and the journal, the
//! three reports and the plots land in `target/escola-runbook-example/`.
//! Read-only steps run for real against the in-process API simulator of
//! `escola-runbook-testkit` (127.0.0.1, ephemeral port), under simulated
//! user traffic: the smoke tests, the metrics baseline and endpoint, and the
//! alert watches.
//!
//! - `-- --fault latency`: the API turns slow (2.5 s per request) right
//!   after the deploy. The alert watches run for real, time-compressed (said
//!   on screen): "P95 > 2s" fires, the rollback phase runs, exit 3, and the
//!   report holds the latency chart.
//! - `-- --fault errors` (or another name of
//!   `escola_runbook_testkit::FAULT_NAMES`): the API is broken from the
//!   start, so the smoke tests fail and the rollback phase runs.

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_checks::escola::{self, EscolaConfig, MetricsConfig, WatchConfig};
use escola_runbook_core::report::{LineReporter, write_reports};
use escola_runbook_core::{
    Environment, Event, Executor, Observer, PreapprovedConfirmer, RunOptions, Secret, Secrets,
    run_directory,
};
use escola_runbook_testkit::{Faults, Simulator, SimulatorConfig};

/// Turns the API slow when the extended monitoring starts: the deploy
/// "went out" with a latency regression.
struct SlowAfterDeploy(Faults);

impl Observer for SlowAfterDeploy {
    fn on_event(&self, event: &Event) {
        if let Event::PhaseStarted { phase, .. } = event {
            if phase == "monitoring" {
                self.0.set_latency(Duration::from_millis(2500));
                eprintln!("(example) the new release is slow: every request now takes 2.5 s");
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = Simulator::start(SimulatorConfig::default()).await?;
    eprintln!("Escola Connect API simulator at {}", api.base_url());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let slow_after_deploy = match args.as_slice() {
        [] => false,
        [flag, name] if flag == "--fault" && name == "latency" => true,
        [flag, name] if flag == "--fault" => {
            api.faults().apply_named(name).await?;
            eprintln!("fault `{name}` switched on");
            false
        }
        _ => {
            eprintln!(
                "usage: cargo run --example deploy [-- --fault latency|{}]",
                escola_runbook_testkit::FAULT_NAMES.join("|")
            );
            std::process::exit(escola_runbook_core::exit::USAGE);
        }
    };
    let mut config = EscolaConfig {
        // The metrics steps and the alert watches read the simulator's /metrics.
        metrics: Some(MetricsConfig::default()),
        ..EscolaConfig::default()
    };
    if slow_after_deploy {
        config.watch = WatchConfig {
            interval: Duration::from_millis(500),
            duration: Duration::from_secs(60),
            rollback_window: Duration::from_secs(45),
            alert_for: Duration::from_secs(3),
            probe_window: Duration::from_secs(4),
            watch_in_dry_run: true,
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
    while api.requests_served() < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new(api.metrics_token()));
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/escola-runbook-example");
    let mut executor = Executor::new(runbook)
        .options(RunOptions {
            operator: "example".into(),
            host: "localhost".into(),
            dry_run: true,
            ..RunOptions::default()
        })
        .environment(Environment::new("simulator").with("base_url", api.base_url()))
        .secrets(secrets)
        .confirmer(Arc::new(PreapprovedConfirmer::new("example")))
        .observer(Arc::new(LineReporter::new(std::io::stderr())))
        .run_root(&root);
    if slow_after_deploy {
        executor = executor.observer(Arc::new(SlowAfterDeploy(api.faults().clone())));
    }
    let record = executor.run().await?;
    let dir = run_directory(&root, &record.run.run_id);
    for path in write_reports(&record, &dir)? {
        eprintln!("wrote {}", path.display());
    }
    for user in users {
        user.abort();
    }
    api.shutdown().await;
    std::process::exit(record.exit_code.unwrap_or(1));
}
