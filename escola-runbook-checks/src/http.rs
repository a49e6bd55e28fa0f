//! What the HTTP checks share: one way to build a client, to add a Bearer
//! token from a secret, to show a URL without credentials, and to explain a
//! transport error.

use std::time::Duration;

use escola_runbook_core::{CheckParams, Ctx};

use crate::legacy_spec::{ParamError, ParamSpec, Params};
use reqwest::header::HeaderValue;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `token_secret` parameter both HTTP checks take.
pub const TOKEN_SECRET_PARAM: ParamSpec = ParamSpec {
    name: "token_secret",
    help: "name of the run's secret sent as `Authorization: Bearer` (give it with --secret NAME=ENV_VAR)",
    required: false,
    default: None,
};

/// The `timeout` parameter both HTTP checks take.
pub const TIMEOUT_PARAM: ParamSpec = ParamSpec {
    name: "timeout",
    help: "per-request timeout (e.g. 10s, 500ms)",
    required: false,
    default: Some("10s"),
};

/// What both HTTP checks can be given: a Bearer token secret and a
/// per-request timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Secret sent as `Authorization: Bearer`.
    pub token_secret: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_secret: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Options {
    /// Adds the non-default options to `p` (for [`Check::params`]).
    ///
    /// [`Check::params`]: escola_runbook_core::Check::params
    pub fn add_params(&self, mut p: CheckParams) -> CheckParams {
        if let Some(s) = &self.token_secret {
            p = p.with(TOKEN_SECRET_PARAM.name, s);
        }
        if self.timeout != DEFAULT_TIMEOUT {
            p = p.with(
                TIMEOUT_PARAM.name,
                format!("{}ms", self.timeout.as_millis()),
            );
        }
        p
    }
}

/// Builder methods for the [`Options`] of an HTTP check.
pub trait HttpOptions: Sized {
    /// The check's options.
    fn options_mut(&mut self) -> &mut Options;

    /// Sends `Authorization: Bearer <secret>` from the run's secret `name`.
    fn bearer_secret(mut self, name: impl Into<String>) -> Self {
        self.options_mut().token_secret = Some(name.into());
        self
    }

    /// Per-request timeout.
    fn timeout(mut self, limit: Duration) -> Self {
        self.options_mut().timeout = limit;
        self
    }

    /// Applies `token_secret` and `timeout` from registry parameters.
    fn with_http_params(mut self, p: &Params) -> Result<Self, ParamError> {
        if let Some(s) = p.get(TOKEN_SECRET_PARAM.name) {
            self = self.bearer_secret(s);
        }
        if let Some(t) = p.duration(TIMEOUT_PARAM.name)? {
            self = self.timeout(t);
        }
        Ok(self)
    }
}

/// A client with `timeout` per request and no redirects to other hosts'
/// credentials (reqwest drops Authorization on cross-host redirects).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("escola-runbook/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The `Authorization: Bearer` value from secret `name`, marked sensitive.
pub fn bearer(ctx: &Ctx, name: Option<&str>) -> Result<Option<HeaderValue>, String> {
    let Some(name) = name else {
        return Ok(None);
    };
    let Some(secret) = ctx.secret(name) else {
        return Err(format!(
            "secret `{name}` (the Bearer token) was not provided; pass it with --secret {name}=ENV_VAR"
        ));
    };
    let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose())).map_err(|_| {
        format!(
            "secret `{name}` cannot be sent in a header (it has control characters or non-ASCII bytes)"
        )
    })?;
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
