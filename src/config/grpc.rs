//! The keys of a gRPC check beyond its address: `service`, `authority`,
//! and `tls` with `tls_verify`, `ca_file` and `tls_min_validity`.

use super::Reader;
use super::ini::{Document, Section};
use crate::model::GrpcProbe;

impl Reader<'_> {
    /// The gRPC probe of `address` with the section's keys; `from_url` is
    /// the service and TLS a `grpc://` or `grpcs://` URL gave, which the
    /// section's `service` and `tls` then do not. `None` once a mistake is
    /// reported.
    pub(super) fn grpc(
        &mut self,
        doc: &Document,
        section: &Section,
        address: (String, u16),
        from_url: Option<(String, bool)>,
    ) -> Option<GrpcProbe> {
        let before = self.errors.len();
        let (service, forced) = match from_url {
            Some((service, tls)) => (Some(service), Some(tls)),
            None => {
                let service = self
                    .check_key(doc, section, "service")
                    .and_then(|found| self.typed("service", &found, service_name));
                (service, None)
            }
        };
        let tls = self.tls_on(doc, section, forced);
        let authority = self
            .check_key(doc, section, "authority")
            .filter(|found| !found.value.is_empty())
            .and_then(|found| self.typed("authority", &found, authority).map(Some));
        if self.errors.len() != before {
            return None;
        }
        let (host, port) = address;
        Some(GrpcProbe {
            host,
            port,
            service: service.unwrap_or_default(),
            authority: authority.flatten(),
            tls: tls?,
        })
    }
}

/// `service`: a name such as `grpc.health.v1.Health` or `shop.Cart`, or
/// empty for the whole server.
fn service_name(text: &str) -> Result<String, String> {
    if text.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(format!(
            "{text:?} is not a service name; expected one such as shop.Cart, or nothing for \
             the whole server"
        ));
    }
    Ok(text.to_owned())
}

/// `authority`: `HOST` or `HOST:PORT` as the `:authority` header carries it
/// (RFC 9113 §8.3.1, RFC 3986 §3.2), IPv6 in brackets.
fn authority(text: &str) -> Result<String, String> {
    let valid = !text.contains(['/', '?', '#', '@'])
        && !text.contains(|c: char| c.is_whitespace() || c.is_control())
        && text.parse::<hyper::http::uri::Authority>().is_ok();
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an authority; expected HOST or HOST:PORT, such as api.example.com \
             or api.example.com:443"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_authorities() {
        assert_eq!(service_name("shop.Cart").unwrap(), "shop.Cart");
        assert_eq!(service_name("").unwrap(), "");
        assert!(service_name("shop Cart").is_err());
        assert!(service_name("a/b").is_err());
        assert!(authority("api.example.com:443").is_ok());
        assert!(authority("[::1]:50051").is_ok());
        assert!(authority("api.example.com/x").is_err());
        assert!(authority("user@host").is_err());
        assert!(authority("a b").is_err());
    }
}
