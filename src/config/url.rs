//! Check URLs: `tcp://HOST:PORT`, `http://HOST[:PORT][/PATH]`,
//! `https://HOST[:PORT][/PATH]`, `grpc://HOST:PORT[/SERVICE]` and
//! `grpcs://HOST:PORT[/SERVICE]`, read into a [`Probe`]. Used for the `url`
//! key of a check section and for `--check` on the command line.

use super::value;
use crate::model::{GrpcProbe, HttpProbe, Probe, StatusSet, TlsOptions};

/// The forms a check URL takes, for messages.
pub const URL_FORMS: &str = "tcp://HOST:PORT, http://HOST[:PORT][/PATH], \
     https://HOST[:PORT][/PATH] or grpc[s]://HOST:PORT[/SERVICE]";

/// Parses a check URL: `tcp://HOST:PORT`, `http://HOST[:PORT][/PATH]`,
/// `https://HOST[:PORT][/PATH]`, or `grpc://HOST:PORT[/SERVICE]` and
/// `grpcs://…` (over TLS, verified) for a gRPC health check of SERVICE
/// (none: the whole server); scheme in any case. IPv6 addresses go in
/// brackets (`tcp://[::1]:5432`). HTTP defaults to port 80, HTTPS to 443,
/// both to path `/`; a query is kept, a `#fragment` dropped.
///
/// # Errors
/// Why the URL is not one of those forms (without the flag, which the
/// caller adds).
pub fn parse(url: &str) -> Result<Probe, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("no scheme; expected {URL_FORMS}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "tcp" | "grpc" | "grpcs" => None,
        "http" => Some(80),
        "https" => Some(443),
        "" => return Err(format!("no scheme; expected {URL_FORMS}")),
        other => {
            return Err(format!(
                "unknown scheme '{other}'; expected tcp, http, https, grpc or grpcs"
            ));
        }
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_owned());
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err(format!("no host; expected {URL_FORMS}"));
    }
    if host.contains(|c: char| c.is_whitespace()) {
        return Err(format!("bad host '{host}'"));
    }
    let port = match port {
        Some(text) => Some(value::port(text)?),
        None => None,
    };
    if scheme.starts_with("grpc") {
        let Some(port) = port else {
            return Err(format!("no port; expected {scheme}://HOST:PORT[/SERVICE]"));
        };
        return grpc(host, port, path, scheme == "grpcs").map(Probe::Grpc);
    }
    match default_port {
        None => {
            let Some(port) = port else {
                return Err("no port; expected tcp://HOST:PORT".to_owned());
            };
            if !path.is_empty() && path != "/" {
                return Err(format!(
                    "a tcp check has no path ('{path}'); expected tcp://HOST:PORT"
                ));
            }
            Ok(Probe::tcp(host, port))
        }
        Some(default) => {
            let path = match path {
                "" => "/".to_owned(),
                p if p.starts_with('?') => format!("/{p}"),
                p => p.to_owned(),
            };
            Ok(Probe::Http(HttpProbe {
                https: scheme == "https",
                host: host.to_owned(),
                port: port.unwrap_or(default),
                path,
                expect_status: StatusSet::default(),
                expect_body: None,
                tls_verify: true,
                ca_file: None,
                tls_min_validity: None,
            }))
        }
    }
}

/// The gRPC probe of `host:port` whose URL path is `path`: the service
/// name after the `/`, without a query.
fn grpc(host: &str, port: u16, path: &str, tls: bool) -> Result<GrpcProbe, String> {
    if path.contains('?') {
        return Err(format!(
            "a grpc check has no query ('{path}'); expected grpc://HOST:PORT[/SERVICE]"
        ));
    }
    let service = path.trim_start_matches('/').trim_end_matches('/');
    if service.contains('/') || service.contains(char::is_whitespace) {
        return Err(format!(
            "'{service}' is not a service name; expected one such as grpc.health.v1.Health \
             or shop.Cart"
        ));
    }
    Ok(GrpcProbe {
        host: host.to_owned(),
        port,
        service: service.to_owned(),
        authority: None,
        tls: tls.then(TlsOptions::verified),
    })
}

/// `host[:port]` or `[v6][:port]`: the host (without brackets) and the port
/// text, if any.
pub(super) fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err("no closing ']' after the IPv6 address".to_owned());
        };
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected '{after}' after the IPv6 address")),
            },
        };
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            Ok((host, Some(port)))
        }
        _ => Err("an IPv6 address goes in brackets, e.g. tcp://[::1]:5432".to_owned()),
    }
}
