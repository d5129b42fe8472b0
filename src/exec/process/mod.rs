//! Child processes: `/bin/sh -c COMMAND` in its own process group, with a
//! clean environment, a deadline, captured output, and nothing left behind.
//!
//! Shared by script checks and by promotion/demotion actions. One concern
//! per file:
//!
//! - [`running`](self::run): spawning one shell and supervising it. One
//!   thread supervises one child without helper threads or busy polling:
//!   it sleeps in poll(2) on the read end of the output pipe and on a pidfd
//!   (pidfd_open(2)) that turns readable when the shell exits. On the
//!   deadline the whole process tree gets SIGTERM, then SIGKILL after a
//!   grace period, as timeout(1) and init systems do. The shell is always
//!   reaped.
//! - `tree`: finding and killing what a run left behind, including
//!   descendants that left its process group (`setsid`), with heartbeat as
//!   their subreaper ([`become_subreaper`]).
//! - `groups`: [`ProcessGroups`], sets of running process groups that can
//!   all be killed at once, which is how script checks are aborted at
//!   shutdown.
//! - `orphans`: the registry of *supervised* children and [`reap_orphans`]
//!   for the others.
//! - `environment`: what a child inherits ([`configure_children`]): a
//!   clean environment and the launcher's open-file limit.
//!
//! Starting a child never waits behind another start or end: the
//! registries are sharded and held only for a push or a removal, never
//! across fork and exec; only [`reap_orphans`] excludes spawns, for the
//! few microseconds it takes to check its candidates.
//!
//! A command that leaves a background process behind (`daemon &`) is not
//! waited for: once the shell has exited, whatever output is already in the
//! pipe is read and the run ends, even though the background process still
//! holds the pipe open. Whether it is left running is the caller's choice
//! ([`ShellCommand::leftovers`]); if it is, its output pipe is closed:
//! later writes to it fail with EPIPE (or SIGPIPE, pipe(7)). A hook that
//! starts a long-running process should redirect its output, as in `server
//! >/dev/null 2>&1 &`.

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use crate::model::short_duration;

mod environment;
mod groups;
mod orphans;
mod running;
mod tree;

pub use environment::{
    ChildSetup, DEFAULT_PATH, EnvPolicy, configure_children, current_user, environment_for,
};
pub use groups::ProcessGroups;
pub use orphans::{Reaped, reap_orphans};
pub use tree::become_subreaper;

/// The shell every command runs under, as `/bin/sh -c COMMAND`.
pub const SHELL: &str = "/bin/sh";

/// What to run.
#[derive(Debug, Clone)]
pub struct ShellCommand<'a> {
    /// The command text, passed unchanged to `/bin/sh -c`.
    pub command: &'a str,
    /// Variables added to the clean environment every child gets (see
    /// [`configure_children`]); they win over it.
    pub env: Vec<(&'static str, String)>,
    /// Deadline, from spawn. When it passes the whole process tree gets
    /// SIGTERM, then SIGKILL after `kill_grace`.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// At most this many bytes of output (stdout and stderr interleaved)
    /// are kept: the last ones.
    pub output_cap: usize,
    /// What happens to processes the shell left running when it exits in
    /// time. (At the deadline everything is killed, whatever this says.)
    pub leftovers: Leftovers,
}

/// What becomes of the processes a shell leaves behind when it exits
/// before its deadline (`server &`, `sleep 100 & echo up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// Left running: a hook may start a service that way.
    Keep,
    /// Killed (SIGKILL) as soon as the shell has exited, descendants that
    /// left the process group included: a script check is a probe, and
    /// nothing it started has business running once it has its result.
    Kill,
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
    /// It outran its deadline and its process tree was killed.
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
/// pid, with the environment and open-file limit of [`configure_children`]
/// and the variables of `cmd.env`. The call returns:
/// - when the shell exits, after reading the output already in the pipe
///   (processes it left in the background are not waited for; they are
///   killed or kept as `cmd.leftovers` says);
/// - on the deadline, after SIGTERM to the process group and to every
///   descendant of the shell (those that called `setsid` too), then
///   SIGKILL to all of them once the shell has exited and the pipe is
///   closed, or at the latest `kill_grace` after the SIGTERM, and after
///   reaping the shell. The exit is then [`ChildExit::TimedOut`] with
///   `cmd.timeout`.
///
/// Never panics; a failure to start (no `/bin/sh`, a NUL byte in the command
/// or in a variable, no file descriptors left) is [`ChildExit::SpawnFailed`].
pub fn run(cmd: &ShellCommand<'_>) -> Finished {
    running::supervise(cmd, None).0
}

/// Sends `signal` to process group `pgid`, ignoring errors: the group may be
/// gone already (ESRCH).
fn signal_group(pgid: u32, signal: Signal) {
    if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pgid, signal);
    }
}

/// The [`ChildExit`] of a wait status.
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
