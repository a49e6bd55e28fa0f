//! Approval links in the run's notifications: when a step starts to wait
//! and a console has recorded its public address in the run root, the
//! message says, per approver who may decide, the link made for them. The
//! signatures are registered with the run's redactor, so the journal and
//! the reports keep the message with each signature masked; only the
//! destination gets the links whole.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::Event;
use crate::notifier::{DeliveryError, Notifier};
use crate::secret::Redactor;

use super::link::{self, ApprovalLink, LinkKey};

/// The name signatures are masked under: `<redacted:approval link>`.
pub const LINK_SECRET: &str = "approval link";

/// A notifier whose approval requests carry one link per approver.
pub struct LinkNotifier {
    inner: Arc<dyn Notifier>,
    root: PathBuf,
    run_id: String,
    redactor: Redactor,
}

impl LinkNotifier {
    /// `inner`'s messages, with links to the console of run root `root`
    /// for run `run_id`; `redactor` is the run's.
    pub fn new(
        inner: Arc<dyn Notifier>,
        root: impl Into<PathBuf>,
        run_id: impl Into<String>,
        redactor: Redactor,
    ) -> Self {
        LinkNotifier {
            inner,
            root: root.into(),
            run_id: run_id.into(),
            redactor,
        }
    }
}

#[async_trait]
impl Notifier for LinkNotifier {
    fn destination(&self) -> String {
        self.inner.destination()
    }

    fn message(&self, event: &Event) -> Option<String> {
        let text = self.inner.message(event)?;
        let Event::ApprovalRequested { step, request, .. } = event else {
            return Some(text);
        };
        let Some(base) = link::public_url(&self.root) else {
            return Some(text);
        };
        let mut lines = vec![text];
        let key = match LinkKey::load_or_create(&self.root) {
            Ok(key) => key,
            Err(e) => {
                lines.push(format!("no approval links: {e}"));
                return Some(lines.join("\n"));
            }
        };
        for approver in &request.approvers {
            let made =
                ApprovalLink::for_request(&self.run_id, step, approver, request, request.since);
            lines.push(match made {
                Ok(link) => {
                    self.redactor.register(LINK_SECRET, &key.sign(&link));
                    format!("{approver}: {}", link.url(&base, &key))
                }
                Err(e) => format!("{approver}: no link: {e}"),
            });
        }
        Some(lines.join("\n"))
    }

    async fn deliver(&self, text: &str) -> Result<u32, DeliveryError> {
        self.inner.deliver(text).await
    }
}
