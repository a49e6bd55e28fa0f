//! Markdown import: the team's runbook, documents written in other styles
//! (`fixtures/styles/`), messy inputs, bindings.

use std::collections::BTreeSet;

use escola_runbook_core::PhaseKind;
use escola_runbook_core::formats::markdown::{self, ImportOptions, Imported};
use escola_runbook_core::formats::runbook_file::{self, RunbookFile};

const TEAM: &str = include_str!("fixtures/escola-runbook.md");

fn import(md: &str) -> Imported {
    let imported = markdown::import(
        md,
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    );
    assert_invariants(md, &imported);
    imported
}

/// What must hold for any input: unique slug ids, anchors inside the
/// document on character boundaries, a file that survives TOML and builds.
fn assert_invariants(md: &str, imported: &Imported) {
    let mut ids = BTreeSet::new();
    for phase in &imported.file.phases {
        assert!(is_slug(&phase.id), "phase id {:?}", phase.id);
        for step in &phase.steps {
            assert!(is_slug(&step.id), "step id {:?}", step.id);
            assert!(ids.insert(step.id.clone()), "duplicate step id {}", step.id);
            assert!(!step.title.trim().is_empty(), "empty title for {}", step.id);
        }
    }
    assert_eq!(imported.source_map.steps.len(), ids.len());
    let line_count = md.lines().count().max(1);
    for a in &imported.source_map.steps {
        assert!(ids.contains(&a.step_id));
        assert!(a.evidence_at <= md.len() && md.is_char_boundary(a.evidence_at));
        if let Some(cb) = &a.checkbox {
            assert!(cb.end <= md.len());
            assert_eq!(&md[cb.start..cb.start + 1], "[");
            assert_eq!(&md[cb.end - 1..cb.end], "]");
        }
        if let Some(at) = a.insert_checkbox_at {
            assert!(md.is_char_boundary(at));
        }
        assert!(a.line >= 1 && a.line <= line_count);
    }
    let toml = imported.file.to_toml().unwrap();
    let back = runbook_file::parse(&toml, "imported.toml").unwrap();
    assert_eq!(back, imported.file, "TOML round trip");
    if imported
        .file
        .phases
        .iter()
        .all(|p| p.steps.iter().all(|s| s.check.is_none()))
    {
        let loaded =
            runbook_file::load_str(&toml, "imported.toml", &escola_runbook_checks::catalog());
        let phases_with_names = imported
            .file
            .phases
            .iter()
            .all(|p| !p.title.trim().is_empty());
        if phases_with_names && !imported.file.phases.is_empty() {
            loaded.unwrap();
        }
    }
}

fn is_slug(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn titles(file: &RunbookFile) -> Vec<(String, Vec<String>)> {
    file.phases
        .iter()
        .map(|p| {
            (
                p.title.clone(),
                p.steps.iter().map(|s| s.title.clone()).collect(),
            )
        })
        .collect()
}

#[test]
fn team_runbook_imports_into_its_seven_sections_and_every_item() {
    let imported = import(TEAM);
    let file = &imported.file;
    assert_eq!(file.name, "Escola Connect API — Runbook de Deploy");
    let phases: Vec<(&str, &str, usize)> = file
        .phases
        .iter()
        .map(|p| (p.id.as_str(), p.title.as_str(), p.steps.len()))
        .collect();
    assert_eq!(
        phases,
        [
            ("pre-deploy", "Pré-Deploy", 9),
            ("deploy", "Deploy", 8),
            (
                "pos-deploy-imediato-0-30-min",
                "Pós-Deploy Imediato (0–30 min)",
                5
            ),
            (
                "monitoramento-estendido-30-min-24h",
                "Monitoramento Estendido (30 min – 24h)",
                7
            ),
            ("rollback", "Rollback", 6),
            ("pos-deploy-24h", "Pós-Deploy (24h+)", 3),
            ("checklists-de-suporte", "Checklists de Suporte", 2),
        ]
    );
    // The same number of items as the hand-written built-in runbook.
    let builtin = escola_runbook_checks::escola::runbook(&Default::default()).unwrap();
    let builtin_counts: Vec<usize> = builtin.phases().iter().map(|p| p.steps.len()).collect();
    let counts: Vec<usize> = file.phases.iter().map(|p| p.steps.len()).collect();
    assert_eq!(counts, builtin_counts);

    // Commands come from the fenced blocks, attached to their items.
    let deploy = &file.phases[1];
    let commands: Vec<(&str, Option<&str>)> = deploy
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.command.as_deref()))
        .filter(|(_, c)| c.is_some())
        .collect();
    assert_eq!(
        commands,
        [
            (
                "entrar-em-modo-manutencao-opcional",
                Some(r#"php artisan down --message="Atualizando Escola Connect API" --retry=60"#)
            ),
            (
                "executar-migrations",
                Some("php vendor/bin/doctrine-migrations migrate --no-interaction")
            ),
            ("retomar-trafego", Some("php artisan up")),
        ]
    );
    assert!(!deploy.steps[0].blocking, "(opcional) is advisory");
    assert_eq!(
        deploy.steps[3].section.as_deref(),
        Some("Deploy da aplicação")
    );
    // Inline code stays text.
    assert_eq!(
        deploy.steps[4].title,
        "Realizar `php vendor/bin/phpunit` no host ou pipeline."
    );
    assert!(deploy.steps[4].command.is_none());

    // Contacts and glossary are metadata, not steps.
    let contacts: Vec<(&str, &str)> = file
        .metadata
        .contacts
        .iter()
        .map(|c| (c.role.as_str(), c.handle.as_str()))
        .collect();
    assert_eq!(
        contacts,
        [
            ("Dev on-call", "@dev-escola"),
            ("SRE / Infra", "@infra"),
            ("Produto / Operações", "@produto-escola")
        ]
    );
    assert_eq!(
        file.metadata.glossary.keys().collect::<Vec<_>>(),
        ["If-Match", "Trace-Id"]
    );
    assert!(
        file.phases
            .iter()
            .all(|p| p.steps.iter().all(|s| !s.title.contains("@infra")))
    );

    // The `[ ]]` typo: imported, with a warning naming its line.
    assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
    assert_eq!(imported.warnings[0].line, 61);
    assert!(imported.warnings[0].message.contains("`[ ]]`"));
    assert_eq!(TEAM.lines().nth(60).map(|l| l.contains("[ ]]")), Some(true));

    // The whole model, as the TOML a team would edit.
    insta::assert_snapshot!("team_runbook_toml", imported.file.to_toml().unwrap());

    // And it builds.
    let loaded = markdown::load_str(
        TEAM,
        "RUNBOOK.md",
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    )
    .unwrap();
    assert_eq!(loaded.runbook.phases().len(), 7);
    assert_eq!(
        loaded.runbook.rollback_phase().map(|p| p.id.as_str()),
        Some("rollback")
    );
}

#[test]
fn crlf_and_lf_import_the_same() {
    let crlf = TEAM.replace('\n', "\r\n");
    let a = import(TEAM);
    let b = import(&crlf);
    assert_eq!(titles(&a.file), titles(&b.file));
    assert_eq!(a.file.metadata, b.file.metadata);
    assert_eq!(b.warnings[0].line, 61);
}

#[test]
fn mixed_bullets_and_ticked_items() {
    let md = "## Passos\n- [ ] a\n* [ ] b\n+ [x] c\n\n1. [ ] d\n2) [X] e\n- `[ ]` f\n- `[x]` g\n";
    let imported = import(md);
    let steps = &imported.file.phases[0].steps;
    let t: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(t, ["a", "b", "c", "d", "e", "f", "g"]);
    let ticked: Vec<&str> = steps
        .iter()
        .filter(|s| s.notes.iter().any(|n| n.contains("already ticked")))
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(ticked, ["c", "e", "g"]);
    let lines: Vec<usize> = imported.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [4, 7, 9]);
}

#[test]
fn emphasis_strikethrough_and_malformed_boxes() {
    let md = "# Deploy\n\
- **[ ]** bold box\n\
- *[ ] italic box*\n\
- ~~[ ] struck whole~~\n\
- [ ] ~~struck text~~\n\
- [ ] keep ~~part~~ of it\n\
- [] empty box\n\
- [ ]] typo box\n\
- [link] is not a box\n";
    let imported = import(md);
    let t: Vec<&str> = imported.file.phases[0]
        .steps
        .iter()
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(
        t,
        [
            "bold box",
            "italic box",
            "keep of it",
            "empty box",
            "typo box",
            "[link] is not a box"
        ]
    );
    let anchors = &imported.source_map.steps;
    assert!(anchors[..5].iter().all(|a| a.checkbox.is_some()));
    assert!(anchors[5].checkbox.is_none());
    let msgs: Vec<(usize, &str)> = imported
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert!(
        msgs.iter()
            .any(|(l, m)| *l == 4 && m.contains("struck-through")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|(l, m)| *l == 5 && m.contains("struck-through")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|(l, m)| *l == 7 && m.contains("`[]`")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|(l, m)| *l == 8 && m.contains("`[ ]]`")),
        "{msgs:?}"
    );
}

#[test]
fn setext_headings_nested_sections_and_empty_sections() {
    let md = "Runbook\n=======\n\nPré-Deploy\n----------\n\n### Backups\n- [ ] snapshot\n\nVazio\n-----\n\nDeploy\n------\n- [ ] up\n\nDeploy\n------\n- [ ] again\n";
    let imported = import(md);
    let f = &imported.file;
    assert_eq!(f.name, "Runbook");
    let ids: Vec<&str> = f.phases.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["pre-deploy", "vazio", "deploy", "deploy-2"]);
    assert_eq!(f.phases[0].steps[0].section.as_deref(), Some("Backups"));
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.line == 10 && w.message.contains("no item"))
    );
}

#[test]
fn code_blocks_become_commands_of_their_item() {
    let md = r#"## Deploy
- [ ] Migrar
  ```console
  $ php artisan migrate
  Migrated: 2024_01_01
  ```
- [ ] Sem prompt
  ```console
  only output
  ```
- [ ] Config em YAML
  ```yaml
  a: 1
  ```
- [ ] Dois comandos
  ```sh
  composer install
  php artisan config:cache
  ```

```bash
php artisan up
```
"#;
    let imported = import(md);
    let steps = &imported.file.phases[0].steps;
    assert_eq!(steps[0].command.as_deref(), Some("php artisan migrate"));
    assert_eq!(steps[1].command, None);
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.line == 8 && w.message.contains("`$ `"))
    );
    assert_eq!(steps[2].command, None);
    assert!(steps[2].notes[0].contains("a: 1"));
    assert_eq!(
        steps[3].command.as_deref(),
        Some("set -e\ncomposer install\nphp artisan config:cache")
    );
    // A block after the list, not indented into the item: a step of its own
    // (the item above already has a command).
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[4].command.as_deref(), Some("php artisan up"));
    assert_eq!(steps[4].title, "`php artisan up`");
    assert!(
        steps
            .iter()
            .filter(|s| s.command.is_some())
            .all(|s| s.timeout.is_some())
    );
}

#[test]
fn bindings_turn_items_into_built_in_checks() {
    let md = r#"## Deploy
- [ ] Versão do PHP
  <!-- check: command program=php args=--version read_only=true -->
- [ ] Inline <!-- check: command shell="echo ok" -->
- [ ] Typo
<!-- check: comand shell=true -->
"#;
    let imported = import(md);
    let steps = &imported.file.phases[0].steps;
    assert_eq!(steps[0].check.as_deref(), Some("command"));
    assert_eq!(
        steps[0].params.get("program").and_then(|v| v.as_str()),
        Some("php")
    );
    assert_eq!(steps[1].check.as_deref(), Some("command"));
    assert_eq!(
        steps[1].params.get("shell").and_then(|v| v.as_str()),
        Some("echo ok")
    );
    assert_eq!(steps[1].title, "Inline");
    assert_eq!(steps[2].check.as_deref(), Some("comand"));
    let w = &imported.warnings[0];
    assert_eq!(w.line, 6);
    assert!(w.message.contains("did you mean `command`?"), "{w}");
    // Loading refuses it, naming the item's line.
    let err = markdown::load_str(
        md,
        "RUNBOOK.md",
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("RUNBOOK.md:5: "), "{text}");
    assert!(text.contains("did you mean `command`?"), "{text}");
}

#[test]
fn contacts_and_glossary_headings_fill_metadata() {
    let md = "# R\n\n## Deploy\n- [ ] x\n\n## Contatos\n- DBA: @dba\n- Infra — @infra\n- Ninguém\n\n## Glossary\n- **SLO** - objetivo\n";
    let imported = import(md);
    assert_eq!(imported.file.phases.len(), 1);
    let roles: Vec<&str> = imported
        .file
        .metadata
        .contacts
        .iter()
        .map(|c| c.role.as_str())
        .collect();
    assert_eq!(roles, ["DBA", "Infra", "Ninguém"]);
    assert_eq!(
        imported
            .file
            .metadata
            .glossary
            .get("SLO")
            .map(String::as_str),
        Some("objetivo")
    );
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.line == 9 && w.message.contains("Ninguém"))
    );
}

const MESSY: &[(&str, &str)] = &[
    ("empty", ""),
    ("whitespace", " \n\t\n   \r\n"),
    (
        "tabs",
        "#\tTabs\n-\t[ ]\ttabbed\n\t- [ ] nested with tab\n\t\t* [x] deeper\n",
    ),
    (
        "html",
        "<div>\n- [ ] inside html\n</div>\n\n<details><summary>x</summary>\n\n- [ ] in details\n\n</details>\n<!-- check: nothing -->\n",
    ),
    (
        "table",
        "## T\n| a | b |\n|---|---|\n| [ ] x | `y` |\n\n- [ ] after table\n",
    ),
    (
        "unclosed fence",
        "## A\n- [ ] x\n  ```bash\n  echo never closed\n",
    ),
    ("only headings", "# A\n## B\n### C\n#### D\n"),
    (
        "headings in items",
        "- # heading item\n- [ ] x\n  ## nested heading\n  - [ ] y\n",
    ),
    (
        "links",
        "## L\n- [ ] see [docs](https://x/y) and <https://z>\n- [ ] [](empty)\n",
    ),
    ("footnotes", "## F\n- [ ] item[^1]\n\n[^1]: note\n"),
    ("unicode", "## Ünïcødé 🚀\n- [ ] ✅ çãõ — 漢字\n- [ ] 🚀\n"),
    ("numbers only", "## 1.\n- [ ] 2.\n## 3)\n"),
    (
        "quotes",
        "> ## Quoted heading\n> - [ ] quoted item\n>> - [ ] deeper\n",
    ),
    (
        "binding without item",
        "<!-- check: command shell=true -->\n## A\n<!-- check: \"unterminated -->\n",
    ),
    ("lonely boxes", "- [ ]\n- [x]\n- `[ ]`\n"),
    ("setext list confusion", "- [ ] a\n---\n- [ ] b\n===\n"),
];

#[test]
fn messy_inputs_import_without_panic() {
    for (name, md) in MESSY {
        let imported = markdown::import(
            md,
            &ImportOptions::default(),
            &escola_runbook_checks::catalog(),
        );
        assert_invariants(md, &imported);
        let crlf = md.replace('\n', "\r\n");
        let imported_crlf = markdown::import(
            &crlf,
            &ImportOptions::default(),
            &escola_runbook_checks::catalog(),
        );
        assert_invariants(&crlf, &imported_crlf);
        assert_eq!(
            titles(&imported.file),
            titles(&imported_crlf.file),
            "{name}: CRLF changes the import"
        );
    }
}

#[test]
fn messy_inputs_keep_what_they_can() {
    let get = |name: &str| {
        let md = MESSY.iter().find(|(n, _)| *n == name).unwrap().1;
        import(md)
    };
    let tabs = get("tabs");
    let t: Vec<String> = tabs.file.phases[0]
        .steps
        .iter()
        .map(|s| s.title.clone())
        .collect();
    assert_eq!(t, ["tabbed", "nested with tab", "deeper"]);
    // A row with a checkbox cell is a step; its other cells, under their
    // headers, are its instructions.
    let table = get("table");
    let steps = &table.file.phases[0].steps;
    assert_eq!(
        steps.iter().map(|s| s.title.as_str()).collect::<Vec<_>>(),
        ["x", "after table"]
    );
    assert_eq!(steps[0].instructions.as_deref(), Some("b: `y`"));
    let unclosed = get("unclosed fence");
    assert_eq!(
        unclosed.file.phases[0].steps[0].command.as_deref(),
        Some("echo never closed")
    );
    let lonely = get("lonely boxes");
    assert!(lonely.file.phases.iter().all(|p| p.steps.is_empty()));
    assert_eq!(
        lonely
            .warnings
            .iter()
            .filter(|w| w.message.contains("no text"))
            .count(),
        3
    );
    let binding = get("binding without item");
    assert!(
        binding
            .warnings
            .iter()
            .any(|w| w.line == 1 && w.message.contains("follows no list item"))
    );
    assert!(
        binding
            .warnings
            .iter()
            .any(|w| w.line == 3 && w.message.contains("quote"))
    );
    let links = get("links");
    assert_eq!(
        links.file.phases[0].steps[0].title,
        "see docs (https://x/y) and https://z"
    );
}

#[test]
fn a_very_long_generated_document_imports() {
    let mut md = String::from("# Big\n");
    for s in 0..400 {
        md.push_str(&format!("\n## Seção {s}\n\n**Parte**\n"));
        for i in 0..25 {
            md.push_str(&format!(
                "- [ ] Item {i} da seção {s} `cmd {i}`\n  - [x] sub {i}\n"
            ));
        }
        md.push_str("```bash\necho done\n```\n");
    }
    let deep = "  ".repeat(200);
    md.push_str(&format!("{deep}- [ ] very indented\n"));
    md.push_str(&"- ".repeat(2000));
    md.push_str("[ ] deep list\n");
    md.push_str(&format!("- [ ] {}\n", "long ".repeat(20_000)));
    let imported = import(&md);
    assert!(imported.file.phases.len() >= 400);
    assert_eq!(imported.file.phases[0].steps.len(), 51);
    assert_eq!(
        imported.file.phases[399].steps[0].id,
        "item-0-da-secao-399-cmd-0"
    );
}

/// `tests/fixtures/styles/NAME.md`, loaded as `run --markdown` loads it
/// (so a document without headings has its phase named after the file).
fn style(name: &str) -> (String, Imported) {
    style_with(name, &ImportOptions::default())
}

fn style_with(name: &str, options: &ImportOptions) -> (String, Imported) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/styles")
        .join(format!("{name}.md"));
    let md = std::fs::read_to_string(&path).unwrap();
    let loaded = markdown::load(&path, options, &escola_runbook_checks::catalog()).unwrap();
    assert_invariants(&md, &loaded.imported);
    (md, loaded.imported)
}

/// The imported plan as a reviewer reads it: the warnings with their
/// lines, then the runbook file.
fn plan_text(imported: &Imported) -> String {
    let mut out = String::from("# warnings\n");
    for w in &imported.warnings {
        out.push_str(&format!("{w}\n"));
    }
    out.push_str("\n# runbook file\n");
    out.push_str(&imported.file.to_toml().unwrap());
    out
}

/// `(phase title, kind, step count)` per phase.
fn phases(file: &RunbookFile) -> Vec<(&str, PhaseKind, usize)> {
    file.phases
        .iter()
        .map(|p| (p.title.as_str(), p.kind, p.steps.len()))
        .collect()
}

fn warning_lines(imported: &Imported) -> Vec<usize> {
    imported.warnings.iter().map(|w| w.line).collect()
}

/// Checks that `line` (1-based) of `md` contains `text`: the warnings
/// name the right lines.
fn line_has(md: &str, line: usize, text: &str) {
    let got = md.lines().nth(line - 1).unwrap_or("");
    assert!(got.contains(text), "line {line} is {got:?}, not {text:?}");
}

#[test]
fn setext_and_atx_headings_named_alike_are_four_phases() {
    let (md, imported) = style("setext-atx-mixed");
    let file = &imported.file;
    assert_eq!(file.name, "Payments API deploy");
    assert_eq!(
        phases(file),
        [
            ("Phase A: Before the window", PhaseKind::Normal, 2),
            ("Phase B — Rollout", PhaseKind::Normal, 3),
            ("Phase C — Verify (first 20 minutes)", PhaseKind::Normal, 3),
            ("Phase D: Roll back", PhaseKind::Rollback, 2),
        ]
    );
    // The struck-through item is not a step; the level-4 heading is a
    // section of phase B.
    assert!(
        file.phases
            .iter()
            .all(|p| p.steps.iter().all(|s| !s.title.contains("cron")))
    );
    assert_eq!(
        file.phases[1].steps[2].section.as_deref(),
        Some("While it rolls out")
    );
    assert_eq!(warning_lines(&imported), [15, 21, 33, 42, 42]);
    line_has(&md, 15, "### Phase B");
    line_has(&md, 21, "~~Old step");
    assert!(
        imported.warnings[0].message
            == "`### Phase B — Rollout` is a phase like `Phase A` (line 6) although it is a level-3 heading",
        "{}",
        imported.warnings[0]
    );
    assert!(
        imported.warnings[4]
            .message
            .contains("is the rollback phase")
    );
    insta::assert_snapshot!("style_setext_atx_mixed", plan_text(&imported));
    // It builds, with D as the runbook's rollback phase.
    let loaded = markdown::load_str(
        &md,
        "rb.md",
        &ImportOptions::default(),
        &escola_runbook_checks::catalog(),
    )
    .unwrap();
    assert_eq!(
        loaded.runbook.rollback_phase().map(|p| p.id.as_str()),
        Some("phase-d-roll-back")
    );
}

#[test]
fn numbered_headings_are_phases_and_sub_numbers_their_sections() {
    let (md, imported) = style("numbered");
    assert_eq!(
        phases(&imported.file),
        [
            ("Preparation", PhaseKind::Normal, 2),
            ("Deploy", PhaseKind::Normal, 3),
            ("Verify", PhaseKind::Normal, 3),
            ("Rollback", PhaseKind::Rollback, 1),
        ]
    );
    let deploy = &imported.file.phases[1];
    assert_eq!(
        deploy.steps[2].section.as_deref(),
        Some("2.1 Cache warm-up")
    );
    assert_eq!(
        deploy.steps[1].command.as_deref(),
        Some("kubectl rollout restart deploy/search")
    );
    assert_eq!(warning_lines(&imported), [14, 17, 21]);
    line_has(&md, 14, "## 2.1");
    line_has(&md, 17, "### 3. Verify");
    line_has(&md, 21, "### Dashboards");
    assert!(
        imported.warnings[1]
            .message
            .contains("like `1) Preparation` (line 3)"),
        "{}",
        imported.warnings[1]
    );
    insta::assert_snapshot!("style_numbered", plan_text(&imported));
}

#[test]
fn portuguese_fases_and_a_reversao_heading() {
    let (md, imported) = style("fases");
    let file = &imported.file;
    assert_eq!(file.name, "Deploy do App Merenda");
    assert_eq!(
        phases(file),
        [
            ("Fase 1 — Preparação", PhaseKind::Normal, 2),
            ("Fase 2 — Deploy", PhaseKind::Normal, 2),
            ("Fase 3: Monitoramento (30 min)", PhaseKind::Watch, 1),
            ("Reversão", PhaseKind::Rollback, 2),
        ]
    );
    assert_eq!(file.phases[0].steps[1].check.as_deref(), Some("command"));
    let roles: Vec<&str> = file
        .metadata
        .contacts
        .iter()
        .map(|c| c.role.as_str())
        .collect();
    assert_eq!(roles, ["Plantão", "DBA"]);
    assert_eq!(warning_lines(&imported), [9, 16, 19]);
    line_has(&md, 19, "### Reversão");
    insta::assert_snapshot!("style_fases", plan_text(&imported));
}

#[test]
fn bold_paragraphs_are_the_phases_of_a_document_without_headings() {
    let (md, imported) = style("bold-sections");
    assert_eq!(
        phases(&imported.file),
        [
            ("Before", PhaseKind::Normal, 2),
            ("Deploy", PhaseKind::Normal, 2),
            ("After", PhaseKind::Normal, 1),
            ("Rollback", PhaseKind::Rollback, 2),
        ]
    );
    assert_eq!(warning_lines(&imported), [3, 7, 14, 17]);
    line_has(&md, 14, "**After:**");
    assert!(
        imported
            .warnings
            .iter()
            .all(|w| w.message.contains("read as a phase heading"))
    );
    insta::assert_snapshot!("style_bold_sections", plan_text(&imported));
}

#[test]
fn a_document_without_headings_is_one_phase_named_after_its_file() {
    let (md, imported) = style("hotfix-checklist");
    assert_eq!(
        phases(&imported.file),
        [("hotfix-checklist", PhaseKind::Normal, 5)]
    );
    // Its text is the phase's, not a section label.
    assert_eq!(
        imported.file.phases[0].notes,
        [
            "Hotfix checklist — use it for any production hotfix.",
            "Done when the error rate is back to normal."
        ]
    );
    assert!(
        imported.file.phases[0]
            .steps
            .iter()
            .all(|s| s.section.is_none())
    );
    assert_eq!(warning_lines(&imported), [1, 9]);
    assert!(imported.warnings[0].message.contains("no heading"));
    insta::assert_snapshot!("style_hotfix_checklist", plan_text(&imported));
    // Without a file name, the phase is "Runbook".
    let bare = import(&md);
    assert_eq!(bare.file.phases[0].title, "Runbook");
}

#[test]
fn table_rows_with_a_checkbox_are_steps_and_other_tables_notes() {
    let (md, imported) = style("tables");
    let file = &imported.file;
    assert_eq!(
        phases(file),
        [
            ("Before", PhaseKind::Normal, 2),
            ("Cutover", PhaseKind::Normal, 3),
        ]
    );
    let before = &file.phases[0];
    assert_eq!(before.steps[0].title, "Freeze the app store release");
    assert_eq!(
        before.steps[0].instructions.as_deref(),
        Some("Owner: @mobile\nNotes: until the cutover ends")
    );
    assert_eq!(before.notes, ["Step: Coffee for everyone"]);
    let cutover = &file.phases[1];
    let titles: Vec<&str> = cutover.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Switch the DNS record",
            "Health answers 200",
            "Old endpoint answers 410"
        ]
    );
    // The table without boxes is kept whole, as written.
    assert_eq!(
        cutover.notes[1],
        "| Endpoint | Expected |\n|----------|----------|\n| `/v2/health` | 200 |\n| `/v2/login` | 401 without a token |"
    );
    let contacts: Vec<(&str, &str)> = file
        .metadata
        .contacts
        .iter()
        .map(|c| (c.role.as_str(), c.handle.as_str()))
        .collect();
    assert_eq!(contacts, [("On-call", "@mobile-oncall"), ("DBA", "@dba")]);
    // Each row's box is in its cell; the evidence goes after the table.
    let anchor = imported.source_map.anchor("snapshot-sessions").unwrap();
    assert_eq!(anchor.line, 8);
    assert_eq!(&md[anchor.checkbox.clone().unwrap()], "[ ]");
    assert!(anchor.after_table);
    assert_eq!(md[..anchor.evidence_at].lines().count(), 9);
    assert_eq!(warning_lines(&imported), [9, 25]);
    insta::assert_snapshot!("style_tables", plan_text(&imported));
}

#[test]
fn a_crlf_document_keeps_its_lines_and_clean_titles() {
    let (md, imported) = style("crlf");
    assert!(
        md.contains("\r\n"),
        "the fixture must keep its CRLF endings"
    );
    assert_eq!(
        phases(&imported.file),
        [
            ("Stage 1: Drain", PhaseKind::Normal, 2),
            ("Stage 2: Upgrade", PhaseKind::Normal, 1),
            ("Stage 3: Verify", PhaseKind::Normal, 3),
            ("Stage 4: Revert", PhaseKind::Rollback, 1),
        ]
    );
    assert_eq!(imported.file.name, "Cache cluster upgrade");
    let all = imported.file.to_toml().unwrap();
    assert!(!all.contains('\r'), "a \\r in a title, note or command");
    assert_eq!(
        imported.file.phases[1].steps[0].command.as_deref(),
        Some("sudo apt-get install --only-upgrade redis-server")
    );
    assert_eq!(warning_lines(&imported), [22, 28]);
    line_has(&md, 22, "[ ]]");
    line_has(&md, 28, "Stage 4: Revert");
    let anchor = imported.source_map.anchor("node-b").unwrap();
    line_has(&md, anchor.line, "| node B | [ ] |");
    // The same document with LF endings imports the same.
    let lf = import(&md.replace("\r\n", "\n"));
    assert_eq!(lf.file.phases, imported.file.phases);
    assert_eq!(lf.warnings, imported.warnings);
    insta::assert_snapshot!("style_crlf", plan_text(&imported));
}

#[test]
fn items_that_begin_struck_through_are_not_steps() {
    let (md, imported) = style("struck-items");
    let titles: Vec<&str> = imported.file.phases[0]
        .steps
        .iter()
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Stop the batch scheduler",
            "Deploy the batch jobs",
            "Run the new importer",
            "Keep one scheduler running",
        ]
    );
    assert_eq!(warning_lines(&imported), [4, 6, 8, 11]);
    for (w, text) in imported.warnings.iter().zip([
        "`Old step: restart cron (removed)`",
        "`Email the data team — now automatic`",
        "`Run the legacy importer`",
        "`Old checks` is not a step (nor is anything nested under it)",
    ]) {
        assert!(w.message.contains("struck-through item"), "{w}");
        assert!(w.message.contains(text), "{w}");
    }
    line_has(&md, 4, "~~Old step");
    insta::assert_snapshot!("style_struck_items", plan_text(&imported));
}

#[test]
fn a_revert_heading_is_the_rollback_phase_and_reverse_proxy_is_not() {
    let (_, imported) = style("revert");
    assert_eq!(
        phases(&imported.file),
        [
            ("Step 1 — Enable for staff", PhaseKind::Normal, 2),
            ("Step 2 — Enable for 10%", PhaseKind::Normal, 2),
            ("Check the reverse proxy", PhaseKind::Normal, 1),
            ("Step 3 — Enable for everyone", PhaseKind::Normal, 1),
            ("Revert", PhaseKind::Rollback, 2),
        ]
    );
    // Nothing a reader would not expect: no warning.
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    insta::assert_snapshot!("style_revert", plan_text(&imported));
}

#[test]
fn a_phase_level_overrides_the_inference() {
    let level = |n| ImportOptions {
        phase_level: Some(markdown::PhaseLevel::new(n).unwrap()),
        ..ImportOptions::default()
    };
    // Level 2: only `Phase A` (setext `---`) is a phase; B, C, D are its
    // sections, and D, deeper than the phases, is not the rollback phase.
    let (_, imported) = style_with("setext-atx-mixed", &level(2));
    assert_eq!(
        phases(&imported.file),
        [("Phase A: Before the window", PhaseKind::Normal, 10)]
    );
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.line == 42 && w.message.contains("not as the rollback phase"))
    );
    // Level 3: the title stays the name, every heading down to `###` is a
    // phase, and the level-4 heading a section.
    let (_, imported) = style_with("setext-atx-mixed", &level(3));
    assert_eq!(imported.file.phases.len(), 4);
    assert_eq!(imported.file.name, "Payments API deploy");
    // A level without headings is refused, naming the levels there are.
    let md = TEAM;
    let err = markdown::load_str(
        md,
        "RUNBOOK.md",
        &level(4),
        &escola_runbook_checks::catalog(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "RUNBOOK.md: phase level 4: the document has no level-4 heading (its headings are at levels 1, 2)"
    );
    let err = markdown::load_str(
        "- [ ] a\n",
        "x.md",
        &level(1),
        &escola_runbook_checks::catalog(),
    )
    .unwrap_err();
    assert!(err.to_string().ends_with("(it has no heading)"), "{err}");
    // The team's runbook at its own level imports as without the option.
    let same = markdown::load_str(
        md,
        "RUNBOOK.md",
        &level(2),
        &escola_runbook_checks::catalog(),
    )
    .unwrap();
    assert_eq!(same.imported.file, import(md).file);
}

#[test]
fn a_binding_is_typed_through_the_checks_schema_and_rebuilds_the_same_check() {
    use escola_runbook_checks::command::CommandCheck;
    use escola_runbook_core::{Check, StepKind};
    let md = r#"## Deploy
- [ ] Versão
  <!-- check: command program=sh args=-c args='echo "$1"' args=sh args='["a,b"]' secret_env.DATABASE_PASSWORD=db_password timeout=1500ms expect_exit=0,2 read_only=true -->
- [ ] Twice
  <!-- check: command shell=a shell=b -->
"#;
    let catalog = escola_runbook_checks::catalog();
    let loaded = markdown::load_str(md, "RUNBOOK.md", &ImportOptions::default(), &catalog).unwrap();
    let steps = &loaded.imported.file.phases[0].steps;
    assert_eq!(
        serde_json::Value::Object(steps[0].params.clone()),
        serde_json::json!({
            "program": "sh",
            "args": ["-c", "echo \"$1\"", "sh", "a,b"],
            "secret_env": { "DATABASE_PASSWORD": "db_password" },
            "timeout": "1500ms",
            "expect_exit": [0, 2],
            "read_only": true,
        })
    );
    let in_code = CommandCheck::exec("sh", ["-c", "echo \"$1\"", "sh", "a,b"])
        .secret_env("DATABASE_PASSWORD", "db_password")
        .timeout(std::time::Duration::from_millis(1500))
        .expect_exit([0, 2])
        .read_only();
    let StepKind::Check(bound) = &loaded.runbook.find_step("versao").unwrap().1.kind else {
        panic!("the binding makes a check")
    };
    assert_eq!(bound.params(), in_code.params());
    // A key given twice for a one-value parameter is not guessed at.
    assert_eq!(steps[1].check, None);
    let w = loaded
        .imported
        .warnings
        .iter()
        .find(|w| w.line == 5)
        .unwrap();
    assert!(
        w.message.contains("parameter `shell` is given twice")
            && w.message.contains("the item stays as it is"),
        "{w}"
    );
}
