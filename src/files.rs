//! Opening the files heartbeat writes (the log file, the pidfile, the
//! control socket, the state file) so that nobody else can point them
//! elsewhere.
//!
//! heartbeat usually starts as root, and the directories of its log and
//! pidfile are often writable by the user it drops to (so that a reopen
//! or a removal works after the drop). Such a user could plant a symbolic
//! link or a hard link at the path, into a file only root may write, and
//! have root write into it at the next start (the CVE-2016-1247 class). So
//! [`open_for_writing`]:
//!
//! - walks the path one directory at a time with `openat(2)` and
//!   `O_NOFOLLOW`, following a symbolic link only where it lies in a
//!   directory that no one but root (or the user heartbeat runs as) can
//!   write — `/var/run → /run` is fine, a link in a directory another user
//!   owns or may write is refused;
//! - opens the file itself with `O_NOFOLLOW` (a symbolic link there is
//!   always refused), `O_CLOEXEC` and `O_NONBLOCK` (a FIFO cannot hang it);
//! - refuses anything but a regular file with one name: a hard link
//!   (`st_nlink` > 1) would make root write into its other name;
//! - creates a missing file with the mode asked for, which callers keep
//!   writable by the owner only (0640, 0644), less the umask.
//!
//! Every refusal is an [`io::Error`] that names the path and says why.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};

/// How many symbolic links a walk follows at most, as the kernel does
/// (`MAXSYMLINKS`, 40).
const MAX_LINKS: usize = 40;

/// How a file is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteMode {
    /// Append (`O_APPEND`), for logs; otherwise read and write, for a
    /// pidfile that is locked and rewritten in place.
    pub append: bool,
    /// Permissions of a file created by the open, before the umask.
    pub create_mode: u32,
}

/// Opens or creates `path` for writing as the module documentation says.
///
/// # Errors
/// The OS error of a failed step (missing directory, permission), or a
/// refusal: a symbolic link at the path or in a directory others can write,
/// a path that is not a regular file, a file with other hard links. The
/// message names the path.
pub fn open_for_writing(path: &Path, how: WriteMode) -> io::Result<File> {
    let name = path
        .file_name()
        .ok_or_else(|| refused(path, "it names no file"))?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let dir = open_directory(parent)?;
    let mut flags = OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    flags |= if how.append {
        OFlags::WRONLY | OFlags::APPEND
    } else {
        OFlags::RDWR
    };
    let fd = rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(how.create_mode)).map_err(
        |e| {
            // ELOOP from O_NOFOLLOW, or EACCES where the kernel's
            // protected_symlinks refuses first: say which it is.
            let link = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
            if link {
                refused(path, "it is a symbolic link; refusing to follow it")
            } else {
                io::Error::from(e)
            }
        },
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(refused(path, "it is not a regular file"));
    }
    if stat.st_nlink > 1 {
        return Err(refused(
            path,
            &format!(
                "it has {} hard links; refusing to write to a file that has other names",
                stat.st_nlink
            ),
        ));
    }
    let fd: OwnedFd = fd;
    // Regular files ignore O_NONBLOCK; clear it all the same.
    let status = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, status - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

/// Replaces the file at `path` with `contents` atomically: written to a
/// temporary file beside it (created exclusively, without following a
/// link, mode `mode` less the umask), flushed to disk (`fsync`), renamed
/// over `path`, and the directory flushed, so that a crash leaves either
/// the old file or the new one, never a part. A link at `path` is replaced,
/// not followed.
///
/// # Errors
/// The walk's refusals (see [`open_for_writing`]) and the OS error of a
/// failed step; the temporary file is removed then.
pub fn replace_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write as _;
    let (dir, name) = open_parent(path)?;
    let mut temp = OsString::from(".");
    temp.push(&name);
    temp.push(format!(".tmp{}", std::process::id()));
    // A temporary file left by a crash of this same pid is ours to drop.
    let _ = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty());
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir, &temp, flags, Mode::from_raw_mode(mode))?;
    let written = (|| {
        let mut file = File::from(fd);
        file.write_all(contents)?;
        file.sync_all()?;
        rustix::fs::renameat(&dir, &temp, &dir, &name)?;
        Ok::<(), io::Error>(())
    })();
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty());
        return Err(e);
    }
    // The rename is durable once the directory is.
    let listing = rustix::fs::openat(
        &dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fsync(&listing)?;
    Ok(())
}

/// Reads the regular file at `path`, at most `limit` bytes, without
/// following a link at the path or in a directory others can write (a
/// file heartbeat itself writes, read back: the state file).
///
/// # Errors
/// The walk's refusals, a link or something other than a regular file at
/// `path`, a file longer than `limit`, and the OS error of a failed read
/// (`NotFound` when there is no file).
pub fn read_own_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let (dir, name) = open_parent(path)?;
    let fd = rustix::fs::openat(
        &dir,
        &name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            refused(path, "it is a symbolic link; refusing to follow it")
        } else {
            io::Error::from(e)
        }
    })?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(refused(path, "it is not a regular file"));
    }
    let mut bytes = Vec::new();
    File::from(fd).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(refused(path, &format!("it is longer than {limit} bytes")));
    }
    Ok(bytes)
}

/// The directory of `path`, opened (`O_PATH`) as [`open_for_writing`]
/// walks to it, and the name of `path` in it: for what is created there
/// relative to the descriptor (a socket, a file replaced by a rename), so
/// that no link planted on the way is followed.
///
/// # Errors
/// As [`open_for_writing`]'s walk; also when `path` names no file.
pub fn open_parent(path: &Path) -> io::Result<(OwnedFd, OsString)> {
    let name = path
        .file_name()
        .ok_or_else(|| refused(path, "it names no file"))?;
    let parent = path.parent().unwrap_or(Path::new(""));
    Ok((open_directory(parent)?, name.to_os_string()))
}

/// An `O_PATH` descriptor of directory `dir`, reached without following a
/// symbolic link that an untrusted user could have planted.
fn open_directory(dir: &Path) -> io::Result<OwnedFd> {
    let start = if dir.is_absolute() { "/" } else { "." };
    let mut current = open_path(CWD, OsStr::new(start))?;
    let mut links = 0;
    // Components still to walk, last one first.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, dir);
    let mut walked = PathBuf::from(start);
    while let Some(part) = pending.pop() {
        let next = open_path(current.as_fd(), &part)?;
        let stat = rustix::fs::fstat(&next)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                walked.push(&part);
                current = next;
            }
            FileType::Symlink => {
                let holder = rustix::fs::fstat(&current)?;
                let link = walked.join(&part);
                if !trusted_directory(holder.st_uid, holder.st_mode) {
                    return Err(refused(
                        &link,
                        &format!(
                            "it is a symbolic link in {}, a directory other users can write \
                             (owner uid {}, mode {:04o}); refusing to follow it",
                            walked.display(),
                            holder.st_uid,
                            holder.st_mode & 0o7777
                        ),
                    ));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(refused(&link, "too many levels of symbolic links"));
                }
                let target = rustix::fs::readlinkat(&current, &part, Vec::new())?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    current = open_path(CWD, OsStr::new("/"))?;
                    walked = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            _ => {
                return Err(refused(&walked.join(&part), "it is not a directory"));
            }
        }
    }
    Ok(current)
}

/// Pushes the components of `path` on `pending` so that the first one is
/// popped first. `.` is dropped; `..` is kept (the kernel resolves it).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

/// Opens `name` in `dir` with `O_PATH | O_NOFOLLOW`: a symbolic link is
/// opened itself, not followed.
fn open_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Whether a directory owned by `uid` with mode `mode` can only be written
/// by root or by the user this process runs as: a symbolic link in it was
/// put there by one of them.
fn trusted_directory(uid: u32, mode: u32) -> bool {
    let owner_trusted = uid == 0 || uid == rustix::process::geteuid().as_raw();
    owner_trusted && mode & 0o022 == 0
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: {why}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const LOG: WriteMode = WriteMode {
        append: true,
        create_mode: 0o640,
    };

    #[test]
    fn a_new_file_is_created_with_the_mode_asked_for_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "old\n").unwrap();
        use std::io::Write as _;
        open_for_writing(&path, LOG)
            .unwrap()
            .write_all(b"new\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
        let fresh = dir.path().join("b.log");
        open_for_writing(&fresh, LOG).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }

    #[test]
    fn a_symbolic_link_at_the_path_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.path().join("a.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = open_for_writing(&path, LOG).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: it is a symbolic link; refusing to follow it",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_hard_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.path().join("a.log");
        std::fs::hard_link(&target, &path).unwrap();
        let err = open_for_writing(&path, LOG).unwrap_err().to_string();
        assert!(err.contains("it has 2 hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_link_to_a_directory_is_followed_only_where_others_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let trusted = dir.path().join("trusted");
        std::fs::create_dir(&trusted).unwrap();
        std::fs::set_permissions(&trusted, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&real, trusted.join("via")).unwrap();
        open_for_writing(&trusted.join("via").join("a.log"), LOG).unwrap();
        assert!(real.join("a.log").exists());

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink(&real, open.join("via")).unwrap();
        let err = open_for_writing(&open.join("via").join("b.log"), LOG)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: it is a symbolic link in {}",
                open.join("via").display(),
                open.display()
            )) && err.contains("mode 1777"),
            "{err}"
        );
        assert!(!real.join("b.log").exists());
    }

    #[test]
    fn a_replacement_is_whole_and_replaces_a_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace_atomically(&path, b"one", 0o640).unwrap();
        replace_atomically(&path, b"two", 0o640).unwrap();
        assert_eq!(read_own_file(&path, 16).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        assert!(read_own_file(&path, 2).is_err(), "longer than the limit");

        let precious = dir.path().join("precious");
        std::fs::write(&precious, "precious").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&precious, &link).unwrap();
        let err = read_own_file(&link, 64).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        replace_atomically(&link, b"new", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = open_for_writing(&path, LOG).unwrap_err();
        // No reader: ENXIO from the open itself, or refused as not a file.
        assert!(
            err.raw_os_error() == Some(nix::libc::ENXIO)
                || err.to_string().contains("not a regular file"),
            "{err}"
        );
    }
}
