//! A notice never decides a deploy and a dry-run never sends it: notice
//! steps end `warned` whatever went wrong, milestone notifiers cannot fail
//! or hold up a run, and every message is in the record.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use escola_runbook_core::*;
use support::{Scripted, executor, status_of};

/// A notice step that plays back `outcome` after `delay`, counting sends.
struct FakeNotice {
    outcome: Outcome,
    delay: Duration,
    sent: Arc<AtomicUsize>,
}

impl FakeNotice {
    fn new(outcome: Outcome) -> Self {
        FakeNotice {
            outcome,
            delay: Duration::ZERO,
            sent: Arc::default(),
        }
    }
}

#[async_trait]
impl Check for FakeNotice {
    fn describe(&self) -> Description {
        Description::notice("notice", "people are told", "post \"deploy done\"")
    }

    fn preview(&self, ctx: &Ctx) -> Vec<Evidence> {
        if self.outcome.summary == "panic" {
            panic!("preview bug");
        }
        vec![Evidence {
            label: "would post".into(),
            value: format!("deploy {} done", ctx.run_id()),
        }]
    }

    async fn run(&self, _ctx: &Ctx) -> Outcome {
        self.sent.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.outcome.summary == "panic" {
            panic!("the chat library panicked");
        }
        self.outcome.clone()
    }
}

/// A deploy phase that rolls back on failure, with the notice between two
/// changes, and a rollback phase that counts its runs.
fn runbook(notice: FakeNotice, rollback: &Scripted) -> Runbook {
    Runbook::builder("escola")
        .phase(
            Phase::new("deploy", "Deploy")
                .rollback_on_failure()
                .step(Step::check(
                    "migrate",
                    "Migrate",
                    Scripted::passing("migrate").mutating(),
                ))
                .step(
                    Step::check("status-update", "Tell people", notice)
                        .timeout(Duration::from_secs(10)),
                )
                .step(Step::check("up", "Up", Scripted::passing("up").mutating())),
        )
        .phase(Phase::rollback("rollback", "Rollback").step(Step::check(
            "migrate-prev",
            "Migrate prev",
            rollback.clone(),
        )))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_undelivered_notice_warns_and_never_rolls_back() {
    let cases = [
        Outcome::failed("the webhook refused the message: HTTP 500"),
        Outcome::check_error("cannot connect"),
        Outcome::no_data("nothing to say"),
        // A step timeout (10 s) cuts a notice that hangs for an hour.
        Outcome::passed("late"),
        Outcome::passed("panic"),
    ];
    for (i, outcome) in cases.into_iter().enumerate() {
        let expected_cause = match i {
            0 => "(failed): the webhook refused the message: HTTP 500",
            1 => "(check_error): cannot connect",
            2 => "(no_data): nothing to say",
            3 => "(timed_out): cancelled after the 10s timeout",
            _ => "(check_error): the check panicked: the chat library panicked",
        };
        let mut notice = FakeNotice::new(outcome);
        if i == 3 {
            notice.delay = Duration::from_secs(3600);
        }
        let rollback = Scripted::passing("migrate-prev").mutating();
        let record = executor(runbook(notice, &rollback)).run().await.unwrap();
        assert_eq!(record.verdict, Some(Verdict::Succeeded), "case {i}");
        assert_eq!(record.exit_code, Some(exit::SUCCESS));
        assert_eq!(rollback.calls(), 0, "case {i} rolled back");
        assert_eq!(status_of(&record, "status-update"), Status::Warned);
        assert_eq!(status_of(&record, "up"), Status::Passed, "case {i}");
        let (_, step) = record
            .steps()
            .find(|(_, s)| s.outline.id == "status-update")
            .unwrap();
        let summary = &step.outcome.as_ref().unwrap().summary;
        assert_eq!(
            summary,
            &format!("notice not delivered {expected_cause}"),
            "case {i}"
        );
    }
}

#[tokio::test]
async fn a_warned_or_passed_notice_is_kept_as_it_is() {
    for outcome in [
        Outcome::warned("not sent: no webhook"),
        Outcome::passed("sent"),
    ] {
        let rollback = Scripted::passing("migrate-prev").mutating();
        let expected = outcome.clone();
        let record = executor(runbook(FakeNotice::new(outcome), &rollback))
            .run()
            .await
            .unwrap();
        let (_, step) = record
            .steps()
            .find(|(_, s)| s.outline.id == "status-update")
            .unwrap();
        assert_eq!(step.outcome.as_ref().unwrap().summary, expected.summary);
        assert_eq!(step.outcome.as_ref().unwrap().status, expected.status);
    }
}

#[tokio::test]
async fn a_dry_run_never_sends_a_notice_and_records_its_preview() {
    let notice = FakeNotice::new(Outcome::passed("sent"));
    let sent = notice.sent.clone();
    let rollback = Scripted::passing("migrate-prev").mutating();
    let record = executor(runbook(notice, &rollback))
        .options(RunOptions {
            run_id: Some("run-dry".into()),
            dry_run: true,
            ..RunOptions::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 0);
    let (_, step) = record
        .steps()
        .find(|(_, s)| s.outline.id == "status-update")
        .unwrap();
    let outcome = step.outcome.as_ref().unwrap();
    assert_eq!(outcome.status, Status::Skipped);
    assert_eq!(
        outcome.evidence,
        [Evidence {
            label: "would post".into(),
            value: "deploy run-dry done".into()
        }]
    );
    let md = report::render_markdown(&record);
    assert!(md.contains("- would post: `deploy run-dry done`"), "{md}");
}

/// A notifier announcing start and finish, whose deliveries take `delay`
/// and then succeed, fail, or panic.
struct FakeNotifier {
    delay: Duration,
    result: Result<u32, DeliveryError>,
    panics: bool,
    delivered: AtomicUsize,
}

impl FakeNotifier {
    fn new(result: Result<u32, DeliveryError>) -> Self {
        FakeNotifier {
            delay: Duration::ZERO,
            result,
            panics: false,
            delivered: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Notifier for FakeNotifier {
    fn destination(&self) -> String {
        "chat.example".into()
    }

    fn message(&self, event: &Event) -> Option<String> {
        match event {
            Event::RunStarted { run, .. } => Some(format!("started {}", run.run_id)),
            Event::RunFinished { verdict, .. } => Some(format!("finished: {}", verdict.label())),
            _ => None,
        }
    }

    async fn deliver(&self, _text: &str) -> Result<u32, DeliveryError> {
        tokio::time::sleep(self.delay).await;
        if self.panics {
            panic!("chat client bug");
        }
        self.delivered.fetch_add(1, Ordering::SeqCst);
        self.result.clone()
    }
}

fn one_step() -> Runbook {
    Runbook::builder("escola")
        .phase(Phase::new("p", "P").step(Step::check("s", "S", Scripted::passing("s"))))
        .build()
        .unwrap()
}

#[tokio::test]
async fn milestones_are_journaled_with_their_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let error = DeliveryError {
        attempts: 3,
        error: "HTTP 500".into(),
    };
    let notifier = Arc::new(FakeNotifier::new(Err(error)));
    let record = executor(one_step())
        .notifier(notifier.clone())
        .run_root(dir.path())
        .run()
        .await
        .unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert_eq!(notifier.delivered.load(Ordering::SeqCst), 2);
    let texts: Vec<&str> = record.notices.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(texts, ["started run-1", "finished: succeeded"]);
    for n in &record.notices {
        assert_eq!(n.to, "chat.example");
        assert_eq!(
            n.delivery,
            Delivery::Undelivered {
                attempts: 3,
                error: "HTTP 500".into()
            }
        );
    }
    // The journal holds them too, so a report rendered later shows them.
    let journal = journal::read_journal(&dir.path().join("run-1/journal.jsonl")).unwrap();
    let rebuilt = RunRecord::from_events(&journal.events).unwrap();
    assert_eq!(rebuilt.notices, record.notices);
    let md = report::render_markdown(&rebuilt);
    assert!(
        md.contains(
            "| `chat.example` | finished: succeeded | NOT delivered: HTTP 500 after 3 attempts |"
        ),
        "{md}"
    );
}

#[tokio::test]
async fn a_dry_run_announces_nothing_and_records_what_it_would_have() {
    let notifier = Arc::new(FakeNotifier::new(Ok(1)));
    let record = executor(one_step())
        .options(RunOptions {
            run_id: Some("run-dry".into()),
            dry_run: true,
            ..RunOptions::default()
        })
        .notifier(notifier.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(notifier.delivered.load(Ordering::SeqCst), 0);
    assert_eq!(record.notices.len(), 2);
    assert!(
        record
            .notices
            .iter()
            .all(|n| n.delivery == Delivery::DryRun && n.to == "chat.example")
    );
    let md = report::render_markdown(&record);
    assert!(
        md.contains("| `chat.example` | started run-dry | not sent (dry-run) |"),
        "{md}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_destination_holds_the_end_of_the_run_at_most_the_notice_wait() {
    let mut slow = FakeNotifier::new(Ok(1));
    slow.delay = Duration::from_secs(3600);
    let started = tokio::time::Instant::now();
    let record = executor(one_step())
        .notifier(Arc::new(slow))
        .run()
        .await
        .unwrap();
    assert_eq!(started.elapsed(), NOTICE_WAIT);
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let waited_ms = NOTICE_WAIT.as_millis() as u64;
    assert_eq!(record.notices.len(), 2);
    assert!(
        record
            .notices
            .iter()
            .all(|n| n.delivery == Delivery::Unfinished { waited_ms }),
        "{:?}",
        record.notices
    );
}

#[tokio::test]
async fn a_panicking_notifier_is_an_undelivered_notice() {
    let mut broken = FakeNotifier::new(Ok(1));
    broken.panics = true;
    let record = executor(one_step())
        .notifier(Arc::new(broken))
        .run()
        .await
        .unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    assert!(record.notices.iter().all(|n| n.delivery
        == Delivery::Undelivered {
            attempts: 1,
            error: "the notifier panicked".into()
        }));
}

#[tokio::test]
async fn the_milestone_text_is_redacted_before_it_is_sent_or_kept() {
    struct Echo;
    #[async_trait]
    impl Notifier for Echo {
        fn destination(&self) -> String {
            "chat.example".into()
        }
        fn message(&self, event: &Event) -> Option<String> {
            match event {
                Event::StepFinished { outcome, .. } => Some(outcome.summary.clone()),
                _ => None,
            }
        }
        async fn deliver(&self, text: &str) -> Result<u32, DeliveryError> {
            Err(DeliveryError {
                attempts: 1,
                error: format!("echo {text}"),
            })
        }
    }
    let mut secrets = Secrets::new();
    secrets.insert("token", Secret::new("tok-123456"));
    let runbook = Runbook::builder("escola")
        .phase(Phase::new("p", "P").step(Step::check(
            "s",
            "S",
            Scripted::after("s", Duration::ZERO, Outcome::passed("token tok-123456 ok")),
        )))
        .build()
        .unwrap();
    let record = executor(runbook)
        .secrets(secrets)
        .notifier(Arc::new(Echo))
        .run()
        .await
        .unwrap();
    let json = serde_json::to_string(&record.notices).unwrap();
    assert!(!json.contains("tok-123456"), "{json}");
    assert_eq!(record.notices[0].text, "token <redacted:token> ok");
}

#[tokio::test]
async fn a_panicking_preview_is_evidence_not_a_crash() {
    let rollback = Scripted::passing("migrate-prev").mutating();
    let record = executor(runbook(
        FakeNotice::new(Outcome::passed("panic")),
        &rollback,
    ))
    .options(RunOptions {
        dry_run: true,
        ..RunOptions::default()
    })
    .run()
    .await
    .unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let (_, step) = record
        .steps()
        .find(|(_, s)| s.outline.id == "status-update")
        .unwrap();
    let outcome = step.outcome.as_ref().unwrap();
    assert_eq!(outcome.status, Status::Skipped);
    assert_eq!(outcome.evidence[0].value, "the check panicked: preview bug");
}

#[tokio::test]
async fn a_sent_notice_is_not_a_change_that_a_failure_rolls_back() {
    // Only the notice ran before the failing read-only check: nothing was
    // changed that a rollback could undo, so none runs (real and dry-run).
    for dry_run in [false, true] {
        let rollback = Scripted::passing("migrate-prev").mutating();
        let runbook = Runbook::builder("escola")
            .phase(
                Phase::new("post", "Post")
                    .rollback_on_failure()
                    .step(Step::check(
                        "status-update",
                        "Tell people",
                        FakeNotice::new(Outcome::passed("sent")),
                    ))
                    .step(Step::check("smoke", "Smoke", Scripted::failing("smoke"))),
            )
            .phase(Phase::rollback("rollback", "Rollback").step(Step::check(
                "migrate-prev",
                "Migrate prev",
                rollback.clone(),
            )))
            .build()
            .unwrap();
        let record = executor(runbook)
            .options(RunOptions {
                dry_run,
                ..RunOptions::default()
            })
            .run()
            .await
            .unwrap();
        assert_eq!(record.verdict, Some(Verdict::Failed), "dry-run {dry_run}");
        assert!(record.rollback.is_none(), "dry-run {dry_run}");
        assert_eq!(rollback.calls(), 0);
    }
}
