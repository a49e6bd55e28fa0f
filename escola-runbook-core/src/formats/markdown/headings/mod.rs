//! Which headings are phases, read as a reader reads them.
//!
//! A reader takes `Phase A`, `### Phase B`, `### Phase C` for three phases
//! even when the author wrote them at different levels, and takes `Payments
//! deploy` underlined with `===` at the top for the document's title. So the
//! phase headings are found by how they name themselves, not by raw depth:
//! headings that share a label with an ordinal (`Phase A`/`Phase B`, `Fase
//! 1`/`Fase 2`, `Etapa`, `Stage`, `Step`, `Passo`, or a number `1.`/`2)`/`3
//! Deploy`) are the phases, whatever their level or style. Without such
//! siblings, the shallowest headings under the title are (as they always
//! were). A pure function of the headings' titles and levels: the importer
//! feeds it and turns each [`Role`] into a phase or a section.

//!
//! One job per file: this one decides the roles; [`label`] reads the
//! ordinal a heading names itself by, [`kind`] the words that make a phase
//! a rollback or a watch, [`level`] the level a user names instead.

mod kind;
mod label;
mod level;

use crate::PhaseKind;
use crate::formats::markdown::slug::ascii_fold;

use kind::{is_watch, rollback_words};
use label::{Key, Label, label};
pub(crate) use level::describe_levels;
pub use level::{PhaseLevel, PhaseLevelError};

/// The level given to a bold paragraph standing in for a heading in a
/// document that has no heading at all: below `######`.
pub(crate) const BOLD_LEVEL: u8 = 7;

/// How a heading was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `## Title`.
    Atx,
    /// `Title` underlined with `===` (level 1) or `---` (level 2).
    Setext,
    /// A paragraph wholly in bold, in a document without headings.
    Bold,
}

/// One heading, as the inference sees it.
#[derive(Debug, Clone)]
pub(crate) struct Heading<'a> {
    /// 1 to 6, or [`BOLD_LEVEL`].
    pub(crate) level: u8,
    /// The heading's text, inline markup removed.
    pub(crate) title: &'a str,
    pub(crate) style: Style,
    /// Nothing but blank lines and HTML comments before it.
    pub(crate) at_top: bool,
    /// 1-based line, for the notes.
    pub(crate) line: usize,
}

/// What a heading is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// The runbook's name.
    Title,
    /// A phase, with its title (numbering stripped) and kind.
    Phase { title: String, kind: PhaseKind },
    /// A section inside the phase above it.
    Section,
}

/// The decision for a document's headings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    /// One role per heading, in order.
    pub(crate) roles: Vec<Role>,
    /// Inferences a reader might not expect: (line, what was decided).
    pub(crate) notes: Vec<(usize, String)>,
}

/// Decides the role of every heading: `phase_level` when given (headings
/// at that level or above are phases, except a title above them), else the
/// sibling-pattern inference described in the module docs.
pub(crate) fn classify(headings: &[Heading<'_>], phase_level: Option<PhaseLevel>) -> Reading {
    let labels: Vec<Option<Label<'_>>> = headings.iter().map(|h| label(h.title)).collect();
    let group = match phase_level {
        Some(_) => None,
        None => sibling_group(headings, &labels),
    };
    let members = |i: usize| group.as_ref().is_some_and(|g| g.contains(&i));
    let title = is_title(headings, phase_level, members(0));
    let mut notes = Vec::new();
    if title && headings[0].style == Style::Setext && !rule_single_top(headings) {
        notes.push((
            headings[0].line,
            format!(
                "`{}` is the runbook's name (a `===` title at the top), not a phase",
                headings[0].title
            ),
        ));
    }
    let others = || {
        headings
            .iter()
            .enumerate()
            .filter(|(i, _)| !(title && *i == 0))
    };
    let mut roles: Vec<Role> = Vec::with_capacity(headings.len());
    // The phase heading the next headings fall under.
    let mut current: Option<usize> = None;
    match (&group, phase_level) {
        (Some(group), _) => {
            let first = group[0];
            let shallowest = group.iter().map(|i| headings[*i].level).min().unwrap_or(1);
            let deepest = group.iter().map(|i| headings[*i].level).max().unwrap_or(1);
            for (i, h) in headings.iter().enumerate() {
                let role = if title && i == 0 {
                    Role::Title
                } else if members(i) {
                    if h.level != headings[first].level {
                        notes.push((
                            h.line,
                            format!(
                                "`{}` is a phase like `{}` (line {}) although it is a level-{} heading",
                                shown(h),
                                labels[first]
                                    .as_ref()
                                    .filter(|l| !l.numbered)
                                    .map_or(headings[first].title, |l| l.name),
                                headings[first].line,
                                h.level
                            ),
                        ));
                    }
                    phase(h, labels[i].as_ref(), true)
                } else if rollback_words(h.title).is_some() && h.level <= deepest {
                    if h.level > shallowest {
                        notes.push((
                            h.line,
                            format!(
                                "`{}` is a phase although it is a level-{} heading: it says rollback, and the phases named alike go down to that level",
                                shown(h),
                                h.level
                            ),
                        ));
                    }
                    phase(h, labels[i].as_ref(), false)
                } else if let Some(parent) =
                    numbered_under(&labels, current, i).filter(|_| h.level <= shallowest)
                {
                    notes.push((
                        h.line,
                        format!(
                            "`{}` is numbered under `{}` (line {}): imported as a section of that phase although it is a level-{} heading",
                            shown(h),
                            headings[parent].title,
                            headings[parent].line,
                            h.level
                        ),
                    ));
                    Role::Section
                } else if h.level <= shallowest {
                    phase(h, labels[i].as_ref(), false)
                } else {
                    if let Some(c) = current.filter(|c| headings[*c].level == h.level) {
                        notes.push((
                            h.line,
                            format!(
                                "`{}` is a section of phase `{}` (line {}), not a phase: it is not named like the phases",
                                shown(h),
                                headings[c].title,
                                headings[c].line
                            ),
                        ));
                    }
                    Role::Section
                };
                if matches!(role, Role::Phase { .. }) {
                    current = Some(i);
                }
                roles.push(role);
            }
        }
        (None, level) => {
            let level = match level {
                Some(l) => l.get(),
                None => others().map(|(_, h)| h.level).min().unwrap_or(1),
            };
            for (i, h) in headings.iter().enumerate() {
                roles.push(if title && i == 0 {
                    Role::Title
                } else if h.level <= level {
                    phase(h, labels[i].as_ref(), false)
                } else {
                    Role::Section
                });
            }
        }
    }
    // A heading that says rollback but sits under a phase: say so, since
    // its steps then run in the normal flow.
    for (h, role) in headings.iter().zip(&roles) {
        if *role == Role::Section && rollback_words(h.title).is_some() {
            notes.push((
                h.line,
                format!(
                    "`{}` says rollback but is deeper than the phase headings: imported as a section of the phase above, not as the rollback phase",
                    shown(h)
                ),
            ));
        }
    }
    assign_kinds(headings, &mut roles, &mut notes);
    notes.sort_by_key(|(line, _)| *line);
    Reading { roles, notes }
}

/// Rollback and watch phases by their titles: the first phase that says
/// rollback is the rollback phase (a runbook has one).
fn assign_kinds(headings: &[Heading<'_>], roles: &mut [Role], notes: &mut Vec<(usize, String)>) {
    let mut rollback_seen = false;
    for (h, role) in headings.iter().zip(roles.iter_mut()) {
        let Role::Phase { title, kind } = role else {
            continue;
        };
        if let Some(words) = rollback_words(title) {
            if rollback_seen {
                notes.push((
                    h.line,
                    format!("`{title}` looks like a second rollback section; a runbook has one rollback phase, so it is imported as a normal phase"),
                ));
                continue;
            }
            rollback_seen = true;
            *kind = PhaseKind::Rollback;
            if ascii_fold(words) != ascii_fold(title.trim()) {
                notes.push((
                    h.line,
                    format!(
                        "`{}` is the rollback phase (it says `{words}`): its steps run only when a rollback starts, not in the normal flow",
                        shown(h)
                    ),
                ));
            }
        } else if is_watch(title) {
            *kind = PhaseKind::Watch;
        }
    }
}

fn phase(h: &Heading<'_>, label: Option<&Label<'_>>, grouped: bool) -> Role {
    let title = match label {
        Some(l) if l.numbered && !l.rest.is_empty() && (grouped || !l.bare) => l.rest,
        _ => h.title.trim(),
    };
    Role::Phase {
        title: title.to_owned(),
        kind: PhaseKind::Normal,
    }
}

/// The heading as written, for notes: `### Phase B` for ATX, the bare title
/// for setext, `**Title**` for bold.
fn shown(h: &Heading<'_>) -> String {
    match h.style {
        Style::Atx => format!("{} {}", "#".repeat(usize::from(h.level)), h.title),
        Style::Setext => h.title.to_owned(),
        Style::Bold => format!("**{}**", h.title),
    }
}

/// The first heading is the runbook's name when it is not a phase by its
/// label and either stands alone above all others, or is a `===` title at
/// the top with no other `===` heading. Under a phase level, it must also
/// be above that level.
fn is_title(headings: &[Heading<'_>], level: Option<PhaseLevel>, grouped: bool) -> bool {
    let Some(first) = headings.first() else {
        return false;
    };
    if headings.len() < 2 || grouped || level.is_some_and(|l| first.level >= l.get()) {
        return false;
    }
    let setext_top = first.style == Style::Setext
        && first.level == 1
        && first.at_top
        && !headings[1..]
            .iter()
            .any(|h| h.style == Style::Setext && h.level == 1);
    rule_single_top(headings) || setext_top
}

fn rule_single_top(headings: &[Heading<'_>]) -> bool {
    match headings.split_first() {
        Some((first, rest)) => rest.iter().all(|h| h.level > first.level),
        None => false,
    }
}

/// The headings that name themselves like each other, in document order:
/// at least two sharing a label, with distinct ordinals (a numbering that
/// restarts belongs to sub-parts), and none of them under a shallower
/// heading other than the first (a possible title). Among several such
/// groups, the shallowest, then the largest, then the first.
fn sibling_group(headings: &[Heading<'_>], labels: &[Option<Label<'_>>]) -> Option<Vec<usize>> {
    let mut groups: Vec<(&Key, Vec<usize>)> = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let Some(l) = l else { continue };
        match groups.iter_mut().find(|(k, _)| **k == l.key) {
            Some((_, members)) => members.push(i),
            None => groups.push((&l.key, vec![i])),
        }
    }
    groups
        .into_iter()
        .map(|(_, members)| members)
        .filter(|members| {
            if members.len() < 2 {
                return false;
            }
            let mut ordinals: Vec<&str> = members
                .iter()
                .filter_map(|i| labels[*i].as_ref().map(|l| l.ordinal))
                .collect();
            ordinals.sort_unstable();
            ordinals.dedup();
            if ordinals.len() != members.len() {
                return false;
            }
            let shallowest = members.iter().map(|i| headings[*i].level).min();
            let last = members.last().copied().unwrap_or(0);
            !headings
                .iter()
                .enumerate()
                .take(last)
                .skip(1)
                .any(|(i, h)| !members.contains(&i) && Some(h.level) < shallowest)
        })
        .min_by_key(|members| {
            (
                members.iter().map(|i| headings[*i].level).min(),
                std::cmp::Reverse(members.len()),
                members[0],
            )
        })
}

/// The phase heading `i` is numbered under (`2.1` under `2.`), if it is the
/// current one.
fn numbered_under(labels: &[Option<Label<'_>>], current: Option<usize>, i: usize) -> Option<usize> {
    let c = current?;
    let (parent, child) = (labels[c].as_ref()?, labels[i].as_ref()?);
    let (Key::Number { depth: pd }, Key::Number { depth: cd }) = (&parent.key, &child.key) else {
        return None;
    };
    let (up, _) = child.ordinal.rsplit_once('.')?;
    (*cd == pd + 1 && up == parent.ordinal).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(level, style, title)` in, `(role, kind)` per heading out, with the
    /// notes' lines (heading i is on line i + 1).
    fn read(headings: &[(u8, Style, &str)], level: Option<u8>) -> (Vec<String>, Vec<usize>) {
        let hs: Vec<Heading<'_>> = headings
            .iter()
            .enumerate()
            .map(|(i, (level, style, title))| Heading {
                level: *level,
                title,
                style: *style,
                at_top: i == 0,
                line: i + 1,
            })
            .collect();
        let reading = classify(&hs, level.map(|l| PhaseLevel::new(l).unwrap()));
        let roles = reading
            .roles
            .iter()
            .map(|r| match r {
                Role::Title => "title".to_owned(),
                Role::Section => "section".to_owned(),
                Role::Phase { title, kind } => match kind {
                    PhaseKind::Normal => format!("phase {title}"),
                    PhaseKind::Watch => format!("watch {title}"),
                    PhaseKind::Rollback => format!("rollback {title}"),
                },
            })
            .collect();
        (roles, reading.notes.iter().map(|(l, _)| *l).collect())
    }

    use Style::{Atx, Bold, Setext};

    #[test]
    fn siblings_at_mixed_levels_are_phases() {
        let (roles, notes) = read(
            &[
                (1, Setext, "Payments API deploy"),
                (2, Setext, "Phase A: Before the window"),
                (3, Atx, "Phase B — Rollout"),
                (3, Atx, "Phase C — Verify (first 20 minutes)"),
                (3, Atx, "Phase D: Roll back"),
            ],
            None,
        );
        assert_eq!(
            roles,
            [
                "title",
                "phase Phase A: Before the window",
                "phase Phase B — Rollout",
                "phase Phase C — Verify (first 20 minutes)",
                "rollback Phase D: Roll back",
            ]
        );
        // B, C, D are deeper than A; D is the rollback phase by a word.
        assert_eq!(notes, [3, 4, 5, 5]);
    }

    #[test]
    fn the_team_runbook_reads_as_before() {
        let (roles, notes) = read(
            &[
                (1, Atx, "Escola Connect API — Runbook de Deploy"),
                (2, Atx, "1. Pré-Deploy"),
                (2, Atx, "2. Deploy"),
                (2, Atx, "3. Pós-Deploy Imediato (0–30 min)"),
                (2, Atx, "4. Monitoramento Estendido (30 min – 24h)"),
                (2, Atx, "5. Rollback"),
                (2, Atx, "6. Pós-Deploy (24h+)"),
                (2, Atx, "7. Checklists de Suporte"),
            ],
            None,
        );
        assert_eq!(
            roles,
            [
                "title",
                "phase Pré-Deploy",
                "phase Deploy",
                "phase Pós-Deploy Imediato (0–30 min)",
                "watch Monitoramento Estendido (30 min – 24h)",
                "rollback Rollback",
                "phase Pós-Deploy (24h+)",
                "phase Checklists de Suporte",
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn portuguese_and_other_labels_group() {
        let (roles, _) = read(
            &[
                (2, Atx, "Fase 1 - Preparação"),
                (3, Atx, "Fase 2 — Deploy"),
                (3, Atx, "Reverter"),
            ],
            None,
        );
        assert_eq!(
            roles,
            [
                "phase Fase 1 - Preparação",
                "phase Fase 2 — Deploy",
                "rollback Reverter"
            ]
        );
        for word in ["Etapa", "Stage", "Step", "Passo", "Parte", "Day"] {
            let a = format!("{word} 1");
            let b = format!("{word} II: depois");
            let (roles, _) = read(&[(2, Atx, "Intro"), (3, Atx, &a), (4, Atx, &b)], None);
            // `Intro`, alone above the others, is the title.
            assert_eq!(
                roles[1..],
                [format!("phase {a}"), format!("phase {b}")],
                "{word}"
            );
        }
    }

    #[test]
    fn numbered_headings_strip_their_numbers_and_keep_sub_numbers_inside() {
        let (roles, notes) = read(
            &[
                (1, Atx, "Runbook"),
                (2, Atx, "1) Prep"),
                (2, Atx, "2 Deploy"),
                (2, Atx, "2.1 Backups"),
                (3, Atx, "3. Verify"),
                (3, Atx, "Details"),
            ],
            None,
        );
        assert_eq!(
            roles,
            [
                "title",
                "phase Prep",
                "phase Deploy",
                "section",
                "phase Verify",
                "section"
            ]
        );
        assert_eq!(notes, [4, 5, 6]);
        // A lone bare number is not numbering.
        let (roles, _) = read(&[(2, Atx, "2024 plan"), (2, Atx, "Deploy")], None);
        assert_eq!(roles, ["phase 2024 plan", "phase Deploy"]);
    }

    #[test]
    fn numbering_that_restarts_or_sits_under_other_headings_is_not_the_phases() {
        let headings = [
            (2, Atx, "Deploy"),
            (3, Atx, "Step 1"),
            (3, Atx, "Step 2"),
            (2, Atx, "Verify"),
            (3, Atx, "Step 3"),
        ];
        let (roles, notes) = read(&headings, None);
        assert_eq!(
            roles,
            [
                "phase Deploy",
                "section",
                "section",
                "phase Verify",
                "section"
            ]
        );
        assert!(notes.is_empty());
        let restart = [(3, Atx, "Step 1"), (3, Atx, "Step 2"), (3, Atx, "Step 1")];
        let (roles, _) = read(&restart, None);
        assert_eq!(roles, ["phase Step 1", "phase Step 2", "phase Step 1"]);
        // Under one shallower heading that is not the title: sections.
        let (roles, _) = read(
            &[
                (1, Atx, "T"),
                (2, Atx, "Procedimento"),
                (3, Atx, "Fase 1"),
                (3, Atx, "Fase 2"),
                (2, Atx, "Contatos"),
            ],
            None,
        );
        assert_eq!(
            roles,
            [
                "title",
                "phase Procedimento",
                "section",
                "section",
                "phase Contatos"
            ]
        );
    }

    #[test]
    fn titles() {
        // A `===` title at the top, other level-1 headings after it.
        let (roles, notes) = read(
            &[(1, Setext, "Runbook"), (1, Atx, "Pre"), (1, Atx, "Deploy")],
            None,
        );
        assert_eq!(roles, ["title", "phase Pre", "phase Deploy"]);
        assert_eq!(notes, [1]);
        // Two `===` headings: both phases.
        let (roles, _) = read(&[(1, Setext, "Pre"), (1, Setext, "Deploy")], None);
        assert_eq!(roles, ["phase Pre", "phase Deploy"]);
        // A single top heading named like its siblings is a phase.
        let (roles, _) = read(&[(1, Atx, "Phase 1"), (2, Atx, "Phase 2")], None);
        assert_eq!(roles, ["phase Phase 1", "phase Phase 2"]);
        // Alone, it is a phase.
        let (roles, _) = read(&[(1, Atx, "Deploy")], None);
        assert_eq!(roles, ["phase Deploy"]);
    }

    #[test]
    fn rollback_headings() {
        for (title, rollback) in [
            ("Rollback", true),
            ("Roll back", true),
            ("Roll-back", true),
            ("ROLLBACK", true),
            ("Revert", true),
            ("Reverter a versão", true),
            ("Reversão", true),
            ("Plano de reversão (DBA)", true),
            ("rollbacks-log", false),
            ("Configure the reverse proxy", false),
            ("Rolling out", false),
            ("Roll out, then back up", false),
        ] {
            assert_eq!(rollback_words(title).is_some(), rollback, "{title}");
        }
        assert_eq!(rollback_words("Phase D: Roll back"), Some("Roll back"));
        // Deeper than the phases: a section, with a note.
        let (roles, notes) = read(
            &[(2, Atx, "Deploy"), (3, Atx, "Rollback"), (2, Atx, "Verify")],
            None,
        );
        assert_eq!(roles, ["phase Deploy", "section", "phase Verify"]);
        assert_eq!(notes, [2]);
        // A second rollback phase is a normal one.
        let (roles, notes) = read(&[(2, Atx, "Rollback"), (2, Atx, "Revert")], None);
        assert_eq!(roles, ["rollback Rollback", "phase Revert"]);
        assert_eq!(notes, [2]);
        // Among mixed-level siblings, a rollback heading at their depth.
        let (roles, notes) = read(
            &[(2, Atx, "Phase 1"), (3, Atx, "Phase 2"), (3, Atx, "Revert")],
            None,
        );
        assert_eq!(roles, ["phase Phase 1", "phase Phase 2", "rollback Revert"]);
        assert_eq!(notes, [2, 3]);
    }

    #[test]
    fn a_same_level_heading_not_named_like_the_phases_is_a_section() {
        let (roles, notes) = read(
            &[
                (2, Atx, "Phase A"),
                (3, Atx, "Phase B"),
                (3, Atx, "Details"),
                (4, Atx, "More"),
            ],
            None,
        );
        assert_eq!(
            roles,
            ["phase Phase A", "phase Phase B", "section", "section"]
        );
        assert_eq!(notes, [2, 3]);
    }

    #[test]
    fn the_phase_level_overrides() {
        let hs = [
            (1, Setext, "Payments"),
            (2, Setext, "Phase A"),
            (3, Atx, "Phase B"),
            (4, Atx, "Details"),
        ];
        let (roles, notes) = read(&hs, Some(2));
        assert_eq!(roles, ["title", "phase Phase A", "section", "section"]);
        assert!(notes.is_empty());
        let (roles, _) = read(&hs, Some(1));
        assert_eq!(roles, ["phase Payments", "section", "section", "section"]);
        let (roles, _) = read(&hs, Some(4));
        assert_eq!(
            roles,
            ["title", "phase Phase A", "phase Phase B", "phase Details"]
        );
    }

    #[test]
    fn bold_paragraphs_stand_in_for_headings() {
        let (roles, _) = read(
            &[(BOLD_LEVEL, Bold, "Before"), (BOLD_LEVEL, Bold, "Rollback")],
            None,
        );
        assert_eq!(roles, ["phase Before", "rollback Rollback"]);
    }
}
