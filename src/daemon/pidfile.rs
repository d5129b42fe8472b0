//! The locked pidfile: one heartbeat per pidfile, and a PID for init
//! scripts.
//!
//! The lock, not the file's existence or content, says whether an instance
//! runs: [`Pidfile::acquire`] takes an exclusive `flock(2)` lock without
//! waiting, so a file left by a crashed or killed process (whose locks the
//! kernel dropped) is simply reused, and a second instance is refused with
//! the running PID and leaves the file as it is. The lock belongs to the
//! open file description, so it survives `fork(2)` into the detached
//! daemon, which then writes its own PID with [`Pidfile::write_pid`].
//!
//! The file belongs to root and stays so after a privilege drop: were it
//! the dropped user's, that user could write any PID into it, and an init
//! script or logrotate's `kill -USR1 $(cat pidfile)` would signal that
//! process (systemd refuses non-root pidfiles for this reason). It is
//! opened without following a symbolic or hard link ([`crate::files`]); a
//! file at the path that is not root's own (another owner, other names, or
//! writable by group or others) is not written into but replaced.
//!
//! The file is removed on a clean exit ([`Pidfile::release`] or drop).
//! Removing a file needs write permission on its *directory*: a daemon that
//! drops privileges can only remove its pidfile from a directory the target
//! user may write to, such as `/run/heartbeat` created by systemd's
//! `RuntimeDirectory=` together with `User=`, or by an init script with
//! `install -d -o USER /run/heartbeat` (not sticky, or the user's). When
//! the file cannot be removed it is emptied instead, through the descriptor
//! opened as root, so that it names no PID; its lock goes away with the
//! process either way, and an empty or unlocked pidfile is stale: the next
//! start reuses it, and scripts should signal only the PID of a locked,
//! non-empty file (`contrib/heartbeat.logrotate` does).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::exit::Exit;
use crate::files::{self, WriteMode};

/// Permissions of a new pidfile (before the umask): readable by everyone,
/// as init scripts and monitoring read it.
const PIDFILE_MODE: u32 = 0o644;

/// How often [`Pidfile::acquire`] retries when the file it locked was
/// removed or replaced in the meantime.
const ACQUIRE_ATTEMPTS: usize = 10;

/// Why a pidfile could not be acquired, written or removed.
#[derive(Debug)]
pub enum PidfileError {
    /// Another process holds the lock: heartbeat already runs with this
    /// pidfile. The file was left untouched.
    Running {
        /// The PID read from the file, if it holds one yet (the holder
        /// writes it just after locking).
        pid: Option<u32>,
        /// The pidfile.
        path: PathBuf,
    },
    /// A system call on the pidfile failed.
    Io {
        /// What was being done: "open", "lock", "write", "remove"…
        action: &'static str,
        /// The pidfile.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl PidfileError {
    /// The exit status for this error, from `sysexits.h`: 75
    /// (`EX_TEMPFAIL`, try again once the other instance has stopped) when
    /// another instance runs, 73 (`EX_CANTCREAT`) when the file cannot be
    /// created, locked or written.
    pub fn exit(&self) -> Exit {
        match self {
            PidfileError::Running { .. } => Exit::TempFail,
            PidfileError::Io { .. } => Exit::CantCreat,
        }
    }
}

impl fmt::Display for PidfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidfileError::Running {
                pid: Some(pid),
                path,
            } => write!(
                f,
                "heartbeat is already running as PID {pid} (pidfile {} is locked)",
                path.display()
            ),
            PidfileError::Running { pid: None, path } => write!(
                f,
                "heartbeat is already running (pidfile {} is locked and holds no PID yet)",
                path.display()
            ),
            PidfileError::Io { action, path, .. } => {
                write!(f, "cannot {action} pidfile {}", path.display())
            }
        }
    }
}

impl std::error::Error for PidfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PidfileError::Running { .. } => None,
            PidfileError::Io { source, .. } => Some(source),
        }
    }
}

/// A locked pidfile holding our PID. Removed when released or dropped by
/// the process that last wrote it.
#[derive(Debug)]
pub struct Pidfile {
    /// The open file, locked; closing it (on drop) releases the lock.
    file: Flock<File>,
    path: PathBuf,
    /// The PID written in the file. Only that process removes the file, so
    /// a forked child that exits through a destructor cannot remove the
    /// daemon's pidfile.
    written_by: u32,
    released: bool,
}

impl Pidfile {
    /// Opens or creates `path` (mode 0644 less the umask, `O_CLOEXEC`, not
    /// through a symbolic or hard link; an existing file that is not this
    /// user's own is replaced), locks it with `flock(LOCK_EX | LOCK_NB)`
    /// (flock(2)), and only then replaces its content with our PID and a
    /// newline.
    ///
    /// A stale file left by a dead process is reused: its lock died with
    /// it. If the file was removed or replaced between our open and our
    /// lock (the previous holder exiting), the new file is tried instead.
    ///
    /// # Errors
    /// [`PidfileError::Running`], naming the PID in the file, when another
    /// process holds the lock; the file is left untouched.
    /// [`PidfileError::Io`] when the file cannot be opened, locked or
    /// written (missing directory, permissions, a symbolic link).
    pub fn acquire(path: &Path) -> Result<Pidfile, PidfileError> {
        let io_error = |action, source| PidfileError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        for _ in 0..ACQUIRE_ATTEMPTS {
            let how = WriteMode {
                append: false,
                create_mode: PIDFILE_MODE,
            };
            let file = files::open_for_writing(path, how).map_err(|e| io_error("open", e))?;
            if let Some(why) = untrusted(&file) {
                // Not ours to write into: replace it (never follow it).
                if names_file(path, &file) {
                    std::fs::remove_file(path).map_err(|e| io_error("replace", e))?;
                    log::warn!("replaced pidfile {}: {why}", path.display());
                }
                continue;
            }
            let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((file, Errno::EWOULDBLOCK)) => {
                    return Err(PidfileError::Running {
                        pid: read_pid(&file),
                        path: path.to_owned(),
                    });
                }
                Err((_, errno)) => return Err(io_error("lock", errno.into())),
            };
            if !names_file(path, &file) {
                // The holder removed it after we opened it: our lock is on
                // a file nobody will find. Start again.
                continue;
            }
            let mut pidfile = Pidfile {
                file,
                path: path.to_owned(),
                written_by: 0,
                released: false,
            };
            pidfile.write_pid()?;
            return Ok(pidfile);
        }
        Err(io_error(
            "lock",
            io::Error::other("it was replaced repeatedly while being locked"),
        ))
    }

    /// Replaces the file's content with this process's PID and a newline.
    ///
    /// [`acquire`](Pidfile::acquire) does this; call it again in the
    /// detached daemon, whose PID differs from the launcher's (the lock,
    /// held by the shared open file description, survives the fork).
    ///
    /// # Errors
    /// When the file cannot be written (disk full, I/O error).
    pub fn write_pid(&mut self) -> Result<(), PidfileError> {
        let pid = std::process::id();
        let content = format!("{pid}\n");
        // Write over the old content, then cut what is left of it: a
        // reader never sees an empty file, and the first line is always a
        // whole PID.
        self.file
            .write_all_at(content.as_bytes(), 0)
            .and_then(|()| self.file.set_len(content.len() as u64))
            .map_err(|source| PidfileError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            })?;
        self.written_by = pid;
        Ok(())
    }

    /// The pidfile's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file and releases the lock: the clean-exit path.
    ///
    /// Nothing is removed when the path no longer names our file (someone
    /// deleted or replaced it), or when called in a process other than the
    /// one that last wrote its PID.
    ///
    /// # Errors
    /// When the file cannot be removed (after a privilege drop, its
    /// directory is not writable by the user). It is emptied instead, so
    /// that it names no PID, and the lock is released all the same.
    pub fn release(mut self) -> Result<(), PidfileError> {
        self.released = true;
        self.remove()
    }

    fn remove(&mut self) -> Result<(), PidfileError> {
        if self.written_by != std::process::id() || !names_file(&self.path, &self.file) {
            return Ok(());
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => {
                let _ = self.file.set_len(0);
                Err(PidfileError::Io {
                    action: "remove",
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

impl Drop for Pidfile {
    /// Removes the file (see [`Pidfile::release`]), ignoring errors; the
    /// lock is released when the file is closed just after.
    fn drop(&mut self) {
        if !self.released {
            let _ = self.remove();
        }
    }
}

/// Why an existing pidfile must not be written into, if it must not: it
/// belongs to another user than this process's, or its group or others may
/// write it.
fn untrusted(file: &File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Some(format!(
            "it belonged to uid {}, not to uid {euid}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "its mode {:04o} let others write it",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Whether `path` still names the open `file` (same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(on_disk), Ok(open)) => on_disk.dev() == open.dev() && on_disk.ino() == open.ino(),
        _ => false,
    }
}

/// The PID in a pidfile locked by another process, waiting briefly for it
/// to appear: the holder writes it just after taking the lock.
fn read_pid(file: &File) -> Option<u32> {
    for _ in 0..10 {
        let mut buf = [0u8; 32];
        if let Ok(n) = file.read_at(&mut buf, 0) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if let Some(pid) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<u32>().ok())
                .filter(|&pid| pid > 0)
            {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Chain;
    use crate::test_support::{child, child_lines, is_child};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn acquire_writes_our_pid_and_drop_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.pid");
        let pidfile = Pidfile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert_eq!(pidfile.path(), path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o644, 0, "mode {mode:o}");
        drop(pidfile);
        assert!(!path.exists());
    }

    #[test]
    fn release_removes_the_file_and_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.pid");
        Pidfile::acquire(&path).unwrap().release().unwrap();
        assert!(!path.exists());
        // Free again at once.
        Pidfile::acquire(&path).unwrap().release().unwrap();
    }

    #[test]
    fn a_second_instance_is_refused_with_our_pid_and_the_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.pid");
        let pidfile = Pidfile::acquire(&path).unwrap();
        let before = std::fs::read(&path).unwrap();

        let out = child("daemon::pidfile::tests::child_acquire")
            .env("HEARTBEAT_TEST_PIDFILE", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines = child_lines(&out.stdout);
        let want = format!(
            "refused (exit 75): heartbeat is already running as PID {} (pidfile {} is locked)",
            std::process::id(),
            path.display()
        );
        assert_eq!(lines, [want]);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        drop(pidfile);
        assert!(!path.exists());
    }

    /// Tries to acquire `$HEARTBEAT_TEST_PIDFILE` and says what happened.
    #[test]
    #[ignore = "run by other pidfile tests"]
    fn child_acquire() {
        if !is_child("daemon::pidfile::tests::child_acquire") {
            return;
        }
        let path = PathBuf::from(std::env::var_os("HEARTBEAT_TEST_PIDFILE").unwrap());
        match Pidfile::acquire(&path) {
            Ok(pidfile) => {
                let content = std::fs::read_to_string(&path).unwrap();
                println!("child: acquired {}", content.trim());
                // Leave it behind locked-free, as a killed process would.
                std::mem::forget(pidfile);
            }
            Err(e) => println!("child: refused (exit {}): {e}", e.exit() as i32),
        }
    }

    #[test]
    fn a_stale_pidfile_from_a_dead_process_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.pid");
        // A child acquires the file and exits without cleaning up, as if
        // killed: the file stays, holding its (now dead) PID.
        let out = child("daemon::pidfile::tests::child_acquire")
            .env("HEARTBEAT_TEST_PIDFILE", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines = child_lines(&out.stdout);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let dead: u32 = lines[0].strip_prefix("acquired ").unwrap().parse().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{dead}\n"));

        let pidfile = Pidfile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pidfile);
        assert!(!path.exists());
    }

    #[test]
    fn a_longer_stale_content_is_fully_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.pid");
        std::fs::write(&path, "4194303999\ngarbage after it\n").unwrap();
        let pidfile = Pidfile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pidfile);
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.path().join("heartbeat.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = Pidfile::acquire(&path).unwrap_err();
        assert!(
            matches!(err, PidfileError::Io { action: "open", .. }),
            "{err:?}"
        );
        assert_eq!(err.exit(), Exit::CantCreat);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("heartbeat.pid");
        let err = Pidfile::acquire(&path).unwrap_err();
        let err = Chain(&err).to_string();
        assert!(
            err.starts_with(&format!("cannot open pidfile {}: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_replaced_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.pid");
        let pidfile = Pidfile::acquire(&path).unwrap();
        // Someone removes it and another file appears at the path.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "12345\n").unwrap();
        pidfile.release().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "12345\n");
    }

    #[test]
    fn a_file_that_cannot_be_removed_is_emptied() {
        if !crate::test_support::is_root() {
            eprintln!("skipped: needs root to drop to nobody");
            return;
        }
        let out = child("daemon::pidfile::tests::child_unremovable")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines = child_lines(&out.stdout);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("cannot remove pidfile ") && lines[0].ends_with("(os error 13)"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "left empty");
    }

    /// As root: a pidfile in a root-owned directory, released after the
    /// effective uid became nobody's. The file stays root's.
    #[test]
    #[ignore = "run by a_file_that_cannot_be_removed_is_emptied"]
    fn child_unremovable() {
        if !is_child("daemon::pidfile::tests::child_unremovable") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("heartbeat.pid");
        let pidfile = Pidfile::acquire(&path).unwrap();
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        // Only the effective uid, so that the directory can be cleaned up.
        nix::unistd::seteuid(nobody.uid).unwrap();
        let err = pidfile.release().unwrap_err();
        nix::unistd::seteuid(nix::unistd::Uid::from_raw(0)).unwrap();
        println!("child: {}", Chain(&err));
        if std::fs::read(&path).unwrap().is_empty() {
            println!("child: left empty");
        }
    }
}
