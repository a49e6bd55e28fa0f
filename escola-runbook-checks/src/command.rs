//! Runs a program (or a shell line) as a step: maintenance mode, migrations,
//! composer, cache scripts. The whole process group is killed on timeout or
//! stop, output is captured as bounded evidence with secrets masked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use escola_runbook_core::{
    Check, CheckParams, Ctx, Description, Outcome, async_trait, format_duration,
};
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
    program: Program,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    secret_env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    expect_exit: Vec<i32>,
    output_limit: usize,
    mutates: bool,
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
            program,
            cwd: None,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            timeout: None,
            expect_exit: vec![0],
            output_limit: DEFAULT_OUTPUT_LIMIT,
            mutates: true,
        }
    }

    /// Working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets environment variable `key` to the run's secret `secret` (the
    /// value never appears in the plan, the record or the output).
    pub fn secret_env(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.secret_env.insert(key.into(), secret.into());
        self
    }

    /// Kills the whole process group after `limit` and reports timed out,
    /// with the output captured so far.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Exit codes that mean success (default: 0).
    pub fn expect_exit(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.expect_exit = codes.into_iter().collect();
        self
    }

    /// Bytes of each output stream kept as evidence (the last ones).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    /// Declares that the command only reads (a status query): it then runs
    /// in dry-run too.
    pub fn read_only(mut self) -> Self {
        self.mutates = false;
        self
    }

    /// The command line.
    pub fn program(&self) -> &Program {
        &self.program
    }
}

/// Kills the process group when dropped, unless disarmed: covers the executor
/// dropping the step's future on timeout or Ctrl-C.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg only sends a signal; a stale group id yields ESRCH.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
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
        let line = self.program.display();
        let mut action = format!("run `{line}`");
        if let Some(dir) = &self.cwd {
            action.push_str(&format!(" in {}", dir.display()));
        }
        let verifies = format!("`{line}` exits with {}", exit_list(&self.expect_exit));
        if self.mutates {
            Description::mutating("command", verifies, action)
        } else {
            Description {
                action: Some(action),
                ..Description::read_only("command", verifies)
            }
        }
    }

    fn params(&self) -> Option<CheckParams> {
        let mut p = CheckParams::new("command");
        match &self.program {
            Program::Shell(line) => p = p.with("shell", line),
            // Arguments containing commas cannot be written as a list; such a
            // command exports as the equivalent shell line.
            Program::Exec { program, args } if args.iter().any(|a| a.contains(',')) => {
                p = p.with(
                    "shell",
                    Program::Exec {
                        program: program.clone(),
                        args: args.clone(),
                    }
                    .display(),
                );
            }
            Program::Exec { program, args } => {
                p = p.with("program", program);
                if !args.is_empty() {
                    p = p.with("args", args.join(","));
                }
            }
        }
        if let Some(dir) = &self.cwd {
            p = p.with("cwd", dir.display().to_string());
        }
        if let Some(limit) = self.timeout {
            p = p.with("timeout", format!("{}ms", limit.as_millis()));
        }
        if self.expect_exit != [0] {
            p = p.with(
                "expect_exit",
                self.expect_exit
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        if !self.mutates {
            p = p.with("read_only", "true");
        }
        Some(p)
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let line = ctx.redactor().redact(&self.program.display()).into_owned();
        let mut command = match &self.program {
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
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command.envs(&self.env);
        for (key, name) in &self.secret_env {
            match ctx.secret(name) {
                Some(secret) => {
                    command.env(key, secret.expose());
                }
                None => {
                    return Outcome::check_error(format!(
                        "secret `{name}` (for ${key}) was not provided; pass it with --secret {name}=ENV_VAR"
                    ))
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
                let hint = match (&self.program, &self.cwd) {
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
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Outcome::check_error(format!("`{line}` started without its output pipes"));
        };
        let limit = self.output_limit;
        let out_task = tokio::spawn(read_tail(stdout, limit));
        let err_task = tokio::spawn(read_tail(stderr, limit));
        let started = tokio::time::Instant::now();
        let waited = match self.timeout {
            Some(limit) => tokio::time::timeout(limit, child.wait()).await.ok(),
            None => Some(child.wait().await),
        };
        // Whatever happened, nothing of the group may outlive the step: a
        // background job holding the pipes would otherwise hang the run.
        guard.kill();
        let elapsed = started.elapsed();
        let stdout = out_task.await.ok().and_then(Result::ok);
        let stderr = err_task.await.ok().and_then(Result::ok);
        let mut outcome = match waited {
            None => {
                let _ = child.wait().await;
                Outcome::timed_out(self.timeout.unwrap_or_default())
                    .with_evidence("command", line.clone())
            }
            Some(Err(e)) => Outcome::check_error(format!("lost track of `{line}`: {e}")),
            Some(Ok(status)) => match status.code() {
                Some(code) if self.expect_exit.contains(&code) => {
                    Outcome::passed(format!("`{line}` exited with {code}"))
                }
                // The shell's own codes for "not found" and "not executable":
                // the command never ran, so nothing was measured.
                Some(code @ (126 | 127)) if matches!(self.program, Program::Shell(_)) => Outcome::check_error(format!(
                    "`{line}` could not be run: the shell answered {code} ({}); check the command and --app-dir",
                    if code == 127 { "command not found" } else { "not executable" }
                )),
                Some(code) => Outcome::failed(format!(
                    "`{line}` exited with {code}, expected {}",
                    exit_list(&self.expect_exit)
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
        if let Some(dir) = &self.cwd {
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

/// The registry entry for `command`.
pub(crate) fn spec() -> crate::registry::CheckSpec {
    use crate::registry::{CheckSpec, ParamSpec};
    const PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "shell",
            help: "a line for /bin/sh -c (give this or `program`)",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "program",
            help: "a program to run without a shell",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "args",
            help: "arguments for `program`, comma-separated",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "cwd",
            help: "working directory",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "timeout",
            help: "kill the process group after this long (e.g. 30s, 10m)",
            required: false,
            default: None,
        },
        ParamSpec {
            name: "expect_exit",
            help: "exit codes meaning success, comma-separated",
            required: false,
            default: Some("0"),
        },
        ParamSpec {
            name: "read_only",
            help: "true if the command changes nothing (then it runs in dry-run too)",
            required: false,
            default: Some("false"),
        },
    ];
    CheckSpec {
        name: "command",
        summary: "runs a program or shell line; passes when it exits with an expected code",
        params: PARAMS,
        build: |p| {
            let mut check = match (p.get("shell"), p.get("program")) {
                (Some(line), None) => CommandCheck::shell(line),
                (None, Some(program)) => {
                    CommandCheck::exec(program, p.list("args").unwrap_or_default())
                }
                (Some(_), Some(_)) => {
                    return Err(p.error("shell", "and `program` are both given; give one"));
                }
                (None, None) => {
                    return Err(p.error("shell", "or `program` is required"));
                }
            };
            if p.get("args").is_some() && p.get("shell").is_some() {
                return Err(p.error(
                    "args",
                    "goes with `program`, not `shell`; put the arguments in the shell line",
                ));
            }
            if let Some(dir) = p.get("cwd") {
                check = check.current_dir(dir);
            }
            if let Some(limit) = p.duration("timeout")? {
                check = check.timeout(limit);
            }
            let codes = p
                .list("expect_exit")
                .unwrap_or_default()
                .iter()
                .map(|c| c.parse::<i32>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    p.error(
                        "expect_exit",
                        format!("must be whole numbers separated by commas: {e}"),
                    )
                })?;
            if !codes.is_empty() {
                check = check.expect_exit(codes);
            }
            if p.parse::<bool>("read_only")?.unwrap_or(false) {
                check = check.read_only();
            }
            Ok(std::sync::Arc::new(check))
        },
    }
}
