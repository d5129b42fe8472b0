//! The `[cluster]` section: the etcd endpoints, this node's name, the
//! lease, the key prefix and the exclusive action groups; and the one rule
//! that ties it to `[general]`: an exclusive group's action must end within
//! the time the lease leaves it ([`crate::model::action_fits`]).

use std::collections::HashSet;
use std::time::Duration;

use super::ini::{Document, Section};
use super::{CLUSTER_KEYS, Reader, value};
use crate::model::{
    ClusterSpec, DEFAULT_ETCD_PORT, DEFAULT_LEASE, DEFAULT_PREFIX, EXCLUSIVE_KILL_GRACE,
    EtcdEndpoint, EtcdTls, General, GroupSpec, MAX_NODE_NAME, action_fits, lease_margin,
    longest_action_timeout, short_duration, shortest_lease, valid_node_name,
};

/// The name of the section.
pub const CLUSTER: &str = "cluster";

impl Reader<'_> {
    /// `[cluster]`, checked against the groups and `[general]`; `None`
    /// once its mistakes are reported.
    pub(super) fn cluster(
        &mut self,
        doc: &Document,
        section: &Section,
        groups: &[GroupSpec],
        general: Option<(&General, Option<&Section>)>,
    ) -> Option<ClusterSpec> {
        let before = self.errors.len();
        let endpoints = self.endpoints(doc, section);
        let tls = self.cluster_tls(doc, section, &endpoints);
        let node = self.node(doc, section);
        let lease = self.lease(doc, section);
        let prefix = match self.own(doc, section, "prefix") {
            Some(found) => self.typed("prefix", &found, prefix).unwrap_or_default(),
            None => DEFAULT_PREFIX.to_owned(),
        };
        let exclusive = self.exclusive_groups(doc, section, groups);
        self.reject_unknown(
            section,
            CLUSTER_KEYS,
            (&[], ""),
            &format!("[cluster] takes {}", CLUSTER_KEYS.join(", ")),
        );
        if let (Some(lease), Some((general, general_section))) = (lease, general) {
            self.timing_fits(section, lease, general, general_section);
        }
        if self.errors.len() != before {
            return None;
        }
        Some(ClusterSpec {
            endpoints: endpoints?,
            tls,
            node: node?,
            lease: lease?,
            prefix,
            groups: exclusive?,
        })
    }

    /// `etcd`: required, one URL or more.
    fn endpoints(&mut self, doc: &Document, section: &Section) -> Option<Vec<EtcdEndpoint>> {
        let Some(found) = self.own(doc, section, "etcd") else {
            let message = "[cluster] needs etcd = URL[, URL...]: the client URLs of the etcd \
                           members, e.g. http://10.0.0.1:2379, http://10.0.0.2:2379";
            self.missing(doc, section, ("etcd", Some("etcd")), message);
            return None;
        };
        self.typed("etcd", &found, |text| {
            let mut endpoints = Vec::new();
            for url in list(text) {
                let endpoint = etcd_url(url)?;
                if endpoints.contains(&endpoint) {
                    return Err(format!("{endpoint} is given twice"));
                }
                endpoints.push(endpoint);
            }
            if endpoints.is_empty() {
                return Err("no endpoint; expected etcd = URL[, URL...]".into());
            }
            Ok(endpoints)
        })
    }

    /// `ca_file`, `cert_file`, `key_file`: only with an `https://`
    /// endpoint; the certificate and its key together.
    fn cluster_tls(
        &mut self,
        doc: &Document,
        section: &Section,
        endpoints: &Option<Vec<EtcdEndpoint>>,
    ) -> EtcdTls {
        let mut found = [None, None, None];
        for (slot, key) in found.iter_mut().zip(["ca_file", "cert_file", "key_file"]) {
            *slot = self
                .own(doc, section, key)
                .filter(|f| !f.value.is_empty())
                .map(|f| (key, f));
        }
        let any_https = endpoints
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e.https));
        for (key, f) in found.iter().flatten() {
            if !any_https {
                let message = format!(
                    "{key} is for https:// endpoints, and every etcd endpoint is http://; use \
                     https:// URLs or remove {key}"
                );
                self.error(&f.section, Some(key), f.line, message);
            }
        }
        let [ca, cert, key] = found;
        let identity = match (cert, key) {
            (Some((_, cert)), Some((_, key))) => {
                Some((self.path(&cert.value), self.path(&key.value)))
            }
            (Some((name, f)), None) | (None, Some((name, f))) => {
                let other = if name == "cert_file" {
                    "key_file"
                } else {
                    "cert_file"
                };
                let message = format!(
                    "{name} needs {other} too: a client certificate and its private key go \
                     together (for etcd's --client-cert-auth)"
                );
                self.error(&f.section, Some(name), f.line, message);
                None
            }
            (None, None) => None,
        };
        EtcdTls {
            ca_file: ca.map(|(_, f)| self.path(&f.value)),
            identity,
        }
    }

    /// `node`, or the host name.
    fn node(&mut self, doc: &Document, section: &Section) -> Option<String> {
        let rule = format!(
            "expected 1 to {MAX_NODE_NAME} letters, digits, '.', '_' or '-' (the value of this \
             node's leader key, and HEARTBEAT_LEADER on the other nodes)"
        );
        if let Some(found) = self.own(doc, section, "node") {
            return self.typed("node", &found, |v| {
                if valid_node_name(v) {
                    Ok(v.to_owned())
                } else {
                    Err(format!("{v:?} cannot be a node name; {rule}"))
                }
            });
        }
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        match host {
            Some(host) if valid_node_name(&host) => Some(host),
            other => {
                let message = format!(
                    "the host name {:?} cannot be a node name; set node = NAME, {rule}",
                    other.unwrap_or_default()
                );
                self.error(&section.name, None, section.line, message);
                None
            }
        }
    }

    /// `lease`: whole seconds.
    fn lease(&mut self, doc: &Document, section: &Section) -> Option<Duration> {
        let Some(found) = self.own(doc, section, "lease") else {
            return Some(DEFAULT_LEASE);
        };
        self.typed("lease", &found, |v| {
            let lease = value::duration(v)?;
            if lease.subsec_nanos() != 0 {
                return Err(format!(
                    "{v:?} is not a whole number of seconds; etcd counts a lease's TTL in \
                     seconds: expected 10, 15s, 1m"
                ));
            }
            Ok(lease)
        })
    }

    /// `groups`: required; each a group of `[promotions]`, without `/`.
    fn exclusive_groups(
        &mut self,
        doc: &Document,
        section: &Section,
        groups: &[GroupSpec],
    ) -> Option<Vec<String>> {
        let Some(found) = self.own(doc, section, "groups") else {
            let message = "[cluster] needs groups = NAME[, NAME...]: the action groups that only \
                           one node may have promoted at a time";
            self.missing(doc, section, ("groups", Some("groups")), message);
            return None;
        };
        let defined: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        self.typed("groups", &found, |text| {
            let mut names: Vec<String> = Vec::new();
            let mut seen = HashSet::new();
            for name in list(text) {
                if !seen.insert(name) {
                    return Err(format!("{name:?} is given twice"));
                }
                if name.contains('/') || name.chars().any(char::is_control) {
                    return Err(format!(
                        "{name:?} cannot be exclusive: its name is part of etcd keys, where '/' \
                         separates levels; rename the group"
                    ));
                }
                if !defined.contains(&name) {
                    return Err(format!(
                        "no action group {name:?}; expected groups of [promotions] and \
                         [demotions] ({})",
                        defined.join(", ")
                    ));
                }
                names.push(name.to_owned());
            }
            if names.is_empty() {
                return Err("no group; expected groups = NAME[, NAME...]".into());
            }
            Ok(names)
        })
    }

    /// The rule of [`action_fits`], reported at `action_timeout` when
    /// `[general]` sets it, else at `lease`.
    fn timing_fits(
        &mut self,
        section: &Section,
        lease: Duration,
        general: &General,
        general_section: Option<&Section>,
    ) {
        let timeout = general.action_timeout;
        if action_fits(lease, timeout) {
            return;
        }
        let at_timeout = general_section.and_then(|s| Some((s, s.get("action_timeout")?.line)));
        let unset = if at_timeout.is_none() {
            " in [general] (it is 60s when unset)"
        } else {
            ""
        };
        let fix_timeout = match longest_action_timeout(lease) {
            Some(longest) => format!(
                "set action_timeout to at most {}{unset}, or ",
                shown(longest)
            ),
            None => String::new(),
        };
        let message = format!(
            "with lease = {}, action_timeout = {} is too long for the exclusive groups: their \
             action, with the {} between SIGTERM and SIGKILL, and a margin of {} must end within \
             a third of the lease ({}) so that a demotion ends before the lease can expire; \
             {fix_timeout}set lease to at least {}",
            short_duration(lease),
            short_duration(timeout),
            short_duration(EXCLUSIVE_KILL_GRACE),
            short_duration(lease_margin(lease)),
            shown(lease / 3),
            short_duration(shortest_lease(timeout)),
        );
        match at_timeout {
            Some((s, line)) => self.error(&s.name, Some("action_timeout"), Some(line), message),
            None => {
                let line = section.get("lease").map_or(section.line, |e| Some(e.line));
                self.error(&section.name, Some("lease"), line, message);
            }
        }
    }
}

/// A duration to the millisecond, rounded down: what fits.
fn shown(d: Duration) -> String {
    short_duration(Duration::from_millis(d.as_millis() as u64))
}

/// The items of a list written with commas, spaces or both.
fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// One etcd client URL: `http://HOST[:PORT]` or `https://HOST[:PORT]`,
/// port 2379 when none is given, IPv6 addresses in brackets.
fn etcd_url(url: &str) -> Result<EtcdEndpoint, String> {
    let forms = "expected http://HOST[:PORT] or https://HOST[:PORT]";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} has no scheme; {forms}"));
    };
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(format!("{url:?}: unknown scheme {scheme:?}; {forms}")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "{url:?} has a path; an etcd endpoint is a client URL without one: {forms}"
        ));
    }
    if authority.contains('@') {
        return Err(format!(
            "{url:?}: credentials in the URL are not supported; use cert_file and key_file"
        ));
    }
    let (host, port) =
        super::url::split_host_port(authority).map_err(|e| format!("{url:?}: {e}"))?;
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} has no host; {forms}"));
    }
    let port = match port {
        Some(text) => value::port(text).map_err(|e| format!("{url:?}: {e}"))?,
        None => DEFAULT_ETCD_PORT,
    };
    Ok(EtcdEndpoint {
        https,
        host: host.to_owned(),
        port,
    })
}

/// `prefix`: an absolute key path, without a trailing `/`.
fn prefix(text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    if !text.starts_with('/')
        || trimmed.is_empty()
        || text.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{text:?} is not a key prefix; expected a path such as {DEFAULT_PREFIX}, starting \
             with '/', without spaces"
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_urls_take_the_client_port_by_default() {
        let e = etcd_url("http://10.0.0.1").unwrap();
        assert_eq!(
            (e.https, e.host.as_str(), e.port),
            (false, "10.0.0.1", 2379)
        );
        let e = etcd_url("HTTPS://[::1]:12379/").unwrap();
        assert_eq!((e.https, e.host.as_str(), e.port), (true, "::1", 12379));
        for bad in [
            "10.0.0.1:2379",
            "tcp://h:1",
            "http://h:2379/v3",
            "http://u:p@h",
            "http://",
            "http://h:0",
            "http://::1:2379",
        ] {
            assert!(etcd_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_are_absolute_without_a_trailing_slash() {
        assert_eq!(prefix("/heartbeat/").unwrap(), "/heartbeat");
        assert_eq!(prefix("/a/b").unwrap(), "/a/b");
        for bad in ["heartbeat", "/", "/a b", ""] {
            assert!(prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_take_commas_and_spaces() {
        assert_eq!(list("a, b  c,,d").collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    }
}
