//! What to run and as whom.

use crate::event::{ConfigFile, RunbookOrigin};
use crate::identity;

/// What to run and as whom.
///
/// The defaults name the process's own operator and host
/// ([`identity::operator`], [`identity::host`]), the same rule the CLI
/// follows without `--operator`: a record never says "unknown". An
/// embedder acting for someone else sets `operator` to that person.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id; generated from the time when `None`.
    pub run_id: Option<String>,
    /// Who runs it (recorded, and the author of `--yes` confirmations).
    pub operator: String,
    /// The machine it runs on.
    pub host: String,
    /// Where the runbook came from, recorded in the run-started record (and
    /// with a resume) so that a later resume can reload it or refuse.
    pub source: Option<RunbookOrigin>,
    /// The configuration file that shaped the run (recorded in the
    /// run-started record, for a resume to check).
    pub config: Option<ConfigFile>,
    /// Preview mutating and manual steps instead of running them.
    pub dry_run: bool,
    /// Run only these phases (empty: all).
    pub phases: Vec<String>,
    /// Run only these steps (empty: all).
    pub only: Vec<String>,
    /// When a step begins to wait for an approval, end the run there,
    /// resumable, instead of waiting (the record's exit code is
    /// [`exit::AWAITING_APPROVAL`](crate::exit::AWAITING_APPROVAL)).
    pub no_wait: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            run_id: None,
            operator: identity::operator(),
            host: identity::host(),
            source: None,
            config: None,
            dry_run: false,
            phases: Vec::new(),
            only: Vec::new(),
            no_wait: false,
        }
    }
}
