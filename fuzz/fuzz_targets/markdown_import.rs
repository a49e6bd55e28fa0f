//! The Markdown importer on arbitrary input: it must never panic, every
//! step anchor must point into the document at a checkbox or a character
//! boundary, and the imported file must survive a TOML round trip.
#![no_main]

use std::sync::Arc;

use escola_runbook_core::catalog::{Catalog, CheckConfig, ParamsError};
use escola_runbook_core::duration::Span;
use escola_runbook_core::formats::markdown::{ImportOptions, import};
use escola_runbook_core::formats::runbook_file;
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

/// A check with a parameter of each kind, so bindings that name it
/// (`<!-- check: typed count=3 items=a,b -->`) are typed through a schema
/// as a real check's are.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Typed {
    /// Text.
    #[serde(default)]
    text: Option<String>,
    /// A whole number.
    #[serde(default)]
    count: Option<u32>,
    /// A flag.
    #[serde(default)]
    flag: Option<bool>,
    /// A list.
    #[serde(default)]
    items: Vec<String>,
    /// A duration.
    #[serde(default)]
    timeout: Option<Span>,
}

impl CheckConfig for Typed {
    const NAME: &'static str = "typed";
    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        Ok(Arc::new(self))
    }
}

#[async_trait]
impl Check for Typed {
    fn describe(&self) -> Description {
        Description::read_only("typed", "parameters of each kind")
    }
    async fn run(&self, _ctx: &Ctx) -> Outcome {
        Outcome::passed("typed")
    }
    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(self).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(md) = std::str::from_utf8(data) else {
        return;
    };
    // Bindings to `typed` are typed through its schema; any other name
    // keeps its parameters as written. Both must round-trip.
    let mut catalog = Catalog::new();
    catalog.register::<Typed>();
    let imported = import(md, &ImportOptions::default(), &catalog);
    for a in &imported.source_map.steps {
        assert!(a.evidence_at <= md.len() && md.is_char_boundary(a.evidence_at));
        if let Some(cb) = &a.checkbox {
            assert_eq!(md.as_bytes()[cb.start], b'[');
            assert_eq!(md.as_bytes()[cb.end - 1], b']');
        }
        if let Some(at) = a.insert_checkbox_at {
            assert!(md.is_char_boundary(at));
        }
    }
    let toml = imported
        .file
        .to_toml()
        .expect("an imported file serializes");
    let back = runbook_file::parse(&toml, "fuzz.toml").expect("an imported file parses back");
    assert_eq!(back, imported.file);
});
