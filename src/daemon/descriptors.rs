//! Descriptors inherited from whoever started heartbeat (daemon(7), step 1).
//!
//! A wrapper such as `flock LOCK heartbeat -d …`, a shell with a redirected
//! descriptor, or a supervisor that leaks its sockets leaves descriptors
//! above 2 open in heartbeat. Passed on to every hook and check, and from
//! them to the services a hook starts, they would hold a lock or a pipe for
//! ever. So [`seal_inherited`], the first thing heartbeat does, marks every
//! descriptor above 2 close-on-exec (no child ever gets one; everything
//! heartbeat opens itself is close-on-exec too), and [`close_inherited`]
//! closes them in a detached daemon, which must not keep its launcher's
//! resources either. In the foreground they stay open in heartbeat only,
//! so that the lock of `flock LOCK heartbeat -c FILE` lasts while it runs.
//!
//! Uses close_range(2) with `CLOSE_RANGE_CLOEXEC` (Linux 5.11), and on
//! older kernels the list in `/proc/self/fd` with fcntl(2).

use std::fs;
use std::os::fd::RawFd;
use std::sync::{Mutex, PoisonError};

use nix::libc;

/// The descriptors found open by [`seal_inherited`], for
/// [`close_inherited`].
static INHERITED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// `CLOSE_RANGE_CLOEXEC` of `<linux/close_range.h>`.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// The open descriptors of this process above 2, from `/proc/self/fd`
/// (without the one reading the directory).
pub fn open_above_stdio() -> Vec<RawFd> {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    // The directory's own descriptor was listed too, and is closed now.
    fds.retain(|&fd| {
        // SAFETY: F_GETFD only reads the flags of a descriptor number.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    });
    fds.sort_unstable();
    fds
}

/// Marks every descriptor above 2 close-on-exec and remembers them as
/// inherited. Call it first, before heartbeat opens anything (the user
/// database included, whose library may keep a descriptor). Returns how
/// many there were.
pub fn seal_inherited() -> usize {
    let fds = open_above_stdio();
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags.
    let sealed = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    if !sealed {
        for &fd in &fds {
            // SAFETY: sets FD_CLOEXEC on a descriptor number that was open.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
    let count = fds.len();
    *INHERITED.lock().unwrap_or_else(PoisonError::into_inner) = fds;
    count
}

/// Closes the descriptors [`seal_inherited`] found: for a detached daemon.
/// Those numbers still name the inherited descriptors (they were never
/// closed, so nothing else can have been given them). Returns how many.
pub fn close_inherited() -> usize {
    let fds = std::mem::take(&mut *INHERITED.lock().unwrap_or_else(PoisonError::into_inner));
    for &fd in &fds {
        // SAFETY: closes a descriptor inherited at start-up that nothing in
        // this process uses.
        unsafe {
            libc::close(fd);
        }
    }
    fds.len()
}
