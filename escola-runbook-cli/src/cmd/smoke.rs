//! `escola-runbook smoke`: run a smoke suite against a base URL and print
//! the report. Exit 0 only when every assertion passed; 1 when one failed,
//! was not evaluated, or the target did not answer; 2 on bad input (nothing
//! was sent).

use escola_runbook_checks::smoke::{self, SmokeOptions};
use escola_runbook_core::{Redactor, Status, exit};

use crate::cli::{SmokeArgs, SmokeFormat};
use crate::error::CliError;

pub async fn run(args: SmokeArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let mut suite = smoke::load_suite(args.suite.as_deref(), args.collection.as_deref())?;
    if let Some(path) = &args.environment {
        for v in smoke::postman::load_environment(path).map_err(smoke::LoadError::from)? {
            if v.secret {
                redactor.register(&v.key, &v.value);
            }
            suite.variables.insert(v.key, v.value);
        }
    }
    // Secrets are read exactly as `run` reads them (and registered with the
    // redactor that masks every output).
    let secrets = super::secrets(&args.secrets, redactor)?;
    let mut options = SmokeOptions {
        base_url: Some(args.base_url.clone()),
        timeout: args.timeout,
        secrets,
        concurrency: usize::from(args.concurrency),
        redactor: redactor.clone(),
        ..SmokeOptions::default()
    };
    for pair in &args.vars {
        options.vars.insert(pair.key.clone(), pair.value.clone());
    }
    let report = tokio::select! {
        r = smoke::run_suite(&suite, &options) => r?,
        _ = tokio::signal::ctrl_c() => return Ok(exit::STOPPED),
    };
    let text = match args.format {
        SmokeFormat::Text => report.render_text(),
        SmokeFormat::Json => report
            .render_json()
            .map_err(CliError::render("the report as JSON"))?,
        SmokeFormat::Junit => report
            .render_junit()
            .map_err(CliError::render("the report as JUnit"))?,
    };
    print!("{}", redactor.redact(&text));
    Ok(if report.status == Status::Passed {
        exit::SUCCESS
    } else {
        exit::STEP_FAILED
    })
}
