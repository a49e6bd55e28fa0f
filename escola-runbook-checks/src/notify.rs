//! Posts a message to a Slack-compatible incoming webhook: the runbook's
//! notices in #operacoes and #promotores, "deploy iniciado/concluído", and
//! the rollback announcement.
//!
//! The webhook URL is a secret (it carries the token), so it is named, not
//! given: the step reads it from the run's secrets at run time.

use std::time::Duration;

use std::sync::{Arc, Mutex};

use escola_runbook_core::rules::AlertState;
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Event, Observer, Outcome, Secret, async_trait,
};

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

/// What happened to one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub text: String,
    /// `Ok(attempts)` when delivered, `Err(reason)` when every attempt failed.
    pub result: Result<u32, String>,
}

/// Posts the run's milestones to a Slack-compatible webhook as they happen:
/// deploy started and finished, rollback started, an alert firing. An
/// observer, so it runs beside the deploy and never fails it: a message that
/// cannot be delivered after its retries is kept in [`deliveries`](Self::deliveries)
/// for the caller to report.
pub struct WebhookNotifier {
    url: Secret,
    channel: Option<String>,
    retries: u32,
    client: reqwest::Client,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Posts to the webhook at `url` (a secret: it carries the token).
    pub fn new(url: Secret, channel: Option<String>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(WebhookNotifier {
            url,
            channel,
            retries: 2,
            client,
            deliveries: Arc::default(),
            pending: Mutex::default(),
        })
    }

    /// The message for `event`, if it is a milestone.
    pub fn message(event: &Event) -> Option<String> {
        match event {
            Event::RunStarted { run, runbook, .. } => Some(format!(
                "{}: deploy {} started by {} on {}{}",
                runbook.name,
                run.run_id,
                run.operator,
                run.environment.name,
                if run.dry_run { " (dry-run)" } else { "" }
            )),
            Event::RollbackTriggered { reason, .. } => Some(format!(
                "rollback started: step `{}` {} — {}",
                reason.step,
                reason.status.as_str(),
                reason.summary
            )),
            Event::RuleTransition { transition, .. } if transition.to == AlertState::Firing => {
                Some(format!(
                    "alert `{}` firing: {} ({})",
                    transition.rule, transition.detail, transition.condition
                ))
            }
            Event::RunFinished {
                verdict, exit_code, ..
            } => Some(format!(
                "deploy finished: {} (exit code {exit_code})",
                verdict.label()
            )),
            _ => None,
        }
    }

    /// Waits (at most `limit`) for messages still being sent, then returns
    /// what happened to each.
    pub async fn flush(&self, limit: Duration) -> Vec<Delivery> {
        let handles = std::mem::take(&mut *lock(&self.pending));
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(handles)).await;
        lock(&self.deliveries).clone()
    }

    /// What happened to each message so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.deliveries).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Observer for WebhookNotifier {
    fn on_event(&self, event: &Event) {
        let Some(text) = Self::message(event) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            lock(&self.deliveries).push(Delivery {
                text,
                result: Err("no async runtime to send from".into()),
            });
            return;
        };
        let mut body = serde_json::json!({ "text": text });
        if let Some(channel) = &self.channel {
            body["channel"] = serde_json::Value::String(channel.clone());
        }
        let (client, url, retries, deliveries) = (
            self.client.clone(),
            self.url.clone(),
            self.retries,
            self.deliveries.clone(),
        );
        let task = runtime.spawn(async move {
            let mut last = String::new();
            for attempt in 1..=retries + 1 {
                let sent = client
                    .post(url.expose())
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        lock(&deliveries).push(Delivery {
                            text,
                            result: Ok(attempt),
                        });
                        return;
                    }
                    Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
                    Err(e) if e.is_timeout() => last = "no answer within 10s".into(),
                    Err(e) if e.is_connect() => last = "cannot connect".into(),
                    Err(_) => last = "the request failed".into(),
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            lock(&deliveries).push(Delivery {
                text,
                result: Err(format!("{last} after {} attempts", retries + 1)),
            });
        });
        lock(&self.pending).push(task);
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

    #[tokio::test]
    async fn the_notifier_posts_milestones_and_records_failures() {
        use escola_runbook_core::{Executor, Phase, Runbook, Step};
        let (url, server) = server(200);
        let notifier =
            Arc::new(WebhookNotifier::new(Secret::new(url), Some("#operacoes".into())).unwrap());
        let runbook = Runbook::builder("escola")
            .phase(Phase::new("p", "P").step(Step::manual("s", "S")))
            .build()
            .unwrap();
        Executor::new(runbook)
            .observer(notifier.clone())
            .run()
            .await
            .unwrap();
        let deliveries = notifier.flush(Duration::from_secs(5)).await;
        // The one-request server takes one message; the other fails after
        // its retries and is recorded, never raised.
        let body: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
        assert_eq!(body["channel"], "#operacoes");
        assert_eq!(deliveries.len(), 2, "{deliveries:?}");
        let delivered = deliveries.iter().find(|d| d.result == Ok(1)).unwrap();
        assert_eq!(body["text"], delivered.text.as_str());
        let failed = deliveries.iter().find(|d| d.result.is_err()).unwrap();
        let texts = [delivered.text.as_str(), failed.text.as_str()];
        assert!(
            texts.iter().any(|t| t.starts_with("escola: deploy ")
                && t.ends_with(&format!(
                    "started by {} on default",
                    escola_runbook_core::identity::operator()
                ))),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"deploy finished: succeeded (exit code 0)"),
            "{texts:?}"
        );
        assert!(
            failed
                .result
                .as_ref()
                .unwrap_err()
                .ends_with("after 3 attempts"),
            "{failed:?}"
        );
    }
}
