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
fn families_named_otherwise_are_told_with_the_flag_that_names_them() {
    let url = serve();
    let args = ["--url", &url, "--token-env", "ESCOLA_METRICS_TOKEN"];
    let out = metrics(&args);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note:"));
    let out = metrics(
        &[
            &args[..],
            &[
                "--histogram",
                "http_server_requests_seconds",
                "--counter",
                "http_server_requests_seconds_count",
            ],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no `http_server_requests_seconds` histogram")
            && err.contains("give --histogram NAME"),
        "{err}"
    );
    assert!(
        err.contains("no `http_server_requests_seconds_count` series, so no error ratio")
            && err.contains("give --counter NAME"),
        "{err}"
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

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .arg("compare")
        .args(args)
        .env("ESCOLA_METRICS_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// PAGE with every request of `/v1/escolas` one bucket slower and 40 more
/// 503s: a release that doubled latency below any fixed limit.
const SLOWER: &str = "\
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"0.1\"} 5
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"0.5\"} 60
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"1\"} 95
http_request_duration_seconds_bucket{route=\"/v1/escolas\",method=\"GET\",le=\"+Inf\"} 100
# TYPE http_requests_total counter
http_requests_total{status=\"200\"} 57
http_requests_total{status=\"503\"} 43
";

#[test]
fn compare_judges_a_saved_scrape_against_a_live_one_and_exits_by_the_verdict() {
    let url = serve();
    let dir = tempfile::tempdir().unwrap();
    let slower = dir.path().join("after.prom");
    std::fs::write(&slower, SLOWER).unwrap();
    let out = compare(&[
        "--before",
        &url,
        "--after",
        slower.to_str().unwrap(),
        "--token-env",
        "ESCOLA_METRICS_TOKEN",
        "--min-requests",
        "50",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latency = stdout.lines().find(|l| l.starts_with("latency")).unwrap();
    assert!(
        latency.contains("after slower than before with probability"),
        "{latency}"
    );
    assert!(
        latency.contains("(Mann-Whitney, 100 vs 100 requests): regressed"),
        "{latency}"
    );
    let errors = stdout.lines().find(|l| l.starts_with("errors")).unwrap();
    assert!(errors.contains("43% vs 3% before"), "{errors}");
    assert!(errors.ends_with(": regressed"), "{errors}");
    assert!(!stdout.contains(TOKEN));

    // The same page on both sides: nothing regressed, exit 0; JSON carries
    // every figure.
    let same = dir.path().join("same.prom");
    std::fs::write(&same, SLOWER).unwrap();
    let out = compare(&[
        "--before",
        same.to_str().unwrap(),
        "--after",
        slower.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = &json["latency"][0];
    assert_eq!(l["test"]["effect"], 0.5);
    assert_eq!(l["test"]["p"], 1.0);
    assert_eq!(l["bounds"][3], "+Inf");
    // 100 requests a side could not show a shift of the minimum effect.
    assert_eq!(l["verdict"], "inconclusive");
    assert!(l["detectable_effect"].as_f64().unwrap() > 0.05);
    assert_eq!(json["thresholds"]["alpha"], 0.01);
}

#[test]
fn compare_of_nothing_in_common_is_no_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("micrometer.prom");
    std::fs::write(
        &page,
        "# TYPE http_server_requests_seconds histogram\n\
         http_server_requests_seconds_bucket{status=\"200\",le=\"+Inf\"} 10\n\
         http_server_requests_seconds_count{status=\"200\"} 10\n",
    )
    .unwrap();
    let page = page.to_str().unwrap();
    let out = compare(&["--before", page, "--after", page]);
    assert_eq!(out.status.code(), Some(1), "nothing judged is not a pass");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was judged") && err.contains("--histogram NAME and --counter NAME"),
        "{err}"
    );
    // Named, the same pages compare, and equal pages do not regress.
    let out = compare(&[
        "--before",
        page,
        "--after",
        page,
        "--histogram",
        "http_server_requests_seconds",
        "--counter",
        "http_server_requests_seconds_count",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compare_refuses_bad_input_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.prom");
    std::fs::write(&page, PAGE).unwrap();
    let garbage = dir.path().join("garbage.prom");
    std::fs::write(&garbage, "not {{ a metrics page").unwrap();
    let p = page.to_str().unwrap();
    for (args, names) in [
        (
            vec!["--before", "missing.prom", "--after", p],
            "--before missing.prom",
        ),
        (
            vec!["--before", p, "--after", garbage.to_str().unwrap()],
            "--after",
        ),
        (
            vec!["--before", p, "--after", p, "--alpha", "1.5"],
            "--alpha",
        ),
        (
            vec!["--before", p, "--after", p, "--min-effect", "0.9"],
            "--min-effect",
        ),
        (
            vec!["--before", p, "--after", p, "--errors", "5(("],
            "--errors",
        ),
    ] {
        let out = compare(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
