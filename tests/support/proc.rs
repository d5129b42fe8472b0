//! Fixtures for tests that run real shells: waiting with a bound, reading
//! pid files, finding the live members of a process group, and cleaning up.
//!
//! Included with `#[path]` by test binaries, each of which uses a part.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// Calls `done` until it returns true or `within` has passed; returns its
/// last answer. Sleeps 20 ms between calls.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The pid a shell wrote (`echo $$ > file`) into `path`, waiting up to ten
/// seconds for it to appear.
pub fn read_pid(path: &Path) -> i32 {
    let mut pid = None;
    wait_until(Duration::from_secs(10), || {
        pid = fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap_or_else(|| panic!("no pid in {}", path.display()))
}

/// Pids of the processes in group `pgid` that are not zombies, from
/// `/proc/PID/stat` (proc(5): field 3 is the state, field 5 the group).
/// Zombies are left out: killed orphans wait there for init to reap them.
pub fn live_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // The command name (field 2) is in parentheses and may hold
            // spaces: split after the last `)`.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let state = fields.first().copied().unwrap_or("X");
            let group = fields.get(2).and_then(|g| g.parse::<i32>().ok());
            group == Some(pgid) && state != "Z" && state != "X"
        })
        .collect()
}

/// Whether process `pid` is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Asserts that no live process is left in group `pgid`, allowing a few
/// seconds for signals to be delivered.
pub fn assert_group_gone(pgid: i32) {
    let gone = wait_until(Duration::from_secs(5), || live_members(pgid).is_empty());
    assert!(
        gone,
        "process group {pgid} still has live members: {:?}",
        live_members(pgid)
    );
}

/// Kills (SIGKILL) the processes and process groups it holds when dropped,
/// so a failing test leaves nothing behind.
#[derive(Default)]
pub struct Reaper {
    pids: Vec<i32>,
    groups: Vec<i32>,
}

impl Reaper {
    /// Kills `pid` on drop.
    pub fn pid(&mut self, pid: i32) {
        self.pids.push(pid);
    }

    /// Kills process group `pgid` on drop.
    pub fn group(&mut self, pgid: i32) {
        self.groups.push(pgid);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.pids.iter().filter_map(|p| Pid::from_raw(*p)) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        for pgid in self.groups.iter().filter_map(|p| Pid::from_raw(*p)) {
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
    }
}
