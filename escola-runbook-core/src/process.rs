//! Process groups a step started: recorded in the journal so that a later
//! `resume` can tell whether what an interrupted step launched still runs.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A process group a step started, and the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    /// The group id (the pid of its first process).
    pub pgid: u32,
    /// The host it runs on (process ids mean nothing elsewhere).
    pub host: String,
}

/// A process still alive in a recorded group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveProcess {
    /// Its pid.
    pub pid: u32,
    /// Its command line (its name in brackets when it has none).
    pub command: String,
}

impl std::fmt::Display for LiveProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} `{}`", self.pid, self.command)
    }
}

/// The processes of group `pgid` alive on this machine, read from `/proc`
/// (Linux; elsewhere none are found). Zombies are left out: they run
/// nothing and only wait for their parent to collect them.
pub fn live_members(pgid: u32) -> Vec<LiveProcess> {
    live_members_in(Path::new("/proc"), pgid)
}

fn live_members_in(proc_root: &Path, pgid: u32) -> Vec<LiveProcess> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut live: Vec<LiveProcess> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let dir = proc_root.join(pid.to_string());
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let (name, state, group) = parse_stat(&stat)?;
            if group != pgid || matches!(state, 'Z' | 'X') {
                return None;
            }
            let command = std::fs::read(dir.join("cmdline"))
                .ok()
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(String::from_utf8_lossy)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| format!("[{name}]"));
            Some(LiveProcess { pid, command })
        })
        .collect();
    live.sort_by_key(|p| p.pid);
    live
}

/// `(name, state, process group)` from a `/proc/PID/stat` line. The name is
/// in parentheses and may itself hold spaces and parentheses, so the fields
/// after it are found from the last `)`.
fn parse_stat(stat: &str) -> Option<(&str, char, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let _ppid = rest.next()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((name, state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        assert_eq!(
            parse_stat("4242 (sleep) S 4200 4242 4200 0 -1"),
            Some(("sleep", 'S', 4242))
        );
        assert_eq!(
            parse_stat("7 (a) b (c)) Z 1 99 99 0"),
            Some(("a) b (c)", 'Z', 99))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn members_of_a_group_are_found_and_zombies_left_out() {
        let root = tempfile::tempdir().unwrap();
        let add = |pid: u32, stat: &str, cmdline: &[u8]| {
            let dir = root.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), stat).unwrap();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        };
        add(20, "20 (sh) S 1 20 20 0", b"/bin/sh\0-c\0sleep 30\0");
        add(21, "21 (sleep) S 20 20 20 0", b"sleep\x0030\0");
        add(22, "22 (sh) Z 1 20 20 0", b"");
        add(23, "23 (kworker) S 2 23 0 0", b"");
        add(30, "30 (other) S 1 30 30 0", b"other\0");
        std::fs::create_dir_all(root.path().join("self")).unwrap();
        let live = live_members_in(root.path(), 20);
        assert_eq!(
            live,
            vec![
                LiveProcess {
                    pid: 20,
                    command: "/bin/sh -c sleep 30".into()
                },
                LiveProcess {
                    pid: 21,
                    command: "sleep 30".into()
                },
            ]
        );
        assert_eq!(live[1].to_string(), "pid 21 `sleep 30`");
        assert!(live_members_in(root.path(), 23)[0].command == "[kworker]");
    }

    #[test]
    fn this_process_is_found_in_its_own_group() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (_, _, pgid) = parse_stat(&stat).unwrap();
        let me = std::process::id();
        assert!(live_members(pgid).iter().any(|p| p.pid == me));
    }
}
