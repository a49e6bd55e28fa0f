//! `import`, `export-runbook`, `run --markdown`, `plan --runbook` and
//! `report --original` as a user runs them.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_escola-runbook"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TEAM: &str = include_str!("../../escola-runbook-checks/tests/fixtures/escola-runbook.md");

#[test]
fn import_writes_a_runbook_file_and_names_the_typo_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("RUNBOOK.md"), TEAM).unwrap();
    let out = run_in(dir.path(), &["import", "RUNBOOK.md", "-o", "runbook.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RUNBOOK.md: line 61: malformed checkbox `[ ]]`"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("imported 7 phases, 40 steps"),
        "{}",
        stderr(&out)
    );
    let plan = run_in(dir.path(), &["plan", "--runbook", "runbook.toml"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(String::from_utf8_lossy(&plan.stdout).contains("7 phases, 40 steps"));

    let strict = run_in(dir.path(), &["import", "RUNBOOK.md", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stdout).starts_with("# escola-runbook runbook file"));

    let missing = run_in(dir.path(), &["import", "NOPE.md"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("NOPE.md"), "{}", stderr(&missing));
}

#[test]
fn the_exported_built_in_runbook_plans_like_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["export-runbook", "-o", "escola.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let builtin = run_in(dir.path(), &["plan", "--format", "json"]);
    let from_file = run_in(
        dir.path(),
        &["plan", "--format", "json", "--runbook", "escola.toml"],
    );
    assert_eq!(from_file.status.code(), Some(0), "{}", stderr(&from_file));
    let a: serde_json::Value = serde_json::from_slice(&builtin.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    assert_eq!(a["runbook"]["phases"].as_array().map(Vec::len), Some(7));
    if out.stderr.is_empty() {
        // Every built-in step is expressible: the plans are the same.
        assert_eq!(a, b);
    }
}

#[test]
fn a_bad_runbook_file_names_file_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"x\"\n[[phases]]\nid = \"a\"\ntitle = \"A\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\ncheck = \"comand\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["plan", "--runbook", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "bad.toml:8:9: step `s`: no built-in check is called `comand` (did you mean `command`?)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_markdown_runbook_runs_and_its_document_becomes_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let doc = "# Mini\n\n## Deploy\n- [ ] Build\n  ```bash\n  echo building > built.txt\n  ```\n- [ ] Olhar o painel\n- [ ] Falha\n  ```sh\n  exit 3\n  ```\n\n## Depois\n- [ ] Retro\n";
    std::fs::write(dir.path().join("RUNBOOK.md"), doc).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "run",
            "--markdown",
            "RUNBOOK.md",
            "--yes",
            "--operator",
            "ana",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Commands ran in --app-dir (here the current directory).
    assert!(dir.path().join("built.txt").is_file());
    let report = run_in(
        dir.path(),
        &["report", "latest", "--original", "RUNBOOK.md"],
    );
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let md = String::from_utf8(report.stdout).unwrap();
    assert!(
        md.contains("- [x] Build\n  > **run:** passed — `echo building > built.txt` exited with 0"),
        "{md}"
    );
    assert!(
        md.contains("- [x] Olhar o painel\n  > **run:** passed — confirmed by ana (pre-approved"),
        "{md}"
    );
    assert!(
        md.contains("- [!] Falha\n  > **run:** FAILED — `exit 3` exited with 3, expected 0"),
        "{md}"
    );
    assert!(md.contains("- [ ] Retro\n  > **run:** not run"), "{md}");
    assert!(md.contains("**FAILED** (exit code 1) · ana on"), "{md}");

    std::fs::write(dir.path().join("OTHER.md"), "## X\n- [ ] y\n").unwrap();
    let wrong = run_in(dir.path(), &["report", "latest", "--original", "OTHER.md"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("was the run made from this document?"),
        "{}",
        stderr(&wrong)
    );
    let json = run_in(
        dir.path(),
        &[
            "report",
            "latest",
            "--original",
            "RUNBOOK.md",
            "--format",
            "json",
        ],
    );
    assert_eq!(json.status.code(), Some(2));
}

const MIXED: &str =
    include_str!("../../escola-runbook-checks/tests/fixtures/styles/setext-atx-mixed.md");

#[test]
fn phase_level_overrides_the_inferred_phases_and_refuses_bad_levels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rb.md"), MIXED).unwrap();
    let inferred = run_in(dir.path(), &["import", "rb.md"]);
    assert_eq!(inferred.status.code(), Some(0), "{}", stderr(&inferred));
    assert!(
        stderr(&inferred).contains("imported 4 phases, 10 steps"),
        "{}",
        stderr(&inferred)
    );
    assert!(
        stderr(&inferred).contains(
            "rb.md: line 15: `### Phase B — Rollout` is a phase like `Phase A` (line 6) although it is a level-3 heading"
        ),
        "{}",
        stderr(&inferred)
    );
    let level2 = run_in(dir.path(), &["import", "rb.md", "--phase-level", "2"]);
    assert_eq!(level2.status.code(), Some(0), "{}", stderr(&level2));
    assert!(stderr(&level2).contains("imported 1 phases, 10 steps"));
    let plan = run_in(
        dir.path(),
        &["plan", "--markdown", "rb.md", "--phase-level", "3"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(String::from_utf8_lossy(&plan.stdout).contains("4 phases, 10 steps"));

    // Not a heading level: refused by value, exit 2.
    for bad in ["0", "7", "two", "2.5"] {
        let out = run_in(dir.path(), &["import", "rb.md", "--phase-level", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("`{bad}`")),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("1 (`#`) to 6"), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    // A level without headings: refused, naming the levels there are, and
    // nothing runs.
    let out = run_in(
        dir.path(),
        &[
            "run",
            "--markdown",
            "rb.md",
            "--phase-level",
            "5",
            "--dry-run",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "rb.md: phase level 5: the document has no level-5 heading (its headings are at levels 1, 2, 3, 4)"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join(".escola-runbook").exists());
    let out = run_in(dir.path(), &["import", "rb.md", "--phase-level", "6"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // Only with a Markdown runbook.
    let out = run_in(dir.path(), &["plan", "--phase-level", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--markdown"), "{}", stderr(&out));
}

/// A document in another style whose verify step fails after its rollout
/// ran: the document's own rollback section runs. The phase before the
/// first command (nothing to undo there) does not roll back.
#[test]
fn a_markdown_rollback_section_runs_when_a_later_phase_fails_after_a_change() {
    let doc = "Hotfix runbook\n==============\n\nPhase A: Before the window\n--------------------------\n- [ ] Tell the team\n\n### Phase B — Rollout\n- [ ] Deploy it\n  ```bash\n  echo deployed >> log.txt\n  ```\n\n### Phase C — Verify\n- [ ] Check it works\n  ```bash\n  test -f ok\n  ```\n\n### Phase D: Roll back\n- [ ] Revert it\n  ```bash\n  echo reverted >> log.txt\n  ```\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rb.md"), doc).unwrap();

    let plan = run_in(dir.path(), &["plan", "--markdown", "rb.md"]);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    for line in [
        "1. Phase A: Before the window  [phase-a-before-the-window] (normal)\n",
        "2. Phase B — Rollout  [phase-b-rollout] (normal, rollback on failure)\n",
        "3. Phase C — Verify  [phase-c-verify] (normal, rollback on failure)\n",
        "4. Phase D: Roll back  [phase-d-roll-back] (rollback)\n",
    ] {
        assert!(plan_text.contains(line), "{line}{plan_text}");
    }

    let out = run_in(dir.path(), &["run", "--yes", "--markdown", "rb.md"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    assert_eq!(log, "deployed\nreverted\n");
    assert!(
        stderr(&out).contains("a failure from `Phase B — Rollout` (line 8) on runs it"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_columns_line_up_past_a_long_imported_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.md"),
        "# Notas\n\n## Deploy\n- [ ] Rodar migrações: `php artisan migrate --force`\n- [ ] Curto\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["import", "notes.md", "-o", "notes.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = run_in(dir.path(), &["plan", "--runbook", "notes.toml"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    let long = "rodar-migracoes-php-artisan-migrate-force";
    let kind_at = |line: &str| line.find("manual").unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" manual ") && !l.contains("phases,"))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].contains(long), "{text}");
    assert_eq!(kind_at(rows[0]), kind_at(rows[1]), "{text}");
    // The run/dry-run lines start under the kind column.
    let run = text
        .lines()
        .find(|l| l.trim_start().starts_with("run:"))
        .unwrap();
    assert_eq!(run.find("run:"), Some(kind_at(rows[0])), "{text}");
}

#[test]
fn run_lines_put_titles_in_one_column_past_a_long_imported_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.md"),
        "# Notas\n\n## Deploy\n- [ ] Rodar migrações: `php artisan migrate --force`\n- [ ] Curto\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["run", "--markdown", "notes.md", "--dry-run", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    let title_at = |title: &str| {
        text.lines()
            .find(|l| l.starts_with("  skipped") && l.ends_with(title))
            .and_then(|l| l.find(title))
            .unwrap_or_else(|| panic!("no line ends with {title}: {text}"))
    };
    assert_eq!(
        title_at("Rodar migrações: `php artisan migrate --force`"),
        title_at("Curto"),
        "{text}"
    );
}

#[test]
fn a_failed_command_shows_the_last_lines_it_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rb.toml"),
        r#"format = 1
name = "tail"
[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "migrate"
title = "Migrar"
command = "echo progress; for i in 1 2 3 4 5 6 7; do echo \"error line $i\" >&2; done; exit 3"
"#,
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "--runbook", "rb.toml", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    let shown: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("| "))
        .collect();
    assert_eq!(
        shown,
        [
            "error line 3",
            "error line 4",
            "error line 5",
            "error line 6",
            "error line 7"
        ],
        "{text}"
    );
}
