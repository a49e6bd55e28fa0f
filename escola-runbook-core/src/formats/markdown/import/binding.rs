//! Bindings in HTML comments: `<!-- check: NAME key=value -->` makes the
//! item it follows a step of that check, its parameters typed through the
//! catalog; `<!-- approval: role=dba deadline=30m on_deadline=reject -->`
//! makes the item require an approval; `<!-- approver: carla roles=dba -->`
//! (anywhere) lists an approver; `<!-- rule: id=latency-p95 measure=quantile
//! quantile=0.95 window=5m above=2 for=5m -->` makes the item a watch step
//! of that alert rule (one binding per rule), its pairs read as a rules
//! file's `[[rules]]` entry ([`RuleSpec::from_pairs`]).

use super::importer::{Importer, StepRef};
use crate::OnDeadline;
use crate::catalog::ParamProblem;
use crate::formats::markdown::tree::{Inline, InlineKind};
use crate::formats::rules_file::RuleSpec;
use crate::formats::runbook_file::{ApprovalFile, ApproverFile, DurationText, ParamMap};

/// A check binding that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum BindingError {
    /// No `-->` on the binding's line.
    #[error("the comment is not closed with `-->` on the same line")]
    Unclosed,
    /// A `"` or `'` without its closing quote.
    #[error("a quote is not closed")]
    OpenQuote,
    /// Nothing after `check:`.
    #[error("no check name after `check:`")]
    NoName,
    /// A word after the name without `=` (or with an empty key).
    #[error("`{word}` is not key=value")]
    NotPair {
        /// The word as written.
        word: String,
    },
    /// A key the binding does not have.
    #[error("unknown key `{key}`; the keys are: {known}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The keys it has.
        known: &'static str,
    },
    /// A key the binding needs is missing.
    #[error("`{0}=` is missing")]
    MissingKey(&'static str),
    /// A value that does not read.
    #[error("`{key}={value}`: {reason}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// Why not.
        reason: String,
    },
}

impl Importer<'_> {
    pub(super) fn inline_bindings(&mut self, inlines: &[Inline], target: Option<StepRef>) {
        for i in inlines {
            if let InlineKind::Html(text) = &i.kind {
                self.html_binding(text, i.range.start, target);
            }
        }
    }

    pub(super) fn html_binding(&mut self, html: &str, offset: usize, target: Option<StepRef>) {
        if let Some(approval) = parse_approval(html) {
            match (approval, target) {
                (Ok(approval), Some(step)) => self.step_mut(step).approval = Some(approval),
                (Ok(approval), None) => self.warn(
                    offset,
                    format!("approval binding (role `{}`) follows no list item; put it right after the item it guards", approval.role),
                ),
                (Err(why), _) => self.warn(
                    offset,
                    format!("approval binding not understood: {why}; the item stays as it is"),
                ),
            }
            return;
        }
        if let Some(words) = comment_words(html, "rule") {
            match words.and_then(|w| pairs(&w)) {
                Ok(rule) => self.apply_rule(target, &rule, offset),
                Err(why) => self.warn(
                    offset,
                    format!("rule binding not understood: {why}; no rule was added"),
                ),
            }
            return;
        }
        if let Some(approver) = parse_approver(html) {
            match approver {
                Ok(approver) => self.metadata.approvers.push(approver),
                Err(why) => self.warn(
                    offset,
                    format!("approver binding not understood: {why}; nobody was added"),
                ),
            }
            return;
        }
        let Some(binding) = parse_binding(html) else {
            return;
        };
        let binding = match binding {
            Ok(b) => b,
            Err(why) => {
                self.warn(
                    offset,
                    format!("check binding not understood: {why}; the item stays as it is"),
                );
                return;
            }
        };
        let Some(step) = target else {
            self.warn(
                offset,
                format!("check binding `{}` follows no list item; put it right after the item it automates", binding.name),
            );
            return;
        };
        self.apply_binding(step, binding, offset);
    }

    /// A `<!-- rule: ... -->` binding: the item becomes a watch step and
    /// the rule is added to its rules.
    fn apply_rule(&mut self, target: Option<StepRef>, pairs: &[(String, String)], offset: usize) {
        let spec = match RuleSpec::from_pairs(pairs, self.catalog) {
            Ok(spec) => spec,
            Err(e) => {
                self.warn(
                    offset,
                    format!("rule binding not understood: {e}; no rule was added"),
                );
                return;
            }
        };
        let Some(step) = target else {
            self.warn(
                offset,
                format!("rule binding `{}` follows no list item; put it right after the item it watches", spec.id),
            );
            return;
        };
        let id = self.step(step).id.clone();
        if let Some(check) = self.step(step).check.clone() {
            self.warn(
                offset,
                format!("step `{id}` has a check binding (`{check}`) and a rule binding; a watch step runs its rules, so the check was dropped"),
            );
            let s = self.step_mut(step);
            s.check = None;
            s.params = ParamMap::new();
        }
        self.automate(step, "its alert rules");
        let rule = spec.id.clone();
        let watch = self
            .step_mut(step)
            .watch
            .get_or_insert_with(Default::default);
        let replaced = match watch.rules.iter_mut().find(|r| r.id == spec.id) {
            Some(same) => {
                *same = spec;
                true
            }
            None => {
                watch.rules.push(spec);
                false
            }
        };
        if replaced {
            self.warn(
                offset,
                format!("step `{id}` binds rule `{rule}` twice; the last one wins"),
            );
        }
    }

    /// The item is automated by `what`: the document's command and
    /// instructions become notes, and manual-only settings go.
    fn automate(&mut self, step: StepRef, what: &str) {
        let s = self.step_mut(step);
        if let Some(cmd) = s.command.take() {
            s.notes
                .push(format!("the document's command, replaced by {what}: {cmd}"));
            s.cwd = None;
            s.timeout = None;
        }
        if let Some(text) = s.instructions.take() {
            s.notes.push(text);
        }
        s.confirm_deadline = None;
        s.confirm_default = None;
    }

    pub(super) fn apply_binding(&mut self, step: StepRef, binding: Binding, offset: usize) {
        let id = self.step(step).id.clone();
        // Typed through the check's schema when it is known (`retries=3` a
        // number, `args=a,b` a list); as written otherwise, so that loading
        // reports the same mistake at the item's line.
        let params = match self.catalog.find(&binding.name) {
            Err(e) => {
                self.warn(offset, format!("step `{id}`: {e}"));
                as_written(&binding.params)
            }
            Ok(entry) => match entry.object_from_pairs(&binding.params) {
                Ok(object) => {
                    if let Err(e) = entry.build(object.clone()) {
                        self.warn(offset, format!("step `{id}`: {e}"));
                    }
                    object
                }
                Err(e) if e.problem == ParamProblem::Repeated => {
                    self.warn(
                        offset,
                        format!("check binding not understood: {e}; the item stays as it is"),
                    );
                    return;
                }
                Err(e) => {
                    self.warn(offset, format!("step `{id}`: {e}"));
                    as_written(&binding.params)
                }
            },
        };
        if self.step(step).check.is_some() {
            self.warn(
                offset,
                format!("step `{id}` has a second check binding; the last one wins"),
            );
        }
        if self.step(step).watch.is_some() {
            self.warn(
                offset,
                format!("step `{id}` has a rule binding and a check binding (`{}`); a watch step runs its rules, so the check was dropped", binding.name),
            );
            return;
        }
        self.automate(step, &format!("check `{}`", binding.name));
        let s = self.step_mut(step);
        s.check = Some(binding.name);
        s.params = params;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Binding {
    pub(super) name: String,
    pub(super) params: Vec<(String, String)>,
}

/// `<!-- check: NAME key=value key="two words" -->`; `None` for any other
/// HTML.
pub(super) fn parse_binding(html: &str) -> Option<Result<Binding, BindingError>> {
    let words = match comment_words(html, "check")? {
        Ok(w) => w,
        Err(e) => return Some(Err(e)),
    };
    let Some((name, rest)) = words.split_first() else {
        return Some(Err(BindingError::NoName));
    };
    Some(pairs(rest).map(|params| Binding {
        name: name.clone(),
        params,
    }))
}

/// Whether `html` is any binding (check, approval, approver).
pub(super) fn is_binding(html: &str) -> bool {
    ["check", "approval", "approver", "rule"]
        .iter()
        .any(|k| comment_words(html, k).is_some())
}

/// `<!-- approval: role=dba deadline=30m on_deadline=reject -->`; `None`
/// for any other HTML.
pub(super) fn parse_approval(html: &str) -> Option<Result<ApprovalFile, BindingError>> {
    let words = comment_words(html, "approval")?;
    Some(words.and_then(|w| {
        let mut approval = ApprovalFile {
            role: String::new(),
            deadline: None,
            on_deadline: OnDeadline::default(),
        };
        for (key, value) in pairs(&w)? {
            match key.as_str() {
                "role" => approval.role = value,
                "deadline" => {
                    let d = crate::duration::parse(&value).map_err(|e| BindingError::BadValue {
                        key: "deadline",
                        value: value.clone(),
                        reason: e.to_string(),
                    })?;
                    approval.deadline = Some(DurationText::from(d));
                }
                "on_deadline" => {
                    approval.on_deadline = match value.as_str() {
                        "approve" => OnDeadline::Approve,
                        "reject" => OnDeadline::Reject,
                        "abort" => OnDeadline::Abort,
                        _ => {
                            return Err(BindingError::BadValue {
                                key: "on_deadline",
                                value,
                                reason: "expected approve, reject or abort".into(),
                            });
                        }
                    }
                }
                _ => {
                    return Err(BindingError::UnknownKey {
                        key,
                        known: "role, deadline, on_deadline",
                    });
                }
            }
        }
        if approval.role.is_empty() {
            return Err(BindingError::MissingKey("role"));
        }
        Ok(approval)
    }))
}

/// `<!-- approver: carla roles=dba,infra -->`; `None` for any other HTML.
pub(super) fn parse_approver(html: &str) -> Option<Result<ApproverFile, BindingError>> {
    let words = comment_words(html, "approver")?;
    Some(words.and_then(|w| {
        let (name, rest) = w.split_first().ok_or(BindingError::NoName)?;
        let mut approver = ApproverFile {
            name: name.clone(),
            roles: Vec::new(),
        };
        for (key, value) in pairs(rest)? {
            match key.as_str() {
                "roles" => approver.roles.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned),
                ),
                _ => {
                    return Err(BindingError::UnknownKey {
                        key,
                        known: "roles",
                    });
                }
            }
        }
        Ok(approver)
    }))
}

/// The words of `<!-- KEYWORD: ... -->`; `None` when `html` is not that
/// comment.
fn comment_words(html: &str, keyword: &str) -> Option<Result<Vec<String>, BindingError>> {
    let inner = html.trim().strip_prefix("<!--")?.trim_start();
    let body = inner
        .strip_prefix(keyword)?
        .trim_start()
        .strip_prefix(':')?;
    let Some(body) = body.trim_end().strip_suffix("-->") else {
        return Some(Err(BindingError::Unclosed));
    };
    Some(split_words(body))
}

/// `key=value` words.
fn pairs(words: &[String]) -> Result<Vec<(String, String)>, BindingError> {
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(BindingError::NotPair { word: word.clone() }),
        })
        .collect()
}

/// A binding's pairs as written, each value text (a repeated key keeps its
/// last value): for a check the catalog cannot type them for.
fn as_written(pairs: &[(String, String)]) -> ParamMap {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect()
}

/// Words split at whitespace outside quotes; quotes group and are dropped.
fn split_words(text: &str) -> Result<Vec<String>, BindingError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            (None, c) => {
                current.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return Err(BindingError::OpenQuote);
    }
    if started {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings() {
        let b = parse_binding("<!-- check: smoke base_url=http://x timeout=\"30 s\" -->")
            .unwrap()
            .unwrap();
        assert_eq!(b.name, "smoke");
        assert_eq!(
            b.params,
            vec![
                ("base_url".into(), "http://x".into()),
                ("timeout".into(), "30 s".into())
            ]
        );
        assert!(parse_binding("<!-- just a comment -->").is_none());
        assert_eq!(
            parse_binding("<!-- check: a b -->"),
            Some(Err(BindingError::NotPair { word: "b".into() }))
        );
        assert_eq!(
            parse_binding("<!-- check: -->"),
            Some(Err(BindingError::NoName))
        );
    }

    #[test]
    fn unclosed_comments_quotes_and_empty_keys_are_refused() {
        assert_eq!(
            parse_binding("<!-- check: smoke"),
            Some(Err(BindingError::Unclosed))
        );
        assert_eq!(
            parse_binding("<!-- check: smoke title=\"open -->"),
            Some(Err(BindingError::OpenQuote))
        );
        assert_eq!(
            parse_binding("<!-- check : smoke =x -->"),
            Some(Err(BindingError::NotPair { word: "=x".into() }))
        );
        assert_eq!(
            BindingError::NotPair { word: "b".into() }.to_string(),
            "`b` is not key=value"
        );
    }

    #[test]
    fn approval_and_approver_bindings() {
        let a = parse_approval("<!-- approval: role=dba deadline=30m on_deadline=abort -->")
            .unwrap()
            .unwrap();
        assert_eq!(a.role, "dba");
        assert_eq!(
            a.deadline.map(DurationText::get),
            Some(std::time::Duration::from_secs(1800))
        );
        assert_eq!(a.on_deadline, OnDeadline::Abort);
        assert_eq!(
            parse_approval("<!-- approval: deadline=30m -->"),
            Some(Err(BindingError::MissingKey("role")))
        );
        assert_eq!(
            parse_approval("<!-- approval: role=dba on_deadline=later -->")
                .unwrap()
                .unwrap_err()
                .to_string(),
            "`on_deadline=later`: expected approve, reject or abort"
        );
        assert!(matches!(
            parse_approval("<!-- approval: role=dba when=now -->"),
            Some(Err(BindingError::UnknownKey { .. }))
        ));
        let b = parse_approver("<!-- approver: carla roles=dba,infra -->")
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.name.as_str(), b.roles),
            ("carla", vec!["dba".to_owned(), "infra".to_owned()])
        );
        assert!(parse_binding("<!-- approval: role=dba -->").is_none());
        assert!(is_binding("<!-- approval: role=dba -->"));
    }

    #[test]
    fn split_words_groups_quotes() {
        assert_eq!(
            split_words(" a 'b c' d\"e f\" ").unwrap(),
            ["a", "b c", "de f"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
    }
}
