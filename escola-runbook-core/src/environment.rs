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

/// Something a check needed from the run and was not given: an environment
/// setting or a secret. The library names it; how a user gives it (a CLI
/// flag, a project file, an embedder's own configuration) is for the front
/// end to say, so a check's words stay true wherever it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Need {
    /// An environment setting, with an example of its value.
    #[error("environment setting `{name}` ({purpose}) was not given")]
    Setting {
        /// The setting's key, e.g. `base_url`.
        name: String,
        /// What it is for, e.g. "the API's URL".
        purpose: String,
        /// A value of the right shape, e.g. `https://api.example.org`.
        example: String,
    },
    /// A secret, by name.
    #[error("secret `{name}` ({purpose}) was not provided")]
    Secret {
        /// The secret's name, e.g. `metrics_token`.
        name: String,
        /// What it is for, e.g. "the Bearer token".
        purpose: String,
    },
}

impl Need {
    /// The environment setting `name`, for `purpose`, e.g. `example`.
    pub fn setting(
        name: impl Into<String>,
        purpose: impl Into<String>,
        example: impl Into<String>,
    ) -> Self {
        Need::Setting {
            name: name.into(),
            purpose: purpose.into(),
            example: example.into(),
        }
    }

    /// The secret `name`, for `purpose`.
    pub fn secret(name: impl Into<String>, purpose: impl Into<String>) -> Self {
        Need::Secret {
            name: name.into(),
            purpose: purpose.into(),
        }
    }
}
