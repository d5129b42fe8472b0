//! Finding and killing everything a run started, descendants that left its
//! process group included.
//!
//! Killing the process group of a hung hook misses any descendant that
//! called `setsid(2)` or `setpgid(2)`. So at the deadline heartbeat walks
//! the tree under the shell (`/proc/PID/task/TID/children`, proc(5)) and
//! signals every process in it through a pidfd (pidfd_open(2), so a pid
//! reused in the meantime is never hit), and does so again when SIGKILL is
//! due, to catch what was forked during the grace period.
//!
//! A descendant whose parent exited before the walk is no longer under the
//! shell. With heartbeat a child subreaper ([`become_subreaper`], prctl(2)
//! `PR_SET_CHILD_SUBREAPER`) such orphans are re-parented to heartbeat
//! rather than to init, and every run marks its processes with a variable
//! of its own (`HEARTBEAT_RUN_ID`) that its descendants inherit: the
//! orphans of heartbeat whose initial environment (`/proc/PID/environ`)
//! carries the run's mark, and their descendants, are killed with it.
//!
//! Limits, without systemd: a process that clears its environment before
//! its parent exits, or that outlives heartbeat itself (heartbeat killed
//! with SIGKILL: its orphans go to init), escapes this; under systemd,
//! `KillMode=control-group` (the default) ends them with the service.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::{self, Read as _};
use std::os::fd::OwnedFd;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal};

use super::orphans;

/// Name of the variable that marks the processes of one run.
pub const RUN_ID_VAR: &str = "HEARTBEAT_RUN_ID";

/// Makes this process a child subreaper (prctl(2)
/// `PR_SET_CHILD_SUBREAPER`): orphaned descendants of its checks and hooks
/// are re-parented to it instead of init, so that they can be killed with
/// their run and must be reaped with [`super::reap_orphans`]. Not
/// inherited across `fork(2)`: call it in the process that runs the
/// checks, after detaching.
///
/// # Errors
/// When the kernel refuses (before Linux 3.4).
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// The children of process `pid`, from the `children` file of each of its
/// threads, or `None` when the kernel does not provide that file (it needs
/// `CONFIG_PROC_CHILDREN`). A child belongs to the thread that started it,
/// so every thread's file is read. A process that is gone has none.
pub(super) fn children_of(pid: u32) -> io::Result<Option<Vec<u32>>> {
    let tasks = match fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => tasks,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Vec::new())),
        Err(e) => return Err(e),
    };
    let mut children = Vec::new();
    for entry in tasks {
        let task = entry?.path();
        match fs::read_to_string(task.join("children")) {
            Ok(list) => {
                children.extend(
                    list.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
            // The thread has ended since the directory was read: skip it.
            Err(_) if !task.exists() => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(children))
}

/// Every process found under `roots` (the roots included, if alive), by
/// walking the children files. Cycles cannot occur; the set guards anyway.
fn tree_under(roots: &[u32]) -> Vec<u32> {
    let mut seen: HashSet<u32> = HashSet::new();
    let mut todo: Vec<u32> = roots.to_vec();
    let mut found = Vec::new();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        found.push(pid);
        if let Ok(Some(children)) = children_of(pid) {
            todo.extend(children);
        }
    }
    found
}

/// The orphans of this process (children not supervised by a run) that
/// carry `HEARTBEAT_RUN_ID=run` in their initial environment.
fn marked_orphans(run: u64) -> Vec<u32> {
    let mark = format!("{RUN_ID_VAR}={run}");
    let Ok(children) = orphans::children() else {
        return Vec::new();
    };
    children
        .into_iter()
        .filter(|&pid| {
            initial_environ(pid)
                .is_some_and(|env| env.split(|&b| b == 0).any(|v| v == mark.as_bytes()))
        })
        .collect()
}

/// How long [`initial_environ`] waits for a process to finish an
/// `execve(2)`: microseconds on an idle machine, more when it is loaded.
const EXEC_WAIT: Duration = Duration::from_millis(500);

/// What [`initial_environ`] reads in one `read(2)`: the environment of
/// almost every process, which the kernel then copies from one image.
const ENVIRON_READ: usize = 64 * 1024;

/// The initial environment of process `pid` (`/proc/PID/environ`, proc(5)),
/// or `None` when it is gone, a zombie, or unreadable.
///
/// An `execve(2)` must not make it look unmarked:
/// - in the middle of one, the kernel has replaced the memory but not yet
///   set where the new environment lies (`env_start` and `env_end`, fields
///   50 and 51 of `/proc/PID/stat`, are still 0): it reads empty;
/// - a file opened before the exec reads nothing from the image that
///   replaced the one it was opened on;
/// - read in several calls, it would end where the exec came between two.
///
/// So it is read in one call of up to [`ENVIRON_READ`] bytes; an empty or
/// longer environment counts only once it is as long as `env_end -
/// env_start` says, for a process with its environment set (an empty one
/// is a process started with none, `env -i`); until then, for at most
/// [`EXEC_WAIT`], it is read again.
fn initial_environ(pid: u32) -> Option<Vec<u8>> {
    let path = format!("/proc/{pid}/environ");
    let until = Instant::now() + EXEC_WAIT;
    // The exec sets `env_start` a moment before `env_end`: an empty read
    // in between looks settled, so an empty environment counts only when
    // two reads a millisecond apart agree.
    let mut empty_once = false;
    loop {
        let env = read_environ(&path)?;
        if !env.is_empty() && env.len() < ENVIRON_READ {
            return Some(env);
        }
        let (state, start, end) = environ_bounds(pid)?;
        if matches!(state, 'Z' | 'X') {
            return None;
        }
        let settled = start != 0 && end.checked_sub(start) == Some(env.len() as u64);
        if settled && env.is_empty() && !empty_once {
            empty_once = true;
        } else if settled || Instant::now() >= until {
            return Some(env);
        } else {
            empty_once = false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `/proc/PID/environ`, its first [`ENVIRON_READ`] bytes in one call.
fn read_environ(path: &str) -> Option<Vec<u8>> {
    let mut file = fs::File::open(path).ok()?;
    let mut env = vec![0; ENVIRON_READ];
    let n = file.read(&mut env).ok()?;
    env.truncate(n);
    if n == ENVIRON_READ {
        file.read_to_end(&mut env).ok()?;
    }
    Some(env)
}

/// The state (field 3), `env_start` and `env_end` (fields 50 and 51) of
/// `/proc/PID/stat` (proc(5)). The command name, field 2, is in
/// parentheses and may hold spaces and parentheses: the fields after it
/// start after the last `)`.
fn environ_bounds(pid: u32) -> Option<(char, u64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is taken: field 50 is the 47th of those left.
    let start = fields.nth(46)?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    Some((state, start, end))
}

/// How many ended runs [`ended`] remembers.
const ENDED_KEPT: usize = 4096;

/// Runs that ended in time and whose leftovers must die (script checks),
/// most recent last.
static ENDED: Mutex<VecDeque<u64>> = Mutex::new(VecDeque::new());

/// Notes that run `run` ended and that whatever it left behind is to be
/// killed by the next [`kill_leftovers`].
pub(super) fn ended(run: u64) {
    let mut ended = ENDED.lock().unwrap_or_else(PoisonError::into_inner);
    if ended.len() == ENDED_KEPT {
        ended.pop_front();
    }
    ended.push_back(run);
}

/// Kills (SIGKILL), with their trees, the live `children` of this process
/// that carry the mark of a run noted by [`ended`]: descendants of a script
/// check that left its process group and whose parent exited, re-parented
/// to heartbeat as their subreaper. Returns how many were found.
pub(super) fn kill_leftovers(children: &[u32]) -> usize {
    let ended: Vec<u64> = ENDED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .copied()
        .collect();
    if ended.is_empty() {
        return 0;
    }
    let prefix = format!("{RUN_ID_VAR}=");
    let leftovers: Vec<u32> = children
        .iter()
        .copied()
        .filter(|&pid| !orphans::has_exited(pid))
        .filter(|&pid| {
            let Some(env) = initial_environ(pid) else {
                return false;
            };
            env.split(|&b| b == 0)
                .filter_map(|v| v.strip_prefix(prefix.as_bytes()))
                .filter_map(|id| std::str::from_utf8(id).ok()?.parse::<u64>().ok())
                .any(|id| ended.contains(&id))
        })
        .collect();
    let mut tree = Tree::default();
    tree.add(&leftovers);
    tree.signal(Signal::KILL);
    leftovers.len()
}

/// The processes of one run that are still to be killed, held by pidfd.
#[derive(Default)]
pub(super) struct Tree {
    members: Vec<(u32, OwnedFd)>,
}

impl Tree {
    /// Finds the processes of run `run` whose shell is `shell` (alive or
    /// not): the shell's tree, the marked orphans and their trees, and the
    /// processes found by earlier calls and their trees. Processes already
    /// known are kept; new ones are opened by pidfd.
    pub(super) fn collect(&mut self, shell: Option<u32>, run: u64) {
        let mut roots: Vec<u32> = shell.into_iter().collect();
        roots.extend(self.members.iter().map(|(pid, _)| *pid));
        roots.extend(marked_orphans(run));
        self.add_trees(&roots, shell);
    }

    /// Adds the processes under `roots` (the roots too).
    fn add(&mut self, roots: &[u32]) {
        self.add_trees(roots, None);
    }

    /// Adds the processes under `roots`, but `skip`, opening each by pidfd.
    fn add_trees(&mut self, roots: &[u32], skip: Option<u32>) {
        let shell = skip;
        for pid in tree_under(roots) {
            if Some(pid) == shell || self.members.iter().any(|(p, _)| *p == pid) {
                continue;
            }
            let Some(id) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
                continue;
            };
            if let Ok(fd) = rustix::process::pidfd_open(id, PidfdFlags::empty()) {
                self.members.push((pid, fd));
            }
        }
    }

    /// Sends `signal` to every member (ESRCH from one already gone is
    /// ignored).
    pub(super) fn signal(&self, signal: Signal) {
        for (_, fd) in &self.members {
            let _ = rustix::process::pidfd_send_signal(fd, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Re-executes itself 300 times, then becomes `sleep 30`; `MARK` and
    /// `HOP` are in its environment all along.
    const HOP: &str = "n=$1; if [ \"$n\" -lt 300 ]; then exec /bin/sh -c \"$HOP\" hop $((n + 1)); fi; \
                       exec sleep 30";

    fn marked(env: &[u8]) -> bool {
        env.split(|&b| b == 0).any(|v| v == b"MARK=1")
    }

    /// Regression: an escapee read at its `exec sleep` showed an empty
    /// environment, seemed unmarked and outlived its check.
    #[test]
    fn the_environment_of_a_process_in_the_middle_of_an_exec_is_never_empty() {
        let mut child = Command::new("/bin/sh")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOP", HOP)
            .env("MARK", "1")
            .args(["-c", HOP, "hop", "0"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start /bin/sh");
        let pid = child.id();
        let until = Instant::now() + Duration::from_secs(60);
        // Until the first exec, it is a copy of this process.
        while !initial_environ(pid).is_some_and(|env| marked(&env)) {
            assert!(Instant::now() < until, "the shell never started");
        }
        let mut reads = 0;
        loop {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let env = initial_environ(pid).expect("the process is alive");
            assert!(
                marked(&env),
                "read {reads}: {:?}",
                String::from_utf8_lossy(&env)
            );
            reads += 1;
            if comm.trim() == "sleep" || Instant::now() >= until {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(reads > 300, "only {reads} reads");
    }

    #[test]
    fn an_empty_environment_is_empty_and_a_zombie_has_none() {
        let mut child = Command::new("/usr/bin/env")
            .args(["-i", "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start env");
        let pid = child.id();
        let until = Instant::now() + Duration::from_secs(30);
        while fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
            assert!(Instant::now() < until, "sleep never started");
        }
        let start = Instant::now();
        assert_eq!(initial_environ(pid), Some(Vec::new()));
        assert!(
            start.elapsed() < EXEC_WAIT,
            "waited for an exec that was over"
        );
        child.kill().unwrap();
        while environ_bounds(pid).is_some_and(|(state, _, _)| state != 'Z') {
            assert!(Instant::now() < until, "sleep never died");
        }
        assert_eq!(initial_environ(pid), None);
        child.wait().unwrap();
    }
}
