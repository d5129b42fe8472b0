//! HTTP and HTTPS checks, on hyper over the network runtime.
//!
//! A check sends `GET URL` and is healthy when the final status (after at
//! most [`MAX_REDIRECTS`] redirects) is in `expect_status` and, if
//! `expect_body` is set, the body contains it. The body is always read, to
//! its end or to [`BODY_CAP`] bytes, because a response that does not
//! arrive in time is a failure.
//!
//! Every run opens a fresh connection (`Connection: close`, nothing kept
//! between runs), as a client would, resolves names with
//! [`super::resolve`], ignores proxy variables, and keeps to one
//! whole-check deadline that covers resolution, connection, TLS, every
//! redirect and the body. The check is a future ([`Check::probe`]): while it
//! waits for a peer it holds no thread, so a thousand peers that accept and
//! never answer cost sockets and timers, not capacity. TLS connectors are
//! shared per TLS setting, and built only when a check first needs one.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Check, CheckFuture, CheckResult, block_on, certificate, tcp, tls, within_deadline};
use crate::model::{HttpProbe, StatusSet, host_port};

/// Most redirects followed before a check fails with `too many redirects`.
pub const MAX_REDIRECTS: u32 = 5;

/// Most body bytes read (64 KiB); `expect_body` must appear in them. The
/// rest of a longer body is not waited for.
pub const BODY_CAP: usize = 64 * 1024;

/// Largest response head accepted, in bytes.
const MAX_HEAD: usize = 64 * 1024;

const AGENT: &str = concat!("heartbeat/", env!("CARGO_PKG_VERSION"));

/// The TLS connectors of one configuration, one per TLS setting.
#[derive(Default)]
pub(crate) struct Agents {
    by_setting: HashMap<(bool, Option<PathBuf>), Arc<Connector>>,
}

impl Agents {
    /// The TLS connector for the TLS setting of `probe`, shared by every
    /// check with that setting. It is built now for an `https://` check or
    /// one with a `ca_file`, so that a bad setting is a load error. A plain
    /// `http://` check needs one only when a redirect leads to HTTPS: its
    /// connector is built then, once, which keeps the TLS library's
    /// start-up (about 2.5 MiB of it resident) out of a daemon that never
    /// speaks TLS.
    ///
    /// # Errors
    /// See [`tls::connector`].
    pub(crate) fn get(&mut self, probe: &HttpProbe) -> Result<Arc<Connector>, String> {
        let key = (probe.tls_verify, probe.ca_file.clone());
        let connector = Arc::clone(self.by_setting.entry(key).or_insert_with(|| {
            Arc::new(Connector {
                verify: probe.tls_verify,
                ca_file: probe.ca_file.clone(),
                built: OnceLock::new(),
            })
        }));
        if probe.https || probe.ca_file.is_some() {
            connector.get()?;
        }
        Ok(connector)
    }
}

/// The TLS connector of one TLS setting (`tls_verify`, `ca_file`), built on
/// first use and then shared.
pub(crate) struct Connector {
    verify: bool,
    ca_file: Option<PathBuf>,
    built: OnceLock<Result<tokio_native_tls::TlsConnector, String>>,
}

impl Connector {
    /// The connector, built by the first call.
    ///
    /// # Errors
    /// See [`tls::connector`]; every call returns the first call's error.
    fn get(&self) -> Result<&tokio_native_tls::TlsConnector, String> {
        self.built
            .get_or_init(|| tls::connector(self.verify, self.ca_file.as_deref()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// An HTTP or HTTPS check.
pub struct HttpCheck {
    tls: Arc<Connector>,
    url: Target,
    timeout: Duration,
    expect_status: StatusSet,
    expect_body: Option<String>,
    redirects: u32,
    min_validity: Option<Duration>,
}

impl fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCheck")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpCheck {
    /// A check of `probe` with a whole-check deadline of `timeout`, opening
    /// TLS with `tls`.
    ///
    /// Redirects are followed unless `expect_status` lists a 3xx code: then
    /// the check is about the redirect itself and sees it as the answer.
    ///
    /// # Errors
    /// When the URL of `probe` is not a valid URL.
    pub(crate) fn new(
        probe: &HttpProbe,
        timeout: Duration,
        tls: Arc<Connector>,
    ) -> Result<HttpCheck, String> {
        let url = probe.url();
        let target = Target::parse(&url).ok_or_else(|| format!("invalid URL {url}"))?;
        let expects_redirect = (300..=399).any(|s| probe.expect_status.contains(s));
        Ok(HttpCheck {
            tls,
            url: target,
            timeout,
            expect_status: probe.expect_status.clone(),
            expect_body: probe.expect_body.clone(),
            redirects: if expects_redirect { 0 } else { MAX_REDIRECTS },
            min_validity: probe.tls_min_validity,
        })
    }

    async fn check(&self) -> CheckResult {
        let start = Instant::now();
        let mut expiry = None;
        let outcome = within_deadline(start, self.timeout, self.follow(start, &mut expiry)).await;
        CheckResult::of_probe(outcome, start, expiry)
    }

    /// Requests the URL, following redirects; the success reason or the
    /// failure reason. `expiry` keeps the earliest certificate expiry seen.
    async fn follow(
        &self,
        start: Instant,
        expiry: &mut Option<SystemTime>,
    ) -> Result<String, String> {
        let mut target = self.url.clone();
        let mut redirects = 0;
        loop {
            let response = self.exchange(&target, start, expiry).await?;
            let status = response.status;
            let redirect = (300..=399).contains(&status) && self.redirects > 0;
            if redirect && status != 304 {
                if redirects == self.redirects {
                    return Err(format!("too many redirects (more than {MAX_REDIRECTS})"));
                }
                redirects += 1;
                target = response
                    .location
                    .as_deref()
                    .and_then(|l| target.join(l))
                    .ok_or("redirect without a usable Location")?;
                continue;
            }
            if !self.expect_status.contains(status) {
                return Err(format!("HTTP {status}"));
            }
            if let Some(text) = &self.expect_body {
                if !contains(&response.body, text.as_bytes()) {
                    return Err(format!("HTTP {status} but body does not contain {text:?}"));
                }
            }
            return Ok(format!("HTTP {status}"));
        }
    }

    /// One request on a fresh connection to `target`; over TLS, the
    /// certificate must be valid for `tls_min_validity` still, and its
    /// expiry is kept in `expiry` when it is the earliest yet.
    async fn exchange(
        &self,
        target: &Target,
        start: Instant,
        expiry: &mut Option<SystemTime>,
    ) -> Result<Answer, String> {
        let tcp = tcp::open(&target.host, target.port, start, self.timeout).await?;
        let _ = tcp.set_nodelay(true);
        if !target.https {
            return request(tcp, target).await;
        }
        let name = target.host.trim_start_matches('[').trim_end_matches(']');
        match self.tls.get()?.connect(name, tcp).await {
            Ok(stream) => {
                let this = certificate::leaf_expiry(&stream);
                if let Some(at) = this {
                    *expiry = Some(expiry.map_or(at, |earlier| earlier.min(at)));
                }
                certificate::require(self.min_validity, this)?;
                request(stream, target).await
            }
            Err(e) => Err(tls_reason(&e)),
        }
    }
}

impl Check for HttpCheck {
    fn run(&self) -> CheckResult {
        let this = Arc::new(HttpCheck {
            tls: Arc::clone(&self.tls),
            url: self.url.clone(),
            timeout: self.timeout,
            expect_status: self.expect_status.clone(),
            expect_body: self.expect_body.clone(),
            redirects: self.redirects,
            min_validity: self.min_validity,
        });
        block_on(Box::pin(async move { this.check().await }))
    }

    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        Some(Box::pin(async move { self.check().await }))
    }
}

/// What a response said, as far as a check cares.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// Sends `GET` for `target` over `io` and reads the answer: its status,
/// `Location` and up to [`BODY_CAP`] bytes of body.
async fn request<T>(io: T, target: &Target) -> Result<Answer, String>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_reason(&e))?;
    let request = Request::get(target.path_and_query.as_str())
        .header(HOST, target.host_header())
        .header(USER_AGENT, AGENT)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("invalid request: {e}"))?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| hyper_reason(&e))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while kept.len() < BODY_CAP {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = BODY_CAP - kept.len();
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(e)) => return Err(hyper_reason(&e)),
            }
        }
        Ok(Answer {
            status,
            location,
            body: kept,
        })
    };
    // The connection is driven here, beside the exchange, not on a task of
    // its own: when the check ends or gives up, both are dropped and the
    // socket is closed.
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        answer = &mut exchange => answer,
        _ = &mut conn => exchange.await,
    }
}

/// A short reason for a failed exchange: `connection closed by peer`,
/// `connection reset`, `invalid HTTP response: …`, `response headers too
/// large`.
fn hyper_reason(e: &hyper::Error) -> String {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return tcp::describe(io);
        }
        source = inner.source();
    }
    if e.is_incomplete_message() {
        "connection closed by peer".to_owned()
    } else if e.is_parse_too_large() {
        "response headers too large".to_owned()
    } else if e.is_parse() || e.is_parse_status() {
        format!("invalid HTTP response: {e}")
    } else if e.is_canceled() || e.is_closed() {
        "connection closed by peer".to_owned()
    } else {
        e.to_string()
    }
}

/// A short reason for a failed TLS handshake, from the transport error
/// when there was one (`connection reset`), else from the TLS library.
pub(crate) fn tls_reason(e: &native_tls::Error) -> String {
    use std::error::Error as _;
    if let Some(io) = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
        return tcp::describe(io);
    }
    tls::describe(e)
}

/// Whether `needle` occurs in `haystack` (an empty needle always does).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `reference` starts with a URI scheme (`ALPHA *( ALPHA / DIGIT
/// / "+" / "-" / "." ) ":"`, RFC 3986 §3.1), so is an absolute URI.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Where a request goes: scheme, host, port and the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    /// Host name or IP literal, IPv6 in brackets.
    host: String,
    port: u16,
    /// `/path?query`, never empty.
    path_and_query: String,
}

impl Target {
    /// An absolute `http://` or `https://` URL.
    fn parse(url: &str) -> Option<Target> {
        let uri: Uri = url.parse().ok()?;
        let https = match uri.scheme_str()? {
            s if s.eq_ignore_ascii_case("https") => true,
            s if s.eq_ignore_ascii_case("http") => false,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host().to_owned();
        if host.is_empty() {
            return None;
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Some(Target {
            https,
            host,
            port,
            path_and_query,
        })
    }

    /// The target a `Location` value points at, relative to this one
    /// (RFC 9110 §10.2.2, RFC 3986 §5): an absolute URL, a
    /// scheme-relative `//host/path`, an absolute path, or a path relative
    /// to this one's directory. The fragment is dropped.
    fn join(&self, location: &str) -> Option<Target> {
        let location = location.split('#').next().unwrap_or_default().trim();
        if location.is_empty() {
            return None;
        }
        let scheme = if self.https { "https" } else { "http" };
        if has_scheme(location) {
            // Absolute: only http and https are followed.
            return Target::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Target::parse(&format!("{scheme}://{rest}"));
        }
        let here = format!("{scheme}://{}", host_port(self.bare_host(), self.port));
        if location.starts_with('/') {
            return Target::parse(&format!("{here}{location}"));
        }
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        let dir = &path[..=path.rfind('/').unwrap_or(0)];
        Target::parse(&format!("{here}{dir}{location}"))
    }

    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The `Host` header: the host, with the port unless it is the
    /// scheme's default.
    fn host_header(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            host_port(self.bare_host(), self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_search_works_on_bytes() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"status: ko\n", b"ok"));
        assert!(contains(b"", b""));
        assert!(!contains(b"o", b"ok"));
        assert!(contains(b"\xff\xfeok", b"ok"));
    }

    fn probe(url_host: &str, expect: StatusSet) -> HttpProbe {
        HttpProbe {
            https: false,
            host: url_host.to_owned(),
            port: 80,
            path: "/".to_owned(),
            expect_status: expect,
            expect_body: None,
            tls_verify: true,
            ca_file: None,
            tls_min_validity: None,
        }
    }

    #[test]
    fn connectors_are_shared_per_tls_setting() {
        let mut agents = Agents::default();
        let plain = probe("127.0.0.1", StatusSet::default());
        let mut unverified = plain.clone();
        unverified.tls_verify = false;
        agents.get(&plain).unwrap();
        agents.get(&plain).unwrap();
        agents.get(&unverified).unwrap();
        assert_eq!(agents.by_setting.len(), 2);
        let built = |a: &Agents| {
            a.by_setting
                .values()
                .filter(|c| c.built.get().is_some())
                .count()
        };
        assert_eq!(built(&agents), 0, "plain HTTP builds no TLS connector");
        let mut secure = plain.clone();
        secure.https = true;
        agents.get(&secure).unwrap();
        assert_eq!(
            agents.by_setting.len(),
            2,
            "HTTPS shares the setting's connector"
        );
        assert_eq!(
            built(&agents),
            1,
            "an HTTPS check builds its connector at load"
        );
    }

    #[test]
    fn a_bad_ca_file_is_a_load_error_even_for_plain_http() {
        let mut p = probe("127.0.0.1", StatusSet::default());
        p.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = Agents::default().get(&p).err().expect("a load error");
        assert!(
            err.starts_with("ca_file /nonexistent/ca.pem: cannot read it: "),
            "{err}"
        );
    }

    #[test]
    fn expecting_a_redirect_stops_following_them() {
        let tls = Agents::default()
            .get(&probe("127.0.0.1", StatusSet::default()))
            .unwrap();
        let follow = HttpCheck::new(
            &probe("127.0.0.1", StatusSet::default()),
            Duration::from_secs(1),
            Arc::clone(&tls),
        )
        .unwrap();
        assert_eq!(follow.redirects, MAX_REDIRECTS);
        let see = HttpCheck::new(
            &probe("127.0.0.1", StatusSet(vec![200..=299, 301..=301])),
            Duration::from_secs(1),
            tls,
        )
        .unwrap();
        assert_eq!(see.redirects, 0);
    }

    #[test]
    fn bad_urls_are_build_errors() {
        let tls = Agents::default()
            .get(&probe("127.0.0.1", StatusSet::default()))
            .unwrap();
        let mut bad = probe("127.0.0.1", StatusSet::default());
        bad.path = "/a path with spaces".to_owned();
        let err = HttpCheck::new(&bad, Duration::from_secs(1), tls).unwrap_err();
        assert!(err.contains("invalid URL"), "{err}");
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let base = Target::parse("http://example.org:8080/a/b?x=1").unwrap();
        let join = |l: &str| {
            let t = base.join(l).unwrap();
            format!(
                "{}://{}:{}{}",
                if t.https { "https" } else { "http" },
                t.host,
                t.port,
                t.path_and_query
            )
        };
        assert_eq!(join("/health"), "http://example.org:8080/health");
        assert_eq!(join("c?y=2"), "http://example.org:8080/a/c?y=2");
        assert_eq!(join("//other/x"), "http://other:80/x");
        assert_eq!(join("https://secure/"), "https://secure:443/");
        assert_eq!(join("/p#frag"), "http://example.org:8080/p");
        assert!(base.join("").is_none());
        assert!(base.join("ftp://x/").is_none());
        let v6 = Target::parse("http://[::1]:81/").unwrap();
        assert_eq!(v6.host, "[::1]");
        assert_eq!(v6.host_header(), "[::1]:81");
        assert_eq!(v6.join("/x").unwrap().host, "[::1]");
    }
}
