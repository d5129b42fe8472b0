//! TLS for HTTPS checks, and for TCP checks with `tls = yes`: one prebuilt
//! native-tls connector per TLS setting.
//!
//! The connector is built once per distinct (`tls_verify`, `ca_file`) by
//! [`connector`] when the configuration is loaded and shared by every
//! check with that setting (through [`Connectors`] for TCP checks). It keeps OpenSSL's default roots (the system
//! bundle) and adds the CAs of `ca_file` to them. The handshake runs on the
//! network runtime (tokio-native-tls) inside the check's whole deadline, so
//! a peer that accepts and stalls the handshake holds no thread and no
//! check past its deadline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS connectors of the TCP and gRPC checks of one configuration,
/// one per (`tls_verify`, `ca_file`, HTTP/2 asked for through ALPN), built
/// on first request.
#[derive(Default)]
pub(crate) struct Connectors {
    by_setting: HashMap<(bool, Option<PathBuf>, bool), Arc<tokio_native_tls::TlsConnector>>,
}

impl Connectors {
    /// The connector for one TLS setting; with `h2`, it offers `h2` by
    /// ALPN, as gRPC over TLS requires (gRPC's PROTOCOL-HTTP2.md; grpc-go
    /// servers refuse a client that does not).
    ///
    /// # Errors
    /// See [`connector`].
    pub(crate) fn get(
        &mut self,
        verify: bool,
        ca_file: Option<&Path>,
        h2: bool,
    ) -> Result<Arc<tokio_native_tls::TlsConnector>, String> {
        let key = (verify, ca_file.map(Path::to_path_buf), h2);
        if let Some(tls) = self.by_setting.get(&key) {
            return Ok(Arc::clone(tls));
        }
        let alpn: &[&str] = if h2 { &["h2"] } else { &[] };
        let tls = Arc::new(connector_offering(verify, ca_file, alpn)?);
        self.by_setting.insert(key, Arc::clone(&tls));
        Ok(tls)
    }
}

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
pub(crate) fn connector(
    verify: bool,
    ca_file: Option<&Path>,
) -> Result<tokio_native_tls::TlsConnector, String> {
    connector_offering(verify, ca_file, &[])
}

/// [`connector`], offering the application protocols `alpn` (none: no
/// ALPN extension).
///
/// # Errors
/// As [`connector`].
fn connector_offering(
    verify: bool,
    ca_file: Option<&Path>,
    alpn: &[&str],
) -> Result<tokio_native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if !alpn.is_empty() {
        builder.request_alpns(alpn);
    }
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
    Ok(tokio_native_tls::TlsConnector::from(inner))
}

/// The certificates of a PEM file, at least one.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<native_tls::Certificate>, String> {
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
            Ok(ureq::tls::PemItem::Certificate(c)) => {
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
