//! `escola-runbook metrics` against a local endpoint: the JSON shape the
//! issue specifies, the table, exit codes, and the token kept out of output.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

const TOKEN: &str = "cli-metrics-token-77";

const PAGE: &str = "\
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"0.1\"} 50
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"0.5\"} 90
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"1\"} 99
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"+Inf\"} 100
http_request_duration_seconds_bucket{route=\"/v1/cidades\",method=\"GET\",le=\"0.1\"} 0
http_request_duration_seconds_bucket{route=\"/v1/cidades\",method=\"GET\",le=\"0.5\"} 0
http_request_duration_seconds_bucket{route=\"/v1/cidades\",method=\"GET\",le=\"1\"} 0
http_request_duration_seconds_bucket{route=\"/v1/cidades\",method=\"GET\",le=\"+Inf\"} 0
# TYPE http_requests_total counter
http_requests_total{status=\"200\"} 97
http_requests_total{status=\"503\"} 3
";

/// Answers every connection with PAGE when the token is right, 401 otherwise.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req).to_ascii_lowercase();
            let (status, body) = if req.contains(&format!("authorization: bearer {TOKEN}")) {
                ("200 OK", PAGE)
            } else {
                ("401 Unauthorized", "no")
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/metrics")
}

fn metrics(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .arg("metrics")
        .args(args)
        .env("ESCOLA_METRICS_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn json_has_one_entry_per_series_and_the_error_ratio() {
    let url = serve();
    let out = metrics(&[
        "--url",
        &url,
        "--token-env",
        "ESCOLA_METRICS_TOKEN",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let series = json["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let cidades = &series[0];
    assert_eq!(cidades["labels"]["route"], "/v1/cidades");
    assert!(
        cidades["p95"].is_null(),
        "no observations: NaN in Prometheus, null here"
    );
    assert_eq!(cidades["count"], 0.0);
    let escolas = &series[1];
    assert_eq!(escolas["labels"]["method"], "GET");
    assert!(escolas["labels"].get("le").is_none());
    assert_eq!(escolas["p50"], 0.1);
    assert_eq!(escolas["p95"].as_f64().unwrap(), 0.5 + 0.5 * (5.0 / 9.0));
    assert_eq!(escolas["p99"], 1.0);
    assert_eq!(escolas["count"], 100.0);
    assert_eq!(json["error_ratio"], 0.03);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
}

#[test]
fn text_table_sums_by_labels() {
    let url = serve();
    let out = metrics(&[
        "--url",
        &url,
        "--token-env",
        "ESCOLA_METRICS_TOKEN",
        "--by",
        "method",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("method=\"GET\""), "{text}");
    assert!(
        text.contains("error ratio (status =~ \"5..\"): 3% (3 of 100 requests)"),
        "{text}"
    );
}

#[test]
fn exit_codes_for_usage_and_unreadable_sources() {
    let url = serve();
    // Token missing from the environment: usage error, nothing fetched.
    let out = metrics(&["--url", &url, "--token-env", "NOT_SET_ANYWHERE_42"]);
    assert_eq!(out.status.code(), Some(2));
    // Without the token the endpoint refuses: exit 1 with the status.
    let out = metrics(&["--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
    let out = metrics(&["--url", &url, "--interval", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    // A token file (a mounted secret) with its trailing newline.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let out = metrics(&["--url", &url, "--token-file", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = metrics(&["--url", &url, "--token-file", "/nonexistent/token"]);
    assert_eq!(out.status.code(), Some(2));
}
