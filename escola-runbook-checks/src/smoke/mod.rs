//! The HTTP smoke suite: requests with expectations on status, headers, JSON
//! fields and latency; `Trace-Id` on every error; the `If-Match` round trip
//! the mobile sync relies on (a stale tag gets 412, none 428). Suites come
//! from TOML/JSON files, from a Postman Collection v2.1 ([`postman`]), or
//! from [`smoke_suite`](crate::escola::data::smoke_suite).
//!
//! [`run_suite`] is the library entry point (the `smoke` CLI command wraps
//! it); [`SmokeCheck`] is the same as a runbook step.
//!
//! Verdicts: `passed` when every assertion held; `failed` when one did not,
//! or when some requests got no answer while others did (the target is
//! partly down); `check_error` when the target answered no request at all
//! (it could not be measured); `no_data` when nothing was evaluated (no
//! requests, or only untranslatable Postman scripts); `warned` when every
//! evaluated assertion held but some were not evaluated (named in the
//! summary).

pub mod postman;
mod report;
mod run;
pub(crate) mod suite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::duration::Span;
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Need, Outcome, Secrets, async_trait,
};
use serde::{Deserialize, Serialize};

pub use report::{
    AssertionResult, AssertionVerdict, Counts, Failure, PASS_PERCENT, RequestResult, SmokeReport,
};
pub use run::{
    DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, Progress, SmokeError, SmokeOptions, run_suite,
};
pub use suite::{
    Bounds, Capture, Expect, Header, IfMatchTest, JsonKind, Request, Suite, SuiteError,
};

/// The value of the `suite` parameter that names [`smoke_suite`](crate::escola::data::smoke_suite).
pub const BUILTIN_ESCOLA: &str = "escola";

/// Sends an HTTP smoke suite (native or Postman v2.1); passes when every
/// assertion holds.
///
/// The parameters of [`SmokeCheck`], declared once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeParams {
    /// Target URL (default: the environment's base_url setting); also the
    /// collection's {{baseUrl}}.
    #[serde(default)]
    pub base_url: Option<String>,
    /// A TOML or JSON suite file, or `escola` for the built-in suite (the
    /// default when no collection is given).
    #[serde(default)]
    pub suite: Option<String>,
    /// A Postman Collection v2.1 JSON file.
    #[serde(default)]
    pub collection: Option<PathBuf>,
    /// {{variables}} as KEY=VALUE.
    #[serde(default)]
    pub var: Vec<String>,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Limit for each request (e.g. 10s, 500ms).
    #[serde(default = "crate::http::default_timeout")]
    pub timeout: Span,
}

fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}

impl SmokeParams {
    /// The built-in suite with the defaults.
    fn escola() -> Self {
        SmokeParams {
            base_url: None,
            suite: Some(BUILTIN_ESCOLA.into()),
            collection: None,
            var: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            timeout: crate::http::default_timeout(),
        }
    }

    /// The suite file `suite` names, unless it names the built-in one.
    fn suite_file(&self) -> Option<&Path> {
        self.suite
            .as_deref()
            .filter(|s| *s != BUILTIN_ESCOLA)
            .map(Path::new)
    }

    /// `var` as a map; each item must be `KEY=VALUE`.
    fn vars(&self) -> Result<BTreeMap<String, String>, ParamsError> {
        self.var
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                _ => Err(ParamsError::invalid(
                    <Self as CheckConfig>::NAME,
                    "var",
                    format!("`{pair}` is not KEY=VALUE"),
                )),
            })
            .collect()
    }
}

impl CheckConfig for SmokeParams {
    const NAME: &'static str = "smoke";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        let suite = load_suite(self.suite_file(), self.collection.as_deref()).map_err(|e| {
            let param = match e {
                LoadError::Suite(_) | LoadError::NoSuite => "suite",
                LoadError::Postman(_) => "collection",
            };
            ParamsError::invalid(Self::NAME, param, format!("cannot be used: {e}"))
        })?;
        if self.suite.as_deref() == Some(BUILTIN_ESCOLA) && self.collection.is_some() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "suite",
                "`escola` (built-in) cannot be combined with a collection; give a suite file or leave it out",
            ));
        }
        let vars = self.vars()?;
        if self.concurrency == 0 {
            return Err(ParamsError::invalid(
                Self::NAME,
                "concurrency",
                "must be at least 1",
            ));
        }
        Ok(Arc::new(SmokeCheck {
            suite,
            params: self,
            vars,
            in_code: false,
        }))
    }
}

/// The smoke suite as a runbook step.
///
/// The base URL is the check's own ([`SmokeCheck::base_url`]) or else the
/// environment's `base_url` setting. Read-only unless the suite allows
/// writes (then dry-run skips it): the refused writes of
/// [`IfMatchTest::refused_writes`] send a resource's own body back, so they
/// change no data and run in dry-run too.
///
/// ```
/// use escola_runbook_checks::smoke::SmokeCheck;
/// let check = SmokeCheck::escola().concurrency(8);
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct SmokeCheck {
    suite: Suite,
    params: SmokeParams,
    /// `params.var`, split.
    vars: BTreeMap<String, String>,
    /// The suite was built in code: no parameters can rebuild it.
    in_code: bool,
}

/// A suite or collection file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A suite file.
    #[error(transparent)]
    Suite(#[from] SuiteError),
    /// A Postman collection.
    #[error(transparent)]
    Postman(#[from] postman::PostmanError),
    /// Neither was given, and this build has no built-in suite (the
    /// `escola` feature is off).
    #[error("no suite file and no collection given, and this build has no built-in suite")]
    NoSuite,
}

/// The built-in suite: the team's, when the team's module is built.
#[cfg(feature = "escola")]
fn builtin_suite() -> Result<Suite, LoadError> {
    Ok(crate::escola::data::smoke_suite())
}

#[cfg(not(feature = "escola"))]
fn builtin_suite() -> Result<Suite, LoadError> {
    Err(LoadError::NoSuite)
}

/// Loads a suite file, a Postman collection, or both (the collection's
/// requests after the suite's); neither gives [`smoke_suite`](crate::escola::data::smoke_suite).
pub fn load_suite(suite: Option<&Path>, collection: Option<&Path>) -> Result<Suite, LoadError> {
    let base = suite.map(Suite::load).transpose()?;
    let imported = collection.map(postman::load).transpose()?;
    Ok(match (base, imported) {
        (None, None) => builtin_suite()?,
        (Some(s), None) => s,
        (None, Some(c)) => c,
        (Some(mut s), Some(c)) => {
            for (k, v) in c.variables {
                s.variables.entry(k).or_insert(v);
            }
            s.requests.extend(c.requests);
            s.name = format!("{} + {}", s.name, c.name);
            s
        }
    })
}

impl SmokeCheck {
    /// A check running `suite` (built in code: it has no parameters that
    /// could rebuild it, so [`Check::params`] is `None`).
    pub fn new(suite: Suite) -> Self {
        SmokeCheck {
            suite,
            params: SmokeParams {
                suite: None,
                ..SmokeParams::escola()
            },
            vars: BTreeMap::new(),
            in_code: true,
        }
    }

    /// The built-in Escola Connect suite (changes no data; see
    /// [`smoke_suite`](crate::escola::data::smoke_suite)).
    #[cfg(feature = "escola")]
    pub fn escola() -> Self {
        SmokeCheck {
            suite: crate::escola::data::smoke_suite(),
            params: SmokeParams::escola(),
            vars: BTreeMap::new(),
            in_code: false,
        }
    }

    /// A suite file and/or a Postman collection, loaded now so a bad file
    /// is reported before the run starts.
    pub fn from_files(suite: Option<&Path>, collection: Option<&Path>) -> Result<Self, LoadError> {
        let loaded = load_suite(suite, collection)?;
        let params = if suite.is_none() && collection.is_none() {
            SmokeParams::escola()
        } else {
            SmokeParams {
                suite: suite.map(|s| s.display().to_string()),
                collection: collection.map(Path::to_owned),
                ..SmokeParams::escola()
            }
        };
        Ok(SmokeCheck {
            suite: loaded,
            params,
            vars: BTreeMap::new(),
            in_code: false,
        })
    }

    /// Targets this base URL instead of the environment's `base_url`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.params.base_url = Some(url.into());
        self
    }

    /// Sets a `{{variable}}`.
    pub fn var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.params
            .var
            .retain(|pair| pair.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
        self.params.var.push(format!("{key}={value}"));
        self.vars.insert(key, value);
        self
    }

    escola_runbook_core::setters! {
        /// Requests in flight at once.
        concurrency(n: usize) => params.concurrency = n;

        /// Limit for each request.
        timeout(limit: Duration) => params.timeout = Span::from(limit);
    }

    /// The suite.
    pub fn suite(&self) -> &Suite {
        &self.suite
    }

    /// Whether running the suite changes data (a scratch resource's
    /// If-Match round trip).
    pub fn writes(&self) -> bool {
        self.suite.allow_writes
            && self
                .suite
                .if_match
                .as_ref()
                .is_some_and(|t| t.scratch_path.is_some())
    }
}

#[async_trait]
impl Check for SmokeCheck {
    fn describe(&self) -> Description {
        let target = self
            .params
            .base_url
            .clone()
            .unwrap_or_else(|| "the environment's base_url".into());
        let mut verifies = format!(
            "smoke suite `{}`: {} requests to {target} answer as expected",
            self.suite.name,
            self.suite.requests.len()
        );
        if self.suite.trace_id_on_errors {
            verifies.push_str(&format!(", errors carry {}", self.suite.trace_id_header));
        }
        let mut refused = None;
        if let Some(t) = &self.suite.if_match {
            verifies.push_str(&format!(", {} has a stable ETag", t.path));
            if t.refused_writes {
                verifies
                    .push_str(", and a PUT of it with a stale If-Match gets 412, one without 428");
                refused = Some(format!(
                    " and 2 PUTs of {}'s own body (as read) that a correct API refuses",
                    t.path
                ));
            }
        }
        let refused = refused.unwrap_or_default();
        if self.writes() {
            let scratch = self
                .suite
                .if_match
                .as_ref()
                .and_then(|t| t.scratch_path.clone())
                .unwrap_or_default();
            Description::mutating(
                "smoke",
                format!("{verifies}, If-Match is enforced on {scratch}"),
                format!(
                    "send {} requests to {target}{refused}, and PUT {scratch} with a stale, a missing and the current If-Match",
                    self.suite.requests.len()
                ),
            )
        } else {
            Description {
                action: Some(format!(
                    "send {} read-only requests to {target}{refused}",
                    self.suite.requests.len() + if self.suite.if_match.is_some() { 2 } else { 0 }
                )),
                ..Description::read_only("smoke", verifies)
            }
        }
    }

    fn params(&self) -> Option<CheckParams> {
        if self.in_code {
            return None;
        }
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let base_url = self
            .params
            .base_url
            .clone()
            .or_else(|| ctx.environment().get("base_url").map(str::to_owned));
        let progress_ctx = ctx.clone();
        // The run's secrets named by a `{{placeholder}}` become variables.
        let mut secrets = Secrets::with_redactor(ctx.redactor().clone());
        for name in self.suite.placeholders() {
            if let Some(secret) = ctx.secret(&name) {
                secrets.insert(name, secret.clone());
            }
        }
        let options = SmokeOptions {
            base_url,
            vars: self.vars.clone(),
            secrets,
            concurrency: self.params.concurrency,
            timeout: self.params.timeout.get(),
            redactor: ctx.redactor().clone(),
            progress: Some(Arc::new(move |m: &str| progress_ctx.progress(m))),
        };
        tokio::select! {
            result = run_suite(&self.suite, &options) => match result {
                Ok(report) => report.outcome(),
                Err(e @ SmokeError::NoBaseUrl { .. }) => Outcome::check_error(e.to_string())
                    .with_need(Need::setting("base_url", "the API's URL", "https://api.example.org"))
                    .with_evidence("suite", self.suite.name.clone()),
                Err(e) => Outcome::check_error(ctx.redactor().redact(&e.to_string()).into_owned())
                    .with_evidence("suite", self.suite.name.clone()),
            },
            _ = ctx.cancellation().cancelled() => {
                Outcome::aborted("stopped while the smoke requests were in flight")
            }
        }
    }
}
