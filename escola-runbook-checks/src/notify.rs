//! Posts a message to a Slack-compatible incoming webhook: the runbook's
//! notices in #operacoes and #promotores, "deploy iniciado/concluído", and
//! the rollback announcement.
//!
//! The webhook URL is a secret (it carries the token), so it is named, not
//! given: the step reads it from the run's secrets at run time.

use std::time::Duration;

use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};

/// Sends one message.
#[derive(Debug, Clone)]
pub struct Notify {
    url_secret: String,
    message: String,
    channel: Option<String>,
    timeout: Duration,
}

impl Notify {
    /// Posts `message` to the webhook whose URL is the secret `url_secret`.
    /// `{run_id}`, `{environment}` and `{step}` in the message are filled in
    /// at run time.
    pub fn new(url_secret: impl Into<String>, message: impl Into<String>) -> Self {
        Notify {
            url_secret: url_secret.into(),
            message: message.into(),
            channel: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Names a channel (for webhooks that accept one).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Gives up after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn render(&self, ctx: &Ctx) -> String {
        self.message
            .replace("{run_id}", ctx.run_id())
            .replace("{environment}", &ctx.environment().name)
            .replace("{step}", ctx.step_id())
    }
}

#[async_trait]
impl Check for Notify {
    fn describe(&self) -> Description {
        let to = self
            .channel
            .as_deref()
            .map(|c| format!(" to {c}"))
            .unwrap_or_default();
        Description::mutating(
            "notify",
            format!("the webhook accepts the message{to}"),
            format!(
                "post {:?}{to} to the webhook in secret `{}`",
                self.message, self.url_secret
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("notify")
            .with("url_secret", &self.url_secret)
            .with("message", &self.message)
            .with("timeout", format!("{}ms", self.timeout.as_millis()));
        if let Some(c) = &self.channel {
            p = p.with("channel", c);
        }
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let Some(url) = ctx.secret(&self.url_secret) else {
            return Outcome::check_error(format!(
                "secret `{}` (the webhook URL) was not provided; pass --secret {}=ENV_VAR",
                self.url_secret, self.url_secret
            ));
        };
        let text = self.render(ctx);
        let mut body = serde_json::json!({ "text": text });
        if let Some(channel) = &self.channel {
            body["channel"] = serde_json::Value::String(channel.clone());
        }
        let client = match reqwest::Client::builder().timeout(self.timeout).build() {
            Ok(c) => c,
            Err(e) => return Outcome::check_error(format!("cannot build an HTTP client: {e}")),
        };
        let sent = client
            .post(url.expose())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let outcome = match sent {
            Err(e) => {
                let what = if e.is_timeout() {
                    format!("no answer within {}ms", self.timeout.as_millis())
                } else if e.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    e.to_string()
                };
                Outcome::check_error(format!("the webhook did not take the message: {what}"))
            }
            Ok(response) => {
                let status = response.status();
                let answer: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect();
                let o = if status.is_success() {
                    Outcome::passed(format!(
                        "the webhook accepted the message (HTTP {})",
                        status.as_u16()
                    ))
                } else {
                    Outcome::failed(format!(
                        "the webhook refused the message: HTTP {}, expected 2xx",
                        status.as_u16()
                    ))
                };
                o.with_evidence("HTTP status", status.as_u16().to_string())
                    .with_evidence("answer", answer)
            }
        };
        // The URL is a secret: the redactor masks it in any error text.
        let mut outcome = outcome.with_evidence("message", text);
        if let Some(c) = &self.channel {
            outcome = outcome.with_evidence("channel", c.clone());
        }
        let redactor = ctx.redactor();
        outcome.summary = redactor.redact(&outcome.summary).into_owned();
        outcome
    }
}

/// The registry entry for `notify`.
pub(crate) fn spec() -> crate::registry::CheckSpec {
    use crate::registry::{CheckSpec, ParamSpec};
    const PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "url_secret",
            help: "name of the secret holding the webhook URL (give it with --secret NAME=ENV_VAR)",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "message",
            help: "the text; {run_id}, {environment}, {step} are filled in",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "channel",
            help: "channel name, for webhooks that accept one (e.g. #operacoes)",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "timeout",
            help: "give up after this long (e.g. 10s)",
            required: false,
            default: Some("10s"),
        },
    ];
    CheckSpec {
        name: "notify",
        summary: "posts a message to a Slack-compatible webhook (an action: dry-run only describes it)",
        params: PARAMS,
        build: |p| {
            let mut n = Notify::new(p.require("url_secret")?, p.require("message")?);
            if let Some(c) = p.get("channel") {
                n = n.channel(c);
            }
            if let Some(t) = p.duration("timeout")? {
                n = n.timeout(t);
            }
            Ok(std::sync::Arc::new(n))
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use escola_runbook_core::{Environment, Secret, Secrets, Status};

    use super::*;

    /// A one-request HTTP server answering `status`; returns its URL and a
    /// handle yielding the request body.
    fn server(status: u16) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/T000/B000/s3cr3tp4th",
            listener.local_addr().unwrap()
        );
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            )
            .unwrap();
            String::from_utf8(body).unwrap()
        });
        (url, handle)
    }

    fn ctx(url: &str) -> Ctx {
        let mut secrets = Secrets::new();
        secrets.insert("webhook", Secret::new(url));
        Ctx::standalone(Environment::new("production"), secrets)
    }

    #[tokio::test]
    async fn posts_the_rendered_message() {
        let (url, server) = server(200);
        let n = Notify::new("webhook", "deploy {run_id} em {environment} concluído")
            .channel("#operacoes");
        let outcome = n.run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Passed, "{outcome:?}");
        let body: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
        assert_eq!(body["text"], "deploy standalone em production concluído");
        assert_eq!(body["channel"], "#operacoes");
    }

    #[tokio::test]
    async fn a_refusal_fails_and_an_unreachable_hook_is_a_check_error() {
        let (url, server) = server(403);
        let outcome = Notify::new("webhook", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Failed);
        assert_eq!(
            outcome.summary,
            "the webhook refused the message: HTTP 403, expected 2xx"
        );
        server.join().unwrap();
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/s3cr3tp4th", closed.local_addr().unwrap());
        drop(closed);
        let outcome = Notify::new("webhook", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::CheckError);
        assert!(
            !serde_json::to_string(&outcome)
                .unwrap()
                .contains("s3cr3tp4th")
        );
        let outcome = Notify::new("missing", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::CheckError);
        assert!(outcome.summary.contains("--secret missing=ENV_VAR"));
    }
}
