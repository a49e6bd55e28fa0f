//! Executor overhead per step and report rendering cost, so a change that
//! makes a 24-hour watch's bookkeeping expensive shows up here.
//!
//! No peer: no other Rust runbook executor does the same job to compare
//! with (see benches/README.md).

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use escola_runbook_core::report::{render_json, render_markdown};
use escola_runbook_core::{
    Check, Ctx, Description, Executor, Outcome, Phase, RunOptions, Runbook, Secret, Secrets, Step,
    async_trait,
};

struct Noop;

#[async_trait]
impl Check for Noop {
    fn describe(&self) -> Description {
        Description::read_only("noop", "nothing")
    }

    async fn run(&self, _ctx: &Ctx) -> Outcome {
        Outcome::passed("ok").with_evidence("value", "1")
    }
}

fn runbook(steps: usize) -> Runbook {
    let check: Arc<dyn Check> = Arc::new(Noop);
    let mut phases = Vec::new();
    for p in 0..4 {
        let mut phase = Phase::new(format!("p{p}"), format!("Phase {p}"));
        for s in 0..steps / 4 {
            phase = phase.step(Step::check_arc(
                format!("s{p}-{s}"),
                format!("Step {s}"),
                check.clone(),
            ));
        }
        phases.push(phase);
    }
    phases
        .into_iter()
        .fold(Runbook::builder("bench"), |b, p| b.phase(p))
        .build()
        .expect("valid bench runbook")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let options = RunOptions {
        run_id: Some("bench".into()),
        ..RunOptions::default()
    };
    c.bench_function("executor/200 passing steps", |b| {
        b.to_async(&rt).iter(|| async {
            Executor::new(runbook(200))
                .options(options.clone())
                .run()
                .await
                .expect("run")
        })
    });
    // Every event is masked before it is journaled or shown; with secrets
    // registered (each with its derived forms) that is a scan per pattern.
    let secrets = || {
        let mut secrets = Secrets::new();
        secrets.insert("metrics_token", Secret::new("tok-0123456789abcdef"));
        secrets.insert(
            "webhook_url",
            Secret::new(
                "https://bot:pa55w0rd@hooks.example.com/services/T000/B000/XXXXXXXX?key=abcdefgh",
            ),
        );
        secrets
    };
    c.bench_function("executor/200 passing steps, 2 secrets", |b| {
        b.to_async(&rt).iter(|| async {
            Executor::new(runbook(200))
                .options(options.clone())
                .secrets(secrets())
                .run()
                .await
                .expect("run")
        })
    });
    let record = rt
        .block_on(Executor::new(runbook(200)).options(options.clone()).run())
        .expect("run");
    c.bench_function("report/markdown 200 steps", |b| {
        b.iter(|| render_markdown(&record))
    });
    c.bench_function("report/json 200 steps", |b| {
        b.iter(|| render_json(&record).expect("json"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
