//! `escola-runbook smoke` against its peer, Newman (the runbook's
//! "Postman/Newman"), on the same Postman collection against the same
//! in-process simulator: wall time per run (criterion) and peak RSS (from
//! `wait4`), for 1 and 200 requests. Both run as processes, as a CI job
//! would run them.
//!
//! Needs the release binary (built on first use with `cargo build --release
//! -p escola-runbook-cli`, or given as `ESCOLA_RUNBOOK_BIN`) and Newman
//! (`NEWMAN_BIN`, `target/newman/node_modules/.bin/newman`, or `newman` on
//! PATH; install with `npm install --prefix target/newman newman@6`). Without
//! Newman only our side runs, and the bench says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use escola_runbook_testkit::{BackgroundSimulator, SimulatorConfig};
use support::{ours, run};

mod support;

fn collection(n: usize) -> serde_json::Value {
    let paths = ["/health", "/v1/cidades", "/v1/escolas", "/v1/escolas/1"];
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("request {i}"),
                "request": { "method": "GET", "url": format!("{{{{baseUrl}}}}{}", paths[i % paths.len()]) },
                "event": [{ "listen": "test", "script": { "exec": [
                    "pm.test(\"Status code is 200\", function () {",
                    "    pm.response.to.have.status(200);",
                    "});",
                    "pm.response.to.have.header(\"Trace-Id\");"
                ]}}]
            })
        })
        .collect();
    serde_json::json!({
        "info": { "name": format!("bench {n}"), "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json" },
        "variable": [{ "key": "baseUrl", "value": "http://example.invalid" }],
        "item": items
    })
}

fn newman() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("NEWMAN_BIN") {
        return Some(PathBuf::from(bin));
    }
    let local =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/newman/node_modules/.bin/newman");
    if local.is_file() {
        return Some(local);
    }
    Command::new("newman")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| PathBuf::from("newman"))
}

fn bench(c: &mut Criterion) {
    let sim = BackgroundSimulator::start(SimulatorConfig {
        rate_limit: None,
        ..SimulatorConfig::default()
    })
    .expect("simulator");
    let base = sim.base_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = ours();
    let newman = newman();
    if newman.is_none() {
        eprintln!(
            "newman not found (NEWMAN_BIN, target/newman, PATH): only escola-runbook runs; install it with `npm install --prefix target/newman newman@6`"
        );
    }
    for n in [1usize, 200] {
        let file = dir.path().join(format!("c{n}.json"));
        std::fs::write(&file, collection(n).to_string()).expect("write collection");
        let file = file.to_str().expect("utf-8 path").to_owned();
        let ours_cmd = |concurrency: &str| {
            let mut cmd = Command::new(&ours);
            cmd.args([
                "smoke",
                "--base-url",
                &base,
                "--collection",
                &file,
                "--concurrency",
                concurrency,
            ]);
            cmd
        };
        let newman_cmd = |bin: &Path| {
            let mut cmd = Command::new(bin);
            cmd.args([
                "run",
                &file,
                "--env-var",
                &format!("baseUrl={base}"),
                "--reporters",
                "cli",
                "--color",
                "off",
            ]);
            cmd
        };
        // Peak memory, once each, outside the timing; both must pass.
        let (code, kib) = run(&mut ours_cmd("4"));
        assert_eq!(code, 0, "escola-runbook smoke failed on {n} requests");
        eprintln!("peak RSS, {n} requests: escola-runbook smoke {kib} KiB");
        if let Some(bin) = &newman {
            let (code, kib) = run(&mut newman_cmd(bin));
            assert_eq!(code, 0, "newman failed on {n} requests");
            eprintln!("peak RSS, {n} requests: newman run {kib} KiB");
        }

        let mut group = c.benchmark_group(format!("smoke/{n} requests"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        group.bench_function("escola-runbook smoke", |b| {
            b.iter(|| run(&mut ours_cmd("4")))
        });
        group.bench_function("escola-runbook smoke --concurrency 1", |b| {
            b.iter(|| run(&mut ours_cmd("1")))
        });
        if let Some(bin) = &newman {
            group.bench_function("newman run", |b| b.iter(|| run(&mut newman_cmd(bin))));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
