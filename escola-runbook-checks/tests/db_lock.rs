//! The database deploy lock against the real MariaDB at 127.0.0.1:3306
//! (root, empty password); skipped with a reason when it is not reachable,
//! unless ESCOLA_REQUIRE_SERVICES=1.

use std::time::Duration;

use chrono::Utc;
use escola_runbook_checks::db::lock::MysqlLock;
use escola_runbook_core::deploy_lock::{DeployLock, LockError};
use escola_runbook_core::{LockOwner, Secret};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

const ROOT: &str = "mysql://root@127.0.0.1:3306";

async fn server() -> Option<Conn> {
    match Conn::new(mysql_async::Opts::from_url(ROOT).unwrap()).await {
        Ok(c) => Some(c),
        Err(e) => {
            if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("MariaDB at 127.0.0.1:3306 is required (ESCOLA_REQUIRE_SERVICES=1): {e}");
            }
            eprintln!("skipping: MariaDB at 127.0.0.1:3306 is not reachable: {e}");
            None
        }
    }
}

fn owner(user: &str, run: &str) -> LockOwner {
    let now = Utc::now();
    LockOwner {
        user: user.into(),
        host: format!("{user}-laptop"),
        pid: std::process::id(),
        run_id: run.into(),
        since: now,
        heartbeat: now,
    }
}

#[tokio::test]
async fn engineers_on_different_machines_exclude_each_other() {
    let Some(mut admin) = server().await else {
        return;
    };
    let db = format!("escola_t_lock_{}", std::process::id());
    admin
        .query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    let url = Secret::new(format!("{ROOT}/{db}"));
    let env = format!("prod-{}", std::process::id());
    let ana_lock = MysqlLock::new(&url, "escola", &env, Duration::from_secs(120)).unwrap();
    let bruno_lock = MysqlLock::new(&url, "escola", &env, Duration::from_secs(120)).unwrap();
    let (ana, bruno) = (owner("ana", "run-a"), owner("bruno", "run-b"));

    assert_eq!(ana_lock.acquire(&ana, None).await.unwrap(), None);
    ana_lock.heartbeat(&ana).await.unwrap();
    let refused = bruno_lock.acquire(&bruno, None).await.unwrap_err();
    let text = refused.to_string();
    assert!(text.contains("is held by ana on ana-laptop"), "{text}");
    // The error says who holds it; the CLI adds how to break it.
    assert!(
        matches!(&refused, LockError::Held { holder, stale: None, .. } if holder.run_id == "run-a"),
        "{refused:?}"
    );

    // Breaking ends ana's session; her next heartbeat says who took it.
    let previous = bruno_lock
        .acquire(&bruno, Some("ana's laptop froze"))
        .await
        .unwrap();
    assert_eq!(previous.map(|p| p.user), Some("ana".into()));
    match ana_lock.heartbeat(&ana).await.unwrap_err() {
        LockError::Lost { holder, .. } => assert_eq!(holder.user, "bruno"),
        other => panic!("{other}"),
    }
    bruno_lock.release(&bruno).await.unwrap();
    // Released: anyone can take it again.
    assert_eq!(ana_lock.acquire(&ana, None).await.unwrap(), None);
    ana_lock.release(&ana).await.unwrap();
    admin
        .query_drop(format!("DROP DATABASE `{db}`"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dead_session_releases_the_lock_by_itself() {
    let Some(mut admin) = server().await else {
        return;
    };
    let url = Secret::new(format!("{ROOT}/test"));
    let env = format!("staging-{}", std::process::id());
    let first = MysqlLock::new(&url, "escola", &env, Duration::from_secs(120)).unwrap();
    first.acquire(&owner("ana", "run-a"), None).await.unwrap();
    // The process dies: its connection goes away with it.
    drop(first);
    let second = MysqlLock::new(&url, "escola", &env, Duration::from_secs(120)).unwrap();
    let mut got = None;
    for _ in 0..50 {
        match second.acquire(&owner("bruno", "run-b"), None).await {
            Ok(previous) => {
                got = Some(previous);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        got,
        Some(None),
        "the server released the dead session's lock"
    );
    second.release(&owner("bruno", "run-b")).await.unwrap();
    admin
        .exec_drop(
            "DELETE FROM test.escola_runbook_locks WHERE name LIKE ?",
            (format!("%{env}"),),
        )
        .await
        .unwrap();
}
