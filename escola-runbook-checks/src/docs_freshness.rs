//! "Validar que `docs/api.md`, `docs/cache-strategy.md` e
//! `docs/escola-module-todo.md` estão atualizados": each file has a commit
//! since the last release tag (or within a number of days, or since a given
//! ref). A file with no such commit is stale; a file missing at HEAD is
//! reported as missing.

use std::path::PathBuf;
use std::time::Duration;

use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Outcome, async_trait, format_duration,
};

use crate::git::{Commit, Repo};
use crate::registry::{CheckSpec, ParamSpec, parse_duration};

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
    /// Parses `last-tag`, a duration (`14d`, `36h`) or a git ref.
    pub fn parse(text: &str) -> Since {
        let text = text.trim();
        if text == "last-tag" {
            return Since::LastTag;
        }
        match parse_duration(text) {
            Some(d) if text.chars().next().is_some_and(|c| c.is_ascii_digit()) => Since::Within(d),
            _ => Since::Ref(text.trim_start_matches("ref:").to_owned()),
        }
    }

    fn param(&self) -> String {
        match self {
            Since::LastTag => "last-tag".into(),
            Since::Within(d) => format!("{}s", d.as_secs()),
            Since::Ref(r) => format!("ref:{r}"),
        }
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
    repo: PathBuf,
    files: Vec<String>,
    since: Since,
}

impl DocsFreshnessCheck {
    /// Checks `files` (paths relative to the repository root) in `repo`.
    pub fn new<I, S>(repo: impl Into<PathBuf>, files: I, since: Since) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DocsFreshnessCheck {
            repo: repo.into(),
            files: files.into_iter().map(Into::into).collect(),
            since,
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
        let since = match &self.since {
            Since::LastTag => "the last release tag".to_owned(),
            Since::Within(d) => format!("the last {}", format_duration(*d)),
            Since::Ref(r) => r.clone(),
        };
        Description::read_only(
            "docs-freshness",
            format!(
                "{} changed in git since {since} (repository {})",
                self.files.join(", "),
                self.repo.display()
            ),
        )
    }

    fn params(&self) -> Option<CheckParams> {
        Some(
            CheckParams::new("docs-freshness")
                .with("repo", self.repo.display().to_string())
                .with("files", self.files.join(","))
                .with("since", self.since.param()),
        )
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        if self.files.is_empty() {
            return Outcome::check_error("no files to check; set `files`");
        }
        let repo = match Repo::open(&self.repo).await {
            Ok(r) => r,
            Err(e) => return Outcome::check_error(e.to_string()),
        };
        // The point in history, as a git range start or a date.
        let (range_start, cutoff, since_text) = match &self.since {
            Since::LastTag => match repo.latest_release_tag().await {
                Ok(Some(tag)) => {
                    let date = match repo.commit(&tag.name).await {
                        Ok(Some(c)) => format!(" ({})", c.date.format("%Y-%m-%d")),
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
                        self.repo.display(),
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
                        self.repo.display()
                    ));
                }
                Err(e) => return Outcome::check_error(e.to_string()),
            },
            Since::Within(d) => {
                let now = chrono::Utc::now();
                let cutoff = chrono::Duration::from_std(*d)
                    .ok()
                    .and_then(|d| now.checked_sub_signed(d))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                (
                    None,
                    Some(cutoff),
                    format!(
                        "the last {} (after {})",
                        format_duration(*d),
                        cutoff.format("%Y-%m-%d %H:%M UTC")
                    ),
                )
            }
        };
        let mut states = Vec::new();
        for file in &self.files {
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
        let total = self.files.len();
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
            .with_evidence("repository", self.repo.display().to_string())
            .with_evidence("since", since_text)
            .with_evidence("files", lines.join("\n"))
            .with_measurement("stale_docs", stale.len() as f64, Some("files"))
    }
}

/// The registry entry for `docs-freshness`.
pub(crate) fn spec() -> CheckSpec {
    const PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "repo",
            help: "git work tree of the application",
            required: false,
            default: Some("."),
        },
        ParamSpec {
            name: "files",
            help: "comma-separated paths relative to the repository root; each must have a commit in the window",
            required: false,
            default: Some("docs/api.md,docs/cache-strategy.md,docs/escola-module-todo.md"),
        },
        ParamSpec {
            name: "since",
            help: "window start: `last-tag` (highest vX.Y.Z tag), a duration back from now by committer date (`30d`, `36h`), or a tag/commit (`ref:v2.3.0`)",
            required: false,
            default: Some("last-tag"),
        },
    ];
    CheckSpec {
        name: "docs-freshness",
        summary: "each named document has a git commit since the last release tag (or within a window)",
        params: PARAMS,
        build: |p| {
            let files = p.list("files").unwrap_or_default();
            if files.is_empty() {
                return Err(p.error("files", "is empty; give comma-separated paths"));
            }
            let since_text = p.require("since")?;
            if since_text.trim().is_empty() {
                return Err(p.error("since", "is empty; give last-tag, a duration or a ref"));
            }
            Ok(std::sync::Arc::new(DocsFreshnessCheck::new(
                p.require("repo")?,
                files,
                Since::parse(since_text),
            )))
        },
    }
}
