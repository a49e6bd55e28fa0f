//! Reading a parameter struct's JSON schema (as schemars writes it): its
//! properties, and what kind of value each takes. Shared by the
//! `KEY=VALUE` reader and the parameter table, so both see one truth.

use serde_json::{Map, Value};

/// What a schema says a value is, as far as text must be converted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape<'a> {
    /// Text, or a type not converted from text (taken as given).
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list whose items have this schema.
    List(&'a Value),
    /// A map from names to values of this schema (`env.KEY=VALUE`).
    Map(&'a Value),
    /// A table of named properties (a nested struct).
    Struct(&'a Value),
}

/// The schema `schema` stands for: `$ref`s into `root`'s `$defs` followed.
pub(crate) fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    // A bounded walk: a `$ref` cycle cannot loop forever.
    for _ in 0..16 {
        let Some(name) = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        else {
            break;
        };
        match root.get("$defs").and_then(|d| d.get(name)) {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

/// The JSON types a schema allows (`"null"` left out), looking through
/// `anyOf`/`oneOf` (how an `Option` or an enum is written).
fn types<'a>(root: &'a Value, schema: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    let schema = resolve(root, schema);
    match schema.get("type") {
        Some(Value::String(t)) => out.push((t, schema)),
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(Value::as_str).map(|t| (t, schema)))
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            for b in branches {
                types(root, b, out);
            }
        }
    }
    if out.is_empty() {
        if let Some(c) = schema
            .get("const")
            .or_else(|| schema.get("enum").and_then(|e| e.get(0)))
        {
            out.push((json_type(c), schema));
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The shape of values of `schema`. Text wins when a schema allows text
/// among other types, so text is never converted against the writer's will.
pub(crate) fn shape<'a>(root: &'a Value, schema: &'a Value) -> Shape<'a> {
    let mut found = Vec::new();
    types(root, schema, &mut found);
    found.retain(|(t, _)| *t != "null");
    if found.iter().any(|(t, _)| *t == "string") {
        return Shape::Text;
    }
    match found.first() {
        Some(("integer", _)) => Shape::Integer,
        Some(("number", _)) => Shape::Number,
        Some(("boolean", _)) => Shape::Boolean,
        Some(("array", s)) => s.get("items").map_or(Shape::Text, Shape::List),
        Some(("object", s)) => match (s.get("properties"), s.get("additionalProperties")) {
            (None, Some(values)) if values.is_object() => Shape::Map(values),
            (Some(_), _) => Shape::Struct(s),
            _ => Shape::Text,
        },
        _ => Shape::Text,
    }
}

/// The properties of an object schema (empty for others).
pub(crate) fn properties<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a Map<String, Value>> {
    resolve(root, schema)
        .get("properties")
        .and_then(Value::as_object)
}

/// The schema of property `name` of the object schema `schema`.
pub(crate) fn property<'a>(root: &'a Value, schema: &'a Value, name: &str) -> Option<&'a Value> {
    properties(root, schema).and_then(|p| p.get(name))
}

/// The required property names of an object schema.
pub(crate) fn required<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a str> {
    resolve(root, schema)
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// True when an object schema refuses properties it does not name
/// (`#[serde(deny_unknown_fields)]`).
pub(crate) fn is_closed(root: &Value, schema: &Value) -> bool {
    resolve(root, schema).get("additionalProperties") == Some(&Value::Bool(false))
}

/// A schema's `description`.
pub(crate) fn description<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a str> {
    schema
        .get("description")
        .or_else(|| resolve(root, schema).get("description"))
        .and_then(Value::as_str)
}
