//! Deploy locks: one run of a runbook per environment at a time. A lease
//! with a heartbeat: only its owner releases it, a stale one is reported
//! (never silently taken), and breaking one needs a reason that the journal
//! keeps.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who holds a deploy lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// User name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// The run holding it.
    pub run_id: String,
    /// When it was taken.
    pub since: DateTime<Utc>,
    /// Last sign of life.
    pub heartbeat: DateTime<Utc>,
}

/// Why a holder looks gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Staleness {
    /// Its process is not running on this host.
    DeadProcess,
    /// No heartbeat for longer than the lease.
    Expired {
        /// Time since the last heartbeat.
        silent_for: Duration,
    },
}

/// A lock could not be taken, kept or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone holds it.
    #[error("{lock} is held by {} on {} (pid {}, run {}) since {}, last heartbeat {}{}",
        holder.user, holder.host, holder.pid, holder.run_id,
        holder.since.format("%Y-%m-%d %H:%M:%S UTC"), holder.heartbeat.format("%H:%M:%S UTC"),
        stale.as_ref().map(stale_text).unwrap_or_default())]
    Held {
        /// Which lock.
        lock: String,
        /// Who holds it.
        holder: Box<LockOwner>,
        /// Whether it looks stale.
        stale: Option<Staleness>,
    },
    /// Someone broke our lock while we ran.
    #[error("{lock} was taken over by {} on {} (run {}) while this run held it", holder.user, holder.host, holder.run_id)]
    Lost {
        /// Which lock.
        lock: String,
        /// The new holder.
        holder: Box<LockOwner>,
    },
    /// The lock's storage failed.
    #[error("{lock}: {message}")]
    Storage {
        /// Which lock.
        lock: String,
        /// What failed.
        message: String,
    },
}

fn stale_text(s: &Staleness) -> String {
    format!("; it looks stale: {s}")
}

impl Staleness {
    /// Whether run `run_id`, resumed, takes over without being asked a
    /// lock `holder` holds that looks gone this way: only its own, and only
    /// when its process is known dead on this host (an expired heartbeat
    /// may be a slow network, not a dead run).
    pub fn taken_over_by(&self, holder: &LockOwner, run_id: &str) -> bool {
        *self == Staleness::DeadProcess && holder.run_id == run_id
    }
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staleness::DeadProcess => f.write_str("that process is no longer running on this host"),
            Staleness::Expired { silent_for } => write!(
                f,
                "no heartbeat for {}",
                crate::outcome::format_duration(*silent_for)
            ),
        }
    }
}

/// A deploy lock backend (a local file; a database's `GET_LOCK`).
#[async_trait]
pub trait DeployLock: Send + Sync {
    /// Which lock, in words, for messages.
    fn describe(&self) -> String;

    /// Takes the lock for `owner`. With `break_reason`, displaces any holder
    /// and returns it (for the journal); without, refuses with who holds it.
    /// A backend may also take over a lock left by the same run's own dead
    /// process, returning that holder.
    async fn acquire(
        &self,
        owner: &LockOwner,
        break_reason: Option<&str>,
    ) -> Result<Option<LockOwner>, LockError>;

    /// Renews the lease (to `owner.heartbeat`); fails with
    /// [`LockError::Lost`] if it is no longer ours.
    async fn heartbeat(&self, owner: &LockOwner) -> Result<(), LockError>;

    /// Releases the lock if, and only if, `owner` still holds it.
    async fn release(&self, owner: &LockOwner) -> Result<(), LockError>;

    /// How often to renew.
    fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// A lock file on this machine.
#[derive(Debug, Clone)]
pub struct FileLock {
    path: PathBuf,
    lease: Duration,
}

impl FileLock {
    /// The lock at `path`, whose lease expires after `lease` without a
    /// heartbeat.
    pub fn new(path: impl Into<PathBuf>, lease: Duration) -> Self {
        FileLock {
            path: path.into(),
            lease: lease.max(Duration::from_secs(3)),
        }
    }

    /// The lock file for `runbook` and `environment` under `dir`.
    pub fn for_runbook(dir: &Path, runbook: &str, environment: &str, lease: Duration) -> Self {
        let key: String = format!("{runbook}--{environment}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        Self::new(dir.join(format!("{key}.lock")), lease)
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: impl std::fmt::Display) -> LockError {
        LockError::Storage {
            lock: self.describe(),
            message: message.to_string(),
        }
    }

    /// Who holds the lock now, read without taking it (`None`: nobody).
    pub fn holder(&self) -> Result<Option<LockOwner>, LockError> {
        self.read()
    }

    fn read(&self) -> Result<Option<LockOwner>, LockError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                self.err(format!(
                    "the lock file is not readable ({e}); inspect it and remove it by hand if no run holds it"
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(format!("cannot read the lock file: {e}"))),
        }
    }

    fn create(&self, owner: &LockOwner) -> Result<bool, LockError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| self.err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&self.path) {
            Ok(mut file) => {
                let json = serde_json::to_vec(owner).map_err(|e| self.err(e))?;
                file.write_all(&json)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| self.err(format!("cannot write the lock file: {e}")))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err(format!("cannot create the lock file: {e}"))),
        }
    }

    /// Whether `holder` looks gone, seen from host `here` at `now`: its
    /// process is not running (on this host), or its heartbeat is older
    /// than the lease.
    pub fn staleness(
        &self,
        holder: &LockOwner,
        now: DateTime<Utc>,
        here: &str,
    ) -> Option<Staleness> {
        if holder.host == here && !process_alive(holder.pid) {
            return Some(Staleness::DeadProcess);
        }
        let silent_for = (now - holder.heartbeat).to_std().unwrap_or_default();
        (silent_for > self.lease).then_some(Staleness::Expired { silent_for })
    }
}

fn same_holder(a: &LockOwner, b: &LockOwner) -> bool {
    a.run_id == b.run_id && a.host == b.host && a.pid == b.pid
}

/// Whether `pid` runs on this host (Linux `/proc`; elsewhere assumed alive,
/// so a lock is never wrongly called stale).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

#[async_trait]
impl DeployLock for FileLock {
    fn describe(&self) -> String {
        format!("deploy lock {}", self.path.display())
    }

    async fn acquire(
        &self,
        owner: &LockOwner,
        break_reason: Option<&str>,
    ) -> Result<Option<LockOwner>, LockError> {
        // Two tries: a holder that releases between our read and our create
        // is not worth an error.
        for _ in 0..2 {
            if self.create(owner)? {
                return Ok(None);
            }
            let Some(holder) = self.read()? else { continue };
            // The same run resumed on the host where its earlier process
            // died: the evidence is definite, so take it over (the caller
            // journals it as broken).
            let own_dead_process = self
                .staleness(&holder, owner.heartbeat, &owner.host)
                .is_some_and(|s| s.taken_over_by(&holder, &owner.run_id));
            if break_reason.is_some() || own_dead_process {
                std::fs::remove_file(&self.path).map_err(|e| {
                    self.err(format!("cannot remove the lock file to break it: {e}"))
                })?;
                if self.create(owner)? {
                    return Ok(Some(holder));
                }
                continue;
            }
            return Err(LockError::Held {
                lock: self.describe(),
                stale: self.staleness(&holder, owner.heartbeat, &owner.host),
                holder: Box::new(holder),
            });
        }
        match self.read()? {
            Some(holder) => Err(LockError::Held {
                lock: self.describe(),
                stale: None,
                holder: Box::new(holder),
            }),
            None => Err(self.err(
                "the lock file keeps appearing and disappearing; another run is starting now",
            )),
        }
    }

    async fn heartbeat(&self, owner: &LockOwner) -> Result<(), LockError> {
        match self.read()? {
            Some(holder) if same_holder(&holder, owner) => {
                let mut renewed = holder;
                renewed.heartbeat = owner.heartbeat;
                let tmp = self.path.with_extension("lock.tmp");
                let json = serde_json::to_vec(&renewed).map_err(|e| self.err(e))?;
                std::fs::write(&tmp, json)
                    .and_then(|()| std::fs::rename(&tmp, &self.path))
                    .map_err(|e| self.err(format!("cannot renew the lock: {e}")))
            }
            Some(holder) => Err(LockError::Lost {
                lock: self.describe(),
                holder: Box::new(holder),
            }),
            None => Err(self.err("the lock file disappeared while this run held it")),
        }
    }

    async fn release(&self, owner: &LockOwner) -> Result<(), LockError> {
        match self.read()? {
            Some(holder) if same_holder(&holder, owner) => std::fs::remove_file(&self.path)
                .map_err(|e| self.err(format!("cannot remove the lock file: {e}"))),
            Some(holder) => Err(LockError::Lost {
                lock: self.describe(),
                holder: Box::new(holder),
            }),
            None => Ok(()),
        }
    }

    fn heartbeat_interval(&self) -> Duration {
        self.lease / 3
    }
}

/// Several locks held together (a local file and a database lock): taken in
/// order, all released if one is refused, renewed and released together.
pub struct Locks(pub Vec<std::sync::Arc<dyn DeployLock>>);

#[async_trait]
impl DeployLock for Locks {
    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|l| l.describe())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    async fn acquire(
        &self,
        owner: &LockOwner,
        break_reason: Option<&str>,
    ) -> Result<Option<LockOwner>, LockError> {
        let mut displaced = None;
        for (i, lock) in self.0.iter().enumerate() {
            match lock.acquire(owner, break_reason).await {
                Ok(previous) => displaced = displaced.or(previous),
                Err(e) => {
                    for taken in self.0[..i].iter().rev() {
                        // Releasing what this run just took; a failure here
                        // leaves a lease that expires on its own.
                        let _ = taken.release(owner).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(displaced)
    }

    async fn heartbeat(&self, owner: &LockOwner) -> Result<(), LockError> {
        for lock in &self.0 {
            lock.heartbeat(owner).await?;
        }
        Ok(())
    }

    async fn release(&self, owner: &LockOwner) -> Result<(), LockError> {
        let mut first_error = None;
        for lock in self.0.iter().rev() {
            if let Err(e) = lock.release(owner).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn heartbeat_interval(&self) -> Duration {
        self.0
            .iter()
            .map(|l| l.heartbeat_interval())
            .min()
            .unwrap_or(Duration::from_secs(30))
    }
}
