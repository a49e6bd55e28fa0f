//! The parameter lists of the checks that do not have a parameter struct
//! yet, and the adapter that puts them in the [`Catalog`]: their entry's
//! schema is made from the [`ParamSpec`]s, and they receive their
//! parameters as text, as before (a list joined with commas).
//!
//! Removed when every check has a params struct (issue #13).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{
    Catalog, CheckEntry, Entry, EntryKind, ParamProblem, ParamsError,
};
use escola_runbook_core::{Check, duration};
use serde_json::{Map, Value};

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

/// Puts `spec` in `catalog`: removed when every check has a params struct
/// (issue #13).
pub fn register(catalog: &mut Catalog, spec: CheckSpec) {
    catalog.add(entry(spec));
}

/// The catalog entry for `spec`: a schema with one property per
/// parameter (no type: any value is passed on as text), its required ones,
/// and a build that hands the text to the spec.
fn entry(spec: CheckSpec) -> CheckEntry {
    let properties: Map<String, Value> = spec
        .params
        .iter()
        .map(|p| {
            let mut property = Map::new();
            property.insert("description".into(), Value::from(p.help));
            if let Some(d) = p.default {
                property.insert("default".into(), Value::from(d));
            }
            (p.name.to_owned(), Value::Object(property))
        })
        .collect();
    let required: Vec<&str> = spec
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    let schema = serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    Entry::from_parts(
        EntryKind::Check,
        spec.name,
        spec.summary,
        schema,
        move |object| {
            let mut values = BTreeMap::new();
            for (name, value) in object {
                if let Some(text) = as_text(spec.name, &name, value)? {
                    values.insert(name, text);
                }
            }
            // Names and required ones are checked by the catalog, from the schema.
            let params = Params {
                values,
                ..Params::default()
            };
            (spec.build)(&params.for_check(&spec))
                .map_err(|e| ParamsError::invalid(e.check, &e.param, e.message))
        },
    )
}

/// A parameter value as the text a spec reads: numbers and booleans
/// written out, lists joined with commas (so an item cannot hold one);
/// `None` for a null (not given).
fn as_text(check: &str, name: &str, value: Value) -> Result<Option<String>, ParamsError> {
    let unusable =
        |reason: String| ParamsError::check(check, name, ParamProblem::Unusable { reason });
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) => {
            let mut parts = Vec::new();
            for item in items {
                let Some(part) = as_text(check, name, item)? else {
                    continue;
                };
                if part.contains(',') {
                    return Err(unusable(format!(
                        "list item `{part}` contains a comma; lists are passed on comma-separated, so write the value as text instead"
                    )));
                }
                parts.push(part);
            }
            parts.join(",")
        }
        Value::Object(_) => {
            return Err(unusable(
                "it is a table, and this check takes text, a number, a boolean or a list".into(),
            ));
        }
    }))
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
    }
}
