//! `--check-config` (`-t`): what the configuration will run, without
//! running anything, and the problems that can be seen without running it.
//!
//! [`summary`] prints every effective setting: first `[general]`, one
//! `key = value` line per key at the start of the line, paths absolute,
//! a key that is not set as a comment saying what that means (`# pidfile
//! = (none)`); then each action group with its two commands; then every
//! check in a table whose columns are as wide as their longest cell. Every
//! other line is indented, so `contrib/heartbeat.init` reads `logfile`,
//! `pidfile` and `user` back with `sed -n 's/^pidfile = //p'`; these lines
//! keep their form. With `[cluster]`, its keys follow in the same form,
//! and each exclusive group says so. Commands are shown in full, line by line, as they
//! reach `/bin/sh -c`.
//!
//! [`preflight`] looks at the files the configuration names: the log
//! file's directory exists and can be written, every `ca_file` can be read,
//! and every program a hook or a script check names by an absolute path
//! (the first word of each of its commands) exists and may be executed by
//! the user it runs as.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use nix::unistd::{AccessFlags, access};

use crate::config::{Diagnostic, Places};
use crate::daemon::trust;
use crate::model::ControlSocket;
use crate::model::{
    CheckSpec, ClusterSpec, Config, Expect, General, GrpcProbe, LogFormat, LogTarget, Probe,
    TcpProbe, host_port, short_duration,
};

/// The `--check-config` report, as the module documentation describes it.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let origin = config
        .path
        .as_deref()
        .map_or_else(|| "command line".into(), |p: &Path| p.display().to_string());
    let _ = writeln!(
        out,
        "{origin}: OK: {}, {}",
        count(config.groups.len(), "group"),
        count(config.checks.len(), "check")
    );
    out.push_str("\n[general]\n");
    for (key, value) in general(&config.general) {
        out.push_str(&setting_line(key, &value));
    }
    if let Some(cluster) = &config.cluster {
        out.push_str(&cluster_settings(cluster));
    }
    let mut feeding: HashMap<&str, Vec<&str>> = HashMap::new();
    for check in &config.checks {
        for group in &check.groups {
            feeding.entry(group).or_default().push(&check.name);
        }
    }
    for group in &config.groups {
        let feeding = feeding.remove(group.name.as_str()).unwrap_or_default();
        let exclusive = config
            .cluster
            .as_ref()
            .is_some_and(|c| c.is_exclusive(&group.name));
        let _ = writeln!(
            out,
            "\n  group {:?}{}: {}{}",
            group.name,
            if exclusive {
                " (exclusive across the cluster)"
            } else {
                ""
            },
            count(feeding.len(), "check"),
            if feeding.is_empty() {
                String::new()
            } else {
                format!(" ({})", quoted_list(&feeding))
            }
        );
        let _ = writeln!(out, "    promotion: {}", indent_lines(&group.promotion, 15));
        let _ = writeln!(out, "    demotion:  {}", indent_lines(&group.demotion, 15));
    }
    out.push('\n');
    out.push_str(&checks_table(config));
    out
}

/// The `[cluster]` block: every key with its effective value.
/// The line of one `[general]` key in the report: `key = value` (a
/// multi-line value indented), or `# key = (meaning)` when it is not set.
fn setting_line(key: &str, value: &Setting) -> String {
    match value {
        Setting::Set(v) => format!("{key} = {}\n", indent_lines(v, 4)),
        Setting::Unset(meaning) => format!("# {key} = ({meaning})\n"),
    }
}

/// `-t --setting KEY…`: the report's lines of these `[general]` keys, in
/// the report's order (each once).
pub fn settings(config: &Config, keys: &[String]) -> String {
    general(&config.general)
        .iter()
        .filter(|(key, _)| keys.iter().any(|k| k == key))
        .map(|(key, value)| setting_line(key, value))
        .collect()
}

/// Whether every key of `keys` is one `-t` shows in `[general]`.
///
/// # Errors
/// The first that is not, with the keys there are.
pub fn known_settings(keys: &[String]) -> Result<(), String> {
    let known: Vec<&str> = general(&General::default())
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    match keys.iter().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(format!(
            "--setting {unknown}: not a key of [general]; expected one of {}",
            known.join(", ")
        )),
    }
}

fn cluster_settings(cluster: &ClusterSpec) -> String {
    let endpoints: Vec<String> = cluster.endpoints.iter().map(|e| e.to_string()).collect();
    let mut out = String::from("\n[cluster]\n");
    let _ = writeln!(out, "etcd = {}", endpoints.join(", "));
    let _ = writeln!(out, "node = {}", cluster.node);
    let _ = writeln!(out, "lease = {}", short_duration(cluster.lease));
    let _ = writeln!(out, "prefix = {}", cluster.prefix);
    let _ = writeln!(out, "groups = {}", cluster.groups.join(", "));
    let files = [
        ("ca_file", cluster.tls.ca_file.as_deref()),
        (
            "cert_file",
            cluster.tls.identity.as_ref().map(|i| i.0.as_path()),
        ),
        (
            "key_file",
            cluster.tls.identity.as_ref().map(|i| i.1.as_path()),
        ),
    ];
    for (key, path) in files {
        match path {
            Some(path) => {
                let _ = writeln!(out, "{key} = {}", path.display());
            }
            None => {
                let _ = writeln!(out, "# {key} = (none)");
            }
        }
    }
    out
}

/// The table of checks: one row each, the target (and what a response
/// must hold) in the last column.
fn checks_table(config: &Config) -> String {
    let header = [
        "CHECK", "TYPE", "GROUPS", "TIMEOUT", "RISE", "FALL", "INTERVAL", "TARGET",
    ];
    let rows: Vec<[String; 8]> = config
        .checks
        .iter()
        .map(|c| row(c, config.general.interval))
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from("  ");
        for (i, cell) in row[..7].iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            line.push_str(cell);
            line.push_str(&" ".repeat(pad + 2));
        }
        let target_column = line.chars().count();
        line.push_str(&indent_lines(&row[7], target_column));
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn row(check: &CheckSpec, general_interval: Duration) -> [String; 8] {
    let interval = short_duration(check.interval.unwrap_or(general_interval));
    let interval = match check.fast_interval {
        Some(fast) => format!("{interval}, fast {}", short_duration(fast)),
        None => interval,
    };
    [
        format!("{:?}", check.name),
        check.probe.kind().to_string(),
        check.groups.join(","),
        short_duration(check.timeout),
        check.rise.to_string(),
        check.fall.to_string(),
        interval,
        target(&check.probe),
    ]
}

/// What a check probes and what the answer must hold, in the words of
/// the configuration file.
fn target(probe: &Probe) -> String {
    let h = match probe {
        Probe::Http(h) => h,
        Probe::Tcp(t) => return tcp_target(t),
        Probe::Grpc(g) => return grpc_target(g),
        _ => return probe.endpoint_as(false),
    };
    let mut out = format!("{}, expect_status = {}", h.url(), h.expect_status);
    if let Some(body) = &h.expect_body {
        let _ = write!(out, ", expect_body = {body:?}");
    }
    if h.https {
        let _ = write!(out, ", tls_verify = {}", yes_no(h.tls_verify));
        if let Some(ca) = &h.ca_file {
            let _ = write!(out, ", ca_file = {}", ca.display());
        }
    }
    out
}

/// A TCP check's address, TLS settings and dialogue. What it sends may be
/// a password: only its length is shown.
fn tcp_target(t: &TcpProbe) -> String {
    let mut out = host_port(&t.host, t.port);
    if let Some(tls) = &t.tls {
        let _ = write!(out, ", tls = yes, tls_verify = {}", yes_no(tls.verify));
        if let Some(ca) = &tls.ca_file {
            let _ = write!(out, ", ca_file = {}", ca.display());
        }
    }
    if !t.send.is_empty() {
        let _ = write!(out, ", send = {} bytes", t.send.len());
    }
    match &t.expect {
        Some(text @ Expect::Contains(_)) => {
            let _ = write!(out, ", expect = {text}");
        }
        Some(Expect::Regex(p)) => {
            let _ = write!(out, ", expect_regex = {}", p.0.as_str());
        }
        None => {}
    }
    out
}

/// A gRPC check's URL, authority and TLS settings.
fn grpc_target(g: &GrpcProbe) -> String {
    let mut out = g.url();
    if let Some(authority) = &g.authority {
        let _ = write!(out, ", authority = {authority}");
    }
    if let Some(tls) = &g.tls {
        let _ = write!(out, ", tls_verify = {}", yes_no(tls.verify));
        if let Some(ca) = &tls.ca_file {
            let _ = write!(out, ", ca_file = {}", ca.display());
        }
    }
    out
}

/// The value of a `[general]` key as the report shows it.
enum Setting {
    /// `key = value`.
    Set(String),
    /// Not set; what that means.
    Unset(&'static str),
}

/// Every key of `[general]` with its effective value, in the order of the
/// README's table.
fn general(g: &General) -> Vec<(&'static str, Setting)> {
    use Setting::{Set, Unset};
    let duration = |d: Duration| Set(short_duration(d));
    let flag = |b: bool| Set(yes_no(b).to_owned());
    vec![
        (
            "user",
            g.user
                .as_ref()
                .map_or(Unset("none: the launching user"), |u| Set(u.name.clone())),
        ),
        (
            "group",
            g.group
                .as_ref()
                .map_or(Unset("none: the user's group"), |x| Set(x.name.clone())),
        ),
        (
            "logfile",
            Set(match &g.log {
                LogTarget::Stderr => "stderr".into(),
                LogTarget::Syslog => "syslog".into(),
                LogTarget::File(path) => path.display().to_string(),
            }),
        ),
        ("loglevel", Set(level(g.log_level).into())),
        (
            "logformat",
            Set(match g.log_format {
                LogFormat::Text => "text".into(),
                LogFormat::Json => "json".into(),
            }),
        ),
        (
            "pidfile",
            g.pidfile
                .as_ref()
                .map_or(Unset("none"), |p| Set(p.display().to_string())),
        ),
        ("threads", Set(g.threads.to_string())),
        ("daemonize", flag(g.daemonize)),
        ("interval", duration(g.interval)),
        ("action_timeout", duration(g.action_timeout)),
        (
            "listen",
            g.listen
                .map_or(Unset("off: no status server"), |a| Set(a.to_string())),
        ),
        ("on_demand", flag(g.on_demand)),
        ("fail_status", Set(g.fail_status.to_string())),
        ("exit_on_failure", flag(g.exit_on_failure)),
        (
            "env_keep",
            if g.env_keep.is_empty() {
                Unset("none")
            } else {
                Set(g.env_keep.join(", "))
            },
        ),
        (
            "env_set",
            if g.env_set.is_empty() {
                Unset("none")
            } else {
                let lines: Vec<String> =
                    g.env_set.iter().map(|(n, v)| format!("{n}={v}")).collect();
                Set(lines.join("\n"))
            },
        ),
        ("check_permissions", flag(g.check_permissions)),
        ("redact", flag(g.redact)),
        (
            "control_socket",
            match (&g.control_socket, &g.pidfile) {
                (ControlSocket::Path(path), _) => Set(path.display().to_string()),
                (ControlSocket::Off, _) => Unset("none: no control socket"),
                (ControlSocket::Default, Some(pidfile)) => {
                    Set(crate::control::path::next_to_pidfile(pidfile)
                        .display()
                        .to_string())
                }
                (ControlSocket::Default, None) => {
                    Unset("none, or /run/heartbeat/NAME.sock under the systemd unit")
                }
            },
        ),
        (
            "state_file",
            g.state_file.as_ref().map_or(
                Unset("none: holds and announced states end with the process"),
                |p| Set(p.display().to_string()),
            ),
        ),
    ]
}

/// The name Python's `logging` gives a level, as `loglevel` takes it.
fn level(filter: log::LevelFilter) -> &'static str {
    match filter {
        log::LevelFilter::Off => "OFF",
        log::LevelFilter::Error => "ERROR",
        log::LevelFilter::Warn => "WARNING",
        log::LevelFilter::Info => "INFO",
        log::LevelFilter::Debug => "DEBUG",
        log::LevelFilter::Trace => "TRACE",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `1 group`, `2 groups`.
fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// `text` with every line after the first indented by `column` spaces, so
/// that a multi-line value stays under its first line.
fn indent_lines(text: &str, column: usize) -> String {
    text.replace('\n', &format!("\n{}", " ".repeat(column)))
}

/// Problems with the files `config` names, found without running anything
/// (see the module documentation), each at the place in the file that
/// names the file.
pub fn preflight(config: &Config, places: &Places) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    if let LogTarget::File(path) = &config.general.log {
        if let Some(problem) = log_problem(path) {
            found.push(places.diagnostic("general", "logfile", problem));
        }
    }
    for check in &config.checks {
        if let Probe::Http(h) = &check.probe {
            if let Some(ca) = &h.ca_file {
                if let Err(e) = std::fs::File::open(ca) {
                    let message = format!("{} cannot be read: {e}", ca.display());
                    found.push(places.diagnostic(&check.name, "ca_file", message));
                }
            }
        }
    }
    for (section, key, command) in commands(config) {
        for program in trust::programs(command) {
            if let Some(problem) = program_problem(&program, &config.general) {
                found.push(places.diagnostic(section, key, problem));
            }
        }
    }
    found
}

/// Every command with the section and key that give it.
fn commands(config: &Config) -> Vec<(&str, &str, &str)> {
    let mut all = Vec::new();
    for group in &config.groups {
        all.push(("promotions", group.name.as_str(), group.promotion.as_str()));
        all.push(("demotions", group.name.as_str(), group.demotion.as_str()));
    }
    for check in &config.checks {
        if let Probe::Script { command } = &check.probe {
            all.push((check.name.as_str(), "command", command.as_str()));
        }
    }
    all
}

/// Why heartbeat could not write the log file at `path`, if it could not.
fn log_problem(path: &Path) -> Option<String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    if !dir.is_dir() {
        return Some(format!(
            "the log file's directory {} does not exist; create it (install -d {})",
            dir.display(),
            dir.display()
        ));
    }
    if path.is_dir() {
        return Some(format!(
            "{} is a directory; expected the path of a file",
            path.display()
        ));
    }
    let writable = |p: &Path, flags| access(p, flags).is_ok();
    let ok = if path.exists() {
        writable(path, AccessFlags::W_OK)
    } else {
        writable(dir, AccessFlags::W_OK | AccessFlags::X_OK)
    };
    (!ok).then(|| {
        let what = if path.exists() {
            path.display().to_string()
        } else {
            format!("the log file's directory {}", dir.display())
        };
        format!("{what} cannot be written by {}", current_user())
    })
}

/// Why the program at `path` could not be run by the user hooks and checks
/// run as, if it could not.
fn program_problem(path: &Path, general: &General) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Some(format!("{} cannot be run: {e}", path.display())),
    };
    if !meta.is_file() {
        return Some(format!(
            "{} is not a file, so it cannot be run",
            path.display()
        ));
    }
    let mode = meta.permissions().mode();
    let root = nix::unistd::geteuid().is_root();
    let (executable, who) = match &general.user {
        // After the privilege drop, the user's own bits decide.
        Some(user) if root && user.uid != 0 => {
            let gid = general.group.as_ref().map_or(user.gid, |g| g.gid);
            let bit = if meta.uid() == user.uid {
                0o100
            } else if meta.gid() == gid {
                0o010
            } else {
                0o001
            };
            (mode & bit != 0, user.name.clone())
        }
        _ => (access(path, AccessFlags::X_OK).is_ok(), current_user()),
    };
    (!executable).then(|| {
        format!(
            "{} cannot be executed by {who} (mode {:04o}); chmod +x {}",
            path.display(),
            mode & 0o7777,
            path.display()
        )
    })
}

fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GENERAL_KEYS;

    #[test]
    fn every_key_of_general_is_shown() {
        let shown: Vec<&str> = general(&General::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut keys = GENERAL_KEYS.to_vec();
        keys.sort_unstable();
        let mut sorted = shown.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, keys, "a key of [general] is missing from -t");
    }

    #[test]
    fn counts_are_singular_or_plural() {
        assert_eq!(count(1, "group"), "1 group");
        assert_eq!(count(0, "check"), "0 checks");
        assert_eq!(count(2, "check"), "2 checks");
    }
}
