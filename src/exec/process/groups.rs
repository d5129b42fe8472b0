//! Sets of running process groups that can be killed all at once: how
//! script checks are aborted at shutdown.
//!
//! A set is sharded by pid and a shard's lock is held only to push, mark or
//! remove one entry, never across a spawn, so runs start and end in
//! parallel. What keeps [`ProcessGroups::kill_all`] from missing a run that
//! is being spawned while it passes is a counter of calls: a run reads it
//! before spawning and again once registered, and kills its own group when
//! it changed in between (the kill came while it was starting).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustix::process::Signal;

use super::{Finished, ShellCommand, running, signal_group};

/// Shards of a set.
const SHARDS: usize = 16;

/// A set of running process groups that can be killed all at once.
///
/// A run started with [`ProcessGroups::run`] is registered from spawn until
/// its shell exits; [`ProcessGroups::kill_all`] sends SIGKILL to every
/// registered group. Usable in a `static`.
#[derive(Debug)]
pub struct ProcessGroups {
    /// Registered runs by `pid % SHARDS`: the shell's pid (= the group's
    /// id) and whether `kill_all` has killed it.
    shards: [Mutex<Vec<(u32, bool)>>; SHARDS],
    /// How many times `kill_all` was called.
    kills: AtomicU64,
}

impl Default for ProcessGroups {
    fn default() -> Self {
        ProcessGroups::new()
    }
}

/// What a run reads before it spawns: the number of `kill_all` calls.
#[derive(Debug, Clone, Copy)]
pub(super) struct Epoch(u64);

impl ProcessGroups {
    /// An empty set.
    pub const fn new() -> ProcessGroups {
        ProcessGroups {
            shards: [const { Mutex::new(Vec::new()) }; SHARDS],
            kills: AtomicU64::new(0),
        }
    }

    /// Like [`super::run`], registered in this set from spawn until the
    /// shell exits. Runs start in parallel. Returns the finished run and
    /// whether [`ProcessGroups::kill_all`] ended it (its exit is then
    /// usually `ChildExit::Signal(9)`).
    pub fn run(&self, cmd: &ShellCommand<'_>) -> (Finished, bool) {
        running::supervise(cmd, Some(self))
    }

    /// Sends SIGKILL to the process group of every run registered now, and
    /// returns how many there were. Each such run then returns at once,
    /// flagged as killed. A run is either registered before this call, or
    /// being spawned during it (it then kills itself once registered), or
    /// spawned after it; those spawned after it are not affected.
    pub fn kill_all(&self) -> usize {
        self.kills.fetch_add(1, Ordering::SeqCst);
        let mut killed = 0;
        for shard in &self.shards {
            let mut shard = lock(shard);
            for (pid, flag) in shard.iter_mut() {
                *flag = true;
                signal_group(*pid, Signal::KILL);
            }
            killed += shard.len();
        }
        killed
    }

    /// Number of runs registered now.
    pub fn running(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Read before a spawn, for [`ProcessGroups::register`].
    pub(super) fn epoch(&self) -> Epoch {
        Epoch(self.kills.load(Ordering::SeqCst))
    }

    /// Registers the run whose shell is `pid`, spawned after `epoch` was
    /// read. If `kill_all` was called since, the run is killed now, as if
    /// it had been registered in time.
    pub(super) fn register(&self, pid: u32, epoch: Epoch) {
        lock(self.shard(pid)).push((pid, false));
        if self.kills.load(Ordering::SeqCst) != epoch.0 {
            let mut shard = lock(self.shard(pid));
            if let Some(entry) = shard.iter_mut().find(|(p, _)| *p == pid) {
                entry.1 = true;
                signal_group(pid, Signal::KILL);
            }
        }
    }

    /// Removes `pid`; returns whether `kill_all` killed it. Call it before
    /// reaping the shell, so that `kill_all` never signals a process group
    /// id that may be reused.
    pub(super) fn deregister(&self, pid: u32) -> bool {
        let mut shard = lock(self.shard(pid));
        match shard.iter().position(|(p, _)| *p == pid) {
            Some(i) => shard.swap_remove(i).1,
            None => false,
        }
    }

    fn shard(&self, pid: u32) -> &Mutex<Vec<(u32, bool)>> {
        &self.shards[pid as usize % SHARDS]
    }
}

fn lock(shard: &Mutex<Vec<(u32, bool)>>) -> MutexGuard<'_, Vec<(u32, bool)>> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}
