//! A run of the imported team runbook, written back into the team's own
//! document: deterministic (paused clock, fixed epoch and run id) and
//! snapshot-tested.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use escola_runbook_core::formats::markdown::{self, ExportError, ImportOptions};
use escola_runbook_core::{
    Check, Ctx, Decision, Description, Executor, Outcome, Phase, RunOptions, RunRecord, Runbook,
    ScriptedConfirmer, Status, StepKind, TokioClock, Verdict, async_trait,
};

const TEAM: &str = include_str!("fixtures/escola-runbook.md");

/// Stands in for a command: the real ones need `php` and the application.
struct Fake {
    delay: Duration,
    outcome: Outcome,
    description: Description,
}

#[async_trait]
impl Check for Fake {
    fn describe(&self) -> Description {
        self.description.clone()
    }
    async fn run(&self, _ctx: &Ctx) -> Outcome {
        tokio::time::sleep(self.delay).await;
        self.outcome.clone()
    }
}

fn fake_for(id: &str, description: Description) -> Fake {
    let (delay, outcome) = match id {
        "entrar-em-modo-manutencao-opcional" => (
            Duration::from_secs(2),
            Outcome::failed("`php artisan down` exited with 1, expected 0")
                .with_evidence("stderr", "Could not open input file: artisan"),
        ),
        "executar-migrations" => (
            Duration::from_secs(95),
            Outcome::passed(
                "`php vendor/bin/doctrine-migrations migrate --no-interaction` exited with 0",
            )
            .with_evidence(
                "stdout",
                "Migrating up to 20261128120000\n3 migrations executed",
            ),
        ),
        _ => (
            Duration::from_millis(300),
            Outcome::check_error(
                "cannot start `php artisan up`: `php` is not installed or not on PATH",
            ),
        ),
    };
    Fake {
        delay,
        outcome,
        description,
    }
}

/// The runbook imported from `md`, with the deploy phase (the second) set
/// to roll back on failure when there is a rollback phase (as a team would
/// in the TOML), and its commands faked.
fn runbook_of(md: &str) -> Runbook {
    let mut imported = markdown::import(
        md,
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    );
    let has_rollback = imported
        .file
        .phases
        .iter()
        .any(|p| p.kind == escola_runbook_core::PhaseKind::Rollback);
    imported.file.phases[1].rollback_on_failure = has_rollback;
    let (runbook, _) = imported
        .file
        .to_runbook(&escola_runbook_checks::catalog(), std::path::Path::new(""))
        .unwrap();
    let meta = runbook.metadata().clone();
    let mut builder = Runbook::builder(runbook.name());
    for c in meta.contacts {
        builder = builder.contact(c.role, c.handle);
    }
    for (term, meaning) in meta.glossary {
        builder = builder.glossary(term, meaning);
    }
    for phase in runbook.phases() {
        let mut p: Phase = phase.clone();
        for step in &mut p.steps {
            if let StepKind::Check(check) = &step.kind {
                step.kind = StepKind::Check(Arc::new(fake_for(&step.id, check.describe())));
            }
        }
        builder = builder.phase(p);
    }
    builder.build().unwrap()
}

async fn run(md: &str) -> RunRecord {
    let confirmer = ScriptedConfirmer::new("ana")
        .answer(
            "sincronizar-janela-com-infra-produto-evitar",
            Decision::Confirmed,
            Some("janela 02:00–04:00 com Infra"),
        )
        .answer(
            "limpar-filas-cron-sim-se-aplicavel-para-evitar",
            Decision::Skipped,
            None,
        )
        .otherwise(Decision::Confirmed);
    Executor::new(runbook_of(md))
        .options(RunOptions {
            run_id: Some("20261129T020000Z-beef".into()),
            operator: "ana".into(),
            host: "deploy-01".into(),
            ..RunOptions::default()
        })
        .clock(Arc::new(TokioClock::starting_at(
            Utc.with_ymd_and_hms(2026, 11, 29, 2, 0, 0).unwrap(),
        )))
        .confirmer(Arc::new(confirmer))
        .run()
        .await
        .unwrap()
}

fn is_evidence(line: &str) -> bool {
    line.trim_start().starts_with("> **run:**")
}

#[tokio::test(start_paused = true)]
async fn the_team_document_becomes_the_deploy_record() {
    let record = run(TEAM).await;
    assert_eq!(record.verdict, Some(Verdict::RolledBack));
    let imported = markdown::import(
        TEAM,
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    );
    let exported = markdown::export(TEAM, &imported.source_map, &record).unwrap();
    insta::assert_snapshot!("team_runbook_after_run", exported);

    // One evidence line per step and one for the run; every other line is
    // the team's own, with only its checkbox changed.
    let steps = record.steps().count();
    assert_eq!(
        exported.lines().filter(|l| is_evidence(l)).count(),
        steps + 1
    );
    let last = exported.lines().last().unwrap();
    assert!(
        last.contains("`20261129T020000Z-beef` — **ROLLED BACK** (exit code 3)"),
        "{last}"
    );
    assert!(
        last.contains("rollback triggered by `retomar-trafego` (CHECK ERROR)"),
        "{last}"
    );
    let kept: Vec<&str> = exported.lines().filter(|l| !is_evidence(l)).collect();
    let original: Vec<&str> = TEAM.lines().collect();
    assert_eq!(
        kept.len(),
        original.len() + 1,
        "only a blank line before the run line"
    );
    assert_eq!(kept.last(), Some(&""));
    let anchor_lines: Vec<usize> = imported.source_map.steps.iter().map(|a| a.line).collect();
    for (n, (k, o)) in kept.iter().zip(&original).enumerate() {
        if !anchor_lines.contains(&(n + 1)) {
            assert_eq!(k, o, "line {} changed", n + 1);
        }
    }
    // Each step's line carries the box its status deserves.
    for anchor in &imported.source_map.steps {
        let (_, step) = record
            .steps()
            .find(|(_, s)| s.outline.id == anchor.step_id)
            .unwrap();
        let line = kept[anchor.line - 1];
        let want = match step.status() {
            Status::Passed | Status::Warned => "[x]",
            Status::Skipped | Status::NotRun => "[ ]",
            _ => "[!]",
        };
        assert!(
            line.contains(want),
            "{}: {line:?} lacks {want}",
            anchor.step_id
        );
    }

    // The record document imports back into the same steps.
    let again = markdown::import(
        &exported,
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    );
    let ids = |f: &escola_runbook_core::formats::runbook_file::RunbookFile| {
        f.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| (s.id.clone(), s.title.clone())))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again.file), ids(&imported.file));

    // The convenience entry point does the same.
    assert_eq!(markdown::export_run(TEAM, &record).unwrap(), exported);
}

#[tokio::test(start_paused = true)]
async fn export_refuses_another_document_or_run() {
    let record = run(TEAM).await;
    let imported = markdown::import(
        TEAM,
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    );
    let edited = TEAM.replace("Snapshot do banco", "Snapshot do DB");
    assert_eq!(
        markdown::export(&edited, &imported.source_map, &record),
        Err(ExportError::DocumentChanged)
    );
    let other = "## Outro\n- [ ] nada a ver\n";
    let err = markdown::export_run(other, &record).unwrap_err();
    assert!(
        matches!(err, ExportError::NotThisRun { steps: 1, .. }),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn crlf_documents_stay_crlf() {
    let crlf = TEAM.replace('\n', "\r\n");
    let record = run(&crlf).await;
    let exported = markdown::export_run(&crlf, &record).unwrap();
    assert!(exported.len() > crlf.len());
    assert!(
        !exported.replace("\r\n", "").contains('\n'),
        "a bare LF was written"
    );
    assert_eq!(
        exported.replace("\r\n", "\n"),
        markdown::export_run(TEAM, &run(TEAM).await).unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn a_table_of_steps_is_ticked_in_its_cells_and_stays_whole() {
    const TABLES: &str = include_str!("fixtures/styles/tables.md");
    let record = run(TABLES).await;
    let exported = markdown::export_run(TABLES, &record).unwrap();
    insta::assert_snapshot!("tables_after_run", exported);
    // Each boxed row is ticked where it stands, and the table keeps all its
    // rows together: the evidence lines come after it, in row order, each
    // naming its step.
    let lines: Vec<&str> = exported.lines().collect();
    let row = |text: &str| lines.iter().position(|l| l.contains(text)).unwrap();
    assert!(lines[row("Freeze the app store release")].starts_with("| [x] |"));
    assert!(lines[row("Snapshot `sessions`")].starts_with("| [x] |"));
    assert_eq!(row("Coffee for everyone"), row("Snapshot `sessions`") + 1);
    let after = row("Coffee for everyone") + 1;
    assert!(
        lines[after].starts_with("> **run:** `freeze-the-app-store-release` passed"),
        "{}",
        lines[after]
    );
    assert!(lines[after + 1].starts_with("> **run:** `snapshot-sessions` passed"));
    // The record imports back into the same steps (now ticked).
    let steps = |md: &str| {
        markdown::import(
            md,
            &ImportOptions::default(),
            &escola_runbook_checks::catalog(),
        )
        .file
        .phases
        .iter()
        .flat_map(|p| {
            p.steps
                .iter()
                .map(|s| (s.id.clone(), s.title.clone(), s.instructions.clone()))
        })
        .collect::<Vec<_>>()
    };
    assert_eq!(steps(&exported), steps(TABLES));
}
