//! Spawning one shell and supervising it to its end or its deadline.
//!
//! [`supervise`] is the whole life of one run: [`spawn`] (clean
//! environment, own process group, output pipe, registered as supervised),
//! then [`Run::watch`] (poll(2) on the pipe and a pidfd until the shell
//! exits or the deadline passes, SIGTERM to the whole tree at the deadline),
//! then [`Run::finish`] (SIGKILL to what remains, leftovers killed when asked,
//! the shell reaped, the pipe drained). The shell is reaped last, so that
//! its process group id cannot be reused while it is signalled.

use std::io::{self, PipeReader, Read as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal};

use super::groups::ProcessGroups;
use super::orphans::{self, Registration};
use super::tree::{RUN_ID_VAR, Tree};
use super::{
    ChildExit, Finished, Leftovers, SHELL, ShellCommand, environment, signal_group, to_exit,
};

/// How long output already in the pipe is read once the shell has exited,
/// at most. Bounds the run when a background process keeps writing.
const DRAIN_LIMIT: Duration = Duration::from_millis(100);

/// Longest sleep between two looks at the child when no pidfd is available
/// (kernels before 5.3, or a seccomp policy that forbids pidfd_open(2)).
const FALLBACK_TICK: Duration = Duration::from_millis(50);

/// Bytes read from the pipe per wake-up.
const CHUNK: usize = 16 * 1024;

/// The number of the latest run, for `HEARTBEAT_RUN_ID`.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// A spawned shell: its pipe, its registrations, and how to reach it.
struct Spawned {
    child: Child,
    reader: PipeReader,
    registration: Registration,
}

/// Starts the shell of run `run`; returns it, the read end of its output
/// pipe, which is non-blocking, and its entry in the registry of supervised
/// processes. Every write end we held is closed on return.
///
/// The shell is spawned and registered while holding the spawn gate
/// (shared with other spawns), and registered in `groups` after reading its
/// epoch (see [`ProcessGroups::kill_all`]).
fn spawn(
    cmd: &ShellCommand<'_>,
    groups: Option<&ProcessGroups>,
    run: u64,
) -> Result<Spawned, String> {
    let (reader, writer) = io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    rustix::io::ioctl_fionbio(&reader, true)
        .map_err(|e| format!("cannot make the pipe non-blocking: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("cannot duplicate the pipe: {e}"))?;
    let setup = environment::current();
    let mut command = Command::new(SHELL);
    match setup.file_limit {
        // posix_spawn(3) cannot set a limit in the child: the shell does,
        // then runs the command as `/bin/sh -c COMMAND` in the same process.
        Some(limit) => command
            .arg("-c")
            .arg(format!(
                "ulimit -S -n {limit} 2>/dev/null; exec {SHELL} -c \"$0\""
            ))
            .arg(cmd.command),
        None => command.arg("-c").arg(cmd.command),
    };
    command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0)
        .env_clear()
        .envs(setup.env.iter().map(|(k, v)| (k, v)))
        .env(RUN_ID_VAR, run.to_string())
        .envs(cmd.env.iter().map(|(k, v)| (k, v)));
    let epoch = groups.map(ProcessGroups::epoch);
    let (child, registration) = {
        let gate = orphans::spawning();
        let child = command.spawn().map_err(|e| format!("{SHELL}: {e}"))?;
        let registration = orphans::register(child.id(), &gate);
        (child, registration)
    };
    if let (Some(groups), Some(epoch)) = (groups, epoch) {
        groups.register(child.id(), epoch);
    }
    // `command` owns our copies of the write end: close them, or the pipe
    // never reaches end of file.
    drop(command);
    Ok(Spawned {
        child,
        reader,
        registration,
    })
}

/// One run between its spawn and its end.
struct Run<'a> {
    cmd: &'a ShellCommand<'a>,
    groups: Option<&'a ProcessGroups>,
    spawned: Spawned,
    /// The shell's pid, which is also its process group's id.
    pid: u32,
    /// Its `HEARTBEAT_RUN_ID`.
    run: u64,
    pidfd: Option<OwnedFd>,
    start: Instant,
    tail: Tail,
    pipe_open: bool,
    /// The shell has exited (it is a zombie until [`Run::finish`]).
    exited: bool,
    /// Set once the deadline has passed and SIGTERM has been sent.
    kill_at: Option<Instant>,
    /// What the deadline found of the tree, held by pidfd.
    tree: Tree,
}

/// Runs `cmd` (in `groups`, if given) and returns how it went and whether
/// [`ProcessGroups::kill_all`] ended it.
pub(super) fn supervise(
    cmd: &ShellCommand<'_>,
    groups: Option<&ProcessGroups>,
) -> (Finished, bool) {
    let start = Instant::now();
    let run = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    let spawned = match spawn(cmd, groups, run) {
        Ok(spawned) => spawned,
        Err(reason) => {
            let finished = Finished {
                exit: ChildExit::SpawnFailed(reason),
                output: String::new(),
                duration: start.elapsed(),
            };
            return (finished, false);
        }
    };
    let pid = spawned.child.id();
    // pidfd_open on a zombie works, so there is no race with a quick exit.
    let pidfd =
        rustix::process::pidfd_open(Pid::from_child(&spawned.child), PidfdFlags::empty()).ok();
    let mut run = Run {
        cmd,
        groups,
        spawned,
        pid,
        run,
        pidfd,
        start,
        tail: Tail::new(cmd.output_cap),
        pipe_open: true,
        exited: false,
        kill_at: None,
        tree: Tree::default(),
    };
    run.watch();
    run.finish()
}

impl Run<'_> {
    /// Follows the run until the shell has exited (and, after a timeout,
    /// the pipe is closed too), or until SIGKILL is due. Sends SIGTERM to
    /// the tree at the deadline.
    fn watch(&mut self) {
        let deadline = self.start.checked_add(self.cmd.timeout);
        loop {
            if !self.exited && orphans::has_exited(self.pid) {
                self.exited = true;
            }
            if self.exited && (self.kill_at.is_none() || !self.pipe_open) {
                return;
            }
            let now = Instant::now();
            let wake_at = match (self.kill_at, deadline) {
                (Some(kill_at), _) if now >= kill_at => return,
                (Some(kill_at), _) => kill_at,
                (None, Some(deadline)) if now >= deadline => {
                    self.signal_tree(Signal::TERM);
                    self.kill_at = Some(now.checked_add(self.cmd.kill_grace).unwrap_or(now));
                    continue;
                }
                (None, Some(deadline)) => deadline,
                (None, None) => now.checked_add(Duration::from_secs(3600)).unwrap_or(now),
            };
            // Once the shell has exited its pidfd stays readable: leave it out.
            let watch = if self.exited {
                None
            } else {
                self.pidfd.as_ref()
            };
            if wait(&self.spawned.reader, self.pipe_open, watch, wake_at - now) {
                self.pipe_open =
                    read_some(&mut self.spawned.reader, &mut self.tail) != Read::Closed;
            }
        }
    }

    /// Sends `signal` to the shell's process group and to every other
    /// process of the run's tree (found anew each time).
    fn signal_tree(&mut self, signal: Signal) {
        self.tree.collect(Some(self.pid), self.run);
        signal_group(self.pid, signal);
        self.tree.signal(signal);
    }

    /// Kills what must not outlive the run, reaps the shell, drains the
    /// pipe. Returns the finished run and whether `kill_all` ended it.
    fn finish(mut self) -> (Finished, bool) {
        let timed_out = self.kill_at.is_some();
        // The shell is not reaped yet: its process group id cannot have
        // been reused.
        if timed_out {
            self.signal_tree(Signal::KILL);
        } else if self.cmd.leftovers == Leftovers::Kill {
            // What stayed in the group dies now; what left it is found by
            // its mark at the next reaping pass (walking the tree here, on
            // every run, would cost more than the run).
            signal_group(self.pid, Signal::KILL);
            super::tree::ended(self.run);
        }
        // Out of the set before the shell is reaped, so that `kill_all`
        // never signals a process group id that may be reused.
        let killed_by_set = self.groups.is_some_and(|g| g.deregister(self.pid));
        let status = to_exit(self.spawned.child.wait());
        let exit = if timed_out {
            ChildExit::TimedOut(self.cmd.timeout)
        } else {
            status
        };
        // The shell is reaped now, on every path: its pid leaves the
        // registry, so that an orphan that reuses it is not passed over.
        drop(self.spawned.registration);

        // Read what is already in the pipe; do not wait for processes left
        // in the background, which may hold it open.
        let drained = Instant::now();
        while self.pipe_open && drained.elapsed() < DRAIN_LIMIT {
            match read_some(&mut self.spawned.reader, &mut self.tail) {
                Read::Data => {}
                Read::Empty => break,
                Read::Closed => self.pipe_open = false,
            }
        }
        let finished = Finished {
            exit,
            output: self.tail.into_string(),
            duration: self.start.elapsed(),
        };
        (finished, killed_by_set)
    }
}

/// The last `cap` bytes of a stream.
struct Tail {
    buf: Vec<u8>,
    cap: usize,
}

impl Tail {
    fn new(cap: usize) -> Tail {
        Tail {
            buf: Vec::new(),
            cap,
        }
    }

    fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        self.buf.extend_from_slice(data);
        // Trim now and then rather than on every read: amortised O(1).
        if self.buf.len() > self.cap.saturating_mul(2).max(CHUNK) {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
    }

    fn into_string(self) -> String {
        let start = self.buf.len().saturating_sub(self.cap);
        let mut tail = &self.buf[start..];
        if start > 0 {
            // Do not begin with the remains of a cut UTF-8 sequence.
            let partial = tail
                .iter()
                .take(3)
                .take_while(|b| (0x80..0xC0).contains(*b))
                .count();
            tail = &tail[partial..];
        }
        String::from_utf8_lossy(tail).into_owned()
    }
}

/// What one read from the pipe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Some bytes, kept in the tail.
    Data,
    /// Nothing for now (EAGAIN, EINTR).
    Empty,
    /// End of file: every write end is closed (or the pipe is broken).
    Closed,
}

/// Reads once from the non-blocking pipe into `tail`.
fn read_some(reader: &mut PipeReader, tail: &mut Tail) -> Read {
    let mut chunk = [0u8; CHUNK];
    match reader.read(&mut chunk) {
        Ok(0) => Read::Closed,
        Ok(n) => {
            tail.push(&chunk[..n]);
            Read::Data
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Read::Empty
        }
        Err(_) => Read::Closed,
    }
}

/// Waits up to `timeout` for the pipe (while `pipe_open`) and the pidfd (if
/// any); without a pidfd, wakes up at least every [`FALLBACK_TICK`].
/// Returns whether the pipe is readable.
fn wait(pipe: &PipeReader, pipe_open: bool, pidfd: Option<&OwnedFd>, timeout: Duration) -> bool {
    let timeout = match pidfd {
        Some(_) => timeout,
        None => timeout.min(FALLBACK_TICK),
    };
    let timespec = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::from(i32::MAX),
        tv_nsec: 0,
    });
    let mut fds = Vec::with_capacity(2);
    if pipe_open {
        fds.push(PollFd::from_borrowed_fd(pipe.as_fd(), PollFlags::IN));
    }
    if let Some(pidfd) = pidfd {
        fds.push(PollFd::from_borrowed_fd(pidfd.as_fd(), PollFlags::IN));
    }
    if poll(&mut fds, Some(&timespec)).is_err() {
        // EINTR, or ENOMEM: look at the child and try again.
        return false;
    }
    pipe_open && !fds[0].revents().is_empty()
}
