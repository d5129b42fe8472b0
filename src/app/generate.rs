//! `heartbeat --generate WHAT`: the manual pages and the shell completions,
//! generated from the clap definition ([`crate::app::cli::Cli`]), the exit
//! statuses ([`Exit::ALL`]) and the configuration's lists of keys
//! ([`crate::config::GENERAL_KEYS`], [`crate::config::CHECK_KEYS`]), so
//! that they cannot drift from the binary, as ripgrep generates its own.
//!
//! - `man`: heartbeat(1), with the exit statuses, files and signals;
//! - `man-conf`: heartbeat.conf(5), the configuration reference;
//! - `complete-bash`, `complete-zsh`, `complete-fish`: completion scripts
//!   ([`clap_complete`]).

use std::io::{self, Write};

use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::app::cli::{Cli, DEFAULT_CONFIG};
use crate::exit::Exit;

/// What `--generate` writes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// heartbeat(1), the manual page of the command.
    Man,
    /// heartbeat.conf(5), the manual page of the configuration file.
    ManConf,
    /// Completions for bash.
    CompleteBash,
    /// Completions for zsh.
    CompleteZsh,
    /// Completions for fish.
    CompleteFish,
}

/// Writes `what` to `out`.
///
/// # Errors
/// When `out` cannot be written to.
pub fn generate(what: Generate, out: &mut dyn Write) -> io::Result<()> {
    let shell = match what {
        Generate::Man => return command_page(out),
        Generate::ManConf => return config_page(out),
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "heartbeat", out);
    Ok(())
}

/// heartbeat(1): clap's sections, then exit statuses, files, signals.
fn command_page(out: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(Cli::command())
        .source(format!("heartbeat {}", env!("CARGO_PKG_VERSION")))
        .manual("heartbeat manual");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;

    let mut roff = Roff::new();
    commands(&mut roff);
    section(&mut roff, "EXIT STATUS");
    paragraph(
        &mut roff,
        "Beyond 0, 1 and 2 the statuses follow sysexits.h, which init systems and operators recognise.",
    );
    for exit in Exit::ALL {
        item(&mut roff, &(exit as u8).to_string(), exit.meaning());
    }
    section(&mut roff, "FILES");
    item(
        &mut roff,
        DEFAULT_CONFIG,
        "The configuration read without -c FILE, see heartbeat.conf(5).",
    );
    item(
        &mut roff,
        "pidfile, logfile",
        "Where [general] of the configuration names them: the pidfile is locked with flock(2) \
         for as long as heartbeat runs and removed on a clean exit; the log file is appended to \
         and reopened on SIGUSR1.",
    );
    section(&mut roff, "SIGNALS");
    for (signal, effect) in SIGNALS {
        item(&mut roff, signal, effect);
    }
    section(&mut roff, "SEE ALSO");
    roff.text([
        bold("heartbeat.conf"),
        roman("(5), "),
        bold("systemd.service"),
        roman("(5), "),
        bold("sysexits.h"),
        roman("(3head)"),
    ]);
    roff.to_writer(out)
}

/// The subcommands with their arguments, on this page (clap_mangen's own
/// section points at a page per subcommand, which heartbeat does not
/// need).
fn commands(roff: &mut Roff) {
    let cli = Cli::command();
    section(roff, "COMMANDS");
    for sub in cli.get_subcommands() {
        let args: Vec<_> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && a.get_id() != "help")
            .collect();
        let usage: Vec<String> = args.iter().map(|a| arg_name(a)).collect();
        roff.control("TP", []);
        roff.text([
            bold(format!("heartbeat {}", sub.get_name())),
            roman(format!(" [{}] [-c FILE]", usage.join("] ["))),
        ]);
        let about = sub.get_long_about().or(sub.get_about());
        roff.text([roman(about.map(|a| a.to_string()).unwrap_or_default())]);
        for arg in args {
            roff.control("RS", []);
            item(
                roff,
                &arg_name(arg),
                &arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
            );
            roff.control("RE", []);
        }
    }
}

/// `--timeout DURATION`, or `ADDR:PORT` for a positional argument.
fn arg_name(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_default();
    match arg.get_long() {
        Some(long) if value.is_empty() => format!("--{long}"),
        Some(long) => format!("--{long} {value}"),
        None => value,
    }
}

/// What each signal does, for heartbeat(1).
const SIGNALS: [(&str, &str); 3] = [
    (
        "SIGTERM, SIGINT",
        "Stop within a second, even in the middle of an interval: running script checks are \
         killed, running actions get their action_timeout; exit status 0.",
    ),
    (
        "SIGHUP",
        "Reread the configuration. An invalid file is logged and the running one kept; checks \
         and groups whose definition is unchanged keep their state, so no action runs again.",
    ),
    ("SIGUSR1", "Reopen the log file (after logrotate moved it)."),
];

/// One key of the configuration file: its name, what it means and its
/// default.
struct Key {
    name: &'static str,
    meaning: &'static str,
    default: &'static str,
}

const fn key(name: &'static str, meaning: &'static str, default: &'static str) -> Key {
    Key {
        name,
        meaning,
        default,
    }
}

/// The keys of `[general]`, in the order of [`crate::config::GENERAL_KEYS`]
/// (a test holds them to it).
const GENERAL: &[Key] = &[
    key(
        "user",
        "Drop to this user after start-up (a name or a numeric id); None keeps the launching one. Needs root.",
        "None",
    ),
    key(
        "group",
        "Drop to this group after start-up; None keeps the user's primary group.",
        "None",
    ),
    key(
        "logfile",
        "A path (appended, mode 0640, reopened on SIGUSR1), stderr (or -), or syslog (/dev/log, facility daemon).",
        "stderr",
    ),
    key(
        "loglevel",
        "DEBUG, INFO, WARNING (or WARN), ERROR or CRITICAL, any case, or 10 to 50.",
        "INFO",
    ),
    key(
        "logformat",
        "text (local time with its UTC offset, the level, the message) or json (one JSON object a line, RFC 3339 time); syslog keeps its own format.",
        "text",
    ),
    key(
        "pidfile",
        "Path of the pidfile, locked with flock(2); a second instance exits 75.",
        "none",
    ),
    key(
        "threads",
        "Workers that run checks (1 to 1024).",
        "the number of checks, at most 64",
    ),
    key("daemonize", "Detach from the terminal, as -d does.", "no"),
    key("interval", "Time between the starts of two rounds.", "60"),
    key(
        "action_timeout",
        "Deadline of one promotion or demotion; then its process group gets SIGTERM, and SIGKILL 5 s later.",
        "60",
    ),
    key(
        "listen",
        "Address of the status server: 127.0.0.1:8080, [::1]:8080, :8080 (every IPv4 address) or a name such as localhost:8080 (resolved at start-up).",
        "off",
    ),
    key(
        "on_demand",
        "The status server runs a round per request to / and /ready (concurrent requests share one).",
        "no",
    ),
    key(
        "fail_status",
        "HTTP status of GET / when not every group is healthy (100 to 599).",
        "503",
    ),
    key(
        "exit_on_failure",
        "Exit with status 1 once any check is unhealthy (after its fall consecutive failures).",
        "no",
    ),
    key(
        "env_keep",
        "Variables checks and hooks keep from heartbeat's environment beyond the clean one, comma- or space-separated (http_proxy, https_proxy).",
        "none",
    ),
    key(
        "env_set",
        "Variables set for checks and hooks, one NAME=value per line.",
        "none",
    ),
    key(
        "check_permissions",
        "Started as root, refuse a configuration file, hook or check executable another user can write (not turned off for a file everyone may write).",
        "yes",
    ),
    key(
        "redact",
        "Keep script and hook commands and URL query strings out of /status and the log; URL passwords are never shown.",
        "yes",
    ),
    key(
        "control_socket",
        "Unix socket (mode 0600) of heartbeat pause, resume and maintenance; none turns it off.",
        "next to the pidfile (heartbeat.pid: heartbeat.sock); without one, /run/heartbeat/NAME.sock under the systemd unit (NAME: the configuration file's, without .conf)",
    ),
    key(
        "state_file",
        "File where pauses, maintenance and each group's last announced state survive restarts (written atomically).",
        "none",
    ),
];

/// The keys of `[cluster]`, in the order of [`crate::config::CLUSTER_KEYS`]
/// (a test holds them to it).
const CLUSTER: &[Key] = &[
    key(
        "etcd",
        "The client URLs of the etcd members, comma-separated: http://HOST[:PORT] or https://HOST[:PORT] (port 2379 when none is given). Every one is used, the next tried when one fails.",
        "required",
    ),
    key(
        "node",
        "This node's name: letters, digits, ., _ and -. The value of its leader key, and HEARTBEAT_LEADER on the other nodes.",
        "the host name",
    ),
    key(
        "lease",
        "TTL of each group's lease, in whole seconds; renewed every third of it. A node that cannot renew it demotes before it can expire; a node that dies is replaced once it has expired. An exclusive group's action, with 0.5 s between SIGTERM and SIGKILL, and a margin of a tenth of the lease (at least 250 ms) must fit in a third of the lease: the default allows action_timeout = 1.833s.",
        "10",
    ),
    key(
        "prefix",
        "Where the elections live in etcd: group G is elected under PREFIX/G.",
        "/heartbeat",
    ),
    key(
        "groups",
        "The action groups that only one node may have promoted at a time, comma-separated. The others behave as without [cluster].",
        "required",
    ),
    key(
        "ca_file",
        "https endpoints: PEM file of CA certificates trusted in addition to the system's.",
        "none",
    ),
    key(
        "cert_file",
        "https endpoints: PEM client certificate, for etcd's --client-cert-auth; with key_file.",
        "none",
    ),
    key(
        "key_file",
        "https endpoints: the PEM (PKCS#8) private key of cert_file.",
        "none",
    ),
];

/// The keys of a check section, in the order of
/// [`crate::config::CHECK_KEYS`] (a test holds them to it).
const CHECK: &[Key] = &[
    key(
        "type",
        "tcp, http, https, script or grpc (any case).",
        "from url, else required",
    ),
    key(
        "hostname",
        "Host name or IP address (v4 or v6).",
        "localhost",
    ),
    key(
        "port",
        "1 to 65535.",
        "80 for http, 443 for https; required for tcp and grpc",
    ),
    key("path", "Request path of an http or https check.", "/"),
    key(
        "url",
        "Instead of type, hostname, port and path: tcp://HOST:PORT, http://HOST[:PORT]/PATH, https://..., grpc://HOST:PORT[/SERVICE] or grpcs://... (gRPC over TLS), IPv6 addresses in brackets.",
        "none",
    ),
    key(
        "command",
        "For type = script: a shell command, healthy if it exits 0 within the timeout.",
        "none",
    ),
    key(
        "timeout",
        "Whole-check deadline: resolving, connecting, TLS and the response.",
        "5",
    ),
    key(
        "action",
        "The action group or groups this check feeds, comma-separated.",
        "required",
    ),
    key(
        "rise",
        "Consecutive successes that turn the check healthy (1 to 1000).",
        "1",
    ),
    key(
        "fall",
        "Consecutive failures that turn the check unhealthy (1 to 1000).",
        "1",
    ),
    key(
        "interval",
        "Time between two runs of this check.",
        "[general] interval",
    ),
    key(
        "fast_interval",
        "Time between two runs while the check is between states (failed, or passed, fewer than fall or rise times in a row), as HAProxy's fastinter.",
        "the check's interval",
    ),
    key(
        "expect_status",
        "http and https: the statuses that count as success, e.g. 200-299, 301.",
        "200",
    ),
    key(
        "expect_body",
        "http and https: text the body (its first 64 KiB) must contain.",
        "none",
    ),
    key(
        "tls_verify",
        "https, grpcs, and tcp with tls = yes: verify the certificate and the host name.",
        "yes",
    ),
    key(
        "ca_file",
        "https, grpcs, and tcp with tls = yes: PEM file of CA certificates trusted in addition to the system's.",
        "none",
    ),
    key(
        "tls",
        "tcp: open TLS on the connection (no STARTTLS), verified as for https; send and expect then go over it. grpc: gRPC over TLS, as grpcs:// says.",
        "no",
    ),
    key(
        "send",
        "tcp: bytes written once connected, with the escapes \\r, \\n, \\t, \\\\ and \\xNN (any byte); never shown in reasons, logs or -t.",
        "none",
    ),
    key(
        "expect",
        "tcp: text the reply (its first 16 KiB, read within the timeout) must contain, with the escapes of send.",
        "none",
    ),
    key(
        "expect_regex",
        "tcp: instead of expect, a regular expression (Rust regex syntax) the reply must match.",
        "none",
    ),
    key(
        "tls_min_validity",
        "https, tcp with tls = yes, grpcs: fail when the server's certificate expires sooner than this duration, given with its unit (14d, 2w, 36h).",
        "off",
    ),
    key(
        "service",
        "grpc: the service whose health grpc.health.v1.Health/Check asks about, e.g. shop.Cart (the path of a grpc:// URL).",
        "empty: the whole server",
    ),
    key(
        "authority",
        "grpc: the :authority of the request and, over TLS, the name the certificate must carry.",
        "hostname:port",
    ),
];

/// The variables every promotion and demotion finds in its environment.
const HOOK_ENVIRONMENT: [(&str, &str); 4] = [
    ("HEARTBEAT_ACTION", "The group's name."),
    (
        "HEARTBEAT_STATE",
        "healthy (a promotion) or unhealthy (a demotion).",
    ),
    (
        "HEARTBEAT_PREVIOUS_STATE",
        "What the group's last successful action announced: unknown, healthy or unhealthy.",
    ),
    (
        "HEARTBEAT_FAILED_CHECKS",
        "The group's unhealthy checks, comma-separated.",
    ),
];

/// heartbeat.conf(5): the syntax, then every section and key.
fn config_page(out: &mut dyn Write) -> io::Result<()> {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "HEARTBEAT.CONF",
            "5",
            "",
            &format!("heartbeat {}", env!("CARGO_PKG_VERSION")),
            "heartbeat manual",
        ],
    );
    section(&mut roff, "NAME");
    roff.text([roman("heartbeat.conf - configuration of heartbeat(1)")]);
    section(&mut roff, "SYNOPSIS");
    roff.text([bold(DEFAULT_CONFIG)]);
    section(&mut roff, "DESCRIPTION");
    for text in SYNTAX {
        paragraph(&mut roff, text);
    }
    section(&mut roff, "[general]");
    keys(&mut roff, GENERAL);
    section(&mut roff, "[promotions] AND [demotions]");
    paragraph(
        &mut roff,
        "GROUP = shell command. Every group a check's action names must appear in both sections. \
         A command runs as /bin/sh -c COMMAND in its own process group, with stdin from \
         /dev/null and these variables added to its environment:",
    );
    for (name, meaning) in HOOK_ENVIRONMENT {
        item(&mut roff, name, meaning);
    }
    section(&mut roff, "[cluster]");
    paragraph(
        &mut roff,
        "Optional: makes the groups it lists exclusive across the nodes that share its etcd. \
         A node campaigns for such a group while the group is healthy on it; the elected node \
         runs the promotion, every other node the demotion with HEARTBEAT_STATE=standby.",
    );
    keys(&mut roff, CLUSTER);
    section(&mut roff, "CHECK SECTIONS");
    paragraph(
        &mut roff,
        "Every other section is a check, named after the section. [DEFAULT] gives a default for \
         every key of every check section.",
    );
    keys(&mut roff, CHECK);
    section(&mut roff, "EXAMPLE");
    roff.control("nf", []);
    roff.text([roman(EXAMPLE)]);
    roff.control("fi", []);
    section(&mut roff, "SEE ALSO");
    roff.text([bold("heartbeat"), roman("(1)")]);
    roff.to_writer(out)
}

/// The dialect, for heartbeat.conf(5).
const SYNTAX: [&str; 4] = [
    "The file is INI, read as Python 3's configparser reads it. Comments are whole lines \
     starting with # or ;, indented or not. There are no inline comments: ;, #, quotes and \
     backslashes inside a value are part of it, so a shell command reaches /bin/sh exactly as \
     written, and a backslash at the end of a line joins nothing.",
    "key = value and key: value both work; values are trimmed; a line indented deeper than its \
     key continues the value. Section names run to the last ] and keep their spaces. Keys are \
     case-insensitive, section names case-sensitive. %(name)s is \
     replaced by the value of name from the same section or from [DEFAULT], only in values that \
     contain %(; write %% there for a literal %.",
    "Booleans are 1, yes, true, on or 0, no, false, off, in any case. Durations are seconds when \
     plain (5, 0.5), or carry units (250ms, 5s, 1m30s, 2h); above zero and at most a day. \
     Relative paths are relative to the directory heartbeat was started in.",
    "Every error names the file, line, section and key and says what was expected; all of them \
     are printed at once, and heartbeat exits with status 78 before anything runs.",
];

const EXAMPLE: &str = "[general]
interval = 5
listen = 127.0.0.1:8081

[promotions]
web = /usr/local/bin/into-rotation.sh

[demotions]
web = /usr/local/bin/out-of-rotation.sh

[app]
url = http://127.0.0.1:8080/health
action = web
fall = 3
rise = 2";

/// A table of keys as tagged paragraphs: name (bold), meaning, default.
fn keys(roff: &mut Roff, keys: &[Key]) {
    for key in keys {
        roff.control("TP", []);
        roff.text([bold(key.name)]);
        roff.text([
            roman(format!("{} Default: ", key.meaning)),
            italic(key.default),
            roman("."),
        ]);
    }
}

fn section(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

fn paragraph(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.text([roman(text)]);
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration page documents exactly the keys the reader takes,
    /// in its order: a key added to the reader needs its line here.
    #[test]
    fn the_configuration_page_has_every_key_of_the_reader() {
        let names = |keys: &[Key]| keys.iter().map(|k| k.name).collect::<Vec<_>>();
        assert_eq!(names(GENERAL), crate::config::GENERAL_KEYS);
        assert_eq!(names(CHECK), crate::config::CHECK_KEYS);
        assert_eq!(names(CLUSTER), crate::config::CLUSTER_KEYS);
    }

    #[test]
    fn the_example_is_a_valid_configuration() {
        let loaded = crate::config::parse(
            EXAMPLE,
            std::path::Path::new("example.conf"),
            std::path::Path::new("/"),
        );
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }
}
