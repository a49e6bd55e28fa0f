//! Limits an operator can hit on a bad night, through the binary: durations
//! out of range, watches that could never fire, and metrics answers too
//! large to hold.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, no panic, and the message names `value` and the range.
fn assert_refused(o: &Output, value: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{value}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(value) && err.contains("1ms to 30d"),
        "{value}: {err}"
    );
}

#[test]
fn durations_out_of_range_exit_2_naming_value_and_range_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = "http://127.0.0.1:9/metrics";
    for value in ["0s", "0", "99999999d", "18446744073709551615", "31d"] {
        let flag = format!("--timeout={value}");
        assert_refused(&run_in(d, &["metrics", "--url", url, &flag]), value);
        assert_refused(
            &run_in(d, &["smoke", "--base-url", "http://127.0.0.1:9", &flag]),
            value,
        );
        let param = format!("timeout={value}");
        assert_refused(
            &run_in(d, &["check", "metrics-endpoint", "-p", &param]),
            value,
        );
        assert_refused(
            &run_in(
                d,
                &["metrics", "--url", url, &format!("--interval={value}")],
            ),
            value,
        );
        assert_refused(
            &run_in(
                d,
                &[
                    "run",
                    "--yes",
                    "--dry-run",
                    &format!("--confirm-timeout={value}"),
                ],
            ),
            value,
        );

        let rules = d.join("rules.toml");
        std::fs::write(
            &rules,
            format!(
                "interval = \"{value}\"\n[[rules]]\nid = \"x\"\ncomparison = \"above\"\nlimit = 1\n"
            ),
        )
        .unwrap();
        assert_refused(
            &run_in(
                d,
                &[
                    "watch",
                    "--rules",
                    "rules.toml",
                    "--set",
                    &format!("metrics_url={url}"),
                ],
            ),
            value,
        );

        std::fs::write(
            d.join("runbook.toml"),
            format!(
                "name = \"r\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\ncommand = \"true\"\ntimeout = \"{value}\"\n"
            ),
        )
        .unwrap();
        assert_refused(&run_in(d, &["plan", "--runbook", "runbook.toml"]), value);

        std::fs::write(
            d.join("runbook.md"),
            format!(
                "# Deploy\n\n## Checks\n\n- [ ] Smoke\n  <!-- check: smoke base_url=http://127.0.0.1:9 timeout={value} -->\n"
            ),
        )
        .unwrap();
        assert_refused(&run_in(d, &["import", "runbook.md"]), value);
        assert_refused(
            &run_in(
                d,
                &[
                    "import",
                    "runbook.md",
                    &format!("--command-timeout={value}"),
                ],
            ),
            value,
        );
    }
    // A TOML integer of seconds is held to the same range.
    std::fs::write(
        d.join("runbook.toml"),
        "name = \"r\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\ncommand = \"true\"\ntimeout = 18446744073709551615\n",
    )
    .unwrap();
    assert_refused(
        &run_in(d, &["plan", "--runbook", "runbook.toml"]),
        "18446744073709551615",
    );
    // What reports print reads back.
    std::fs::write(
        d.join("runbook.toml"),
        "name = \"r\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\ncommand = \"true\"\ntimeout = \"1h30m\"\n",
    )
    .unwrap();
    let o = run_in(d, &["plan", "--runbook", "runbook.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_watch_that_could_never_fire_exits_2_naming_the_rule_and_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rule = "[[rules]]\nid = \"p95\"\ncomparison = \"above\"\nlimit = 2.0\n";
    for (file, expected) in [
        (
            format!("interval = \"2s\"\nduration = \"10s\"\n{rule}for = \"5m\"\n"),
            "rule `p95` fires only after for 5m, but a 10s watch evaluated every 2s has 6 evaluations and ends before that",
        ),
        (
            format!("interval = \"2s\"\nduration = \"10s\"\n{rule}consecutive = 7\n"),
            "rule `p95` fires only after 7 evaluations in a row, but a 10s watch evaluated every 2s has 6 evaluations",
        ),
        (
            format!("interval = \"2s\"\nduration = \"10s\"\n{rule}k = 7\nn = 10\n"),
            "rule `p95` fires only after 7 of the last 10 evaluations",
        ),
        (
            format!("interval = \"60s\"\nduration = \"5s\"\n{rule}"),
            "the watch interval 1m is longer than its duration 5s",
        ),
    ] {
        std::fs::write(d.join("rules.toml"), &file).unwrap();
        for command in [
            vec![
                "watch",
                "--rules",
                "rules.toml",
                "--set",
                "metrics_url=http://127.0.0.1:9/metrics",
            ],
            vec!["replay", "latest", "--rules", "rules.toml"],
        ] {
            let o = run_in(d, &command);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{file}: {err}");
            assert!(err.contains(expected), "{file}: {err}");
        }
    }
    // The same in a runbook file's [watch], though it is not evaluated yet.
    std::fs::write(
        d.join("runbook.toml"),
        "name = \"r\"\n[watch]\ninterval = \"2s\"\nduration = \"10s\"\n[[watch.rules]]\nname = \"p95\"\nquery = \"p95\"\ncondition = \"> 2\"\nfor = \"5m\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let o = run_in(d, &["plan", "--runbook", "runbook.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rule `p95` fires only after for 5m, but a 10s watch"),
        "{}",
        stderr(&o)
    );
}
