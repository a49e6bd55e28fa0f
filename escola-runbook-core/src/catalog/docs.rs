//! A parameter table derived from an entry's schema: name, type, whether
//! required, default and help, for `check --list` and reference docs. The
//! struct's doc comments are the help, so there is nothing to keep in step.

use serde_json::Value;

use super::schema::{self, Shape};

/// One parameter, as documentation shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamDoc {
    /// Name as written in files and pairs.
    pub name: String,
    /// What it takes ("text", "integer", "list of integer", "duration");
    /// empty when the schema does not say.
    #[serde(rename = "type")]
    pub kind: String,
    /// Must be given.
    pub required: bool,
    /// Value used when not given, as text.
    pub default: Option<String>,
    /// What it means (the field's doc comment, as a phrase).
    pub help: String,
}

/// The parameters of the object schema `root`, by name.
pub(crate) fn param_docs(root: &Value) -> Vec<ParamDoc> {
    let required = schema::required(root, root);
    schema::properties(root, root)
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| ParamDoc {
                    name: name.clone(),
                    kind: kind(root, p),
                    required: required.contains(&name.as_str()),
                    default: p.get("default").and_then(default_text),
                    help: schema::description(root, p).map(phrase).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The type of values of `schema`, in words.
fn kind(root: &Value, schema: &Value) -> String {
    let resolved = schema::resolve(root, schema);
    if resolved.get("format").and_then(Value::as_str) == Some("duration")
        || ["anyOf", "oneOf"].iter().any(|k| {
            resolved
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|bs| {
                    bs.iter().any(|b| {
                        schema::resolve(root, b)
                            .get("format")
                            .and_then(Value::as_str)
                            == Some("duration")
                    })
                })
        })
    {
        return "duration".into();
    }
    let has_type =
        |s: &Value| s.get("type").is_some() || s.get("anyOf").is_some() || s.get("oneOf").is_some();
    if !has_type(resolved) {
        return String::new();
    }
    match schema::shape(root, schema) {
        Shape::Text => "text".into(),
        Shape::Integer => "integer".into(),
        Shape::Number => "number".into(),
        Shape::Boolean => "true/false".into(),
        Shape::List(items) => format!("list of {}", kind(root, items)),
        Shape::Map(values) => format!("map of {}", kind(root, values)),
        Shape::Struct(_) => "table".into(),
    }
}

/// A default as text; `None` for an empty list or map (nothing to say).
fn default_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => None,
        Value::Object(map) if map.is_empty() => None,
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => Some(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

/// A doc comment as a phrase for a table: its first paragraph on one line,
/// without the final period, the first letter lowercased unless the word
/// is an acronym ("Runs a program." -> "runs a program"; "HTTP status"
/// stays).
pub fn phrase(doc: &str) -> String {
    let first = doc.split("\n\n").next().unwrap_or("");
    let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.strip_suffix('.').unwrap_or(&line);
    let mut chars = line.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => a
            .to_lowercase()
            .chain(line[a.len_utf8()..].chars())
            .collect(),
        _ => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_comes_from_the_schema() {
        let root = json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": { "type": "string", "description": "The URL to ask.\n\nMore." },
                "codes": { "type": "array", "items": { "type": "integer" }, "default": [0], "description": "Exit codes." },
                "timeout": { "anyOf": [{ "type": "string", "format": "duration" }, { "type": "null" }] },
                "env": { "type": "object", "additionalProperties": { "type": "string" }, "default": {} },
                "read_only": { "type": "boolean", "default": false },
                "legacy": { "description": "anything", "default": "x" },
            }
        });
        let docs = param_docs(&root);
        let by = |n: &str| docs.iter().find(|d| d.name == n).unwrap();
        assert_eq!(
            by("url"),
            &ParamDoc {
                name: "url".into(),
                kind: "text".into(),
                required: true,
                default: None,
                help: "the URL to ask".into(),
            }
        );
        assert_eq!(by("codes").kind, "list of integer");
        assert_eq!(by("codes").default.as_deref(), Some("0"));
        assert_eq!(by("timeout").kind, "duration");
        assert_eq!(by("env").kind, "map of text");
        assert_eq!(by("env").default, None);
        assert_eq!(by("read_only").default.as_deref(), Some("false"));
        assert_eq!(by("legacy").kind, "");
    }

    #[test]
    fn phrases() {
        assert_eq!(
            phrase("Runs a program.\nOn two lines."),
            "runs a program. On two lines"
        );
        assert_eq!(phrase("HTTP status to expect."), "HTTP status to expect");
        assert_eq!(phrase(""), "");
    }
}
