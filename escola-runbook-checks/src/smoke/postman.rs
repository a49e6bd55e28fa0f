//! Postman Collection v2.1 import: teams already keep their smoke tests
//! there (the runbook says Postman/Newman).
//!
//! Imported: folders (nested), collection variables (`{{baseUrl}}` is
//! overridden by the base URL and by `--var`), method, URL in both forms
//! (string, or object with `raw` or host/path/query parts and `:path`
//! variables), headers (disabled ones left out), raw and urlencoded bodies,
//! Bearer auth (inherited from folders and the collection), and these test
//! assertions:
//!
//! - `pm.response.to.have.status(N)`
//! - `pm.response.to.have.header("Name")` and `...header("Name", "value")`
//! - `pm.expect(pm.response.code).to.be.oneOf([...])` (and `.to.equal(N)`,
//!   `.to.eql(N)`)
//! - `pm.expect(pm.response.responseTime).to.be.below(N)`
//!
//! Anything else (another script line, a pre-request script, a body mode or
//! an auth type not listed) becomes an [`Expect::NotEvaluated`] named after
//! its `pm.test` (or the line itself): reported, never passed. A `pm.test`
//! with any line that cannot be translated is not evaluated as a whole.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::suite::{
    Bounds, Capture, Expect, Header, JsonKind, Request, Suite, pointer_segment, to_pointer,
};

/// A collection could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum PostmanError {
    /// The file could not be read.
    #[error("cannot read Postman collection {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON, or not shaped like a collection.
    #[error("{source_name} is not a Postman collection: {message}")]
    Invalid {
        /// The file (or "input").
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// An environment file could not be read.
    #[error("cannot read Postman environment {path}: {source}")]
    ReadEnvironment {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON, or not shaped like an environment (or globals) export.
    #[error(
        "{path} is not a Postman environment: {message}; export one with Postman: Environments > ... > Export"
    )]
    InvalidEnvironment {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A v1 collection (or another schema).
    #[error(
        "{source_name} uses schema {schema}; export the collection as v2.1 (Postman: Export > Collection v2.1)"
    )]
    Schema {
        /// The file (or "input").
        source_name: String,
        /// The schema URL found.
        schema: String,
    },
}

/// Reads and imports a collection file.
pub fn load(path: &Path) -> Result<Suite, PostmanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PostmanError::Read {
        path: path.to_owned(),
        source,
    })?;
    import_named(&text, &path.display().to_string())
}

/// A value of a Postman environment (or globals) export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentValue {
    /// The `{{variable}}` it gives.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Postman's type `secret`: to be masked wherever it shows.
    pub secret: bool,
}

/// Reads a Postman environment export (Newman's `--environment`; a
/// globals export has the same shape): its values, those not `enabled`
/// left out.
pub fn load_environment(path: &Path) -> Result<Vec<EnvironmentValue>, PostmanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PostmanError::ReadEnvironment {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| PostmanError::InvalidEnvironment {
        path: path.to_owned(),
        message,
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if doc.get("item").is_some() {
        return Err(invalid("it is a collection".into()));
    }
    let values = doc
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("it has no `values` array".into()))?;
    Ok(values
        .iter()
        .filter(|v| v.get("enabled").and_then(Value::as_bool) != Some(false))
        .filter_map(|v| {
            Some(EnvironmentValue {
                key: v.get("key")?.as_str()?.to_owned(),
                value: text_of(v.get("value")),
                secret: v.get("type").and_then(Value::as_str) == Some("secret"),
            })
        })
        .collect())
}

/// Imports a collection from its JSON text.
pub fn import(json: &str) -> Result<Suite, PostmanError> {
    import_named(json, "input")
}

fn import_named(json: &str, source_name: &str) -> Result<Suite, PostmanError> {
    let invalid = |message: String| PostmanError::Invalid {
        source_name: source_name.to_owned(),
        message,
    };
    let doc: Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let info = doc
        .get("info")
        .ok_or_else(|| invalid("it has no `info` object".into()))?;
    if let Some(schema) = info.get("schema").and_then(Value::as_str) {
        if !schema.contains("/v2.") {
            return Err(PostmanError::Schema {
                source_name: source_name.to_owned(),
                schema: schema.to_owned(),
            });
        }
    }
    let items = doc
        .get("item")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("it has no `item` array".into()))?;
    let mut variables = BTreeMap::new();
    for v in enabled(&doc, "variable") {
        if let Some(key) = v.get("key").and_then(Value::as_str) {
            variables.insert(key.to_owned(), text_of(v.get("value")));
        }
    }
    let root = Scope {
        folder: Vec::new(),
        tests: scripts(&doc, "test"),
        prerequests: scripts(&doc, "prerequest"),
        auth: doc.get("auth").cloned(),
    };
    let mut requests = Vec::new();
    walk(items, &root, &mut requests);
    Ok(Suite {
        name: info
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("postman collection")
            .to_owned(),
        variables,
        allow_writes: false,
        trace_id_on_errors: true,
        trace_id_header: "Trace-Id".into(),
        requests,
        if_match: None,
    })
}

/// What a folder passes down to its items.
#[derive(Clone)]
struct Scope {
    folder: Vec<String>,
    tests: Vec<(String, Vec<String>)>,
    prerequests: Vec<(String, Vec<String>)>,
    auth: Option<Value>,
}

/// The entries of array `key` of `node` that are not `"disabled": true`
/// (variables, headers, query parameters, form fields, events).
fn enabled<'a>(node: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    node.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("disabled").and_then(Value::as_bool) != Some(true))
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The scripts of `listen` kind on a node, each with the node's name.
fn scripts(node: &Value, listen: &str) -> Vec<(String, Vec<String>)> {
    let owner = node
        .get("name")
        .or_else(|| node.get("info").and_then(|i| i.get("name")))
        .and_then(Value::as_str)
        .unwrap_or("collection")
        .to_owned();
    enabled(node, "event")
        .filter(|e| e.get("listen").and_then(Value::as_str) == Some(listen))
        .filter_map(|e| e.get("script")?.get("exec"))
        .map(|exec| {
            let lines = match exec {
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .flat_map(str::lines)
                    .map(str::to_owned)
                    .collect(),
                Value::String(s) => s.lines().map(str::to_owned).collect(),
                _ => Vec::new(),
            };
            (owner.clone(), lines)
        })
        .collect()
}

fn walk(items: &[Value], scope: &Scope, out: &mut Vec<Request>) {
    for item in items {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        let mut inner = scope.clone();
        inner.tests.extend(scripts(item, "test"));
        inner.prerequests.extend(scripts(item, "prerequest"));
        if let Some(auth) = item.get("auth").filter(|a| !a.is_null()) {
            inner.auth = Some(auth.clone());
        }
        if let Some(children) = item.get("item").and_then(Value::as_array) {
            inner.folder.push(name);
            walk(children, &inner, out);
        } else if let Some(req) = item.get("request") {
            if let Some(auth) = req.get("auth").filter(|a| !a.is_null()) {
                inner.auth = Some(auth.clone());
            }
            out.push(request(name, req, &inner));
        }
    }
}

fn request(name: String, req: &Value, scope: &Scope) -> Request {
    let mut r = Request::get(name, "");
    r.folder = scope.folder.clone();
    let (method, url) = match req {
        Value::String(url) => ("GET".to_owned(), url.clone()),
        _ => (
            req.get("method")
                .and_then(Value::as_str)
                .unwrap_or("GET")
                .to_owned(),
            url(req.get("url")),
        ),
    };
    r.method = method;
    r.path = url;
    for h in enabled(req, "header") {
        if let Some(key) = h.get("key").and_then(Value::as_str) {
            r.headers.push(Header {
                name: key.to_owned(),
                value: text_of(h.get("value")),
            });
        }
    }
    let has_header =
        |r: &Request, n: &str| r.headers.iter().any(|h| h.name.eq_ignore_ascii_case(n));
    match scope
        .auth
        .as_ref()
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
    {
        None | Some("noauth") => {}
        Some("bearer") => {
            let token = scope
                .auth
                .as_ref()
                .and_then(|a| a.get("bearer"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|kv| kv.get("key").and_then(Value::as_str) == Some("token"))
                .map(|kv| text_of(kv.get("value")))
                .unwrap_or_default();
            if !has_header(&r, "Authorization") {
                r = r.header("Authorization", format!("Bearer {token}"));
            }
        }
        Some(other) => r.expect.push(Expect::NotEvaluated {
            name: format!("auth type `{other}`"),
            script: format!("auth `{other}` is not imported: the request is sent without it"),
        }),
    }
    if let Some(body) = req.get("body").filter(|b| !b.is_null()) {
        match body.get("mode").and_then(Value::as_str) {
            Some("raw") => {
                let raw = text_of(body.get("raw"));
                let language = body
                    .get("options")
                    .and_then(|o| o.get("raw"))
                    .and_then(|o| o.get("language"))
                    .and_then(Value::as_str);
                if language == Some("json") && !has_header(&r, "Content-Type") {
                    r = r.header("Content-Type", "application/json");
                }
                if !raw.is_empty() {
                    r.body = Some(raw);
                }
            }
            Some("urlencoded") => {
                let pairs: Vec<String> = enabled(body, "urlencoded")
                    .map(|kv| {
                        format!(
                            "{}={}",
                            form_encode(&text_of(kv.get("key"))),
                            form_encode(&text_of(kv.get("value")))
                        )
                    })
                    .collect();
                if !has_header(&r, "Content-Type") {
                    r = r.header("Content-Type", "application/x-www-form-urlencoded");
                }
                r.body = Some(pairs.join("&"));
            }
            Some(mode) => r.expect.push(Expect::NotEvaluated {
                name: format!("body mode `{mode}`"),
                script: format!(
                    "body mode `{mode}` is not imported: the request is sent without a body"
                ),
            }),
            None => {}
        }
    }
    for (owner, lines) in &scope.prerequests {
        if lines.iter().any(|l| is_code(l)) {
            r.expect.push(Expect::NotEvaluated {
                name: format!("pre-request script of `{owner}`"),
                script: lines.join("\n"),
            });
        }
    }
    for (_, lines) in &scope.tests {
        let said = translate(lines);
        r.expect.extend(said.expect);
        r.capture.extend(said.capture);
    }
    r
}

fn is_code(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with("//")
}

fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The URL as text with `{{variables}}` left in, from either form.
fn url(v: Option<&Value>) -> String {
    let obj = match v {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => return s.clone(),
        Some(obj) => obj,
    };
    let mut text = match obj.get("raw").and_then(Value::as_str) {
        Some(raw) => raw.to_owned(),
        None => {
            let join = |key: &str, sep: &str| match obj.get(key) {
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => s.clone(),
                        other => text_of(other.get("value")),
                    })
                    .collect::<Vec<_>>()
                    .join(sep),
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            };
            let mut t = String::new();
            if let Some(p) = obj.get("protocol").and_then(Value::as_str) {
                t.push_str(p);
                t.push_str("://");
            }
            t.push_str(&join("host", "."));
            if let Some(port) = obj
                .get("port")
                .map(|p| text_of(Some(p)))
                .filter(|p| !p.is_empty())
            {
                t.push(':');
                t.push_str(&port);
            }
            let path = join("path", "/");
            if !path.is_empty() {
                t.push('/');
                t.push_str(path.trim_start_matches('/'));
            }
            let query: Vec<String> = enabled(obj, "query")
                .map(|q| match q.get("value") {
                    Some(v) if !v.is_null() => {
                        format!("{}={}", text_of(q.get("key")), text_of(Some(v)))
                    }
                    _ => text_of(q.get("key")),
                })
                .collect();
            if !query.is_empty() {
                t.push('?');
                t.push_str(&query.join("&"));
            }
            t
        }
    };
    // `:id` path variables.
    for var in obj
        .get("variable")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(key) = var.get("key").and_then(Value::as_str) {
            let value = text_of(var.get("value"));
            text = replace_path_var(&text, key, &value);
        }
    }
    text
}

fn replace_path_var(url: &str, key: &str, value: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let needle = format!(":{key}");
    let replaced: Vec<&str> = path
        .split('/')
        .map(|seg| if seg == needle { value } else { seg })
        .collect();
    let mut out = replaced.join("/");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// What a test script says: the expectations, and the variables it sets
/// from the body for the requests after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    /// The assertions; what could not be translated is
    /// [`Expect::NotEvaluated`].
    pub expect: Vec<Expect>,
    /// `pm.environment.set("id", json.data[0].id)` and its kin.
    pub capture: Vec<Capture>,
}

/// What one statement of a script says.
enum Said {
    Expect(Expect),
    Capture(Capture),
    /// `const json = pm.response.json().data;`: a name for a place in the
    /// body, used by the statements after it.
    Alias(String, String),
}

/// The names a script gave to places in the body, and what it says.
#[derive(Default)]
struct Script {
    aliases: HashMap<String, String>,
    out: Translated,
}

impl Script {
    /// Translates one statement; `None` if it is not one of the forms.
    fn statement(&self, line: &str) -> Option<Said> {
        statement(line, &self.aliases)
    }

    fn keep(&mut self, said: Said) {
        match said {
            Said::Expect(e) => self.out.expect.push(e),
            Said::Capture(c) => self.out.capture.push(c),
            Said::Alias(name, pointer) => {
                self.aliases.insert(name, pointer);
            }
        }
    }
}

/// Translates a test script into expectations and captures; what cannot be
/// translated becomes [`Expect::NotEvaluated`].
pub fn translate(lines: &[String]) -> Translated {
    let mut script = Script::default();
    // (test name, translated, untranslated lines, all lines)
    let mut open: Option<(String, Vec<Said>, bool, Vec<String>)> = None;
    for raw in lines {
        let line = raw.trim();
        if !is_code(line) {
            continue;
        }
        if let Some((name, rest)) = pm_test_open(line) {
            let rest = rest.trim();
            if rest.ends_with('{') {
                open = Some((name, Vec::new(), false, vec![line.to_owned()]));
                continue;
            }
            // A one-line test: `pm.test("n", () => <stmt>);` or with braces.
            let body = rest
                .split_once("=>")
                .map(|(_, b)| b)
                .or_else(|| rest.split_once('{').map(|(_, b)| b))
                .unwrap_or("");
            // Drop the `);` that closes pm.test, then the braces, if any.
            let body = body.trim().trim_end_matches(';').trim_end();
            let body = body.strip_suffix(')').unwrap_or(body).trim();
            let body = body.strip_prefix('{').unwrap_or(body);
            let body = body.strip_suffix('}').unwrap_or(body);
            let mut said = Vec::new();
            let mut bad = false;
            for stmt in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                match script.statement(stmt) {
                    // An alias holds for the statements after it.
                    Some(Said::Alias(n, p)) => script.keep(Said::Alias(n, p)),
                    Some(other) => said.push(other),
                    None => bad = true,
                }
            }
            script.close_test(name, said, bad, line.to_owned());
            continue;
        }
        if let Some((_, said, bad, text)) = open.as_mut() {
            text.push(line.to_owned());
            if is_block_end(line) {
                if let Some((name, said, bad, text)) = open.take() {
                    script.close_test(name, said, bad, text.join("\n"));
                }
                continue;
            }
            match script.statement(line) {
                Some(Said::Alias(n, p)) => script.keep(Said::Alias(n, p)),
                Some(other) => said.push(other),
                None => *bad = true,
            }
            continue;
        }
        match script.statement(line) {
            Some(said) => script.keep(said),
            None => script.out.expect.push(Expect::NotEvaluated {
                name: format!("script line `{line}`"),
                script: line.to_owned(),
            }),
        }
    }
    if let Some((name, _, _, text)) = open {
        script.out.expect.push(Expect::NotEvaluated {
            name,
            script: format!("{}\n(unterminated)", text.join("\n")),
        });
    }
    script.out
}

impl Script {
    /// A `pm.test` block ends: all it says, or, if any line of it could
    /// not be translated (or it asserts nothing), the whole test as not
    /// evaluated.
    fn close_test(&mut self, name: String, said: Vec<Said>, bad: bool, text: String) {
        let asserts = said.iter().any(|s| matches!(s, Said::Expect(_)));
        if bad || !asserts {
            self.out
                .expect
                .push(Expect::NotEvaluated { name, script: text });
            // A capture inside a test that is not evaluated still happens
            // in Postman; keep it.
            for s in said {
                if let Said::Capture(c) = s {
                    self.out.capture.push(c);
                }
            }
        } else {
            for s in said {
                self.keep(s);
            }
        }
    }
}

fn is_block_end(line: &str) -> bool {
    matches!(line.replace(' ', "").as_str(), "});" | "})" | "}" | "};")
}

/// `pm.test("name", function () {` -> ("name", "function () {").
fn pm_test_open(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix("pm.test(")?.trim_start();
    let (name, rest) = quoted(rest)?;
    let rest = rest.trim_start().strip_prefix(',')?;
    Some((name, rest))
}

/// A leading quoted string and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let quote = text
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\'' | '`'))?;
    let mut out = String::new();
    let mut chars = text[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            c if c == quote => return Some((out, &text[1 + i + 1..])),
            c => out.push(c),
        }
    }
    None
}

fn call_arg<'a>(stmt: &'a str, prefix: &str) -> Option<&'a str> {
    stmt.strip_prefix(prefix)?.strip_suffix(')').map(str::trim)
}

/// One statement -> what it says, or `None` if not one of the forms.
fn statement(line: &str, aliases: &HashMap<String, String>) -> Option<Said> {
    let stmt = line.trim().trim_end_matches(';').trim();
    if let Some(said) = declaration(stmt, aliases).or_else(|| setter(stmt, aliases)) {
        return Some(said);
    }
    response_assertion(stmt)
        .or_else(|| body_assertion(stmt, aliases))
        .map(Said::Expect)
}

/// `pm.response.to...` and `pm.expect(pm.response.code|responseTime)...`.
fn response_assertion(stmt: &str) -> Option<Expect> {
    if let Some(arg) = call_arg(stmt, "pm.response.to.have.status(") {
        return arg.parse().ok().map(Expect::Status);
    }
    if let Some(args) = call_arg(stmt, "pm.response.to.have.header(") {
        let (name, rest) = quoted(args)?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Some(Expect::HeaderPresent(name));
        }
        let (value, tail) = quoted(rest.strip_prefix(',')?.trim_start())?;
        return tail
            .trim()
            .is_empty()
            .then_some(Expect::HeaderEquals { name, value });
    }
    let compact: String = stmt.chars().filter(|c| !c.is_whitespace()).collect();
    match compact.as_str() {
        // Postman's `ok` is exactly 200.
        "pm.response.to.be.ok" => return Some(Expect::Status(200)),
        "pm.response.to.be.json" | "pm.response.to.have.jsonBody()" => {
            return Some(Expect::JsonExists(String::new()));
        }
        _ => {}
    }
    if let Some(arg) = call_arg(stmt, "pm.response.to.have.jsonBody(") {
        let (path, tail) = quoted(arg)?;
        return tail
            .trim()
            .is_empty()
            .then(|| Expect::JsonExists(to_pointer(&path)));
    }
    if let Some(arg) = compact.strip_prefix("pm.expect(pm.response.code).to.be.oneOf([") {
        let list = arg.strip_suffix("])")?;
        let codes: Option<Vec<u16>> = list.split(',').map(|c| c.parse().ok()).collect();
        return codes.filter(|c| !c.is_empty()).map(Expect::StatusIn);
    }
    for prefix in [
        "pm.expect(pm.response.code).to.equal(",
        "pm.expect(pm.response.code).to.eql(",
        "pm.expect(pm.response.code).to.be.equal(",
    ] {
        if let Some(arg) = call_arg(&compact, prefix) {
            return arg.parse().ok().map(Expect::Status);
        }
    }
    for prefix in [
        "pm.expect(pm.response.responseTime).to.be.below(",
        "pm.expect(pm.response.responseTime).to.be.lessThan(",
    ] {
        if let Some(arg) = call_arg(&compact, prefix) {
            return arg.parse().ok().map(Expect::MaxLatencyMs);
        }
    }
    None
}

/// `var json = pm.response.json();` (or `let`, `const`, and a path after
/// it): a name for a place in the body.
fn declaration(stmt: &str, aliases: &HashMap<String, String>) -> Option<Said> {
    let rest = ["var ", "let ", "const "]
        .iter()
        .find_map(|k| stmt.strip_prefix(k))?;
    let (name, expr) = rest.split_once('=')?;
    let name = name.trim();
    if !is_identifier(name) {
        return None;
    }
    let pointer = body_path(expr.trim(), aliases)?;
    Some(Said::Alias(name.to_owned(), pointer))
}

/// `pm.environment.set("id", json.data[0].id)`, also of
/// `collectionVariables`, `variables` and `globals`.
fn setter(stmt: &str, aliases: &HashMap<String, String>) -> Option<Said> {
    let args = [
        "pm.environment.set(",
        "pm.collectionVariables.set(",
        "pm.variables.set(",
        "pm.globals.set(",
    ]
    .iter()
    .find_map(|p| call_arg(stmt, p))?;
    let (variable, rest) = quoted(args)?;
    let expr = rest.trim_start().strip_prefix(',')?.trim();
    let pointer = body_path(expr, aliases)?;
    Some(Said::Capture(Capture { variable, pointer }))
}

/// `pm.expect(<body path>).to...`: what the body holds there (or, with
/// `.length` after the path, how long it is).
fn body_assertion(stmt: &str, aliases: &HashMap<String, String>) -> Option<Expect> {
    let rest = stmt.strip_prefix("pm.expect(")?;
    let close = closing_paren(rest)?;
    let subject = rest[..close].trim();
    let (pointer, counted) = match body_path(subject, aliases) {
        Some(p) => (p, false),
        None => (body_path(subject.strip_suffix(".length")?, aliases)?, true),
    };
    let chain = rest[close + 1..].trim();
    // The chain's words, without white space (none in a literal yet).
    let (words, arg) = match chain.find('(') {
        Some(at) => {
            let arg = chain[at + 1..].strip_suffix(')')?.trim();
            (&chain[..at], Some(arg))
        }
        None => (chain, None),
    };
    let words: String = words.chars().filter(|c| !c.is_whitespace()).collect();
    let words = words.strip_prefix(".to")?;
    let figure = || {
        arg.and_then(|a| a.parse::<f64>().ok())
            .filter(|f| f.is_finite())
    };
    let bounds = |b: Bounds| match counted {
        true => Expect::JsonLength(b),
        false => Expect::JsonNumber(b),
    };
    let at = |pointer: &str| Bounds {
        pointer: pointer.to_owned(),
        ..Bounds::default()
    };
    let length_of = |n: f64| {
        Expect::JsonLength(Bounds {
            at_least: Some(n),
            at_most: Some(n),
            ..at(&pointer)
        })
    };
    // One bound, set by `set` to the call's figure.
    let one = |set: fn(&mut Bounds, f64)| {
        let mut b = at(&pointer);
        set(&mut b, figure()?);
        Some(bounds(b))
    };
    Some(match (words, arg) {
        (".above" | ".be.above" | ".be.greaterThan" | ".be.gt", Some(_)) => {
            one(|b, f| b.above = Some(f))?
        }
        (".be.at.least" | ".be.least" | ".be.gte", Some(_)) => one(|b, f| b.at_least = Some(f))?,
        (".below" | ".be.below" | ".be.lessThan" | ".be.lt", Some(_)) => {
            one(|b, f| b.below = Some(f))?
        }
        (".be.at.most" | ".be.most" | ".be.lte", Some(_)) => one(|b, f| b.at_most = Some(f))?,
        (".be.within", Some(arg)) => {
            let (low, high) = arg.split_once(',')?;
            let bound = |t: &str| t.trim().parse::<f64>().ok().filter(|f| f.is_finite());
            let (low, high) = (bound(low)?, bound(high)?);
            bounds(Bounds {
                at_least: Some(low),
                at_most: Some(high),
                ..at(&pointer)
            })
        }
        (
            ".eql" | ".equal" | ".eq" | ".be.equal" | ".be.eql" | ".deep.equal" | ".deep.eql"
            | ".deep.eq",
            Some(arg),
        ) => match counted {
            true => length_of(figure()?),
            false => Expect::JsonEquals {
                pointer,
                value: literal(arg)?,
            },
        },
        _ if counted => return None,
        (".have.lengthOf" | ".have.length", Some(_)) => length_of(figure()?),
        (".be.empty", None) => Expect::JsonLength(Bounds {
            at_most: Some(0.0),
            ..at(&pointer)
        }),
        (".not.be.empty", None) => Expect::JsonLength(Bounds {
            at_least: Some(1.0),
            ..at(&pointer)
        }),
        (".be.a" | ".be.an", Some(arg)) => {
            let (name, tail) = quoted(arg)?;
            if !tail.trim().is_empty() {
                return None;
            }
            let is = match name.to_ascii_lowercase().as_str() {
                "array" => JsonKind::Array,
                "object" => JsonKind::Object,
                "string" => JsonKind::String,
                "number" => JsonKind::Number,
                "boolean" => JsonKind::Boolean,
                "null" => JsonKind::Null,
                _ => return None,
            };
            Expect::JsonType { pointer, is }
        }
        (".include" | ".includes" | ".contain" | ".contains", Some(arg)) => Expect::JsonIncludes {
            pointer,
            value: literal(arg)?,
        },
        (".be.oneOf", Some(arg)) => match literal(arg)? {
            serde_json::Value::Array(values) if !values.is_empty() => {
                Expect::JsonOneOf { pointer, values }
            }
            _ => return None,
        },
        (".exist" | ".not.be.undefined" | ".be.not.undefined", None) => Expect::JsonExists(pointer),
        (".be.true", None) => Expect::JsonEquals {
            pointer,
            value: serde_json::Value::Bool(true),
        },
        (".be.false", None) => Expect::JsonEquals {
            pointer,
            value: serde_json::Value::Bool(false),
        },
        (".be.null", None) => Expect::JsonEquals {
            pointer,
            value: serde_json::Value::Null,
        },
        (".have.property", Some(arg)) => {
            let (key, tail) = quoted(arg)?;
            let at = format!("{pointer}/{}", pointer_segment(&key));
            match tail.trim() {
                "" => Expect::JsonExists(at),
                value => Expect::JsonEquals {
                    pointer: at,
                    value: literal(value.strip_prefix(',')?.trim())?,
                },
            }
        }
        _ => return None,
    })
}

/// The JSON pointer of `pm.response.json()` (or the older
/// `JSON.parse(responseBody)`) or an alias, followed by
/// `.key`, `[0]` or `["key"]` steps. `.length` (a count, not a member)
/// and anything computed are not paths.
fn body_path(expr: &str, aliases: &HashMap<String, String>) -> Option<String> {
    let expr = expr.trim();
    let root = ["pm.response.json()", "JSON.parse(responseBody)"]
        .iter()
        .find_map(|r| expr.strip_prefix(r));
    let (mut pointer, mut rest) = match root {
        Some(rest) => (String::new(), rest),
        None => {
            let end = expr.find(|c| !identifier_char(c)).unwrap_or(expr.len());
            (aliases.get(&expr[..end])?.clone(), &expr[end..])
        }
    };
    let mut push = |key: &str| {
        pointer.push('/');
        pointer.push_str(&pointer_segment(key));
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(|c| !identifier_char(c)).unwrap_or(r.len());
            let key = &r[..end];
            if !is_identifier(key) || key == "length" {
                return None;
            }
            push(key);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let (inside, after) = r.split_once(']')?;
            let inside = inside.trim();
            match quoted(inside) {
                Some((key, tail)) if tail.trim().is_empty() => push(&key),
                Some(_) => return None,
                None if !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit()) => {
                    push(inside)
                }
                None => return None,
            }
            rest = after;
        } else {
            return None;
        }
    }
    Some(pointer)
}

/// A JavaScript name: `jsonData`, `$body`, `_first`.
fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_numeric()) && name.chars().all(identifier_char)
}

fn identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Where the parenthesis that closes an opened call is, past quotes and
/// nested brackets.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' if depth == 0 => return Some(i),
                ')' | ']' | '}' => depth = depth.checked_sub(1)?,
                _ => {}
            },
        }
    }
    None
}

/// A JavaScript literal as JSON: numbers, `true`, `false`, `null`, a
/// string in any quotes, or JSON arrays and objects.
fn literal(text: &str) -> Option<serde_json::Value> {
    let text = text.trim();
    if let Some((s, tail)) = quoted(text) {
        return tail
            .trim()
            .is_empty()
            .then_some(serde_json::Value::String(s));
    }
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_listed_assertions_translate() {
        let got = translate(&lines(
            r#"
pm.test("Status code is 200", function () {
    pm.response.to.have.status(200);
});
pm.test('has trace', () => {
  pm.response.to.have.header('Trace-Id');
  pm.response.to.have.header("Content-Type", "application/json");
});
pm.expect(pm.response.code).to.be.oneOf([200, 201]);
pm.test("fast", () => pm.expect(pm.response.responseTime).to.be.below(500));
// a comment
"#,
        ));
        assert!(got.capture.is_empty());
        assert_eq!(
            got.expect,
            vec![
                Expect::Status(200),
                Expect::HeaderPresent("Trace-Id".into()),
                Expect::HeaderEquals {
                    name: "Content-Type".into(),
                    value: "application/json".into()
                },
                Expect::StatusIn(vec![200, 201]),
                Expect::MaxLatencyMs(500),
            ]
        );
    }

    #[test]
    fn an_untranslatable_line_makes_its_whole_test_not_evaluated() {
        let got = translate(&lines(
            r#"
pm.test("body has escolas", function () {
    pm.response.to.have.status(200);
    const body = pm.response.json();
    pm.expect(body.data).to.satisfy(isSorted);
});
postman.setNextRequest("escolas");
pm.expect(pm.response.json().data.length > 0).to.be.true;
"#,
        ));
        let got = got.expect;
        assert_eq!(got.len(), 3);
        let Expect::NotEvaluated { name, script } = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(name, "body has escolas");
        assert!(script.contains("to.satisfy(isSorted)"));
        let Expect::NotEvaluated { name, .. } = &got[1] else {
            panic!("{got:?}")
        };
        assert!(name.contains("postman.setNextRequest"), "{name}");
        // A computed subject is not a place in the body.
        let Expect::NotEvaluated { name, .. } = &got[2] else {
            panic!("{got:?}")
        };
        assert!(name.contains(".length > 0"), "{name}");
    }

    #[test]
    fn figures_lengths_types_and_members_translate() {
        let got = translate(&lines(
            r#"
const j = pm.response.json();
pm.expect(j.data.length).to.be.above(0);
pm.expect(j.data).to.have.lengthOf(2);
pm.expect(j.data.length).to.eql(2);
pm.expect(j.total).to.be.at.least(1);
pm.expect(j.total).to.be.within(1, 100);
pm.expect(j.meta.ms).to.be.below(250.5);
pm.expect(j.data).to.be.an('array');
pm.expect(j.data).to.not.be.empty;
pm.expect(j.nome).to.include("Norte");
pm.expect(j.status).to.be.oneOf(["ok", "degraded"]);
pm.expect(j.nome).to.not.eql("x");
"#,
        ));
        let bounds = |pointer: &str| Bounds {
            pointer: pointer.into(),
            ..Bounds::default()
        };
        assert_eq!(
            got.expect,
            vec![
                Expect::JsonLength(Bounds {
                    above: Some(0.0),
                    ..bounds("/data")
                }),
                Expect::JsonLength(Bounds {
                    at_least: Some(2.0),
                    at_most: Some(2.0),
                    ..bounds("/data")
                }),
                Expect::JsonLength(Bounds {
                    at_least: Some(2.0),
                    at_most: Some(2.0),
                    ..bounds("/data")
                }),
                Expect::JsonNumber(Bounds {
                    at_least: Some(1.0),
                    ..bounds("/total")
                }),
                Expect::JsonNumber(Bounds {
                    at_least: Some(1.0),
                    at_most: Some(100.0),
                    ..bounds("/total")
                }),
                Expect::JsonNumber(Bounds {
                    below: Some(250.5),
                    ..bounds("/meta/ms")
                }),
                Expect::JsonType {
                    pointer: "/data".into(),
                    is: JsonKind::Array
                },
                Expect::JsonLength(Bounds {
                    at_least: Some(1.0),
                    ..bounds("/data")
                }),
                Expect::JsonIncludes {
                    pointer: "/nome".into(),
                    value: "Norte".into()
                },
                Expect::JsonOneOf {
                    pointer: "/status".into(),
                    values: vec!["ok".into(), "degraded".into()]
                },
                // A negation is not among the forms: not evaluated, never passed.
                Expect::NotEvaluated {
                    name: "script line `pm.expect(j.nome).to.not.eql(\"x\");`".into(),
                    script: "pm.expect(j.nome).to.not.eql(\"x\");".into()
                },
            ]
        );
    }

    #[test]
    fn body_assertions_through_aliases_and_captures_translate() {
        let got = translate(&lines(
            r#"
var jsonData = pm.response.json();
pm.test("nome", function () {
    const first = jsonData.data[0];
    pm.expect(first.nome).to.eql('Escola Estadual (Norte), "A"');
    pm.expect(first["código"]).to.equal(7);
    pm.expect(jsonData.meta.ativo).to.be.true;
    pm.expect(jsonData.meta).to.have.property('total', 2);
    pm.expect(jsonData.meta).to.have.property("next");
    pm.expect(pm.response.json().data[1].id).to.exist;
});
pm.test("ok", () => { pm.response.to.be.ok; pm.response.to.be.json; });
pm.environment.set("escolaId", jsonData.data[0].id);
pm.collectionVariables.set('etag', JSON.parse(responseBody).etag);
"#,
        ));
        assert_eq!(
            got.expect,
            vec![
                Expect::JsonEquals {
                    pointer: "/data/0/nome".into(),
                    value: "Escola Estadual (Norte), \"A\"".into()
                },
                Expect::JsonEquals {
                    pointer: "/data/0/código".into(),
                    value: 7.into()
                },
                Expect::JsonEquals {
                    pointer: "/meta/ativo".into(),
                    value: true.into()
                },
                Expect::JsonEquals {
                    pointer: "/meta/total".into(),
                    value: 2.into()
                },
                Expect::JsonExists("/meta/next".into()),
                Expect::JsonExists("/data/1/id".into()),
                Expect::Status(200),
                Expect::JsonExists(String::new()),
            ]
        );
        assert_eq!(
            got.capture,
            vec![
                Capture {
                    variable: "escolaId".into(),
                    pointer: "/data/0/id".into()
                },
                Capture {
                    variable: "etag".into(),
                    pointer: "/etag".into()
                },
            ]
        );
    }

    #[test]
    fn path_variables_and_url_parts() {
        let v: Value = serde_json::json!({
            "protocol": "http", "host": ["{{host}}"], "port": "8080",
            "path": ["v1", "escolas", ":id"],
            "query": [{"key": "a", "value": "1"}, {"key": "b", "value": "2", "disabled": true}],
            "variable": [{"key": "id", "value": "7"}]
        });
        assert_eq!(url(Some(&v)), "http://{{host}}:8080/v1/escolas/7?a=1");
        assert_eq!(form_encode("a b&c"), "a+b%26c");
    }

    #[test]
    fn v1_and_garbage_are_refused_with_the_reason() {
        let err = import(r#"{"info":{"name":"x","schema":"https://schema.getpostman.com/json/collection/v1.0.0/collection.json"},"item":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("export the collection as v2.1"), "{err}");
        let err = import("[1,2]").unwrap_err().to_string();
        assert!(err.contains("no `info`"), "{err}");
        let err = import("{").unwrap_err().to_string();
        assert!(err.contains("not a Postman collection"), "{err}");
    }
}
