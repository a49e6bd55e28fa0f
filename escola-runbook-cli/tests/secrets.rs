//! Canary secrets through the binary: none of their forms (as given,
//! percent-encoded, JSON-escaped, a URL's path, query and userinfo) may
//! reach any output a person or a machine reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The webhook URL's secret parts: its path, its query and its userinfo
/// each hold a canary of their own.
const HOOK_PATH: &str = "/hooks/HOOK-CANARY-5523";
const HOOK_QUERY: &str = "key=QRY-CANARY-8841";
const HOOK_USERINFO: &str = "bot:PWD-CANARY-9911";
/// A token with a space, a slash and an accent, used in a smoke query.
const TOKEN: &str = "SMK CANARY/4411é";

/// Every form of every canary that must not appear: each holds the word
/// `CANARY`, which the test also looks for on its own, so a form not
/// listed here is caught too.
fn forms() -> Vec<String> {
    let mut forms = vec![
        HOOK_PATH.to_owned(),
        HOOK_QUERY.to_owned(),
        HOOK_USERINFO.to_owned(),
        TOKEN.to_owned(),
        "SMK%20CANARY/4411%C3%A9".to_owned(),
        "SMK%20CANARY%2F4411%C3%A9".to_owned(),
        "SMK+CANARY%2F4411%C3%A9".to_owned(),
        "SMK%20CANARY/4411%c3%a9".to_owned(),
        "SMK CANARY\\/4411\\u00e9".to_owned(),
        "SMK CANARY/4411\\u00E9".to_owned(),
    ];
    forms.push(serde_json::to_string(TOKEN).unwrap());
    forms.push(serde_json::to_string(HOOK_PATH).unwrap());
    forms.push("CANARY".to_owned());
    forms
}

/// Answers every request with 200 and a JSON body echoing what it was
/// asked: the request target as sent and the decoded `q` parameter (as a
/// webhook or an API that quotes the request in its answer).
fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || answer_echo(stream));
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

fn answer_echo(stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
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
    let target = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    let q = target
        .split_once("?q=")
        .map(|(_, q)| percent_decode(q))
        .unwrap_or_default();
    let answer = serde_json::json!({ "echo": format!("{} {target}", request_line.split(' ').next().unwrap_or("")), "q": q })
        .to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bin(dir: &Path, hook: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("CANARY_HOOK", hook)
        .env("CANARY_TOKEN", TOKEN)
        .stdin(Stdio::null());
    c
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_canary(what: &str, text: &str) {
    for form in forms() {
        assert!(
            !text.contains(&form),
            "{what} holds the canary form {form:?}:\n{text}"
        );
    }
}

#[test]
fn no_form_of_a_secret_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let server = echo_server();
    let hook = format!("http://{HOOK_USERINFO}@{server}{HOOK_PATH}?{HOOK_QUERY}");
    let suite = dir.path().join("suite.toml");
    std::fs::write(
        &suite,
        r#"name = "canary"
trace_id_on_errors = false

[[requests]]
name = "search"
path = "/v1/escolas?q={{token}}"
expect = [
  { status = 201 },
  { json_equals = { pointer = "/q", value = "nothing" } },
  { json_equals = { pointer = "/echo", value = "nothing" } },
]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("runbook.toml"),
        format!(
            r#"format = 1
name = "canary"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
id = "notice"
title = "Avisar o canal"
check = "notify"
params = {{ url_secret = "webhook_url", message = "deploy {{run_id}}" }}

[[phases.steps]]
id = "smoke"
title = "Smoke"
check = "smoke"
params = {{ suite = "{}" }}
"#,
            suite.display()
        ),
    )
    .unwrap();
    let base_url = format!("base_url=http://{server}");
    let out = bin(dir.path(), &hook)
        .args([
            "-v",
            "run",
            "--runbook",
            "runbook.toml",
            "--yes",
            "--app-dir",
            ".",
            "--set",
            &base_url,
            "--secret",
            "webhook_url=CANARY_HOOK",
            "--secret",
            "token=CANARY_TOKEN",
        ])
        .output()
        .unwrap();
    let terminal = all_output(&out);
    // The smoke step fails on purpose, so its request and answer are shown.
    assert_eq!(out.status.code(), Some(1), "{terminal}");
    assert_no_canary("the terminal output (with -v)", &terminal);
    // The -v log names each smoke request, through the masking writer.
    assert!(
        terminal.contains("smoke request answered")
            && terminal.contains("/v1/escolas?q=<redacted:token>"),
        "{terminal}"
    );

    let runs = dir.path().join(".escola-runbook/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("journal.jsonl").is_file())
        .unwrap();
    let mut every_report = String::new();
    for file in ["journal.jsonl", "report.md", "report.json", "junit.xml"] {
        let text = std::fs::read_to_string(run.join(file)).unwrap();
        assert_no_canary(file, &text);
        every_report.push_str(&text);
    }
    // The leaks were there to be masked: the webhook's answer quotes its
    // path, the API's answer quotes the token.
    assert!(
        every_report.contains("POST <redacted:webhook_url>"),
        "{every_report}"
    );
    assert!(every_report.contains("<redacted:token>"), "{every_report}");
    for format in ["md", "json", "junit"] {
        let out = bin(dir.path(), &hook)
            .args(["report", "latest", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        assert_no_canary(&format!("report --format {format}"), &all_output(&out));
    }

    // The smoke command on its own: text, JSON and JUnit (names and
    // messages).
    for format in ["text", "json", "junit"] {
        let out = bin(dir.path(), &hook)
            .args([
                "-v",
                "smoke",
                "--base-url",
                &format!("http://{server}"),
                "--suite",
                suite.to_str().unwrap(),
                "--secret",
                "token=CANARY_TOKEN",
                "--format",
                format,
            ])
            .output()
            .unwrap();
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert_no_canary(&format!("smoke --format {format}"), &text);
        assert!(text.contains("<redacted:token>"), "{text}");
    }
}
