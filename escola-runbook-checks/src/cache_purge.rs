//! "Limpar caches HTTP/CDN relacionados a `/v1/cidades` e `/v1/escolas`":
//! sends a PURGE (Varnish, nginx `proxy_cache_purge`, Fastly), a BAN, or any
//! configured method for each path to the cache. A mutating action: dry-run
//! shows the requests and sends nothing.

use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, SkipReason, async_trait};

use crate::http::{self, HttpOptions};
use crate::legacy_spec::{CheckSpec, ParamSpec};

/// The paths the runbook names.
pub const RUNBOOK_PATHS: [&str; 2] = ["/v1/cidades", "/v1/escolas"];

/// HTTP statuses that count as done: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// 2xx.
    pub fn success() -> StatusSet {
        StatusSet(vec![(200, 299)])
    }

    /// Parses `200-299,404`.
    pub fn parse(text: &str) -> Result<StatusSet, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let parse = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (100..=599).contains(n))
                    .ok_or_else(|| format!("`{part}` is not a status code or range (100-599)"))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(format!("`{part}` is an empty range"));
            }
            ranges.push((a, b));
        }
        if ranges.is_empty() {
            return Err("is empty; write e.g. 200-299,404".into());
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

/// Sends one purge request per path.
///
/// ```
/// use escola_runbook_checks::cache_purge::{CachePurgeCheck, RUNBOOK_PATHS};
/// let purge = CachePurgeCheck::new("http://varnish.internal:6081", RUNBOOK_PATHS)
///     .method("BAN")
///     .host("api.escola.example");
/// # let _ = purge;
/// ```
#[derive(Debug, Clone)]
pub struct CachePurgeCheck {
    base_url: String,
    paths: Vec<String>,
    method: String,
    host: Option<String>,
    accept: StatusSet,
    http: http::Options,
}

impl CachePurgeCheck {
    /// PURGE `base_url` + each of `paths`; 2xx counts as purged.
    pub fn new<I, S>(base_url: impl Into<String>, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CachePurgeCheck {
            base_url: base_url.into(),
            paths: paths.into_iter().map(Into::into).collect(),
            method: "PURGE".into(),
            host: None,
            accept: StatusSet::success(),
            http: http::Options::default(),
        }
    }

    /// The request method (`PURGE`, `BAN`, `DELETE`, `POST`...).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into().to_ascii_uppercase();
        self
    }

    /// The `Host` header, when the cache is addressed by IP or internal name
    /// and keys objects by the public host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Statuses that count as purged.
    pub fn accept(mut self, statuses: StatusSet) -> Self {
        self.accept = statuses;
        self
    }

    fn url_for(&self, path: &str) -> String {
        let base = self.base_url.trim_end_matches('/');
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    fn plan(&self) -> String {
        let targets: Vec<String> = self
            .paths
            .iter()
            .map(|p| format!("{} {}", self.method, http::strip_userinfo(&self.url_for(p))))
            .collect();
        let mut text = targets.join(", ");
        if let Some(h) = &self.host {
            text.push_str(&format!(" (Host: {h})"));
        }
        text
    }
}

impl HttpOptions for CachePurgeCheck {
    fn options_mut(&mut self) -> &mut http::Options {
        &mut self.http
    }
}

#[async_trait]
impl Check for CachePurgeCheck {
    fn describe(&self) -> Description {
        Description::mutating(
            "cache-purge",
            format!(
                "the cache accepts {} of {} (status {})",
                self.method,
                self.paths.join(", "),
                self.accept.text()
            ),
            format!("send {}", self.plan()),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("cache-purge")
            .with("base_url", &self.base_url)
            .with("paths", self.paths.join(","))
            .with("method", &self.method);
        if let Some(h) = &self.host {
            p = p.with("host", h);
        }

        if self.accept != StatusSet::success() {
            p = p.with("accept", self.accept.text());
        }
        Some(self.http.add_params(p))
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        // The executor never runs a mutating check in dry-run; this guards
        // embedders that call `run` themselves.
        if ctx.is_dry_run() {
            return Outcome::skipped(SkipReason::DryRun {
                would: format!("send {}", self.plan()),
            });
        }
        if self.paths.is_empty() {
            return Outcome::check_error("no paths to purge; set `paths`");
        }
        let method = match reqwest::Method::from_bytes(self.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Outcome::check_error(format!(
                    "`{}` is not an HTTP method name",
                    self.method
                ));
            }
        };
        let client = match http::client(self.http.timeout) {
            Ok(c) => c,
            Err(e) => return Outcome::check_error(e),
        };
        let auth = match http::bearer(ctx, self.http.token_secret.as_deref()) {
            Ok(a) => a,
            Err(e) => return Outcome::check_error(e),
        };
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        let mut unreachable = Vec::new();
        for path in &self.paths {
            let url = self.url_for(path);
            let shown = http::display_url(ctx, &url);
            let mut request = client.request(method.clone(), &url);
            if let Some(h) = &self.host {
                request = request.header(reqwest::header::HOST, h);
            }
            if let Some(a) = &auth {
                request = request.header(reqwest::header::AUTHORIZATION, a.clone());
            }
            ctx.progress(format!("{} {shown}", self.method));
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = http::body_limited(response, 4096)
                        .await
                        .map(|(b, _)| http::excerpt(ctx, &b))
                        .unwrap_or_default();
                    let body = body.trim().replace('\n', " ");
                    let ok = self.accept.contains(status.as_u16());
                    if !ok {
                        refused.push(format!("{path} → {}", status.as_u16()));
                    }
                    lines.push(format!(
                        "{} {shown} → {status}{}",
                        self.method,
                        if body.is_empty() {
                            String::new()
                        } else {
                            format!(" “{}”", body.chars().take(120).collect::<String>())
                        }
                    ));
                }
                Err(e) => {
                    let why = http::explain(ctx, &e, self.http.timeout);
                    unreachable.push(format!("{path}: {why}"));
                    lines.push(format!("{} {shown} → {why}", self.method));
                }
            }
        }
        let total = self.paths.len();
        let outcome = if !unreachable.is_empty() {
            Outcome::check_error(format!(
                "{} of {total} {} requests got no answer from the cache: {}",
                unreachable.len(),
                self.method,
                unreachable.join("; ")
            ))
        } else if !refused.is_empty() {
            Outcome::failed(format!(
                "{} of {total} {} requests refused (accepted statuses {}): {}",
                refused.len(),
                self.method,
                self.accept.text(),
                refused.join(", ")
            ))
        } else {
            Outcome::passed(format!(
                "{total} of {total} {} requests accepted (statuses {})",
                self.method,
                self.accept.text()
            ))
        };
        let mut outcome = outcome.with_evidence("requests", lines.join("\n"));
        if let Some(h) = &self.host {
            outcome = outcome.with_evidence("host header", h.clone());
        }
        outcome
    }
}

/// The registry entry for `cache-purge`.
pub(crate) fn spec() -> CheckSpec {
    const PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "base_url",
            help: "the HTTP cache or CDN purge endpoint, e.g. http://varnish:6081; each path is appended",
            required: true,
            default: None,
        },
        ParamSpec {
            name: "paths",
            help: "comma-separated paths to purge",
            required: false,
            default: Some("/v1/cidades,/v1/escolas"),
        },
        ParamSpec {
            name: "method",
            help: "request method: PURGE (Varnish, nginx), BAN (Varnish bans), or any other (DELETE, POST)",
            required: false,
            default: Some("PURGE"),
        },
        ParamSpec {
            name: "host",
            help: "Host header to send (the public API host the cache keys objects by); default: the base_url's host",
            required: false,
            default: None,
        },
        http::TOKEN_SECRET_PARAM,
        ParamSpec {
            name: "accept",
            help: "statuses that count as purged: codes or ranges, comma-separated (e.g. 200-299,404: nginx answers 404 for an uncached object)",
            required: false,
            default: Some("200-299"),
        },
        http::TIMEOUT_PARAM,
    ];
    CheckSpec {
        name: "cache-purge",
        summary: "sends PURGE/BAN (or a configured method) for each path to the HTTP cache/CDN; mutating, skipped in dry-run",
        params: PARAMS,
        build: |p| {
            let base = p.require("base_url")?;
            if let Err(e) = reqwest::Url::parse(base) {
                return Err(p.error("base_url", format!("is not a valid URL: {e}")));
            }
            let paths = p.list("paths").unwrap_or_default();
            if paths.is_empty() {
                return Err(p.error("paths", "is empty; give comma-separated paths"));
            }
            let method = p.require("method")?;
            if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
                return Err(p.error("method", format!("`{method}` is not an HTTP method name")));
            }
            let accept =
                StatusSet::parse(p.require("accept")?).map_err(|e| p.error("accept", e))?;
            let mut check = CachePurgeCheck::new(base, paths)
                .method(method)
                .accept(accept);
            if let Some(h) = p.get("host") {
                check = check.host(h);
            }
            Ok(std::sync::Arc::new(check.with_http_params(p)?))
        },
    }
}

#[cfg(test)]
mod tests {
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
        let o = CachePurgeCheck::new(&server.url, RUNBOOK_PATHS)
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
        let o = CachePurgeCheck::new(&server.url, RUNBOOK_PATHS)
            .method("delete")
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.summary.contains("2 of 2 DELETE requests refused"),
            "{}",
            o.summary
        );

        let o = CachePurgeCheck::new(closed_url().await, RUNBOOK_PATHS)
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
        let purge = CachePurgeCheck::new(&server.url, RUNBOOK_PATHS).method("BAN");
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
            ]))
            .unwrap();
        let params = check.params().unwrap();
        assert_eq!(params.params["paths"], "/v1/cidades,/v1/escolas");
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
        let err = spec
            .build_from_pairs(&crate::testing::pairs([
                ("base_url", "http://x"),
                ("method", "NOT A METHOD"),
            ]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an HTTP method"), "{err}");
    }
}
