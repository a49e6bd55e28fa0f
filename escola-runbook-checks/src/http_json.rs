//! GET a URL and judge one value of the JSON answer, like a web metric
//! provider: "CI is green for the commit being deployed" on any CI with a
//! status API (`/state` equals `success`), a health endpoint, a queue depth
//! below a limit.

use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Need, Outcome, async_trait};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{self, ClientPolicy, HttpOptions, HttpParams};

/// Largest JSON answer read.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The condition on the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal to the expected value (numbers compared as numbers; a string
    /// value also matches the expected text as written).
    Equals,
    /// Equal to one of the expected values.
    In,
    /// A number strictly below the limit.
    Below,
    /// A number strictly above the limit.
    Above,
}

impl Op {
    /// Parses `equals`, `in`, `below`, `above`.
    pub fn parse(text: &str) -> Option<Op> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "equals" | "eq" | "==" => Op::Equals,
            "in" => Op::In,
            "below" | "lt" | "<" => Op::Below,
            "above" | "gt" | ">" => Op::Above,
            _ => return None,
        })
    }

    /// The name as written in parameters.
    pub fn name(self) -> &'static str {
        match self {
            Op::Equals => "equals",
            Op::In => "in",
            Op::Below => "below",
            Op::Above => "above",
        }
    }
}

/// A JSON path could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// `a..b`, `.a`.
    #[error("`{path}` has an empty segment; write e.g. statuses[0].state or /statuses/0/state")]
    EmptySegment {
        /// The path as written.
        path: String,
    },
    /// `a[0`.
    #[error("`{path}` has an unclosed `[`")]
    UnclosedBracket {
        /// The path as written.
        path: String,
    },
    /// `a[x]`.
    #[error("`{path}`: `[{index}]` is not an array index")]
    NotAnIndex {
        /// The path as written.
        path: String,
        /// What was between the brackets.
        index: String,
    },
    /// `a[0]b`.
    #[error("`{path}`: unexpected `{rest}` after an index")]
    AfterIndex {
        /// The path as written.
        path: String,
        /// What followed the index.
        rest: String,
    },
}

/// A JSON path: an RFC 6901 pointer (`/state`, `/statuses/0/state`) or a
/// dotted path (`state`, `$.statuses[0].state`), kept as the pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    written: String,
    pointer: String,
}

impl JsonPath {
    /// Parses a pointer (starts with `/`, or empty for the whole document)
    /// or a dotted path.
    pub fn parse(text: &str) -> Result<JsonPath, JsonPathError> {
        let t = text.trim();
        if t.is_empty() || t == "$" || t.starts_with('/') {
            return Ok(JsonPath {
                written: t.to_owned(),
                pointer: if t == "$" {
                    String::new()
                } else {
                    t.to_owned()
                },
            });
        }
        let body = t
            .strip_prefix("$.")
            .or_else(|| t.strip_prefix('$'))
            .unwrap_or(t);
        let mut pointer = String::new();
        for part in body.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && rest.is_empty() {
                return Err(JsonPathError::EmptySegment { path: t.into() });
            }
            if !key.is_empty() {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            while !rest.is_empty() {
                let Some(close) = rest.find(']') else {
                    return Err(JsonPathError::UnclosedBracket { path: t.into() });
                };
                let index = &rest[1..close];
                if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
                    return Err(JsonPathError::NotAnIndex {
                        path: t.into(),
                        index: index.into(),
                    });
                }
                pointer.push('/');
                pointer.push_str(index);
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(JsonPathError::AfterIndex {
                        path: t.into(),
                        rest: rest.into(),
                    });
                }
            }
        }
        Ok(JsonPath {
            written: t.to_owned(),
            pointer,
        })
    }

    /// The path as the user wrote it.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    /// The value at this path.
    pub fn find<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        doc.pointer(&self.pointer)
    }
}

/// One expected value: as written, and as JSON when it parses.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    raw: String,
    json: Option<Value>,
}

impl Expected {
    fn new(raw: &str) -> Expected {
        let raw = raw.trim();
        Expected {
            raw: raw.to_owned(),
            json: serde_json::from_str(raw).ok(),
        }
    }

    fn matches(&self, actual: &Value) -> bool {
        if let Some(j) = &self.json {
            if j == actual {
                return true;
            }
            if let (Some(a), Some(b)) = (j.as_f64(), actual.as_f64())
                && j.is_number()
                && actual.is_number()
            {
                return a == b;
            }
        }
        matches!(actual, Value::String(s) if *s == self.raw)
    }
}

/// A condition's value does not suit its op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// `in` with no values.
    #[error("is empty; give comma-separated values or a JSON array")]
    NoValues,
    /// `below`/`above` with text that is not a number.
    #[error("`{value}` is not a number, which `{op}` needs")]
    NotANumber {
        /// The value as written.
        value: String,
        /// The op's name.
        op: &'static str,
    },
    /// `below`/`above` with an infinite or NaN limit.
    #[error("`{value}` is not a finite number")]
    NotFinite {
        /// The value as written.
        value: String,
    },
}

/// A value cannot be judged by a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotComparable {
    /// `below`/`above` on something that is not a number.
    #[error("it is {shown}, not a number")]
    NotANumber {
        /// The value, shortened.
        shown: String,
    },
    /// A `below`/`above` condition without its limit.
    #[error("the condition has no limit")]
    NoLimit,
}

/// The condition: an op and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    op: Op,
    value: String,
    expected: Vec<Expected>,
    limit: Option<f64>,
}

impl Condition {
    /// `op` with `value` as written: a JSON literal or bare text for
    /// `equals`; a JSON array or comma-separated values for `in`; a number
    /// for `below`/`above`.
    pub fn new(op: Op, value: &str) -> Result<Condition, ConditionError> {
        let mut c = Condition {
            op,
            value: value.to_owned(),
            expected: Vec::new(),
            limit: None,
        };
        match op {
            Op::Equals => c.expected.push(Expected::new(value)),
            Op::In => {
                c.expected = match serde_json::from_str::<Value>(value.trim()) {
                    Ok(Value::Array(items)) => items
                        .iter()
                        .map(|v| Expected {
                            raw: v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            json: Some(v.clone()),
                        })
                        .collect(),
                    _ => value
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(Expected::new)
                        .collect(),
                };
                if c.expected.is_empty() {
                    return Err(ConditionError::NoValues);
                }
            }
            Op::Below | Op::Above => {
                let n: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| ConditionError::NotANumber {
                        value: value.into(),
                        op: op.name(),
                    })?;
                if !n.is_finite() {
                    return Err(ConditionError::NotFinite {
                        value: value.into(),
                    });
                }
                c.limit = Some(n);
            }
        }
        Ok(c)
    }

    /// `equals "success"`, `below 10`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.op.name(), self.value.trim())
    }

    /// Judges `actual`: `Ok(holds)`, or `Err` when it cannot be judged (not
    /// a number for below/above).
    pub fn holds(&self, actual: &Value) -> Result<bool, NotComparable> {
        match (self.op, self.limit) {
            (Op::Equals | Op::In, _) => Ok(self.expected.iter().any(|e| e.matches(actual))),
            (op, Some(limit)) => {
                let n = match actual {
                    Value::Number(n) => n.as_f64(),
                    // Prometheus' API and many others send numbers as strings.
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|n| !n.is_nan())
                .ok_or_else(|| NotComparable::NotANumber {
                    shown: short_json(actual),
                })?;
                Ok(if op == Op::Below {
                    n < limit
                } else {
                    n > limit
                })
            }
            (_, None) => Err(NotComparable::NoLimit),
        }
    }
}

fn short_json(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

/// GETs a URL and checks a JSON value (equals, in, below, above), e.g.
/// the CI status of the commit.
///
/// The parameters of [`HttpJsonCheck`], declared once; `path`, `op` and
/// `value` are kept as written and judged in [`CheckConfig::build`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpJsonParams {
    /// URL to GET; the answer must be JSON with a 2xx status; `{name}` is
    /// replaced by the environment setting `name` (e.g.
    /// .../commits/{commit}/status with the setting commit=SHA).
    pub url: String,
    /// The value to judge: a JSON pointer (`/statuses/0/state`) or a
    /// dotted path (`statuses[0].state`); empty = the whole document.
    pub path: String,
    /// equals | in | below | above (below/above: strict, numbers or
    /// numeric strings).
    #[serde(default = "equals")]
    pub op: String,
    /// Expected value: a JSON literal or bare text (equals),
    /// comma-separated values or a JSON array (in), a number
    /// (below/above).
    pub value: String,
    /// Bearer token and timeout.
    #[serde(flatten)]
    pub http: HttpParams,
}

fn equals() -> String {
    Op::Equals.name().into()
}

impl HttpJsonParams {
    fn judged(self) -> Result<HttpJsonCheck, ParamsError> {
        let name = <Self as CheckConfig>::NAME;
        if let Err(e) = reqwest::Url::parse(&self.url) {
            return Err(ParamsError::invalid(
                name,
                "url",
                format!("is not a valid URL: {e}"),
            ));
        }
        let path = JsonPath::parse(&self.path)
            .map_err(|e| ParamsError::invalid(name, "path", e.to_string()))?;
        let op = Op::parse(&self.op).ok_or_else(|| {
            ParamsError::invalid(
                name,
                "op",
                format!("has value `{}`; use equals, in, below or above", self.op),
            )
        })?;
        let condition = Condition::new(op, &self.value)
            .map_err(|e| ParamsError::invalid(name, "value", e.to_string()))?;
        Ok(HttpJsonCheck {
            params: self,
            path,
            condition,
        })
    }
}

impl CheckConfig for HttpJsonParams {
    const NAME: &'static str = "http-json";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        Ok(Arc::new(self.judged()?))
    }
}

/// GET a URL, then a condition on one JSON value.
///
/// ```
/// use escola_runbook_checks::http::HttpOptions;
/// use escola_runbook_checks::http_json::{Condition, HttpJsonCheck, JsonPath, Op};
/// let ci = HttpJsonCheck::new(
///     "https://api.github.com/repos/escola/connect-api/commits/main/status",
///     JsonPath::parse("/state").unwrap(),
///     Condition::new(Op::Equals, "success").unwrap(),
/// )
/// .bearer_secret("ci_token");
/// # let _ = ci;
/// ```
#[derive(Debug, Clone)]
pub struct HttpJsonCheck {
    params: HttpJsonParams,
    path: JsonPath,
    condition: Condition,
}

impl HttpJsonCheck {
    /// Checks `condition` on the value at `path` of the JSON at `url`.
    pub fn new(url: impl Into<String>, path: JsonPath, condition: Condition) -> Self {
        HttpJsonCheck {
            params: HttpJsonParams {
                url: url.into(),
                path: path.as_written().to_owned(),
                op: condition.op.name().to_owned(),
                value: condition.value.clone(),
                http: HttpParams::default(),
            },
            path,
            condition,
        }
    }
}

impl HttpOptions for HttpJsonCheck {
    fn http_mut(&mut self) -> &mut HttpParams {
        &mut self.params.http
    }
}

#[async_trait]
impl Check for HttpJsonCheck {
    fn describe(&self) -> Description {
        Description {
            action: Some(format!("GET {}", http::strip_userinfo(&self.params.url))),
            ..Description::read_only(
                "http-json",
                format!(
                    "`{}` of the JSON at {} {}",
                    self.path.as_written(),
                    http::strip_userinfo(&self.params.url),
                    self.condition.describe()
                ),
            )
        }
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let timeout = self.params.http.timeout.get();
        let target = match fill_placeholders(&self.params.url, ctx) {
            Ok(u) => u,
            Err(need) => return Outcome::missing(need),
        };
        let url = http::display_url(ctx, &target);
        let client = match ClientPolicy::new(timeout).target(&target).build() {
            Ok(c) => c,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        let mut request = client.get(&target).header("accept", "application/json");
        match http::bearer(ctx, self.params.http.token_secret.as_deref()) {
            Ok(Some(v)) => request = request.header(reqwest::header::AUTHORIZATION, v),
            Ok(None) => {}
            Err(e) => return Outcome::from(e).with_evidence("url", url),
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::check_error(format!(
                    "GET {url}: {}",
                    http::explain(ctx, &e, timeout)
                ))
                .with_evidence("url", url);
            }
        };
        let status = response.status();
        let (body, truncated) = match http::body_limited(response, BODY_LIMIT).await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::check_error(format!(
                    "GET {url}: the body could not be read: {}",
                    http::explain(ctx, &e, timeout)
                ))
                .with_evidence("url", url)
                .with_evidence("status", status.as_u16().to_string());
            }
        };
        let base = |o: Outcome| {
            o.with_evidence("url", url.clone())
                .with_evidence("status", status.as_u16().to_string())
        };
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 if self.params.http.token_secret.is_some() => {
                    " (the token was refused: check the secret)"
                }
                401 | 403 => " (the API wants authentication: set token_secret)",
                404 => " (check the URL, e.g. the commit id)",
                _ => "",
            };
            return base(Outcome::check_error(format!(
                "GET {url} answered {status}{hint}; no value to judge"
            )))
            .with_evidence("body", http::excerpt(ctx, &body));
        }
        if truncated {
            return base(Outcome::check_error(format!(
                "GET {url}: the answer is over {} MiB; not read",
                BODY_LIMIT / (1024 * 1024)
            )));
        }
        let doc: Value = match serde_json::from_slice(&body) {
            Ok(d) => d,
            Err(e) => {
                return base(Outcome::check_error(format!(
                    "GET {url} did not answer JSON ({e})"
                )))
                .with_evidence("body", http::excerpt(ctx, &body));
            }
        };
        let path = self.path.as_written();
        let Some(actual) = self.path.find(&doc) else {
            let keys = match &doc {
                Value::Object(m) => format!(
                    "top-level keys: {}",
                    m.keys().take(12).cloned().collect::<Vec<_>>().join(", ")
                ),
                Value::Array(a) => format!("the document is an array of {}", a.len()),
                other => format!("the document is {}", short_json(other)),
            };
            return base(Outcome::check_error(format!(
                "`{path}` is not in the JSON from {url} ({keys})"
            )))
            .with_evidence("body", http::excerpt(ctx, &body));
        };
        let shown = ctx.redactor().redact(&short_json(actual)).into_owned();
        let condition = self.condition.describe();
        let mut outcome = match self.condition.holds(actual) {
            Ok(true) => Outcome::passed(format!("`{path}` is {shown}, {condition}: holds")),
            Ok(false) => Outcome::failed(format!("`{path}` is {shown}, expected {condition}")),
            Err(why) => {
                Outcome::check_error(format!("`{path}` cannot be compared ({condition}): {why}"))
            }
        };
        if let Some(n) = actual.as_f64() {
            outcome = outcome.with_measurement("value", n, None);
        }
        base(outcome)
            .with_evidence("path", path)
            .with_evidence("value", shown)
            .with_evidence("condition", condition)
    }
}

/// Replaces `{name}` in `url` with the environment setting `name` (e.g.
/// `{commit}` with the deployed commit's SHA), so one configured URL serves
/// every deploy; a setting the environment lacks is the [`Need`] returned.
fn fill_placeholders(url: &str, ctx: &Ctx) -> Result<String, Need> {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push_str(&rest[..=open]);
            rest = after;
            continue;
        }
        let Some(value) = ctx.environment().get(name) else {
            return Err(Need::setting(
                name,
                format!("for `{{{name}}}` in the URL"),
                "VALUE",
            ));
        };
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::http::testing::{Received, closed_url, serve};
    use escola_runbook_core::{Environment, Secret, Secrets, Status};

    fn ctx_with_token(token: &str) -> Ctx {
        let mut secrets = Secrets::new();
        secrets.insert("ci_token", Secret::new(token));
        Ctx::standalone(Environment::new("test"), secrets)
    }

    /// A CI status API in the shape of GitHub's combined status.
    fn ci_api(state: &'static str) -> crate::http::testing::Responder {
        Arc::new(move |req: &Received| {
            if req.header("authorization") != Some("Bearer s3cr3t-token") {
                return (401, r#"{"message":"Bad credentials"}"#.into());
            }
            match req.path.as_str() {
                "/repos/escola/api/commits/abc123/status" => (
                    200,
                    format!(
                        r#"{{"state":"{state}","sha":"abc123","total_count":2,"statuses":[{{"context":"phpunit","state":"{state}"}}],"queue":{{"depth":"12"}}}}"#
                    ),
                ),
                "/html" => (200, "<html>maintenance</html>".into()),
                _ => (404, r#"{"message":"Not Found"}"#.into()),
            }
        })
    }

    fn check(url: &str, path: &str, op: Op, value: &str) -> HttpJsonCheck {
        HttpJsonCheck::new(
            url,
            JsonPath::parse(path).unwrap(),
            Condition::new(op, value).unwrap(),
        )
        .bearer_secret("ci_token")
    }

    #[tokio::test]
    async fn ci_green_passes_and_pending_fails_with_the_value() {
        let green = serve(ci_api("success")).await;
        let url = format!("{}/repos/escola/api/commits/abc123/status", green.url);
        let o = check(&url, "/state", Op::Equals, "success")
            .run(&ctx_with_token("s3cr3t-token"))
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert_eq!(o.summary, r#"`/state` is "success", equals success: holds"#);

        let pending = serve(ci_api("pending")).await;
        let url = format!("{}/repos/escola/api/commits/abc123/status", pending.url);
        let o = check(&url, "statuses[0].state", Op::In, "success,neutral")
            .run(&ctx_with_token("s3cr3t-token"))
            .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert_eq!(
            o.summary,
            r#"`statuses[0].state` is "pending", expected in success,neutral"#
        );
        let o = check(&url, "$.queue.depth", Op::Below, "20")
            .run(&ctx_with_token("s3cr3t-token"))
            .await;
        assert_eq!(
            o.status,
            Status::Passed,
            "numeric strings compare as numbers: {o:#?}"
        );
        let o = check(&url, "/total_count", Op::Above, "2")
            .run(&ctx_with_token("s3cr3t-token"))
            .await;
        assert_eq!(o.status, Status::Failed, "above is strict: {o:#?}");
        assert_eq!(o.measurements[0].value, 2.0);
    }

    #[tokio::test]
    async fn cannot_measure_is_a_check_error_never_a_failure() {
        let server = serve(ci_api("success")).await;
        let good = format!("{}/repos/escola/api/commits/abc123/status", server.url);
        let cases = [
            (
                check(&good, "/state", Op::Equals, "success"),
                "wrong-token",
                "answered 401 Unauthorized (the token was refused",
            ),
            (
                check(
                    &format!("{}/repos/escola/api/commits/zzz/status", server.url),
                    "/state",
                    Op::Equals,
                    "success",
                ),
                "s3cr3t-token",
                "answered 404 Not Found (check the URL",
            ),
            (
                check(
                    &format!("{}/html", server.url),
                    "/state",
                    Op::Equals,
                    "success",
                ),
                "s3cr3t-token",
                "did not answer JSON",
            ),
            (
                check(&good, "/conclusion", Op::Equals, "success"),
                "s3cr3t-token",
                "`/conclusion` is not in the JSON",
            ),
            (
                check(&good, "/state", Op::Below, "3"),
                "s3cr3t-token",
                "cannot be compared (below 3): it is \"success\", not a number",
            ),
            (
                check(&closed_url().await, "/state", Op::Equals, "success"),
                "s3cr3t-token",
                "cannot connect",
            ),
        ];
        for (check, token, expected) in cases {
            let o = check.run(&ctx_with_token(token)).await;
            assert_eq!(o.status, Status::CheckError, "{expected}: {o:#?}");
            assert!(o.summary.contains(expected), "{expected}: {}", o.summary);
        }
        let o = HttpJsonCheck::new(
            &good,
            JsonPath::parse("/state").unwrap(),
            Condition::new(Op::Equals, "success").unwrap(),
        )
        .bearer_secret("missing")
        .run(&ctx_with_token("s3cr3t-token"))
        .await;
        assert_eq!(o.status, Status::CheckError);
        assert!(o.summary.contains("secret `missing`"), "{}", o.summary);
    }

    #[tokio::test]
    async fn the_token_never_reaches_the_outcome() {
        let echo: crate::http::testing::Responder = Arc::new(|req: &Received| {
            (
                500,
                format!(
                    r#"{{"error":"rejected {}"}}"#,
                    req.header("authorization").unwrap_or("")
                ),
            )
        });
        let server = serve(echo).await;
        let o = check(
            &format!("{}/x?token=s3cr3t-token", server.url),
            "/state",
            Op::Equals,
            "success",
        )
        .run(&ctx_with_token("s3cr3t-token"))
        .await;
        assert_eq!(o.status, Status::CheckError);
        let all = serde_json::to_string(&o).unwrap();
        assert!(!all.contains("s3cr3t-token"), "{all}");
        assert!(all.contains("<redacted:ci_token>"), "{all}");
        let sent = server.received.lock().unwrap();
        assert_eq!(sent[0].header("authorization"), Some("Bearer s3cr3t-token"));
    }

    #[tokio::test]
    async fn url_placeholders_come_from_environment_settings() {
        let server = serve(ci_api("success")).await;
        let url = format!("{}/repos/escola/api/commits/{{commit}}/status", server.url);
        let mut secrets = Secrets::new();
        secrets.insert("ci_token", Secret::new("s3cr3t-token"));
        let ctx = Ctx::standalone(Environment::new("prod").with("commit", "abc123"), secrets);
        let o = check(&url, "/state", Op::Equals, "success").run(&ctx).await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert_eq!(
            server.received.lock().unwrap()[0].path,
            "/repos/escola/api/commits/abc123/status"
        );
        let o = check(&url, "/state", Op::Equals, "success")
            .run(&ctx_with_token("s3cr3t-token"))
            .await;
        assert_eq!(o.status, Status::CheckError);
        assert!(
            o.summary
                .contains("environment setting `commit` (for `{commit}` in the URL) was not given"),
            "{}",
            o.summary
        );
        assert!(
            matches!(&o.needs[..], [escola_runbook_core::Need::Setting { name, .. }] if name == "commit"),
            "{:?}",
            o.needs
        );
    }

    #[test]
    fn paths_and_conditions_parse() {
        let doc = serde_json::json!({"a": {"b/c": [10, {"d": true}]}, "s": "42"});
        assert_eq!(
            JsonPath::parse("/a/b~1c/1/d").unwrap().find(&doc),
            Some(&serde_json::json!(true))
        );
        assert_eq!(JsonPath::parse("$").unwrap().find(&doc), Some(&doc));
        assert_eq!(
            JsonPath::parse("s").unwrap().find(&doc),
            Some(&serde_json::json!("42"))
        );
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("a[x]").is_err());
        assert!(JsonPath::parse("a[0").is_err());
        let eq = |v: &str, actual: serde_json::Value| {
            Condition::new(Op::Equals, v)
                .unwrap()
                .holds(&actual)
                .unwrap()
        };
        assert!(eq("42", serde_json::json!(42.0)));
        assert!(eq("42", serde_json::json!("42")));
        assert!(eq("true", serde_json::json!(true)));
        assert!(!eq("true", serde_json::json!(1)));
        assert!(eq(r#""ok""#, serde_json::json!("ok")));
        let inn = Condition::new(Op::In, r#"["success", 0]"#).unwrap();
        assert!(inn.holds(&serde_json::json!(0)).unwrap());
        assert!(!inn.holds(&serde_json::json!("failure")).unwrap());
        assert!(Condition::new(Op::Below, "fast").is_err());
        assert!(Condition::new(Op::In, " , ").is_err());
    }

    #[test]
    fn registry_validates_and_round_trips() {
        let catalog = crate::catalog();
        let spec = catalog.find("http-json").unwrap();
        let p = crate::testing::pairs([
            ("url", "https://ci.example.invalid/api/status"),
            ("path", "/state"),
            ("value", "success"),
            ("token_secret", "ci_token"),
            ("timeout", "3s"),
        ]);
        let check = spec.build_from_pairs(&p).unwrap();
        let params = check.params().unwrap();
        // `op` is its default, left out, and comes back.
        assert!(!params.params.contains_key("op"), "{params:?}");
        assert_eq!(params.params["timeout"], "3s");
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
        assert!(
            again.describe().verifies.contains("equals success"),
            "{:?}",
            again.describe()
        );
        for (k, v, expected) in [
            ("op", "roughly", "use equals, in, below or above"),
            ("url", "not a url", "not a valid URL"),
            ("path", "a..b", "empty segment"),
        ] {
            let mut given = vec![
                ("url", "https://x.invalid/"),
                ("path", "/s"),
                ("value", "1"),
            ];
            given.retain(|(name, _)| *name != k);
            given.push((k, v));
            let err = spec
                .build_from_pairs(&crate::testing::pairs(given))
                .err()
                .unwrap();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
