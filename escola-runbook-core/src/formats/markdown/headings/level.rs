//! The heading level a user names to override the inference, and how the
//! levels a document has are described.

use std::fmt;
use std::str::FromStr;

/// The heading level whose headings are the phases, given by the user to
/// override the inference (`--phase-level N`): 1 (`#`) to 6 (`######`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct PhaseLevel(u8);

impl PhaseLevel {
    /// `level` as a phase level; refused outside 1..=6.
    pub fn new(level: u8) -> Result<PhaseLevel, PhaseLevelError> {
        if (1..=6).contains(&level) {
            Ok(PhaseLevel(level))
        } else {
            Err(PhaseLevelError {
                given: level.to_string(),
            })
        }
    }

    /// The level, 1 to 6.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for PhaseLevel {
    type Error = PhaseLevelError;

    fn try_from(level: u8) -> Result<PhaseLevel, PhaseLevelError> {
        PhaseLevel::new(level)
    }
}

impl From<PhaseLevel> for u8 {
    fn from(level: PhaseLevel) -> u8 {
        level.0
    }
}

impl FromStr for PhaseLevel {
    type Err = PhaseLevelError;

    fn from_str(text: &str) -> Result<PhaseLevel, PhaseLevelError> {
        let error = || PhaseLevelError {
            given: text.to_owned(),
        };
        let level: u8 = text.trim().parse().map_err(|_| error())?;
        PhaseLevel::new(level).map_err(|_| error())
    }
}

impl fmt::Display for PhaseLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A phase level that is not a heading level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a heading level: give a number from 1 (`#`) to 6 (`######`)")]
pub struct PhaseLevelError {
    /// What was given.
    pub given: String,
}

/// `its headings are at levels 1, 2` (or `it has no heading`), for
/// messages about a phase level.
pub(crate) fn describe_levels(levels: &[u8]) -> String {
    if levels.is_empty() {
        return "it has no heading".into();
    }
    let list: Vec<String> = levels.iter().map(u8::to_string).collect();
    format!(
        "its headings are at level{} {}",
        if levels.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_levels() {
        assert_eq!("3".parse::<PhaseLevel>().unwrap().get(), 3);
        for bad in ["0", "7", "-1", "two", ""] {
            let err = bad.parse::<PhaseLevel>().unwrap_err();
            assert_eq!(err.given, bad);
            assert!(err.to_string().contains("1 (`#`) to 6"), "{err}");
        }
        assert!(PhaseLevel::new(7).is_err());
    }
}
