//! Check sections: the type from `type` or `url`, which keys apply to it,
//! timeouts, rise/fall, intervals, the action groups fed and the command
//! of a script check (the target of the others is `endpoint`'s).

use super::groups::Groups;
use super::ini::{Document, Section, text};
use super::{CHECK_KEYS, GENERAL_KEYS, Reader, has_key, url, value};
use crate::model::{CheckKind, CheckSpec, DEFAULT_CHECK_TIMEOUT, Probe};

/// The keys every check type takes.
const COMMON: &[&str] = &[
    "type",
    "timeout",
    "action",
    "rise",
    "fall",
    "interval",
    "fast_interval",
];

/// The keys that apply to checks of type `kind`, besides [`COMMON`].
fn applies(kind: CheckKind) -> &'static [&'static str] {
    match kind {
        CheckKind::Tcp => &[
            "hostname",
            "port",
            "url",
            "tls",
            "tls_verify",
            "ca_file",
            "send",
            "expect",
            "expect_regex",
            "tls_min_validity",
        ],
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
            "tls_min_validity",
        ],
        CheckKind::Script => &["command"],
        CheckKind::Grpc => &[
            "hostname",
            "port",
            "url",
            "service",
            "authority",
            "tls",
            "tls_verify",
            "ca_file",
            "tls_min_validity",
        ],
    }
}

impl Reader<'_> {
    /// The check of `section`, or `None` once its mistakes are reported.
    pub(super) fn check(
        &mut self,
        doc: &Document,
        section: &Section,
        groups: &Groups,
    ) -> Option<CheckSpec> {
        let before = self.errors.len();
        let Some((kind, url)) = self.kind(doc, section) else {
            self.unknown_keys(section);
            return None;
        };
        self.ignored_keys(section, kind);
        let timeout = match self.check_key(doc, section, "timeout") {
            Some(found) => self.typed("timeout", &found, value::duration),
            None => Some(DEFAULT_CHECK_TIMEOUT),
        };
        let rise = self.counter(doc, section, "rise");
        let fall = self.counter(doc, section, "fall");
        let interval = self.optional_duration(doc, section, "interval");
        let fast_interval = self.optional_duration(doc, section, "fast_interval");
        let groups_of = self.actions(doc, section, groups);
        let probe = match kind {
            CheckKind::Script => self.script(doc, section),
            _ => self.endpoint(doc, section, kind, url),
        };
        self.unknown_keys(section);
        if self.errors.len() != before {
            return None;
        }
        Some(CheckSpec {
            name: section.name.clone(),
            probe: probe?,
            timeout: timeout?,
            groups: groups_of?,
            rise: rise?,
            fall: fall?,
            interval: interval?,
            fast_interval: fast_interval?,
        })
    }

    /// The type of the check and the probe its `url` gives, if any. The
    /// type comes from the section's own `type` or `url`, then from
    /// `[DEFAULT]`'s `type`, then from `[DEFAULT]`'s `url`.
    fn kind(&mut self, doc: &Document, section: &Section) -> Option<(CheckKind, Option<Probe>)> {
        let before = self.errors.len();
        let name = &section.name;
        let own = |key: &str| section.get(key).is_some();
        let url = if own("url") || (!own("type") && doc.defaults.get("type").is_none()) {
            self.check_key(doc, section, "url")
        } else {
            None
        };
        let mut kind = if own("type") || url.is_none() {
            self.check_key(doc, section, "type")
                .and_then(|found| self.typed("type", &found, check_kind))
        } else {
            None
        };
        let parsed = url.as_ref().and_then(|found| {
            self.typed("url", found, |v| {
                url::parse(v).map_err(|e| format!("{:?}: {e}", crate::model::redact_url(v)))
            })
        });
        if let Some(probe) = &parsed {
            let scheme = probe.kind();
            match kind {
                Some(k) if own("type") && k != scheme => {
                    let line = section.get("type").map(|e| e.line);
                    let message =
                        format!("type = {k} contradicts url, which says {scheme}; remove one");
                    self.error(name, Some("type"), line, message);
                }
                _ => kind = Some(scheme),
            }
            if url.as_ref().is_some_and(|u| &u.section == name) {
                // A grpc:// or grpcs:// URL also says the service and
                // whether TLS is on.
                let given: &[&str] = match probe {
                    Probe::Grpc(_) => &["hostname", "port", "path", "service", "tls"],
                    _ => &["hostname", "port", "path"],
                };
                for &key in given {
                    if let Some(entry) = section.get(key) {
                        let what = match key {
                            "tls" => "scheme (grpc:// or grpcs://)".to_owned(),
                            "service" => "service (its path)".to_owned(),
                            _ => key.to_owned(),
                        };
                        let message = format!(
                            "both url and {key} are set; the url already gives the {what}: remove one"
                        );
                        self.error(name, Some(key), Some(entry.line), message);
                    }
                }
            }
        }
        if kind.is_none() && self.errors.len() == before {
            let message =
                "no check type: expected `type = tcp|http|https|script|grpc`, or a `url = …`";
            self.missing(doc, section, ("type", None), message);
        }
        Some((kind?, parsed))
    }

    /// Warns of keys set in `section` that do not apply to its type (the
    /// same keys from `[DEFAULT]` are ignored quietly).
    fn ignored_keys(&mut self, section: &Section, kind: CheckKind) {
        for entry in section.entries() {
            let key = entry.key.as_str();
            if CHECK_KEYS.contains(&key) && !COMMON.contains(&key) && !applies(kind).contains(&key)
            {
                let message = format!("does not apply to a {kind} check; ignored");
                self.warn(&section.name, Some(key), Some(entry.line), message);
            }
        }
    }

    /// The action groups the check feeds, each one defined.
    fn actions(
        &mut self,
        doc: &Document,
        section: &Section,
        groups: &Groups,
    ) -> Option<Vec<String>> {
        let Some(found) = self.check_key(doc, section, "action") else {
            if !has_key(doc, section, "action") {
                let message = "no action: expected `action = GROUP` naming a group of \
                               [promotions] and [demotions]";
                self.missing(doc, section, ("action", Some("action")), message);
            }
            return None;
        };
        let mut names: Vec<String> = found
            .value
            .split(',')
            .map(|s| text::lower(text::strip(s)))
            .filter(|s| !s.is_empty())
            .collect();
        // Kept with the check for as long as it runs: no room for four
        // names where one is the rule.
        names.shrink_to_fit();
        if names.is_empty() {
            let message = "empty; expected one or more action group names, comma-separated";
            self.error(&found.section, Some("action"), found.line, message.into());
            return None;
        }
        let mut ok = true;
        for group in names.iter().filter(|g| !groups.names.contains(*g)) {
            ok = false;
            let message = format!(
                "action group {group:?} is not defined; expected a name from both [promotions] \
                 and [demotions]"
            );
            let hint = groups.swallowed(group).or(found.hint.as_ref());
            let message = self.explain(hint, message);
            self.error(&found.section, Some("action"), found.line, message);
        }
        ok.then_some(names)
    }

    /// The command of a script check.
    fn script(&mut self, doc: &Document, section: &Section) -> Option<Probe> {
        match self.check_key(doc, section, "command") {
            Some(found) if !found.value.trim().is_empty() => Some(Probe::Script {
                command: found.value,
            }),
            Some(found) => {
                let message = "empty; expected a shell command";
                self.error(&found.section, Some("command"), found.line, message.into());
                None
            }
            // Present but refused (its interpolation failed): already
            // reported.
            None if has_key(doc, section, "command") => None,
            None => {
                let message = "a script check needs `command = SHELL COMMAND`";
                self.missing(doc, section, ("command", Some("command")), message);
                None
            }
        }
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

/// `type = …`: a check type in any case.
fn check_kind(text: &str) -> Result<CheckKind, String> {
    CheckKind::from_word(text).ok_or_else(|| {
        format!("{text:?} is not a check type; expected tcp, http, https, script or grpc")
    })
}
