//! `cargo run --example deploy`: the team's whole runbook, end to end, with
//! no setup. Manual steps are confirmed as "example"; commands that would
//! change a server are shown, not run (a dry-run), and the journal and the
//! three reports land in `target/escola-runbook-example/`. The smoke tests
//! run for real against the in-process API simulator of
//! `escola-runbook-testkit` (127.0.0.1, ephemeral port); `-- --fault errors`
//! (or another name of `escola_runbook_testkit::FAULT_NAMES`) breaks it
//! first, so the smoke tests fail and the rollback phase runs.

use std::sync::Arc;

use escola_runbook_checks::escola::{self, EscolaConfig, MetricsConfig};
use escola_runbook_core::report::{LineReporter, write_reports};
use escola_runbook_core::{
    Environment, Executor, PreapprovedConfirmer, RunOptions, Secret, Secrets, run_directory,
};
use escola_runbook_testkit::{Simulator, SimulatorConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The metrics steps and the alert watches read the simulator's /metrics.
    let runbook = escola::runbook(&EscolaConfig {
        metrics: Some(MetricsConfig::default()),
        ..EscolaConfig::default()
    })?;
    let api = Simulator::start(SimulatorConfig::default()).await?;
    eprintln!("Escola Connect API simulator at {}", api.base_url());
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, name] if flag == "--fault" => {
            api.faults().apply_named(name).await?;
            eprintln!("fault `{name}` switched on");
        }
        _ => {
            eprintln!(
                "usage: cargo run --example deploy [-- --fault {}]",
                escola_runbook_testkit::FAULT_NAMES.join("|")
            );
            std::process::exit(escola_runbook_core::exit::USAGE);
        }
    }
    // Users keep using the API during the deploy: without their traffic the
    // baseline latency would honestly be "no data".
    let users = {
        let base = api.base_url();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0u64.. {
                let path = ["/v1/escolas", "/v1/cidades", "/health"][(n % 3) as usize];
                let _ = client.get(format!("{base}{path}")).send().await;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    while api.requests_served() < 60 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new(api.metrics_token()));
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/escola-runbook-example");
    let record = Executor::new(runbook)
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
        .run_root(&root)
        .run()
        .await?;
    let dir = run_directory(&root, &record.run.run_id);
    for path in write_reports(&record, &dir)? {
        eprintln!("wrote {}", path.display());
    }
    users.abort();
    api.shutdown().await;
    std::process::exit(record.exit_code.unwrap_or(1));
}
