//! The control socket's server: created safely at start-up, served by a
//! thread of its own once the daemon runs.
//!
//! [`bind`] runs while heartbeat is still single-threaded and privileged
//! (see `app::start`): it walks to the socket's directory without following
//! a planted link ([`crate::files::open_parent`]), replaces a stale socket
//! left by a heartbeat that died (nobody answers on it) but never another
//! kind of file, nor a socket that another instance serves, and binds with
//! a umask of 0177, so that the socket is mode 0600 from its first moment;
//! then it gives it to the user heartbeat will run as.
//!
//! [`spawn`] serves it: one thread waits for connections, each connection
//! is answered on a thread of its own (at most [`MAX_CONNECTIONS`] at
//! once), within [`READ_TIMEOUT`] for the request. A peer whose credentials
//! (`SO_PEERCRED`) are neither root's nor those of the user heartbeat runs
//! as is refused, whatever the file's mode became. The socket file is
//! removed on shutdown if it is still the one created (after a privilege
//! drop its directory may not let heartbeat remove it: the next start
//! replaces it as stale).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{debug, warn};
use rustix::fs::{AtFlags, FileType, Mode};

use super::ControlError;
use super::protocol::{self, ErrorCode, Request, Response};
use crate::engine::Handle;

/// Connections answered at once; more are told `busy`.
pub const MAX_CONNECTIONS: usize = 8;

/// How long a client has to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the waiting thread pauses after a failed `accept(2)` (out of
/// descriptors, say) before it tries again.
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

/// A bound control socket, not served yet.
#[derive(Debug)]
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    created: Created,
}

/// The socket file as created: where, and which inode, so that only it is
/// removed.
#[derive(Debug)]
struct Created {
    dir: OwnedFd,
    name: OsString,
    dev: u64,
    ino: u64,
}

impl Listener {
    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates the control socket at `path`, mode 0600, owned by `owner` (uid,
/// gid) when given (the user heartbeat will run as), as the module
/// documentation says.
///
/// # Errors
/// [`ControlError::InUse`] when another heartbeat answers on it;
/// [`ControlError::Create`] when the directory cannot be reached safely,
/// something other than a socket is at the path, or the OS refuses.
pub fn bind(path: &Path, owner: Option<(u32, u32)>) -> Result<Listener, ControlError> {
    let fail = |why: String| ControlError::Create {
        path: path.to_owned(),
        why,
    };
    let (dir, name) = crate::files::open_parent(path).map_err(|e| fail(e.to_string()))?;
    // bind(2) has no *at form: the directory is named through its
    // descriptor, so that no link on the way is followed again.
    let via = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(&name);
    if let Ok(stat) = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
        if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
            return Err(fail(
                "something other than a socket is there; refusing to replace it".to_owned(),
            ));
        }
        match UnixStream::connect(&via) {
            Ok(_) => return Err(ControlError::InUse { path: path.into() }),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                debug!("replacing the stale control socket {}", path.display());
                rustix::fs::unlinkat(&dir, &name, AtFlags::empty())
                    .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
            }
            Err(e) => return Err(fail(format!("cannot tell whether it is in use: {e}"))),
        }
    }
    // Single-threaded here (start-up), so the process-wide umask is ours.
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(&via);
    rustix::process::umask(old);
    let listener = bound.map_err(|e| fail(e.to_string()))?;
    if let Some((uid, gid)) = owner {
        rustix::fs::chownat(
            &dir,
            &name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail(format!("cannot give it to uid {uid}: {e}")))?;
    }
    let stat = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| fail(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Listener {
        listener,
        path: path.to_owned(),
        created: Created {
            dir,
            name,
            dev: stat.st_dev,
            ino: stat.st_ino,
        },
    })
}

/// A served control socket.
pub struct Server {
    stop: Arc<AtomicBool>,
    /// Written to on shutdown: wakes the waiting thread at once.
    wake: UnixStream,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    created: Option<Created>,
    path: PathBuf,
}

impl Server {
    /// A watchdog for the engine: `true` while the serving thread runs.
    pub fn alive(&self) -> impl Fn() -> bool + Send + 'static {
        let running = Arc::clone(&self.running);
        move || running.load(Ordering::SeqCst)
    }

    /// Stops serving, waits for the connections being answered (their
    /// answers come as soon as the engine is gone), and removes the socket
    /// file if it is still the one created.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.write_all(b"x");
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let connections = std::mem::take(
            &mut *self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for c in connections {
            let _ = c.join();
        }
        if let Some(created) = self.created.take() {
            remove(&created, &self.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Removes the socket file if it is still the one created.
fn remove(created: &Created, path: &Path) {
    let ours = rustix::fs::statat(&created.dir, &created.name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_dev == created.dev && st.st_ino == created.ino);
    if !ours {
        return;
    }
    if let Err(e) = rustix::fs::unlinkat(&created.dir, &created.name, AtFlags::empty()) {
        debug!(
            "cannot remove the control socket {} ({e}); the next start replaces it",
            path.display()
        );
    }
}

/// Serves `listener` on a thread of its own, passing each command to the
/// engine through `handle` and waiting at most `wait` for its answer (the
/// actions it starts included).
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(listener: Listener, handle: Handle, wait: Duration) -> io::Result<Server> {
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, woken) = UnixStream::pair()?;
    let running = Arc::new(AtomicBool::new(true));
    let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let Listener {
        listener,
        path,
        created,
    } = listener;
    let thread = {
        let (stop, running, connections) = (
            Arc::clone(&stop),
            Arc::clone(&running),
            Arc::clone(&connections),
        );
        thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                let _running = Flag(running);
                accept_loop(&listener, &woken, &handle, wait, &stop, &connections);
            })?
    };
    Ok(Server {
        stop,
        wake,
        running,
        thread: Some(thread),
        connections,
        created: Some(created),
        path,
    })
}

/// Clears its flag when dropped: when the thread ends, panic or not.
struct Flag(Arc<AtomicBool>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Waits for connections (and for `woken` to say stop), without a timer:
/// an idle control socket costs no wake-up.
fn accept_loop(
    listener: &UnixListener,
    woken: &UnixStream,
    handle: &Handle,
    wait: Duration,
    stop: &AtomicBool,
    connections: &Mutex<Vec<JoinHandle<()>>>,
) {
    use rustix::event::{PollFd, PollFlags, poll};
    let busy = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [
            PollFd::from_borrowed_fd(listener.as_fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(woken.as_fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                // Not a signal (ENOMEM): waiting a moment keeps a poll that
                // fails again from spinning a core.
                warn!("control socket: cannot wait for connections: {e}");
                thread::sleep(ACCEPT_RETRY);
                continue;
            }
        }
        if stop.load(Ordering::SeqCst) {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!("control socket: cannot accept a connection: {e}");
                thread::sleep(ACCEPT_RETRY);
                continue;
            }
        };
        let mut list = connections.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|c| !c.is_finished());
        if busy.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
            let reply = Response::refused(
                ErrorCode::Busy,
                format!("{MAX_CONNECTIONS} commands are being answered; try again"),
            );
            let _ = stream.write_all(protocol::line(&reply).as_bytes());
            continue;
        }
        busy.fetch_add(1, Ordering::SeqCst);
        let (handle, busy_now) = (handle.clone(), Arc::clone(&busy));
        let spawned = thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || {
                answer(stream, &handle, wait);
                busy_now.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(thread) => list.push(thread),
            Err(e) => {
                busy.fetch_sub(1, Ordering::SeqCst);
                warn!("control socket: cannot answer a connection: {e}");
            }
        }
    }
}

/// Answers one connection: the peer's credentials, its request, the
/// engine's answer.
fn answer(mut stream: UnixStream, handle: &Handle, wait: Duration) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let reply = match respond(&stream, handle, wait) {
        Ok(reply) | Err(reply) => reply,
    };
    let _ = stream.write_all(protocol::line(&reply).as_bytes());
}

fn respond(stream: &UnixStream, handle: &Handle, wait: Duration) -> Result<Response, Response> {
    let who = peer(stream)?;
    let line = protocol::read_line(stream).map_err(|e| {
        Response::refused(
            ErrorCode::BadRequest,
            format!("expected one JSON line: {e}"),
        )
    })?;
    let request: Request = serde_json::from_str(&line).map_err(|e| {
        Response::refused(
            ErrorCode::BadRequest,
            format!(
                "expected {{\"command\":\"pause|resume|maintenance\",\"groups\":[\"GROUP\", …]}}: {e}"
            ),
        )
    })?;
    if request.groups.is_empty() {
        return Err(Response::refused(
            ErrorCode::BadRequest,
            "name at least one group",
        ));
    }
    debug!(
        "control socket: {} {} from {who}",
        request.command.order().as_str(),
        request.groups.join(", ")
    );
    let answer = handle.order(request.command.order(), request.groups, who);
    match answer.recv_timeout(wait) {
        Ok(Ok(answers)) => Ok(Response::answered(answers)),
        Ok(Err(e)) => Err(Response::order_error(&e)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Response::refused(
            ErrorCode::Busy,
            "the command was carried out, but its actions did not end in time; see the log",
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Response::refused(
            ErrorCode::Stopping,
            "heartbeat stopped before it could answer",
        )),
    }
}

/// `root (uid 0, pid 4242)`: who is on the other end, if they may be
/// served (root, or the user heartbeat runs as).
fn peer(stream: &UnixStream) -> Result<String, Response> {
    let creds = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| {
            Response::refused(
                ErrorCode::PermissionDenied,
                format!("cannot tell who is asking: {e}"),
            )
        })?;
    let (uid, pid) = (creds.uid(), creds.pid());
    let name = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name);
    let me = rustix::process::geteuid().as_raw();
    if uid != 0 && uid != me {
        warn!(
            "control socket: refused {name} (uid {uid}, pid {pid}): only root and uid {me} may use it"
        );
        return Err(Response::refused(
            ErrorCode::PermissionDenied,
            format!("permission denied: only root and uid {me} may use this socket"),
        ));
    }
    Ok(format!("{name} (uid {uid}, pid {pid})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn the_socket_is_0600_replaces_a_stale_one_and_refuses_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hb.sock");
        let first = bind(&path, None).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600);
        // Served (bound and listening): a second one is refused.
        let err = bind(&path, None).unwrap_err();
        assert!(matches!(err, ControlError::InUse { .. }), "{err}");
        // Stale: the socket file of a listener that is gone.
        drop(first);
        let second = bind(&path, None).unwrap();
        drop(second);

        let file = dir.path().join("file");
        std::fs::write(&file, "precious").unwrap();
        let err = bind(&file, None).unwrap_err().to_string();
        assert!(err.contains("something other than a socket"), "{err}");
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(bind(&link, None).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    }
}
