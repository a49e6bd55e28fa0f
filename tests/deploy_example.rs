//! `cargo run --example deploy` as its users see it: the example's own
//! code (included from `examples/deploy.rs`), against a simulator and a
//! simulated host the test can inspect afterwards.

#[path = "../examples/deploy.rs"]
#[allow(dead_code)] // the example's `main`
mod deploy;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use escola_runbook_core::{
    Decision, Event, Observer, PhaseKind, RunRecord, Status, StepRecord, Via, exit,
};
use escola_runbook_testkit::{MIGRATIONS, Simulator, SimulatorConfig};

fn step<'a>(record: &'a RunRecord, id: &str) -> &'a StepRecord {
    record
        .steps()
        .map(|(_, s)| s)
        .find(|s| s.outline.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn rollback_phase(record: &RunRecord) -> &escola_runbook_core::PhaseRecord {
    record
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Rollback)
        .unwrap()
}

struct Run {
    api: Simulator,
    deployed: deploy::Deployed,
    root: tempfile::TempDir,
    _app: tempfile::TempDir,
}

async fn run_with(
    fault: Option<&str>,
    dry_run: bool,
    extra: impl FnOnce(&Simulator) -> Vec<Arc<dyn Observer>>,
) -> Run {
    let api = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    let options = deploy::Options {
        fault: fault.map(str::to_owned),
        dry_run,
        spinners: false,
    };
    let observers = extra(&api);
    let deployed = deploy::deploy(
        &api,
        &options,
        root.path(),
        app.path(),
        std::io::sink(),
        observers,
    )
    .await
    .unwrap();
    Run {
        api,
        deployed,
        root,
        _app: app,
    }
}

async fn run(fault: Option<&str>) -> Run {
    run_with(fault, false, |_| Vec::new()).await
}

/// `GET path` over a plain socket (an observer cannot await): the status
/// and the `Retry-After` header.
fn get_status(base: &str, path: &str) -> (u16, Option<String>) {
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let retry = text.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after: ")
            .map(str::to_owned)
    });
    (status, retry)
}

/// Whether MariaDB answers on 127.0.0.1:3306 with a `mariadb` client to
/// reach it, as the example looks for it; under `ESCOLA_REQUIRE_SERVICES=1`
/// a missing one fails the test.
fn mariadb_answers() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:3306".parse().unwrap(),
        std::time::Duration::from_millis(300),
    )
    .is_ok()
        && std::process::Command::new("mariadb")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !up {
        let reason = "no MariaDB on 127.0.0.1:3306 or no `mariadb` client";
        if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("ESCOLA_REQUIRE_SERVICES=1 but {reason}");
        }
        eprintln!("database steps checked as manual: {reason}");
    }
    up
}

/// What the API answered right after each maintenance step finished.
struct MaintenanceProbe {
    base: String,
    seen: Mutex<Vec<(String, u16, Option<String>)>>,
}

impl Observer for MaintenanceProbe {
    fn on_event(&self, event: &Event) {
        if let Event::StepFinished { step, .. } = event {
            if step == "maintenance-on" || step == "maintenance-off" {
                let (status, retry) = get_status(&self.base, "/v1/escolas");
                self.seen
                    .lock()
                    .unwrap()
                    .push((step.clone(), status, retry));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_run_deploys_for_real_to_the_simulated_host() {
    let probe = Arc::new(Mutex::new(None::<Arc<MaintenanceProbe>>));
    let keep = probe.clone();
    let run = run_with(None, false, move |api| {
        let p = Arc::new(MaintenanceProbe {
            base: api.base_url(),
            seen: Mutex::new(Vec::new()),
        });
        *keep.lock().unwrap() = Some(p.clone());
        vec![p as Arc<dyn Observer>]
    })
    .await;
    let record = &run.deployed.record;
    assert_eq!(record.exit_code, Some(exit::SUCCESS));
    assert!(!record.run.dry_run);
    assert!(record.rollback.is_none());
    // Nothing is skipped as a dry-run would: the rollback was not needed,
    // and the database steps are skipped only without MariaDB (said plainly).
    let database_steps = ["db-snapshot", "migrations-consistent"];
    let database = mariadb_answers();
    for (phase, s) in record.steps() {
        if s.status() != Status::Skipped {
            continue;
        }
        let why = &s.outcome.as_ref().unwrap().summary;
        assert!(
            phase.kind == PhaseKind::Rollback
                || (!database && database_steps.contains(&s.outline.id.as_str())),
            "{} skipped: {why}",
            s.outline.id
        );
        assert!(!why.contains("dry-run"), "{why}");
    }
    for id in database_steps {
        let s = step(record, id);
        if database {
            assert_eq!(s.status(), Status::Passed, "{id}: {s:#?}");
        } else {
            let answer = s.confirmation.as_ref().unwrap();
            assert_eq!(answer.decision, Decision::Skipped);
            assert!(answer.comment.as_deref().unwrap().contains("fica manual"));
        }
    }
    if database {
        let consistent = step(record, "migrations-consistent")
            .outcome
            .as_ref()
            .unwrap();
        assert!(
            consistent
                .summary
                .contains(&format!("expected {} applied", MIGRATIONS[2])),
            "{}",
            consistent.summary
        );
    }
    let passed = record
        .steps()
        .filter(|(_, s)| s.status() == Status::Passed)
        .count();
    assert!(passed >= 30, "{passed} steps passed");
    // Manual steps: confirmed by the script, as `example`, never a person.
    let window = step(record, "window-agreed");
    assert_eq!(window.status(), Status::Passed);
    let confirmed = window.confirmation.as_ref().unwrap();
    assert_eq!(
        (confirmed.who.as_str(), confirmed.via),
        ("example", Via::Scripted)
    );
    // The commands ran on the host, in the runbook's order.
    let host = run.deployed.host.as_ref().unwrap();
    let calls = host.calls();
    assert_eq!(
        calls.first().unwrap(),
        r#"php artisan down --message=Atualizando Escola Connect API --retry=60"#
    );
    assert_eq!(calls.last().unwrap(), "php artisan up");
    for call in [
        "php vendor/bin/doctrine-migrations migrate --no-interaction",
        "git pull --ff-only",
        "composer install --no-dev --no-interaction",
        "php artisan config:cache",
        "php vendor/bin/phpunit",
        "php ./scripts/cache-clear-aggregates.php",
    ] {
        assert!(calls.iter().any(|c| c == call), "{call} not run: {calls:?}");
    }
    assert_eq!(host.schema_version().as_deref(), Some(MIGRATIONS[2]));
    assert!(!host.in_maintenance());
    let purges = run.api.purges();
    assert_eq!((purges["/v1/cidades"], purges["/v1/escolas"]), (1, 1));
    // 503 with Retry-After while maintenance mode is on, 200 after
    // `maintenance-off`.
    let probe = probe.lock().unwrap().clone().unwrap();
    let seen = probe.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("maintenance-on".to_owned(), 503, Some("60".to_owned())),
            ("maintenance-off".to_owned(), 200, None),
        ]
    );
    // The smoke suite's writes were refused.
    assert_eq!(step(record, "smoke-tests").status(), Status::Passed);
    assert_eq!(run.api.stored_escola(1).unwrap().writes, 0);
    run.api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_rehearses_the_rollback() {
    let run = run_with(Some("errors"), true, |_| Vec::new()).await;
    let record = &run.deployed.record;
    assert!(record.run.dry_run);
    assert!(run.deployed.host.is_none());
    assert_eq!(record.exit_code, Some(exit::ROLLED_BACK));
    // Manual steps are skipped in a dry-run: nobody confirmed them.
    let window = step(record, "window-agreed");
    assert_eq!(window.status(), Status::Skipped);
    assert!(window.confirmation.is_none());
    let phase = rollback_phase(record);
    assert!(
        phase.steps.iter().all(|s| s.status() == Status::Skipped),
        "the dry-run rehearses the rollback: {phase:#?}"
    );
    assert!(run.api.purges().is_empty(), "a dry-run purges nothing");
    run.api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_ignores_if_match_fails_the_smoke_step_and_rolls_back() {
    let run = run(Some("ignore-if-match")).await;
    let (api, record, root) = (&run.api, &run.deployed.record, &run.root);
    let before = serde_json::json!({ "id": 1, "nome": "EMEF Paulo Freire", "cidade_id": 1 });
    assert_eq!(record.exit_code, Some(exit::ROLLED_BACK));
    let smoke = step(record, "smoke-tests");
    let outcome = smoke.outcome.as_ref().unwrap();
    assert_eq!(outcome.status, Status::Failed);
    let base = api.base_url();
    assert!(
        outcome.summary.starts_with(&format!(
            "2 of 18 checks failed against {base}: PUT {base}/v1/escolas/1: expected 412 Precondition Failed for a stale If-Match, got 200"
        )),
        "{}",
        outcome.summary
    );
    let rollback = record.rollback.as_ref().unwrap();
    assert_eq!(rollback.step, "smoke-tests");
    // The rollback ran: confirmed by the script; the migrations were fine,
    // so `migrate prev` is skipped on purpose and never run.
    assert_eq!(step(record, "rollback-detection").status(), Status::Passed);
    assert_eq!(step(record, "migrate-prev").status(), Status::Skipped);
    let host = run.deployed.host.as_ref().unwrap();
    assert!(!host.calls().iter().any(|c| c.contains("migrate prev")));
    // The API wrongly took both writes, and stored what escola 1 held.
    let stored = api.stored_escola(1).unwrap();
    assert_eq!((stored.writes, stored.json), (2, before));
    // The report says so too.
    let dir = escola_runbook_core::run_directory(root.path(), &record.run.run_id);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("expected: 412 Precondition Failed for a stale If-Match"),
        "{md}"
    );
    run.api.shutdown().await;
}

/// A real run with `fault` rolls back, started by `step` failing.
async fn rolls_back_after(fault: &str, failed: &str) {
    let run = run(Some(fault)).await;
    let record = &run.deployed.record;
    // On a miss, what the step that should have failed saw.
    assert_eq!(
        record.exit_code,
        Some(exit::ROLLED_BACK),
        "{:#?}",
        step(record, failed).outcome
    );
    let rollback = record.rollback.as_ref().unwrap();
    assert_eq!(rollback.step, failed, "{rollback:#?}");
    assert_eq!(step(record, failed).status(), Status::Failed);
    assert_eq!(step(record, "rollback-detection").status(), Status::Passed);
    run.api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_errors_fails_the_smoke_tests_and_rolls_back() {
    rolls_back_after("errors", "smoke-tests").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_latency_fires_the_p95_alert_and_rolls_back() {
    rolls_back_after("latency", "alert-latency-p95").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_migration_undoes_maintenance_and_runs_migrate_prev() {
    let run = run(Some("migration")).await;
    let record = &run.deployed.record;
    assert_eq!(record.exit_code, Some(exit::ROLLED_BACK));
    assert_eq!(record.rollback.as_ref().unwrap().step, "migrations");
    assert_eq!(step(record, "migrations").status(), Status::Failed);
    assert_eq!(step(record, "migrate-prev").status(), Status::Passed);
    let host = run.deployed.host.as_ref().unwrap();
    let calls = host.calls();
    let at = |line: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(line))
            .unwrap_or_else(|| panic!("{line} not run: {calls:?}"))
    };
    // The failed migration, then `artisan up` (the undo of maintenance-on),
    // then `migrate prev` in the rollback phase.
    assert!(
        at("php vendor/bin/doctrine-migrations migrate --no-interaction") < at("php artisan up")
    );
    assert!(at("php artisan up") < at("php vendor/bin/doctrine-migrations migrate prev"));
    assert!(!host.in_maintenance());
    // The migration that was applied before the failure is reverted.
    assert_eq!(host.schema_version().as_deref(), Some(MIGRATIONS[0]));
    assert!(
        !calls.iter().any(|c| c.starts_with("git pull")),
        "the deploy stopped"
    );
    run.api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_down_is_a_check_error_before_the_deploy_never_a_pass() {
    let run = run(Some("down")).await;
    let record = &run.deployed.record;
    assert_eq!(record.exit_code, Some(exit::STEP_FAILED));
    assert!(record.rollback.is_none());
    assert_eq!(
        step(record, "metrics-baseline").status(),
        Status::CheckError
    );
    for s in ["maintenance-on", "migrations", "smoke-tests"] {
        assert_eq!(step(record, s).status(), Status::NotRun, "{s}");
    }
    assert!(run.deployed.host.as_ref().unwrap().calls().is_empty());
    run.api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_twice_as_slow_holds_every_fixed_limit_and_fails_the_judge() {
    let run = run(Some("latency-doubled")).await;
    let (record, root) = (&run.deployed.record, &run.root);
    let judge = step(record, "panel-latency");
    let outcome = judge.outcome.as_ref().unwrap();
    assert_eq!(judge.status(), Status::Failed, "{outcome:#?}");
    assert!(
        outcome
            .summary
            .contains("after slower than before with probability")
            && outcome.summary.ends_with("): regressed"),
        "{}",
        outcome.summary
    );
    for alert in ["alert-latency-p95", "alert-5xx", "alert-rate-limit"] {
        assert_eq!(step(record, alert).status(), Status::Passed, "{alert}");
    }
    // Advisory: the fixed limits decide a rollback, and they held.
    assert!(record.rollback.is_none());
    assert_eq!(record.exit_code, Some(exit::SUCCESS));
    let dir = escola_runbook_core::run_directory(root.path(), &record.run.run_id);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(&outcome.summary),
        "the report says why in one line"
    );
    // The watch phase's one chart: the latency spread and the 5xx share on
    // its own axis, with the limits, the deploy and the rollback window;
    // the 429 count (a third unit) keeps its own plot.
    let chart = std::fs::read_to_string(dir.join("plots/monitoring.svg")).unwrap();
    for text in [
        "latency-p50",
        "latency-p95",
        "latency-p99",
        "error-5xx (%, right)",
        "latency-p95 limit 2",
        "error-5xx limit 1",
        "deploy (maintenance-off done)",
        "rollback window ends",
    ] {
        assert!(chart.contains(text), "{text} missing from the watch chart");
    }
    the_page_renders_with_its_charts(&dir.join("report.html"), 2);
    run.api.shutdown().await;
}

/// `report.html` as a person sees it, in Debian's headless Chromium: the
/// screenshot is not blank, and the rendered page holds `charts` charts and
/// the checklist. Without Chromium: skipped with a reason, except under
/// `ESCOLA_REQUIRE_SERVICES=1`.
fn the_page_renders_with_its_charts(page: &std::path::Path, charts: usize) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        let reason = "no Chromium on PATH (apt-get install -y chromium)";
        if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("ESCOLA_REQUIRE_SERVICES=1 but {reason}");
        }
        eprintln!("browser check skipped: {reason}");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let profile = out.path().join("profile");
    let headless = |extra: &[&str]| {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap()
    };
    let dom = headless(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        charts,
        "charts in the rendered page"
    );
    assert!(dom.contains("Latência (P50/P95/P99)"), "the checklist");
    let shot = out.path().join("page.png");
    let taken = headless(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,2400",
        "--hide-scrollbars",
    ]);
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let bytes = &pixels[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    let background = &bytes[..channels];
    let painted = bytes
        .chunks(channels)
        .filter(|px| px != &background)
        .count();
    let share = painted as f64 / (bytes.len() / channels) as f64;
    assert!(
        share > 0.02,
        "the screenshot is blank: {:.2}% painted",
        share * 100.0
    );
}
