//! Executor semantics on tokio's paused clock: gates, timeouts, retries,
//! parallel limits, dry-run, rollback, confirmation, cancellation.

mod support;

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::*;
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn a_blocking_failure_stops_its_phase_and_the_later_ones() {
    let after = Scripted::passing("after");
    let next_phase = Scripted::passing("next");
    let runbook = Runbook::builder("gate")
        .phase(
            Phase::new("one", "One")
                .step(Step::check("advisory", "Advisory", Scripted::failing("advisory")).advisory())
                .step(Step::check("gate", "Gate", Scripted::failing("gate")))
                .step(Step::check("after", "After", after.clone())),
        )
        .phase(Phase::new("two", "Two").step(Step::check("next", "Next", next_phase.clone())))
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(status_of(&record, "advisory"), Status::Failed);
    assert_eq!(status_of(&record, "gate"), Status::Failed);
    assert_eq!(status_of(&record, "after"), Status::NotRun);
    assert_eq!(status_of(&record, "next"), Status::NotRun);
    assert_eq!((after.calls(), next_phase.calls()), (0, 0));
    assert_eq!(record.verdict, Some(Verdict::Failed));
    assert_eq!(record.exit_code, Some(exit::STEP_FAILED));
    assert_eq!(
        step_of(&record, "after").outcome.as_ref().unwrap().summary,
        "not reached: blocking step `gate` ended failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_check_is_cancelled_at_its_timeout() {
    let hung = Scripted::after("hung", HOUR, Outcome::passed("never"));
    let runbook = Runbook::builder("timeout")
        .phase(Phase::new("p", "P").step(Step::check("hung", "Hung", hung).timeout(secs(5))))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(started.elapsed(), secs(5));
    let step = step_of(&record, "hung");
    assert_eq!(step.status(), Status::TimedOut);
    assert_eq!(step.elapsed_ms, 5000);
    assert_eq!(
        step.outcome.as_ref().unwrap().summary,
        "cancelled after the 5s timeout"
    );
    assert_eq!(record.verdict, Some(Verdict::Failed));
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_and_stop_at_the_first_pass() {
    let flaky = Scripted::new(
        "flaky",
        vec![
            (Duration::ZERO, Outcome::check_error("connection refused")),
            (Duration::ZERO, Outcome::failed("503")),
            (Duration::ZERO, Outcome::passed("200")),
            (Duration::ZERO, Outcome::failed("must not be reached")),
        ],
    );
    let backoff = Backoff {
        initial: secs(1),
        factor: 2.0,
        max: secs(60),
    };
    let runbook = Runbook::builder("retry")
        .phase(
            Phase::new("p", "P")
                .step(Step::check("flaky", "Flaky", flaky.clone()).retries(5, backoff)),
        )
        .build()
        .unwrap();
    let log = Arc::new(EventLog::new());
    let started = tokio::time::Instant::now();
    let record = executor(runbook).observer(log.clone()).run().await.unwrap();
    assert_eq!(started.elapsed(), secs(3), "1s then 2s of backoff");
    assert_eq!(flaky.calls(), 3);
    let step = step_of(&record, "flaky");
    assert_eq!((step.status(), step.attempts), (Status::Passed, 3));
    let retried: Vec<Status> = step.retried.iter().map(|o| o.status).collect();
    assert_eq!(retried, [Status::CheckError, Status::Failed]);
    let delays: Vec<u64> = log
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::StepRetrying { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [1000, 2000]);
}

#[tokio::test(start_paused = true)]
async fn retries_give_up_with_the_last_outcome() {
    let down = Scripted::new(
        "down",
        vec![(Duration::ZERO, Outcome::check_error("connection refused"))],
    );
    let runbook = Runbook::builder("retry")
        .phase(
            Phase::new("p", "P")
                .step(Step::check("down", "Down", down.clone()).retries(2, Backoff::default())),
        )
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(down.calls(), 3);
    assert_eq!(status_of(&record, "down"), Status::CheckError);
}

#[tokio::test(start_paused = true)]
async fn a_parallel_group_respects_the_phase_limit() {
    let shared = Scripted::after("slow", secs(10), Outcome::passed("ok"));
    let mut phase = Phase::new("p", "P").max_parallel(2);
    for i in 0..5 {
        phase = phase.step(
            Step::check_arc(format!("s{i}"), format!("S{i}"), Arc::new(shared.clone()))
                .parallel("g"),
        );
    }
    phase = phase.step(Step::check("after", "After", Scripted::passing("after")));
    let runbook = Runbook::builder("parallel").phase(phase).build().unwrap();
    let started = tokio::time::Instant::now();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(
        shared.max_running.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert_eq!(started.elapsed(), secs(30), "5 steps of 10s, 2 at a time");
    assert_eq!(shared.calls(), 5);
    assert!(record.steps().all(|(_, s)| s.status() == Status::Passed));
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_a_group_lets_the_group_finish_then_stops() {
    let runbook = Runbook::builder("parallel")
        .phase(
            Phase::new("p", "P")
                .step(Step::check("bad", "Bad", Scripted::failing("bad")).parallel("g"))
                .step(
                    Step::check(
                        "slow",
                        "Slow",
                        Scripted::after("slow", secs(5), Outcome::passed("ok")),
                    )
                    .parallel("g"),
                )
                .step(Step::check("after", "After", Scripted::passing("after"))),
        )
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(status_of(&record, "bad"), Status::Failed);
    assert_eq!(status_of(&record, "slow"), Status::Passed);
    assert_eq!(status_of(&record, "after"), Status::NotRun);
}

#[tokio::test(start_paused = true)]
async fn dry_run_runs_read_only_checks_and_describes_the_rest() {
    let read = Scripted::passing("read");
    let action = Scripted::passing("action")
        .mutating()
        .produces("snapshot.id");
    let consumer = Scripted::passing("consumer").needs("snapshot.id");
    let runbook = Runbook::builder("dry")
        .phase(
            Phase::new("p", "P")
                .step(Step::check("read", "Read", read.clone()))
                .step(Step::check("action", "Action", action.clone()))
                .step(Step::check("consumer", "Consumer", consumer.clone()))
                .step(Step::manual("window", "Window")),
        )
        .build()
        .unwrap();
    // A confirmer that never answers: a dry-run that asked would hang.
    let record = executor(runbook)
        .options(RunOptions {
            dry_run: true,
            run_id: Some("dry".into()),
            ..RunOptions::default()
        })
        .confirmer(Arc::new(ScriptedConfirmer::new("nobody")))
        .run()
        .await
        .unwrap();
    assert_eq!((read.calls(), action.calls(), consumer.calls()), (1, 0, 0));
    assert_eq!(status_of(&record, "read"), Status::Passed);
    let skip = |id| {
        step_of(&record, id)
            .outcome
            .as_ref()
            .unwrap()
            .skip
            .clone()
            .unwrap()
    };
    assert_eq!(
        skip("action"),
        SkipReason::DryRun {
            would: "change action".into()
        }
    );
    assert_eq!(
        skip("consumer"),
        SkipReason::UnknownInDryRun {
            value: "snapshot.id".into(),
            producer: "action".into()
        }
    );
    assert!(matches!(skip("window"), SkipReason::DryRun { .. }));
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert!(record.run.dry_run);
}

#[tokio::test(start_paused = true)]
async fn values_flow_from_producer_to_consumer() {
    let consumer = Scripted::passing("consumer").needs("baseline.p95");
    let runbook = Runbook::builder("values")
        .phase(
            Phase::new("p", "P")
                .step(Step::check(
                    "producer",
                    "Producer",
                    Scripted::passing("producer").produces("baseline.p95"),
                ))
                .step(Step::check("consumer", "Consumer", consumer.clone())),
        )
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    let evidence = &step_of(&record, "consumer")
        .outcome
        .as_ref()
        .unwrap()
        .evidence;
    assert_eq!(evidence[0].label, "input baseline.p95");
    assert_eq!(evidence[0].value, "42");
    // Without the producer selected, the consumer cannot measure: check error.
    let runbook = Runbook::builder("values")
        .phase(
            Phase::new("p", "P")
                .step(Step::check(
                    "producer",
                    "Producer",
                    Scripted::passing("producer").produces("baseline.p95"),
                ))
                .step(Step::check("consumer", "Consumer", consumer.clone())),
        )
        .build()
        .unwrap();
    let record = executor(runbook)
        .options(RunOptions {
            only: vec!["consumer".into()],
            run_id: Some("only".into()),
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(status_of(&record, "producer"), Status::Skipped);
    assert_eq!(status_of(&record, "consumer"), Status::CheckError);
}

#[test]
fn a_step_needing_a_value_nobody_produces_is_rejected_at_build() {
    let err = Runbook::builder("values")
        .phase(Phase::new("p", "P").step(Step::check("c", "C", Scripted::passing("c").needs("x"))))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ModelError::UnproducedValue {
            step: "c".into(),
            value: "x".into()
        }
    );
}

fn deploy_runbook(smoke: Scripted, revert: Scripted) -> Runbook {
    Runbook::builder("deploy")
        .phase(deploy_phase("migrate"))
        .phase(
            Phase::new("post", "Post")
                .rollback_on_failure()
                .step(Step::check("smoke", "Smoke", smoke)),
        )
        .phase(
            Phase::rollback("rollback", "Rollback").step(Step::check("revert", "Revert", revert)),
        )
        .phase(Phase::new("later", "Later").step(Step::manual("retro", "Retro")))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_a_rollback_phase_runs_the_rollback() {
    let revert = Scripted::passing("revert").mutating();
    let record = executor(deploy_runbook(Scripted::failing("smoke"), revert.clone()))
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 1);
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
    assert_eq!(record.exit_code, Some(exit::ROLLED_BACK));
    let reason = record.rollback.as_ref().unwrap();
    assert_eq!(
        (reason.step.as_str(), reason.status),
        ("smoke", Status::Failed)
    );
    assert_eq!(reason.summary, "smoke: 3 > limit 2");
    assert_eq!(status_of(&record, "retro"), Status::NotRun);
}

#[tokio::test(start_paused = true)]
async fn a_failing_rollback_is_reported_as_such() {
    let record = executor(deploy_runbook(
        Scripted::failing("smoke"),
        Scripted::failing("revert").mutating(),
    ))
    .run()
    .await
    .unwrap();
    assert_eq!(record.verdict, Some(Verdict::RollbackFailed));
    assert_eq!(record.exit_code, Some(exit::STEP_FAILED));
}

#[tokio::test(start_paused = true)]
async fn without_a_failure_the_rollback_phase_is_skipped() {
    let revert = Scripted::passing("revert").mutating();
    let record = executor(deploy_runbook(Scripted::passing("smoke"), revert.clone()))
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 0);
    assert_eq!(
        step_of(&record, "revert").outcome.as_ref().unwrap().skip,
        Some(SkipReason::RollbackNotTriggered)
    );
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_takes_the_same_branch_as_the_real_run() {
    let revert = Scripted::passing("revert").mutating();
    let record = executor(deploy_runbook(Scripted::failing("smoke"), revert.clone()))
        .options(RunOptions {
            dry_run: true,
            run_id: Some("dry".into()),
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 0, "a dry-run never runs a mutating step");
    assert!(matches!(
        step_of(&record, "revert").outcome.as_ref().unwrap().skip,
        Some(SkipReason::DryRun { .. })
    ));
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn cancellation_aborts_the_running_step_and_keeps_a_consistent_record() {
    let dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let runbook = Runbook::builder("cancel")
        .phase(
            Phase::new("p", "P")
                .step(Step::check(
                    "long",
                    "Long",
                    Scripted::after("long", HOUR, Outcome::passed("done")).mutating(),
                ))
                .step(Step::check("after", "After", Scripted::passing("after"))),
        )
        .phase(Phase::rollback("rb", "Rollback").step(Step::manual("undo", "Undo")))
        .build()
        .unwrap();
    let stopper = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(secs(10)).await;
            token.cancel();
        })
    };
    let record = executor(runbook)
        .cancellation(token)
        .run_root(dir.path())
        .run()
        .await
        .unwrap();
    stopper.await.unwrap();
    let long = step_of(&record, "long");
    assert_eq!(long.status(), Status::Aborted);
    assert_eq!(long.elapsed_ms, 10_000);
    assert!(
        long.outcome
            .as_ref()
            .unwrap()
            .summary
            .contains("what it changed is unknown")
    );
    assert_eq!(status_of(&record, "after"), Status::NotRun);
    assert_eq!(status_of(&record, "undo"), Status::NotRun);
    assert_eq!(record.verdict, Some(Verdict::Stopped));
    assert_eq!(record.exit_code, Some(exit::STOPPED));
    let journal =
        journal::read_journal(&dir.path().join("run-1").join(journal::JOURNAL_FILE)).unwrap();
    assert!(journal.warnings.is_empty());
    assert_eq!(RunRecord::from_events(&journal.events).unwrap(), record);
}

#[tokio::test(start_paused = true)]
async fn confirmations_record_who_and_how_and_decide_the_step() {
    let confirmer = ScriptedConfirmer::new("ana")
        .answer("ok", Decision::Confirmed, Some("checked with Infra"))
        .answer("skip", Decision::Skipped, None)
        .answer("no", Decision::Declined, Some("squad incomplete"));
    let runbook = Runbook::builder("manual")
        .phase(
            Phase::new("p", "P")
                .step(Step::manual("ok", "Ok"))
                .step(Step::manual("skip", "Skip"))
                .step(Step::manual("no", "No"))
                .step(Step::manual("after", "After")),
        )
        .build()
        .unwrap();
    let record = executor(runbook)
        .confirmer(Arc::new(confirmer))
        .run()
        .await
        .unwrap();
    let ok = step_of(&record, "ok");
    assert_eq!(ok.status(), Status::Passed);
    let c = ok.confirmation.as_ref().unwrap();
    assert_eq!(
        (c.who.as_str(), c.via, c.comment.as_deref()),
        ("ana", Via::Scripted, Some("checked with Infra"))
    );
    assert_eq!(
        ok.outcome.as_ref().unwrap().summary,
        "confirmed by ana (checked with Infra)"
    );
    assert_eq!(status_of(&record, "skip"), Status::Skipped);
    assert_eq!(status_of(&record, "no"), Status::Failed);
    assert_eq!(
        step_of(&record, "no").outcome.as_ref().unwrap().summary,
        "declined by ana (squad incomplete)"
    );
    assert_eq!(status_of(&record, "after"), Status::NotRun);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_prompt_takes_its_default_at_the_deadline() {
    let runbook = Runbook::builder("deadline")
        .phase(
            Phase::new("p", "P")
                .step(
                    Step::manual("window", "Window")
                        .confirm_deadline(Duration::from_secs(300), Decision::Skipped),
                )
                .step(
                    Step::manual("after", "After")
                        .confirm_deadline(Duration::from_secs(60), Decision::Abort),
                ),
        )
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let record = executor(runbook)
        .confirmer(Arc::new(ScriptedConfirmer::new("nobody")))
        .run()
        .await
        .unwrap();
    assert_eq!(started.elapsed(), secs(360));
    let window = step_of(&record, "window");
    assert_eq!(window.status(), Status::Skipped);
    let c = window.confirmation.as_ref().unwrap();
    assert_eq!(
        (c.via, c.comment.as_deref()),
        (Via::DeadlineDefault, Some("no answer within 5m"))
    );
    assert_eq!(status_of(&record, "after"), Status::Aborted);
    assert_eq!(record.verdict, Some(Verdict::Stopped));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_plugin_is_a_check_error_not_a_crash() {
    struct Panics;
    #[async_trait]
    impl Check for Panics {
        fn describe(&self) -> Description {
            Description::read_only("panics", "nothing")
        }
        async fn run(&self, _ctx: &Ctx) -> Outcome {
            panic!("index out of bounds")
        }
    }
    let runbook = Runbook::builder("panic")
        .phase(Phase::new("p", "P").step(Step::check("boom", "Boom", Panics)))
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    let step = step_of(&record, "boom");
    assert_eq!(step.status(), Status::CheckError);
    assert_eq!(
        step.outcome.as_ref().unwrap().summary,
        "the check panicked: index out of bounds"
    );
}

#[tokio::test(start_paused = true)]
async fn secrets_are_masked_in_the_record_the_events_and_the_journal() {
    struct Leaky;
    #[async_trait]
    impl Check for Leaky {
        fn describe(&self) -> Description {
            Description::read_only("leaky", "leaks")
        }
        async fn run(&self, ctx: &Ctx) -> Outcome {
            let token = ctx.secret("metrics_token").unwrap().expose().to_owned();
            ctx.progress(format!("using {token}"));
            Outcome::failed(format!("401 with Bearer {token}"))
                .with_evidence("header", format!("Authorization: Bearer {token}"))
                .with_value(format!("key-{token}"), serde_json::json!(token))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut secrets = Secrets::new();
    secrets.insert("metrics_token", Secret::new("tok-9f8e7d6c"));
    let runbook = Runbook::builder("secrets")
        .phase(
            Phase::new("p", "P")
                .step(Step::check("leak", "Leak", Leaky).retries(1, Backoff::default())),
        )
        .build()
        .unwrap();
    let log = Arc::new(EventLog::new());
    let record = executor(runbook)
        .secrets(secrets)
        .observer(log.clone())
        .run_root(dir.path())
        .run()
        .await
        .unwrap();
    let json = serde_json::to_string(&record).unwrap();
    assert!(!json.contains("tok-9f8e7d6c"));
    assert!(json.contains("<redacted:metrics_token>"));
    let events = serde_json::to_string(&log.events()).unwrap();
    assert!(!events.contains("tok-9f8e7d6c"));
    assert!(events.contains("using <redacted:metrics_token>"));
    let journal =
        std::fs::read_to_string(dir.path().join("run-1").join(journal::JOURNAL_FILE)).unwrap();
    assert!(!journal.contains("tok-9f8e7d6c"));
    for format in [
        report::Format::Markdown,
        report::Format::Json,
        report::Format::Junit,
    ] {
        assert!(
            !report::render(&record, format)
                .unwrap()
                .contains("tok-9f8e7d6c")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn selection_errors_name_the_input() {
    let runbook = || deploy_runbook(Scripted::passing("smoke"), Scripted::passing("revert"));
    let err = executor(runbook())
        .options(RunOptions {
            phases: vec!["deplyo".into()],
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown phase `deplyo`; the runbook's phases are: deploy, post, rollback, later"
    );
    let err = executor(runbook())
        .options(RunOptions {
            only: vec!["smoke".into()],
            phases: vec!["deploy".into()],
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::EmptySelection { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn selecting_the_rollback_phase_runs_it_deliberately() {
    let revert = Scripted::passing("revert").mutating();
    let record = executor(deploy_runbook(Scripted::passing("smoke"), revert.clone()))
        .options(RunOptions {
            phases: vec!["rollback".into()],
            run_id: Some("manual-rollback".into()),
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 1);
    assert_eq!(status_of(&record, "migrate"), Status::Skipped);
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn a_second_run_with_the_same_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = || deploy_runbook(Scripted::passing("smoke"), Scripted::passing("revert"));
    executor(runbook())
        .run_root(dir.path())
        .run()
        .await
        .unwrap();
    let err = executor(runbook())
        .run_root(dir.path())
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::RunExists(_)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_rollback_undoes_completed_steps_newest_first() {
    let log = Arc::new(EventLog::new());
    let up_first = Scripted::passing("undo-first").mutating();
    let up_second = Scripted::passing("undo-second").mutating();
    let never = Scripted::passing("undo-never").mutating();
    let runbook = Runbook::builder("undo")
        .phase(
            Phase::new("deploy", "Deploy")
                .rollback_on_failure()
                .step(
                    Step::check("first", "First", Scripted::passing("first").mutating())
                        .undo(up_first.clone()),
                )
                .step(
                    Step::check("second", "Second", Scripted::passing("second").mutating())
                        .undo(up_second.clone()),
                )
                .step(Step::check("smoke", "Smoke", Scripted::failing("smoke")))
                .step(
                    Step::check("third", "Third", Scripted::passing("third").mutating())
                        .undo(never.clone()),
                ),
        )
        .phase(Phase::rollback("rollback", "Rollback").step(Step::manual("verify", "Verify")))
        .build()
        .unwrap();
    let plan = Plan::new(&runbook, &RunOptions::default()).unwrap();
    assert_eq!(
        plan.steps[0].on_rollback.as_deref(),
        Some("undone first: change undo-first")
    );
    let record = executor(runbook).observer(log.clone()).run().await.unwrap();
    assert_eq!(
        (up_first.calls(), up_second.calls(), never.calls()),
        (1, 1, 0)
    );
    let order: Vec<String> = log
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::UndoFinished { step, .. } => Some(step.clone()),
            Event::StepFinished { step, .. } if step == "verify" => Some(step.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["second", "first", "verify"]);
    assert_eq!(
        step_of(&record, "first").undo.as_ref().unwrap().status,
        Status::Passed
    );
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn a_failed_undo_makes_the_rollback_failed() {
    let runbook = Runbook::builder("undo")
        .phase(
            Phase::new("deploy", "Deploy")
                .rollback_on_failure()
                .step(
                    Step::check("down", "Down", Scripted::passing("down").mutating())
                        .undo(Scripted::failing("up").mutating()),
                )
                .step(Step::check("smoke", "Smoke", Scripted::failing("smoke"))),
        )
        .phase(Phase::rollback("rollback", "Rollback").step(Step::manual("verify", "Verify")))
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(record.verdict, Some(Verdict::RollbackFailed));
    assert!(
        report::render_markdown(&record).contains("- undone on rollback: FAILED — up: 3 > limit 2")
    );
}

#[tokio::test(start_paused = true)]
async fn a_fail_fast_group_cancels_its_siblings_at_the_first_blocking_failure() {
    let long = Scripted::after("long", HOUR, Outcome::passed("never"));
    let runbook = Runbook::builder("fail-fast")
        .phase(
            Phase::new("watch", "Watch")
                .fail_fast()
                .step(
                    Step::check(
                        "bad",
                        "Bad",
                        Scripted::after("bad", secs(420), Outcome::failed("p95 2.4s > 2s for 5m")),
                    )
                    .parallel("alerts"),
                )
                .step(Step::check("long", "Long", long.clone()).parallel("alerts")),
        )
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(started.elapsed(), secs(420));
    assert_eq!(status_of(&record, "bad"), Status::Failed);
    let long = step_of(&record, "long");
    assert_eq!(long.status(), Status::Aborted);
    assert_eq!(
        long.outcome.as_ref().unwrap().summary,
        "cancelled: another step of its fail-fast parallel group failed"
    );
    assert_eq!(record.verdict, Some(Verdict::Failed));
}

#[tokio::test(start_paused = true)]
async fn confirm_first_gates_an_action_on_the_operator() {
    let revert = Scripted::passing("migrate-prev").mutating();
    let build = |check: Scripted| {
        Runbook::builder("gate")
            .phase(
                Phase::new("p", "P")
                    .step(Step::check("migrate-prev", "Migrate prev", check).confirm_first()),
            )
            .build()
            .unwrap()
    };
    let plan = Plan::new(&build(revert.clone()), &RunOptions::default()).unwrap();
    assert_eq!(
        plan.steps[0].real_run,
        "asks the operator, then change migrate-prev"
    );
    let skip = ScriptedConfirmer::new("dba").answer(
        "migrate-prev",
        Decision::Skipped,
        Some("migrations are fine"),
    );
    let record = executor(build(revert.clone()))
        .confirmer(Arc::new(skip))
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 0);
    assert_eq!(status_of(&record, "migrate-prev"), Status::Skipped);
    assert_eq!(
        step_of(&record, "migrate-prev")
            .confirmation
            .as_ref()
            .unwrap()
            .comment
            .as_deref(),
        Some("migrations are fine")
    );
    let yes = ScriptedConfirmer::new("dba").answer("migrate-prev", Decision::Confirmed, None);
    let record = executor(build(revert.clone()))
        .confirmer(Arc::new(yes))
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 1);
    assert_eq!(status_of(&record, "migrate-prev"), Status::Passed);
    assert_eq!(
        step_of(&record, "migrate-prev")
            .outcome
            .as_ref()
            .unwrap()
            .summary,
        "migrate-prev ok"
    );
    // A dry-run asks nobody and runs no action.
    let record = executor(build(revert.clone()))
        .options(RunOptions {
            dry_run: true,
            run_id: Some("dry".into()),
            ..RunOptions::default()
        })
        .confirmer(Arc::new(ScriptedConfirmer::new("nobody")))
        .run()
        .await
        .unwrap();
    assert_eq!(revert.calls(), 1);
    assert_eq!(status_of(&record, "migrate-prev"), Status::Skipped);
}

/// A deploy whose post-deploy phase holds a read-only check, then a manual
/// step, then an action that asks first; the rollback reverts.
fn recheck_runbook(smoke: Scripted, revert: Scripted, gated: Scripted) -> Runbook {
    Runbook::builder("recheck")
        .phase(deploy_phase("migrate"))
        .phase(
            Phase::new("post", "Post")
                .rollback_on_failure()
                .step(Step::manual("previous-version", "Recolocar a versão anterior").advisory())
                .step(
                    Step::check("purge", "Purge", gated)
                        .confirm_first()
                        .advisory(),
                )
                .step(Step::check("smoke", "Smoke", smoke)),
        )
        .phase(
            Phase::rollback("rollback", "Rollback").step(Step::check("revert", "Revert", revert)),
        )
        .build()
        .unwrap()
}

fn selecting(only: &[&str], dry_run: bool) -> RunOptions {
    RunOptions {
        run_id: Some("selection".into()),
        operator: "ana".into(),
        host: "deploy-host".into(),
        only: only.iter().map(|s| (*s).to_owned()).collect(),
        dry_run,
        ..RunOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_selection_of_read_only_steps_rolls_nothing_back() {
    for dry_run in [false, true] {
        let revert = Scripted::passing("revert").mutating();
        let record = executor(recheck_runbook(
            Scripted::failing("smoke"),
            revert.clone(),
            Scripted::passing("purge").mutating(),
        ))
        .options(selecting(&["smoke"], dry_run))
        .run()
        .await
        .unwrap();
        assert_eq!(revert.calls(), 0, "dry_run {dry_run}");
        assert_eq!(record.verdict, Some(Verdict::Failed), "dry_run {dry_run}");
        assert_eq!(record.exit_code, Some(exit::STEP_FAILED));
        assert_eq!(record.rollback, None);
        let withheld = record.rollback_withheld.as_ref().expect("said why");
        assert_eq!(
            (withheld.failure.step.as_str(), withheld.failure.status),
            ("smoke", Status::Failed)
        );
        assert_eq!(
            withheld.detail,
            "not rolled back: no step of this run changed anything in a phase that rolls back on failure"
        );
        assert_eq!(
            step_of(&record, "revert").outcome.as_ref().unwrap().skip,
            Some(SkipReason::RollbackNotTriggered)
        );
    }
}

/// Runs `recheck_runbook` with a failing smoke check, selecting the
/// post-deploy steps, answered by `confirmer`; returns the record and how
/// often the gated action and the revert ran.
async fn recheck_post_deploy(
    confirmer: ScriptedConfirmer,
    dry_run: bool,
) -> (RunRecord, usize, usize) {
    let revert = Scripted::passing("revert").mutating();
    let purge = Scripted::passing("purge").mutating();
    let record = executor(recheck_runbook(
        Scripted::failing("smoke"),
        revert.clone(),
        purge.clone(),
    ))
    .options(selecting(&["previous-version", "purge", "smoke"], dry_run))
    .confirmer(Arc::new(confirmer))
    .run()
    .await
    .unwrap();
    (record, purge.calls(), revert.calls())
}

#[tokio::test(start_paused = true)]
async fn a_person_confirming_a_manual_step_counts_as_a_change() {
    let confirmer = ScriptedConfirmer::new("ana")
        .answer("previous-version", Decision::Confirmed, None)
        .answer("purge", Decision::Skipped, None);
    let (record, _, reverts) = recheck_post_deploy(confirmer, false).await;
    assert_eq!(reverts, 1);
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
    assert_eq!(record.rollback_withheld, None);
    // The same selection rehearsed in a dry-run takes the same branch.
    let (record, _, reverts) = recheck_post_deploy(ScriptedConfirmer::new("nobody"), true).await;
    assert_eq!(reverts, 0, "a dry-run runs no action");
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn a_skipped_manual_step_or_an_unapproved_action_changes_nothing() {
    let confirmer = ScriptedConfirmer::new("ana")
        .answer("previous-version", Decision::Skipped, None)
        .answer("purge", Decision::Declined, Some("not now"));
    let (record, purges, reverts) = recheck_post_deploy(confirmer, false).await;
    assert_eq!((purges, reverts), (0, 0));
    assert_eq!(record.verdict, Some(Verdict::Failed));
    assert!(record.rollback_withheld.is_some());
    // Approved, the action runs, and a later failure rolls it back.
    let confirmer = ScriptedConfirmer::new("ana")
        .answer("previous-version", Decision::Skipped, None)
        .answer("purge", Decision::Confirmed, None);
    let (record, purges, reverts) = recheck_post_deploy(confirmer, false).await;
    assert_eq!((purges, reverts), (1, 1));
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn an_action_that_fails_half_way_still_rolls_back() {
    let revert = Scripted::passing("revert").mutating();
    let runbook = Runbook::builder("half")
        .phase(
            Phase::new("deploy", "Deploy")
                .rollback_on_failure()
                .step(Step::check(
                    "migrate",
                    "Migrate",
                    Scripted::failing("migrate").mutating(),
                )),
        )
        .phase(rollback_phase(revert.clone()))
        .build()
        .unwrap();
    let record = executor(runbook).run().await.unwrap();
    assert_eq!(revert.calls(), 1);
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
}
