//! The TCP probe (a connect, optionally TLS, optionally a dialogue of
//! `send` and `expect`), the gRPC health probe, and the TLS options both
//! take: what [`super::Probe::Tcp`] and [`super::Probe::Grpc`] hold.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::host_port;

/// A TCP check: connect, then optionally TLS, send and expect.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct TcpProbe {
    /// Host name or IP address (v4 or v6, without brackets).
    pub host: String,
    /// Port, 1..=65535.
    pub port: u16,
    /// TLS on the connection (`tls = yes`), if any.
    pub tls: Option<TlsOptions>,
    /// Bytes written once connected (`send`, escapes already decoded);
    /// empty: nothing is sent.
    pub send: Vec<u8>,
    /// What the reply must hold (`expect` or `expect_regex`), if anything
    /// is read at all.
    pub expect: Option<Expect>,
}

impl TcpProbe {
    /// A plain connect check of `host:port`: no TLS, nothing sent or read.
    pub fn connect(host: impl Into<String>, port: u16) -> TcpProbe {
        TcpProbe {
            host: host.into(),
            port,
            tls: None,
            send: Vec::new(),
            expect: None,
        }
    }

    /// `host:port`, with ` (TLS)` after it for a TLS check.
    pub fn endpoint(&self) -> String {
        let address = host_port(&self.host, self.port);
        if self.tls.is_some() {
            format!("{address} (TLS)")
        } else {
            address
        }
    }
}

/// How a TLS connection of a TCP or gRPC check is verified and how long
/// its certificate must still be valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsOptions {
    /// Verify the server certificate and name (`tls_verify`).
    pub verify: bool,
    /// PEM file of CA certificates trusted besides the system roots
    /// (`ca_file`). Absolute after loading.
    pub ca_file: Option<PathBuf>,
    /// Fail when the leaf certificate expires sooner than this
    /// (`tls_min_validity`).
    pub min_validity: Option<Duration>,
}

impl TlsOptions {
    /// Verified against the system roots, no expiry margin.
    pub fn verified() -> TlsOptions {
        TlsOptions {
            verify: true,
            ca_file: None,
            min_validity: None,
        }
    }
}

/// What the reply of a TCP check must hold.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum Expect {
    /// These bytes, anywhere in it (`expect`, escapes decoded).
    Contains(Vec<u8>),
    /// A match of this regular expression (`expect_regex`).
    Regex(Pattern),
}

/// A compiled regular expression (the `regex` crate's syntax) matched
/// against bytes; two patterns are equal (and hash alike) when written
/// alike.
#[derive(Clone)]
pub struct Pattern(pub regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.0.as_str())
    }
}

impl fmt::Display for Expect {
    /// `"+PONG"` (escaped as Rust escapes strings) or `/^\+PONG/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Contains(bytes) => f.write_str(&quote(bytes, usize::MAX)),
            Expect::Regex(pattern) => write!(f, "/{}/", pattern.0.as_str()),
        }
    }
}

/// `bytes` quoted for a reason or a log line: in double quotes, valid UTF-8
/// shown as text with control characters, quotes and backslashes escaped
/// (`\r`, `\n`, `\u{1b}`), other bytes as `\xNN`; past `max` characters of
/// text, cut and ended with `…`.
pub fn quote(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    'chunks: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max {
                out.push('\u{2026}');
                break 'chunks;
            }
            out.extend(c.escape_debug());
            shown += 1;
        }
        for b in chunk.invalid() {
            if shown == max {
                out.push('\u{2026}');
                break 'chunks;
            }
            out.push_str(&format!("\\x{b:02x}"));
            shown += 1;
        }
    }
    out.push('"');
    out
}

/// A gRPC health check: `grpc.health.v1.Health/Check` of one service.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct GrpcProbe {
    /// Host name or IP address (v4 or v6, without brackets).
    pub host: String,
    /// Port, 1..=65535.
    pub port: u16,
    /// The service asked about (`service`); empty: the whole server.
    pub service: String,
    /// The `:authority` of the request, and with TLS the name the
    /// certificate must carry (`authority`); `None`: `host:port`.
    pub authority: Option<String>,
    /// TLS (`grpcs://`, `tls = yes`), if any.
    pub tls: Option<TlsOptions>,
}

impl GrpcProbe {
    /// `grpc://HOST:PORT/SERVICE` or `grpcs://…`, without the `/` when
    /// the service is the whole server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "grpcs" } else { "grpc" };
        let address = host_port(&self.host, self.port);
        if self.service.is_empty() {
            format!("{scheme}://{address}")
        } else {
            format!("{scheme}://{address}/{}", self.service)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_quoted_short_and_safe() {
        assert_eq!(quote(b"+PONG\r\n", 64), r#""+PONG\r\n""#);
        assert_eq!(quote(b"a\"b\\", 64), r#""a\"b\\""#);
        assert_eq!(quote(b"\xff\xfeok", 64), r#""\xff\xfeok""#);
        assert_eq!(quote(b"\x1b[31m", 64), r#""\u{1b}[31m""#);
        assert_eq!(quote("é…x".as_bytes(), 2), "\"é…\u{2026}\"");
        assert_eq!(quote(b"abcdef", 3), "\"abc\u{2026}\"");
        assert_eq!(quote(b"abc", 3), "\"abc\"");
        assert_eq!(quote(b"", 3), "\"\"");
    }

    #[test]
    fn grpc_urls_name_the_service() {
        let mut probe = GrpcProbe {
            host: "::1".into(),
            port: 50051,
            service: String::new(),
            authority: None,
            tls: None,
        };
        assert_eq!(probe.url(), "grpc://[::1]:50051");
        probe.service = "shop.Cart".into();
        probe.tls = Some(TlsOptions::verified());
        assert_eq!(probe.url(), "grpcs://[::1]:50051/shop.Cart");
    }
}
