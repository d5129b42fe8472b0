//! The registry of supervised children, and reaping the others.
//!
//! Every check and action process is started by this module's parent, and
//! stays in a registry of *supervised* processes from its spawn until its
//! supervisor has reaped it. [`reap_orphans`] relies on that registry: a
//! process that is PID 1 of its PID namespace, or a child subreaper
//! (prctl(2) `PR_SET_CHILD_SUBREAPER`), inherits the orphans of its
//! descendants (the background children of a hook, the grandchildren of a
//! script check whose group was killed), and must wait for them or they
//! stay zombies for ever (pid_namespaces(7)). It reaps those children, and
//! only those: the exit status of a supervised shell belongs to its
//! supervisor.
//!
//! The registry is sharded by pid, and a shard's lock is held only to push
//! or remove one pid: spawns and ends never wait behind one another. What
//! keeps the reaper from taking a shell that exits before its spawner has
//! registered it is a gate, a read-write lock that every spawn holds
//! *shared* from before the fork until the pid is registered, and that the
//! reaper holds *exclusively* only while it checks its candidates (zombies
//! it found beforehand) against the registry and waits for them.

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use rustix::process::{Pid, WaitId, WaitIdOptions, WaitOptions};

use super::{ChildExit, to_exit};

/// Shards of the registry: enough that two threads rarely meet on one.
const SHARDS: usize = 32;

/// Pids of the children spawned and not yet reaped by their supervisor, by
/// `pid % SHARDS`. A multiset: a pid reaped and reused by a new spawn before
/// its first entry is removed appears twice for a moment.
static SUPERVISED: [Mutex<Vec<u32>>; SHARDS] = [const { Mutex::new(Vec::new()) }; SHARDS];

/// Held shared by spawns until their child is registered, exclusively by
/// [`reap_orphans`] while it reaps.
static GATE: RwLock<()> = RwLock::new(());

fn shard(pid: u32) -> MutexGuard<'static, Vec<u32>> {
    SUPERVISED[pid as usize % SHARDS]
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn is_supervised(pid: u32) -> bool {
    shard(pid).contains(&pid)
}

/// Held by a spawn from before the fork until its child is registered.
pub(super) struct SpawnGate(#[allow(dead_code)] RwLockReadGuard<'static, ()>);

/// Opens the gate for one spawn (shared with every other spawn).
pub(super) fn spawning() -> SpawnGate {
    SpawnGate(GATE.read().unwrap_or_else(PoisonError::into_inner))
}

/// A child's entry in the registry, removed on drop: once its supervisor
/// has reaped it, or while unwinding, so that the reaper takes over a shell
/// whose supervisor is gone.
pub(super) struct Registration {
    pid: u32,
}

/// Registers `pid`; call it with the [`SpawnGate`] of its spawn still held.
pub(super) fn register(pid: u32, _gate: &SpawnGate) -> Registration {
    shard(pid).push(pid);
    Registration { pid }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut shard = shard(self.pid);
        if let Some(i) = shard.iter().position(|&p| p == self.pid) {
            shard.swap_remove(i);
        }
    }
}

/// A child that [`reap_orphans`] waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Its pid, as this process sees it.
    pub pid: u32,
    /// How it ended: [`ChildExit::Code`] or [`ChildExit::Signal`].
    pub exit: ChildExit,
}

/// Reaps the children of this process that have exited and that no
/// supervisor of this module is waiting for; returns them.
///
/// For a process that is PID 1 of its PID namespace or a child subreaper:
/// orphans are re-parented to it, and stay zombies until it waits for them
/// (pid_namespaces(7), prctl(2)). The children are listed from
/// `/proc/self/task/*/children`, or, where the kernel does not provide that
/// file, from the parent pid field of every `/proc/PID/stat` (proc(5)), and
/// those that have exited are noted without being reaped (waitid(2)
/// `WNOWAIT`). Then, with spawns held off (module documentation), each one
/// not in the registry of supervised processes is waited for with
/// `waitpid(pid, WNOHANG)` (waitpid(2)). A supervised shell is never
/// reaped here: its exit status stays its supervisor's.
///
/// First, the live children that a script check left behind after it
/// ended in time (marked with the run's `HEARTBEAT_RUN_ID`, out of its
/// process group) are killed with their trees; they are reaped by a later
/// call.
///
/// Only children started through this module are protected: a process
/// that calls this must start no child any other way.
///
/// A child that exits while the list is read may be missed; it is reaped by
/// the next call.
///
/// # Errors
/// When `/proc` cannot be read, or belongs to another PID namespace (its
/// pids would not be this process's); nothing is reaped then.
pub fn reap_orphans() -> io::Result<Vec<Reaped>> {
    let children = children()?;
    super::tree::kill_leftovers(&children);
    let candidates: Vec<u32> = children
        .into_iter()
        .filter(|&pid| has_exited(pid))
        .collect();
    let mut reaped = Vec::new();
    if candidates.is_empty() {
        return Ok(reaped);
    }
    let _gate = GATE.write().unwrap_or_else(PoisonError::into_inner);
    for pid in candidates {
        if is_supervised(pid) {
            continue;
        }
        let Some(id) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        // ECHILD: it was not our child after all (a listing that raced with
        // its exit, or with the reuse of its pid). Either way, not ours.
        if let Ok(Some((_, status))) = rustix::process::waitpid(Some(id), WaitOptions::NOHANG) {
            let status = ExitStatus::from_raw(status.as_raw());
            reaped.push(Reaped {
                pid,
                exit: to_exit(Ok(status)),
            });
        }
    }
    Ok(reaped)
}

/// Whether child `pid` has exited, without reaping it (waitid(2)
/// `WNOWAIT`). An error (not our child) counts as not exited.
pub(super) fn has_exited(pid: u32) -> bool {
    let Some(id) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    matches!(
        rustix::process::waitid(WaitId::Pid(id), options),
        Ok(Some(_))
    )
}

/// The pids of this process's children, running or zombie, as `/proc`
/// lists them (proc(5)).
pub(super) fn children() -> io::Result<Vec<u32>> {
    // readlink("/proc/self") is the caller's pid in the PID namespace of the
    // procfs mount: it must be ours for the listed pids to be ours.
    let own = std::process::id();
    let link = fs::read_link("/proc/self")?;
    if link.to_str() != Some(own.to_string().as_str()) {
        return Err(io::Error::other(format!(
            "/proc belongs to another PID namespace (/proc/self is {}, the pid is {own})",
            link.display()
        )));
    }
    match super::tree::children_of(own)? {
        Some(children) => Ok(children),
        None => children_from_stat(own),
    }
}

/// The processes whose parent is `parent`, from the fourth field (ppid) of
/// every `/proc/PID/stat`.
pub(super) fn children_from_stat(parent: u32) -> io::Result<Vec<u32>> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // A process that is gone since the directory was read has no stat.
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
            if parent_in_stat(&stat) == Some(parent) {
                children.push(pid);
            }
        }
    }
    Ok(children)
}

/// The ppid in the text of a `/proc/PID/stat`: the second field after the
/// command name, which is in parentheses and may itself hold spaces and
/// parentheses (hence the last `)`).
fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::{Leftovers, ShellCommand, run};
    use super::*;
    use crate::test_support::{child, child_lines, is_child};
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::Duration;

    /// Whether `pid` is a zombie, from the state field of its stat.
    fn is_zombie(pid: u32) -> bool {
        crate::test_support::proc::stat(pid as i32).is_some_and(|p| p.state == 'Z')
    }

    #[test]
    fn the_parent_is_read_after_the_last_parenthesis_of_the_name() {
        assert_eq!(parent_in_stat("42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_in_stat("42 (a) b) (c) Z 1 42 42 0 -1"), Some(1));
        assert_eq!(parent_in_stat("42 (sh"), None);
        assert_eq!(parent_in_stat("42 (sh) S"), None);
    }

    /// Read-only: other tests of this process start children too, so this
    /// one only looks for its own.
    #[test]
    fn children_are_listed_running_and_as_zombies_by_both_methods() {
        let own = std::process::id();
        let listings = || {
            let mut all = vec![("children()", children().unwrap())];
            all.push(("stat", children_from_stat(own).unwrap()));
            if let Some(from_tasks) = super::super::tree::children_of(own).unwrap() {
                all.push(("task files", from_tasks));
            }
            all
        };
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id();
        for (how, list) in listings() {
            assert!(list.contains(&pid), "{how}: running {pid} not in {list:?}");
        }
        assert!(!has_exited(pid));
        sleeper.kill().unwrap();
        // Waits for the exit without reaping (waitid(2) WNOWAIT).
        rustix::process::waitid(
            WaitId::Pid(Pid::from_child(&sleeper)),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        )
        .unwrap();
        assert!(is_zombie(pid));
        assert!(has_exited(pid));
        for (how, list) in listings() {
            assert!(list.contains(&pid), "{how}: zombie {pid} not in {list:?}");
        }
        sleeper.wait().unwrap();
        assert!(!children().unwrap().contains(&pid));
    }

    /// Runs `child_reaper_alongside_supervised_runs` in a process of its
    /// own: the reaper takes every unsupervised child of its process, which
    /// here would include other tests' children.
    #[test]
    fn the_reaper_takes_orphans_and_never_a_supervised_exit_status() {
        let name = "exec::process::orphans::tests::child_reaper_alongside_supervised_runs";
        let out = child(name).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let said = child_lines(&out.stdout);
        assert_eq!(said.last().map(String::as_str), Some("done"), "{stdout}");
    }

    /// A reaper passing over and over while four threads run commands
    /// that exit 3 and leave an orphan, and a few that time out with a
    /// background grandchild. This process is a subreaper (prctl(2)
    /// `PR_SET_CHILD_SUBREAPER`), so the orphans come to it as they come to
    /// PID 1. Every run must get its own exit status; the reaper must get
    /// every orphan and never a shell.
    #[test]
    #[ignore = "run by the_reaper_takes_orphans_and_never_a_supervised_exit_status"]
    fn child_reaper_alongside_supervised_runs() {
        if !is_child("exec::process::orphans::tests::child_reaper_alongside_supervised_runs") {
            return;
        }
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let quick = ShellCommand {
            command: "sleep 0.01 >/dev/null 2>&1 & exit 3",
            env: Vec::new(),
            timeout: Duration::from_secs(10),
            kill_grace: Duration::from_secs(1),
            output_cap: 1024,
            leftovers: Leftovers::Keep,
        };
        let hung = ShellCommand {
            command: "sleep 30 & sleep 30",
            timeout: Duration::from_millis(50),
            ..quick.clone()
        };
        let stop = AtomicBool::new(false);
        let (exits, reaped) = thread::scope(|s| {
            let reaper = s.spawn(|| {
                let mut reaped = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    reaped.extend(reap_orphans().unwrap());
                    thread::yield_now();
                }
                reaped
            });
            let runners: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut exits: Vec<ChildExit> = (0..50).map(|_| run(&quick).exit).collect();
                        exits.push(run(&hung).exit);
                        exits
                    })
                })
                .collect();
            let exits: Vec<ChildExit> = runners
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect();
            // The last orphans exit after their shells: wait for them.
            crate::test_support::poll::wait_until(Duration::from_secs(10), || {
                children().unwrap().is_empty()
            });
            stop.store(true, Ordering::Relaxed);
            (exits, reaper.join().unwrap())
        });

        let timed_out = ChildExit::TimedOut(Duration::from_millis(50));
        let wrong: Vec<&ChildExit> = exits
            .iter()
            .filter(|e| **e != ChildExit::Code(3) && **e != timed_out)
            .collect();
        assert!(wrong.is_empty(), "runs that lost their exit: {wrong:?}");
        assert_eq!(exits.iter().filter(|e| **e == timed_out).count(), 4);
        assert_eq!(children().unwrap(), Vec::<u32>::new(), "left unreaped");
        // One `sleep 0.01` per quick run, which exits 0; the sleeps of the
        // hung runs die of SIGTERM or SIGKILL. A shell exits 3 or dies of
        // its group's SIGTERM: none may be here.
        let finished = reaped
            .iter()
            .filter(|r| r.exit == ChildExit::Code(0))
            .count();
        assert_eq!(finished, 200, "{reaped:?}");
        let other: Vec<&Reaped> = reaped
            .iter()
            .filter(|r| !matches!(r.exit, ChildExit::Code(0) | ChildExit::Signal(9 | 15)))
            .collect();
        assert!(other.is_empty(), "not orphans: {other:?}");
        println!("child: done");
    }
}
