//! A SQL query's one value as an alert rule's probe (the `sync_mutations`
//! backlog: `SELECT COUNT(*) FROM sync_mutations WHERE status = 'pending'`).
//!
//! Read-only twice over: the statement is refused up front unless it is one
//! `SELECT` that writes nothing (no `INTO`, no locking read, no
//! executable comment), and it runs inside `START TRANSACTION READ ONLY` as
//! one prepared statement, with the server's statement limit
//! ([`DbTimeouts::statement`]) and the read limit bounding every wait.

use std::collections::BTreeMap;
use std::time::Duration;

use escola_runbook_core::rules::{Probe, Sample, fmt_num};
use escola_runbook_core::{Ctx, async_trait, format_duration};
use mysql_async::{Row, Value};

use super::checks::{open, redact};
use super::connect::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DbTimeouts};

/// A statement a scalar probe will not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlStatementError {
    /// Nothing but spaces and comments.
    #[error(
        "the SQL is empty; write one SELECT, e.g. SELECT COUNT(*) FROM sync_mutations WHERE status = 'pending'"
    )]
    Empty,
    /// Not a SELECT.
    #[error(
        "the SQL starts with `{first}`: only a SELECT is run (the probe reads, it never writes)"
    )]
    NotSelect {
        /// The first word.
        first: String,
    },
    /// More than one statement.
    #[error("the SQL holds more than one statement; give one SELECT")]
    Several,
    /// `SELECT ... INTO` writes a file or a variable.
    #[error("the SQL has `INTO`, which writes (a file or variables); a probe's SELECT only reads")]
    Into,
    /// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE` take row locks.
    #[error("the SQL is a locking read (`{words}`); a probe must not lock rows")]
    Locking {
        /// The words.
        words: String,
    },
    /// `/*! ... */` is run by the server: it could hide anything.
    #[error(
        "the SQL has an executable comment (`/*!` or `/*M!`), which the server runs; remove it"
    )]
    ExecutableComment,
    /// A quote or a comment is not closed.
    #[error("the SQL has an unterminated {what}")]
    Unterminated {
        /// `string`, `quoted name` or `comment`.
        what: &'static str,
    },
}

/// The words of `sql` outside strings, quoted names and comments, in
/// upper case, with `;` as a word of its own.
fn words(sql: &str) -> Result<Vec<String>, SqlStatementError> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word).to_uppercase());
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                flush(&mut word, &mut out);
                let what = if c == '`' { "quoted name" } else { "string" };
                loop {
                    match chars.next() {
                        None => return Err(SqlStatementError::Unterminated { what }),
                        Some('\\') if c != '`' => {
                            chars.next();
                        }
                        Some(q) if q == c => {
                            if chars.peek() == Some(&c) {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        Some(_) => {}
                    }
                }
                out.push("''".into());
            }
            '#' => {
                flush(&mut word, &mut out);
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut word, &mut out);
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut out);
                chars.next();
                let mut ahead = chars.clone();
                let executable = match ahead.next() {
                    Some('!') => true,
                    Some('M') => ahead.next() == Some('!'),
                    _ => false,
                };
                if executable {
                    return Err(SqlStatementError::ExecutableComment);
                }
                let mut last = ' ';
                loop {
                    match chars.next() {
                        None => return Err(SqlStatementError::Unterminated { what: "comment" }),
                        Some('/') if last == '*' => break,
                        Some(n) => last = n,
                    }
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' || c == '@' => word.push(c),
            ';' => {
                flush(&mut word, &mut out);
                out.push(";".into());
            }
            _ => flush(&mut word, &mut out),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

/// Refuses anything but one SELECT that reads only.
pub fn check_select(sql: &str) -> Result<(), SqlStatementError> {
    let mut words = words(sql)?;
    while words.last().is_some_and(|w| w == ";") {
        words.pop();
    }
    let first = words.first().ok_or(SqlStatementError::Empty)?;
    if first != "SELECT" {
        return Err(SqlStatementError::NotSelect {
            first: first.clone(),
        });
    }
    if words.iter().any(|w| w == ";") {
        return Err(SqlStatementError::Several);
    }
    if words.iter().any(|w| w == "INTO") {
        return Err(SqlStatementError::Into);
    }
    for pair in words.windows(2) {
        let locking = matches!(
            (pair[0].as_str(), pair[1].as_str()),
            ("FOR", "UPDATE") | ("FOR", "SHARE") | ("LOCK", "IN")
        );
        if locking {
            return Err(SqlStatementError::Locking {
                words: format!("{} {}", pair[0], pair[1]),
            });
        }
    }
    Ok(())
}

/// The one value of a scalar query's rows: a number, or why there is none.
fn scalar(rows: &[Row]) -> Result<Option<f64>, String> {
    let row = match rows {
        [one] => one,
        [] => return Err("the query returned no row; a scalar query returns one".into()),
        more => {
            return Err(format!(
                "the query returned {} rows; a scalar query returns one (aggregate with COUNT, SUM, MAX)",
                more.len()
            ));
        }
    };
    if row.len() != 1 {
        return Err(format!(
            "the query returned {} columns; a scalar query returns one",
            row.len()
        ));
    }
    match row.as_ref(0) {
        None | Some(Value::NULL) => Ok(None),
        Some(Value::Int(n)) => Ok(Some(*n as f64)),
        Some(Value::UInt(n)) => Ok(Some(*n as f64)),
        Some(Value::Float(n)) => Ok(Some(f64::from(*n))),
        Some(Value::Double(n)) => Ok(Some(*n)),
        Some(Value::Bytes(b)) => {
            let text = String::from_utf8_lossy(b);
            text.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("the query's value `{text}` is not a number"))
        }
        Some(other) => Err(format!(
            "the query's value {other:?} is not a number (a date or a time)"
        )),
    }
}

/// One SELECT's single value from the database of a secret URL.
#[derive(Debug, Clone)]
pub struct SqlScalarProbe {
    sql: String,
    secret: String,
    timeouts: DbTimeouts,
}

impl SqlScalarProbe {
    /// Runs `sql` (refused unless [`check_select`] accepts it) on the
    /// database of secret `secret`, the server stopping it after
    /// `statement_timeout`.
    pub fn new(
        sql: impl Into<String>,
        secret: impl Into<String>,
        statement_timeout: Duration,
    ) -> Result<Self, SqlStatementError> {
        let sql = sql.into();
        check_select(&sql)?;
        Ok(SqlScalarProbe {
            sql,
            secret: secret.into(),
            timeouts: DbTimeouts {
                connect: DEFAULT_CONNECT_TIMEOUT,
                // The server's limit decides, not a read timeout shorter than it.
                read: DEFAULT_READ_TIMEOUT.max(statement_timeout + Duration::from_secs(5)),
                statement: Some(statement_timeout),
            },
        })
    }
}

#[async_trait]
impl Probe for SqlScalarProbe {
    fn query(&self) -> String {
        self.sql.clone()
    }

    async fn sample(&self, ctx: &Ctx) -> Sample {
        let (target, mut conn) = match open(ctx, &self.secret, self.timeouts).await {
            Ok(c) => c,
            Err(outcome) => {
                return Sample::Error {
                    message: outcome.summary,
                };
            }
        };
        let result = async {
            conn.query_drop("START TRANSACTION READ ONLY").await?;
            let rows: Vec<Row> = conn.exec(self.sql.as_str(), ()).await?;
            conn.query_drop("ROLLBACK").await?;
            Ok::<_, mysql_async::Error>(rows)
        }
        .await;
        conn.disconnect().await;
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                let limit = self
                    .timeouts
                    .statement
                    .map(|d| format!(" (statement limit {})", format_duration(d)))
                    .unwrap_or_default();
                return Sample::Error {
                    message: format!("query failed{limit}: {}", redact(ctx, &e.to_string())),
                };
            }
        };
        match scalar(&rows) {
            Ok(Some(value)) => {
                let mut detail = BTreeMap::new();
                detail.insert("database".into(), target.display().to_owned());
                detail.insert("value".into(), fmt_num(value));
                Sample::Value {
                    value,
                    detail,
                    trace_ids: Vec::new(),
                }
            }
            Ok(None) => Sample::NoData {
                reason: "the query's value is NULL".into(),
            },
            Err(message) => Sample::Error { message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_reading_select_is_accepted() {
        for ok in [
            "SELECT COUNT(*) FROM sync_mutations WHERE status = 'pending'",
            "  select max(id) from t;  ",
            "SELECT COUNT(*) FROM t WHERE note = 'a; DELETE FROM t' -- into\n",
            "SELECT `into` FROM t /* for update */",
            "SELECT 'it''s' FROM t WHERE x = \"y\\\"z\"",
        ] {
            assert_eq!(check_select(ok), Ok(()), "{ok}");
        }
        let refused = [
            ("DELETE FROM sync_mutations", "starts with `DELETE`"),
            ("  -- nothing\n", "empty"),
            ("SELECT 1; DROP TABLE t", "more than one statement"),
            ("SELECT 1 INTO OUTFILE '/tmp/x'", "`INTO`"),
            ("SELECT id FROM t FOR UPDATE", "locking read (`FOR UPDATE`)"),
            ("SELECT id FROM t LOCK IN SHARE MODE", "`LOCK IN`"),
            (
                "SELECT 1 /*! INTO OUTFILE '/tmp/x' */",
                "executable comment",
            ),
            ("SELECT 1 /*M!100000 , 2 */", "executable comment"),
            ("SELECT 'open", "unterminated string"),
            ("WITH x AS (SELECT 1) SELECT * FROM x", "starts with `WITH`"),
        ];
        for (sql, says) in refused {
            let err = check_select(sql).unwrap_err();
            assert!(err.to_string().contains(says), "{sql}: {err}");
        }
    }
}
