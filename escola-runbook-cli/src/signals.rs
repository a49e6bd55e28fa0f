//! The signals that stop a command: Ctrl-C (SIGINT), and SIGTERM and SIGHUP,
//! which systemd, CI runners and a dropped SSH session send. All three are
//! handled alike: the run stops cleanly (the running step's process group
//! is ended, the step journaled as aborted, the lock released, exit 4); a
//! second one quits at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use escola_runbook_core::{CancellationToken, Event, Observer, exit};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::CliError;
use crate::ui::TerminalView;

/// Which stop signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

impl StopSignal {
    /// How a person knows it.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "Ctrl-C",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }
}

/// The installed handlers. From the moment they exist these signals no
/// longer end the process by themselves, so install them before starting
/// anything that must be stopped cleanly.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    pub fn install() -> Result<Self, CliError> {
        let listen = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| CliError::Signals {
                signal: name,
                source,
            })
        };
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt(), "Ctrl-C")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
            hangup: listen(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// The next stop signal.
    pub async fn next(&mut self) -> StopSignal {
        tokio::select! {
            _ = self.interrupt.recv() => StopSignal::Interrupt,
            _ = self.terminate.recv() => StopSignal::Terminate,
            _ = self.hangup.recv() => StopSignal::Hangup,
        }
    }

    /// Watches for stop signals while a run goes on: the first cancels the
    /// run (after `view` prints the signal and `stopping`, what the tool
    /// does now); the second quits at once, killing the process groups the
    /// run's steps still have running, so that nothing outlives the tool.
    pub fn stop_run(mut self, view: Arc<TerminalView>, stopping: &'static str) -> RunStop {
        let cancel = CancellationToken::new();
        let groups = Arc::new(RunningGroups::default());
        let (cancelled, running) = (cancel.clone(), groups.clone());
        let watcher = tokio::spawn(async move {
            let first = self.next().await;
            view.println(&format!("\n{}: {stopping}", first.name()));
            cancelled.cancel();
            let second = self.next().await;
            running.kill_all();
            // A closed terminal (SIGHUP) must not turn this into a panic.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!(
                    "{}: quit at once; the journal holds every record written so far\n",
                    second.name()
                )
                .as_bytes(),
            );
            std::process::exit(exit::STOPPED);
        });
        RunStop {
            cancel,
            groups,
            watcher,
        }
    }
}

/// A run watched for stop signals ([`StopSignals::stop_run`]): what its
/// executor is given, and the watcher to end once the run is over.
pub struct RunStop {
    /// Cancelled by the first stop signal: the run's cancellation.
    pub cancel: CancellationToken,
    /// Killed by the second: observes the run for its process groups.
    pub groups: Arc<RunningGroups>,
    /// The task watching for the signals; abort it when the run is over.
    pub watcher: tokio::task::JoinHandle<()>,
}

/// The process groups of steps that are running, from the run's events: what
/// a forced quit must not leave behind.
#[derive(Debug, Default)]
pub struct RunningGroups {
    by_step: Mutex<HashMap<String, u32>>,
}

impl RunningGroups {
    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        match self.by_step.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// SIGKILL to every group still running.
    pub fn kill_all(&self) {
        for pgid in self.groups().values() {
            if let Ok(pgid) = i32::try_from(*pgid) {
                // SAFETY: killpg only sends a signal; a gone group yields ESRCH.
                unsafe {
                    libc::killpg(pgid, libc::SIGKILL);
                }
            }
        }
    }
}

impl Observer for RunningGroups {
    fn on_event(&self, event: &Event) {
        match event {
            Event::ProcessGroupStarted { step, group, .. } => {
                self.groups().insert(step.clone(), group.pgid);
            }
            Event::StepFinished { step, .. } => {
                self.groups().remove(step);
            }
            _ => {}
        }
    }
}
