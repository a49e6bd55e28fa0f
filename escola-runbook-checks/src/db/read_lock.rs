//! The snapshot's global read lock (`FLUSH TABLES WITH READ LOCK`), taken
//! with bounded waits. While it is pending, the server holds up every write
//! on every database behind it, so each try waits only a short time
//! (`lock_wait_timeout`), the tries are few and spaced out, and when the
//! lock cannot be had the refusal names the sessions holding it up.

use std::fmt;
use std::time::{Duration, Instant};

use escola_runbook_core::format_duration;
use mysql_async::Row;
use mysql_async::prelude::Queryable;

use super::connect::Session;

/// Default wait for each try of the global read lock.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);
/// Default number of tries of the global read lock.
pub const DEFAULT_LOCK_TRIES: u32 = 3;
/// Pause between tries, so that the writes a pending lock held up get
/// through.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The server's "lock wait timeout exceeded", and "query execution was
/// interrupted" (our own `KILL QUERY`).
const GAVE_UP: [u16; 2] = [1205, 1317];
/// Access denied, or RELOAD missing: the lock is not available to this user.
const NO_PRIVILEGE: [u16; 3] = [1044, 1045, 1227];

/// The lock, granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Granted {
    /// From the first try until it was granted (pauses included).
    pub(crate) waited: Duration,
    /// When it was granted: writes are blocked from then on.
    pub(crate) at: Instant,
}

/// How the attempt ended.
#[derive(Debug)]
pub(crate) enum Attempt {
    Granted(Granted),
    /// The user may not take it: the snapshot goes on without it.
    NoPrivilege,
    /// Not granted in any try.
    Refused {
        blockers: Vec<Blocker>,
    },
}

/// Takes the global read lock on `control`, each try waiting at most `wait`,
/// `tries` times. The server's `lock_wait_timeout` (whole seconds) bounds
/// each of the statement's two waits (the lock, then the table flush), so
/// a try that outlasts `wait` is interrupted from `killer`, another session
/// of the same user (`KILL QUERY`). `ours` are this snapshot's own
/// sessions, never named as blockers.
pub(crate) async fn take(
    control: &mut Session,
    killer: &mut Session,
    wait: Duration,
    tries: u32,
    ours: &[u32],
) -> Result<Attempt, mysql_async::Error> {
    let seconds = wait.as_secs_f64().ceil().max(1.0);
    control
        .query_drop(format!("SET SESSION lock_wait_timeout = {seconds}"))
        .await?;
    let control_id = control.id();
    let first = Instant::now();
    for attempt in 1..=tries.max(1) {
        let (conn, answers) = control.parts();
        let ftwrl = conn.query_drop("FLUSH TABLES WITH READ LOCK");
        tokio::pin!(ftwrl);
        let result = tokio::select! {
            result = &mut ftwrl => result,
            () = tokio::time::sleep(wait) => {
                // Interrupted, the statement answers at once (or it was
                // granted meanwhile, and says so).
                let _ = killer.query_drop(format!("KILL QUERY {control_id}")).await;
                answers.within(&mut ftwrl).await
            }
        };
        match result {
            Ok(()) => {
                return Ok(Attempt::Granted(Granted {
                    waited: first.elapsed(),
                    at: Instant::now(),
                }));
            }
            Err(mysql_async::Error::Server(e)) if NO_PRIVILEGE.contains(&e.code) => {
                return Ok(Attempt::NoPrivilege);
            }
            Err(mysql_async::Error::Server(e)) if GAVE_UP.contains(&e.code) => {
                if attempt < tries {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Attempt::Refused {
        blockers: blockers(control, ours).await,
    })
}

/// A session holding up the global read lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// Its connection id.
    pub id: u64,
    /// `user@host` as the server shows it.
    pub who: String,
    /// Seconds in its current state.
    pub seconds: u64,
    /// The statement it runs, if any (shortened).
    pub statement: Option<String>,
    /// What it is known to hold: metadata locks, or the tables in use on
    /// the server when it runs nothing.
    pub holds: Option<String>,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = format_duration(Duration::from_secs(self.seconds));
        write!(f, "session {} {}", self.id, self.who)?;
        match &self.statement {
            Some(s) => write!(f, " running `{s}` for {time}")?,
            None => write!(f, " idle for {time} with no statement running")?,
        }
        if let Some(h) = &self.holds {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// The sessions most likely holding up the lock, at most five: from
/// `information_schema.METADATA_LOCK_INFO` when the server has it (the
/// `metadata_lock_info` plugin), otherwise the longest-running statements
/// of other sessions, or, when none runs, the idle sessions while tables
/// are in use (a `LOCK TABLES` or an open transaction).
async fn blockers(control: &mut Session, ours: &[u32]) -> Vec<Blocker> {
    let theirs = |id: u64| !ours.iter().any(|o| u64::from(*o) == id);
    let by_metadata_locks: Result<Vec<Row>, _> = control
        .query(
            "SELECT p.ID, CONCAT(p.USER, '@', p.HOST), p.TIME, p.INFO, \
             GROUP_CONCAT(DISTINCT CONCAT(m.LOCK_MODE, IF(m.TABLE_NAME = '', '', CONCAT(' on ', m.TABLE_SCHEMA, '.', m.TABLE_NAME))) SEPARATOR ', ') \
             FROM information_schema.METADATA_LOCK_INFO m JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID \
             WHERE m.THREAD_ID <> CONNECTION_ID() \
             GROUP BY p.ID, p.USER, p.HOST, p.TIME, p.INFO ORDER BY p.TIME DESC",
        )
        .await;
    if let Ok(rows) = by_metadata_locks {
        let found: Vec<Blocker> = rows
            .iter()
            .filter_map(|r| {
                let id: u64 = r.get_opt(0)?.ok()?;
                theirs(id).then(|| Blocker {
                    id,
                    who: text(r, 1).unwrap_or_default(),
                    seconds: r.get_opt(2).and_then(Result::ok).unwrap_or(0),
                    statement: text(r, 3).map(|s| shorten(&s)),
                    holds: text(r, 4).map(|h| format!("holds {h}")),
                })
            })
            .take(5)
            .collect();
        if !found.is_empty() {
            return found;
        }
    }
    let rows: Vec<Row> = control
        .query(
            "SELECT ID, CONCAT(USER, '@', HOST), TIME, COMMAND, STATE, INFO \
             FROM information_schema.PROCESSLIST \
             WHERE ID <> CONNECTION_ID() AND USER <> 'system user' \
             AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Killed') \
             ORDER BY TIME DESC",
        )
        .await
        .unwrap_or_default();
    let sessions: Vec<(Blocker, bool)> = rows
        .iter()
        .filter_map(|r| {
            let id: u64 = r.get_opt(0)?.ok()?;
            let state = text(r, 4).unwrap_or_default();
            // Sessions waiting for a lock are held up too, not holders.
            if !theirs(id) || state.starts_with("Waiting for") {
                return None;
            }
            let idle = text(r, 3).as_deref() == Some("Sleep");
            let blocker = Blocker {
                id,
                who: text(r, 1).unwrap_or_default(),
                seconds: r.get_opt(2).and_then(Result::ok).unwrap_or(0),
                statement: text(r, 5).filter(|_| !idle).map(|s| shorten(&s)),
                holds: None,
            };
            Some((blocker, idle))
        })
        .collect();
    let running: Vec<Blocker> = sessions
        .iter()
        .filter(|(_, idle)| !idle)
        .map(|(b, _)| b.clone())
        .take(5)
        .collect();
    if !running.is_empty() {
        return running;
    }
    let in_use: Vec<String> = control
        .query::<Row, _>("SHOW OPEN TABLES WHERE In_use > 0")
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| Some(format!("{}.{}", text(r, 0)?, text(r, 1)?)))
        .collect();
    if in_use.is_empty() {
        return Vec::new();
    }
    let holds = format!(
        "tables in use on the server: {}; a LOCK TABLES or an open transaction here may hold them",
        in_use.join(", ")
    );
    sessions
        .into_iter()
        .map(|(b, _)| Blocker {
            holds: Some(holds.clone()),
            ..b
        })
        .take(5)
        .collect()
}

fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::NULL => None,
        other => Some(other.as_sql(true)),
    }
}

/// A statement on one line, at most 200 characters.
fn shorten(statement: &str) -> String {
    let flat = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockers_read_as_who_what_and_for_how_long() {
        let running = Blocker {
            id: 147,
            who: "app@10.0.0.7:51234".into(),
            seconds: 95,
            statement: Some("ALTER TABLE eventos ADD COLUMN x INT".into()),
            holds: None,
        };
        assert_eq!(
            running.to_string(),
            "session 147 app@10.0.0.7:51234 running `ALTER TABLE eventos ADD COLUMN x INT` for 1m35s"
        );
        let idle = Blocker {
            statement: None,
            seconds: 3,
            holds: Some("tables in use on the server: escola.t".into()),
            ..running
        };
        assert_eq!(
            idle.to_string(),
            "session 147 app@10.0.0.7:51234 idle for 3s with no statement running (tables in use on the server: escola.t)"
        );
        assert_eq!(shorten("SELECT\n  1"), "SELECT 1");
        assert_eq!(shorten(&"x".repeat(300)).chars().count(), 201);
    }
}
