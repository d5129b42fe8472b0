//! The command line, as typed. `--help` is generated from these doc
//! comments; the conflict rules that clap enforces (exit status 2) are
//! written next to each flag. [`crate::app::mode`] turns what was typed
//! into one [`Mode`](crate::app::mode::Mode) of operation.

use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};

use crate::app::generate::Generate;

/// The configuration file read when neither `-c FILE` nor `--check` /
/// `--script` is given.
pub const DEFAULT_CONFIG: &str = "/etc/heartbeat/heartbeat.conf";

/// Health checks that promote and demote action groups.
///
/// Runs TCP, HTTP, HTTPS, gRPC health and script checks every interval and
/// runs an action group's promotion command when it turns healthy, its
/// demotion command when it turns unhealthy.
///
/// Without -c FILE and without --check/--script, heartbeat reads
/// /etc/heartbeat/heartbeat.conf.
#[derive(Debug, Parser)]
#[command(
    name = "heartbeat",
    version,
    about,
    disable_version_flag = true,
    disable_help_subcommand = true,
    group = ArgGroup::new("inline_checks").args(["checks", "scripts"]).multiple(true),
    group = ArgGroup::new("version_flags").args(["version", "version_long"])
)]
pub struct Cli {
    /// Configuration file (INI) [default: /etc/heartbeat/heartbeat.conf].
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Run one round, apply its actions, and exit: 0 if every group is
    /// healthy, 1 if not.
    #[arg(long, conflicts_with_all = ["daemonize", "listen", "exit_on_failure"])]
    pub once: bool,

    /// Validate the configuration and the files it names, print every
    /// setting, group, command and check, and exit (0 when valid, 78 when
    /// not).
    #[arg(
        short = 't',
        long = "check-config",
        conflicts_with_all = ["once", "daemonize", "dry_run"]
    )]
    pub check_config: bool,

    /// With -t: print nothing when the configuration is valid, as `nginx
    /// -t -q` does (errors and warnings still go to stderr, the exit
    /// status is the same). For ExecReload= and scripts: the report holds
    /// every hook command, which may carry credentials.
    #[arg(
        short = 'q',
        long,
        requires = "check_config",
        conflicts_with = "settings"
    )]
    pub quiet: bool,

    /// With -t: print only the line of this `[general]` key, in the form of
    /// the full report (`pidfile = /run/heartbeat/heartbeat.pid`, or `#
    /// pidfile = (none)` when it is not set). Repeatable; lines come in the
    /// report's order.
    #[arg(long = "setting", value_name = "KEY", requires = "check_config")]
    pub settings: Vec<String>,

    /// Log promotions and demotions instead of running them.
    #[arg(long)]
    pub dry_run: bool,

    /// Detach from the terminal and run in the background.
    #[arg(short = 'd', long)]
    pub daemonize: bool,

    /// Serve status, readiness and metrics on this address (e.g.
    /// 127.0.0.1:8080). Overrides `listen` in the file.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Exit with status 1 once any check is unhealthy.
    #[arg(long)]
    pub exit_on_failure: bool,

    /// Checks given on the command line instead of a configuration file.
    #[command(flatten)]
    pub inline: InlineChecks,

    /// Print the version.
    #[arg(short = 'V', action = ArgAction::SetTrue, help_heading = "Information")]
    pub version: bool,

    /// Print the version, the commit it was built from, and the TLS
    /// library and its version.
    #[arg(long = "version", id = "version_long", help_heading = "Information")]
    pub version_long: bool,

    /// With -V: print the commit and the TLS library too, as --version does.
    #[arg(long, requires = "version_flags", help_heading = "Information")]
    pub verbose: bool,

    /// Print a manual page (man: heartbeat(1), man-conf: heartbeat.conf(5))
    /// or a shell's completion script, and exit.
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        exclusive = true,
        help_heading = "Information"
    )]
    pub generate: Option<Generate>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Checks given on the command line (no configuration file). Each flag but
/// `--check` and `--script` needs one of those, and none goes with
/// `-c FILE`.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Sidecar mode: checks on the command line, no file")]
pub struct InlineChecks {
    /// A check URL: tcp://HOST:PORT, http://HOST/PATH, https://HOST/PATH,
    /// or grpc://HOST:PORT/SERVICE and grpcs://HOST:PORT/SERVICE for a gRPC
    /// health check (SERVICE optional: the whole server; HTTP ports
    /// optional, IPv6 addresses in brackets). Repeatable.
    #[arg(long = "check", value_name = "URL", conflicts_with = "config")]
    pub checks: Vec<String>,

    /// A shell command; healthy iff it exits 0. Repeatable.
    #[arg(long = "script", value_name = "CMD", conflicts_with = "config")]
    pub scripts: Vec<String>,

    /// Time between rounds (e.g. 10, 10s, 500ms) [default: 10s].
    #[arg(long, value_name = "DURATION", requires = "inline_checks")]
    pub interval: Option<String>,

    /// Deadline of each check [default: 5s].
    #[arg(long, value_name = "DURATION", requires = "inline_checks")]
    pub timeout: Option<String>,

    /// Consecutive failures before a check counts as unhealthy [default: 1].
    #[arg(long, value_name = "N", requires = "inline_checks")]
    pub retries: Option<u32>,

    /// With --listen: run a round per request to the status server
    /// (concurrent requests share one) instead of answering from the latest
    /// scheduled round.
    #[arg(long, requires = "inline_checks", requires = "listen")]
    pub on_demand: bool,

    /// With --listen: the HTTP status of `GET /` when unhealthy, e.g. 504
    /// [default: 503].
    #[arg(
        long,
        value_name = "CODE",
        requires = "inline_checks",
        requires = "listen"
    )]
    pub fail_status: Option<u16>,

    /// PEM file of CA certificates that https and grpcs checks trust in
    /// addition to the system's (an internal CA).
    #[arg(
        long,
        value_name = "FILE",
        requires = "inline_checks",
        conflicts_with = "insecure"
    )]
    pub ca_file: Option<PathBuf>,

    /// DANGEROUS: https and grpcs checks accept any certificate for any name, so
    /// whoever sits between heartbeat and the target can answer for it and
    /// keep a dead service "healthy". For a test set-up only: trust an
    /// internal CA with --ca-file instead.
    #[arg(long, requires = "inline_checks")]
    pub insecure: bool,

    /// Where the log goes: a file (appended, reopened on SIGUSR1), stderr,
    /// or syslog [default: stderr].
    #[arg(long, value_name = "FILE|stderr|syslog", requires = "inline_checks")]
    pub logfile: Option<String>,

    /// The most verbose level logged: DEBUG, INFO, WARNING, ERROR or
    /// CRITICAL (any case) [default: INFO].
    #[arg(long, value_name = "LEVEL", requires = "inline_checks")]
    pub loglevel: Option<String>,

    /// The form of log lines: text, or json (one JSON object a line with
    /// `time`, `level` and `message`, as `logformat = json` in a file);
    /// not for syslog [default: text].
    #[arg(long, value_name = "text|json", requires = "inline_checks")]
    pub logformat: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask a running heartbeat for its status and print it; exit 0 when
    /// every group is healthy.
    ///
    /// The address is that of its status server (its `listen`); without
    /// one, it is read from the configuration file (-c FILE, by default
    /// /etc/heartbeat/heartbeat.conf).
    Status(StatusArgs),

    /// Pause action groups of the running heartbeat: their checks go on
    /// and report, but no promotion or demotion runs until `resume`.
    ///
    /// Talks to its control socket, found from the configuration file (-c
    /// FILE, by default /etc/heartbeat/heartbeat.conf). Prints what was done
    /// to each group.
    Pause(GroupArgs),

    /// End a pause or a maintenance: each group's current state is applied
    /// once, if the outside world was not told it (or that failed).
    ///
    /// Waits for the actions it starts and prints how they went; exits 3
    /// when one failed.
    Resume(GroupArgs),

    /// Put action groups in maintenance: run the demotion now (unless
    /// already demoted) and hold it; `GET /` and `/ready` fail with
    /// `GROUP: maintenance` so that load balancers drain the node, until
    /// `resume`.
    ///
    /// Waits for the demotion and prints how it went; exits 3 when it
    /// failed (it is retried while in maintenance).
    Maintenance(GroupArgs),
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status(_) => "status",
            Command::Pause(_) => "pause",
            Command::Resume(_) => "resume",
            Command::Maintenance(_) => "maintenance",
        }
    }
}

/// The groups of `pause`, `resume` and `maintenance`.
#[derive(Debug, Args, Default)]
pub struct GroupArgs {
    /// Action groups, as named in `[promotions]` and `[demotions]`.
    #[arg(value_name = "GROUP", required = true)]
    pub groups: Vec<String>,
}

/// The arguments of `heartbeat status`.
#[derive(Debug, Args, Default)]
pub struct StatusArgs {
    /// Address of its status server [default: `listen` of the
    /// configuration file].
    #[arg(value_name = "ADDR:PORT", conflicts_with = "config")]
    pub address: Option<String>,

    /// How long the whole request may take (e.g. 5, 500ms) [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Print the status document (JSON, as `GET /status` serves it)
    /// instead of the tables; the exit status is the same.
    #[arg(long)]
    pub json: bool,
}
