//! What the benches that run our CLI as a process share: finding the
//! release binary, and running a command to the end with its peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The release `escola-runbook` binary: `ESCOLA_RUNBOOK_BIN`, or built
/// (or found current) by cargo.
pub fn ours() -> PathBuf {
    if let Some(bin) = std::env::var_os("ESCOLA_RUNBOOK_BIN") {
        return PathBuf::from(bin);
    }
    // benches run from <target>/release/deps/; the binary sits in <target>/release/.
    let exe = std::env::current_exe().expect("bench executable path");
    let release = exe
        .parent()
        .and_then(Path::parent)
        .expect("bench runs from <target>/release/deps");
    let bin = release.join("escola-runbook");
    // Always through cargo, so a binary older than the sources is rebuilt
    // (a no-op when it is current).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "escola-runbook-cli"])
        .status()
        .expect("run cargo build for the CLI");
    assert!(status.success(), "building escola-runbook failed");
    bin
}

/// Runs `cmd` to the end; returns its exit code and peak RSS in KiB (of
/// the process, or the largest of a shell pipeline's processes).
pub fn run(cmd: &mut Command) -> (i32, i64) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `child` is not waited on elsewhere.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    drop(child);
    (code, usage.ru_maxrss)
}
