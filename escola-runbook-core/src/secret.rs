//! Secrets that cannot be printed, and the redactor that masks their values
//! wherever text leaves the process.
//!
//! Two layers, on purpose: [`Secret`] keeps a value out of `Debug` output and
//! has no `Display`, so it cannot be formatted by accident; the [`Redactor`]
//! masks every registered value in text that did get through anyway (command
//! output, an error message quoting a URL with a token, a report).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// A secret value: a token, a password, a DSN with credentials.
///
/// `Debug` prints `Secret(<redacted>)`; there is no `Display`. The value is
/// reachable only through [`Secret::expose`], which makes every use visible in
/// review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The plain value, for the one place that must send it (an HTTP header,
    /// a database connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Named secrets available to checks, each registered with a [`Redactor`].
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, Secret>,
    redactor: Redactor,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// An empty store with its own redactor.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose values are registered with `redactor`, so a
    /// masking layer built before the secrets were read (a log writer)
    /// masks them too.
    pub fn with_redactor(redactor: Redactor) -> Self {
        Secrets {
            values: BTreeMap::new(),
            redactor,
        }
    }

    /// Adds (or replaces) a secret and registers its value for masking.
    pub fn insert(&mut self, name: impl Into<String>, value: Secret) {
        let name = name.into();
        self.redactor.register(&name, value.expose());
        self.values.insert(name, value);
    }

    /// The secret called `name`, if it was provided.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name)
    }

    /// Names of the secrets provided (never their values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The redactor that masks these secrets' values.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// Masks registered secret values in text.
///
/// Cloning shares the registry, so a value registered after the executor
/// started (a token read by a step) is masked everywhere from then on.
#[derive(Clone, Default)]
pub struct Redactor {
    // (name, value), longest value first so a secret containing another is
    // masked whole.
    entries: Arc<RwLock<Vec<(String, String)>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor with no values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a value to mask as `<redacted:name>`. Empty values are
    /// ignored: there is nothing to leak and masking "" would be meaningless.
    pub fn register(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut entries = match self.entries.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if entries.iter().any(|(_, v)| v == value) {
            return;
        }
        entries.push((name.to_owned(), value.to_owned()));
        entries.sort_by_key(|e| std::cmp::Reverse(e.1.len()));
    }

    /// How many values are registered.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no value is registered (redaction is then free).
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(String, String)>> {
        match self.entries.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `text` with every registered value replaced by `<redacted:name>`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let entries = self.read();
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for (name, value) in entries.iter() {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), &format!("<redacted:{name}>")));
            }
        }
        out
    }

    /// Masks every string inside a JSON value, keys included.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(masked) = self.redact(s) {
                    *s = masked;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => {
                let old = std::mem::take(map);
                for (key, mut v) in old {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key).into_owned(), v);
                }
            }
            _ => {}
        }
    }

    /// A copy of any serializable value with every string masked.
    ///
    /// Works through the value's serde form, so no field can be forgotten when
    /// a type grows. Returns the value unchanged (cloned) if it does not
    /// round-trip, which only a type with a lossy serde form could cause.
    pub fn redact_serde<T>(&self, value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone,
    {
        if self.is_empty() {
            return value.clone();
        }
        match serde_json::to_value(value) {
            Ok(mut json) => {
                self.redact_json(&mut json);
                serde_json::from_value(json).unwrap_or_else(|_| value.clone())
            }
            Err(_) => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let mut store = Secrets::new();
        store.insert("metrics_token", s);
        let debug = format!("{store:?}");
        assert!(debug.contains("metrics_token"));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn masks_longest_value_first() {
        let r = Redactor::new();
        r.register("short", "abc");
        r.register("long", "abcdef");
        assert_eq!(
            r.redact("x abcdef y abc"),
            "x <redacted:long> y <redacted:short>"
        );
    }

    #[test]
    fn masks_json_keys_and_nested_strings() {
        let r = Redactor::new();
        r.register("t", "s3cr3t");
        let mut v = serde_json::json!({"s3cr3t": ["Bearer s3cr3t", 1]});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"<redacted:t>": ["Bearer <redacted:t>", 1]})
        );
    }

    #[test]
    fn empty_values_are_not_registered() {
        let r = Redactor::new();
        r.register("empty", "");
        assert!(r.is_empty());
        assert_eq!(r.redact("text"), "text");
    }
}
