//! Stable, unique slug ids from the runbook's own (often Portuguese) words.

use std::collections::BTreeSet;

/// Longest slug kept before the numeric suffix; long titles are cut at a
/// word boundary so ids stay typeable in `--only`.
const MAX_SLUG: usize = 48;

/// Folds a character to ASCII: accents dropped (`é` -> `e`, `ç` -> `c`),
/// everything else that is not a letter or digit becomes a separator.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' | 'Å' => "a",
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => "e",
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => "i",
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "o",
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => "u",
        'ç' | 'Ç' => "c",
        'ñ' | 'Ñ' => "n",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        _ => return None,
    })
}

/// Lowercase ASCII text with accents folded, for keyword matching
/// ("Glossário" -> "glossario").
pub(crate) fn ascii_fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if let Some(f) = fold(c) {
            out.push_str(f);
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// `"Pré-Deploy"` -> `"pre-deploy"`; empty when the text has no letter or
/// digit at all.
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    let mut gap = false;
    for c in text.chars() {
        let piece: Option<String> = match fold(c) {
            Some(f) => Some(f.to_owned()),
            None if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase().to_string()),
            None => None,
        };
        match piece {
            Some(p) => {
                if gap && !slug.is_empty() {
                    slug.push('-');
                }
                gap = false;
                slug.push_str(&p);
            }
            None => gap = true,
        }
    }
    if slug.len() > MAX_SLUG {
        let cut = slug[..=MAX_SLUG]
            .rfind('-')
            .filter(|i| *i >= MAX_SLUG / 2)
            .unwrap_or(MAX_SLUG);
        slug.truncate(cut);
        while slug.ends_with('-') {
            slug.pop();
        }
    }
    slug
}

/// Hands out ids that are unique within one namespace: the first `deploy`,
/// then `deploy-2`, `deploy-3`...
#[derive(Debug, Default, Clone)]
pub struct SlugSet {
    used: BTreeSet<String>,
}

impl SlugSet {
    /// A unique id for `text`, falling back to `fallback` when the text has
    /// no usable character.
    pub fn unique(&mut self, text: &str, fallback: &str) -> String {
        let base = match slugify(text) {
            s if s.is_empty() => fallback.to_owned(),
            s => s,
        };
        let mut candidate = base.clone();
        let mut n = 2u64;
        while self.used.contains(&candidate) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        self.used.insert(candidate.clone());
        candidate
    }

    /// Marks `id` as taken.
    pub fn reserve(&mut self, id: &str) {
        self.used.insert(id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portuguese_accents_fold() {
        assert_eq!(slugify("Pré-Deploy"), "pre-deploy");
        assert_eq!(
            slugify("Pós-Deploy Imediato (0–30 min)"),
            "pos-deploy-imediato-0-30-min"
        );
        assert_eq!(slugify("Janela & comunicações"), "janela-comunicacoes");
        assert_eq!(slugify("≥ 85%"), "85");
        assert_eq!(slugify("🚀 —"), "");
    }

    #[test]
    fn long_titles_cut_at_a_word() {
        let s = slugify(
            "Validar que `docs/api.md`, `docs/cache-strategy.md` e `docs/escola-module-todo.md` estão atualizados.",
        );
        assert!(s.len() <= MAX_SLUG, "{s}");
        assert!(!s.ends_with('-'));
        assert_eq!(s, "validar-que-docs-api-md-docs-cache-strategy-md-e");
        let one_word = slugify(&"a".repeat(100));
        assert_eq!(one_word.len(), MAX_SLUG);
    }

    #[test]
    fn duplicates_get_suffixes() {
        let mut set = SlugSet::default();
        assert_eq!(set.unique("Deploy", "phase"), "deploy");
        assert_eq!(set.unique("deploy", "phase"), "deploy-2");
        assert_eq!(set.unique("DEPLOY!", "phase"), "deploy-3");
        assert_eq!(set.unique("—", "phase"), "phase");
        assert_eq!(set.unique("", "phase"), "phase-2");
    }
}
