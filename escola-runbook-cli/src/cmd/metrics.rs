//! `escola-runbook metrics`: P50/P95/P99 per histogram series and the error
//! ratio, from one scrape, two scrapes an interval apart, or Prometheus.

use escola_runbook_checks::metrics::compute::StatusMatcher;
use escola_runbook_checks::metrics::{
    MetricsQuery, MetricsSource, PrometheusSource, ScrapeSource, SummaryRequest, Window, summarize,
};
use escola_runbook_core::{Redactor, Secret, exit};

use crate::cli::{MetricsArgs, PlanFormat, TokenArgs};
use crate::error::CliError;

pub async fn run(args: MetricsArgs, redactor: &Redactor) -> Result<i32, CliError> {
    let token = bearer_token(&args.token, redactor)?;
    let timeout = args.timeout;
    let window = args.interval.map_or(Window::Cumulative, Window::Last);
    let every = args.every;
    let errors = StatusMatcher::new(&args.series.errors)?;
    let source: Box<dyn MetricsSource> = if args.prometheus {
        let mut s = PrometheusSource::new(&args.url)
            .timeout(timeout)
            .max_body(args.max_body);
        if let Some(t) = token {
            s = s.token(t);
        }
        Box::new(s)
    } else {
        let mut s = ScrapeSource::new(&args.url)
            .timeout(timeout)
            .max_body(args.max_body);
        if let Some(t) = token {
            s = s.token(t);
        }
        if let Some(step) = every {
            s = s.every(step);
        }
        Box::new(s)
    };
    let (histogram, counter) = (args.series.histogram, args.series.counter);
    let request = SummaryRequest {
        query: MetricsQuery {
            histogram: Some(histogram.clone()),
            counter: Some(counter.clone()),
            by: args.by,
            status_label: args.series.status_label,
            window,
        },
        errors,
    };
    // A URL that cannot be parsed is bad input, not a failed read.
    if !is_http_url(&args.url) {
        return Err(CliError::NotHttpUrl(args.url));
    }
    let summary = tokio::select! {
        s = summarize(source.as_ref(), &request) => s,
        _ = tokio::signal::ctrl_c() => return Ok(exit::STOPPED),
    }?;
    match args.format {
        PlanFormat::Text => print!("{}", redactor.redact(&summary.render_text())),
        PlanFormat::Json => {
            let mut json = summary.to_json();
            redactor.redact_json(&mut json);
            let text = serde_json::to_string_pretty(&json).map_err(CliError::render("JSON"))?;
            println!("{text}");
        }
    }
    // A family named otherwise in this app reads as "no data", not as a
    // healthy zero: say which flag names it.
    if summary.series.is_empty() {
        eprintln!(
            "note: the source has no `{histogram}` histogram; if the app names its request histogram otherwise, give --histogram NAME (without _bucket)"
        );
    }
    if summary.counter_series == 0 {
        eprintln!(
            "note: the source has no `{counter}` series, so no error ratio; if the app names its request counter otherwise, give --counter NAME (a histogram's NAME_count counts its requests too)"
        );
    }
    Ok(exit::SUCCESS)
}

/// The Bearer token `args` name, registered with `redactor` so no output
/// shows it.
pub fn bearer_token(args: &TokenArgs, redactor: &Redactor) -> Result<Option<Secret>, CliError> {
    let token = match (&args.token_env, &args.token_file) {
        (Some(var), _) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => return Err(CliError::TokenEnvUnset(var.clone())),
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim_end_matches(['\n', '\r']).is_empty() => {
                Some(v.trim_end_matches(['\n', '\r']).to_owned())
            }
            Ok(_) => return Err(CliError::TokenFileEmpty(path.clone())),
            Err(source) => {
                return Err(CliError::ReadFlagFile {
                    flag: "--token-file",
                    path: path.clone(),
                    source,
                });
            }
        },
        (None, None) => None,
    };
    Ok(token.map(|v| {
        redactor.register("token", &v);
        Secret::new(v)
    }))
}

/// `text` is an http(s) URL with something after the scheme.
pub fn is_http_url(text: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        text.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}
