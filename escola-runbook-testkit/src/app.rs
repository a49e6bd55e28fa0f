//! Routes, the middleware that stamps, limits, breaks and counts, and the
//! handlers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::fault_state::FaultState;
use crate::metrics::Metrics;
use crate::mutex::lock;

/// The id of the scratch escola: the one resource a smoke suite may write to
/// (its `If-Match` round trip), so tests never touch the seeded data.
pub const SCRATCH_ESCOLA_ID: u64 = 9000;

/// An escola as the simulator stores it, so a test can see whether a write
/// happened and what it stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEscola {
    /// What `GET /v1/escolas/{id}` answers now.
    pub json: serde_json::Value,
    /// Its `ETag` now.
    pub etag: String,
    /// Writes accepted since the start. Each one changes the `ETag`, even
    /// when it stored the content already there.
    pub writes: u64,
}

/// splitmix64: a tiny, well-mixed, deterministic generator step.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Serialize)]
struct Escola {
    id: u64,
    nome: String,
    cidade_id: u64,
    #[serde(skip)]
    version: u64,
}

impl Escola {
    fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }
}

#[derive(Debug, Clone)]
struct TraceId(String);

struct Window {
    started: Instant,
    used: u32,
}

pub(crate) struct AppState {
    seed: u64,
    token: String,
    pub(crate) faults: Arc<FaultState>,
    pub(crate) metrics: Metrics,
    traces: AtomicU64,
    escolas: Mutex<BTreeMap<u64, Escola>>,
    window: Mutex<Window>,
    /// The simulated host's app directory, once one is attached: its
    /// maintenance flag and schema version are read on every request.
    pub(crate) host: Mutex<Option<PathBuf>>,
    /// Cache purges received (`PURGE /v1/cidades`), per path.
    pub(crate) purges: Mutex<BTreeMap<String, u64>>,
}

const CIDADES: [(u64, &str, &str); 3] = [
    (1, "São Paulo", "SP"),
    (2, "Salvador", "BA"),
    (3, "Rio de Janeiro", "RJ"),
];

impl AppState {
    pub(crate) fn new(seed: u64, token: String, faults: Arc<FaultState>) -> Self {
        let escolas = [
            (1, "EMEF Paulo Freire", 1),
            (2, "EE Anísio Teixeira", 2),
            (3, "EMEI Cecília Meireles", 3),
            (SCRATCH_ESCOLA_ID, "Escola de Teste (smoke)", 1),
        ]
        .into_iter()
        .map(|(id, nome, cidade_id)| {
            (
                id,
                Escola {
                    id,
                    nome: nome.to_owned(),
                    cidade_id,
                    version: 1,
                },
            )
        })
        .collect();
        AppState {
            seed,
            token,
            faults,
            metrics: Metrics::default(),
            traces: AtomicU64::new(0),
            escolas: Mutex::new(escolas),
            window: Mutex::new(Window {
                started: Instant::now(),
                used: 0,
            }),
            host: Mutex::new(None),
            purges: Mutex::new(BTreeMap::new()),
        }
    }

    /// Escola `id` as stored now.
    pub(crate) fn stored_escola(&self, id: u64) -> Option<StoredEscola> {
        let escolas = lock(&self.escolas);
        let e = escolas.get(&id)?;
        Some(StoredEscola {
            json: serde_json::to_value(e).unwrap_or_default(),
            etag: e.etag(),
            writes: e.version - 1,
        })
    }

    fn next_trace_id(&self) -> String {
        let n = self.traces.fetch_add(1, Ordering::Relaxed);
        let a = mix(self.seed ^ n.wrapping_mul(2));
        let b = mix(a ^ n.wrapping_mul(2).wrapping_add(1));
        format!("{a:016x}{b:016x}")
    }

    /// The attached host's `Retry-After` while it is in maintenance mode.
    fn maintenance(&self) -> Option<u64> {
        let host = lock(&self.host).clone()?;
        crate::host_files::maintenance_retry(&host)
    }

    /// The attached host's newest applied migration.
    fn schema_version(&self) -> Option<String> {
        let host = lock(&self.host).clone()?;
        crate::host_files::schema_version(&host)
    }

    /// `None` when the request may go on; otherwise the seconds to wait.
    fn rate_limited(&self) -> Option<u64> {
        let limit = self.faults.rate_limit()?;
        let mut w = lock(&self.window);
        let now = Instant::now();
        if now.duration_since(w.started) >= limit.window {
            w.started = now;
            w.used = 0;
        }
        if w.used < limit.requests {
            w.used += 1;
            return None;
        }
        let left = limit.window.saturating_sub(now.duration_since(w.started));
        Some(left.as_secs_f64().ceil().max(1.0) as u64)
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/cidades", get(cidades))
        .route("/v1/escolas", get(escolas))
        .route("/v1/escolas/{id}", get(escola).put(put_escola))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

fn error(status: StatusCode, trace: &TraceId, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": message, "trace_id": trace.0 })),
    )
        .into_response()
}

/// An error that says when to come back (`Retry-After`, in seconds).
fn retry_later(status: StatusCode, trace: &TraceId, message: &str, seconds: u64) -> Response {
    let mut r = error(status, trace, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}

/// Stamps the trace id, applies the rate limit and the faults, and counts
/// the response in the metrics.
async fn observe(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let trace = TraceId(st.next_trace_id());
    req.extensions_mut().insert(trace.clone());
    let api = route != "/metrics";

    let mut response = if req.method().as_str() == "PURGE" {
        // The HTTP cache in front of the API (the runbook's CDN purge).
        let path = req.uri().path().to_owned();
        *lock(&st.purges).entry(path.clone()).or_default() += 1;
        Json(json!({ "purged": path })).into_response()
    } else if let Some(retry) = api.then(|| st.maintenance()).flatten() {
        // Laravel's maintenance mode (`php artisan down --retry=N`).
        retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            &trace,
            "Service Unavailable: the application is in maintenance mode",
            retry,
        )
    } else if let Some(wait) = route
        .starts_with("/v1/")
        .then(|| st.rate_limited())
        .flatten()
    {
        retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            &trace,
            "rate limit exceeded; retry later",
            wait,
        )
    } else {
        if api {
            let latency = st.faults.next_latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
        }
        if api && st.faults.next_is_error() {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &trace,
                "internal error (simulated)",
            )
        } else {
            next.run(req).await
        }
    };

    let status = response.status();
    let drop_trace = (status.is_client_error() || status.is_server_error())
        && st.faults.drop_trace_id.load(Ordering::Relaxed);
    if !drop_trace {
        if let Ok(v) = HeaderValue::from_str(&trace.0) {
            response
                .headers_mut()
                // `Trace-Id` (header names are case-insensitive).
                .insert(HeaderName::from_static("trace-id"), v);
        }
    }
    st.metrics
        .observe(&method, &route, status.as_u16(), started.elapsed());
    response
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    match st.schema_version() {
        Some(version) => Json(json!({ "status": "ok", "schema_version": version })),
        None => Json(json!({ "status": "ok" })),
    }
    .into_response()
}

async fn cidades() -> Response {
    let data: Vec<_> = CIDADES
        .iter()
        .map(|(id, nome, uf)| json!({ "id": id, "nome": nome, "uf": uf }))
        .collect();
    Json(json!({ "data": data, "total": data.len() })).into_response()
}

async fn escolas(
    State(st): State<Arc<AppState>>,
    Extension(trace): Extension<TraceId>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let cidade = match query.get("cidade_id").map(|c| c.parse::<u64>()) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &trace,
                "cidade_id must be a number",
            );
        }
    };
    let data: Vec<Escola> = lock(&st.escolas)
        .values()
        .filter(|e| cidade.is_none_or(|c| e.cidade_id == c))
        .cloned()
        .collect();
    Json(json!({ "total": data.len(), "data": data })).into_response()
}

fn with_etag(escola: &Escola) -> Response {
    let mut r = Json(escola).into_response();
    if let Ok(v) = HeaderValue::from_str(&escola.etag()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

async fn escola(
    State(st): State<Arc<AppState>>,
    Extension(trace): Extension<TraceId>,
    Path(id): Path<String>,
) -> Response {
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| lock(&st.escolas).get(&id).cloned());
    match found {
        Some(e) => with_etag(&e),
        None => error(StatusCode::NOT_FOUND, &trace, "escola not found"),
    }
}

fn if_match_allows(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag)
}

async fn put_escola(
    State(st): State<Arc<AppState>>,
    Extension(trace): Extension<TraceId>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, &trace, "escola not found");
    };
    let patch: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &trace,
                "body must be a JSON object",
            );
        }
    };
    let ignore = st.faults.ignore_if_match.load(Ordering::Relaxed);
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let mut escolas = lock(&st.escolas);
    let Some(current) = escolas.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, &trace, "escola not found");
    };
    if !ignore {
        match if_match {
            None => {
                return error(
                    StatusCode::PRECONDITION_REQUIRED,
                    &trace,
                    "If-Match is required to update an escola",
                );
            }
            Some(tag) if !if_match_allows(&tag, &current.etag()) => {
                let mut r = error(
                    StatusCode::PRECONDITION_FAILED,
                    &trace,
                    "If-Match does not match the current ETag; reload and retry",
                );
                if let Ok(v) = HeaderValue::from_str(&current.etag()) {
                    r.headers_mut().insert(header::ETAG, v);
                }
                return r;
            }
            Some(_) => {}
        }
    }
    if let Some(nome) = patch.get("nome").and_then(|n| n.as_str()) {
        current.nome = nome.to_owned();
    }
    if let Some(c) = patch.get("cidade_id").and_then(serde_json::Value::as_u64) {
        current.cidade_id = c;
    }
    current.version += 1;
    with_etag(current)
}

async fn metrics(
    State(st): State<Arc<AppState>>,
    Extension(trace): Extension<TraceId>,
    headers: HeaderMap,
) -> Response {
    let expected = if st.faults.wrong_metrics_auth.load(Ordering::Relaxed) {
        // A deploy that rotated the token without telling anyone.
        format!("Bearer {}-rotated", st.token)
    } else {
        format!("Bearer {}", st.token)
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            &trace,
            "a valid Bearer token is required",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn not_found(Extension(trace): Extension<TraceId>) -> Response {
    error(StatusCode::NOT_FOUND, &trace, "no such route")
}
