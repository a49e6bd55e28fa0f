//! A team's own check plugin, registered in the catalog next to the
//! built-in checks, and named in a TOML runbook like a built-in one. Run it
//! with `cargo run --example custom_check`.
//!
//! The plugin checks that a release tag exists in a list the team keeps; it
//! only reads, so it also runs in a dry-run. Its parameters are one struct:
//! the runbook file, a Markdown binding (`<!-- check: release-tagged
//! tag=v2.4.0 released=v2.3.1,v2.4.0 -->`) and `check --list`-style docs all
//! read them from it. The output is the Markdown record, the same the CLI
//! writes to `report.md`.

use std::sync::Arc;

use escola_runbook_core::catalog::{Catalog, CheckConfig, ParamsError};
use escola_runbook_core::formats::runbook_file;
use escola_runbook_core::report::{LineReporter, render_markdown};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Executor, Outcome, PreapprovedConfirmer, RunOptions,
    RunRecord, async_trait,
};
use serde::{Deserialize, Serialize};

/// Passes when the release's tag is among the released tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTagged {
    /// The tag the deploy ships (`v2.4.0`).
    pub tag: String,
    /// The tags released so far, oldest first.
    #[serde(default)]
    pub released: Vec<String>,
}

impl CheckConfig for ReleaseTagged {
    const NAME: &'static str = "release-tagged";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if self.tag.trim().is_empty() {
            return Err(ParamsError::invalid(Self::NAME, "tag", "must name a tag"));
        }
        Ok(Arc::new(self))
    }
}

#[async_trait]
impl Check for ReleaseTagged {
    fn describe(&self) -> Description {
        Description::read_only(Self::NAME, format!("release {} is tagged", self.tag))
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

    // Exported runbooks write the struct back, so they load again.
    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(self).ok()
    }
}

/// The built-in checks and the team's own, in one catalog.
pub fn catalog() -> Catalog {
    let mut catalog = escola_runbook_checks::catalog();
    catalog.register::<ReleaseTagged>();
    catalog
}

/// The team's runbook: its own check and a built-in one, named alike.
pub const RUNBOOK: &str = r#"
name = "Release 2.4.0"

[metadata]
contacts = [{ role = "Dev on-call", handle = "@dev-escola" }]

[[phases]]
id = "pre-deploy"
title = "Pré-Deploy"

[[phases.steps]]
id = "release-tagged"
title = "Release tag exists"
check = "release-tagged"
params = { tag = "v2.4.0", released = ["v2.3.1", "v2.4.0"] }

[[phases.steps]]
id = "window"
title = "Sincronizar janela com Infra + Produto"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
id = "uname"
title = "Record the host's kernel"
check = "command"
params = { program = "uname", args = ["-sr"], read_only = true }
"#;

/// Loads `text` through the team's catalog and runs it, progress lines to
/// `progress`; manual steps are pre-approved (as with `run --yes`).
pub async fn run(
    text: &str,
    progress: impl std::io::Write + Send + 'static,
) -> Result<RunRecord, Box<dyn std::error::Error>> {
    let loaded = runbook_file::load_str(text, "release.toml", &catalog())?;
    let record = Executor::new(loaded.runbook)
        .options(RunOptions {
            operator: "example".into(),
            ..RunOptions::default()
        })
        .confirmer(Arc::new(PreapprovedConfirmer::new("example")))
        .observer(Arc::new(LineReporter::new(progress)))
        .run()
        .await?;
    Ok(record)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let record = run(RUNBOOK, std::io::stderr()).await?;
    println!("{}", render_markdown(&record));
    std::process::exit(record.exit_code.unwrap_or(1));
}
