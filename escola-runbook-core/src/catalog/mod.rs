//! The open catalog: every check (and every alert rule's probe) a runbook
//! can name, with the JSON schema of its parameters and how to build it.
//!
//! A check's parameters are declared once, as a struct: serde gives the
//! names and defaults, schemars the schema (types, and the doc comments as
//! help), and [`CheckConfig::build`] validates them once and builds the
//! check (cargo-deny's config -> `ValidConfig`). Everything else derives
//! from it: runbook files and Markdown bindings build steps through
//! [`Catalog::build`], `check NAME -p k=v` through
//! [`Catalog::build_from_pairs`] (see [`params`]), `check --list` and
//! reference docs from [`Entry::param_docs`], and export writes
//! [`CheckParams::of`] the struct back, so a round trip is lossless.
//!
//! A team adds its own check with one call, and then names it in a TOML
//! runbook or a Markdown binding like a built-in one:
//!
//! ```
//! use std::sync::Arc;
//! use escola_runbook_core::catalog::{Catalog, CheckConfig, ParamsError};
//! use escola_runbook_core::schemars::{self, JsonSchema};
//! use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};
//! use serde::{Deserialize, Serialize};
//!
//! /// Passes when at least `min_free_gib` GiB are free.
//! #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct DiskSpace {
//!     /// The smallest acceptable free space, in GiB.
//!     min_free_gib: u64,
//! }
//!
//! impl CheckConfig for DiskSpace {
//!     const NAME: &'static str = "disk-space";
//!     fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
//!         Ok(Arc::new(self))
//!     }
//! }
//!
//! #[async_trait]
//! impl Check for DiskSpace {
//!     fn describe(&self) -> Description {
//!         Description::read_only("disk-space", format!("at least {} GiB free", self.min_free_gib))
//!     }
//!     async fn run(&self, _ctx: &Ctx) -> Outcome {
//!         Outcome::passed("enough space")
//!     }
//!     fn params(&self) -> Option<CheckParams> {
//!         CheckParams::of(self).ok()
//!     }
//! }
//!
//! let mut catalog = Catalog::new();
//! catalog.register::<DiskSpace>();
//! let entry = catalog.find("disk-space").unwrap();
//! assert_eq!(entry.summary(), "passes when at least `min_free_gib` GiB are free");
//! let check = catalog.build_from_pairs("disk-space", &[("min_free_gib".into(), "20".into())]).unwrap();
//! assert_eq!(check.params().unwrap().params["min_free_gib"], 20);
//! let err = catalog.build_from_pairs("disk-space", &[("min_free_gib".into(), "lots".into())]);
//! assert_eq!(
//!     err.err().unwrap().to_string(),
//!     "check `disk-space`, parameter `min_free_gib` has value `lots`, which is not a whole number"
//! );
//! ```

mod docs;
mod error;
pub mod params;
mod schema;
mod text_param;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::check::{Check, CheckParams};
use crate::rules::Probe;

pub use docs::{ParamDoc, phrase};
pub use error::{
    CatalogError, EntryKind, PairError, ParamProblem, ParamsError, PathSegment, UnknownName,
};
pub use text_param::number_or_text;

/// A check's parameters, declared once: names, types, defaults and help
/// come from the struct (serde attributes, schemars, doc comments). The
/// struct's doc comment is the entry's summary (its first paragraph).
pub trait CheckConfig: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The name runbooks use ("command").
    const NAME: &'static str;

    /// Validates the parameters (once, here) and builds the check.
    fn build(self) -> Result<Arc<dyn Check>, ParamsError>;
}

/// An alert rule probe's parameters, declared once, as for [`CheckConfig`]:
/// rules files and watch steps name probes through the catalog.
pub trait ProbeConfig: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The name rules use ("metrics-quantile").
    const NAME: &'static str;

    /// Validates the parameters and builds the probe.
    fn build(self) -> Result<Arc<dyn Probe>, ParamsError>;
}

impl CheckParams {
    /// The catalog name and parameters of `config`: what a check holding
    /// its parameter struct returns from [`Check::params`]. Parameters
    /// equal to their schema default, and unset options, are left out, so
    /// an exported file says only what was chosen. Fails only when the
    /// struct does not serialize to a JSON object (a map with non-text
    /// keys, a path that is not UTF-8).
    pub fn of<C: CheckConfig>(config: &C) -> Result<CheckParams, serde_json::Error> {
        Ok(CheckParams {
            check: C::NAME.to_owned(),
            params: object_of(config, &schema_of::<C>())?,
        })
    }
}

/// `value` as a JSON object, without nulls (a file cannot write them, and
/// leaving them out means the same) nor values equal to the default the
/// schema `root` gives them.
fn object_of<T: Serialize>(
    value: &T,
    root: &Value,
) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(mut map) => {
            map.retain(|k, v| {
                let default = schema::property(root, root, k).and_then(|p| p.get("default"));
                !v.is_null() && default != Some(v)
            });
            Ok(map)
        }
        other => Err(serde::ser::Error::custom(format!(
            "parameters must serialize to an object, not {other}"
        ))),
    }
}

type BuildFn<T> = Box<dyn Fn(Map<String, Value>) -> Result<Arc<T>, ParamsError> + Send + Sync>;

/// One name in the catalog: a summary, the JSON schema of its parameters,
/// and how to build it from them. `T` is `dyn Check` or `dyn Probe`.
pub struct Entry<T: ?Sized> {
    kind: EntryKind,
    name: String,
    summary: String,
    schema: Value,
    build: BuildFn<T>,
}

/// A check's entry.
pub type CheckEntry = Entry<dyn Check>;
/// A probe's entry.
pub type ProbeEntry = Entry<dyn Probe>;

impl<T: ?Sized> fmt::Debug for Entry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

fn schema_of<C: JsonSchema>() -> Value {
    schemars::schema_for!(C).to_value()
}

impl<T: ?Sized + 'static> Entry<T> {
    fn typed<C>(kind: EntryKind, name: &str, build: fn(C) -> Result<Arc<T>, ParamsError>) -> Self
    where
        C: DeserializeOwned + JsonSchema + 'static,
    {
        let schema = schema_of::<C>();
        let summary = schema
            .get("description")
            .and_then(Value::as_str)
            .map(phrase)
            .unwrap_or_default();
        let owner = name.to_owned();
        Entry {
            kind,
            name: name.to_owned(),
            summary,
            schema,
            build: Box::new(move |object| {
                let owner = params::Owner { kind, name: &owner };
                build(params::deserialize(owner, Value::Object(object))?)
            }),
        }
    }

    /// An entry from parts, for parameters not declared as a struct: its
    /// `schema` (an object schema) still drives `KEY=VALUE` pairs, names
    /// and docs; `build` gets the object once names and types are checked.
    pub fn from_parts(
        kind: EntryKind,
        name: impl Into<String>,
        summary: impl Into<String>,
        schema: Value,
        build: impl Fn(Map<String, Value>) -> Result<Arc<T>, ParamsError> + Send + Sync + 'static,
    ) -> Self {
        Entry {
            kind,
            name: name.into(),
            summary: summary.into(),
            schema,
            build: Box::new(build),
        }
    }

    /// The name runbooks use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it verifies, in one line.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The JSON schema of its parameters.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Its parameters, for a table.
    pub fn param_docs(&self) -> Vec<ParamDoc> {
        docs::param_docs(&self.schema)
    }

    fn owner(&self) -> params::Owner<'_> {
        params::Owner {
            kind: self.kind,
            name: &self.name,
        }
    }

    /// Builds from a parameter object: unknown names refused (with the
    /// nearest one), text converted to the schema's types, required ones
    /// checked, then the struct deserialized and validated.
    pub fn build(&self, object: Map<String, Value>) -> Result<Arc<T>, ParamsError> {
        params::check_names(self.owner(), &self.schema, &object)?;
        let object = params::coerce(self.owner(), &self.schema, object)?;
        (self.build)(object)
    }

    /// `KEY=VALUE` pairs as the parameter object they stand for (see
    /// [`params`]), typed through the schema but not yet built.
    pub fn object_from_pairs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Map<String, Value>, ParamsError> {
        let object = params::object_from_pairs(self.owner(), &self.schema, pairs)?;
        params::check_names(self.owner(), &self.schema, &object)?;
        params::coerce(self.owner(), &self.schema, object)
    }

    /// Builds from `KEY=VALUE` pairs.
    pub fn build_from_pairs(&self, pairs: &[(String, String)]) -> Result<Arc<T>, ParamsError> {
        let object = self.object_from_pairs(pairs)?;
        (self.build)(object)
    }
}

/// Entries of one kind, by name.
struct Shelf<T: ?Sized> {
    kind: EntryKind,
    entries: BTreeMap<String, Entry<T>>,
}

impl<T: ?Sized> Shelf<T> {
    fn new(kind: EntryKind) -> Self {
        Shelf {
            kind,
            entries: BTreeMap::new(),
        }
    }

    fn find(&self, name: &str) -> Result<&Entry<T>, UnknownName> {
        self.entries.get(name).ok_or_else(|| UnknownName {
            kind: self.kind,
            name: name.to_owned(),
            suggestion: crate::suggest::nearest(name, self.entries.keys().map(String::as_str))
                .map(str::to_owned),
        })
    }
}

/// Every check and probe a runbook can name. Built-in checks come from
/// `escola_runbook_checks::catalog()`; a team adds its own with
/// [`register`](Self::register). A later registration under a name
/// replaces the earlier one, so a team can also replace a built-in.
pub struct Catalog {
    checks: Shelf<dyn Check>,
    probes: Shelf<dyn Probe>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("checks", &self.checks.entries.keys().collect::<Vec<_>>())
            .field("probes", &self.probes.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Catalog {
            checks: Shelf::new(EntryKind::Check),
            probes: Shelf::new(EntryKind::Probe),
        }
    }

    /// Adds the check whose parameters are `C`, under [`CheckConfig::NAME`].
    pub fn register<C: CheckConfig>(&mut self) -> &mut Self {
        self.add(Entry::typed(EntryKind::Check, C::NAME, C::build))
    }

    /// Adds a check entry made with [`Entry::from_parts`].
    pub fn add(&mut self, entry: CheckEntry) -> &mut Self {
        self.checks.entries.insert(entry.name.clone(), entry);
        self
    }

    /// Adds the probe whose parameters are `P`, under [`ProbeConfig::NAME`].
    pub fn register_probe<P: ProbeConfig>(&mut self) -> &mut Self {
        let entry = Entry::typed(EntryKind::Probe, P::NAME, P::build);
        self.probes.entries.insert(entry.name.clone(), entry);
        self
    }

    /// The check called `name`, or the nearest name in the error.
    pub fn find(&self, name: &str) -> Result<&CheckEntry, UnknownName> {
        self.checks.find(name)
    }

    /// The probe called `name`, or the nearest name in the error.
    pub fn find_probe(&self, name: &str) -> Result<&ProbeEntry, UnknownName> {
        self.probes.find(name)
    }

    /// Every check, by name.
    pub fn entries(&self) -> impl Iterator<Item = &CheckEntry> {
        self.checks.entries.values()
    }

    /// Every probe, by name.
    pub fn probe_entries(&self) -> impl Iterator<Item = &ProbeEntry> {
        self.probes.entries.values()
    }

    /// The check `params` names, built from its parameters (what
    /// [`Check::params`] returns rebuilds the check).
    pub fn build(&self, params: &CheckParams) -> Result<Arc<dyn Check>, CatalogError> {
        Ok(self.find(&params.check)?.build(params.params.clone())?)
    }

    /// The check `name` built from `KEY=VALUE` pairs.
    pub fn build_from_pairs(
        &self,
        name: &str,
        pairs: &[(String, String)],
    ) -> Result<Arc<dyn Check>, CatalogError> {
        Ok(self.find(name)?.build_from_pairs(pairs)?)
    }

    /// The probe `name` built from its parameter object.
    pub fn build_probe(
        &self,
        name: &str,
        params: Map<String, Value>,
    ) -> Result<Arc<dyn Probe>, CatalogError> {
        Ok(self.find_probe(name)?.build(params)?)
    }

    /// The probe `name` built from `KEY=VALUE` pairs.
    pub fn build_probe_from_pairs(
        &self,
        name: &str,
        pairs: &[(String, String)],
    ) -> Result<Arc<dyn Probe>, CatalogError> {
        Ok(self.find_probe(name)?.build_from_pairs(pairs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::rules::Sample;
    use crate::{Ctx, Description, Environment, Secrets};
    use serde::Deserialize;

    /// Reads a constant: the smallest probe there is.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct ConstantProbe {
        /// The value every sample gives.
        value: f64,
        /// What the record shows as the query.
        #[serde(default = "query")]
        query: String,
    }

    fn query() -> String {
        "constant".into()
    }

    #[async_trait::async_trait]
    impl Probe for ConstantProbe {
        fn query(&self) -> String {
            self.query.clone()
        }
        async fn sample(&self, _ctx: &Ctx) -> Sample {
            Sample::value(self.value)
        }
    }

    impl ProbeConfig for ConstantProbe {
        const NAME: &'static str = "constant";
        fn build(self) -> Result<Arc<dyn Probe>, ParamsError> {
            if !self.value.is_finite() {
                return Err(ParamsError {
                    kind: EntryKind::Probe,
                    name: Self::NAME.into(),
                    path: vec![PathSegment::Key("value".into())],
                    problem: ParamProblem::Invalid {
                        message: "must be a finite number".into(),
                    },
                });
            }
            Ok(Arc::new(self))
        }
    }

    /// Passes, and says so with `word`.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Echo {
        /// What to say.
        word: String,
        /// Extra words.
        #[serde(default)]
        more: Vec<String>,
    }

    #[async_trait::async_trait]
    impl Check for Echo {
        fn describe(&self) -> Description {
            Description::read_only("echo", "says a word")
        }
        async fn run(&self, _ctx: &Ctx) -> Outcome {
            Outcome::passed(self.word.clone())
        }
        fn params(&self) -> Option<CheckParams> {
            CheckParams::of(self).ok()
        }
    }

    impl CheckConfig for Echo {
        const NAME: &'static str = "echo";
        fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
            Ok(Arc::new(self))
        }
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.register::<Echo>().register_probe::<ConstantProbe>();
        c
    }

    #[tokio::test]
    async fn probes_are_named_and_built_through_the_catalog() {
        let c = catalog();
        let entry = c.find_probe("constant").unwrap();
        assert_eq!(
            entry.summary(),
            "reads a constant: the smallest probe there is"
        );
        let probe = c
            .build_probe_from_pairs("constant", &[("value".into(), "2.5".into())])
            .unwrap();
        assert_eq!(probe.query(), "constant");
        let ctx = Ctx::standalone(Environment::new("test"), Secrets::new());
        assert_eq!(probe.sample(&ctx).await, Sample::value(2.5));
        let err = c.find_probe("constnt").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("constant"));
        assert!(
            err.to_string()
                .starts_with("no built-in probe is called `constnt` (did you mean `constant`?)"),
            "{err}"
        );
        let err = c
            .build_probe(
                "constant",
                serde_json::from_str(r#"{"value": "high"}"#).unwrap(),
            )
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "probe `constant`, parameter `value` has value `high`, which is not a number"
        );
        let docs = entry.param_docs();
        assert_eq!(docs[0].name, "query");
        assert_eq!(docs[0].default.as_deref(), Some("constant"));
        assert!(docs[1].required && docs[1].kind == "number");
    }

    #[test]
    fn a_check_rebuilds_from_its_params() {
        let c = catalog();
        let check = c
            .build_from_pairs(
                "echo",
                &[("word".into(), "oi".into()), ("more".into(), "a,b".into())],
            )
            .unwrap();
        let params = check.params().unwrap();
        assert_eq!(params.params["more"], serde_json::json!(["a", "b"]));
        assert_eq!(c.build(&params).unwrap().params(), Some(params));
        let err = c
            .build(&CheckParams::new("echo").with_value("more", serde_json::json!([1])))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "check `echo`, parameter `word` is required: what to say"
        );
        let err = c
            .build(
                &CheckParams::new("echo")
                    .with("word", "x")
                    .with_value("more", serde_json::json!(["a", 1])),
            )
            .err()
            .unwrap();
        let CatalogError::Params(e) = &err else {
            panic!("{err}")
        };
        assert_eq!(
            e.path,
            [PathSegment::Key("more".into()), PathSegment::Index(1)]
        );
        assert!(
            err.to_string()
                .contains("parameter `more[1]` is not usable: invalid type: integer `1`"),
            "{err}"
        );
    }
}
