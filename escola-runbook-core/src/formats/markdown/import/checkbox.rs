//! Checkboxes as written: `[ ]`, `[x]`, in backticks, and near misses
//! (`[ ]]`, `[]`) that are read as boxes with a warning.

use std::ops::Range;

use super::importer::Importer;
use crate::formats::markdown::tree::{Inline, InlineKind};

/// A checkbox as written: `[ ]`, `[x]`, or a near miss like `[ ]]` or `[]`.
#[derive(Debug, Clone)]
pub(super) struct Checkbox {
    pub(super) checked: bool,
    /// `[` to the first `]`, inclusive: what export rewrites.
    pub(super) span: Range<usize>,
    /// The token as written, when it is not a clean `[ ]`/`[x]`.
    pub(super) malformed: Option<String>,
    /// End of the whole token (closing backtick, extra `]`).
    pub(super) token_end: usize,
}

/// Reads a checkbox token at the start of `s`: returns (checked, bytes up
/// to and including the first `]`, whole token length, exact).
pub(super) fn checkbox_token(s: &str) -> Option<(bool, usize, usize, bool)> {
    let rest = s.strip_prefix('[')?;
    let inner_len = rest.find(']')?;
    let inner = &rest[..inner_len];
    let mark = inner.trim();
    let checked = match mark {
        // `!` is what export writes for a step that went wrong: not done.
        "" | "!" => false,
        "x" | "X" => true,
        _ => return None,
    };
    if inner.len() > 3 {
        return None;
    }
    let first_close = 1 + inner_len + 1;
    let extra = s[first_close..].chars().take_while(|c| *c == ']').count();
    let exact = inner.len() == 1 && extra == 0;
    Some((checked, first_close, first_close + extra, exact))
}

impl Importer<'_> {
    pub(super) fn checkbox(&self, inlines: &[Inline]) -> Option<Checkbox> {
        let mut leading = String::new();
        let mut start = None;
        for i in inlines {
            match &i.kind {
                InlineKind::TaskMarker(checked) => {
                    // `[ ]]`: the parser takes `[ ]` and leaves `]` as text.
                    let extra = self
                        .src
                        .get(i.range.end..)
                        .unwrap_or("")
                        .chars()
                        .take_while(|c| *c == ']')
                        .count();
                    let written = self.src.get(i.range.clone()).unwrap_or("[ ]");
                    return Some(Checkbox {
                        checked: *checked,
                        span: i.range.clone(),
                        malformed: (extra > 0).then(|| format!("{written}{}", "]".repeat(extra))),
                        token_end: i.range.end + extra,
                    });
                }
                InlineKind::Style => {}
                InlineKind::Code(code) if leading.trim().is_empty() => {
                    let token = code.trim();
                    let (checked, first_close, whole, exact) = checkbox_token(token)?;
                    if whole != token.len() {
                        return None;
                    }
                    let open = self.src.get(i.range.clone())?.find('[')? + i.range.start;
                    return Some(Checkbox {
                        checked,
                        span: open..open + first_close,
                        malformed: (!exact).then(|| token.to_owned()),
                        token_end: i.range.end,
                    });
                }
                InlineKind::Text(t) => {
                    if start.is_none() && !t.trim().is_empty() {
                        start = Some(i.range.start);
                    }
                    leading.push_str(t);
                    if leading.trim_start().len() >= 5 {
                        break;
                    }
                }
                _ => break,
            }
        }
        let trimmed = leading.trim_start();
        let (checked, first_close, whole, exact) = checkbox_token(trimmed)?;
        if trimmed[whole..]
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace())
            && whole == first_close
        {
            // `[x]foo` or `[link]`: not a box.
            return None;
        }
        let open = start? + self.src.get(start?..)?.find('[')?;
        Some(Checkbox {
            checked,
            span: open..open + first_close,
            malformed: (!exact).then(|| trimmed[..whole].to_owned()),
            token_end: open + whole,
        })
    }
}

/// The inlines after the checkbox token (which ends at `token_end`).
pub(super) fn strip_checkbox(inlines: &[Inline], token_end: usize, src: &str) -> Vec<Inline> {
    inlines
        .iter()
        .filter_map(|i| match &i.kind {
            InlineKind::TaskMarker(_) => None,
            InlineKind::Style => Some(i.clone()),
            _ if i.range.end <= token_end => None,
            InlineKind::Text(_) if i.range.start < token_end => Some(Inline {
                kind: InlineKind::Text(src.get(token_end..i.range.end).unwrap_or("").to_owned()),
                range: token_end..i.range.end,
            }),
            _ => Some(i.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkbox_tokens() {
        assert_eq!(checkbox_token("[ ] x"), Some((false, 3, 3, true)));
        assert_eq!(checkbox_token("[x]"), Some((true, 3, 3, true)));
        assert_eq!(checkbox_token("[ ]]"), Some((false, 3, 4, false)));
        assert_eq!(checkbox_token("[]"), Some((false, 2, 2, false)));
        assert_eq!(checkbox_token("[!] again"), Some((false, 3, 3, true)));
        assert_eq!(checkbox_token("[link]"), None);
        assert_eq!(checkbox_token("no"), None);
    }
}
