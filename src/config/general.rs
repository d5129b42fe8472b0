//! The `[general]` section: every key, its default and its type.

use std::net::SocketAddr;

use super::ini::{Document, Section};
use super::{CHECK_KEYS, GENERAL_KEYS, Reader, value};
use crate::model::{General, LogTarget, UnixGroup, UserAccount, default_threads};

impl Reader<'_> {
    pub(super) fn general(
        &mut self,
        doc: &Document,
        section: &Section,
        checks: usize,
    ) -> Option<General> {
        let mut general = General {
            threads: default_threads(checks),
            ..General::default()
        };
        let before = self.errors.len();
        let get = |me: &mut Self, key: &str| me.own(doc, section, key);

        if let Some(found) = get(self, "user") {
            general.user = self.typed("user", &found, user_account).flatten();
        }
        if let Some(found) = get(self, "group") {
            general.group = self.typed("group", &found, unix_group).flatten();
        }
        if let Some(found) = get(self, "logfile") {
            general.log = match found.value.as_str() {
                "stderr" | "-" => LogTarget::Stderr,
                "syslog" => LogTarget::Syslog,
                v if value::is_none(v) => LogTarget::Stderr,
                v => LogTarget::File(self.path(v)),
            };
        }
        if let Some(found) = get(self, "loglevel") {
            general.log_level = self
                .typed("loglevel", &found, value::log_level)
                .unwrap_or(general.log_level);
        }
        if let Some(found) = get(self, "pidfile") {
            if !value::is_none(&found.value) {
                general.pidfile = Some(self.path(&found.value));
            }
        }
        if let Some(found) = get(self, "threads") {
            if let Some(n) = self.typed("threads", &found, |v| value::count(v, 1, 1024)) {
                general.threads = n as usize;
            }
        }
        let flags: [(&str, &mut bool); 3] = [
            ("daemonize", &mut general.daemonize),
            ("on_demand", &mut general.on_demand),
            ("exit_on_failure", &mut general.exit_on_failure),
        ];
        for (key, slot) in flags {
            if let Some(found) = self.own(doc, section, key) {
                if let Some(b) = self.typed(key, &found, value::boolean) {
                    *slot = b;
                }
            }
        }
        for (key, slot) in [
            ("interval", &mut general.interval),
            ("action_timeout", &mut general.action_timeout),
        ] {
            if let Some(found) = self.own(doc, section, key) {
                if let Some(d) = self.typed(key, &found, value::duration) {
                    *slot = d;
                }
            }
        }
        if let Some(found) = self.own(doc, section, "listen") {
            if !value::is_none(&found.value) {
                general.listen = self.typed("listen", &found, listen_address);
            }
        }
        if let Some(found) = self.own(doc, section, "fail_status") {
            general.fail_status = self
                .typed("fail_status", &found, value::status_code)
                .unwrap_or(503);
        }
        self.reject_unknown(
            section,
            GENERAL_KEYS,
            (
                CHECK_KEYS,
                " (it is a check key: put it in a check section or in [DEFAULT])",
            ),
            &format!("[general] takes {}", GENERAL_KEYS.join(", ")),
        );
        (self.errors.len() == before).then_some(general)
    }
}

/// The user named by `text` (a name or a numeric id) in this system's user
/// database; `None` or empty means "keep the launching one". The one place
/// heartbeat looks a user up.
///
/// # Errors
/// When no such user exists (`no user named "nobdy" on this system; …`) or
/// the database cannot be read.
pub fn user_account(text: &str) -> Result<Option<UserAccount>, String> {
    if value::is_none(text) {
        return Ok(None);
    }
    let found = match text.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(uid.into()),
        Err(_) => nix::unistd::User::from_name(text),
    };
    match found {
        Ok(Some(u)) => Ok(Some(UserAccount {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })),
        Ok(None) => Err(unknown("user", text)),
        Err(e) => Err(format!("cannot look up user {text:?}: {e}")),
    }
}

/// The group named by `text` (a name or a numeric id), as
/// [`user_account`] does for users.
///
/// # Errors
/// When no such group exists or the database cannot be read.
pub fn unix_group(text: &str) -> Result<Option<UnixGroup>, String> {
    if value::is_none(text) {
        return Ok(None);
    }
    let found = match text.parse::<u32>() {
        Ok(gid) => nix::unistd::Group::from_gid(gid.into()),
        Err(_) => nix::unistd::Group::from_name(text),
    };
    match found {
        Ok(Some(g)) => Ok(Some(UnixGroup {
            name: g.name,
            gid: g.gid.as_raw(),
        })),
        Ok(None) => Err(unknown("group", text)),
        Err(e) => Err(format!("cannot look up group {text:?}: {e}")),
    }
}

fn unknown(key: &str, text: &str) -> String {
    format!("no {key} named {text:?} on this system; expected an existing {key} or None")
}

/// The status server address: `ADDR:PORT`, `[V6]:PORT`, or `:PORT` for all
/// IPv4 addresses.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let text_full;
    let text = match text.strip_prefix(':') {
        Some(port) => {
            text_full = format!("0.0.0.0:{port}");
            &text_full
        }
        None => text,
    };
    text.parse().map_err(|_| format!("{text:?} is not an address; expected IP:PORT such as 127.0.0.1:8080, [::1]:8080 or :8080"))
}
