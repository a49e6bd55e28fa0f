//! A tiny HTTP/1.1 server on a std thread for the metrics tests: it binds
//! 127.0.0.1 on an ephemeral port and answers every request with what the
//! handler returns, closing each connection.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A request as the handler sees it.
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
}

/// A response.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn metrics(body: impl Into<String>) -> Self {
        Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn status(status: u16, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain",
            body: body.into(),
        }
    }
}

/// A running server; `hits` counts requests.
pub struct Server {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Serves `handler` until the test process ends.
pub fn serve<F>(handler: F) -> Server
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let handler = handler.clone();
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authorization = Some(v.trim().to_owned());
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let r = handler(&Request {
                    path,
                    authorization,
                });
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    r.status,
                    r.content_type,
                    r.body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(r.body.as_bytes());
            });
        }
    });
    Server { addr, hits }
}

/// True when tests must fail instead of skipping for a missing service.
pub fn services_required() -> bool {
    std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// A real `prometheus` on loopback (Debian package `prometheus`, or
/// `PROMETHEUS_BIN`), killed when dropped.
pub struct Prometheus {
    child: Child,
    /// Its API's base URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_prometheus() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PROMETHEUS_BIN") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    })
}

/// Starts Prometheus scraping `target`'s `/metrics` every second with
/// Bearer `token` (job `app`); `None`, the reason printed, when it cannot
/// run — a failure instead when ESCOLA_REQUIRE_SERVICES=1.
pub fn prometheus(target: SocketAddr, token: &str) -> Option<Prometheus> {
    let skip = |why: String| {
        assert!(!services_required(), "ESCOLA_REQUIRE_SERVICES=1 but {why}");
        eprintln!("skipping: {why}");
        None
    };
    let Some(binary) = find_prometheus() else {
        return skip("no `prometheus` binary on PATH (apt-get install -y prometheus)".into());
    };
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: app\n    authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => Some(Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }),
        Err(e) => skip(format!("{} does not start: {e}", binary.display())),
    }
}

/// `n` GETs of `path` under `base_url`, one after the other.
pub async fn traffic(base_url: &str, path: &str, n: usize) {
    let client = reqwest::Client::new();
    for _ in 0..n {
        client
            .get(format!("{base_url}{path}"))
            .send()
            .await
            .unwrap();
    }
}
