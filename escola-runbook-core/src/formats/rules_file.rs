//! Alert rules in a TOML file, for `escola-runbook watch` (evaluate them
//! live against a target), `escola-runbook replay` (re-evaluate the
//! measurements a past run recorded under other thresholds) and a
//! runbook's watch steps.
//!
//! ```toml
//! interval = "15s"
//! duration = "30m"
//! rollback_window = "15m"
//!
//! [[rules]]
//! id = "latency-p95"           # also the recorded series replay reads
//! measure = "quantile"         # quantile | error_percent | count | rate | gauge | promql | sql | smoke_pass_percent
//! quantile = 0.95
//! window = "5m"                # probe window; "0" = since the previous evaluation
//! comparison = "above"         # above | at_least | below | at_most
//! limit = 2.0
//! unit = "s"
//! for = "5m"                   # or consecutive = 3, cumulative = 3, or k = 2 with n = 3
//! action = "rollback"          # observe | ask (with ask_role, ask_deadline, ask_default) | rollback
//! ```
//!
//! `above = 2` (or `at_least`, `below`, `at_most`) is short for a
//! comparison with its limit. The same table is a runbook's watch step
//! (`watch = { ... }`, or `rules_file = "alerts.toml"` relative to the
//! runbook, [`Rules::for_step`], built as a [`RulesWatch`]), and a Markdown
//! `<!-- rule: ... -->` binding reads its pairs through [`RuleSpec`]'s
//! schema ([`RuleSpec::from_pairs`]): one declaration of a rule's keys.
//!
//! A rule's judgement (comparison, limit, window, keep-firing, error
//! policy) is read here; every other key of a rule says what it measures
//! (`measure`, `quantile`, `status`, `route`, `window`, `metric`, `labels`,
//! `promql`, `sql`, ...): the parameters of the catalog's probe
//! [`RULE_PROBE`], built through [`Catalog::build_probe`], so the probe
//! declares and validates them (the checks crate registers it).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::approval::{ApprovalPolicy, OnDeadline};
use crate::catalog::params::{self, Owner};
use crate::catalog::{Catalog, CatalogError, EntryKind, ParamsError};
use crate::check::{Check, CheckParams, Description};
use crate::ctx::Ctx;
use crate::duration::{self, Range};
use crate::outcome::Outcome;
use crate::rules::{Comparison, ErrorPolicy, Rule, RuleAction, RuleTracker, Window};
use crate::{Schedule, Watch, WatchError};
use schemars::JsonSchema;

/// The catalog probe a rule measures with: the app's metrics.
pub const RULE_PROBE: &str = "metrics";

/// A rules file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesFileError {
    /// The file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is not valid or has unknown keys.
    #[error("rules file {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// What toml said (with line and column).
        message: String,
    },
    /// The watch the file describes could never fire one of its rules.
    #[error("rules file {path}: {source}")]
    Watch {
        /// The file.
        path: String,
        /// Which rule or setting, with the numbers.
        #[source]
        source: WatchError,
    },
    /// A value is not usable.
    #[error("rules file {path}, rule `{rule}`: {message}")]
    Value {
        /// The file.
        path: String,
        /// The rule.
        rule: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The rule's probe could not be built from what the rule says.
    #[error("rules file {path}, rule `{rule}`: {source}")]
    Probe {
        /// The file.
        path: String,
        /// The rule.
        rule: String,
        /// The probe's parameter that is wrong, or the missing probe.
        #[source]
        source: Box<CatalogError>,
    },
}

/// The file as written; also a runbook's watch step (`watch = { ... }`),
/// which may instead name a rules file in `rules_file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Time between evaluations (default 15s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// How long to watch (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A firing rollback rule inside this window fails the watch (default 15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<String>,
    /// In a runbook's watch step only: read the rules (and the settings
    /// the step does not give) from this rules file, relative to the
    /// runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<String>,
    /// The rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

/// One rule as written: in a rules file, a runbook's watch step, or a
/// Markdown `<!-- rule: ... -->` binding (its pairs typed through this
/// struct's schema, [`RuleSpec::from_pairs`]). How it judges is read here;
/// what it measures (every other key) are the parameters of the catalog's
/// probe [`RULE_PROBE`], which declares and checks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleSpec {
    /// Rule id; replay reads the recorded series of this name.
    pub id: String,
    /// Words for reports (default: the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `above`, `at_least`, `below` or `at_most`, with `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    /// The limit, with `comparison`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// Short for `comparison = "above"` with this `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Short for `comparison = "at_least"` with this `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// Short for `comparison = "below"` with this `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Short for `comparison = "at_most"` with this `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// Unit of value and limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Prometheus `for`.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// N breached evaluations in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive: Option<u32>,
    /// N breached evaluations in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative: Option<u32>,
    /// k of the last n.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// k of the last n.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Keep firing this long after the condition clears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// Failed evaluations tolerated before they count as breached (default
    /// 3); `0` ignores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_breach_after: Option<u32>,
    /// Firing inside the rollback window calls for the rollback (default
    /// true; `false`: the rule only alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<bool>,
    /// What a call for the rollback does: `observe` (record what would
    /// have happened), `ask` (an approver decides) or `rollback` (the
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
    /// For `ask`: the role an approver must hold (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_role: Option<String>,
    /// For `ask`: how long to wait for a decision (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_deadline: Option<String>,
    /// For `ask`: what the deadline decides, `approve` (roll back),
    /// `reject` (keep watching, the default) or `abort` (stop the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_default: Option<OnDeadline>,
    /// What the rule measures (`measure`, `quantile`, `metric`, `promql`,
    /// `sql`, ...): the probe's parameters, unknown keys refused by it
    /// (`watch` ignores none; replay reads only the recorded values).
    #[serde(flatten)]
    pub probe: Map<String, Value>,
}

impl RuleSpec {
    /// A rule from `KEY=VALUE` pairs (a Markdown `<!-- rule: ... -->`
    /// binding), typed as a `[[rules]]` entry is read: its judging keys
    /// through this struct's schema, its measuring keys through the schema
    /// of `catalog`'s probe [`RULE_PROBE`] (`quantile=0.95` a number), so
    /// both accept the same keys and values, and a misspelt key is refused
    /// with the nearest of either.
    pub fn from_pairs(pairs: &[(String, String)], catalog: &Catalog) -> Result<Self, ParamsError> {
        let mut schema = schemars::schema_for!(RuleSpec).to_value();
        merge_schema(
            &mut schema,
            catalog.find_probe(RULE_PROBE).ok().map(|p| p.schema()),
        );
        let name = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "id")
            .map_or("(no id)", |(_, v)| v.as_str());
        let owner = Owner {
            kind: EntryKind::Rule,
            name,
        };
        let object = params::object_from_pairs(owner, &schema, pairs)?;
        params::check_names(owner, &schema, &object)?;
        let object = params::coerce(owner, &schema, object)?;
        params::deserialize(owner, Value::Object(object))
    }
}

/// Adds the properties (and their definitions) of `probe`'s schema to
/// `rule`'s, closed: one schema for every key a binding may write.
/// A rule's own key wins; the probe's required keys stay the probe's to
/// check (settings such as its target are added when it is built).
fn merge_schema(rule: &mut Value, probe: Option<&Value>) {
    let Some(rule) = rule.as_object_mut() else {
        return;
    };
    rule.insert("additionalProperties".into(), Value::Bool(false));
    let Some(probe) = probe else {
        return;
    };
    if let Some(theirs) = probe.get("properties").and_then(Value::as_object) {
        if let Some(ours) = rule.get_mut("properties").and_then(Value::as_object_mut) {
            for (k, v) in theirs {
                ours.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(theirs) = probe.get("$defs").and_then(Value::as_object) {
        let ours = rule
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(ours) = ours.as_object_mut() {
            for (k, v) in theirs {
                ours.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// Loaded rules: settings and the parts every use shares.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Time between evaluations.
    pub interval: Duration,
    /// How long to watch.
    pub duration: Duration,
    /// The rollback window.
    pub rollback_window: Duration,
    /// The rules as written.
    pub specs: Vec<RuleSpec>,
    /// The settings as written, for [`Rules::to_file`].
    written: [Option<String>; 3],
    path: String,
}

/// How a rule judges its values: everything but the probe, what both a
/// live watch and `replay` go by.
#[derive(Debug, Clone, PartialEq)]
pub struct Judging {
    /// How the value is compared with the limit.
    pub comparison: Comparison,
    /// The limit.
    pub limit: f64,
    /// When a breach fires.
    pub window: Window,
    /// Keep firing this long after the condition clears.
    pub keep_firing_for: Option<Duration>,
    /// What a failed evaluation counts as.
    pub on_error: ErrorPolicy,
    /// Firing inside the rollback window calls for the rollback.
    pub rollback: bool,
    /// What a call for the rollback does.
    pub action: RuleAction,
    /// Who `ask` asks (`Some` exactly when `action` is `ask`).
    pub ask: Option<ApprovalPolicy>,
}

impl Judging {
    /// A tracker judging recorded values this way (for replay).
    pub fn tracker(&self) -> RuleTracker {
        RuleTracker::from_parts(
            self.comparison,
            self.limit,
            self.window,
            self.keep_firing_for,
            self.on_error,
        )
    }
}

impl Rules {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, RulesFileError> {
        let (file, shown) = read(path)?;
        Self::from_file(file, &shown)
    }

    /// Parses rules from `text` (named `path` in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, RulesFileError> {
        Self::from_file(syntax(text, path)?, path)
    }

    /// The rules of a runbook's watch step: written inline in `step`, or
    /// read from its `rules_file` (relative to `base`, the runbook's
    /// directory), whose settings the step's own override.
    pub fn for_step(step: &RulesFile, base: &Path, path: &str) -> Result<Self, RulesFileError> {
        let Some(name) = &step.rules_file else {
            return Self::from_file(step.clone(), path);
        };
        if !step.rules.is_empty() {
            return Err(RulesFileError::Value {
                path: path.into(),
                rule: "(watch)".into(),
                message: format!(
                    "gives both `rules_file = \"{name}\"` and {} inline rule(s); keep one",
                    step.rules.len()
                ),
            });
        }
        let (file, shown) = read(&base.join(name))?;
        Self::from_file(
            RulesFile {
                interval: step.interval.clone().or(file.interval),
                duration: step.duration.clone().or(file.duration),
                rollback_window: step.rollback_window.clone().or(file.rollback_window),
                rules_file: None,
                rules: file.rules,
            },
            &shown,
        )
    }

    /// Checks `file` (named `path` in errors): its settings, that it has
    /// rules, that each reads and can fire within the watch.
    pub fn from_file(file: RulesFile, path: &str) -> Result<Self, RulesFileError> {
        if let Some(name) = &file.rules_file {
            return Err(RulesFileError::Value {
                path: path.into(),
                rule: "(file)".into(),
                message: format!(
                    "`rules_file = \"{name}\"` belongs in a runbook's watch step; a rules file holds its [[rules]]"
                ),
            });
        }
        let duration =
            |v: &Option<String>, default: u64, what: &str| -> Result<Duration, RulesFileError> {
                match v {
                    None => Ok(Duration::from_secs(default)),
                    Some(t) => duration::parse(t).map_err(|e| RulesFileError::Value {
                        path: path.into(),
                        rule: "(file)".into(),
                        message: format!("{what}: {e}"),
                    }),
                }
            };
        if file.rules.is_empty() {
            return Err(RulesFileError::Value {
                path: path.into(),
                rule: "(file)".into(),
                message: "there is no [[rules]] entry".into(),
            });
        }
        let rules = Rules {
            interval: duration(&file.interval, 15, "interval")?,
            duration: duration(&file.duration, 30 * 60, "duration")?,
            rollback_window: duration(&file.rollback_window, 15 * 60, "rollback_window")?,
            specs: file.rules,
            written: [file.interval, file.duration, file.rollback_window],
            path: path.into(),
        };
        // Refused here, before anything runs, rather than as a watch that
        // ends "held" having never given a rule the chance to fire.
        let watch_error = |source| RulesFileError::Watch {
            path: path.into(),
            source,
        };
        let schedule = Schedule::new(rules.interval, rules.duration).map_err(watch_error)?;
        for spec in &rules.specs {
            let judging = rules.judgement(spec)?;
            schedule
                .admits(&spec.id, judging.window)
                .map_err(watch_error)?;
        }
        Ok(rules)
    }

    /// The rules as a file writes them, inline: what a watch step exports.
    pub fn to_file(&self) -> RulesFile {
        let [interval, duration, rollback_window] = self.written.clone();
        RulesFile {
            interval,
            duration,
            rollback_window,
            rules_file: None,
            rules: self.specs.clone(),
        }
    }

    fn err(&self, spec: &RuleSpec, message: impl Into<String>) -> RulesFileError {
        RulesFileError::Value {
            path: self.path.clone(),
            rule: spec.id.clone(),
            message: message.into(),
        }
    }

    fn duration_of(
        &self,
        spec: &RuleSpec,
        v: &Option<String>,
        what: &str,
    ) -> Result<Option<Duration>, RulesFileError> {
        // Zero means something in each of these (fire on the first breach,
        // stop firing at once, since the previous evaluation), never "no
        // limit".
        v.as_ref()
            .map(|t| {
                duration::parse_in(t, Range::ZERO_OR_MORE)
                    .map_err(|e| self.err(spec, format!("{what}: {e}")))
            })
            .transpose()
    }

    /// How `spec` judges, with a probe to be supplied: what both `watch`
    /// and `replay` go by.
    pub fn judgement(&self, spec: &RuleSpec) -> Result<Judging, RulesFileError> {
        let written = [
            ("above", spec.above),
            ("at_least", spec.at_least),
            ("below", spec.below),
            ("at_most", spec.at_most),
        ];
        let short: Vec<(&str, f64)> = written
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        let (comparison, limit) = match (spec.comparison.as_deref(), spec.limit, &short[..]) {
            (Some(c), Some(limit), []) => (c, limit),
            (None, None, [(c, limit)]) => (*c, *limit),
            _ => {
                return Err(self.err(
                    spec,
                    "give the condition as `comparison` with `limit`, or as one of `above`, `at_least`, `below`, `at_most` with the limit (`above = 2`)",
                ));
            }
        };
        let comparison = match comparison {
            "above" | ">" => Comparison::Above,
            "at_least" | ">=" => Comparison::AtLeast,
            "below" | "<" => Comparison::Below,
            "at_most" | "<=" => Comparison::AtMost,
            other => {
                return Err(self.err(
                    spec,
                    format!("comparison `{other}` is not one of above, at_least, below, at_most"),
                ));
            }
        };
        if !limit.is_finite() {
            return Err(self.err(spec, "limit must be a finite number"));
        }
        let window = match (
            self.duration_of(spec, &spec.for_, "for")?,
            spec.consecutive,
            spec.cumulative,
            spec.k,
            spec.n,
        ) {
            (Some(d), None, None, None, None) => Window::For { duration: d },
            (None, Some(c), None, None, None) if c > 0 => Window::Consecutive { count: c },
            (None, None, Some(c), None, None) if c > 0 => Window::Cumulative { count: c },
            (None, None, None, Some(k), Some(n)) if k > 0 && k <= n => Window::KOfN { k, n },
            (None, None, None, None, None) => Window::For {
                duration: Duration::ZERO,
            },
            _ => {
                return Err(self.err(
                    spec,
                    "give one of `for`, `consecutive`, `cumulative`, or `k` with `n` (k ≤ n, counts above 0)",
                ));
            }
        };
        let keep_firing_for = self.duration_of(spec, &spec.keep_firing_for, "keep_firing_for")?;
        let on_error = match spec.errors_breach_after {
            Some(0) => ErrorPolicy::Ignore,
            Some(after) => ErrorPolicy::BreachedAfter { after },
            None => ErrorPolicy::default(),
        };
        let action = spec.action.unwrap_or_default();
        let ask = match (action, &spec.ask_role) {
            (RuleAction::Ask, Some(role)) => Some(ApprovalPolicy {
                role: role.clone(),
                deadline: spec
                    .ask_deadline
                    .as_deref()
                    .map(|t| {
                        duration::parse(t).map_err(|e| self.err(spec, format!("ask_deadline: {e}")))
                    })
                    .transpose()?,
                on_deadline: spec.ask_default.unwrap_or_default(),
            }),
            (RuleAction::Ask, None) => {
                return Err(self.err(
                    spec,
                    "`action = \"ask\"` needs `ask_role`, the role of the approvers who decide",
                ));
            }
            _ if spec.ask_role.is_some()
                || spec.ask_deadline.is_some()
                || spec.ask_default.is_some() =>
            {
                return Err(self.err(
                    spec,
                    format!(
                        "`ask_role`, `ask_deadline` and `ask_default` go with `action = \"ask\"`, and the action is `{}`",
                        action.as_str()
                    ),
                ));
            }
            _ => None,
        };
        Ok(Judging {
            comparison,
            limit,
            window,
            keep_firing_for,
            on_error,
            rollback: spec.rollback != Some(false),
            action,
            ask,
        })
    }

    /// A live rule measuring with `catalog`'s probe [`RULE_PROBE`]: its
    /// parameters are what `spec` says it measures, over `settings` (what
    /// the caller decides for every rule, such as where the token is).
    pub fn live_rule(
        &self,
        spec: &RuleSpec,
        catalog: &Catalog,
        settings: &Map<String, Value>,
    ) -> Result<Rule, RulesFileError> {
        let judging = self.judgement(spec)?;
        let probe = catalog
            .build_probe(RULE_PROBE, probe_params(spec, settings))
            .map_err(|source| RulesFileError::Probe {
                path: self.path.clone(),
                rule: spec.id.clone(),
                source: Box::new(source),
            })?;
        let mut rule = Rule::new(
            spec.id.clone(),
            spec.title.clone().unwrap_or_else(|| spec.id.clone()),
            probe,
            judging.comparison,
            judging.limit,
            judging.window,
        )
        .unit(spec.unit.clone().unwrap_or_default())
        .on_error(judging.on_error)
        .action(judging.action);
        if let Some(policy) = judging.ask {
            rule = rule.ask(policy);
        }
        if let Some(keep) = judging.keep_firing_for {
            rule = rule.keep_firing_for(keep);
        }
        if !judging.rollback {
            rule = rule.alert_only();
        }
        Ok(rule)
    }
}

/// The name a watch step's [`Check::params`] gives: not a catalog check,
/// but the mark by which export writes the step's `watch` table back.
pub const WATCH_STEP: &str = "watch";

/// A runbook's watch step: a [`Watch`] of rules as written, which exports
/// back to the same rules (inline).
#[derive(Debug)]
pub struct RulesWatch {
    watch: Watch,
    rules: Rules,
}

impl RulesWatch {
    /// The watch of `rules`, each measuring through `catalog`'s
    /// [`RULE_PROBE`] with its defaults (the token in the secret
    /// `metrics_token`).
    pub fn new(rules: Rules, catalog: &Catalog) -> Result<Self, RulesFileError> {
        let live = rules
            .specs
            .iter()
            .map(|spec| rules.live_rule(spec, catalog, &Map::new()))
            .collect::<Result<Vec<_>, _>>()?;
        let watch = Watch::new(live, rules.interval, rules.duration)
            .map_err(|source| RulesFileError::Watch {
                path: rules.path.clone(),
                source,
            })?
            .rollback_window(rules.rollback_window);
        Ok(RulesWatch { watch, rules })
    }

    /// The rules a watch step's [`Check::params`] carry.
    pub fn file_of(params: CheckParams) -> Result<RulesFile, serde_json::Error> {
        serde_json::from_value(Value::Object(params.params))
    }
}

#[async_trait]
impl Check for RulesWatch {
    fn describe(&self) -> Description {
        self.watch.describe()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        self.watch.run(ctx).await
    }

    fn params(&self) -> Option<CheckParams> {
        match serde_json::to_value(self.rules.to_file()) {
            Ok(Value::Object(params)) => Some(CheckParams {
                check: WATCH_STEP.to_owned(),
                params,
            }),
            _ => None,
        }
    }
}

/// Reads the rules file at `path`, shape only; with the name errors give it.
fn read(path: &Path) -> Result<(RulesFile, String), RulesFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RulesFileError::Io {
        path: shown.clone(),
        source,
    })?;
    Ok((syntax(&text, &shown)?, shown))
}

fn syntax(text: &str, path: &str) -> Result<RulesFile, RulesFileError> {
    toml::from_str(text).map_err(|e| RulesFileError::Syntax {
        path: path.into(),
        message: e.to_string(),
    })
}

/// The probe's parameter object: `settings`, then each measuring key
/// `spec` sets (left out when unset, so the probe's defaults apply).
fn probe_params(spec: &RuleSpec, settings: &Map<String, Value>) -> Map<String, Value> {
    let mut params = settings.clone();
    params.extend(spec.probe.clone());
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_mode_and_its_errors() {
        let rules = Rules::parse(
            r#"
            interval = "5s"
            [[rules]]
            id = "p95"
            comparison = "above"
            limit = 2.0
            for = "5m"
            [[rules]]
            id = "limited"
            comparison = "at_least"
            limit = 1
            consecutive = 3
            [[rules]]
            id = "errors"
            comparison = ">"
            limit = 1
            k = 2
            n = 3
            "#,
            "r.toml",
        )
        .unwrap();
        assert_eq!(rules.interval, Duration::from_secs(5));
        let windows: Vec<Window> = rules
            .specs
            .iter()
            .map(|s| rules.judgement(s).unwrap().window)
            .collect();
        assert_eq!(
            windows,
            [
                Window::For {
                    duration: Duration::from_secs(300)
                },
                Window::Consecutive { count: 3 },
                Window::KOfN { k: 2, n: 3 }
            ]
        );
        let err = Rules::parse(
            "[[rules]]\nid='x'\ncomparison='above'\nlimit=1\nfor='5m'\nconsecutive=2\n",
            "r.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("rule `x`: give one of"), "{err}");
        let err =
            Rules::parse("[[rules]]\nid='x'\ncomparison='over'\nlimit=1\n", "r.toml").unwrap_err();
        assert!(err.to_string().contains("`over` is not one of"), "{err}");
        let err = Rules::parse(
            "[[rules]]\nid='x'\ncomparision='above'\nlimit=1\n",
            "r.toml",
        )
        .unwrap_err();
        // A misspelt judging key leaves the rule without its condition;
        // other unknown keys go to the probe, which refuses them by name.
        assert!(
            err.to_string()
                .contains("give the condition as `comparison` with `limit`"),
            "{err}"
        );
        assert!(Rules::parse("interval='5s'\nrules=[]\n", "r.toml").is_err());
    }

    #[test]
    fn actions_and_the_ask_settings() {
        let rule = |extra: &str| {
            Rules::parse(
                &format!("[[rules]]\nid='p95'\nabove=2\nfor='5m'\n{extra}"),
                "r.toml",
            )
        };
        let rules = rule("").unwrap();
        let judging = rules.judgement(&rules.specs[0]).unwrap();
        assert_eq!(
            (judging.comparison, judging.limit),
            (Comparison::Above, 2.0)
        );
        assert_eq!((judging.action, judging.ask), (RuleAction::Rollback, None));
        let rules =
            rule("action='ask'\nask_role='oncall'\nask_deadline='10m'\nask_default='approve'\n")
                .unwrap();
        let judging = rules.judgement(&rules.specs[0]).unwrap();
        assert_eq!(judging.action, RuleAction::Ask);
        assert_eq!(
            judging.ask,
            Some(ApprovalPolicy {
                role: "oncall".into(),
                deadline: Some(Duration::from_secs(600)),
                on_deadline: OnDeadline::Approve,
            })
        );
        let err = rule("action='ask'\n").unwrap_err().to_string();
        assert!(
            err.contains("rule `p95`: `action = \"ask\"` needs `ask_role`"),
            "{err}"
        );
        let err = rule("action='observe'\nask_role='oncall'\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("go with `action = \"ask\"`, and the action is `observe`"),
            "{err}"
        );
        let err = rule("action='ask'\nask_role='oncall'\nask_default='later'\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown variant `later`, expected one of `approve`, `reject`, `abort`"),
            "{err}"
        );
        let err = rule("above=3\n").unwrap_err().to_string();
        assert!(err.contains("duplicate key"), "{err}");
        let err = rule("limit=3\n").unwrap_err().to_string();
        assert!(
            err.contains("give the condition as `comparison` with `limit`"),
            "{err}"
        );
    }

    #[test]
    fn binding_pairs_read_as_a_file_entry() {
        let pairs: Vec<(String, String)> = [
            ("id", "p95"),
            ("above", "2"),
            ("for", "5m"),
            ("consecutive", "3"),
            ("rollback", "false"),
            ("action", "ask"),
            ("ask_role", "oncall"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let spec = RuleSpec::from_pairs(&pairs, &Catalog::new()).unwrap();
        assert_eq!(spec.above, Some(2.0));
        assert_eq!(spec.consecutive, Some(3));
        assert_eq!(spec.rollback, Some(false));
        assert_eq!(spec.action, Some(RuleAction::Ask));
        let bad = RuleSpec::from_pairs(
            &[("id".into(), "p95".into()), ("abvoe".into(), "2".into())],
            &Catalog::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.starts_with("rule `p95`, parameter `abvoe` is not a parameter"),
            "{bad}"
        );
        assert!(bad.contains("did you mean `above`?"), "{bad}");
        let bad = RuleSpec::from_pairs(
            &[
                ("id".into(), "p95".into()),
                ("action".into(), "maybe".into()),
            ],
            &Catalog::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("unknown variant `maybe`, expected one of `observe`, `ask`, `rollback`"),
            "{bad}"
        );
    }
}
