//! TCP checks: healthy when a connection to `host:port` opens in time.
//!
//! The name is resolved with [`super::resolve`], then every address it
//! gives (IPv4 and IPv6, in the resolver's order) is tried until one
//! accepts, all within the one whole-check deadline. Each attempt gets a fair
//! share of the time left, so a first address that swallows packets cannot
//! starve the next one; a refused attempt returns at once and leaves its
//! share to the others. The connection is closed as soon as it opens:
//! nothing is sent.
//!
//! The check is a future ([`Check::probe`]): connecting waits on the
//! runtime's reactor, so a thousand peers that swallow SYNs hold no thread.
//!
//! A connection that completes at once (on loopback, and on a fast LAN, the
//! handshake is often over by the time `connect` returns) costs four
//! system calls and no reactor: `socket` (non-blocking from creation),
//! `connect`, a `poll` that does not wait, `close`. Only a connection still
//! in progress after that is registered with the reactor and waited for
//! (`connect_addr`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use tokio::time::timeout_at;

use super::resolve;
use super::{Check, CheckFuture, CheckResult, block_on, deadline, timed_out};

/// A TCP connect check.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    host: String,
    port: u16,
    timeout: Duration,
}

impl TcpCheck {
    /// A check that connects to `host` (name or IP literal, IPv6 with or
    /// without brackets) on `port`, giving up after `timeout` in all,
    /// name resolution included.
    pub fn new(host: String, port: u16, timeout: Duration) -> TcpCheck {
        TcpCheck {
            host,
            port,
            timeout,
        }
    }

    async fn check(&self) -> CheckResult {
        let start = Instant::now();
        let outcome = connect(&self.host, self.port, start, self.timeout).await;
        let latency = start.elapsed();
        match outcome {
            Ok(()) => CheckResult::pass("connected", latency),
            Err(reason) => CheckResult::fail(reason, latency),
        }
    }
}

impl Check for TcpCheck {
    fn run(&self) -> CheckResult {
        let this = Arc::new(self.clone());
        block_on(Box::pin(async move { this.check().await }))
    }

    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        Some(Box::pin(async move { self.check().await }))
    }
}

/// The reason of a check whose deadline passed while its name was being
/// resolved: `name resolution timed out after 2s`.
pub(crate) fn resolution_timed_out(timeout: Duration) -> String {
    format!("name resolution {}", timed_out(timeout))
}

/// Resolves `host` within the deadline `start + timeout`.
pub(crate) async fn resolve_by(
    host: &str,
    port: u16,
    start: Instant,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, String> {
    match timeout_at(deadline(start, timeout).into(), resolve::lookup(host, port)).await {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(resolution_timed_out(timeout)),
    }
}

/// Connects to the first address of `host` that accepts before
/// `start + timeout`; returns the stream, or the failure reason.
pub(crate) async fn open(
    host: &str,
    port: u16,
    start: Instant,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, String> {
    match open_any(host, port, start, timeout).await? {
        Connection::Registered(stream) => Ok(stream),
        Connection::Ready(fd) => register(fd),
    }
}

/// A connection [`connect_addr`] made.
enum Connection {
    /// Connected without the reactor: a non-blocking socket.
    Ready(OwnedFd),
    /// Waited for on the reactor, and registered with it.
    Registered(tokio::net::TcpStream),
}

/// The socket `fd`, registered with the reactor of the current runtime.
fn register(fd: OwnedFd) -> Result<tokio::net::TcpStream, String> {
    tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd))
        .map_err(|e| format!("cannot wait for the connection: {}", describe(&e)))
}

/// [`open`], leaving a connection that completed at once off the reactor.
async fn open_any(
    host: &str,
    port: u16,
    start: Instant,
    timeout: Duration,
) -> Result<Connection, String> {
    let deadline = deadline(start, timeout);
    let addrs = resolve_by(host, port, start, timeout).await?;
    let mut failures: Vec<(SocketAddr, String)> = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // A fair share of what is left: the last address gets all of it.
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let share = share.max(Duration::from_millis(1)).min(left);
        match connect_addr(*addr, share).await {
            Ok(fd) => return Ok(fd),
            Err(reason) => failures.push((*addr, reason)),
        }
    }
    if Instant::now() >= deadline {
        return Err(timed_out(timeout));
    }
    Err(summarize(&failures))
}

/// Connects one socket to `addr` within `limit`: the socket is created
/// non-blocking, and a connection that is complete (or refused) right after
/// `connect` is known from a `poll` that does not wait, without the
/// reactor. Only one still in progress is registered and waited for.
async fn connect_addr(addr: SocketAddr, limit: Duration) -> Result<Connection, String> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)
        .map_err(|e| describe(&e.into()))?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => return Ok(Connection::Ready(fd)),
        Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::INTR) => {}
        Err(e) => return Err(describe(&e.into())),
    }
    if let Some(done) = finished(&fd) {
        return done.map(|()| Connection::Ready(fd));
    }
    let stream = register(fd)?;
    match tokio::time::timeout(limit, stream.writable()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(describe(&e)),
        Err(_) => return Err("timed out".to_owned()),
    }
    match stream.take_error() {
        Ok(None) => Ok(Connection::Registered(stream)),
        Ok(Some(e)) | Err(e) => Err(describe(&e)),
    }
}

/// Whether the connection in progress on `fd` has ended, without waiting:
/// `None` while the handshake goes on, else whether it connected (a
/// refusal's reason from `SO_ERROR`, as `tokio::net::TcpStream::connect`
/// reads it).
fn finished(fd: &OwnedFd) -> Option<Result<(), String>> {
    let mut fds = [PollFd::new(fd, PollFlags::OUT)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&now)) {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    let events = fds[0].revents();
    if !events.intersects(PollFlags::ERR | PollFlags::HUP) {
        return Some(Ok(()));
    }
    // A hang-up without an error is a connection that opened and was
    // closed by the peer at once: it did open.
    Some(match rustix::net::sockopt::socket_error(fd) {
        Ok(Err(e)) | Err(e) => Err(describe(&e.into())),
        Ok(Ok(())) => Ok(()),
    })
}

async fn connect(host: &str, port: u16, start: Instant, timeout: Duration) -> Result<(), String> {
    open_any(host, port, start, timeout).await.map(drop)
}

/// One reason for all failed attempts: the shared reason if they agree,
/// else each address with its own.
fn summarize(failures: &[(SocketAddr, String)]) -> String {
    match failures {
        [] => "no address to connect to".to_owned(),
        [(_, only)] => only.clone(),
        [(_, first), rest @ ..] if rest.iter().all(|(_, r)| r == first) => first.clone(),
        all => all
            .iter()
            .map(|(addr, reason)| format!("{addr}: {reason}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A short reason for a failed connect: `connection refused`,
/// `network unreachable`, …
pub(crate) fn describe(e: &io::Error) -> String {
    use io::ErrorKind::*;
    let known = match e.kind() {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset",
        ConnectionAborted => "connection aborted",
        TimedOut | WouldBlock => "timed out",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        NetworkDown => "network down",
        AddrNotAvailable => "address not available",
        AddrInUse => "address in use",
        PermissionDenied => "permission denied",
        UnexpectedEof => "connection closed by peer",
        BrokenPipe => "broken pipe",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    strip_os_error(&e.to_string())
}

/// `Connection refused (os error 111)` → `connection refused`.
pub(crate) fn strip_os_error(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback listener with an accept queue of one that never
    /// accepts: once the queue is full, its SYNs are dropped and a connect
    /// stays in progress.
    fn full_listener() -> (OwnedFd, u16) {
        let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        rustix::net::bind(&fd, &any).unwrap();
        rustix::net::listen(&fd, 0).unwrap();
        let bound = rustix::net::getsockname(&fd).unwrap();
        let port = SocketAddr::try_from(bound).unwrap().port();
        (fd, port)
    }

    #[test]
    fn a_connection_that_opens_at_once_refuses_or_stays_in_progress() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = open.local_addr().unwrap().port();
        let check = |port, timeout| TcpCheck::new("127.0.0.1".into(), port, timeout).run();
        let second = Duration::from_secs(1);
        assert_eq!(check(port, second).reason, "connected");
        drop(open);
        let refused = check(port, second);
        assert_eq!(
            (refused.healthy, refused.reason.as_str()),
            (false, "connection refused")
        );
        // The connections that fit in the full listener's queue open; the
        // next one waits on the reactor until the deadline.
        let (_listener, port) = full_listener();
        let timeout = Duration::from_millis(300);
        let stalled = (0..8)
            .map(|_| check(port, timeout))
            .find(|r| !r.healthy)
            .expect("a connect to a full queue stays in progress");
        assert_eq!(stalled.reason, "timed out after 300ms");
        assert!(stalled.latency >= timeout, "{stalled:?}");
    }

    #[test]
    fn agreeing_failures_give_one_reason() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "[::1]:1".parse().unwrap();
        let same = [
            (a, "connection refused".into()),
            (b, "connection refused".into()),
        ];
        assert_eq!(summarize(&same), "connection refused");
        let mixed = [(a, "connection refused".into()), (b, "timed out".into())];
        assert_eq!(
            summarize(&mixed),
            "127.0.0.1:1: connection refused, [::1]:1: timed out"
        );
    }

    #[test]
    fn os_error_suffixes_are_dropped() {
        assert_eq!(
            strip_os_error("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(strip_os_error("Something else"), "something else");
        assert_eq!(strip_os_error(""), "");
    }
}
