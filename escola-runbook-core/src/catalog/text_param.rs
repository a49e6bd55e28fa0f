//! Parameter types written as text (a size, a window, a set of statuses, a
//! percentage): their schema declared by one macro, and one reading of a
//! value that may be a number or text, so every such type reads the same in
//! `check --list`, in exported schemas and in the `KEY=VALUE` reader, which
//! converts text by the schema's `type`.

use serde::{Deserialize, Deserializer};

/// Reads a parameter written as a number or as text (`85` or `"85%"`,
/// `65536` or `"64KiB"`) as text, for the type's own parser: a number and
/// the same number written as text always mean the same. Whole numbers stay
/// exact.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Params {
///     #[serde(deserialize_with = "escola_runbook_core::catalog::number_or_text")]
///     min: String,
/// }
/// let p: Params = serde_json::from_str(r#"{"min": 85}"#).unwrap();
/// assert_eq!(p.min, "85");
/// let p: Params = serde_json::from_str(r#"{"min": "85%"}"#).unwrap();
/// assert_eq!(p.min, "85%");
/// ```
pub fn number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Whole(u64),
        Negative(i64),
        Number(f64),
        Text(String),
    }
    Ok(match Written::deserialize(d)? {
        Written::Whole(n) => n.to_string(),
        Written::Negative(n) => n.to_string(),
        Written::Number(n) => n.to_string(),
        Written::Text(t) => t,
    })
}

/// Implements [`schemars::JsonSchema`] for a parameter type written as
/// text: inlined where it is used, named `$name`, of JSON type `"string"`
/// (or the types given, such as `["number", "string"]` for a value that
/// may also be a bare number), described by `$description`.
///
/// ```
/// struct Percent(f64);
/// escola_runbook_core::text_param_schema!(
///     Percent,
///     "Percent",
///     ["number", "string"],
///     "a percentage from 0 to 100 (85 or \"85%\")"
/// );
/// let schema = escola_runbook_core::schemars::schema_for!(Percent);
/// assert_eq!(schema.get("type"), Some(&serde_json::json!(["number", "string"])));
/// ```
#[macro_export]
macro_rules! text_param_schema {
    ($ty:ty, $name:literal, $description:expr) => {
        $crate::text_param_schema!($ty, $name, "string", $description);
    };
    ($ty:ty, $name:literal, $json_type:expr, $description:expr) => {
        impl $crate::schemars::JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(
                _: &mut $crate::schemars::SchemaGenerator,
            ) -> $crate::schemars::Schema {
                $crate::schemars::json_schema!({
                    "type": $json_type,
                    "description": $description,
                })
            }
        }
    };
}
