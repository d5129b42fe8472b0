//! The `[general]` section: every key, its default and its type.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::ini::{Document, Section};
use super::{CHECK_KEYS, GENERAL_KEYS, Reader, value};
use crate::model::{
    ControlSocket, General, LogFormat, LogTarget, UnixGroup, UserAccount, default_threads,
};

impl Reader<'_> {
    /// `[general]`, with the default of every key it does not set; `None`
    /// once its mistakes are reported.
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
        self.identity_and_logs(doc, section, &mut general);
        self.schedule(doc, section, &mut general);
        self.status_server(doc, section, &mut general);
        self.environment(doc, section, &mut general);
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

    /// `user`, `group`, `logfile`, `loglevel`, `logformat`, `pidfile`,
    /// `control_socket`, `state_file`.
    fn identity_and_logs(&mut self, doc: &Document, section: &Section, general: &mut General) {
        if let Some(found) = self.own(doc, section, "user") {
            general.user = self.typed("user", &found, user_account).flatten();
        }
        if let Some(found) = self.own(doc, section, "group") {
            general.group = self.typed("group", &found, unix_group).flatten();
        }
        if let Some(found) = self.own(doc, section, "logfile") {
            general.log = log_target(&found.value, self.base);
        }
        if let Some(found) = self.own(doc, section, "loglevel") {
            general.log_level = self
                .typed("loglevel", &found, value::log_level)
                .unwrap_or(general.log_level);
        }
        if let Some(found) = self.own(doc, section, "logformat") {
            general.log_format = self
                .typed("logformat", &found, |v| {
                    LogFormat::from_word(v)
                        .ok_or_else(|| format!("{v:?} is not a log format; expected text or json"))
                })
                .unwrap_or_default();
        }
        if let Some(found) = self.own(doc, section, "pidfile") {
            if !value::is_none(&found.value) {
                general.pidfile = Some(self.path(&found.value));
            }
        }
        if let Some(found) = self.own(doc, section, "control_socket") {
            general.control_socket = if value::is_none(&found.value) {
                ControlSocket::Off
            } else {
                ControlSocket::Path(self.path(&found.value))
            };
        }
        if let Some(found) = self.own(doc, section, "state_file") {
            if !value::is_none(&found.value) {
                general.state_file = Some(self.path(&found.value));
            }
        }
    }

    /// `threads`, `daemonize`, `on_demand`, `exit_on_failure`,
    /// `check_permissions`, `redact`, `interval`, `action_timeout`.
    fn schedule(&mut self, doc: &Document, section: &Section, general: &mut General) {
        if let Some(found) = self.own(doc, section, "threads") {
            if let Some(n) = self.typed("threads", &found, |v| value::count(v, 1, 1024)) {
                general.threads = n as usize;
            }
        }
        let flags: [(&str, &mut bool); 5] = [
            ("daemonize", &mut general.daemonize),
            ("on_demand", &mut general.on_demand),
            ("exit_on_failure", &mut general.exit_on_failure),
            ("check_permissions", &mut general.check_permissions),
            ("redact", &mut general.redact),
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
    }

    /// `env_keep`, `env_set`: what children get beyond the clean
    /// environment.
    fn environment(&mut self, doc: &Document, section: &Section, general: &mut General) {
        if let Some(found) = self.own(doc, section, "env_keep") {
            general.env_keep = self
                .typed("env_keep", &found, env_names)
                .unwrap_or_default();
        }
        if let Some(found) = self.own(doc, section, "env_set") {
            general.env_set = self
                .typed("env_set", &found, env_assignments)
                .unwrap_or_default();
        }
    }

    /// `listen`, `fail_status`.
    fn status_server(&mut self, doc: &Document, section: &Section, general: &mut General) {
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

/// How long [`listen_address`] waits for a host name to resolve.
pub const LISTEN_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The status server address, in every form `listen`, `--listen` and
/// `heartbeat status ADDR` take: `IP:PORT`, `[V6]:PORT`, `:PORT` (every
/// IPv4 address), or `NAME:PORT`, resolved now, once: the first address the
/// system's resolver gives (getaddrinfo(3), so `/etc/hosts` first).
///
/// # Errors
/// When the text has none of these forms, the port is not a number from 0
/// to 65535, or the name does not resolve within
/// [`LISTEN_RESOLVE_TIMEOUT`] (resolution runs on a thread of its own, so a
/// hanging DNS server costs that long and no more).
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    listen_addresses(text).map(|all| all[0])
}

/// Every address `text` ([`listen_address`]'s forms) stands for: one for an
/// IP address, all that a name resolves to, in the resolver's order
/// (a client tries each in turn).
///
/// # Errors
/// As [`listen_address`]; the list is never empty.
pub fn listen_addresses(text: &str) -> Result<Vec<SocketAddr>, String> {
    let expected = "expected HOST:PORT such as 127.0.0.1:8080, localhost:8080, [::1]:8080 or :8080";
    let bad = || format!("{text:?} is not an address; {expected}");
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))]);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
    if host.is_empty() || !host.chars().all(name_char) {
        return Err(bad());
    }
    resolve(host, port)
}

/// `host` resolved on a thread of its own, within [`LISTEN_RESOLVE_TIMEOUT`].
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let tasks_before = tasks();
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    let resolver = std::thread::Builder::new()
        .name("listen-resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?;
    match rx.recv_timeout(LISTEN_RESOLVE_TIMEOUT) {
        Ok(resolved) => {
            // It has sent: it ends at once, and no thread is left behind.
            let _ = resolver.join();
            // join() returns a moment before the kernel stops counting the
            // thread; detaching and dropping privileges, which refuse to
            // run beside another thread, may come right after.
            for _ in 0..100 {
                if tasks() <= tasks_before {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            match resolved {
                Ok(all) if !all.is_empty() => Ok(all),
                Ok(_) => Err(format!("{host:?} has no address")),
                Err(e) => Err(format!("cannot resolve {host:?}: {e}")),
            }
        }
        Err(_) => Err(format!(
            "cannot resolve {host:?}: no answer within {}s",
            LISTEN_RESOLVE_TIMEOUT.as_secs()
        )),
    }
}

/// The number of threads of this process (`/proc/self/task`), or 0 when
/// it cannot be read.
fn tasks() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Where `logfile` (and the sidecar's `--logfile`) sends the log: `stderr`
/// or `-` (also `None` or empty), `syslog`, or a path, resolved against
/// `base` when relative.
pub fn log_target(text: &str, base: &Path) -> LogTarget {
    match text {
        "stderr" | "-" => LogTarget::Stderr,
        "syslog" => LogTarget::Syslog,
        v if value::is_none(v) => LogTarget::Stderr,
        v => LogTarget::File(base.join(v)),
    }
}

/// Whether `name` can be an environment variable of a child: letters,
/// digits and `_`, not starting with a digit (POSIX.1-2017, 8.1).
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `env_keep`: variable names separated by commas or white space
/// (`http_proxy, https_proxy, no_proxy`); `None` or empty for none.
///
/// # Errors
/// A name that cannot be a variable's, or one of the `HEARTBEAT_*`
/// variables heartbeat sets itself.
pub fn env_names(text: &str) -> Result<Vec<String>, String> {
    if value::is_none(text) {
        return Ok(Vec::new());
    }
    let names: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    for name in &names {
        check_env_name(name)?;
    }
    Ok(names)
}

fn check_env_name(name: &str) -> Result<(), String> {
    if !is_env_name(name) {
        return Err(format!(
            "{name:?} is not a variable name; expected letters, digits and _, such as http_proxy"
        ));
    }
    if name.starts_with("HEARTBEAT_") {
        return Err(format!(
            "{name} is set by heartbeat for every run; choose another name"
        ));
    }
    Ok(())
}

/// `env_set`: one `NAME=value` per line (continuation lines, indented, add
/// more), the value taken as written after the first `=`.
///
/// # Errors
/// A line without `=`, or a name [`env_names`] would refuse.
pub fn env_assignments(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut set = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "{line:?} is not an assignment; expected NAME=value, one per line"
            ));
        };
        let name = name.trim();
        check_env_name(name)?;
        set.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(set)
}
