//! Reports and the journal: rendered from a deterministic run (paused clock,
//! fixed epoch and run id) and snapshot-tested; the journal read back.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::*;
use support::*;

/// A small runbook whose run exercises every kind of line a report has.
async fn sample_run(root: Option<&std::path::Path>) -> RunRecord {
    let runbook = Runbook::builder("Escola Connect API — Runbook de Deploy")
        .contact("Dev on-call", "@dev-escola")
        .glossary("Trace-Id", "header retornado pelo `ApiResponder`.")
        .phase(
            Phase::new("pre-deploy", "Pré-Deploy")
                .step(Step::manual("window-agreed", "Sincronizar janela com Infra + Produto").section("Janela & comunicações"))
                .step(
                    Step::check(
                        "metrics-baseline",
                        "Verificar métricas em Prometheus (`/metrics`) e latência base.",
                        Scripted::after(
                            "metrics",
                            Duration::from_millis(1500),
                            Outcome::passed("baseline p95 0.412s over 1200 requests")
                                .with_evidence("p95", "0.412s")
                                .with_evidence("requests", "1200")
                                .with_measurement("latency_p95", 0.412, Some("s")),
                        ),
                    )
                    .section("Backups & infra"),
                ),
        )
        .phase(
            Phase::new("deploy", "Deploy")
                .rollback_on_failure()
                .step(
                    Step::check(
                        "maintenance-on",
                        "Entrar em modo manutenção (opcional)",
                        Scripted::after("down", Duration::from_secs(2), Outcome::failed("`php artisan down` exited with 1, expected 0").with_evidence("stderr", "PHP Fatal error:  Uncaught Error\n  thrown in artisan on line 3")).mutating(),
                    )
                    .advisory()
                    .note("Se a aplicação não expõe comando próprio, utilizar reverse-proxy."),
                )
                .step(Step::check(
                    "smoke-tests",
                    "Validar smoke tests automatizados",
                    Scripted::new(
                        "smoke",
                        vec![
                            (Duration::from_secs(1), Outcome::check_error("GET /health: connection refused")),
                            (Duration::from_secs(1), Outcome::failed("GET /v1/escolas: expected 200, got 503").with_evidence("Trace-Id", "c0ffee")),
                        ],
                    ),
                ).retries(1, Backoff { initial: Duration::from_secs(5), factor: 2.0, max: Duration::from_secs(60) }))
                .step(Step::manual("cdn-purge", "Limpar caches HTTP/CDN")),
        )
        .phase(
            Phase::rollback("rollback", "Rollback")
                .step(Step::manual("previous-version", "Recolocar a versão anterior do código").section("Procedimento")),
        )
        .phase(Phase::new("support", "Checklists de Suporte").step(Step::manual("kanban", "Tickets em aberto migrados")))
        .build()
        .unwrap();
    let confirmer = ScriptedConfirmer::new("ana")
        .answer(
            "window-agreed",
            Decision::Confirmed,
            Some("janela 02:00–04:00 com Infra"),
        )
        .otherwise(Decision::Confirmed);
    let mut exec = executor(runbook).confirmer(Arc::new(confirmer));
    if let Some(root) = root {
        exec = exec.run_root(root);
    }
    exec.run().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn markdown_report_reads_as_the_ticked_runbook() {
    let record = sample_run(None).await;
    insta::assert_snapshot!(report::render_markdown(&record));
}

#[tokio::test(start_paused = true)]
async fn json_report_has_a_versioned_schema() {
    let record = sample_run(None).await;
    let json = report::render_json(&record).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], SCHEMA_VERSION);
    insta::assert_snapshot!(json);
    let back: RunRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
}

#[tokio::test(start_paused = true)]
async fn junit_report_has_a_case_per_step() {
    let record = sample_run(None).await;
    let xml = report::render_junit(&record).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), record.steps().count());
    insta::assert_snapshot!(xml);
}

#[tokio::test(start_paused = true)]
async fn reports_from_the_journal_equal_reports_from_the_live_record() {
    let dir = tempfile::tempdir().unwrap();
    let record = sample_run(Some(dir.path())).await;
    let journal =
        journal::read_journal(&dir.path().join("run-1").join(journal::JOURNAL_FILE)).unwrap();
    let replayed = RunRecord::from_events(&journal.events).unwrap();
    assert_eq!(
        report::render_markdown(&replayed),
        report::render_markdown(&record)
    );
    let written = report::write_reports(&record, &dir.path().join("run-1")).unwrap();
    let names: Vec<_> = written
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    assert_eq!(
        names,
        ["report.md", "report.json", "junit.xml", "report.html"]
    );
    assert!(written.iter().all(|p| p.is_file()));
}

#[tokio::test(start_paused = true)]
async fn a_torn_last_line_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    sample_run(Some(dir.path())).await;
    let path = dir.path().join("run-1").join(journal::JOURNAL_FILE);
    let complete = journal::read_journal(&path).unwrap().events.len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"event":"step_started","phase":"deploy","st"#)
        .unwrap();
    let read = journal::read_journal(&path).unwrap();
    assert_eq!(read.events.len(), complete);
    assert_eq!(read.warnings.len(), 1);
    assert!(
        read.warnings[0].contains("torn last line"),
        "{:?}",
        read.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_line_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    sample_run(Some(dir.path())).await;
    let path = dir.path().join("run-1").join(journal::JOURNAL_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{not json}";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = journal::read_journal(&path).unwrap_err();
    match &err {
        journal::JournalReadError::Corrupt { line, excerpt, .. } => {
            assert_eq!((*line, excerpt.as_str()), (3, "{not json}"));
        }
        other => panic!("expected corrupt, got {other}"),
    }
    assert!(err.to_string().contains("line 3"));
}

#[test]
fn an_empty_or_foreign_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    std::fs::write(&path, "").unwrap();
    assert!(matches!(
        journal::read_journal(&path),
        Err(journal::JournalReadError::Empty(_))
    ));
    let events = vec![Event::PhaseStarted {
        phase: "p".into(),
        at: epoch(),
    }];
    assert_eq!(
        RunRecord::from_events(&events).unwrap_err().to_string(),
        "the record does not begin with run_started (found phase_started); it is not a run journal"
    );
}

/// A run whose evidence carries markup from outside and whose watch
/// measured a series.
async fn run_with_a_chart(root: &std::path::Path) -> RunRecord {
    let watched = Outcome::passed("1 rules held for 1m")
        .with_evidence(
            "body",
            "<script>alert('pwned')</script><img src=x onerror=alert(1)>",
        )
        .with_series(Series {
            name: "latency-p95".into(),
            unit: Some("s".into()),
            limit: Some(2.0),
            points: (0..60)
                .map(|i| [f64::from(i), 0.2 + f64::from(i % 7) / 20.0])
                .collect(),
            marks: Vec::new(),
        });
    let runbook = Runbook::builder("Escola Connect API — Runbook de Deploy")
        .phase(
            Phase::watch("monitoring", "Monitoramento Estendido").step(Step::check(
                "alert-latency-p95",
                "`Latência P95 > 2s` por 5 minutos.",
                Scripted::after("watch", Duration::from_secs(60), watched),
            )),
        )
        .build()
        .unwrap();
    executor(runbook).run_root(root).run().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_html_report_is_one_page_with_its_charts_and_no_markup_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let record = run_with_a_chart(dir.path()).await;
    let html = report::render_html(&record).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("Latência P95 &gt; 2s") || html.contains("Latência P95 > 2s"),
        "{html}"
    );
    // The chart is in the page, not a link to fetch.
    assert_eq!(html.matches("<svg").count(), 1, "{html}");
    assert!(
        html.contains("<figure id=\"plots/monitoring.svg\">"),
        "{html}"
    );
    // Text from outside is text.
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    // Nothing to load: no remote resources (the SVG namespace is a name,
    // not a fetch), and the page's policy forbids any.
    for attr in ["src=\"http", "href=\"http", "url(http"] {
        assert!(!html.contains(attr), "{attr} in {html}");
    }
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    // The run directory gets it beside report.md.
    let written =
        report::write_reports(&record, &run_directory(dir.path(), &record.run.run_id)).unwrap();
    assert!(
        written.iter().any(|p| p.ends_with("report.html")),
        "{written:?}"
    );
}

/// A series of the watch, `n` points a second apart around `base`.
fn watched(name: &str, unit: &str, limit: Option<f64>, base: f64) -> Series {
    Series {
        name: name.into(),
        unit: Some(unit.into()),
        limit,
        points: (0..30)
            .map(|i| [f64::from(i), base + f64::from(i % 5) * base / 10.0])
            .collect(),
        marks: vec![Mark {
            at: 20.0,
            label: "rollback window ends".into(),
        }],
    }
}

#[tokio::test(start_paused = true)]
async fn the_watch_chart_reads_at_a_glance() {
    let latency = Outcome::passed("1 rules held")
        .with_series(watched("latency-p95", "s", Some(2.0), 0.4))
        .with_series(watched("latency-p50", "s", None, 0.1))
        .with_series(watched("latency-p99", "s", None, 0.9));
    let errors =
        Outcome::passed("1 rules held").with_series(watched("error-5xx", "%", Some(1.0), 0.05));
    let limited = Outcome::passed("1 rules held").with_series(watched(
        "rate-limited",
        "requests",
        Some(1.0),
        0.0,
    ));
    let runbook = Runbook::builder("Escola Connect API — Runbook de Deploy")
        .phase(
            Phase::new("deploy", "Deploy").step(Step::check(
                "migrate",
                "Rodar migrações",
                Scripted::after(
                    "migrate",
                    Duration::from_secs(5),
                    Outcome::passed("migrated"),
                )
                .mutating(),
            )),
        )
        .phase(
            Phase::watch("monitoring", "Monitoramento Estendido")
                .step(Step::check(
                    "alert-latency-p95",
                    "P95",
                    Scripted::after("w", Duration::from_secs(30), latency),
                ))
                .step(Step::check(
                    "alert-5xx",
                    "5xx",
                    Scripted::after("w", Duration::from_secs(30), errors),
                ))
                .step(Step::check(
                    "alert-429",
                    "429",
                    Scripted::after("w", Duration::from_secs(30), limited),
                )),
        )
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();

    let charts = report::phase_charts(&record);
    assert_eq!(charts.len(), 1, "one chart, for the watch phase");
    let chart = &charts[0];
    assert_eq!(chart.path, "plots/monitoring.svg");
    // Latency on the left, the 5xx share on its own right axis; a third
    // unit keeps only its own plot.
    assert_eq!(chart.units, ("s".to_string(), Some("%".to_string())));
    let sides: Vec<(&str, bool)> = chart
        .lines
        .iter()
        .map(|l| (l.series.name.as_str(), l.right))
        .collect();
    assert_eq!(
        sides,
        [
            ("latency-p95", false),
            ("latency-p50", false),
            ("latency-p99", false),
            ("error-5xx", true)
        ]
    );
    assert_eq!(
        chart
            .left_out
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["rate-limited"]
    );
    // The origin is the deploy moment; each later step's series starts
    // where its step started; the steps' shared rollback window is one
    // line per step start.
    assert_eq!(
        chart.marks[0],
        report::ChartMark {
            at: 0.0,
            label: "deploy (migrate done)".into()
        }
    );
    let first = chart.lines[0].offset;
    assert!(first >= 0.0, "{first}");
    assert!(
        chart
            .marks
            .iter()
            .any(|m| m.label == "rollback window ends" && (m.at - (first + 20.0)).abs() < 1e-6),
        "{:?}",
        chart.marks
    );

    let svg = report::render_phase_svg(chart).unwrap();
    for text in [
        "Monitoramento Estendido",
        "latency-p50 (s)",
        "latency-p95 (s)",
        "latency-p99 (s)",
        "error-5xx (%, right)",
        "latency-p95 limit 2",
        "error-5xx limit 1",
        "deploy (migrate done)",
        "rollback window ends",
        "UTC, from",
    ] {
        assert!(svg.contains(text), "{text} missing from the chart:\n{svg}");
    }
    assert!(
        !svg.contains("rate-limited"),
        "a third unit is not drawn on the phase chart"
    );
    // Dashed limit lines: one per rule with a limit.
    assert!(svg.matches("<polyline").count() >= 4, "{svg}");

    let markdown = report::render_markdown(&record);
    assert!(
        markdown.contains("- chart: ![Monitoramento Estendido](plots/monitoring.svg)"),
        "{markdown}"
    );
    let html = report::render_html(&record).unwrap();
    // The phase chart, plus the left-out series' own plot.
    assert_eq!(html.matches("<svg").count(), 2, "{html}");
    assert!(
        html.contains("<figure id=\"plots/alert-429--rate-limited.svg\">"),
        "{html}"
    );
}
