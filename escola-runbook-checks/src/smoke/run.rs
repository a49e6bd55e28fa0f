//! Sending a suite's requests and judging the responses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::{Redactor, Secrets};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH};
use reqwest::{Method, Url};
use tokio::time::Instant;

use crate::http::{body_limited, explain_unmasked, strip_userinfo};

use super::report::{AssertionResult, AssertionVerdict, RequestResult, SmokeReport};
use super::suite::{Expect, Request, Suite, substitute, to_pointer};

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

/// Per-request limit unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

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
        "request `{request}`: {{{{{name}}}}} in its {field} is not defined; give it with --var {name}=VALUE (or the suite's variables)"
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
    #[error(
        "request `{request}`: `{path}` is a path and no base URL was given; pass --base-url (or set base_url)"
    )]
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
    /// Concurrency 0.
    #[error("concurrency must be at least 1")]
    BadConcurrency,
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
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
) -> Result<serde_json::Value, String> {
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
                .collect::<Result<_, String>>()?,
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
    let undefined = |name| SmokeError::UndefinedVariable {
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
    let url = resolve_url(&name, &r.path, base, vars)?;
    let mut headers = HeaderMap::new();
    for h in &r.headers {
        let undefined = |n| SmokeError::UndefinedVariable {
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
    let undefined_body = |n| SmokeError::UndefinedVariable {
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
    let prepared: Vec<Prepared> = suite
        .requests
        .iter()
        .map(|r| prepare(r, base, &vars))
        .collect::<Result<_, _>>()?;
    let if_match = match &suite.if_match {
        Some(t) => {
            let read = resolve_url("If-Match round trip", &t.path, base, &vars)?;
            let scratch = match (&t.scratch_path, suite.allow_writes) {
                (Some(p), true) => Some(resolve_url("If-Match round trip", p, base, &vars)?),
                _ => None,
            };
            Some((read, scratch))
        }
        None => None,
    };
    if suite.allow_writes && if_match.as_ref().is_none_or(|(_, s)| s.is_none()) {
        return Err(SmokeError::WritesWithoutScratch {
            suite: suite.name.clone(),
        });
    }
    let all_loopback = prepared
        .iter()
        .map(|p| &p.url)
        .chain(
            if_match
                .iter()
                .flat_map(|(r, s)| std::iter::once(r).chain(s)),
        )
        .all(|u| {
            matches!(
                u.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            )
        });
    let mut builder = reqwest::Client::builder()
        .timeout(options.timeout)
        .user_agent(concat!("escola-runbook/", env!("CARGO_PKG_VERSION")));
    if all_loopback {
        // A proxy from the environment must not intercept a local target.
        builder = builder.no_proxy();
    }
    let client = builder
        .build()
        .map_err(|e| SmokeError::Client(e.to_string()))?;
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
    let mut indexed: Vec<(usize, RequestResult)> = Vec::with_capacity(prepared.len());
    let mut stream = futures_util::stream::iter(prepared.into_iter().enumerate().map(|(i, p)| {
        let runner = runner.clone();
        async move { (i, runner.exchange(&p).await.result) }
    }))
    .buffer_unordered(options.concurrency);
    while let Some(item) = stream.next().await {
        indexed.push(item);
        done += 1;
        if let Some(progress) = &options.progress {
            progress(&format!("{done}/{total} requests"));
        }
    }
    indexed.sort_by_key(|(i, _)| *i);
    let mut results: Vec<RequestResult> = indexed.into_iter().map(|(_, r)| r).collect();
    if let Some((read, scratch)) = if_match {
        results.extend(runner.if_match_round_trip(read, scratch).await);
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
        let header = |h: &str| {
            headers
                .get(h.trim())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let json = || {
            if truncated {
                return Err(format!("over {} MiB, not parsed", BODY_LIMIT >> 20));
            }
            serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string())
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
                let got = header(h);
                pass(
                    name,
                    format!("header {h} present"),
                    got.clone()
                        .map_or_else(|| format!("no {h} header"), |v| format!("{h}: {v}")),
                    got.is_some(),
                )
            }
            Expect::HeaderEquals { name: h, value } => {
                let got = header(h);
                pass(
                    name,
                    format!("{h}: {value}"),
                    got.clone()
                        .map_or_else(|| format!("no {h} header"), |v| format!("{h}: {v}")),
                    got.as_deref() == Some(value.as_str()),
                )
            }
            Expect::JsonEquals { pointer, value } => match json() {
                Ok(doc) => {
                    let found = doc.pointer(&to_pointer(pointer));
                    pass(
                        name,
                        format!("{pointer} = {value}"),
                        found.map_or_else(
                            || format!("nothing at {pointer}"),
                            |v| format!("{pointer} = {v}"),
                        ),
                        found == Some(value),
                    )
                }
                Err(err) => pass(
                    name,
                    format!("{pointer} = {value}"),
                    format!("a body that is not JSON ({err}): {}", snippet(body)),
                    false,
                ),
            },
            Expect::JsonExists(pointer) => match json() {
                Ok(doc) => {
                    let found = doc.pointer(&to_pointer(pointer));
                    pass(
                        name,
                        format!("something at {pointer}"),
                        found.map_or_else(
                            || format!("nothing at {pointer}"),
                            |v| format!("{pointer} = {}", snippet(v.to_string().as_bytes())),
                        ),
                        found.is_some(),
                    )
                }
                Err(err) => pass(
                    name,
                    format!("something at {pointer}"),
                    format!("a body that is not JSON ({err}): {}", snippet(body)),
                    false,
                ),
            },
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

    /// Read part: the ETag is present and stable over two reads. Write part
    /// (only with a scratch URL): stale tag -> 412, no tag -> 428, current
    /// tag -> 2xx with a new ETag.
    async fn if_match_round_trip(&self, read: Url, scratch: Option<Url>) -> Vec<RequestResult> {
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
        let mut again = Self::plain("If-Match: ETag is stable", Method::GET, read);
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
        out.push(b.result);
        let Some(scratch) = scratch else {
            return out;
        };

        let mut get = Self::plain("If-Match: read scratch ETag", Method::GET, scratch.clone());
        get.expect.push(Expect::Status(200));
        get.expect.push(Expect::HeaderPresent("ETag".into()));
        let s = self.exchange(&get).await;
        let tag = etag_of(&s);
        let body = s.body.clone();
        let ok = s.result.answered() && s.result.status == Some(200);
        out.push(s.result);
        let Some(tag) = tag.filter(|_| ok) else {
            return out;
        };
        let content_type = HeaderValue::from_static("application/json");
        let put = |name: &str, if_match: Option<&str>, expect: Expect| {
            let mut p = Self::plain(name, Method::PUT, scratch.clone());
            p.headers.insert(CONTENT_TYPE, content_type.clone());
            if let Some(t) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
                p.headers.insert(IF_MATCH, t);
            }
            // The resource's own representation goes back: even a server
            // that wrongly accepts the write changes nothing in it.
            p.body = Some(body.clone());
            p.expect.push(expect);
            p
        };
        let stale = put(
            "If-Match: stale tag is refused",
            Some("\"escola-runbook-stale-tag\""),
            Expect::Status(412),
        );
        out.push(self.exchange(&stale).await.result);
        let missing = put(
            "If-Match: missing tag is refused",
            None,
            Expect::Status(428),
        );
        out.push(self.exchange(&missing).await.result);
        let current = put(
            "If-Match: current tag is accepted",
            Some(&tag),
            Expect::StatusIn(vec![200, 204]),
        );
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
