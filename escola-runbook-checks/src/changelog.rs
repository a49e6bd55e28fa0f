//! "Revisar `CHANGELOG.md` e anotar versão planejada (semver)": the
//! changelog (Keep a Changelog) has a non-empty section for the planned
//! version, the version is valid semver, and it is greater than the latest
//! release tag of the repository (and not tagged already).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};
use serde::{Deserialize, Serialize};

use crate::git::{self, GitError, Repo};

/// One `## ` section of a changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading's name: `Unreleased`, `1.2.0` (brackets and `v` kept as
    /// written, minus the brackets).
    pub name: String,
    /// The date after the name (`- 2026-11-29`), if any.
    pub date: Option<String>,
    /// 1-based line of the heading.
    pub line: usize,
    /// The heading line and the body, up to the next `## ` heading or the
    /// link definitions at the end.
    pub text: String,
    /// True when the body has anything besides blank lines.
    pub has_content: bool,
}

/// The changelog file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// Missing or unreadable.
    #[error("cannot read changelog {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not text.
    #[error("changelog {path} is not UTF-8 text ({detail})")]
    NotText {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Empty, or no `## ` version heading.
    #[error(
        "changelog {path} has no `## [version]` section ({detail}); it does not follow Keep a Changelog (https://keepachangelog.com)"
    )]
    NoSections {
        /// The file.
        path: PathBuf,
        /// What it has instead.
        detail: String,
    },
}

/// The `## ` sections of a Keep a Changelog document, in order.
pub fn sections(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(rest) = line.strip_prefix("## ") {
            let rest = rest.trim();
            let (name, tail) = match rest.strip_prefix('[') {
                Some(r) => match r.split_once(']') {
                    Some((n, t)) => (n.trim(), t),
                    None => (r.trim(), ""),
                },
                None => match rest.split_once(char::is_whitespace) {
                    Some((n, t)) => (n, t),
                    None => (rest, ""),
                },
            };
            // `- 2026-12-01`, `– 2026-12-01`, or `(2026-12-01)`.
            let date = tail
                .trim()
                .trim_start_matches(['-', '–', '—'])
                .split_whitespace()
                .next()
                .map(|d| d.trim_start_matches('(').trim_end_matches(')'))
                .filter(|d| d.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .map(str::to_owned);
            out.push(Section {
                name: name.to_owned(),
                date,
                line: i + 1,
                text: format!("{line}\n"),
                has_content: false,
            });
            continue;
        }
        if let Some(current) = out.last_mut() {
            // Link reference definitions (`[1.2.0]: https://...`) close the
            // last section.
            let is_link_def = line.starts_with('[') && line.contains("]:");
            if line.starts_with("# ") || (is_link_def && !in_fence) {
                continue;
            }
            current.text.push_str(line);
            current.text.push('\n');
            if !line.trim().is_empty() {
                current.has_content = true;
            }
        }
    }
    for s in &mut out {
        let trimmed = s.text.trim_end().len();
        s.text.truncate(trimmed);
    }
    out
}

/// Reads and splits the changelog at `path`.
pub fn read_sections(path: &Path) -> Result<Vec<Section>, ChangelogError> {
    let bytes = std::fs::read(path).map_err(|source| ChangelogError::Read {
        path: path.to_owned(),
        source,
    })?;
    if bytes.contains(&0) {
        return Err(ChangelogError::NotText {
            path: path.to_owned(),
            detail: "it contains NUL bytes: a binary file".into(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ChangelogError::NotText {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    let found = sections(&text);
    if found.is_empty() {
        return Err(ChangelogError::NoSections {
            path: path.to_owned(),
            detail: if text.trim().is_empty() {
                "the file is empty".into()
            } else {
                format!("{} lines, none starting with `## `", text.lines().count())
            },
        });
    }
    Ok(found)
}

/// Longest quote of a section kept as evidence.
const QUOTE_LIMIT: usize = 4000;

fn quote(text: &str) -> String {
    if text.len() <= QUOTE_LIMIT {
        return text.to_owned();
    }
    let mut cut = QUOTE_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n[… {} more bytes of the section not quoted]",
        &text[..cut],
        text.len() - cut
    )
}

/// CHANGELOG.md has a non-empty section for the planned semver version,
/// greater than the latest release tag.
///
/// The parameters of [`ChangelogCheck`], declared once (see
/// [`CheckConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangelogParams {
    /// Path of the Keep a Changelog file; its `## [X.Y.Z] - YYYY-MM-DD`
    /// sections are read.
    #[serde(default = "default_file")]
    pub file: PathBuf,
    /// The planned version, semver MAJOR.MINOR.PATCH (a leading `v` is
    /// accepted), e.g. 2.4.0.
    pub version: String,
    /// Git work tree whose release tags (vX.Y.Z or X.Y.Z, pre-releases
    /// ignored) the version must exceed; `none` skips the comparison.
    #[serde(default = "default_repo")]
    pub repo: PathBuf,
}

/// The `repo` that means "do not compare with tags".
pub const NO_REPO: &str = "none";

fn default_file() -> PathBuf {
    PathBuf::from("CHANGELOG.md")
}
fn default_repo() -> PathBuf {
    PathBuf::from(".")
}

impl ChangelogParams {
    /// The repository to compare with, unless `repo` is [`NO_REPO`].
    fn repo(&self) -> Option<&Path> {
        (self.repo != Path::new(NO_REPO)).then_some(self.repo.as_path())
    }
}

impl CheckConfig for ChangelogParams {
    const NAME: &'static str = "changelog";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if let Err(e) = git::parse_version(&self.version) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "version",
                format!(
                    "has value `{}`, which is not semver ({e}); write e.g. 2.4.0",
                    self.version
                ),
            ));
        }
        Ok(Arc::new(ChangelogCheck { params: self }))
    }
}

/// The changelog has a section for the planned version, which is greater
/// than the latest release tag.
///
/// ```
/// use escola_runbook_checks::changelog::ChangelogCheck;
/// let check = ChangelogCheck::new("/srv/escola-connect/CHANGELOG.md", "2.4.0")
///     .repo("/srv/escola-connect");
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct ChangelogCheck {
    params: ChangelogParams,
}

impl ChangelogCheck {
    /// Checks `file` for a section for `version`. Without [`repo`](Self::repo)
    /// the version is not compared with tags.
    pub fn new(file: impl Into<PathBuf>, version: impl Into<String>) -> Self {
        ChangelogCheck {
            params: ChangelogParams {
                file: file.into(),
                version: version.into(),
                repo: PathBuf::from(NO_REPO),
            },
        }
    }

    /// The git repository whose release tags the version must exceed.
    pub fn repo(mut self, dir: impl Into<PathBuf>) -> Self {
        self.params.repo = dir.into();
        self
    }
}

#[async_trait]
impl Check for ChangelogCheck {
    fn describe(&self) -> Description {
        let mut verifies = format!(
            "{} has a section for {}, valid semver",
            self.params.file.display(),
            self.params.version
        );
        if let Some(repo) = self.params.repo() {
            verifies.push_str(&format!(
                " and greater than the latest release tag in {}",
                repo.display()
            ));
        }
        Description::read_only("changelog", verifies)
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let planned = self.params.version.trim();
        let version = match git::parse_version(planned) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::failed(format!(
                    "planned version `{planned}` is not valid semver ({e}); write MAJOR.MINOR.PATCH, e.g. 2.4.0"
                ))
                .with_evidence("planned version", planned);
            }
        };
        let path = self.params.file.clone();
        let sections = match tokio::task::spawn_blocking(move || read_sections(&path)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Outcome::check_error(e.to_string())
                    .with_evidence("changelog", self.params.file.display().to_string());
            }
            Err(e) => return Outcome::check_error(format!("the changelog reader stopped: {e}")),
        };
        let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
        let listed = names.iter().take(8).copied().collect::<Vec<_>>().join(", ");
        let base = |o: Outcome| {
            o.with_evidence("changelog", self.params.file.display().to_string())
                .with_evidence("planned version", version.to_string())
        };
        let Some(section) = sections
            .iter()
            .find(|s| git::parse_version(&s.name).is_ok_and(|v| v == version))
        else {
            let hint = if sections
                .iter()
                .any(|s| s.name.eq_ignore_ascii_case("unreleased") && s.has_content)
            {
                format!(
                    " (the changes are under [Unreleased]: rename it to `## [{version}] - YYYY-MM-DD`)"
                )
            } else {
                String::new()
            };
            return base(Outcome::failed(format!(
                "{} has no section for {version}{hint}; sections found: {listed}",
                self.params.file.display()
            )))
            .with_evidence("sections found", listed);
        };
        let quoted = ctx.redactor().redact(&quote(&section.text)).into_owned();
        if !section.has_content {
            return base(Outcome::failed(format!(
                "the section for {version} (line {}) of {} is empty; list the changes under it",
                section.line,
                self.params.file.display()
            )))
            .with_evidence("section", quoted);
        }
        let mut outcome_note = None;
        let mut latest_text = None;
        if let Some(dir) = self.params.repo() {
            match compare_with_tags(dir, &version).await {
                Ok(TagVerdict::Greater(tag)) => {
                    latest_text = Some(tag);
                }
                Ok(TagVerdict::NoTags { shallow: false }) => {
                    outcome_note = Some(format!(
                        "no release tag (vX.Y.Z) in {}: the version was not compared; first release?",
                        dir.display()
                    ));
                }
                Ok(TagVerdict::NoTags { shallow: true }) => {
                    return base(Outcome::check_error(format!(
                        "{} is a shallow clone without release tags, so {version} cannot be compared with the latest release; run `git fetch --tags --unshallow`",
                        dir.display()
                    )))
                    .with_evidence("section", quoted);
                }
                Ok(TagVerdict::NotGreater(tag)) => {
                    return base(Outcome::failed(format!(
                        "planned version {version} is not greater than the latest release tag {tag}"
                    )))
                    .with_evidence("latest release tag", tag)
                    .with_evidence("section", quoted);
                }
                Ok(TagVerdict::AlreadyTagged(tag)) => {
                    return base(Outcome::failed(format!(
                        "planned version {version} is already tagged ({tag}); plan the next version"
                    )))
                    .with_evidence("existing tag", tag)
                    .with_evidence("section", quoted);
                }
                Err(e) => {
                    return base(Outcome::check_error(e.to_string()))
                        .with_evidence("section", quoted);
                }
            }
        }
        let heading = format!(
            "section `{}` at line {}{}",
            section.name,
            section.line,
            section
                .date
                .as_ref()
                .map(|d| format!(", dated {d}"))
                .unwrap_or_else(|| ", no date yet".into())
        );
        let mut outcome = match (&outcome_note, &latest_text) {
            (Some(note), _) => Outcome::warned(format!(
                "{} has a {heading}; {note}",
                self.params.file.display()
            )),
            (None, Some(tag)) => Outcome::passed(format!(
                "{} has a {heading}; {version} > latest release tag {tag}",
                self.params.file.display()
            )),
            (None, None) => Outcome::passed(format!(
                "{} has a {heading} (tags not compared: no repository given)",
                self.params.file.display()
            )),
        };
        outcome = base(outcome);
        if let Some(tag) = latest_text {
            outcome = outcome.with_evidence("latest release tag", tag);
        }
        outcome.with_evidence("section", quoted)
    }
}

enum TagVerdict {
    Greater(String),
    NotGreater(String),
    AlreadyTagged(String),
    NoTags { shallow: bool },
}

async fn compare_with_tags(dir: &Path, version: &semver::Version) -> Result<TagVerdict, GitError> {
    let repo = Repo::open(dir).await?;
    for name in [format!("v{version}"), version.to_string()] {
        if repo.has_tag(&name).await? {
            return Ok(TagVerdict::AlreadyTagged(name));
        }
    }
    match repo.latest_release_tag().await? {
        Some(tag) if *version > tag.version => Ok(TagVerdict::Greater(tag.name)),
        Some(tag) => Ok(TagVerdict::NotGreater(tag.name)),
        None => Ok(TagVerdict::NoTags {
            shallow: repo.is_shallow().await?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::testing::{commit, init, tag};
    use crate::testing::{ctx, evidence};
    use escola_runbook_core::Status;

    const CHANGELOG: &str = "# Changelog\n\nAll notable changes to this project will be documented in this file.\n\n\
## [Unreleased]\n\n\
## [2.4.0] - 2026-11-29\n### Added\n- `If-Match` enforced on `/v1/sync`.\n### Fixed\n- Cache of `/v1/cidades` purged on deploy.\n\n\
## [2.3.0] - 2026-10-01\n### Added\n- Rate limit on `/v1/escolas`.\n\n\
[2.4.0]: https://example.invalid/compare/v2.3.0...v2.4.0\n[2.3.0]: https://example.invalid/compare/v2.2.0...v2.3.0\n";

    fn repo_with(tags: &[&str], changelog: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path());
        commit(
            dir.path(),
            "2026-09-01T12:00:00Z",
            "start",
            &[("CHANGELOG.md", changelog)],
        );
        for t in tags {
            tag(dir.path(), "2026-09-01T12:00:00Z", t);
        }
        dir
    }

    async fn run(dir: &Path, version: &str) -> Outcome {
        ChangelogCheck::new(dir.join("CHANGELOG.md"), version)
            .repo(dir)
            .run(&ctx())
            .await
    }

    #[test]
    fn sections_follow_keep_a_changelog() {
        let s = sections(CHANGELOG);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Unreleased", "2.4.0", "2.3.0"]);
        assert!(!s[0].has_content);
        assert_eq!(s[1].date.as_deref(), Some("2026-11-29"));
        assert_eq!(s[1].line, 7);
        assert!(
            s[1].text
                .ends_with("- Cache of `/v1/cidades` purged on deploy.")
        );
        assert!(
            !s[2].text.contains("https://"),
            "link definitions are not part of a section"
        );
        // The headings other tools write.
        for (heading, date) in [
            ("## 2.4.0 (2026-12-01)", Some("2026-12-01")),
            ("## [2.4.0] – 2026-12-01", Some("2026-12-01")),
            ("## v2.4.0", None),
        ] {
            let s = sections(&format!("{heading}\n- x\n"));
            assert_eq!(s[0].date.as_deref(), date, "{heading}");
        }
    }

    #[tokio::test]
    async fn passes_when_section_exists_and_version_exceeds_latest_tag() {
        let dir = repo_with(&["v2.2.0", "v2.3.0", "v2.10.0-rc.1", "nightly"], CHANGELOG);
        let o = run(dir.path(), "2.4.0").await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert!(
            o.summary
                .contains("section `2.4.0` at line 7, dated 2026-11-29"),
            "{}",
            o.summary
        );
        assert!(
            o.summary.contains("2.4.0 > latest release tag v2.3.0"),
            "{}",
            o.summary
        );
        assert!(evidence(&o, "section").starts_with("## [2.4.0] - 2026-11-29\n### Added"));
        assert_eq!(evidence(&o, "latest release tag"), "v2.3.0");
    }

    #[tokio::test]
    async fn fails_when_not_greater_or_already_tagged_or_missing() {
        let dir = repo_with(&["v2.4.1"], CHANGELOG);
        let o = run(dir.path(), "2.4.0").await;
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.summary,
            "planned version 2.4.0 is not greater than the latest release tag v2.4.1"
        );

        let dir = repo_with(&["2.4.0"], CHANGELOG);
        let o = run(dir.path(), "v2.4.0").await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.summary.contains("already tagged (2.4.0)"),
            "{}",
            o.summary
        );

        let dir = repo_with(&["v2.3.0"], CHANGELOG);
        let o = run(dir.path(), "2.5.0").await;
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.summary
                .contains("no section for 2.5.0; sections found: Unreleased, 2.4.0, 2.3.0"),
            "{}",
            o.summary
        );

        let pending = CHANGELOG.replace(
            "## [Unreleased]\n",
            "## [Unreleased]\n- Sync conflicts logged\n",
        );
        let dir2 = repo_with(&["v2.4.0"], &pending);
        let o = run(dir2.path(), "2.5.0").await;
        assert_eq!(o.status, Status::Failed);
        assert!(o.summary.contains("no section for 2.5.0 (the changes are under [Unreleased]: rename it to `## [2.5.0] - YYYY-MM-DD`)"), "{}", o.summary);

        let o = run(dir.path(), "2.4").await;
        assert_eq!(o.status, Status::Failed);
        assert!(o.summary.contains("not valid semver"), "{}", o.summary);
    }

    #[tokio::test]
    async fn empty_section_fails_and_quotes_it() {
        let text = CHANGELOG.replace("## [Unreleased]", "## [2.5.0] - 2026-12-01");
        let dir = repo_with(&["v2.4.0"], &text);
        let o = run(dir.path(), "2.5.0").await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(o.summary.contains("is empty"), "{}", o.summary);
        assert_eq!(evidence(&o, "section"), "## [2.5.0] - 2026-12-01");
    }

    #[tokio::test]
    async fn no_release_tag_warns_and_git_problems_are_check_errors() {
        let dir = repo_with(&[], CHANGELOG);
        let o = run(dir.path(), "2.4.0").await;
        assert_eq!(o.status, Status::Warned, "{o:#?}");
        assert!(o.summary.contains("no release tag"), "{}", o.summary);

        let plain = tempfile::tempdir().unwrap();
        std::fs::write(plain.path().join("CHANGELOG.md"), CHANGELOG).unwrap();
        let o = run(plain.path(), "2.4.0").await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(
            o.summary.contains("is not a git repository"),
            "{}",
            o.summary
        );
    }

    #[tokio::test]
    async fn malformed_changelogs_are_check_errors() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "the file is empty"),
            (
                b"# Changelog\n\nNothing here yet.\n",
                "no `## [version]` section",
            ),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
            (b"## [2.4.0]\n- caf\xe9\n", "not UTF-8"),
        ];
        for (text, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("CHANGELOG.md"), text).unwrap();
            let o = ChangelogCheck::new(dir.path().join("CHANGELOG.md"), "2.4.0")
                .run(&ctx())
                .await;
            assert_eq!(o.status, Status::CheckError, "{expected}: {o:#?}");
            assert!(o.summary.contains(expected), "{expected}: {}", o.summary);
        }
        let o = ChangelogCheck::new("/nonexistent/CHANGELOG.md", "2.4.0")
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError);
        assert!(o.summary.contains("cannot read changelog"), "{}", o.summary);
    }

    #[test]
    fn registry_validates_version_and_round_trips() {
        let catalog = crate::catalog();
        let spec = catalog.find("changelog").unwrap();
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("version", "next")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not semver"), "{err}");
        let check = spec
            .build_from_pairs(&crate::testing::pairs([
                ("version", "2.4.0"),
                ("repo", "none"),
            ]))
            .unwrap();
        let params = check.params().unwrap();
        assert_eq!(params.params.get("file"), None, "the default is left out");
        assert_eq!(params.params["repo"], "none");
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
    }
}
