//! The simulated host's programs, run as the runbook runs them (`sh -c` in
//! the app directory with its `bin/` first on PATH), act on the simulator.

use std::process::Command;

use escola_runbook_testkit::{MIGRATIONS, SimulatedHost, Simulator, SimulatorConfig};

fn run(host: &SimulatedHost, line: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", line])
        .current_dir(host.app_dir())
        .env("PATH", host.path_env())
        .output()
        .unwrap()
}

/// A simulator with a host attached (the directory lives as long as it).
async fn start() -> (Simulator, tempfile::TempDir, SimulatedHost) {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = SimulatedHost::create(dir.path(), &sim).unwrap();
    (sim, dir, host)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(sim: &Simulator, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap()
}

async fn health(sim: &Simulator) -> reqwest::Response {
    get(sim, "/health").await
}

async fn reported(sim: &Simulator) -> Option<String> {
    let text = health(sim).await.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    body["schema_version"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn maintenance_mode_answers_503_with_retry_after_until_artisan_up() {
    let (sim, _dir, host) = start().await;
    assert_eq!(health(&sim).await.status(), 200);

    let down = run(
        &host,
        r#"php artisan down --message="Atualizando" --retry=60"#,
    );
    assert!(down.status.success(), "{down:?}");
    assert!(host.in_maintenance());
    let r = get(&sim, "/v1/escolas").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "60");
    assert!(r.headers().contains_key("trace-id"));

    assert!(run(&host, "php artisan up").status.success());
    assert_eq!(health(&sim).await.status(), 200);
    assert_eq!(
        host.calls(),
        [
            r#"php artisan down --message=Atualizando --retry=60"#,
            "php artisan up"
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn migrations_advance_and_revert_the_schema_version_the_api_reports() {
    let (sim, _dir, host) = start().await;
    assert_eq!(reported(&sim).await.as_deref(), Some(MIGRATIONS[0]));

    let up = run(
        &host,
        "php vendor/bin/doctrine-migrations migrate --no-interaction",
    );
    assert!(up.status.success(), "{up:?}");
    assert!(String::from_utf8_lossy(&up.stdout).contains("2 migrations executed"));
    assert_eq!(reported(&sim).await.as_deref(), Some(MIGRATIONS[2]));

    let prev = run(
        &host,
        "php vendor/bin/doctrine-migrations migrate prev --no-interaction",
    );
    assert!(prev.status.success(), "{prev:?}");
    assert_eq!(host.schema_version().as_deref(), Some(MIGRATIONS[1]));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_migration_exits_non_zero_after_applying_the_others() {
    let (sim, _dir, host) = start().await;
    host.fail_migrations(true).unwrap();
    let up = run(
        &host,
        "php vendor/bin/doctrine-migrations migrate --no-interaction",
    );
    assert_eq!(up.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&up.stderr).contains(MIGRATIONS[2]));
    assert_eq!(host.schema_version().as_deref(), Some(MIGRATIONS[1]));
    host.fail_migrations(false).unwrap();
    assert!(
        run(&host, "php vendor/bin/doctrine-migrations migrate")
            .status
            .success()
    );
    assert_eq!(host.schema_version().as_deref(), Some(MIGRATIONS[2]));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_deploy_commands_run_and_purges_are_counted() {
    let (sim, _dir, host) = start().await;
    for line in [
        "git pull --ff-only && composer install --no-dev --no-interaction && php artisan config:cache",
        "php vendor/bin/phpunit",
        "php ./scripts/cache-clear-aggregates.php",
    ] {
        let out = run(&host, line);
        assert!(out.status.success(), "{line}: {out:?}");
    }
    assert!(run(&host, "php artisan migrate:fresh").status.code() == Some(1));
    assert_eq!(host.calls().len(), 6);
    let client = client();
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    for path in ["/v1/cidades", "/v1/escolas", "/v1/escolas"] {
        let r = client
            .request(purge.clone(), format!("{}{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let purges = sim.purges();
    assert_eq!((purges["/v1/cidades"], purges["/v1/escolas"]), (1, 2));
    sim.shutdown().await;
}
