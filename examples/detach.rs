//! Detaches like `heartbeat -d` and describes the daemon it became.
//!
//! The tests of `heartbeat::daemon` run it; it is also the smallest
//! complete use of the start-up protocol:
//!
//! ```text
//! detach REPORT ready   # report, become ready, run until REPORT is removed
//! detach REPORT fail    # report, then fail with status 78 and a message
//! detach REPORT exit    # report, then exit without a word
//! ```
//!
//! REPORT must be an absolute path: the daemon runs in `/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, report, mode] = args.as_slice() else {
        eprintln!("usage: detach REPORT ready|fail|exit");
        std::process::exit(2);
    };
    let report = PathBuf::from(report);
    let detached = match heartbeat::daemon::detach() {
        Ok(detached) => detached,
        Err(e) => {
            eprintln!("heartbeat: {e}");
            std::process::exit(71);
        }
    };
    // A launcher that does not wait for readiness would be gone by now.
    std::thread::sleep(Duration::from_millis(300));
    write_atomically(&report, &describe());
    match mode.as_str() {
        "ready" => {
            if let Err(e) = detached.ready() {
                eprintln!("{e}");
                std::process::exit(71);
            }
            write_atomically(
                &report.with_extension("after"),
                &format!("stdout={}\nstderr={}\n", fd_target(1), fd_target(2)),
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while report.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        "fail" => {
            detached.fail(78, "heartbeat: error: the configuration says no");
            std::process::exit(78);
        }
        _ => std::process::exit(0),
    }
}

/// `key=value` lines: who and where the daemon is.
fn describe() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after "(comm)": state ppid pgrp session tty_nr …
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::stat::umask(umask);
    format!(
        "pid={}\nsid={}\npgid={}\ntty_nr={}\ncwd={}\numask={:03o}\nstdin={}\nsighup={}\n",
        std::process::id(),
        fields[3],
        fields[2],
        fields[4],
        std::env::current_dir().unwrap().display(),
        umask.bits(),
        fd_target(0),
        sighup_disposition(),
    )
}

fn fd_target(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("({e})"))
}

fn sighup_disposition() -> &'static str {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: sets SIG_DFL, then puts the previous action back.
    let old = unsafe { signal::sigaction(Signal::SIGHUP, &dfl) }.unwrap();
    unsafe { signal::sigaction(Signal::SIGHUP, &old) }.unwrap();
    match old.handler() {
        SigHandler::SigIgn => "ignored",
        SigHandler::SigDfl => "default",
        _ => "handled",
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
