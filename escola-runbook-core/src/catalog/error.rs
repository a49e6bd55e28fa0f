//! What can go wrong building from the catalog, as data: which entry, which
//! parameter path, what was wrong. A file format maps the path to its own
//! place (a TOML span, a Markdown line).

use std::fmt;

/// Whether an entry builds a check or a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A check ([`crate::Check`]).
    Check,
    /// An alert rule's probe ([`crate::rules::Probe`]).
    Probe,
    /// An alert rule written as `KEY=VALUE` pairs (a Markdown binding).
    Rule,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::Check => "check",
            EntryKind::Probe => "probe",
            EntryKind::Rule => "rule",
        })
    }
}

/// One step of a path into a parameter object: a key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A parameter or map key.
    Key(String),
    /// A list element.
    Index(usize),
}

/// A path such as `args[2]` or `env.HOME`, as messages write it.
pub(crate) fn path_text(path: &[PathSegment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(k) if text.is_empty() => text.push_str(k),
            PathSegment::Key(k) => {
                text.push('.');
                text.push_str(k);
            }
            PathSegment::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// What was wrong with a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamProblem {
    /// The entry has no such parameter.
    Unknown {
        /// The entry's parameters.
        known: Vec<String>,
        /// The nearest of them, if one is close.
        suggestion: Option<String>,
    },
    /// A required parameter was not given.
    Missing {
        /// What it means (its help).
        help: String,
    },
    /// A `KEY=VALUE` key given twice for a parameter that takes one value.
    Repeated,
    /// Text that is not of the parameter's type.
    NotOfType {
        /// The text given.
        value: String,
        /// What the parameter takes ("a whole number", "true or false").
        expected: String,
    },
    /// Text for a list that opens like a JSON array and is not one.
    NotAList {
        /// The text given.
        value: String,
    },
    /// The value does not fit the parameter (serde's words: a bad
    /// duration, a wrong type).
    Unusable {
        /// Why.
        reason: String,
    },
    /// The check's own rule, in its words, beginning with a verb ("and
    /// `program` are both given; give one").
    Invalid {
        /// The rule broken.
        message: String,
    },
}

/// A parameter of a catalog entry could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParamsError {
    /// Check or probe.
    pub kind: EntryKind,
    /// The entry's name ("command").
    pub name: String,
    /// Where in the parameters (`["args", 2]`); empty for the whole object.
    pub path: Vec<PathSegment>,
    /// What was wrong.
    pub problem: ParamProblem,
}

impl ParamsError {
    /// An error about parameter `param` of check `check`.
    pub fn check(check: impl Into<String>, param: &str, problem: ParamProblem) -> Self {
        ParamsError {
            kind: EntryKind::Check,
            name: check.into(),
            path: if param.is_empty() {
                Vec::new()
            } else {
                vec![PathSegment::Key(param.to_owned())]
            },
            problem,
        }
    }

    /// Check `check`'s own rule about `param`, in words beginning with a verb.
    pub fn invalid(check: impl Into<String>, param: &str, message: impl Into<String>) -> Self {
        Self::check(
            check,
            param,
            ParamProblem::Invalid {
                message: message.into(),
            },
        )
    }

    /// The top-level parameter the error is about, if any.
    pub fn param(&self) -> Option<&str> {
        match self.path.first() {
            Some(PathSegment::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = (self.kind, &self.name);
        if self.path.is_empty() {
            write!(f, "{kind} `{name}`: ")?;
        } else {
            write!(f, "{kind} `{name}`, parameter `{}` ", path_text(&self.path))?;
        }
        match &self.problem {
            ParamProblem::Unknown { known, suggestion } => write!(
                f,
                "is not a parameter of `{name}`{}; its parameters are: {}",
                crate::suggest::hint(suggestion.as_deref()),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
            ParamProblem::Missing { help } if help.is_empty() => f.write_str("is required"),
            ParamProblem::Missing { help } => write!(f, "is required: {help}"),
            ParamProblem::Repeated => f.write_str("is given twice; it takes one value"),
            ParamProblem::NotOfType { value, expected } => {
                write!(f, "has value `{value}`, which is not {expected}")
            }
            ParamProblem::NotAList { value } => write!(
                f,
                "is not usable: `{value}` is not a list; write a JSON array such as [\"a\", \"b,c\"], or items separated by commas"
            ),
            ParamProblem::Unusable { reason } => write!(f, "is not usable: {reason}"),
            ParamProblem::Invalid { message } => f.write_str(message),
        }
    }
}

/// No entry of the catalog has that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no built-in {kind} is called `{name}`{}", crate::suggest::hint(suggestion.as_deref()))]
pub struct UnknownName {
    /// Check or probe.
    pub kind: EntryKind,
    /// The name asked for.
    pub name: String,
    /// The nearest name, if one is close.
    pub suggestion: Option<String>,
}

/// A check or probe could not be built from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The name is not in the catalog.
    #[error(transparent)]
    Unknown(#[from] UnknownName),
    /// A parameter is wrong.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

/// A word that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// No `=` in it.
    #[error("`{word}` is not KEY=VALUE")]
    NoEquals {
        /// The word.
        word: String,
    },
    /// Nothing before the `=`.
    #[error("`{word}` has an empty key")]
    EmptyKey {
        /// The word.
        word: String,
    },
}
