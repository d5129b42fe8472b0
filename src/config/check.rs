//! Check sections: the type from `type` or `url`, which keys apply to it,
//! the endpoint, timeouts, rise/fall and the action groups fed.

use super::groups::Groups;
use super::ini::{Document, Section, text};
use super::{CHECK_KEYS, GENERAL_KEYS, Reader, has_key, url, value};
use crate::model::{CheckKind, CheckSpec, DEFAULT_CHECK_TIMEOUT, HttpProbe, Probe, StatusSet};

impl Reader<'_> {
    pub(super) fn check(
        &mut self,
        doc: &Document,
        section: &Section,
        groups: &Groups,
    ) -> Option<CheckSpec> {
        let before = self.errors.len();
        let name = section.name.clone();
        let own = |key: &str| section.get(key).is_some();

        // The type comes from the section's own `type` or `url`, then from
        // [DEFAULT]'s `type`, then from [DEFAULT]'s `url`.
        let url = if own("url") || (!own("type") && doc.defaults.get("type").is_none()) {
            self.check_key(doc, section, "url")
        } else {
            None
        };
        let mut kind = if own("type") || url.is_none() {
            self.check_key(doc, section, "type").and_then(|found| {
                self.typed("type", &found, |v| {
                    CheckKind::from_word(v).ok_or_else(|| {
                        format!("{v:?} is not a check type; expected tcp, http, https or script")
                    })
                })
            })
        } else {
            None
        };
        let parsed_url = url.as_ref().and_then(|found| {
            self.typed("url", found, |v| {
                url::parse(v).map_err(|e| format!("{:?}: {e}", crate::model::redact_url(v)))
            })
        });
        if let Some(probe) = &parsed_url {
            let scheme = probe.kind();
            match &kind {
                Some(k) if own("type") && *k != scheme => {
                    let line = section.get("type").map(|e| e.line);
                    self.error(
                        &name,
                        Some("type"),
                        line,
                        format!("type = {k} contradicts url, which says {scheme}; remove one"),
                    );
                }
                _ => kind = Some(scheme),
            }
            if url.as_ref().is_some_and(|u| u.section == name) {
                for key in ["hostname", "port", "path"] {
                    if let Some(entry) = section.get(key) {
                        self.error(&name, Some(key), Some(entry.line), format!("both url and {key} are set; the url already gives the {key}: remove one"));
                    }
                }
            }
        }
        let Some(kind) = kind else {
            if self.errors.len() == before {
                self.error(
                    &name,
                    None,
                    section.line,
                    "no check type: expected `type = tcp|http|https|script`, or a `url = …`".into(),
                );
            }
            self.unknown_keys(section);
            return None;
        };

        // Which keys apply to this type; the others are ignored, with a
        // warning when they were set in this very section.
        let applies: &[&str] = match kind {
            CheckKind::Tcp => &["hostname", "port", "url"],
            CheckKind::Http => &[
                "hostname",
                "port",
                "path",
                "url",
                "expect_status",
                "expect_body",
            ],
            CheckKind::Https => &[
                "hostname",
                "port",
                "path",
                "url",
                "expect_status",
                "expect_body",
                "tls_verify",
                "ca_file",
            ],
            CheckKind::Script => &["command"],
        };
        let common = [
            "type",
            "timeout",
            "action",
            "rise",
            "fall",
            "interval",
            "fast_interval",
        ];
        for entry in section.entries() {
            let key = entry.key.as_str();
            if common.contains(&key) || applies.contains(&key) {
                continue;
            }
            if CHECK_KEYS.contains(&key) {
                self.warn(
                    &name,
                    Some(key),
                    Some(entry.line),
                    format!("does not apply to a {kind} check; ignored"),
                );
            }
        }

        let timeout = match self.check_key(doc, section, "timeout") {
            Some(found) => self.typed("timeout", &found, value::duration),
            None => Some(DEFAULT_CHECK_TIMEOUT),
        };
        let rise = self.counter(doc, section, "rise");
        let fall = self.counter(doc, section, "fall");
        let interval = self.optional_duration(doc, section, "interval");
        let fast_interval = self.optional_duration(doc, section, "fast_interval");
        let actions = self.check_key(doc, section, "action");
        let groups_of = match actions {
            None if has_key(doc, section, "action") => None,
            None => {
                self.error(&name, Some("action"), section.line, "no action: expected `action = GROUP` naming a group of [promotions] and [demotions]".into());
                None
            }
            Some(found) => {
                let names: Vec<String> = found
                    .value
                    .split(',')
                    .map(|s| text::lower(text::strip(s)))
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut ok = !names.is_empty();
                if names.is_empty() {
                    self.error(
                        &found.section,
                        Some("action"),
                        found.line,
                        "empty; expected one or more action group names, comma-separated".into(),
                    );
                }
                for group in &names {
                    if !groups.names.contains(group) {
                        ok = false;
                        self.error(
                            &found.section,
                            Some("action"),
                            found.line,
                            format!("action group {group:?} is not defined; expected a name from both [promotions] and [demotions]"),
                        );
                    }
                }
                ok.then_some(names)
            }
        };

        let probe = match kind {
            CheckKind::Script => match self.check_key(doc, section, "command") {
                Some(found) if !found.value.trim().is_empty() => Some(Probe::Script {
                    command: found.value,
                }),
                Some(found) => {
                    self.error(
                        &found.section,
                        Some("command"),
                        found.line,
                        "empty; expected a shell command".into(),
                    );
                    None
                }
                // Present but refused (its interpolation failed): already
                // reported.
                None if has_key(doc, section, "command") => None,
                None => {
                    self.error(
                        &name,
                        Some("command"),
                        section.line,
                        "a script check needs `command = SHELL COMMAND`".into(),
                    );
                    None
                }
            },
            _ => self.endpoint(doc, section, kind, parsed_url),
        };
        self.unknown_keys(section);
        if self.errors.len() != before {
            return None;
        }
        Some(CheckSpec {
            name,
            probe: probe?,
            timeout: timeout?,
            groups: groups_of?,
            rise: rise?,
            fall: fall?,
            interval: interval?,
            fast_interval: fast_interval?,
        })
    }

    /// A duration key that may be absent (`None`); `None` inside when its
    /// value was refused (and reported).
    fn optional_duration(
        &mut self,
        doc: &Document,
        section: &Section,
        key: &str,
    ) -> Option<Option<std::time::Duration>> {
        match self.check_key(doc, section, key) {
            Some(found) => self.typed(key, &found, value::duration).map(Some),
            None => Some(None),
        }
    }

    fn counter(&mut self, doc: &Document, section: &Section, key: &str) -> Option<u32> {
        match self.check_key(doc, section, key) {
            Some(found) => self.typed(key, &found, |v| value::count(v, 1, 1000)),
            None => Some(1),
        }
    }

    /// The target of a tcp/http/https check, from its url or from
    /// hostname/port/path.
    fn endpoint(
        &mut self,
        doc: &Document,
        section: &Section,
        kind: CheckKind,
        url: Option<Probe>,
    ) -> Option<Probe> {
        let name = section.name.clone();
        let (host, port, path) = match url {
            Some(Probe::Http(http)) => (Some(http.host), Some(http.port), Some(http.path)),
            Some(other) => return Some(other),
            None => {
                let host = self
                    .check_key(doc, section, "hostname")
                    .and_then(|f| self.typed("hostname", &f, hostname));
                let port = self
                    .check_key(doc, section, "port")
                    .and_then(|f| self.typed("port", &f, value::port));
                let path = if kind == CheckKind::Tcp {
                    None
                } else {
                    self.check_key(doc, section, "path").map(|f| {
                        if f.value.starts_with('/') {
                            f.value
                        } else {
                            let (s, l) = (f.section.clone(), f.line);
                            self.warn(
                                &s,
                                Some("path"),
                                l,
                                format!(
                                    "{:?} does not start with '/'; requesting /{}",
                                    f.value, f.value
                                ),
                            );
                            format!("/{}", f.value)
                        }
                    })
                };
                (host, port, path)
            }
        };
        let host = host.unwrap_or_else(|| "localhost".to_owned());
        if kind == CheckKind::Tcp {
            let Some(port) = port else {
                if !has_key(doc, section, "port") {
                    self.error(
                        &name,
                        Some("port"),
                        section.line,
                        "a tcp check needs a port (1-65535)".into(),
                    );
                }
                return None;
            };
            return Some(Probe::Tcp { host, port });
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
        let (mut tls_verify, mut ca_file) = (true, None);
        if https {
            if let Some(found) = self.check_key(doc, section, "tls_verify") {
                tls_verify = self.typed("tls_verify", &found, value::boolean)?;
            }
            if let Some(found) = self.check_key(doc, section, "ca_file") {
                if !value::is_none(&found.value) {
                    let path = self.path(&found.value);
                    if !path.is_file() {
                        let (s, l) = (found.section.clone(), found.line);
                        self.error(
                            &s,
                            Some("ca_file"),
                            l,
                            format!(
                                "{} is not a readable file; expected a PEM file of CA certificates",
                                path.display()
                            ),
                        );
                        return None;
                    }
                    ca_file = Some(path);
                }
            }
        }
        Some(Probe::Http(HttpProbe {
            https,
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path: path.unwrap_or_else(|| "/".to_owned()),
            expect_status,
            expect_body,
            tls_verify,
            ca_file,
        }))
    }

    /// Keys of a check section that are not check keys and that no
    /// `%(name)s` refers to: typos.
    fn unknown_keys(&mut self, section: &Section) {
        self.reject_unknown(
            section,
            CHECK_KEYS,
            (GENERAL_KEYS, " (it belongs in [general])"),
            &format!("a check takes {}", CHECK_KEYS.join(", ")),
        );
    }
}

/// A host name or IP address; brackets around IPv6 are removed.
fn hostname(text: &str) -> Result<String, String> {
    let host = text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(text);
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/?#@".contains(c)) {
        return Err(format!(
            "{text:?} is not a host name; expected a name or an IP address such as 127.0.0.1 or ::1"
        ));
    }
    Ok(host.to_owned())
}
