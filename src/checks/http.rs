//! HTTP and HTTPS checks, on ureq.
//!
//! A check sends `GET URL` and is healthy when the final status (after at
//! most [`MAX_REDIRECTS`] redirects) is in `expect_status` and, if
//! `expect_body` is set, the body contains it. The body is always read, to
//! its end or to [`BODY_CAP`] bytes, because a response that does not
//! arrive in time is a failure.
//!
//! Agents are built by [`build`](super::build) once per TLS setting and
//! shared by every check with that setting. Each agent resolves names with
//! the pool of [`super::resolve`] instead of ureq's resolver (which spawns a
//! thread per lookup), opens TLS with the prebuilt connector of `tls.rs`,
//! ignores proxy variables from the environment and keeps no idle
//! connections, so every run measures a fresh connection as a client
//! would. The whole-check deadline is ureq's global timeout, which covers
//! resolution, connection, TLS, redirects and the body.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::tls::{TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::time::Duration as UDuration;
use ureq::unversioned::transport::{Connector, NextTimeout, TcpConnector};
use ureq::{Agent, Body, Error};

use super::resolve::{self, ResolveError};
use super::{Check, CheckResult, deadline, tcp, timed_out, tls};
use crate::model::{HttpProbe, StatusSet};

/// Most redirects followed before a check fails with `too many redirects`.
pub const MAX_REDIRECTS: u32 = 5;

/// Most body bytes read (64 KiB); `expect_body` must appear in them. The
/// rest of a longer body is not waited for.
pub const BODY_CAP: u64 = 64 * 1024;

/// The agents of one configuration, one per TLS setting.
#[derive(Default)]
pub(crate) struct Agents {
    by_setting: HashMap<(bool, Option<PathBuf>), Agent>,
}

impl Agents {
    /// The agent for the TLS setting of `probe`, built on first request.
    ///
    /// # Errors
    /// See [`tls::connector`].
    pub(crate) fn get(&mut self, probe: &HttpProbe) -> Result<Agent, String> {
        let key = (probe.tls_verify, probe.ca_file.clone());
        if let Some(agent) = self.by_setting.get(&key) {
            return Ok(agent.clone());
        }
        let agent = new_agent(probe.tls_verify, probe.ca_file.as_deref())?;
        self.by_setting.insert(key, agent.clone());
        Ok(agent)
    }
}

fn new_agent(verify: bool, ca_file: Option<&std::path::Path>) -> Result<Agent, String> {
    let connector = ().chain(TcpConnector::default()).chain(tls::connector(verify, ca_file)?);
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(MAX_REDIRECTS)
        .max_redirects_will_error(true)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .user_agent(concat!("heartbeat/", env!("CARGO_PKG_VERSION")))
        // Informational: TLS is done by the connector above, not by ureq.
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::NativeTls)
                .disable_verification(!verify)
                .build(),
        )
        .build();
    Ok(Agent::with_parts(config, connector, PoolResolver))
}

/// An HTTP or HTTPS check.
pub struct HttpCheck {
    agent: Agent,
    url: String,
    timeout: Duration,
    expect_status: StatusSet,
    expect_body: Option<String>,
    redirects: u32,
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
    /// A check of `probe` with a whole-check deadline of `timeout`, sending
    /// its requests through `agent`.
    ///
    /// Redirects are followed unless `expect_status` lists a 3xx code: then
    /// the check is about the redirect itself and sees it as the answer.
    ///
    /// # Errors
    /// When the URL of `probe` is not a valid URL.
    pub(crate) fn new(
        probe: &HttpProbe,
        timeout: Duration,
        agent: Agent,
    ) -> Result<HttpCheck, String> {
        let url = probe.url();
        match url.parse::<Uri>() {
            Ok(uri) if uri.host().is_some() => {}
            _ => return Err(format!("invalid URL {url}")),
        }
        let expects_redirect = (300..=399).any(|s| probe.expect_status.contains(s));
        Ok(HttpCheck {
            agent,
            url,
            timeout,
            expect_status: probe.expect_status.clone(),
            expect_body: probe.expect_body.clone(),
            redirects: if expects_redirect { 0 } else { MAX_REDIRECTS },
        })
    }

    /// Runs the request; the success reason or the failure reason.
    fn probe(&self) -> Result<String, String> {
        let mut response = self
            .agent
            .get(&self.url)
            .config()
            .timeout_global(Some(self.timeout))
            .max_redirects(self.redirects)
            .build()
            .call()
            .map_err(|e| self.reason(e))?;
        let status = response.status().as_u16();
        if !self.expect_status.contains(status) {
            return Err(format!("HTTP {status}"));
        }
        let body = read_capped(response.body_mut()).map_err(|e| self.reason(e))?;
        if let Some(text) = &self.expect_body {
            if !contains(&body, text.as_bytes()) {
                return Err(format!("HTTP {status} but body does not contain {text:?}"));
            }
        }
        Ok(format!("HTTP {status}"))
    }

    /// A short human reason for a ureq error.
    fn reason(&self, e: Error) -> String {
        match e {
            Error::Timeout(_) => timed_out(self.timeout),
            Error::HostNotFound => "no such host".to_owned(),
            Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => timed_out(self.timeout),
            Error::Io(io) => tcp::describe(&io),
            Error::NativeTls(t) => tls::describe(&t),
            Error::TooManyRedirects => format!("too many redirects (more than {MAX_REDIRECTS})"),
            Error::RedirectFailed => "redirect without a usable Location".to_owned(),
            Error::Protocol(p) => format!("invalid HTTP response: {p}"),
            Error::LargeResponseHeader(..) => "response headers too large".to_owned(),
            Error::BodyStalled => "response body stalled".to_owned(),
            Error::BadUri(u) => format!("invalid URL: {u}"),
            Error::Http(h) => format!("invalid request: {h}"),
            Error::Tls(t) => format!("TLS handshake failed: {t}"),
            Error::TlsRequired => "TLS required but not negotiated".to_owned(),
            Error::Other(other) => match other.downcast::<ResolveError>() {
                Ok(r) if *r == ResolveError::TimedOut => {
                    format!("{} (name resolution)", timed_out(self.timeout))
                }
                Ok(r) => r.to_string(),
                Err(other) => other.to_string(),
            },
            other => other.to_string(),
        }
    }
}

impl Check for HttpCheck {
    fn run(&self) -> CheckResult {
        let start = Instant::now();
        // ureq is not ours: should it panic on some peer's input, the check
        // fails instead of taking its worker thread down.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.probe()))
            .unwrap_or_else(|_| Err("internal error in the HTTP client".to_owned()));
        let latency = start.elapsed();
        match outcome {
            Ok(reason) => CheckResult::pass(reason, latency),
            Err(reason) => CheckResult::fail(reason, latency),
        }
    }
}

/// The body up to [`BODY_CAP`] bytes. ureq's global timeout bounds the
/// reads, so a trickled body fails at the deadline.
fn read_capped(body: &mut Body) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    body.as_reader()
        .take(BODY_CAP)
        .read_to_end(&mut buf)
        .map_err(Error::from)?;
    Ok(buf)
}

/// Whether `needle` occurs in `haystack` (an empty needle always does).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Name resolution for ureq through the shared resolver pool, bounded by
/// the time ureq has left for the request.
#[derive(Debug)]
struct PoolResolver;

impl Resolver for PoolResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        let no_host = || Error::BadUri(format!("{uri}: no host"));
        let host = uri.host().ok_or_else(no_host)?;
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
            .ok_or_else(|| Error::BadUri(format!("{uri}: unknown scheme")))?;
        let now = Instant::now();
        let until = match timeout.after {
            UDuration::Exact(left) => deadline(now, left),
            UDuration::NotHappening => deadline(now, Duration::MAX),
        };
        let addrs = resolve::resolve(host, port, until).map_err(|e| match e {
            ResolveError::NoSuchHost => Error::HostNotFound,
            // Kept apart from ureq's own timeouts so the reason can say
            // the time went on name resolution.
            failed => Error::Other(Box::new(failed)),
        })?;
        let mut wanted = self.empty();
        for addr in config.ip_family().keep_wanted(addrs.into_iter()) {
            if wanted.try_push(addr).is_err() {
                break;
            }
        }
        if wanted.is_empty() {
            return Err(Error::HostNotFound);
        }
        Ok(wanted)
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
        }
    }

    #[test]
    fn agents_are_shared_per_tls_setting() {
        let mut agents = Agents::default();
        let plain = probe("127.0.0.1", StatusSet::default());
        let mut unverified = plain.clone();
        unverified.tls_verify = false;
        agents.get(&plain).unwrap();
        agents.get(&plain).unwrap();
        agents.get(&unverified).unwrap();
        assert_eq!(agents.by_setting.len(), 2);
    }

    #[test]
    fn expecting_a_redirect_stops_following_them() {
        let agent = Agents::default()
            .get(&probe("127.0.0.1", StatusSet::default()))
            .unwrap();
        let follow = HttpCheck::new(
            &probe("127.0.0.1", StatusSet::default()),
            Duration::from_secs(1),
            agent.clone(),
        )
        .unwrap();
        assert_eq!(follow.redirects, MAX_REDIRECTS);
        let see = HttpCheck::new(
            &probe("127.0.0.1", StatusSet(vec![200..=299, 301..=301])),
            Duration::from_secs(1),
            agent,
        )
        .unwrap();
        assert_eq!(see.redirects, 0);
    }

    #[test]
    fn bad_urls_are_build_errors() {
        let agent = Agents::default()
            .get(&probe("127.0.0.1", StatusSet::default()))
            .unwrap();
        let mut bad = probe("127.0.0.1", StatusSet::default());
        bad.path = "/a path with spaces".to_owned();
        let err = HttpCheck::new(&bad, Duration::from_secs(1), agent).unwrap_err();
        assert!(err.contains("invalid URL"), "{err}");
    }
}
