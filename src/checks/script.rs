//! Script checks: a shell command is healthy iff it exits 0 in time.
//!
//! The command runs through [`crate::exec::process`] like an action, with a short
//! kill grace so that no check outlives its timeout by much, and its last
//! line of output becomes part of the reason (`exit status 3: disk full`),
//! as with Nagios plugins and Consul script checks.
//!
//! Every running script check is registered in one process-wide
//! [`ProcessGroups`] set, so that the engine can kill them all at shutdown
//! with [`abort_all`] instead of waiting for their timeouts. Actions are not
//! in that set: at shutdown they keep their deadline.

use std::time::Duration;

use super::{Check, CheckResult};
use crate::exec::process::{ChildExit, Leftovers, ProcessGroups, ShellCommand};

/// Time between SIGTERM and SIGKILL when a script check times out.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// Bytes of output kept from a run; the reason uses its last line.
const OUTPUT_CAP: usize = 4 * 1024;

/// Longest output line quoted in a reason, in characters.
const REASON_LINE_CAP: usize = 200;

/// The process groups of every script check running in this process.
static RUNNING: ProcessGroups = ProcessGroups::new();

/// Kills (SIGKILL) the process group of every script check running now, at
/// once, and returns how many there were. Each of those checks returns
/// promptly with an unhealthy result whose reason is `aborted`.
///
/// For shutdown: stop starting checks first, then call this; a check that
/// starts afterwards runs normally. Promotion and demotion runs are not
/// affected.
pub fn abort_all() -> usize {
    RUNNING.kill_all()
}

/// Number of script checks running now in this process.
pub fn running() -> usize {
    RUNNING.running()
}

/// A check that runs `/bin/sh -c COMMAND` and passes iff it exits 0 within
/// its timeout.
#[derive(Debug, Clone)]
pub struct ScriptCheck {
    command: String,
    timeout: Duration,
}

impl ScriptCheck {
    /// A check running `command` (passed unchanged to `/bin/sh -c`) with
    /// the whole-check deadline `timeout`. At the deadline its process group
    /// gets SIGTERM, then SIGKILL [`KILL_GRACE`] later.
    pub fn new(command: String, timeout: Duration) -> ScriptCheck {
        ScriptCheck { command, timeout }
    }
}

impl Check for ScriptCheck {
    /// Runs the command once. Reasons: `exit status 0`,
    /// `exit status 3: <last non-empty line of output>`, `killed by signal
    /// 9`, `timed out after 2s`, `cannot start: …`, `aborted`.
    fn run(&self) -> CheckResult {
        let (finished, aborted) = RUNNING.run(&ShellCommand {
            command: &self.command,
            env: Vec::new(),
            timeout: self.timeout,
            kill_grace: KILL_GRACE,
            output_cap: OUTPUT_CAP,
            leftovers: Leftovers::Kill,
        });
        let reason = if aborted {
            "aborted".to_owned()
        } else {
            reason(&finished.exit, &finished.output)
        };
        CheckResult {
            healthy: !aborted && finished.exit.success(),
            reason,
            latency: finished.duration,
            certificate_expiry: None,
        }
    }
}

/// The reason for a finished run: the exit, and for a non-zero exit status
/// the last non-empty line of output.
fn reason(exit: &ChildExit, output: &str) -> String {
    match (exit, last_line(output)) {
        (ChildExit::Code(code), Some(line)) if *code != 0 => format!("{exit}: {line}"),
        _ => exit.to_string(),
    }
}

/// The last non-empty line of `output`, trimmed, control characters turned
/// into spaces, cut to [`REASON_LINE_CAP`] characters (with `…`).
fn last_line(output: &str) -> Option<String> {
    let line = output.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let mut quoted: String = line
        .chars()
        .take(REASON_LINE_CAP)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(REASON_LINE_CAP).is_some() {
        quoted.push('…');
    }
    Some(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_quotes_the_last_non_empty_line_on_failure_only() {
        let out = "first\n  disk full \r\n\n  \n";
        assert_eq!(reason(&ChildExit::Code(3), out), "exit status 3: disk full");
        assert_eq!(reason(&ChildExit::Code(0), out), "exit status 0");
        assert_eq!(reason(&ChildExit::Code(1), " \n"), "exit status 1");
        assert_eq!(reason(&ChildExit::Signal(9), out), "killed by signal 9");
        assert_eq!(
            reason(&ChildExit::TimedOut(Duration::from_secs(2)), out),
            "timed out after 2s"
        );
    }

    #[test]
    fn long_lines_are_cut_and_control_characters_blanked() {
        let long = "é".repeat(300);
        let line = last_line(&long).unwrap();
        assert_eq!(line.chars().count(), REASON_LINE_CAP + 1);
        assert!(line.ends_with('…'));
        assert_eq!(last_line("a\x1b[31mb").unwrap(), "a [31mb");
        assert_eq!(last_line(&"x".repeat(200)).unwrap(), "x".repeat(200));
    }
}
