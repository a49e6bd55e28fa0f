//! Alert rules in a TOML file, for `escola-runbook watch` (evaluate them
//! live against a target) and `escola-runbook replay` (re-evaluate the
//! measurements a past run recorded under other thresholds).
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
//! ```
//!
//! A rule's judgement (comparison, limit, window, keep-firing, error
//! policy) is read here; every other key of a rule says what it measures
//! (`measure`, `quantile`, `status`, `route`, `window`, `metric`, `labels`,
//! `promql`, `sql`, ...): the parameters of the catalog's probe
//! [`RULE_PROBE`], built through [`Catalog::build_probe`], so the probe
//! declares and validates them (the checks crate registers it).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::{Catalog, CatalogError};
use crate::duration::{self, Range};
use crate::rules::{Comparison, ErrorPolicy, Rule, Window};
use crate::{Schedule, WatchError};

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

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Time between evaluations (default 15s).
    #[serde(default)]
    pub interval: Option<String>,
    /// How long to watch (default 30m).
    #[serde(default)]
    pub duration: Option<String>,
    /// A firing rollback rule inside this window fails the watch (default 15m).
    #[serde(default)]
    pub rollback_window: Option<String>,
    /// The rules.
    pub rules: Vec<RuleSpec>,
}

/// One rule as written: how it judges (read here), and what it measures
/// (every other key, the parameters of the catalog's probe [`RULE_PROBE`],
/// which declares and checks them).
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSpec {
    /// Rule id; replay reads the recorded series of this name.
    pub id: String,
    /// Words for reports (default: the id).
    #[serde(default)]
    pub title: Option<String>,
    /// `above`, `at_least`, `below` or `at_most`.
    pub comparison: String,
    /// The limit.
    pub limit: f64,
    /// Unit of value and limit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Prometheus `for`.
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    /// N breached evaluations in a row.
    #[serde(default)]
    pub consecutive: Option<u32>,
    /// N breached evaluations in total.
    #[serde(default)]
    pub cumulative: Option<u32>,
    /// k of the last n.
    #[serde(default)]
    pub k: Option<u32>,
    /// k of the last n.
    #[serde(default)]
    pub n: Option<u32>,
    /// Keep firing this long after the condition clears.
    #[serde(default)]
    pub keep_firing_for: Option<String>,
    /// Failed evaluations tolerated before they count as breached (default
    /// 3); `0` ignores them.
    #[serde(default)]
    pub errors_breach_after: Option<u32>,
    /// Firing inside the rollback window rolls back (default true).
    #[serde(default)]
    pub rollback: Option<bool>,
    /// What the rule measures (`measure`, `quantile`, `metric`, `promql`,
    /// `sql`, ...): the probe's parameters, unknown keys refused by it
    /// (`watch` ignores none; replay reads only the recorded values).
    #[serde(flatten)]
    pub probe: Map<String, Value>,
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
    path: String,
}

impl Rules {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, RulesFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RulesFileError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses rules from `text` (named `path` in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, RulesFileError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesFileError::Syntax {
            path: path.into(),
            message: e.to_string(),
        })?;
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
            let (_, window, _, _) = rules.judgement(spec)?;
            schedule.admits(&spec.id, window).map_err(watch_error)?;
        }
        Ok(rules)
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

    /// The comparison, limit and window of `spec`, with a probe to be
    /// supplied: what both `watch` and `replay` judge by.
    pub fn judgement(
        &self,
        spec: &RuleSpec,
    ) -> Result<(Comparison, Window, Option<Duration>, ErrorPolicy), RulesFileError> {
        let comparison = match spec.comparison.as_str() {
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
        if !spec.limit.is_finite() {
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
        let keep = self.duration_of(spec, &spec.keep_firing_for, "keep_firing_for")?;
        let on_error = match spec.errors_breach_after {
            Some(0) => ErrorPolicy::Ignore,
            Some(after) => ErrorPolicy::BreachedAfter { after },
            None => ErrorPolicy::default(),
        };
        Ok((comparison, window, keep, on_error))
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
        let (comparison, window, keep, on_error) = self.judgement(spec)?;
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
            comparison,
            spec.limit,
            window,
        )
        .unit(spec.unit.clone().unwrap_or_default())
        .on_error(on_error);
        if let Some(keep) = keep {
            rule = rule.keep_firing_for(keep);
        }
        if spec.rollback == Some(false) {
            rule = rule.alert_only();
        }
        Ok(rule)
    }
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
            .map(|s| rules.judgement(s).unwrap().1)
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
        // A misspelt judging key leaves the rule without its comparison;
        // other unknown keys go to the probe, which refuses them by name.
        assert!(
            err.to_string().contains("missing field `comparison`"),
            "{err}"
        );
        assert!(Rules::parse("interval='5s'\nrules=[]\n", "r.toml").is_err());
    }
}
