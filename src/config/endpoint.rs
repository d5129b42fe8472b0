//! The target of a TCP, HTTP, HTTPS or gRPC check: from its `url`, or from
//! `hostname`, `port` and `path`; and for HTTP(S) what the answer must be
//! and how TLS is verified (the rest of TCP and gRPC checks is `tcp`'s
//! and `grpc`'s).

use std::net::Ipv6Addr;

use super::ini::{Document, Section};
use super::{Found, Reader, has_key, value};
use crate::model::{CheckKind, HttpProbe, Probe, StatusSet};

impl Reader<'_> {
    /// The probe of a tcp/http/https/grpc check, `url` being the probe its
    /// `url` key gave, if any.
    pub(super) fn endpoint(
        &mut self,
        doc: &Document,
        section: &Section,
        kind: CheckKind,
        url: Option<Probe>,
    ) -> Option<Probe> {
        let (host, port, path) = match url {
            Some(Probe::Http(http)) => (Some(http.host), Some(http.port), Some(http.path)),
            Some(Probe::Tcp(tcp)) => (Some(tcp.host), Some(tcp.port), None),
            Some(Probe::Grpc(grpc)) => {
                let tls = grpc.tls.is_some();
                return self
                    .grpc(
                        doc,
                        section,
                        (grpc.host, grpc.port),
                        Some((grpc.service, tls)),
                    )
                    .map(Probe::Grpc);
            }
            Some(other) => return Some(other),
            None => self.address(doc, section, kind),
        };
        let host_refused = host.is_none() && has_key(doc, section, "hostname");
        let host = host.unwrap_or_else(|| "localhost".to_owned());
        if kind == CheckKind::Tcp {
            let Some(port) = port else {
                // A refused hostname (`127.0.0.1:80`) already said where
                // the port went.
                if !has_key(doc, section, "port") && !host_refused {
                    let message = "a tcp check needs a port (1-65535)";
                    self.missing(doc, section, ("port", Some("port")), message);
                }
                return None;
            };
            return self.tcp(doc, section, host, port).map(Probe::Tcp);
        }
        if kind == CheckKind::Grpc {
            let Some(port) = port else {
                if !has_key(doc, section, "port") && !host_refused {
                    let message = "a grpc check needs a port (1-65535)";
                    self.missing(doc, section, ("port", Some("port")), message);
                }
                return None;
            };
            return self.grpc(doc, section, (host, port), None).map(Probe::Grpc);
        }
        let https = kind == CheckKind::Https;
        let expect_status = match self.check_key(doc, section, "expect_status") {
            Some(found) => self.typed("expect_status", &found, value::status_set)?,
            None => StatusSet::default(),
        };
        let expect_body = self
            .check_key(doc, section, "expect_body")
            .map(|f| f.value)
            .filter(|v| !v.is_empty());
        let (tls_verify, ca_file, tls_min_validity) = if https {
            let (verify, ca_file) = self.tls(doc, section)?;
            (verify, ca_file, self.min_validity(doc, section)?)
        } else {
            (true, None, None)
        };
        Some(Probe::Http(HttpProbe {
            https,
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path: path.unwrap_or_else(|| "/".to_owned()),
            expect_status,
            expect_body,
            tls_verify,
            ca_file,
            tls_min_validity,
        }))
    }

    /// `hostname`, `port` and (not for tcp) `path`, each `None` when
    /// absent or refused.
    fn address(
        &mut self,
        doc: &Document,
        section: &Section,
        kind: CheckKind,
    ) -> (Option<String>, Option<u16>, Option<String>) {
        let host = self
            .check_key(doc, section, "hostname")
            .and_then(|f| self.typed("hostname", &f, hostname));
        let port = self
            .check_key(doc, section, "port")
            .and_then(|f| self.typed("port", &f, value::port));
        let path = match kind {
            CheckKind::Tcp | CheckKind::Grpc => None,
            _ => self
                .check_key(doc, section, "path")
                .map(|found| self.request_path(found)),
        };
        (host, port, path)
    }

    /// A request path, given a leading `/` (with a warning) when it has
    /// none.
    fn request_path(&mut self, found: Found) -> String {
        if found.value.starts_with('/') {
            return found.value;
        }
        let message = format!(
            "{:?} does not start with '/'; requesting /{}",
            found.value, found.value
        );
        self.warn(&found.section, Some("path"), found.line, message);
        format!("/{}", found.value)
    }

    /// `tls_verify` and `ca_file` of an https check (or a TLS tcp check);
    /// `None` once a mistake is reported.
    pub(super) fn tls(
        &mut self,
        doc: &Document,
        section: &Section,
    ) -> Option<(bool, Option<std::path::PathBuf>)> {
        let tls_verify = match self.check_key(doc, section, "tls_verify") {
            Some(found) => self.typed("tls_verify", &found, value::boolean)?,
            None => true,
        };
        let Some(found) = self
            .check_key(doc, section, "ca_file")
            .filter(|f| !value::is_none(&f.value))
        else {
            return Some((tls_verify, None));
        };
        let path = self.path(&found.value);
        if !path.is_file() {
            let message = format!(
                "{} is not a readable file; expected a PEM file of CA certificates",
                path.display()
            );
            self.error(&found.section, Some("ca_file"), found.line, message);
            return None;
        }
        Some((tls_verify, Some(path)))
    }
}

/// A host name or IP address; brackets around IPv6 are removed.
///
/// # Errors
/// Anything else, naming the likely mistake: a port (`127.0.0.1:80`), a
/// URL, a path.
fn hostname(text: &str) -> Result<String, String> {
    let expected = "expected a name or an IP address such as 127.0.0.1 or ::1";
    if text.contains("://") {
        return Err(format!(
            "{text:?} is a URL, not a host name; write `url = {text}` instead of hostname"
        ));
    }
    let host = text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(text);
    if let Some((name, port)) = host_and_port(host) {
        return Err(format!(
            "{text:?} is not a host name: the port goes in its own key, `hostname = {name}` and \
             `port = {port}` (or `url = tcp://{text}`)"
        ));
    }
    let ipv6 = |h: &str| h.split('%').next().unwrap_or(h).parse::<Ipv6Addr>().is_ok();
    if host.is_empty()
        || host.contains(|c: char| c.is_whitespace() || "/?#@[]".contains(c))
        || (host.contains(':') && !ipv6(host))
    {
        return Err(format!("{text:?} is not a host name; {expected}"));
    }
    Ok(host.to_owned())
}

/// `host:port` or `[v6]:port`, split; `None` for anything else (an IPv6
/// address has colons but no port).
fn host_and_port(text: &str) -> Option<(&str, &str)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => rest.split_once("]:")?,
        None => {
            let (host, port) = text.rsplit_once(':')?;
            if host.contains(':') {
                return None;
            }
            (host, port)
        }
    };
    let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    (digits && !host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_the_mistakes_made_in_them() {
        assert_eq!(hostname("db.example").unwrap(), "db.example");
        assert_eq!(hostname("::1").unwrap(), "::1");
        assert_eq!(hostname("[::1]").unwrap(), "::1");
        assert_eq!(hostname("fe80::1%eth0").unwrap(), "fe80::1%eth0");
        let err = hostname("127.0.0.1:80").unwrap_err();
        assert!(
            err.contains("`hostname = 127.0.0.1` and `port = 80`"),
            "{err}"
        );
        assert!(hostname("[::1]:80").unwrap_err().contains("`port = 80`"));
        assert!(
            hostname("http://h/")
                .unwrap_err()
                .contains("`url = http://h/`")
        );
        assert!(hostname("a b").is_err() && hostname("h/x").is_err() && hostname("x:y").is_err());
    }
}
