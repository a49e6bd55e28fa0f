//! Notices never decide a deploy: the built-in runbook run for real against
//! the simulator, with its commands stubbed and a webhook that answers 500,
//! succeeds and rolls nothing back; the same command as a dry-run sends
//! nothing to the webhook and reports what it would have posted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use escola_runbook_testkit::{BackgroundSimulator, SimulatorConfig};

/// The webhook's secret path: it must never appear in a report.
const HOOK_PATH: &str = "/services/T0NOTICE/B0NOTICE/notice-hook-secret";

/// A webhook answering every request with `status`; counts the requests.
fn webhook(status: u16) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Oops\r\ncontent-length: 13\r\nconnection: close\r\n\r\nslack is down"
            );
        }
    });
    (format!("http://{addr}{HOOK_PATH}"), requests)
}

/// `127.0.0.1:PORT` of an `http://` URL: what reports name instead of it.
fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// `php`, `git` and `composer` stubs that log each call to `calls.log` and
/// succeed, in a directory to put first on PATH.
fn stubs(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.join("calls.log");
    for tool in ["php", "git", "composer"] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 0\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, log)
}

struct Deploy {
    dir: tempfile::TempDir,
    app: tempfile::TempDir,
    log: PathBuf,
    bin: PathBuf,
    hook: String,
    _api: BackgroundSimulator,
    base_url: String,
}

fn deploy(hook: String) -> Deploy {
    let dir = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    let (bin, log) = stubs(dir.path());
    let api = BackgroundSimulator::start(SimulatorConfig::default()).unwrap();
    let base_url = format!("base_url={}", api.base_url());
    Deploy {
        dir,
        app,
        log,
        bin,
        hook,
        _api: api,
        base_url,
    }
}

impl Deploy {
    fn run(&self, extra: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("PATH", path)
            .env("ESCOLA_TEST_WEBHOOK", &self.hook)
            .stdin(Stdio::null())
            .args([
                "run",
                "--yes",
                "--operator",
                "ana",
                "--app-dir",
                self.app.path().to_str().unwrap(),
                "--set",
                &self.base_url,
                "--secret",
                "webhook_url=ESCOLA_TEST_WEBHOOK",
            ])
            .args(extra)
            .output()
            .unwrap()
    }

    fn report(&self, file: &str) -> String {
        let runs = self.dir.path().join(".escola-runbook/runs");
        let run = std::fs::read_dir(runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.join("journal.jsonl").is_file())
            .unwrap();
        std::fs::read_to_string(run.join(file)).unwrap()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn step<'a>(record: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
        .find(|s| s["id"] == id)
        .unwrap()
}

fn evidence<'a>(step: &'a serde_json::Value, label: &str) -> &'a str {
    step["outcome"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["label"] == label)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no evidence {label:?} in {step}"))
}

#[test]
fn a_webhook_answering_500_warns_and_rolls_nothing_back() {
    let (hook, requests) = webhook(500);
    let host = host_of(&hook);
    let d = deploy(hook);
    let out = d.run(&[]);
    let terminal = text(&out);
    assert_eq!(out.status.code(), Some(0), "{terminal}\n{}", d.calls());

    let calls = d.calls();
    assert!(calls.contains("php artisan down"), "{calls}");
    assert!(
        calls.contains("php vendor/bin/doctrine-migrations migrate --no-interaction"),
        "{calls}"
    );
    assert!(!calls.contains("migrate prev"), "rolled back:\n{calls}");

    let record: serde_json::Value = serde_json::from_str(&d.report("report.json")).unwrap();
    assert_eq!(record["verdict"], "succeeded");
    assert!(record.get("rollback").is_none(), "{}", record["rollback"]);
    let status_update = step(&record, "status-update");
    let outcome = &status_update["outcome"];
    assert_eq!(outcome["status"], "warned", "{outcome}");
    let summary = outcome["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "notice not delivered to {host}: HTTP 500, expected 2xx after 3 attempts"
        )),
        "{summary}"
    );
    assert_eq!(evidence(status_update, "attempts"), "3");
    assert_eq!(evidence(status_update, "HTTP status"), "500");
    assert_eq!(evidence(status_update, "to"), host);
    assert_eq!(
        status_update["attempts"], 1,
        "one step attempt, three posts"
    );

    // The milestones (started, finished) went to the same webhook, failed
    // the same way, and are in the record; the run did not care.
    let notices = record["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 2, "{notices:?}");
    for n in notices {
        assert_eq!(n["to"], host.as_str());
        assert_eq!(n["delivery"]["status"], "undelivered", "{n}");
        assert_eq!(n["delivery"]["attempts"], 3, "{n}");
    }
    // Three attempts for the step, three for each milestone.
    assert_eq!(requests.load(Ordering::SeqCst), 9);

    let md = d.report("report.md");
    assert!(md.contains("**warned** — notice not delivered to"), "{md}");
    assert!(md.contains("## Notices"), "{md}");
    assert!(md.contains("NOT delivered: HTTP 500"), "{md}");
    for output in [
        terminal.as_str(),
        md.as_str(),
        &d.report("journal.jsonl"),
        &d.report("report.json"),
        &d.report("junit.xml"),
    ] {
        assert!(!output.contains("notice-hook-secret"), "{output}");
    }
}

#[test]
fn a_dry_run_sends_nothing_and_says_what_it_would_have_posted() {
    let (hook, requests) = webhook(200);
    let host = host_of(&hook);
    let d = deploy(hook);
    let out = d.run(&["--dry-run"]);
    let terminal = text(&out);
    assert_eq!(out.status.code(), Some(0), "{terminal}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "the dry-run posted to the webhook"
    );
    assert_eq!(d.calls(), "", "the dry-run ran commands");

    let record: serde_json::Value = serde_json::from_str(&d.report("report.json")).unwrap();
    let status_update = step(&record, "status-update");
    assert_eq!(status_update["outcome"]["status"], "skipped");
    let run_id = record["run"]["run_id"].as_str().unwrap();
    assert_eq!(
        evidence(status_update, "would post"),
        format!(
            "Escola Connect API: deploy {run_id} em production concluído; monitoramento estendido iniciado."
        )
    );
    assert_eq!(evidence(status_update, "to"), host);

    let notices = record["notices"].as_array().unwrap();
    let texts: Vec<&str> = notices
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notices.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains(&format!("deploy {run_id} started by ana")),
        "{texts:?}"
    );
    assert_eq!(texts[1], "deploy finished: succeeded (exit code 0)");
    for n in notices {
        assert_eq!(n["to"], host.as_str());
        assert_eq!(n["delivery"]["status"], "dry_run", "{n}");
    }
    let md = d.report("report.md");
    assert!(
        md.contains("- would post: `Escola Connect API: deploy"),
        "{md}"
    );
    assert!(md.contains(&format!("- to: `{host}`")), "{md}");
    assert!(
        md.contains(&format!(
            "| `{host}` | deploy finished: succeeded (exit code 0) | not sent (dry-run) |"
        )),
        "{md}"
    );
    assert!(
        terminal.contains("not sent (dry-run)"),
        "the terminal says so too:\n{terminal}"
    );
}
