//! Where the control socket is: the same answer for the daemon that creates
//! it and for the subcommands that find it from `-c FILE`.
//!
//! - `control_socket = PATH`: there;
//! - `control_socket = none`: nowhere;
//! - not set, with a `pidfile`: next to it, its extension replaced by
//!   `.sock` (`/run/heartbeat.pid` → `/run/heartbeat.sock`);
//! - not set, without a pidfile: `/run/heartbeat/NAME.sock`, NAME being the
//!   configuration file's name without its extension
//!   (`/etc/heartbeat/heartbeat.conf` → `/run/heartbeat/heartbeat.sock`),
//!   where the shipped systemd unit (`RuntimeDirectory=heartbeat`) runs it.
//!   The daemon uses this default only when systemd gave it that runtime
//!   directory (`$RUNTIME_DIRECTORY` names `/run/heartbeat`); elsewhere it
//!   runs without a control socket and says so;
//! - checks from the command line (no file): nowhere.

use std::path::{Path, PathBuf};

use crate::model::{Config, ControlSocket};

/// The runtime directory of the shipped systemd unit.
pub const RUN_DIR: &str = "/run/heartbeat";

/// Who asks where the socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The daemon, which creates it.
    Daemon,
    /// A subcommand, which connects to it.
    Client,
}

/// Where the control socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Nowhere: why, for a message.
    Off(String),
    /// At `path`; `explicit` when `control_socket` names it (a failure to
    /// create it is then fatal; at a default place it is a warning).
    At {
        /// The socket's path.
        path: PathBuf,
        /// `control_socket` gave it.
        explicit: bool,
    },
}

/// Where the control socket of `config` is, for `side` (see the module
/// documentation).
pub fn placement(config: &Config, side: Side) -> Placement {
    placement_in(
        config,
        side,
        std::env::var_os("RUNTIME_DIRECTORY").as_deref(),
    )
}

/// [`placement`] with systemd's `$RUNTIME_DIRECTORY` given (a
/// colon-separated list of directories, or `None`).
pub fn placement_in(
    config: &Config,
    side: Side,
    runtime_directory: Option<&std::ffi::OsStr>,
) -> Placement {
    match &config.general.control_socket {
        ControlSocket::Path(path) => Placement::At {
            path: path.clone(),
            explicit: true,
        },
        ControlSocket::Off => Placement::Off("control_socket = none".to_owned()),
        ControlSocket::Default => {
            if let Some(pidfile) = &config.general.pidfile {
                return Placement::At {
                    path: next_to_pidfile(pidfile),
                    explicit: false,
                };
            }
            let Some(file) = &config.path else {
                return Placement::Off("the checks come from the command line".to_owned());
            };
            let under_unit = runtime_directory.is_some_and(|dirs| {
                dirs.to_string_lossy()
                    .split(':')
                    .any(|d| Path::new(d) == Path::new(RUN_DIR))
            });
            if side == Side::Daemon && !under_unit {
                return Placement::Off(format!(
                    "no control_socket and no pidfile, and not under a systemd unit with RuntimeDirectory=heartbeat (set control_socket = PATH in {})",
                    file.display()
                ));
            }
            let stem = file
                .file_stem()
                .map_or_else(|| "heartbeat".into(), |s| s.to_os_string());
            let mut name = stem;
            name.push(".sock");
            Placement::At {
                path: Path::new(RUN_DIR).join(name),
                explicit: false,
            }
        }
    }
}

/// The default socket beside `pidfile`: its extension replaced by
/// `.sock` (`heartbeat.pid` → `heartbeat.sock`).
pub fn next_to_pidfile(pidfile: &Path) -> PathBuf {
    pidfile.with_extension("sock")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::General;

    fn config(socket: ControlSocket, pidfile: Option<&str>, file: Option<&str>) -> Config {
        Config {
            path: file.map(PathBuf::from),
            general: General {
                control_socket: socket,
                pidfile: pidfile.map(PathBuf::from),
                ..General::default()
            },
            groups: Vec::new(),
            checks: Vec::new(),
            cluster: None,
        }
    }

    fn at(path: &str, explicit: bool) -> Placement {
        Placement::At {
            path: path.into(),
            explicit,
        }
    }

    #[test]
    fn the_socket_is_where_the_module_documentation_says() {
        let file = Some("/etc/heartbeat/heartbeat.conf");
        let unit = Some(std::ffi::OsStr::new("/run/heartbeat"));
        let explicit = config(ControlSocket::Path("/srv/hb.sock".into()), None, file);
        assert_eq!(
            placement_in(&explicit, Side::Daemon, None),
            at("/srv/hb.sock", true)
        );
        let pid = config(ControlSocket::Default, Some("/run/hb/edge.pid"), file);
        for side in [Side::Daemon, Side::Client] {
            assert_eq!(
                placement_in(&pid, side, None),
                at("/run/hb/edge.sock", false)
            );
        }
        let service = config(ControlSocket::Default, None, file);
        assert_eq!(
            placement_in(&service, Side::Daemon, unit),
            at("/run/heartbeat/heartbeat.sock", false)
        );
        assert_eq!(
            placement_in(&service, Side::Client, None),
            at("/run/heartbeat/heartbeat.sock", false)
        );
        assert!(matches!(
            placement_in(&service, Side::Daemon, Some("/run/other".as_ref())),
            Placement::Off(_)
        ));
        let off = config(ControlSocket::Off, Some("/run/hb.pid"), file);
        assert!(matches!(
            placement_in(&off, Side::Client, unit),
            Placement::Off(_)
        ));
        let sidecar = config(ControlSocket::Default, None, None);
        assert!(matches!(
            placement_in(&sidecar, Side::Daemon, unit),
            Placement::Off(_)
        ));
    }
}
