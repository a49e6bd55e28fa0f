//! Connecting: the URL from a secret, the timeouts every wait is bounded by,
//! and a session whose every statement honours them.

use std::future::Future;
use std::time::Duration;

use escola_runbook_core::{Secret, format_duration};
use futures_util::FutureExt;
use mysql_async::prelude::{AsQuery, FromRow, Queryable, StatementLike};
use mysql_async::{Conn, Opts, OptsBuilder};

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
    /// The server accepted the connection but did not finish the handshake
    /// and login in time (a hung server, a firewall that swallows packets).
    #[error(
        "cannot connect to {target}: no answer within {} (connect timeout); check that the server is up and answering",
        format_duration(*after)
    )]
    Timeout {
        /// host:port/db, without credentials.
        target: String,
        /// The connect timeout.
        after: Duration,
    },
}

/// Default for [`DbTimeouts::connect`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`DbTimeouts::read`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`DbTimeouts::statement`] in the database checks.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait on the server. Every wait that runs out ends as an
/// error naming the server (`host:port`), never a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTimeouts {
    /// Connecting: TCP connect, handshake and login.
    pub connect: Duration,
    /// The longest wait for any answer from the server: a statement's
    /// result, or the next rows of a streamed one.
    pub read: Duration,
    /// The longest the server may run one statement (sent to it as
    /// `max_statement_time`, or `max_execution_time` on MySQL), so that a
    /// slow query is stopped by the server and reported as such. `None`
    /// leaves statements unbounded: snapshots and restores, whose reads of
    /// big tables rightly take long, are bounded per answer instead.
    pub statement: Option<Duration>,
}

impl DbTimeouts {
    /// The defaults for snapshots and restores: connect 10 s, read 60 s, no
    /// statement limit.
    pub const SNAPSHOT: DbTimeouts = DbTimeouts {
        connect: DEFAULT_CONNECT_TIMEOUT,
        read: DEFAULT_READ_TIMEOUT,
        statement: None,
    };

    /// The defaults for the database checks and the deploy lock: connect
    /// 10 s, read 60 s, statements 30 s.
    pub const CHECK: DbTimeouts = DbTimeouts {
        connect: DEFAULT_CONNECT_TIMEOUT,
        read: DEFAULT_READ_TIMEOUT,
        statement: Some(DEFAULT_STATEMENT_TIMEOUT),
    };
}

impl Default for DbTimeouts {
    fn default() -> Self {
        DbTimeouts::CHECK
    }
}

/// Bounds each wait on one server's answers by the read timeout.
#[derive(Debug, Clone)]
pub(crate) struct Answers {
    server: String,
    read: Duration,
}

impl Answers {
    /// `query` bounded by the read timeout; running out is an I/O error
    /// naming the server, so every caller's error path reports it.
    ///
    /// An answer already at hand (the next row of a streamed result,
    /// mostly) is taken without arming a timer: a snapshot reads millions
    /// of rows, and a timer per row cost a clock read and a timer-wheel
    /// entry each.
    pub(crate) async fn within<T>(
        &self,
        query: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, mysql_async::Error> {
        let mut query = std::pin::pin!(query);
        if let Some(answer) = query.as_mut().now_or_never() {
            return answer;
        }
        match tokio::time::timeout(self.read, query).await {
            Ok(result) => result,
            Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer from {} within {} (read timeout)",
                        self.server,
                        format_duration(self.read)
                    ),
                ),
            ))),
        }
    }
}

/// A connection whose every wait on the server is bounded by the read
/// timeout: the statements this crate runs go through it.
pub struct Session {
    conn: Conn,
    answers: Answers,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.answers.server)
            .field("id", &self.conn.id())
            .finish()
    }
}

impl Session {
    /// The server's id for this connection (`CONNECTION_ID()`).
    pub fn id(&self) -> u32 {
        self.conn.id()
    }

    /// The connection, without the bounds.
    pub fn into_inner(self) -> Conn {
        self.conn
    }

    /// The connection and the bound on its answers, for a streamed result
    /// whose every row must be waited for within the read timeout.
    pub(crate) fn parts(&mut self) -> (&mut Conn, &Answers) {
        (&mut self.conn, &self.answers)
    }

    /// Runs `load`, a `LOAD DATA LOCAL INFILE`, answering the server's
    /// request for the file with `rows` whatever file it names.
    pub(crate) async fn load_local(
        &mut self,
        load: &str,
        rows: bytes::Bytes,
    ) -> Result<(), mysql_async::Error> {
        use futures_util::StreamExt;
        self.conn.set_infile_handler(async move {
            Ok(futures_util::stream::once(async move { Ok(rows) }).boxed())
        });
        self.answers.within(self.conn.query_drop(load)).await
    }

    /// Runs `query`, dropping its result.
    pub async fn query_drop<Q: AsQuery>(&mut self, query: Q) -> Result<(), mysql_async::Error> {
        self.answers.within(self.conn.query_drop(query)).await
    }

    /// The first row of `query`.
    pub async fn query_first<T, Q>(&mut self, query: Q) -> Result<Option<T>, mysql_async::Error>
    where
        T: FromRow + Send + 'static,
        Q: AsQuery,
    {
        self.answers.within(self.conn.query_first(query)).await
    }

    /// Every row of `query`.
    pub async fn query<T, Q>(&mut self, query: Q) -> Result<Vec<T>, mysql_async::Error>
    where
        T: FromRow + Send + 'static,
        Q: AsQuery,
    {
        self.answers.within(self.conn.query(query)).await
    }

    /// Every row of prepared statement `stmt` with `params`.
    pub async fn exec<T, S, P>(&mut self, stmt: S, params: P) -> Result<Vec<T>, mysql_async::Error>
    where
        T: FromRow + Send + 'static,
        S: StatementLike,
        P: Into<mysql_async::Params> + Send,
    {
        self.answers.within(self.conn.exec(stmt, params)).await
    }

    /// The first row of prepared statement `stmt` with `params`.
    pub async fn exec_first<T, S, P>(
        &mut self,
        stmt: S,
        params: P,
    ) -> Result<Option<T>, mysql_async::Error>
    where
        T: FromRow + Send + 'static,
        S: StatementLike,
        P: Into<mysql_async::Params> + Send,
    {
        self.answers
            .within(self.conn.exec_first(stmt, params))
            .await
    }

    /// Runs prepared statement `stmt` with `params`, dropping its result.
    pub async fn exec_drop<S, P>(&mut self, stmt: S, params: P) -> Result<(), mysql_async::Error>
    where
        S: StatementLike,
        P: Into<mysql_async::Params> + Send,
    {
        self.answers.within(self.conn.exec_drop(stmt, params)).await
    }

    /// Closes the connection politely if the server answers in time;
    /// otherwise just drops it.
    pub async fn disconnect(self) {
        let _ = self.answers.within(self.conn.disconnect()).await;
    }
}

/// A database location from a secret URL, with a printable form that never
/// holds the credentials.
#[derive(Clone)]
pub struct DbTarget {
    opts: Opts,
    display: String,
    timeouts: DbTimeouts,
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
        Ok(DbTarget {
            opts,
            display,
            timeouts: DbTimeouts::default(),
        })
    }

    /// Waits on this server at most as long as `timeouts` say.
    pub fn with_timeouts(mut self, timeouts: DbTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// `host:port/db`, safe to print.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `host:port`, safe to print.
    pub fn server(&self) -> String {
        format!("{}:{}", self.opts.ip_or_hostname(), self.opts.tcp_port())
    }

    /// The read timeout for this server's answers.
    fn answers(&self) -> Answers {
        Answers {
            server: self.server(),
            read: self.timeouts.read,
        }
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
            timeouts: self.timeouts,
        }
    }

    /// Opens a connection within the connect timeout, and gives the server
    /// the statement timeout, if there is one.
    pub async fn connect(&self) -> Result<Session, ConnectError> {
        let failed = |e: mysql_async::Error| ConnectError::Connect {
            target: self.display.clone(),
            message: mask_url(&driver_message(&e)),
        };
        let conn = tokio::time::timeout(self.timeouts.connect, Conn::new(self.opts.clone()))
            .await
            .map_err(|_| ConnectError::Timeout {
                target: self.display.clone(),
                after: self.timeouts.connect,
            })?
            .map_err(failed)?;
        let mut session = Session {
            conn,
            answers: self.answers(),
        };
        if let Some(limit) = self.timeouts.statement {
            limit_statements(&mut session, limit)
                .await
                .map_err(failed)?;
        }
        Ok(session)
    }
}

/// The driver's words for `e`, without the "Input/output error:" that
/// mysql_async writes twice around an I/O error ("Connection refused").
fn driver_message(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => io.to_string(),
        other => other.to_string(),
    }
}

/// `max_statement_time` (MariaDB, seconds) or `max_execution_time` (MySQL,
/// milliseconds, SELECT only) for this session. A server that knows
/// neither keeps only the client's read timeout.
async fn limit_statements(
    session: &mut Session,
    limit: Duration,
) -> Result<(), mysql_async::Error> {
    const UNKNOWN_VARIABLE: u16 = 1193;
    let mariadb = format!("SET SESSION max_statement_time = {}", limit.as_secs_f64());
    match session.query_drop(mariadb).await {
        Err(mysql_async::Error::Server(e)) if e.code == UNKNOWN_VARIABLE => {}
        other => return other,
    }
    let mysql = format!("SET SESSION max_execution_time = {}", limit.as_millis());
    match session.query_drop(mysql).await {
        Err(mysql_async::Error::Server(e)) if e.code == UNKNOWN_VARIABLE => Ok(()),
        other => other,
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

    #[tokio::test]
    async fn a_refused_connection_is_told_once_not_as_nested_io_errors() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let target =
            DbTarget::from_secret(&Secret::new(format!("mysql://u:pw@127.0.0.1:{port}/db")))
                .unwrap();
        let err = target.connect().await.err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("cannot connect to 127.0.0.1:{port}/db: ")),
            "{err}"
        );
        assert!(err.contains("refused"), "{err}");
        assert!(!err.contains("Input/output error"), "{err}");
    }
}
