//! The Escola Connect API deploy runbook (`Runbook de Deploy`), encoded once
//! for the CLI and the examples. Every item of the team's document is a step
//! with the team's own Portuguese title, in the document's seven sections.
//!
//! Items that later checks automate are manual steps here, with the
//! runbook's instructions; commands the document spells out are command
//! steps run in [`EscolaConfig::app_dir`].

use std::path::PathBuf;
use std::time::Duration;

use escola_runbook_core::{ModelError, Phase, Runbook, Step};

use crate::command::CommandCheck;
use crate::notify::Notify;

/// The runbook's name, as the document's title.
pub const RUNBOOK_NAME: &str = "Escola Connect API — Runbook de Deploy";

/// The secret name the CLI looks for to enable webhook notices.
pub const WEBHOOK_SECRET: &str = "webhook_url";

/// Where the application lives and how long its commands may take.
#[derive(Debug, Clone)]
pub struct EscolaConfig {
    /// The application checkout on the deploy host, where `php artisan` and
    /// the scripts run.
    pub app_dir: PathBuf,
    /// Limit for ordinary commands (maintenance mode, cache scripts).
    pub command_timeout: Duration,
    /// Limit for migrations, composer and phpunit.
    pub long_command_timeout: Duration,
    /// Name of the secret holding a Slack-compatible webhook URL: when set,
    /// the status and rollback notices are posted instead of confirmed.
    pub webhook_secret: Option<String>,
}

impl Default for EscolaConfig {
    fn default() -> Self {
        EscolaConfig {
            app_dir: PathBuf::from("."),
            command_timeout: Duration::from_secs(120),
            long_command_timeout: Duration::from_secs(1800),
            webhook_secret: None,
        }
    }
}

/// A notice: posted to the webhook when one is configured, confirmed by a
/// person otherwise.
fn notice(config: &EscolaConfig, id: &str, title: &str, message: &str) -> Step {
    match &config.webhook_secret {
        Some(secret) => Step::check(id, title, Notify::new(secret.clone(), message)),
        None => Step::manual(id, title),
    }
}

/// The built-in runbook.
pub fn runbook(config: &EscolaConfig) -> Result<Runbook, ModelError> {
    let cmd = |line: &str, timeout: Duration| {
        CommandCheck::shell(line)
            .current_dir(&config.app_dir)
            .timeout(timeout)
    };
    let short = config.command_timeout;
    let long = config.long_command_timeout;

    let readiness = "Checklist de readiness";
    let window = "Janela & comunicações";
    let backups = "Backups & infra";
    let pre_deploy = Phase::new("pre-deploy", "Pré-Deploy")
        .step(Step::manual("ci-green", "Confirmar branch `main` verdinho (CI ok, cobertura ≥ 85%).").section(readiness))
        .step(
            Step::manual(
                "docs-updated",
                "Validar que `docs/api.md`, `docs/cache-strategy.md` e `docs/escola-module-todo.md` estão atualizados.",
            )
            .section(readiness),
        )
        .step(Step::manual("changelog-version", "Revisar `CHANGELOG.md` e anotar versão planejada (semver).").section(readiness))
        .step(Step::manual("window-agreed", "Sincronizar janela com Infra + Produto (evitar campanhas de campo).").section(window))
        .step(Step::manual("notice-scheduled", "Programar aviso nos canais #operacoes e #promotores (T -4h).").section(window))
        .step(Step::manual("squad-present", "Garantir presença do squad (dev, QA, suporte) no período.").section(window))
        .step(Step::manual("db-snapshot", "Snapshot do banco (`mysqldump` + storage seguro).").section(backups))
        .step(Step::manual("metrics-baseline", "Verificar métricas em Prometheus (`/metrics`) e latência base.").section(backups))
        .step(
            Step::manual("drain-queues", "Limpar filas/cron-sim (se aplicável) para evitar gatilhos durante deploy.")
                .section(backups),
        );

    let deploy = Phase::new("deploy", "Deploy")
        .rollback_on_failure()
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
        .step(Step::manual("migrations-consistent", "Confirmar que `sync_mutations` e `eventos` estão consistentes."))
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
            Step::manual("cdn-purge", "Limpar caches HTTP/CDN relacionados a `/v1/cidades` e `/v1/escolas`.")
                .section("Limpeza de caches"),
        )
        .step(
            Step::check("maintenance-off", "Retomar tráfego", cmd("php artisan up", short))
                .note("ou remover flag de manutenção no proxy."),
        );

    let post_deploy = Phase::new("post-deploy", "Pós-Deploy Imediato (0–30 min)")
        .rollback_on_failure()
        .step(Step::check(
            "smoke-tests",
            "Validar smoke tests automatizados (Postman/Newman ou script `./scripts/smoke.sh`).",
            cmd("./scripts/smoke.sh", long).read_only(),
        ))
        .step(Step::manual("app-log-errors", "Checar logs de erro (`var/logs/app.log`) e `Trace-Id`."))
        .step(Step::manual(
            "metrics-endpoint",
            "Garantir que `/metrics` está respondendo (`curl -H \"Authorization: Bearer <token>\" http://api/metrics`).",
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
    let monitoring = Phase::watch("monitoring", "Monitoramento Estendido (30 min – 24h)")
        .step(
            Step::manual("panel-latency", "`Escolas > Latência (P50/P95/P99)` usando histograma `http_request_duration_seconds`.")
                .section(panels),
        )
        .step(Step::manual("panel-error-rate", "`Erro rate` com contador `http_requests_total{status=~\"5..\"}`").section(panels))
        .step(
            Step::manual("panel-sync-backlog", "`Sync Mutations Backlog` (consultar tabela `sync_mutations`).").section(panels),
        )
        .step(Step::manual("alert-latency-p95", "`Latência P95 > 2s` por 5 minutos.").section(alerts))
        .step(Step::manual("alert-5xx", "`HTTP 5xx > 1%` por 5 minutos.").section(alerts))
        .step(
            Step::manual(
                "alert-rate-limit",
                "`Rate Limit` excedido para `/v1/escolas` por mais de 3 requisições consecutivas.",
            )
            .section(alerts),
        )
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
            .section(procedure),
        )
        .step(
            Step::manual("restore-snapshot", "Restaurar snapshot do banco apenas se dado corrompido (com aval de DBA).")
                .section(procedure),
        )
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

    Runbook::builder(RUNBOOK_NAME)
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
