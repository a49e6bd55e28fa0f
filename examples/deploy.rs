//! `cargo run --example deploy`: the team's whole runbook, end to end, with
//! no setup. Manual steps are confirmed as "example"; commands that would
//! change a server are shown, not run (a dry-run), and the journal and the
//! three reports land in `target/escola-runbook-example/`.

use std::sync::Arc;

use escola_runbook_checks::escola::{self, EscolaConfig};
use escola_runbook_core::report::{LineReporter, write_reports};
use escola_runbook_core::{Executor, PreapprovedConfirmer, RunOptions, run_directory};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runbook = escola::runbook(&EscolaConfig::default())?;
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/escola-runbook-example");
    let record = Executor::new(runbook)
        .options(RunOptions {
            operator: "example".into(),
            host: "localhost".into(),
            dry_run: true,
            ..RunOptions::default()
        })
        .confirmer(Arc::new(PreapprovedConfirmer::new("example")))
        .observer(Arc::new(LineReporter::new(std::io::stderr())))
        .run_root(&root)
        .run()
        .await?;
    let dir = run_directory(&root, &record.run.run_id);
    for path in write_reports(&record, &dir)? {
        eprintln!("wrote {}", path.display());
    }
    std::process::exit(record.exit_code.unwrap_or(1));
}
