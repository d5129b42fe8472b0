//! TCP checks that do more than connect: TLS on the connection (`tls =
//! yes`), bytes sent once it is open (`send`), and a reply that must hold a
//! string (`expect`) or match a regular expression (`expect_regex`), as
//! HAProxy's `tcp-check send` and `tcp-check expect` do for Redis, SMTP,
//! LDAP and other line protocols.
//!
//! Everything happens within the one whole-check deadline: resolving,
//! connecting, the TLS handshake, writing and reading. The reply is read as
//! it comes, and the check passes as soon as what was read so far holds
//! the expectation; it fails when the peer closes the connection first,
//! when [`REPLY_CAP`] bytes came without it, or at the deadline: as
//! HAProxy's `tcp-check expect` does, a reply that does not match yet is
//! waited on, since the rest of it may be on its way. A failure
//! quotes the head of what came back (at most [`HEAD_CHARS`] characters,
//! control characters and bytes that are not UTF-8 escaped), never what
//! was sent, which may hold a password (`AUTH …`).
//!
//! A plain connect check (no TLS, nothing sent, nothing expected) is
//! [`super::tcp::TcpCheck`]; the engine runs both as futures on its
//! network runtime.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout_at;

use super::{
    Check, CheckFuture, CheckResult, block_on, certificate, deadline, http, tcp, timed_out,
};
use crate::model::{Expect, TcpProbe, quote};

/// Most reply bytes read (16 KiB, HAProxy's default buffer): the
/// expectation must be met within them.
pub const REPLY_CAP: usize = 16 * 1024;

/// Most characters of a reply quoted in a failure reason.
pub const HEAD_CHARS: usize = 60;

/// A TCP check with TLS, `send` or `expect`.
pub struct ExpectCheck {
    host: String,
    port: u16,
    send: Vec<u8>,
    expect: Option<Expect>,
    tls: Option<Arc<tokio_native_tls::TlsConnector>>,
    min_validity: Option<Duration>,
    timeout: Duration,
}

impl std::fmt::Debug for ExpectCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What is sent may be a secret: only its length is shown.
        f.debug_struct("ExpectCheck")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("send_bytes", &self.send.len())
            .field("expect", &self.expect)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ExpectCheck {
    /// A check of `probe` giving up after `timeout` in all; `tls` is the
    /// connector for its TLS setting, required when `probe.tls` is set.
    pub(crate) fn new(
        probe: &TcpProbe,
        timeout: Duration,
        tls: Option<Arc<tokio_native_tls::TlsConnector>>,
    ) -> ExpectCheck {
        ExpectCheck {
            host: probe.host.clone(),
            port: probe.port,
            send: probe.send.clone(),
            expect: probe.expect.clone(),
            tls,
            min_validity: probe.tls.as_ref().and_then(|t| t.min_validity),
            timeout,
        }
    }

    async fn check(&self) -> CheckResult {
        let start = Instant::now();
        let mut expiry = None;
        let outcome = self.converse(start, &mut expiry).await;
        CheckResult::of_probe(outcome, start, expiry)
    }

    /// Connects, opens TLS if asked (noting the certificate's expiry in
    /// `expiry`), and talks: the success reason or the failure reason.
    async fn converse(
        &self,
        start: Instant,
        expiry: &mut Option<SystemTime>,
    ) -> Result<String, String> {
        let by = deadline(start, self.timeout);
        let stream = tcp::open(&self.host, self.port, start, self.timeout).await?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.talk(stream, by, "connected").await;
        };
        let name = self.host.trim_start_matches('[').trim_end_matches(']');
        let stream = match timeout_at(by.into(), tls.connect(name, stream)).await {
            Err(_) => return Err(timed_out(self.timeout)),
            Ok(Err(e)) => return Err(http::tls_reason(&e)),
            Ok(Ok(stream)) => stream,
        };
        *expiry = certificate::leaf_expiry(&stream);
        certificate::require(self.min_validity, *expiry)?;
        self.talk(stream, by, "connected over TLS").await
    }

    /// Sends, then reads until the expectation is met, before `by`.
    async fn talk<S>(&self, mut stream: S, by: Instant, connected: &str) -> Result<String, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if !self.send.is_empty() {
            let wrote = async {
                stream.write_all(&self.send).await?;
                stream.flush().await
            };
            match timeout_at(by.into(), wrote).await {
                Err(_) => return Err(format!("{} while sending", timed_out(self.timeout))),
                Ok(Err(e)) => return Err(format!("cannot send: {}", tcp::describe(&e))),
                Ok(Ok(())) => {}
            }
        }
        let Some(expect) = &self.expect else {
            return Ok(match self.send.len() {
                0 => connected.to_owned(),
                n => format!("{connected}, sent {n} bytes"),
            });
        };
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if meets(expect, &reply) {
                return Ok(match expect {
                    Expect::Contains(_) => format!("reply contains {expect}"),
                    Expect::Regex(_) => format!("reply matches {expect}"),
                });
            }
            if reply.len() >= REPLY_CAP {
                break format!("nothing matched in the first {REPLY_CAP} bytes");
            }
            let room = chunk.len().min(REPLY_CAP - reply.len());
            match timeout_at(by.into(), stream.read(&mut chunk[..room])).await {
                Err(_) => break timed_out(self.timeout),
                Ok(Ok(0)) => break String::new(),
                Ok(Ok(n)) => reply.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => break tcp::describe(&e),
            }
        };
        Err(mismatch(expect, &reply, &end))
    }
}

/// Whether `reply` holds what `expect` asks for.
fn meets(expect: &Expect, reply: &[u8]) -> bool {
    match expect {
        Expect::Contains(needle) => {
            needle.is_empty() || reply.windows(needle.len()).any(|w| w == needle.as_slice())
        }
        Expect::Regex(pattern) => pattern.0.is_match(reply),
    }
}

/// `expected "+PONG", got "-LOADING …"`, with why the reading stopped
/// before it when that is news: `timed out after 2s; expected …, got
/// nothing`, `nothing matched in the first 16384 bytes; …`, or after it
/// when the peer went away with an error (`…, then connection reset`). A
/// peer that answered otherwise and kept the connection open is reported
/// by its answer alone.
fn mismatch(expect: &Expect, reply: &[u8], end: &str) -> String {
    let got = if reply.is_empty() {
        "nothing".to_owned()
    } else {
        quote(reply, HEAD_CHARS)
    };
    let what = match expect {
        Expect::Contains(_) => format!("expected {expect}, got {got}"),
        Expect::Regex(_) => format!("expected a match of {expect}, got {got}"),
    };
    if end.is_empty() {
        if reply.is_empty() {
            return format!("{what} (connection closed)");
        }
        return what;
    }
    if end.starts_with("timed out") && !reply.is_empty() {
        // The peer answered, and not as expected: that is the news, not
        // that the check waited for the rest of an answer.
        return what;
    }
    if end.starts_with("timed out") || end.starts_with("nothing matched") {
        return format!("{end}; {what}");
    }
    format!("{what}, then {end}")
}

impl Check for ExpectCheck {
    fn run(&self) -> CheckResult {
        let this = Arc::new(ExpectCheck {
            host: self.host.clone(),
            port: self.port,
            send: self.send.clone(),
            expect: self.expect.clone(),
            tls: self.tls.clone(),
            min_validity: self.min_validity,
            timeout: self.timeout,
        });
        block_on(Box::pin(async move { this.check().await }))
    }

    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        Some(Box::pin(async move { self.check().await }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pattern;

    fn regex(text: &str) -> Expect {
        Expect::Regex(Pattern(regex::bytes::Regex::new(text).unwrap()))
    }

    #[test]
    fn expectations_are_met_anywhere_in_the_reply() {
        let pong = Expect::Contains(b"+PONG".to_vec());
        assert!(meets(&pong, b"+PONG\r\n"));
        assert!(meets(&pong, b"junk+PONG"));
        assert!(!meets(&pong, b"+PON"));
        assert!(meets(&Expect::Contains(Vec::new()), b""));
        assert!(meets(&regex(r"^220 "), b"220 mail ESMTP\r\n"));
        assert!(!meets(&regex(r"^220 "), b"554 go away\r\n"));
        assert!(meets(&regex(r"(?m)^250 OK$"), b"250-x\n250 OK\n"));
        assert!(meets(&regex(r"\x00ok"), b"\xff\x00ok"));
    }

    #[test]
    fn mismatches_say_what_came_back() {
        let pong = Expect::Contains(b"+PONG".to_vec());
        assert_eq!(
            mismatch(&pong, b"-LOADING\r\n", ""),
            r#"expected "+PONG", got "-LOADING\r\n""#
        );
        assert_eq!(
            mismatch(&pong, b"", ""),
            r#"expected "+PONG", got nothing (connection closed)"#
        );
        assert_eq!(
            mismatch(&pong, b"", "timed out after 2s"),
            r#"timed out after 2s; expected "+PONG", got nothing"#
        );
        assert_eq!(
            mismatch(&pong, b"-LOADING\r\n", "timed out after 2s"),
            r#"expected "+PONG", got "-LOADING\r\n""#
        );
        assert_eq!(
            mismatch(&pong, b"-E", "connection reset"),
            r#"expected "+PONG", got "-E", then connection reset"#
        );
        assert_eq!(
            mismatch(&regex("^220"), b"554\r\n", ""),
            r#"expected a match of /^220/, got "554\r\n""#
        );
    }
}
