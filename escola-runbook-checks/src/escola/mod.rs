//! The Escola Connect API deploy runbook (`Runbook de Deploy`), encoded once
//! for the CLI and the examples. Every item of the team's document is a step
//! with the team's own Portuguese title, in the document's seven sections.
//!
//! Items that later checks automate are manual steps here, with the
//! runbook's instructions; commands the document spells out are command
//! steps run in [`EscolaConfig::app_dir`].
//!
//! The readiness items, the CDN purge and the log check become checks when
//! their part of the configuration is set ([`EscolaConfig::coverage`],
//! [`EscolaConfig::ci_status`], [`EscolaConfig::docs`],
//! [`EscolaConfig::changelog`], [`EscolaConfig::cdn_purge`],
//! [`EscolaConfig::app_log`]); a part left unset keeps the manual step, so the
//! runbook works with no configuration at all.
//!
//! The smoke tests run the native suite
//! ([`data::smoke_suite`]) against the
//! environment's `base_url` setting; [`SmokeTests::Script`] keeps the
//! team's `./scripts/smoke.sh` as the alternative.

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::formats::runbook_file::RunbookFile;
use escola_runbook_core::{ApprovalPolicy, Check, Phase, Runbook, Step};

use crate::command::CommandCheck;
use crate::db::{DbSnapshotCheck, LossEstimateCheck, MigrationsCheck, SnapshotFreshCheck};
use crate::metrics::Window;
use crate::notify::Notify;

mod alerts;
mod automation;
mod config;
pub mod data;
pub mod project;

use alerts::{ALERTS_GROUP, alert_steps, backlog_panel};
pub use alerts::{Alert, BacklogPanel, alerts, dashboard};
pub use config::{
    APPROVER_ROLES, APPROVER_SETTING, AppLogConfig, BACKLOG_SQL, CachePurgeConfig, ChangelogConfig,
    CiStatusConfig, CoverageConfig, DATABASE_SECRET, DBA_ROLE, DocsConfig, EscolaConfig,
    EscolaError, METRICS_TOKEN_SECRET, MetricsConfig, PENDING_WHERE, RUNBOOK_NAME, SmokeTests,
    WEBHOOK_SECRET, WatchConfig,
};

/// Limit for the metrics steps (one or two HTTP requests).
const METRICS_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A metrics check step (with a timeout) when configured, the manual step
/// otherwise.
fn metrics_step(id: &str, title: &str, check: Option<Arc<dyn Check>>) -> Step {
    match check {
        Some(check) => Step::check_arc(id, title, check).timeout(METRICS_STEP_TIMEOUT),
        None => Step::manual(id, title),
    }
}

/// The runbook's latency panel.
const LATENCY_PANEL: &str =
    "`Escolas > Latência (P50/P95/P99)` usando histograma `http_request_duration_seconds`.";

/// The latency panel with the metrics configured: the before/after judge
/// reads it — the window after the deploy against the pre-deploy baseline —
/// beside the alerts (their parallel group). Advisory: it tells a release
/// slower than before, which no fixed limit may catch, and leaves the
/// rollback to the limits and to the operator.
fn latency_panel(judge: Arc<dyn Check>, metrics: &MetricsConfig) -> Step {
    let window = match metrics.judge_window {
        Window::Last(d) => d,
        Window::Cumulative => Duration::ZERO,
    };
    Step::check_arc("panel-latency", LATENCY_PANEL, judge)
        .timeout(window + METRICS_STEP_TIMEOUT)
        .advisory()
        .parallel(ALERTS_GROUP)
        .note("Automated: the latency after the deploy against the pre-deploy baseline (metrics-compare, Mann-Whitney), beside the alerts; advisory, the alerts' limits decide a rollback.")
}

/// A check step when `check` is set, the manual step otherwise.
fn automated(id: &str, title: &str, check: Option<Arc<dyn Check>>) -> Step {
    match check {
        Some(check) => Step::check_arc(id, title, check),
        None => Step::manual(id, title),
    }
}

/// The snapshot: native when a database secret is configured, confirmed by a
/// person otherwise.
fn db_snapshot(config: &EscolaConfig) -> Step {
    let (id, title) = (
        "db-snapshot",
        "Snapshot do banco (`mysqldump` + storage seguro).",
    );
    with_database(config, id, title, |secret| {
        let mut check = DbSnapshotCheck::new(&config.snapshot_dir)
            .secret(secret)
            .encrypt_to(config.snapshot_encrypt_to.iter().cloned())
            .restore_test(config.snapshot_restore_test);
        if let Some(file) = &config.snapshot_identity_file {
            check = check.identity_file(file);
        }
        if let Some(to) = &config.snapshot_copy_to {
            check = check.copy_to(to);
        }
        Step::check(id, title, check)
            .note("Snapshot nativo consistente (zstd + sha256 em manifest.json, diretório 0700); restaurável com `escola-runbook snapshot restore` ou `zstd -dc | mariadb`.")
    })
}

/// The step `check` makes from the database secret when one is configured,
/// the manual step `id` otherwise.
fn with_database(
    config: &EscolaConfig,
    id: &str,
    title: &str,
    check: impl FnOnce(&str) -> Step,
) -> Step {
    match &config.database_secret {
        Some(secret) => check(secret),
        None => Step::manual(id, title),
    }
}

/// Migrations and the Escola tables: checked when a database secret is
/// configured, confirmed by a person otherwise.
fn migrations_consistent(config: &EscolaConfig) -> Step {
    let (id, title) = (
        "migrations-consistent",
        "Confirmar que `sync_mutations` e `eventos` estão consistentes.",
    );
    with_database(config, id, title, |secret| {
        let check = MigrationsCheck::default().secret(secret);
        let check = match &config.expected_migration {
            Some(v) => check.expected_version(v),
            None => check,
        };
        Step::check(id, title, check)
    })
}

/// A notice: posted to the webhook when one is configured, confirmed by a
/// person otherwise.
/// "Restaurar snapshot ... (com aval de DBA)": the DBA's approval is the
/// step when the configuration names an approver holding the role; else
/// the operator confirms it, and the note says why.
fn restore_snapshot(config: &EscolaConfig) -> Step {
    let step = Step::manual(
        "restore-snapshot",
        "Restaurar snapshot do banco apenas se dado corrompido (com aval de DBA).",
    );
    if config.approvers.iter().any(|a| a.holds(DBA_ROLE)) {
        step.approval(ApprovalPolicy::new(DBA_ROLE))
    } else {
        step.note("Nenhum aprovador com o papel `dba` configurado: o operador confirma este passo.")
    }
}

/// With the database configured, what a restore would lose, counted just
/// before the DBA is asked to approve it: the snapshot's age and the rows
/// written since, per table. Advisory: a failed estimate never blocks the
/// rollback, it only leaves the DBA without the numbers (and says so).
fn loss_estimate(config: &EscolaConfig) -> Option<Step> {
    let secret = config.database_secret.as_ref()?;
    Some(
        Step::check(
            "restore-loss-estimate",
            "Estimar o que um restore do snapshot perderia (idade, linhas escritas desde então por tabela).",
            LossEstimateCheck::new(&config.snapshot_dir).secret(secret),
        )
        .advisory(),
    )
}

fn notice(config: &EscolaConfig, id: &str, title: &str, message: &str) -> Step {
    let post = config
        .webhook_secret
        .as_ref()
        .map(|secret| Arc::new(Notify::new(secret.clone(), message)) as Arc<dyn Check>);
    automated(id, title, post)
}

fn advisory_unless(blocking: bool, step: Step) -> Step {
    if blocking { step } else { step.advisory() }
}

/// The built-in runbook as a runbook file (`export-runbook`), with a
/// warning for each step that could not be expressed as a check.
pub fn runbook_file(config: &EscolaConfig) -> Result<(RunbookFile, Vec<String>), EscolaError> {
    Ok(RunbookFile::from_runbook(
        &runbook(config)?,
        &crate::catalog(),
    ))
}

/// The built-in runbook.
pub fn runbook(config: &EscolaConfig) -> Result<Runbook, EscolaError> {
    for a in &config.approvers {
        if let Some(role) = a
            .roles
            .iter()
            .find(|r| !APPROVER_ROLES.contains(&r.as_str()))
        {
            return Err(EscolaError::UnknownRole {
                name: a.name.clone(),
                role: role.clone(),
            });
        }
    }
    let auto = config.automations()?;
    let (metrics_baseline, metrics_endpoint, latency_judge) = match config
        .metrics
        .as_ref()
        .map(MetricsConfig::checks)
        .transpose()?
    {
        Some(c) => (Some(c.baseline), Some(c.endpoint), Some(c.judge)),
        None => (None, None, None),
    };
    let cmd = |line: &str, timeout: Duration| {
        config.command_env.iter().fold(
            CommandCheck::shell(line)
                .current_dir(&config.app_dir)
                .timeout(timeout),
            |check, (key, value)| check.env(key, value),
        )
    };
    let short = config.command_timeout;
    let long = config.long_command_timeout;

    let readiness = "Checklist de readiness";
    let window = "Janela & comunicações";
    let backups = "Backups & infra";
    let mut pre_deploy = Phase::new("pre-deploy", "Pré-Deploy").step(
        automated(
            "ci-green",
            "Confirmar branch `main` verdinho (CI ok, cobertura ≥ 85%).",
            auto.ci_status,
        )
        .section(readiness),
    );
    if let Some((title, check)) = auto.coverage {
        pre_deploy = pre_deploy.step(Step::check_arc("coverage", title, check).section(readiness));
    }
    let pre_deploy = pre_deploy
        .step(
            automated(
                "docs-updated",
                "Validar que `docs/api.md`, `docs/cache-strategy.md` e `docs/escola-module-todo.md` estão atualizados.",
                auto.docs,
            )
            .section(readiness),
        )
        .step(
            automated(
                "changelog-version",
                "Revisar `CHANGELOG.md` e anotar versão planejada (semver).",
                auto.changelog,
            )
            .section(readiness),
        )
        .step(Step::manual("window-agreed", "Sincronizar janela com Infra + Produto (evitar campanhas de campo).").section(window))
        .step(Step::manual("notice-scheduled", "Programar aviso nos canais #operacoes e #promotores (T -4h).").section(window))
        .step(Step::manual("squad-present", "Garantir presença do squad (dev, QA, suporte) no período.").section(window))
        .step(db_snapshot(config).section(backups));
    let pre_deploy = match config.snapshot_max_age {
        // After the snapshot: one it proved counts.
        Some(max_age) => pre_deploy.step(
            Step::check(
                "snapshot-fresh",
                "Snapshot restaurável comprovado (teste de restauração) e recente.",
                SnapshotFreshCheck::new(&config.snapshot_dir, max_age),
            )
            .section(backups),
        ),
        None => pre_deploy,
    };
    let pre_deploy = pre_deploy
        .step(
            metrics_step(
                "metrics-baseline",
                "Verificar métricas em Prometheus (`/metrics`) e latência base.",
                metrics_baseline,
            )
            .section(backups),
        )
        .step(
            Step::manual(
                "drain-queues",
                "Limpar filas/cron-sim (se aplicável) para evitar gatilhos durante deploy.",
            )
            .section(backups),
        );

    let (log_scan, mark_start, log_blocking) = match auto.app_log {
        Some((check, mark, blocking)) => (Some(check), mark, blocking),
        None => (None, false, true),
    };
    let (cdn_purge, purge_blocking) = match auto.cdn_purge {
        Some((check, blocking)) => (Some(check), blocking),
        None => (None, true),
    };
    let mut deploy = Phase::new("deploy", "Deploy").rollback_on_failure();
    if mark_start {
        deploy = deploy.step(
            Step::check(
                "deploy-started",
                "Registrar o início do deploy (janela da verificação de `app.log`).",
                crate::log_scan::RecordTimeCheck::new(crate::log_scan::DEPLOY_STARTED_AT),
            )
            .advisory(),
        );
    }
    let deploy = deploy
        .step(
            Step::check(
                "maintenance-on",
                "Entrar em modo manutenção (opcional)",
                cmd(r#"php artisan down --message="Atualizando Escola Connect API" --retry=60"#, short),
            )
            .advisory()
            .undo(cmd("php artisan up", short))
            .note("Se a aplicação não expõe comando próprio, utilizar reverse-proxy com flag de manutenção."),
        )
        .step(Step::check(
            "migrations",
            "Executar migrations",
            cmd("php vendor/bin/doctrine-migrations migrate --no-interaction", long),
        ))
        .step(migrations_consistent(config))
        .step(Step::check(
            "deploy-artifacts",
            "Deploy da aplicação: atualizar artefatos (`git pull`, `composer install --no-dev`, `php artisan config:cache` se aplicável)",
            cmd("git pull --ff-only && composer install --no-dev --no-interaction && php artisan config:cache", long),
        ))
        .step(Step::check(
            "phpunit",
            "Realizar `php vendor/bin/phpunit` no host ou pipeline.",
            cmd("php vendor/bin/phpunit", long),
        ))
        .step(
            Step::check(
                "cache-clear-aggregates",
                "Executar `php ./scripts/cache-clear-aggregates.php`",
                cmd("php ./scripts/cache-clear-aggregates.php", short),
            )
            .section("Limpeza de caches")
            .note("O runbook marca este script como TODO: confirme que ele existe antes do deploy."),
        )
        .step(
            advisory_unless(
                purge_blocking,
                automated(
                    "cdn-purge",
                    "Limpar caches HTTP/CDN relacionados a `/v1/cidades` e `/v1/escolas`.",
                    cdn_purge,
                ),
            )
            .section("Limpeza de caches"),
        )
        .step(
            Step::check("maintenance-off", "Retomar tráfego", cmd("php artisan up", short))
                .note("ou remover flag de manutenção no proxy."),
        );

    let smoke_title =
        "Validar smoke tests automatizados (Postman/Newman ou script `./scripts/smoke.sh`).";
    let post_deploy = Phase::new("post-deploy", "Pós-Deploy Imediato (0–30 min)")
        .rollback_on_failure()
        .step(match &config.smoke {
            SmokeTests::Native(check) => Step::check("smoke-tests", smoke_title, (**check).clone()),
            SmokeTests::Script => Step::check("smoke-tests", smoke_title, cmd("./scripts/smoke.sh", long).read_only()),
            SmokeTests::Manual => Step::manual("smoke-tests", smoke_title).instructions(
                "Run the smoke tests against the deployed API; give the run the API's URL (the environment setting `base_url`) to have them run automatically.",
            ),
        })
        .step(advisory_unless(
            log_blocking,
            automated(
                "app-log-errors",
                "Checar logs de erro (`var/logs/app.log`) e `Trace-Id`.",
                log_scan,
            ),
        ))
        .step(metrics_step(
            "metrics-endpoint",
            "Garantir que `/metrics` está respondendo (`curl -H \"Authorization: Bearer <token>\" http://api/metrics`).",
            metrics_endpoint,
        ))
        .step(Step::manual(
            "dashboards",
            "Verificar dashboards: latência (`http_request_duration_seconds`), erros 5xx, fila de sync.",
        ))
        .step(notice(
            config,
            "status-update",
            "Atualizar status nos canais internos (“deploy iniciado/concluído”).",
            "Escola Connect API: deploy {run_id} em {environment} concluído; monitoramento estendido iniciado.",
        ));

    let panels = "Painéis recomendados";
    let alerts = "Alertas sugeridos";
    let error_panel = Step::manual(
        "panel-error-rate",
        "`Erro rate` com contador `http_requests_total{status=~\"5..\"}`",
    )
    .section(panels);
    let backlog_panel = backlog_panel(config)?.section(panels);
    let monitoring = Phase::watch("monitoring", "Monitoramento Estendido (30 min – 24h)");
    let monitoring = match (&config.metrics, latency_judge) {
        (Some(metrics), Some(judge)) => {
            let [p95, errors, limited] = alert_steps(metrics, &config.watch)?;
            // The judge runs beside the alerts, from the first second after
            // the deploy, not before them.
            monitoring
                .rollback_on_failure()
                .fail_fast()
                .step(error_panel)
                .step(backlog_panel)
                .step(latency_panel(judge, metrics).section(panels))
                .step(p95)
                .step(errors)
                .step(limited)
        }
        _ => monitoring
            .step(Step::manual("panel-latency", LATENCY_PANEL).section(panels))
            .step(error_panel)
            .step(backlog_panel)
            .step(Step::manual("alert-latency-p95", "`Latência P95 > 2s` por 5 minutos.").section(alerts))
            .step(Step::manual("alert-5xx", "`HTTP 5xx > 1%` por 5 minutos.").section(alerts))
            .step(
                Step::manual(
                    "alert-rate-limit",
                    "`Rate Limit` excedido para `/v1/escolas` por mais de 3 requisições consecutivas.",
                )
                .section(alerts),
            ),
    }
    .step(Step::manual("incidents-trace-id", "Registrar incidentes no canal #observabilidade com `Trace-Id`."));

    let procedure = "Procedimento";
    let communication = "Comunicação";
    let rollback = Phase::rollback("rollback", "Rollback")
        .note("Detecção: se smoke tests falharem ou alertas dispararem continuamente em ≤15 min.")
        .step(Step::manual(
            "rollback-detection",
            "Detecção: smoke tests falharam ou alertas dispararam continuamente em ≤15 min.",
        ))
        .step(
            Step::manual("previous-version", "Recolocar a versão anterior do código (tag/commit anterior).")
                .section(procedure)
                .note("No documento este item está escrito `[ ]]` (erro de digitação); importado como item normal."),
        )
        .step(
            Step::check(
                "migrate-prev",
                "Executar `php vendor/bin/doctrine-migrations migrate prev` (ou script reverso) se migrations quebraram.",
                cmd("php vendor/bin/doctrine-migrations migrate prev --no-interaction", long),
            )
            .section(procedure)
            // "se migrations quebraram": reverting a migration that was fine
            // can lose data, so a person decides each time.
            .confirm_first()
            .note("Só se as migrations quebraram: o operador confirma antes (`skip` se não for o caso)."),
        )
        // Before the restore asks, so the DBA approves on numbers.
        .steps(loss_estimate(config).map(|s| s.section(procedure)))
        .step(restore_snapshot(config).section(procedure))
        .step(
            notice(
                config,
                "rollback-notice",
                "Avisar canais (#operacoes, #promotores) sobre rollback.",
                "Escola Connect API: rollback do deploy {run_id} em {environment} em andamento.",
            )
            .section(communication),
        )
        .step(
            Step::manual("rollback-incident", "Abrir incidente no Jira/Statuspage com causa e tempo estimado.")
                .section(communication),
        );

    let post_24h = Phase::new("post-deploy-24h", "Pós-Deploy (24h+)")
        .step(Step::manual(
            "final-docs",
            "Atualizar `docs/escola-module-todo.md` e `CHANGELOG.md` com status final.",
        ))
        .step(Step::manual(
            "post-deploy-metrics",
            "Registrar métricas pós-deploy (latência, uso de rate limit, conflitos If-Match).",
        ))
        .step(Step::manual(
            "retrospective",
            "Agendar retrospectiva com equipe e consolidar “lessons learned”.",
        ));

    let support = Phase::new("support", "Checklists de Suporte")
        .step(
            Step::manual(
                "kanban-post-deploy",
                "Tickets em aberto migrados para “Post-Deploy”.",
            )
            .section("Kanban pós-deploy"),
        )
        .step(
            Step::manual(
                "kanban-backlog",
                "Backlog residual anotado no Jira (sprint + epics).",
            )
            .section("Kanban pós-deploy"),
        );

    let builder = config
        .approvers
        .iter()
        .fold(Runbook::builder(RUNBOOK_NAME), |b, a| {
            b.approver(a.name.clone(), a.roles.clone())
        });
    builder
        .contact("Dev on-call", "@dev-escola")
        .contact("SRE / Infra", "@infra")
        .contact("Produto / Operações", "@produto-escola")
        .glossary(
            "Trace-Id",
            "header retornado pelo `ApiResponder` (inclusive em erros 5xx).",
        )
        .glossary(
            "If-Match",
            "utilizado pelo sync mobile; garantir que o header continue respeitado após deploy.",
        )
        .phase(pre_deploy)
        .phase(deploy)
        .phase(post_deploy)
        .phase(monitoring)
        .phase(rollback)
        .phase(post_24h)
        .phase(support)
        .build()
        .map_err(EscolaError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn has_the_seven_sections_and_every_item() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        let titles: Vec<&str> = rb.phases().iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Pré-Deploy",
                "Deploy",
                "Pós-Deploy Imediato (0–30 min)",
                "Monitoramento Estendido (30 min – 24h)",
                "Rollback",
                "Pós-Deploy (24h+)",
                "Checklists de Suporte"
            ]
        );
        let per_phase: Vec<usize> = rb.phases().iter().map(|p| p.steps.len()).collect();
        assert_eq!(per_phase, [9, 8, 5, 7, 6, 3, 2]);
        assert_eq!(rb.metadata().contacts.len(), 3);
    }

    fn kinds(rb: &Runbook) -> Vec<(String, Option<String>)> {
        rb.steps()
            .map(|(_, s)| (s.id.clone(), s.description().map(|d| d.name)))
            .collect()
    }

    fn kind_of(rb: &Runbook, id: &str) -> Option<String> {
        kinds(rb)
            .into_iter()
            .find(|(step, _)| step == id)
            .unwrap_or_else(|| panic!("no step {id}"))
            .1
    }

    #[test]
    fn database_steps_are_automated_with_a_database_secret() {
        use escola_runbook_core::StepKind;
        let manual = runbook(&EscolaConfig::default()).unwrap();
        assert_eq!(kind_of(&manual, "db-snapshot"), None);
        assert_eq!(kind_of(&manual, "migrations-consistent"), None);
        let config = EscolaConfig {
            database_secret: Some(DATABASE_SECRET.into()),
            expected_migration: Some("Version20250301120000".into()),
            ..EscolaConfig::default()
        };
        let rb = runbook(&config).unwrap();
        let step = |id: &str| rb.steps().map(|(_, s)| s).find(|s| s.id == id).unwrap();
        let StepKind::Check(snapshot) = &step("db-snapshot").kind else {
            panic!("db-snapshot should be a check");
        };
        let d = snapshot.describe();
        assert!(d.mutates, "a snapshot writes files: dry-run must skip it");
        assert_eq!(d.produces, ["snapshot.path"]);

        // The DBA sees what a restore would lose just before being asked.
        let rollback: Vec<&str> = rb
            .steps()
            .filter(|(p, _)| p.id == "rollback")
            .map(|(_, s)| s.id.as_str())
            .collect();
        let at = |id| rollback.iter().position(|s| *s == id).unwrap();
        assert_eq!(at("restore-loss-estimate") + 1, at("restore-snapshot"));
        assert_eq!(
            kind_of(&rb, "restore-loss-estimate").as_deref(),
            Some("db-loss-estimate")
        );
        assert!(
            !step("restore-loss-estimate").policy.blocking,
            "an estimate never blocks a rollback"
        );
        assert!(
            !kinds(&manual)
                .iter()
                .any(|(id, _)| id == "restore-loss-estimate"),
            "without a database there is nothing to count"
        );

        // Encrypted and proven, as configured.
        let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let sealed = runbook(&EscolaConfig {
            snapshot_encrypt_to: vec![recipient.into()],
            snapshot_restore_test: true,
            snapshot_identity_file: Some("key.txt".into()),
            snapshot_copy_to: Some("s3://backups/escola".into()),
            snapshot_max_age: Some(Duration::from_secs(26 * 3600)),
            ..config.clone()
        })
        .unwrap();
        assert_eq!(
            kind_of(&sealed, "snapshot-fresh").as_deref(),
            Some("snapshot-fresh"),
            "a proven snapshot is required when a limit is set"
        );
        let sealed_step = sealed
            .steps()
            .map(|(_, s)| s)
            .find(|s| s.id == "db-snapshot")
            .unwrap();
        let StepKind::Check(snapshot) = &sealed_step.kind else {
            panic!("db-snapshot should be a check");
        };
        let params = snapshot.params().unwrap();
        assert_eq!(params.params["encrypt_to"], serde_json::json!([recipient]));
        assert_eq!(params.params["restore_test"], true);
        assert_eq!(params.params["copy_to"], "s3://backups/escola");
        assert_eq!(
            crate::catalog().build(&params).unwrap().params(),
            Some(params)
        );
        let StepKind::Check(migrations) = &step("migrations-consistent").kind else {
            panic!("migrations-consistent should be a check");
        };
        assert!(!migrations.describe().mutates);
        let params = migrations.params().unwrap();
        assert_eq!(params.params["expected_version"], "Version20250301120000");
        // The catalog rebuilds it from its parameters.
        let rebuilt = crate::catalog().build(&params).unwrap();
        assert_eq!(rebuilt.params(), Some(params));
    }

    #[test]
    fn with_no_configuration_the_automatable_items_stay_manual() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        for id in [
            "ci-green",
            "docs-updated",
            "changelog-version",
            "cdn-purge",
            "app-log-errors",
        ] {
            assert_eq!(kind_of(&rb, id), None, "{id} must stay manual");
        }
        assert!(rb.find_step("coverage").is_none());
        assert!(rb.find_step("deploy-started").is_none());
    }

    fn full_config(app_dir: &Path, ci_url: &str, cache_url: &str) -> EscolaConfig {
        EscolaConfig {
            app_dir: app_dir.to_owned(),
            coverage: Some(CoverageConfig {
                report: "build/clover.xml".into(),
                min: 85.0,
                max_age: Some("1d".into()),
            }),
            ci_status: Some(CiStatusConfig::new(ci_url)),
            docs: Some(DocsConfig::default()),
            changelog: Some(ChangelogConfig::new("2.4.0")),
            cdn_purge: Some(CachePurgeConfig::new(cache_url)),
            app_log: Some(AppLogConfig::default()),
            ..EscolaConfig::default()
        }
    }

    #[test]
    fn configured_items_become_checks_in_place_of_the_manual_steps() {
        let rb = runbook(&full_config(
            Path::new("/srv/app"),
            "http://ci.invalid/s",
            "http://cache.invalid",
        ))
        .unwrap();
        let expect = [
            ("ci-green", "http-json"),
            ("coverage", "coverage"),
            ("docs-updated", "docs-freshness"),
            ("changelog-version", "changelog"),
            ("deploy-started", "record-time"),
            ("cdn-purge", "cache-purge"),
            ("app-log-errors", "log-scan"),
        ];
        for (id, kind) in expect {
            assert_eq!(kind_of(&rb, id).as_deref(), Some(kind), "{id}");
        }
        let per_phase: Vec<usize> = rb.phases().iter().map(|p| p.steps.len()).collect();
        assert_eq!(per_phase, [10, 9, 5, 7, 6, 3, 2]);
        let (_, step) = rb.find_step("changelog-version").unwrap();
        let Some(desc) = step.description() else {
            panic!()
        };
        assert!(
            desc.verifies
                .contains("/srv/app/CHANGELOG.md has a section for 2.4.0"),
            "{}",
            desc.verifies
        );
        let (_, purge) = rb.find_step("cdn-purge").unwrap();
        assert!(purge.mutates());
        assert!(
            !purge.policy.blocking,
            "a failed purge is reported, not a rollback"
        );
        assert!(!rb.find_step("app-log-errors").unwrap().1.policy.blocking);
        assert!(rb.find_step("docs-updated").unwrap().1.policy.blocking);
        // The readiness checks read the release checkout when there is one.
        let with_release = EscolaConfig {
            release_dir: Some("/builds/escola/api".into()),
            ..full_config(
                Path::new("/srv/app"),
                "http://ci.invalid/s",
                "http://cache.invalid",
            )
        };
        let rb2 = runbook(&with_release).unwrap();
        let verifies = |id: &str| rb2.find_step(id).unwrap().1.description().unwrap().verifies;
        assert!(verifies("changelog-version").starts_with("/builds/escola/api/CHANGELOG.md"));
        assert!(verifies("docs-updated").contains("(repository /builds/escola/api)"));
        assert!(verifies("coverage").contains("/builds/escola/api/build/clover.xml"));
        assert!(verifies("app-log-errors").contains("/srv/app/var/logs/app.log"));
        // A fixed window needs no start marker.
        let mut config = full_config(
            Path::new("/srv/app"),
            "http://ci.invalid/s",
            "http://cache.invalid",
        );
        config.app_log = Some(AppLogConfig {
            since: Some("30m".into()),
            ..AppLogConfig::default()
        });
        assert!(
            runbook(&config)
                .unwrap()
                .find_step("deploy-started")
                .is_none()
        );
    }

    #[test]
    fn a_bad_configuration_names_the_check_and_parameter() {
        let config = EscolaConfig {
            changelog: Some(ChangelogConfig::new("next")),
            ..EscolaConfig::default()
        };
        let err = runbook(&config).unwrap_err();
        assert!(matches!(err, EscolaError::Config(_)), "{err}");
        assert!(
            err.to_string()
                .contains("check `changelog`, parameter `version`"),
            "{err}"
        );
        let config = EscolaConfig {
            ci_status: Some(CiStatusConfig {
                op: "roughly".into(),
                ..CiStatusConfig::new("http://ci.invalid")
            }),
            ..EscolaConfig::default()
        };
        assert!(
            runbook(&config)
                .unwrap_err()
                .to_string()
                .contains("parameter `op`")
        );
    }

    #[test]
    fn configuration_reads_from_json_with_defaults() {
        let config: CachePurgeConfig =
            serde_json::from_str(r#"{"base_url":"http://varnish:6081","method":"BAN"}"#).unwrap();
        assert_eq!(config.purge.paths, ["/v1/cidades", "/v1/escolas"]);
        assert!(
            serde_json::from_str::<CachePurgeConfig>(r#"{"base_url":"http://v","pahts":[]}"#)
                .is_err()
        );
        let log: AppLogConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(log, AppLogConfig::default());
        assert!(serde_json::from_str::<DocsConfig>(r#"{"sinse":"30d"}"#).is_err());
    }

    #[tokio::test]
    async fn the_configured_runbook_runs_its_checks_against_real_inputs() {
        use crate::git::testing::{commit, init, tag};
        use crate::http::testing::serve;
        use escola_runbook_core::{Executor, PreapprovedConfirmer, RunOptions, Status};

        let app = tempfile::tempdir().unwrap();
        let d = app.path();
        init(d);
        commit(
            d,
            "2026-09-01T12:00:00Z",
            "2.3.0",
            &[
                (
                    "CHANGELOG.md",
                    "# Changelog\n\n## [2.3.0] - 2026-09-01\n- old\n",
                ),
                ("docs/api.md", "1"),
                ("docs/cache-strategy.md", "1"),
                ("docs/escola-module-todo.md", "1"),
            ],
        );
        tag(d, "2026-09-01T12:00:00Z", "v2.3.0");
        commit(
            d,
            "2026-11-28T12:00:00Z",
            "docs and changelog for 2.4.0",
            &[
                (
                    "CHANGELOG.md",
                    "# Changelog\n\n## [2.4.0] - 2026-11-29\n- If-Match on sync\n\n## [2.3.0] - 2026-09-01\n- old\n",
                ),
                ("docs/api.md", "2"),
                ("docs/cache-strategy.md", "2"),
                ("docs/escola-module-todo.md", "2"),
            ],
        );
        std::fs::create_dir_all(d.join("build")).unwrap();
        std::fs::write(d.join("build/clover.xml"), r#"<coverage><project><metrics statements="200" coveredstatements="180"/></project></coverage>"#).unwrap();
        std::fs::create_dir_all(d.join("var/logs")).unwrap();
        std::fs::write(d.join("var/logs/app.log"), "[2020-01-01T00:00:00+00:00] app.ERROR: long ago [] []\n[2999-01-01T00:00:00+00:00] app.ERROR: Escola 7 not found {\"trace_id\":\"t-77\"} []\n").unwrap();
        let ci = serve(std::sync::Arc::new(|_: &crate::http::testing::Received| {
            (200, r#"{"state":"success"}"#.into())
        }))
        .await;
        let cache = serve(std::sync::Arc::new(|_: &crate::http::testing::Received| {
            (200, "Purged".into())
        }))
        .await;
        let config = full_config(d, &format!("{}/status", ci.url), &cache.url);
        let rb = runbook(&config).unwrap();
        let runs = tempfile::tempdir().unwrap();
        let record = Executor::new(rb)
            .confirmer(std::sync::Arc::new(PreapprovedConfirmer::new("test")))
            .run_root(runs.path())
            .options(RunOptions {
                only: [
                    "ci-green",
                    "coverage",
                    "docs-updated",
                    "changelog-version",
                    "deploy-started",
                    "cdn-purge",
                    "app-log-errors",
                ]
                .map(String::from)
                .to_vec(),
                ..RunOptions::default()
            })
            .run()
            .await
            .unwrap();
        let status = |id: &str| {
            record
                .phases
                .iter()
                .flat_map(|p| &p.steps)
                .find(|s| s.outline.id == id)
                .and_then(|s| s.outcome.clone())
                .unwrap_or_else(|| panic!("no outcome for {id}"))
        };
        for id in [
            "ci-green",
            "coverage",
            "docs-updated",
            "changelog-version",
            "deploy-started",
            "cdn-purge",
        ] {
            assert_eq!(status(id).status, Status::Passed, "{id}: {:#?}", status(id));
        }
        assert!(
            status("coverage")
                .summary
                .starts_with("line coverage 90% (180/200 lines)")
        );
        let purged: Vec<String> = cache
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(purged, ["PURGE /v1/cidades", "PURGE /v1/escolas"]);
        // The window starts at the recorded deploy start: the old error is
        // out, the (future-dated) one is in.
        let log = status("app-log-errors");
        assert_eq!(log.status, Status::Failed, "{log:#?}");
        assert!(
            log.summary.starts_with("1 ERROR-or-above line in"),
            "{}",
            log.summary
        );
        assert!(
            log.evidence
                .iter()
                .any(|e| e.value.contains("Escola 7 not found — Trace-Id t-77")),
            "{log:#?}"
        );
    }

    #[test]
    fn metrics_steps_are_checks() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        assert_eq!(
            kind_of(&rb, "metrics-baseline"),
            None,
            "manual without configuration"
        );
        assert_eq!(kind_of(&rb, "metrics-endpoint"), None);
        let rb = runbook(&EscolaConfig {
            metrics: Some(MetricsConfig::default()),
            ..EscolaConfig::default()
        })
        .unwrap();
        let step = |id: &str| {
            rb.phases()
                .iter()
                .flat_map(|p| p.steps.iter())
                .find(|s| s.id == id)
                .and_then(|s| s.description())
                .unwrap()
        };
        let baseline = step("metrics-baseline");
        assert_eq!(baseline.name, "metrics-baseline");
        assert!(
            baseline
                .produces
                .contains(&"baseline.latency.p95".to_owned())
        );
        assert!(!baseline.mutates);
        let endpoint = step("metrics-endpoint");
        assert_eq!(endpoint.name, "metrics-endpoint");
        assert!(
            endpoint.verifies.contains("metrics_token"),
            "{}",
            endpoint.verifies
        );
        assert!(endpoint.verifies.contains("http_requests_total"));
    }

    #[test]
    fn with_metrics_the_alerts_are_fail_fast_watches_that_roll_back() {
        let rb = runbook(&EscolaConfig::default()).unwrap();
        assert_eq!(
            kind_of(&rb, "alert-5xx"),
            None,
            "manual without configuration"
        );
        let rb = runbook(&EscolaConfig {
            metrics: Some(MetricsConfig::default()),
            ..EscolaConfig::default()
        })
        .unwrap();
        let phase = rb.find_phase("monitoring").unwrap();
        assert!(phase.rollback_on_failure && phase.fail_fast);
        for id in ["alert-latency-p95", "alert-5xx", "alert-rate-limit"] {
            let (_, step) = rb.find_step(id).unwrap();
            let d = step.description().unwrap();
            assert_eq!(d.name, "watch", "{id}");
            assert!(d.verifies.contains("every 15s for 24h"), "{}", d.verifies);
            assert!(d.verifies.contains("within 15m"), "{}", d.verifies);
            assert_eq!(step.policy.parallel_group.as_deref(), Some("alerts"));
        }
        let per_phase: Vec<usize> = rb.phases().iter().map(|p| p.steps.len()).collect();
        assert_eq!(per_phase[3], 7, "every item of section 4 is still a step");
    }
}
