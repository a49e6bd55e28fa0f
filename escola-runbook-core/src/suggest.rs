//! "Did you mean": the known name nearest to a mistyped one, for unknown
//! checks, parameters, file keys, steps and phases. One edit distance for
//! the whole product, so every error suggests alike.

/// The candidate closest to `word` by edit distance, if reasonably close
/// (at most a third of the longer word's length, and at least 2 edits are
/// always tolerated).
///
/// ```
/// use escola_runbook_core::suggest::nearest;
///
/// assert_eq!(nearest("comand", ["command", "coverage"]), Some("command"));
/// assert_eq!(nearest("zzzzzz", ["id"]), None);
/// ```
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word.chars().count()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Names worth suggesting for `word`: up to three that contain it or that
/// it contains (`smoke` for `smoke-tests`), else the [`nearest`] one.
pub fn related<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<&'a str> {
    let containing: Vec<&str> = candidates
        .clone()
        .into_iter()
        .filter(|c| c.contains(word) || word.contains(*c))
        .take(3)
        .collect();
    if containing.is_empty() {
        nearest(word, candidates).into_iter().collect()
    } else {
        containing
    }
}

/// ` (did you mean `a`?)` for `names`, or nothing when there are none: the
/// tail every "unknown name" message ends with.
pub fn hint<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if quoted.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", quoted.join(", "))
    }
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_tolerates_a_few_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(nearest("shel", ["shell", "program"]), Some("shell"));
        assert_eq!(
            nearest("timout", ["id", "timeout", "title"]),
            Some("timeout")
        );
        assert_eq!(nearest("x", Vec::<&str>::new()), None);
    }

    #[test]
    fn related_prefers_names_containing_the_word() {
        let steps = ["smoke-tests", "smoke-report", "migrations"];
        assert_eq!(related("smoke", steps), ["smoke-tests", "smoke-report"]);
        assert_eq!(related("migratons", steps), ["migrations"]);
        assert_eq!(
            hint(related("smoke", ["smoke-tests"])),
            " (did you mean `smoke-tests`?)"
        );
        assert_eq!(hint(related("zzz", steps)), "");
    }
}
