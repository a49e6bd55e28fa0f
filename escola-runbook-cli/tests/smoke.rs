//! `escola-runbook smoke` as a user runs it: exit codes, formats, bad input.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use escola_runbook_testkit::{BackgroundSimulator, SimulatorConfig};

fn smoke(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .env_remove("RUST_LOG")
        .env_remove("ESCOLA_BASE_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .arg("smoke")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn collection() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../escola-runbook-checks/tests/data/escola.postman_collection.json")
        .display()
        .to_string()
}

fn api() -> BackgroundSimulator {
    BackgroundSimulator::start(SimulatorConfig::default()).unwrap()
}

#[test]
fn exit_0_only_when_every_assertion_passed() {
    let api = api();
    let base = api.base_url();
    let out = smoke(&["--base-url", &base]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("smoke suite `escola-connect` against"),
        "{stdout}"
    );
    assert!(
        stdout.contains("passed: 20 of 20 assertions passed"),
        "{stdout}"
    );

    // The collection has untranslatable scripts: reported, and not exit 0.
    let out = smoke(&["--base-url", &base, "--collection", &collection()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("warned:"), "{}", text(&out));
    assert!(text(&out).contains("3 not evaluated"), "{}", text(&out));
}

#[test]
fn exit_1_on_a_failure_with_junit_and_json_formats() {
    let api = api();
    api.faults().set_error_rate(1.0);
    let base = api.base_url();
    let out = smoke(&["--base-url", &base, "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("expected 200, got 500 (Trace-Id: "), "{xml}");

    let out = smoke(&[
        "--base-url",
        &base,
        "--format",
        "json",
        "--concurrency",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["results"][0]["status"], 500);
}

#[test]
fn a_target_that_does_not_answer_is_exit_1_and_says_so() {
    let api = api();
    let base = api.base_url();
    api.block_on(api.faults().set_down(true)).unwrap();
    let out = smoke(&["--base-url", &base, "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("CHECK ERROR: ") && text(&out).contains("did not answer any of"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_input_is_exit_2_and_nothing_is_sent() {
    let api = api();
    let base = api.base_url();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--collection", "/nonexistent.json"],
            "cannot read Postman collection /nonexistent.json",
        ),
        (
            &["--suite", "/nonexistent.toml"],
            "cannot read smoke suite /nonexistent.toml",
        ),
        (&["--var", "novalue"], "expected KEY=VALUE"),
        (
            &["--timeout", "soon"],
            "'--timeout <DURATION>': `soon` is not a duration",
        ),
        (&["--concurrency", "0"], "--concurrency"),
        (&["--format", "yaml"], "invalid value 'yaml'"),
        (
            &[
                "--var",
                "escolaId=",
                "--collection",
                &collection(),
                "--var",
                "baseUrl=ftp://x",
            ],
            "only http and https",
        ),
    ];
    // A placeholder nothing defines: the CLI says which flag gives it.
    let dir = std::env::temp_dir().join(format!("escola-smoke-undefined-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let suite = dir.join("suite.toml");
    std::fs::write(
        &suite,
        "name = \"undefined\"\n\n[[requests]]\nname = \"x\"\npath = \"/v1/escolas/{{id}}\"\nexpect = [{ status = 200 }]\n",
    )
    .unwrap();
    let suite = suite.display().to_string();
    let undefined: &[&str] = &["--suite", &suite];
    let undefined_hint = "request `x`: {{id}} in its url is not defined: give the variable a value (or define it in the suite); give it with --var id=VALUE";
    let cases: Vec<(&[&str], &str)> = cases
        .iter()
        .copied()
        .chain([(undefined, undefined_hint)])
        .collect();
    for (args, expected) in &cases {
        let mut all = vec!["--base-url", base.as_str()];
        all.extend_from_slice(args);
        let out = smoke(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(expected),
            "{args:?}: expected {expected:?} in {}",
            text(&out)
        );
    }
    assert_eq!(api.requests_served(), 0);
}

#[test]
fn secrets_fill_placeholders_and_never_show() {
    let api = api();
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("metrics.toml");
    std::fs::write(
        &suite,
        r#"
name = "metrics"
[[requests]]
name = "metrics"
path = "/metrics?t={{token}}"
headers = [{ name = "Authorization", value = "Bearer {{token}}" }]
expect = [{ status = 200 }, { json_exists = "/x" }]
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .env("SIM_TOKEN", api.metrics_token())
        .args([
            "smoke",
            "--base-url",
            &api.base_url(),
            "--suite",
            suite.to_str().unwrap(),
            "--secret",
            "token=SIM_TOKEN",
        ])
        .output()
        .unwrap();
    // The scrape succeeds (200) but the metrics page is not JSON.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("FAIL 200 ") && all.contains("(GET http://127.0.0.1:"),
        "{all}"
    );
    assert!(all.contains("/metrics?t=<redacted:token>)"), "{all}");
    assert!(all.contains("got a body that is not JSON"), "{all}");
    assert!(!all.contains(api.metrics_token()), "token leaked: {all}");
}

#[test]
fn the_smoke_check_runs_ad_hoc_through_check() {
    let api = api();
    api.faults().set_drop_trace_id_on_errors(true);
    let out = Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .args([
            "check",
            "smoke",
            "--set",
            &format!("base_url={}", api.base_url()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        // The 404 probe and the two refused If-Match writes (412, 428).
        all.starts_with("smoke: FAILED — 3 of 20 checks failed"),
        "{all}"
    );
    assert!(
        all.contains("expected: header Trace-Id on a 404 response")
            && all.contains("expected: header Trace-Id on a 428 response"),
        "{all}"
    );
}

#[test]
fn a_postman_environment_gives_values_and_masks_its_secrets() {
    let api = api();
    let base = api.base_url();
    let dir = tempfile::tempdir().unwrap();
    let coll = dir.path().join("c.json");
    std::fs::write(
        &coll,
        r#"{"info": {"name": "env", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
  "variable": [{"key": "escolaId", "value": "1"}],
  "item": [{"name": "Escola", "request": {"method": "GET", "url": "{{baseUrl}}/v1/escolas/{{escolaId}}?key={{apiKey}}"},
    "event": [{"listen": "test", "script": {"exec": ["pm.test('it', () => { pm.expect(pm.response.json().id).to.eql(2); });"]}}]}]}"#,
    )
    .unwrap();
    let env = dir.path().join("staging.postman_environment.json");
    std::fs::write(
        &env,
        r#"{"name": "Staging", "values": [
  {"key": "baseUrl", "value": "http://127.0.0.1:1", "type": "default", "enabled": true},
  {"key": "escolaId", "value": "2", "type": "default", "enabled": true},
  {"key": "apiKey", "value": "env-secret-key-123", "type": "secret", "enabled": true},
  {"key": "escolaId", "value": "3", "enabled": false}
], "_postman_variable_scope": "environment"}"#,
    )
    .unwrap();
    let (coll, env) = (coll.to_str().unwrap(), env.to_str().unwrap());
    for format in ["text", "json", "junit"] {
        let out = smoke(&[
            "--base-url",
            &base,
            "--collection",
            coll,
            "--environment",
            env,
            "--format",
            format,
        ]);
        // The environment beats the collection (escola 2, not 1); the base
        // URL given beats the environment's.
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out));
        assert!(!text(&out).contains("env-secret-key-123"), "{}", text(&out));
        if format != "junit" {
            assert!(
                text(&out).contains("/v1/escolas/2?key=<redacted:apiKey>"),
                "{}",
                text(&out)
            );
        }
    }
    // A collection given as an environment is refused, saying so.
    let out = smoke(&["--base-url", &base, "--collection", coll, "-e", coll]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("is not a Postman environment: it is a collection"),
        "{}",
        text(&out)
    );
}
