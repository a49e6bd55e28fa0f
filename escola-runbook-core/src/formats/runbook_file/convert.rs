//! File model <-> core runbook. Checks are built through a [`Catalog`] by
//! name, and written back through [`Check::params`], so any check in the
//! catalog (a built-in or a team's own) works without this module knowing it.
//!
//! [`Check::params`]: crate::Check::params

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError, PathSegment};
use crate::formats::rules_file::{Rules, RulesFile, RulesFileError, RulesWatch, WATCH_STEP};
use crate::{
    ApprovalPolicy, Backoff, Check, CheckParams, Decision, Environment, ModelError, Phase,
    PhaseKind, Policy, Runbook, Step, StepKind,
};

use super::model::{
    ApprovalFile, ApproverFile, BackoffFile, ContactFile, DurationText, EnvironmentFile,
    FORMAT_VERSION, MetadataFile, ParamMap, PhaseFile, RunbookFile, StepFile, UndoFile,
};

/// Secret name under which the metrics Bearer token is provided to checks.
pub const SECRET_METRICS_TOKEN: &str = "metrics_token";
/// Secret name under which the database URL is provided to checks.
pub const SECRET_DATABASE_URL: &str = "database_url";

/// One step of a path into the file: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A table key.
    Key(String),
    /// An array element.
    Index(usize),
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => write!(f, ".{k}"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A file that parsed but does not make a valid runbook, with the place
/// (path into the file) that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where, as a path of keys and indexes.
    pub path: Vec<PathSeg>,
    /// What is wrong and what to do.
    pub message: String,
}

/// Something that loaded but deserves attention, at a path into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathWarning {
    /// Where.
    pub path: Vec<PathSeg>,
    /// What, in words.
    pub message: String,
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_owned())
}

fn step_path(phase: usize, step: usize, field: &str) -> Vec<PathSeg> {
    vec![
        key("phases"),
        PathSeg::Index(phase),
        key("steps"),
        PathSeg::Index(step),
        key(field),
    ]
}

fn phase_path(phase: usize, field: &str) -> Vec<PathSeg> {
    vec![key("phases"), PathSeg::Index(phase), key(field)]
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `url` carries a password in its authority (`user:pass@host`).
fn has_credentials(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
}

impl EnvironmentFile {
    fn validate(&self) -> Result<(), Invalid> {
        for (field, value) in [
            ("metrics_token_env", &self.metrics_token_env),
            ("database_url_env", &self.database_url_env),
        ] {
            if let Some(name) = value {
                if !is_env_var_name(name) {
                    // The value is not repeated: it may be a pasted secret.
                    return Err(Invalid {
                        path: vec![key("environment"), key(field)],
                        message: format!(
                            "`{field}` must be the NAME of an environment variable (letters, digits, `_`, e.g. METRICS_TOKEN), \
                             not the secret itself; the value given is not a variable name, so it is not repeated here"
                        ),
                    });
                }
            }
        }
        for (field, value) in [
            ("base_url", &self.base_url),
            ("metrics_url", &self.metrics_url),
        ] {
            if value.as_deref().is_some_and(has_credentials) {
                return Err(Invalid {
                    path: vec![key("environment"), key(field)],
                    message: format!(
                        "`{field}` carries a password (`user:password@host`); runbook files never hold secrets: \
                         remove it and name the variable holding the token in `metrics_token_env`"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The run's environment: `base_url`, `metrics_url` and `settings` as
    /// settings; `name` or `default_name` as its name.
    pub fn to_environment(&self, default_name: &str) -> Environment {
        let mut env = Environment::new(self.name.clone().unwrap_or_else(|| default_name.into()));
        for (k, v) in &self.settings {
            env = env.with(k.clone(), v.clone());
        }
        if let Some(url) = &self.base_url {
            env = env.with("base_url", url.clone());
        }
        if let Some(url) = &self.metrics_url {
            env = env.with("metrics_url", url.clone());
        }
        env
    }

    /// Secrets to read from the environment: `(secret name, variable name)`,
    /// e.g. `("metrics_token", "METRICS_TOKEN")`.
    pub fn secret_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(var) = &self.metrics_token_env {
            vars.push((SECRET_METRICS_TOKEN, var.clone()));
        }
        if let Some(var) = &self.database_url_env {
            vars.push((SECRET_DATABASE_URL, var.clone()));
        }
        vars
    }
}

impl RunbookFile {
    /// Builds the runbook: checks (and watch steps' probes) through
    /// `catalog`, policies, then the core's own validation; `base` is the
    /// directory paths in the file (a watch step's `rules_file`) are
    /// relative to. Warnings say what loaded but is not acted on.
    pub fn to_runbook(
        &self,
        catalog: &Catalog,
        base: &Path,
    ) -> Result<(Runbook, Vec<PathWarning>), Invalid> {
        if self.format > FORMAT_VERSION {
            return Err(Invalid {
                path: vec![key("format")],
                message: format!(
                    "format {} is newer than this tool reads ({FORMAT_VERSION}); upgrade escola-runbook",
                    self.format
                ),
            });
        }
        self.environment.validate()?;
        let mut warnings = Vec::new();
        if self.rollback.is_some() {
            warnings.push(PathWarning {
                path: vec![key("rollback")],
                message: "[rollback] settings are kept in the file but NOT evaluated yet: the rollback phase runs \
                          only when a blocking step fails in a phase with `rollback_on_failure = true`"
                    .into(),
            });
        }

        let mut builder = Runbook::builder(self.name.clone());
        for c in &self.metadata.contacts {
            builder = builder.contact(c.role.clone(), c.handle.clone());
        }
        for (term, meaning) in &self.metadata.glossary {
            builder = builder.glossary(term.clone(), meaning.clone());
        }
        if let Some(v) = &self.metadata.version {
            builder = builder.version(v.clone());
        }
        for a in &self.metadata.approvers {
            builder = builder.approver(a.name.clone(), a.roles.clone());
        }
        for (pi, pf) in self.phases.iter().enumerate() {
            let mut phase = match pf.kind {
                PhaseKind::Normal => Phase::new(pf.id.clone(), pf.title.clone()),
                PhaseKind::Watch => Phase::watch(pf.id.clone(), pf.title.clone()),
                PhaseKind::Rollback => Phase::rollback(pf.id.clone(), pf.title.clone()),
            };
            if pf.rollback_on_failure {
                phase = phase.rollback_on_failure();
            }
            if let Some(n) = pf.max_parallel {
                if n == 0 {
                    return Err(Invalid {
                        path: phase_path(pi, "max_parallel"),
                        message: "`max_parallel` must be at least 1".into(),
                    });
                }
                phase = phase.max_parallel(n);
            }
            for note in &pf.notes {
                phase = phase.note(note.clone());
            }
            for (si, sf) in pf.steps.iter().enumerate() {
                phase = phase.step(step_from_file(catalog, base, sf, pi, si)?);
            }
            builder = builder.phase(phase);
        }
        let runbook = builder.build().map_err(|e| self.locate_model_error(e))?;
        Ok((runbook, warnings))
    }

    fn locate_model_error(&self, e: ModelError) -> Invalid {
        let phase_index = |id: &str, nth: usize| {
            self.phases
                .iter()
                .enumerate()
                .filter(|(_, p)| p.id == id)
                .map(|(i, _)| i)
                .nth(nth)
        };
        let step_index = |id: &str, phase: Option<&str>| {
            self.phases.iter().enumerate().find_map(|(pi, p)| {
                if phase.is_some_and(|ph| ph != p.id) {
                    return None;
                }
                p.steps.iter().position(|s| s.id == id).map(|si| (pi, si))
            })
        };
        let path = match &e {
            ModelError::EmptyName => vec![key("name")],
            ModelError::NoPhases(_) => vec![key("phases")],
            ModelError::BadId { what: "phase", id } | ModelError::DuplicatePhase(id) => {
                let nth = usize::from(matches!(e, ModelError::DuplicatePhase(_)));
                phase_index(id, nth).map_or_else(|| vec![key("phases")], |i| phase_path(i, "id"))
            }
            ModelError::BadId { id, .. } => step_index(id, None)
                .map_or_else(|| vec![key("phases")], |(p, s)| step_path(p, s, "id")),
            ModelError::DuplicateStep { id, second, first } => {
                // The second occurrence: in `second`, skipping the first one
                // when both are in the same phase.
                let hit = self.phases.iter().enumerate().find_map(|(pi, p)| {
                    (p.id == *second).then(|| {
                        let skip = usize::from(first == second);
                        p.steps
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.id == *id)
                            .map(|(si, _)| (pi, si))
                            .nth(skip)
                    })?
                });
                hit.map_or_else(|| vec![key("phases")], |(p, s)| step_path(p, s, "id"))
            }
            ModelError::TwoRollbackPhases(_, second) => phase_index(second, 0)
                .map_or_else(|| vec![key("phases")], |i| phase_path(i, "kind")),
            ModelError::NoRollbackPhase(id) => phase_index(id, 0).map_or_else(
                || vec![key("phases")],
                |i| phase_path(i, "rollback_on_failure"),
            ),
            ModelError::EmptyTitle(id) => step_index(id, None)
                .map_or_else(|| vec![key("phases")], |(p, s)| step_path(p, s, "title")),
            ModelError::NoApprover { step, .. } => step_index(step, None)
                .map_or_else(|| vec![key("phases")], |(p, s)| step_path(p, s, "approval")),
            ModelError::UnproducedValue { step, .. } => step_index(step, None)
                .map_or_else(|| vec![key("phases")], |(p, s)| step_path(p, s, "check")),
        };
        Invalid {
            path,
            message: e.to_string(),
        }
    }

    /// The file for `runbook`. Each automated step is written as the
    /// check and parameters its [`Check::params`] gives; a check without
    /// them becomes a manual step with a note, and a warning says so, as it
    /// does for a check whose name `catalog` lacks (the file would not load
    /// back).
    ///
    /// [`Check::params`]: crate::Check::params
    pub fn from_runbook(runbook: &Runbook, catalog: &Catalog) -> (RunbookFile, Vec<String>) {
        let mut warnings = Vec::new();
        let meta = runbook.metadata();
        let phases = runbook
            .phases()
            .iter()
            .map(|p| PhaseFile {
                id: p.id.clone(),
                title: p.title.clone(),
                kind: p.kind,
                rollback_on_failure: p.rollback_on_failure,
                max_parallel: (p.max_parallel != Phase::new("x", "x").max_parallel)
                    .then_some(p.max_parallel),
                notes: p.notes.clone(),
                steps: p
                    .steps
                    .iter()
                    .map(|s| step_to_file(catalog, s, &mut warnings))
                    .collect(),
            })
            .collect();
        let file = RunbookFile {
            format: FORMAT_VERSION,
            name: runbook.name().to_owned(),
            metadata: MetadataFile {
                version: meta.version.clone(),
                channels: Vec::new(),
                contacts: meta
                    .contacts
                    .iter()
                    .map(|c| ContactFile {
                        role: c.role.clone(),
                        handle: c.handle.clone(),
                    })
                    .collect(),
                glossary: meta.glossary.clone(),
                approvers: meta
                    .approvers
                    .iter()
                    .map(|a| ApproverFile {
                        name: a.name.clone(),
                        roles: a.roles.clone(),
                    })
                    .collect(),
            },
            environment: EnvironmentFile::default(),
            rollback: None,
            phases,
        };
        (file, warnings)
    }
}

fn step_from_file(
    catalog: &Catalog,
    base_dir: &Path,
    sf: &StepFile,
    pi: usize,
    si: usize,
) -> Result<Step, Invalid> {
    let at = |field: &str| step_path(pi, si, field);
    let err = |field: &str, message: String| Invalid {
        path: at(field),
        message: format!("step `{}`: {message}", sf.id),
    };
    if sf.watch.is_some() && (sf.check.is_some() || sf.command.is_some()) {
        return Err(err(
            "watch",
            "has `watch` and also a `check` or `command`; a watch step runs its rules, so give one"
                .into(),
        ));
    }
    let automated = sf.check.is_some() || sf.command.is_some() || sf.watch.is_some();
    if automated && sf.instructions.is_some() {
        return Err(err(
            "instructions",
            "`instructions` are for manual steps; put remarks for an automated step in `notes`"
                .into(),
        ));
    }
    if !automated && sf.confirm_first {
        return Err(err(
            "confirm_first",
            "`confirm_first` applies to automated steps; a manual step is always confirmed".into(),
        ));
    }
    if automated && (sf.confirm_deadline.is_some() || sf.confirm_default.is_some()) {
        let field = if sf.confirm_deadline.is_some() {
            "confirm_deadline"
        } else {
            "confirm_default"
        };
        return Err(err(
            field,
            format!(
                "`{field}` applies to manual steps, and this step is automated; use `timeout` to bound a check"
            ),
        ));
    }

    let base = at("");
    let base = &base[..base.len() - 1];
    let automation = Automation {
        check: sf.check.as_deref(),
        params: &sf.params,
        command: sf.command.as_deref(),
        cwd: sf.cwd.as_deref(),
    };
    let check = match &sf.watch {
        Some(watch) => Some(watch_step(catalog, base_dir, watch, &at("watch"), &sf.id)?),
        None => build_check(catalog, &automation, base, &sf.id)?,
    };
    let mut step = match check {
        Some(check) => Step::check_arc(sf.id.clone(), sf.title.clone(), check),
        None => {
            let mut s = Step::manual(sf.id.clone(), sf.title.clone());
            if let Some(text) = &sf.instructions {
                s = s.instructions(text.clone());
            }
            s
        }
    };
    if let Some(undo) = &sf.undo {
        let mut path = base.to_vec();
        path.push(key("undo"));
        let automation = Automation {
            check: undo.check.as_deref(),
            params: &undo.params,
            command: undo.command.as_deref(),
            cwd: undo.cwd.as_deref(),
        };
        match build_check(catalog, &automation, &path, &sf.id)? {
            Some(check) => step.undo = Some(check),
            None => {
                return Err(Invalid {
                    path,
                    message: format!(
                        "step `{}`: `undo` needs a `command` or a `check`: it is run, not confirmed",
                        sf.id
                    ),
                });
            }
        }
    }
    if let Some(section) = &sf.section {
        step = step.section(section.clone());
    }
    for note in &sf.notes {
        step = step.note(note.clone());
    }
    step.policy = policy_from_file(sf, &at)?;
    Ok(step)
}

/// The watch step of `watch` (at `path` in the file): its rules read as a
/// rules file's, each measuring through `catalog`'s [`RULE_PROBE`].
///
/// [`RULE_PROBE`]: crate::formats::rules_file::RULE_PROBE
fn watch_step(
    catalog: &Catalog,
    base_dir: &Path,
    watch: &RulesFile,
    path: &[PathSeg],
    step_id: &str,
) -> Result<Arc<dyn Check>, Invalid> {
    let invalid = |e: RulesFileError| {
        let mut at = path.to_vec();
        // A rule's mistake points at the rule, when it is written here.
        let rule = match &e {
            RulesFileError::Value { rule, .. } | RulesFileError::Probe { rule, .. } => Some(rule),
            _ => None,
        };
        if let Some(i) = rule.and_then(|r| watch.rules.iter().position(|s| &s.id == r)) {
            at.extend([key("rules"), PathSeg::Index(i)]);
        }
        Invalid {
            path: at,
            message: format!("step `{step_id}`: {e}"),
        }
    };
    let rules =
        Rules::for_step(watch, base_dir, &format!("watch of step `{step_id}`")).map_err(invalid)?;
    let watch = RulesWatch::new(rules, catalog).map_err(invalid)?;
    Ok(Arc::new(watch))
}

/// What runs a step (or its undo), as written in the file.
struct Automation<'a> {
    check: Option<&'a str>,
    params: &'a ParamMap,
    command: Option<&'a str>,
    cwd: Option<&'a str>,
}

/// The check for `a` through `catalog`; `None` when `a` names none (a
/// manual step). `base` is the path of the table holding the fields.
fn build_check(
    catalog: &Catalog,
    a: &Automation<'_>,
    base: &[PathSeg],
    step_id: &str,
) -> Result<Option<Arc<dyn Check>>, Invalid> {
    let at = |field: &str| {
        let mut p = base.to_vec();
        p.push(key(field));
        p
    };
    let err = |field: &str, message: String| Invalid {
        path: at(field),
        message: format!("step `{step_id}`: {message}"),
    };
    if a.command.is_some() && a.check.is_some() {
        return Err(err(
            "command",
            "has both `command` and `check`; give one (`command = \"...\"` is short for `check = \"command\"` with `params.shell`)".into(),
        ));
    }
    if !a.params.is_empty() && a.check.is_none() {
        return Err(err(
            "params",
            "has `params` but no `check`; name the check they are for".into(),
        ));
    }
    if a.cwd.is_some() && a.command.is_none() {
        return Err(err(
            "cwd",
            "`cwd` goes with `command`; for a `check`, use its own parameter".into(),
        ));
    }
    if let Some(name) = a.check {
        let params = CheckParams {
            check: name.to_owned(),
            params: a.params.clone(),
        };
        return catalog.build(&params).map(Some).map_err(|e| match &e {
            // A parameter the file gives: point at it (and into it).
            CatalogError::Params(p) if p.param().is_some_and(|k| a.params.contains_key(k)) => {
                let mut path = at("params");
                path.extend(p.path.iter().map(|s| match s {
                    PathSegment::Key(k) => PathSeg::Key(k.clone()),
                    PathSegment::Index(i) => PathSeg::Index(*i),
                }));
                Invalid {
                    path,
                    message: format!("step `{step_id}`: {e}"),
                }
            }
            _ => err("check", e.to_string()),
        });
    }
    if let Some(line) = a.command {
        let mut params = CheckParams::new("command").with("shell", line);
        if let Some(dir) = a.cwd {
            params = params.with("cwd", dir);
        }
        return catalog
            .build(&params)
            .map(Some)
            .map_err(|e| err("command", e.to_string()));
    }
    Ok(None)
}

fn policy_from_file(sf: &StepFile, at: &dyn Fn(&str) -> Vec<PathSeg>) -> Result<Policy, Invalid> {
    let mut policy = Policy {
        blocking: sf.blocking,
        timeout: sf.timeout.map(DurationText::get),
        retries: sf.retries,
        parallel_group: sf.parallel_group.clone(),
        when: sf.when,
        confirm_deadline: sf.confirm_deadline.map(DurationText::get),
        confirm_default: sf.confirm_default.unwrap_or(Decision::Declined),
        confirm_first: sf.confirm_first,
        approval: sf.approval.as_ref().map(|a| ApprovalPolicy {
            role: a.role.clone(),
            deadline: a.deadline.map(DurationText::get),
            on_deadline: a.on_deadline,
        }),
        ..Policy::default()
    };
    if policy.timeout.is_some_and(|t| t.is_zero()) {
        return Err(Invalid {
            path: at("timeout"),
            message: format!(
                "step `{}`: a zero `timeout` would cancel every attempt at once; leave it out to wait without limit",
                sf.id
            ),
        });
    }
    if let Some(b) = &sf.backoff {
        if !b.factor.is_finite() || b.factor < 1.0 {
            let mut path = at("backoff");
            path.push(key("factor"));
            return Err(Invalid {
                path,
                message: format!(
                    "step `{}`: backoff `factor` is {}; it must be a number of at least 1.0 (1.0 keeps the delay constant)",
                    sf.id, b.factor
                ),
            });
        }
        policy.backoff = Backoff {
            initial: b.initial.get(),
            factor: b.factor,
            max: b.max.get(),
        };
    }
    Ok(policy)
}

/// A check's own parameters as the file writes them; warns when the name
/// it gives is not in the catalog (the file would not load back).
fn file_params(
    catalog: &Catalog,
    p: CheckParams,
    step_id: &str,
    what: &str,
    warnings: &mut Vec<String>,
) -> (String, ParamMap) {
    if let Err(e) = catalog.find(&p.check) {
        warnings.push(format!(
            "step `{step_id}`: its {what} says it is built-in `{}`, but {e}; the written file will not load until it is registered",
            p.check
        ));
    }
    (p.check, p.params)
}

fn step_to_file(catalog: &Catalog, step: &Step, warnings: &mut Vec<String>) -> StepFile {
    let mut sf = StepFile::manual(step.id.clone(), step.title.clone());
    sf.section = step.section.clone();
    sf.notes = step.notes.clone();
    match &step.kind {
        StepKind::Manual { instructions } => sf.instructions = instructions.clone(),
        StepKind::Check(check) => match check.params() {
            Some(p) if p.check == WATCH_STEP => match RulesWatch::file_of(p) {
                Ok(rules) => sf.watch = Some(rules),
                Err(e) => warnings.push(format!(
                    "step `{}`: its rules could not be written back ({e}); written as a manual step",
                    step.id
                )),
            },
            Some(p) => {
                let (name, params) = file_params(catalog, p, &step.id, "check", warnings);
                sf.check = Some(name);
                sf.params = params;
            }
            None => {
                let d = check.describe();
                let note = format!(
                    "automated in code by check `{}` ({}), which a runbook file cannot express; written as a manual step",
                    d.name, d.verifies
                );
                warnings.push(format!("step `{}`: {note}", step.id));
                sf.notes.push(note);
            }
        },
    }
    if let Some(undo) = &step.undo {
        match undo.params() {
            Some(p) => {
                let (name, params) = file_params(catalog, p, &step.id, "undo", warnings);
                sf.undo = Some(UndoFile {
                    check: Some(name),
                    params,
                    command: None,
                    cwd: None,
                });
            }
            None => {
                let d = undo.describe();
                let note = format!(
                    "its undo (`{}`: {}) exists only in code and is NOT in this file: a rollback will not undo this step",
                    d.name,
                    d.action_text()
                );
                warnings.push(format!("step `{}`: {note}", step.id));
                sf.notes.push(note);
            }
        }
    }
    let p = &step.policy;
    let defaults = Policy::default();
    sf.blocking = p.blocking;
    sf.timeout = p.timeout.map(DurationText::from);
    sf.retries = p.retries;
    if p.backoff != defaults.backoff {
        sf.backoff = Some(BackoffFile {
            initial: DurationText::from(p.backoff.initial),
            factor: p.backoff.factor,
            max: DurationText::from(p.backoff.max),
        });
    }
    sf.parallel_group = p.parallel_group.clone();
    sf.when = p.when;
    sf.confirm_first = p.confirm_first;
    sf.approval = p.approval.as_ref().map(|a| ApprovalFile {
        role: a.role.clone(),
        deadline: a.deadline.map(DurationText::from),
        on_deadline: a.on_deadline,
    });
    sf.confirm_deadline = p.confirm_deadline.map(DurationText::from);
    if p.confirm_default != defaults.confirm_default {
        sf.confirm_default = Some(p.confirm_default);
    }
    // A manual step exported from a check keeps no confirm settings it never had.
    if sf.check.is_some() {
        sf.confirm_deadline = None;
        sf.confirm_default = None;
    }
    sf
}
