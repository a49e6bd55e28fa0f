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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::suite::{Expect, Header, Request, Suite};

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
        r.expect.extend(translate(lines));
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

/// Translates a test script into expectations; what cannot be translated
/// becomes [`Expect::NotEvaluated`].
pub fn translate(lines: &[String]) -> Vec<Expect> {
    let mut out = Vec::new();
    // (test name, translated, untranslated lines, all lines)
    let mut open: Option<(String, Vec<Expect>, bool, Vec<String>)> = None;
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
            let stmts: Vec<&str> = body
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let translated: Option<Vec<Expect>> = stmts.iter().map(|s| statement(s)).collect();
            match translated {
                Some(list) if !list.is_empty() => out.extend(list),
                _ => out.push(Expect::NotEvaluated {
                    name,
                    script: line.to_owned(),
                }),
            }
            continue;
        }
        if let Some((name, got, bad, text)) = open.as_mut() {
            text.push(line.to_owned());
            if is_block_end(line) {
                let (name, got, bad, text) =
                    (name.clone(), std::mem::take(got), *bad, text.join("\n"));
                open = None;
                if bad || got.is_empty() {
                    out.push(Expect::NotEvaluated { name, script: text });
                } else {
                    out.extend(got);
                }
                continue;
            }
            match statement(line) {
                Some(e) => got.push(e),
                None => *bad = true,
            }
            let _ = name;
            continue;
        }
        match statement(line) {
            Some(e) => out.push(e),
            None => out.push(Expect::NotEvaluated {
                name: format!("script line `{line}`"),
                script: line.to_owned(),
            }),
        }
    }
    if let Some((name, _, _, text)) = open {
        out.push(Expect::NotEvaluated {
            name,
            script: format!("{}\n(unterminated)", text.join("\n")),
        });
    }
    out
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

/// One statement -> one expectation, or `None` if not one of the forms.
fn statement(line: &str) -> Option<Expect> {
    let stmt = line.trim().trim_end_matches(';').trim();
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
        assert_eq!(
            got,
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
    pm.expect(body.data).to.be.an('array');
});
pm.environment.set("id", pm.response.json().data[0].id);
"#,
        ));
        assert_eq!(got.len(), 2);
        let Expect::NotEvaluated { name, script } = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(name, "body has escolas");
        assert!(script.contains("to.be.an('array')"));
        let Expect::NotEvaluated { name, .. } = &got[1] else {
            panic!("{got:?}")
        };
        assert!(name.contains("pm.environment.set"), "{name}");
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
