//! Signals turned into ordinary calls on one thread.
//!
//! A signal handler may do almost nothing safely (signal-safety(7)), so the
//! handlers installed here (by `signal-hook`) only note the signal; a
//! dedicated thread then calls the matching callback as plain Rust code, one
//! signal at a time, in the order they were taken from the kernel:
//!
//! | signal          | callback    | what heartbeat does                  |
//! |-----------------|-------------|--------------------------------------|
//! | SIGTERM, SIGINT | `on_stop`   | stop the engine (actions keep their deadline) |
//! | SIGHUP          | `on_reload` | reread the configuration             |
//! | SIGUSR1         | `on_reopen` | reopen the log file (logrotate)      |
//!
//! Signals of the same kind that arrive while one is being handled may be
//! merged into one, as the kernel does for pending signals.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::{Handle, Signals};

/// Why the signal handlers or their thread could not be set up: exit
/// status 71 (`EX_OSERR`).
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// A handler cannot be installed.
    #[error("cannot install signal handlers")]
    Install(#[source] std::io::Error),
    /// The signals cannot be unblocked.
    #[error("cannot unblock signals")]
    Unblock(#[source] nix::Error),
    /// The thread cannot be started.
    #[error("cannot start the signal thread")]
    Thread(#[source] std::io::Error),
}

impl SignalError {
    /// The exit status: always [`crate::exit::Exit::OsErr`] (71).
    pub fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::OsErr
    }
}

/// The signals heartbeat acts on.
const HANDLED: [i32; 4] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1];

/// What to do for each signal. The callbacks run on the signal thread, one
/// at a time; they should return quickly (send a message, set a flag).
pub struct SignalHandlers {
    /// SIGTERM or SIGINT: stop. Called again for every further one, so the
    /// caller may, for instance, give up waiting for running actions on
    /// the second.
    pub on_stop: Box<dyn FnMut() + Send>,
    /// SIGHUP: reload the configuration.
    pub on_reload: Box<dyn FnMut() + Send>,
    /// SIGUSR1: reopen the log file.
    pub on_reopen: Box<dyn FnMut() + Send>,
}

impl std::fmt::Debug for SignalHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalHandlers").finish_non_exhaustive()
    }
}

/// The running signal thread. [`SignalThread::shutdown`] (or dropping it)
/// stops it.
#[derive(Debug)]
pub struct SignalThread {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Installs handlers for SIGTERM, SIGINT, SIGHUP and SIGUSR1 and starts the
/// thread that calls `handlers` for them.
///
/// From this call on, these signals no longer have their default effect
/// (terminating the process): only the callbacks act on them. They are
/// unblocked in the calling thread, and so in the signal thread it starts:
/// a signal mask inherited through `exec(2)` would otherwise keep them
/// pending for ever.
///
/// # Errors
/// When a handler cannot be installed, the signals cannot be unblocked or
/// the thread cannot be started.
pub fn spawn(handlers: SignalHandlers) -> Result<SignalThread, SignalError> {
    let mut signals = Signals::new(HANDLED).map_err(SignalError::Install)?;
    let mut unblock = SigSet::empty();
    for sig in HANDLED {
        unblock.add(Signal::try_from(sig).map_err(SignalError::Unblock)?);
    }
    unblock.thread_unblock().map_err(SignalError::Unblock)?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            let SignalHandlers {
                mut on_stop,
                mut on_reload,
                mut on_reopen,
            } = handlers;
            // Ends when the handle is closed.
            for signal in signals.forever() {
                let (name, callback): (&str, &mut dyn FnMut()) = match signal {
                    SIGTERM => ("SIGTERM", &mut on_stop),
                    SIGINT => ("SIGINT", &mut on_stop),
                    SIGHUP => ("SIGHUP", &mut on_reload),
                    SIGUSR1 => ("SIGUSR1", &mut on_reopen),
                    _ => continue,
                };
                log::debug!("received {name}");
                // A panicking callback must not leave the process deaf to
                // signals.
                if catch_unwind(AssertUnwindSafe(callback)).is_err() {
                    log::error!("the {name} handler panicked");
                }
            }
        })
        .map_err(SignalError::Thread)?;
    Ok(SignalThread {
        handle,
        thread: Some(thread),
    })
}

impl SignalThread {
    /// Stops the thread and waits for it (a callback that is running
    /// finishes first).
    ///
    /// The signals stay caught (`signal-hook` leaves its handlers installed)
    /// but nothing acts on them any more: call this on the way out.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{child, is_child};
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// The child test process, killed and reaped if the test fails.
    struct Helper {
        child: Child,
        lines: mpsc::Receiver<String>,
    }

    impl Helper {
        fn start() -> Helper {
            let mut child = child("daemon::signals::tests::child_signals")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some((_, said)) = line.split_once("child: ") {
                        let _ = tx.send(said.to_owned());
                    }
                }
            });
            let helper = Helper { child, lines };
            helper.expect("ready");
            helper
        }

        fn expect(&self, want: &str) {
            let got = self.lines.recv_timeout(Duration::from_secs(10));
            assert_eq!(got.as_deref(), Ok(want));
        }

        fn send(&self, signal: Signal) {
            kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
        }
    }

    impl Drop for Helper {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn signals_call_their_callbacks_in_order_and_stop_promptly() {
        let mut helper = Helper::start();
        helper.send(Signal::SIGHUP);
        helper.expect("reload");
        helper.send(Signal::SIGUSR1);
        helper.expect("reopen");
        helper.send(Signal::SIGHUP);
        helper.expect("reload");
        let sent = Instant::now();
        helper.send(Signal::SIGTERM);
        helper.expect("stop");
        helper.expect("shut down");
        let status = helper.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "{:?}",
            sent.elapsed()
        );
    }

    #[test]
    fn sigint_stops_too() {
        let mut helper = Helper::start();
        helper.send(Signal::SIGINT);
        helper.expect("stop");
        helper.expect("shut down");
        assert!(helper.child.wait().unwrap().success());
    }

    /// Prints a line per callback; stops on the first stop signal.
    #[test]
    #[ignore = "run by the other signals tests"]
    fn child_signals() {
        if !is_child("daemon::signals::tests::child_signals") {
            return;
        }
        let (stop_tx, stop_rx) = mpsc::channel();
        let say = |what: &'static str| move || println!("child: {what}");
        let thread = spawn(SignalHandlers {
            on_stop: Box::new(move || {
                println!("child: stop");
                let _ = stop_tx.send(());
            }),
            on_reload: Box::new(say("reload")),
            on_reopen: Box::new(say("reopen")),
        })
        .unwrap();
        println!("child: ready");
        stop_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        thread.shutdown();
        println!("child: shut down");
    }
}
