//! What `/proc` says about processes, read in one place: the fields of
//! `/proc/PID/stat` ([`stat`], [`processes`]), whether a process is alive,
//! the live members of a process group, processes by command-line
//! argument; and the clean-up of what a test started ([`Reaper`]).
//!
//! Self-contained but for [`super::poll`], so that the `plumbing` test
//! binary can include it too.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::poll::wait_until;

/// A process as its `/proc/PID/stat` shows it (proc(5), fields 1 to 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name, without its parentheses.
    pub comm: String,
    /// `R`, `S`, `Z`…
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// The controlling terminal; 0 for none.
    pub tty_nr: i32,
}

impl Stat {
    /// Neither a zombie nor dead.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// Process `pid` as `/proc/PID/stat` shows it, or `None` when it is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The text of a `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses: the fields after it
/// start after the last `)`.
fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(')')?;
    let (_, comm) = head.split_once('(')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let mut number = || fields.next()?.parse::<i32>().ok();
    Some(Stat {
        pid,
        comm: comm.to_owned(),
        state,
        ppid: number()?,
        pgrp: number()?,
        session: number()?,
        tty_nr: number()?,
    })
}

/// Every process this test can see. Processes that end while `/proc` is
/// read are left out.
pub fn processes() -> Vec<Stat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Live processes (not zombies) one of whose command-line arguments is
/// `arg`, e.g. a configuration path unique to one test.
pub fn processes_with_arg(arg: &str) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.is_alive())
        .map(|p| p.pid)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
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

/// Pids of the processes in group `pgid` that are not zombies. Zombies
/// are left out: killed orphans wait there for init to reap them.
pub fn live_members(pgid: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.is_alive())
        .map(|p| p.pid)
        .collect()
}

/// Whether process `pid` is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|p| p.is_alive())
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

#[test]
fn stat_is_read_after_the_last_parenthesis_of_the_name() {
    let text = "42 (a) b) (c) S 7 42 40 34816 -1 4194560";
    let parsed = parse_stat(42, text).unwrap();
    assert_eq!(parsed.comm, "a) b) (c");
    assert_eq!(
        (
            parsed.state,
            parsed.ppid,
            parsed.pgrp,
            parsed.session,
            parsed.tty_nr
        ),
        ('S', 7, 42, 40, 34816)
    );
    assert_eq!(parse_stat(42, "42 (sh) S 7"), None);
    // This process, read for real.
    let me = stat(std::process::id() as i32).unwrap();
    assert!(me.is_alive());
    assert_eq!(me.ppid as u32, std::os::unix::process::parent_id());
}
