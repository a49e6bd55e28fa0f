//! `cargo run --example deploy`: the team's whole runbook, end to end, with
//! no setup. Manual steps are confirmed as "example"; commands that would
//! change a server are shown, not run (a dry-run), and the journal and the
//! three reports land in `target/escola-runbook-example/`. The smoke tests
//! run for real against the in-process API simulator of
//! `escola-runbook-testkit` (127.0.0.1, ephemeral port); `-- --fault errors`
//! (or another name of `escola_runbook_testkit::FAULT_NAMES`) breaks it
//! first, so the smoke tests fail and the rollback phase runs.

use std::sync::Arc;

use escola_runbook_checks::escola::{self, EscolaConfig};
use escola_runbook_core::report::{LineReporter, write_reports};
use escola_runbook_core::{Environment, Executor, PreapprovedConfirmer, RunOptions, run_directory};
use escola_runbook_testkit::{Simulator, SimulatorConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runbook = escola::runbook(&EscolaConfig::default())?;
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
        .confirmer(Arc::new(PreapprovedConfirmer::new("example")))
        .observer(Arc::new(LineReporter::new(std::io::stderr())))
        .run_root(&root)
        .run()
        .await?;
    let dir = run_directory(&root, &record.run.run_id);
    for path in write_reports(&record, &dir)? {
        eprintln!("wrote {}", path.display());
    }
    api.shutdown().await;
    std::process::exit(record.exit_code.unwrap_or(1));
}
