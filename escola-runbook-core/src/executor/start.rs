//! Starting and ending a run: its id and directory, its first journal
//! record, the deploy lock (taken, renewed by a heartbeat, released), and
//! the [`Run`] that the steps run in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::approval_wait::Approvals;
use super::builder::Executor;
use super::error::RunError;
use super::host::RunHost;
use super::run::Run;
use super::selection::Selection;
use crate::clock::Clock;
use crate::confirm::PreapprovedConfirmer;
use crate::deploy_lock::{DeployLock, LockError, LockOwner};
use crate::dispatch::{Announcer, Dispatcher};
use crate::event::{Event, InterruptedDecision, Resolution, ResumeInfo, RunInfo, SCHEMA_VERSION};
use crate::journal::{JOURNAL_FILE, JournalWriter};
use crate::mutex::lock_unpoisoned as lock;
use crate::notice::NOTICE_WAIT;
use crate::outcome::Outcome;
use crate::outline::RunbookOutline;
use crate::record::RunRecord;
use crate::resume::ResumePlan;
use crate::runs::{generate_run_id, run_directory};

impl Executor {
    /// Runs the runbook to its end (or its stop) and returns the record.
    ///
    /// Errors only when the run cannot start (bad selection, run directory)
    /// or its journal cannot be written; every step failure is in the record.
    pub async fn run(mut self) -> Result<RunRecord, RunError> {
        let resume = self.resume.take();
        if let Some((plan, _)) = &resume {
            let prior = &plan.record.run;
            self.options.run_id = Some(prior.run_id.clone());
            self.options.dry_run = prior.dry_run;
            self.options.phases = prior.phases.clone();
            self.options.only = prior.only.clone();
        }
        Self::validate_selection(&self.runbook, &self.options)?;
        let started_at = self.clock.now();
        let run_id = self
            .options
            .run_id
            .clone()
            .unwrap_or_else(|| generate_run_id(started_at));
        let done = match &resume {
            Some((plan, resolutions)) => plan.apply(resolutions, &self.options.host)?,
            None => BTreeMap::new(),
        };
        let owner = LockOwner {
            user: self.options.operator.clone(),
            host: self.options.host.clone(),
            pid: std::process::id(),
            run_id: run_id.clone(),
            since: started_at,
            heartbeat: started_at,
        };
        // A new run's directory and first record exist before the lock is
        // taken: a run killed while it waits for the lock leaves the run the
        // lock names, which `resume` continues. (A resumed run's journal is
        // opened only under the lock: until then another process may be
        // appending to it.)
        let info = self.run_info(&run_id, started_at);
        let journal = match (&self.run_root, &resume) {
            (Some(root), None) => {
                let dir = run_directory(root, &run_id);
                let mut journal = open_journal(&dir)?;
                let started = self.secrets.redactor().redact_serde(&Event::RunStarted {
                    schema_version: SCHEMA_VERSION,
                    run: info.clone(),
                    runbook: RunbookOutline::of(&self.runbook),
                });
                journal.append(&started)?;
                Some((dir, journal))
            }
            _ => None,
        };
        let broken = match &self.lock {
            Some((lock, reason)) => match lock.acquire(&owner, reason.as_deref()).await {
                Ok(broken) => broken,
                Err(e) => {
                    // Refused: the run never started, so it leaves no trace
                    // for `resume` to pick up.
                    if let Some((dir, _)) = &journal {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                    return Err(e.into());
                }
            },
            None => None,
        };
        let result = self
            .run_locked(
                run_id,
                started_at,
                resume,
                info,
                journal.map(|(_, j)| j),
                done,
                &owner,
                broken,
            )
            .await;
        if let Some((lock, _)) = &self.lock {
            if let Err(e) = lock.release(&owner).await {
                tracing::warn!("releasing the deploy lock: {e}");
            }
        }
        result
    }

    /// The facts of a new run, fixed at its start.
    fn run_info(&self, run_id: &str, started_at: DateTime<Utc>) -> RunInfo {
        RunInfo {
            run_id: run_id.to_owned(),
            operator: self.options.operator.clone(),
            host: self.options.host.clone(),
            environment: self.environment.clone(),
            dry_run: self.options.dry_run,
            phases: self.options.phases.clone(),
            only: self.options.only.clone(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            source: self.options.source.clone(),
            config: self.options.config.clone(),
        }
    }

    /// Runs under the lock. For a new run, `journal` (when given) already
    /// holds its `run_started` record with `info`.
    #[allow(clippy::too_many_arguments)]
    async fn run_locked(
        &self,
        run_id: String,
        started_at: DateTime<Utc>,
        resume: Option<(ResumePlan, Vec<Resolution>)>,
        info: RunInfo,
        journal: Option<JournalWriter>,
        done: BTreeMap<String, Outcome>,
        owner: &LockOwner,
        broken: Option<LockOwner>,
    ) -> Result<RunRecord, RunError> {
        let started_journaled = journal.is_some();
        let journal = match (&self.run_root, &resume) {
            (Some(root), Some(_)) => Some(JournalWriter::open_existing(
                run_directory(root, &run_id).join(JOURNAL_FILE),
            )?),
            _ => journal,
        };
        let outline = RunbookOutline::of(&self.runbook);
        let confirmer = self
            .confirmer
            .clone()
            .unwrap_or_else(|| Arc::new(PreapprovedConfirmer::new(self.options.operator.clone())));
        let record = match &resume {
            Some((plan, _)) => plan.record.clone(),
            None => RunRecord::start(info.clone(), &outline),
        };
        let record = Arc::new(Mutex::new(record));
        let dispatcher = Dispatcher::new(
            self.secrets.redactor().clone(),
            self.observers.clone(),
            journal,
            record.clone(),
            Announcer::new(
                self.notifiers.clone(),
                self.options.dry_run,
                self.clock.clone(),
            ),
        );
        let values = done.values().flat_map(|o| o.values.clone()).collect();
        let run_dir = self
            .run_root
            .as_ref()
            .map(|root| run_directory(root, &run_id));
        let approvals = Approvals {
            runbook: self.runbook.clone(),
            operator: self.options.operator.clone(),
            clock: self.clock.clone(),
            record: record.clone(),
            dispatcher: dispatcher.clone(),
            cancel: self.cancel.clone(),
            run_dir,
            no_wait: self.options.no_wait,
        };
        let run = Run {
            runbook: self.runbook.clone(),
            selection: Selection::from(&self.options),
            dry_run: self.options.dry_run,
            operator: self.options.operator.clone(),
            run_id,
            environment: Arc::new(self.environment.clone()),
            secrets: Arc::new(self.secrets.clone()),
            confirmer,
            cancel: self.cancel.clone(),
            clock: self.clock.clone(),
            record,
            values: Mutex::new(values),
            dry_unknown: Mutex::new(BTreeMap::new()),
            done,
            lock_lost: Arc::new(Mutex::new(None)),
            completed: Mutex::new(Vec::new()),
            host: Arc::new(RunHost {
                dispatcher: dispatcher.clone(),
                clock: self.clock.clone(),
                machine: self.options.host.clone(),
                approvals,
            }),
            dispatcher,
        };
        let mut aborted_at_resume = Vec::new();
        match resume {
            Some((_, resolutions)) => {
                aborted_at_resume = resolutions
                    .iter()
                    .filter(|r| r.decision == InterruptedDecision::Abort)
                    .map(|r| r.step.clone())
                    .collect();
                run.publish(Event::RunResumed {
                    resume: ResumeInfo {
                        operator: self.options.operator.clone(),
                        host: self.options.host.clone(),
                        at: started_at,
                        resolutions,
                        source: self.options.source.clone(),
                    },
                })?;
            }
            None => {
                let started = Event::RunStarted {
                    schema_version: SCHEMA_VERSION,
                    run: info,
                    runbook: outline,
                };
                if started_journaled {
                    run.dispatcher.publish_journaled(started)?;
                } else {
                    run.publish(started)?;
                }
            }
        }
        if let Some(previous) = broken {
            run.publish(Event::LockBroken {
                previous,
                by: self.options.operator.clone(),
                reason: self
                    .lock
                    .as_ref()
                    .and_then(|(_, r)| r.clone())
                    .unwrap_or_else(|| {
                        "taken over from this run's own earlier process, which is no longer running"
                            .into()
                    }),
                at: started_at,
            })?;
        }
        if !aborted_at_resume.is_empty() {
            run.abort_at_resume(&aborted_at_resume)?;
            run.dispatcher.settle_notices(NOTICE_WAIT).await?;
            return Ok(run.record());
        }
        let heartbeat = self.lock.as_ref().map(|(lock, _)| {
            spawn_heartbeat(
                lock.clone(),
                owner.clone(),
                run.clock.clone(),
                run.cancel.clone(),
                run.lock_lost.clone(),
            )
        });
        let result = match run.execute().await {
            // Not a failure: the run ends here, resumable, and says where.
            Err(RunError::AwaitingApproval { phase, step }) => {
                run.publish(Event::RunAwaitingApproval {
                    phase,
                    step,
                    at: run.clock.now(),
                })
            }
            other => other,
        };
        if let Some(task) = heartbeat {
            task.abort();
        }
        result?;
        run.dispatcher.settle_notices(NOTICE_WAIT).await?;
        Ok(run.record())
    }
}

/// Renews the lease until aborted; if the lock is lost, stops the run and
/// says why.
fn spawn_heartbeat(
    lock: Arc<dyn DeployLock>,
    mut owner: LockOwner,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    lost: Arc<Mutex<Option<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = lock.heartbeat_interval().max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(interval).await;
            owner.heartbeat = clock.now();
            match lock.heartbeat(&owner).await {
                Ok(()) => {}
                Err(e @ LockError::Lost { .. }) => {
                    *self::lock(&lost) = Some(e.to_string());
                    cancel.cancel();
                    return;
                }
                // A storage hiccup is retried at the next beat; the lease
                // outlives a few missed beats.
                Err(e) => tracing::warn!("renewing the deploy lock: {e}"),
            }
        }
    })
}

fn open_journal(dir: &Path) -> Result<JournalWriter, RunError> {
    if dir.exists() {
        return Err(RunError::RunExists(dir.to_owned()));
    }
    std::fs::create_dir_all(dir).map_err(|source| RunError::RunDir {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| RunError::RunDir {
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    Ok(JournalWriter::create(dir.join(JOURNAL_FILE))?)
}
