//! `escola-runbook export-alerts`: the built-in runbook's alerts and a rules
//! file's, as a Prometheus rule file `promtool check rules` accepts; a rule
//! Prometheus cannot express is left out with a warning naming it.

use std::process::{Command, Output};

fn export(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .arg("export-alerts")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// promtool's verdict on `file`, or `None` (said) without promtool, which
/// `ESCOLA_REQUIRE_SERVICES=1` turns into a failure.
fn promtool_check(file: &std::path::Path) -> Option<Output> {
    match Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!(
                    "ESCOLA_REQUIRE_SERVICES=1 but no promtool ({e}); apt-get install -y prometheus"
                );
            }
            eprintln!("promtool check skipped: {e}");
            None
        }
    }
}

#[test]
fn the_built_in_alerts_are_exported_as_the_runbook_words_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), &["-o", "alerts.yml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("alerts.yml")).unwrap();
    for expected in [
        "alert: \"LatencyP95\"",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        "alert: \"Error5xx\"",
        "http_requests_total{status=~\\\"5..\\\"}",
        "alert: \"RateLimitEscolas\"",
        "route=\\\"/v1/escolas\\\",status=~\\\"429\\\"",
        "severity: \"critical\"",
        "runbook_step: \"alert-latency-p95\"",
        "for: 5m",
        "description: \"`Latência P95 > 2s` por 5 minutos.\"",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    if let Some(check) = promtool_check(&dir.path().join("alerts.yml")) {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
        assert!(String::from_utf8_lossy(&check.stdout).contains("3 rules found"));
    }
}

#[test]
fn a_rules_file_is_exported_and_what_prometheus_cannot_say_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        r#"interval = "30s"

[[rules]]
id = "slow-escolas"
title = "P99 de /v1/escolas acima de 1s"
measure = "quantile"
quantile = 0.99
route = "/v1/escolas"
comparison = "above"
limit = 1
unit = "s"
for = "2m"
rollback = false

[[rules]]
id = "flaky"
measure = "error_percent"
comparison = "above"
limit = 5
k = 3
n = 5
"#,
    )
    .unwrap();
    let out = export(dir.path(), &["--rules", "rules.toml"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("alert: \"SlowEscolas\""), "{stdout}");
    assert!(stdout.contains("severity: \"warning\""), "{stdout}");
    assert!(stdout.contains("runbook_step: \"rules\""), "{stdout}");
    assert!(stdout.contains("interval: 30s"), "{stdout}");
    assert!(stdout.contains("for: 2m"), "{stdout}");
    assert!(!stdout.contains("Flaky"), "{stdout}");
    assert!(
        stderr.contains("rule `flaky`") && stderr.contains("3 of the last 5 evaluations"),
        "{stderr}"
    );
    std::fs::write(dir.path().join("out.yml"), stdout.as_bytes()).unwrap();
    if let Some(check) = promtool_check(&dir.path().join("out.yml")) {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }

    // A rules file that does not load: exit 2, naming it.
    std::fs::write(dir.path().join("bad.toml"), "[[rules]]\nid = 'x'\n").unwrap();
    let out = export(dir.path(), &["--rules", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}
