//! "`/metrics` answers with the token": one authenticated GET, a valid
//! exposition, and the metrics the runbook reads present.

use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Need, Outcome, Status, async_trait, format_duration,
};

use super::gather::source_error;
use super::judge::{self, EndpointVerdict};
use super::params::{EndpointParams, SourceConfig, SourceKind};
use crate::metrics::parse::{Sample, names_metric};
use crate::metrics::source::SourceError;

/// "`/metrics` answers with the token": one authenticated GET, a valid
/// exposition, and the metrics the runbook reads present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsEndpointCheck {
    params: EndpointParams,
}

impl Default for MetricsEndpointCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsEndpointCheck {
    /// Scrapes `$metrics_url` (or `$base_url/metrics`) with secret
    /// `metrics_token`.
    pub fn new() -> Self {
        MetricsEndpointCheck {
            params: EndpointParams {
                source: SourceConfig::scrape(),
                require: Vec::new(),
                reject_anonymous: false,
            },
        }
    }

    pub(super) fn from_params(params: EndpointParams) -> Self {
        MetricsEndpointCheck { params }
    }

    /// Where to scrape and with which secret: a scrape [`SourceConfig`]
    /// (its kind and `every` are ignored; this check always scrapes once).
    pub fn source(mut self, source: SourceConfig) -> Self {
        self.params.source = SourceConfig {
            kind: SourceKind::Scrape,
            every: None,
            ..source
        };
        self
    }

    /// Metric families (or sample names) that must be present.
    pub fn require<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.params.require = names.into_iter().map(Into::into).collect();
        self
    }

    /// Also checks that a request *without* the token is refused (401/403);
    /// an endpoint open to anyone is a warning.
    pub fn reject_anonymous(mut self, yes: bool) -> Self {
        self.params.reject_anonymous = yes;
        self
    }
}

impl CheckConfig for EndpointParams {
    const NAME: &'static str = "metrics-endpoint";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if self.source.kind != SourceKind::Scrape {
            return Err(ParamsError::invalid(
                Self::NAME,
                "source",
                "must be `scrape`: this check reads the app's /metrics itself",
            ));
        }
        if self.source.every.is_some() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "every",
                "does not apply: this check scrapes once",
            ));
        }
        Ok(Arc::new(MetricsEndpointCheck::from_params(self)))
    }
}

#[async_trait]
impl Check for MetricsEndpointCheck {
    fn describe(&self) -> Description {
        let p = &self.params;
        let mut verifies = format!(
            "{} answers with the Bearer token from secret `{}` and a valid exposition",
            p.source.url_text(),
            p.source.token_secret
        );
        if !p.require.is_empty() {
            verifies.push_str(&format!(" containing {}", p.require.join(", ")));
        }
        Description::read_only("metrics-endpoint", verifies)
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let target = match p.source.resolve_url(ctx) {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let url = crate::http::display_url(ctx, &target);
        let secret_name = &p.source.token_secret;
        let Some(token) = ctx.secret(secret_name).cloned() else {
            return Outcome::missing(Need::secret(
                secret_name,
                format!("the Bearer token for {url}"),
            ))
            .with_evidence("url", url);
        };
        let source = p.source.scraper(target.clone()).token(token);
        let mut found = vec![false; p.require.len()];
        let mut seen = |sample: &Sample<'_>| {
            for (found, name) in found.iter_mut().zip(&p.require) {
                *found = *found || names_metric(sample.name, name);
            }
        };
        let scraped = tokio::select! {
            r = source.scrape(&mut seen) => r,
            _ = ctx.cancellation().cancelled() => return Outcome::aborted("stopped while scraping").with_evidence("url", url),
        };
        let scrape = match scraped {
            Ok(s) => s,
            Err(SourceError::Status { status, body, .. }) => {
                let body = ctx.redactor().redact(&body).into_owned();
                let why = match status {
                    401 => "the token was not accepted",
                    403 => "the token may not read metrics",
                    _ => "not a success status",
                };
                return Outcome::failed(format!(
                    "{url} answered HTTP {status} with the token ({why}); expected 2xx"
                ))
                .with_evidence("url", url)
                .with_evidence("status", status.to_string())
                .with_evidence("body", body)
                .with_evidence("token", format!("sent from secret `{secret_name}`"));
            }
            Err(SourceError::Parse { format, error, .. }) => {
                let text = ctx.redactor().redact(&error.to_string()).into_owned();
                return Outcome::check_error(format!(
                    "{url} answered, but the body is not a valid exposition ({format}), so nothing can be read from it: {text}"
                ))
                .with_evidence("url", url)
                .with_evidence("format", format)
                .with_evidence("token", format!("sent from secret `{secret_name}`"));
            }
            Err(e) => return source_error(ctx, &e).with_evidence("url", url),
        };
        let base = |o: Outcome| {
            o.with_evidence("url", url.clone())
                .with_evidence("status", scrape.status.to_string())
                .with_evidence(
                    "content type",
                    scrape
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "(none)".into()),
                )
                .with_evidence("format", scrape.format.name())
                .with_evidence("bytes", scrape.shape.bytes.to_string())
                .with_evidence("duration", format_duration(scrape.elapsed))
                .with_evidence("token", format!("sent from secret `{secret_name}`"))
                .with_measurement("scrape_duration", scrape.elapsed.as_secs_f64(), Some("s"))
        };
        let (families, samples) = (scrape.shape.families, scrape.shape.samples);
        let found_text = format!(
            "{samples} samples in {families} families, {}",
            scrape.format.name()
        );
        let mut outcome = match judge::endpoint(&p.require, &found, samples) {
            EndpointVerdict::Missing(missing) => Outcome::failed(format!(
                "{url} answered HTTP {} with the token, but {} missing ({found_text})",
                scrape.status,
                match missing.as_slice() {
                    [one] => format!("`{one}` is"),
                    many => format!(
                        "{} are",
                        many.iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            ))
            .with_evidence("missing", missing.join(", ")),
            EndpointVerdict::Empty => Outcome::failed(format!(
                "{url} answered HTTP {} with the token, but with no samples; expected at least one",
                scrape.status
            )),
            EndpointVerdict::Healthy => Outcome::passed(format!(
                "{url} answered HTTP {} with the token in {} ({found_text})",
                scrape.status,
                format_duration(scrape.elapsed)
            )),
        };
        outcome = base(outcome)
            .with_evidence("families", families.to_string())
            .with_evidence("samples", samples.to_string());
        if !p.require.is_empty() {
            outcome = outcome.with_evidence("required", p.require.join(", "));
        }
        if p.reject_anonymous && outcome.status == Status::Passed {
            let anonymous = p.source.scraper(target);
            match anonymous.scrape(&mut |_| {}).await {
                Err(SourceError::Status { status, .. }) if status == 401 || status == 403 => {
                    outcome = outcome.with_evidence(
                        "without token",
                        format!("refused with HTTP {status}, as it should be"),
                    );
                }
                Ok(s) => {
                    outcome.status = Status::Warned;
                    outcome.summary = format!(
                        "{} — but it also answered HTTP {} WITHOUT a token: the metrics are public",
                        outcome.summary, s.status
                    );
                    outcome = outcome
                        .with_evidence("without token", format!("answered HTTP {}", s.status));
                }
                Err(e) => {
                    let text = ctx.redactor().redact(&e.to_string()).into_owned();
                    outcome = outcome.with_evidence("without token", text);
                }
            }
        }
        outcome
    }
}
