//! The TOML runbook format: the built-in runbook round-trips, and mistakes
//! are reported with file, line, column and the nearest valid name.

use escola_runbook_checks::escola::{self, EscolaConfig};
use escola_runbook_core::formats::runbook_file::{self, RunbookFile, RunbookFileError};
use escola_runbook_core::{Automation, RunbookOutline, StepKind};

/// The built-in runbook with every automation it can be configured with
/// turned on, so the round trip covers every check it uses.
fn fully_configured() -> EscolaConfig {
    let config: serde_json::Value = serde_json::json!({
        "coverage": { "report": "build/coverage.xml", "min": 85.0, "max_age": "2h" },
        "ci_status": { "url": "https://ci.example/api/commit/main", "token_secret": "ci_token" },
        "docs": {},
        "changelog": { "version": "1.4.0" },
        "cdn_purge": { "base_url": "https://cdn.example", "token_secret": "cdn_token", "blocking": true },
        "app_log": { "max_errors": 3, "offset": "-03:00" },
        "metrics": { "url": "https://api.example/metrics", "baseline_window": "1m" },
    });
    EscolaConfig {
        release_dir: Some("/srv/escola/releases/1.4.0".into()),
        coverage: serde_json::from_value(config["coverage"].clone()).unwrap(),
        ci_status: serde_json::from_value(config["ci_status"].clone()).unwrap(),
        docs: serde_json::from_value(config["docs"].clone()).unwrap(),
        changelog: serde_json::from_value(config["changelog"].clone()).unwrap(),
        cdn_purge: serde_json::from_value(config["cdn_purge"].clone()).unwrap(),
        app_log: serde_json::from_value(config["app_log"].clone()).unwrap(),
        metrics: serde_json::from_value(config["metrics"].clone()).unwrap(),
        webhook_secret: Some(escola::WEBHOOK_SECRET.into()),
        ..EscolaConfig::default()
    }
}

#[test]
fn the_built_in_runbook_round_trips_through_a_file() {
    round_trip(&EscolaConfig::default());
}

#[test]
fn the_fully_configured_built_in_runbook_round_trips_through_a_file() {
    let config = fully_configured();
    let builtin = escola::runbook(&config).unwrap();
    let automated = builtin
        .steps()
        .filter(|(_, s)| matches!(s.kind, StepKind::Check(_)))
        .count();
    let default_automated = escola::runbook(&EscolaConfig::default())
        .unwrap()
        .steps()
        .filter(|(_, s)| matches!(s.kind, StepKind::Check(_)))
        .count();
    assert!(
        automated > default_automated,
        "the configuration turned checks on"
    );
    round_trip(&config);
}

fn round_trip(config: &EscolaConfig) {
    let builtin = escola::runbook(config).unwrap();
    let (file, warnings) = escola::runbook_file(config).unwrap();
    let text = file.to_toml().unwrap();
    let loaded =
        runbook_file::load_str(&text, "escola.toml", &escola_runbook_checks::catalog()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    // Steps whose check cannot say how to rebuild it (no `Check::params`)
    // become manual steps with a note, and each is warned about; every
    // other step comes back exactly as built in.
    let opaque: Vec<&str> = builtin
        .steps()
        .filter(|(_, s)| matches!(&s.kind, StepKind::Check(c) if c.params().is_none()))
        .map(|(_, s)| s.id.as_str())
        .collect();
    assert_eq!(warnings.len(), opaque.len(), "{warnings:?}");
    let mut expected = RunbookOutline::of(&builtin);
    for phase in &mut expected.phases {
        for step in &mut phase.steps {
            if opaque.contains(&step.id.as_str()) {
                let Automation::Check { description } = &step.automation else {
                    unreachable!()
                };
                step.notes.push(format!(
                    "automated in code by check `{}` ({}), which a runbook file cannot express; written as a manual step",
                    description.name, description.verifies
                ));
                step.automation = Automation::Manual { instructions: None };
            }
        }
    }
    assert_eq!(RunbookOutline::of(&loaded.runbook), expected);
    // Policies the outline does not show survive too.
    for ((_, a), (_, b)) in builtin.steps().zip(loaded.runbook.steps()) {
        assert_eq!(a.policy, b.policy, "policy of {}", a.id);
    }
    for (a, b) in builtin.phases().iter().zip(loaded.runbook.phases()) {
        assert_eq!(
            (a.max_parallel, a.rollback_on_failure),
            (b.max_parallel, b.rollback_on_failure)
        );
    }
    // And writing the loaded file again gives the same text.
    assert_eq!(loaded.file.to_toml().unwrap(), text);
}

const GOOD: &str = r#"name = "demo"

[environment]
base_url = "https://api.example.org"
metrics_url = "https://api.example.org/metrics"
metrics_token_env = "METRICS_TOKEN"
database_url_env = "DATABASE_URL"

[[phases]]
id = "deploy"
title = "Deploy"
rollback_on_failure = true

[[phases.steps]]
id = "down"
title = "Entrar em modo manutenção"
command = "php artisan down"
cwd = "/srv/app"
timeout = "2m"
retries = 2
backoff = { initial = "1s", factor = 2.0, max = "30s" }
blocking = false
undo = { command = "php artisan up", cwd = "/srv/app" }

[[phases.steps]]
id = "version"
title = "Versão do PHP"
check = "command"
params = { program = "php", args = ["--version"], read_only = true, expect_exit = 0 }

[[phases.steps]]
id = "window"
title = "Janela combinada"
confirm_deadline = "5m"
confirm_default = "skipped"
when = "not_on_rollback"

[[phases]]
id = "rollback"
title = "Rollback"
kind = "rollback"

[[phases.steps]]
id = "previous"
title = "Recolocar a versão anterior"
"#;

fn error(text: &str) -> String {
    runbook_file::load_str(text, "runbook.toml", &escola_runbook_checks::catalog())
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_hand_written_file_loads_with_its_policies() {
    let loaded =
        runbook_file::load_str(GOOD, "runbook.toml", &escola_runbook_checks::catalog()).unwrap();
    let rb = &loaded.runbook;
    let (_, down) = rb.find_step("down").unwrap();
    assert!(!down.policy.blocking);
    assert_eq!(down.policy.retries, 2);
    assert_eq!(
        down.policy.timeout,
        Some(std::time::Duration::from_secs(120))
    );
    let d = down.description().unwrap();
    assert!(d.mutates);
    assert_eq!(
        d.action.as_deref(),
        Some("run `php artisan down` in /srv/app")
    );
    let undo = down.undo.as_ref().unwrap().describe();
    assert_eq!(
        undo.action.as_deref(),
        Some("run `php artisan up` in /srv/app")
    );
    let (_, version) = rb.find_step("version").unwrap();
    let d = version.description().unwrap();
    assert!(
        !d.mutates,
        "read_only = true (a TOML boolean) reached the check"
    );
    assert_eq!(d.verifies, "`php --version` exits with 0");
    let (_, window) = rb.find_step("window").unwrap();
    assert_eq!(
        window.policy.confirm_deadline,
        Some(std::time::Duration::from_secs(300))
    );
    let env = loaded.file.environment.to_environment("production");
    assert_eq!(env.get("base_url"), Some("https://api.example.org"));
    assert_eq!(
        loaded.file.environment.secret_vars(),
        [
            ("metrics_token", "METRICS_TOKEN".to_owned()),
            ("database_url", "DATABASE_URL".to_owned())
        ]
    );
    // Parse -> write -> parse is the identity.
    let again = runbook_file::parse(&loaded.file.to_toml().unwrap(), "again.toml").unwrap();
    assert_eq!(again, loaded.file);
}

#[test]
fn unknown_keys_name_the_place_and_the_nearest_key() {
    let err = error(&GOOD.replace("retries = 2", "retires = 2"));
    assert!(
        err.starts_with("runbook.toml:20:1: unknown field `retires`"),
        "{err}"
    );
    assert!(err.ends_with("(did you mean `retries`?)"), "{err}");

    let err = error(&GOOD.replace("rollback_on_failure", "rollback_on_fail"));
    assert!(
        err.starts_with("runbook.toml:12:1: unknown field `rollback_on_fail`"),
        "{err}"
    );
    assert!(err.contains("did you mean `rollback_on_failure`?"), "{err}");

    let err = error(&GOOD.replace("kind = \"rollback\"", "kind = \"rolback\""));
    assert!(
        err.starts_with("runbook.toml:41:8: unknown variant `rolback`"),
        "{err}"
    );
    assert!(err.contains("did you mean `rollback`?"), "{err}");

    let err = error(&GOOD.replace("[environment]", "[enviroment]"));
    assert!(err.starts_with("runbook.toml:3:2:"), "{err}");
    assert!(err.contains("did you mean `environment`?"), "{err}");
}

#[test]
fn unknown_checks_and_parameters_name_the_place_and_the_nearest_name() {
    let err = error(&GOOD.replace("check = \"command\"", "check = \"comand\""));
    assert!(err.starts_with("runbook.toml:28:9: step `version`: no built-in check is called `comand` (did you mean `command`?)"), "{err}");

    let err = error(&GOOD.replace("program = \"php\"", "progam = \"php\""));
    assert!(err.starts_with("runbook.toml:29:"), "{err}");
    assert!(
        err.contains(
            "parameter `progam` is not a parameter of `command` (did you mean `program`?)"
        ),
        "{err}"
    );

    let err = error(&GOOD.replace("expect_exit = 0", "expect_exit = \"zero\""));
    assert!(err.starts_with("runbook.toml:29:"), "{err}");
    assert!(err.contains("expect_exit"), "{err}");
}

#[test]
fn values_are_checked_where_they_stand() {
    let err = error(&GOOD.replace("timeout = \"2m\"", "timeout = \"2 parsecs\""));
    assert!(err.starts_with("runbook.toml:19:11:"), "{err}");
    assert!(err.contains("is not a duration"), "{err}");

    let err = error(&GOOD.replace("factor = 2.0", "factor = 0.5"));
    assert!(err.starts_with("runbook.toml:21:38:"), "{err}");
    assert!(err.contains("at least 1.0"), "{err}");

    let err = error(&GOOD.replace("id = \"window\"", "id = \"down\""));
    assert!(err.starts_with("runbook.toml:32:6:"), "{err}");
    assert!(err.contains("step id `down` is used"), "{err}");

    let err = error(&GOOD.replace("id = \"window\"", "id = \"Janela\""));
    assert!(err.starts_with("runbook.toml:32:6:"), "{err}");
    assert!(err.contains("is not a slug"), "{err}");

    let err = error(&GOOD.replace("kind = \"rollback\"\n", ""));
    assert!(err.starts_with("runbook.toml:12:"), "{err}");
    assert!(err.contains("no rollback phase"), "{err}");

    let err = error(&GOOD.replace(
        "command = \"php artisan down\"",
        "command = \"php artisan down\"\ncheck = \"command\"",
    ));
    assert!(err.starts_with("runbook.toml:17:"), "{err}");
    assert!(err.contains("both `command` and `check`"), "{err}");

    let err = error(&GOOD.replace(
        "confirm_deadline = \"5m\"",
        "confirm_deadline = \"5m\"\ncommand = \"true\"",
    ));
    assert!(
        err.contains("`confirm_deadline` applies to manual steps"),
        "{err}"
    );

    let err = error(&GOOD.replace("undo = { command", "undo = { comand"));
    assert!(err.starts_with("runbook.toml:23:"), "{err}");
    assert!(err.contains("did you mean `command`?"), "{err}");

    let err = error(&GOOD.replace(
        "undo = { command = \"php artisan up\", cwd = \"/srv/app\" }",
        "undo = { cwd = \"/srv/app\" }",
    ));
    assert!(err.starts_with("runbook.toml:23:"), "{err}");
    assert!(err.contains("`cwd` goes with `command`"), "{err}");

    let err = error(&format!("format = 2\n{GOOD}"));
    assert!(
        err.starts_with("runbook.toml:1:10: format 2 is newer"),
        "{err}"
    );
}

#[test]
fn secrets_never_belong_in_the_file() {
    let token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig";
    let err = error(&GOOD.replace("\"METRICS_TOKEN\"", &format!("\"{token}\"")));
    assert!(err.starts_with("runbook.toml:6:21:"), "{err}");
    assert!(err.contains("NAME of an environment variable"), "{err}");
    assert!(!err.contains(token), "the secret was echoed: {err}");

    let err = error(&GOOD.replace(
        "base_url = \"https://api.example.org\"",
        "base_url = \"https://deploy:hunter2@api.example.org\"",
    ));
    assert!(err.starts_with("runbook.toml:4:"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// A watch step after GOOD's deploy phase, its rules inline.
const WATCH_STEP: &str = r#"
[[phases]]
id = "monitoring"
title = "Monitoramento"
kind = "watch"
rollback_on_failure = true

[[phases.steps]]
id = "alerts"
title = "Alertas"

[phases.steps.watch]
interval = "15s"
duration = "30m"
rollback_window = "15m"

[[phases.steps.watch.rules]]
id = "latency-p95"
title = "Latência P95 > 2s por 5 minutos"
measure = "quantile"
quantile = 0.95
window = "5m"
above = 2.0
unit = "s"
for = "5m"

[[phases.steps.watch.rules]]
id = "error-5xx"
measure = "error_percent"
comparison = "above"
limit = 1.0
unit = "%"
for = "5m"
action = "observe"

[[phases.steps.watch.rules]]
id = "rate-limit-escolas"
measure = "count"
status = "429"
route = "/v1/escolas"
window = "0"
at_least = 1.0
consecutive = 3
rollback = false
"#;

/// GOOD with its rollback phase last and WATCH_STEP before it.
fn with_watch(watch: &str) -> String {
    let (deploy, rollback) = GOOD.split_at(GOOD.find("[[phases]]\nid = \"rollback\"").unwrap());
    format!("{deploy}{watch}\n{rollback}")
}

#[test]
fn a_watch_step_s_rules_are_evaluated_and_export_back_losslessly() {
    let catalog = escola_runbook_checks::catalog();
    let text = with_watch(WATCH_STEP);
    let loaded = runbook_file::load_str(&text, "runbook.toml", &catalog).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let (_, step) = loaded.runbook.find_step("alerts").unwrap();
    let StepKind::Check(check) = &step.kind else {
        panic!("a watch step is automated");
    };
    assert_eq!(
        check.describe().verifies,
        "rules latency-p95, error-5xx, rate-limit-escolas hold, evaluated every 15s for 30m (rollback if a rollback rule fires within 15m)"
    );
    // export-runbook, then load: the same rules, as written.
    let (exported, warnings) = RunbookFile::from_runbook(&loaded.runbook, &catalog);
    assert!(warnings.is_empty(), "{warnings:?}");
    let written = exported.to_toml().unwrap();
    let again = runbook_file::load_str(&written, "again.toml", &catalog).unwrap();
    // The watch phase comes back exactly as written (commands and the
    // environment are normalized by export as they always were).
    assert_eq!(again.file.phases[1], loaded.file.phases[1], "{written}");
    let watch = |f: &RunbookFile| f.phases[1].steps[0].watch.clone().unwrap();
    assert_eq!(watch(&again.file).rules.len(), 3);
    assert_eq!(
        watch(&again.file).rules[1].action,
        Some(escola_runbook_core::rules::RuleAction::Observe)
    );
}

#[test]
fn a_watch_step_reads_its_rules_file_relative_to_the_runbook_and_exports_them_inline() {
    let catalog = escola_runbook_checks::catalog();
    let dir = tempfile::tempdir().unwrap();
    let rules = WATCH_STEP
        .split_once("[[phases.steps.watch.rules]]")
        .map(|(_, r)| {
            format!(
                "interval = \"15s\"\n\n[[rules]]{}",
                r.replace("phases.steps.watch.rules", "rules")
            )
        })
        .unwrap();
    std::fs::write(dir.path().join("alerts.toml"), &rules).unwrap();
    let step = "\n[[phases]]\nid = \"monitoring\"\ntitle = \"Monitoramento\"\nkind = \"watch\"\n\n\
                [[phases.steps]]\nid = \"alerts\"\ntitle = \"Alertas\"\n\
                watch = { duration = \"30m\", rules_file = \"alerts.toml\" }\n";
    let path = dir.path().join("runbook.toml");
    std::fs::write(&path, with_watch(step)).unwrap();
    let loaded = runbook_file::load(&path, &catalog).unwrap();
    let (exported, _) = RunbookFile::from_runbook(&loaded.runbook, &catalog);
    let watch = exported.phases[1].steps[0].watch.clone().unwrap();
    assert_eq!(
        watch.rules_file, None,
        "written inline: the export stands alone"
    );
    assert_eq!(
        (watch.interval.as_deref(), watch.duration.as_deref()),
        (Some("15s"), Some("30m")),
        "the file's interval, the step's duration"
    );
    let inline = runbook_file::load_str(&with_watch(WATCH_STEP), "r.toml", &catalog).unwrap();
    assert_eq!(
        watch.rules,
        inline.file.phases[1].steps[0].watch.clone().unwrap().rules
    );

    // Missing file, both forms, a bad rule: named, at the step.
    let err = error(&with_watch(step));
    assert!(err.contains("cannot read rules file alerts.toml"), "{err}");
    let err = error(&with_watch(&WATCH_STEP.replace(
        "rollback_window = \"15m\"",
        "rollback_window = \"15m\"\nrules_file = \"alerts.toml\"",
    )));
    assert!(
        err.contains("gives both `rules_file = \"alerts.toml\"` and 3 inline rule(s)"),
        "{err}"
    );
    let err = error(&with_watch(
        &WATCH_STEP.replace("above = 2.0", "above = 2.0\nlimit = 3"),
    ));
    assert!(err.starts_with("runbook.toml:"), "{err}");
    assert!(
        err.contains("rule `latency-p95`: give the condition as"),
        "{err}"
    );
    let err = error(&with_watch(
        &WATCH_STEP.replace("action = \"observe\"", "action = \"maybe\""),
    ));
    assert!(
        err.contains("unknown variant `maybe`, expected one of `observe`, `ask`, `rollback`"),
        "{err}"
    );
    let err = error(&with_watch(
        &WATCH_STEP.replace("quantile = 0.95", "quantile = 0.95\nqantile = 1"),
    ));
    assert!(err.contains("did you mean `quantile`?"), "{err}");
}

#[test]
fn a_markdown_rule_binding_imports_to_the_same_rule_as_the_file() {
    let catalog = escola_runbook_checks::catalog();
    let md = "# Deploy\n\n## Monitoramento\n\n- [ ] Latência P95\n  \
              <!-- rule: id=latency-p95 measure=quantile quantile=0.95 window=5m above=2 for=5m action=observe -->\n";
    let imported = escola_runbook_core::formats::markdown::import(
        md,
        &escola_runbook_core::formats::markdown::ImportOptions::default(),
        &catalog,
    );
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    let step = &imported.file.phases[0].steps[0];
    let watch = step.watch.clone().unwrap();
    let file = escola_runbook_core::formats::rules_file::Rules::parse(
        "[[rules]]\nid = \"latency-p95\"\nmeasure = \"quantile\"\nquantile = 0.95\nwindow = \"5m\"\nabove = 2\nfor = \"5m\"\naction = \"observe\"\n",
        "alerts.toml",
    )
    .unwrap();
    assert_eq!(watch.rules, file.specs);
    // It loads as a watch step, and its TOML export reads back the same.
    let written = imported.file.to_toml().unwrap();
    let loaded = runbook_file::load_str(&written, "imported.toml", &catalog).unwrap();
    assert_eq!(loaded.file, imported.file);
    let (exported, _) = RunbookFile::from_runbook(&loaded.runbook, &catalog);
    assert_eq!(
        exported.phases[0].steps[0].watch.clone().unwrap().rules,
        file.specs
    );
    // A bad pair is a warning naming it; the item stays a manual step.
    let bad = escola_runbook_core::formats::markdown::import(
        &md.replace("quantile=0.95", "quantile=high"),
        &escola_runbook_core::formats::markdown::ImportOptions::default(),
        &catalog,
    );
    let w: Vec<String> = bad.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter().any(|w| w.contains(
            "rule `latency-p95`, parameter `quantile` has value `high`, which is not a number"
        )),
        "{w:?}"
    );
    assert!(bad.file.phases[0].steps[0].watch.is_none());
    // A misspelt measuring key is refused with the probe's nearest key.
    let misspelt = escola_runbook_core::formats::markdown::import(
        &md.replace("quantile=0.95", "quantil=0.95"),
        &escola_runbook_core::formats::markdown::ImportOptions::default(),
        &catalog,
    );
    let w: Vec<String> = misspelt.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("`quantil`") && w.contains("did you mean `quantile`?")),
        "{w:?}"
    );
}

#[test]
fn rollback_settings_are_kept_and_warned_about_and_the_old_watch_table_is_refused() {
    let text = format!(
        "{GOOD}\n[rollback]\nwindow = \"15m\"\ntriggers = [\"p95\"]\nrequires_approval = [\"restore-snapshot\"]\nnotify = [\"#operacoes\"]\n"
    );
    let loaded =
        runbook_file::load_str(&text, "runbook.toml", &escola_runbook_checks::catalog()).unwrap();
    let w: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("[rollback]") && w[0].contains("NOT evaluated yet"),
        "{w:?}"
    );
    let written = loaded.file.to_toml().unwrap();
    let again: RunbookFile = runbook_file::parse(&written, "again.toml").unwrap();
    assert_eq!(again, loaded.file);
    // Rules live in watch steps now.
    let err = error(&format!("{GOOD}\n[watch]\ninterval = \"30s\"\n"));
    assert!(err.contains("unknown field `watch`"), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let err = runbook_file::load(
        std::path::Path::new("/nonexistent/runbook.toml"),
        &escola_runbook_checks::catalog(),
    )
    .unwrap_err();
    assert!(matches!(err, RunbookFileError::Read { .. }));
    assert!(
        err.to_string().contains("/nonexistent/runbook.toml"),
        "{err}"
    );
}

/// Every option a builder can set, including those a file could not hold
/// before (a secret environment variable, an argument with a comma, a
/// millisecond timeout).
fn every_option() -> escola_runbook_checks::command::CommandCheck {
    escola_runbook_checks::command::CommandCheck::exec(
        "sh",
        [
            "-c",
            "test \"$DATABASE_PASSWORD\" = s3cret && test \"$LANG\" = C && echo \"$1|$2\"",
            "sh",
            "a,b",
            "c",
        ],
    )
    .current_dir("/")
    .env("LANG", "C")
    .secret_env("DATABASE_PASSWORD", "db_password")
    .timeout(std::time::Duration::from_millis(1500))
    .term_grace(std::time::Duration::from_millis(2500))
    .output_limit(4096)
    .expect_exit([0, 2])
    .read_only()
}

#[tokio::test]
async fn a_command_check_round_trips_through_a_file_losslessly() {
    use escola_runbook_core::{
        Check, Ctx, Environment, Phase, Runbook, Secret, Secrets, Status, Step,
    };
    let check = every_option();
    let runbook = Runbook::builder("round trip")
        .phase(
            Phase::new("deploy", "Deploy")
                .step(Step::check("cmd", "Run it", check.clone()).undo(every_option())),
        )
        .build()
        .unwrap();
    let catalog = escola_runbook_checks::catalog();
    let (file, warnings) = RunbookFile::from_runbook(&runbook, &catalog);
    assert!(warnings.is_empty(), "{warnings:?}");
    let text = file.to_toml().unwrap();
    for written in [
        r#"timeout = "1500ms""#,
        r#"term_grace = "2500ms""#,
        "output_limit = 4096",
        "read_only = true",
        r#"DATABASE_PASSWORD = "db_password""#,
        r#"LANG = "C""#,
    ] {
        assert!(text.contains(written), "{written} in\n{text}");
    }
    // Lists are TOML arrays: an item keeps its comma.
    let table: toml::Table = text.parse().unwrap();
    let params = &table["phases"][0]["steps"][0]["params"];
    assert_eq!(params["args"][3].as_str(), Some("a,b"));
    assert_eq!(params["expect_exit"].as_array().map(Vec::len), Some(2));
    let loaded = runbook_file::load_str(&text, "round-trip.toml", &catalog).unwrap();
    let (_, step) = loaded.runbook.find_step("cmd").unwrap();
    let StepKind::Check(back) = &step.kind else {
        panic!("cmd should be a check")
    };
    assert_eq!(back.params(), check.params());
    assert_eq!(back.describe(), check.describe());
    assert_eq!(step.undo.as_ref().map(|u| u.params()), Some(check.params()));
    // The secret reaches the command as before the round trip.
    let mut secrets = Secrets::new();
    secrets.insert("db_password", Secret::new("s3cret"));
    let o = back
        .run(&Ctx::standalone(Environment::new("test"), secrets))
        .await;
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert!(
        o.evidence
            .iter()
            .any(|e| e.label == "stdout" && e.value == "a,b|c\n"),
        "{o:?}"
    );
}

#[test]
fn params_are_typed_and_old_text_forms_still_load() {
    let step = |params: &str| {
        format!(
            "name = \"x\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"s\"\ntitle = \"S\"\ncheck = \"command\"\nparams = {params}\n"
        )
    };
    let catalog = escola_runbook_checks::catalog();
    let described = |params: &str| {
        let loaded = runbook_file::load_str(&step(params), "p.toml", &catalog).unwrap();
        loaded
            .runbook
            .find_step("s")
            .unwrap()
            .1
            .description()
            .unwrap()
    };
    // A list is a list, a number a number; the comma-joined text files
    // exported before are read the same way.
    let typed = described(
        r#"{ program = "php", args = ["-r", "echo 1,2;"], expect_exit = [0, 3], read_only = true }"#,
    );
    assert_eq!(
        typed.verifies,
        "`php -r 'echo 1,2;'` exits with one of 0, 3"
    );
    let text =
        described(r#"{ program = "php", args = "-v", expect_exit = "0,3", read_only = "true" }"#);
    assert_eq!(text.verifies, "`php -v` exits with one of 0, 3");
    assert!(!text.mutates);
    // A wrong item is pointed at where it stands.
    let err = runbook_file::load_str(
        &step(r#"{ program = "php", args = ["-v", 7] }"#),
        "p.toml",
        &catalog,
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("p.toml:9:"), "{err}");
    assert!(
        err.contains(
            "parameter `args[1]` is not usable: invalid type: integer `7`, expected a string"
        ),
        "{err}"
    );
    let err = runbook_file::load_str(
        &step(r#"{ shell = "true", timeout = "1500 parsecs" }"#),
        "p.toml",
        &catalog,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("parameter `timeout` is not usable: `1500 parsecs` is not a duration"),
        "{err}"
    );
}
