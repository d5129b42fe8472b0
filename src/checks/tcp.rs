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

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        match tokio::time::timeout(share, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => failures.push((*addr, describe(&e))),
            Err(_) => failures.push((*addr, "timed out".to_owned())),
        }
    }
    if Instant::now() >= deadline {
        return Err(timed_out(timeout));
    }
    Err(summarize(&failures))
}

async fn connect(host: &str, port: u16, start: Instant, timeout: Duration) -> Result<(), String> {
    open(host, port, start, timeout).await.map(drop)
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
