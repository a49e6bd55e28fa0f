//! Notices to people through a Slack-compatible incoming webhook: the
//! runbook's notices in #operacoes and #promotores, "deploy
//! iniciado/concluído", the rollback announcement ([`Notify`], a step), and
//! the run's milestones as they happen ([`WebhookNotifier`]).
//!
//! A notice never decides a deploy: [`Notify`] is a
//! [notice](escola_runbook_core::Description::notice), so an undelivered
//! message ends `warned` with the delivery error and never fails its phase;
//! [`WebhookNotifier`] is a [`Notifier`], which the executor never lets fail
//! the run. A dry-run sends neither: the step records what it would have
//! posted and to which host, the notifier's messages are journaled as not
//! sent.
//!
//! The webhook URL is a secret (its path carries the token), so it is named,
//! not given, and evidence names only its host.

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::duration::Span;
use escola_runbook_core::rules::AlertState;
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{
    Check, CheckParams, Ctx, DeliveryError, Description, Event, Evidence, Need, Notifier, Outcome,
    Secret, async_trait,
};
use serde::{Deserialize, Serialize};

use crate::http::{self, ClientError, ClientPolicy};

/// Attempts after the first before a message counts as undelivered.
pub const DEFAULT_RETRIES: u32 = 2;

/// The most retries a `notify` step may ask for (with the growing pause,
/// about half a minute of waiting, plus the attempts' timeouts).
pub const MAX_RETRIES: u32 = 10;

/// The longest part of the webhook's answer kept as evidence.
const ANSWER_LIMIT: usize = 500;

/// The webhook URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not an `http(s)://host/...` URL. The URL itself is never shown.
    #[error("the webhook URL is not an http(s) URL with a host")]
    InvalidUrl,
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A Slack-compatible incoming webhook: posts `{"text": ...}` (and a
/// channel, for webhooks that take one), retrying on answers and errors that
/// may pass (5xx, 429, timeouts, refused connections).
#[derive(Clone)]
pub struct Webhook {
    url: Secret,
    host: String,
    channel: Option<String>,
    timeout: Duration,
    retries: u32,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.host)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// How a post went: attempts made and what the last one got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Attempts made.
    pub attempts: u32,
    /// The last answer's HTTP status, if there was an answer.
    pub status: Option<u16>,
    /// The start of the last answer's body (not masked: mask it before
    /// showing it).
    pub answer: Option<String>,
    /// Why the message was not delivered; `None` when it was.
    pub error: Option<String>,
}

impl Webhook {
    /// A webhook at `url`, each attempt bounded by `timeout`.
    pub fn new(url: Secret, timeout: Duration) -> Result<Self, WebhookError> {
        let host = reqwest::Url::parse(url.expose())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .and_then(|u| {
                let host = u.host_str()?.to_owned();
                Some(match u.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            })
            .ok_or(WebhookError::InvalidUrl)?;
        let client = ClientPolicy::new(timeout).target(url.expose()).build()?;
        Ok(Webhook {
            url,
            host,
            channel: None,
            timeout,
            retries: DEFAULT_RETRIES,
            client,
        })
    }

    escola_runbook_core::setters! {
        /// Names a channel (for webhooks that accept one).
        channel(channel: Option<String>) => channel = channel;

        /// Attempts after the first.
        retries(retries: u32) => retries = retries;
    }

    /// The URL's host (and port, if it names one): what evidence shows
    /// instead of the secret URL.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Posts `text`, retrying with a growing pause (0.5 s, 1 s, ...).
    pub async fn post(&self, text: &str) -> Posted {
        let mut body = serde_json::json!({ "text": text });
        if let Some(channel) = &self.channel {
            body["channel"] = serde_json::Value::String(channel.clone());
        }
        let body = body.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .post(self.url.expose())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let (posted, may_pass) = match sent {
                Ok(response) => {
                    let status = response.status();
                    let answer = http::body_limited(response, ANSWER_LIMIT)
                        .await
                        .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
                        .ok();
                    let error = (!status.is_success())
                        .then(|| format!("HTTP {}, expected 2xx", status.as_u16()));
                    let may_pass = status.is_server_error() || status.as_u16() == 429;
                    let posted = Posted {
                        attempts: attempt,
                        status: Some(status.as_u16()),
                        answer,
                        error,
                    };
                    (posted, may_pass)
                }
                Err(e) => {
                    let posted = Posted {
                        attempts: attempt,
                        status: None,
                        answer: None,
                        error: Some(http::explain_unmasked(&e, self.timeout)),
                    };
                    (posted, true)
                }
            };
            tracing::debug!(
                host = %self.host,
                attempt,
                status = ?posted.status,
                "webhook answered"
            );
            if posted.error.is_none() || !may_pass || attempt > self.retries {
                return posted;
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
}

/// Posts a message to a Slack-compatible webhook (a notice: never fails a
/// run, ends warned when undelivered; dry-run only describes it).
///
/// The parameters of [`Notify`], declared once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyParams {
    /// Name of the run's secret holding the webhook URL.
    pub url_secret: String,
    /// The text; {run_id}, {environment}, {step} are filled in.
    pub message: String,
    /// Channel name, for webhooks that accept one (e.g. #operacoes).
    #[serde(default)]
    pub channel: Option<String>,
    /// Give up on an attempt after this long (e.g. 10s).
    #[serde(default = "http::default_timeout")]
    pub timeout: Span,
    /// Attempts after the first (on 5xx, 429, timeouts, refused
    /// connections) before the notice ends warned.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

impl CheckConfig for NotifyParams {
    const NAME: &'static str = "notify";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if self.retries > MAX_RETRIES {
            return Err(ParamsError::invalid(
                Self::NAME,
                "retries",
                format!("must be at most {MAX_RETRIES}: a notice must not hold up the run"),
            ));
        }
        Ok(Arc::new(Notify { params: self }))
    }
}

/// A notice cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// The run has no secret of that name.
    #[error("secret `{name}` (the webhook URL) was not provided")]
    MissingSecret {
        /// The secret's name.
        name: String,
    },
    /// The secret's value is not a usable webhook.
    #[error("secret `{name}`: {source}")]
    Webhook {
        /// The secret's name.
        name: String,
        /// Why.
        source: WebhookError,
    },
}

/// Sends one message: a runbook step that is a notice.
#[derive(Debug, Clone)]
pub struct Notify {
    params: NotifyParams,
}

impl Notify {
    /// Posts `message` to the webhook whose URL is the secret `url_secret`.
    /// `{run_id}`, `{environment}` and `{step}` in the message are filled in
    /// at run time.
    pub fn new(url_secret: impl Into<String>, message: impl Into<String>) -> Self {
        Notify {
            params: NotifyParams {
                url_secret: url_secret.into(),
                message: message.into(),
                channel: None,
                timeout: http::default_timeout(),
                retries: DEFAULT_RETRIES,
            },
        }
    }

    escola_runbook_core::setters! {
        /// Names a channel (for webhooks that accept one).
        channel(channel: impl Into<String>) => params.channel = Some(channel.into());

        /// Gives up on an attempt after `timeout`.
        timeout(timeout: Duration) => params.timeout = Span::from(timeout);

        /// Attempts after the first before the notice counts as undelivered.
        retries(retries: u32) => params.retries = retries;
    }

    fn render(&self, ctx: &Ctx) -> String {
        self.params
            .message
            .replace("{run_id}", ctx.run_id())
            .replace("{environment}", &ctx.environment().name)
            .replace("{step}", ctx.step_id())
    }

    /// The webhook this notice goes to, or why it cannot be sent.
    fn webhook(&self, ctx: &Ctx) -> Result<Webhook, NoticeError> {
        let p = &self.params;
        let name = &p.url_secret;
        let url = ctx
            .secret(name)
            .ok_or_else(|| NoticeError::MissingSecret { name: name.clone() })?;
        Webhook::new(url.clone(), p.timeout.get())
            .map(|w| w.channel(p.channel.clone()).retries(p.retries))
            .map_err(|source| NoticeError::Webhook {
                name: name.clone(),
                source,
            })
    }

    /// Evidence every outcome carries: the message and where it goes.
    fn addressed(&self, outcome: Outcome, text: String, host: Option<&str>) -> Outcome {
        let mut outcome = outcome.with_evidence("message", text);
        if let Some(host) = host {
            outcome = outcome.with_evidence("to", host);
        }
        if let Some(c) = &self.params.channel {
            outcome = outcome.with_evidence("channel", c.clone());
        }
        outcome
    }
}

#[async_trait]
impl Check for Notify {
    fn describe(&self) -> Description {
        let to = self
            .params
            .channel
            .as_deref()
            .map(|c| format!(" to {c}"))
            .unwrap_or_default();
        Description::notice(
            "notify",
            format!("the webhook accepts the message{to}"),
            format!(
                "post {:?}{to} to the webhook in secret `{}`",
                self.params.message, self.params.url_secret
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    fn preview(&self, ctx: &Ctx) -> Vec<Evidence> {
        let to = match self.webhook(ctx) {
            Ok(webhook) => webhook.host().to_owned(),
            Err(why) => format!("nowhere: {why}"),
        };
        let mut evidence = vec![
            Evidence {
                label: "would post".into(),
                value: self.render(ctx),
            },
            Evidence {
                label: "to".into(),
                value: to,
            },
        ];
        if let Some(c) = &self.params.channel {
            evidence.push(Evidence {
                label: "channel".into(),
                value: c.clone(),
            });
        }
        evidence
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let text = self.render(ctx);
        let webhook = match self.webhook(ctx) {
            Ok(w) => w,
            Err(why) => {
                let mut outcome = Outcome::warned(format!("notice not sent: {why}"));
                if let NoticeError::MissingSecret { name } = why {
                    outcome = outcome.with_need(Need::secret(name, "the webhook URL"));
                }
                return self.addressed(outcome, text, None);
            }
        };
        let posted = webhook.post(&text).await;
        let redactor = ctx.redactor();
        let outcome = match &posted.error {
            None => Outcome::passed(format!(
                "the webhook at {} accepted the message (HTTP {})",
                webhook.host(),
                posted.status.unwrap_or_default()
            )),
            Some(error) => Outcome::warned(format!(
                "notice not delivered to {}: {} after {} attempts",
                webhook.host(),
                redactor.redact(error),
                posted.attempts
            )),
        };
        let mut outcome = outcome.with_evidence("attempts", posted.attempts.to_string());
        if let Some(status) = posted.status {
            outcome = outcome.with_evidence("HTTP status", status.to_string());
        }
        if let Some(answer) = &posted.answer {
            outcome = outcome.with_evidence("answer", redactor.redact(answer).into_owned());
        }
        self.addressed(outcome, text, Some(webhook.host()))
    }
}

/// Posts the run's milestones to a Slack-compatible webhook as they happen:
/// deploy started and finished, rollback started, an alert firing. A
/// [`Notifier`]: the executor sends nothing in a dry-run, never lets a
/// failed message fail the run, and journals each message with its
/// delivery.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    webhook: Webhook,
}

impl WebhookNotifier {
    /// Posts to the webhook at `url` (a secret: it carries the token).
    pub fn new(url: Secret, channel: Option<String>) -> Result<Self, WebhookError> {
        Ok(WebhookNotifier {
            webhook: Webhook::new(url, http::DEFAULT_TIMEOUT)?.channel(channel),
        })
    }

    /// The message for `event`, if it is a milestone.
    pub fn milestone(event: &Event) -> Option<String> {
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
            Event::ApprovalRequested { step, request, .. } => {
                Some(format!("step `{step}` waits for {}", request.describe()))
            }
            Event::ApprovalRecorded { step, result, .. } => {
                Some(format!("step `{step}`: {}", result.describe()))
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
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn destination(&self) -> String {
        self.webhook.host().to_owned()
    }

    fn message(&self, event: &Event) -> Option<String> {
        Self::milestone(event)
    }

    async fn deliver(&self, text: &str) -> Result<u32, DeliveryError> {
        let posted = self.webhook.post(text).await;
        match posted.error {
            None => Ok(posted.attempts),
            Some(error) => Err(DeliveryError {
                attempts: posted.attempts,
                error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use escola_runbook_core::{
        Delivery, Environment, Executor, Phase, RunOptions, Runbook, Secret, Secrets, Status, Step,
    };

    use super::*;

    const SECRET_PART: &str = "s3cr3tp4th";

    /// An HTTP server answering one request per status in `statuses`;
    /// returns its URL and a handle yielding the request bodies.
    fn server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/T000/B000/{SECRET_PART}",
            listener.local_addr().unwrap()
        );
        let handle = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for status in statuses {
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
                bodies.push(String::from_utf8(body).unwrap());
            }
            bodies
        });
        (url, handle)
    }

    /// A URL nothing listens on.
    fn closed() -> String {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/{SECRET_PART}",
            closed.local_addr().unwrap()
        );
        drop(closed);
        url
    }

    fn host(url: &str) -> &str {
        url.trim_start_matches("http://").split('/').next().unwrap()
    }

    fn secrets(url: &str) -> Secrets {
        let mut secrets = Secrets::new();
        secrets.insert("webhook", Secret::new(url));
        secrets
    }

    fn ctx(url: &str) -> Ctx {
        Ctx::standalone(Environment::new("production"), secrets(url))
    }

    fn evidence<'a>(outcome: &'a Outcome, label: &str) -> &'a str {
        outcome
            .evidence
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.as_str())
            .unwrap_or_else(|| panic!("no {label:?} in {outcome:?}"))
    }

    fn assert_no_url(outcome: &Outcome) {
        let json = serde_json::to_string(outcome).unwrap();
        assert!(!json.contains(SECRET_PART), "{json}");
    }

    #[tokio::test]
    async fn posts_the_rendered_message() {
        let (url, server) = server(vec![200]);
        let n = Notify::new("webhook", "deploy {run_id} em {environment} concluído")
            .channel("#operacoes");
        let outcome = n.run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Passed, "{outcome:?}");
        assert_eq!(evidence(&outcome, "to"), host(&url));
        assert_eq!(evidence(&outcome, "attempts"), "1");
        let bodies = server.join().unwrap();
        let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(body["text"], "deploy standalone em production concluído");
        assert_eq!(body["channel"], "#operacoes");
        assert_no_url(&outcome);
    }

    #[tokio::test]
    async fn a_failing_webhook_is_retried_then_warns_with_the_delivery_error() {
        let (url, server) = server(vec![500, 502, 500]);
        let outcome = Notify::new("webhook", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Warned, "{outcome:?}");
        assert_eq!(
            outcome.summary,
            format!(
                "notice not delivered to {}: HTTP 500, expected 2xx after 3 attempts",
                host(&url)
            )
        );
        assert_eq!(evidence(&outcome, "attempts"), "3");
        assert_eq!(evidence(&outcome, "HTTP status"), "500");
        assert_eq!(evidence(&outcome, "answer"), "ok");
        assert_eq!(server.join().unwrap().len(), 3);
        assert_no_url(&outcome);
    }

    #[tokio::test]
    async fn a_passing_failure_is_delivered_on_a_retry_and_a_refusal_is_not_retried() {
        let (url, flaky) = server(vec![503, 200]);
        let outcome = Notify::new("webhook", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Passed, "{outcome:?}");
        assert_eq!(evidence(&outcome, "attempts"), "2");
        flaky.join().unwrap();

        // 403: the hook was revoked; asking again would not help.
        let (url, refusing) = server(vec![403]);
        let outcome = Notify::new("webhook", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Warned, "{outcome:?}");
        assert_eq!(evidence(&outcome, "attempts"), "1");
        assert_eq!(refusing.join().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_or_misconfigured_webhook_warns_with_the_reason() {
        let url = closed();
        let outcome = Notify::new("webhook", "x").retries(1).run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Warned, "{outcome:?}");
        assert!(
            outcome.summary.starts_with(&format!(
                "notice not delivered to {}: cannot connect",
                host(&url)
            )),
            "{outcome:?}"
        );
        assert!(outcome.summary.ends_with("after 2 attempts"), "{outcome:?}");
        assert_no_url(&outcome);

        let outcome = Notify::new("missing", "x").run(&ctx(&url)).await;
        assert_eq!(outcome.status, Status::Warned);
        assert_eq!(
            outcome.summary,
            "notice not sent: secret `missing` (the webhook URL) was not provided"
        );
        assert_eq!(
            outcome.needs,
            [escola_runbook_core::Need::secret(
                "missing",
                "the webhook URL"
            )]
        );

        let outcome = Notify::new("webhook", "x")
            .run(&ctx("hooks.example/s3cr3tp4th"))
            .await;
        assert_eq!(outcome.status, Status::Warned);
        assert_eq!(
            outcome.summary,
            "notice not sent: secret `webhook`: the webhook URL is not an http(s) URL with a host"
        );
        assert_no_url(&outcome);
    }

    #[test]
    fn it_is_a_notice_and_its_preview_names_message_and_host() {
        let n = Notify::new("webhook", "deploy {run_id}");
        assert!(n.describe().notice && n.describe().mutates);
        let url = closed();
        let preview = n.preview(&ctx(&url));
        let labels: Vec<(&str, &str)> = preview
            .iter()
            .map(|e| (e.label.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("would post", "deploy standalone"), ("to", host(&url))]
        );
        let preview = Notify::new("missing", "x").preview(&ctx(&url));
        assert!(preview[1].value.starts_with("nowhere: secret `missing`"));
    }

    fn runbook() -> Runbook {
        Runbook::builder("escola")
            .phase(Phase::new("p", "P").step(Step::manual("s", "S")))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_notifier_posts_milestones_and_the_record_keeps_each_delivery() {
        let (url, server) = server(vec![200, 200]);
        let notifier = WebhookNotifier::new(Secret::new(&url), Some("#operacoes".into())).unwrap();
        let record = Executor::new(runbook())
            .secrets(secrets(&url))
            .notifier(Arc::new(notifier))
            .run()
            .await
            .unwrap();
        let bodies = server.join().unwrap();
        let texts: Vec<&str> = record.notices.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(record.notices.len(), 2, "{texts:?}");
        assert!(texts[0].starts_with("escola: deploy "), "{texts:?}");
        assert_eq!(texts[1], "deploy finished: succeeded (exit code 0)");
        for n in &record.notices {
            assert_eq!(n.to, host(&url));
            assert_eq!(n.delivery, Delivery::Delivered { attempts: 1 });
        }
        let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(body["channel"], "#operacoes");
    }

    #[tokio::test]
    async fn an_undelivered_milestone_is_recorded_and_a_dry_run_sends_none() {
        let url = closed();
        let notifier = Arc::new(WebhookNotifier::new(Secret::new(&url), None).unwrap());
        let record = Executor::new(runbook())
            .notifier(notifier.clone())
            .run()
            .await
            .unwrap();
        assert_eq!(
            record.verdict,
            Some(escola_runbook_core::Verdict::Succeeded)
        );
        for n in &record.notices {
            match &n.delivery {
                Delivery::Undelivered { attempts, error } => {
                    assert_eq!(*attempts, 3);
                    assert!(error.starts_with("cannot connect"), "{error}");
                }
                other => panic!("{other:?}"),
            }
        }

        // A listener that would see any connection: a dry-run makes none.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "http://{}/hooks/{SECRET_PART}",
            listener.local_addr().unwrap()
        );
        let notifier = WebhookNotifier::new(Secret::new(&url), None).unwrap();
        let record = Executor::new(runbook())
            .options(RunOptions {
                dry_run: true,
                ..RunOptions::default()
            })
            .notifier(Arc::new(notifier))
            .run()
            .await
            .unwrap();
        assert_eq!(record.notices.len(), 2);
        assert!(
            record
                .notices
                .iter()
                .all(|n| n.delivery == Delivery::DryRun)
        );
        assert!(record.notices[0].text.ends_with("(dry-run)"));
        assert!(listener.accept().is_err(), "the dry-run connected");
    }

    #[test]
    fn an_invalid_url_is_refused_without_showing_it() {
        let e = WebhookNotifier::new(Secret::new("ftp://x/s3cr3tp4th"), None).unwrap_err();
        assert_eq!(e, WebhookError::InvalidUrl);
        assert!(!e.to_string().contains(SECRET_PART));
    }
}
