//! A deploy lock held on the application's database with `GET_LOCK`, so
//! operators on different machines exclude each other. The server releases
//! it when the holder's connection dies, so a crashed run never leaves it
//! behind; who holds it (user, host, pid, run, heartbeat) is kept in a small
//! table beside it, best effort.

use std::time::Duration;

use chrono::{DateTime, Utc};
use escola_runbook_core::deploy_lock::{DeployLock, LockError, Staleness};
use escola_runbook_core::{LockOwner, Secret, async_trait};
use tokio::sync::Mutex;

use super::connect::{DbTarget, DbTimeouts, Session, mask_url};

/// The table holding the owner of each lock.
const OWNERS: &str = "escola_runbook_locks";

/// `GET_LOCK` on the database in a secret URL.
pub struct MysqlLock {
    target: DbTarget,
    name: String,
    lease: Duration,
    conn: Mutex<Option<Session>>,
}

impl std::fmt::Debug for MysqlLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlLock")
            .field("target", &self.target)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MysqlLock {
    /// The lock for `runbook` and `environment` on the database of `url`.
    pub fn new(
        url: &Secret,
        runbook: &str,
        environment: &str,
        lease: Duration,
    ) -> Result<Self, super::ConnectError> {
        // MariaDB limits lock names to 64 characters.
        let name: String = format!("escola-runbook:{runbook}--{environment}")
            .chars()
            .take(64)
            .collect();
        Ok(MysqlLock {
            target: DbTarget::from_secret(url)?,
            name,
            lease: lease.max(Duration::from_secs(3)),
            conn: Mutex::new(None),
        })
    }

    /// Connect, read and statement timeouts for the lock's session
    /// (default [`DbTimeouts::CHECK`]); `GET_LOCK` itself never waits more
    /// than 10 s.
    pub fn timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.target = self.target.with_timeouts(timeouts);
        self
    }

    fn err(&self, message: impl std::fmt::Display) -> LockError {
        LockError::Storage {
            lock: self.describe(),
            message: mask_url(&message.to_string()),
        }
    }

    async fn holder(&self, conn: &mut Session) -> Option<LockOwner> {
        let row: Option<String> = conn
            .exec_first(
                format!("SELECT owner FROM `{OWNERS}` WHERE name = ?"),
                (&self.name,),
            )
            .await
            .ok()
            .flatten();
        row.and_then(|json| serde_json::from_str(&json).ok())
    }

    async fn record_owner(&self, conn: &mut Session, owner: &LockOwner) {
        let Ok(json) = serde_json::to_string(owner) else {
            return;
        };
        // Best effort: without the right to create a table the lock still
        // excludes; only the holder's name is missing from the refusal.
        let _ = conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS `{OWNERS}` (name VARCHAR(64) PRIMARY KEY, owner TEXT NOT NULL)"
            ))
            .await;
        let _ = conn
            .exec_drop(
                format!("REPLACE INTO `{OWNERS}` (name, owner) VALUES (?, ?)"),
                (&self.name, json),
            )
            .await;
    }
}

#[async_trait]
impl DeployLock for MysqlLock {
    fn describe(&self) -> String {
        format!("database lock `{}` on {}", self.name, self.target.display())
    }

    async fn acquire(
        &self,
        owner: &LockOwner,
        break_reason: Option<&str>,
    ) -> Result<Option<LockOwner>, LockError> {
        let mut conn = self.target.connect().await.map_err(|e| self.err(e))?;
        let got: Option<i64> = conn
            .exec_first("SELECT GET_LOCK(?, 0)", (&self.name,))
            .await
            .map_err(|e| self.err(e))?
            .flatten();
        let mut displaced = None;
        if got != Some(1) {
            let holder = self
                .holder(&mut conn)
                .await
                .unwrap_or_else(|| unreadable_holder(owner.heartbeat));
            if break_reason.is_none() {
                let silent_for = (owner.heartbeat - holder.heartbeat)
                    .to_std()
                    .unwrap_or_default();
                return Err(LockError::Held {
                    lock: self.describe(),
                    stale: (silent_for > self.lease).then_some(Staleness::Expired { silent_for }),
                    holder: Box::new(holder),
                });
            }
            // The only way to take a GET_LOCK from a live session is to end
            // that session: its run then notices at its next heartbeat.
            let id: Option<u64> = conn
                .exec_first("SELECT IS_USED_LOCK(?)", (&self.name,))
                .await
                .map_err(|e| self.err(e))?
                .flatten();
            if let Some(id) = id {
                conn.query_drop(format!("KILL CONNECTION {id}"))
                    .await
                    .map_err(|e| {
                        self.err(format!(
                            "cannot end the holder's session {id} to break the lock: {e}"
                        ))
                    })?;
            }
            let got: Option<i64> = conn
                .exec_first("SELECT GET_LOCK(?, 10)", (&self.name,))
                .await
                .map_err(|e| self.err(e))?
                .flatten();
            if got != Some(1) {
                return Err(
                    self.err("the lock could not be taken even after ending its holder's session")
                );
            }
            displaced = Some(holder);
        }
        self.record_owner(&mut conn, owner).await;
        *self.conn.lock().await = Some(conn);
        Ok(displaced)
    }

    async fn heartbeat(&self, owner: &LockOwner) -> Result<(), LockError> {
        let mut guard = self.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            return Err(self.err("this run does not hold the lock"));
        };
        let ours: Option<i64> = match conn
            .exec_first("SELECT IS_USED_LOCK(?) = CONNECTION_ID()", (&self.name,))
            .await
        {
            Ok(v) => v.flatten(),
            // Our session was ended (the lock was broken) or the server went
            // away: either way the lock is no longer ours.
            Err(_) => None,
        };
        if ours != Some(1) {
            *guard = None;
            let mut probe = self.target.connect().await.map_err(|e| self.err(e))?;
            let holder = self
                .holder(&mut probe)
                .await
                .unwrap_or_else(|| unreadable_holder(owner.heartbeat));
            return Err(LockError::Lost {
                lock: self.describe(),
                holder: Box::new(holder),
            });
        }
        self.record_owner(conn, owner).await;
        Ok(())
    }

    async fn release(&self, owner: &LockOwner) -> Result<(), LockError> {
        let Some(mut conn) = self.conn.lock().await.take() else {
            return Ok(());
        };
        if self
            .holder(&mut conn)
            .await
            .is_some_and(|h| h.run_id == owner.run_id && h.pid == owner.pid)
        {
            let _ = conn
                .exec_drop(
                    format!("DELETE FROM `{OWNERS}` WHERE name = ?"),
                    (&self.name,),
                )
                .await;
        }
        let _ = conn.exec_drop("DO RELEASE_LOCK(?)", (&self.name,)).await;
        conn.disconnect().await;
        Ok(())
    }

    fn heartbeat_interval(&self) -> Duration {
        self.lease / 3
    }
}

/// The holder of a lock whose owner row cannot be read (another tool took
/// the named lock, or its row is gone): said as such, seen at `at`.
fn unreadable_holder(at: DateTime<Utc>) -> LockOwner {
    LockOwner {
        user: "unknown".into(),
        host: "another connection".into(),
        pid: 0,
        run_id: "unknown".into(),
        since: at,
        heartbeat: at,
    }
}
