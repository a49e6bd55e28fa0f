//! The binary as a user runs it: exit codes, files written, messages for bad
//! input, and secrets kept out of every output.

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

/// Serves a healthy `/metrics` (Bearer token required) for the runbook's
/// metrics steps, which run in dry-run too, and returns the `run` arguments
/// that point the runbook at it.
fn metrics_endpoint() -> Vec<String> {
    use std::io::{Read, Write};
    const PAGE: &str = "http_request_duration_seconds_bucket{le=\"0.5\"} 90\n\
        http_request_duration_seconds_bucket{le=\"+Inf\"} 100\n\
        http_requests_total{status=\"200\"} 100\n";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let ok = String::from_utf8_lossy(&req).contains("Bearer metrics-test-token");
            let (status, body) = if ok { ("200 OK", PAGE) } else { ("401 No", "") };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    vec![
        "--set".into(),
        format!("metrics_url=http://{addr}/metrics"),
        "--secret".into(),
        "metrics_token=ESCOLA_CLI_TEST_METRICS_TOKEN".into(),
    ]
}

fn run_with_metrics(dir: &Path, args: &[&str]) -> Output {
    let extra = metrics_endpoint();
    bin()
        .current_dir(dir)
        .args(args)
        .args(&extra)
        .env("ESCOLA_CLI_TEST_METRICS_TOKEN", "metrics-test-token")
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

/// An application checkout whose smoke script exits with `code`.
fn app(code: i32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    let smoke = scripts.join("smoke.sh");
    std::fs::write(&smoke, format!("#!/bin/sh\necho smoke ran\nexit {code}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&smoke, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A simulator of the API, served on its own runtime while the binary runs.
struct Target {
    sim: escola_runbook_testkit::BackgroundSimulator,
}

fn target() -> Target {
    Target {
        sim: escola_runbook_testkit::BackgroundSimulator::start(
            escola_runbook_testkit::SimulatorConfig::default(),
        )
        .unwrap(),
    }
}

impl Target {
    fn base_url_setting(&self) -> String {
        format!("base_url={}", self.sim.base_url())
    }
}

fn only_run(dir: &Path) -> std::path::PathBuf {
    let runs = dir.join(".escola-runbook/runs");
    let mut entries: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("journal.jsonl").is_file())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap()
}

#[test]
fn plan_lists_the_seven_sections_and_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8(out.stdout).unwrap();
    for (n, title) in [
        "Pré-Deploy",
        "Deploy",
        "Pós-Deploy Imediato (0–30 min)",
        "Monitoramento Estendido (30 min – 24h)",
        "Rollback",
        "Pós-Deploy (24h+)",
        "Checklists de Suporte",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            plan.contains(&format!("{}. {title}  [", n + 1)),
            "missing section {title}\n{plan}"
        );
    }
    let out = run_in(dir.path(), &["plan", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["steps"].as_array().unwrap().len(), 40);
    assert_eq!(json["runbook"]["phases"].as_array().unwrap().len(), 7);
    assert_eq!(json["schema_version"], 1);
}

#[test]
fn a_dry_run_with_yes_succeeds_and_writes_three_reports() {
    let app = app(0);
    let api = target();
    let out = run_with_metrics(
        app.path(),
        &[
            "run",
            "--yes",
            "--dry-run",
            "--operator",
            "ana",
            "--set",
            &api.base_url_setting(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = only_run(app.path());
    for file in ["journal.jsonl", "report.md", "report.json", "junit.xml"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("**Verdict:** **succeeded** (exit code 0)"),
        "{md}"
    );
    assert!(
        md.contains("- [x] Validar smoke tests automatizados"),
        "{md}"
    );
    // The metrics steps ran against the endpoint, read-only, in dry-run.
    assert!(
        md.contains("- [x] Verificar métricas em Prometheus"),
        "{md}"
    );
    assert!(
        md.contains("- [x] Garantir que `/metrics` está respondendo"),
        "{md}"
    );
    // The report rebuilt from the journal alone is the one written at the end.
    let id = run.file_name().unwrap().to_str().unwrap();
    let out = run_in(app.path(), &["report", id, "--format", "md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), md);
    let out = run_in(app.path(), &["report", "latest", "--format", "junit"]);
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("<?xml"));
}

#[test]
fn a_failing_smoke_test_rolls_back_with_exit_code_3() {
    let app = app(0);
    let api = target();
    api.sim.faults().set_error_rate(1.0);
    let out = run_with_metrics(
        app.path(),
        &[
            "run",
            "--yes",
            "--dry-run",
            "--set",
            &api.base_url_setting(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let md = std::fs::read_to_string(only_run(app.path()).join("report.md")).unwrap();
    assert!(
        md.contains("> **Rollback triggered** by step `smoke-tests`"),
        "{md}"
    );
    assert!(
        md.contains("- [!] Validar smoke tests automatizados"),
        "{md}"
    );
}

#[test]
fn manual_steps_without_a_terminal_need_yes() {
    let app = app(0);
    let out = run_in(app.path(), &["run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("pass --yes"), "{}", text(&out));
    assert!(
        !app.path().join(".escola-runbook").exists(),
        "nothing may be written"
    );
}

#[test]
fn bad_input_is_exit_2_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["deploy"], "unrecognized subcommand"),
        (
            &["run", "--yes", "--phase", "deplyo"],
            "unknown phase `deplyo`",
        ),
        (
            &["run", "--yes", "--only", "smoke"],
            "unknown step `smoke` (did you mean `smoke-tests`?)",
        ),
        (
            &["run", "--yes", "--app-dir", "/nonexistent/app"],
            "--app-dir /nonexistent/app is not a directory",
        ),
        (
            &["run", "--yes", "--confirm-timeout", "soon"],
            "'--confirm-timeout <DURATION>': `soon` is not a duration",
        ),
        (
            &["run", "--yes", "--secret", "token"],
            "expected NAME=ENV_VAR",
        ),
        (
            &["run", "--yes", "--secret", "token=ESCOLA_TEST_UNSET_VAR"],
            "ESCOLA_TEST_UNSET_VAR is not set",
        ),
        (&["run", "--yes", "--set", "=x"], "expected KEY=VALUE"),
        (&["report", "nope"], "no run `nope`"),
        (&["report", "latest"], "cannot list runs"),
        (&["check", "comand"], "did you mean `command`?"),
        (
            &["check", "command", "-p", "shel=true"],
            "did you mean `shell`?",
        ),
        (
            &["check", "command", "-p", "timeout=fast", "-p", "shell=true"],
            "parameter `timeout` is not usable: `fast` is not a duration",
        ),
        (
            &["check", "command", "-p", "noequals"],
            "`noequals` is not KEY=VALUE",
        ),
        (&["plan", "--format", "yaml"], "invalid value 'yaml'"),
        (
            &["run", "--yes", "--db-lock"],
            "--db-lock needs the database URL",
        ),
        (&["metrics", "--url", "x"], "is not an http(s) URL"),
        (&["snapshot", "verify", "nope"], "nope is not a directory"),
        (
            &["run", "--runbook", "rb.md"],
            "that is a Markdown document; run it with --markdown rb.md",
        ),
    ];
    for (args, expected) in cases {
        let out = run_in(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(expected),
            "{args:?}: expected {expected:?} in\n{}",
            text(&out)
        );
        assert!(!text(&out).contains("panicked"), "{args:?}");
    }
}

#[test]
fn a_corrupt_journal_is_named_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    std::fs::write(&journal, "{\"event\":\"run_started\"}\ngarbage\n").unwrap();
    let out = run_in(dir.path(), &["report", journal.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("is corrupt at line 1"),
        "{}",
        text(&out)
    );
}

#[test]
fn secrets_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .env("ESCOLA_TEST_TOKEN", "s3cr3t-t0ken-value")
        .args([
            "-v",
            "check",
            "command",
            "--secret",
            "metrics_token=ESCOLA_TEST_TOKEN",
            "-p",
            "shell=echo Bearer s3cr3t-t0ken-value; echo s3cr3t-t0ken-value >&2; exit 1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    assert!(!all.contains("s3cr3t-t0ken-value"), "{all}");
    assert!(all.contains("Bearer <redacted:metrics_token>"), "{all}");
}

#[test]
fn check_list_names_every_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["check", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(
        list.contains("command — runs a program or shell line"),
        "{list}"
    );
    assert!(list.contains("expect_exit"), "{list}");
}

#[test]
fn ctrl_c_stops_the_run_with_exit_4_and_a_consistent_record() {
    let app = tempfile::tempdir().unwrap();
    let scripts = app.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::write(
        scripts.join("smoke.sh"),
        "#!/bin/sh\necho started\nsleep 30\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        scripts.join("smoke.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // The smoke requests hang on a slow API until Ctrl-C.
    let api = target();
    api.sim
        .faults()
        .set_latency(std::time::Duration::from_secs(30));
    let mut child = bin()
        .current_dir(app.path())
        .args([
            "run",
            "--yes",
            "--only",
            "smoke-tests",
            "--set",
            &api.base_url_setting(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the step has started (its record is in the journal).
    let started = std::time::Instant::now();
    loop {
        // The runs directory also holds `locks/`: look in every entry.
        let journal: String = std::fs::read_dir(app.path().join(".escola-runbook/runs"))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("journal.jsonl")).ok())
            .collect();
        if journal.contains("\"step_started\"") {
            break;
        }
        assert!(started.elapsed().as_secs() < 20, "the step never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: plain signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4));
    assert!(
        started.elapsed().as_secs() < 20,
        "the sleeping script must have been killed"
    );
    let md = std::fs::read_to_string(only_run(app.path()).join("report.md")).unwrap();
    assert!(
        md.contains("**STOPPED by the operator** (exit code 4)"),
        "{md}"
    );
    assert!(
        md.contains("- [!] Validar smoke tests automatizados"),
        "{md}"
    );
}

/// A directory of `php`, `git` and `composer` stubs that log each call to
/// `calls.log` beside them; returns the PATH that puts them first.
fn logging_tools(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    for tool in ["php", "git", "composer"] {
        let stub = bin.join(tool);
        std::fs::write(
            &stub,
            format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_failing_re_check_of_a_read_only_step_rolls_nothing_back() {
    for dry_run in [false, true] {
        let app = app(0);
        let path = logging_tools(app.path());
        let mut args = vec![
            "run",
            "--yes",
            "--only",
            "smoke-tests",
            "--set",
            // Nothing listens there: the smoke suite cannot measure.
            "base_url=http://127.0.0.1:9",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        let out = bin()
            .current_dir(app.path())
            .env("PATH", &path)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let calls = std::fs::read_to_string(app.path().join("calls.log")).unwrap_or_default();
        assert!(!calls.contains("migrate prev"), "{calls}");
        assert_eq!(calls, "", "nothing was run: {calls}");
        assert!(
            text(&out).contains(
                "`smoke-tests` ended CHECK ERROR; not rolled back: no step of this run changed anything"
            ) && text(&out).contains("to roll back anyway: escola-runbook run --phase rollback"),
            "{}",
            text(&out)
        );
        let md = std::fs::read_to_string(only_run(app.path()).join("report.md")).unwrap();
        assert!(
            md.contains("> **Not rolled back:** step `smoke-tests` in phase `post-deploy`"),
            "{md}"
        );
    }
}

/// The name of this process's account, from the password database.
fn account_name() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; this
    // test reads it at once, on one thread of its own process.
    unsafe {
        let entry = libc::getpwuid(libc::getuid());
        assert!(!entry.is_null(), "this test needs an account with a name");
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

#[test]
fn without_user_or_logname_the_record_names_the_account() {
    let app = app(0);
    let out = bin()
        .current_dir(app.path())
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(["run", "--yes", "--dry-run", "--phase", "pre-deploy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = only_run(app.path());
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let started: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    let account = account_name();
    assert_eq!(started["run"]["operator"], account.as_str());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(started["run"]["host"], host.trim());
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("- **Operator:** {account} on `{}`", host.trim())),
        "{md}"
    );
    assert!(!md.contains("unknown"), "{md}");
}

#[test]
fn the_recorded_configuration_names_secrets_and_never_holds_them() {
    let app = app(0);
    let out = bin()
        .current_dir(app.path())
        .env(
            "ESCOLA_TEST_HOOK",
            "http://127.0.0.1:9/hooks/HOOK-CANARY-5523",
        )
        .env(
            "ESCOLA_TEST_DB",
            "mysql://deploy:DB-CANARY-7781@127.0.0.1:9/escola",
        )
        .args([
            "run",
            "--yes",
            "--dry-run",
            "--phase",
            "pre-deploy",
            "--secret",
            "webhook_url=ESCOLA_TEST_HOOK",
            "--secret",
            "database_url=ESCOLA_TEST_DB",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let journal = std::fs::read_to_string(only_run(app.path()).join("journal.jsonl")).unwrap();
    assert!(!journal.contains("CANARY"), "{journal}");
    let started: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    let source = &started["run"]["source"];
    assert_eq!(source["kind"], "builtin");
    assert_eq!(source["config"]["webhook_secret"], "webhook_url");
    assert_eq!(source["config"]["database_secret"], "database_url");
    // The values never entered it (not even masked).
    assert!(!source.to_string().contains("redacted"), "{source}");
    let hash = source["config_sha256"].as_str().unwrap();
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
}

/// The checks name what they lack; the CLI, and only it, says which flag
/// gives it, at `check` and under a failed step of a run.
#[test]
fn what_a_check_lacks_is_named_with_the_flag_that_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "http-json",
            "-p",
            "url=http://127.0.0.1:1/commits/{commit}",
            "-p",
            "path=/state",
            "-p",
            "op=equals",
            "-p",
            "value=success",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "environment setting `commit` (for `{commit}` in the URL) was not given\n  give it with --set commit=VALUE"
        ),
        "{}",
        text(&out)
    );

    let runbook = dir.path().join("rb.toml");
    std::fs::write(
        &runbook,
        r#"format = 1
name = "needs a token"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "uses-token"
title = "Uses a token"
check = "command"
params = { shell = "test -n \"$TOKEN\"", read_only = true, secret_env = { TOKEN = "api_token" } }
"#,
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["run", "--runbook", runbook.to_str().unwrap(), "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    let summary = shown
        .find("secret `api_token` (for $TOKEN) was not provided")
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        shown[summary..].contains("pass it with --secret api_token=ENV_VAR"),
        "{shown}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_a_printing_command_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    // A pipe whose reading end is already closed: the first write fails.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    let write_end = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .arg("plan")
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {stderr}",
        out.status
    );
}
