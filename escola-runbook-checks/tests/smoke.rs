//! The smoke check against the simulator: healthy, and with each fault
//! switch, asserting the exact failure reported.

use std::path::PathBuf;
use std::time::Duration;

/// `KEY=VALUE` pairs as the catalog takes them.
fn pairs<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    items
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
use escola_runbook_checks::escola::data::smoke_suite;
use escola_runbook_checks::smoke::{
    self, Expect, IfMatchTest, Request, SmokeCheck, SmokeError, SmokeOptions, SmokeReport, Suite,
    postman, run_suite,
};
use escola_runbook_core::{Check, Ctx, Environment, Outcome, Secret, Secrets, Status};
use escola_runbook_testkit::{SCRATCH_ESCOLA_ID, Simulator, SimulatorConfig};

async fn sim() -> Simulator {
    Simulator::start(SimulatorConfig::default()).await.unwrap()
}

fn ctx(base_url: &str) -> Ctx {
    Ctx::standalone(
        Environment::new("test").with("base_url", base_url),
        Secrets::new(),
    )
}

fn options(sim: &Simulator) -> SmokeOptions {
    SmokeOptions {
        base_url: Some(sim.base_url()),
        concurrency: 1,
        ..SmokeOptions::default()
    }
}

fn evidence<'a>(o: &'a Outcome, label: &str) -> &'a str {
    o.evidence
        .iter()
        .find(|e| e.label == label)
        .map(|e| e.value.as_str())
        .unwrap_or_else(|| panic!("no evidence {label:?} in {o:#?}"))
}

/// The built-in suite as a step, one request at a time (so failures come
/// in suite order).
async fn run_escola(sim: &Simulator) -> Outcome {
    SmokeCheck::escola()
        .concurrency(1)
        .run(&ctx(&sim.base_url()))
        .await
}

/// Failure `n`'s evidence names the request, what was expected, what came
/// back and the response's 32-hex Trace-Id.
fn assert_failure(o: &Outcome, n: usize, request: &str, expected: &str, got: &str) {
    let text = evidence(o, &format!("failure {n}"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], [request, expected, got], "{text}");
    let trace = lines[3].strip_prefix("Trace-Id: ").unwrap();
    assert_eq!(trace.len(), 32, "{trace}");
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A suite that also writes (to the scratch escola only).
fn writing_suite(sim: &Simulator) -> Suite {
    Suite {
        allow_writes: true,
        if_match: Some(IfMatchTest {
            path: "/v1/escolas/1".into(),
            refused_writes: false,
            scratch_path: Some(sim.scratch_path()),
        }),
        ..smoke_suite()
    }
}

/// Escola 1 as the simulator seeds it.
fn escola_1() -> serde_json::Value {
    serde_json::json!({ "id": 1, "nome": "EMEF Paulo Freire", "cidade_id": 1 })
}

#[tokio::test]
async fn a_healthy_target_passes_the_escola_suite() {
    let sim = sim().await;
    let check = SmokeCheck::escola();
    let described = check.describe();
    assert!(!described.mutates, "the default suite changes no data");
    assert_eq!(
        described.action.as_deref(),
        Some(
            "send 6 read-only requests to the environment's base_url and 2 PUTs of /v1/escolas/1's own body (as read) that a correct API refuses"
        )
    );
    let o = check.run(&ctx(&sim.base_url())).await;
    assert_eq!(o.status, Status::Passed, "{o:#?}");
    // 4 requests + 2 If-Match reads + the 2 refused writes; the 404, 412
    // and 428 carry their Trace-Id.
    assert!(
        o.summary
            .starts_with("20 of 20 assertions passed in 8 requests to http://127.0.0.1:"),
        "{}",
        o.summary
    );
    assert_eq!(
        evidence(&o, "counts"),
        "8 requests (8 answered); assertions: 20 passed, 0 failed, 0 not evaluated"
    );
    let text = sim.metrics_text();
    for status in ["412", "428"] {
        let line = format!(
            "http_requests_total{{method=\"PUT\",route=\"/v1/escolas/{{id}}\",status=\"{status}\"}} 1\n"
        );
        assert!(text.contains(&line), "{line} in {text}");
    }
    // Refused, so nothing was written.
    let stored = sim.stored_escola(1).unwrap();
    assert_eq!((stored.writes, stored.json), (0, escola_1()));
    sim.shutdown().await;
}

#[tokio::test]
async fn errors_fail_with_request_expected_got_and_trace_id() {
    let sim = sim().await;
    sim.faults().set_error_rate(1.0);
    let o = run_escola(&sim).await;
    assert_eq!(o.status, Status::Failed, "{o:#?}");
    let base = sim.base_url();
    assert_failure(
        &o,
        1,
        &format!("request: GET {base}/health [health]"),
        "expected: 200",
        "got: 500",
    );
    assert!(
        o.summary
            .contains(&format!("GET {base}/health: expected 200, got 500")),
        "{}",
        o.summary
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_trace_id_on_errors_is_a_failure() {
    let sim = sim().await;
    sim.faults().set_drop_trace_id_on_errors(true);
    let report = run_suite(&smoke_suite(), &options(&sim)).await.unwrap();
    assert_eq!(report.status, Status::Failed, "{}", report.render_text());
    let failures = report.failures();
    // The 404 probe and the two refused writes (412, 428).
    let names: Vec<&str> = failures.iter().map(|f| f.request.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "unknown escola gives 404",
            "If-Match: stale tag is refused",
            "If-Match: missing tag is refused"
        ],
        "{}",
        report.render_text()
    );
    assert_eq!(failures[0].expected, "header Trace-Id on a 404 response");
    assert_eq!(failures[2].expected, "header Trace-Id on a 428 response");
    assert_eq!(failures[0].got, "no such header");
    assert!(
        failures[0]
            .evidence()
            .ends_with("Trace-Id: none in the response")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_target_that_is_down_is_a_check_error_not_a_failure() {
    let sim = sim().await;
    sim.faults().set_down(true).await.unwrap();
    let o = SmokeCheck::escola().run(&ctx(&sim.base_url())).await;
    assert_eq!(o.status, Status::CheckError, "{o:#?}");
    // The four requests, then the first If-Match read (the round trip stops
    // at the first request without an answer).
    assert_eq!(
        o.summary,
        format!(
            "{} did not answer any of 5 requests (within 10s each): cannot connect: client error (Connect): tcp connect error: Connection refused (os error 111)",
            sim.base_url()
        )
    );
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn added_latency_breaks_the_latency_bound_and_the_timeout() {
    let sim = sim().await;
    sim.faults().set_latency(Duration::from_millis(2500));
    let report = run_suite(&smoke_suite(), &options(&sim)).await.unwrap();
    assert_eq!(report.status, Status::Failed);
    let slow: Vec<_> = report
        .failures()
        .into_iter()
        .map(|f| (f.request.name.clone(), f.expected, f.got))
        .collect();
    assert_eq!(
        slow,
        [
            (
                "cidades".to_owned(),
                "below 2000ms".to_owned(),
                "2500ms".to_owned()
            ),
            (
                "escolas".to_owned(),
                "below 2000ms".to_owned(),
                "2500ms".to_owned()
            ),
        ]
    );
    // Slower than the per-request timeout: no answer at all.
    sim.faults().set_latency(Duration::from_secs(30));
    let o = SmokeCheck::escola()
        .timeout(Duration::from_secs(5))
        .run(&ctx(&sim.base_url()))
        .await;
    assert_eq!(o.status, Status::CheckError, "{o:#?}");
    assert!(o.summary.contains("no answer within 5s"), "{}", o.summary);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_escola_suite_catches_an_ignored_if_match_and_changes_no_data() {
    let sim = sim().await;
    sim.faults().set_ignore_if_match(true);
    let o = run_escola(&sim).await;
    assert_eq!(o.status, Status::Failed, "{o:#?}");
    let base = sim.base_url();
    assert!(
        o.summary.starts_with(&format!(
            "2 of 18 checks failed against {base}: PUT {base}/v1/escolas/1: expected 412 Precondition Failed for a stale If-Match, got 200; PUT {base}/v1/escolas/1: expected 428 Precondition Required without If-Match, got 200"
        )),
        "{}",
        o.summary
    );
    for (n, name, expected) in [
        (
            1,
            "If-Match: stale tag is refused",
            "412 Precondition Failed for a stale If-Match",
        ),
        (
            2,
            "If-Match: missing tag is refused",
            "428 Precondition Required without If-Match",
        ),
    ] {
        assert_failure(
            &o,
            n,
            &format!("request: PUT {base}/v1/escolas/1 [{name}]"),
            &format!("expected: {expected}"),
            "got: 200",
        );
    }
    // Both writes went through, and stored what escola 1 already held.
    let stored = sim.stored_escola(1).unwrap();
    assert_eq!(stored.writes, 2);
    assert_eq!(stored.json, escola_1());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_suite_file_sends_the_refused_writes_only_when_it_asks() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"reads\"\n[if_match]\npath = \"/v1/escolas/2\"\n",
    )
    .unwrap();
    let reads = Suite::load(&file).unwrap();
    let report = run_suite(&reads, &options(&sim)).await.unwrap();
    assert_eq!(report.status, Status::Passed, "{}", report.render_text());
    assert_eq!(report.counts.requests, 2);
    assert!(!sim.metrics_text().contains("method=\"PUT\""));

    let asks = Suite {
        if_match: Some(IfMatchTest {
            refused_writes: true,
            ..reads.if_match.clone().unwrap()
        }),
        ..reads
    };
    let report = run_suite(&asks, &options(&sim)).await.unwrap();
    assert_eq!(report.status, Status::Passed, "{}", report.render_text());
    let puts: Vec<(&str, &str)> = report
        .results
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| (r.name.as_str(), r.url.as_str()))
        .collect();
    let url = format!("{}/v1/escolas/2", sim.base_url());
    assert_eq!(
        puts,
        [
            ("If-Match: stale tag is refused", url.as_str()),
            ("If-Match: missing tag is refused", url.as_str())
        ]
    );
    assert_eq!(sim.stored_escola(2).unwrap().writes, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn if_match_round_trip_catches_an_ignored_if_match() {
    let sim = sim().await;
    let healthy = run_suite(&writing_suite(&sim), &options(&sim))
        .await
        .unwrap();
    assert_eq!(healthy.status, Status::Passed, "{}", healthy.render_text());
    let names: Vec<&str> = healthy.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        &names[4..],
        [
            "If-Match: read ETag",
            "If-Match: ETag is stable",
            "If-Match: read scratch ETag",
            "If-Match: stale tag is refused",
            "If-Match: missing tag is refused",
            "If-Match: current tag is accepted"
        ]
    );
    let check = SmokeCheck::new(writing_suite(&sim));
    assert!(check.describe().mutates, "a writing suite is an action");

    sim.faults().set_ignore_if_match(true);
    let report = run_suite(&writing_suite(&sim), &options(&sim))
        .await
        .unwrap();
    assert_eq!(report.status, Status::Failed);
    let failures: Vec<_> = report
        .failures()
        .into_iter()
        .map(|f| format!("{}: expected {}, got {}", f.request.name, f.expected, f.got))
        .collect();
    assert_eq!(
        failures,
        [
            "If-Match: stale tag is refused: expected 412 Precondition Failed for a stale If-Match, got 200",
            "If-Match: missing tag is refused: expected 428 Precondition Required without If-Match, got 200",
        ]
    );
    // Writes went to the scratch escola only: one healthy round trip, then
    // three accepted writes.
    assert_eq!(sim.stored_escola(1).unwrap().writes, 0);
    assert_eq!(sim.stored_escola(SCRATCH_ESCOLA_ID).unwrap().writes, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_metrics_auth_fails_and_the_token_never_shows() {
    let sim = sim().await;
    let mut suite = smoke_suite();
    suite.requests.push(
        Request::get("metrics", "/metrics")
            .header("Authorization", "Bearer {{metrics_token}}")
            .expect(Expect::Status(200)),
    );
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new(sim.metrics_token()));
    let ctx = Ctx::standalone(
        Environment::new("t").with("base_url", sim.base_url()),
        secrets,
    );
    // The token comes from the run's secrets, named by the placeholder.
    let check = SmokeCheck::new(suite);
    assert_eq!(check.run(&ctx).await.status, Status::Passed);

    sim.faults().set_wrong_metrics_auth(true);
    let o = check.run(&ctx).await;
    assert_eq!(o.status, Status::Failed, "{o:#?}");
    let f = evidence(&o, "failure 1");
    assert!(
        f.contains("[metrics]") && f.contains("expected: 200\ngot: 401"),
        "{f}"
    );
    let all = serde_json::to_string(&o).unwrap();
    assert!(!all.contains(sim.metrics_token()), "token leaked: {all}");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limiting_shows_as_429_failures() {
    let sim = Simulator::start(SimulatorConfig::rate_limited(2, Duration::from_secs(60)))
        .await
        .unwrap();
    let report = run_suite(&smoke_suite(), &options(&sim)).await.unwrap();
    assert_eq!(report.status, Status::Failed);
    let got_429 = report.failures().iter().filter(|f| f.got == "429").count();
    // cidades and escolas pass; the 404 probe and both If-Match reads get 429.
    assert_eq!(got_429, 3, "{}", report.render_text());
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_limited() {
    let sim = sim().await;
    sim.faults().set_latency(Duration::from_secs(1));
    let suite = Suite {
        name: "eight".into(),
        requests: (0..8)
            .map(|i| Request::get(format!("r{i}"), "/health").expect(Expect::Status(200)))
            .collect(),
        if_match: None,
        ..smoke_suite()
    };
    let run = |n| {
        let opts = SmokeOptions {
            concurrency: n,
            ..options(&sim)
        };
        let suite = suite.clone();
        async move { run_suite(&suite, &opts).await.unwrap() }
    };
    // Virtual time: 8 requests of 1s each take 2 waves at 4, 8 at 1.
    let four = run(4).await;
    assert_eq!(four.status, Status::Passed);
    assert!(
        (2000.0..3000.0).contains(&four.duration_ms),
        "{}",
        four.duration_ms
    );
    let one = run(1).await;
    assert!(
        (8000.0..9000.0).contains(&one.duration_ms),
        "{}",
        one.duration_ms
    );
    // Results keep suite order whatever the completion order.
    let names: Vec<_> = four.results.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, (0..8).map(|i| format!("r{i}")).collect::<Vec<_>>());
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let sim = sim().await;
    let mut suite = smoke_suite();
    suite.requests.push(Request::get("x", "/v1/escolas/{{id}}"));
    let err = run_suite(&suite, &options(&sim)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "request `x`: {{id}} in its url is not defined: give the variable a value (or define it in the suite)"
    );
    let no_base = SmokeOptions::default();
    let err = run_suite(&smoke_suite(), &no_base).await.unwrap_err();
    assert!(matches!(&err, SmokeError::NoBaseUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("no base URL was given"), "{err}");
    let writes = Suite {
        allow_writes: true,
        ..smoke_suite()
    };
    let err = run_suite(&writes, &options(&sim)).await.unwrap_err();
    assert!(err.to_string().contains("scratch"), "{err}");
    assert_eq!(sim.requests_served(), 0);
    // As a step, no base URL at all is a check error naming the setting.
    let o = SmokeCheck::escola()
        .run(&Ctx::standalone(Environment::new("t"), Secrets::new()))
        .await;
    assert_eq!(o.status, Status::CheckError);
    assert!(o.summary.contains("no base URL was given"), "{}", o.summary);
    assert!(
        matches!(&o.needs[..], [escola_runbook_core::Need::Setting { name, .. }] if name == "base_url"),
        "{:?}",
        o.needs
    );
    sim.shutdown().await;
}

#[test]
fn the_collection_imports_folders_url_forms_variables_and_scripts() {
    let suite = postman::load(&data("escola.postman_collection.json")).unwrap();
    assert_eq!(suite.name, "Escola Connect API — smoke");
    assert_eq!(suite.variables["baseUrl"], "https://api.escola.example.org");
    assert!(!suite.variables.contains_key("unused"));
    let rows: Vec<(String, &str, &str)> = suite
        .requests
        .iter()
        .map(|r| (r.display_name(), r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("Health".to_owned(), "GET", "{{baseUrl}}/health"),
            (
                "Catálogo / Cidades".to_owned(),
                "GET",
                "{{baseUrl}}/v1/cidades"
            ),
            (
                "Catálogo / Escolas / Listar escolas".to_owned(),
                "GET",
                "{{baseUrl}}/v1/escolas?cidade_id=1"
            ),
            (
                "Catálogo / Escolas / Escola por id".to_owned(),
                "GET",
                "{{baseUrl}}/v1/escolas/{{escolaId}}"
            ),
            (
                "Catálogo / Escolas / Escola inexistente".to_owned(),
                "GET",
                "{{baseUrl}}/v1/escolas/0"
            ),
        ]
    );
    let cidades = &suite.requests[1];
    assert_eq!(cidades.headers.len(), 1, "disabled header left out");
    assert_eq!(
        cidades.expect,
        [
            Expect::MaxLatencyMs(2000),
            Expect::Status(200),
            Expect::HeaderPresent("Trace-Id".into()),
            Expect::NotEvaluated {
                name: "lists cidades".into(),
                script: "pm.test(\"lists cidades\", function () {\nconst body = pm.response.json();\npm.expect(body.data).to.be.an('array').that.is.not.empty;\n});".into()
            },
        ]
    );
    let ne: Vec<&str> = suite.not_evaluated().map(|(_, n)| n).collect();
    assert_eq!(
        ne,
        [
            "lists cidades",
            "pre-request script of `Escola por id`",
            "script line `pm.environment.set(\"etag\", pm.response.headers.get(\"ETag\"));`"
        ]
    );
}

#[tokio::test]
async fn the_collection_runs_against_the_simulator_with_base_url_overridden() {
    let sim = sim().await;
    let suite = postman::load(&data("escola.postman_collection.json")).unwrap();
    let report = run_suite(&suite, &options(&sim)).await.unwrap();
    // Everything evaluated passed; three untranslated pieces are named.
    assert_eq!(report.status, Status::Warned, "{}", report.render_text());
    assert_eq!(report.counts.failed, 0);
    assert_eq!(report.counts.not_evaluated, 3);
    assert!(
        report
            .summary
            .contains("3 not evaluated: `Catálogo / Cidades: lists cidades`"),
        "{}",
        report.summary
    );
    assert!(
        report
            .results
            .iter()
            .all(|r| r.url.starts_with(&sim.base_url()))
    );

    // --var beats the collection and the base URL.
    let mut opts = options(&sim);
    opts.vars.insert("escolaId".into(), "3".into());
    let report = run_suite(&suite, &opts).await.unwrap();
    assert!(report.results[3].url.ends_with("/v1/escolas/3"));

    // A collection whose only assertions are unevaluated does not pass.
    let only = postman::load(&data("only-scripts.postman_collection.json")).unwrap();
    let report = run_suite(&only, &options(&sim)).await.unwrap();
    assert_eq!(report.status, Status::NoData, "{}", report.render_text());
    assert!(
        report.summary.contains("`Health: status is ok`"),
        "{}",
        report.summary
    );
    sim.shutdown().await;
}

fn stable(report: &mut SmokeReport, base: &str) {
    report.duration_ms = 0.0;
    for r in &mut report.results {
        r.latency_ms = 0.0;
    }
    report.base_url = Some("http://sim".into());
    for r in &mut report.results {
        r.url = r.url.replace(base, "http://sim");
    }
    report.summary = report.summary.replace(base, "http://sim");
}

#[tokio::test]
async fn reports_render_for_people_tools_and_ci() {
    let sim = sim().await;
    sim.faults().set_error_rate(0.5);
    let suite = postman::load(&data("escola.postman_collection.json")).unwrap();
    let mut report = run_suite(&suite, &options(&sim)).await.unwrap();
    stable(&mut report, &sim.base_url());
    insta::assert_snapshot!("text", report.render_text());
    insta::assert_snapshot!("junit", report.render_junit().unwrap());
    let json: serde_json::Value = serde_json::from_str(&report.render_json().unwrap()).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["counts"]["not_evaluated"], 3);
    assert_eq!(json["results"].as_array().unwrap().len(), 5);
    sim.shutdown().await;
}

#[test]
fn the_registry_builds_smoke_and_params_round_trip() {
    let catalog = escola_runbook_checks::catalog();
    let spec = catalog.find("smoke").unwrap();
    let collection = data("escola.postman_collection.json");
    let params = pairs([
        ("collection", collection.to_str().unwrap()),
        ("var", "escolaId=2,token=abc"),
        ("concurrency", "8"),
        ("timeout", "3s"),
    ]);
    let check = spec.build_from_pairs(&params).unwrap();
    let p = check.params().unwrap();
    assert_eq!(p.check, "smoke");
    assert_eq!(p.params["collection"], collection.to_str().unwrap());
    // Typed: the list is a list, the number a number, the span exact.
    assert_eq!(
        p.params["var"],
        serde_json::json!(["escolaId=2", "token=abc"])
    );
    assert_eq!(p.params["concurrency"], 8);
    assert_eq!(p.params["timeout"], "3s");
    let again = spec.build(p.params.clone()).unwrap().params().unwrap();
    assert_eq!(again, p);
    assert_eq!(
        smoke::SmokeCheck::escola().params().unwrap().params["suite"],
        "escola"
    );
    let err = spec
        .build_from_pairs(&pairs([("collection", "/nonexistent.json")]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("check `smoke`, parameter `collection` cannot be used: cannot read Postman collection /nonexistent.json"),
        "{err}"
    );
    let err = spec
        .build_from_pairs(&pairs([("concurrency", "0")]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("at least 1"), "{err}");
}

#[tokio::test]
async fn a_collection_chains_a_captured_id_and_judges_the_body() {
    let sim = sim().await;
    let suite = postman::load(&data("chained.postman_collection.json")).unwrap();
    // Concurrency is asked for, but a capturing suite runs in order.
    let report = run_suite(
        &suite,
        &SmokeOptions {
            concurrency: 8,
            ..options(&sim)
        },
    )
    .await
    .unwrap();
    let text = report.render_text();
    assert_eq!(report.status, Status::Failed, "{text}");
    let [listed, captured, never] = &report.results[..] else {
        panic!("{text}")
    };
    // Every body assertion of the first request holds; the id is captured,
    // the absent `diretor` is a failure of its own.
    let failed: Vec<&str> = listed
        .assertions
        .iter()
        .filter(|a| a.verdict != smoke::AssertionVerdict::Passed)
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(failed, ["capture {{missing}}"], "{text}");
    assert_eq!(listed.assertions.len(), 8, "{text}");
    // The second request went to the captured id; its `cidade_id` is 2, not
    // above 5, and that is the one failure, with what came back.
    assert!(captured.url.ends_with("/v1/escolas/2"), "{text}");
    let bad: Vec<(&str, &str)> = captured
        .assertions
        .iter()
        .filter(|a| a.verdict != smoke::AssertionVerdict::Passed)
        .map(|a| (a.expected.as_str(), a.got.as_str()))
        .collect();
    assert_eq!(bad, [("/cidade_id > 5", "/cidade_id = 2")], "{text}");
    // The third needs what was not captured: it is not sent.
    assert_eq!(never.status, None);
    assert_eq!(
        never.error.as_deref(),
        Some("not sent: {{missing}} was not captured by `Escolas`"),
        "{text}"
    );
    assert_eq!(sim.requests_served(), 2, "the third request is not sent");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_figure_with_no_bound_is_refused_before_anything_is_sent() {
    let sim = sim().await;
    let suite = Suite {
        requests: vec![
            Request::get("total", "/v1/escolas").expect(Expect::JsonNumber(smoke::Bounds {
                pointer: "/total".into(),
                ..Default::default()
            })),
        ],
        ..smoke_suite()
    };
    let err = run_suite(&suite, &options(&sim)).await.unwrap_err();
    assert!(
        matches!(&err, SmokeError::NoBounds { request, pointer } if request == "total" && pointer == "/total"),
        "{err}"
    );
    assert_eq!(sim.requests_served(), 0);
    sim.shutdown().await;
}
