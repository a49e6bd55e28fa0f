//! The schema of a parameter type that is written as text (a size, a
//! window, a set of statuses): declared by one macro, so every such type
//! reads the same in `check --list`, in exported schemas and in the
//! `KEY=VALUE` reader, which converts text by the schema's `type`.

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
