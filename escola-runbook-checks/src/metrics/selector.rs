//! A metric by name and label matchers, as PromQL selects it
//! (`http_requests_total{status=~"5..",route!="/health"}`): what the rate
//! and gauge probes read from the app's `/metrics`, and the selector they
//! write for Prometheus.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// How a matcher compares a label's value (a missing label is the empty
/// string, as in PromQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchOp {
    fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher: `name op "value"`.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    name: String,
    op: MatchOp,
    value: String,
    /// The value anchored as PromQL anchors it, for the regex operators.
    regex: Option<Regex>,
}

/// A matcher or a selector could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text is not `name op value`.
    #[error(
        "`{text}` is not a label matcher; write NAME=\"v\", NAME!=\"v\", NAME=~\"regex\" or NAME!~\"regex\""
    )]
    Syntax {
        /// The text.
        text: String,
    },
    /// The metric name has characters a name cannot have.
    #[error("`{name}` is not a metric name (letters, digits, `_`, `:`; not starting with a digit)")]
    Metric {
        /// The name.
        name: String,
    },
    /// A label name has characters a name cannot have.
    #[error("`{name}` is not a label name (letters, digits, `_`; not starting with a digit)")]
    Name {
        /// The name.
        name: String,
    },
    /// The regex does not compile.
    #[error("`{text}`: {message}")]
    Regex {
        /// The matcher.
        text: String,
        /// The regex engine's words.
        message: String,
    },
}

/// A Prometheus metric or label name (`:` allowed, as in recording rules).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl LabelMatcher {
    /// Reads `name=value`, `name!=value`, `name=~regex` or `name!~regex`;
    /// the value may be in double quotes (with `\"` and `\\` escapes).
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let syntax = || SelectorError::Syntax { text: text.into() };
        let at = text.find(['=', '!']).ok_or_else(syntax)?;
        let name = text[..at].trim();
        let rest = &text[at..];
        let (op, value) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|v| (op, v.trim())))
        .ok_or_else(syntax)?;
        if !valid_name(name) || name.contains(':') {
            return Err(SelectorError::Name { name: name.into() });
        }
        let value = unquote(value).ok_or_else(syntax)?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| SelectorError::Regex {
                    text: text.into(),
                    message: e.to_string(),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(LabelMatcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (&self.regex, self.op) {
            (_, MatchOp::Equal) => value == self.value,
            (_, MatchOp::NotEqual) => value != self.value,
            (Some(re), MatchOp::Regex) => re.is_match(value),
            (Some(re), MatchOp::NotRegex) => !re.is_match(value),
            (None, _) => false,
        }
    }
}

/// A double-quoted value unescaped, or a bare one as it is.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

impl fmt::Display for LabelMatcher {
    /// As PromQL writes it: `name=~"value"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.symbol(),
            serde_json::Value::from(self.value.as_str())
        )
    }
}

/// A metric name with label matchers.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The sample name (`http_requests_total`, `queue_depth`).
    pub metric: String,
    matchers: Vec<LabelMatcher>,
}

impl Selector {
    /// The series named `metric` whose labels satisfy every matcher.
    pub fn new(metric: &str, matchers: &[String]) -> Result<Self, SelectorError> {
        if !valid_name(metric) {
            return Err(SelectorError::Metric {
                name: metric.into(),
            });
        }
        Ok(Selector {
            metric: metric.into(),
            matchers: matchers
                .iter()
                .map(|m| LabelMatcher::parse(m))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether a series with `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

impl fmt::Display for Selector {
    /// The PromQL selector: `metric{a="x",b!~"y"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.matchers.is_empty() {
            let parts: Vec<String> = self.matchers.iter().map(ToString::to_string).collect();
            write!(f, "{{{}}}", parts.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_operator_selects_as_promql_does() {
        let s = Selector::new(
            "http_requests_total",
            &[
                r#"status=~"5..""#.into(),
                "route != /health".into(),
                r#"method!~"HEAD|OPTIONS""#.into(),
                r#"job="api""#.into(),
            ],
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            r#"http_requests_total{status=~"5..",route!="/health",method!~"HEAD|OPTIONS",job="api"}"#
        );
        let base = [
            ("status", "503"),
            ("route", "/v1"),
            ("method", "GET"),
            ("job", "api"),
        ];
        assert!(s.matches(&labels(&base)));
        // The regex is anchored: 5031 is not 5..
        let mut l = labels(&base);
        l.insert("status".into(), "5031".into());
        assert!(!s.matches(&l));
        l = labels(&base);
        l.insert("route".into(), "/health".into());
        assert!(!s.matches(&l));
        l = labels(&base);
        l.insert("method".into(), "HEAD".into());
        assert!(!s.matches(&l));
        // A missing label is the empty string: `job="api"` fails, `route!=` holds.
        l = labels(&base);
        l.remove("job");
        assert!(!s.matches(&l));
        l = labels(&base);
        l.remove("route");
        assert!(s.matches(&l));
    }

    #[test]
    fn bad_matchers_say_what_to_write() {
        let err = LabelMatcher::parse("status>500").unwrap_err();
        assert!(err.to_string().contains("NAME=~\"regex\""), "{err}");
        let err = LabelMatcher::parse("9x=1").unwrap_err();
        assert!(err.to_string().contains("`9x` is not"), "{err}");
        let err = LabelMatcher::parse("s=~\"(\"").unwrap_err();
        assert!(matches!(err, SelectorError::Regex { .. }), "{err}");
        assert!(LabelMatcher::parse("s=\"open").is_err());
        assert!(Selector::new("a-b", &[]).is_err());
        let m = LabelMatcher::parse(r#"path="C:\\dir \"q\"""#).unwrap();
        assert!(m.matches(&labels(&[("path", "C:\\dir \"q\"")])));
    }
}
