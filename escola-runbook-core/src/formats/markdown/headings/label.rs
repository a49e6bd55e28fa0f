//! Heading labels: the ordinal a heading names itself by (`Phase A`,
//! `Fase 2`, `1.`, `B)`), which makes headings siblings.

use crate::formats::markdown::slug::ascii_fold;

/// What makes headings siblings: the same word before an ordinal, or the
/// same kind of numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    /// `1.`, `2)`, `3 Deploy`; `2.1` has depth 2.
    Number { depth: usize },
    /// `A.`, `II)`.
    Letter,
    /// `Phase A`, `Fase 2`, `Step 3`: the word, folded.
    Word(String),
}

/// A heading's label: `Phase A` in `Phase A: Before the window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Label<'a> {
    pub(super) key: Key,
    /// `A`, `2`, `2.1`.
    pub(super) ordinal: &'a str,
    /// The label as written (`Phase A`, `1.`).
    pub(super) name: &'a str,
    /// The title after the label and its separator.
    pub(super) rest: &'a str,
    /// Numbered or lettered (the label is not part of the name).
    pub(super) numbered: bool,
    /// A number followed by a space only (`3 Deploy`): numbering only when
    /// siblings are numbered too (`2024 plan` is not).
    pub(super) bare: bool,
}

pub(super) fn label(title: &str) -> Option<Label<'_>> {
    let t = title.trim();
    numbered(t).or_else(|| lettered(t)).or_else(|| worded(t))
}

/// `1. Pré-Deploy`, `2.1) Deploy`, `4 - Rollback`, `3 Deploy` (bare), `3.`.
fn numbered(t: &str) -> Option<Label<'_>> {
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number = &t[..end];
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let ordinal = number.trim_end_matches('.');
    let parts: Vec<&str> = ordinal.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let rest = &t[end..];
    let (rest, bare) = if let Some(r) = rest.strip_prefix([')', ':', '-', '—']) {
        (r, false)
    } else if number.ends_with('.') {
        (rest, false)
    } else if let Some(r) = rest
        .trim_start()
        .strip_prefix(['-', '—', '–'])
        .filter(|r| r.starts_with(char::is_whitespace))
    {
        (r, false)
    } else if bare_number(&parts) && (rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        (rest, true)
    } else {
        return None;
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(Label {
        key: Key::Number { depth: parts.len() },
        ordinal,
        name: number,
        rest: rest.trim(),
        numbered: true,
        bare,
    })
}

/// A number with no punctuation after it is numbering only when it is
/// short (`3 Deploy`, `2.1 Backups`); `2024 plan` is not.
fn bare_number(parts: &[&str]) -> bool {
    match parts {
        [one] => one.len() <= 2,
        _ => parts.iter().all(|p| p.len() <= 3),
    }
}

/// `A. Preparação`, `II) Deploy`.
fn lettered(t: &str) -> Option<Label<'_>> {
    let end = t.find(|c: char| !c.is_ascii_uppercase()).unwrap_or(t.len());
    let token = &t[..end];
    let roman = !token.is_empty() && token.len() <= 6 && token.chars().all(|c| "IVXLC".contains(c));
    if !(token.len() == 1 || roman) {
        return None;
    }
    let rest = t[end..].strip_prefix(['.', ')'])?;
    if !rest.starts_with(char::is_whitespace) || rest.trim().is_empty() {
        return None;
    }
    Some(Label {
        key: Key::Letter,
        ordinal: token,
        name: &t[..end + 1],
        rest: rest.trim(),
        numbered: true,
        bare: false,
    })
}

const SEPARATORS: &[char] = &[':', '.', ')', '—', '–', '-', ','];

/// `Phase A: Before the window`, `Fase 2 — Deploy`, `Step 3`, `Parte II`.
fn worded(t: &str) -> Option<Label<'_>> {
    let word_end = t.find(|c: char| !c.is_alphabetic()).unwrap_or(t.len());
    let word = &t[..word_end];
    if word.chars().count() < 2 {
        return None;
    }
    let after = &t[word_end..];
    let spaced = after.trim_start();
    if spaced.len() == after.len() {
        return None;
    }
    let start = t.len() - spaced.len();
    let digits = spaced
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(spaced.len());
    let letters = spaced
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(spaced.len());
    let (len, loose) = if digits > 0 && spaced.starts_with(|c: char| c.is_ascii_digit()) {
        let number = spaced[..digits].trim_end_matches('.');
        if number.split('.').any(|p| p.is_empty() || p.len() > 3) {
            return None;
        }
        (number.len(), true)
    } else {
        let token = &spaced[..letters];
        let upper = token.chars().all(|c| c.is_ascii_uppercase());
        let roman = upper && token.len() <= 6 && token.chars().all(|c| "IVXLC".contains(c));
        match token.len() {
            1 => (1, upper),
            2.. if roman => (token.len(), true),
            _ => return None,
        }
    };
    let ordinal = &spaced[..len];
    let tail = &spaced[len..];
    // `Passo a passo`: a lowercase letter is an ordinal only before
    // punctuation or at the end.
    let ends = tail.is_empty()
        || tail.starts_with(SEPARATORS)
        || (loose && tail.starts_with(char::is_whitespace));
    if !ends {
        return None;
    }
    Some(Label {
        key: Key::Word(ascii_fold(word)),
        ordinal,
        name: &t[..start + len],
        rest: tail.trim_start_matches(|c: char| c.is_whitespace() || SEPARATORS.contains(&c)),
        numbered: false,
        bare: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let l = label("Phase A: Before the window").unwrap();
        assert_eq!(
            (l.name, l.ordinal, l.rest),
            ("Phase A", "A", "Before the window")
        );
        assert_eq!(l.key, Key::Word("phase".into()));
        assert_eq!(label("Fase 2 — Deploy").unwrap().rest, "Deploy");
        assert_eq!(label("Etapa 3").unwrap().ordinal, "3");
        assert_eq!(label("Parte IV - fim").unwrap().ordinal, "IV");
        assert_eq!(label("2.1) Deploy").unwrap().key, Key::Number { depth: 2 });
        assert_eq!(label("4 - Rollback").unwrap().rest, "Rollback");
        assert!(label("3 Deploy").unwrap().bare);
        assert_eq!(label("B. Deploy").unwrap().key, Key::Letter);
        assert_eq!(label("Passo a passo"), None);
        assert_eq!(label("Configure DNS"), None);
        assert_eq!(label("2024 plan"), None);
        assert_eq!(label("Deploy"), None);
        assert_eq!(label("A new hope"), None);
        assert_eq!(label("Step a: prep").unwrap().ordinal, "a");
    }
}
