//! The one duration syntax and range the product reads, from flags, runbook
//! and rules files, Markdown bindings and check parameters.
//!
//! A duration is a number and a unit — `500ms`, `30s`, `5m` (or `5min`),
//! `2h`, `1d` — or several of them added up (`1h30m`, as reports print
//! them), or a bare number of seconds (`90`). Decimals are allowed
//! (`1.5s`); a space between number and unit too (`30 s`). Values are
//! checked against a [`Range`]: by default [`Range::STANDARD`], 1 ms to
//! 30 days, so `0s` (which some tools read as "no limit") and
//! `99999999d` are refused with the range in the message. Arithmetic is
//! exact integer nanoseconds: no input overflows or panics.
//!
//! ```
//! use std::time::Duration;
//! use escola_runbook_core::duration::{self, Range};
//!
//! assert_eq!(duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
//! assert!(duration::parse("0s").is_err());
//! assert_eq!(duration::parse_in("0s", Range::ZERO_OR_MORE), Ok(Duration::ZERO));
//! assert_eq!(duration::exact(Duration::from_millis(1500)), "1500ms");
//! ```
//!
//! A check's parameter struct declares a duration field as [`Span`]
//! (within [`Range::STANDARD`]) or `Span<LookBack>` / `Span<ZeroOrMore>`:
//! it reads with this parser and writes back with [`exact`], so a runbook
//! exported and read again keeps every millisecond.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One day.
const DAY: Duration = Duration::from_secs(86_400);

/// The shortest duration accepted by default: 1 ms.
pub const MIN: Duration = Duration::from_millis(1);
/// The longest duration accepted by default: 30 days (a 24-hour watch and
/// a 2-week look-back fit; anything longer is a typo or a "no limit" in
/// disguise).
pub const MAX: Duration = Duration::from_secs(30 * 86_400);

/// The bounds a duration must fall within, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Shortest accepted.
    pub min: Duration,
    /// Longest accepted.
    pub max: Duration,
}

impl Range {
    /// 1 ms to 30 days: timeouts, intervals, windows, deadlines.
    pub const STANDARD: Range = Range { min: MIN, max: MAX };
    /// 0 to 30 days, where zero has a documented meaning that is not "no
    /// limit": a rule's `for` (fire on the first breach, as in Prometheus),
    /// `keep_firing_for` (stop at once), a probe window (since the previous
    /// evaluation).
    pub const ZERO_OR_MORE: Range = Range {
        min: Duration::ZERO,
        max: MAX,
    };
    /// 1 ms to 3650 days: how far back a repository check looks (docs
    /// changed within `90d`, a coverage report at most `180d` old).
    pub const LOOK_BACK: Range = Range {
        min: MIN,
        max: Duration::from_secs(3650 * 86_400),
    };

    /// True when `d` is within the bounds.
    pub fn contains(&self, d: Duration) -> bool {
        self.min <= d && d <= self.max
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", exact(self.min), exact(self.max))
    }
}

/// A duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not in the syntax.
    #[error(
        "`{text}` is not a duration; write a number and a unit such as 500ms, 30s, 5m, 2h or 1d"
    )]
    Syntax {
        /// What was written.
        text: String,
    },
    /// Well written, but outside the range.
    #[error("`{text}` is outside the accepted range, {range}{}", zero_hint(*.range, .text))]
    OutOfRange {
        /// What was written.
        text: String,
        /// The range it had to fall within.
        range: Range,
    },
}

fn zero_hint(range: Range, text: &str) -> &'static str {
    if range.min > Duration::ZERO && is_zero_text(text) {
        " (zero would mean \"no limit\" or \"at once\"; give the real bound)"
    } else {
        ""
    }
}

fn is_zero_text(text: &str) -> bool {
    let digits = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == ' ');
    !digits.is_empty() && digits.chars().all(|c| c == '0' || c == '.')
}

/// Parses `text` within [`Range::STANDARD`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_in(text, Range::STANDARD)
}

/// Parses `text` within `range`.
pub fn parse_in(text: &str, range: Range) -> Result<Duration, DurationError> {
    let out_of_range = || DurationError::OutOfRange {
        text: text.to_owned(),
        range,
    };
    match nanos(text) {
        Ok(n) => match u64::try_from(n / 1_000_000_000) {
            Ok(secs) => {
                let d = Duration::new(secs, (n % 1_000_000_000) as u32);
                if range.contains(d) {
                    Ok(d)
                } else {
                    Err(out_of_range())
                }
            }
            Err(_) => Err(out_of_range()),
        },
        Err(Lexed::Huge | Lexed::Negative) => Err(out_of_range()),
        Err(Lexed::Bad) => Err(DurationError::Syntax {
            text: text.to_owned(),
        }),
    }
}

/// Checks a duration that did not come as text (a TOML integer of seconds)
/// against `range`, naming it as `text` in the error.
pub fn check_in(d: Duration, text: &str, range: Range) -> Result<Duration, DurationError> {
    if range.contains(d) {
        Ok(d)
    } else {
        Err(DurationError::OutOfRange {
            text: text.to_owned(),
            range,
        })
    }
}

/// The shortest exact text for `d` in this syntax (`90s`, `30m`, `1500ms`,
/// `2d`): what files and parameters are written back with, so
/// `parse(&exact(d)) == Ok(d)` for whole milliseconds.
pub fn exact(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if nanos % 1_000_000 != 0 {
        let fraction = format!("{nanos:09}");
        return format!("{secs}.{}s", fraction.trim_end_matches('0'));
    }
    if nanos != 0 {
        return format!("{}ms", d.as_millis());
    }
    if secs == 0 {
        "0s".into()
    } else if secs % DAY.as_secs() == 0 {
        format!("{}d", secs / DAY.as_secs())
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// A span for evidence: `30d` for whole days, `3d4h` beyond two days,
/// otherwise like [`format_duration`](crate::outcome::format_duration) (`36h`, `5m`).
pub fn format_span(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours) = (secs / 86_400, (secs % 86_400) / 3600);
    if secs >= 86_400 && secs % 86_400 == 0 {
        format!("{days}d")
    } else if days >= 2 {
        if hours == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{hours}h")
        }
    } else {
        crate::outcome::format_duration(d)
    }
}

/// The range a [`Span`] is read within: a marker type per [`Range`].
pub trait Bounds: Send + Sync + 'static {
    /// The accepted range.
    const RANGE: Range;
}

/// [`Range::STANDARD`]: timeouts, intervals, windows, deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {}
impl Bounds for Standard {
    const RANGE: Range = Range::STANDARD;
}

/// [`Range::ZERO_OR_MORE`]: where zero has a documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroOrMore {}
impl Bounds for ZeroOrMore {
    const RANGE: Range = Range::ZERO_OR_MORE;
}

/// [`Range::LOOK_BACK`]: how far back a repository check looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookBack {}
impl Bounds for LookBack {
    const RANGE: Range = Range::LOOK_BACK;
}

/// A duration as a parameter: read from text (`"30s"`, `"1500ms"`) with
/// [`parse_in`] within `B`'s range, or from a whole number of seconds;
/// written with [`exact`], so a round trip keeps its precision. Its JSON
/// schema is a string of format `duration`.
///
/// A span set in code ([`Span::from`]) is not range-checked: a builder
/// takes what the program says; files, flags and bindings are checked.
///
/// ```
/// use std::time::Duration;
/// use escola_runbook_core::duration::{LookBack, Span};
///
/// let t: Span = serde_json::from_str("\"1.5s\"").unwrap();
/// assert_eq!(t.get(), Duration::from_millis(1500));
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"1500ms\"");
/// assert!(serde_json::from_str::<Span>("\"0s\"").is_err());
/// let back: Span<LookBack> = serde_json::from_str("\"90d\"").unwrap();
/// assert_eq!(back.get(), Duration::from_secs(90 * 86_400));
/// ```
pub struct Span<B: Bounds = Standard> {
    duration: Duration,
    bounds: PhantomData<B>,
}

impl<B: Bounds> Span<B> {
    /// The duration.
    pub fn get(self) -> Duration {
        self.duration
    }
}

impl<B: Bounds> From<Duration> for Span<B> {
    fn from(duration: Duration) -> Self {
        Span {
            duration,
            bounds: PhantomData,
        }
    }
}

impl<B: Bounds> Clone for Span<B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Bounds> Copy for Span<B> {}
impl<B: Bounds> PartialEq for Span<B> {
    fn eq(&self, other: &Self) -> bool {
        self.duration == other.duration
    }
}
impl<B: Bounds> Eq for Span<B> {}

impl<B: Bounds> fmt::Debug for Span<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Span({})", exact(self.duration))
    }
}

impl<B: Bounds> fmt::Display for Span<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&exact(self.duration))
    }
}

impl<B: Bounds> Serialize for Span<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&exact(self.duration))
    }
}

impl<'de, B: Bounds> Deserialize<'de> for Span<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<B>(PhantomData<B>);
        impl<B: Bounds> Visitor<'_> for V<B> {
            type Value = Span<B>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"30s\", \"5m\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span<B>, E> {
                parse_in(v, B::RANGE).map(Span::from).map_err(E::custom)
            }
            // A number is seconds, in the same range as text.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span<B>, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span<B>, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<B: Bounds> schemars::JsonSchema for Span<B> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "duration",
            "description": format!(
                "a number and a unit (500ms, 30s, 5m, 2h, 1d), from {}",
                B::RANGE
            ),
        })
    }
}

enum Lexed {
    Bad,
    Negative,
    Huge,
}

/// Nanoseconds per unit.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    })
}

/// The total in nanoseconds (fractions below 1 ns dropped).
fn nanos(text: &str) -> Result<u128, Lexed> {
    let text = text.trim();
    if let Some(positive) = text.strip_prefix('-') {
        // Only a negative *number* is out of range; `-x` is just bad.
        return match nanos(positive) {
            Ok(_) | Err(Lexed::Huge) => Err(Lexed::Negative),
            Err(e) => Err(e),
        };
    }
    let mut rest = text;
    let mut total: u128 = 0;
    let mut terms = 0;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(split);
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per = match unit {
            // A bare number is seconds, and only when it is all there is.
            "" if terms == 0 && after.trim().is_empty() => 1_000_000_000,
            _ => unit_nanos(unit).ok_or(Lexed::Bad)?,
        };
        total = total.checked_add(term(number, per)?).ok_or(Lexed::Huge)?;
        terms += 1;
        rest = after.trim_start();
    }
    if terms == 0 {
        return Err(Lexed::Bad);
    }
    Ok(total)
}

/// `number` (digits, at most one `.`, a digit on at least one side) times
/// `per` nanoseconds, exactly.
fn term(number: &str, per: u128) -> Result<u128, Lexed> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(Lexed::Bad);
    }
    let mut value: u128 = 0;
    for digit in whole.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
            .ok_or(Lexed::Huge)?;
    }
    let mut nanos = value.checked_mul(per).ok_or(Lexed::Huge)?;
    // Each fraction digit is worth a tenth of the one before; past the
    // unit's nanosecond resolution the rest cannot change the result.
    let mut scale = per;
    for digit in fraction.bytes() {
        scale /= 10;
        nanos = nanos
            .checked_add(u128::from(digit - b'0') * scale)
            .ok_or(Lexed::Huge)?;
    }
    Ok(nanos)
}

/// A duration as whole milliseconds (records and reports).
pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// An optional duration as whole milliseconds.
pub(crate) mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_kept_from_before_and_combined_forms() {
        let ok = |t: &str| parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("5min"), Duration::from_secs(300));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("1d"), DAY);
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("10"), Duration::from_secs(10));
        assert_eq!(ok(" 30 s "), Duration::from_secs(30));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h 30m 5s"), Duration::from_secs(5405));
        assert_eq!(ok("30d"), MAX);
        for bad in [
            "",
            "s",
            "5 parsecs",
            "1.2.3s",
            ".s",
            "5m10",
            "1e3s",
            "-x",
            "10 20",
        ] {
            assert!(
                matches!(parse(bad), Err(DurationError::Syntax { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn range_is_enforced_and_named() {
        for out in [
            "0",
            "0s",
            "0.0000001s",
            "31d",
            "99999999d",
            "18446744073709551615",
            "340282366920938463463374607431768211456s",
            "-1s",
        ] {
            let err = parse(out).unwrap_err();
            assert!(
                matches!(err, DurationError::OutOfRange { .. }),
                "{out}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(out) && text.contains("1ms to 30d"), "{text}");
        }
        assert!(parse("0s").unwrap_err().to_string().contains("no limit"));
        assert_eq!(parse_in("0", Range::ZERO_OR_MORE), Ok(Duration::ZERO));
        assert_eq!(
            parse_in("90d", Range::LOOK_BACK),
            Ok(Duration::from_secs(90 * 86_400))
        );
        assert!(check_in(Duration::ZERO, "0", Range::STANDARD).is_err());
    }

    #[test]
    fn exact_round_trips() {
        for d in [
            Duration::new(3, 1),
            Duration::new(0, 250_000),
            Duration::from_millis(1),
            Duration::from_millis(1500),
            Duration::from_secs(90),
            Duration::from_secs(1800),
            Duration::from_secs(7200),
            Duration::from_secs(2 * 86_400),
            MAX,
        ] {
            assert_eq!(
                parse_in(&exact(d), Range::ZERO_OR_MORE),
                Ok(d),
                "{}",
                exact(d)
            );
        }
        assert_eq!(Range::STANDARD.to_string(), "1ms to 30d");
    }

    /// A small deterministic generator (xorshift), so the property runs
    /// the same way everywhere without a dependency.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    #[test]
    fn any_numeric_text_parses_in_range_or_is_refused_without_panic() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let units = ["", "ms", "s", "m", "min", "h", "d", " s", "x", "."];
        for _ in 0..50_000 {
            let digits = match g.next() % 4 {
                0 => (g.next() % 10).to_string(),
                1 => g.next().to_string(),
                2 => format!("{}{}", g.next(), g.next()),
                _ => format!("{}.{}", g.next() % 1000, g.next()),
            };
            let sign = g.pick(&["", "", "", "-", "+"]);
            let mut text = format!("{sign}{digits}{}", g.pick(&units));
            if g.next() % 5 == 0 {
                text.push_str(&format!("{}{}", g.next() % 100, g.pick(&units)));
            }
            for range in [Range::STANDARD, Range::ZERO_OR_MORE, Range::LOOK_BACK] {
                match parse_in(&text, range) {
                    Ok(d) => assert!(range.contains(d), "{text} gave {d:?}"),
                    Err(e) => assert!(e.to_string().contains(text.as_str()), "{e}"),
                }
            }
        }
    }
}
