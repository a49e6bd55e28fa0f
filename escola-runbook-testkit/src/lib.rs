//! An in-process simulator of the Escola Connect API, so examples, tests and
//! users testing their own checks have a real HTTP target with the behaviour
//! the runbook relies on, and switches that break it on purpose.
//!
//! It serves `/health`, `GET /v1/cidades`, `GET /v1/escolas`,
//! `GET`/`PUT /v1/escolas/{id}` with `ETag` and `If-Match` (412 on a stale
//! tag, 428 when missing), a `Trace-Id` header on every response (errors
//! included), rate limiting with 429 and `Retry-After`, and `/metrics` behind
//! a Bearer token in the Prometheus text format, counting the traffic it
//! really served. It binds 127.0.0.1 on an ephemeral port. It also plays
//! the HTTP cache in front of the API (`PURGE` is counted,
//! [`Simulator::purges`]), and with a [`SimulatedHost`] attached it obeys
//! the host's maintenance mode (503 with `Retry-After`) and reports its
//! schema version on `/health`.
//!
//! ```
//! use escola_runbook_testkit::{Simulator, SimulatorConfig};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(SimulatorConfig::default()).await?;
//! let url = format!("{}/health", sim.base_url());
//! // Point a check at `sim.base_url()`; break the target at run time:
//! sim.faults().set_error_rate(1.0);
//! sim.shutdown().await;
//! # let _ = url; Ok(()) }
//! ```
//!
//! Randomness is deterministic: the error rate picks failing requests by a
//! counter (exactly `rate × n` of `n` requests fail, the same ones every run),
//! and trace ids come from [`SimulatorConfig::seed`].

#![warn(missing_docs)]

mod app;
mod fault_state;
mod host;
mod host_files;
mod metrics;
pub mod moto;
mod mutex;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use app::{SCRATCH_ESCOLA_ID, StoredEscola};
pub use fault_state::RateLimit;
pub use host::{HostDatabase, HostError, MIGRATIONS, SimulatedHost};
pub use metrics::BUCKETS;

use crate::fault_state::FaultState;
use crate::mutex::lock;

/// The names [`Faults::apply_named`] accepts.
pub const FAULT_NAMES: [&str; 7] = [
    "errors",
    "slow",
    "down",
    "no-trace-id",
    "ignore-if-match",
    "wrong-metrics-auth",
    "rate-limit",
];

/// The response header that carries the request's trace id.
pub const TRACE_ID_HEADER: &str = "Trace-Id";

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Seeds the trace ids (and the default metrics token), so runs repeat.
    pub seed: u64,
    /// The Bearer token `/metrics` wants; `None` derives one from the seed.
    pub metrics_token: Option<String>,
    /// Rate limit on `/v1/*`; `None` for none. Changeable at run time with
    /// [`Faults::set_rate_limit`].
    pub rate_limit: Option<RateLimit>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 0x5eed,
            metrics_token: None,
            rate_limit: Some(RateLimit {
                requests: 1000,
                window: Duration::from_secs(1),
            }),
        }
    }
}

impl SimulatorConfig {
    /// The default configuration with a rate limit of `requests` per
    /// `window` on `/v1/*` (for tests of 429 handling).
    pub fn rate_limited(requests: u32, window: Duration) -> Self {
        SimulatorConfig {
            rate_limit: Some(RateLimit { requests, window }),
            ..SimulatorConfig::default()
        }
    }
}

/// The simulator could not start or change state.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// Binding 127.0.0.1 failed.
    #[error("cannot listen on {addr}: {source}; is the loopback interface up?")]
    Bind {
        /// The address tried.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// [`Faults::apply_named`] does not know the name.
    #[error("no fault is called `{name}`; choose one of: {}", FAULT_NAMES.join(", "))]
    UnknownFault {
        /// The name given.
        name: String,
    },
    /// The server task is gone (shut down or crashed).
    #[error("the simulator has stopped; start a new one")]
    Stopped,
}

/// The runtime fault switches. Cheap to clone; every change applies to the
/// next request.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<FaultState>,
    down_tx: Arc<watch::Sender<bool>>,
    state_rx: watch::Receiver<Listening>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("error_rate", &self.error_rate())
            .field("latency", &self.latency())
            .field(
                "latency_spread_ms",
                &self.inner.spread_ms.load(Ordering::Relaxed),
            )
            .field("down", &*self.down_tx.borrow())
            .field(
                "drop_trace_id_on_errors",
                &self.inner.drop_trace_id.load(Ordering::Relaxed),
            )
            .field(
                "ignore_if_match",
                &self.inner.ignore_if_match.load(Ordering::Relaxed),
            )
            .field(
                "wrong_metrics_auth",
                &self.inner.wrong_metrics_auth.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl Faults {
    /// Answers this fraction (0.0..=1.0) of `/health` and `/v1/*` requests
    /// with 500. Deterministic: with 0.25, exactly every fourth request fails.
    /// `/metrics` is never affected, so the errors can be observed there.
    pub fn set_error_rate(&self, rate: f64) {
        let rate = if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.inner
            .error_rate_ppm
            .store((rate * 1_000_000.0).round() as u64, Ordering::Relaxed);
        self.inner.error_counter.store(0, Ordering::Relaxed);
    }

    /// The error rate in force.
    pub fn error_rate(&self) -> f64 {
        self.inner.error_rate_ppm.load(Ordering::Relaxed) as f64 / 1_000_000.0
    }

    /// Adds this delay to every `/health` and `/v1/*` response (and to the
    /// recorded duration, as a slow application would).
    pub fn set_latency(&self, added: Duration) {
        self.inner.latency_ms.store(
            u64::try_from(added.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The added latency in force.
    pub fn latency(&self) -> Duration {
        self.inner.latency()
    }

    /// Gives API requests a realistic spread of latencies around `typical`
    /// (from 0.4× to 2.5×, P95 about 1.9×, the same sequence every time),
    /// on top of any added latency; zero turns it off. Doubling `typical`
    /// doubles every quantile: a release twice as slow that every fixed
    /// limit above 2 × P95 misses.
    pub fn set_latency_spread(&self, typical: Duration) {
        self.inner.spread_ms.store(
            u64::try_from(typical.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Takes the server down (the port is closed: connections are refused)
    /// or brings it back on the same port. Returns once the change is in
    /// effect.
    pub async fn set_down(&self, down: bool) -> Result<(), SimulatorError> {
        if self.down_tx.send(down).is_err() {
            return Err(SimulatorError::Stopped);
        }
        let want = if down { Listening::Down } else { Listening::Up };
        let mut rx = self.state_rx.clone();
        loop {
            match *rx.borrow_and_update() {
                Listening::Failed => return Err(SimulatorError::Stopped),
                s if s == want => return Ok(()),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(SimulatorError::Stopped);
            }
        }
    }

    /// Error responses (4xx/5xx) go out without the `Trace-Id` header.
    pub fn set_drop_trace_id_on_errors(&self, on: bool) {
        self.inner.drop_trace_id.store(on, Ordering::Relaxed);
    }

    /// `PUT /v1/escolas/{id}` ignores `If-Match`: a stale or missing tag no
    /// longer gets 412 or 428, the write is stored and the `ETag` changes
    /// (the lost-update bug the sync app fears).
    pub fn set_ignore_if_match(&self, on: bool) {
        self.inner.ignore_if_match.store(on, Ordering::Relaxed);
    }

    /// `/metrics` rejects the right token (as after a misconfigured deploy).
    pub fn set_wrong_metrics_auth(&self, on: bool) {
        self.inner.wrong_metrics_auth.store(on, Ordering::Relaxed);
    }

    /// Changes the rate limit on `/v1/*`; `None` lifts it.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        *lock(&self.inner.rate_limit) = limit;
    }

    /// Turns on a fault by the name a command line would use: `errors`
    /// (every API request answers 500), `slow` (2.5 s added latency),
    /// `down`, `no-trace-id` (errors without `Trace-Id`), `ignore-if-match`,
    /// `wrong-metrics-auth`, `rate-limit` (one `/v1/*` request per minute).
    pub async fn apply_named(&self, name: &str) -> Result<(), SimulatorError> {
        match name {
            "errors" => self.set_error_rate(1.0),
            "slow" => self.set_latency(Duration::from_millis(2500)),
            "down" => return self.set_down(true).await,
            "no-trace-id" => self.set_drop_trace_id_on_errors(true),
            "ignore-if-match" => self.set_ignore_if_match(true),
            "wrong-metrics-auth" => self.set_wrong_metrics_auth(true),
            "rate-limit" => self.set_rate_limit(Some(RateLimit {
                requests: 1,
                window: Duration::from_secs(60),
            })),
            other => {
                return Err(SimulatorError::UnknownFault {
                    name: other.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Turns every switch off (the rate limit is left as it is).
    pub async fn reset(&self) -> Result<(), SimulatorError> {
        self.set_error_rate(0.0);
        self.set_latency(Duration::ZERO);
        self.set_latency_spread(Duration::ZERO);
        self.set_drop_trace_id_on_errors(false);
        self.set_ignore_if_match(false);
        self.set_wrong_metrics_auth(false);
        self.set_down(false).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listening {
    Up,
    Down,
    Failed,
}

/// A running simulator. Dropping it stops the server abruptly; prefer
/// [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    token: String,
    faults: Faults,
    state: Arc<app::AppState>,
    stop_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Starts the simulator on 127.0.0.1 with an ephemeral port.
    pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| SimulatorError::Bind {
                    addr: addr.to_string(),
                    source,
                })
        };
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimulatorError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let token = config
            .metrics_token
            .clone()
            .unwrap_or_else(|| format!("sim-{:016x}", app::mix(config.seed ^ 0x70ce)));
        let fault_state = Arc::new(FaultState::default());
        *lock(&fault_state.rate_limit) = config.rate_limit;
        let state = Arc::new(app::AppState::new(
            config.seed,
            token.clone(),
            fault_state.clone(),
        ));
        let router = app::router(state.clone());
        let (down_tx, mut down_rx) = watch::channel(false);
        let (state_tx, state_rx) = watch::channel(Listening::Up);
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let Some(l) = listener.take() else {
                    let _ = state_tx.send(Listening::Failed);
                    return;
                };
                let mut down = down_rx.clone();
                let mut stop = stop_rx.clone();
                let serve = axum::serve(l, router.clone()).with_graceful_shutdown(async move {
                    tokio::select! {
                        _ = down.wait_for(|d| *d) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
                if serve.await.is_err() {
                    let _ = state_tx.send(Listening::Failed);
                    return;
                }
                if *stop_rx.borrow() {
                    return;
                }
                let _ = state_tx.send(Listening::Down);
                tokio::select! {
                    _ = down_rx.wait_for(|d| !*d) => {}
                    _ = stop_rx.wait_for(|s| *s) => return,
                }
                // The port was ours a moment ago; retry briefly in case the
                // kernel has not released it yet.
                for _ in 0..50 {
                    if let Ok(l) = TcpListener::bind(addr).await {
                        listener = Some(l);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if listener.is_some() {
                    let _ = state_tx.send(Listening::Up);
                }
            }
        });
        Ok(Simulator {
            addr,
            token,
            faults: Faults {
                inner: fault_state,
                down_tx: Arc::new(down_tx),
                state_rx,
            },
            state,
            stop_tx,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Bearer token `/metrics` accepts. Treat it as a secret in checks
    /// (wrap it in the core's `Secret`).
    pub fn metrics_token(&self) -> &str {
        &self.token
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// `/v1/escolas/9000`: the path of the scratch resource a suite may write.
    pub fn scratch_path(&self) -> String {
        format!("/v1/escolas/{SCRATCH_ESCOLA_ID}")
    }

    /// Escola `id` as stored now, without counting a request (for
    /// assertions in tests); `None` when there is no such escola.
    pub fn stored_escola(&self, id: u64) -> Option<StoredEscola> {
        self.state.stored_escola(id)
    }

    /// Answers from the simulated host's files in `dir` from the next
    /// request on (see [`SimulatedHost`]).
    pub(crate) fn attach_host(&self, dir: &std::path::Path) {
        *lock(&self.state.host) = Some(dir.to_owned());
    }

    /// Cache purges received so far (`PURGE /v1/escolas`), per path: the
    /// simulator also plays the HTTP cache in front of the API.
    pub fn purges(&self) -> std::collections::BTreeMap<String, u64> {
        lock(&self.state.purges).clone()
    }

    /// Requests served so far (every status, `/metrics` included): what the
    /// `http_requests_total` counters add up to.
    pub fn requests_served(&self) -> u64 {
        self.state.metrics.total()
    }

    /// The metrics page as `/metrics` would serve it now, without counting a
    /// request (for assertions in tests).
    pub fn metrics_text(&self) -> String {
        self.state.metrics.render()
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the
    /// server task to end.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl SimulatedHost {
    /// Writes the app directory into `dir` (created if missing) and points
    /// `simulator` at it: from now on the API obeys its maintenance flag
    /// and reports its schema version.
    pub fn create(
        dir: impl Into<std::path::PathBuf>,
        simulator: &Simulator,
    ) -> Result<Self, HostError> {
        let host = SimulatedHost::write(dir.into())?;
        simulator.attach_host(host.app_dir());
        Ok(host)
    }
}

/// A simulator on its own runtime thread, for synchronous code: tests that
/// run a binary against it, or a tool without an async runtime.
pub struct BackgroundSimulator {
    sim: Simulator,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for BackgroundSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundSimulator")
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

impl BackgroundSimulator {
    /// Starts a runtime with one worker thread and the simulator on it.
    pub fn start(config: SimulatorConfig) -> Result<Self, SimulatorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|source| SimulatorError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let sim = runtime.block_on(Simulator::start(config))?;
        Ok(BackgroundSimulator { sim, runtime })
    }

    /// Runs an async call (such as [`Faults::set_down`]) to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

impl std::ops::Deref for BackgroundSimulator {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        &self.sim
    }
}

impl Drop for BackgroundSimulator {
    fn drop(&mut self) {
        self.runtime.block_on(self.sim.stop());
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
