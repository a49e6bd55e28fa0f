//! `cargo run --example deploy` as its users see it: the example's own
//! code (included from `examples/deploy.rs`), against a simulator the test
//! can inspect afterwards.

#[path = "../examples/deploy.rs"]
#[allow(dead_code)] // the example's `main`
mod deploy;

use escola_runbook_core::{PhaseKind, RunRecord, Status, StepRecord, exit};
use escola_runbook_testkit::{Simulator, SimulatorConfig};

fn step<'a>(record: &'a RunRecord, id: &str) -> &'a StepRecord {
    record
        .steps()
        .map(|(_, s)| s)
        .find(|s| s.outline.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

async fn run(fault: Option<&str>) -> (Simulator, RunRecord, tempfile::TempDir) {
    let api = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let record = deploy::deploy(&api, fault, root.path(), std::io::sink())
        .await
        .unwrap();
    (api, record, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_api_passes_and_the_smoke_writes_are_refused() {
    let (api, record, _root) = run(None).await;
    assert_eq!(record.exit_code, Some(exit::SUCCESS));
    let smoke = step(&record, "smoke-tests");
    assert_eq!(smoke.status(), Status::Passed, "{smoke:#?}");
    assert!(record.rollback.is_none());
    // Manual steps are skipped in this dry-run: nobody confirmed them.
    let window = step(&record, "window-agreed");
    assert_eq!(window.status(), Status::Skipped);
    assert!(window.confirmation.is_none());
    assert_eq!(api.stored_escola(1).unwrap().writes, 0);
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_ignores_if_match_fails_the_smoke_step_and_rolls_back() {
    let (api, record, root) = run(Some("ignore-if-match")).await;
    let before = serde_json::json!({ "id": 1, "nome": "EMEF Paulo Freire", "cidade_id": 1 });
    assert_eq!(record.exit_code, Some(exit::ROLLED_BACK));
    let smoke = step(&record, "smoke-tests");
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
    let phase = record
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Rollback)
        .unwrap();
    assert!(
        phase.steps.iter().all(|s| s.status() == Status::Skipped),
        "the dry-run rehearses the rollback: {phase:#?}"
    );
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
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_twice_as_slow_holds_every_fixed_limit_and_fails_the_judge() {
    let (api, record, root) = run(Some("latency-doubled")).await;
    let judge = step(&record, "panel-latency");
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
        assert_eq!(step(&record, alert).status(), Status::Passed, "{alert}");
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
    api.shutdown().await;
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
