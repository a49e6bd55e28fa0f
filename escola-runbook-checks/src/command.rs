//! Runs a program (or a shell line) as a step: maintenance mode, migrations,
//! composer, cache scripts. The command runs in a process group of its own,
//! recorded in the journal; on timeout or stop the whole group is asked to
//! end (SIGTERM) and killed after [`TERM_GRACE`], and the output so far is
//! kept as bounded evidence with secrets masked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::duration::Span;
use escola_runbook_core::schemars::{self, JsonSchema};
use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Need, Outcome, async_trait, format_duration,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// What to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A program and its arguments, without a shell: nothing is interpreted.
    Exec {
        /// Program name (looked up on PATH) or path.
        program: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// A line for `/bin/sh -c`: pipes, `&&`, globs.
    Shell(String),
}

impl Program {
    /// The command as a person would type it.
    pub fn display(&self) -> String {
        match self {
            Program::Exec { program, args } => std::iter::once(program.as_str())
                .chain(args.iter().map(String::as_str))
                .map(shell_quote)
                .collect::<Vec<_>>()
                .join(" "),
            Program::Shell(line) => line.clone(),
        }
    }
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs a program or shell line; passes when it exits with an expected code.
///
/// The parameters of [`CommandCheck`], declared once: runbook files,
/// `check command -p k=v`, Markdown bindings and `check --list` read them
/// from here, and [`Check::params`] writes them back whole (leaving out
/// what equals its default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// A line for /bin/sh -c (give this or `program`).
    #[serde(default)]
    pub shell: Option<String>,
    /// A program to run without a shell.
    #[serde(default)]
    pub program: Option<String>,
    /// Arguments for `program`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Environment variables set for the command (`env.LANG=C`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables set from the run's secrets, variable to secret
    /// name (`secret_env.DATABASE_PASSWORD=db_password`); the values never
    /// appear in the plan, the record or the output.
    #[serde(default)]
    pub secret_env: BTreeMap<String, String>,
    /// Stop the process group after this long (SIGTERM, then SIGKILL after
    /// `term_grace`; e.g. 30s, 10m).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Exit codes meaning success.
    #[serde(default = "success_codes")]
    pub expect_exit: Vec<i32>,
    /// How long the process group gets after SIGTERM, on a timeout or a
    /// stop, before it is killed (SIGKILL).
    #[serde(default = "term_grace")]
    pub term_grace: Span,
    /// Bytes of stdout and of stderr kept as evidence (the last ones).
    #[serde(default = "output_limit")]
    pub output_limit: usize,
    /// True if the command changes nothing (then it runs in dry-run too).
    #[serde(default)]
    pub read_only: bool,
}

fn success_codes() -> Vec<i32> {
    vec![0]
}
fn term_grace() -> Span {
    Span::from(TERM_GRACE)
}
fn output_limit() -> usize {
    DEFAULT_OUTPUT_LIMIT
}

impl CommandParams {
    /// Parameters that run `program` with the defaults.
    fn of(program: Program) -> Self {
        let (shell, program, args) = match program {
            Program::Shell(line) => (Some(line), None, Vec::new()),
            Program::Exec { program, args } => (None, Some(program), args),
        };
        CommandParams {
            shell,
            program,
            args,
            cwd: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout: None,
            expect_exit: success_codes(),
            term_grace: term_grace(),
            output_limit: output_limit(),
            read_only: false,
        }
    }
}

impl CheckConfig for CommandParams {
    const NAME: &'static str = "command";

    fn build(mut self) -> Result<Arc<dyn Check>, ParamsError> {
        match (&self.shell, &self.program) {
            (Some(_), Some(_)) => {
                return Err(ParamsError::invalid(
                    Self::NAME,
                    "shell",
                    "and `program` are both given; give one",
                ));
            }
            (None, None) => {
                return Err(ParamsError::invalid(
                    Self::NAME,
                    "shell",
                    "or `program` is required",
                ));
            }
            (Some(_), None) if !self.args.is_empty() => {
                return Err(ParamsError::invalid(
                    Self::NAME,
                    "args",
                    "goes with `program`, not `shell`; put the arguments in the shell line",
                ));
            }
            _ => {}
        }
        // No code at all would fail every exit: an empty list means the default.
        if self.expect_exit.is_empty() {
            self.expect_exit = success_codes();
        }
        Ok(Arc::new(CommandCheck { params: self }))
    }
}

/// A command step.
///
/// ```
/// use std::time::Duration;
/// use escola_runbook_checks::command::CommandCheck;
///
/// let down = CommandCheck::exec("php", ["artisan", "down", "--message=Atualizando Escola Connect API", "--retry=60"])
///     .current_dir("/srv/escola-connect")
///     .timeout(Duration::from_secs(60));
/// let migrate = CommandCheck::shell("php vendor/bin/doctrine-migrations migrate --no-interaction")
///     .secret_env("DATABASE_PASSWORD", "db_password");
/// # let _ = (down, migrate);
/// ```
#[derive(Debug, Clone)]
pub struct CommandCheck {
    params: CommandParams,
}

/// Default bytes of stdout and of stderr kept as evidence (the tail).
pub const DEFAULT_OUTPUT_LIMIT: usize = 16 * 1024;

impl CommandCheck {
    /// Runs `program` with `args`, no shell.
    pub fn exec<I, S>(program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Program::Exec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        })
    }

    /// Runs `line` with `/bin/sh -c`.
    pub fn shell(line: impl Into<String>) -> Self {
        Self::new(Program::Shell(line.into()))
    }

    /// A command step for `program`. Mutating by default: a command is
    /// assumed to change something unless declared [`read_only`](Self::read_only).
    pub fn new(program: Program) -> Self {
        CommandCheck {
            params: CommandParams::of(program),
        }
    }

    /// Working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.params.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.env.insert(key.into(), value.into());
        self
    }

    /// Sets environment variable `key` to the run's secret `secret` (the
    /// value never appears in the plan, the record or the output).
    pub fn secret_env(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.params.secret_env.insert(key.into(), secret.into());
        self
    }

    escola_runbook_core::setters! {
        /// Stops the whole process group after `limit` (SIGTERM, then SIGKILL
        /// after [`TERM_GRACE`]) and reports timed out, with the output captured
        /// so far.
        timeout(limit: Duration) => params.timeout = Some(Span::from(limit));

        /// Exit codes that mean success (default: 0).
        expect_exit(codes: impl IntoIterator<Item = i32>) => params.expect_exit = codes.into_iter().collect();

        /// How long the process group gets after SIGTERM before SIGKILL
        /// (default [`TERM_GRACE`]). On a stop the executor waits at most
        /// [`CANCEL_GRACE`](escola_runbook_core::CANCEL_GRACE) for the step, so
        /// a longer grace only holds on the check's own timeout.
        term_grace(grace: Duration) => params.term_grace = Span::from(grace);

        /// Bytes of each output stream kept as evidence (the last ones).
        output_limit(bytes: usize) => params.output_limit = bytes;
    }

    /// Declares that the command only reads (a status query): it then runs
    /// in dry-run too.
    pub fn read_only(mut self) -> Self {
        self.params.read_only = true;
        self
    }

    /// The command line.
    pub fn program(&self) -> Program {
        match (&self.params.shell, &self.params.program) {
            (Some(line), _) => Program::Shell(line.clone()),
            (None, program) => Program::Exec {
                program: program.clone().unwrap_or_default(),
                args: self.params.args.clone(),
            },
        }
    }
}

/// How long a stopped or timed-out command's process group gets, after
/// SIGTERM, to exit on its own before it is killed (SIGKILL). Inside
/// [`escola_runbook_core::CANCEL_GRACE`], so the executor waits for it.
pub const TERM_GRACE: Duration = Duration::from_secs(10);

/// How long the output pipes may stay open once the group is gone (a
/// process that left the group may hold them).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Kills the process group when dropped: covers the executor dropping the
/// step's future without waiting (a check that overran its grace period).
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    /// SIGKILL to whatever is left of the group.
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, libc::SIGKILL);
        }
    }

    /// Asks the group to stop (SIGTERM), waits up to `grace` for every
    /// process of it to end, then kills what is left. Says what happened,
    /// for the evidence.
    async fn terminate(&mut self, child: &mut tokio::process::Child, grace: Duration) -> String {
        let Some(pgid) = self.pgid else {
            return "the command had already ended".into();
        };
        signal_group(pgid, libc::SIGTERM);
        let asked = tokio::time::Instant::now();
        let ended = tokio::time::timeout(grace, group_gone(child, pgid))
            .await
            .is_ok();
        self.kill();
        // SIGKILL is delivered asynchronously: a grandchild may still be
        // exiting when the shell is reaped. Wait (briefly) until the group
        // is really gone, so "killed" in the evidence is true.
        let _ = tokio::time::timeout(KILL_SETTLE, group_gone(child, pgid)).await;
        if ended {
            format!(
                "sent SIGTERM to process group {pgid}; it ended within {}",
                format_duration(asked.elapsed())
            )
        } else {
            format!(
                "sent SIGTERM to process group {pgid}; still running after {}, so it was killed (SIGKILL)",
                format_duration(grace)
            )
        }
    }
}

/// How long a killed group's processes get to finish exiting.
const KILL_SETTLE: Duration = Duration::from_secs(2);

/// Ends when the command has been reaped and no process of its group runs.
async fn group_gone(child: &mut tokio::process::Child, pgid: i32) {
    let _ = child.wait().await;
    while !escola_runbook_core::process::live_members(pgid.unsigned_abs()).is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; a group that is gone yields ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tail of a stream, bounded.
struct Tail {
    bytes: Vec<u8>,
    total: u64,
}

async fn read_tail<R: AsyncRead + Unpin>(mut reader: R, limit: usize) -> std::io::Result<Tail> {
    let mut bytes = Vec::new();
    let mut total = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        bytes.extend_from_slice(&buf[..n]);
        if bytes.len() > limit.saturating_mul(2).max(8192) {
            let cut = bytes.len() - limit;
            bytes.drain(..cut);
        }
    }
    if bytes.len() > limit {
        let cut = bytes.len() - limit;
        bytes.drain(..cut);
    }
    Ok(Tail { bytes, total })
}

impl Tail {
    fn render(&self, ctx: &Ctx) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = ctx.redactor().redact(&text).into_owned();
        if self.total > self.bytes.len() as u64 {
            format!(
                "[first {} bytes not kept]\n{text}",
                self.total - self.bytes.len() as u64
            )
        } else {
            text
        }
    }
}

#[async_trait]
impl Check for CommandCheck {
    fn describe(&self) -> Description {
        let line = self.program().display();
        let mut action = format!("run `{line}`");
        if let Some(dir) = &self.params.cwd {
            action.push_str(&format!(" in {}", dir.display()));
        }
        let verifies = format!(
            "`{line}` exits with {}",
            exit_list(&self.params.expect_exit)
        );
        if self.params.read_only {
            Description {
                action: Some(action),
                ..Description::read_only("command", verifies)
            }
        } else {
            Description::mutating("command", verifies, action)
        }
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let program = self.program();
        let line = ctx.redactor().redact(&program.display()).into_owned();
        let mut command = match &program {
            Program::Exec { program, args } => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Program::Shell(text) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(text);
                c
            }
        };
        if let Some(dir) = &self.params.cwd {
            command.current_dir(dir);
        }
        command.envs(&self.params.env);
        for (key, name) in &self.params.secret_env {
            match ctx.secret(name) {
                Some(secret) => {
                    command.env(key, secret.expose());
                }
                None => {
                    return Outcome::missing(Need::secret(name, format!("for ${key}")))
                        .with_evidence("command", line);
                }
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let hint = match (&program, &self.params.cwd) {
                    (_, Some(dir)) if !dir.is_dir() => {
                        format!("working directory {} does not exist", dir.display())
                    }
                    (Program::Exec { program, .. }, _)
                        if e.kind() == std::io::ErrorKind::NotFound =>
                    {
                        format!("`{program}` is not installed or not on PATH")
                    }
                    _ => e.to_string(),
                };
                return Outcome::check_error(format!("cannot start `{line}`: {hint}"))
                    .with_evidence("command", line)
                    .with_evidence("error", e.to_string());
            }
        };
        let mut guard = GroupGuard {
            pgid: child.id().and_then(|id| i32::try_from(id).ok()),
        };
        if let Some(pgid) = child.id() {
            if let Err(e) = ctx.record_process_group(pgid) {
                guard.kill();
                let _ = child.wait().await;
                return Outcome::check_error(format!(
                    "`{line}` was stopped at once: its process group could not be recorded ({e})"
                ))
                .with_evidence("command", line);
            }
        }
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Outcome::check_error(format!("`{line}` started without its output pipes"));
        };
        let limit = self.params.output_limit;
        let timeout = self.params.timeout.map(Span::get);
        let out_task = tokio::spawn(read_tail(stdout, limit));
        let err_task = tokio::spawn(read_tail(stderr, limit));
        let started = tokio::time::Instant::now();
        let ended = tokio::select! {
            status = child.wait() => Ended::Exited(status),
            () = sleep_for(timeout) => Ended::TimedOut,
            () = ctx.cancellation().cancelled() => Ended::Stopped,
        };
        let stopped = match ended {
            Ended::Exited(_) => None,
            Ended::TimedOut | Ended::Stopped => Some(
                guard
                    .terminate(&mut child, self.params.term_grace.get())
                    .await,
            ),
        };
        // Whatever happened, nothing of the group may outlive the step: a
        // background job holding the pipes would otherwise hang the run.
        guard.kill();
        let elapsed = started.elapsed();
        let stdout = output_of(out_task).await;
        let stderr = output_of(err_task).await;
        let mut outcome = match ended {
            Ended::TimedOut => Outcome::timed_out(timeout.unwrap_or_default())
                .with_evidence("command", line.clone()),
            Ended::Stopped => Outcome::aborted(format!("`{line}` was stopped before it ended"))
                .with_evidence("command", line.clone()),
            Ended::Exited(Err(e)) => Outcome::check_error(format!("lost track of `{line}`: {e}")),
            Ended::Exited(Ok(status)) => match status.code() {
                Some(code) if self.params.expect_exit.contains(&code) => {
                    Outcome::passed(format!("`{line}` exited with {code}"))
                }
                // The shell's own codes for "not found" and "not executable":
                // the command never ran, so nothing was measured.
                Some(code @ (126 | 127)) if matches!(program, Program::Shell(_)) => Outcome::check_error(format!(
                    "`{line}` could not be run: the shell answered {code} ({}); check the command and the directory it runs in",
                    if code == 127 { "command not found" } else { "not executable" }
                )),
                Some(code) => Outcome::failed(format!(
                    "`{line}` exited with {code}, expected {}",
                    exit_list(&self.params.expect_exit)
                )),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    let signal = status.signal().unwrap_or_default();
                    Outcome::failed(format!("`{line}` was killed by signal {signal}"))
                }
            }
            .with_evidence("command", line.clone())
            .with_evidence(
                "exit code",
                status
                    .code()
                    .map_or_else(|| "none (signal)".into(), |c| c.to_string()),
            ),
        };
        if let Some(how) = stopped {
            outcome = outcome.with_evidence("stopped", how);
        }
        if let Some(dir) = &self.params.cwd {
            outcome = outcome.with_evidence("working directory", dir.display().to_string());
        }
        outcome = outcome
            .with_evidence("duration", format_duration(elapsed))
            .with_measurement("duration", elapsed.as_secs_f64(), Some("s"));
        for (label, tail) in [("stdout", stdout), ("stderr", stderr)] {
            match tail {
                Some(t) if t.total > 0 => outcome = outcome.with_evidence(label, t.render(ctx)),
                Some(_) => {}
                None => outcome = outcome.with_evidence(label, "could not be read"),
            }
        }
        outcome
    }
}

/// How the wait for a command ended.
enum Ended {
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Stopped,
}

/// Sleeps for `limit`, or forever without one.
async fn sleep_for(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// A stream's tail once the group is gone; `None` if it could not be read,
/// or if something outside the group keeps it open past [`OUTPUT_GRACE`].
async fn output_of(task: tokio::task::JoinHandle<std::io::Result<Tail>>) -> Option<Tail> {
    let abort = task.abort_handle();
    match tokio::time::timeout(OUTPUT_GRACE, task).await {
        Ok(Ok(Ok(tail))) => Some(tail),
        Ok(_) => None,
        Err(_) => {
            abort.abort();
            None
        }
    }
}

fn exit_list(codes: &[i32]) -> String {
    match codes {
        [one] => one.to_string(),
        many => format!(
            "one of {}",
            many.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use escola_runbook_core::process::live_members;
    use escola_runbook_core::{CancellationToken, Environment, Secrets, Status};

    fn ctx() -> Ctx {
        Ctx::standalone(Environment::new("test"), Secrets::new())
    }

    fn evidence<'a>(o: &'a Outcome, label: &str) -> &'a str {
        o.evidence
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.as_str())
            .unwrap_or_else(|| panic!("no evidence `{label}` in {o:?}"))
    }

    /// The group of a command that printed `$$` (the shell leads its group).
    fn group_of(o: &Outcome) -> u32 {
        evidence(o, "stdout")
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pid printed in {o:?}"))
    }

    #[tokio::test]
    async fn a_timed_out_command_keeps_its_output_and_leaves_nothing_running() {
        let ctx = ctx();
        let o = CommandCheck::shell("echo $$; echo started; sleep 30 & wait")
            .timeout(Duration::from_millis(300))
            .run(&ctx)
            .await;
        assert_eq!(o.status, Status::TimedOut, "{o:?}");
        assert!(evidence(&o, "stdout").ends_with("started\n"), "{o:?}");
        let pgid = group_of(&o);
        assert!(
            evidence(&o, "stopped").starts_with(&format!(
                "sent SIGTERM to process group {pgid}; it ended within"
            )),
            "{o:?}"
        );
        assert!(ctx.started_processes());
        assert_eq!(live_members(pgid), vec![]);
    }

    #[tokio::test]
    async fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
        let o = CommandCheck::shell("trap '' TERM; echo $$; sleep 30")
            .timeout(Duration::from_millis(200))
            .term_grace(Duration::from_millis(300))
            .run(&ctx())
            .await;
        assert_eq!(o.status, Status::TimedOut, "{o:?}");
        let pgid = group_of(&o);
        assert_eq!(
            evidence(&o, "stopped"),
            format!(
                "sent SIGTERM to process group {pgid}; still running after 300ms, so it was killed (SIGKILL)"
            )
        );
        assert_eq!(live_members(pgid), vec![]);
    }

    #[tokio::test]
    async fn a_stopped_command_is_aborted_with_its_output() {
        let token = CancellationToken::new();
        let ctx = ctx().with_cancellation(token.clone());
        let stop = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            token.cancel();
        });
        let o = CommandCheck::shell("echo $$; echo long-start; sleep 30; echo long-end")
            .run(&ctx)
            .await;
        stop.await.unwrap();
        assert_eq!(o.status, Status::Aborted, "{o:?}");
        assert!(evidence(&o, "stdout").ends_with("long-start\n"), "{o:?}");
        assert_eq!(live_members(group_of(&o)), vec![]);
    }
}
