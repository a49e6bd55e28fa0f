//! Where the numbers come from, behind one trait: the application's own
//! `/metrics` (scraped directly, Bearer token, timeout, TLS) or a Prometheus
//! HTTP API (`/api/v1/query`, `/api/v1/query_range`; Thanos, Mimir and
//! VictoriaMetrics speak it too). A team with Prometheus asks it with PromQL;
//! a team without scrapes the app twice and takes the deltas.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use escola_runbook_core::duration::{self, DurationError, Range};
use escola_runbook_core::{Secret, format_duration};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::OnceCell;

use crate::http::{ClientError, ClientPolicy};

use super::compute::{self, Histogram, HistogramCollector, Labels, Series};
use super::parse::{Format, ParseError, Sample, Shape, StreamParser};

/// Default limit for one HTTP request: every HTTP check's.
pub const DEFAULT_TIMEOUT: Duration = crate::http::DEFAULT_TIMEOUT;

pub use super::bytes::{
    ByteSize, BytesError, DEFAULT_MAX_BODY, DEFAULT_MAX_BODY_TEXT, format_bytes, parse_bytes,
};

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
    /// The answer is larger than the cap; reading stopped there.
    #[error(
        "{url} answered with {}, more than the {} cap on one answer{}; raise the cap (`max_body`) if a page that large is expected",
        if *.declared { format!("Content-Length {} ({})", .seen, format_bytes(*.seen)) } else { format!("{} read before stopping ({} bytes)", format_bytes(*.seen), .seen) },
        format_bytes(*.limit),
        if *.declared { ", so nothing was read" } else { "" }
    )]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap, in bytes.
        limit: u64,
        /// The size seen: the declared Content-Length, or the bytes read
        /// when the cap was crossed.
        seen: u64,
        /// True when `seen` is the Content-Length.
        declared: bool,
    },
    /// The series to keep from one answer would take more memory than its
    /// cap; keeping stopped there.
    #[error(
        "{url}: keeping the {series} series of `{metric}` seen so far already takes more than the {} cap on one answer; sum them over fewer labels (`by`) or raise the cap (`max_body`)",
        format_bytes(*.limit)
    )]
    TooManySeries {
        /// The URL.
        url: String,
        /// The metric whose series were being kept.
        metric: String,
        /// Series kept when the cap was crossed.
        series: usize,
        /// The cap, in bytes.
        limit: u64,
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

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Window::Cumulative => s.serialize_str("cumulative"),
            Window::Last(d) => s.serialize_str(&duration::exact(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Window::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("{e}; or write `cumulative`")))
    }
}

escola_runbook_core::text_param_schema!(
    Window,
    "Window",
    "`cumulative` (one scrape, since the process started) or a duration such as 5m (two scrapes that far apart)"
);

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

/// The client for `url` under the shared [`ClientPolicy`], built once per
/// source. A zero `timeout` means no limit (for tests on tokio's paused
/// clock, where any pending timer would fire at once while the socket is
/// busy).
async fn cached_client<'c>(
    cell: &'c OnceCell<reqwest::Client>,
    timeout: Duration,
    url: &str,
) -> Result<&'c reqwest::Client, SourceError> {
    cell.get_or_try_init(|| async { ClientPolicy::new(timeout).target(url).build() })
        .await
        .map_err(|e: ClientError| SourceError::Transport {
            url: url.to_owned(),
            message: e.reason,
            timed_out: false,
        })
}

/// What both HTTP sources send and keep: the bearer token, the limit for
/// one request, the cap on one answer, and the client built for that limit.
#[derive(Clone)]
struct HttpAccess {
    token: Option<Secret>,
    timeout: Duration,
    max_body: u64,
    // Built once: loading the TLS roots costs milliseconds per client.
    client: Arc<OnceCell<reqwest::Client>>,
}

impl Default for HttpAccess {
    fn default() -> Self {
        HttpAccess {
            token: None,
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            client: Arc::default(),
        }
    }
}

impl HttpAccess {
    /// A new limit for one request; the client is built again for it.
    fn set_timeout(&mut self, limit: Duration) {
        self.timeout = limit;
        self.client = Arc::default();
    }

    /// A GET of `url` (`shown` in errors), with the token if there is one.
    async fn get(
        &self,
        url: reqwest::Url,
        shown: &str,
    ) -> Result<reqwest::RequestBuilder, SourceError> {
        let client = cached_client(&self.client, self.timeout, shown).await?;
        let request = client.get(url);
        Ok(match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        })
    }
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

/// Reads `response`'s body piece by piece into `sink`, refusing it (before
/// reading, from its Content-Length, or as soon as the bytes read cross
/// it) when it is larger than `limit`.
async fn read_capped(
    mut response: reqwest::Response,
    url: &str,
    limit: u64,
    sink: &mut (dyn FnMut(&[u8]) -> Result<(), SourceError> + Send),
) -> Result<(), SourceError> {
    let too_large = |seen, declared| SourceError::TooLarge {
        url: url.to_owned(),
        limit,
        seen,
        declared,
    };
    if let Some(declared) = response.content_length().filter(|&n| n > limit) {
        return Err(too_large(declared, true));
    }
    let mut read: u64 = 0;
    while let Some(piece) = response.chunk().await.map_err(|e| transport(url, &e))? {
        read = read.saturating_add(piece.len() as u64);
        if read > limit {
            return Err(too_large(read, false));
        }
        sink(&piece)?;
    }
    Ok(())
}

/// The whole body, within `limit`.
async fn read_all(
    response: reqwest::Response,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    read_capped(response, url, limit, &mut |piece| {
        body.extend_from_slice(piece);
        Ok(())
    })
    .await?;
    Ok(body)
}

/// The start of an error answer: enough for a message, never the whole of
/// a large one.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < 4096 {
        match response.chunk().await {
            Ok(Some(piece)) => body.extend_from_slice(&piece),
            _ => break,
        }
    }
    excerpt(&String::from_utf8_lossy(&body))
}

/// One answer of a `/metrics` endpoint, parsed as it streamed in.
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
    /// Families, samples and bytes of the body.
    pub shape: Shape,
    /// How long the request took.
    pub elapsed: Duration,
}

/// Scrapes an application's `/metrics` directly.
#[derive(Clone)]
pub struct ScrapeSource {
    url: String,
    // The URL without user:password, for messages and evidence.
    shown: String,
    http: HttpAccess,
    every: Option<Duration>,
}

impl std::fmt::Debug for ScrapeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeSource")
            .field("url", &self.shown)
            .field("token", &self.http.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.http.timeout)
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
            http: HttpAccess::default(),
            every: None,
        }
    }

    escola_runbook_core::setters! {
        /// Refuses a page larger than `bytes` ([`DEFAULT_MAX_BODY`] by
        /// default), reading no further than that.
        max_body(bytes: u64) => http.max_body = bytes;

        /// Sends `Authorization: Bearer <token>`.
        token(token: Secret) => http.token = Some(token);

        /// Over a window, scrapes every `step` instead of only at both ends, so
        /// a restart whose counters climbed past their old values is still seen
        /// as a reset (two scrapes cannot tell).
        every(step: Duration) => every = Some(step);
    }

    /// Limit for one request (zero: none).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.http.set_timeout(limit);
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when a token is sent.
    pub fn has_token(&self) -> bool {
        self.http.token.is_some()
    }

    /// One GET of the endpoint, parsed as it arrives: `each` sees every
    /// sample, and nothing of the body is held beyond its current line
    /// (when the `Content-Type` does not say the format, the body is held,
    /// within the cap, to find it). A non-2xx status is an error.
    pub async fn scrape(
        &self,
        each: &mut (dyn FnMut(&Sample<'_>) + Send),
    ) -> Result<Scrape, SourceError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| SourceError::InvalidUrl {
            url: self.shown.clone(),
            message: e.to_string(),
        })?;
        let request = self.http.get(url, &self.shown).await?.header(
            reqwest::header::ACCEPT,
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
        );
        let started = tokio::time::Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| transport(&self.shown, &e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(SourceError::Status {
                url: self.shown.clone(),
                status,
                body: read_excerpt(response).await,
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let invalid = |format: Format| {
            move |error| SourceError::Parse {
                url: self.shown.clone(),
                format: format.name(),
                error,
            }
        };
        // The cap bounds what parsing keeps (the family names) as well as
        // the bytes read.
        let budget = usize::try_from(self.http.max_body).unwrap_or(usize::MAX);
        let (format, shape) = match Format::declared(content_type.as_deref()) {
            Some(format) => {
                let mut parser = StreamParser::new(format, budget);
                read_capped(response, &self.shown, self.http.max_body, &mut |piece| {
                    parser.feed(piece, each).map_err(invalid(format))
                })
                .await?;
                (format, parser.finish(each).map_err(invalid(format))?)
            }
            None => {
                let body = read_all(response, &self.shown, self.http.max_body).await?;
                let format = Format::detect(None, &String::from_utf8_lossy(&body));
                let mut parser = StreamParser::new(format, budget);
                parser.feed(&body, each).map_err(invalid(format))?;
                (format, parser.finish(each).map_err(invalid(format))?)
            }
        };
        Ok(Scrape {
            url: self.shown.clone(),
            status,
            content_type,
            format,
            shape,
            elapsed: started.elapsed(),
        })
    }

    /// One scrape, keeping only the histogram and counter `query` asks for:
    /// histograms with one label set each, counters as series.
    async fn extract(&self, query: &MetricsQuery) -> Result<(Scrape, Raw), SourceError> {
        let bucket = query.histogram.as_ref().map(|h| format!("{h}_bucket"));
        // One scrape read as it is can be summed on the way in; a window's
        // deltas need every series of every scrape first.
        let summing = match (query.window, &query.by) {
            (Window::Cumulative, Some(by)) => Some(by),
            _ => None,
        };
        let mut histograms = summing.map_or_else(HistogramCollector::default, |by| {
            HistogramCollector::summing(by)
        });
        let counter_keys = counter_keys(query).filter(|_| summing.is_some());
        let mut summed: BTreeMap<Labels, f64> = BTreeMap::new();
        let mut counters = Vec::new();
        let mut counters_cost = 0;
        let budget = usize::try_from(self.http.max_body).unwrap_or(usize::MAX);
        // Past the cap nothing more is kept; the page is still read to its
        // end (within the cap) so a malformed one says so first.
        let mut over: Option<String> = None;
        let scrape = self
            .scrape(&mut |sample| {
                if over.is_some() {
                    return;
                }
                if bucket.as_deref() == Some(sample.name) {
                    histograms.add(sample);
                } else if query.counter.as_deref() == Some(sample.name) {
                    let series = compute::owned_series(sample);
                    match &counter_keys {
                        Some(keys) => {
                            let key = compute::project(&series.labels, keys);
                            if !summed.contains_key(&key) {
                                counters_cost += compute::labels_cost(&key);
                            }
                            *summed.entry(key).or_insert(0.0) += series.value;
                        }
                        None => {
                            counters_cost += compute::labels_cost(&series.labels);
                            counters.push(series);
                        }
                    }
                } else {
                    return;
                }
                if histograms.cost() + counters_cost > budget {
                    over = Some(sample.name.to_owned());
                }
            })
            .await?;
        counters.extend(
            summed
                .into_iter()
                .map(|(labels, value)| Series { labels, value }),
        );
        if let Some(metric) = over {
            return Err(SourceError::TooManySeries {
                url: self.shown.clone(),
                metric,
                series: counters.len() + histograms.finish().len(),
                limit: self.http.max_body,
            });
        }
        Ok((
            scrape,
            Raw {
                histograms: histograms.finish(),
                counters,
            },
        ))
    }
}

struct Raw {
    histograms: Vec<Histogram>,
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
        let (first, first_raw) = self.extract(query).await?;
        let (histograms, counters, seconds, provenance) = match query.window {
            Window::Cumulative => (
                first_raw.histograms,
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
                let mut histograms = vec![first_raw.histograms];
                let mut counters = vec![first_raw.counters];
                let step = self.every.filter(|s| !s.is_zero() && *s < d).unwrap_or(d);
                let mut format = first.format;
                loop {
                    let remaining = d.saturating_sub(started.elapsed());
                    if remaining.is_zero() {
                        break;
                    }
                    tokio::time::sleep(step.min(remaining)).await;
                    let (next, raw) = self.extract(query).await?;
                    format = next.format;
                    histograms.push(raw.histograms);
                    counters.push(raw.counters);
                }
                let secs = started.elapsed().as_secs_f64();
                let scrapes = histograms.len();
                (
                    compute::histogram_window_delta(&histograms),
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
            histograms: match query.by.as_deref() {
                Some(by) => compute::sum_histograms(histograms, by),
                None => histograms,
            },
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
    http: HttpAccess,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base", &self.shown)
            .field("token", &self.http.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.http.timeout)
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
    super::parse::parse_float(text)
}

impl PrometheusSource {
    /// The API at `base` (e.g. `http://prometheus:9090`; a path prefix such
    /// as `/prometheus` is kept).
    pub fn new(base: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_owned();
        PrometheusSource {
            shown: crate::http::strip_userinfo(&base),
            base,
            http: HttpAccess::default(),
        }
    }

    escola_runbook_core::setters! {
        /// Refuses an answer larger than `bytes` ([`DEFAULT_MAX_BODY`] by
        /// default), reading no further than that.
        max_body(bytes: u64) => http.max_body = bytes;

        /// Sends `Authorization: Bearer <token>` (Grafana Cloud, Mimir gateways).
        token(token: Secret) => http.token = Some(token);
    }

    /// Limit for one request (zero: none).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.http.set_timeout(limit);
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
        let request = self.http.get(url, &endpoint).await?;
        let response = request.send().await.map_err(|e| transport(&endpoint, &e))?;
        let status = response.status().as_u16();
        let body = read_all(response, &endpoint, self.http.max_body).await?;
        decode_answer(endpoint, promql, status, &String::from_utf8_lossy(&body))
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

/// An API answer of HTTP `status` to `promql` from `endpoint`, decoded: the
/// data, or the error Prometheus put in its payload.
pub(crate) fn decode_answer(
    endpoint: String,
    promql: &str,
    status: u16,
    body: &str,
) -> Result<QueryResponse, SourceError> {
    // Prometheus answers 400/422/503 with a JSON error body: surface it.
    let envelope: ApiEnvelope = match serde_json::from_str(body) {
        Ok(e) => e,
        Err(e) if (200..300).contains(&status) => {
            return Err(SourceError::Decode {
                url: endpoint,
                message: format!("not a Prometheus API answer ({e}): {}", excerpt(body)),
            });
        }
        Err(_) => {
            return Err(SourceError::Status {
                url: endpoint,
                status,
                body: excerpt(body),
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
    let ApiData {
        result_type,
        result,
    } = envelope.data.ok_or_else(|| SourceError::Decode {
        url: endpoint.clone(),
        message: "answer has no `data`".into(),
    })?;
    let decode = |e: serde_json::Error| SourceError::Decode {
        url: endpoint.clone(),
        message: format!("`{result_type}` result: {e}"),
    };
    // The result is taken, not cloned: a large answer is held once.
    let data = match result_type.as_str() {
        "vector" => {
            let items: Vec<ApiVectorItem> = serde_json::from_value(result).map_err(decode)?;
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
            let items: Vec<ApiMatrixItem> = serde_json::from_value(result).map_err(decode)?;
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
            let v: (f64, String) = serde_json::from_value(result).map_err(decode)?;
            QueryData::Scalar(instant(&endpoint, v)?)
        }
        "string" => {
            let (_, s): (f64, String) = serde_json::from_value(result).map_err(decode)?;
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
