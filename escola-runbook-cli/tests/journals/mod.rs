//! What the tests that follow a run through its journal share.

use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (at most 30 s) until a journal of a run under `runs` says
/// `needle`.
pub fn wait_for(runs: &Path, needle: &str) {
    let started = Instant::now();
    loop {
        let found = std::fs::read_dir(runs).ok().is_some_and(|dirs| {
            dirs.filter_map(Result::ok).any(|d| {
                std::fs::read_to_string(d.path().join("journal.jsonl"))
                    .is_ok_and(|j| j.contains(needle))
            })
        });
        if found {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no journal says {needle}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
