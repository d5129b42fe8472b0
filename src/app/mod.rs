//! What the program does once the command line is a [`Mode`]: load the
//! configuration, start up in the right order, run, and say how it ended.
//!
//! [`run`] dispatches on the mode: `status` (ask a running instance),
//! `--check-config`, `--once`, and the long-running daemon in the
//! foreground or detached (`-d`). Every failure is an [`Error`] that
//! carries its exit status.
//!
//! Start-up order matters and is kept in one place, `start`: logging and
//! the pidfile are opened while still privileged and before any thread
//! exists; then the process detaches (when asked); then privileges are
//! dropped; only then do threads start (checks, signals, status server).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::config;
use crate::control;
use crate::daemon::detach::{self, Detached};
use crate::daemon::pidfile::Pidfile;
use crate::daemon::signals::{self, SignalHandlers, SignalThread};
use crate::daemon::{descriptors, notify, privileges, trust};
use crate::engine::{Engine, Handle, Lifecycle, Options, Stopped};
use crate::exec::process::{self, ChildSetup, EnvPolicy};
use crate::exit::{Chain, Exit};
use crate::http::client;
use crate::http::server::{self, Server, ServerOptions};
use crate::logging;
use crate::model::{Config, General, Health, LogTarget, short_duration};

pub use error::Error;
pub use mode::Mode;
use mode::{Overrides, Report, Run, Source, StatusQuery, Target};

pub mod cli;
pub mod error;
#[cfg(debug_assertions)]
pub mod fault;
pub mod generate;
pub mod mode;
pub mod sidecar;
pub mod summary;
pub mod version;

/// How long a status-server request waits for an on-demand round beyond
/// the longest check timeout.
const PROBE_SLACK: Duration = Duration::from_secs(2);

/// Does what `mode` says; returns the exit status of a normal end.
///
/// # Errors
/// An [`Error`] that carries its exit status ([`Error::exit`]); its
/// message has not been printed yet unless it is [`Error::Reported`].
pub fn run(mode: Mode) -> Result<Exit, Error> {
    if !matches!(
        mode,
        Mode::Version { .. } | Mode::Status(_) | Mode::Control(_)
    ) {
        // Before anything is opened: no inherited descriptor reaches a
        // child (see `descriptors`).
        descriptors::seal_inherited();
    }
    match mode {
        Mode::Version { verbose } => {
            println!(
                "{}",
                if verbose {
                    version::long()
                } else {
                    version::short()
                }
            );
            Ok(Exit::Ok)
        }
        Mode::Generate(what) => {
            // A closed stdout (`| head`) is the reader's choice.
            let _ = generate::generate(what, &mut std::io::stdout().lock());
            Ok(Exit::Ok)
        }
        Mode::Status(query) => status(query),
        Mode::Control(command) => control(command),
        Mode::CheckConfig(source, report) => check_config(source, &report),
        Mode::Once(run) => once(run),
        Mode::Foreground(run) => serve(run, false),
        Mode::Daemon(run) => serve(run, true),
    }
}

/// The configuration from `source`, with the command line's overrides
/// applied, and the warnings found on the way.
fn load(source: Source, overrides: Overrides) -> Result<(Config, Vec<String>), Error> {
    let (config, warnings, _) = load_placed(source, overrides)?;
    Ok((config, warnings))
}

/// [`load`], with where each key of the file was written (none for
/// checks from the command line).
fn load_placed(
    source: Source,
    overrides: Overrides,
) -> Result<(Config, Vec<String>, config::Places), Error> {
    let (mut config, warnings, places) = match source {
        Source::File { path, default } => {
            if default && !path.exists() {
                return Err(Error::NoConfig {
                    path,
                    hint: "give -c FILE, or checks with --check URL / --script CMD",
                });
            }
            let loaded = read_trusted(&path, None)?;
            (loaded.config, loaded.warnings, loaded.places)
        }
        Source::Sidecar(config) => {
            let warnings = sidecar::warnings(&config);
            (*config, warnings, config::Places::default())
        }
    };
    overrides.apply(&mut config);
    Ok((config, warnings, places))
}

/// The configuration file at `path`, read as every mode that runs its
/// commands reads it, and as `-t` reads it so that it refuses exactly
/// what a start or a reload would: parsed and validated (relative paths
/// against `base`, else the current directory), then refused when
/// heartbeat runs as root and another user could write it or a program it
/// runs ([`trust::check`]).
///
/// # Errors
/// [`Error::Config`] for a file that cannot be read or is invalid,
/// [`Error::Untrusted`] for one refused by [`trust::check`]; both exit 78.
fn read_trusted(path: &Path, base: Option<&Path>) -> Result<config::Loaded, Error> {
    let loaded = match base {
        Some(dir) => config::load_relative_to(path, dir),
        None => config::load(path),
    }?;
    trust::check(&loaded.config).map_err(Error::Untrusted)?;
    Ok(loaded)
}

/// `--check-config`: the warnings on stderr, then what the files the
/// configuration names show ([`summary::preflight`], an error when
/// anything is wrong), then on stdout every setting, nothing (`-q`) or the
/// lines of the keys asked for (`--setting KEY`).
fn check_config(source: Source, report: &Report) -> Result<Exit, Error> {
    if let Report::Settings(keys) = report {
        // Before loading: a key that does not exist is a usage error
        // whatever the file holds.
        summary::known_settings(keys).map_err(Error::Usage)?;
    }
    let (config, warnings, places) = load_placed(source, Overrides::default())?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let errors = summary::preflight(&config, &places);
    if !errors.is_empty() {
        let file = config
            .path
            .as_deref()
            .map_or_else(|| "command line".into(), |p| p.display().to_string());
        return Err(config::ConfigError { file, errors }.into());
    }
    match report {
        Report::Full => print!("{}", summary::summary(&config)),
        Report::Quiet => {}
        Report::Settings(keys) => print!("{}", summary::settings(&config, keys)),
    }
    Ok(Exit::Ok)
}

fn engine_options(run: &Run) -> Options {
    Options {
        dry_run: run.dry_run,
        // Decided once started: detaching changes the pid.
        reap_orphans: false,
    }
}

/// What [`start`] leaves running for the caller to close.
struct Started {
    pidfile: Option<Pidfile>,
    /// The control socket, bound and not served yet.
    control: Option<control::server::Listener>,
    detached: Option<Detached>,
    /// The log goes to standard error, which the launcher shares until the
    /// daemon is ready.
    logs_to_stderr: bool,
}

impl Started {
    /// Reports a start-up failure to the launching command when detached
    /// (it prints the message and exits with the status), and returns the
    /// error for this process to exit with.
    fn fail(&mut self, error: Error) -> Error {
        match self.detached.take() {
            Some(detached) => {
                let message = Chain(&error).to_string();
                // With the log on stderr, the launcher's message is enough.
                if !self.logs_to_stderr {
                    error!("{message}");
                }
                detached.fail(error.exit() as i32, &format!("heartbeat: {message}"));
                Error::Reported(error.exit())
            }
            None => error,
        }
    }

    /// Removes the pidfile on a clean exit.
    fn finish(self) {
        if let Some(pidfile) = self.pidfile {
            if let Err(e) = pidfile.release() {
                warn!("{}", Chain(&e));
            }
        }
    }
}

/// Opens the log and the pidfile, creates the control socket of a
/// `daemon`, detaches when `detach` (but not under systemd's
/// `Type=notify`, whose `NOTIFY_SOCKET` it sees), and drops privileges: everything that must happen before any thread exists, in
/// the one order that works (see the module documentation). A step added
/// to start-up goes here, at its place in that order.
///
/// # Errors
/// The first step that fails; after detaching, the failure has also been
/// reported to the launcher ([`Error::Reported`]).
fn start(
    config: &Config,
    warnings: &[String],
    detach: bool,
    daemon: bool,
) -> Result<Started, Error> {
    let general = &config.general;
    detach::reset_ignored_sigchld();
    logging::init(&general.log, general.log_level, general.log_format)?;
    for w in warnings {
        warn!("{w}");
    }
    // Under systemd's Type=notify the main process must stay the one systemd
    // started: READY=1 from a detached child is not accepted.
    let detach = if detach && notify::enabled() {
        warn!(
            "NOTIFY_SOCKET is set (systemd, Type=notify): daemonize = yes and -d are ignored, heartbeat stays in the foreground"
        );
        false
    } else {
        detach
    };
    if detach && general.log == LogTarget::Stderr {
        warn!(
            "detached with logfile = stderr: the log goes to /dev/null; set logfile to a path or to syslog"
        );
    }
    let file_limit = raise_file_limit();
    let identity = privileges::resolve(general.user.as_ref(), general.group.as_ref())?;
    let pidfile = match &general.pidfile {
        Some(path) => Some(Pidfile::acquire(path)?),
        None => None,
    };
    let control = bind_control_socket(config, identity.as_ref(), daemon)?;
    let detached = if detach {
        Some(detach::detach()?)
    } else {
        None
    };
    let mut started = Started {
        pidfile,
        control,
        detached,
        logs_to_stderr: general.log == LogTarget::Stderr,
    };
    if let Some(pidfile) = started.pidfile.as_mut() {
        if let Err(e) = pidfile.write_pid() {
            return Err(started.fail(e.into()));
        }
    }
    if detach {
        // daemon(7): the launcher's descriptors are not the daemon's.
        descriptors::close_inherited();
    }
    // The pidfile stays root's: the dropped user must not be able to write
    // another PID into it (see `Pidfile`).
    if let Some(identity) = &identity {
        // apply() logs the identity it switched to.
        if let Err(e) = identity.apply() {
            return Err(started.fail(e.into()));
        }
    }
    configure_children(general, file_limit);
    Ok(started)
}

/// The control socket of a daemon (`serve`), bound while still privileged
/// and single-threaded, given to the user heartbeat drops to. At a default
/// place a failure is a warning (heartbeat runs without one); where
/// `control_socket` names it, it stops start-up.
fn bind_control_socket(
    config: &Config,
    identity: Option<&privileges::Identity>,
    serve: bool,
) -> Result<Option<control::server::Listener>, Error> {
    if !serve {
        return Ok(None);
    }
    let (path, explicit) = match control::path::placement(config, control::path::Side::Daemon) {
        control::path::Placement::Off(why) => {
            info!("no control socket: {why}");
            return Ok(None);
        }
        control::path::Placement::At { path, explicit } => (path, explicit),
    };
    let owner = identity.map(|i| (i.uid, i.gid));
    match control::server::bind(&path, owner) {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if explicit => Err(e.into()),
        Err(e) => {
            warn!("{e}; running without a control socket (set control_socket = PATH)");
            Ok(None)
        }
    }
}

/// What every check and hook gets from now on (after the privilege drop,
/// so that `HOME` and `USER` are the user's): the clean environment with
/// `env_keep` and `env_set`, and the launcher's open-file limit
/// (`original_file_limit`, when heartbeat raised its own). Also makes this
/// process the subreaper of their orphans, so that what a run leaves
/// behind can be killed with it.
fn configure_children(general: &General, original_file_limit: Option<u64>) {
    let policy = EnvPolicy {
        keep: general.env_keep.clone(),
        set: general.env_set.clone(),
    };
    let env = process::environment_for(&policy, std::env::vars_os(), &process::current_user());
    process::configure_children(ChildSetup {
        env,
        file_limit: original_file_limit,
    });
    if let Err(e) = process::become_subreaper() {
        warn!(
            "cannot become the subreaper of checks and hooks: {e}; their escaped descendants go to init"
        );
    }
}

/// Raises the soft limit on open files to the hard limit (at most 65536):
/// every check, hook pipe and status-server connection is a descriptor,
/// and init systems often start daemons with a soft limit of 1024. A
/// failure only costs headroom, so it is logged, not fatal. Returns the
/// launcher's soft limit when it was raised, for children to get back.
fn raise_file_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const WANTED: u64 = 65536;
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard.min(WANTED) => {
            let target = hard.min(WANTED);
            match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
                Ok(()) => {
                    debug!("open file limit raised from {soft} to {target}");
                    Some(soft)
                }
                Err(e) => {
                    warn!("cannot raise the open file limit from {soft}: {e}");
                    None
                }
            }
        }
        Ok(_) => None,
        Err(e) => {
            warn!("cannot read the open file limit: {e}");
            None
        }
    }
}

/// `options` with [`Options::reap_orphans`] set: heartbeat is the
/// subreaper of its checks and hooks (see `configure_children`), and when
/// it is PID 1 of its PID namespace (a container's main process) the
/// kernel re-parents every orphan in the namespace to it too
/// (pid_namespaces(7)); only it can reap them.
fn reaping_if_init(options: Options) -> Options {
    if std::process::id() == 1 {
        debug!("running as PID 1: orphaned processes are reaped after every round and action");
    }
    Options {
        reap_orphans: true,
        ..options
    }
}

/// `--once`: one round, its actions, and the exit status: 3 when a
/// group's latest state was not announced (its action failed, or a stop
/// came first), else the overall health (0 or 1).
fn once(run: Run) -> Result<Exit, Error> {
    let options = engine_options(&run);
    let (config, warnings) = load(run.source, run.overrides)?;
    let mut started = start(&config, &warnings, false, false)?;
    let engine = Engine::new(config, reaping_if_init(options))
        .map_err(|e| started.fail(Error::Engine(e)))?;
    // SIGTERM and SIGINT end the round: running checks are killed, running
    // actions get their deadline, and what was not announced is said.
    let signals = spawn_signals(engine.handle())?;
    let outcome = engine.run_once();
    signals.shutdown();
    let outcome = outcome.map_err(|stopped| started.fail(stopped_error(stopped)))?;
    if outcome.stopped {
        info!("stopped: {}", outcome.health);
    } else {
        info!("one round done: {}", outcome.health);
    }
    started.finish();
    Ok(if !outcome.unannounced.is_empty() {
        Exit::ActionFailed
    } else if outcome.health == Health::Healthy {
        Exit::Ok
    } else {
        Exit::Unhealthy
    })
}

/// The daemon, in the foreground or detached (`detach`, or `daemonize =
/// yes` in the file): rounds until a signal stops it (or `exit_on_failure`
/// trips).
fn serve(run: Run, detach: bool) -> Result<Exit, Error> {
    // Detaching changes to `/`: a reload resolves relative paths against
    // the directory heartbeat was launched in, as the first load did.
    // (Without one, loading the file at start-up failed already.)
    let launch_dir = std::env::current_dir().ok();
    let options = engine_options(&run);
    let overrides = run.overrides;
    let (config, warnings) = load(run.source, overrides)?;
    let detach = detach || config.general.daemonize;
    let mut started = start(&config, &warnings, detach, true)?;
    let stopped = match daemon(
        config,
        options,
        &mut started,
        Reloader {
            launch_dir,
            overrides,
        },
    ) {
        Ok(stopped) => stopped,
        Err(e) => return Err(started.fail(e)),
    };
    started.finish();
    match stopped {
        Stopped::Requested => {
            info!("stopped");
            Ok(Exit::Ok)
        }
        stopped => Err(stopped_error(stopped)),
    }
}

/// The error of an engine that stopped other than on request.
fn stopped_error(stopped: Stopped) -> Error {
    match stopped {
        Stopped::CheckFailed(reason) => Error::Unhealthy(reason),
        Stopped::Failed(why) => Error::Internal(why),
        Stopped::Requested => Error::Internal("stopped on request".into()),
    }
}

/// What a reload needs to read the file as the first load did.
struct Reloader {
    launch_dir: Option<PathBuf>,
    overrides: Overrides,
}

impl Reloader {
    fn into_loader(self) -> crate::engine::Loader {
        Box::new(move |path| {
            let mut loaded =
                read_trusted(path, self.launch_dir.as_deref()).map_err(|e| e.to_string())?;
            self.overrides.apply(&mut loaded.config);
            Ok(loaded)
        })
    }
}

/// The daemon once started: the engine, its signals and status server,
/// readiness, and the rounds until it stops.
fn daemon(
    config: Config,
    options: Options,
    started: &mut Started,
    reloader: Reloader,
) -> Result<Stopped, Error> {
    let bounds = RoundBounds::of(&config);
    let general = config.general.clone();
    let mut engine = Engine::new(config, reaping_if_init(options)).map_err(Error::Engine)?;
    engine.set_loader(reloader.into_loader());
    #[cfg(debug_assertions)]
    fault::inject(&mut engine);
    let signals = spawn_signals(engine.handle())?;
    let server = start_status_server(&general, &bounds, &engine)?;
    if let Some(server) = &server {
        engine.watch("status server", Box::new(server.alive()));
    }
    let control = match started.control.take() {
        Some(listener) => {
            let path = listener.path().to_owned();
            let served = control::server::spawn(listener, engine.handle(), control_wait(&general))
                .map_err(|e| {
                    Error::Internal(format!(
                        "cannot serve the control socket {}: {e}",
                        path.display()
                    ))
                })?;
            engine.watch("control socket", Box::new(served.alive()));
            info!(
                "control socket on {} (pause, resume, maintenance)",
                path.display()
            );
            Some(served)
        }
        None => None,
    };
    if let Some(detached) = started.detached.take() {
        if let Err(e) = detached.ready() {
            warn!("{}", Chain(&e));
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
    if let Some(control) = control {
        control.shutdown();
    }
    Ok(stopped)
}

/// How long a command of the control socket may wait for the actions it
/// started: an action already running first, then its own, each within
/// `action_timeout` and the kill grace, and slack for a loaded machine.
fn control_wait(general: &General) -> Duration {
    (general.action_timeout + crate::exec::actions::KILL_GRACE) * 2 + Duration::from_secs(5)
}

/// `pause`, `resume`, `maintenance`: finds the control socket from the
/// configuration file and asks the running instance there.
fn control(command: mode::ControlCommand) -> Result<Exit, Error> {
    let loaded = config::load(&command.config)?;
    let path = match control::path::placement(&loaded.config, control::path::Side::Client) {
        control::path::Placement::At { path, .. } => path,
        control::path::Placement::Off(why) => {
            return Err(Error::Usage(format!(
                "{} has no control socket ({why}); set control_socket = PATH in [general]",
                command.config.display()
            )));
        }
    };
    let request = control::protocol::Request {
        command: command.command,
        groups: command.groups,
    };
    // The client waits a little longer than the server does.
    let timeout = control_wait(&loaded.config.general) + Duration::from_secs(5);
    Ok(control::client::run(
        &path,
        &request,
        timeout,
        &mut std::io::stdout(),
    )?)
}

/// How long checks and rounds of a configuration may take, for the status
/// server's deadlines.
struct RoundBounds {
    /// The longest check timeout.
    longest_check: Duration,
}

impl RoundBounds {
    fn of(config: &Config) -> RoundBounds {
        let longest_check = config
            .checks
            .iter()
            .map(|c| c.timeout)
            .max()
            .unwrap_or_default();
        RoundBounds { longest_check }
    }
}

/// SIGTERM and SIGINT stop the engine, SIGHUP reloads it, SIGUSR1 reopens
/// the log.
fn spawn_signals(handle: Handle) -> Result<SignalThread, Error> {
    let (stop, reload) = (handle.clone(), handle);
    let signals = signals::spawn(SignalHandlers {
        on_stop: Box::new(move || stop.stop()),
        on_reload: Box::new(move || reload.reload()),
        // reopen() logs its outcome, success or failure, itself.
        on_reopen: Box::new(|| {
            let _ = logging::reopen();
        }),
    })?;
    Ok(signals)
}

/// The status server on `listen`, if one is configured.
fn start_status_server(
    general: &General,
    bounds: &RoundBounds,
    engine: &Engine,
) -> Result<Option<Server>, Error> {
    let Some(addr) = general.listen else {
        return Ok(None);
    };
    let options = ServerOptions {
        fail_status: general.fail_status,
        interval: general.interval,
        on_demand: general.on_demand,
        // A round ends at the latest when the next one starts, one
        // interval later, whatever its checks do: slack for a loaded
        // machine is enough.
        stall_margin: Duration::from_secs(5),
        ..ServerOptions::default()
    };
    let probe_timeout = bounds.longest_check + PROBE_SLACK;
    let prober = engine.handle();
    let probe: server::ProbeFn = Arc::new(move || {
        prober.probe(probe_timeout);
    });
    let server = server::spawn(
        addr,
        options,
        engine.status(),
        engine.metrics(),
        Some(probe),
    )?;
    let addr = server.local_addr();
    let exposure = crate::http::exposure::Exposure::of(addr);
    if exposure.every_interface {
        warn!("{}", exposure.message(addr));
    } else {
        info!("{}", exposure.message(addr));
    }
    Ok(Some(server))
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

/// `heartbeat status`: asks a running instance at the address given, or
/// at the `listen` address of the configuration file, and prints its
/// answer.
fn status(query: StatusQuery) -> Result<Exit, Error> {
    let addresses = match query.target {
        Target::Address(addresses) => addresses,
        Target::File(path) => {
            let loaded = config::load(&path)?;
            let listen = loaded.config.general.listen.ok_or_else(|| {
                Error::Usage(format!(
                    "{} has no listen address in [general]; give ADDR:PORT",
                    path.display()
                ))
            })?;
            vec![listen]
        }
    };
    let output = if query.json {
        client::Output::Json
    } else {
        client::Output::Tables
    };
    Ok(client::run_as(
        &addresses,
        query.timeout,
        output,
        &mut std::io::stdout(),
    )?)
}
