//! The few git questions the repository checks ask (latest release tag, last
//! commit touching a file), answered by the `git` CLI so the answers are
//! exactly what `git log` shows the person at the terminal.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use tokio::process::Command;

/// A git question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run `git` ({0}); install git or put it on PATH")]
    NotInstalled(String),
    /// The directory does not exist.
    #[error("repository directory {0} does not exist; set `repo` to the application checkout")]
    NoDirectory(PathBuf),
    /// The directory is not inside a git work tree.
    #[error("{0} is not a git repository ({1}); set `repo` to the application checkout")]
    NotARepo(PathBuf, String),
    /// The repository has no commit yet.
    #[error("repository {0} has no commit yet")]
    NoCommits(PathBuf),
    /// A git command failed.
    #[error("`git {args}` failed in {repo}: {stderr}")]
    Failed {
        /// The directory.
        repo: PathBuf,
        /// The arguments.
        args: String,
        /// What git said.
        stderr: String,
    },
}

/// A release tag: a tag whose name is a semver version, with or without `v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTag {
    /// The tag's name as in the repository ("v1.2.0").
    pub name: String,
    /// Its version.
    pub version: semver::Version,
}

/// Parses `v1.2.3` or `1.2.3` (strict semver after the optional `v`).
pub fn parse_version(text: &str) -> Result<semver::Version, semver::Error> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    semver::Version::parse(bare)
}

/// A git work tree.
#[derive(Debug, Clone)]
pub struct Repo {
    dir: PathBuf,
}

impl Repo {
    /// Opens `dir`, checking that git works there and the repository has a
    /// commit.
    pub async fn open(dir: &Path) -> Result<Self, GitError> {
        if !dir.is_dir() {
            return Err(GitError::NoDirectory(dir.to_owned()));
        }
        let repo = Repo {
            dir: dir.to_owned(),
        };
        match repo.run(&["rev-parse", "--is-inside-work-tree"]).await {
            Ok(out) if out.trim() == "true" => {}
            Ok(out) => {
                return Err(GitError::NotARepo(
                    dir.to_owned(),
                    format!("git says inside work tree: {}", out.trim()),
                ));
            }
            Err(GitError::Failed { stderr, .. }) => {
                return Err(GitError::NotARepo(dir.to_owned(), stderr));
            }
            Err(e) => return Err(e),
        }
        match repo
            .run(&["rev-parse", "--verify", "--quiet", "HEAD"])
            .await
        {
            Ok(_) => Ok(repo),
            Err(GitError::Failed { .. }) => Err(GitError::NoCommits(dir.to_owned())),
            Err(e) => Err(e),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs git: its stdout, [`GitError::NotInstalled`] when it cannot
    /// start, [`GitError::Failed`] (with stderr) on a non-zero exit.
    pub async fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let output = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            // Never prompt, never page, never read the user's locale.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PAGER", "cat")
            .env("LC_ALL", "C")
            // Inside a git hook or a CI step these point elsewhere; the
            // directory asked about must decide.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| GitError::NotInstalled(e.to_string()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(GitError::Failed {
                repo: self.dir.clone(),
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Every release tag (semver names without a pre-release part), highest
    /// version first. Pre-release tags (`v2.0.0-rc.1`) are not releases.
    pub async fn release_tags(&self) -> Result<Vec<ReleaseTag>, GitError> {
        let out = self.run(&["tag", "--list"]).await?;
        let mut tags: Vec<ReleaseTag> = out
            .lines()
            .filter_map(|name| {
                let version = parse_version(name).ok()?;
                version.pre.is_empty().then(|| ReleaseTag {
                    name: name.trim().to_owned(),
                    version,
                })
            })
            .collect();
        tags.sort_by(|a, b| b.version.cmp(&a.version));
        Ok(tags)
    }

    /// The highest release tag, if any.
    pub async fn latest_release_tag(&self) -> Result<Option<ReleaseTag>, GitError> {
        Ok(self.release_tags().await?.into_iter().next())
    }

    /// Whether a tag called `name` exists.
    pub async fn has_tag(&self, name: &str) -> Result<bool, GitError> {
        let out = self.run(&["tag", "--list", name]).await?;
        Ok(out.lines().any(|l| l.trim() == name))
    }

    /// True for a shallow clone (CI checkouts), which often has no tags.
    pub async fn is_shallow(&self) -> Result<bool, GitError> {
        Ok(self
            .run(&["rev-parse", "--is-shallow-repository"])
            .await?
            .trim()
            == "true")
    }

    /// The commit `reference` points to, with its committer date.
    pub async fn commit(&self, reference: &str) -> Result<Option<Commit>, GitError> {
        let spec = format!("{reference}^{{commit}}");
        match self
            .run(&["log", "-1", "--no-walk", COMMIT_FORMAT, &spec, "--"])
            .await
        {
            Ok(out) => Ok(Commit::parse(&out)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When tag `name` was made: the tagger date of an annotated tag, the
    /// commit date of a lightweight one.
    pub async fn tag_date(&self, name: &str) -> Result<Option<DateTime<FixedOffset>>, GitError> {
        let reference = format!("refs/tags/{name}");
        let out = self
            .run(&[
                "for-each-ref",
                "--format=%(creatordate:iso-strict)",
                &reference,
            ])
            .await?;
        Ok(out
            .lines()
            .next()
            .and_then(|l| DateTime::parse_from_rfc3339(l.trim()).ok()))
    }

    /// The last commit reachable from HEAD that touched `path`.
    pub async fn last_change(&self, path: &str) -> Result<Option<Commit>, GitError> {
        let out = self
            .run(&["log", "-1", COMMIT_FORMAT, "HEAD", "--", path])
            .await?;
        Ok(Commit::parse(&out))
    }

    /// The last commit after `since` (exclusive) up to HEAD that touched `path`.
    pub async fn change_since(&self, since: &str, path: &str) -> Result<Option<Commit>, GitError> {
        let range = format!("{since}..HEAD");
        let out = self
            .run(&["log", "-1", COMMIT_FORMAT, &range, "--", path])
            .await?;
        Ok(Commit::parse(&out))
    }

    /// Whether `path` (relative to the directory) exists in HEAD's tree.
    pub async fn exists_at_head(&self, path: &str) -> Result<bool, GitError> {
        // `./` makes the path relative to the directory, like the
        // pathspecs of the other commands, also in a subdirectory of a
        // repository.
        let spec = format!("HEAD:./{}", path.trim_start_matches("./"));
        match self.run(&["cat-file", "-e", &spec]).await {
            Ok(_) => Ok(true),
            Err(GitError::Failed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `path` has changes not committed yet.
    pub async fn uncommitted(&self, path: &str) -> Result<bool, GitError> {
        let out = self.run(&["status", "--porcelain", "--", path]).await?;
        Ok(!out.trim().is_empty())
    }
}

const COMMIT_FORMAT: &str = "--format=%h%x1f%cI%x1f%s";

/// A commit as evidence shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Abbreviated hash.
    pub short: String,
    /// Committer date.
    pub date: DateTime<FixedOffset>,
    /// First line of the message.
    pub subject: String,
}

impl Commit {
    fn parse(out: &str) -> Option<Commit> {
        let line = out.lines().next()?;
        let mut parts = line.splitn(3, '\u{1f}');
        let short = parts.next()?.to_owned();
        let date = DateTime::parse_from_rfc3339(parts.next()?).ok()?;
        let subject = parts.next().unwrap_or_default().to_owned();
        Some(Commit {
            short,
            date,
            subject,
        })
    }

    /// `abc1234 on 2026-11-20 (“subject”)`.
    pub fn describe(&self) -> String {
        format!(
            "{} on {} (“{}”)",
            self.short,
            self.date.format("%Y-%m-%d %H:%M %:z"),
            self.subject
        )
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A real repository built by a test, with controlled commit dates.

    use std::path::Path;
    use std::process::Command;

    /// Runs git in `dir` with fixed identity and the given date; panics on
    /// failure (tests only).
    pub fn git(dir: &Path, date: &str, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `git init` with a main branch.
    pub fn init(dir: &Path) {
        git(dir, "2026-01-01T00:00:00Z", &["init", "-q", "-b", "main"]);
    }

    /// Writes `files` and commits them at `date`.
    pub fn commit(dir: &Path, date: &str, message: &str, files: &[(&str, &str)]) {
        for (path, text) in files {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(full, text).unwrap();
            git(dir, date, &["add", path]);
        }
        git(dir, date, &["commit", "-q", "-m", message]);
    }

    /// An annotated tag at HEAD.
    pub fn tag(dir: &Path, date: &str, name: &str) {
        git(dir, date, &["tag", "-a", name, "-m", name]);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[tokio::test]
    async fn release_tags_are_semver_without_prerelease_highest_first() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path());
        commit(dir.path(), "2026-01-02T10:00:00Z", "one", &[("a.txt", "1")]);
        tag(dir.path(), "2026-01-02T10:00:00Z", "v1.9.0");
        commit(dir.path(), "2026-01-03T10:00:00Z", "two", &[("a.txt", "2")]);
        tag(dir.path(), "2026-01-03T10:00:00Z", "v1.10.0");
        tag(dir.path(), "2026-01-03T10:00:00Z", "v2.0.0-rc.1");
        tag(dir.path(), "2026-01-03T10:00:00Z", "nightly");
        let repo = Repo::open(dir.path()).await.unwrap();
        let tags = repo.release_tags().await.unwrap();
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["v1.10.0", "v1.9.0"]);
        let c = repo.commit("v1.9.0").await.unwrap().unwrap();
        assert_eq!(c.subject, "one");
        assert_eq!(c.date.to_rfc3339(), "2026-01-02T10:00:00+00:00");
    }

    #[tokio::test]
    async fn not_a_repo_and_empty_repo_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Repo::open(dir.path()).await.unwrap_err();
        assert!(matches!(err, GitError::NotARepo(..)), "{err}");
        assert!(err.to_string().contains("not a git repository"));
        init(dir.path());
        let err = Repo::open(dir.path()).await.unwrap_err();
        assert!(matches!(err, GitError::NoCommits(_)), "{err}");
        let err = Repo::open(&dir.path().join("nope")).await.unwrap_err();
        assert!(matches!(err, GitError::NoDirectory(_)), "{err}");
    }
}
