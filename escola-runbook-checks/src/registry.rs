//! Built-in checks by name, with their parameters: what `check --list` shows,
//! what `check NAME --param K=V` and runbook files build steps from.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::{Check, duration};

use crate::{
    cache_purge, changelog, command, coverage, docs_freshness, http_json, log_scan, notify,
};

/// One parameter of a built-in check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name as written on the command line and in runbook files.
    pub name: &'static str,
    /// What it means, with its unit.
    pub help: &'static str,
    /// Must be given.
    pub required: bool,
    /// Value used when not given.
    pub default: Option<&'static str>,
}

/// Builds a check from its parameters.
pub type BuildFn = fn(&Params) -> Result<Arc<dyn Check>, ParamError>;

/// A built-in check.
#[derive(Debug, Clone, Copy)]
pub struct CheckSpec {
    /// Name ("command", "smoke", "coverage").
    pub name: &'static str,
    /// What it verifies, in one line.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [ParamSpec],
    /// The constructor.
    pub build: BuildFn,
}

impl CheckSpec {
    /// Validates `params` against the spec (unknown names, missing required
    /// ones) and builds the check.
    pub fn instantiate(&self, params: &Params) -> Result<Arc<dyn Check>, ParamError> {
        for name in params.values.keys() {
            if !self.params.iter().any(|p| p.name == name) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name).collect();
                return Err(ParamError {
                    check: self.name.into(),
                    param: name.clone(),
                    message: format!(
                        "is not a parameter of `{}`{}; its parameters are: {}",
                        self.name,
                        nearest(name, &known)
                            .map(|n| format!(" (did you mean `{n}`?)"))
                            .unwrap_or_default(),
                        known.join(", ")
                    ),
                });
            }
        }
        for p in self.params.iter().filter(|p| p.required) {
            if !params.values.contains_key(p.name) {
                return Err(ParamError {
                    check: self.name.into(),
                    param: p.name.into(),
                    message: format!("is required: {}", p.help),
                });
            }
        }
        (self.build)(&params.for_check(self))
    }
}

/// A parameter could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("check `{check}`, parameter `{param}` {message}")]
pub struct ParamError {
    /// The check.
    pub check: String,
    /// The parameter.
    pub param: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Parameters as given (strings), with typed accessors that name the
/// parameter in every error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    check: String,
    values: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
}

impl Params {
    /// Parameters from `(key, value)` pairs.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Params {
            check: String::new(),
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            defaults: BTreeMap::new(),
        }
    }

    /// Parses `KEY=VALUE` words (the CLI's `--param`).
    pub fn parse_pairs<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        for word in words {
            let Some((k, v)) = word.split_once('=') else {
                return Err(format!("`{word}` is not KEY=VALUE"));
            };
            if k.is_empty() {
                return Err(format!("`{word}` has an empty key"));
            }
            if values.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(format!("parameter `{k}` is given twice"));
            }
        }
        Ok(Params::new(values))
    }

    fn for_check(&self, spec: &CheckSpec) -> Self {
        Params {
            check: spec.name.into(),
            values: self.values.clone(),
            defaults: spec
                .params
                .iter()
                .filter_map(|p| p.default.map(|d| (p.name.to_owned(), d.to_owned())))
                .collect(),
        }
    }

    /// An error about parameter `param` of this check.
    pub fn error(&self, param: &str, message: impl Into<String>) -> ParamError {
        ParamError {
            check: self.check.clone(),
            param: param.into(),
            message: message.into(),
        }
    }

    /// The value given, or the spec's default.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .or_else(|| self.defaults.get(name))
            .map(String::as_str)
    }

    /// The value, which must be present.
    pub fn require(&self, name: &str) -> Result<&str, ParamError> {
        self.get(name)
            .ok_or_else(|| self.error(name, "is required"))
    }

    /// The value parsed as `T`, if present.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ParamError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.parse::<T>().map_err(|e| {
                    self.error(name, format!("has value `{v}`, which is not valid: {e}"))
                })
            })
            .transpose()
    }

    /// A duration (`500ms`, `30s`, `5m`, `1h`; see
    /// [`escola_runbook_core::duration`]) within the standard range, if
    /// present.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ParamError> {
        self.duration_in(name, duration::Range::STANDARD)
    }

    /// A duration within `range`, if present.
    pub fn duration_in(
        &self,
        name: &str,
        range: duration::Range,
    ) -> Result<Option<Duration>, ParamError> {
        self.get(name)
            .map(|v| {
                duration::parse_in(v, range)
                    .map_err(|e| self.error(name, format!("is not usable: {e}")))
            })
            .transpose()
    }

    /// A comma-separated list, if present.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }
}

/// A span for evidence: `30d` for whole days, `3d4h` beyond two days,
/// otherwise like [`escola_runbook_core::format_duration`] (`36h`, `5m`).
pub fn format_span(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours) = (secs / 86_400, (secs % 86_400) / 3600);
    if secs >= 86_400 && secs % 86_400 == 0 {
        format!("{days}d")
    } else if days >= 2 {
        if hours == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{hours}h")
        }
    } else {
        escola_runbook_core::format_duration(d)
    }
}

/// Every built-in check, by name.
pub fn builtin() -> Vec<CheckSpec> {
    let mut specs = vec![
        command::spec(),
        coverage::spec(),
        changelog::spec(),
        docs_freshness::spec(),
        log_scan::spec(),
        log_scan::record_time_spec(),
        http_json::spec(),
        cache_purge::spec(),
        notify::spec(),
        crate::smoke::spec(),
    ];
    specs.extend(crate::metrics::checks::specs());
    specs.extend(crate::db::checks::specs());
    specs.sort_by_key(|s| s.name);
    specs
}

/// No built-in check has that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no built-in check is called `{name}`{}; `escola-runbook check --list` shows them all", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct UnknownCheck {
    /// The name asked for.
    pub name: String,
    /// The nearest name, if one is close.
    pub suggestion: Option<String>,
}

/// The built-in check called `name`.
pub fn find(name: &str) -> Result<CheckSpec, UnknownCheck> {
    let specs = builtin();
    if let Some(spec) = specs.iter().find(|s| s.name == name) {
        return Ok(*spec);
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    Err(UnknownCheck {
        name: name.into(),
        suggestion: nearest(name, &names).map(str::to_owned),
    })
}

/// The candidate closest to `word` by edit distance, if reasonably close.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let p = Params::new([("timeout", "0s"), ("every", "1.5s")]);
        assert_eq!(p.duration("every"), Ok(Some(Duration::from_millis(1500))));
        let err = p.duration("timeout").unwrap_err().to_string();
        assert!(
            err.contains("`timeout` is not usable: `0s`") && err.contains("1ms to 30d"),
            "{err}"
        );
        assert_eq!(format_span(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(
            format_span(Duration::from_secs(3 * 86_400 + 4 * 3600 + 5)),
            "3d4h"
        );
        assert_eq!(format_span(Duration::from_secs(36 * 3600)), "36h");
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let err = find("comand").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("command"));
        let spec = find("command").unwrap();
        let err = spec
            .instantiate(&Params::new([("shel", "true")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("did you mean `shell`"), "{err}");
    }

    #[test]
    fn pairs_are_checked() {
        assert!(Params::parse_pairs(["a=1", "b=x=y"]).is_ok());
        assert!(Params::parse_pairs(["novalue"]).is_err());
        assert!(Params::parse_pairs(["a=1", "a=2"]).is_err());
    }
}
