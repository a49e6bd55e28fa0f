//! Sending a suite's requests and judging the responses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::{Redactor, Secrets};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH};
use reqwest::{Method, Url};
use tokio::time::Instant;

use crate::http::{ClientError, ClientPolicy, body_limited, explain_unmasked, strip_userinfo};

use super::report::{AssertionResult, AssertionVerdict, RequestResult, SmokeReport};
use super::suite::{Expect, JsonKind, Request, Suite, Undefined, substitute, to_pointer};

/// Reports progress ("3/12 requests").
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// How to run a suite.
#[derive(Clone)]
pub struct SmokeOptions {
    /// Joined to every request path that is not an absolute URL; also the
    /// `baseUrl` variable (a `--var baseUrl=...` overrides it).
    pub base_url: Option<String>,
    /// Variables, overriding the suite's, the base URL and the secrets.
    pub vars: BTreeMap<String, String>,
    /// Secrets usable as `{{name}}` (a Bearer token in a header): they
    /// override the suite's variables, and their values are masked in the
    /// report by their redactor and by [`SmokeOptions::redactor`].
    pub secrets: Secrets,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// Limit for each request, from sending to the last body byte.
    pub timeout: Duration,
    /// Masks secrets in URLs, headers and bodies that reach the report.
    pub redactor: Redactor,
    /// Called after each request.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for SmokeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmokeOptions")
            .field("base_url", &self.base_url)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Requests in flight at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Bytes of a response body read; JSON expectations on a longer body fail
/// with "not parsed" instead of buffering without bound.
const BODY_LIMIT: usize = 4 << 20;

/// Per-request limit unless told otherwise: every HTTP check's.
pub const DEFAULT_TIMEOUT: Duration = crate::http::DEFAULT_TIMEOUT;

impl Default for SmokeOptions {
    fn default() -> Self {
        SmokeOptions {
            base_url: None,
            vars: BTreeMap::new(),
            secrets: Secrets::new(),
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            redactor: Redactor::new(),
            progress: None,
        }
    }
}

/// The suite cannot be run as given: nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmokeError {
    /// A `{{placeholder}}` has no value.
    #[error(
        "request `{request}`: {{{{{name}}}}} in its {field} is not defined: give the variable a value (or define it in the suite)"
    )]
    UndefinedVariable {
        /// The request.
        request: String,
        /// url, header, body.
        field: &'static str,
        /// The variable.
        name: String,
    },
    /// A relative path and no base URL.
    #[error("request `{request}`: `{path}` is a path and no base URL was given")]
    NoBaseUrl {
        /// The request.
        request: String,
        /// The path.
        path: String,
    },
    /// The URL does not parse.
    #[error("request `{request}`: `{url}` is not a valid http(s) URL: {message}")]
    BadUrl {
        /// The request.
        request: String,
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The method is not a valid token.
    #[error("request `{request}`: `{method}` is not an HTTP method")]
    BadMethod {
        /// The request.
        request: String,
        /// The method.
        method: String,
    },
    /// A header name or value cannot be sent.
    #[error("request `{request}`: header `{name}` cannot be sent: {message}")]
    BadHeader {
        /// The request.
        request: String,
        /// The header.
        name: String,
        /// Why.
        message: String,
    },
    /// Writes allowed without a scratch resource.
    #[error(
        "suite `{suite}` allows writes but names no `if_match.scratch_path`; writes go only to a scratch resource, so add one or set allow_writes = false"
    )]
    WritesWithoutScratch {
        /// The suite.
        suite: String,
    },
    /// A `json_number` or `json_length` with no bound, which nothing
    /// could fail.
    #[error(
        "request `{request}`: the expectation on {pointer} gives no bound; give above, at_least, below or at_most"
    )]
    NoBounds {
        /// The request.
        request: String,
        /// Where the figure is.
        pointer: String,
    },
    /// Concurrency 0.
    #[error("concurrency must be at least 1")]
    BadConcurrency,
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Why a body was not read as JSON.
#[derive(Debug, thiserror::Error)]
enum Unparsed {
    /// Longer than [`BODY_LIMIT`]: only its start was read.
    #[error("over {} MiB, not parsed", BODY_LIMIT >> 20)]
    TooLarge,
    /// Not JSON.
    #[error(transparent)]
    NotJson(serde_json::Error),
}

struct Prepared {
    name: String,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    expect: Vec<Expect>,
}

struct Exchange {
    result: RequestResult,
    headers: HeaderMap,
    body: Vec<u8>,
    // The body was cut at BODY_LIMIT.
    truncated: bool,
}

/// The variables of a suite run in order: what the requests so far
/// captured, and which of their captures found nothing (and where).
struct Captured {
    vars: BTreeMap<String, String>,
    missing: BTreeMap<String, String>,
}

impl Captured {
    /// `variable` was to be captured by `by`, which gave nothing.
    fn lost(&mut self, variable: &str, by: &Request) {
        self.vars.remove(variable);
        self.missing.insert(variable.to_owned(), by.display_name());
    }
}

struct Runner {
    client: reqwest::Client,
    // The caller's and the secrets' (often the same registry).
    redactors: [Redactor; 2],
    trace_header: String,
    trace_on_errors: bool,
    timeout: Duration,
}

fn variables(suite: &Suite, options: &SmokeOptions) -> BTreeMap<String, String> {
    let mut vars = suite.variables.clone();
    if let Some(base) = &options.base_url {
        vars.insert("baseUrl".into(), base.trim_end_matches('/').to_owned());
    }
    for name in options.secrets.names() {
        if let Some(secret) = options.secrets.get(name) {
            vars.insert(name.to_owned(), secret.expose().to_owned());
        }
    }
    vars.extend(options.vars.clone());
    vars
}

fn json_substitute(
    value: &serde_json::Value,
    vars: &BTreeMap<String, String>,
) -> Result<serde_json::Value, Undefined> {
    Ok(match value {
        serde_json::Value::String(s) => serde_json::Value::String(substitute(s, vars)?),
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .map(|v| json_substitute(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), json_substitute(v, vars)?)))
                .collect::<Result<_, Undefined>>()?,
        ),
        other => other.clone(),
    })
}

fn resolve_url(
    request: &str,
    path: &str,
    base: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<Url, SmokeError> {
    let undefined = |Undefined(name)| SmokeError::UndefinedVariable {
        request: request.to_owned(),
        field: "url",
        name,
    };
    let text = substitute(path, vars).map_err(undefined)?;
    let has_scheme = text.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let full = if has_scheme {
        text
    } else {
        let Some(base) = base else {
            return Err(SmokeError::NoBaseUrl {
                request: request.to_owned(),
                path: text,
            });
        };
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            text.trim_start_matches('/')
        )
    };
    let url = Url::parse(&full).map_err(|e| SmokeError::BadUrl {
        request: request.to_owned(),
        url: full.clone(),
        message: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SmokeError::BadUrl {
            request: request.to_owned(),
            url: full,
            message: "only http and https are supported".into(),
        });
    }
    Ok(url)
}

fn prepare(
    r: &Request,
    base: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<Prepared, SmokeError> {
    let name = r.display_name();
    let method =
        Method::from_bytes(r.method.trim().to_ascii_uppercase().as_bytes()).map_err(|_| {
            SmokeError::BadMethod {
                request: name.clone(),
                method: r.method.clone(),
            }
        })?;
    for e in &r.expect {
        if let Expect::JsonNumber(b) | Expect::JsonLength(b) = e
            && b.above.or(b.at_least).or(b.below).or(b.at_most).is_none()
        {
            return Err(SmokeError::NoBounds {
                request: name,
                pointer: b.pointer.clone(),
            });
        }
    }
    let url = resolve_url(&name, &r.path, base, vars)?;
    let mut headers = HeaderMap::new();
    for h in &r.headers {
        let undefined = |Undefined(n)| SmokeError::UndefinedVariable {
            request: name.clone(),
            field: "headers",
            name: n,
        };
        let value = substitute(&h.value, vars).map_err(undefined)?;
        let bad = |message: String| SmokeError::BadHeader {
            request: name.clone(),
            name: h.name.clone(),
            message,
        };
        let hn =
            HeaderName::from_bytes(h.name.trim().as_bytes()).map_err(|e| bad(e.to_string()))?;
        let hv = HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?;
        headers.append(hn, hv);
    }
    let undefined_body = |Undefined(n)| SmokeError::UndefinedVariable {
        request: name.clone(),
        field: "body",
        name: n,
    };
    let body = match (&r.json, &r.body) {
        (Some(json), _) => {
            let value = json_substitute(json, vars).map_err(undefined_body)?;
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(serde_json::to_vec(&value).unwrap_or_default())
        }
        (None, Some(text)) => Some(substitute(text, vars).map_err(undefined_body)?.into_bytes()),
        (None, None) => None,
    };
    Ok(Prepared {
        name,
        method,
        url,
        headers,
        body,
        expect: r.expect.clone(),
    })
}

/// Runs `suite`: the requests concurrently (up to the limit), then the
/// `If-Match` round trip in order. Every input problem is found before the
/// first request is sent.
pub async fn run_suite(suite: &Suite, options: &SmokeOptions) -> Result<SmokeReport, SmokeError> {
    if options.concurrency == 0 {
        return Err(SmokeError::BadConcurrency);
    }
    let vars = variables(suite, options);
    let base = options.base_url.as_deref();
    // A variable an earlier request captures is checked with a stand-in,
    // so that every input problem still shows before anything is sent.
    let mut known = vars.clone();
    let mut prepared = Vec::with_capacity(suite.requests.len());
    for r in &suite.requests {
        prepared.push(prepare(r, base, &known)?);
        for c in &r.capture {
            known.insert(c.variable.clone(), "0".into());
        }
    }
    let in_order = suite.requests.iter().any(|r| !r.capture.is_empty());
    let if_match = match &suite.if_match {
        Some(t) => {
            let read = resolve_url("If-Match round trip", &t.path, base, &vars)?;
            let scratch = match (&t.scratch_path, suite.allow_writes) {
                (Some(p), true) => Some(resolve_url("If-Match round trip", p, base, &vars)?),
                _ => None,
            };
            Some((read, t.refused_writes, scratch))
        }
        None => None,
    };
    if suite.allow_writes && if_match.as_ref().is_none_or(|(_, _, s)| s.is_none()) {
        return Err(SmokeError::WritesWithoutScratch {
            suite: suite.name.clone(),
        });
    }
    let targets = prepared.iter().map(|p| &p.url).chain(
        if_match
            .iter()
            .flat_map(|(r, _, s)| std::iter::once(r).chain(s)),
    );
    let client = ClientPolicy::new(options.timeout)
        .targets(targets)
        .build()?;
    let runner = Arc::new(Runner {
        client,
        redactors: [options.redactor.clone(), options.secrets.redactor().clone()],
        trace_header: suite.trace_id_header.clone(),
        trace_on_errors: suite.trace_id_on_errors,
        timeout: options.timeout,
    });

    let started = Instant::now();
    let total = prepared.len() + usize::from(if_match.is_some());
    let mut done = 0usize;
    let told = |done: usize| {
        if let Some(progress) = &options.progress {
            progress(&format!("{done}/{total} requests"));
        }
    };
    let mut results: Vec<RequestResult> = Vec::with_capacity(prepared.len());
    if in_order {
        let mut captured = Captured {
            vars,
            missing: BTreeMap::new(),
        };
        for r in &suite.requests {
            results.push(runner.in_order(r, base, &mut captured).await);
            done += 1;
            told(done);
        }
    } else {
        let mut indexed: Vec<(usize, RequestResult)> = Vec::with_capacity(prepared.len());
        let mut stream =
            futures_util::stream::iter(prepared.into_iter().enumerate().map(|(i, p)| {
                let runner = runner.clone();
                async move { (i, runner.exchange(&p).await.result) }
            }))
            .buffer_unordered(options.concurrency);
        while let Some(item) = stream.next().await {
            indexed.push(item);
            done += 1;
            told(done);
        }
        indexed.sort_by_key(|(i, _)| *i);
        results.extend(indexed.into_iter().map(|(_, r)| r));
    }
    if let Some((read, refused_writes, scratch)) = if_match {
        results.extend(
            runner
                .if_match_round_trip(read, refused_writes, scratch)
                .await,
        );
        if let Some(progress) = &options.progress {
            progress(&format!(
                "{total}/{total} requests (If-Match round trip done)"
            ));
        }
    }
    Ok(SmokeReport::new(
        suite.name.clone(),
        options.base_url.clone(),
        results,
        started.elapsed(),
        options.timeout,
    ))
}

fn pass(name: String, expected: String, got: String, ok: bool) -> AssertionResult {
    AssertionResult {
        name,
        verdict: if ok {
            AssertionVerdict::Passed
        } else {
            AssertionVerdict::Failed
        },
        expected,
        got,
    }
}

/// The `If-Match` of the write that must get 412: no resource has it.
const STALE_TAG: &str = "\"escola-runbook-stale-tag\"";

/// The body of a 200 read, to send back unchanged in conditional writes.
/// `None` when there is none fit to send: the read failed, or its body was
/// cut short or is not JSON (writing that back could change the resource;
/// a failed assertion on the read says so).
fn body_to_send_back(read: &mut Exchange) -> Option<Vec<u8>> {
    if read.result.status != Some(200) {
        return None;
    }
    let unfit = if read.truncated {
        Some(format!(
            "a body over {} MiB, read only in part",
            BODY_LIMIT >> 20
        ))
    } else {
        serde_json::from_slice::<serde_json::Value>(&read.body)
            .err()
            .map(|e| format!("a body that is not JSON ({e}): {}", snippet(&read.body)))
    };
    match unfit {
        None => Some(std::mem::take(&mut read.body)),
        Some(got) => {
            read.result.assertions.push(pass(
                "a body to send back in the If-Match writes".into(),
                "the whole body, as JSON".into(),
                got,
                false,
            ));
            None
        }
    }
}

/// The assertion `name` on what the JSON body holds at `pointer`: `ok`
/// judges what is found there, `shown` writes it. `doc` is `body` parsed,
/// or why it could not be.
fn json_at(
    name: String,
    expected: String,
    doc: Result<serde_json::Value, Unparsed>,
    body: &[u8],
    pointer: &str,
    shown: impl FnOnce(&serde_json::Value) -> String,
    ok: impl FnOnce(Option<&serde_json::Value>) -> bool,
) -> AssertionResult {
    match doc {
        Ok(doc) => {
            let found = doc.pointer(&to_pointer(pointer));
            pass(
                name,
                expected,
                found.map_or_else(|| format!("nothing at {pointer}"), shown),
                ok(found),
            )
        }
        Err(err) => pass(
            name,
            expected,
            format!("a body that is not JSON ({err}): {}", snippet(body)),
            false,
        ),
    }
}

/// `/data/0 = {"id":1,...}`: what was found at `pointer`, on one line.
fn shown_at(pointer: &str, v: &serde_json::Value) -> String {
    format!("{pointer} = {}", snippet(v.to_string().as_bytes()))
}

/// An array's items, a string's characters or an object's keys.
fn length(v: &serde_json::Value) -> Option<usize> {
    match v {
        serde_json::Value::Array(a) => Some(a.len()),
        serde_json::Value::String(s) => Some(s.chars().count()),
        serde_json::Value::Object(m) => Some(m.len()),
        _ => None,
    }
}

/// The start of a body or script on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

impl Runner {
    fn mask(&self, text: &str) -> String {
        let once = self.redactors[0].redact(text);
        self.redactors[1].redact(&once).into_owned()
    }

    /// Sends `r` with the variables captured so far, then keeps what it
    /// captures in `vars`. A request whose variable an earlier one failed
    /// to capture is not sent.
    async fn in_order(
        &self,
        r: &Request,
        base: Option<&str>,
        captured: &mut Captured,
    ) -> RequestResult {
        let p = match prepare(r, base, &captured.vars) {
            Ok(p) => p,
            Err(e) => {
                let why = match &e {
                    SmokeError::UndefinedVariable { name, .. } => captured
                        .missing
                        .get(name)
                        .map(|by| format!("{{{{{name}}}}} was not captured by `{by}`")),
                    _ => None,
                }
                .unwrap_or_else(|| e.to_string());
                return RequestResult {
                    name: r.display_name(),
                    method: r.method.clone(),
                    url: self.mask(&r.path),
                    status: None,
                    latency_ms: 0.0,
                    trace_id: None,
                    error: Some(format!("not sent: {}", self.mask(&why))),
                    assertions: Vec::new(),
                };
            }
        };
        let mut exchange = self.exchange(&p).await;
        if !exchange.result.answered() {
            for c in &r.capture {
                captured.lost(&c.variable, r);
            }
        } else if !r.capture.is_empty() {
            let doc = serde_json::from_slice::<serde_json::Value>(&exchange.body);
            for c in &r.capture {
                let found = doc
                    .as_ref()
                    .ok()
                    .and_then(|d| d.pointer(&to_pointer(&c.pointer)));
                let value = match found {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                };
                let got = match (&value, &doc) {
                    (Some(v), _) => v.clone(),
                    (None, Err(e)) => format!("a body that is not JSON ({e})"),
                    (None, Ok(_)) => format!("nothing at {}", c.pointer),
                };
                exchange.result.assertions.push(pass(
                    format!("capture {{{{{}}}}}", c.variable),
                    format!("a value at {}", c.pointer),
                    self.mask(&got),
                    value.is_some(),
                ));
                match value {
                    Some(v) => {
                        captured.missing.remove(&c.variable);
                        captured.vars.insert(c.variable.clone(), v);
                    }
                    None => captured.lost(&c.variable, r),
                }
            }
        }
        exchange.result
    }

    async fn exchange(&self, p: &Prepared) -> Exchange {
        let url_text = self.mask(&strip_userinfo(p.url.as_str()));
        let started = Instant::now();
        let mut builder = self
            .client
            .request(p.method.clone(), p.url.clone())
            .headers(p.headers.clone());
        if let Some(body) = &p.body {
            builder = builder.body(body.clone());
        }
        let fail = |error: String, started: Instant| Exchange {
            result: RequestResult {
                name: p.name.clone(),
                method: p.method.to_string(),
                url: url_text.clone(),
                status: None,
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                trace_id: None,
                error: Some(self.mask(&error)),
                assertions: Vec::new(),
            },
            headers: HeaderMap::new(),
            body: Vec::new(),
            truncated: false,
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return fail(explain_unmasked(&e, self.timeout), started),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let (body, truncated) = match body_limited(response, BODY_LIMIT).await {
            Ok(read) => read,
            Err(e) => {
                return fail(
                    format!(
                        "status {status}, then {}",
                        explain_unmasked(&e, self.timeout)
                    ),
                    started,
                );
            }
        };
        let latency = started.elapsed();
        tracing::debug!(method = %p.method, url = %url_text, status, "smoke request answered");
        let trace_id = headers
            .get(self.trace_header.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut assertions: Vec<AssertionResult> = p
            .expect
            .iter()
            .map(|e| self.judge(e, status, &headers, &body, truncated, latency))
            .map(|a| AssertionResult {
                // Response text may echo a secret (a token in a header).
                expected: self.mask(&a.expected),
                got: self.mask(&a.got),
                ..a
            })
            .collect();
        if self.trace_on_errors && status >= 400 {
            assertions.push(pass(
                format!("{} on error responses", self.trace_header),
                format!("header {} on a {status} response", self.trace_header),
                trace_id
                    .clone()
                    .map_or_else(|| "no such header".into(), |t| format!("present ({t})")),
                trace_id.is_some(),
            ));
        }
        Exchange {
            result: RequestResult {
                name: p.name.clone(),
                method: p.method.to_string(),
                url: url_text,
                status: Some(status),
                latency_ms: latency.as_secs_f64() * 1000.0,
                trace_id,
                error: None,
                assertions,
            },
            headers,
            body,
            truncated,
        }
    }

    fn judge(
        &self,
        e: &Expect,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        truncated: bool,
        latency: Duration,
    ) -> AssertionResult {
        let name = e.describe();
        // The header `h` as received, and as the result shows it.
        let header = |h: &str| {
            let got = headers
                .get(h.trim())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let shown = got
                .as_ref()
                .map_or_else(|| format!("no {h} header"), |v| format!("{h}: {v}"));
            (got, shown)
        };
        let json = || {
            if truncated {
                return Err(Unparsed::TooLarge);
            }
            serde_json::from_slice::<serde_json::Value>(body).map_err(Unparsed::NotJson)
        };
        match e {
            Expect::Status(s) => pass(name, s.to_string(), status.to_string(), status == *s),
            Expect::StatusIn(list) => pass(
                name,
                format!(
                    "one of {}",
                    list.iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                status.to_string(),
                list.contains(&status),
            ),
            Expect::HeaderPresent(h) => {
                let (got, shown) = header(h);
                pass(name, format!("header {h} present"), shown, got.is_some())
            }
            Expect::HeaderEquals { name: h, value } => {
                let (got, shown) = header(h);
                pass(
                    name,
                    format!("{h}: {value}"),
                    shown,
                    got.as_deref() == Some(value.as_str()),
                )
            }
            Expect::JsonEquals { pointer, value } => json_at(
                name,
                format!("{pointer} = {value}"),
                json(),
                body,
                pointer,
                |v| format!("{pointer} = {v}"),
                |found| found == Some(value),
            ),
            Expect::JsonExists(pointer) => json_at(
                name,
                format!("something at {pointer}"),
                json(),
                body,
                pointer,
                |v| shown_at(pointer, v),
                |found| found.is_some(),
            ),
            Expect::JsonNumber(b) => json_at(
                name,
                format!("{} {}", b.pointer, b.describe()),
                json(),
                body,
                &b.pointer,
                |v| shown_at(&b.pointer, v),
                |found| {
                    found
                        .and_then(serde_json::Value::as_f64)
                        .is_some_and(|x| b.admit(x))
                },
            ),
            Expect::JsonLength(b) => json_at(
                name,
                format!("{} length {}", b.pointer, b.describe()),
                json(),
                body,
                &b.pointer,
                |v| match length(v) {
                    Some(n) => format!("{} length {n}", b.pointer),
                    None => format!("{}, which has no length", shown_at(&b.pointer, v)),
                },
                |found| found.and_then(length).is_some_and(|n| b.admit(n as f64)),
            ),
            Expect::JsonType { pointer, is } => json_at(
                name,
                format!("{pointer} is {}", is.name()),
                json(),
                body,
                pointer,
                |v| format!("{pointer} is {}", JsonKind::of(v).name()),
                |found| found.is_some_and(|v| JsonKind::of(v) == *is),
            ),
            Expect::JsonIncludes { pointer, value } => json_at(
                name,
                format!("{pointer} includes {value}"),
                json(),
                body,
                pointer,
                |v| shown_at(pointer, v),
                |found| match (found, value) {
                    (Some(serde_json::Value::String(s)), serde_json::Value::String(part)) => {
                        s.contains(part.as_str())
                    }
                    (Some(serde_json::Value::Array(items)), value) => items.contains(value),
                    _ => false,
                },
            ),
            Expect::JsonOneOf { pointer, values } => json_at(
                name,
                format!(
                    "{pointer} one of {}",
                    serde_json::Value::Array(values.clone())
                ),
                json(),
                body,
                pointer,
                |v| shown_at(pointer, v),
                |found| found.is_some_and(|v| values.contains(v)),
            ),
            Expect::MaxLatencyMs(ms) => pass(
                name,
                format!("below {ms}ms"),
                format!("{}ms", latency.as_millis()),
                latency < Duration::from_millis(*ms),
            ),
            Expect::NotEvaluated { name, script } => AssertionResult {
                name: name.clone(),
                verdict: AssertionVerdict::NotEvaluated,
                expected: "a script that could not be translated".into(),
                got: snippet(script.as_bytes()),
            },
        }
    }

    fn plain(name: &str, method: Method, url: Url) -> Prepared {
        Prepared {
            name: name.to_owned(),
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            expect: Vec::new(),
        }
    }

    /// A PUT of `body` as JSON, with `if_match` as its `If-Match` (none
    /// when `None`).
    fn conditional_put(name: &str, url: Url, if_match: Option<&str>, body: &[u8]) -> Prepared {
        let mut p = Self::plain(name, Method::PUT, url);
        p.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(t) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            p.headers.insert(IF_MATCH, t);
        }
        p.body = Some(body.to_vec());
        p
    }

    /// The two writes a correct API refuses: a stale tag gets 412, no tag
    /// 428. Each carries `body`, the resource as just read, so an API that
    /// wrongly accepts one stores the content it already holds.
    async fn refused_writes(&self, url: &Url, body: &[u8]) -> Vec<RequestResult> {
        let probes = [
            (
                "If-Match: stale tag is refused",
                Some(STALE_TAG),
                412,
                "412 Precondition Failed for a stale If-Match",
            ),
            (
                "If-Match: missing tag is refused",
                None,
                428,
                "428 Precondition Required without If-Match",
            ),
        ];
        let mut out = Vec::with_capacity(probes.len());
        for (name, tag, want, expected) in probes {
            let mut x = self
                .exchange(&Self::conditional_put(name, url.clone(), tag, body))
                .await;
            if let Some(status) = x.result.status {
                let judged = pass(
                    format!("status {want}"),
                    expected.into(),
                    status.to_string(),
                    status == want,
                );
                x.result.assertions.insert(0, judged);
            }
            out.push(x.result);
        }
        out
    }

    /// Read part: the ETag is present and stable over two reads. Refused
    /// writes (when asked) to the same resource, with the body of the second
    /// read. Write part (only with a scratch URL): the refused writes, then
    /// the current tag -> 2xx with a new ETag.
    async fn if_match_round_trip(
        &self,
        read: Url,
        refused_writes: bool,
        scratch: Option<Url>,
    ) -> Vec<RequestResult> {
        let mut out = Vec::new();
        let etag_of = |x: &Exchange| {
            x.headers
                .get(ETAG)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let mut first = Self::plain("If-Match: read ETag", Method::GET, read.clone());
        first.expect.push(Expect::Status(200));
        first.expect.push(Expect::HeaderPresent("ETag".into()));
        let a = self.exchange(&first).await;
        let tag_a = etag_of(&a);
        let answered = a.result.answered();
        out.push(a.result);
        if !answered {
            return out;
        }
        let mut again = Self::plain("If-Match: ETag is stable", Method::GET, read.clone());
        again.expect.push(Expect::Status(200));
        let mut b = self.exchange(&again).await;
        if b.result.answered() {
            let tag_b = etag_of(&b);
            b.result.assertions.push(pass(
                "same ETag on a second read".into(),
                format!(
                    "ETag {}",
                    tag_a
                        .clone()
                        .unwrap_or_else(|| "(none on first read)".into())
                ),
                tag_b
                    .clone()
                    .map_or_else(|| "no ETag".into(), |t| format!("ETag {t}")),
                tag_a.is_some() && tag_a == tag_b,
            ));
        }
        let send_back = if refused_writes {
            body_to_send_back(&mut b)
        } else {
            None
        };
        out.push(b.result);
        if let Some(body) = send_back {
            out.extend(self.refused_writes(&read, &body).await);
        }
        let Some(scratch) = scratch else {
            return out;
        };

        let mut get = Self::plain("If-Match: read scratch ETag", Method::GET, scratch.clone());
        get.expect.push(Expect::Status(200));
        get.expect.push(Expect::HeaderPresent("ETag".into()));
        let mut s = self.exchange(&get).await;
        let tag = etag_of(&s);
        let body = body_to_send_back(&mut s);
        out.push(s.result);
        let (Some(tag), Some(body)) = (tag, body) else {
            return out;
        };
        out.extend(self.refused_writes(&scratch, &body).await);
        let mut current = Self::conditional_put(
            "If-Match: current tag is accepted",
            scratch,
            Some(&tag),
            &body,
        );
        current.expect.push(Expect::StatusIn(vec![200, 204]));
        let mut c = self.exchange(&current).await;
        if c.result.answered() {
            let new_tag = etag_of(&c);
            c.result.assertions.push(pass(
                "a new ETag after the write".into(),
                format!("an ETag other than {tag}"),
                new_tag
                    .clone()
                    .map_or_else(|| "no ETag".into(), |t| format!("ETag {t}")),
                new_tag.is_some_and(|t| t != tag),
            ));
        }
        out.push(c.result);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: Option<u16>, body: &[u8], truncated: bool) -> Exchange {
        Exchange {
            result: RequestResult {
                name: "If-Match: ETag is stable".into(),
                method: "GET".into(),
                url: "http://api/v1/escolas/1".into(),
                status,
                latency_ms: 1.0,
                trace_id: None,
                error: status.is_none().then(|| "no answer within 10s".into()),
                assertions: Vec::new(),
            },
            headers: HeaderMap::new(),
            body: body.to_vec(),
            truncated,
        }
    }

    #[test]
    fn only_a_whole_json_body_of_a_200_is_sent_back() {
        let body = br#"{"id":1,"nome":"EMEF Paulo Freire"}"#;
        let mut ok = read(Some(200), body, false);
        assert_eq!(body_to_send_back(&mut ok).as_deref(), Some(&body[..]));
        assert!(ok.result.assertions.is_empty());

        // A failed read already fails its status assertion: nothing added.
        for mut failed in [read(Some(500), body, false), read(None, b"", false)] {
            assert_eq!(body_to_send_back(&mut failed), None);
            assert!(failed.result.assertions.is_empty());
        }

        // Cut short or not JSON: writing it back could change the resource.
        let mut cut = read(Some(200), &body[..10], true);
        assert_eq!(body_to_send_back(&mut cut), None);
        assert_eq!(
            cut.result.assertions,
            [pass(
                "a body to send back in the If-Match writes".into(),
                "the whole body, as JSON".into(),
                "a body over 4 MiB, read only in part".into(),
                false
            )]
        );
        let mut html = read(Some(200), b"<html>maintenance</html>", false);
        assert_eq!(body_to_send_back(&mut html), None);
        let got = &html.result.assertions[0].got;
        assert!(
            got.starts_with("a body that is not JSON (")
                && got.ends_with("<html>maintenance</html>"),
            "{got}"
        );
    }
}
