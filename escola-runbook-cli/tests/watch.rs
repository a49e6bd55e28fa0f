//! `watch` against the simulator's metrics, then `replay` of what it
//! recorded under other thresholds.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use escola_runbook_testkit::{BackgroundSimulator, SimulatorConfig};

fn bin(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Users hitting /v1/escolas until stopped.
fn users(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                let _ = write!(
                    s,
                    "GET /v1/escolas HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    })
}

const RULES: &str = r#"
interval = "200ms"
duration = "20s"
rollback_window = "20s"

[[rules]]
id = "error-5xx"
measure = "error_percent"
window = "0"
min_requests = 1
comparison = "above"
limit = LIMIT
unit = "%"
consecutive = 2
"#;

#[test]
fn watch_fires_on_real_errors_and_replay_rejudges_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), RULES.replace("LIMIT", "1")).unwrap();
    std::fs::write(
        dir.path().join("lenient.toml"),
        RULES.replace("LIMIT", "99"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("asked.toml"),
        RULES.replace("LIMIT", "1") + "action = \"ask\"\nask_role = \"oncall\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("observed.toml"),
        RULES.replace("LIMIT", "1") + "action = \"observe\"\n",
    )
    .unwrap();
    let sim = BackgroundSimulator::start(SimulatorConfig::default()).unwrap();
    sim.faults().set_error_rate(0.5);
    let stop = Arc::new(AtomicBool::new(false));
    let load = users(sim.addr(), stop.clone());
    let out = bin(dir.path())
        .env("ESCOLA_TEST_METRICS_TOKEN", sim.metrics_token())
        .args([
            "watch",
            "--rules",
            "rules.toml",
            "--set",
            &format!("metrics_url={}/metrics", sim.base_url()),
            "--secret",
            "metrics_token=ESCOLA_TEST_METRICS_TOKEN",
        ])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rule error-5xx pending -> firing"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains(sim.metrics_token()),
        "the token never shows"
    );

    let replay = |rules: &str| {
        bin(dir.path())
            .args(["replay", "latest", "--rules", rules])
            .output()
            .unwrap()
    };
    let strict = replay("rules.toml");
    assert_eq!(strict.status.code(), Some(3), "{}", text(&strict));
    let rolled = between(&text(&strict), "=> rollback: rolled back at ", " (");
    assert!(
        rolled
            .as_ref()
            .is_some_and(|t| t.len() == "02:00:00 UTC".len() && t.ends_with(" UTC")),
        "a wall-clock time: {}",
        text(&strict)
    );
    assert!(
        text(&strict).contains(", action rollback — "),
        "{}",
        text(&strict)
    );
    // Observe: the same firing, told as what it would have done; it never
    // acts, so replay does not say the run would roll back.
    let observed = replay("observed.toml");
    assert_eq!(observed.status.code(), Some(0), "{}", text(&observed));
    let would = between(
        &text(&observed),
        "=> observe: would have rolled back at ",
        " (",
    );
    assert_eq!(would, rolled, "{}", text(&observed));
    assert!(
        text(&observed).contains("limit > 1%); never acts"),
        "{}",
        text(&observed)
    );
    // Ask: when it would have asked, and whom.
    let asked = replay("asked.toml");
    assert_eq!(asked.status.code(), Some(0), "{}", text(&asked));
    assert_eq!(
        between(&text(&asked), "=> ask: would have asked at ", " ("),
        rolled,
        "{}",
        text(&asked)
    );
    assert!(
        text(&asked)
            .contains("for approval by role oncall; approved rolls back, rejected keeps watching"),
        "{}",
        text(&asked)
    );
    let lenient = replay("lenient.toml");
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient));
    assert!(
        text(&lenient).contains("=> never fires"),
        "{}",
        text(&lenient)
    );
}

/// The text between `before` and the next `until` after it.
fn between(text: &str, before: &str, until: &str) -> Option<String> {
    let rest = &text[text.find(before)? + before.len()..];
    Some(rest[..rest.find(until)?].to_owned())
}

#[test]
fn bad_rules_and_runs_without_measurements_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rules]]\nid='x'\ncomparison='over'\nlimit=1\n",
    )
    .unwrap();
    let out = bin(dir.path())
        .args([
            "watch",
            "--rules",
            "bad.toml",
            "--set",
            "metrics_url=http://127.0.0.1:9/metrics",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("rule `x`: comparison `over` is not one of"),
        "{}",
        text(&out)
    );
    // A bad action names itself and the ones there are.
    std::fs::write(
        dir.path().join("bad-action.toml"),
        RULES.replace("LIMIT", "1") + "action = \"maybe\"\n",
    )
    .unwrap();
    let out = bin(dir.path())
        .args(["replay", "latest", "--rules", "bad-action.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("bad-action.toml")
            && text(&out)
                .contains("unknown variant `maybe`, expected one of `observe`, `ask`, `rollback`"),
        "{}",
        text(&out)
    );
    std::fs::write(dir.path().join("ok.toml"), RULES.replace("LIMIT", "1")).unwrap();
    let out = bin(dir.path())
        .args(["watch", "--rules", "ok.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no target"), "{}", text(&out));
    // A run with no watch has nothing to replay.
    let out = bin(dir.path())
        .args(["run", "--yes", "--dry-run", "--phase", "support"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = bin(dir.path())
        .args(["replay", "latest", "--rules", "ok.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("nothing to replay"), "{}", text(&out));
}

/// A release, then a watch step whose latency rule is read from
/// `alerts.toml` beside the runbook, then the rollback.
const WATCHED_RUNBOOK: &str = r#"
name = "watched release"

[environment]
metrics_url = "METRICS_URL"
metrics_token_env = "ESCOLA_TEST_METRICS_TOKEN"

[[phases]]
id = "release"
title = "Release"
rollback_on_failure = true
[[phases.steps]]
id = "deploy"
title = "Deploy"
command = "echo deployed >> log.txt"

[[phases]]
id = "monitoring"
title = "Monitoramento"
kind = "watch"
rollback_on_failure = true
[[phases.steps]]
id = "latency"
title = "Latência P95"
[phases.steps.watch]
rollback_window = "3s"
rules_file = "alerts.toml"

[[phases]]
id = "rollback"
title = "Rollback"
kind = "rollback"
[[phases.steps]]
id = "revert"
title = "Revert"
command = "echo reverted >> log.txt"
"#;

const LATENCY_RULES: &str = r#"
interval = "250ms"
duration = "3s"

[[rules]]
id = "latency-p95"
measure = "quantile"
quantile = 0.95
window = "0"
min_requests = 1
above = 0.2
unit = "s"
consecutive = 2
"#;

#[test]
fn a_runbook_watch_step_rolls_back_when_the_app_slows_and_stays_green_when_not() {
    let sim = BackgroundSimulator::start(SimulatorConfig::default()).unwrap();
    let run = |slow: bool| {
        let dir = tempfile::tempdir().unwrap();
        // The runbook in a folder of its own: `rules_file` is relative to it.
        let book = dir.path().join("book");
        std::fs::create_dir(&book).unwrap();
        std::fs::write(
            book.join("runbook.toml"),
            WATCHED_RUNBOOK.replace("METRICS_URL", &format!("{}/metrics", sim.base_url())),
        )
        .unwrap();
        std::fs::write(book.join("alerts.toml"), LATENCY_RULES).unwrap();
        sim.faults()
            .set_latency(std::time::Duration::from_millis(if slow { 300 } else { 0 }));
        let stop = Arc::new(AtomicBool::new(false));
        let load = users(sim.addr(), stop.clone());
        let out = bin(dir.path())
            .env("ESCOLA_TEST_METRICS_TOKEN", sim.metrics_token())
            .args(["run", "--runbook", "book/runbook.toml", "--yes"])
            .output()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();
        let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap_or_default();
        (out, log)
    };
    let (slowed, log) = run(true);
    assert_eq!(slowed.status.code(), Some(3), "{}", text(&slowed));
    assert_eq!(log, "deployed\nreverted\n", "{}", text(&slowed));
    assert!(
        text(&slowed).contains("rule `latency-p95` fired at"),
        "{}",
        text(&slowed)
    );
    let (green, log) = run(false);
    assert_eq!(green.status.code(), Some(0), "{}", text(&green));
    assert_eq!(log, "deployed\n");
}

/// A Prometheus stand-in answering every instant query with `value` and
/// remembering the queries it was asked.
fn fake_prometheus(value: &'static str) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().push(line);
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{value}"]}}]}}}}"#
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, asked)
}

#[test]
fn watch_asks_the_prometheus_it_is_given_and_needs_no_metrics_target_for_promql() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("promql.toml"),
        r#"
interval = "200ms"
duration = "5s"
rollback_window = "5s"

[[rules]]
id = "queue"
measure = "promql"
promql = 'sum(queue_depth{queue="sync"})'
comparison = "above"
limit = 100
consecutive = 2
"#,
    )
    .unwrap();
    let (url, asked) = fake_prometheus("250");
    let out = bin(dir.path())
        .args(["watch", "--rules", "promql.toml", "--prometheus", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rule queue pending -> firing"),
        "{}",
        text(&out)
    );
    let asked = asked.lock().unwrap();
    assert!(
        asked[0]
            .starts_with("GET /api/v1/query?query=sum%28queue_depth%7Bqueue%3D%22sync%22%7D%29"),
        "{asked:?}"
    );
    // Without a server: refused before anything runs.
    std::fs::remove_dir_all(dir.path().join(".escola-runbook")).unwrap();
    let out = bin(dir.path())
        .args(["watch", "--rules", "promql.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(
            "rule `queue` evaluates PromQL but no Prometheus server is named: pass --prometheus"
        ),
        "{}",
        text(&out)
    );
    assert!(
        !dir.path().join(".escola-runbook").exists(),
        "nothing half-written"
    );
}
