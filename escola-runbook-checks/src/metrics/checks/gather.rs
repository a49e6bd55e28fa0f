//! Reading the numbers: a [`SourceConfig`] resolved against the run's
//! environment and secrets, and one read turned into data or into the
//! outcome that says why there is none.

use escola_runbook_core::{Ctx, Need, Outcome, Secret, format_duration};

use super::params::{SourceConfig, SourceKind};
use crate::metrics::source::{
    MetricsData, MetricsQuery, MetricsSource, PrometheusSource, ScrapeSource, SourceError, Window,
};

/// The environment setting naming the Prometheus server a source of kind
/// `prometheus` asks when it has no URL of its own.
pub const PROMETHEUS_URL_SETTING: &str = "prometheus_url";

/// The environment names no URL to read metrics from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MissingUrl {
    /// Neither `metrics_url` nor `base_url`.
    #[error(
        "no metrics URL: set `metrics_url` (or `base_url`) in the environment, e.g. https://api.example.org/metrics, or give the check's `url` parameter"
    )]
    Scrape,
    /// No `prometheus_url`.
    #[error(
        "no Prometheus URL: set `prometheus_url` in the environment (e.g. http://prometheus:9090) or give the check's `url` parameter"
    )]
    Prometheus,
}

impl MissingUrl {
    /// The setting that would have named the URL.
    pub fn need(self) -> Need {
        match self {
            MissingUrl::Scrape => Need::setting(
                "metrics_url",
                "the metrics endpoint",
                "https://api.example.org/metrics",
            ),
            MissingUrl::Prometheus => Need::setting(
                PROMETHEUS_URL_SETTING,
                "the Prometheus server",
                "http://prometheus:9090",
            ),
        }
    }
}

impl From<MissingUrl> for Outcome {
    fn from(e: MissingUrl) -> Self {
        Outcome::check_error(e.to_string()).with_need(e.need())
    }
}

impl SourceConfig {
    /// The URL as plans show it: without credentials, or the settings it
    /// will come from.
    pub(super) fn url_text(&self) -> String {
        match (&self.url, self.kind) {
            (Some(u), _) => crate::http::strip_userinfo(u),
            (None, SourceKind::Scrape) => "$metrics_url (or $base_url/metrics)".into(),
            (None, SourceKind::Prometheus) => "$prometheus_url".into(),
        }
    }

    /// The URL this config points at in `ctx`'s environment.
    pub fn resolve_url(&self, ctx: &Ctx) -> Result<String, MissingUrl> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let env = ctx.environment();
        match self.kind {
            SourceKind::Scrape => env
                .get("metrics_url")
                .map(str::to_owned)
                .or_else(|| {
                    env.get("base_url")
                        .map(|b| format!("{}/metrics", b.trim_end_matches('/')))
                })
                .ok_or(MissingUrl::Scrape),
            SourceKind::Prometheus => env
                .get(PROMETHEUS_URL_SETTING)
                .map(str::to_owned)
                .ok_or(MissingUrl::Prometheus),
        }
    }

    fn token(&self, ctx: &Ctx) -> Option<Secret> {
        ctx.secret(&self.token_secret).cloned()
    }

    /// A scrape of `url` with this config's timeout and body cap (no
    /// token: the caller adds one).
    pub(super) fn scraper(&self, url: String) -> ScrapeSource {
        ScrapeSource::new(url)
            .timeout(self.timeout.get())
            .max_body(self.max_body.0)
    }

    /// The source for `ctx`.
    pub fn resolve(&self, ctx: &Ctx) -> Result<Box<dyn MetricsSource>, MissingUrl> {
        let url = self.resolve_url(ctx)?;
        let token = self.token(ctx);
        Ok(match self.kind {
            SourceKind::Scrape => {
                let mut s = self.scraper(url);
                if let Some(t) = token {
                    s = s.token(t);
                }
                if let Some(step) = self.every {
                    s = s.every(step.get());
                }
                Box::new(s)
            }
            SourceKind::Prometheus => Box::new(self.prometheus_client(url, token)),
        })
    }

    /// The Prometheus HTTP API this config points at in `ctx`'s
    /// environment, whatever its kind says.
    pub fn prometheus_api(&self, ctx: &Ctx) -> Result<PrometheusSource, MissingUrl> {
        let api = SourceConfig {
            kind: SourceKind::Prometheus,
            ..self.clone()
        };
        let url = api.resolve_url(ctx)?;
        Ok(self.prometheus_client(url, self.token(ctx)))
    }

    fn prometheus_client(&self, url: String, token: Option<Secret>) -> PrometheusSource {
        let mut s = PrometheusSource::new(url)
            .timeout(self.timeout.get())
            .max_body(self.max_body.0);
        if let Some(t) = token {
            s = s.token(t);
        }
        s
    }
}

/// Reads the source, turning every failure into the outcome that says so;
/// on success, the data and the source as evidence shows it.
pub(super) async fn fetch(
    ctx: &Ctx,
    config: &SourceConfig,
    query: &MetricsQuery,
) -> Result<(MetricsData, String), Outcome> {
    let source = config.resolve(ctx).map_err(|e| {
        Outcome::check_error(e.to_string()).with_evidence("source", config.url_text())
    })?;
    let described = ctx.redactor().redact(&source.describe()).into_owned();
    ctx.progress(match query.window {
        Window::Cumulative => format!("reading {described}"),
        Window::Last(d) => format!("reading {described} over {}", format_duration(d)),
    });
    let result = tokio::select! {
        r = source.fetch(query) => r,
        _ = ctx.cancellation().cancelled() => {
            return Err(Outcome::aborted("stopped while reading metrics").with_evidence("source", described));
        }
    };
    match result {
        Ok(data) => Ok((data, described)),
        Err(e) => Err(source_error(ctx, &e).with_evidence("source", described)),
    }
}

/// A source that could not deliver, as a check error, secrets masked.
pub(super) fn source_error(ctx: &Ctx, e: &SourceError) -> Outcome {
    let text = ctx.redactor().redact(&e.to_string()).into_owned();
    Outcome::check_error(format!("could not read metrics: {text}"))
}
