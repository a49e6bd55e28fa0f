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
