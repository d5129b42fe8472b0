//! The domain model: the validated configuration (what the engine runs)
//! and the words every step shares for health ([`Health`], in `health`).
//!
//! [`crate::config`] turns INI text into these types once, at start-up and on
//! reload. Every value here has already been checked: durations are
//! [`Duration`]s, ports are `u16`, every action group a check names exists
//! with both a promotion and a demotion command. Nothing downstream parses
//! or validates again.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

mod cluster;
mod health;
mod probes;

pub use cluster::*;
pub use health::*;
pub use probes::*;

/// Whole-check deadline when `timeout` is not set (and `--timeout`).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Most worker threads chosen when `threads` is not set: one per check up
/// to this many.
pub const MAX_DEFAULT_THREADS: usize = 64;

/// The `threads` default for `checks` checks: one worker per check, at
/// least 1, at most [`MAX_DEFAULT_THREADS`].
pub fn default_threads(checks: usize) -> usize {
    checks.clamp(1, MAX_DEFAULT_THREADS)
}

/// A whole validated configuration, from a file or from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from: the configuration file, or `None` when the checks
    /// were given on the command line.
    pub path: Option<PathBuf>,
    /// The `[general]` section.
    pub general: General,
    /// The action groups, in the order of `[promotions]`.
    pub groups: Vec<GroupSpec>,
    /// The checks, in file order.
    pub checks: Vec<CheckSpec>,
    /// The `[cluster]` section, if any: the groups exclusive across nodes.
    pub cluster: Option<ClusterSpec>,
}

/// The `[general]` section, every key with its default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct General {
    /// User to run as after start-up; `None` keeps the launching user.
    /// Looked up when the configuration is loaded.
    pub user: Option<UserAccount>,
    /// Group to run as after start-up; `None` keeps the user's group.
    /// Looked up when the configuration is loaded.
    pub group: Option<UnixGroup>,
    /// Where log lines go.
    pub log: LogTarget,
    /// How log lines are written to standard error or a file.
    pub log_format: LogFormat,
    /// The most verbose level logged.
    pub log_level: log::LevelFilter,
    /// Path of the locked pidfile, absolute after loading.
    pub pidfile: Option<PathBuf>,
    /// Number of worker threads that run checks (1..=1024).
    pub threads: usize,
    /// Detach from the terminal at start-up.
    pub daemonize: bool,
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// Deadline of one promotion or demotion run.
    pub action_timeout: Duration,
    /// Address of the status server, if enabled.
    pub listen: Option<SocketAddr>,
    /// The status server runs a round per request (shared by concurrent
    /// requests) instead of answering from the latest scheduled round.
    pub on_demand: bool,
    /// HTTP status of `GET /` when not every group is healthy (100..=599).
    pub fail_status: u16,
    /// Exit with status 1 as soon as any check is unhealthy.
    pub exit_on_failure: bool,
    /// Variables children keep from heartbeat's environment (`env_keep`),
    /// beyond the clean environment every child gets.
    pub env_keep: Vec<String>,
    /// Variables set for children (`env_set`): name and value.
    pub env_set: Vec<(String, String)>,
    /// Running as root, refuse a configuration file, hook or check
    /// executable that another user can write (`check_permissions`).
    pub check_permissions: bool,
    /// Hide script and hook commands and URL query strings from `/status`
    /// and logs (`redact`). URL passwords are never shown.
    pub redact: bool,
    /// Where the control socket of `pause`, `resume` and `maintenance`
    /// listens (`control_socket`).
    pub control_socket: ControlSocket,
    /// Where holds and each group's last announced state are kept across
    /// restarts (`state_file`), absolute after loading; `None`: nowhere.
    pub state_file: Option<PathBuf>,
}

/// `control_socket` in `[general]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ControlSocket {
    /// Not set: the default place, next to the pidfile or under
    /// `/run/heartbeat` (see `crate::control::path`).
    #[default]
    Default,
    /// `control_socket = none`: no control socket.
    Off,
    /// `control_socket = PATH`, absolute after loading.
    Path(PathBuf),
}

impl Default for General {
    fn default() -> Self {
        General {
            user: None,
            group: None,
            log: LogTarget::Stderr,
            log_format: LogFormat::Text,
            log_level: log::LevelFilter::Info,
            pidfile: None,
            threads: 1,
            daemonize: false,
            interval: Duration::from_secs(60),
            action_timeout: Duration::from_secs(60),
            listen: None,
            on_demand: false,
            fail_status: 503,
            exit_on_failure: false,
            env_keep: Vec::new(),
            env_set: Vec::new(),
            check_permissions: true,
            redact: true,
            control_socket: ControlSocket::Default,
            state_file: None,
        }
    }
}

/// A user account of this system (`user` in `[general]`), as the user
/// database gave it when the configuration was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccount {
    /// Its name (also when the configuration gave a numeric id).
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
    /// Its home directory.
    pub home: PathBuf,
}

/// A group of this system (`group` in `[general]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixGroup {
    /// Its name (also when the configuration gave a numeric id).
    pub name: String,
    /// Its group id.
    pub gid: u32,
}

/// Where log lines are written (`logfile` in `[general]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error (`stderr` or `-`).
    Stderr,
    /// The local syslog, facility `daemon`.
    Syslog,
    /// A file, appended to, reopened on SIGUSR1. Absolute after loading.
    File(PathBuf),
}

/// How log lines are written to standard error or a file (`logformat` in
/// `[general]`); syslog has its own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-12-01 19:16:31 +0000 INFO     message`: local time with its
    /// UTC offset, the level padded to 8 (`text`, the default).
    #[default]
    Text,
    /// One JSON object a line, `{"time":"2026-12-01T19:16:31.250+00:00",
    /// "level":"INFO","message":"…"}`, the time in RFC 3339 (`json`).
    Json,
}

impl LogFormat {
    /// The format named `word` (`text` or `json`, any case).
    pub fn from_word(word: &str) -> Option<LogFormat> {
        match word.to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// An action group: the commands run when it turns healthy or unhealthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The name used in `[promotions]`, `[demotions]` and `action = …`.
    pub name: String,
    /// Shell command run when the group turns healthy.
    pub promotion: String,
    /// Shell command run when the group turns unhealthy.
    pub demotion: String,
}

impl GroupSpec {
    /// The command run for `kind`: the promotion or the demotion.
    pub fn command(&self, kind: ActionKind) -> &str {
        match kind {
            ActionKind::Promotion => &self.promotion,
            ActionKind::Demotion => &self.demotion,
        }
    }
}

/// One check section.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// The section name.
    pub name: String,
    /// What to probe.
    pub probe: Probe,
    /// Whole-check deadline: resolve, connect, TLS, request and response.
    pub timeout: Duration,
    /// Names of the action groups this check feeds (at least one).
    pub groups: Vec<String>,
    /// Consecutive successes that turn the check healthy (>= 1).
    pub rise: u32,
    /// Consecutive failures that turn the check unhealthy (>= 1).
    pub fall: u32,
    /// Time between the starts of two runs of this check (`interval` in
    /// its section); `None` follows `[general] interval`.
    pub interval: Option<Duration>,
    /// Time between two runs while the check is between states: it has
    /// failed but fewer than `fall` times in a row, or passed but fewer
    /// than `rise` times (`fast_interval`, HAProxy's `fastinter`). `None`:
    /// the check keeps its `interval`.
    pub fast_interval: Option<Duration>,
}

impl CheckSpec {
    /// Whether `other` is the same check probing the same thing: the same
    /// name and the same [`Probe`] (type, target and what counts as a
    /// pass). Its thresholds (`rise`, `fall`), `timeout`, `interval`,
    /// `fast_interval` and `action` may differ: a reload that changes only
    /// those keeps the check's state, counters and latest result, since
    /// they still describe the same target.
    pub fn same_probe(&self, other: &CheckSpec) -> bool {
        self.name == other.name && self.probe == other.probe
    }
}

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum Probe {
    /// A TCP connect to `host:port`, optionally with TLS and a dialogue
    /// of `send` and `expect`.
    Tcp(TcpProbe),
    /// An HTTP or HTTPS request.
    Http(HttpProbe),
    /// A gRPC health check (`grpc.health.v1.Health/Check`).
    Grpc(GrpcProbe),
    /// A shell command run as `/bin/sh -c COMMAND`; healthy iff it exits 0.
    Script {
        /// The command, exactly as written in the configuration.
        command: String,
    },
}

/// The type of a check, as `type = …` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `tcp`: a connection opens (and, when asked, TLS works and the
    /// reply holds what is expected).
    Tcp,
    /// `http`: a request gets an expected answer.
    Http,
    /// `https`: the same over TLS.
    Https,
    /// `script`: a shell command exits 0.
    Script,
    /// `grpc`: the gRPC health service answers `SERVING`.
    Grpc,
}

impl CheckKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [CheckKind; 5] = [
        CheckKind::Tcp,
        CheckKind::Http,
        CheckKind::Https,
        CheckKind::Script,
        CheckKind::Grpc,
    ];

    /// The word of `type = …`, of logs, `/status` and metric labels:
    /// `tcp`, `http`, `https`, `script` or `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
            CheckKind::Script => "script",
            CheckKind::Grpc => "grpc",
        }
    }

    /// The kind named `word`, in any case (`TCP`, `Http`); `None` for
    /// anything else.
    pub fn from_word(word: &str) -> Option<CheckKind> {
        CheckKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Probe {
    /// A plain TCP connect check of `host:port` ([`TcpProbe::connect`]).
    pub fn tcp(host: impl Into<String>, port: u16) -> Probe {
        Probe::Tcp(TcpProbe::connect(host, port))
    }

    /// The check type this probe is.
    pub fn kind(&self) -> CheckKind {
        match self {
            Probe::Tcp(_) => CheckKind::Tcp,
            Probe::Http(h) if h.https => CheckKind::Https,
            Probe::Http(_) => CheckKind::Http,
            Probe::Script { .. } => CheckKind::Script,
            Probe::Grpc(_) => CheckKind::Grpc,
        }
    }

    /// A short description of what is probed, for logs and `/status`,
    /// with secrets left out: `127.0.0.1:80` (`127.0.0.1:6380 (TLS)` for a
    /// TLS check; what a TCP check sends is never shown), `https://example.org/health`
    /// with any query string shown as `?[redacted]`, and `[redacted]` for
    /// a script's command (a check is named by its section). The same as
    /// [`Probe::endpoint_as`]`(true)`.
    pub fn endpoint(&self) -> String {
        self.endpoint_as(true)
    }

    /// [`Probe::endpoint`], or with `redact` false (`redact = no` in
    /// `[general]`) the URL with its query string and the command as
    /// written.
    pub fn endpoint_as(&self, redact: bool) -> String {
        match self {
            Probe::Tcp(t) => t.endpoint(),
            Probe::Grpc(g) => g.url(),
            Probe::Http(h) if redact => redact_url(&h.url()),
            Probe::Http(h) => h.url(),
            Probe::Script { .. } if redact => REDACTED.to_owned(),
            Probe::Script { command } => command.clone(),
        }
    }

    /// What is probed, for the `target` label of `heartbeat_check_info`,
    /// with the same secrets left out as [`Probe::endpoint`] leaves out
    /// and whatever `redact` says (a label is scraped by others):
    /// `host:port` for TCP, the gRPC URL, the URL through [`redact_url`]
    /// for HTTP(S), and for a script only the program it starts (its first
    /// word, or `sh` when that word sets a variable or is not a plain
    /// path), never its arguments.
    pub fn target(&self) -> String {
        match self {
            Probe::Tcp(t) => host_port(&t.host, t.port),
            Probe::Grpc(g) => g.url(),
            Probe::Http(h) => redact_url(&h.url()),
            Probe::Script { command } => {
                let first = command.split_whitespace().next().unwrap_or_default();
                let plain = !first.is_empty()
                    && first
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c));
                if plain {
                    first.to_owned()
                } else {
                    "sh".to_owned()
                }
            }
        }
    }
}

/// What stands in for a secret in logs, `/status` and error messages.
pub const REDACTED: &str = "[redacted]";

/// `url` with its credentials (`user:password@`) and its query string
/// replaced by [`REDACTED`]: `http://[redacted]@host/path?[redacted]`. Text
/// that is not a URL passes unchanged, except for a query string.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = if scheme.is_empty() {
        0
    } else {
        rest.find(['/', '?', '#']).unwrap_or(rest.len())
    };
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let fragment = tail[q..].find('#').map_or("", |f| &tail[q + f..]);
            format!("{}?{REDACTED}{fragment}", &tail[..q])
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// `host:port`, with brackets around an IPv6 address.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A duration as an operator writes it in logs and reasons: `2s`, `250ms`,
/// `1.5s`, `300us`, `0s`.
pub fn short_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 && !d.is_zero() {
        return format!("{}us", d.as_micros());
    }
    if millis < 1000 && millis > 0 {
        return format!("{millis}ms");
    }
    if millis.is_multiple_of(1000) {
        return format!("{}s", millis / 1000);
    }
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    format!("{}s", text.trim_end_matches('0'))
}

/// An HTTP or HTTPS check.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct HttpProbe {
    /// `true` for HTTPS.
    pub https: bool,
    /// Host name or IP address (v4 or v6, without brackets).
    pub host: String,
    /// Port, 1..=65535.
    pub port: u16,
    /// Request path and query, starting with `/`.
    pub path: String,
    /// Status codes that count as success (default: exactly 200).
    pub expect_status: StatusSet,
    /// Text the response body must contain, if set.
    pub expect_body: Option<String>,
    /// Verify the server certificate (HTTPS only).
    pub tls_verify: bool,
    /// PEM file with CA certificates trusted in addition to the system
    /// roots (HTTPS only). Absolute after loading.
    pub ca_file: Option<PathBuf>,
    /// Fail when the server's certificate expires sooner than this
    /// (`tls_min_validity`, HTTPS only).
    pub tls_min_validity: Option<Duration>,
}

impl HttpProbe {
    /// The full request URL, e.g. `http://[::1]:8080/health`.
    pub fn url(&self) -> String {
        let scheme = if self.https {
            CheckKind::Https
        } else {
            CheckKind::Http
        };
        format!(
            "{scheme}://{}{}",
            host_port(&self.host, self.port),
            self.path
        )
    }
}

/// A set of HTTP status codes, written `200-299, 301` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusSet(pub Vec<RangeInclusive<u16>>);

impl StatusSet {
    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![200..=200])
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_query_strings() {
        assert_eq!(
            redact_url("http://user:pass@host:8080/health?token=abc#top"),
            "http://[redacted]@host:8080/health?[redacted]#top"
        );
        assert_eq!(redact_url("https://TOKEN@h/"), "https://[redacted]@h/");
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("http://h?x=1"), "http://h?[redacted]");
        assert_eq!(redact_url("tcp://a@b:1"), "tcp://[redacted]@b:1");
    }

    #[test]
    fn script_commands_are_shown_only_when_asked() {
        let probe = Probe::Script {
            command: "curl -H 'Authorization: Bearer s3cret' http://x".into(),
        };
        assert_eq!(probe.endpoint(), "[redacted]");
        assert!(probe.endpoint_as(false).contains("s3cret"));
    }
}
