//! Every way the program can fail, each carrying its exit status from where
//! it arose.
//!
//! [`Error`] gathers the typed errors of the layers below (configuration,
//! log, pidfile, detaching, privileges, signals, status server, status
//! client) without rewording them; [`Error::exit`] asks each for its own
//! status, so nothing here re-derives one from a message. `main` prints
//! the whole chain once ([`crate::exit::Chain`]) and exits with it.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::control::ControlError;
use crate::daemon::detach::DetachError;
use crate::daemon::pidfile::PidfileError;
use crate::daemon::privileges::PrivilegeError;
use crate::daemon::signals::SignalError;
use crate::engine::EngineError;
use crate::exit::Exit;
use crate::http::client::FetchError;
use crate::http::server::ServerError;
use crate::logging::LogError;

/// Why heartbeat stops with a status other than 0.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command line that clap could not see (a flag's value, or
    /// flags that only contradict each other once read): exit status 2.
    #[error("{0}")]
    Usage(String),
    /// The configuration file is invalid or unreadable: 78.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither `-c FILE` nor `--check`/`--script`, and the default file
    /// does not exist: 78.
    #[error("no configuration: {} does not exist; {hint} (see --help)", path.display())]
    NoConfig {
        /// The default file.
        path: PathBuf,
        /// What to give instead.
        hint: &'static str,
    },
    /// The log cannot be opened: 73.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The pidfile: 75 when another instance holds it, else 73.
    #[error(transparent)]
    Pidfile(#[from] PidfileError),
    /// Detaching failed: 71.
    #[error(transparent)]
    Detach(#[from] DetachError),
    /// Dropping privileges failed: 77 without root, else 71.
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    /// Signal handling cannot be set up: 71.
    #[error(transparent)]
    Signals(#[from] SignalError),
    /// The engine cannot be built: 78 when a check cannot be prepared,
    /// 71 when its threads cannot start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Something inside heartbeat failed (the engine loop panicked, an
    /// action thread or the status server died): 70.
    #[error("internal error: {0}")]
    Internal(String),
    /// The status server cannot start: 71.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// `status`: the running instance cannot be asked: 69 or 76.
    #[error(transparent)]
    Status(#[from] FetchError),
    /// The control socket cannot be created (73, 75), or `pause`,
    /// `resume`, `maintenance` cannot be carried out (65, 69, 76, 77).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Running as root, a configuration file, hook or check executable
    /// that another user could write (see [`crate::daemon::trust`]): 78.
    #[error("{0}")]
    Untrusted(String),
    /// `exit_on_failure` tripped: 1. The reason is the failed check's.
    #[error("unhealthy, exiting (exit_on_failure): {0}")]
    Unhealthy(String),
    /// A failure already told to the operator (by a detached daemon's
    /// launcher): only its status is left to give.
    #[error("exit status {}", *.0 as u8)]
    Reported(Exit),
}

impl Error {
    /// The exit status for this error, from the error itself.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Config(e) => e.exit(),
            Error::NoConfig { .. } => Exit::Config,
            Error::Log(e) => e.exit(),
            Error::Pidfile(e) => e.exit(),
            Error::Detach(e) => e.exit(),
            Error::Privileges(e) => e.exit(),
            Error::Signals(e) => e.exit(),
            Error::Engine(e) => e.exit(),
            Error::Internal(_) => Exit::Software,
            Error::Server(e) => e.exit(),
            Error::Status(e) => e.exit(),
            Error::Control(e) => e.exit(),
            Error::Untrusted(_) => Exit::Config,
            Error::Unhealthy(_) => Exit::Unhealthy,
            Error::Reported(exit) => *exit,
        }
    }

    /// Whether the message still has to be printed (it has not been,
    /// by a launcher).
    pub fn needs_telling(&self) -> bool {
        !matches!(self, Error::Reported(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_keeps_the_status_of_where_it_arose() {
        let config = ConfigError {
            file: "x.conf".into(),
            errors: Vec::new(),
        };
        assert_eq!(Error::from(config).exit() as u8, 78);
        assert_eq!(Error::Usage("bad".into()).exit() as u8, 2);
        let busy = ServerError::Bind {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::other("in use"),
        };
        assert_eq!(Error::from(busy).exit() as u8, 71);
        let not_root = PrivilegeError::NotRoot {
            setting: "user = nobody".into(),
            euid: 1000,
        };
        assert_eq!(Error::from(not_root).exit() as u8, 77);
        assert_eq!(Error::Unhealthy("db: refused".into()).exit() as u8, 1);
        assert_eq!(Error::Reported(Exit::TempFail).exit() as u8, 75);
    }
}
