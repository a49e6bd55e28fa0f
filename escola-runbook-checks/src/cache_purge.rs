//! "Limpar caches HTTP/CDN relacionados a `/v1/cidades` e `/v1/escolas`":
//! sends a PURGE (Varnish, nginx `proxy_cache_purge`, Fastly), a BAN, or any
//! configured method for each path to the cache. A mutating action: dry-run
//! shows the requests and sends nothing.

use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, SkipReason, async_trait};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::http::{self, ClientPolicy, HttpOptions, HttpParams};

/// HTTP statuses that count as done: inclusive ranges. Written as text
/// (`200-299,404`) in parameters and files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

/// A status set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusSetError {
    /// A part is neither a code nor a range of codes in 100-599.
    #[error("`{part}` is not a status code or range (100-599)")]
    NotAStatus {
        /// The part as written.
        part: String,
    },
    /// A range whose start is above its end.
    #[error("`{part}` is an empty range")]
    EmptyRange {
        /// The part as written.
        part: String,
    },
    /// Nothing was written.
    #[error("is empty; write e.g. 200-299,404")]
    Empty,
}

impl StatusSet {
    /// 2xx.
    pub fn success() -> StatusSet {
        StatusSet(vec![(200, 299)])
    }

    /// Parses `200-299,404`.
    pub fn parse(text: &str) -> Result<StatusSet, StatusSetError> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let parse = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (100..=599).contains(n))
                    .ok_or_else(|| StatusSetError::NotAStatus { part: part.into() })
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(StatusSetError::EmptyRange { part: part.into() });
            }
            ranges.push((a, b));
        }
        if ranges.is_empty() {
            return Err(StatusSetError::Empty);
        }
        Ok(StatusSet(ranges))
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }

    fn text(&self) -> String {
        self.0
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Serialize for StatusSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for StatusSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        StatusSet::parse(&text).map_err(serde::de::Error::custom)
    }
}

escola_runbook_core::text_param_schema!(
    StatusSet,
    "StatusSet",
    "HTTP status codes or ranges, comma-separated (200-299,404)"
);

/// Sends PURGE/BAN (or a configured method) for each path to the HTTP
/// cache/CDN; mutating, skipped in dry-run.
///
/// The parameters of [`CachePurgeCheck`], declared once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CachePurgeParams {
    /// The HTTP cache or CDN purge endpoint, e.g. http://varnish:6081;
    /// each path is appended.
    pub base_url: String,
    /// Paths to purge.
    pub paths: Vec<String>,
    /// Request method: PURGE (Varnish, nginx), BAN (Varnish bans), or any
    /// other (DELETE, POST).
    #[serde(default = "purge_method")]
    pub method: String,
    /// Host header to send (the public API host the cache keys objects
    /// by); default: the base_url's host.
    #[serde(default)]
    pub host: Option<String>,
    /// Statuses that count as purged: codes or ranges, comma-separated
    /// (e.g. 200-299,404: nginx answers 404 for an uncached object).
    #[serde(default = "StatusSet::success")]
    pub accept: StatusSet,
    /// Bearer token and timeout.
    #[serde(flatten)]
    pub http: HttpParams,
}

fn purge_method() -> String {
    "PURGE".into()
}

impl CachePurgeParams {
    /// PURGE of `paths` at `base_url`, 2xx accepted.
    pub fn new<I, S>(base_url: impl Into<String>, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CachePurgeParams {
            base_url: base_url.into(),
            paths: paths.into_iter().map(Into::into).collect(),
            method: purge_method(),
            host: None,
            accept: StatusSet::success(),
            http: HttpParams::default(),
        }
    }
}

impl CheckConfig for CachePurgeParams {
    const NAME: &'static str = "cache-purge";

    fn build(mut self) -> Result<Arc<dyn Check>, ParamsError> {
        if let Err(e) = reqwest::Url::parse(&self.base_url) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "base_url",
                format!("is not a valid URL: {e}"),
            ));
        }
        if self.paths.is_empty() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "paths",
                "is empty; give comma-separated paths",
            ));
        }
        self.method = self.method.to_ascii_uppercase();
        if reqwest::Method::from_bytes(self.method.as_bytes()).is_err() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "method",
                format!("`{}` is not an HTTP method name", self.method),
            ));
        }
        Ok(Arc::new(CachePurgeCheck { params: self }))
    }
}

/// Sends one purge request per path.
///
/// ```
/// use escola_runbook_checks::cache_purge::CachePurgeCheck;
/// let purge = CachePurgeCheck::new("http://varnish.internal:6081", ["/v1/cidades", "/v1/escolas"])
///     .method("BAN")
///     .host("api.escola.example");
/// # let _ = purge;
/// ```
#[derive(Debug, Clone)]
pub struct CachePurgeCheck {
    params: CachePurgeParams,
}

impl CachePurgeCheck {
    /// PURGE `base_url` + each of `paths`; 2xx counts as purged.
    pub fn new<I, S>(base_url: impl Into<String>, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CachePurgeCheck {
            params: CachePurgeParams::new(base_url, paths),
        }
    }

    escola_runbook_core::setters! {
        /// The request method (`PURGE`, `BAN`, `DELETE`, `POST`...).
        method(method: impl Into<String>) => params.method = method.into().to_ascii_uppercase();

        /// The `Host` header, when the cache is addressed by IP or internal name
        /// and keys objects by the public host.
        host(host: impl Into<String>) => params.host = Some(host.into());

        /// Statuses that count as purged.
        accept(statuses: StatusSet) => params.accept = statuses;
    }

    fn url_for(&self, path: &str) -> String {
        let base = self.params.base_url.trim_end_matches('/');
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    fn plan(&self) -> String {
        let targets: Vec<String> = self
            .params
            .paths
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    self.params.method,
                    http::strip_userinfo(&self.url_for(p))
                )
            })
            .collect();
        let mut text = targets.join(", ");
        if let Some(h) = &self.params.host {
            text.push_str(&format!(" (Host: {h})"));
        }
        text
    }
}

impl HttpOptions for CachePurgeCheck {
    fn http_mut(&mut self) -> &mut HttpParams {
        &mut self.params.http
    }
}

#[async_trait]
impl Check for CachePurgeCheck {
    fn describe(&self) -> Description {
        let p = &self.params;
        Description::mutating(
            "cache-purge",
            format!(
                "the cache accepts {} of {} (status {})",
                p.method,
                p.paths.join(", "),
                p.accept.text()
            ),
            format!("send {}", self.plan()),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        // The executor never runs a mutating check in dry-run; this guards
        // embedders that call `run` themselves.
        if ctx.is_dry_run() {
            return Outcome::skipped(SkipReason::DryRun {
                would: format!("send {}", self.plan()),
            });
        }
        if p.paths.is_empty() {
            return Outcome::check_error("no paths to purge; set `paths`");
        }
        let method = match reqwest::Method::from_bytes(p.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Outcome::check_error(format!("`{}` is not an HTTP method name", p.method));
            }
        };
        let urls: Vec<String> = p.paths.iter().map(|path| self.url_for(path)).collect();
        let parsed: Vec<reqwest::Url> = urls
            .iter()
            .filter_map(|u| reqwest::Url::parse(u).ok())
            .collect();
        let client = match ClientPolicy::new(p.http.timeout.get())
            .targets(&parsed)
            .build()
        {
            Ok(c) => c,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        let auth = match http::bearer(ctx, p.http.token_secret.as_deref()) {
            Ok(a) => a,
            Err(e) => return e.into(),
        };
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        let mut unreachable = Vec::new();
        for (path, url) in p.paths.iter().zip(&urls) {
            let shown = http::display_url(ctx, url);
            let mut request = client.request(method.clone(), url);
            if let Some(h) = &p.host {
                request = request.header(reqwest::header::HOST, h);
            }
            if let Some(a) = &auth {
                request = request.header(reqwest::header::AUTHORIZATION, a.clone());
            }
            ctx.progress(format!("{} {shown}", p.method));
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = http::body_limited(response, 4096)
                        .await
                        .map(|(b, _)| http::excerpt(ctx, &b))
                        .unwrap_or_default();
                    let body = body.trim().replace('\n', " ");
                    let ok = p.accept.contains(status.as_u16());
                    if !ok {
                        refused.push(format!("{path} → {}", status.as_u16()));
                    }
                    lines.push(format!(
                        "{} {shown} → {status}{}",
                        p.method,
                        if body.is_empty() {
                            String::new()
                        } else {
                            format!(" “{}”", body.chars().take(120).collect::<String>())
                        }
                    ));
                }
                Err(e) => {
                    let why = http::explain(ctx, &e, p.http.timeout.get());
                    unreachable.push(format!("{path}: {why}"));
                    lines.push(format!("{} {shown} → {why}", p.method));
                }
            }
        }
        let total = p.paths.len();
        let outcome = if !unreachable.is_empty() {
            Outcome::check_error(format!(
                "{} of {total} {} requests got no answer from the cache: {}",
                unreachable.len(),
                p.method,
                unreachable.join("; ")
            ))
        } else if !refused.is_empty() {
            Outcome::failed(format!(
                "{} of {total} {} requests refused (accepted statuses {}): {}",
                refused.len(),
                p.method,
                p.accept.text(),
                refused.join(", ")
            ))
        } else {
            Outcome::passed(format!(
                "{total} of {total} {} requests accepted (statuses {})",
                p.method,
                p.accept.text()
            ))
        };
        let mut outcome = outcome.with_evidence("requests", lines.join("\n"));
        if let Some(h) = &p.host {
            outcome = outcome.with_evidence("host header", h.clone());
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    /// The paths the team's runbook purges.
    const PATHS: [&str; 2] = ["/v1/cidades", "/v1/escolas"];
    use crate::testing::ctx;
    use std::sync::Arc;

    use super::*;
    use crate::http::testing::{Received, closed_url, serve};
    use escola_runbook_core::{
        Executor, Phase, PreapprovedConfirmer, RunOptions, Runbook, Status, Step,
    };

    /// Varnish-like: PURGE of a known path answers 200, anything else 405.
    fn varnish() -> crate::http::testing::Responder {
        Arc::new(
            |req: &Received| match (req.method.as_str(), req.path.as_str()) {
                ("PURGE" | "BAN", "/v1/cidades" | "/v1/escolas") => (200, "Purged".into()),
                ("PURGE", _) => (404, "Not in cache".into()),
                _ => (405, "Method not allowed".into()),
            },
        )
    }

    #[tokio::test]
    async fn purges_each_path_with_the_method_and_host() {
        let server = serve(varnish()).await;
        let o = CachePurgeCheck::new(&server.url, PATHS)
            .host("api.escola.example")
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert_eq!(
            o.summary,
            "2 of 2 PURGE requests accepted (statuses 200-299)"
        );
        let sent = server.received.lock().unwrap().clone();
        let seen: Vec<(&str, &str, Option<&str>)> = sent
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.header("host")))
            .collect();
        assert_eq!(
            seen,
            [
                ("PURGE", "/v1/cidades", Some("api.escola.example")),
                ("PURGE", "/v1/escolas", Some("api.escola.example")),
            ]
        );
        let requests = &o.evidence[0].value;
        assert!(
            requests.contains("/v1/escolas → 200 OK “Purged”"),
            "{requests}"
        );
    }

    #[tokio::test]
    async fn refused_purges_fail_and_unreachable_cache_is_a_check_error() {
        let server = serve(varnish()).await;
        let o = CachePurgeCheck::new(&server.url, ["/v1/escolas", "/v1/other"])
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert_eq!(
            o.summary,
            "1 of 2 PURGE requests refused (accepted statuses 200-299): /v1/other → 404"
        );
        let o = CachePurgeCheck::new(&server.url, ["/v1/escolas", "/v1/other"])
            .accept(StatusSet::parse("200-299,404").unwrap())
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        let o = CachePurgeCheck::new(&server.url, PATHS)
            .method("delete")
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.summary.contains("2 of 2 DELETE requests refused"),
            "{}",
            o.summary
        );

        let o = CachePurgeCheck::new(closed_url().await, PATHS)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(
            o.summary
                .contains("2 of 2 PURGE requests got no answer from the cache"),
            "{}",
            o.summary
        );
    }

    #[tokio::test]
    async fn dry_run_sends_nothing_and_shows_the_requests() {
        let server = serve(varnish()).await;
        let purge = CachePurgeCheck::new(&server.url, PATHS).method("BAN");
        assert!(purge.describe().mutates);
        let runbook = Runbook::builder("purge")
            .phase(Phase::new("deploy", "Deploy").step(Step::check(
                "cdn-purge",
                "Limpar caches",
                purge,
            )))
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let record = Executor::new(runbook)
            .confirmer(Arc::new(PreapprovedConfirmer::new("test")))
            .run_root(dir.path())
            .options(RunOptions {
                dry_run: true,
                ..RunOptions::default()
            })
            .run()
            .await
            .unwrap();
        let step = &record.phases[0].steps[0];
        let outcome = step.outcome.as_ref().unwrap();
        assert_eq!(outcome.status, Status::Skipped, "{outcome:#?}");
        assert!(
            outcome.summary.contains(&format!(
                "would send BAN {}/v1/cidades, BAN {}/v1/escolas",
                server.url, server.url
            )),
            "{}",
            outcome.summary
        );
        assert!(server.received.lock().unwrap().is_empty());
    }

    #[test]
    fn statuses_parse_and_registry_round_trips() {
        assert!(StatusSet::parse("200-299,404").unwrap().contains(404));
        assert!(!StatusSet::parse("200-299").unwrap().contains(301));
        assert!(StatusSet::parse("299-200").is_err());
        assert!(StatusSet::parse("ok").is_err());
        let catalog = crate::catalog();
        let spec = catalog.find("cache-purge").unwrap();
        let check = spec
            .build_from_pairs(&crate::testing::pairs([
                ("base_url", "http://varnish:6081"),
                ("method", "BAN"),
                ("host", "api.escola.example"),
                ("accept", "200-299,404"),
                ("paths", "/v1/cidades,/v1/escolas"),
            ]))
            .unwrap();
        let params = check.params().unwrap();
        assert_eq!(
            params.params["paths"],
            serde_json::json!(["/v1/cidades", "/v1/escolas"])
        );
        assert_eq!(params.params["accept"], "200-299,404");
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
        assert!(
            again
                .describe()
                .verifies
                .contains("BAN of /v1/cidades, /v1/escolas"),
            "{:?}",
            again.describe()
        );
        // The check carries no team's paths: they must be given.
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("base_url", "http://x")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`paths`"), "{err}");
        let err = spec
            .build_from_pairs(&crate::testing::pairs([
                ("base_url", "http://x"),
                ("paths", "/a"),
                ("method", "NOT A METHOD"),
            ]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an HTTP method"), "{err}");
    }
}
