//! The console's HTTP server (axum): the pages of a run root, the approval
//! links' forms, and the refusals, each answered with its status code and
//! reported to the caller's observer with its reason (never a token).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::approval::{ApprovalDecision, ApprovalVerdict};
use crate::decisions::{DecideError, Refusal, check_decision, decide};
use crate::journal::read_journal;
use crate::record::RunRecord;
use crate::runs;
use crate::secret::Secret;
use crate::status::{RunStatus, history};

use super::link::{self, ApprovalLink, LinkError, LinkKey, hex, random_bytes};
use super::page;

/// The address `serve` listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8600";

/// The cookie holding the viewer token once a browser gave it.
pub const VIEWER_COOKIE: &str = "escola_viewer";

/// The query parameter a first visit may give the viewer token in.
pub const VIEWER_PARAM: &str = "viewer_token";

const CSRF_COOKIE: &str = "escola_csrf";

/// What the console serves and to whom.
pub struct ConsoleOptions {
    /// The run root (`--run-dir`).
    pub run_root: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The token every request must carry; required to listen beyond
    /// loopback.
    pub viewer_token: Option<Secret>,
    /// Told of each refused request.
    pub observer: Arc<dyn Fn(&RefusedRequest) + Send + Sync>,
}

/// A request the console refused, as its observer is told: never with the
/// link's signature, the CSRF token or the viewer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRequest {
    /// The status answered.
    pub status: u16,
    /// `GET` or `POST`.
    pub method: String,
    /// The path, without its query.
    pub path: String,
    /// Who asked.
    pub peer: SocketAddr,
    /// Why.
    pub reason: String,
}

/// Why the console could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Beyond loopback, every page needs a viewer token.
    #[error(
        "listening on {listen} would show the runs beyond this machine; give a viewer token every page will require, or listen on 127.0.0.1"
    )]
    ViewerTokenRequired {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The address could not be bound, or serving failed.
    #[error("cannot serve on {listen}: {source}")]
    Io {
        /// The address.
        listen: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The signing key could not be read or made.
    #[error(transparent)]
    Key(#[from] LinkError),
}

struct Shared {
    root: PathBuf,
    key: LinkKey,
    viewer: Option<[u8; 32]>,
    observer: Arc<dyn Fn(&RefusedRequest) + Send + Sync>,
    /// One decision at a time: "not spent yet" and "spent" are one step.
    deciding: tokio::sync::Mutex<()>,
}

/// A console bound to its address, ready to serve.
pub struct Console {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

impl Console {
    /// Binds `options.listen`, refusing an address beyond loopback without
    /// a viewer token, and reads (or makes) the run root's signing key.
    pub async fn bind(options: ConsoleOptions) -> Result<Self, ConsoleError> {
        let listen = options.listen;
        if !listen.ip().is_loopback() && options.viewer_token.is_none() {
            return Err(ConsoleError::ViewerTokenRequired { listen });
        }
        let key = LinkKey::load_or_create(&options.run_root)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ConsoleError::Io { listen, source })?;
        Ok(Console {
            listener,
            shared: Arc::new(Shared {
                root: options.run_root,
                key,
                viewer: options.viewer_token.map(|t| digest(t.expose())),
                observer: options.observer,
                deciding: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The address bound (the port chosen when 0 was asked).
    pub fn local_addr(&self) -> Result<SocketAddr, ConsoleError> {
        self.listener
            .local_addr()
            .map_err(|source| ConsoleError::Io {
                listen: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        let listen = self.local_addr()?;
        let app = Router::new()
            .route("/", get(index))
            .route("/live", get(index_live))
            .route("/runs/{run}", get(run_page))
            .route("/runs/{run}/live", get(run_live))
            .route(
                "/approve/{run}/{step}",
                get(approval_page).post(approval_post),
            )
            .layer(middleware::from_fn_with_state(
                self.shared.clone(),
                viewer_gate,
            ))
            .with_state(self.shared);
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ConsoleError::Io { listen, source })
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Why a request was refused, and the status it gets.
enum Denied {
    ViewerMissing,
    ViewerWrong,
    NoRun,
    NoSignature,
    BadSignature,
    CsrfMissing,
    CsrfBad,
    Expired,
    Used,
    MovedOn(Refusal),
    NotEligible(Refusal),
    BadForm(&'static str),
    Broken(String),
}

impl Denied {
    fn status(&self) -> StatusCode {
        match self {
            Denied::ViewerMissing | Denied::ViewerWrong => StatusCode::UNAUTHORIZED,
            Denied::NoRun => StatusCode::NOT_FOUND,
            Denied::NoSignature
            | Denied::BadSignature
            | Denied::CsrfMissing
            | Denied::CsrfBad
            | Denied::NotEligible(_) => StatusCode::FORBIDDEN,
            Denied::Expired | Denied::Used => StatusCode::GONE,
            Denied::MovedOn(_) => StatusCode::CONFLICT,
            Denied::BadForm(_) => StatusCode::BAD_REQUEST,
            Denied::Broken(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn reason(&self) -> String {
        match self {
            Denied::ViewerMissing => "no viewer token".into(),
            Denied::ViewerWrong => "wrong viewer token".into(),
            Denied::NoRun => "no such run".into(),
            Denied::NoSignature => "the link has no signature".into(),
            Denied::BadSignature => "the link's signature does not match it".into(),
            Denied::CsrfMissing => "the form came without its CSRF token or cookie".into(),
            Denied::CsrfBad => "the form's CSRF token does not match".into(),
            Denied::Expired => "the link has expired (the step's deadline passed)".into(),
            Denied::Used => "the link was already used".into(),
            Denied::MovedOn(r) => format!("the run moved on: {r}"),
            Denied::NotEligible(r) => r.to_string(),
            Denied::BadForm(why) => (*why).to_owned(),
            Denied::Broken(why) => why.clone(),
        }
    }
}

impl From<LinkError> for Denied {
    fn from(e: LinkError) -> Self {
        Denied::Broken(e.to_string())
    }
}

impl From<Refusal> for Denied {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotWaiting { .. } | Refusal::Finished { .. } | Refusal::UnknownStep { .. } => {
                Denied::MovedOn(r)
            }
            Refusal::UnknownApprover { .. }
            | Refusal::LacksRole { .. }
            | Refusal::Operator { .. } => Denied::NotEligible(r),
        }
    }
}

/// Who asked what, for the refusal's report.
struct Asked {
    method: Method,
    path: String,
    peer: SocketAddr,
}

impl Shared {
    fn refuse(&self, asked: &Asked, denied: &Denied) -> Response {
        let status = denied.status();
        let reason = denied.reason();
        (self.observer)(&RefusedRequest {
            status: status.as_u16(),
            method: asked.method.to_string(),
            path: asked.path.clone(),
            peer: asked.peer,
            reason: reason.clone(),
        });
        let heading = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("refused")
        );
        html(
            status,
            &heading,
            None,
            &page::message(&heading, &reason, None),
        )
    }

    /// The run with id `id` under the root: only an id the root lists, so
    /// no path from a URL ever reaches the file system.
    fn run(&self, id: &str) -> Result<(RunRecord, PathBuf), Denied> {
        let stored = runs::list(&self.root).map_err(|e| Denied::Broken(e.to_string()))?;
        let run = stored
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(Denied::NoRun)?;
        let contents = read_journal(&run.journal).map_err(|e| Denied::Broken(e.to_string()))?;
        let record =
            RunRecord::from_events(&contents.events).map_err(|e| Denied::Broken(e.to_string()))?;
        let dir = run
            .journal
            .parent()
            .map_or_else(|| self.root.clone(), Path::to_owned);
        Ok((record, dir))
    }

    fn status(&self, record: &RunRecord) -> RunStatus {
        RunStatus::read(record, &self.root, Utc::now())
            .unwrap_or_else(|_| RunStatus::of(record, None, None, Utc::now()))
    }
}

fn nonce() -> String {
    random_bytes(16).map(|b| hex(&b)).unwrap_or_default()
}

/// A page with its security headers; `live` makes it refresh itself.
fn html(status: StatusCode, title: &str, live: Option<&str>, body: &str) -> Response {
    let nonce = nonce();
    let mut response = (status, page::document(title, &nonce, live, body)).into_response();
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(
        headers,
        header::CONTENT_TYPE,
        "text/html; charset=utf-8".into(),
    );
    set(headers, header::CONTENT_SECURITY_POLICY, page::csp(&nonce));
    set(headers, header::CACHE_CONTROL, "no-store".into());
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    set(headers, header::REFERRER_POLICY, "no-referrer".into());
    response
}

fn fragment(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v))
    })
}

/// Percent-decoding of a query value (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every request carries the viewer token when one is set: a bearer
/// header, the cookie, or (a first visit) the query parameter, which then
/// becomes the cookie. Compared in constant time, as digests.
async fn viewer_gate(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = shared.viewer else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let from_query = query_param(request.uri().query(), VIEWER_PARAM);
    let given = bearer
        .or_else(|| cookie(headers, VIEWER_COOKIE).map(decode))
        .or_else(|| from_query.clone());
    let asked = Asked {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        peer,
    };
    let Some(given) = given else {
        return shared.refuse(&asked, &Denied::ViewerMissing);
    };
    if !bool::from(digest(&given).ct_eq(&expected)) {
        return shared.refuse(&asked, &Denied::ViewerWrong);
    }
    let mut response = next.run(request).await;
    if let Some(token) = from_query {
        let value = format!(
            "{VIEWER_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            link::encode(&token)
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn index(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match history(&shared.root) {
        Ok(runs) => html(
            StatusCode::OK,
            "escola-runbook: runs",
            Some("/live"),
            &page::history(&runs, Utc::now()),
        ),
        Err(e) => shared.refuse(
            &Asked {
                method: Method::GET,
                path: "/".into(),
                peer,
            },
            &Denied::Broken(e.to_string()),
        ),
    }
}

async fn index_live(State(shared): State<Arc<Shared>>) -> Response {
    match history(&shared.root) {
        Ok(runs) => fragment(page::history(&runs, Utc::now())),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn run_body(shared: &Shared, id: &str) -> Result<(String, String), Denied> {
    let (record, _) = shared.run(id)?;
    let status = shared.status(&record);
    let body =
        page::run(&status, &record, Utc::now()).map_err(|e| Denied::Broken(e.to_string()))?;
    Ok((format!("{} {}", record.runbook, record.run.run_id), body))
}

async fn run_page(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match run_body(&shared, &id) {
        Ok((title, body)) => html(
            StatusCode::OK,
            &title,
            Some(&format!("/runs/{}/live", link::encode(&id))),
            &body,
        ),
        Err(denied) => shared.refuse(
            &Asked {
                method: Method::GET,
                path: format!("/runs/{id}"),
                peer,
            },
            &denied,
        ),
    }
}

async fn run_live(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    match run_body(&shared, &id) {
        Ok((_, body)) => fragment(body),
        Err(denied) => (denied.status(), denied.reason()).into_response(),
    }
}

/// The link a request presents, if its signature is the key's.
fn presented(
    shared: &Shared,
    run: &str,
    step: &str,
    fields: &HashMap<String, String>,
) -> Result<(ApprovalLink, String), Denied> {
    let signature = fields
        .get("sig")
        .filter(|s| !s.is_empty())
        .ok_or(Denied::NoSignature)?;
    let field = |name: &str| fields.get(name).cloned().ok_or(Denied::BadSignature);
    let expires = field("exp")?
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .ok_or(Denied::BadSignature)?;
    let link = ApprovalLink {
        run_id: run.to_owned(),
        step: step.to_owned(),
        approver: field("for")?,
        expires,
        nonce: field("n")?,
    };
    if !shared.key.verify(&link, signature) {
        return Err(Denied::BadSignature);
    }
    Ok((link, signature.clone()))
}

/// A signed link still usable: not expired, not spent.
fn usable(link: &ApprovalLink, run_dir: &Path) -> Result<(), Denied> {
    if link.expired(Utc::now()) {
        return Err(Denied::Expired);
    }
    if link::is_used(run_dir, &link.nonce)? {
        return Err(Denied::Used);
    }
    Ok(())
}

async fn approval_page(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath((run, step)): UrlPath<(String, String)>,
    headers: HeaderMap,
    Query(fields): Query<HashMap<String, String>>,
) -> Response {
    let asked = Asked {
        method: Method::GET,
        path: format!("/approve/{run}/{step}"),
        peer,
    };
    let shown = (|| {
        let (link, signature) = presented(&shared, &run, &step, &fields)?;
        let (record, dir) = shared.run(&run)?;
        usable(&link, &dir)?;
        let request = check_decision(&record, &step, &link.approver)?;
        let browser = cookie(&headers, CSRF_COOKIE)
            .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map_or_else(nonce, str::to_owned);
        let csrf = shared.key.csrf(&link, &browser);
        let body = page::approval(
            &record,
            request,
            &page::Form {
                link: &link,
                signature: &signature,
                csrf: &csrf,
            },
        )
        .map_err(|e| Denied::Broken(e.to_string()))?;
        Ok::<_, Denied>((body, browser))
    })();
    match shown {
        Ok((body, browser)) => {
            let mut response = html(StatusCode::OK, &format!("approve {step}"), None, &body);
            let value =
                format!("{CSRF_COOKIE}={browser}; Path=/approve; HttpOnly; SameSite=Strict");
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
        Err(denied) => shared.refuse(&asked, &denied),
    }
}

async fn approval_post(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath((run, step)): UrlPath<(String, String)>,
    headers: HeaderMap,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    let asked = Asked {
        method: Method::POST,
        path: format!("/approve/{run}/{step}"),
        peer,
    };
    let _one_at_a_time = shared.deciding.lock().await;
    match take_decision(&shared, &run, &step, &headers, &fields, peer) {
        Ok(decision) => {
            let text = format!(
                "Recorded: step {} {}. The waiting run takes it within 2 s.",
                decision.step,
                decision.describe()
            );
            html(
                StatusCode::OK,
                "decision recorded",
                None,
                &page::message("Decision recorded", &text, Some(&run)),
            )
        }
        Err(denied) => shared.refuse(&asked, &denied),
    }
}

/// Checks a posted decision in order — signature, CSRF, expiry, not
/// spent, the run still waiting on an approver who may decide — then
/// spends the link and records the decision as `approve` does.
fn take_decision(
    shared: &Shared,
    run: &str,
    step: &str,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
    peer: SocketAddr,
) -> Result<ApprovalDecision, Denied> {
    let (link, _) = presented(shared, run, step, fields)?;
    let (Some(browser), Some(token)) = (
        cookie(headers, CSRF_COOKIE),
        fields.get("csrf").filter(|t| !t.is_empty()),
    ) else {
        return Err(Denied::CsrfMissing);
    };
    if !shared.key.verify_csrf(&link, browser, token) {
        return Err(Denied::CsrfBad);
    }
    let (record, dir) = shared.run(run)?;
    usable(&link, &dir)?;
    let comment = fields
        .get("comment")
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    // Refused before the link is spent: a decision line holds at most
    // `MAX_DECISION_LINE` bytes.
    if comment
        .as_ref()
        .is_some_and(|c| c.len() > page::MAX_COMMENT_BYTES)
    {
        return Err(Denied::BadForm("the comment is too long"));
    }
    let verdict = match fields.get("verdict").map(String::as_str) {
        Some("approve") => ApprovalVerdict::Approved,
        Some("reject") if comment.is_some() => ApprovalVerdict::Rejected,
        Some("reject") => return Err(Denied::BadForm("a rejection needs a comment")),
        _ => return Err(Denied::BadForm("the form names no verdict")),
    };
    check_decision(&record, step, &link.approver)?;
    let decision = ApprovalDecision {
        step: step.to_owned(),
        verdict,
        approver: link.approver.clone(),
        account: "approval link".into(),
        host: peer.ip().to_string(),
        at: Utc::now(),
        comment,
    };
    link::mark_used(&dir, &link.nonce)?;
    decide(&record, &dir, &decision).map_err(|e| match e {
        DecideError::Refused(r) => Denied::from(r),
        DecideError::Write(w) => Denied::Broken(w.to_string()),
    })?;
    Ok(decision)
}
