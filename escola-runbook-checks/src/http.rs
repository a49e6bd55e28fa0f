//! What the HTTP checks share: their common parameters ([`HttpParams`]),
//! one client policy ([`ClientPolicy`]: user agent, timeouts, proxy,
//! redirects, loopback), a Bearer token from a secret, a URL shown without
//! credentials, and a transport error in words.

use std::time::Duration;

use escola_runbook_core::duration::Span;
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Ctx, Need, Outcome};
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

/// Default per-request timeout of every HTTP check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Redirects followed before a request fails (reqwest's own limit, named).
pub const MAX_REDIRECTS: usize = 10;

/// The user agent every request sends.
pub const USER_AGENT: &str = concat!("escola-runbook/", env!("CARGO_PKG_VERSION"));

/// [`DEFAULT_TIMEOUT`] as a parameter default.
pub fn default_timeout() -> Span {
    Span::from(DEFAULT_TIMEOUT)
}

/// What the HTTP checks that call an API take besides their own
/// parameters: a Bearer token secret and a per-request timeout. Flattened
/// into their parameter structs (`#[serde(flatten)]`), so the names and
/// the default are declared here once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// Name of the run's secret sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// Per-request timeout (e.g. 10s, 500ms).
    #[serde(default = "default_timeout")]
    pub timeout: Span,
}

impl Default for HttpParams {
    fn default() -> Self {
        HttpParams {
            token_secret: None,
            timeout: default_timeout(),
        }
    }
}

/// Builder methods for the [`HttpParams`] of an HTTP check.
pub trait HttpOptions: Sized {
    /// The check's HTTP parameters.
    fn http_mut(&mut self) -> &mut HttpParams;

    /// Sends `Authorization: Bearer <secret>` from the run's secret `name`.
    fn bearer_secret(mut self, name: impl Into<String>) -> Self {
        self.http_mut().token_secret = Some(name.into());
        self
    }

    /// Per-request timeout.
    fn timeout(mut self, limit: Duration) -> Self {
        self.http_mut().timeout = Span::from(limit);
        self
    }
}

/// The HTTP client could not be built (no TLS backend, a bad proxy
/// setting in the environment).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the HTTP client: {reason}")]
pub struct ClientError {
    /// reqwest's explanation.
    pub reason: String,
}

/// How every HTTP user here talks to a server: the user agent
/// [`USER_AGENT`]; a connect and a request timeout (zero means none, for
/// tests on tokio's paused clock, where a pending timer fires at once);
/// the proxy from the environment as reqwest reads it (`HTTPS_PROXY`,
/// `NO_PROXY`...), except when every target is on loopback, where a proxy
/// could only intercept a local server; at most [`MAX_REDIRECTS`]
/// redirects (reqwest drops `Authorization` on a redirect to another host).
///
/// ```
/// use std::time::Duration;
/// use escola_runbook_checks::http::ClientPolicy;
///
/// let url = reqwest::Url::parse("http://127.0.0.1:8080/health").unwrap();
/// let client = ClientPolicy::new(Duration::from_secs(5)).targets([&url]).build();
/// assert!(client.is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPolicy {
    timeout: Duration,
    loopback_only: bool,
}

impl ClientPolicy {
    /// The policy with `timeout` for connecting and for each request.
    pub fn new(timeout: Duration) -> Self {
        ClientPolicy {
            timeout,
            loopback_only: false,
        }
    }

    /// The URLs the client will call: when all are on loopback, it
    /// connects directly, bypassing any proxy from the environment.
    pub fn targets<'a>(mut self, urls: impl IntoIterator<Item = &'a reqwest::Url>) -> Self {
        let mut urls = urls.into_iter().peekable();
        self.loopback_only = urls.peek().is_some() && urls.all(is_loopback);
        self
    }

    /// The URL `text` as a target, when it parses (one that does not
    /// fails at the request, with the reason).
    pub fn target(self, text: &str) -> Self {
        match reqwest::Url::parse(text) {
            Ok(url) => self.targets([&url]),
            Err(_) => self,
        }
    }

    /// The client.
    pub fn build(&self) -> Result<reqwest::Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS));
        if !self.timeout.is_zero() {
            builder = builder.timeout(self.timeout).connect_timeout(self.timeout);
        }
        if self.loopback_only {
            builder = builder.no_proxy();
        }
        builder.build().map_err(|e| ClientError {
            reason: explain_unmasked(&e, self.timeout),
        })
    }
}

/// Whether `url` names this machine (127.0.0.0/8, ::1, `localhost`).
pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The Bearer token cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// The run has no secret of that name.
    #[error("secret `{name}` (the Bearer token) was not provided")]
    Missing {
        /// The secret's name.
        name: String,
    },
    /// The value cannot be a header value. The value is never shown.
    #[error(
        "secret `{name}` cannot be sent in a header (it has control characters or non-ASCII bytes)"
    )]
    NotAHeader {
        /// The secret's name.
        name: String,
    },
}

impl From<BearerError> for Outcome {
    fn from(e: BearerError) -> Self {
        let outcome = Outcome::check_error(e.to_string());
        match e {
            BearerError::Missing { name } => {
                outcome.with_need(Need::secret(name, "the Bearer token"))
            }
            BearerError::NotAHeader { .. } => outcome,
        }
    }
}

/// The `Authorization: Bearer` value from secret `name`, marked sensitive.
pub fn bearer(ctx: &Ctx, name: Option<&str>) -> Result<Option<HeaderValue>, BearerError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let Some(secret) = ctx.secret(name) else {
        return Err(BearerError::Missing { name: name.into() });
    };
    let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
        .map_err(|_| BearerError::NotAHeader { name: name.into() })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// `url` without user:password, for plans and descriptions.
pub fn strip_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `url` without user:password and with secrets masked, for evidence.
pub fn display_url(ctx: &Ctx, url: &str) -> String {
    ctx.redactor().redact(&strip_userinfo(url)).into_owned()
}

/// A transport error in words, with the cause chain (connection refused,
/// DNS, TLS), secrets masked.
pub fn explain(ctx: &Ctx, e: &reqwest::Error, timeout: Duration) -> String {
    ctx.redactor()
        .redact(&explain_unmasked(e, timeout))
        .into_owned()
}

/// [`explain`] without masking, for callers that mask with their own
/// redactor (the smoke suite runs outside a step too).
pub fn explain_unmasked(e: &reqwest::Error, timeout: Duration) -> String {
    let mut text = if e.is_timeout() {
        format!(
            "no answer within {}",
            escola_runbook_core::format_duration(timeout)
        )
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut seen = Vec::new();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !seen.contains(&s_text) {
            seen.push(s_text);
        }
        source = s.source();
    }
    if !seen.is_empty() {
        text.push_str(": ");
        text.push_str(&seen.join(": "));
    }
    text
}

/// Reads at most `limit` bytes of the body; `true` when more was left.
pub async fn body_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// A short, masked excerpt of a body for evidence.
pub fn excerpt(ctx: &Ctx, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(600)]);
    let mut shown = ctx.redactor().redact(&text).into_owned();
    if body.len() > 600 {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_go_direct_and_others_keep_the_proxy() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        for local in [
            "http://127.0.0.1:1/",
            "http://[::1]:8/x",
            "http://LOCALHOST/",
        ] {
            assert!(is_loopback(&url(local)), "{local}");
        }
        assert!(!is_loopback(&url("http://10.0.0.1/")));
        assert!(!is_loopback(&url("https://api.escola.example/")));
        let (a, b) = (url("http://127.0.0.1/"), url("https://api.escola.example/"));
        let policy = ClientPolicy::new(DEFAULT_TIMEOUT);
        assert!(policy.targets([&a]).loopback_only);
        assert!(!policy.targets([&a, &b]).loopback_only);
        assert!(!policy.targets([]).loopback_only);
        assert!(!policy.target("not a url").loopback_only);
    }

    #[test]
    fn http_params_flatten_with_their_default() {
        #[derive(Debug, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Outer {
            url: String,
            #[serde(flatten)]
            http: HttpParams,
        }
        let o: Outer = serde_json::from_str(r#"{"url":"x","token_secret":"t"}"#).unwrap();
        assert_eq!(o.http.token_secret.as_deref(), Some("t"));
        assert_eq!(o.http.timeout, default_timeout());
        assert!(serde_json::from_str::<Outer>(r#"{"url":"x","tokn":"t"}"#).is_err());
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A tiny HTTP/1.1 server on 127.0.0.1:0 that answers scripted responses
    //! and records what it received.

    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One request as received.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub method: String,
        pub path: String,
        pub headers: Vec<(String, String)>,
    }

    impl Received {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub type Responder = Arc<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

    pub struct Server {
        pub url: String,
        pub received: Arc<Mutex<Vec<Received>>>,
    }

    /// Starts a server answering each request with `respond`.
    pub async fn serve(respond: Responder) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let respond = respond.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !data.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&data).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_owned();
                    let path = first.next().unwrap_or_default().to_owned();
                    let headers = lines
                        .take_while(|l| !l.is_empty())
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .collect();
                    let req = Received {
                        method,
                        path,
                        headers,
                    };
                    let (status, body) = respond(&req);
                    log.lock().unwrap().push(req);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Server { url, received }
    }

    /// A URL on 127.0.0.1 where nothing listens.
    pub async fn closed_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}")
    }
}
