//! The two checks, `log-scan` and `record-time`: what they are given
//! becomes what they do, each step in its own module.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use escola_runbook_core::catalog::{CheckConfig, ParamProblem, ParamsError};
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Outcome, async_trait, format_duration,
};

use super::line::Level;
use super::params::{LogScanParams, RecordTimeParams, Since, UtcOffset};
use super::read::LogError;
use super::{evidence, judge, read};

/// Error-level log lines since a point in time, at most `max`.
///
/// ```
/// use escola_runbook_checks::log_scan::{LogScanCheck, Since, DEPLOY_STARTED_AT};
/// let check = LogScanCheck::new("/srv/escola-connect/var/logs/app.log", Since::Value(DEPLOY_STARTED_AT.into()));
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct LogScanCheck {
    params: LogScanParams,
    /// `params.since`, read with `params.offset`.
    since: Since,
}

impl LogScanCheck {
    /// Scans `file` for lines at or after `since` of level ERROR or above;
    /// passes when there are none.
    pub fn new(file: impl Into<PathBuf>, since: Since) -> Self {
        LogScanCheck {
            params: LogScanParams::of(file.into(), &since),
            since,
        }
    }

    escola_runbook_core::setters! {
        /// The offset of timestamps written without one (default UTC).
        naive_offset(offset: FixedOffset) => params.offset = UtcOffset(offset);

        /// Error lines tolerated.
        max(max: u64) => params.max = max;

        /// The lowest level counted.
        level(level: Level) => params.level = level;

        /// How many messages the evidence lists.
        top(n: usize) => params.top = n;
    }
}

#[async_trait]
impl Check for LogScanCheck {
    fn describe(&self) -> Description {
        let since = match &self.since {
            Since::At(at) => at.to_rfc3339(),
            Since::Ago(d) => format!("the last {}", format_duration(*d)),
            Since::Value(k) => format!("`{k}`"),
        };
        let d = Description::read_only(
            "log-scan",
            format!(
                "at most {} {}-level lines in {} since {since}",
                self.params.max,
                self.params.level.name(),
                self.params.file.display()
            ),
        );
        match &self.since {
            Since::Value(k) => d.needs(k.clone()),
            _ => d,
        }
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let since = match self.since.resolve(ctx) {
            Ok(t) => t,
            Err(e) => {
                return Outcome::check_error(format!("cannot tell when the window starts: {e}"));
            }
        };
        let file = self.params.file.clone();
        let (level, naive) = (self.params.level, self.params.offset.0);
        let cancel = ctx.cancellation().clone();
        let siblings = read::rotated_siblings(&self.params.file);
        let scanned = tokio::task::spawn_blocking(move || {
            read::scan_window(&file, since, level, naive, &cancel)
        })
        .await;
        let shown = self.params.file.display().to_string();
        let (scan, rotated) = match scanned {
            Ok(Ok(s)) => s,
            Ok(Err(LogError::Read { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return judge::missing(&shown, &siblings).with_evidence("log", shown);
            }
            Ok(Err(e)) => return Outcome::check_error(e.to_string()).with_evidence("log", shown),
            Err(e) => return Outcome::check_error(format!("the log scan stopped: {e}")),
        };
        if let Some(o) = judge::unrecognised(&scan, &shown) {
            let first = scan.first_unrecognised.as_deref().unwrap_or("");
            return o
                .with_evidence("log", shown)
                .with_evidence("first line", ctx.redactor().redact(first).into_owned());
        }
        let modified = std::fs::metadata(&self.params.file)
            .and_then(|m| m.modified())
            .ok()
            .map(DateTime::<Utc>::from);
        let facts = judge::Facts {
            scan: &scan,
            shown: &shown,
            since,
            level,
            max: self.params.max,
            rotated: rotated.as_ref(),
            siblings: &siblings,
            modified,
        };
        evidence::attach(
            judge::verdict(&facts),
            &facts,
            self.params.top,
            ctx.redactor(),
        )
    }
}

/// Records the current time under a key, so a later log scan knows when the
/// deploy started. Read-only: it changes nothing outside, so it runs in
/// dry-run too.
#[derive(Debug, Clone)]
pub struct RecordTimeCheck {
    params: RecordTimeParams,
}

impl RecordTimeCheck {
    /// Records under `key`.
    pub fn new(key: impl Into<String>) -> Self {
        RecordTimeCheck {
            params: RecordTimeParams { key: key.into() },
        }
    }
}

#[async_trait]
impl Check for RecordTimeCheck {
    fn describe(&self) -> Description {
        Description::read_only(
            "record-time",
            format!("records the current time as `{}`", self.params.key),
        )
        .produces(self.params.key.clone())
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let now = ctx
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Outcome::passed(format!("recorded `{}` = {now}", self.params.key))
            .with_evidence(self.params.key.clone(), now.clone())
            .with_value(self.params.key.clone(), serde_json::Value::String(now))
    }
}

impl CheckConfig for LogScanParams {
    const NAME: &'static str = "log-scan";

    fn build(mut self) -> Result<Arc<dyn Check>, ParamsError> {
        let since = Since::parse_in(&self.since, self.offset.0).map_err(|e| {
            ParamsError::check(
                Self::NAME,
                "since",
                ParamProblem::Unusable {
                    reason: e.to_string(),
                },
            )
        })?;
        self.since = since.param();
        Ok(Arc::new(LogScanCheck {
            params: self,
            since,
        }))
    }
}

impl CheckConfig for RecordTimeParams {
    const NAME: &'static str = "record-time";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        Ok(Arc::new(RecordTimeCheck { params: self }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use chrono::FixedOffset;
    use escola_runbook_core::CancellationToken;

    use super::super::line::{parse_line, parse_line_in, parse_offset, parse_time, utc};
    use super::super::{DEPLOY_STARTED_AT, MAX_GROUPS, MAX_LINE, scan};
    use super::*;
    use crate::testing::{ctx, evidence};
    use escola_runbook_core::Status;

    fn at(text: &str) -> DateTime<FixedOffset> {
        parse_time(text).unwrap()
    }

    const APP_LOG: &str = r#"[2026-11-29T02:10:00.000000+00:00] app.ERROR: Before the deploy {"trace_id":"old-1"} []
[2026-11-29T02:40:00.123456+00:00] app.INFO: Deploy finished {"version":"2.4.0"} []
[2026-11-29T02:41:00.000000+00:00] doctrine.ERROR: SQLSTATE[40001]: Deadlock found {"exception":"[object] (PDOException(code: 40001): Deadlock at /app/src/Sync.php:42)","trace_id":"t-aaa"} {"uid":"f00"}
#0 /app/vendor/doctrine/dbal/src/Connection.php(1234): PDO->exec()
#1 {main}
[2026-11-29T02:41:30.000000+00:00] app.WARNING: Slow query {"ms":1200} []
[2026-11-29T02:42:00.000000+00:00] doctrine.ERROR: SQLSTATE[40001]: Deadlock found {"trace_id":"t-bbb"} []
{"message":"Upstream timeout on /v1/escolas","context":{"headers":{"Trace-Id":["t-ccc"]}},"level":500,"level_name":"CRITICAL","channel":"app","datetime":"2026-11-29T02:43:00.000000+00:00","extra":{}}
[2026-11-29T02:44:00.000000+00:00] doctrine.ERROR: SQLSTATE[40001]: Deadlock found {"trace_id":"t-aaa"} []
"#;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn parses_monolog_lines_json_lines_and_old_timestamps() {
        let e = parse_line(r#"[2026-11-29T02:40:00.123456+00:00] app.ERROR: Escola 42 not found {"id":42,"nested":{"a":[1,2]}} {"Trace-Id":"abc-123"}"#).unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00.123456Z"));
        assert_eq!(e.level, Some(Level::ERROR));
        assert_eq!(e.message, "Escola 42 not found");
        assert_eq!(e.trace_id.as_deref(), Some("abc-123"));

        let e = parse_line(r#"[2026-11-29 02:40:00] production.ERROR: Undefined index: id {"userId":7,"exception":"[object] (ErrorException(code: 0): Undefined index: id at /app/Http/EscolaController.php:42)"#).unwrap();
        assert_eq!(
            e.message, "Undefined index: id",
            "a context continued on later lines is cut"
        );

        let e = parse_line("[2026-11-29 02:40:00] app.CRITICAL: Out of memory [] []").unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00Z"));
        assert_eq!(e.level, Some(Level(500)));
        assert_eq!(e.message, "Out of memory");
        assert_eq!(e.trace_id, None);

        let e = parse_line("[2026-11-29T02:40:00+0100] app.error: Trace-Id: zz-9 failed").unwrap();
        assert_eq!(e.at, at("2026-11-29T01:40:00Z"));
        assert_eq!(e.trace_id.as_deref(), Some("zz-9"));

        let e = parse_line(r#"{"msg":"boom","level":"error","time":1795919400,"traceId":"j-1"}"#)
            .unwrap();
        assert_eq!(e.at, at("2026-11-29T02:30:00Z"));
        assert_eq!(
            (e.level, e.message.as_str(), e.trace_id.as_deref()),
            (Some(Level::ERROR), "boom", Some("j-1"))
        );

        for not_a_line in [
            "#0 /app/src/Foo.php(12): bar()",
            "",
            "Stack trace:",
            "[not a time] app.ERROR: x",
            "{broken json",
        ] {
            assert_eq!(parse_line(not_a_line), None, "{not_a_line}");
        }
    }

    #[tokio::test]
    async fn counts_errors_since_the_window_and_lists_top_messages_with_trace_ids() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "app.log", APP_LOG.as_bytes());
        let o = LogScanCheck::new(&log, Since::At(at("2026-11-29T02:30:00Z")))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert_eq!(
            o.summary,
            format!(
                "4 ERROR-or-above lines in {} since 2026-11-29T02:30:00+00:00 (limit 0)",
                log.display()
            )
        );
        let top: Vec<&str> = evidence(&o, "top messages (2 of 2)").lines().collect();
        assert_eq!(
            top,
            [
                "3× ERROR: SQLSTATE[40001]: Deadlock found — Trace-Id t-aaa, t-bbb (+1 more lines with one)",
                "1× CRITICAL: Upstream timeout on /v1/escolas — Trace-Id t-ccc",
            ]
        );
        assert_eq!(
            evidence(&o, "lines"),
            "9 read, 7 recognised, 6 in the window"
        );
        assert_eq!(o.measurements[0].value, 4.0);

        let o = LogScanCheck::new(&log, Since::At(at("2026-11-29T02:30:00Z")))
            .max(4)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        let o = LogScanCheck::new(&log, Since::At(at("2026-11-29T02:43:30Z")))
            .level(Level::parse("critical").unwrap())
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert!(
            o.summary.starts_with("0 CRITICAL-or-above lines"),
            "{}",
            o.summary
        );
    }

    #[tokio::test]
    async fn a_stack_trace_over_several_lines_keeps_the_trace_id_of_its_last() {
        // Laravel's default: the exception's context spans lines, the extra
        // (with the Trace-Id) ends the record.
        let log = "\
[2026-12-08 00:02:03] production.ERROR: Column not found {\"exception\":\"[object] (QueryException(code: 42S22) at /srv/app/Connection.php:760)
[stacktrace]
#0 /srv/app/Connection.php(720): runQueryCallback()
#1 {main}
\"} {\"trace_id\":\"t-multi\"}
[2026-12-08 00:03:04] production.ERROR: Column not found {\"exception\":\"[object] (QueryException)
#0 {main}
\"} []
Trace-Id: t-stray
[2026-12-08 00:04:05] production.INFO: done [] []
";
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "laravel.log", log.as_bytes());
        let o = LogScanCheck::new(&path, Since::At(at("2026-12-08T00:00:00Z")))
            .run(&ctx())
            .await;
        let top: Vec<&str> = evidence(&o, "top messages (1 of 1)").lines().collect();
        // Each record's id comes from a later line of the same record: up
        // to the next line that starts a record, every line belongs to it.
        assert_eq!(
            top,
            ["2× ERROR: Column not found — Trace-Id t-multi, t-stray"],
            "{o:#?}"
        );
        assert_eq!(
            evidence(&o, "lines"),
            "10 read, 3 recognised, 3 in the window"
        );
    }

    #[tokio::test]
    async fn since_comes_from_a_value_recorded_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "app.log", APP_LOG.as_bytes());
        let check = LogScanCheck::new(&log, Since::Value(DEPLOY_STARTED_AT.into()));
        assert_eq!(check.describe().needs, [DEPLOY_STARTED_AT]);
        let o = check.run(&ctx()).await;
        assert_eq!(o.status, Status::CheckError);
        assert!(
            o.summary
                .contains("no earlier step recorded `deploy_started_at`"),
            "{}",
            o.summary
        );
        let c = ctx().with_value(DEPLOY_STARTED_AT, serde_json::json!("2026-11-29T02:43:30Z"));
        let o = check.run(&c).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(
            o.summary.starts_with("1 ERROR-or-above line in"),
            "{}",
            o.summary
        );

        let recorded = RecordTimeCheck::new("t0").run(&ctx()).await;
        let value = recorded.values["t0"].as_str().unwrap();
        assert!(parse_time(value).is_some(), "{value}");
    }

    #[tokio::test]
    async fn missing_log_names_the_rotated_files_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "app-2026-11-29.log", b"");
        write(dir.path(), "app-2026-11-28.log", b"");
        let o = LogScanCheck::new(
            dir.path().join("app.log"),
            Since::Ago(Duration::from_secs(60)),
        )
        .run(&ctx())
        .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(o.summary.contains("does not exist; beside it: app-2026-11-28.log, app-2026-11-29.log (Monolog's RotatingFileHandler"), "{}", o.summary);
    }

    #[tokio::test]
    async fn compressed_binary_and_foreign_logs_are_check_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 3] = [
            (&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0], "gzip-compressed"),
            (b"ELF\x00\x01\x02 binary", "is not text"),
            (
                b"GET /v1/escolas 200\nGET /v1/cidades 500\n",
                "none of the 2 lines",
            ),
        ];
        for (i, (bytes, expected)) in cases.iter().enumerate() {
            let log = write(dir.path(), &format!("case{i}.log"), bytes);
            let o = LogScanCheck::new(&log, Since::Ago(Duration::from_secs(60)))
                .run(&ctx())
                .await;
            assert_eq!(o.status, Status::CheckError, "{expected}: {o:#?}");
            assert!(o.summary.contains(expected), "{expected}: {}", o.summary);
        }
    }

    #[tokio::test]
    async fn a_log_rotated_during_the_window_reads_app_log_1_or_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer) = APP_LOG.split_at(APP_LOG.find("[2026-11-29T02:42").unwrap());
        let log = write(dir.path(), "app.log", newer.as_bytes());
        let since = Since::At(at("2026-11-29T02:30:00Z"));

        // Only the newer part: starts after the window start, nothing says why.
        let o = LogScanCheck::new(&log, since.clone())
            .max(10)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Warned, "{o:#?}");
        assert!(
            o.summary
                .contains("the log starts at 2026-11-29T02:42:00+00:00, after the window start"),
            "{}",
            o.summary
        );

        // The rotated part compressed beside it: cannot be checked.
        write(dir.path(), "app.log.1.gz", &[0x1f, 0x8b]);
        let o = LogScanCheck::new(&log, since.clone())
            .max(10)
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::CheckError, "{o:#?}");
        assert!(
            o.summary.contains("compressed (app.log.1.gz)"),
            "{}",
            o.summary
        );

        // logrotate's delaycompress leaves app.log.1 plain: both are read.
        write(dir.path(), "app.log.1", older.as_bytes());
        let o = LogScanCheck::new(&log, since.clone()).run(&ctx()).await;
        assert_eq!(o.status, Status::Failed, "{o:#?}");
        assert!(o.summary.starts_with("4 ERROR-or-above"), "{}", o.summary);
        assert!(evidence(&o, "rotated file also read").ends_with("app.log.1"));
        assert!(
            evidence(&o, "top messages")
                .starts_with("3× ERROR: SQLSTATE[40001]: Deadlock found — Trace-Id t-aaa, t-bbb")
        );
    }

    #[tokio::test]
    async fn an_empty_log_untouched_since_the_window_passes() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "app.log", b"");
        let o = LogScanCheck::new(&log, Since::At(at("2999-01-01T00:00:00Z")))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Passed, "{o:#?}");
        assert!(
            o.summary.contains("the log is empty and unchanged since"),
            "{}",
            o.summary
        );
        let o = LogScanCheck::new(&log, Since::At(at("2000-01-01T00:00:00Z")))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::Warned, "{o:#?}");
    }

    #[test]
    fn timestamps_without_offset_take_the_configured_one() {
        let brt = parse_offset("-03:00").unwrap();
        let e = parse_line_in("[2026-11-28 23:40:00] app.ERROR: late [] []", brt).unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00Z"));
        let e =
            parse_line_in("[2026-11-29T02:40:00+00:00] app.ERROR: explicit [] []", brt).unwrap();
        assert_eq!(e.at, at("2026-11-29T02:40:00Z"), "an explicit offset wins");
        assert_eq!(
            parse_offset("+0530"),
            FixedOffset::east_opt(5 * 3600 + 1800)
        );
        assert_eq!(parse_offset("Z"), Some(utc()));
        assert_eq!(parse_offset("Brasília"), None);
        let catalog = crate::catalog();
        let spec = catalog.find("log-scan").unwrap();
        let check = spec
            .build_from_pairs(&crate::testing::pairs([
                ("since", "2026-11-28 23:30:00"),
                ("offset", "-03:00"),
            ]))
            .unwrap();
        let params = check.params().unwrap();
        assert_eq!(params.params["since"], "2026-11-28T23:30:00-03:00");
        assert_eq!(params.params["offset"], "-03:00");
        let again = spec.build(params.params.clone()).unwrap();
        assert_eq!(again.params(), Some(params));
    }

    #[test]
    fn a_copytruncate_hole_of_nul_bytes_is_skipped() {
        let mut bytes = vec![0u8; 3 * MAX_LINE];
        bytes.extend_from_slice(b"[2026-11-29T02:41:00+00:00] app.ERROR: after rotation [] []\n");
        let scan = scan(
            bytes.as_slice(),
            Path::new("app.log"),
            at("2026-11-29T02:00:00Z"),
            Level::ERROR,
            utc(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_eq!((scan.recognised, scan.errors), (1, 1));
        assert_eq!(scan.top(1)[0].message, "after rotation");
    }

    #[test]
    fn memory_stays_bounded_on_long_lines_and_many_messages() {
        let mut text = String::new();
        text.push_str("[2026-11-29T02:40:00+00:00] app.ERROR: ");
        text.push_str(&"x".repeat(MAX_LINE * 3));
        text.push('\n');
        for i in 0..(MAX_GROUPS + 500) {
            text.push_str(&format!(
                "[2026-11-29T02:41:00+00:00] app.ERROR: distinct message {i} []\n"
            ));
        }
        let scan = scan(
            text.as_bytes(),
            Path::new("big.log"),
            at("2026-11-29T02:00:00Z"),
            Level::ERROR,
            utc(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_eq!(scan.long_lines, 1);
        assert_eq!(scan.errors, (MAX_GROUPS + 501) as u64);
        assert_eq!(scan.groups.len(), MAX_GROUPS);
        assert_eq!(scan.ungrouped, 501);
        assert!(scan.groups.keys().all(|k| k.chars().count() <= 300));
    }

    #[test]
    fn registry_parses_since_and_round_trips() {
        let catalog = crate::catalog();
        let spec = catalog.find("log-scan").unwrap();
        for since in ["2026-11-29T02:30:00Z", "30m", "value:deploy_started_at"] {
            let check = spec
                .build_from_pairs(&crate::testing::pairs([("since", since), ("max", "3")]))
                .unwrap();
            let params = check.params().unwrap();
            assert_eq!(params.params.get("file"), None, "the default is left out");
            let again = spec.build(params.params.clone()).unwrap();
            assert_eq!(again.params(), Some(params));
        }
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("since", "yesterday")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an RFC 3339 time"), "{err}");
        let err = spec
            .build_from_pairs(&crate::testing::pairs([("since", "5m"), ("level", "loud")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a log level"), "{err}");
    }
}
