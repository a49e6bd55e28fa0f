//! A team's own check plugin, next to built-in steps, in a runbook of a few
//! lines. Run it with `cargo run --example custom_check`.
//!
//! The plugin checks that a release tag exists in a list the team keeps; it
//! only reads, so it also runs in a dry-run. The output is the Markdown
//! record, the same the CLI writes to `report.md`.

use std::sync::Arc;

use escola_runbook_checks::command::CommandCheck;
use escola_runbook_core::report::{LineReporter, render_markdown};
use escola_runbook_core::{
    Check, Ctx, Description, Executor, Outcome, Phase, PreapprovedConfirmer, RunOptions, Runbook,
    Step, async_trait,
};

/// Passes when `tag` is among the released tags.
struct ReleaseTagged {
    tag: String,
    released: Vec<String>,
}

#[async_trait]
impl Check for ReleaseTagged {
    fn describe(&self) -> Description {
        Description::read_only("release-tagged", format!("release {} is tagged", self.tag))
    }

    async fn run(&self, _ctx: &Ctx) -> Outcome {
        let latest = self
            .released
            .last()
            .cloned()
            .unwrap_or_else(|| "none".into());
        let outcome = if self.released.contains(&self.tag) {
            Outcome::passed(format!("tag {} exists", self.tag))
        } else {
            Outcome::failed(format!(
                "tag {} not found; latest tag is {latest}",
                self.tag
            ))
        };
        outcome
            .with_evidence("expected tag", self.tag.clone())
            .with_evidence("latest tag", latest)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runbook = Runbook::builder("Release 2.4.0")
        .contact("Dev on-call", "@dev-escola")
        .phase(
            Phase::new("pre-deploy", "Pré-Deploy")
                .step(Step::check(
                    "release-tagged",
                    "Release tag exists",
                    ReleaseTagged {
                        tag: "v2.4.0".into(),
                        released: vec!["v2.3.1".into(), "v2.4.0".into()],
                    },
                ))
                .step(Step::manual(
                    "window",
                    "Sincronizar janela com Infra + Produto",
                )),
        )
        .phase(Phase::new("deploy", "Deploy").step(Step::check(
            "uname",
            "Record the host's kernel",
            CommandCheck::exec("uname", ["-sr"]).read_only(),
        )))
        .build()?;

    let record = Executor::new(runbook)
        .options(RunOptions {
            operator: "example".into(),
            ..RunOptions::default()
        })
        .confirmer(Arc::new(PreapprovedConfirmer::new("example")))
        .observer(Arc::new(LineReporter::new(std::io::stderr())))
        .run()
        .await?;
    println!("{}", render_markdown(&record));
    std::process::exit(record.exit_code.unwrap_or(1));
}
