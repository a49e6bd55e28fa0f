//! Builder methods that set one field each, declared by one macro: a check's
//! builder sets fields of its typed parameter struct, which stays the one
//! declaration of each field, its default and its documentation.

/// Writes builder methods that each set one field and return `self`:
/// `name(arg: Type, ...) => field.path = value;`, with the method's doc comment
/// above it. Used by the built-in checks' builders; a plugin check's
/// builder may use it the same way.
///
/// ```
/// #[derive(Default)]
/// struct Params {
///     retries: u32,
///     channel: Option<String>,
/// }
/// #[derive(Default)]
/// struct Notice {
///     params: Params,
/// }
/// impl Notice {
///     escola_runbook_core::setters! {
///         /// Attempts after the first.
///         retries(n: u32) => params.retries = n;
///         /// The channel to post to.
///         channel(name: impl Into<String>) => params.channel = Some(name.into());
///     }
/// }
/// let notice = Notice::default().retries(3).channel("#deploys");
/// assert_eq!(notice.params.retries, 3);
/// assert_eq!(notice.params.channel.as_deref(), Some("#deploys"));
/// ```
#[macro_export]
macro_rules! setters {
    ($($(#[$attr:meta])* $name:ident($($arg:ident: $ty:ty),+) => $($field:ident).+ = $value:expr;)*) => {
        $(
            $(#[$attr])*
            pub fn $name(mut self, $($arg: $ty),+) -> Self {
                self.$($field).+ = $value;
                self
            }
        )*
    };
}
