//! What the CLI tests that need MariaDB share.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sql` with the `mariadb` client as root on 127.0.0.1:3306.
pub fn mariadb(sql: &str) -> bool {
    Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-e", sql])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether MariaDB answers at 127.0.0.1:3306; when it does not, the test
/// skips with a printed reason, or fails with ESCOLA_REQUIRE_SERVICES=1.
pub fn mariadb_up() -> bool {
    if mariadb("SELECT 1") {
        return true;
    }
    if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("MariaDB at 127.0.0.1:3306 is required (ESCOLA_REQUIRE_SERVICES=1)");
    }
    eprintln!("skipping: MariaDB at 127.0.0.1:3306 is not reachable");
    false
}

/// Waits (at most 30 s) until the snapshot being written under `snaps` has
/// data files in its partial directory.
pub fn wait_for_partial_data(snaps: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let has_data = std::fs::read_dir(snaps)
            .ok()
            .and_then(|mut d| d.find_map(Result::ok))
            .and_then(|e| std::fs::read_dir(e.path()).ok())
            .is_some_and(|d| d.count() >= 2);
        if has_data || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
