//! MySQL/MariaDB: a native consistent snapshot (zstd SQL files + sha256
//! manifest) with verify, restore and list; and the database checks of the
//! Escola runbook (snapshot, migrations, sync backlog).
//!
//! The connection always comes from a [`Secret`] holding a
//! `mysql://user:pass@host:port/db` URL; nothing here prints it, and every
//! URL shown is masked with [`mask_url`].

use escola_runbook_core::Secret;
use mysql_async::{Conn, Opts, OptsBuilder};

pub mod checks;
pub mod lock;
pub mod restore;
pub mod snapshot;
pub(crate) mod sql;

pub use checks::{DbSnapshotCheck, MigrationsCheck, SyncBacklogCheck};
pub use restore::{
    RestoreError, RestoreOptions, RestoreReport, SnapshotListing, SnapshotStatus, VerifyError,
    VerifyReport, list, restore, verify,
};
pub use snapshot::{
    FileEntry, FileKind, Manifest, SnapshotError, SnapshotOptions, SnapshotProgress, create,
};

/// Errors connecting to the database.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL could not be parsed (the URL itself is not repeated: it holds
    /// a password).
    #[error(
        "the database URL is not valid ({reason}); write it as mysql://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    BadUrl {
        /// What is wrong.
        reason: String,
    },
    /// The server refused or could not be reached.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// host:port/db, without credentials.
        target: String,
        /// The driver's message, masked.
        message: String,
    },
}

/// A database location from a secret URL, with a printable form that never
/// holds the credentials.
#[derive(Clone)]
pub struct DbTarget {
    opts: Opts,
    display: String,
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DbTarget").field(&self.display).finish()
    }
}

impl DbTarget {
    /// Parses `url` (`mysql://user:pass@host:port/db`).
    pub fn from_secret(url: &Secret) -> Result<Self, ConnectError> {
        let opts = Opts::from_url(url.expose()).map_err(|e| ConnectError::BadUrl {
            reason: mask_url(&describe_url_error(&e)),
        })?;
        let display = format!(
            "{}:{}/{}",
            opts.ip_or_hostname(),
            opts.tcp_port(),
            opts.db_name().unwrap_or("")
        );
        Ok(DbTarget { opts, display })
    }

    /// `host:port/db`, safe to print.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The database named in the URL, if any.
    pub fn database(&self) -> Option<&str> {
        self.opts.db_name()
    }

    /// The same server, with database `db` (or none).
    pub fn with_database(&self, db: Option<&str>) -> Self {
        let opts: Opts = OptsBuilder::from_opts(self.opts.clone())
            .db_name(db.map(str::to_owned))
            .into();
        DbTarget {
            display: format!(
                "{}:{}/{}",
                opts.ip_or_hostname(),
                opts.tcp_port(),
                db.unwrap_or("")
            ),
            opts,
        }
    }

    /// Opens a connection.
    pub async fn connect(&self) -> Result<Conn, ConnectError> {
        Conn::new(self.opts.clone())
            .await
            .map_err(|e| ConnectError::Connect {
                target: self.display.clone(),
                message: mask_url(&e.to_string()),
            })
    }
}

fn describe_url_error(e: &mysql_async::UrlError) -> String {
    use mysql_async::UrlError as U;
    match e {
        U::UnsupportedScheme { .. } => "the scheme must be mysql://".into(),
        U::UnknownParameter { param } => format!("unknown parameter `{param}`"),
        U::InvalidParamValue { param, .. } => format!("invalid value for `{param}`"),
        _ => "it cannot be parsed".into(),
    }
}

/// Replaces `user:password@` in every `scheme://user:password@host` of
/// `text` with `***@`, so a URL can be shown.
pub fn mask_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked() {
        assert_eq!(
            mask_url("error at mysql://app:s3cr%40t@db.internal:3306/escola ok"),
            "error at mysql://***@db.internal:3306/escola ok"
        );
        assert_eq!(mask_url("http://host/x"), "http://host/x");
        assert_eq!(mask_url("no url"), "no url");
    }

    #[test]
    fn bad_urls_do_not_echo_the_password() {
        let err = DbTarget::from_secret(&Secret::new("postgres://u:hunter2@h/db")).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let ok = DbTarget::from_secret(&Secret::new("mysql://u:hunter2@h:3307/db")).unwrap();
        assert_eq!(ok.display(), "h:3307/db");
        assert!(!format!("{ok:?}").contains("hunter2"));
    }
}
