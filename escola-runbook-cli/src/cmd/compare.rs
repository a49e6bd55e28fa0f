//! `escola-runbook compare`: after against before, series by series, with a
//! verdict a person can act on.

use std::path::PathBuf;

use escola_runbook_checks::metrics::compare::{self, Thresholds};
use escola_runbook_checks::metrics::compute::StatusMatcher;
use escola_runbook_checks::metrics::{MetricsData, MetricsQuery, MetricsSource, ScrapeSource};
use escola_runbook_core::{Redactor, Secret, exit};

use super::metrics::{bearer_token, is_http_url};
use crate::cli::{CompareArgs, PlanFormat};
use crate::error::CliError;

pub async fn run(args: CompareArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let token = bearer_token(&args.token, redactor)?;
    let errors = StatusMatcher::new(&args.series.errors)?;
    let thresholds = Thresholds {
        alpha: args.alpha,
        min_effect: args.min_effect,
        min_error_change: args.min_error_change,
        min_requests: args.min_requests,
    };
    thresholds.validate()?;
    let query = MetricsQuery {
        histogram: Some(args.series.histogram.clone()),
        counter: Some(args.series.counter.clone()),
        by: Some(args.by.clone().unwrap_or_default()),
        status_label: args.series.status_label.clone(),
        ..MetricsQuery::default()
    };
    let read = |flag: &'static str, place: String| Scrape {
        flag,
        place,
        token: token.clone(),
        args: &args,
    };
    let before = read("--before", args.before.clone()).data(&query).await?;
    let after = read("--after", args.after.clone()).data(&query).await?;
    let comparison = compare::compare(
        &before,
        &after,
        &errors,
        &args.series.status_label,
        &thresholds,
    );
    match args.format {
        PlanFormat::Text => print!("{}", redactor.redact(&comparison.render_text())),
        PlanFormat::Json => {
            let mut json = serde_json::to_value(&comparison).map_err(CliError::render("JSON"))?;
            redactor.redact_json(&mut json);
            let text = serde_json::to_string_pretty(&json).map_err(CliError::render("JSON"))?;
            println!("{text}");
        }
    }
    // Nothing compared is no verdict: a pipeline must not read it as "no
    // regression".
    if comparison.latency.is_empty() && comparison.errors.is_empty() {
        eprintln!(
            "error: neither scrape has series of `{}` and `{}` on both sides, so nothing was judged; if the app names them otherwise, give --histogram NAME and --counter NAME",
            args.series.histogram, args.series.counter
        );
        return Ok(exit::STEP_FAILED);
    }
    Ok(if comparison.regressed() {
        exit::STEP_FAILED
    } else {
        exit::SUCCESS
    })
}

/// One side of the comparison: a saved page or a URL.
struct Scrape<'a> {
    flag: &'static str,
    place: String,
    token: Option<Secret>,
    args: &'a CompareArgs,
}

impl Scrape<'_> {
    async fn data(self, query: &MetricsQuery) -> Result<MetricsData, CliError> {
        if is_http_url(&self.place) {
            let mut source = ScrapeSource::new(&self.place)
                .timeout(self.args.timeout)
                .max_body(self.args.max_body);
            if let Some(t) = self.token {
                source = source.token(t);
            }
            return Ok(source.fetch(query).await?);
        }
        let path = PathBuf::from(&self.place);
        let text = std::fs::read_to_string(&path).map_err(|source| CliError::ReadFlagFile {
            flag: self.flag,
            path: path.clone(),
            source,
        })?;
        compare::saved_scrape(&text, query).map_err(|source| CliError::SavedScrape {
            flag: self.flag,
            path,
            source,
        })
    }
}
