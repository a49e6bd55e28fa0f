//! The runbook's metrics checks: the endpoint answers with the token, the
//! baseline latency is recorded for later steps, a latency quantile and the
//! error ratio stay below their limits.
//!
//! Statuses never blur: a source that cannot be read is `check_error`, too
//! little traffic in the window is `no_data` (a quantile of 3 requests
//! decides nothing), and every verdict's summary carries the value, the
//! condition and the limit.

use std::time::Duration;

use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Outcome, Secret, Status, async_trait, format_duration,
};

use super::compute::{Histogram, StatusMatcher};
use super::parse::{Sample, names_metric};
use super::source::{
    self, MetricsData, MetricsQuery, MetricsSource, PrometheusSource, ScrapeSource, SourceError,
    Window,
};
use super::summary::{percent_text, seconds_text, trim_float};
use crate::legacy_spec::{CheckSpec, ParamError, ParamSpec, Params};

/// Default histogram of request durations.
pub const DEFAULT_HISTOGRAM: &str = "http_request_duration_seconds";
/// Default request counter.
pub const DEFAULT_COUNTER: &str = "http_requests_total";
/// Default name of the secret holding the Bearer token.
pub const DEFAULT_TOKEN_SECRET: &str = "metrics_token";
/// Prefix of the values [`LatencyBaselineCheck`] records.
pub const BASELINE_PREFIX: &str = "baseline.latency";

/// Which kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The application's `/metrics`.
    Scrape,
    /// A Prometheus HTTP API.
    Prometheus,
}

/// Where a check reads metrics, resolved against the environment at run
/// time: the scrape URL defaults to the setting `metrics_url`, then
/// `<base_url>/metrics`; the Prometheus URL to `prometheus_url`. The token
/// comes from a named secret and is sent only when that secret exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Scrape or Prometheus.
    pub kind: SourceKind,
    /// Explicit URL; `None` reads the environment.
    pub url: Option<String>,
    /// Secret holding the Bearer token.
    pub token_secret: String,
    /// Limit for one request.
    pub timeout: Duration,
    /// Scrape source over a window: scrape every this long, not only at
    /// both ends (catches restarts whose counters climbed past old values).
    pub every: Option<Duration>,
    /// Cap on one answer's body, in bytes ([`source::DEFAULT_MAX_BODY`]).
    pub max_body: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::scrape()
    }
}

impl SourceConfig {
    /// Scrape the app; URL from the environment.
    pub fn scrape() -> Self {
        SourceConfig {
            kind: SourceKind::Scrape,
            url: None,
            token_secret: DEFAULT_TOKEN_SECRET.into(),
            timeout: source::DEFAULT_TIMEOUT,
            every: None,
            max_body: source::DEFAULT_MAX_BODY,
        }
    }

    /// Ask the Prometheus API at `url`.
    pub fn prometheus(url: impl Into<String>) -> Self {
        SourceConfig {
            kind: SourceKind::Prometheus,
            url: Some(url.into()),
            ..Self::scrape()
        }
    }

    /// Sets an explicit URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Reads the token from secret `name`.
    pub fn token_secret(mut self, name: impl Into<String>) -> Self {
        self.token_secret = name.into();
        self
    }

    /// Limit for one request.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Cap on one answer's body, in bytes.
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    fn url_text(&self) -> String {
        match (&self.url, self.kind) {
            (Some(u), _) => crate::http::strip_userinfo(u),
            (None, SourceKind::Scrape) => "$metrics_url (or $base_url/metrics)".into(),
            (None, SourceKind::Prometheus) => "$prometheus_url".into(),
        }
    }

    /// The URL this config points at in `ctx`'s environment.
    pub fn resolve_url(&self, ctx: &Ctx) -> Result<String, String> {
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
                .ok_or_else(|| {
                    "no metrics URL: set `metrics_url` (or `base_url`) in the environment, e.g. --set metrics_url=https://api.example.org/metrics, or give the check's `url` parameter".into()
                }),
            SourceKind::Prometheus => env.get("prometheus_url").map(str::to_owned).ok_or_else(|| {
                "no Prometheus URL: set `prometheus_url` in the environment (--set prometheus_url=http://prometheus:9090) or give the check's `url` parameter".into()
            }),
        }
    }

    fn token(&self, ctx: &Ctx) -> Option<Secret> {
        ctx.secret(&self.token_secret).cloned()
    }

    /// The source for `ctx`.
    pub fn resolve(&self, ctx: &Ctx) -> Result<Box<dyn MetricsSource>, String> {
        let url = self.resolve_url(ctx)?;
        let token = self.token(ctx);
        Ok(match self.kind {
            SourceKind::Scrape => {
                let mut s = ScrapeSource::new(url)
                    .timeout(self.timeout)
                    .max_body(self.max_body);
                if let Some(t) = token {
                    s = s.token(t);
                }
                if let Some(step) = self.every {
                    s = s.every(step);
                }
                Box::new(s)
            }
            SourceKind::Prometheus => {
                let mut s = PrometheusSource::new(url)
                    .timeout(self.timeout)
                    .max_body(self.max_body);
                if let Some(t) = token {
                    s = s.token(t);
                }
                Box::new(s)
            }
        })
    }

    fn write_params(&self, mut p: CheckParams) -> CheckParams {
        if self.kind == SourceKind::Prometheus {
            p = p.with("source", "prometheus");
        }
        if let Some(url) = &self.url {
            p = p.with("url", url);
        }
        if self.token_secret != DEFAULT_TOKEN_SECRET {
            p = p.with("token_secret", &self.token_secret);
        }
        if self.timeout != source::DEFAULT_TIMEOUT {
            p = p.with("timeout", format!("{}ms", self.timeout.as_millis()));
        }
        if let Some(step) = self.every {
            p = p.with("every", format!("{}ms", step.as_millis()));
        }
        if self.max_body != source::DEFAULT_MAX_BODY {
            p = p.with("max_body", self.max_body.to_string());
        }
        p
    }

    fn from_params(p: &Params) -> Result<Self, ParamError> {
        let kind = match p.get("source").unwrap_or("scrape") {
            "scrape" => SourceKind::Scrape,
            "prometheus" => SourceKind::Prometheus,
            other => {
                return Err(p.error(
                    "source",
                    format!("is `{other}`; use `scrape` (the app's /metrics) or `prometheus` (a Prometheus HTTP API)"),
                ));
            }
        };
        Ok(SourceConfig {
            kind,
            url: p.get("url").map(str::to_owned),
            token_secret: p
                .get("token_secret")
                .unwrap_or(DEFAULT_TOKEN_SECRET)
                .to_owned(),
            timeout: p.duration("timeout")?.unwrap_or(source::DEFAULT_TIMEOUT),
            every: p.duration("every")?,
            max_body: p
                .get("max_body")
                .map(|v| {
                    source::parse_bytes(v)
                        .map_err(|e| p.error("max_body", format!("is not usable: {e}")))
                })
                .transpose()?
                .unwrap_or(source::DEFAULT_MAX_BODY),
        })
    }
}

/// Reads the source, turning every failure into the outcome that says so.
async fn fetch(
    ctx: &Ctx,
    config: &SourceConfig,
    query: &MetricsQuery,
) -> Result<(MetricsData, String), Outcome> {
    let source = config
        .resolve(ctx)
        .map_err(|e| Outcome::check_error(e).with_evidence("source", config.url_text()))?;
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

fn source_error(ctx: &Ctx, e: &SourceError) -> Outcome {
    let text = ctx.redactor().redact(&e.to_string()).into_owned();
    Outcome::check_error(format!("could not read metrics: {text}"))
}

fn with_data_evidence(ctx: &Ctx, mut o: Outcome, data: &MetricsData, window: Window) -> Outcome {
    o = o.with_evidence("window", window.describe());
    for p in &data.provenance {
        o = o.with_evidence("how", ctx.redactor().redact(p).into_owned());
    }
    for w in &data.warnings {
        o = o.with_evidence("source warning", ctx.redactor().redact(w).into_owned());
    }
    o
}

fn labels_text(h: &Histogram) -> String {
    if h.labels.is_empty() {
        return String::new();
    }
    let inner = h
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",");
    format!("{{{inner}}}")
}

fn quantile_name(q: f64) -> String {
    let pct = q * 100.0;
    format!("P{}", trim_float(pct))
}

// ---------------------------------------------------------------------------

/// "`/metrics` answers with the token": one authenticated GET, a valid
/// exposition, and the metrics the runbook reads present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsEndpointCheck {
    source: SourceConfig,
    require: Vec<String>,
    reject_anonymous: bool,
}

impl MetricsEndpointCheck {
    /// Scrapes `$metrics_url` (or `$base_url/metrics`) with secret
    /// `metrics_token`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where to scrape and with which secret: a scrape [`SourceConfig`]
    /// (its kind is ignored; this check always scrapes).
    pub fn source(mut self, source: SourceConfig) -> Self {
        self.source = SourceConfig {
            kind: SourceKind::Scrape,
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
        self.require = names.into_iter().map(Into::into).collect();
        self
    }

    /// Also checks that a request *without* the token is refused (401/403);
    /// an endpoint open to anyone is a warning.
    pub fn reject_anonymous(mut self, yes: bool) -> Self {
        self.reject_anonymous = yes;
        self
    }

    fn config(&self) -> &SourceConfig {
        &self.source
    }
}

#[async_trait]
impl Check for MetricsEndpointCheck {
    fn describe(&self) -> Description {
        let mut verifies = format!(
            "{} answers with the Bearer token from secret `{}` and a valid exposition",
            self.config().url_text(),
            self.source.token_secret
        );
        if !self.require.is_empty() {
            verifies.push_str(&format!(" containing {}", self.require.join(", ")));
        }
        Description::read_only("metrics-endpoint", verifies)
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = self
            .config()
            .write_params(CheckParams::new("metrics-endpoint"));
        if !self.require.is_empty() {
            p = p.with("require", self.require.join(","));
        }
        if self.reject_anonymous {
            p = p.with("reject_anonymous", "true");
        }
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let url = match self.config().resolve_url(ctx) {
            Ok(u) => crate::http::display_url(ctx, &u),
            Err(e) => return Outcome::check_error(e),
        };
        let secret_name = &self.source.token_secret;
        let Some(token) = ctx.secret(secret_name).cloned() else {
            return Outcome::check_error(format!(
                "secret `{secret_name}` (the Bearer token for {url}) was not provided; pass it with --secret {secret_name}=ENV_VAR"
            ))
            .with_evidence("url", url);
        };
        let source = ScrapeSource::new(self.config().resolve_url(ctx).unwrap_or_default())
            .timeout(self.source.timeout)
            .max_body(self.source.max_body)
            .token(token);
        let mut found = vec![false; self.require.len()];
        let mut seen = |sample: &Sample<'_>| {
            for (found, name) in found.iter_mut().zip(&self.require) {
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
        let missing: Vec<&str> = self
            .require
            .iter()
            .zip(&found)
            .filter(|(_, found)| !**found)
            .map(|(name, _)| name.as_str())
            .collect();
        let found = format!(
            "{samples} samples in {families} families, {}",
            scrape.format.name()
        );
        let mut outcome = if !missing.is_empty() {
            Outcome::failed(format!(
                "{url} answered HTTP {} with the token, but {} missing ({found})",
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
            .with_evidence("missing", missing.join(", "))
        } else if samples == 0 {
            Outcome::failed(format!(
                "{url} answered HTTP {} with the token, but with no samples; expected at least one",
                scrape.status
            ))
        } else {
            Outcome::passed(format!(
                "{url} answered HTTP {} with the token in {} ({found})",
                scrape.status,
                format_duration(scrape.elapsed)
            ))
        };
        outcome = base(outcome)
            .with_evidence("families", families.to_string())
            .with_evidence("samples", samples.to_string());
        if !self.require.is_empty() {
            outcome = outcome.with_evidence("required", self.require.join(", "));
        }
        if self.reject_anonymous && outcome.status == Status::Passed {
            let anonymous = ScrapeSource::new(self.config().resolve_url(ctx).unwrap_or_default())
                .timeout(self.source.timeout)
                .max_body(self.source.max_body);
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

// ---------------------------------------------------------------------------

/// "Record the baseline latency": P50/P95/P99 of the request histogram,
/// stored as values `baseline.latency.p50`, `.p95`, `.p99` (seconds) and
/// `.count` for later steps.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyBaselineCheck {
    source: SourceConfig,
    histogram: String,
    window: Window,
    min_requests: f64,
}

impl LatencyBaselineCheck {
    /// Baseline of [`DEFAULT_HISTOGRAM`] from `source`, over the cumulative
    /// counters, needing at least 20 requests.
    pub fn new(source: SourceConfig) -> Self {
        LatencyBaselineCheck {
            source,
            histogram: DEFAULT_HISTOGRAM.into(),
            window: Window::Cumulative,
            min_requests: 20.0,
        }
    }

    /// The histogram family (without `_bucket`).
    pub fn histogram(mut self, name: impl Into<String>) -> Self {
        self.histogram = name.into();
        self
    }

    /// Over what time.
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Fewer requests than this in the window is `no_data`.
    pub fn min_requests(mut self, n: f64) -> Self {
        self.min_requests = n;
        self
    }
}

/// The key under which the baseline of quantile `p` ("p95") is recorded.
pub fn baseline_key(p: &str) -> String {
    format!("{BASELINE_PREFIX}.{p}")
}

#[async_trait]
impl Check for LatencyBaselineCheck {
    fn describe(&self) -> Description {
        let mut d = Description::read_only(
            "metrics-baseline",
            format!(
                "records P50/P95/P99 of `{}` from {} ({}) for later steps",
                self.histogram,
                self.source.url_text(),
                self.window.describe()
            ),
        );
        for p in ["p50", "p95", "p99", "count"] {
            d = d.produces(baseline_key(p));
        }
        d
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = self
            .source
            .write_params(CheckParams::new("metrics-baseline"));
        p = p
            .with("histogram", &self.histogram)
            .with("window", window_param(self.window))
            .with("min_requests", self.min_requests.to_string());
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let query = MetricsQuery {
            histogram: Some(self.histogram.clone()),
            counter: None,
            by: Some(Vec::new()),
            window: self.window,
            ..MetricsQuery::default()
        };
        let (data, described) = match fetch(ctx, &self.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let with = |o: Outcome| {
            with_data_evidence(
                ctx,
                o.with_evidence("source", described.clone()),
                &data,
                self.window,
            )
        };
        let Some(h) = data.histograms.first() else {
            return with(Outcome::no_data(format!(
                "no `{}_bucket` series at {described}; nothing to take a baseline from",
                self.histogram
            )));
        };
        let count = h.count();
        if count < self.min_requests {
            return with(Outcome::no_data(format!(
                "only {} requests in the window ({}), fewer than the {} needed for a baseline",
                trim_float(count),
                self.window.describe(),
                trim_float(self.min_requests)
            )))
            .with_evidence("requests", trim_float(count));
        }
        let qs = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)].map(|(k, q)| (k, h.quantile(q)));
        if qs.iter().any(|(_, q)| q.value.is_nan()) {
            return with(Outcome::no_data(format!(
                "`{}` has no usable buckets (a `+Inf` bucket and one more are needed); quantiles are NaN",
                self.histogram
            )));
        }
        let text = qs
            .iter()
            .map(|(k, q)| format!("{} {}", k.to_uppercase(), seconds_text(Some(q.value))))
            .collect::<Vec<_>>()
            .join(", ");
        let mut o = with(Outcome::passed(format!(
            "baseline {text} over {} requests ({})",
            trim_float(count),
            self.window.describe()
        )));
        for (k, q) in &qs {
            o = o
                .with_evidence(*k, seconds_text(Some(q.value)))
                .with_measurement(format!("latency_{k}"), q.value, Some("s"))
                .with_value(baseline_key(k), serde_json::json!(q.value));
        }
        for (k, q) in qs.iter().filter(|(_, q)| q.above_highest_bound) {
            o = o.with_evidence(
                format!("{k} caveat"),
                format!(
                    "falls in the +Inf bucket: the true {} is above {}, recorded as {} as Prometheus reports it",
                    k.to_uppercase(),
                    seconds_text(Some(q.value)),
                    seconds_text(Some(q.value))
                ),
            );
        }
        if qs[0].1.forced_monotonic {
            o = o.with_evidence(
                "bucket repair",
                "bucket counts decreased somewhere; flattened to the running maximum as Prometheus does",
            );
        }
        o.with_evidence("requests", trim_float(count))
            .with_evidence("bucket bounds", bounds_text(&h.bounds()))
            .with_value(baseline_key("count"), serde_json::json!(count))
    }
}

fn bounds_text(bounds: &[f64]) -> String {
    bounds
        .iter()
        .map(|b| trim_float(*b))
        .collect::<Vec<_>>()
        .join(", ")
}

fn window_param(w: Window) -> String {
    match w {
        Window::Cumulative => "cumulative".into(),
        Window::Last(d) => format!("{}ms", d.as_millis()),
    }
}

// ---------------------------------------------------------------------------

/// "Latency quantile below threshold" (the runbook's `P95 > 2s`), per group
/// of `by` labels; the worst group decides. Lints a threshold that is not a
/// bucket boundary and offers the exact form.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyCheck {
    source: SourceConfig,
    histogram: String,
    quantile: f64,
    threshold: Option<f64>,
    baseline_factor: Option<f64>,
    window: Window,
    min_requests: f64,
    by: Vec<String>,
}

impl LatencyCheck {
    /// `quantile` of [`DEFAULT_HISTOGRAM`] must be ≤ `threshold_seconds`
    /// over the last 5 minutes, with at least 100 requests.
    pub fn new(source: SourceConfig, quantile: f64, threshold_seconds: f64) -> Self {
        LatencyCheck {
            source,
            histogram: DEFAULT_HISTOGRAM.into(),
            quantile,
            threshold: Some(threshold_seconds),
            baseline_factor: None,
            window: Window::Last(Duration::from_secs(300)),
            min_requests: 100.0,
            by: Vec::new(),
        }
    }

    /// The histogram family (without `_bucket`).
    pub fn histogram(mut self, name: impl Into<String>) -> Self {
        self.histogram = name.into();
        self
    }

    /// Over what time.
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Fewer requests than this (per group) is `no_data`.
    pub fn min_requests(mut self, n: f64) -> Self {
        self.min_requests = n;
        self
    }

    /// Judge each group of these labels (e.g. `route`) separately.
    pub fn by<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.by = labels.into_iter().map(Into::into).collect();
        self
    }

    /// `quantile` must be ≤ `factor` × the baseline recorded earlier by
    /// `metrics-baseline` (value `baseline.latency.p95` for P95): "no worse
    /// than 1.5× before the deploy". Only P50, P95 and P99 have baselines.
    pub fn against_baseline(source: SourceConfig, quantile: f64, factor: f64) -> Self {
        LatencyCheck {
            threshold: None,
            baseline_factor: Some(factor),
            ..Self::new(source, quantile, 0.0)
        }
    }

    /// Also limits the quantile to `factor` × its baseline; the stricter of
    /// the two limits applies.
    pub fn baseline_factor(mut self, factor: f64) -> Self {
        self.baseline_factor = Some(factor);
        self
    }

    fn baseline_key(&self) -> String {
        baseline_key(&quantile_name(self.quantile).to_lowercase())
    }

    fn limit_text(&self) -> String {
        let relative = self.baseline_factor.map(|f| {
            format!(
                "{} × baseline {}",
                trim_float(f),
                quantile_name(self.quantile)
            )
        });
        match (self.threshold, relative) {
            (Some(t), None) => seconds_text(Some(t)),
            (None, Some(r)) => r,
            (Some(t), Some(r)) => format!("min({}, {r})", seconds_text(Some(t))),
            (None, None) => "(no limit)".into(),
        }
    }

    fn condition(&self) -> String {
        format!(
            "{} of `{}` ≤ {}",
            quantile_name(self.quantile),
            self.histogram,
            self.limit_text()
        )
    }

    /// The limit in seconds for this run, and how it was derived.
    fn limit(&self, ctx: &Ctx) -> Result<(f64, Option<String>), String> {
        let Some(factor) = self.baseline_factor else {
            return Ok((self.threshold.unwrap_or(f64::INFINITY), None));
        };
        let key = self.baseline_key();
        let baseline = match ctx.value(&key) {
            Ok(v) => v.as_f64().filter(|b| b.is_finite() && *b > 0.0).ok_or_else(|| {
                format!(
                    "`{key}` is {v}, not a positive number of seconds; cannot derive the limit {}",
                    self.limit_text()
                )
            })?,
            Err(e) => {
                return Err(format!(
                    "cannot derive the limit {}: {e} (metrics-baseline records p50, p95 and p99)",
                    self.limit_text()
                ));
            }
        };
        let relative = factor * baseline;
        let note = format!(
            "baseline {} {} × {} = {}",
            quantile_name(self.quantile),
            seconds_text(Some(baseline)),
            trim_float(factor),
            seconds_text(Some(relative))
        );
        Ok((
            self.threshold.map_or(relative, |t| t.min(relative)),
            Some(note),
        ))
    }
}

/// The bucket-boundary lint: `None` when `threshold` is a bound of `h`,
/// otherwise the advice with the exact share of slower requests at the
/// neighbouring bounds.
pub fn boundary_advice(h: &Histogram, quantile: f64, threshold: f64) -> Option<String> {
    let bounds = h.bounds();
    if bounds.contains(&threshold) {
        return None;
    }
    let below = bounds.iter().copied().rfind(|b| *b < threshold);
    let above = bounds.iter().copied().find(|b| *b > threshold);
    let allowed = percent_text(1.0 - quantile);
    let mut parts = vec![format!(
        "the limit {} is not a bucket boundary (bounds: {}), so the {} compared with it is interpolated inside a bucket, not measured",
        seconds_text(Some(threshold)),
        bounds_text(&bounds),
        quantile_name(quantile)
    )];
    for b in [below, above].into_iter().flatten() {
        if let Some(share) = h.share_above(b) {
            parts.push(format!(
                "exact form: share of requests slower than {} ≤ {allowed} (measured {})",
                seconds_text(Some(b)),
                percent_text(share)
            ));
        }
    }
    Some(parts.join("; "))
}

#[async_trait]
impl Check for LatencyCheck {
    fn describe(&self) -> Description {
        let d = Description::read_only(
            "metrics-latency",
            format!(
                "{} over {} from {}",
                self.condition(),
                self.window.describe(),
                self.source.url_text()
            ),
        );
        if self.baseline_factor.is_some() {
            d.needs(self.baseline_key())
        } else {
            d
        }
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = self
            .source
            .write_params(CheckParams::new("metrics-latency"));
        p = p
            .with("histogram", &self.histogram)
            .with("quantile", self.quantile.to_string())
            .with("window", window_param(self.window))
            .with("min_requests", self.min_requests.to_string());
        if let Some(t) = self.threshold {
            p = p.with("threshold", format!("{t}s"));
        }
        if let Some(f) = self.baseline_factor {
            p = p.with("baseline_factor", f.to_string());
        }
        if !self.by.is_empty() {
            p = p.with("by", self.by.join(","));
        }
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let (limit, derived) = match self.limit(ctx) {
            Ok(l) => l,
            Err(e) => {
                return Outcome::check_error(e).with_evidence("condition", self.condition());
            }
        };
        let query = MetricsQuery {
            histogram: Some(self.histogram.clone()),
            counter: None,
            by: Some(self.by.clone()),
            window: self.window,
            ..MetricsQuery::default()
        };
        let (data, described) = match fetch(ctx, &self.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let name = quantile_name(self.quantile);
        let with = |o: Outcome| {
            with_data_evidence(
                ctx,
                match &derived {
                    Some(note) => o
                        .with_evidence("condition", self.condition())
                        .with_evidence("limit", note.clone()),
                    None => o.with_evidence("condition", self.condition()),
                }
                .with_evidence("source", described.clone()),
                &data,
                self.window,
            )
        };
        if data.histograms.is_empty() {
            return with(Outcome::no_data(format!(
                "no `{}_bucket` series at {described}; cannot judge {}",
                self.histogram,
                self.condition()
            )));
        }
        let mut judged = Vec::new();
        let mut thin = Vec::new();
        for h in &data.histograms {
            let count = h.count();
            let q = h.quantile(self.quantile);
            if count < self.min_requests || q.value.is_nan() {
                thin.push((h, count));
            } else {
                judged.push((h, count, q));
            }
        }
        let mut evidence: Vec<(String, String)> = Vec::new();
        for (h, count, q) in &judged {
            evidence.push((
                format!("{name}{}", labels_text(h)),
                format!(
                    "{} over {} requests{}",
                    seconds_text(Some(q.value)),
                    trim_float(*count),
                    if q.forced_monotonic {
                        " (buckets repaired)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        for (h, count) in &thin {
            evidence.push((
                format!("{name}{}", labels_text(h)),
                format!(
                    "not judged: {} requests, fewer than {}",
                    trim_float(*count),
                    trim_float(self.min_requests)
                ),
            ));
        }
        let Some((worst, count, q)) = judged
            .iter()
            .max_by(|a, b| {
                (a.2.above_highest_bound, a.2.value)
                    .partial_cmp(&(b.2.above_highest_bound, b.2.value))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .copied()
        else {
            let total: f64 = thin.iter().map(|(_, c)| c).sum();
            let mut o = with(Outcome::no_data(format!(
                "too little traffic to judge {}: {} requests in the window ({}), at least {} needed{}",
                self.condition(),
                trim_float(total),
                self.window.describe(),
                trim_float(self.min_requests),
                if self.by.is_empty() { "" } else { " per group" }
            )));
            for (k, v) in evidence {
                o = o.with_evidence(k, v);
            }
            return o;
        };
        let value = q.value;
        let group = labels_text(worst);
        if q.above_highest_bound && value < limit {
            // Prometheus would report `value` and an alert at the limit would
            // stay silent, but the true quantile is anywhere above `value`.
            let mut o = with(Outcome::check_error(format!(
                "{name}{group} lies above {}, the highest finite bucket bound (it falls in the +Inf bucket; Prometheus reports {}), so the histogram cannot tell whether it is ≤ {}; add a bucket boundary at the limit",
                seconds_text(Some(value)),
                seconds_text(Some(value)),
                seconds_text(Some(limit))
            )));
            for (k, v) in evidence {
                o = o.with_evidence(k, v);
            }
            return o;
        }
        let over = value > limit || q.above_highest_bound;
        let shown = if q.above_highest_bound {
            format!(
                "> {} (in the +Inf bucket; Prometheus reports {})",
                seconds_text(Some(value)),
                seconds_text(Some(value))
            )
        } else {
            format!("= {}", seconds_text(Some(value)))
        };
        let summary = format!(
            "{name}{group} {shown} {} limit {} over {} ({} requests)",
            if over { ">" } else { "≤" },
            seconds_text(Some(limit)),
            self.window.describe(),
            trim_float(count)
        );
        let mut o = with(if over {
            Outcome::failed(summary)
        } else {
            Outcome::passed(summary)
        })
        .with_measurement(format!("latency_{}", name.to_lowercase()), value, Some("s"));
        for (k, v) in evidence {
            o = o.with_evidence(k, v);
        }
        match boundary_advice(worst, self.quantile, limit) {
            Some(advice) => {
                if o.status == Status::Passed {
                    o.status = Status::Warned;
                    o.summary
                        .push_str(" — limit is not a bucket boundary, see advisory");
                }
                o = o.with_evidence("advisory", advice);
            }
            None => {
                if let Some(share) = worst.share_above(limit) {
                    o = o.with_evidence(
                        "exact",
                        format!(
                            "share of requests slower than {}: {} (the {name} limit allows {})",
                            seconds_text(Some(limit)),
                            percent_text(share),
                            percent_text(1.0 - self.quantile)
                        ),
                    );
                }
            }
        }
        o
    }
}

// ---------------------------------------------------------------------------

/// "Error ratio below threshold": the share of requests whose status
/// matches (`5..`) over the window.
#[derive(Debug, Clone)]
pub struct ErrorRatioCheck {
    source: SourceConfig,
    counter: String,
    status_label: String,
    errors: StatusMatcher,
    threshold: f64,
    window: Window,
    min_requests: f64,
}

impl ErrorRatioCheck {
    /// Share of [`DEFAULT_COUNTER`] with `status=~"5.."` must be ≤
    /// `threshold` (0.01 for 1%) over the last 5 minutes, with at least 100
    /// requests.
    pub fn new(source: SourceConfig, threshold: f64) -> Self {
        ErrorRatioCheck {
            source,
            counter: DEFAULT_COUNTER.into(),
            status_label: "status".into(),
            errors: StatusMatcher::five_xx(),
            threshold,
            window: Window::Last(Duration::from_secs(300)),
            min_requests: 100.0,
        }
    }

    /// The counter.
    pub fn counter(mut self, name: impl Into<String>) -> Self {
        self.counter = name.into();
        self
    }

    /// Label holding the status (`status`, `code`).
    pub fn status_label(mut self, name: impl Into<String>) -> Self {
        self.status_label = name.into();
        self
    }

    /// Which statuses are errors.
    pub fn errors(mut self, matcher: StatusMatcher) -> Self {
        self.errors = matcher;
        self
    }

    /// Over what time.
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Fewer requests than this is `no_data`.
    pub fn min_requests(mut self, n: f64) -> Self {
        self.min_requests = n;
        self
    }

    fn condition(&self) -> String {
        format!(
            "share of `{}` with {}=~\"{}\" ≤ {}",
            self.counter,
            self.status_label,
            self.errors.pattern(),
            percent_text(self.threshold)
        )
    }
}

#[async_trait]
impl Check for ErrorRatioCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "metrics-error-ratio",
            format!(
                "{} over {} from {}",
                self.condition(),
                self.window.describe(),
                self.source.url_text()
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        let p = self
            .source
            .write_params(CheckParams::new("metrics-error-ratio"))
            .with("counter", &self.counter)
            .with("status_label", &self.status_label)
            .with("errors", self.errors.pattern())
            .with("threshold", self.threshold.to_string())
            .with("window", window_param(self.window))
            .with("min_requests", self.min_requests.to_string());
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let query = MetricsQuery {
            histogram: None,
            counter: Some(self.counter.clone()),
            by: Some(Vec::new()),
            status_label: self.status_label.clone(),
            window: self.window,
        };
        let (data, described) = match fetch(ctx, &self.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let with = |o: Outcome| {
            with_data_evidence(
                ctx,
                o.with_evidence("condition", self.condition())
                    .with_evidence("source", described.clone()),
                &data,
                self.window,
            )
        };
        if data.counters.is_empty() {
            return with(Outcome::no_data(format!(
                "no `{}` series at {described}; cannot judge {}",
                self.counter,
                self.condition()
            )));
        }
        let ratio = super::compute::error_ratio(&data.counters, &self.status_label, &self.errors);
        let counts = format!(
            "{} of {} requests",
            trim_float(ratio.matched),
            trim_float(ratio.total)
        );
        let breakdown = data
            .counters
            .iter()
            .map(|s| {
                format!(
                    "{}={}",
                    s.labels
                        .get(&self.status_label)
                        .map_or("(none)", String::as_str),
                    trim_float(s.value)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if ratio.total < self.min_requests || ratio.total <= 0.0 {
            return with(Outcome::no_data(format!(
                "too little traffic to judge the error ratio: {} requests in the window ({}), at least {} needed",
                trim_float(ratio.total),
                self.window.describe(),
                trim_float(self.min_requests)
            )))
            .with_evidence("requests by status", breakdown);
        }
        let value = ratio.value();
        let over = value > self.threshold;
        let summary = format!(
            "{}=~\"{}\" ratio = {} ({counts}) {} limit {} over {}",
            self.status_label,
            self.errors.pattern(),
            percent_text(value),
            if over { ">" } else { "≤" },
            percent_text(self.threshold),
            self.window.describe()
        );
        with(if over {
            Outcome::failed(summary)
        } else {
            Outcome::passed(summary)
        })
        .with_evidence("requests by status", breakdown)
        .with_measurement("error_ratio", value, Some("ratio"))
        .with_measurement("requests", ratio.total, Some("requests"))
    }
}

// ---------------------------------------------------------------------------
// Registry entries.

const SOURCE_PARAMS: [ParamSpec; 6] = [
    ParamSpec {
        name: "source",
        help: "`scrape` (the app's /metrics) or `prometheus` (a Prometheus HTTP API)",
        required: false,
        default: Some("scrape"),
    },
    ParamSpec {
        name: "url",
        help: "metrics URL, or Prometheus base URL (default: environment `metrics_url`, `base_url`/metrics, `prometheus_url`)",
        required: false,
        default: None,
    },
    ParamSpec {
        name: "token_secret",
        help: "secret holding the Bearer token (sent when provided)",
        required: false,
        default: Some(DEFAULT_TOKEN_SECRET),
    },
    ParamSpec {
        name: "timeout",
        help: "limit for one HTTP request (e.g. 10s)",
        required: false,
        default: Some("10s"),
    },
    ParamSpec {
        name: "every",
        help: "scrape source over a window: scrape this often (e.g. 30s) to catch restarts; default only at both ends",
        required: false,
        default: None,
    },
    ParamSpec {
        name: "max_body",
        help: "refuse an answer larger than this (e.g. 64MiB, 200MB), reading no further",
        required: false,
        default: Some(source::DEFAULT_MAX_BODY_TEXT),
    },
];

const fn param(name: &'static str, help: &'static str, default: Option<&'static str>) -> ParamSpec {
    ParamSpec {
        name,
        help,
        required: false,
        default,
    }
}

const BASELINE_PARAMS: [ParamSpec; 9] = [
    SOURCE_PARAMS[0],
    SOURCE_PARAMS[1],
    SOURCE_PARAMS[2],
    SOURCE_PARAMS[3],
    SOURCE_PARAMS[4],
    SOURCE_PARAMS[5],
    param(
        "histogram",
        "histogram family, without _bucket",
        Some(DEFAULT_HISTOGRAM),
    ),
    param(
        "window",
        "`cumulative` (one scrape) or a duration such as 1m (two scrapes that far apart)",
        Some("cumulative"),
    ),
    param(
        "min_requests",
        "fewer requests in the window is no_data",
        Some("20"),
    ),
];

const LATENCY_PARAMS: [ParamSpec; 13] = [
    SOURCE_PARAMS[0],
    SOURCE_PARAMS[1],
    SOURCE_PARAMS[2],
    SOURCE_PARAMS[3],
    SOURCE_PARAMS[4],
    SOURCE_PARAMS[5],
    param(
        "histogram",
        "histogram family, without _bucket",
        Some(DEFAULT_HISTOGRAM),
    ),
    param("quantile", "the quantile, between 0 and 1", Some("0.95")),
    param(
        "threshold",
        "latency limit, e.g. 2s or 500ms (passes when the quantile is ≤ it); this or baseline_factor",
        None,
    ),
    param(
        "baseline_factor",
        "limit as a multiple of the baseline metrics-baseline recorded (e.g. 1.5); with threshold, the stricter applies",
        None,
    ),
    param(
        "window",
        "`cumulative` or a duration such as 5m",
        Some("5m"),
    ),
    param(
        "min_requests",
        "fewer requests (per group) is no_data",
        Some("100"),
    ),
    param(
        "by",
        "labels to judge separately, comma-separated (e.g. route)",
        None,
    ),
];

const RATIO_PARAMS: [ParamSpec; 12] = [
    SOURCE_PARAMS[0],
    SOURCE_PARAMS[1],
    SOURCE_PARAMS[2],
    SOURCE_PARAMS[3],
    SOURCE_PARAMS[4],
    SOURCE_PARAMS[5],
    param("counter", "request counter", Some(DEFAULT_COUNTER)),
    param(
        "status_label",
        "label holding the HTTP status",
        Some("status"),
    ),
    param(
        "errors",
        "statuses counted as errors (PromQL =~ regex)",
        Some("5.."),
    ),
    ParamSpec {
        name: "threshold",
        help: "error ratio limit: 0.01 or 1% (passes when the ratio is ≤ it)",
        required: true,
        default: None,
    },
    param(
        "window",
        "`cumulative` or a duration such as 5m",
        Some("5m"),
    ),
    param("min_requests", "fewer requests is no_data", Some("100")),
];

const ENDPOINT_PARAMS: [ParamSpec; 6] = [
    param(
        "url",
        "metrics URL (default: environment `metrics_url`, else `base_url`/metrics)",
        None,
    ),
    SOURCE_PARAMS[2],
    SOURCE_PARAMS[3],
    SOURCE_PARAMS[5],
    param(
        "require",
        "metric names that must be present, comma-separated",
        None,
    ),
    param(
        "reject_anonymous",
        "true to also require that a request without the token is refused",
        Some("false"),
    ),
];

fn window(p: &Params) -> Result<Window, ParamError> {
    let text = p.require("window")?;
    Window::parse(text).map_err(|e| {
        p.error(
            "window",
            format!("is not usable: {e}; or write `cumulative`"),
        )
    })
}

fn min_requests(p: &Params) -> Result<f64, ParamError> {
    let n: f64 = p.parse("min_requests")?.unwrap_or(0.0);
    if !(n.is_finite() && n >= 0.0) {
        return Err(p.error("min_requests", "must be a number ≥ 0"));
    }
    Ok(n)
}

/// Parses a latency such as `2s`, `500ms` or `2` (seconds).
fn seconds(p: &Params, name: &str) -> Result<f64, ParamError> {
    let text = p.require(name)?;
    escola_runbook_core::duration::parse(text)
        .map(|d| d.as_secs_f64())
        .map_err(|e| p.error(name, format!("is not usable: {e}")))
}

/// Parses a ratio such as `0.01` or `1%`.
pub fn parse_ratio(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => text.parse::<f64>().ok()?,
    };
    (value.is_finite() && (0.0..=1.0).contains(&value)).then_some(value)
}

pub(crate) fn specs() -> Vec<CheckSpec> {
    vec![
        CheckSpec {
            name: "metrics-endpoint",
            summary: "the /metrics endpoint answers with the Bearer token and a valid exposition",
            params: &ENDPOINT_PARAMS,
            build: |p| {
                Ok(std::sync::Arc::new(
                    MetricsEndpointCheck::new()
                        .source(SourceConfig::from_params(p)?)
                        .require(p.list("require").unwrap_or_default())
                        .reject_anonymous(p.parse::<bool>("reject_anonymous")?.unwrap_or(false)),
                ))
            },
        },
        CheckSpec {
            name: "metrics-baseline",
            summary: "records baseline P50/P95/P99 latency (values baseline.latency.p50/p95/p99) for later steps",
            params: &BASELINE_PARAMS,
            build: |p| {
                Ok(std::sync::Arc::new(
                    LatencyBaselineCheck::new(SourceConfig::from_params(p)?)
                        .histogram(p.require("histogram")?)
                        .window(window(p)?)
                        .min_requests(min_requests(p)?),
                ))
            },
        },
        CheckSpec {
            name: "metrics-latency",
            summary: "a latency quantile (default P95) of the request histogram stays at or below a threshold",
            params: &LATENCY_PARAMS,
            build: |p| {
                let q: f64 = p.parse("quantile")?.unwrap_or(0.95);
                if !(0.0..=1.0).contains(&q) {
                    return Err(p.error("quantile", "must be between 0 and 1 (0.95 for P95)"));
                }
                let source = SourceConfig::from_params(p)?;
                let factor: Option<f64> = p.parse("baseline_factor")?;
                if factor.is_some_and(|f| !(f.is_finite() && f > 0.0)) {
                    return Err(p.error("baseline_factor", "must be a positive number, e.g. 1.5"));
                }
                let check = match (p.get("threshold"), factor) {
                    (Some(_), f) => {
                        let c = LatencyCheck::new(source, q, seconds(p, "threshold")?);
                        match f {
                            Some(f) => c.baseline_factor(f),
                            None => c,
                        }
                    }
                    (None, Some(f)) => LatencyCheck::against_baseline(source, q, f),
                    (None, None) => {
                        return Err(p.error(
                            "threshold",
                            "or `baseline_factor` is required: a limit such as 2s, or a multiple of the baseline such as 1.5",
                        ));
                    }
                };
                Ok(std::sync::Arc::new(
                    check
                        .histogram(p.require("histogram")?)
                        .window(window(p)?)
                        .min_requests(min_requests(p)?)
                        .by(p.list("by").unwrap_or_default()),
                ))
            },
        },
        CheckSpec {
            name: "metrics-error-ratio",
            summary: "the share of requests with an error status (default 5..) stays at or below a threshold",
            params: &RATIO_PARAMS,
            build: |p| {
                let text = p.require("threshold")?;
                let threshold = parse_ratio(text).ok_or_else(|| {
                    p.error(
                        "threshold",
                        format!("is `{text}`; write a ratio such as 0.01 or 1%"),
                    )
                })?;
                let pattern = p.require("errors")?;
                let matcher =
                    StatusMatcher::new(pattern).map_err(|e| p.error("errors", e.to_string()))?;
                Ok(std::sync::Arc::new(
                    ErrorRatioCheck::new(SourceConfig::from_params(p)?, threshold)
                        .counter(p.require("counter")?)
                        .status_label(p.require("status_label")?)
                        .errors(matcher)
                        .window(window(p)?)
                        .min_requests(min_requests(p)?),
                ))
            },
        },
    ]
}
