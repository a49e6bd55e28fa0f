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
        for flag in ["--lock-wait", "--connect-timeout", "--read-timeout"] {
            let snapshot = [
                "snapshot",
                "create",
                "--out",
                "snaps",
                "--db-url-env",
                "DB_URL",
            ];
            let flag = format!("{flag}={value}");
            assert_refused(
                &run_in(d, &[&snapshot[..], &[flag.as_str()]].concat()),
                value,
            );
        }

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
    // The same in a runbook file's watch step.
    std::fs::write(
        d.join("runbook.toml"),
        "name = \"r\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\n\
         [phases.steps.watch]\ninterval = \"2s\"\nduration = \"10s\"\n\
         [[phases.steps.watch.rules]]\nid = \"p95\"\nabove = 2\nfor = \"5m\"\n",
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

/// What the test server answers on `/metrics`.
#[derive(Clone, Copy)]
enum Page {
    /// `bytes` of histogram buckets, one series per line, streamed chunked
    /// (no Content-Length), generated as they are sent.
    Buckets { bytes: u64 },
    /// `series` counter series, each with a label of `label` bytes,
    /// streamed chunked: the issue's "1M series with 10 KB labels".
    WideCounters { series: u64, label: usize },
    /// Announces `bytes` in Content-Length, then streams buckets.
    Declared { bytes: u64 },
}

/// The text of bucket line `i`: 12 buckets per histogram, one route each.
fn bucket_line(i: u64, out: &mut Vec<u8>) {
    const LE: [&str; 12] = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    use std::io::Write;
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{route=\"/v1/r{}\",method=\"GET\",le=\"{}\"}} {}",
        i / 12,
        LE[(i % 12) as usize],
        i % 12 + 1
    );
}

/// Serves `page` on 127.0.0.1 until the client hangs up; returns the port.
fn serve(page: Page) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = match page {
                    Page::Declared { bytes } => format!("Content-Length: {bytes}\r\n"),
                    _ => "Transfer-Encoding: chunked\r\n".into(),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n{head}Connection: close\r\n\r\n"
                );
                let (limit, chunked) = match page {
                    Page::Buckets { bytes } => (bytes, true),
                    Page::WideCounters { series, label } => (series * (label as u64 + 60), true),
                    Page::Declared { bytes } => (bytes, false),
                };
                let wide = match page {
                    Page::WideCounters { label, .. } => "x".repeat(label),
                    _ => String::new(),
                };
                let (mut sent, mut i) = (0u64, 0u64);
                let mut chunk = Vec::with_capacity(1 << 17);
                while sent < limit {
                    chunk.clear();
                    while chunk.len() < 1 << 16 {
                        match page {
                            Page::WideCounters { .. } => {
                                let _ = writeln!(
                                    chunk,
                                    "http_requests_total{{status=\"200\",route=\"/v{i}\",x=\"{wide}\"}} 1"
                                );
                            }
                            _ => bucket_line(i, &mut chunk),
                        }
                        i += 1;
                    }
                    // The last piece stops at a line end at or before the limit.
                    if sent + chunk.len() as u64 > limit {
                        let room = (limit - sent) as usize;
                        let cut = chunk[..room]
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |p| p + 1);
                        chunk.truncate(cut);
                        if chunk.is_empty() {
                            break;
                        }
                    }
                    let written = if chunked {
                        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .and_then(|()| s.write_all(&chunk))
                            .and_then(|()| s.write_all(b"\r\n"))
                    } else {
                        s.write_all(&chunk)
                    };
                    if written.is_err() {
                        return; // the client stopped reading
                    }
                    sent += chunk.len() as u64;
                }
                if chunked {
                    let _ = s.write_all(b"0\r\n\r\n");
                }
            });
        }
    });
    port
}

/// Runs `metrics` against `port` and returns its output and peak RSS in
/// bytes (from `wait4`, for this child only).
#[expect(
    clippy::zombie_processes,
    reason = "reaped with wait4, which also gives its own resource usage"
)]
fn metrics_with_peak(port: u16, extra: &[&str]) -> (Output, u64) {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let child = bin()
        .args(["metrics", "--url", &url, "--timeout", "5m"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Drain the pipes while it runs, then reap it ourselves to get its own
    // resource usage.
    let mut stdout = child.stdout.unwrap();
    let mut stderr = child.stderr.unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).unwrap();
        v
    });
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `usage` is written by it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, usage.ru_maxrss as u64 * 1024)
}

const CAP: u64 = 64 * 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

#[test]
fn a_1_gib_metrics_stream_is_refused_at_the_cap_in_bounded_memory() {
    let (o, peak) = metrics_with_peak(serve(Page::Buckets { bytes: GIB }), &["--by", "method"]);
    let err = stderr(&o);
    eprintln!("1 GiB stream: peak RSS {} MiB: {err}", peak >> 20);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("more than the 64 MiB cap") && err.contains("read before stopping"),
        "{err}"
    );
    assert!(peak < 2 * CAP, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn a_6_gib_stream_of_wide_series_is_refused_at_the_cap_in_bounded_memory() {
    // 600,000 series with 10 KB labels: about 6 GiB if read to the end.
    let page = Page::WideCounters {
        series: 600_000,
        label: 10_000,
    };
    let (o, peak) = metrics_with_peak(serve(page), &[]);
    let err = stderr(&o);
    eprintln!("6 GiB stream: peak RSS {} MiB: {err}", peak >> 20);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("64 MiB cap"), "{err}");
    assert!(peak < 2 * CAP, "peak RSS {} MiB", peak >> 20);
    // Declared too large: refused from the header, before any reading.
    let (o, peak) = metrics_with_peak(serve(Page::Declared { bytes: 6 * GIB }), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Content-Length 6442450944") && err.contains("more than the 64 MiB cap"),
        "{err}"
    );
    assert!(peak < 2 * CAP, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn a_page_just_under_the_cap_parses_and_the_cap_is_configurable() {
    let port = serve(Page::Buckets { bytes: CAP - 1024 });
    // Summed, as the checks read it: one histogram kept, not one per series.
    let (o, peak) = metrics_with_peak(port, &["--by", "method", "--format", "json"]);
    eprintln!(
        "just under the cap, --by method: peak RSS {} MiB",
        peak >> 20
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(json.to_string().contains("\"GET\""), "{json}");
    assert!(peak < 2 * CAP, "peak RSS {} MiB", peak >> 20);
    // Every series apart (the default): one label set per histogram is
    // kept, about the page's size again, plus the 70,000-row table.
    let (o, peak) = metrics_with_peak(port, &[]);
    eprintln!(
        "just under the cap, every series: peak RSS {} MiB",
        peak >> 20
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = String::from_utf8_lossy(&o.stdout).matches("/v1/r").count();
    assert!(rows > 50_000, "one row per route: {rows}");
    assert!(peak < 3 * CAP, "peak RSS {} MiB", peak >> 20);
    // A smaller cap refuses the same page; a cap below 1 KiB is bad input.
    let (o, _) = metrics_with_peak(port, &["--max-body", "1MiB"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("more than the 1 MiB cap"),
        "{}",
        stderr(&o)
    );
    let (o, _) = metrics_with_peak(port, &["--max-body", "12"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
