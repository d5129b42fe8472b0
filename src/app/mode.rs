//! The command line converted once into what to do: a [`Mode`], in which
//! contradicting flags cannot be written down.
//!
//! clap refuses what it can see from the flags alone (`-t --once`,
//! `--once -d`, `-c FILE --check URL`, … exit status 2); [`Cli::into_mode`]
//! then reads the values (addresses, durations, the inline checks) and
//! refuses the rest with [`Error::Usage`]. The configuration file itself is
//! read later, by the mode that needs it.
//!
//! Where the checks come from ([`Source`]: a file, or `--check`/`--script`
//! for a sidecar) is independent of how heartbeat runs them, so a sidecar
//! can be validated (`-t`), run once, or run as a daemon like a file.
//! The subcommands that ask a running instance (`status`, and `pause`,
//! `resume`, `maintenance` through its control socket) take `-c FILE` and
//! nothing of a run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::cli::{Cli, Command, DEFAULT_CONFIG, StatusArgs};
use crate::app::error::Error;
use crate::app::generate::Generate;
use crate::app::sidecar;
use crate::config;
use crate::control::protocol;
use crate::http::client;
use crate::model::Config;

/// What heartbeat was asked to do.
#[derive(Debug)]
pub enum Mode {
    /// `-V` / `--version`: the version; with `verbose` (`--version`, or
    /// `-V --verbose`) also the commit and the TLS library.
    Version {
        /// Also the commit and the TLS library.
        verbose: bool,
    },
    /// `--generate WHAT`: a manual page or a completion script.
    Generate(Generate),
    /// `status`: ask a running instance and print its answer.
    Status(StatusQuery),
    /// `pause`, `resume`, `maintenance`: tell a running instance through
    /// its control socket.
    Control(ControlCommand),
    /// `-t`: validate the configuration, print every setting and check
    /// (or what [`Report`] says).
    CheckConfig(Source, Report),
    /// `--once`: one round, its actions, the overall health as exit status.
    Once(Run),
    /// The daemon in the foreground (the default). A file that says
    /// `daemonize = yes` detaches all the same.
    Foreground(Run),
    /// `-d`: the daemon, detached from the terminal.
    Daemon(Run),
}

/// What `-t` prints on stdout once the configuration is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every setting, group, command and check.
    Full,
    /// Nothing (`-q`).
    Quiet,
    /// The lines of these `[general]` keys (`--setting KEY`).
    Settings(Vec<String>),
}

/// Where the checks come from.
#[derive(Debug)]
pub enum Source {
    /// A configuration file: `-c FILE`, or [`DEFAULT_CONFIG`].
    File {
        /// The file, as given.
        path: PathBuf,
        /// Whether it is [`DEFAULT_CONFIG`], not named on the command line.
        default: bool,
    },
    /// `--check`/`--script`: the sidecar's configuration, already
    /// validated ([`sidecar::config_from_args`]).
    Sidecar(Box<Config>),
}

/// A run of the checks: where they come from and how their actions run.
#[derive(Debug)]
pub struct Run {
    /// The checks.
    pub source: Source,
    /// `--dry-run`: log promotions and demotions instead of running them.
    pub dry_run: bool,
    /// What the command line overrides in `[general]`.
    pub overrides: Overrides,
}

/// Settings of `[general]` that the command line overrides (`--listen`,
/// `--exit-on-failure`, `-d`), kept so that a reload applies them again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--exit-on-failure`.
    pub exit_on_failure: bool,
    /// `-d`.
    pub daemonize: bool,
}

impl Overrides {
    /// Applies the overrides to a configuration read from a file.
    pub fn apply(self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.general.listen = Some(listen);
        }
        config.general.exit_on_failure |= self.exit_on_failure;
        config.general.daemonize |= self.daemonize;
    }
}

/// `heartbeat status`: whom to ask, and for how long.
#[derive(Debug)]
pub struct StatusQuery {
    /// The status server's address, or the file whose `listen` names it.
    pub target: Target,
    /// The deadline of the whole request.
    pub timeout: Duration,
    /// `--json`: the document instead of the tables.
    pub json: bool,
}

/// `heartbeat -c FILE pause|resume|maintenance GROUP…`.
#[derive(Debug)]
pub struct ControlCommand {
    /// What to ask.
    pub command: protocol::Command,
    /// The groups, at least one.
    pub groups: Vec<String>,
    /// The configuration file that says where the control socket is.
    pub config: PathBuf,
}

/// Whom `heartbeat status` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The address given: every address its name resolved to, or one.
    Address(Vec<SocketAddr>),
    /// The `listen` address of this configuration file.
    File(PathBuf),
}

impl Cli {
    /// Converts the command line into one [`Mode`].
    ///
    /// # Errors
    /// [`Error::Usage`] for a value clap cannot judge (`--listen` that is
    /// not an address, a bad `--check` URL or duration), naming the flag,
    /// the value and what was expected.
    pub fn into_mode(self) -> Result<Mode, Error> {
        if let Some(what) = self.generate {
            return Ok(Mode::Generate(what));
        }
        if self.version || self.version_long {
            return Ok(Mode::Version {
                verbose: self.version_long || self.verbose,
            });
        }
        let run_flag = self.run_flag();
        if let Some(command) = self.command {
            if let Some(flag) = run_flag {
                return Err(Error::Usage(format!(
                    "the subcommand '{}' cannot be used with '{flag}'",
                    command.name()
                )));
            }
            let (command, args) = match command {
                Command::Status(args) => return status_query(self.config, args).map(Mode::Status),
                Command::Pause(args) => (protocol::Command::Pause, args),
                Command::Resume(args) => (protocol::Command::Resume, args),
                Command::Maintenance(args) => (protocol::Command::Maintenance, args),
            };
            return control_command(self.config, command, args.groups).map(Mode::Control);
        }
        let listen = self
            .listen
            .as_deref()
            .map(|text| listen_flag("--listen <ADDR:PORT>", text))
            .transpose()?;
        let overrides = Overrides {
            listen,
            exit_on_failure: self.exit_on_failure,
            daemonize: self.daemonize,
        };
        let inline = !self.inline.checks.is_empty() || !self.inline.scripts.is_empty();
        let source = match self.config {
            // clap refuses -c FILE together with --check/--script.
            Some(path) => Source::File {
                path,
                default: false,
            },
            None if inline => Source::Sidecar(Box::new(sidecar::config_from_args(
                &self.inline,
                listen,
                self.exit_on_failure,
            )?)),
            None => Source::File {
                path: PathBuf::from(DEFAULT_CONFIG),
                default: true,
            },
        };
        if self.check_config {
            let report = if self.quiet {
                Report::Quiet
            } else if self.settings.is_empty() {
                Report::Full
            } else {
                Report::Settings(self.settings.clone())
            };
            return Ok(Mode::CheckConfig(source, report));
        }
        let run = Run {
            source,
            dry_run: self.dry_run,
            overrides,
        };
        Ok(if self.once {
            Mode::Once(run)
        } else if self.daemonize {
            Mode::Daemon(run)
        } else {
            Mode::Foreground(run)
        })
    }
}

impl Cli {
    /// The first flag given that only a run of the checks takes: `-c FILE`
    /// is the only one that goes with a subcommand. (clap's
    /// `args_conflicts_with_subcommands` would refuse `-c FILE status`.)
    fn run_flag(&self) -> Option<&'static str> {
        let i = &self.inline;
        [
            (self.once, "--once"),
            (self.check_config, "--check-config"),
            (self.quiet, "--quiet"),
            (!self.settings.is_empty(), "--setting"),
            (self.dry_run, "--dry-run"),
            (self.daemonize, "--daemonize"),
            (self.listen.is_some(), "--listen"),
            (self.exit_on_failure, "--exit-on-failure"),
            (!i.checks.is_empty(), "--check"),
            (!i.scripts.is_empty(), "--script"),
            (i.interval.is_some(), "--interval"),
            (i.timeout.is_some(), "--timeout"),
            (i.retries.is_some(), "--retries"),
            (i.on_demand, "--on-demand"),
            (i.fail_status.is_some(), "--fail-status"),
            (i.ca_file.is_some(), "--ca-file"),
            (i.insecure, "--insecure"),
            (i.logfile.is_some(), "--logfile"),
            (i.loglevel.is_some(), "--loglevel"),
            (i.logformat.is_some(), "--logformat"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// The query of `heartbeat status [ADDR:PORT] [-c FILE] [--timeout D]`.
fn status_query(config: Option<PathBuf>, args: StatusArgs) -> Result<StatusQuery, Error> {
    let timeout = match &args.timeout {
        Some(text) => config::value::duration(text.trim())
            .map_err(|why| invalid("--timeout <DURATION>", text, &why))?,
        None => client::DEFAULT_TIMEOUT,
    };
    // clap refuses `status ADDR -c FILE`, not `-c FILE status ADDR`.
    let target = match (args.address, config) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give the status server's address or -c FILE, not both".to_owned(),
            ));
        }
        (Some(text), None) => Target::Address(
            config::listen_addresses(text.trim())
                .map_err(|why| invalid("<ADDR:PORT>", &text, &why))?,
        ),
        (None, Some(path)) => Target::File(path),
        (None, None) => Target::File(PathBuf::from(DEFAULT_CONFIG)),
    };
    if target == Target::File(PathBuf::from(DEFAULT_CONFIG)) && !Path::new(DEFAULT_CONFIG).exists()
    {
        return Err(Error::NoConfig {
            path: DEFAULT_CONFIG.into(),
            hint: "give ADDR:PORT or -c FILE",
        });
    }
    Ok(StatusQuery {
        target,
        timeout,
        json: args.json,
    })
}

/// The command of `heartbeat [-c FILE] pause|resume|maintenance GROUP…`.
fn control_command(
    config: Option<PathBuf>,
    command: protocol::Command,
    groups: Vec<String>,
) -> Result<ControlCommand, Error> {
    let config = match config {
        Some(path) => path,
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => {
            return Err(Error::NoConfig {
                path: DEFAULT_CONFIG.into(),
                hint: "give -c FILE, the configuration of the running heartbeat",
            });
        }
    };
    Ok(ControlCommand {
        command,
        groups,
        config,
    })
}

/// An address in any form `listen` takes in the file.
fn listen_flag(flag: &str, text: &str) -> Result<SocketAddr, Error> {
    config::listen_address(text.trim()).map_err(|why| invalid(flag, text, &why))
}

/// clap's wording for a bad flag value.
pub(crate) fn invalid(flag: &str, value: &str, why: &str) -> Error {
    Error::Usage(format!("invalid value '{value}' for '{flag}': {why}"))
}
