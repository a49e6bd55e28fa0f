//! The probes a rules file's `[[rules]]` can measure with beyond latency,
//! 5xx and counts, built from rules-file text through the catalog as
//! `watch --rules` builds them: any metric by name and labels (the
//! simulator's and a canned `/metrics`), a smoke suite's pass ratio (the
//! simulator), a PromQL expression (a real `prometheus` scraping the
//! simulator), and a SQL scalar query (the real MariaDB at 127.0.0.1:3306).
//! Services that are missing skip, unless `ESCOLA_REQUIRE_SERVICES=1`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use escola_runbook_core::formats::rules_file::Rules;
use escola_runbook_core::rules::{Probe, Rule, Sample};
use escola_runbook_core::{Check, Ctx, Environment, Secret, Secrets, Status, Watch};
use escola_runbook_testkit::{Simulator, SimulatorConfig};
use mysql_async::prelude::Queryable;
use support::{Response, serve, services_required};

/// The rules of `text`, built as `watch --rules` builds them.
fn rules(text: &str) -> Vec<Rule> {
    let rules = Rules::parse(text, "rules.toml").unwrap();
    let catalog = escola_runbook_checks::catalog();
    let settings =
        serde_json::Map::from_iter([("token_secret".to_owned(), "metrics_token".into())]);
    rules
        .specs
        .iter()
        .map(|spec| rules.live_rule(spec, &catalog, &settings).unwrap())
        .collect()
}

fn probe(text: &str) -> Arc<dyn Probe> {
    rules(text).remove(0).probe
}

fn ctx(env: Environment, secrets: &[(&str, String)]) -> Ctx {
    let mut s = Secrets::new();
    for (name, value) in secrets {
        s.insert(*name, Secret::new(value.clone()));
    }
    Ctx::standalone(env, s)
}

fn sim_ctx(sim: &Simulator) -> Ctx {
    ctx(
        Environment::new("test")
            .with("base_url", sim.base_url())
            .with("metrics_url", format!("{}/metrics", sim.base_url())),
        &[("metrics_token", sim.metrics_token().to_owned())],
    )
}

fn value(sample: &Sample) -> f64 {
    match sample {
        Sample::Value { value, .. } => *value,
        other => panic!("expected a value, got {other:?}"),
    }
}

async fn traffic(sim: &Simulator, path: &str, n: usize) {
    support::traffic(&sim.base_url(), path, n).await;
}

#[tokio::test]
async fn a_counter_rate_by_name_and_labels_counts_only_the_matching_series() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let ctx = sim_ctx(&sim);
    let rate = probe(
        r#"
        [[rules]]
        id = "cidades-ok-rate"
        measure = "rate"
        metric = "http_requests_total"
        labels = ['route="/v1/cidades"', 'status=~"2.."']
        window = "0"
        comparison = "above"
        limit = 100
        "#,
    );
    traffic(&sim, "/v1/escolas", 10).await;
    let started = Instant::now();
    assert!(
        matches!(rate.sample(&ctx).await, Sample::NoData { .. }),
        "the first read has no window"
    );
    traffic(&sim, "/v1/cidades", 30).await;
    traffic(&sim, "/v1/escolas", 25).await;
    let sample = rate.sample(&ctx).await;
    let elapsed = started.elapsed().as_secs_f64();
    let Sample::Value { value, detail, .. } = &sample else {
        panic!("{sample:?}");
    };
    // 30 matching requests (not /v1/escolas, not the probe's /metrics).
    assert_eq!(detail["increase"], "30", "{detail:?}");
    assert!(
        *value >= 30.0 / elapsed,
        "{value}/s over at most {elapsed}s"
    );
}

#[tokio::test]
async fn a_gauge_by_labels_is_the_sum_of_its_matching_series_from_the_first_read() {
    let app = serve(|req| match req.authorization.as_deref() {
        Some("Bearer t0k") => Response::metrics(
            "# TYPE queue_depth gauge\n\
             queue_depth{queue=\"sync\",shard=\"a\"} 7\n\
             queue_depth{queue=\"sync\",shard=\"b\"} 5\n\
             queue_depth{queue=\"mail\"} 3\n\
             # TYPE other gauge\nother 100\n",
        ),
        _ => Response::status(401, "no"),
    });
    let ctx = ctx(
        Environment::new("t").with("metrics_url", app.url("/metrics")),
        &[("metrics_token", "t0k".into())],
    );
    let gauge = |labels: &str| {
        probe(&format!(
            "[[rules]]\nid='q'\nmeasure='gauge'\nmetric='queue_depth'\nlabels={labels}\ncomparison='above'\nlimit=10\n"
        ))
    };
    assert_eq!(
        value(&gauge(r#"['queue="sync"']"#).sample(&ctx).await),
        12.0
    );
    assert_eq!(
        value(&gauge(r#"['queue!~"sy.*"']"#).sample(&ctx).await),
        3.0
    );
    assert_eq!(value(&gauge(r#"['shard!="b"']"#).sample(&ctx).await), 10.0);
    let none = gauge(r#"['queue="nope"']"#).sample(&ctx).await;
    assert!(
        matches!(&none, Sample::NoData { reason } if reason.contains("no series") && reason.contains("queue_depth{queue=\"nope\"}")),
        "{none:?}"
    );
}

#[tokio::test]
async fn the_smoke_pass_ratio_is_a_percentage_that_falls_when_the_api_fails() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let ctx = sim_ctx(&sim);
    let smoke = probe(
        "[[rules]]\nid='smoke'\nmeasure='smoke_pass_percent'\ncomparison='below'\nlimit=100\n",
    );
    assert_eq!(value(&smoke.sample(&ctx).await), 100.0);
    sim.faults().set_error_rate(1.0);
    let failing = value(&smoke.sample(&ctx).await);
    assert!((0.0..100.0).contains(&failing), "{failing}");
    sim.faults().set_error_rate(0.0);
    sim.faults().set_down(true).await.unwrap();
    assert!(
        matches!(smoke.sample(&ctx).await, Sample::Error { .. }),
        "an API that answers nothing is not a ratio"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_rules_read_one_value_from_a_real_prometheus_scraping_the_simulator() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    traffic(&sim, "/v1/cidades", 5).await;
    traffic(&sim, "/v1/escolas", 2).await;
    let Some(prometheus) = support::prometheus(sim.addr(), sim.metrics_token()) else {
        return;
    };
    let url = prometheus.url.clone();
    // `watch --prometheus URL` sets this setting.
    let ctx = ctx(
        Environment::new("t").with("prometheus_url", url.clone()),
        &[("metrics_token", "not-for-prometheus".into())],
    );
    let promql = |expr: &str| {
        probe(&format!(
            "[[rules]]\nid='p'\nmeasure='promql'\npromql='''{expr}'''\ncomparison='above'\nlimit=1\n"
        ))
    };
    let up = promql(r#"sum(up{job="app"})"#);
    let started = Instant::now();
    loop {
        if let Sample::Value { value, .. } = up.sample(&ctx).await {
            if value == 1.0 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "Prometheus at {url} never scraped the simulator"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The simulator's counter as Prometheus scraped it: at least the 5
    // requests sent before the first scrape.
    let cidades = promql(r#"sum(http_requests_total{route="/v1/cidades"})"#);
    assert!(value(&cidades.sample(&ctx).await) >= 5.0);
    // A scalar.
    assert_eq!(
        value(&promql("scalar(vector(2.5))").sample(&ctx).await),
        2.5
    );
    // The rule's own server beats the setting.
    let own = probe(&format!(
        "[[rules]]\nid='p'\nmeasure='promql'\npromql='vector(7)'\nprometheus='{url}'\ncomparison='above'\nlimit=1\n"
    ));
    let bare = Ctx::standalone(Environment::new("t"), Secrets::new());
    assert_eq!(value(&own.sample(&bare).await), 7.0);
    let missing = promql("vector(1)").sample(&bare).await;
    assert!(
        matches!(&missing, Sample::Error { message } if message.contains("prometheus_url")),
        "{missing:?}"
    );

    let empty = promql(r#"up{job="nope"}"#).sample(&ctx).await;
    assert!(
        matches!(&empty, Sample::NoData { reason } if reason.contains("empty vector")),
        "{empty:?}"
    );
    let several = promql("http_requests_total").sample(&ctx).await;
    assert!(
        matches!(&several, Sample::Error { message } if message.contains("series") && message.contains("aggregate")),
        "{several:?}"
    );
    let broken = promql("sum(up").sample(&ctx).await;
    assert!(
        matches!(&broken, Sample::Error { message } if message.contains("bad_data")),
        "{broken:?}"
    );
}

const ROOT: &str = "mysql://root@127.0.0.1:3306";

async fn mariadb() -> Option<mysql_async::Conn> {
    match mysql_async::Conn::new(mysql_async::Opts::from_url(ROOT).unwrap()).await {
        Ok(c) => Some(c),
        Err(e) => {
            assert!(
                !services_required(),
                "MariaDB at 127.0.0.1:3306 is required (ESCOLA_REQUIRE_SERVICES=1): {e}"
            );
            eprintln!("skipping: MariaDB at 127.0.0.1:3306 is not reachable: {e}");
            None
        }
    }
}

/// A new database holding `sync_mutations` with the `rows` (statuses as
/// SQL tuples); its name.
async fn backlog_db(conn: &mut mysql_async::Conn, prefix: &str, rows: &str) -> String {
    let db = format!("escola_t_{prefix}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
        format!(
            "CREATE TABLE {db}.sync_mutations (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(16) NOT NULL)"
        ),
        format!("INSERT INTO {db}.sync_mutations (status) VALUES {rows}"),
    ] {
        conn.query_drop(&sql).await.unwrap();
    }
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_of_the_backlog_query_fires_when_pending_rows_pass_the_limit() {
    let Some(mut conn) = mariadb().await else {
        return;
    };
    let db = backlog_db(
        &mut conn,
        "backlog",
        "('pending'), ('pending'), ('done'), ('done'), ('done')",
    )
    .await;
    let ctx = ctx(
        Environment::new("t"),
        &[("database_url", format!("{ROOT}/{db}"))],
    );
    let rule = rules(
        r#"
        [[rules]]
        id = "sync-backlog"
        measure = "sql"
        sql = "SELECT COUNT(*) FROM sync_mutations WHERE status = 'pending'"
        comparison = "above"
        limit = 3
        unit = "rows"
        consecutive = 2
        "#,
    );
    assert_eq!(value(&rule[0].probe.sample(&ctx).await), 2.0);

    // Below the limit for the whole watch: it holds.
    let watch = |rules: Vec<Rule>| {
        Watch::new(rules, Duration::from_millis(200), Duration::from_secs(2))
            .unwrap()
            .rollback_window(Duration::from_secs(2))
    };
    let held = watch(rule.clone()).run(&ctx).await;
    assert_eq!(held.status, Status::Passed, "{held:?}");

    // Pending rows pass the limit while the watch runs: it fires.
    let filler = {
        let db = db.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(ROOT).unwrap())
                .await
                .unwrap();
            conn.query_drop(format!(
                "INSERT INTO {db}.sync_mutations (status) VALUES ('pending'), ('pending')"
            ))
            .await
            .unwrap();
        })
    };
    let fired = watch(rule).run(&ctx).await;
    filler.await.unwrap();
    assert_eq!(fired.status, Status::Failed, "{fired:?}");
    assert!(
        fired.summary.starts_with("rule `sync-backlog` fired at")
            && fired.summary.contains("4rows > 3rows"),
        "{}",
        fired.summary
    );

    // The server stops a statement past its limit; the sample says so.
    let slow = probe(
        "[[rules]]\nid='slow'\nmeasure='sql'\nsql='SELECT SLEEP(5)'\nstatement_timeout='1s'\ncomparison='above'\nlimit=1\n",
    );
    let started = Instant::now();
    let stopped = slow.sample(&ctx).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        matches!(&stopped, Sample::Error { message } if message.contains("statement limit 1s") && message.contains("max_statement_time")),
        "{stopped:?}"
    );
    // Several rows are not a scalar; nothing was changed by any of it.
    let rows = probe(
        "[[rules]]\nid='rows'\nmeasure='sql'\nsql='SELECT id FROM sync_mutations'\ncomparison='above'\nlimit=1\n",
    );
    let many = rows.sample(&ctx).await;
    assert!(
        matches!(&many, Sample::Error { message } if message.contains("returned 7 rows")),
        "{many:?}"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .unwrap();
    let _ = conn.disconnect().await;
}

/// The built-in runbook's `panel-sync-backlog`, configured with the
/// database and a limit: a watch of the backlog query that alerts (without
/// rolling back) once pending rows pass the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_backlog_panel_alerts_when_pending_rows_pass_the_project_limit() {
    use escola_runbook_checks::escola::{EscolaConfig, runbook};
    use escola_runbook_core::StepKind;
    let Some(mut conn) = mariadb().await else {
        return;
    };
    let db = backlog_db(
        &mut conn,
        "panel",
        "('pending'), ('pending'), ('pending'), ('done')",
    )
    .await;
    let mut config = EscolaConfig {
        database_secret: Some("database_url".into()),
        ..EscolaConfig::default()
    };
    config.watch.interval = Duration::from_millis(200);
    config.watch.duration = Duration::from_secs(1);
    config.watch.alert_for = Duration::ZERO;
    let ctx = ctx(
        Environment::new("t"),
        &[("database_url", format!("{ROOT}/{db}"))],
    );
    let run_panel = |limit: u64| {
        let mut config = config.clone();
        config.watch.backlog_limit = Some(limit);
        let rb = runbook(&config).unwrap();
        let step = rb
            .phases()
            .iter()
            .flat_map(|p| &p.steps)
            .find(|s| s.id == "panel-sync-backlog")
            .cloned()
            .unwrap();
        let ctx = ctx.clone();
        async move {
            match &step.kind {
                StepKind::Check(check) => check.run(&ctx).await,
                StepKind::Manual { .. } => panic!("panel-sync-backlog stayed manual"),
            }
        }
    };
    let held = run_panel(3).await;
    assert_eq!(held.status, Status::Passed, "{held:?}");
    let alerted = run_panel(2).await;
    assert_eq!(alerted.status, Status::Warned, "{alerted:?}");
    assert!(
        alerted
            .summary
            .contains("alerts fired without rolling back")
            && alerted.summary.contains("sync-backlog"),
        "{}",
        alerted.summary
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .unwrap();
    let _ = conn.disconnect().await;
}

#[tokio::test]
async fn latency_and_error_rules_read_families_the_app_names_otherwise() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Micrometer's names: one histogram whose `_count` counts requests, the
    // status in `status`... here in `code`, to show the label is the rule's.
    let reads = Arc::new(AtomicU64::new(0));
    let seen = reads.clone();
    let app = serve(move |_| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        let (ok, bad) = (100 * n, 2 + 10 * (n - 1));
        Response::metrics(format!(
            "# TYPE http_server_requests_seconds histogram\n\
             http_server_requests_seconds_bucket{{code=\"200\",le=\"0.1\"}} {}\n\
             http_server_requests_seconds_bucket{{code=\"200\",le=\"1\"}} {ok}\n\
             http_server_requests_seconds_bucket{{code=\"200\",le=\"+Inf\"}} {ok}\n\
             http_server_requests_seconds_count{{code=\"200\"}} {ok}\n\
             http_server_requests_seconds_bucket{{code=\"500\",le=\"0.1\"}} 0\n\
             http_server_requests_seconds_bucket{{code=\"500\",le=\"1\"}} {bad}\n\
             http_server_requests_seconds_bucket{{code=\"500\",le=\"+Inf\"}} {bad}\n\
             http_server_requests_seconds_count{{code=\"500\"}} {bad}\n",
            ok / 2
        ))
    });
    let ctx = ctx(
        Environment::new("t").with("metrics_url", app.url("/metrics")),
        &[("metrics_token", "t".into())],
    );
    let errors = probe(
        "[[rules]]\nid='e'\nmeasure='error_percent'\ncounter='http_server_requests_seconds_count'\nstatus_label='code'\nwindow='0'\nmin_requests=1\ncomparison='above'\nlimit=5\n",
    );
    assert!(matches!(errors.sample(&ctx).await, Sample::NoData { .. }));
    // Between the reads: 100 requests answered 200, 10 answered 500.
    assert_eq!(value(&errors.sample(&ctx).await), 100.0 * 10.0 / 110.0);
    let median = probe(
        "[[rules]]\nid='p'\nmeasure='quantile'\nquantile=0.5\nhistogram='http_server_requests_seconds'\nwindow='0'\nmin_requests=1\ncomparison='above'\nlimit=2\n",
    );
    assert!(matches!(median.sample(&ctx).await, Sample::NoData { .. }));
    // The same 110 requests: 50 within 0.1 s, 60 more within 1 s; rank 55.
    let got = value(&median.sample(&ctx).await);
    assert!((got - (0.1 + 0.9 * 5.0 / 60.0)).abs() < 1e-9, "{got}");
    assert_eq!(reads.load(Ordering::SeqCst), 4);
}
