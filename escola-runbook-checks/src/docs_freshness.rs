//! "Validar que `docs/api.md`, `docs/cache-strategy.md` e
//! `docs/escola-module-todo.md` estão atualizados": each file has a commit
//! since the last release tag (or within a number of days, or since a given
//! ref). A file with no such commit is stale; a file missing at HEAD is
//! reported as missing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::duration::{self, DurationError, Range, format_span};
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};
use serde::{Deserialize, Serialize};

use crate::git::{Commit, Repo};

/// The documents the runbook names.
pub const RUNBOOK_DOCS: [&str; 3] = [
    "docs/api.md",
    "docs/cache-strategy.md",
    "docs/escola-module-todo.md",
];

/// Since when a document must have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Since the highest release tag (vX.Y.Z).
    LastTag,
    /// Within this long before now (committer date).
    Within(Duration),
    /// Since this git ref (a tag, a commit).
    Ref(String),
}

impl Since {
    /// Parses `last-tag`, a duration (`14d`, `36h`, up to 3650 days) or a
    /// git ref (`ref:` forces a ref). A well-formed duration out of range
    /// is an error, not a ref.
    pub fn parse(text: &str) -> Result<Since, DurationError> {
        let text = text.trim();
        if text == "last-tag" {
            return Ok(Since::LastTag);
        }
        let ref_ = || Since::Ref(text.trim_start_matches("ref:").to_owned());
        if !text.starts_with(|c: char| c.is_ascii_digit()) {
            return Ok(ref_());
        }
        match duration::parse_in(text, Range::LOOK_BACK) {
            Ok(d) => Ok(Since::Within(d)),
            Err(DurationError::Syntax { .. }) => Ok(ref_()),
            Err(e) => Err(e),
        }
    }

    fn param(&self) -> String {
        match self {
            Since::LastTag => "last-tag".into(),
            Since::Within(d) => duration::exact(*d),
            Since::Ref(r) => format!("ref:{r}"),
        }
    }
}

/// Written as the text [`Since::parse`] reads, so a round trip is exact.
impl Serialize for Since {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.param())
    }
}

impl<'de> Deserialize<'de> for Since {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Since::parse(&text).map_err(serde::de::Error::custom)
    }
}

escola_runbook_core::text_param_schema!(
    Since,
    "DocsSince",
    "`last-tag`, a duration back from now (30d, 36h) or a tag/commit (ref:v2.3.0)"
);

/// Each named document has a git commit since the last release tag (or
/// within a window).
///
/// The parameters of [`DocsFreshnessCheck`], declared once (see
/// [`CheckConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsFreshnessParams {
    /// Git work tree of the application.
    #[serde(default = "default_repo")]
    pub repo: PathBuf,
    /// Paths relative to `repo`; each must have a commit in the window.
    #[serde(default = "default_files")]
    pub files: Vec<String>,
    /// Window start: `last-tag` (highest vX.Y.Z tag), a duration back from
    /// now by committer date (`30d`, `36h`), or a tag/commit
    /// (`ref:v2.3.0`).
    #[serde(default = "default_since")]
    pub since: Since,
}

fn default_repo() -> PathBuf {
    PathBuf::from(".")
}
/// [`RUNBOOK_DOCS`], owned.
pub fn default_files() -> Vec<String> {
    RUNBOOK_DOCS.iter().map(|s| (*s).to_owned()).collect()
}
fn default_since() -> Since {
    Since::LastTag
}

impl CheckConfig for DocsFreshnessParams {
    const NAME: &'static str = "docs-freshness";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        if self.files.is_empty() {
            return Err(ParamsError::invalid(
                Self::NAME,
                "files",
                "is empty; give one path or more",
            ));
        }
        if matches!(&self.since, Since::Ref(r) if r.is_empty()) {
            return Err(ParamsError::invalid(
                Self::NAME,
                "since",
                "is empty; give last-tag, a duration or a ref",
            ));
        }
        Ok(Arc::new(DocsFreshnessCheck { params: self }))
    }
}

/// Every named document changed since a point in the repository's history.
///
/// ```
/// use escola_runbook_checks::docs_freshness::{DocsFreshnessCheck, Since, RUNBOOK_DOCS};
/// let check = DocsFreshnessCheck::new("/srv/escola-connect", RUNBOOK_DOCS, Since::LastTag);
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct DocsFreshnessCheck {
    params: DocsFreshnessParams,
}

impl DocsFreshnessCheck {
    /// Checks `files` (paths relative to `repo`) in `repo`.
    pub fn new<I, S>(repo: impl Into<PathBuf>, files: I, since: Since) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DocsFreshnessCheck {
            params: DocsFreshnessParams {
                repo: repo.into(),
                files: files.into_iter().map(Into::into).collect(),
                since,
            },
        }
    }
}

enum State {
    Fresh(Commit),
    Stale(Option<Commit>),
    Missing,
}

#[async_trait]
impl Check for DocsFreshnessCheck {
    fn describe(&self) -> Description {
        let since = match &self.params.since {
            Since::LastTag => "the last release tag".to_owned(),
            Since::Within(d) => format!("the last {}", format_span(*d)),
            Since::Ref(r) => r.clone(),
        };
        Description::read_only(
            "docs-freshness",
            format!(
                "{} changed in git since {since} (repository {})",
                self.params.files.join(", "),
                self.params.repo.display()
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        if self.params.files.is_empty() {
            return Outcome::check_error("no files to check; set `files`");
        }
        let repo = match Repo::open(&self.params.repo).await {
            Ok(r) => r,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        // The point in history, as a git range start or a date.
        let (range_start, cutoff, since_text) = match &self.params.since {
            Since::LastTag => match repo.latest_release_tag().await {
                Ok(Some(tag)) => {
                    let date = match repo.tag_date(&tag.name).await {
                        Ok(Some(d)) => format!(" ({})", d.format("%Y-%m-%d")),
                        _ => String::new(),
                    };
                    (
                        Some(tag.name.clone()),
                        None,
                        format!("release tag {}{date}", tag.name),
                    )
                }
                Ok(None) => {
                    let shallow = repo.is_shallow().await.unwrap_or(false);
                    return Outcome::check_error(format!(
                        "{} has no release tag (vX.Y.Z){}; set `since` to a duration (e.g. 30d) or a ref",
                        self.params.repo.display(),
                        if shallow {
                            ": it is a shallow clone, run `git fetch --tags --unshallow`"
                        } else {
                            ""
                        }
                    ));
                }
                Err(e) => return Outcome::check_error(e.to_string()),
            },
            Since::Ref(r) => match repo.commit(r).await {
                Ok(Some(c)) => (
                    Some(r.clone()),
                    None,
                    format!("{r} ({})", c.date.format("%Y-%m-%d")),
                ),
                Ok(None) => {
                    return Outcome::check_error(format!(
                        "`{r}` is not a tag or commit in {}; set `since` to last-tag, a duration (30d) or an existing ref",
                        self.params.repo.display()
                    ));
                }
                Err(e) => return Outcome::check_error(e.to_string()),
            },
            Since::Within(d) => {
                let now = ctx.now();
                let cutoff = chrono::Duration::from_std(*d)
                    .ok()
                    .and_then(|d| now.checked_sub_signed(d))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                (
                    None,
                    Some(cutoff),
                    format!(
                        "the last {} (after {})",
                        format_span(*d),
                        cutoff.format("%Y-%m-%d %H:%M UTC")
                    ),
                )
            }
        };
        let mut states = Vec::new();
        for file in &self.params.files {
            let state = async {
                if !repo.exists_at_head(file).await? {
                    return Ok(State::Missing);
                }
                let last = repo.last_change(file).await?;
                Ok::<_, crate::git::GitError>(match (&range_start, cutoff, last) {
                    (Some(start), _, last) => match repo.change_since(start, file).await? {
                        Some(c) => State::Fresh(c),
                        None => State::Stale(last),
                    },
                    (None, Some(cutoff), Some(c)) if c.date >= cutoff => State::Fresh(c),
                    (_, _, last) => State::Stale(last),
                })
            }
            .await;
            match state {
                Ok(s) => states.push((file, s, repo.uncommitted(file).await.unwrap_or(false))),
                Err(e) => return Outcome::check_error(e.to_string()),
            }
        }
        let mut lines = Vec::new();
        let mut stale = Vec::new();
        for (file, state, dirty) in &states {
            let dirty_note = if *dirty {
                "; has uncommitted changes (not counted)"
            } else {
                ""
            };
            let line = match state {
                State::Fresh(c) => format!("fresh: {file} changed in {}{dirty_note}", c.describe()),
                State::Stale(Some(c)) => {
                    stale.push(file.as_str());
                    format!("STALE: {file} last changed in {}{dirty_note}", c.describe())
                }
                State::Stale(None) => {
                    stale.push(file.as_str());
                    format!("STALE: {file} has no commit{dirty_note}")
                }
                State::Missing => {
                    stale.push(file.as_str());
                    format!("MISSING: {file} does not exist at HEAD{dirty_note}")
                }
            };
            lines.push(ctx.redactor().redact(&line).into_owned());
        }
        let total = self.params.files.len();
        let outcome = if stale.is_empty() {
            Outcome::passed(format!(
                "{total} of {total} docs changed since {since_text}"
            ))
        } else {
            Outcome::failed(format!(
                "{} of {total} docs not changed since {since_text} (all {total} must be): {}",
                stale.len(),
                stale.join(", ")
            ))
        };
        outcome
            .with_evidence("repository", self.params.repo.display().to_string())
            .with_evidence("since", since_text)
            .with_evidence("files", lines.join("\n"))
            .with_measurement("stale_docs", stale.len() as f64, Some("files"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::testing::{commit, init, tag};
    use crate::testing::ctx;
    use escola_runbook_core::Status;

    fn files(o: &Outcome) -> Vec<String> {
        o.evidence
            .iter()
            .find(|e| e.label == "files")
            .map(|e| e.value.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// v2.3.0 on 2026-10-01; api.md and cache-strategy.md changed after,
    /// escola-module-todo.md last changed before.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init(d);
        commit(
            d,
            "2026-09-01T12:00:00Z",
            "docs for 2.3",
            &[
                ("docs/api.md", "v1"),
                ("docs/cache-strategy.md", "v1"),
                ("docs/escola-module-todo.md", "v1"),
            ],
        );
        tag(d, "2026-10-01T09:00:00Z", "v2.3.0");
        commit(
            d,
            "2026-11-20T15:30:00Z",
            "Document If-Match on sync",
            &[("docs/api.md", "v2")],
        );
        commit(
            d,
            "2026-11-21T10:00:00Z",
            "Cache purge on deploy",
            &[("docs/cache-strategy.md", "v2")],
        );
        dir
    }

    #[tokio::test]
    async fn stale_docs_since_the_last_tag_fail_and_are_named() {
        let dir = repo();
        let o = DocsFreshnessCheck::new(dir.path(), RUNBOOK_DOCS, Since::LastTag)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert_eq!(
            o.summary,
            "1 of 3 docs not changed since release tag v2.3.0 (2026-10-01) (all 3 must be): docs/escola-module-todo.md"
        );
        let lines = files(&o);
        assert!(
            lines[0].starts_with("fresh: docs/api.md changed in "),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("on 2026-11-20 15:30 +00:00 (“Document If-Match on sync”)"),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("STALE: docs/escola-module-todo.md last changed in "),
            "{lines:?}"
        );
        assert_eq!(o.measurements[0].value, 1.0);
    }

    #[tokio::test]
    async fn all_fresh_passes_and_missing_files_fail() {
        let dir = repo();
        commit(
            dir.path(),
            "2026-11-22T10:00:00Z",
            "todo",
            &[("docs/escola-module-todo.md", "v2")],
        );
        let o = DocsFreshnessCheck::new(dir.path(), RUNBOOK_DOCS, Since::LastTag)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert_eq!(
            o.summary,
            "3 of 3 docs changed since release tag v2.3.0 (2026-10-01)"
        );

        let o =
            DocsFreshnessCheck::new(dir.path(), ["docs/api.md", "docs/gone.md"], Since::LastTag)
                .run(&ctx())
                .await;
        assert_eq!(o.status, Status::Failed);
        assert!(files(&o)[1].starts_with("MISSING: docs/gone.md does not exist at HEAD"));
    }

    #[tokio::test]
    async fn within_days_uses_committer_dates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init(d);
        let now = chrono::Utc::now();
        let old = (now - chrono::Duration::days(40)).to_rfc3339();
        let recent = (now - chrono::Duration::days(2)).to_rfc3339();
        commit(
            d,
            &old,
            "old",
            &[("docs/api.md", "1"), ("docs/cache-strategy.md", "1")],
        );
        commit(d, &recent, "recent", &[("docs/api.md", "2")]);
        let check = DocsFreshnessCheck::new(
            d,
            ["docs/api.md", "docs/cache-strategy.md"],
            Since::parse("30d").unwrap(),
        );
        let o = check.run(&ctx()).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(
            o.summary
                .starts_with("1 of 2 docs not changed since the last 30d"),
            "{}",
            o.summary
        );
        assert!(
            o.summary.ends_with(": docs/cache-strategy.md"),
            "{}",
            o.summary
        );
        let o = DocsFreshnessCheck::new(
            d,
            ["docs/api.md", "docs/cache-strategy.md"],
            Since::parse("45d").unwrap(),
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
    }

    #[tokio::test]
    async fn since_a_ref_and_uncommitted_changes_are_noted() {
        let dir = repo();
        std::fs::write(dir.path().join("docs/escola-module-todo.md"), "edited").unwrap();
        let first = crate::git::testing::git(
            dir.path(),
            "2026-01-01T00:00:00Z",
            &["rev-list", "--max-parents=0", "HEAD"],
        );
        let o = DocsFreshnessCheck::new(
            dir.path(),
            ["docs/escola-module-todo.md"],
            Since::parse(&format!("ref:{}", first.trim())).unwrap(),
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(
            files(&o)[0].ends_with("has uncommitted changes (not counted)"),
            "{:?}",
            files(&o)
        );
        let o = DocsFreshnessCheck::new(
            dir.path(),
            ["docs/api.md"],
            Since::parse("ref:no-such-ref").unwrap(),
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::CheckError);
        assert!(
            o.summary.contains("`no-such-ref` is not a tag or commit"),
            "{}",
            o.summary
        );
    }

    #[tokio::test]
    async fn paths_are_relative_to_a_subdirectory_of_a_repository() {
        let dir = repo();
        commit(
            dir.path(),
            "2026-11-22T10:00:00Z",
            "api module",
            &[("services/api/docs/api.md", "1")],
        );
        let o = DocsFreshnessCheck::new(
            dir.path().join("services/api"),
            ["docs/api.md", "./docs/api.md"],
            Since::LastTag,
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        let o = DocsFreshnessCheck::new(
            dir.path().join("services/api"),
            ["docs/cache-strategy.md"],
            Since::LastTag,
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(files(&o)[0].starts_with("MISSING"), "{:?}", files(&o));
    }

    #[tokio::test]
    async fn no_tag_or_no_repo_is_a_check_error() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path());
        commit(
            dir.path(),
            "2026-09-01T12:00:00Z",
            "start",
            &[("docs/api.md", "1")],
        );
        let o = DocsFreshnessCheck::new(dir.path(), ["docs/api.md"], Since::LastTag)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(o.summary.contains("has no release tag"), "{}", o.summary);
        let plain = tempfile::tempdir().unwrap();
        let o = DocsFreshnessCheck::new(plain.path(), ["docs/api.md"], Since::LastTag)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError);
        assert!(
            o.summary.contains("is not a git repository"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn since_parses_and_registry_round_trips() {
        assert_eq!(Since::parse("last-tag"), Ok(Since::LastTag));
        assert_eq!(
            Since::parse("14d"),
            Ok(Since::Within(Duration::from_secs(14 * 86_400)))
        );
        assert_eq!(
            Since::parse("365d"),
            Ok(Since::Within(Duration::from_secs(365 * 86_400)))
        );
        assert!(Since::parse("99999999d").is_err());
        assert_eq!(Since::parse("v2.3.0"), Ok(Since::Ref("v2.3.0".into())));
        assert_eq!(Since::parse("ref:30d"), Ok(Since::Ref("30d".into())));
        let catalog = crate::catalog();
        let spec = catalog.find("docs-freshness").unwrap();
        for since in ["last-tag", "36h", "ref:v2.3.0"] {
            let check = spec
                .build_from_pairs(&crate::testing::pairs([
                    ("since", since),
                    ("files", "docs/api.md,docs/cache-strategy.md"),
                ]))
                .unwrap();
            let params = check.params().unwrap();
            assert_eq!(
                params.params["files"],
                serde_json::json!(["docs/api.md", "docs/cache-strategy.md"])
            );
            let again = spec.build(params.params.clone()).unwrap();
            assert_eq!(again.params(), Some(params));
        }
    }
}
