//! What a phase heading says about its kind: rollback or watch words.

use crate::formats::markdown::slug::ascii_fold;

/// The words by which a title says rollback (`Rollback`, `Roll back`,
/// `Roll-back`, `Revert`, `Reverter`, `Reversão`), as written; whole words
/// only, so `rollbacks-log` and `reverse proxy` do not.
pub(super) fn rollback_words(title: &str) -> Option<&str> {
    const SINGLE: &[&str] = &[
        "rollback",
        "roll-back",
        "rolling-back",
        "revert",
        "reverting",
        "reverter",
        "reversao",
        "revertir",
        "reversion",
    ];
    let words = words(title);
    for (n, &(start, word)) in words.iter().enumerate() {
        let folded = ascii_fold(word);
        if SINGLE.contains(&folded.as_str()) {
            return Some(word);
        }
        if let (true, Some(&(next_start, next))) =
            (folded == "roll" || folded == "rolling", words.get(n + 1))
        {
            let between = &title[start + word.len()..next_start];
            if ascii_fold(next) == "back" && between.trim().is_empty() {
                return Some(&title[start..next_start + next.len()]);
            }
        }
    }
    None
}

/// Words with their byte offsets; a hyphen inside a word keeps it whole.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let is_part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    for (i, c) in text.char_indices() {
        match (start, is_part(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
        .map(|(s, w)| {
            let trimmed = w.trim_start_matches(['-', '_']);
            (
                s + w.len() - trimmed.len(),
                trimmed.trim_end_matches(['-', '_']),
            )
        })
        .filter(|(_, w)| !w.is_empty())
        .collect()
}

/// Watch phases: monitoring, watch, observability.
pub(super) fn is_watch(title: &str) -> bool {
    let folded = ascii_fold(title);
    folded.contains("monitor") || folded.contains("watch") || folded.contains("observab")
}
