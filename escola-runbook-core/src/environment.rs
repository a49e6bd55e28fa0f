//! Where a run points: the target environment's name and settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the run points: a named environment and its settings (base URL,
/// metrics URL, database host...). Not secret; secrets live in
/// [`Secrets`](crate::Secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// "production", "staging".
    pub name: String,
    /// Settings by key.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl Environment {
    /// An environment called `name` with no settings.
    pub fn new(name: impl Into<String>) -> Self {
        Environment {
            name: name.into(),
            settings: BTreeMap::new(),
        }
    }

    /// Adds a setting.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// The setting `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }
}
