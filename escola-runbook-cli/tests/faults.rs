//! Under faults, through the binary: SIGTERM and SIGHUP during a command
//! step, a `kill -9` that leaves the step's processes running, and a run
//! directory whose disk fills up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use escola_runbook_core::process::live_members;

mod support;
use support::{mariadb, mariadb_up, wait_for_partial_data};

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A runbook file of one phase whose steps are `(id, shell line)`.
fn runbook(dir: &Path, steps: &[(&str, &str)]) -> PathBuf {
    let mut toml = String::from(
        "format = 1\nname = \"faults\"\n\n[[phases]]\nid = \"deploy\"\ntitle = \"Deploy\"\n",
    );
    for (id, line) in steps {
        toml.push_str(&format!(
            "\n[[phases.steps]]\nid = \"{id}\"\ntitle = \"Step {id}\"\ncommand = '{line}'\n"
        ));
    }
    let path = dir.join("runbook.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The journal lines of the only run under `runs`.
fn journal(runs: &Path) -> Vec<serde_json::Value> {
    let Some(dir) = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("journal.jsonl").is_file())
    else {
        return Vec::new();
    };
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until the journal says `step` started its process group, and
/// returns the group.
fn started_group(runs: &Path, step: &str) -> u32 {
    let started = Instant::now();
    loop {
        let pgid = journal(runs).iter().find_map(|e| {
            (e["event"] == "process_group_started" && e["step"] == step)
                .then(|| e["pgid"].as_u64().unwrap() as u32)
        });
        if let Some(pgid) = pgid {
            return pgid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "step {step} never started its process group"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names in directory `d` (none when it does not exist).
fn entries(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for `child` at most `limit`.
fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to a child this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

const LONG: &str = "echo long-start; sleep 30; echo long-end";

#[test]
fn sigterm_and_sighup_stop_a_run_like_ctrl_c() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
        let dir = tempfile::tempdir().unwrap();
        let file = runbook(dir.path(), &[("long", LONG), ("after", "echo after")]);
        let runs = dir.path().join("runs");
        let mut child = bin(dir.path())
            .args(["run", "--yes", "--runbook"])
            .arg(&file)
            .arg("--run-dir")
            .arg(&runs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pgid = started_group(&runs, "long");
        assert!(!live_members(pgid).is_empty(), "{name}: the step runs");
        signal(&child, sig);
        let status = wait_within(&mut child, Duration::from_secs(20));
        let out = child.wait_with_output().unwrap();
        assert_eq!(status.code(), Some(4), "{name}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("{name}: stopping the running step")),
            "{name}: {}",
            text(&out)
        );
        // Nothing of the step's process group outlives the tool.
        assert_eq!(live_members(pgid), vec![], "{name}");
        let events = journal(&runs);
        let finished = |step: &str| {
            events
                .iter()
                .find(|e| e["event"] == "step_finished" && e["step"] == step)
                .unwrap_or_else(|| panic!("{name}: no step_finished for {step}"))
                .clone()
        };
        let long = finished("long");
        assert_eq!(long["outcome"]["status"], "aborted", "{name}: {long}");
        let evidence = long["outcome"]["evidence"].as_array().unwrap();
        let value = |label: &str| {
            evidence
                .iter()
                .find(|e| e["label"] == label)
                .and_then(|e| e["value"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(value("stdout").trim(), "long-start", "{name}: {long}");
        assert!(
            value("stopped").starts_with(&format!("sent SIGTERM to process group {pgid}")),
            "{name}: {long}"
        );
        assert_eq!(finished("after")["outcome"]["status"], "not_run");
        let last = events.last().unwrap();
        assert_eq!(
            (&last["event"], &last["exit_code"]),
            (&"run_finished".into(), &4.into())
        );
        // The lock is released.
        let locks = entries(&runs.join("locks"));
        assert!(locks.is_empty(), "{name}: {locks:?}");
    }
}

#[test]
fn resume_will_not_rerun_a_step_whose_processes_survived_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // The first attempt leaves a marker and runs long; a rerun finds the
    // marker and ends at once.
    let line = "if [ -f marker ]; then echo rerun; exit 0; fi; touch marker; sleep 30";
    let file = runbook(dir.path(), &[("long", line)]);
    let runs = dir.path().join("runs");
    let run_dir = runs.display().to_string();
    let args = |verb: &str| -> Vec<String> {
        [
            verb,
            "--yes",
            "--runbook",
            file.to_str().unwrap(),
            "--run-dir",
            &run_dir,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut child = bin(dir.path())
        .args(args("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pgid = started_group(&runs, "long");
    child.kill().unwrap(); // SIGKILL: no cleanup, the group is orphaned
    child.wait().unwrap();
    let survivors = live_members(pgid);
    assert!(!survivors.is_empty(), "the orphaned group still runs");

    let mut resume = args("resume");
    resume.extend(["--on-interrupted".into(), "rerun".into()]);
    let out = bin(dir.path()).args(&resume).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "step `long` cannot run again: processes it started (group {pgid}) still run on this host"
        )),
        "{said}"
    );
    // Every member still alive is named (one seen earlier, such as the
    // `touch`, may have ended in between).
    for p in live_members(pgid) {
        assert!(said.contains(&format!("pid {}", p.pid)), "{said}");
    }
    assert!(said.contains("sleep 30"), "{said}");

    // Once the orphans are gone, the rerun goes ahead.
    // SAFETY: kills the process group this test's run started.
    unsafe { libc::killpg(i32::try_from(pgid).unwrap(), libc::SIGKILL) };
    let started = Instant::now();
    while !live_members(pgid).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = bin(dir.path()).args(&resume).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("passed"), "{}", text(&out));
}

/// A 64 KiB tmpfs mounted on a directory, unmounted when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// `None` (with the reason printed) where mounting is not allowed.
    fn mount() -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(TinyDisk { dir }),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a small tmpfs here ({}); the journal writer's failure is covered by escola-runbook-core's unit test on /dev/full",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_journal_that_cannot_be_written_ends_with_its_own_exit_code() {
    let Some(disk) = TinyDisk::mount() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let runs = disk.dir.path().join("runs");
    // The step completes, after printing more than the disk has left and
    // filling the rest: its outcome (with that output) cannot be journaled.
    let fill = format!(
        "head -c 30000 /dev/urandom | od -An -tx1; head -c 1000000 /dev/zero > {}/fill 2>/dev/null; echo filled",
        disk.dir.path().display()
    );
    let file = runbook(work.path(), &[("fill", &fill), ("after", "echo after")]);
    let out = bin(work.path())
        .args(["run", "--yes", "--runbook"])
        .arg(&file)
        .arg("--run-dir")
        .arg(&runs)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(6), "{said}");
    assert!(
        said.contains("the run stopped because its journal cannot be written: cannot append step_finished of step `fill` (passed) to the run journal"),
        "{said}"
    );
    assert!(said.contains("No space left on device"), "{said}");
    assert!(said.contains("escola-runbook resume"), "{said}");
    // The record shows what it knows: `fill` started, its outcome was lost.
    let report = bin(work.path())
        .args(["report", "latest", "--run-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(
        md.contains("- **outcome not recorded** — started, and its outcome was not recorded"),
        "{md}\n{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(!md.contains("ABORTED"), "{md}");
    // The lock was released even so.
    let locks = entries(&runs.join("locks"));
    assert!(locks.is_empty(), "{locks:?}");
}

/// `snapshot create` reading the URL from `DBURL`.
const SNAPSHOT_CREATE: &[&str] = &["snapshot", "create", "--db-url-env", "DBURL"];

/// A database server that never finishes talking: it accepts connections
/// and either says nothing, or sends a MySQL handshake and then stalls.
struct FakeServer {
    port: u16,
}

impl FakeServer {
    fn start(send_handshake: bool) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut conn in listener.incoming().flatten() {
                if send_handshake {
                    use std::io::Write;
                    let _ = conn.write_all(&handshake());
                }
                held.push(conn); // never closed, never answered
            }
        });
        FakeServer { port }
    }

    fn url(&self) -> String {
        format!("mysql://app:S3CRET-PW@127.0.0.1:{}/escola", self.port)
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A MariaDB protocol-10 greeting offering mysql_native_password.
fn handshake() -> Vec<u8> {
    let caps: u32 = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x8_0000;
    let mut p = vec![0x0a];
    p.extend_from_slice(b"5.5.5-10.11.0-MariaDB\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0x21);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"mysql_native_password\0");
    let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend(p);
    packet
}

fn assert_names_the_server_only(out: &Output, server: &FakeServer) {
    let said = text(out);
    assert!(said.contains(&server.server()), "{said}");
    assert!(!said.contains("S3CRET-PW"), "{said}");
    assert!(!said.contains("app:"), "{said}");
}

#[test]
fn a_database_that_never_answers_is_a_check_error_within_the_timeout() {
    for handshake in [false, true] {
        let server = FakeServer::start(handshake);
        let dir = tempfile::tempdir().unwrap();
        let within_seconds = |args: &[&str]| {
            let started = Instant::now();
            let out = bin(dir.path())
                .args(args)
                .env("DBURL", server.url())
                .output()
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{}",
                text(&out)
            );
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            assert_names_the_server_only(&out, &server);
            text(&out)
        };
        let said = within_seconds(&[
            "check",
            "migrations-consistent",
            "-p",
            "connect_timeout=1s",
            "--secret",
            "database_url=DBURL",
        ]);
        assert!(
            said.contains(&format!(
                "CHECK ERROR — cannot connect to {}/escola: no answer within 1s (connect timeout)",
                server.server()
            )),
            "{said}"
        );
        let said = within_seconds(
            &[
                SNAPSHOT_CREATE,
                &["--out", "snaps", "--connect-timeout", "1s"],
            ]
            .concat(),
        );
        assert!(
            said.contains("no answer within 1s (connect timeout)"),
            "{said}"
        );
        let left = entries(&dir.path().join("snaps"));
        assert!(left.is_empty(), "nothing partial is left: {left:?}");
    }
}

#[test]
fn a_db_lock_on_a_hung_server_is_refused_in_time_and_a_killed_wait_leaves_its_run() {
    let server = FakeServer::start(true);
    let dir = tempfile::tempdir().unwrap();
    let file = runbook(dir.path(), &[("hello", "echo hello")]);
    let runs = dir.path().join("runs");
    let args = |c: &mut Command| {
        c.args([
            "run",
            "--yes",
            "--db-lock",
            "--secret",
            "database_url=DBURL",
        ])
        .arg("--runbook")
        .arg(&file)
        .arg("--run-dir")
        .arg(&runs)
        .env("DBURL", server.url());
    };
    let started = Instant::now();
    let mut c = bin(dir.path());
    args(&mut c);
    let out = c.output().unwrap();
    // The lock's default connect timeout is 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no answer within 10s (connect timeout)"),
        "{}",
        text(&out)
    );
    assert_names_the_server_only(&out, &server);
    // Refused: neither a lock nor a run is left behind.
    assert_eq!(entries(&runs.join("locks")), Vec::<String>::new());
    assert_eq!(entries(&runs), vec!["locks".to_owned()]);

    // Killed while it waits for the database: the file lock it holds names
    // a run that exists, with its first record.
    let mut c = bin(dir.path());
    args(&mut c);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while entries(&runs.join("locks")).is_empty() {
        assert!(waited.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = &entries(&runs.join("locks"))[0];
    let owner: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs.join("locks").join(lock)).unwrap()).unwrap();
    let run_id = owner["run_id"].as_str().unwrap();
    let first = journal(&runs);
    assert_eq!(first[0]["event"], "run_started");
    assert_eq!(first[0]["run"]["run_id"], run_id);
}

/// Tests that take or block the server-wide global read lock run one at a
/// time: each would hold up the other.
fn global_read_lock_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A database of its own for one test, dropped at the end.
struct TestDb(String);

impl TestDb {
    fn create(tag: &str, setup: &str) -> TestDb {
        let name = format!("escola_t_faults_{tag}_{}", std::process::id());
        assert!(mariadb(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; USE {name}; {setup}"
        )));
        TestDb(name)
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        mariadb(&format!("DROP DATABASE IF EXISTS {}", self.0));
    }
}

#[test]
fn a_slow_statement_ends_at_the_read_or_statement_timeout() {
    if !mariadb_up() {
        return;
    }
    // Its slow statements keep a table open, which holds up a global read
    // lock.
    let _turn = global_read_lock_turn();
    let db = TestDb::create(
        "slow",
        "CREATE TABLE queue (id INT PRIMARY KEY); INSERT INTO queue VALUES (1);",
    );
    let dir = tempfile::tempdir().unwrap();
    let backlog = |limits: [&str; 2]| {
        let started = Instant::now();
        let out = bin(dir.path())
            .args(["check", "sync-backlog", "-p", "table=queue"])
            .args(["-p", "pending_where=SLEEP(4) = 0", "-p", "max_pending=10"])
            .args(["-p", limits[0], "-p", limits[1]])
            .args(["--secret", "database_url=DBURL"])
            .env("DBURL", db.url())
            .output()
            .unwrap();
        (out, started.elapsed())
    };
    let (out, took) = backlog(["read_timeout=1s", "statement_timeout=30s"]);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no answer from 127.0.0.1:3306 within 1s (read timeout)"),
        "{}",
        text(&out)
    );
    let (out, took) = backlog(["read_timeout=30s", "statement_timeout=1s"]);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("max_statement_time exceeded"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_snapshot_refuses_a_global_read_lock_it_cannot_get_and_names_the_holder() {
    if !mariadb_up() {
        return;
    }
    let _turn = global_read_lock_turn();
    let db = TestDb::create("rl", "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB;");
    let dir = tempfile::tempdir().unwrap();
    // Another session holds a table write lock while it runs a statement a
    // test can recognise; briefly, since it holds up every snapshot on the
    // server.
    let marker = format!("holder_{}", std::process::id());
    let mut holder = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-e"])
        .arg(format!(
            "LOCK TABLES {}.t WRITE; SELECT SLEEP(5) AS {marker}; UNLOCK TABLES;",
            db.0
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let out = bin(dir.path())
        .args(SNAPSHOT_CREATE)
        .args(["--out", "snaps"])
        .args(["--lock-wait", "1s", "--lock-tries", "2"])
        .env("DBURL", db.url())
        .output()
        .unwrap();
    let took = started.elapsed();
    holder.wait().unwrap();
    // Two tries of 1 s and a pause: bounded, before the holder ends.
    assert!(took < Duration::from_secs(5), "{took:?}: {}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("the global read lock (FLUSH TABLES WITH READ LOCK) on 127.0.0.1:3306 was not granted within 1s in 2 tries, so no snapshot was taken"),
        "{said}"
    );
    assert!(said.contains("held up by session "), "{said}");
    assert!(said.contains("root@127.0.0.1:"), "{said}");
    assert!(said.contains(&format!("AS {marker}` for ")), "{said}");
    let left = entries(&dir.path().join("snaps"));
    assert!(left.is_empty(), "{left:?}");

    // Without the holder, the snapshot says how long it held the lock.
    let out = bin(dir.path())
        .args(SNAPSHOT_CREATE)
        .args(["--out", "snaps"])
        .env("DBURL", db.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("(global read lock held "),
        "{}",
        text(&out)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(&path).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(
        manifest["consistency"]["global_read_lock_ms"].is_u64(),
        "{manifest}"
    );
    assert!(
        manifest["consistency"]["global_read_lock_wait_ms"].is_u64(),
        "{manifest}"
    );
}

#[test]
fn sigterm_during_a_snapshot_removes_its_partial_directory() {
    if !mariadb_up() {
        return;
    }
    let _turn = global_read_lock_turn();
    let db = TestDb::create(
        "term",
        "CREATE TABLE big (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
         INSERT INTO big SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_150000;",
    );
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    let mut child = bin(dir.path())
        .args(SNAPSHOT_CREATE)
        .args(["--threads", "1", "--out"])
        .arg(&snaps)
        .env("DBURL", db.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // SIGTERM once the partial directory holds data.
    wait_for_partial_data(&snaps);
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(20));
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("the snapshot was cancelled; no snapshot was kept"),
        "{}",
        text(&out)
    );
    let left = entries(&snaps);
    assert!(left.is_empty(), "{left:?}");
}
