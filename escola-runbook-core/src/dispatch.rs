//! Where a run's events go: the dispatcher redacts each one, appends it to
//! the journal (fsynced), folds it into the run record, hands it to every
//! observer, and announces milestones through the run's notifiers. The
//! executor and each step's host publish through it; nothing else writes
//! the journal.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;

use crate::clock::Clock;
use crate::event::{Event, Observer};
use crate::journal::JournalWriter;
use crate::journal_error::JournalWriteError;
use crate::mutex::lock_unpoisoned as lock;
use crate::notice::{Delivery, Notice};
use crate::notifier::Notifier;
use crate::record::RunRecord;
use crate::secret::Redactor;

/// Redacts an event, journals it, then fans it out.
#[derive(Clone, Default)]
pub(crate) struct Dispatcher {
    inner: Arc<DispatcherInner>,
}

#[derive(Default)]
struct DispatcherInner {
    redactor: Redactor,
    observers: Vec<Arc<dyn Observer>>,
    journal: Option<Mutex<JournalWriter>>,
    /// The run record, folded from every durable event as it is published.
    record: Option<Arc<Mutex<RunRecord>>>,
    /// Announces milestones to the run's notifiers.
    announcer: Option<Announcer>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("observers", &self.inner.observers.len())
            .field("journal", &self.inner.journal.is_some())
            .finish()
    }
}

impl Dispatcher {
    pub(crate) fn new(
        redactor: Redactor,
        observers: Vec<Arc<dyn Observer>>,
        journal: Option<JournalWriter>,
        record: Arc<Mutex<RunRecord>>,
        announcer: Announcer,
    ) -> Self {
        Dispatcher {
            inner: Arc::new(DispatcherInner {
                redactor,
                observers,
                journal: journal.map(Mutex::new),
                record: Some(record),
                announcer: Some(announcer),
            }),
        }
    }

    /// Waits at most `limit` for milestone messages still being sent, and
    /// journals what became of each.
    pub(crate) async fn settle_notices(&self, limit: Duration) -> Result<(), JournalWriteError> {
        match &self.inner.announcer {
            Some(announcer) => announcer.settle(limit, self).await,
            None => Ok(()),
        }
    }

    /// Emits an event whose loss would not matter (progress).
    pub(crate) fn emit(&self, event: Event) {
        // Progress is not journaled, so this cannot fail for it; a durable
        // event sent here by mistake still reaches observers.
        let _ = self.publish(event);
    }

    /// Redacts and fans out an event that is already journaled and folded
    /// into the record (a new run's `run_started`, written before its lock
    /// was taken), announcing it if it is a milestone.
    pub(crate) fn publish_journaled(&self, event: Event) -> Result<(), JournalWriteError> {
        let event = self.inner.redactor.redact_serde(&event);
        self.fan_out(&event)
    }

    /// Hands a redacted event to every observer, then to the notifiers.
    fn fan_out(&self, event: &Event) -> Result<(), JournalWriteError> {
        for observer in &self.inner.observers {
            observer.on_event(event);
        }
        match &self.inner.announcer {
            Some(announcer) => announcer.announce(event, self),
            None => Ok(()),
        }
    }

    /// Publishes a durable event; if the journal cannot take it, `cancel`
    /// stops the run at once (running steps are cancelled): nothing more
    /// could be recorded.
    pub(crate) fn publish_or_cancel(
        &self,
        event: Event,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), JournalWriteError> {
        if let Err(e) = self.publish(event) {
            cancel.cancel();
            return Err(e);
        }
        Ok(())
    }

    /// Redacts, journals (fsynced), folds into the record, fans out and
    /// announces a milestone; returns the redacted event.
    pub(crate) fn publish(&self, event: Event) -> Result<Event, JournalWriteError> {
        let event = self.inner.redactor.redact_serde(&event);
        if event.is_durable() {
            if let Some(journal) = &self.inner.journal {
                let mut journal = lock(journal);
                journal.append(&event)?;
            }
            if let Some(record) = &self.inner.record {
                let mut record = lock(record);
                let applied = record.apply(0, &event);
                debug_assert!(applied.is_ok(), "an event the record rejects: {applied:?}");
            }
        }
        self.fan_out(&event)?;
        Ok(event)
    }
}

/// The run's notifiers, driven by the dispatcher: each milestone is
/// journaled as not sent (dry-run) or handed to a task whose delivery is
/// journaled when it ends.
pub(crate) struct Announcer {
    notifiers: Vec<Arc<dyn Notifier>>,
    dry_run: bool,
    clock: Arc<dyn Clock>,
    pending: Mutex<Vec<Pending>>,
}

/// A message being sent.
struct Pending {
    text: String,
    to: String,
    task: tokio::task::JoinHandle<()>,
}

impl Announcer {
    pub(crate) fn new(
        notifiers: Vec<Arc<dyn Notifier>>,
        dry_run: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Announcer {
            notifiers,
            dry_run,
            clock,
            pending: Mutex::default(),
        }
    }

    /// Announces `event` if it is a milestone: in a dry-run by journaling
    /// what would have been sent, otherwise by starting the delivery.
    pub(crate) fn announce(
        &self,
        event: &Event,
        dispatcher: &Dispatcher,
    ) -> Result<(), JournalWriteError> {
        if matches!(event, Event::Notice { .. }) {
            return Ok(());
        }
        for notifier in &self.notifiers {
            let Some(text) = notifier.message(event) else {
                continue;
            };
            let to = notifier.destination();
            if self.dry_run {
                let delivery = Delivery::DryRun;
                dispatcher.publish(self.notice(text, to, delivery))?;
                continue;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                let delivery = Delivery::Undelivered {
                    attempts: 0,
                    error: "no async runtime to send from".into(),
                };
                dispatcher.publish(self.notice(text, to, delivery))?;
                continue;
            };
            let (notifier, dispatcher, clock) =
                (notifier.clone(), dispatcher.clone(), self.clock.clone());
            let (message, destination) = (text.clone(), to.clone());
            let task = runtime.spawn(async move {
                let sent = std::panic::AssertUnwindSafe(notifier.deliver(&message))
                    .catch_unwind()
                    .await;
                let delivery = match sent {
                    Ok(Ok(attempts)) => Delivery::Delivered { attempts },
                    Ok(Err(e)) => Delivery::Undelivered {
                        attempts: e.attempts,
                        error: e.error,
                    },
                    Err(_) => Delivery::Undelivered {
                        attempts: 1,
                        error: "the notifier panicked".into(),
                    },
                };
                let notice = Notice {
                    text: message,
                    to: destination,
                    delivery,
                    at: clock.now(),
                };
                if let Err(e) = dispatcher.publish(Event::Notice { notice }) {
                    tracing::warn!("recording a notice: {e}");
                }
            });
            lock(&self.pending).push(Pending { text, to, task });
        }
        Ok(())
    }

    fn notice(&self, text: String, to: String, delivery: Delivery) -> Event {
        Event::Notice {
            notice: Notice {
                text,
                to,
                delivery,
                at: self.clock.now(),
            },
        }
    }

    /// Waits at most `limit` for the messages still being sent; each one
    /// not done by then is stopped and journaled as unfinished.
    pub(crate) async fn settle(
        &self,
        limit: Duration,
        dispatcher: &Dispatcher,
    ) -> Result<(), JournalWriteError> {
        let deadline = tokio::time::Instant::now() + limit;
        let pending = std::mem::take(&mut *lock(&self.pending));
        for mut p in pending {
            if tokio::time::timeout_at(deadline, &mut p.task)
                .await
                .is_err()
            {
                p.task.abort();
                let waited_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                let delivery = Delivery::Unfinished { waited_ms };
                dispatcher.publish(self.notice(p.text, p.to, delivery))?;
            }
        }
        Ok(())
    }
}
