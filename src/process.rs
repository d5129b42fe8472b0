//! Child processes: `/bin/sh -c COMMAND` in its own process group, with a
//! deadline, captured output and no zombies.
//!
//! Shared by script checks and by promotion/demotion actions.

use std::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal (not by us).
    Signal(i32),
    /// It outran its deadline and its process group was killed.
    TimedOut(Duration),
    /// It could not be started; the reason.
    SpawnFailed(String),
}

impl Exit {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// The tail of its output (lossy UTF-8), at most `output_cap` bytes.
    pub output: String,
    /// Wall time from spawn to reaping.
    pub duration: Duration,
}

/// Runs `cmd` to completion or deadline. Blocks the calling thread.
pub fn run(cmd: &ShellCommand<'_>) -> Finished {
    let _ = cmd;
    todo!("process::run")
}
