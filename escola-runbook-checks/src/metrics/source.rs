//! Where the numbers come from, behind one trait: the application's own
//! `/metrics` (scraped directly, Bearer token, timeout, TLS) or a Prometheus
//! HTTP API (`/api/v1/query`, `/api/v1/query_range`; Thanos, Mimir and
//! VictoriaMetrics speak it too). A team with Prometheus asks it with PromQL;
//! a team without scrapes the app twice and takes the deltas.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use escola_runbook_core::duration::{self, DurationError, Range};
use escola_runbook_core::{Secret, format_duration};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::compute::{self, Histogram, Labels, Series};
use super::parse::{self, Format, ParseError};

/// Default limit for one HTTP request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A source could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL is not usable.
    #[error("`{url}` is not a valid URL: {message}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("no answer from {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
        /// True when the request timed out.
        timed_out: bool,
    },
    /// An HTTP status other than 2xx.
    #[error("{url} answered HTTP {status}{}: {body}", auth_hint(*status))]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The body is not a valid exposition.
    #[error("{url} answered, but not with valid metrics ({format}): {error}")]
    Parse {
        /// The URL.
        url: String,
        /// The format it was parsed as.
        format: &'static str,
        /// Where and what.
        error: ParseError,
    },
    /// The Prometheus API answered with an error.
    #[error("Prometheus rejected `{query}`: {error_type}: {message}")]
    Api {
        /// The PromQL.
        query: String,
        /// `bad_data`, `timeout`, `execution`...
        error_type: String,
        /// Prometheus's message.
        message: String,
    },
    /// The Prometheus API answered something we do not understand.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

fn auth_hint(status: u16) -> &'static str {
    match status {
        401 => " (unauthorized: the token is missing or wrong)",
        403 => " (forbidden: the token is not allowed to read metrics)",
        _ => "",
    }
}

impl SourceError {
    /// True when the failure says nothing about the target's health beyond
    /// "could not measure" (everything except an HTTP status).
    pub fn is_measurement_failure(&self) -> bool {
        !matches!(self, SourceError::Status { .. })
    }
}

/// Over what time the numbers are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Everything the counters hold (since the process started): one scrape,
    /// or an instant query on the raw counters.
    Cumulative,
    /// The last `Duration`: two scrapes that far apart, or PromQL
    /// `increase(...[d])`.
    Last(Duration),
}

impl Window {
    /// "since process start" or "last 5m".
    pub fn describe(&self) -> String {
        match self {
            Window::Cumulative => "cumulative (since the process started)".into(),
            Window::Last(d) => format!("last {}", format_duration(*d)),
        }
    }

    /// Parses `cumulative` (or `0`) and durations such as `5m`.
    pub fn parse(text: &str) -> Result<Window, DurationError> {
        match text.trim() {
            "cumulative" | "" => Ok(Window::Cumulative),
            other => duration::parse_in(other, Range::ZERO_OR_MORE).map(|d| {
                if d.is_zero() {
                    Window::Cumulative
                } else {
                    Window::Last(d)
                }
            }),
        }
    }
}

/// What a check needs from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsQuery {
    /// Histogram family (without `_bucket`), e.g. `http_request_duration_seconds`.
    pub histogram: Option<String>,
    /// Request counter, e.g. `http_requests_total`.
    pub counter: Option<String>,
    /// Labels to keep apart: `Some(labels)` is `sum by (labels)` (empty sums
    /// everything into one), `None` keeps every series as it is.
    pub by: Option<Vec<String>>,
    /// The counter's status label (`status` or `code`), kept for the ratio.
    pub status_label: String,
    /// Over what time.
    pub window: Window,
}

impl Default for MetricsQuery {
    fn default() -> Self {
        MetricsQuery {
            histogram: Some("http_request_duration_seconds".into()),
            counter: Some("http_requests_total".into()),
            by: Some(Vec::new()),
            status_label: "status".into(),
            window: Window::Cumulative,
        }
    }
}

/// What a source delivered: histograms summed by `by`, counters summed by
/// `by` and the status label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsData {
    /// One histogram per `by` group (bucket counts over the window).
    pub histograms: Vec<Histogram>,
    /// Counter series over the window, by `by` + status label.
    pub counters: Vec<Series>,
    /// Warnings to show (Prometheus query warnings, repairs).
    pub warnings: Vec<String>,
    /// How the numbers were obtained, for evidence ("2 scrapes of URL 5m
    /// apart", "PromQL: ...").
    pub provenance: Vec<String>,
    /// Seconds between the two scrapes, or the PromQL window.
    pub seconds: Option<f64>,
}

/// A place to read request metrics from.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// Where it reads (URL; never a token).
    fn describe(&self) -> String;

    /// The histograms and counters `query` asks for. Waiting for a window
    /// uses tokio's clock, so paused-clock tests run instantly.
    async fn fetch(&self, query: &MetricsQuery) -> Result<MetricsData, SourceError>;
}

/// A client with `timeout` per request; zero means no limit (for tests on
/// tokio's paused clock, where any pending timer would fire at once while
/// the socket is busy).
fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("escola-runbook/", env!("CARGO_PKG_VERSION")));
    if !timeout.is_zero() {
        builder = builder.timeout(timeout).connect_timeout(timeout);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn cached_client<'c>(
    cell: &'c OnceCell<reqwest::Client>,
    timeout: Duration,
    url: &str,
) -> Result<&'c reqwest::Client, SourceError> {
    cell.get_or_try_init(|| async { client(timeout) })
        .await
        .map_err(|message| SourceError::Transport {
            url: url.to_owned(),
            message,
            timed_out: false,
        })
}

fn transport(url: &str, e: &reqwest::Error) -> SourceError {
    // reqwest's Display stops at the outermost error; the cause says why.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    SourceError::Transport {
        url: url.to_owned(),
        message,
        timed_out: e.is_timeout(),
    }
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// One answer of a `/metrics` endpoint.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The URL scraped.
    pub url: String,
    /// HTTP status (always 2xx here).
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The format the body is in.
    pub format: Format,
    /// The body.
    pub body: String,
    /// How long the request took.
    pub elapsed: Duration,
}

impl Scrape {
    /// Parses the body.
    pub fn parse(&self) -> Result<parse::Exposition<'_>, SourceError> {
        parse::parse(&self.body, self.format).map_err(|error| SourceError::Parse {
            url: self.url.clone(),
            format: self.format.name(),
            error,
        })
    }
}

/// Scrapes an application's `/metrics` directly.
#[derive(Clone)]
pub struct ScrapeSource {
    url: String,
    // The URL without user:password, for messages and evidence.
    shown: String,
    token: Option<Secret>,
    timeout: Duration,
    every: Option<Duration>,
    // Built once: loading the TLS roots costs milliseconds per client.
    client: Arc<OnceCell<reqwest::Client>>,
}

impl std::fmt::Debug for ScrapeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeSource")
            .field("url", &self.shown)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ScrapeSource {
    /// Scrapes `url` (http or https; TLS through rustls with the system's
    /// roots).
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        ScrapeSource {
            shown: crate::http::strip_userinfo(&url),
            url,
            token: None,
            timeout: DEFAULT_TIMEOUT,
            every: None,
            client: Arc::default(),
        }
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// Over a window, scrapes every `step` instead of only at both ends, so
    /// a restart whose counters climbed past their old values is still seen
    /// as a reset (two scrapes cannot tell).
    pub fn every(mut self, step: Duration) -> Self {
        self.every = Some(step);
        self
    }

    /// Limit for one request (zero: none).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self.client = Arc::default();
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when a token is sent.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// One GET of the endpoint; a non-2xx status is an error.
    pub async fn scrape(&self) -> Result<Scrape, SourceError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| SourceError::InvalidUrl {
            url: self.shown.clone(),
            message: e.to_string(),
        })?;
        let client = cached_client(&self.client, self.timeout, &self.shown).await?;
        let mut request = client.get(url).header(
            reqwest::header::ACCEPT,
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
        );
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let started = tokio::time::Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| transport(&self.shown, &e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|e| transport(&self.shown, &e))?;
        let elapsed = started.elapsed();
        if !(200..300).contains(&status) {
            return Err(SourceError::Status {
                url: self.shown.clone(),
                status,
                body: excerpt(&body),
            });
        }
        let format = Format::detect(content_type.as_deref(), &body);
        Ok(Scrape {
            url: self.shown.clone(),
            status,
            content_type,
            format,
            body,
            elapsed,
        })
    }

    fn extract(&self, scrape: &Scrape, query: &MetricsQuery) -> Result<Raw, SourceError> {
        let exposition = scrape.parse()?;
        Ok(Raw {
            buckets: query
                .histogram
                .as_ref()
                .map(|h| compute::series(&exposition, &format!("{h}_bucket")))
                .unwrap_or_default(),
            counters: query
                .counter
                .as_ref()
                .map(|c| compute::series(&exposition, c))
                .unwrap_or_default(),
        })
    }
}

struct Raw {
    buckets: Vec<Series>,
    counters: Vec<Series>,
}

fn counter_keys(query: &MetricsQuery) -> Option<Vec<String>> {
    let mut keys = query.by.clone()?;
    if !keys.contains(&query.status_label) {
        keys.push(query.status_label.clone());
    }
    Some(keys)
}

fn sum_if(series: Vec<Series>, keys: Option<&[String]>) -> Vec<Series> {
    match keys {
        Some(keys) => compute::sum_by(&series, keys),
        None => series,
    }
}

#[async_trait]
impl MetricsSource for ScrapeSource {
    fn describe(&self) -> String {
        format!("scrape of {}", self.shown)
    }

    async fn fetch(&self, query: &MetricsQuery) -> Result<MetricsData, SourceError> {
        let first = self.scrape().await?;
        let first_raw = self.extract(&first, query)?;
        let (buckets, counters, seconds, provenance) = match query.window {
            Window::Cumulative => (
                first_raw.buckets,
                first_raw.counters,
                None,
                format!(
                    "one scrape of {} ({}), cumulative counters",
                    self.shown,
                    first.format.name()
                ),
            ),
            Window::Last(d) => {
                let started = tokio::time::Instant::now();
                let mut buckets = vec![first_raw.buckets];
                let mut counters = vec![first_raw.counters];
                let step = self.every.filter(|s| !s.is_zero() && *s < d).unwrap_or(d);
                let mut format = first.format;
                loop {
                    let remaining = d.saturating_sub(started.elapsed());
                    if remaining.is_zero() {
                        break;
                    }
                    tokio::time::sleep(step.min(remaining)).await;
                    let next = self.scrape().await?;
                    let raw = self.extract(&next, query)?;
                    format = next.format;
                    buckets.push(raw.buckets);
                    counters.push(raw.counters);
                }
                let secs = started.elapsed().as_secs_f64();
                let scrapes = buckets.len();
                (
                    compute::window_delta(&buckets),
                    compute::window_delta(&counters),
                    Some(secs),
                    format!(
                        "{scrapes} scrapes of {} over {} ({}), deltas with counter resets handled",
                        self.shown,
                        format_duration(Duration::from_secs_f64(secs)),
                        format.name()
                    ),
                )
            }
        };
        Ok(MetricsData {
            histograms: compute::histograms(&buckets, query.by.as_deref()),
            counters: sum_if(counters, counter_keys(query).as_deref()),
            warnings: Vec::new(),
            provenance: vec![provenance],
            seconds,
        })
    }
}

/// A Prometheus-compatible HTTP API.
#[derive(Clone)]
pub struct PrometheusSource {
    base: String,
    shown: String,
    token: Option<Secret>,
    timeout: Duration,
    client: Arc<OnceCell<reqwest::Client>>,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base", &self.shown)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A PromQL result.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    /// Instant vector: one value per series.
    Vector(Vec<InstantSample>),
    /// Range vector or `query_range` result: points per series.
    Matrix(Vec<RangeSeries>),
    /// A scalar.
    Scalar(InstantValue),
    /// A string.
    String(String),
}

/// A timestamped value (`[ <seconds>, "<value>" ]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstantValue {
    /// Seconds since the epoch.
    pub time: f64,
    /// The value, parsed exactly from Prometheus's shortest representation.
    pub value: f64,
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// Labels, `__name__` included when Prometheus kept it.
    pub metric: Labels,
    /// Its value.
    pub value: InstantValue,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Labels.
    pub metric: Labels,
    /// Points, oldest first.
    pub values: Vec<InstantValue>,
}

/// A successful API answer with Prometheus's warnings and infos.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    /// The data.
    pub data: QueryData,
    /// Warnings (e.g. partial results from Thanos).
    pub warnings: Vec<String>,
    /// Info annotations (Prometheus 2.50+).
    pub infos: Vec<String>,
}

#[derive(Deserialize)]
struct ApiEnvelope {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct ApiVectorItem {
    metric: Labels,
    value: (f64, String),
}

#[derive(Deserialize)]
struct ApiMatrixItem {
    metric: Labels,
    values: Vec<(f64, String)>,
}

fn instant(url: &str, (time, text): (f64, String)) -> Result<InstantValue, SourceError> {
    let value = parse_float(&text).ok_or_else(|| SourceError::Decode {
        url: url.to_owned(),
        message: format!("sample value `{text}` is not a number"),
    })?;
    Ok(InstantValue { time, value })
}

fn parse_float(text: &str) -> Option<f64> {
    parse::parse_float(text)
}

impl PrometheusSource {
    /// The API at `base` (e.g. `http://prometheus:9090`; a path prefix such
    /// as `/prometheus` is kept).
    pub fn new(base: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_owned();
        PrometheusSource {
            shown: crate::http::strip_userinfo(&base),
            base,
            token: None,
            timeout: DEFAULT_TIMEOUT,
            client: Arc::default(),
        }
    }

    /// Sends `Authorization: Bearer <token>` (Grafana Cloud, Mimir gateways).
    pub fn token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// Limit for one request (zero: none).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self.client = Arc::default();
        self
    }

    /// `GET /api/v1/query`: PromQL at `time` (seconds since the epoch; now
    /// when `None`).
    pub async fn query(
        &self,
        promql: &str,
        time: Option<f64>,
    ) -> Result<QueryResponse, SourceError> {
        let mut params = vec![("query", promql.to_owned())];
        if let Some(t) = time {
            params.push(("time", format_seconds(t)));
        }
        self.call("/api/v1/query", promql, &params).await
    }

    /// `GET /api/v1/query_range` from `start` to `end` (seconds since the
    /// epoch) every `step`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<QueryResponse, SourceError> {
        let params = vec![
            ("query", promql.to_owned()),
            ("start", format_seconds(start)),
            ("end", format_seconds(end)),
            ("step", format_seconds(step.as_secs_f64())),
        ];
        self.call("/api/v1/query_range", promql, &params).await
    }

    async fn call(
        &self,
        path: &str,
        promql: &str,
        params: &[(&str, String)],
    ) -> Result<QueryResponse, SourceError> {
        let endpoint = format!("{}{path}", self.shown);
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            SourceError::InvalidUrl {
                url: endpoint.clone(),
                message: e.to_string(),
            }
        })?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let client = cached_client(&self.client, self.timeout, &endpoint).await?;
        let mut request = client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| transport(&endpoint, &e))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| transport(&endpoint, &e))?;
        // Prometheus answers 400/422/503 with a JSON error body: surface it.
        let envelope: ApiEnvelope = match serde_json::from_str(&body) {
            Ok(e) => e,
            Err(e) if (200..300).contains(&status) => {
                return Err(SourceError::Decode {
                    url: endpoint,
                    message: format!("not a Prometheus API answer ({e}): {}", excerpt(&body)),
                });
            }
            Err(_) => {
                return Err(SourceError::Status {
                    url: endpoint,
                    status,
                    body: excerpt(&body),
                });
            }
        };
        if envelope.status != "success" {
            return Err(SourceError::Api {
                query: promql.to_owned(),
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
                message: envelope
                    .error
                    .unwrap_or_else(|| format!("HTTP {status} without a message")),
            });
        }
        let data = envelope.data.ok_or_else(|| SourceError::Decode {
            url: endpoint.clone(),
            message: "answer has no `data`".into(),
        })?;
        let decode = |e: serde_json::Error| SourceError::Decode {
            url: endpoint.clone(),
            message: format!("`{}` result: {e}", data.result_type),
        };
        let data = match data.result_type.as_str() {
            "vector" => {
                let items: Vec<ApiVectorItem> =
                    serde_json::from_value(data.result.clone()).map_err(decode)?;
                QueryData::Vector(
                    items
                        .into_iter()
                        .map(|i| {
                            Ok(InstantSample {
                                metric: i.metric,
                                value: instant(&endpoint, i.value)?,
                            })
                        })
                        .collect::<Result<_, SourceError>>()?,
                )
            }
            "matrix" => {
                let items: Vec<ApiMatrixItem> =
                    serde_json::from_value(data.result.clone()).map_err(decode)?;
                QueryData::Matrix(
                    items
                        .into_iter()
                        .map(|i| {
                            Ok(RangeSeries {
                                metric: i.metric,
                                values: i
                                    .values
                                    .into_iter()
                                    .map(|v| instant(&endpoint, v))
                                    .collect::<Result<_, _>>()?,
                            })
                        })
                        .collect::<Result<_, SourceError>>()?,
                )
            }
            "scalar" => {
                let v: (f64, String) =
                    serde_json::from_value(data.result.clone()).map_err(decode)?;
                QueryData::Scalar(instant(&endpoint, v)?)
            }
            "string" => {
                let (_, s): (f64, String) =
                    serde_json::from_value(data.result.clone()).map_err(decode)?;
                QueryData::String(s)
            }
            other => {
                return Err(SourceError::Decode {
                    url: endpoint,
                    message: format!("unknown result type `{other}`"),
                });
            }
        };
        Ok(QueryResponse {
            data,
            warnings: envelope.warnings,
            infos: envelope.infos,
        })
    }

    async fn vector(
        &self,
        promql: &str,
        out: &mut MetricsData,
    ) -> Result<Vec<Series>, SourceError> {
        let response = self.query(promql, None).await?;
        out.provenance.push(format!("PromQL: {promql}"));
        out.warnings.extend(
            response
                .warnings
                .into_iter()
                .chain(response.infos)
                .map(|w| format!("{promql}: {w}")),
        );
        match response.data {
            QueryData::Vector(items) => Ok(items
                .into_iter()
                .map(|i| {
                    let mut labels = i.metric;
                    labels.remove("__name__");
                    Series {
                        labels,
                        value: i.value.value,
                    }
                })
                .collect()),
            other => Err(SourceError::Decode {
                url: self.shown.clone(),
                message: format!("`{promql}` gave {other:?}, expected an instant vector"),
            }),
        }
    }
}

/// Seconds as Prometheus accepts them (`1700000000.123`).
fn format_seconds(s: f64) -> String {
    format!("{s:.3}")
}

fn selector_range(window: Window) -> Option<String> {
    match window {
        Window::Cumulative => None,
        Window::Last(d) => Some(format!("{}ms", d.as_millis().max(1))),
    }
}

/// PromQL for the bucket counts of `histogram` over `window`, summed by
/// `by` and `le` (every series apart when `by` is `None`).
pub fn histogram_promql(histogram: &str, by: Option<&[String]>, window: Window) -> String {
    let keys = by.map(|by| {
        let mut keys = by.to_vec();
        keys.push("le".into());
        keys
    });
    sum_promql(&format!("{histogram}_bucket"), keys.as_deref(), window)
}

/// PromQL for `metric` over `window` (its `increase`, or the raw counter
/// when cumulative), summed by `keys` unless `None`.
pub fn sum_promql(metric: &str, keys: Option<&[String]>, window: Window) -> String {
    let inner = match selector_range(window) {
        Some(range) => format!("increase({metric}[{range}])"),
        None => metric.to_owned(),
    };
    match keys {
        Some(keys) => format!("sum by ({}) ({inner})", keys.join(", ")),
        None => inner,
    }
}

#[async_trait]
impl MetricsSource for PrometheusSource {
    fn describe(&self) -> String {
        format!("Prometheus API at {}", self.shown)
    }

    async fn fetch(&self, query: &MetricsQuery) -> Result<MetricsData, SourceError> {
        let mut out = MetricsData {
            seconds: match query.window {
                Window::Cumulative => None,
                Window::Last(d) => Some(d.as_secs_f64()),
            },
            ..MetricsData::default()
        };
        if let Some(h) = &query.histogram {
            let promql = histogram_promql(h, query.by.as_deref(), query.window);
            let buckets = self.vector(&promql, &mut out).await?;
            out.histograms = compute::histograms::<String>(&buckets, None);
        }
        if let Some(c) = &query.counter {
            let promql = sum_promql(c, counter_keys(query).as_deref(), query.window);
            out.counters = self.vector(&promql, &mut out).await?;
        }
        Ok(out)
    }
}
