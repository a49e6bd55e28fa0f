//! The simulator as an HTTP client sees it: every endpoint, every fault
//! switch, and metrics that count what was served.

use std::time::Duration;

use escola_runbook_testkit::{SCRATCH_ESCOLA_ID, Simulator, SimulatorConfig};
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start() -> Simulator {
    Simulator::start(SimulatorConfig::default()).await.unwrap()
}

#[tokio::test]
async fn serves_the_endpoints_with_a_trace_id_everywhere() {
    let sim = start().await;
    let c = client();
    let base = sim.base_url();
    for (path, status) in [
        ("/health", 200),
        ("/v1/cidades", 200),
        ("/v1/escolas", 200),
        ("/v1/escolas/1", 200),
        ("/v1/escolas/404", 404),
        ("/nope", 404),
        ("/metrics", 401),
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let trace = r.headers().get("trace-id").unwrap().to_str().unwrap();
        assert_eq!(trace.len(), 32, "{path}: {trace}");
    }
    let text = c
        .get(format!("{base}/v1/escolas?cidade_id=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["total"], 1);
    assert_eq!(body["data"][0]["nome"], "EE Anísio Teixeira");
    sim.shutdown().await;
}

#[tokio::test]
async fn trace_ids_repeat_with_the_seed() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let sim = start().await;
        let r = client()
            .get(format!("{}/health", sim.base_url()))
            .send()
            .await
            .unwrap();
        ids.push(r.headers()["trace-id"].to_str().unwrap().to_owned());
        sim.shutdown().await;
    }
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn if_match_is_enforced_and_can_be_ignored() {
    let sim = start().await;
    let c = client();
    let url = format!("{}{}", sim.base_url(), sim.scratch_path());
    let r = c.get(&url).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"v1\"");
    let body = r#"{"nome":"Escola de Teste (smoke)"}"#;
    let put = |tag: Option<&str>| {
        let mut b = c.put(&url).body(body);
        if let Some(t) = tag {
            b = b.header("If-Match", t);
        }
        b.send()
    };
    assert_eq!(
        put(None).await.unwrap().status(),
        StatusCode::PRECONDITION_REQUIRED
    );
    assert_eq!(
        put(Some("\"v0\"")).await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    let ok = put(Some(&etag)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["etag"], "\"v2\"");
    // The old tag is stale now.
    assert_eq!(
        put(Some(&etag)).await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    // Refused writes stored nothing: one accepted write so far.
    let stored = sim.stored_escola(SCRATCH_ESCOLA_ID).unwrap();
    assert_eq!((stored.etag.as_str(), stored.writes), ("\"v2\"", 1));

    sim.faults().set_ignore_if_match(true);
    let changed = r#"{"nome":"Escola sobrescrita"}"#;
    let r = c
        .put(&url)
        .header("If-Match", "\"v0\"")
        .body(changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"v3\"");
    assert_eq!(
        sim.stored_escola(SCRATCH_ESCOLA_ID).unwrap().json["nome"],
        "Escola sobrescrita"
    );
    assert_eq!(put(None).await.unwrap().status(), StatusCode::OK);
    // Both were really written: the stale one overwrote the name (the lost
    // update), the untagged one wrote it back.
    let stored = sim.stored_escola(SCRATCH_ESCOLA_ID).unwrap();
    assert_eq!(stored.writes, 3);
    assert_eq!(stored.etag, "\"v4\"");
    assert_eq!(
        stored.json,
        serde_json::json!({ "id": SCRATCH_ESCOLA_ID, "nome": "Escola de Teste (smoke)", "cidade_id": 1 })
    );
    assert_eq!(sim.stored_escola(0), None);
    sim.shutdown().await;
}

#[tokio::test]
async fn error_rate_is_exact_and_trace_ids_can_be_dropped() {
    let sim = start().await;
    let c = client();
    sim.faults().set_error_rate(0.25);
    let mut errors = 0;
    for _ in 0..20 {
        let r = c
            .get(format!("{}/v1/cidades", sim.base_url()))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::INTERNAL_SERVER_ERROR {
            errors += 1;
            assert!(r.headers().contains_key("trace-id"));
        }
    }
    assert_eq!(errors, 5);
    sim.faults().set_error_rate(1.0);
    sim.faults().set_drop_trace_id_on_errors(true);
    let r = c
        .get(format!("{}/health", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!r.headers().contains_key("trace-id"));
    // Metrics stay reachable and keep their Trace-Id (a 200).
    let m = c
        .get(format!("{}/metrics", sim.base_url()))
        .bearer_auth(sim.metrics_token())
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    assert!(m.headers().contains_key("trace-id"));
    let text = m.text().await.unwrap();
    assert!(
        text.contains(
            "http_requests_total{method=\"GET\",route=\"/v1/cidades\",status=\"500\"} 5\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "http_requests_total{method=\"GET\",route=\"/v1/cidades\",status=\"200\"} 15\n"
        )
    );
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/health\",status=\"500\"} 1\n")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn metrics_need_the_token_and_count_what_was_served() {
    let sim = start().await;
    let c = client();
    let metrics = format!("{}/metrics", sim.base_url());
    assert_eq!(
        c.get(&metrics).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.get(&metrics)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    for _ in 0..3 {
        c.get(format!("{}/v1/escolas", sim.base_url()))
            .send()
            .await
            .unwrap();
    }
    let r = c
        .get(&metrics)
        .bearer_auth(sim.metrics_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "http_requests_total{method=\"GET\",route=\"/v1/escolas\",status=\"200\"} 3\n"
        )
    );
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"} 2\n")
    );
    assert!(text.contains(
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/escolas\",le=\"+Inf\"} 3\n"
    ));
    assert!(text.contains("le=\"1\"") && text.contains("le=\"2.5\""));
    // 3 + 2 rejected scrapes + the one that rendered (counted after rendering).
    assert_eq!(sim.requests_served(), 6);

    sim.faults().set_wrong_metrics_auth(true);
    assert_eq!(
        c.get(&metrics)
            .bearer_auth(sim.metrics_token())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sim = Simulator::start(SimulatorConfig::rate_limited(2, Duration::from_secs(60)))
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/v1/escolas", sim.base_url());
    let codes: Vec<u16> = futures_codes(&c, &url, 4).await;
    assert_eq!(codes, [200, 200, 429, 429]);
    let r = c.get(&url).send().await.unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.headers().contains_key("trace-id"));
    // /health is not rate limited.
    let h = c
        .get(format!("{}/health", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    sim.faults().set_rate_limit(None);
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    sim.shutdown().await;
}

async fn futures_codes(c: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.get(url).send().await.unwrap().status().as_u16());
    }
    out
}

#[tokio::test]
async fn down_refuses_connections_and_up_restores_the_same_port() {
    let sim = start().await;
    let c = client();
    let url = format!("{}/health", sim.base_url());
    assert!(c.get(&url).send().await.unwrap().status().is_success());
    sim.faults().set_down(true).await.unwrap();
    let err = c.get(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    sim.faults().set_down(false).await.unwrap();
    assert!(c.get(&url).send().await.unwrap().status().is_success());
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn added_latency_is_served_and_measured() {
    let sim = start().await;
    sim.faults().set_latency(Duration::from_millis(1500));
    let c = client();
    let r = c
        .get(format!("{}/v1/cidades", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = sim.metrics_text();
    let bucket = |le: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "http_request_duration_seconds_bucket{{method=\"GET\",route=\"/v1/cidades\",le=\"{le}\"}}"
                ))
            })
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(bucket("1"), "0");
    assert_eq!(bucket("2.5"), "1");
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_by_name() {
    let sim = start().await;
    for name in escola_runbook_testkit::FAULT_NAMES {
        sim.faults().apply_named(name).await.unwrap();
    }
    assert_eq!(sim.faults().error_rate(), 1.0);
    assert_eq!(sim.faults().latency(), Duration::from_millis(2500));
    let err = client()
        .get(format!("{}/health", sim.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "down: {err:?}");
    let err = sim
        .faults()
        .apply_named("eror")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no fault is called `eror`; choose one of: errors, slow"),
        "{err}"
    );
    sim.faults().reset().await.unwrap();
    assert_eq!(sim.faults().error_rate(), 0.0);
    sim.shutdown().await;
}
