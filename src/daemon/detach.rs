//! Detaching from the terminal (`-d`, `daemonize = yes`), the SysV way of
//! daemon(7), with a start-up report back to the launching command.
//!
//! [`detach`] forks; the original process (the *launcher*) stays in the
//! foreground and waits on a pipe until the daemon says it is ready or why
//! it is not. So `heartbeat -d` exits 0 only once the daemon really runs,
//! and a start-up error (a port in use, a hook directory missing) is
//! printed on the terminal with a non-zero status, as init scripts and
//! operators expect. The daemon side runs `setsid(2)` and forks again, so
//! that it is not a session leader and can never acquire a controlling
//! terminal, then changes to `/`, sets the umask to 022, clears the signal
//! mask and restores signals ignored by whoever started it, and reads
//! stdin from `/dev/null`. Its stdout and stderr stay on the terminal until
//! [`Detached::ready`], so that anything it prints while starting is seen,
//! and go to `/dev/null` from then on.
//!
//! The current directory becomes `/`: resolve relative paths (the
//! configuration file, the pidfile, the log file) before calling
//! [`detach`]. Also call it before any thread exists: `fork(2)` copies only
//! the calling thread, and it refuses to run otherwise.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid};

use crate::exit::Exit;

/// Exit status when the daemon died before reporting (`EX_SOFTWARE` in
/// `sysexits.h`).
const EX_SOFTWARE: i32 = Exit::Software as i32;

/// Exit status when an OS call needed to detach failed (`EX_OSERR` in
/// `sysexits.h`).
const EX_OSERR: i32 = Exit::OsErr as i32;

/// Why the process could not detach, or could not tell the launcher it is
/// ready. Every case is the operating system's refusal: exit status 71
/// (`EX_OSERR`).
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    /// A second thread exists: `fork(2)` would copy only the caller.
    #[error(
        "cannot detach: {0} threads are running; detaching must happen before any thread starts"
    )]
    Threads(usize),
    /// The start-up pipe cannot be made.
    #[error("cannot detach: cannot create a pipe")]
    Pipe(#[source] nix::Error),
    /// The first `fork(2)` failed.
    #[error("cannot detach: cannot fork")]
    Fork(#[source] nix::Error),
    /// stdout and stderr cannot be pointed at `/dev/null`.
    #[error("cannot redirect output to /dev/null")]
    DevNull(#[source] io::Error),
}

impl DetachError {
    /// The exit status: always [`Exit::OsErr`] (71).
    pub fn exit(&self) -> Exit {
        Exit::OsErr
    }
}

/// The daemon's end of the start-up pipe. Report exactly once, with
/// [`Detached::ready`] or [`Detached::fail`]; dropping it without a report
/// tells the launcher that the daemon died during start-up (it exits 70).
#[derive(Debug)]
pub struct Detached {
    /// Write end of the pipe to the launcher (`O_CLOEXEC`: checks and hooks
    /// never inherit it, or they would keep the launcher waiting).
    pipe: File,
}

/// Detaches the process from its terminal and session (daemon(7), "SysV
/// daemons").
///
/// In the launcher, this never returns: it waits for the daemon's report,
/// prints a failure message to stderr, and exits with 0 (ready), the
/// daemon's status code (failed), or 70 (`EX_SOFTWARE`: the daemon exited
/// without reporting). Its destructors do not run, so a [`crate::daemon::pidfile::Pidfile`]
/// it holds is not removed; the daemon inherits the lock.
///
/// In the daemon it returns the handle to report with. A failure of the
/// daemon-side steps (`setsid`, the second fork, `chdir`) is reported to
/// the launcher (exit 71, `EX_OSERR`) and ends the daemon.
///
/// # Errors
/// In the original process, before anything was forked: when more than
/// one thread is running, or the pipe or the first fork cannot be made.
pub fn detach() -> Result<Detached, DetachError> {
    if let Some(threads) = thread_count().filter(|&n| n > 1) {
        return Err(DetachError::Threads(threads));
    }
    // Buffered output would otherwise be written twice, by both processes.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(DetachError::Pipe)?;
    // SAFETY: the process has a single thread (checked above), so the child
    // is a complete copy and may run any code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(DetachError::Fork(e)),
        Ok(ForkResult::Parent { child }) => {
            drop(write);
            wait_for_report(File::from(read), child)
        }
        Ok(ForkResult::Child) => {
            drop(read);
            Ok(become_daemon(Detached {
                pipe: File::from(write),
            }))
        }
    }
}

impl Detached {
    /// Tells the launcher that start-up succeeded, so that it exits 0, and
    /// points stdout and stderr at `/dev/null`.
    ///
    /// Call it when the daemon is set up and about to run (pidfile written,
    /// privileges dropped, sockets bound).
    ///
    /// # Errors
    /// When `/dev/null` cannot be opened or duplicated; the launcher is then
    /// told of the failure (exit 71) instead, and the daemon should exit.
    pub fn ready(mut self) -> Result<(), DetachError> {
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        if let Err(e) = redirect_output_to_dev_null() {
            let message = format!("heartbeat: cannot redirect output to /dev/null: {e}");
            self.send(&format!("fail {EX_OSERR}\n{message}"));
            return Err(DetachError::DevNull(e));
        }
        // The launcher may be gone (killed by ^C): nothing to do about it.
        self.send("ready\n");
        Ok(())
    }

    /// Tells the launcher that start-up failed: it prints `message` (one or
    /// more lines, printed as given) to its stderr and exits with `code`
    /// (1 if `code` is not in 1..=255, e.g. a `sysexits.h` code such as 78
    /// for a configuration error). The daemon should then exit itself.
    pub fn fail(mut self, code: i32, message: &str) {
        self.send(&format!("fail {code}\n{message}"));
    }

    fn send(&mut self, report: &str) {
        let _ = self.pipe.write_all(report.as_bytes());
    }

    /// Reports a failure of a daemon-side step and ends the process.
    fn abort(mut self, message: &str) -> ! {
        self.send(&format!(
            "fail {EX_OSERR}\nheartbeat: cannot detach: {message}"
        ));
        // SAFETY: _exit(2) only ends the process.
        unsafe { nix::libc::_exit(EX_OSERR) }
    }
}

/// The first child: new session, second fork, then the daemon's set-up.
fn become_daemon(detached: Detached) -> Detached {
    if let Err(e) = nix::unistd::setsid() {
        detached.abort(&format!("setsid: {e}"));
    }
    // SAFETY: still single-threaded (a copy of a single-threaded process).
    match unsafe { nix::unistd::fork() } {
        Err(e) => detached.abort(&format!("second fork: {e}")),
        // The session leader leaves; the daemon is reparented to init (or
        // to a subreaper). _exit: nothing of the parent's to flush or drop.
        // SAFETY: _exit(2) only ends the process.
        Ok(ForkResult::Parent { .. }) => unsafe { nix::libc::_exit(0) },
        Ok(ForkResult::Child) => {}
    }
    if let Err(e) = nix::unistd::chdir("/") {
        detached.abort(&format!("chdir /: {e}"));
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    restore_ignored_signals();
    if let Err(e) = File::open("/dev/null")
        .and_then(|null| nix::unistd::dup2_stdin(null.as_fd()).map_err(io::Error::from))
    {
        detached.abort(&format!("stdin from /dev/null: {e}"));
    }
    detached
}

/// Signals ignored by whoever started us (`nohup` ignores SIGHUP; an
/// ignored SIGCHLD would make the kernel reap hooks before we can read
/// their exit status) go back to their default action. SIGPIPE stays
/// ignored, as the Rust runtime set it; handlers are left alone.
fn restore_ignored_signals() {
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            default_if_ignored(sig);
        }
    }
}

/// Puts SIGCHLD back to its default action if whoever started us ignored
/// it (an ignored disposition survives `exec(2)`): with SIGCHLD ignored
/// the kernel reaps children at once, and the exit status of checks and
/// hooks is lost ("No child processes"). [`detach`] does this along with
/// the other ignored signals; call it in a process that stays in the
/// foreground. A handler is left alone.
pub fn reset_ignored_sigchld() {
    default_if_ignored(Signal::SIGCHLD);
}

/// Sets `sig` to its default action if it is ignored.
fn default_if_ignored(sig: Signal) {
    let default = signal::SigAction::new(
        SigHandler::SigDfl,
        signal::SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: installs SIG_DFL, or puts back the exact previous action.
    unsafe {
        if let Ok(old) = signal::sigaction(sig, &default) {
            if !matches!(old.handler(), SigHandler::SigIgn) {
                let _ = signal::sigaction(sig, &old);
            }
        }
    }
}

fn redirect_output_to_dev_null() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(null.as_fd())?;
    nix::unistd::dup2_stderr(null.as_fd())?;
    Ok(())
}

/// The launcher: reads the daemon's report, reaps the first child, exits.
fn wait_for_report(mut pipe: File, child: Pid) -> ! {
    let mut report = Vec::new();
    // EOF comes with the report (the daemon closes its end) or with the
    // daemon's death; read_to_end retries EINTR.
    let _ = pipe.read_to_end(&mut report);
    let _ = nix::sys::wait::waitpid(child, None);
    let (code, message) = parse_report(&report);
    if let Some(message) = message {
        let _ = writeln!(io::stderr().lock(), "{message}");
    }
    std::process::exit(code)
}

/// The launcher's exit status and message for a report: `ready\n`, or
/// `fail CODE\nMESSAGE`, or nothing at all.
fn parse_report(report: &[u8]) -> (i32, Option<String>) {
    let text = String::from_utf8_lossy(report);
    if text == "ready\n" {
        return (0, None);
    }
    if let Some(rest) = text.strip_prefix("fail ") {
        let (code, message) = rest.split_once('\n').unwrap_or((rest, ""));
        let code = code
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|c| (1..=255).contains(c))
            .unwrap_or(1);
        return (code, Some(message.trim_end().to_owned()));
    }
    if text.is_empty() {
        return (
            EX_SOFTWARE,
            Some("heartbeat: the daemon died during start-up".to_owned()),
        );
    }
    (
        EX_SOFTWARE,
        Some(format!(
            "heartbeat: the daemon sent an unexpected start-up report: {text:?}"
        )),
    )
}

/// The number of threads of this process (from `/proc/self/status`), or
/// `None` when it cannot be read.
pub fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    //! The launcher and the daemon are tested with real processes in
    //! `tests/plumbing.rs`.

    use super::*;

    #[test]
    fn reports_parse_into_exit_codes_and_messages() {
        assert_eq!(parse_report(b"ready\n"), (0, None));
        assert_eq!(
            parse_report(b"fail 78\nheartbeat: bad config\nline 2\n"),
            (78, Some("heartbeat: bad config\nline 2".to_owned()))
        );
        assert_eq!(parse_report(b"fail 0\nx").0, 1);
        assert_eq!(parse_report(b"fail 300\nx").0, 1);
        assert_eq!(parse_report(b"fail nope\nx").0, 1);
        assert_eq!(
            parse_report(b""),
            (
                70,
                Some("heartbeat: the daemon died during start-up".to_owned())
            )
        );
        assert_eq!(parse_report(b"ready\nready\n").0, 70);
    }

    #[test]
    fn detach_refuses_when_threads_exist() {
        // The test harness runs this test in a thread of its own.
        let err = detach().unwrap_err();
        assert!(matches!(err, DetachError::Threads(n) if n > 1), "{err}");
        assert!(err.to_string().contains("threads are running"), "{err}");
    }
}
