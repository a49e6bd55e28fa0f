//! The runbook's metadata in the document: glossary and contacts sections
//! (recognised by their headings or labels), and the `#channels` steps
//! mention.

use super::importer::{Importer, Mode};
use crate::formats::markdown::slug::ascii_fold;
use crate::formats::runbook_file::{ContactFile, PhaseFile};

impl Importer<'_> {
    pub(super) fn glossary_entry(&mut self, text: &str, offset: usize) {
        match split_entry(text) {
            Some((term, meaning)) => {
                self.metadata
                    .glossary
                    .insert(term.trim_matches('`').to_owned(), meaning.to_owned());
            }
            None if text.is_empty() => {}
            None => {
                self.warn(
                    offset,
                    format!("glossary entry `{text}` has no `term: meaning` form; kept with an empty meaning"),
                );
                self.metadata
                    .glossary
                    .insert(text.to_owned(), String::new());
            }
        }
    }

    pub(super) fn contact_entry(&mut self, text: &str, offset: usize) {
        match split_entry(text) {
            Some((role, handle)) => self.metadata.contacts.push(ContactFile {
                role: role.to_owned(),
                handle: handle.trim_matches('`').trim().to_owned(),
            }),
            None if text.is_empty() => {}
            None => {
                self.warn(
                    offset,
                    format!("contact `{text}` has no `role: handle` form; kept with the whole text as its role"),
                );
                self.metadata.contacts.push(ContactFile {
                    role: text.to_owned(),
                    handle: String::new(),
                });
            }
        }
    }
}

/// `Role: handle`, `Term — meaning`, `Term - meaning`.
pub(super) fn split_entry(text: &str) -> Option<(&str, &str)> {
    for sep in [":", " — ", " – ", " - "] {
        if let Some((a, b)) = text.split_once(sep) {
            let (a, b) = (a.trim(), b.trim());
            if !a.is_empty() && !b.is_empty() {
                return Some((a, b));
            }
        }
    }
    None
}

pub(super) fn is_glossary(label: &str) -> bool {
    let f = ascii_fold(label);
    f.contains("glossar") || f.contains("glosario")
}

pub(super) fn is_contacts(label: &str) -> bool {
    let f = ascii_fold(label);
    f.contains("contact") || f.contains("contato") || f.contains("contacto")
}

pub(super) fn mode_of(label: &str) -> Mode {
    if is_glossary(label) {
        Mode::Glossary
    } else if is_contacts(label) {
        Mode::Contacts
    } else {
        Mode::Steps
    }
}

/// The channels (`#operacoes`) the steps' titles mention, in order, once
/// each: where the team announces the deploy.
pub(super) fn channels_of(phases: &[PhaseFile]) -> Vec<String> {
    let mut channels: Vec<String> = Vec::new();
    for s in phases.iter().flat_map(|p| &p.steps) {
        for c in channels_in(&s.title) {
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
    }
    channels
}

fn channels_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut prev = ' ';
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            in_code = !in_code;
        } else if c == '#'
            && !in_code
            && (prev.is_whitespace() || prev == '(' || prev == ',')
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic())
        {
            let name: String = chars[i + 1..]
                .iter()
                .take_while(|n| n.is_alphanumeric() || **n == '-' || **n == '_')
                .collect();
            out.push(format!("#{name}"));
            i += name.chars().count();
        }
        prev = c;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels() {
        assert_eq!(
            channels_in("Programar aviso nos canais #operacoes e #promotores (T -4h). `#no`"),
            vec!["#operacoes", "#promotores"]
        );
    }

    #[test]
    fn entries_split_at_their_separator() {
        assert_eq!(split_entry("DBA: @ana"), Some(("DBA", "@ana")));
        assert_eq!(
            split_entry("TTL — time to live"),
            Some(("TTL", "time to live"))
        );
        assert_eq!(split_entry("no separator"), None);
        assert_eq!(mode_of("Glossário"), Mode::Glossary);
        assert_eq!(mode_of("Contatos"), Mode::Contacts);
        assert_eq!(mode_of("Deploy"), Mode::Steps);
    }
}
