//! TLS for HTTPS checks: one prebuilt native-tls connector per TLS setting.
//!
//! ureq's own native-tls connector rebuilds its TLS context whenever a
//! request carries its own configuration, which every check does (each has
//! its own timeout), and it cannot add a CA to the system roots: its
//! `RootCerts::Specific` replaces them. This connector is built once per
//! distinct (`tls_verify`, `ca_file`) by [`connector`] and plugged into the
//! agent's connector chain after TCP. It keeps OpenSSL's default roots (the
//! system bundle) and adds the CAs of `ca_file` to them, and it passes the
//! remaining whole-check budget down to the handshake, so a peer that
//! accepts and stalls the handshake cannot hold a check past its deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use native_tls::HandshakeError;
use ureq::Error;
use ureq::tls::PemItem;
use ureq::unversioned::transport::time::{Duration as UDuration, Instant as UInstant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// Builds the TLS connector for one TLS setting.
///
/// With `verify`, server certificates are checked against the system roots
/// (OpenSSL's defaults) plus every certificate in the PEM file `ca_file`,
/// and the name in the URL must match the certificate. Without it, any
/// certificate and name are accepted; `ca_file` is still read and checked,
/// so a typo in it is caught at load time either way.
///
/// # Errors
/// A message naming `ca_file` when it cannot be read, is not PEM, holds no
/// certificate or holds an invalid one, or when the TLS library refuses to
/// build a context.
pub(crate) fn connector(verify: bool, ca_file: Option<&Path>) -> Result<TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            builder.add_root_certificate(cert);
        }
    }
    if !verify {
        builder.danger_accept_invalid_certs(true);
        builder.danger_accept_invalid_hostnames(true);
    }
    let inner = builder
        .build()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(TlsConnector {
        inner: Arc::new(inner),
    })
}

/// The certificates of a PEM file, at least one.
fn read_ca_file(path: &Path) -> Result<Vec<native_tls::Certificate>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "ca_file {shown}: cannot read it: {}",
            super::tcp::strip_os_error(&e.to_string())
        )
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => {
                let cert = native_tls::Certificate::from_der(c.der()).map_err(|e| {
                    format!(
                        "ca_file {shown}: invalid certificate #{}: {e}",
                        certs.len() + 1
                    )
                })?;
                certs.push(cert);
            }
            Ok(_) => {}
            Err(e) => return Err(format!("ca_file {shown}: not a PEM file: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!("ca_file {shown}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// A connector that wraps the TCP transport in TLS for `https` URLs and
/// passes any other transport through.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    inner: Arc<native_tls::TlsConnector>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);

        let mut adapter = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        adapter.set_timeout(remaining(details));
        let stream = Capture::new(adapter);
        let captured = Arc::clone(&stream.slot);

        match self.inner.connect(host, stream) {
            Ok(stream) => Ok(Some(Either::B(TlsTransport {
                buffers: LazyBuffers::new(
                    details.config.input_buffer_size(),
                    details.config.output_buffer_size(),
                ),
                stream,
            }))),
            // A transport error (timeout, reset) says more than the TLS
            // library's rendering of it.
            Err(HandshakeError::Failure(e)) => Err(take(&captured).unwrap_or(Error::NativeTls(e))),
            Err(HandshakeError::WouldBlock(_)) => {
                Err(take(&captured).unwrap_or(Error::Tls("TLS handshake interrupted")))
            }
        }
    }
}

/// The connect budget of `details` minus the time already spent connecting
/// (TCP), measured from when ureq computed it.
fn remaining(details: &ConnectionDetails) -> NextTimeout {
    let mut timeout = details.timeout;
    if let (UDuration::Exact(after), UInstant::Exact(start), UInstant::Exact(now)) =
        (timeout.after, details.now, (details.current_time)())
    {
        let spent = now.saturating_duration_since(start);
        timeout.after = UDuration::Exact(after.saturating_sub(spent));
    }
    timeout
}

/// A TLS session over the transport below it.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: native_tls::TlsStream<Capture>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.stream.get_mut().adapter.set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        let written = self.stream.write_all(output);
        self.stream.get_mut().take_error()?;
        written?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.stream.get_mut().adapter.set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = match self.stream.read(input) {
            Ok(n) => {
                if n == 0 {
                    // The TLS library reports some transport errors as EOF.
                    self.stream.get_mut().take_error()?;
                }
                n
            }
            Err(e) => {
                self.stream.get_mut().take_error()?;
                return Err(e.into());
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().adapter.get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// The transport below TLS, keeping the last transport error aside: the TLS
/// library only sees a stand-in for it, and the original (a timeout above
/// all) is what the check must report.
struct Capture {
    adapter: TransportAdapter,
    slot: Arc<Mutex<Option<Error>>>,
}

impl Capture {
    fn new(adapter: TransportAdapter) -> Capture {
        Capture {
            adapter,
            slot: Arc::new(Mutex::new(None)),
        }
    }

    fn keep(&self, e: io::Error) -> io::Error {
        let error = Error::from(e);
        let stand_in = io::Error::other(error.to_string());
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        stand_in
    }

    fn take_error(&self) -> Result<(), Error> {
        match take(&self.slot) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn take(slot: &Mutex<Option<Error>>) -> Option<Error> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

impl Read for Capture {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.adapter.read(buf).map_err(|e| self.keep(e))
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.adapter.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.adapter.flush().map_err(|e| self.keep(e))
    }
}

/// A short reason for a failed TLS handshake: `certificate not trusted
/// (self-signed certificate)`, `certificate name mismatch`, `certificate
/// expired`, or `TLS handshake failed: wrong version number`.
///
/// native-tls on OpenSSL renders a verification failure as the OpenSSL
/// error followed by the verification result in parentheses; that result
/// is what tells the cases apart.
pub(crate) fn describe(e: &native_tls::Error) -> String {
    describe_text(&e.to_string())
}

fn describe_text(text: &str) -> String {
    if let Some(verify) = verify_result(text) {
        let lower = verify.to_ascii_lowercase();
        return if lower.contains("mismatch") {
            "certificate name mismatch".to_owned()
        } else if lower.contains("expired") {
            "certificate expired".to_owned()
        } else if lower.contains("not yet valid") {
            "certificate not yet valid".to_owned()
        } else {
            format!("certificate not trusted ({verify})")
        };
    }
    let reason = openssl_reason(text);
    if reason.contains("certificate verify failed") {
        return "certificate not trusted".to_owned();
    }
    if reason.is_empty() {
        return "TLS handshake failed".to_owned();
    }
    format!("TLS handshake failed: {reason}")
}

/// The verification result native-tls appends as ` (RESULT)`, if any.
fn verify_result(text: &str) -> Option<&str> {
    let inner = text.strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let result = &inner[open + 2..];
    (!result.is_empty() && !result.starts_with("os error")).then_some(result)
}

/// The reason field of an OpenSSL error line
/// (`error:CODE:LIBRARY:FUNCTION:REASON:FILE:LINE:`), else the text itself,
/// kept short.
fn openssl_reason(text: &str) -> String {
    let first = text.split(", error:").next().unwrap_or(text);
    let reason = if first.starts_with("error:") {
        first.split(':').nth(4).unwrap_or(first)
    } else {
        first
    };
    let reason = super::tcp::strip_os_error(reason.trim());
    if reason.chars().count() > 120 {
        let mut short: String = reason.chars().take(117).collect();
        short.push_str("...");
        short
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "error:0A000086:SSL routines:tls_post_process_server_certificate:\
                          certificate verify failed:../ssl/statem/statem_clnt.c:1889:";

    #[test]
    fn verification_results_name_the_problem() {
        assert_eq!(
            describe_text(&format!("{PREFIX} (self-signed certificate)")),
            "certificate not trusted (self-signed certificate)"
        );
        assert_eq!(
            describe_text(&format!(
                "{PREFIX} (unable to get local issuer certificate)"
            )),
            "certificate not trusted (unable to get local issuer certificate)"
        );
        assert_eq!(
            describe_text(&format!("{PREFIX} (hostname mismatch)")),
            "certificate name mismatch"
        );
        assert_eq!(
            describe_text(&format!("{PREFIX} (IP address mismatch)")),
            "certificate name mismatch"
        );
        assert_eq!(
            describe_text(&format!("{PREFIX} (certificate has expired)")),
            "certificate expired"
        );
        assert_eq!(describe_text(PREFIX), "certificate not trusted");
    }

    #[test]
    fn other_failures_give_the_openssl_reason() {
        assert_eq!(
            describe_text(
                "error:0A00010B:SSL routines:ssl3_get_record:wrong version number:\
                 ../ssl/record/ssl3_record.c:354:"
            ),
            "TLS handshake failed: wrong version number"
        );
        assert_eq!(
            describe_text("unexpected EOF"),
            "TLS handshake failed: unexpected EOF"
        );
        assert_eq!(describe_text(""), "TLS handshake failed");
    }
}
