//! Parameters as a JSON object through the entry's schema: `KEY=VALUE`
//! pairs (the CLI's `check NAME -p k=v`, Markdown's `<!-- check: NAME k=v
//! -->`) become one, and text in any object (pairs, or a hand-written TOML
//! file's `"0,2"`) is converted to the type the schema gives:
//!
//! - integers, numbers and booleans are parsed (`retries=3`, `read_only=true`);
//! - a list takes a comma-separated value (`expect_exit=0,2`), repeated keys
//!   (`args=-v args=--no-color`), or a JSON array literal for items holding
//!   commas (`args=["a","b,c"]`); a single value is a list of one;
//! - a map takes `KEY.NAME=VALUE` (`env.LANG=C`);
//! - text is taken as given.
//!
//! Anything else is left for the parameter struct to judge when it is
//! deserialized, where the error names the parameter's path.

use serde_json::{Map, Value};

use super::error::{EntryKind, PairError, ParamProblem, ParamsError, PathSegment};
use super::schema::{self, Shape};

/// Splits `KEY=VALUE` words at their first `=`.
///
/// ```
/// use escola_runbook_core::catalog::params::split_pairs;
///
/// let pairs = split_pairs(["shell=echo a=b", "args=1"]).unwrap();
/// assert_eq!(pairs[0], ("shell".to_owned(), "echo a=b".to_owned()));
/// assert!(split_pairs(["novalue"]).is_err());
/// ```
pub fn split_pairs<'a>(
    words: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, PairError> {
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            None => Err(PairError::NoEquals { word: word.into() }),
            Some(("", _)) => Err(PairError::EmptyKey { word: word.into() }),
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
        })
        .collect()
}

/// Who the parameters are for, to name in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub(crate) kind: EntryKind,
    pub(crate) name: &'a str,
}

impl Owner<'_> {
    fn error(&self, path: Vec<PathSegment>, problem: ParamProblem) -> ParamsError {
        ParamsError {
            kind: self.kind,
            name: self.name.to_owned(),
            path,
            problem,
        }
    }
}

fn key(k: &str) -> PathSegment {
    PathSegment::Key(k.to_owned())
}

/// `pairs` as an object for the schema `root`: lists gathered, map keys
/// nested, every value still text (see [`coerce`]).
pub(crate) fn object_from_pairs(
    owner: Owner<'_>,
    root: &Value,
    pairs: &[(String, String)],
) -> Result<Map<String, Value>, ParamsError> {
    let mut out = Map::new();
    for (k, v) in pairs {
        let (top, sub) = match k.split_once('.') {
            Some((top, sub))
                if schema::property(root, root, k).is_none()
                    && !sub.is_empty()
                    && schema::property(root, root, top).is_some() =>
            {
                (top, Some(sub))
            }
            _ => (k.as_str(), None),
        };
        let shape = schema::property(root, root, top).map(|p| schema::shape(root, p));
        match (sub, shape) {
            (Some(sub), _) => {
                let table = out.entry(top).or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(table) = table else {
                    return Err(owner.error(vec![key(top)], ParamProblem::Repeated));
                };
                if table
                    .insert(sub.to_owned(), Value::String(v.clone()))
                    .is_some()
                {
                    return Err(owner.error(vec![key(top), key(sub)], ParamProblem::Repeated));
                }
            }
            (None, Some(Shape::List(_))) => {
                let items =
                    list_from_text(v).map_err(|problem| owner.error(vec![key(top)], problem))?;
                match out.entry(top).or_insert_with(|| Value::Array(Vec::new())) {
                    Value::Array(list) => list.extend(items),
                    _ => return Err(owner.error(vec![key(top)], ParamProblem::Repeated)),
                }
            }
            (None, _) => {
                if out
                    .insert(top.to_owned(), Value::String(v.clone()))
                    .is_some()
                {
                    return Err(owner.error(vec![key(top)], ParamProblem::Repeated));
                }
            }
        }
    }
    Ok(out)
}

/// The items of a list written as text: a JSON array literal (`["a",
/// "b,c"]`), else comma-separated items, trimmed, empty ones dropped.
fn list_from_text(text: &str) -> Result<Vec<Value>, ParamProblem> {
    if text.trim_start().starts_with('[') {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) | Err(_) => Err(ParamProblem::NotAList {
                value: text.to_owned(),
            }),
        };
    }
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_owned()))
        .collect())
}

/// Converts the text in `object` to the types the schema `root` gives its
/// properties (see the module docs); other values are left as they are.
pub(crate) fn coerce(
    owner: Owner<'_>,
    root: &Value,
    object: Map<String, Value>,
) -> Result<Map<String, Value>, ParamsError> {
    coerce_object(root, root, object, &[]).map_err(|(path, problem)| owner.error(path, problem))
}

type Failure = (Vec<PathSegment>, ParamProblem);

fn coerce_object(
    root: &Value,
    schema: &Value,
    object: Map<String, Value>,
    path: &[PathSegment],
) -> Result<Map<String, Value>, Failure> {
    object
        .into_iter()
        .map(|(k, v)| {
            let at = [path, &[key(&k)]].concat();
            let v = match schema::property(root, schema, &k) {
                Some(p) => coerce_value(root, p, v, &at)?,
                None => v,
            };
            Ok((k, v))
        })
        .collect()
}

fn coerce_value(
    root: &Value,
    schema: &Value,
    value: Value,
    path: &[PathSegment],
) -> Result<Value, Failure> {
    let not_of = |text: &str, expected: &str| {
        (
            path.to_vec(),
            ParamProblem::NotOfType {
                value: text.to_owned(),
                expected: expected.to_owned(),
            },
        )
    };
    let at = |i: usize| [path, &[PathSegment::Index(i)]].concat();
    match (schema::shape(root, schema), value) {
        (Shape::Integer, Value::String(s)) => {
            let t = s.trim();
            t.parse::<i64>()
                .map(Value::from)
                .or_else(|_| t.parse::<u64>().map(Value::from))
                .map_err(|_| not_of(&s, "a whole number"))
        }
        (Shape::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| not_of(&s, "a number")),
        (Shape::Boolean, Value::String(s)) => match s.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(not_of(&s, "true or false")),
        },
        (Shape::List(items), Value::String(s)) => {
            let list = list_from_text(&s).map_err(|problem| (path.to_vec(), problem))?;
            list.into_iter()
                .enumerate()
                .map(|(i, v)| coerce_value(root, items, v, &at(i)))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        (Shape::List(items), Value::Array(list)) => list
            .into_iter()
            .enumerate()
            .map(|(i, v)| coerce_value(root, items, v, &at(i)))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        (Shape::List(items), v @ (Value::Bool(_) | Value::Number(_))) => {
            Ok(Value::Array(vec![coerce_value(root, items, v, &at(0))?]))
        }
        (Shape::Map(values), Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let at = [path, &[key(&k)]].concat();
                Ok((k, coerce_value(root, values, v, &at)?))
            })
            .collect::<Result<_, _>>()
            .map(Value::Object),
        (Shape::Struct(s), Value::Object(map)) => {
            coerce_object(root, s, map, path).map(Value::Object)
        }
        (_, v) => Ok(v),
    }
}

/// Deserializes the typed `object` as `T`, naming the path of a value
/// that does not fit.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
    owner: Owner<'_>,
    object: Value,
) -> Result<T, ParamsError> {
    serde_path_to_error::deserialize(object).map_err(|e| {
        owner.error(
            path_of(e.path()),
            ParamProblem::Unusable {
                reason: e.into_inner().to_string(),
            },
        )
    })
}

fn path_of(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Refuses a name the schema does not have (when it is closed, as
/// `#[serde(deny_unknown_fields)]` makes it), then a required one missing.
pub(crate) fn check_names(
    owner: Owner<'_>,
    root: &Value,
    object: &Map<String, Value>,
) -> Result<(), ParamsError> {
    let known: Vec<&str> = schema::properties(root, root)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if schema::is_closed(root, root) {
        if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(owner.error(
                vec![key(unknown)],
                ParamProblem::Unknown {
                    known: known.iter().map(|k| (*k).to_owned()).collect(),
                    suggestion: crate::suggest::nearest(unknown, known.iter().copied())
                        .map(str::to_owned),
                },
            ));
        }
    }
    for name in schema::required(root, root) {
        if !object.contains_key(name) {
            let help = schema::property(root, root, name)
                .and_then(|p| schema::description(root, p))
                .map(super::docs::phrase)
                .unwrap_or_default();
            return Err(owner.error(vec![key(name)], ParamProblem::Missing { help }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWNER: Owner<'static> = Owner {
        kind: EntryKind::Check,
        name: "demo",
    };

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["shell"],
            "properties": {
                "shell": { "type": "string", "description": "A line for the shell." },
                "args": { "type": "array", "items": { "type": "string" } },
                "codes": { "type": "array", "items": { "type": "integer" } },
                "retries": { "type": ["integer", "null"] },
                "ratio": { "type": "number" },
                "read_only": { "type": "boolean" },
                "env": { "type": "object", "additionalProperties": { "type": "string" } },
                "limit": { "$ref": "#/$defs/Limit" },
            },
            "$defs": { "Limit": { "type": "integer" } }
        })
    }

    fn pairs(words: &[&str]) -> Vec<(String, String)> {
        split_pairs(words.iter().copied()).unwrap()
    }

    fn object(words: &[&str]) -> Result<Value, ParamsError> {
        let root = schema();
        let o = object_from_pairs(OWNER, &root, &pairs(words))?;
        coerce(OWNER, &root, o).map(Value::Object)
    }

    #[test]
    fn pairs_become_typed_values() {
        assert_eq!(
            object(&[
                "shell=echo a,b",
                "args=-v, --x",
                "args=[\"a\",\"b,c\"]",
                "codes=0,2",
                "retries=3",
                "ratio=0.5",
                "read_only=true",
                "env.LANG=C",
                "env.TZ=UTC",
                "limit=7",
            ])
            .unwrap(),
            json!({
                "shell": "echo a,b",
                "args": ["-v", "--x", "a", "b,c"],
                "codes": [0, 2],
                "retries": 3,
                "ratio": 0.5,
                "read_only": true,
                "env": { "LANG": "C", "TZ": "UTC" },
                "limit": 7,
            })
        );
    }

    #[test]
    fn wrong_text_names_the_key_and_the_type() {
        let e = object(&["retries=three"]).unwrap_err();
        assert_eq!(e.path, [key("retries")]);
        assert_eq!(
            e.to_string(),
            "check `demo`, parameter `retries` has value `three`, which is not a whole number"
        );
        let e = object(&["codes=0,x"]).unwrap_err();
        assert_eq!(e.path, [key("codes"), PathSegment::Index(1)]);
        let e = object(&["read_only=yes"]).unwrap_err();
        assert!(e.to_string().ends_with("which is not true or false"), "{e}");
        let e = object(&["ratio=nan"]).unwrap_err();
        assert!(e.to_string().ends_with("which is not a number"), "{e}");
        let e = object(&["args=[\"unclosed"]).unwrap_err();
        assert!(
            e.to_string().contains("is not a list; write a JSON array"),
            "{e}"
        );
    }

    #[test]
    fn a_single_valued_key_given_twice_is_refused() {
        let e = object(&["shell=a", "shell=b"]).unwrap_err();
        assert_eq!(e.problem, ParamProblem::Repeated);
        assert!(object(&["env.A=1", "env.A=2"]).is_err());
        assert!(split_pairs(["a=1", "b=x=y"]).is_ok());
        assert_eq!(
            split_pairs(["=x"]).unwrap_err().to_string(),
            "`=x` has an empty key"
        );
    }

    #[test]
    fn typed_values_stay_and_scalars_become_lists() {
        let root = schema();
        let given = json!({ "shell": "x", "codes": 0, "args": "a,b", "retries": 2 });
        let Value::Object(given) = given else {
            unreachable!()
        };
        assert_eq!(
            Value::Object(coerce(OWNER, &root, given).unwrap()),
            json!({ "shell": "x", "codes": [0], "args": ["a", "b"], "retries": 2 })
        );
    }

    #[test]
    fn unknown_and_missing_names_are_refused_with_help() {
        let root = schema();
        let Value::Object(o) = json!({ "shel": "x" }) else {
            unreachable!()
        };
        let e = check_names(OWNER, &root, &o).unwrap_err();
        assert!(
            e.to_string()
                .contains("`shel` is not a parameter of `demo` (did you mean `shell`?)"),
            "{e}"
        );
        let e = check_names(OWNER, &root, &Map::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "check `demo`, parameter `shell` is required: a line for the shell"
        );
    }
}
