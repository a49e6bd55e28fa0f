//! Secrets that cannot be printed, and the redactor that masks their values
//! wherever text leaves the process.
//!
//! Two layers, on purpose: [`Secret`] keeps a value out of `Debug` output and
//! has no `Display`, so it cannot be formatted by accident; the [`Redactor`]
//! masks every registered value in text that did get through anyway (command
//! output, an error message quoting a URL with a token, a report).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// A secret value: a token, a password, a DSN with credentials.
///
/// `Debug` prints `Secret(<redacted>)`; there is no `Display`. The value is
/// reachable only through [`Secret::expose`], which makes every use visible in
/// review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The plain value, for the one place that must send it (an HTTP header,
    /// a database connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Named secrets available to checks, each registered with a [`Redactor`].
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, Secret>,
    redactor: Redactor,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// An empty store with its own redactor.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose values are registered with `redactor`, so a
    /// masking layer built before the secrets were read (a log writer)
    /// masks them too.
    pub fn with_redactor(redactor: Redactor) -> Self {
        Secrets {
            values: BTreeMap::new(),
            redactor,
        }
    }

    /// Adds (or replaces) a secret and registers its value for masking.
    pub fn insert(&mut self, name: impl Into<String>, value: Secret) {
        let name = name.into();
        self.redactor.register(&name, value.expose());
        self.values.insert(name, value);
    }

    /// The secret called `name`, if it was provided.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name)
    }

    /// Names of the secrets provided (never their values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The redactor that masks these secrets' values.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// Parts of a URL secret shorter than this many characters are not masked
/// on their own: a path of `/` or `/v1`, an empty query or a user name like
/// `root` would otherwise blank ordinary words all over a report. The whole
/// secret and its encoded forms are masked whatever their length.
pub const MIN_SECRET_PART_LEN: usize = 8;

/// Masks registered secret values in text.
///
/// A secret leaves a process in more shapes than it was given in, so each
/// registered value is also found in these forms:
///
/// - percent-encoded, as URL and form encoders write it (`%20` or `+` for a
///   space, either hex case, any subset of characters encoded);
/// - JSON-escaped, as serde_json writes it (`\"`, `\\`, `\n`...) and as
///   ASCII-only encoders do (`\u00e9`, surrogate pairs);
/// - for a URL (`scheme://...`): its path (not for a database URL, whose
///   path names the database), query, each query value, its userinfo and
///   password, and its fragment, each in the same forms, and
///   decoded when the URL holds them percent-encoded; parts shorter than
///   [`MIN_SECRET_PART_LEN`] are left alone.
///
/// Every form is masked as `<redacted:NAME>`. Cloning shares the registry,
/// so a value registered after the executor started (a token read by a
/// step) is masked everywhere from then on.
#[derive(Clone, Default)]
pub struct Redactor {
    registry: Arc<RwLock<Registry>>,
}

/// The patterns to mask, and which bytes can begin one of their forms.
#[derive(Default)]
struct Registry {
    // Longest first, so a secret containing another, or a URL containing
    // its own path, is masked whole.
    patterns: Vec<Pattern>,
    starts: StartBytes,
}

/// One text to mask, and the secret it belongs to.
struct Pattern {
    name: String,
    text: String,
    chars: Vec<char>,
}

/// The bytes an occurrence may begin with: each pattern's first byte, and
/// the bytes that begin an encoded character (`%`, `\`, and `+` when a
/// pattern begins with a space).
struct StartBytes([bool; 256]);

impl Default for StartBytes {
    fn default() -> Self {
        let mut starts = [false; 256];
        starts[usize::from(b'%')] = true;
        starts[usize::from(b'\\')] = true;
        StartBytes(starts)
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("patterns", &self.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor with no values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a value, and the parts derived from it (see [`Redactor`]),
    /// to mask as `<redacted:name>`. Empty values are ignored: there is
    /// nothing to leak and masking "" would be meaningless.
    pub fn register(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut registry = match self.registry.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for text in std::iter::once(value.to_owned()).chain(url_parts(value)) {
            if registry.patterns.iter().any(|p| p.text == text) {
                continue;
            }
            let first = text.as_bytes()[0];
            registry.starts.0[usize::from(first)] = true;
            if first == b' ' {
                registry.starts.0[usize::from(b'+')] = true;
            }
            registry.patterns.push(Pattern {
                name: name.to_owned(),
                chars: text.chars().collect(),
                text,
            });
        }
        registry
            .patterns
            .sort_by_key(|p| std::cmp::Reverse(p.chars.len()));
    }

    /// How many patterns (values and their derived parts) are registered.
    pub fn len(&self) -> usize {
        self.read().patterns.len()
    }

    /// True when no value is registered (redaction is then free).
    pub fn is_empty(&self) -> bool {
        self.read().patterns.is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        match self.registry.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `text` with every registered value, in any of its forms, replaced by
    /// `<redacted:name>`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let registry = self.read();
        if registry.patterns.is_empty() {
            return Cow::Borrowed(text);
        }
        if !text.bytes().any(|b| matches!(b, b'%' | b'\\' | b'+')) {
            // No encoded character can be here, only the patterns as they
            // are: a plain substring search, the common and fast case.
            let mut out = Cow::Borrowed(text);
            for p in &registry.patterns {
                if out.contains(p.text.as_str()) {
                    out =
                        Cow::Owned(out.replace(p.text.as_str(), &format!("<redacted:{}>", p.name)));
                }
            }
            return out;
        }
        registry.mask_any_form(text)
    }

    /// Masks every string inside a JSON value, keys included.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(masked) = self.redact(s) {
                    *s = masked;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => {
                let old = std::mem::take(map);
                for (key, mut v) in old {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key).into_owned(), v);
                }
            }
            _ => {}
        }
    }

    /// A copy of any serializable value with every string masked.
    ///
    /// Works through the value's serde form, so no field can be forgotten when
    /// a type grows. Returns the value unchanged (cloned) if it does not
    /// round-trip, which only a type with a lossy serde form could cause.
    pub fn redact_serde<T>(&self, value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone,
    {
        if self.is_empty() {
            return value.clone();
        }
        match serde_json::to_value(value) {
            Ok(mut json) => {
                self.redact_json(&mut json);
                serde_json::from_value(json).unwrap_or_else(|_| value.clone())
            }
            Err(_) => value.clone(),
        }
    }
}

impl Registry {
    /// `text` with every occurrence of a pattern, in any form, masked: one
    /// pass, trying at each byte that can begin an occurrence the patterns
    /// longest first.
    fn mask_any_form<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut matcher = Matcher::default();
        let mut out = String::new();
        let mut copied = 0;
        let mut at = 0;
        while at < bytes.len() {
            if !self.starts.0[usize::from(bytes[at])] {
                at += 1;
                continue;
            }
            let found = self
                .patterns
                .iter()
                .find_map(|p| matcher.end_of(bytes, at, &p.chars).map(|end| (p, end)));
            match found {
                Some((p, end)) => {
                    // `at` and `end` are character boundaries: a start byte
                    // is ASCII or a UTF-8 lead byte, and every form ends
                    // after a whole character.
                    out.push_str(&text[copied..at]);
                    out.push_str("<redacted:");
                    out.push_str(&p.name);
                    out.push('>');
                    copied = end;
                    at = end;
                }
                None => at += 1,
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// Matches one pattern at one offset, keeping its buffers between calls.
#[derive(Default)]
struct Matcher {
    ends: Vec<usize>,
    next: Vec<usize>,
}

impl Matcher {
    /// Where an occurrence of `pattern` beginning at `text[start]` ends (the
    /// longest, when forms allow several), each of its characters literal or
    /// in any encoded form ([`forms`]).
    ///
    /// Each character's forms are tried from every offset the previous one
    /// could end at (a set, deduplicated), so a pattern full of `%` or `\`
    /// costs time linear in its length, never exponential.
    fn end_of(&mut self, text: &[u8], start: usize, pattern: &[char]) -> Option<usize> {
        self.ends.clear();
        self.ends.push(start);
        for &c in pattern {
            self.next.clear();
            for &at in &self.ends {
                forms(text, at, c, &mut self.next);
            }
            self.next.sort_unstable();
            self.next.dedup();
            std::mem::swap(&mut self.ends, &mut self.next);
            if self.ends.is_empty() {
                return None;
            }
        }
        self.ends.last().copied()
    }
}

/// Pushes onto `ends` the offset after each form of `c` found at `text[at..]`:
/// literal, percent-encoded UTF-8 (`+` for a space), or a JSON escape.
fn forms(text: &[u8], at: usize, c: char, ends: &mut Vec<usize>) {
    let rest = &text[at..];
    let mut buf = [0u8; 4];
    let utf8 = c.encode_utf8(&mut buf).as_bytes();
    if rest.starts_with(utf8) {
        ends.push(at + utf8.len());
    }
    let percent = utf8.iter().enumerate().all(|(i, byte)| {
        rest.get(i * 3) == Some(&b'%') && hex_at(rest, i * 3 + 1, 2) == Some(u32::from(*byte))
    });
    if percent {
        ends.push(at + utf8.len() * 3);
    }
    if c == ' ' && rest.first() == Some(&b'+') {
        ends.push(at + 1);
    }
    let short = match c {
        '"' => Some(b'"'),
        '\\' => Some(b'\\'),
        '/' => Some(b'/'),
        '\n' => Some(b'n'),
        '\r' => Some(b'r'),
        '\t' => Some(b't'),
        '\u{8}' => Some(b'b'),
        '\u{c}' => Some(b'f'),
        _ => None,
    };
    if let Some(letter) = short {
        if rest.first() == Some(&b'\\') && rest.get(1) == Some(&letter) {
            ends.push(at + 2);
        }
    }
    let mut units = [0u16; 2];
    let units = c.encode_utf16(&mut units);
    let escaped = units.iter().enumerate().all(|(i, unit)| {
        rest.get(i * 6) == Some(&b'\\')
            && rest.get(i * 6 + 1) == Some(&b'u')
            && hex_at(rest, i * 6 + 2, 4) == Some(u32::from(*unit))
    });
    if escaped {
        ends.push(at + units.len() * 6);
    }
}

/// The value of the `digits` hex digits (either case) at `text[at..]`.
fn hex_at(text: &[u8], at: usize, digits: usize) -> Option<u32> {
    let digits = text.get(at..at + digits)?;
    digits.iter().try_fold(0u32, |value, d| {
        Some(value * 16 + char::from(*d).to_digit(16)?)
    })
}

/// Schemes whose URL path is a database name.
const DATABASE_SCHEMES: [&str; 8] = [
    "mysql",
    "mariadb",
    "postgres",
    "postgresql",
    "redis",
    "rediss",
    "mongodb",
    "sqlserver",
];

/// The parts of a URL secret that carry its secret on their own, at least
/// [`MIN_SECRET_PART_LEN`] characters long: path, query, each query value,
/// userinfo, password, fragment, and their percent-decoded forms. Empty for
/// a value that is not `scheme://...`.
///
/// Parsed by hand (the core has no URL crate): only the generic syntax of
/// RFC 3986 is needed, and a lenient split finds the parts even in a URL a
/// strict parser would reject.
fn url_parts(value: &str) -> Vec<String> {
    let Some((scheme, rest)) = value.split_once("://") else {
        return Vec::new();
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Vec::new();
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // A database URL's path names the database, which is no secret and is
    // written everywhere (snapshot directories, reports); a web URL's path
    // may be the secret itself (a webhook's token).
    let mut parts = if DATABASE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        Vec::new()
    } else {
        vec![path.to_owned()]
    };
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        parts.push(userinfo.to_owned());
        if let Some((_user, password)) = userinfo.split_once(':') {
            parts.push(password.to_owned());
        }
    }
    if let Some(query) = query {
        parts.push(query.to_owned());
        for pair in query.split('&') {
            if let Some((_key, v)) = pair.split_once('=') {
                parts.push(v.to_owned());
            }
        }
    }
    parts.extend(fragment.map(str::to_owned));
    let decoded: Vec<String> = parts.iter().filter_map(|p| percent_decode(p)).collect();
    parts.extend(decoded);
    parts.retain(|p| p.chars().count() >= MIN_SECRET_PART_LEN);
    parts
}

/// `text` with `%XX` sequences decoded, when it has any and they decode to
/// UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex_at(bytes, i + 1, 2)) {
            (b'%', Some(byte)) => {
                out.push(byte as u8);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let mut store = Secrets::new();
        store.insert("metrics_token", s);
        let debug = format!("{store:?}");
        assert!(debug.contains("metrics_token"));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn masks_longest_value_first() {
        let r = Redactor::new();
        r.register("short", "abc");
        r.register("long", "abcdef");
        assert_eq!(
            r.redact("x abcdef y abc"),
            "x <redacted:long> y <redacted:short>"
        );
    }

    #[test]
    fn masks_json_keys_and_nested_strings() {
        let r = Redactor::new();
        r.register("t", "s3cr3t");
        let mut v = serde_json::json!({"s3cr3t": ["Bearer s3cr3t", 1]});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"<redacted:t>": ["Bearer <redacted:t>", 1]})
        );
    }

    #[test]
    fn empty_values_are_not_registered() {
        let r = Redactor::new();
        r.register("empty", "");
        assert!(r.is_empty());
        assert_eq!(r.redact("text"), "text");
    }

    #[test]
    fn masks_percent_encoded_and_json_escaped_forms() {
        let r = Redactor::new();
        r.register("token", "SMK CANARY/4411é\"x");
        let leaks = [
            "q=SMK%20CANARY/4411%C3%A9%22x".to_owned(),
            "q=SMK+CANARY%2F4411%c3%a9%22x".to_owned(),
            "q=SMK%20CANARY%2f4411%C3%A9\"x&next=1".to_owned(),
            serde_json::to_string("SMK CANARY/4411é\"x").unwrap(),
            "{\"t\":\"SMK CANARY\\/4411\\u00E9\\\"x\"}".to_owned(),
            "SMK\\u0020CANARY/4411\\u00e9\\\"x".to_owned(),
        ];
        for leak in leaks {
            let masked = r.redact(&leak);
            assert!(masked.contains("<redacted:token>"), "{leak} -> {masked}");
            assert!(!masked.contains("CANARY"), "{leak} -> {masked}");
        }
        // A form of another value is left alone.
        assert_eq!(r.redact("SMK%20CANARX"), "SMK%20CANARX");
    }

    #[test]
    fn masks_surrogate_pair_escapes() {
        let r = Redactor::new();
        r.register("t", "tok😀en-123");
        assert_eq!(
            r.redact(r#"a "tok\ud83d\ude00en-123" b"#),
            r#"a "<redacted:t>" b"#
        );
    }

    #[test]
    fn masks_the_parts_of_a_url_secret_wherever_they_appear() {
        let r = Redactor::new();
        r.register(
            "webhook_url",
            "https://bot:pa55-w0rd-x@hooks.example.com/hooks/HOOK-CANARY-5523?token=QRY-CANARY-77#frag-CANARY",
        );
        let text = "POST /hooks/HOOK-CANARY-5523 answered 500; token QRY-CANARY-77; \
                    login bot:pa55-w0rd-x or pa55-w0rd-x; /hooks/HOOK%2DCANARY%2D5523; #frag-CANARY; \
                    host hooks.example.com";
        let masked = r.redact(text);
        assert!(!masked.contains("CANARY"), "{masked}");
        assert!(!masked.contains("pa55"), "{masked}");
        // The host is not secret: it is how reports name the destination.
        assert!(masked.contains("host hooks.example.com"), "{masked}");
    }

    #[test]
    fn a_database_url_s_database_name_is_not_a_secret() {
        let r = Redactor::new();
        r.register(
            "database_url",
            "mysql://app:s3cr3t-pass@db:3306/escola_connect",
        );
        assert_eq!(
            r.redact("snapshot snaps/escola_connect-20261203T081051Z; password s3cr3t-pass"),
            "snapshot snaps/escola_connect-20261203T081051Z; password <redacted:database_url>"
        );
    }

    #[test]
    fn short_url_parts_are_not_masked_on_their_own() {
        let r = Redactor::new();
        r.register("database_url", "mysql://root@db.internal:3306/app?x=1");
        assert_eq!(
            r.redact("user root, database /app, query x=1, path /"),
            "user root, database /app, query x=1, path /"
        );
        assert_eq!(
            r.redact("dsn mysql://root@db.internal:3306/app?x=1"),
            "dsn <redacted:database_url>"
        );
    }

    #[test]
    fn percent_encoded_url_parts_are_masked_decoded_too() {
        let r = Redactor::new();
        r.register("database_url", "mysql://app:p%40ss%20w0rd@db/escola");
        assert_eq!(
            r.redact("password p@ss w0rd"),
            "password <redacted:database_url>"
        );
    }

    #[test]
    fn a_pattern_full_of_escapes_costs_linear_time() {
        // Every character of the pattern has two forms here (`\` and
        // `\\`); a backtracking matcher would try 2^64 splits per start.
        let r = Redactor::new();
        r.register("t", &"\\".repeat(64));
        let text = "\\".repeat(10_000);
        assert!(r.redact(&text).starts_with("<redacted:t>"));
        assert_eq!(r.redact(&"\\".repeat(63)), "\\".repeat(63));
    }

    #[test]
    fn the_plain_search_and_the_any_form_pass_mask_alike() {
        let r = Redactor::new();
        r.register("long", "abcdef-123");
        r.register("short", "abc-1234");
        let plain = "x abcdef-123 y abc-1234 z abc-1234";
        // A `%` elsewhere sends the text through the any-form pass.
        assert_eq!(
            r.redact(plain),
            "x <redacted:long> y <redacted:short> z <redacted:short>"
        );
        assert_eq!(
            r.redact(&format!("{plain} 5%")),
            "x <redacted:long> y <redacted:short> z <redacted:short> 5%"
        );
        assert_eq!(r.redact("100% fine"), "100% fine");
        assert!(matches!(r.redact("100% fine"), Cow::Borrowed(_)));
    }
}
