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

#[test]
fn the_recommended_panels_are_a_grafana_dashboard_with_the_alerts_limits() {
    let dir = tempfile::tempdir().unwrap();
    let out = export_dashboard(dir.path(), &["--backlog-limit", "500", "-o", "escola.json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("escola.json")).unwrap())
            .unwrap();
    // The parts of Grafana's dashboard model an import relies on.
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(d["uid"], "escola-runbook");
    let variables: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["type"], "datasource");
            v["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(variables, ["prometheus", "mysql"]);
    let panels = d["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 3);
    let mut ids = std::collections::BTreeSet::new();
    let mut cells = std::collections::BTreeSet::new();
    for p in panels {
        assert_eq!(p["type"], "timeseries");
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0);
        assert!(cells.insert((x, y)), "overlapping panels");
        let source = p["datasource"]["uid"].as_str().unwrap();
        assert!(
            source == "${prometheus}" || source == "${mysql}",
            "{source}"
        );
        let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap();
        assert!(steps[0]["value"].is_null(), "the base step has no value");
        for t in p["targets"].as_array().unwrap() {
            assert!(t["refId"].is_string());
            assert!(t["expr"].is_string() || t["rawSql"].is_string());
        }
    }
    let latency = &panels[0];
    assert_eq!(latency["fieldConfig"]["defaults"]["unit"], "s");
    let legends: Vec<&str> = latency["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["legendFormat"].as_str().unwrap())
        .collect();
    assert_eq!(legends, ["P50", "P95", "P99"]);
    assert!(latency["targets"][1]["expr"].as_str().unwrap().starts_with(
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"
    ));
    assert_eq!(
        latency["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
        2.0
    );
    assert_eq!(
        panels[1]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
        1.0
    );
    let backlog = &panels[2];
    assert_eq!(
        backlog["targets"][0]["rawSql"],
        "SELECT NOW() AS time, COUNT(*) AS pending FROM sync_mutations WHERE status = 'pending'"
    );
    assert_eq!(
        backlog["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
        500.0
    );
}

fn export_dashboard(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .arg("export-dashboard")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}
