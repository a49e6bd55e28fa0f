//! The plugin point: a [`Check`] verifies something or performs an action, and
//! gets a [`Ctx`] with everything it may use.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::outcome::{Evidence, Outcome};

/// A check or action run by a step.
///
/// Object-safe, so runbooks hold `Arc<dyn Check>` and plugins from other
/// crates mix freely with built-in ones. A check reports everything through
/// its [`Outcome`]; it never prints. It should watch
/// [`Ctx::cancellation`] in long waits, though the executor also drops its
/// future on timeout or stop.
///
/// ```
/// use async_trait::async_trait;
/// use escola_runbook_core::{Check, Ctx, Description, Outcome};
///
/// struct DiskSpace { min_free_gib: u64 }
///
/// #[async_trait]
/// impl Check for DiskSpace {
///     fn describe(&self) -> Description {
///         Description::read_only("disk-space", format!("at least {} GiB free", self.min_free_gib))
///     }
///     async fn run(&self, _ctx: &Ctx) -> Outcome {
///         let free = 42; // measure it here
///         let o = if free >= self.min_free_gib { Outcome::passed("enough space") }
///                 else { Outcome::failed("not enough space") };
///         o.with_evidence("free", format!("{free} GiB"))
///          .with_evidence("limit", format!(">= {} GiB", self.min_free_gib))
///     }
/// }
/// ```
#[async_trait]
pub trait Check: Send + Sync {
    /// What the check is, for plans, dry-run and reports.
    fn describe(&self) -> Description;

    /// Runs the check once. Retries and timeouts are the executor's job.
    async fn run(&self, ctx: &Ctx) -> Outcome;

    /// The catalog name and parameters that rebuild this check, so a
    /// runbook can be written out as a file: a check that holds its
    /// parameter struct returns [`CheckParams::of`] it. `None` (the
    /// default) for checks that exist only in code; such steps are exported
    /// as manual steps with a note.
    fn params(&self) -> Option<CheckParams> {
        None
    }

    /// What a dry-run records as evidence instead of running this mutating
    /// check: what it would send and where, worked out from `ctx` with no
    /// side effect (a notice gives its message and destination host).
    /// Empty by default: the description's action says enough.
    fn preview(&self, ctx: &Ctx) -> Vec<Evidence> {
        let _ = ctx;
        Vec::new()
    }
}

/// A check as a runbook file names it: a catalog name and the parameters
/// that rebuild it, as a JSON object (lists are lists, numbers are
/// numbers). The catalog's `Catalog::build` turns it back into the check;
/// `CheckParams::of` writes a parameter struct (both in the `catalog`
/// module, so that this contract imports nothing of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckParams {
    /// Catalog name ("command", "smoke").
    pub check: String,
    /// Parameters by name.
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl CheckParams {
    /// Parameters for check `check`.
    pub fn new(check: impl Into<String>) -> Self {
        CheckParams {
            check: check.into(),
            params: serde_json::Map::new(),
        }
    }

    /// Adds a parameter written as text (`"30s"`, `"0,2"`): the catalog
    /// converts text to the parameter's type when it builds the check.
    pub fn with(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_value(key, value.into())
    }

    /// Adds a parameter as a JSON value (a list, a number).
    pub fn with_value(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }
}

/// A check's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// The check's kind ("command", "smoke", "metrics-endpoint").
    pub name: String,
    /// What it verifies or does, in one line.
    pub verifies: String,
    /// True when running it changes something outside (runs a command, takes
    /// a snapshot, sends a message). Dry-run skips mutating checks and says
    /// what they would do; read-only checks run in dry-run too.
    pub mutates: bool,
    /// What a real run would do, shown by `plan` and dry-run (a command
    /// line, a URL). Defaults to `verifies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Values this check reads from earlier steps ([`Ctx::value`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Values this check records for later steps ([`Outcome::values`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub produces: Vec<String>,
    /// A notice: a message to people, which never decides a deploy. The
    /// executor records any outcome but a pass (or a stop) as `warned`, so
    /// an undelivered message never fails its phase or triggers a rollback;
    /// as an action, a dry-run never runs it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

impl Description {
    /// A check that only reads.
    pub fn read_only(name: impl Into<String>, verifies: impl Into<String>) -> Self {
        Description {
            name: name.into(),
            verifies: verifies.into(),
            mutates: false,
            action: None,
            needs: Vec::new(),
            produces: Vec::new(),
            notice: false,
        }
    }

    /// An action that changes something; `action` is what it would do.
    pub fn mutating(
        name: impl Into<String>,
        verifies: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Description {
            mutates: true,
            action: Some(action.into()),
            ..Self::read_only(name, verifies)
        }
    }

    /// A notice (see [`Description::notice`](Self#structfield.notice)):
    /// `action` is the message it would send and where.
    pub fn notice(
        name: impl Into<String>,
        verifies: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Description {
            notice: true,
            ..Self::mutating(name, verifies, action)
        }
    }

    /// Declares a value read from an earlier step.
    pub fn needs(mut self, key: impl Into<String>) -> Self {
        self.needs.push(key.into());
        self
    }

    /// Declares a value recorded for later steps.
    pub fn produces(mut self, key: impl Into<String>) -> Self {
        self.produces.push(key.into());
        self
    }

    /// What a real run would do, in words.
    pub fn action_text(&self) -> &str {
        self.action.as_deref().unwrap_or(&self.verifies)
    }
}
