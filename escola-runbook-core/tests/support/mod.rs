//! Test doubles shared by the executor and report tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use escola_runbook_core::*;

/// A check that plays back scripted outcomes, each after a delay, and counts
/// calls and concurrency.
#[derive(Clone)]
pub struct Scripted {
    pub name: &'static str,
    pub mutates: bool,
    script: Arc<Mutex<VecDeque<(Duration, Outcome)>>>,
    last: Arc<Mutex<(Duration, Outcome)>>,
    pub calls: Arc<AtomicUsize>,
    pub running: Arc<AtomicUsize>,
    pub max_running: Arc<AtomicUsize>,
    pub needs: Vec<String>,
    pub produces: Vec<String>,
}

impl Scripted {
    pub fn new(name: &'static str, outcomes: Vec<(Duration, Outcome)>) -> Self {
        let last = outcomes
            .last()
            .cloned()
            .unwrap_or((Duration::ZERO, Outcome::passed("ok")));
        Scripted {
            name,
            mutates: false,
            script: Arc::new(Mutex::new(outcomes.into())),
            last: Arc::new(Mutex::new(last)),
            calls: Arc::default(),
            running: Arc::default(),
            max_running: Arc::default(),
            needs: Vec::new(),
            produces: Vec::new(),
        }
    }

    pub fn passing(name: &'static str) -> Self {
        Self::new(
            name,
            vec![(Duration::ZERO, Outcome::passed(format!("{name} ok")))],
        )
    }

    pub fn failing(name: &'static str) -> Self {
        Self::new(
            name,
            vec![(
                Duration::ZERO,
                Outcome::failed(format!("{name}: 3 > limit 2")),
            )],
        )
    }

    pub fn after(name: &'static str, delay: Duration, outcome: Outcome) -> Self {
        Self::new(name, vec![(delay, outcome)])
    }

    pub fn mutating(mut self) -> Self {
        self.mutates = true;
        self
    }

    pub fn needs(mut self, key: &str) -> Self {
        self.needs.push(key.into());
        self
    }

    pub fn produces(mut self, key: &str) -> Self {
        self.produces.push(key.into());
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Check for Scripted {
    fn describe(&self) -> Description {
        let mut d = if self.mutates {
            Description::mutating(
                self.name,
                format!("{} works", self.name),
                format!("change {}", self.name),
            )
        } else {
            Description::read_only(self.name, format!("{} works", self.name))
        };
        d.needs = self.needs.clone();
        d.produces = self.produces.clone();
        d
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let next = self.script.lock().unwrap().pop_front();
        let (delay, mut outcome) = next.unwrap_or_else(|| self.last.lock().unwrap().clone());
        tokio::time::sleep(delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        for key in &self.needs {
            let v = ctx.value(key).unwrap().clone();
            outcome = outcome.with_evidence(format!("input {key}"), v.to_string());
        }
        for key in &self.produces {
            outcome = outcome.with_value(key.clone(), serde_json::json!(42));
        }
        outcome
    }
}

/// A `deploy` phase that rolls back on failure, holding one passing action
/// `step`: what a rollback has to undo.
pub fn deploy_phase(step: &'static str) -> Phase {
    Phase::new("deploy", "Deploy")
        .rollback_on_failure()
        .step(Step::check(step, step, Scripted::passing(step).mutating()))
}

/// A rollback phase whose one step runs `revert`.
pub fn rollback_phase(revert: Scripted) -> Phase {
    Phase::rollback("rollback", "Rollback").step(Step::check("revert", "Revert", revert))
}

pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 2, 0, 0).unwrap()
}

/// An executor with a deterministic clock, run id and operator.
pub fn executor(runbook: Runbook) -> Executor {
    Executor::new(runbook)
        .clock(Arc::new(TokioClock::starting_at(epoch())))
        .options(RunOptions {
            run_id: Some("run-1".into()),
            operator: "ana".into(),
            host: "deploy-host".into(),
            ..RunOptions::default()
        })
}

pub fn status_of(record: &RunRecord, step: &str) -> Status {
    record
        .steps()
        .find(|(_, s)| s.outline.id == step)
        .map(|(_, s)| s.status())
        .unwrap_or_else(|| panic!("no step {step}"))
}

pub fn step_of<'a>(record: &'a RunRecord, step: &str) -> &'a StepRecord {
    record
        .steps()
        .find(|(_, s)| s.outline.id == step)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no step {step}"))
}
