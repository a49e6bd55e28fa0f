//! Sizes of answers: the body cap every source enforces, read from text
//! (`64MiB`, `200MB`) and written back exactly. A leaf: the parser and the
//! sources both use it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Default cap on one answer's body: a `/metrics` page or a Prometheus API
/// answer larger than this is refused before it is held in memory.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024 * 1024;
/// [`DEFAULT_MAX_BODY`] as written in parameters and `check --list`.
pub const DEFAULT_MAX_BODY_TEXT: &str = "64MiB";

/// `67108864` as `64 MiB`, for messages.
pub fn format_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// A body cap could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytesError {
    /// Not a number with a known unit.
    #[error("`{text}` is not a size; write e.g. 64MiB, 200MB or 1000000 (bytes)")]
    NotASize {
        /// The text as written.
        text: String,
    },
    /// More than a `u64` holds.
    #[error("`{text}` is larger than this machine can address")]
    TooBig {
        /// The text as written.
        text: String,
    },
    /// Under 1 KiB.
    #[error("`{text}` is below 1 KiB; no metrics page fits")]
    TooSmall {
        /// The text as written.
        text: String,
    },
}

/// Parses a body cap: bytes (`1000000`) or with a unit, `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000); at least
/// 1 KiB.
pub fn parse_bytes(text: &str) -> Result<u64, BytesError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let not_a_size = || BytesError::NotASize { text: text.into() };
    let too_big = || BytesError::TooBig { text: text.into() };
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(not_a_size()),
    };
    let n: u64 = number.parse().map_err(|_| {
        if number.is_empty() {
            not_a_size()
        } else {
            too_big()
        }
    })?;
    let bytes = n.checked_mul(factor).ok_or_else(too_big)?;
    if bytes < 1024 {
        return Err(BytesError::TooSmall { text: text.into() });
    }
    Ok(bytes)
}

/// A body cap as a parameter: read with [`parse_bytes`] (or a whole
/// number of bytes), written exactly (`64MiB`, `1500KiB`, `1000000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// [`DEFAULT_MAX_BODY`].
    pub fn default_max_body() -> Self {
        ByteSize(DEFAULT_MAX_BODY)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        let n = self.0;
        let text = if n % MIB == 0 {
            format!("{}MiB", n / MIB)
        } else if n % KIB == 0 {
            format!("{}KiB", n / KIB)
        } else {
            n.to_string()
        };
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = escola_runbook_core::catalog::number_or_text(d)?;
        parse_bytes(&text)
            .map(ByteSize)
            .map_err(serde::de::Error::custom)
    }
}

escola_runbook_core::text_param_schema!(
    ByteSize,
    "ByteSize",
    "a size: bytes, or with KiB, MiB, GiB, KB, MB, GB (64MiB); at least 1 KiB"
);
