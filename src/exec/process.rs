//! Child processes: `/bin/sh -c COMMAND` in its own process group, with a
//! deadline, captured output and no zombies.
//!
//! Shared by script checks and by promotion/demotion actions. One thread
//! supervises one child without helper threads or busy polling: it sleeps in
//! poll(2) on the read end of the output pipe and on a pidfd (pidfd_open(2))
//! that turns readable when the shell exits. On the deadline the whole
//! process group gets SIGTERM, then SIGKILL after a grace period, as
//! timeout(1) and init systems do. The shell is always reaped.
//!
//! A command that leaves a background process behind (`daemon &`) is not
//! waited for: once the shell has exited, whatever output is already in the
//! pipe is read and the run ends, even though the background process still
//! holds the pipe open. It is left running, unless the run had timed out,
//! but its output pipe is closed: later writes to it fail with EPIPE (or
//! SIGPIPE, pipe(7)). A hook that starts a long-running process should
//! redirect its output, as in `server >/dev/null 2>&1 &`.
//!
//! [`ProcessGroups`] tracks running process groups so that they can all be
//! killed at once, which is how script checks are aborted at shutdown.
//!
//! Every check and action process is started here, and stays in a registry
//! of *supervised* processes from its spawn until its supervisor has
//! reaped it. [`reap_orphans`] relies on that registry: a process that is PID 1 of
//! its PID namespace inherits every orphan in it (the background children of
//! a hook, the grandchildren of a script check whose group was killed), and
//! must wait for them or they stay zombies for ever (pid_namespaces(7)). It
//! reaps those children, and only those: the exit status of a supervised
//! shell belongs to its supervisor.

use std::fmt;
use std::fs;
use std::io::{self, PipeReader, Read as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitOptions};

use crate::model::short_duration;

/// The shell every command runs under, as `/bin/sh -c COMMAND`.
pub const SHELL: &str = "/bin/sh";

/// How long output already in the pipe is read once the shell has exited,
/// at most. Bounds the run when a background process keeps writing.
const DRAIN_LIMIT: Duration = Duration::from_millis(100);

/// Longest sleep between two looks at the child when no pidfd is available
/// (kernels before 5.3, or a seccomp policy that forbids pidfd_open(2)).
const FALLBACK_TICK: Duration = Duration::from_millis(50);

/// Bytes read from the pipe per wake-up.
const CHUNK: usize = 16 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct ShellCommand<'a> {
    /// The command text, passed unchanged to `/bin/sh -c`.
    pub command: &'a str,
    /// Variables added to the inherited environment.
    pub env: Vec<(&'static str, String)>,
    /// Deadline, from spawn. When it passes the whole process group gets
    /// SIGTERM, then SIGKILL after `kill_grace`.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// At most this many bytes of output (stdout and stderr interleaved)
    /// are kept: the last ones.
    pub output_cap: usize,
}

/// How a child process ended.
///
/// Its [`Display`](fmt::Display) form is the phrase used in logs and check
/// reasons: `exit status 3`, `killed by signal 9`, `timed out after 2s`,
/// `cannot start: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal (not by us).
    Signal(i32),
    /// It outran its deadline and its process group was killed.
    TimedOut(Duration),
    /// It could not be started; the reason.
    SpawnFailed(String),
}

impl ChildExit {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        *self == ChildExit::Code(0)
    }
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildExit::Code(code) => write!(f, "exit status {code}"),
            ChildExit::Signal(signal) => write!(f, "killed by signal {signal}"),
            ChildExit::TimedOut(after) => write!(f, "timed out after {}", short_duration(*after)),
            ChildExit::SpawnFailed(reason) => write!(f, "cannot start: {reason}"),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: ChildExit,
    /// The tail of its output (lossy UTF-8), at most `output_cap` bytes.
    pub output: String,
    /// Wall time from spawn to reaping.
    pub duration: Duration,
}

/// Runs `cmd` to completion or deadline. Blocks the calling thread.
///
/// The command runs as `/bin/sh -c COMMAND` with stdin `/dev/null`, stdout
/// and stderr on one pipe, in a new process group whose id is the shell's
/// pid. The call returns:
/// - when the shell exits, after reading the output already in the pipe
///   (processes it left in the background are not waited for);
/// - on the deadline, after SIGTERM to the process group, then SIGKILL to
///   the group once the shell has exited and the pipe is closed, or at the
///   latest `kill_grace` after the SIGTERM, and after reaping the shell.
///   The exit is then [`ChildExit::TimedOut`] with `cmd.timeout`.
///
/// Never panics; a failure to start (no `/bin/sh`, a NUL byte in the command
/// or in a variable, no file descriptors left) is [`ChildExit::SpawnFailed`].
pub fn run(cmd: &ShellCommand<'_>) -> Finished {
    supervise(cmd, None).0
}

/// A set of running process groups that can be killed all at once.
///
/// A run started with [`ProcessGroups::run`] is registered from spawn until
/// its shell exits; [`ProcessGroups::kill_all`] sends SIGKILL to every
/// registered group. Usable in a `static`.
#[derive(Debug, Default)]
pub struct ProcessGroups {
    /// Registered runs: the shell's pid (= the group's id) and whether
    /// `kill_all` has killed it.
    running: Mutex<Vec<(u32, bool)>>,
}

impl ProcessGroups {
    /// An empty set.
    pub const fn new() -> ProcessGroups {
        ProcessGroups {
            running: Mutex::new(Vec::new()),
        }
    }

    /// Like [`run`], registered in this set from spawn until the shell
    /// exits. Spawns hold the set's lock, so they are serialised. Returns
    /// the finished run and whether [`ProcessGroups::kill_all`] ended it
    /// (its exit is then usually `ChildExit::Signal(9)`).
    pub fn run(&self, cmd: &ShellCommand<'_>) -> (Finished, bool) {
        supervise(cmd, Some(self))
    }

    /// Sends SIGKILL to the process group of every run registered now, and
    /// returns how many there were. Each such run then returns at once,
    /// flagged as killed. A run is either registered before this call or
    /// spawned after it; those spawned after it are not affected.
    pub fn kill_all(&self) -> usize {
        let mut running = self.lock();
        for (pid, killed) in running.iter_mut() {
            *killed = true;
            signal_group(*pid, Signal::KILL);
        }
        running.len()
    }

    /// Number of runs registered now.
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(u32, bool)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes `pid`; returns whether `kill_all` killed it.
    fn deregister(&self, pid: u32) -> bool {
        let mut running = self.lock();
        match running.iter().position(|(p, _)| *p == pid) {
            Some(i) => running.swap_remove(i).1,
            None => false,
        }
    }
}

/// Pids of the children spawned by [`spawn`] and not yet reaped by their
/// supervisor. A multiset: a pid reaped and reused by a new spawn before
/// its first entry is removed appears twice for a moment.
static SUPERVISED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn supervised() -> MutexGuard<'static, Vec<u32>> {
    SUPERVISED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A child's entry in [`SUPERVISED`], removed on drop: once its supervisor
/// has reaped it, or while unwinding, so that the reaper takes over a shell
/// whose supervisor is gone.
struct Registration {
    pid: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut supervised = supervised();
        if let Some(i) = supervised.iter().position(|&p| p == self.pid) {
            supervised.swap_remove(i);
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
/// For a process that is PID 1 of its PID namespace: the orphans of the
/// namespace are re-parented to it, and stay zombies until it waits for
/// them (pid_namespaces(7)). The children are listed from
/// `/proc/self/task/*/children`, or, where the kernel does not provide that
/// file, from the parent pid field of every `/proc/PID/stat` (proc(5)). Each
/// one that is not in the registry of supervised processes is waited for
/// with `waitpid(pid, WNOHANG)` (waitpid(2)): a zombie is reaped, a running
/// process left alone. The registry's lock is held throughout, and a shell
/// is spawned and registered under the same lock, so a supervised shell is
/// never reaped here: its exit status stays its supervisor's.
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
    let supervised = supervised();
    let children = children()?;
    let mut reaped = Vec::new();
    for pid in children {
        if supervised.contains(&pid) {
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

/// The pids of this process's children, running or zombie, as `/proc`
/// lists them (proc(5)).
fn children() -> io::Result<Vec<u32>> {
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
    match children_from_task_files()? {
        Some(children) => Ok(children),
        None => children_from_stat(own),
    }
}

/// The children of every thread, from `/proc/self/task/TID/children`, or
/// `None` when the kernel does not provide that file (it needs
/// `CONFIG_PROC_CHILDREN`). A child belongs to the thread that started it,
/// so every thread's file is read.
fn children_from_task_files() -> io::Result<Option<Vec<u32>>> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc/self/task")? {
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

/// The processes whose parent is `parent`, from the fourth field (ppid) of
/// every `/proc/PID/stat`.
fn children_from_stat(parent: u32) -> io::Result<Vec<u32>> {
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

/// Starts the shell; returns it, the read end of its output pipe, which is
/// non-blocking, and its entry in the registry of supervised processes.
/// Every write end we held is closed on return.
///
/// The shell is spawned and registered under the registry's lock, which
/// [`reap_orphans`] holds while it reaps: a shell that exits at once is
/// never seen there as a zombie nobody supervises.
fn spawn(cmd: &ShellCommand<'_>) -> Result<(Child, PipeReader, Registration), String> {
    let (reader, writer) = io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    rustix::io::ioctl_fionbio(&reader, true)
        .map_err(|e| format!("cannot make the pipe non-blocking: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("cannot duplicate the pipe: {e}"))?;
    let mut command = Command::new(SHELL);
    command
        .arg("-c")
        .arg(cmd.command)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0)
        // systemd's readiness socket is heartbeat's to speak on: a hook or
        // check that ran `systemd-notify` would otherwise report for it.
        .env_remove("NOTIFY_SOCKET")
        .envs(cmd.env.iter().map(|(k, v)| (k, v)));
    let (child, registration) = {
        let mut supervised = supervised();
        let child = command.spawn().map_err(|e| format!("{SHELL}: {e}"))?;
        let pid = child.id();
        supervised.push(pid);
        (child, Registration { pid })
    };
    // `command` owns our copies of the write end: close them, or the pipe
    // never reaches end of file.
    drop(command);
    Ok((child, reader, registration))
}

/// Sends `signal` to process group `pgid`, ignoring errors: the group may be
/// gone already (ESRCH).
fn signal_group(pgid: u32, signal: Signal) {
    if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pgid, signal);
    }
}

/// Whether `child` has exited, without reaping it (waitid(2) `WNOWAIT`).
/// An error (no such child) counts as exited, so that the caller goes on to
/// reap it and learns the error there.
fn has_exited(child: &Child) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    !matches!(
        rustix::process::waitid(WaitId::Pid(Pid::from_child(child)), options),
        Ok(None)
    )
}

fn to_exit(status: io::Result<ExitStatus>) -> ChildExit {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ChildExit::Code(code),
            (None, Some(signal)) => ChildExit::Signal(signal),
            (None, None) => ChildExit::Code(status.into_raw()),
        },
        Err(e) => ChildExit::SpawnFailed(format!("lost track of {SHELL}: {e}")),
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

fn supervise(cmd: &ShellCommand<'_>, groups: Option<&ProcessGroups>) -> (Finished, bool) {
    let start = Instant::now();
    // Spawn and register under the set's lock: `kill_all` then either comes
    // before the spawn or finds the run registered.
    let spawned = match groups {
        Some(groups) => {
            let mut running = groups.lock();
            let spawned = spawn(cmd);
            if let Ok((child, _, _)) = &spawned {
                running.push((child.id(), false));
            }
            spawned
        }
        None => spawn(cmd),
    };
    let (mut child, mut reader, registration) = match spawned {
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
    let pid = child.id();
    // Taken out of the registry before the shell is reaped, so that
    // `kill_all` never signals a process group id that may be reused.
    let mut killed_by_set = false;
    let mut reap = |child: &mut Child| {
        if let Some(groups) = groups {
            killed_by_set = groups.deregister(pid);
        }
        to_exit(child.wait())
    };
    // pidfd_open on a zombie works, so there is no race with a quick exit.
    let pidfd = rustix::process::pidfd_open(Pid::from_child(&child), PidfdFlags::empty()).ok();
    let deadline = start.checked_add(cmd.timeout);
    let mut tail = Tail::new(cmd.output_cap);
    let mut pipe_open = true;
    let mut exit: Option<ChildExit> = None;
    // Set once the deadline has passed and SIGTERM has been sent.
    let mut kill_at: Option<Instant> = None;

    loop {
        if exit.is_none() && has_exited(&child) {
            exit = Some(reap(&mut child));
        }
        match (&exit, kill_at) {
            (Some(_), None) => break,
            (Some(_), Some(_)) if !pipe_open => break,
            _ => {}
        }
        let now = Instant::now();
        let wake_at = match (kill_at, deadline) {
            (Some(kill_at), _) if now >= kill_at => break,
            (Some(kill_at), _) => kill_at,
            (None, Some(deadline)) if now >= deadline => {
                signal_group(pid, Signal::TERM);
                kill_at = Some(now.checked_add(cmd.kill_grace).unwrap_or(now));
                continue;
            }
            (None, Some(deadline)) => deadline,
            (None, None) => now.checked_add(Duration::from_secs(3600)).unwrap_or(now),
        };
        // Once the shell is reaped its pidfd stays readable: leave it out.
        let watch = if exit.is_none() { pidfd.as_ref() } else { None };
        if wait(&reader, pipe_open, watch, wake_at - now) {
            pipe_open = read_some(&mut reader, &mut tail) != Read::Closed;
        }
    }

    if kill_at.is_some() {
        // Timed out. Whatever is left of the group got SIGTERM and had its
        // grace (or the shell and every holder of the pipe are gone): kill
        // it, and reap the shell if it has not exited yet.
        signal_group(pid, Signal::KILL);
        if exit.is_none() {
            reap(&mut child);
        }
        exit = Some(ChildExit::TimedOut(cmd.timeout));
    }
    // The shell is reaped now, on every path: its pid leaves the registry,
    // so that an orphan that reuses it is not passed over.
    drop(registration);

    // Read what is already in the pipe; do not wait for processes left in
    // the background, which may hold it open.
    let drained = Instant::now();
    while pipe_open && drained.elapsed() < DRAIN_LIMIT {
        match read_some(&mut reader, &mut tail) {
            Read::Data => {}
            Read::Empty => break,
            Read::Closed => pipe_open = false,
        }
    }

    let finished = Finished {
        exit: exit.unwrap_or(ChildExit::Code(-1)),
        output: tail.into_string(),
        duration: start.elapsed(),
    };
    (finished, killed_by_set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{child, child_lines, is_child};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

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
            if let Some(from_tasks) = children_from_task_files().unwrap() {
                all.push(("task files", from_tasks));
            }
            all
        };
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id();
        for (how, list) in listings() {
            assert!(list.contains(&pid), "{how}: running {pid} not in {list:?}");
        }
        sleeper.kill().unwrap();
        // Waits for the exit without reaping (waitid(2) WNOWAIT).
        rustix::process::waitid(
            WaitId::Pid(Pid::from_child(&sleeper)),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        )
        .unwrap();
        assert!(is_zombie(pid));
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
        let out = child("exec::process::tests::child_reaper_alongside_supervised_runs")
            .output()
            .unwrap();
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
        if !is_child("exec::process::tests::child_reaper_alongside_supervised_runs") {
            return;
        }
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let quick = ShellCommand {
            command: "sleep 0.01 >/dev/null 2>&1 & exit 3",
            env: Vec::new(),
            timeout: Duration::from_secs(10),
            kill_grace: Duration::from_secs(1),
            output_cap: 1024,
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
