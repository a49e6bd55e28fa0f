//! Places in the file: byte offsets to line and column, paths
//! (`phases[2].steps[0].check`) to the span of their value, and the nearest
//! valid name for an unknown key.

use toml::de::{DeTable, DeValue};

use crate::suggest::nearest;

use super::convert::PathSeg;

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Where the value at `path` is; the deepest part of the path that exists
/// when the rest is missing (a key not given at all).
pub(crate) fn path_position(text: &str, path: &[PathSeg]) -> (usize, usize) {
    let Ok(root) = DeTable::parse(text) else {
        return (1, 1);
    };
    let mut span = None;
    let mut current: Option<&DeValue<'_>> = None;
    for (i, seg) in path.iter().enumerate() {
        let next = match (i, seg, current) {
            (0, PathSeg::Key(k), _) => root.get_ref().get(k.as_str()),
            (_, PathSeg::Key(k), Some(v)) => v.get(k.as_str()),
            (_, PathSeg::Index(n), Some(v)) => v.get(*n),
            _ => None,
        };
        match next {
            Some(v) => {
                span = Some(v.span());
                current = Some(v.get_ref());
            }
            None => break,
        }
    }
    line_col(text, span.map_or(0, |s| s.start))
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`,
/// `b`" and "unknown variant" messages.
pub(crate) fn with_suggestion(message: &str) -> String {
    let unknown = message.starts_with("unknown field") || message.starts_with("unknown variant");
    if !unknown {
        return message.to_owned();
    }
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((word, candidates)) = quoted.split_first() else {
        return message.to_owned();
    };
    match nearest(word, candidates.iter().copied()) {
        Some(best) => format!("{message} (did you mean `{best}`?)"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let text = "a = 1\nnomé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        let eq = text.find('=').map(|_| text.rfind('=').unwrap()).unwrap();
        assert_eq!(line_col(text, eq), (2, 6));
        assert_eq!(line_col(text, 10_000), (3, 1));
    }

    #[test]
    fn suggestions_come_from_the_expected_list() {
        assert_eq!(
            with_suggestion("unknown field `timout`, expected one of `id`, `timeout`, `title`"),
            "unknown field `timout`, expected one of `id`, `timeout`, `title` (did you mean `timeout`?)"
        );
        assert_eq!(
            with_suggestion("unknown variant `rolback`, expected `normal`, `watch` or `rollback`"),
            "unknown variant `rolback`, expected `normal`, `watch` or `rollback` (did you mean `rollback`?)"
        );
        assert_eq!(
            with_suggestion("unknown field `zzzzzz`, expected `id`"),
            "unknown field `zzzzzz`, expected `id`"
        );
        assert_eq!(with_suggestion("invalid type"), "invalid type");
    }

    #[test]
    fn paths_find_their_value() {
        let text = "name = \"x\"\n\n[[phases]]\nid = \"a\"\n\n[[phases.steps]]\nid = \"s\"\ncheck = \"comand\"\n";
        let path = [
            PathSeg::Key("phases".into()),
            PathSeg::Index(0),
            PathSeg::Key("steps".into()),
            PathSeg::Index(0),
            PathSeg::Key("check".into()),
        ];
        assert_eq!(path_position(text, &path), (8, 9));
        let missing = [PathSeg::Key("phases".into()), PathSeg::Index(3)];
        assert_eq!(path_position(text, &missing).0, 3);
    }
}
