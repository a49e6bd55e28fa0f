//! The smoke suite as data: requests and what their responses must show,
//! loadable from TOML or JSON, with `{{variables}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A smoke suite: the requests to send and what each response must show.
///
/// ```toml
/// name = "escola"
/// allow_writes = false
///
/// [[requests]]
/// name = "health"
/// path = "/health"
/// expect = [{ status = 200 }, { json_equals = { pointer = "/status", value = "ok" } }]
///
/// [[requests]]
/// name = "escolas"
/// path = "{{baseUrl}}/v1/escolas"
/// headers = { Accept = "application/json" }
/// expect = [{ status = 200 }, { json_exists = "/data/0/id" }, { max_latency_ms = 2000 }]
///
/// [if_match]
/// path = "/v1/escolas/1"
/// refused_writes = true
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Name shown in reports.
    pub name: String,
    /// Values for `{{name}}` placeholders; `--var` and the base URL
    /// (`baseUrl`) override them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Whether the suite may change data. Only the `If-Match` round trip
    /// writes, and only to [`IfMatchTest::scratch_path`]; a suite that
    /// allows writes is a mutating check (dry-run skips it). The writes of
    /// [`IfMatchTest::refused_writes`] need no permission: they change
    /// nothing, even when wrongly accepted.
    #[serde(default)]
    pub allow_writes: bool,
    /// Every error response (4xx/5xx) must carry the trace header: the
    /// runbook's glossary promises it "inclusive em erros 5xx".
    #[serde(default = "yes")]
    pub trace_id_on_errors: bool,
    /// The trace header's name.
    #[serde(default = "trace_header")]
    pub trace_id_header: String,
    /// The requests, sent concurrently up to the concurrency limit; one at
    /// a time, in order, when any of them captures a variable.
    #[serde(default)]
    pub requests: Vec<Request>,
    /// The `If-Match` round trip, run after the requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<IfMatchTest>,
}

fn yes() -> bool {
    true
}

fn trace_header() -> String {
    "Trace-Id".into()
}

fn get() -> String {
    "GET".into()
}

/// One request and its expectations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Name shown in reports.
    pub name: String,
    /// Folders it sits in (from a Postman collection), outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folder: Vec<String>,
    /// HTTP method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// A path joined to the base URL (`/v1/escolas`), or an absolute URL
    /// (`{{baseUrl}}/v1/escolas`).
    pub path: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// A raw body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A JSON body (sets `Content-Type: application/json` unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// What the response must show.
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Values of its JSON body kept as `{{variables}}` for the requests
    /// after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture: Vec<Capture>,
}

/// A value of a response's JSON body kept as a `{{variable}}` for the
/// requests after it, as Postman's `pm.environment.set("id",
/// json.data[0].id)` does: `capture = [{ variable = "id", pointer =
/// "/data/0/id" }]`. Nothing there (or `null`) fails the request, and a
/// later request that uses the variable is not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// The variable; it overrides a value the suite or `--var` gave.
    pub variable: String,
    /// Where in the body: a JSON pointer (`/data/0/id`) or a simple path
    /// (`data.0.id`). A string is kept as it is, another value as JSON.
    pub pointer: String,
}

/// A request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Name.
    pub name: String,
    /// Value (may hold `{{variables}}`).
    pub value: String,
}

impl Request {
    /// A GET of `path` with no expectations yet.
    pub fn get(name: impl Into<String>, path: impl Into<String>) -> Self {
        Request {
            name: name.into(),
            folder: Vec::new(),
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
            json: None,
            expect: Vec::new(),
            capture: Vec::new(),
        }
    }

    /// Adds an expectation.
    pub fn expect(mut self, e: Expect) -> Self {
        self.expect.push(e);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// `folder / name`, for reports.
    pub fn display_name(&self) -> String {
        self.folder
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.name.as_str()))
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// Something a response must show. In TOML each is a one-key table:
/// `{ status = 200 }`, `{ header_equals = { name = "..", value = ".." } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expect {
    /// This status code.
    Status(u16),
    /// One of these status codes.
    StatusIn(Vec<u16>),
    /// This header is present (any value).
    HeaderPresent(String),
    /// This header has exactly this value.
    HeaderEquals {
        /// Header name.
        name: String,
        /// Expected value.
        value: String,
    },
    /// The JSON body has this value at a JSON pointer (`/data/0/id`) or a
    /// simple path (`data.0.id`, `$.data[0].id`).
    JsonEquals {
        /// Where.
        pointer: String,
        /// What.
        value: serde_json::Value,
    },
    /// The JSON body has something at this pointer or path.
    JsonExists(String),
    /// The number there lies within the bounds.
    JsonNumber(Bounds),
    /// The length there (an array's items, a string's characters, an
    /// object's keys) lies within the bounds.
    JsonLength(Bounds),
    /// The value there is of this JSON type.
    JsonType {
        /// Where.
        pointer: String,
        /// `array`, `object`, `string`, `number`, `boolean` or `null`.
        is: JsonKind,
    },
    /// The string there contains this text, or the array there holds this
    /// value.
    JsonIncludes {
        /// Where.
        pointer: String,
        /// What.
        value: serde_json::Value,
    },
    /// The value there is one of these.
    JsonOneOf {
        /// Where.
        pointer: String,
        /// The values allowed.
        values: Vec<serde_json::Value>,
    },
    /// The response came within this many milliseconds.
    MaxLatencyMs(u64),
    /// An assertion that could not be translated (a Postman script line): it
    /// is reported as not evaluated, never as passed.
    NotEvaluated {
        /// The test's name.
        name: String,
        /// The script text that was not translated.
        script: String,
    },
}

impl Expect {
    /// What the expectation says, for reports: "status 200".
    pub fn describe(&self) -> String {
        match self {
            Expect::Status(s) => format!("status {s}"),
            Expect::StatusIn(s) => format!(
                "status one of {}",
                s.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
            Expect::HeaderPresent(h) => format!("header {h} present"),
            Expect::HeaderEquals { name, value } => format!("header {name}: {value}"),
            Expect::JsonEquals { pointer, value } => format!("JSON {pointer} = {value}"),
            Expect::JsonExists(p) => format!("JSON {p} exists"),
            Expect::JsonNumber(b) => format!("JSON {} {}", b.pointer, b.describe()),
            Expect::JsonLength(b) => format!("JSON {} length {}", b.pointer, b.describe()),
            Expect::JsonType { pointer, is } => format!("JSON {pointer} is {}", is.name()),
            Expect::JsonIncludes { pointer, value } => format!("JSON {pointer} includes {value}"),
            Expect::JsonOneOf { pointer, values } => format!(
                "JSON {pointer} one of {}",
                serde_json::Value::Array(values.clone())
            ),
            Expect::MaxLatencyMs(ms) => format!("latency below {ms}ms"),
            Expect::NotEvaluated { name, .. } => name.clone(),
        }
    }
}

/// Where a figure in the JSON body is, and the bounds it must lie within
/// (at least one): `{ pointer = "/data", above = 0 }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// A JSON pointer (`/data`) or a simple path (`data`).
    pub pointer: String,
    /// More than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// This or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// Less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// This or less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
}

impl Bounds {
    /// Whether `x` lies within every bound given.
    pub fn admit(&self, x: f64) -> bool {
        self.above.is_none_or(|b| x > b)
            && self.at_least.is_none_or(|b| x >= b)
            && self.below.is_none_or(|b| x < b)
            && self.at_most.is_none_or(|b| x <= b)
    }

    /// `> 0, <= 10`; `= 3` when both inclusive bounds are that figure.
    pub fn describe(&self) -> String {
        if let (Some(a), Some(b)) = (self.at_least, self.at_most)
            && a == b
            && self.above.is_none()
            && self.below.is_none()
        {
            return format!("= {a}");
        }
        let parts: Vec<String> = [
            (">", self.above),
            (">=", self.at_least),
            ("<", self.below),
            ("<=", self.at_most),
        ]
        .iter()
        .filter_map(|(op, b)| b.map(|b| format!("{op} {b}")))
        .collect();
        match parts.is_empty() {
            true => "within no bounds (give above, at_least, below or at_most)".into(),
            false => parts.join(", "),
        }
    }
}

/// A JSON value's type, as Chai's `to.be.a("array")` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonKind {
    /// `[...]`.
    Array,
    /// `{...}`.
    Object,
    /// `"..."`.
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
}

impl JsonKind {
    /// The kind of `value`.
    pub fn of(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Array(_) => JsonKind::Array,
            serde_json::Value::Object(_) => JsonKind::Object,
            serde_json::Value::String(_) => JsonKind::String,
            serde_json::Value::Number(_) => JsonKind::Number,
            serde_json::Value::Bool(_) => JsonKind::Boolean,
            serde_json::Value::Null => JsonKind::Null,
        }
    }

    /// `array`, `object`, ...
    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Array => "array",
            JsonKind::Object => "object",
            JsonKind::String => "string",
            JsonKind::Number => "number",
            JsonKind::Boolean => "boolean",
            JsonKind::Null => "null",
        }
    }
}

/// The `If-Match` round trip the mobile sync relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IfMatchTest {
    /// A resource to read (read-only part): its `ETag` must be present and
    /// stable across two reads.
    pub path: String,
    /// Also send `path` the two writes a correct API refuses: a `PUT` with a
    /// stale `If-Match` must get 412 Precondition Failed, one without
    /// `If-Match` 428 Precondition Required. Each carries the body of the
    /// last read unchanged (`Content-Type: application/json`), so an API
    /// that wrongly accepts them stores the content it already holds. Needs
    /// no [`Suite::allow_writes`]; the body must be JSON and read whole, or
    /// nothing is sent.
    #[serde(default)]
    pub refused_writes: bool,
    /// The scratch resource the write part uses, and the only one written:
    /// a PUT with a stale tag must get 412, one without a tag 428, and one
    /// with the current tag must succeed. Runs only when the suite allows
    /// writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_path: Option<String>,
}

/// A suite file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file could not be read.
    #[error("cannot read smoke suite {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid suite.
    #[error("smoke suite {path} is not valid {format}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// "TOML" or "JSON".
        format: &'static str,
        /// The parser's message, with the line.
        message: String,
    },
}

impl Suite {
    /// Reads a suite from a `.toml` or `.json` file (by extension; other
    /// names are tried as TOML).
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
            path: path.to_owned(),
            source,
        })?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            serde_json::from_str(&text).map_err(|e| SuiteError::Parse {
                path: path.to_owned(),
                format: "JSON",
                message: e.to_string(),
            })
        } else {
            toml::from_str(&text).map_err(|e| SuiteError::Parse {
                path: path.to_owned(),
                format: "TOML",
                message: e.to_string(),
            })
        }
    }

    /// Every expectation that is a [`Expect::NotEvaluated`], with its
    /// request's name.
    pub fn not_evaluated(&self) -> impl Iterator<Item = (&Request, &str)> {
        self.requests.iter().flat_map(|r| {
            r.expect.iter().filter_map(move |e| match e {
                Expect::NotEvaluated { name, .. } => Some((r, name.as_str())),
                _ => None,
            })
        })
    }
}

impl Suite {
    /// Every `{{name}}` the requests use (URLs, headers, bodies), so a
    /// caller can supply secrets for exactly those.
    pub fn placeholders(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut scan = |text: &str| {
            out.extend(placeholders(text).map(|(_, name, _)| name.to_owned()));
        };
        let paths = self
            .if_match
            .iter()
            .flat_map(|t| std::iter::once(&t.path).chain(&t.scratch_path));
        for p in paths {
            scan(p);
        }
        for r in &self.requests {
            scan(&r.path);
            for h in &r.headers {
                scan(&h.value);
            }
            if let Some(b) = &r.body {
                scan(b);
            }
            if let Some(j) = &r.json {
                scan(&j.to_string());
            }
        }
        out
    }
}

/// A `{{name}}` placeholder with no value: the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{{{{{0}}}}}` is not defined")]
pub(crate) struct Undefined(pub(crate) String);

/// `{{name}}` placeholders replaced from `vars`; the first undefined name is
/// the error.
pub(crate) fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, Undefined> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, name, end) in placeholders(text) {
        let value = vars.get(name).ok_or_else(|| Undefined(name.to_owned()))?;
        out.push_str(&text[copied..start]);
        out.push_str(value);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// Each `{{name}}` in `text`: (byte offset of `{{`, trimmed name, offset
/// after `}}`).
fn placeholders(text: &str) -> impl Iterator<Item = (usize, &str, usize)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let start = from + text[from..].find("{{")?;
        let len = text[start + 2..].find("}}")?;
        let end = start + 2 + len + 2;
        from = end;
        Some((start, text[start + 2..start + 2 + len].trim(), end))
    })
}

/// A JSON pointer from a pointer (`/a/0`) or a simple path (`a.0`,
/// `$.a[0]`).
pub(crate) fn to_pointer(path: &str) -> String {
    if path.is_empty() || path.starts_with('/') {
        return path.to_owned();
    }
    let path = path.strip_prefix('$').unwrap_or(path);
    let path = path.strip_prefix('.').unwrap_or(path);
    let mut out = String::new();
    for part in path.replace('[', ".").replace(']', "").split('.') {
        if part.is_empty() {
            continue;
        }
        out.push('/');
        out.push_str(&pointer_segment(part));
    }
    out
}

/// `key` as one segment of a JSON pointer (RFC 6901: `~` and `/` escaped).
pub(crate) fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_file_captures_and_bounds_figures_and_lengths() {
        let suite: Suite = toml::from_str(
            r#"
name = "chain"
[[requests]]
name = "list"
path = "/v1/escolas"
expect = [
  { json_length = { pointer = "/data", above = 0 } },
  { json_number = { pointer = "/total", at_least = 1, at_most = 1 } },
  { json_type = { pointer = "/data", is = "array" } },
]
capture = [{ variable = "id", pointer = "data.0.id" }]
"#,
        )
        .unwrap();
        let r = &suite.requests[0];
        assert_eq!(
            r.capture,
            [Capture {
                variable: "id".into(),
                pointer: "data.0.id".into()
            }]
        );
        let Expect::JsonLength(b) = &r.expect[0] else {
            panic!("{r:?}")
        };
        assert!(!b.admit(0.0) && b.admit(1.0));
        assert_eq!(b.describe(), "> 0");
        let Expect::JsonNumber(b) = &r.expect[1] else {
            panic!("{r:?}")
        };
        assert_eq!(b.describe(), "= 1");
        assert!(b.admit(1.0) && !b.admit(1.5) && !b.admit(0.5));
        assert_eq!(r.expect[2].describe(), "JSON /data is array");
        // A bound's name misspelt is refused, not ignored.
        let bad = toml::from_str::<Suite>(
            "name = \"x\"\n[[requests]]\nname = \"a\"\npath = \"/\"\nexpect = [{ json_number = { pointer = \"/t\", abov = 1 } }]\n",
        );
        assert!(bad.unwrap_err().to_string().contains("abov"));
    }

    #[test]
    fn variables_are_substituted_and_undefined_ones_named() {
        let vars = BTreeMap::from([("baseUrl".to_owned(), "http://x".to_owned())]);
        assert_eq!(
            substitute("{{baseUrl}}/v1/{{ baseUrl }}", &vars).unwrap(),
            "http://x/v1/http://x"
        );
        assert_eq!(substitute("no vars {{", &vars).unwrap(), "no vars {{");
        assert_eq!(
            substitute("{{token}}", &vars).unwrap_err(),
            Undefined("token".into())
        );
    }

    #[test]
    fn paths_become_pointers() {
        assert_eq!(to_pointer("/data/0/id"), "/data/0/id");
        assert_eq!(to_pointer("data.0.id"), "/data/0/id");
        assert_eq!(to_pointer("$.data[0].id"), "/data/0/id");
    }

    #[test]
    fn toml_and_json_files_load_the_same_suite() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("s.toml");
        std::fs::write(
            &toml_path,
            r#"
name = "escola"
[[requests]]
name = "health"
path = "/health"
expect = [{ status = 200 }, { json_equals = { pointer = "/status", value = "ok" } }, { max_latency_ms = 500 }]
[[requests]]
name = "put"
method = "PUT"
path = "{{baseUrl}}/v1/escolas/9000"
headers = [{ name = "If-Match", value = "\"v1\"" }]
json = { nome = "x" }
expect = [{ status_in = [200, 412] }, { header_equals = { name = "Content-Type", value = "application/json" } }]
[if_match]
path = "/v1/escolas/1"
refused_writes = true
"#,
        )
        .unwrap();
        let suite = Suite::load(&toml_path).unwrap();
        assert_eq!(suite.requests.len(), 2);
        assert_eq!(suite.requests[0].method, "GET");
        assert!(suite.trace_id_on_errors);
        assert_eq!(
            suite.requests[1].expect[0],
            Expect::StatusIn(vec![200, 412])
        );
        assert!(suite.if_match.as_ref().is_some_and(|t| t.refused_writes));
        let json_path = dir.path().join("s.json");
        std::fs::write(&json_path, serde_json::to_string(&suite).unwrap()).unwrap();
        assert_eq!(Suite::load(&json_path).unwrap(), suite);
    }

    #[test]
    fn a_bad_file_is_named_with_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "name = \"x\"\n[[requests]]\nname = \"a\"\npath = \"/\"\nexpect = [{ stauts = 200 }]\n",
        )
        .unwrap();
        let err = Suite::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("stauts"), "{err}");
        let err = Suite::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read smoke suite"), "{err}");
    }
}
