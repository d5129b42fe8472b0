//! What the program does once the command line is parsed: pick the mode,
//! load the configuration, start up in the right order, run, and say how it
//! ended.
//!
//! Modes: `status` (ask a running instance), `--check-config`, `--once`,
//! and the long-running daemon, in the foreground or detached (`-d`).
//!
//! Start-up order matters and is kept in one place, `start`: logging and
//! the pidfile are opened while still privileged and before any thread
//! exists; then the process detaches (when asked); then privileges are
//! dropped; only then do threads start (checks, signals, status server).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::config;
use crate::daemon::detach::{self, Detached};
use crate::daemon::pidfile::Pidfile;
use crate::daemon::signals::{self, SignalHandlers};
use crate::daemon::{notify, privileges};
use crate::engine::{Engine, Lifecycle, Options, Stopped};
use crate::exit::{Exit, Fatal};
use crate::http::client;
use crate::http::server::{self, ServerOptions};
use crate::logging;
use crate::model::Health;
use crate::model::{Config, LogTarget, short_duration};
use cli::{Cli, Command};

pub mod cli;
pub mod sidecar;
pub mod summary;

/// How long a status-server request waits for an on-demand round beyond
/// the longest check timeout.
const PROBE_SLACK: Duration = Duration::from_secs(2);

/// Runs heartbeat as `cli` asks; returns the exit status of a normal end.
///
/// # Errors
/// A [`Fatal`] with the message for stderr (empty when it was already
/// reported) and the exit status.
pub fn run(cli: Cli) -> Result<Exit, Fatal> {
    if let Some(Command::Status { address }) = &cli.command {
        return status(&cli, *address);
    }
    let (config, warnings) = configure(&cli)?;
    if cli.check_config {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        print!("{}", summary::summary(&config));
        return Ok(Exit::Ok);
    }
    let options = Options {
        dry_run: cli.dry_run,
        // Decided once started: detaching changes the pid.
        reap_orphans: false,
    };
    if cli.once {
        once(config, &warnings, options)
    } else {
        serve(config, &warnings, options, Overrides::from_cli(&cli))
    }
}

/// The configuration from `-c FILE` or from `--check`/`--script`, with the
/// command line's overrides applied, and the warnings found on the way.
fn configure(cli: &Cli) -> Result<(Config, Vec<String>), Fatal> {
    let inline = !cli.inline.checks.is_empty() || !cli.inline.scripts.is_empty();
    let (mut config, warnings) = match (&cli.config, inline) {
        (Some(_), true) => {
            return Err(Fatal::new(
                Exit::Usage,
                "give either -c FILE or --check/--script, not both",
            ));
        }
        (Some(path), false) => {
            let loaded = config::load(path).map_err(|e| Fatal::new(Exit::Config, e.to_string()))?;
            (loaded.config, loaded.warnings)
        }
        (None, true) => {
            let config = sidecar::config_from_args(&cli.inline, cli.listen, cli.exit_on_failure)
                .map_err(|e| Fatal::new(Exit::Usage, e))?;
            (config, Vec::new())
        }
        (None, false) => {
            return Err(Fatal::new(
                Exit::Usage,
                "no checks: give -c FILE, or --check URL / --script CMD (see --help)",
            ));
        }
    };
    Overrides::from_cli(cli).apply(&mut config);
    Ok((config, warnings))
}

/// Settings of `[general]` that the command line overrides (`--listen`,
/// `--exit-on-failure`, `-d`), kept so that a reload applies them again.
#[derive(Debug, Clone, Copy)]
struct Overrides {
    listen: Option<SocketAddr>,
    exit_on_failure: bool,
    daemonize: bool,
}

impl Overrides {
    fn from_cli(cli: &Cli) -> Overrides {
        Overrides {
            listen: cli.listen,
            exit_on_failure: cli.exit_on_failure,
            daemonize: cli.daemonize,
        }
    }

    fn apply(self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.general.listen = Some(listen);
        }
        config.general.exit_on_failure |= self.exit_on_failure;
        config.general.daemonize |= self.daemonize;
    }
}

/// What [`start`] leaves running for the caller to close.
struct Started {
    pidfile: Option<Pidfile>,
    detached: Option<Detached>,
    /// The log goes to standard error, which the launcher shares until the
    /// daemon is ready.
    logs_to_stderr: bool,
}

impl Started {
    /// Reports a start-up failure to the launching command when detached
    /// (it prints the message and exits with the code), and returns the
    /// error for this process to exit with.
    fn fail(&mut self, fatal: Fatal) -> Fatal {
        match self.detached.take() {
            Some(detached) => {
                // With the log on stderr, the launcher's message is enough.
                if !self.logs_to_stderr {
                    error!("{}", fatal.message);
                }
                detached.fail(fatal.exit as i32, &format!("heartbeat: {}", fatal.message));
                Fatal::new(fatal.exit, "")
            }
            None => fatal,
        }
    }

    /// Removes the pidfile on a clean exit.
    fn finish(self) {
        if let Some(pidfile) = self.pidfile {
            if let Err(e) = pidfile.release() {
                warn!("{e}");
            }
        }
    }
}

/// Opens the log and the pidfile, detaches when `detach`, and drops
/// privileges: everything that must happen before any thread exists.
fn start(config: &Config, warnings: &[String], detach: bool) -> Result<Started, Fatal> {
    let general = &config.general;
    detach::reset_ignored_sigchld();
    logging::init(&general.log, general.log_level).map_err(|e| Fatal::new(Exit::CantCreat, e))?;
    for w in warnings {
        warn!("{w}");
    }
    if detach && general.log == LogTarget::Stderr {
        warn!(
            "detached with logfile = stderr: the log goes to /dev/null; set logfile to a path or to syslog"
        );
    }
    raise_file_limit();
    let identity = privileges::resolve(general.user.as_ref(), general.group.as_ref())
        .map_err(|e| Fatal::new(Exit::NoPerm, e))?;
    let pidfile = match &general.pidfile {
        Some(path) => {
            Some(Pidfile::acquire(path).map_err(|e| Fatal::new(e.exit(), e.to_string()))?)
        }
        None => None,
    };
    let detached = if detach {
        Some(detach::detach().map_err(|e| Fatal::new(Exit::OsErr, e))?)
    } else {
        None
    };
    let mut started = Started {
        pidfile,
        detached,
        logs_to_stderr: general.log == LogTarget::Stderr,
    };
    if let Some(pidfile) = started.pidfile.as_mut() {
        if let Err(e) = pidfile.write_pid() {
            let fatal = Fatal::new(e.exit(), e.to_string());
            return Err(started.fail(fatal));
        }
    }
    if let Some(identity) = &identity {
        if let Some(pidfile) = &started.pidfile {
            if let Err(e) = pidfile.chown(identity.uid, identity.gid) {
                warn!("{e}; it may stay behind on exit");
            }
        }
        // apply() logs the identity it switched to.
        if let Err(e) = identity.apply() {
            return Err(started.fail(Fatal::new(Exit::OsErr, e)));
        }
    }
    Ok(started)
}

/// Raises the soft limit on open files to the hard limit (at most 65536):
/// every check, hook pipe and status-server connection is a descriptor,
/// and init systems often start daemons with a soft limit of 1024. A
/// failure only costs headroom, so it is logged, not fatal.
fn raise_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const WANTED: u64 = 65536;
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard.min(WANTED) => {
            let target = hard.min(WANTED);
            match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
                Ok(()) => debug!("open file limit raised from {soft} to {target}"),
                Err(e) => warn!("cannot raise the open file limit from {soft}: {e}"),
            }
        }
        Ok(_) => {}
        Err(e) => warn!("cannot read the open file limit: {e}"),
    }
}

/// `options` with [`Options::reap_orphans`] set when this process is PID 1
/// of its PID namespace (a container's main process): the kernel then
/// re-parents every orphan in the namespace to it, and only it can reap
/// them (pid_namespaces(7)). Otherwise orphans go to an init that reaps
/// them, and nothing changes.
fn reaping_if_init(options: Options) -> Options {
    let init = std::process::id() == 1;
    if init {
        debug!("running as PID 1: orphaned processes are reaped after every round and action");
    }
    Options {
        reap_orphans: init,
        ..options
    }
}

/// `--once`: one round, its actions, and the overall health as exit status.
fn once(config: Config, warnings: &[String], options: Options) -> Result<Exit, Fatal> {
    let mut started = start(&config, warnings, false)?;
    let options = reaping_if_init(options);
    let engine = match Engine::new(config, options) {
        Ok(engine) => engine,
        Err(e) => return Err(started.fail(Fatal::new(Exit::Config, e))),
    };
    let health = engine.run_once();
    info!("one round done: {health}");
    started.finish();
    Ok(if health == Health::Healthy {
        Exit::Ok
    } else {
        Exit::Unhealthy
    })
}

/// The daemon, in the foreground or detached: rounds until a signal stops
/// it (or `exit_on_failure` trips).
fn serve(
    config: Config,
    warnings: &[String],
    options: Options,
    overrides: Overrides,
) -> Result<Exit, Fatal> {
    // Detaching changes to `/`: a reload resolves relative paths against
    // the directory heartbeat was launched in, as the first load did.
    // (Without one, loading the file at start-up failed already.)
    let launch_dir = std::env::current_dir().ok();
    let mut started = start(&config, warnings, config.general.daemonize)?;
    let options = reaping_if_init(options);
    let general = config.general.clone();
    let longest_check = config
        .checks
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or_default();
    // The longest a round may take: every check runs into its timeout (and
    // a script into its kill grace), `threads` of them at a time.
    let waves = config.checks.len().div_ceil(config.general.threads.max(1));
    let longest_round = (longest_check + crate::checks::script::KILL_GRACE)
        .saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX));
    let mut engine = match Engine::new(config, options) {
        Ok(engine) => engine,
        Err(e) => return Err(started.fail(Fatal::new(Exit::Config, e))),
    };
    engine.set_loader(Box::new(move |path| {
        let loaded = match &launch_dir {
            Some(dir) => config::load_relative_to(path, dir),
            None => config::load(path),
        };
        let mut loaded = loaded.map_err(|e| e.to_string())?;
        overrides.apply(&mut loaded.config);
        Ok(loaded)
    }));
    let handle = engine.handle();
    let (stop, reload) = (handle.clone(), handle.clone());
    let signals = signals::spawn(SignalHandlers {
        on_stop: Box::new(move || stop.stop()),
        on_reload: Box::new(move || reload.reload()),
        // reopen() logs its outcome, success or failure, itself.
        on_reopen: Box::new(|| {
            let _ = logging::reopen();
        }),
    });
    let signals = match signals {
        Ok(signals) => signals,
        Err(e) => return Err(started.fail(Fatal::new(Exit::OsErr, e))),
    };
    let server = match general.listen {
        None => None,
        Some(addr) => {
            let options = ServerOptions {
                fail_status: general.fail_status,
                interval: general.interval,
                on_demand: general.on_demand,
                stall_margin: longest_round + Duration::from_secs(5),
                ..ServerOptions::default()
            };
            let probe_timeout = longest_check + PROBE_SLACK;
            let prober = handle.clone();
            let probe: server::ProbeFn = Arc::new(move || {
                prober.probe(probe_timeout);
            });
            match server::spawn(
                addr,
                options,
                engine.status(),
                engine.metrics(),
                Some(probe),
            ) {
                Ok(server) => {
                    info!("status server listening on http://{}", server.local_addr());
                    Some(server)
                }
                Err(e) => return Err(started.fail(Fatal::new(Exit::OsErr, e))),
            }
        }
    };
    if let Some(detached) = started.detached.take() {
        if let Err(e) = detached.ready() {
            warn!("{e}");
        }
    }
    info!(
        "heartbeat {} started: {} checks, {} groups, interval {}, pid {}",
        env!("CARGO_PKG_VERSION"),
        engine.config().checks.len(),
        engine.config().groups.len(),
        short_duration(general.interval),
        std::process::id()
    );
    let stopped = engine.run(&announce);
    signals.shutdown();
    if let Some(server) = server {
        server.shutdown();
    }
    started.finish();
    match stopped {
        Stopped::Requested => {
            info!("stopped");
            Ok(Exit::Ok)
        }
        Stopped::CheckFailed(reason) => Err(Fatal::new(
            Exit::Unhealthy,
            format!("unhealthy, exiting (exit_on_failure): {reason}"),
        )),
    }
}

/// Tells systemd about an engine [`Lifecycle`] event: `Ready` and
/// `Reloaded` → `READY=1`, `Reloading` → `RELOADING=1`, `Stopping` →
/// `STOPPING=1` (see [`notify`]). Failures are logged as warnings: systemd
/// being unreachable must not stop the health checks.
fn announce(event: Lifecycle) {
    let result = match event {
        Lifecycle::Ready | Lifecycle::Reloaded => notify::ready(),
        Lifecycle::Reloading => notify::reloading(),
        Lifecycle::Stopping => notify::stopping(),
    };
    if let Err(e) = result {
        warn!("{e}");
    }
}

/// `heartbeat status`: asks a running instance at `address`, or at the
/// `listen` address of the configuration file.
fn status(cli: &Cli, address: Option<SocketAddr>) -> Result<Exit, Fatal> {
    let address = match (address, &cli.config) {
        (Some(address), _) => address,
        (None, Some(path)) => {
            let loaded = config::load(path).map_err(|e| Fatal::new(Exit::Config, e.to_string()))?;
            loaded.config.general.listen.ok_or_else(|| {
                Fatal::new(
                    Exit::Usage,
                    format!(
                        "{} has no listen address in [general]; give ADDR:PORT",
                        path.display()
                    ),
                )
            })?
        }
        (None, None) => {
            return Err(Fatal::new(
                Exit::Usage,
                "status needs ADDR:PORT, or -c FILE with listen in [general]",
            ));
        }
    };
    let exit = client::run(
        address,
        client::DEFAULT_TIMEOUT,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    Ok(exit)
}
