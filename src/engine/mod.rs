//! The engine: rounds of checks on a fixed schedule, folded into group
//! health, turned into promotions and demotions.
//!
//! It does not care how it was started: the caller builds it from a
//! [`Config`], takes a [`Handle`] to stop, reload or probe it from other
//! threads (signals, the status server), and calls [`Engine::run`] or
//! [`Engine::run_once`].
//!
//! One thread runs the loop below and owns all state; it sleeps on a
//! channel until the next round is due or an event comes, so it uses no CPU
//! between rounds. Every event goes through one dispatch: a check's result,
//! an action's end, a stop, a reload, a probe. Checks run where they wait
//! (see `runner`): network checks as futures on one network thread,
//! script checks on the rayon pool of `threads` workers; actions run on
//! threads of their own. All of them report back through the channel, so a
//! slow check delays only itself, a slow action never delays a round, and
//! a round never waits for a check that outlives it (see `rounds`).
//!
//! A panic in a check is that check's failure. A panic in the loop itself,
//! an action thread that dies without reporting, or a watched thread that
//! stops ([`Engine::watch`]: the status server) ends the engine with
//! [`Stopped::Failed`], after the running actions had their deadline.
//!
//! As PID 1 of a PID namespace (a container), heartbeat inherits every
//! orphaned process in it and must reap them (pid_namespaces(7)); with
//! [`Options::reap_orphans`] the loop does so after every round, every
//! result that comes after its round, and every action, through
//! [`process::reap_orphans`].
//!
//! `schedule` says when each check is due, `state` is the pure state
//! machine, `table` and `groups` hold the checks and groups at run time,
//! `reload` applies a new configuration keeping what is unchanged,
//! `holds` carries out an operator's [`Order`] (pause, resume,
//! maintenance, from the control socket), `saved` keeps holds and what each
//! group announced in the state file across restarts, and `publish` turns
//! the engine's state into the [`Snapshot`] readers see. A group's hold is
//! its [`state::ActionSlot::hold`], published as
//! [`crate::status::GroupStatus::hold`].

mod exclusive;
mod groups;
mod holds;
mod publish;
mod reload;
mod rounds;
mod runner;
mod saved;
pub mod schedule;
pub mod state;
mod table;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error, info, warn};

use crate::checks::{self, Check};
use crate::cluster::Cluster;
use crate::config::Loaded;
use crate::exec::actions::{ActionReport, ActionRequest};
use crate::exec::process;
use crate::exit::Exit;
use crate::model::{Config, Health, Probe, overall_health};
use crate::status::metrics::Metrics;
use crate::status::{SharedStatus, Snapshot};
use groups::Group;
pub use holds::{Answer, Order, OrderError, OrderReply};
use reload::make_groups;
use rounds::Rounds;
use runner::Runner;
use state::CheckState;
use table::{Slot, Table};

/// With `on_demand`, a probe request is answered from the latest round
/// when that round ended less than this long ago, so a burst of requests
/// cannot run rounds back to back.
pub const PROBE_MIN_AGE: Duration = Duration::from_secs(1);

/// How long the loop lets results gather before it takes them in: they
/// are folded in at the end of their round anyway, and taking them a
/// millisecond later turns a wake-up per result into one per batch.
pub const COALESCE: Duration = Duration::from_millis(1);

/// How often the loop looks at the threads it watches ([`Engine::watch`]),
/// at the least.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How the engine runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Log promotions and demotions instead of running them.
    pub dry_run: bool,
    /// Reap orphaned zombies after every round and every action: for a
    /// process that is PID 1 of its PID namespace, to which the kernel
    /// re-parents them. See [`process::reap_orphans`].
    pub reap_orphans: bool,
}

/// Moments of the engine's life, reported to the caller (for systemd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// The first round has completed and every check has a first result
    /// (a check still running when its round ended is waited for, within
    /// its timeout).
    Ready,
    /// A reload has started.
    Reloading,
    /// A reload has ended (applied or refused).
    Reloaded,
    /// The engine is stopping.
    Stopping,
}

/// Why [`Engine::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// [`Handle::stop`] was called.
    Requested,
    /// `exit_on_failure` is set and a check is unhealthy after `fall`
    /// consecutive failures: `check: reason`.
    CheckFailed(String),
    /// Something inside heartbeat failed and it cannot go on: the loop
    /// panicked, an action thread died, a watched thread stopped. The
    /// message says which; exit status 70 (`EX_SOFTWARE`).
    Failed(String),
}

/// How a `--once` round ended ([`Engine::run_once`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceOutcome {
    /// Healthy iff every group that a check feeds is.
    pub health: Health,
    /// The groups whose latest state the outside world was not told: their
    /// action failed, or a stop came before it ran.
    pub unannounced: Vec<String>,
    /// A stop ([`Handle::stop`]) ended the round.
    pub stopped: bool,
}

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// A check cannot be prepared (an invalid `ca_file`): one line per
    /// check, each naming it. A configuration error, exit status 78.
    Checks(String),
    /// The operating system refused threads or descriptors: exit status
    /// 71 (`EX_OSERR`).
    System(String),
}

impl EngineError {
    /// The exit status this error ends heartbeat with.
    pub fn exit(&self) -> Exit {
        match self {
            EngineError::Checks(_) => Exit::Config,
            EngineError::System(_) => Exit::OsErr,
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Checks(m) | EngineError::System(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EngineError {}

/// Messages to the engine's loop.
enum Event {
    Stop,
    Reload,
    Probe(Sender<()>),
    /// Results of checks are waiting in the runner's sink.
    Results,
    ActionEnded {
        group: String,
        started: SystemTime,
        report: ActionReport,
    },
    /// The thread of the action `group` started at `started` ended without
    /// reporting (it panicked, or could not start at all).
    ActionLost {
        group: String,
        started: SystemTime,
    },
    /// The cluster's word on an exclusive group.
    Cluster(crate::cluster::Report),
    /// An operator's order, from `who`.
    Order {
        order: Order,
        groups: Vec<String>,
        who: String,
        reply: Sender<OrderReply>,
    },
}

/// How a reload reads the configuration file at the given path: by
/// default [`crate::config::load`]; the caller may add what the command
/// line set (see [`Engine::set_loader`]).
pub type Loader = Box<dyn Fn(&Path) -> Result<Loaded, String> + Send>;

/// A check of a thread the engine depends on: `true` while it runs.
pub type Watchdog = Box<dyn Fn() -> bool + Send>;

/// Tells the engine how an action ended: called once, with its report,
/// on whatever thread ran it. Dropped without being called (the thread
/// panicked, or ended without reporting), it tells the engine that the
/// action is lost, which ends the engine with [`Stopped::Failed`].
pub type ActionReply = Box<dyn FnOnce(ActionReport) + Send>;

/// How the engine starts an action (see [`Engine::set_action_spawner`]):
/// it must return at once, run the request elsewhere and hand its report
/// to the [`ActionReply`]. `Err` means that nothing ran.
pub type ActionSpawner = Box<dyn Fn(ActionRequest, ActionReply) -> std::io::Result<()> + Send>;

/// A cheap, cloneable remote control for a running engine.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<Event>,
}

impl Handle {
    /// Asks the engine to stop: no new check starts, running script checks
    /// are killed, running actions get their deadline.
    pub fn stop(&self) {
        let _ = self.tx.send(Event::Stop);
    }

    /// Asks the engine to reread its configuration file. An invalid file is
    /// logged and the running configuration kept. The schedule stays
    /// counted from the first round.
    pub fn reload(&self) {
        let _ = self.tx.send(Event::Reload);
    }

    /// Sends an operator's order for `groups` on behalf of `who` (how logs
    /// name the operator: `uid 0 (pid 4242)`). The answer comes on the
    /// returned channel once the actions the order started have ended
    /// (see [`Order`]); the channel closes without an answer when the
    /// engine is gone.
    pub fn order(&self, order: Order, groups: Vec<String>, who: String) -> Receiver<OrderReply> {
        let (reply, answer) = mpsc::channel();
        let _ = self.tx.send(Event::Order {
            order,
            groups,
            who,
            reply,
        });
        answer
    }

    /// Asks for a fresh round and waits for it, at most `timeout`.
    /// Concurrent callers share one round; a round that ended less than
    /// [`PROBE_MIN_AGE`] ago counts as fresh. Returns `false` on timeout or
    /// when the engine is gone.
    pub fn probe(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Event::Probe(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }
}

/// What readers share with the engine.
struct Shared {
    status: SharedStatus,
    metrics: Arc<Metrics>,
    started: SystemTime,
}

/// The engine's own life: stopping, reloading, what it watches.
#[derive(Default)]
struct Life {
    stopping: bool,
    outcome: Option<Stopped>,
    reload_pending: bool,
    ready_announced: bool,
    /// Reads the file on reload; [`crate::config::load`] when `None`.
    loader: Option<Loader>,
    /// Starts actions; [`crate::exec::actions::spawn`] when `None`.
    spawner: Option<ActionSpawner>,
    /// Reaping orphans has failed once and said why: not said again.
    reaping_failed: bool,
    watchdogs: Vec<(String, Watchdog)>,
    /// When to take in the results waiting in the runner's sink.
    drain_at: Option<Instant>,
}

/// Whether the loop runs rounds on the schedule or one round only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Daemon,
    Once,
}

/// A configured engine, ready to run.
pub struct Engine {
    config: Config,
    options: Options,
    table: Table,
    groups: Vec<Group>,
    /// Groups removed by a reload while their action ran, with the state
    /// it announces: a stop waits for these actions too, and a group of
    /// the same name added back meanwhile waits for its own.
    orphaned_runs: HashMap<String, Health>,
    /// Operators' orders waiting for the actions they started.
    pending_orders: Vec<holds::Pending>,
    /// Writes the state file, when there is one.
    saver: Option<saved::Saver>,
    /// The elections of the exclusive groups, while [`Engine::run`] runs
    /// with a `[cluster]`.
    cluster: Option<Cluster>,
    rounds: Rounds,
    runner: Runner,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    shared: Shared,
    life: Life,
}

impl Engine {
    /// Builds the engine: checks, the pool and network runtime, status.
    ///
    /// # Errors
    /// [`EngineError::Checks`] when a check cannot be prepared (an invalid
    /// `ca_file`), [`EngineError::System`] when the threads cannot be
    /// started.
    pub fn new(config: Config, options: Options) -> Result<Engine, EngineError> {
        if let Some(spec) = &config.cluster {
            crate::cluster::check(spec).map_err(EngineError::Checks)?;
        }
        let checks = checks::build(&config.checks).map_err(EngineError::Checks)?;
        let threads = pool_size(&config);
        Engine::assemble(config, options, checks, threads)
    }

    /// Builds the engine with `checks` for the checks of `config` (the same
    /// number, in the same order) instead of those the configuration
    /// describes: for tests that need a check of their own, and for
    /// embedding. Checks that block run on a pool of `[general] threads`
    /// workers. A reload builds checks from the file again.
    ///
    /// # Errors
    /// [`EngineError::Checks`] when the numbers differ,
    /// [`EngineError::System`] when the threads cannot be started.
    pub fn with_checks(
        config: Config,
        options: Options,
        checks: Vec<Arc<dyn Check>>,
    ) -> Result<Engine, EngineError> {
        let threads = config.general.threads;
        Engine::assemble(config, options, checks, threads)
    }

    fn assemble(
        config: Config,
        options: Options,
        checks: Vec<Arc<dyn Check>>,
        threads: usize,
    ) -> Result<Engine, EngineError> {
        if checks.len() != config.checks.len() {
            return Err(EngineError::Checks(format!(
                "{} checks given for {} configured",
                checks.len(),
                config.checks.len()
            )));
        }
        runner::install_panic_hook();
        let (tx, rx) = mpsc::channel();
        let runner =
            Runner::new(threads.max(1), tx.clone()).map_err(|e| EngineError::System(e.0))?;
        let groups = make_groups(&config, &HashMap::new(), &mut HashMap::new());
        let anchor = Instant::now();
        let slots = checks
            .into_iter()
            .zip(&config.checks)
            .map(|(check, spec)| Slot {
                id: table::new_id(),
                network: table::on_network(&check),
                check,
                timing: table::timing(spec, config.general.interval),
                state: CheckState::default(),
                last: None,
                flight: None,
                next_due: anchor,
                groups: Vec::new(),
            })
            .collect();
        let metrics = Arc::new(Metrics::new());
        metrics.configure(&config);
        let mut engine = Engine {
            options,
            table: Table::new(slots),
            groups,
            orphaned_runs: HashMap::new(),
            pending_orders: Vec::new(),
            saver: None,
            cluster: None,
            rounds: Rounds::new(anchor),
            runner,
            tx,
            rx,
            shared: Shared {
                status: Arc::new(RwLock::new(Snapshot::default())),
                metrics,
                started: SystemTime::now(),
            },
            life: Life::default(),
            config,
        };
        engine.link_groups();
        engine.restore_state();
        engine.publish();
        Ok(engine)
    }

    /// A remote control for this engine.
    pub fn handle(&self) -> Handle {
        Handle {
            tx: self.tx.clone(),
        }
    }

    /// The snapshot the engine publishes after every round and action.
    pub fn status(&self) -> SharedStatus {
        self.shared.status.clone()
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets how a reload reads the configuration file, so that settings
    /// the command line gave over the file's survive a reload.
    pub fn set_loader(&mut self, loader: Loader) {
        self.life.loader = Some(loader);
    }

    /// Sets how actions are started, instead of
    /// [`crate::exec::actions::spawn`] (the hook on a thread of its own):
    /// for embedding, and for tests of what the engine does when an
    /// action's thread dies (its [`ActionReply`] dropped uncalled): it
    /// logs that the group's action thread ended without reporting,
    /// starts nothing more and ends with [`Stopped::Failed`] naming the
    /// group, after the other running actions had their deadline.
    pub fn set_action_spawner(&mut self, spawner: ActionSpawner) {
        self.life.spawner = Some(spawner);
    }

    /// Watches a thread the daemon depends on (the status server): when
    /// `alive` returns `false` — the thread ended or panicked — the engine
    /// logs that `what` stopped and ends with [`Stopped::Failed`], instead
    /// of running on without it. Looked at after every event and at least
    /// every [`WATCH_EVERY`].
    pub fn watch(&mut self, what: impl Into<String>, alive: Watchdog) {
        self.life.watchdogs.push((what.into(), alive));
    }

    /// Runs rounds until stopped, reporting its life to `notify`. On stop,
    /// no further check starts, running script checks are killed and
    /// running actions are waited for (each within its `action_timeout`).
    ///
    /// Once stopped, each group whose latest state was not announced (its
    /// action failed, or the stop came before it ran) is named in a
    /// warning.
    ///
    /// With `[cluster]`, the elections of the exclusive groups run
    /// meanwhile; a stop first demotes the exclusive groups whose
    /// promotion is in effect, then revokes their leases.
    pub fn run(mut self, notify: &dyn Fn(Lifecycle)) -> Stopped {
        if let Err(why) = self.start_cluster() {
            error!("{why}");
            return Stopped::Failed(why);
        }
        let ran = catch_unwind(AssertUnwindSafe(|| {
            self.start_held_actions();
            self.serve(Mode::Daemon, notify);
        }));
        let stopped = self
            .end(ran)
            .unwrap_or_else(|| self.life.outcome.take().unwrap_or(Stopped::Requested));
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
        self.report_unannounced();
        self.close_state();
        stopped
    }

    /// Runs one round of every check, waiting for each to its deadline,
    /// applies its actions and waits for them; returns the overall health
    /// (healthy iff every group that a check feeds is) and the groups whose
    /// latest state was not announced, each also named in a warning. A
    /// [`Handle::stop`] ends the round early (running checks are killed,
    /// running actions get their deadline).
    ///
    /// # Errors
    /// [`Stopped::Failed`] when the loop panicked or an action thread died.
    pub fn run_once(mut self) -> Result<OnceOutcome, Stopped> {
        let ran = catch_unwind(AssertUnwindSafe(|| {
            self.start_held_actions();
            let now = Instant::now();
            self.start_round(now, now, true);
            self.serve(Mode::Once, &|_| {});
        }));
        let ended = self.end(ran);
        if let Some(failed) = ended {
            self.close_state();
            return Err(failed);
        }
        if let Some(failed @ Stopped::Failed(_)) = self.life.outcome.take() {
            return Err(failed);
        }
        if self.rounds.completed == 0 {
            warn!("stopped before the round ended: no group's state is known");
        }
        let unannounced = self.report_unannounced();
        self.close_state();
        Ok(OnceOutcome {
            health: overall_health(self.groups.iter().map(|g| {
                // A group in maintenance fails, as it does for `GET /`.
                match g.slot.hold {
                    Some(crate::model::Hold::Maintenance) => (Health::Unhealthy, true),
                    _ => (g.health, !g.members.is_empty()),
                }
            })),
            unannounced,
            stopped: self.life.stopping,
        })
    }

    /// The loop: one dispatch for every event, rounds on the schedule in
    /// [`Mode::Daemon`].
    fn serve(&mut self, mode: Mode, notify: &dyn Fn(Lifecycle)) {
        loop {
            self.settle(mode, notify);
            if self.finished(mode) {
                return;
            }
            if mode == Mode::Daemon && !self.life.stopping {
                self.tick(Instant::now());
                self.settle(mode, notify);
            }
            let mut until =
                (mode == Mode::Daemon && !self.life.stopping).then_some(self.rounds.wake);
            if !self.life.watchdogs.is_empty() {
                let watch = Instant::now() + WATCH_EVERY;
                until = Some(until.map_or(watch, |u| u.min(watch)));
            }
            if let Some(drain) = self.life.drain_at {
                until = Some(until.map_or(drain, |u| u.min(drain)));
            }
            let event = match until {
                Some(until) => self
                    .rx
                    .recv_timeout(until.saturating_duration_since(Instant::now())),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match event {
                Ok(event) => self.dispatch(event, mode, notify),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.life.drain_at.is_some_and(|at| at <= Instant::now()) {
                self.life.drain_at = None;
                for done in self.runner.results() {
                    self.check_done(done.id, done.round, done.result);
                }
            }
            self.look_at_watchdogs(notify);
        }
    }

    /// Whether the loop is done: stopped (or, with `--once`, its round
    /// over) and no action running.
    fn finished(&self, mode: Mode) -> bool {
        let over = match mode {
            Mode::Daemon => self.life.stopping,
            Mode::Once => {
                self.life.stopping || (self.rounds.open.is_none() && self.rounds.completed > 0)
            }
        };
        over && !self.actions_running()
    }

    fn dispatch(&mut self, event: Event, mode: Mode, notify: &dyn Fn(Lifecycle)) {
        match event {
            Event::Stop => self.begin_stop(notify),
            Event::Reload if mode == Mode::Once => {}
            Event::Reload if self.rounds.open.is_some() => self.life.reload_pending = true,
            Event::Reload => self.reload(notify),
            Event::Probe(reply) => self.probe(reply),
            // Results are taken in a little later, together with those that
            // come meanwhile: one wake-up of this thread for many results.
            Event::Results => {
                let at = Instant::now() + COALESCE;
                self.life.drain_at.get_or_insert(at);
            }
            Event::ActionEnded {
                group,
                started,
                report,
            } => {
                self.action_ended(&group, started, report);
                self.save_state();
            }
            Event::Cluster(report) => {
                self.cluster_report(report);
                self.save_state();
            }
            Event::Order {
                order,
                groups,
                who,
                reply,
            } => {
                self.order(order, groups, &who, reply);
                self.save_state();
            }
            Event::ActionLost { group, started } => {
                if self.is_running(&group, started) {
                    self.fail(format!(
                        "the action thread of group {group:?} ended without reporting"
                    ));
                    // It will not report: forget it, or the stop waits for
                    // ever.
                    self.orphaned_runs.remove(&group);
                    for g in self.groups.iter_mut().filter(|g| g.spec.name == group) {
                        g.slot.finished(false, g.backoff);
                        g.running_since = None;
                    }
                    self.settle_orders();
                    self.save_state();
                }
            }
        }
    }

    /// What follows the latest results: the first round's readiness,
    /// `exit_on_failure`, and a reload that waited for the round to end.
    fn settle(&mut self, mode: Mode, notify: &dyn Fn(Lifecycle)) {
        if mode == Mode::Once || self.life.stopping {
            return;
        }
        if !self.life.ready_announced && self.rounds.completed > 0 && self.table.unreported == 0 {
            self.life.ready_announced = true;
            notify(Lifecycle::Ready);
        }
        if self.config.general.exit_on_failure {
            if let Some(reason) = self.first_failure() {
                error!("exit_on_failure: {reason}");
                self.life.outcome = Some(Stopped::CheckFailed(reason));
                self.begin_stop(notify);
                return;
            }
        }
        if self.life.reload_pending && self.rounds.open.is_none() {
            self.life.reload_pending = false;
            self.reload(notify);
        }
    }

    fn begin_stop(&mut self, notify: &dyn Fn(Lifecycle)) {
        if self.life.stopping {
            return;
        }
        info!("stopping");
        notify(Lifecycle::Stopping);
        self.life.stopping = true;
        // The rest of the round in flight is not started, and what runs of
        // it is killed: nothing may outlive heartbeat.
        self.runner.cancel();
        checks::abort_running();
        self.log_running_actions();
        self.demote_exclusive_groups();
    }

    /// Ends the engine because something inside it failed.
    fn fail(&mut self, why: String) {
        error!("{why}; stopping");
        if !matches!(self.life.outcome, Some(Stopped::Failed(_))) {
            self.life.outcome = Some(Stopped::Failed(why));
        }
        self.begin_stop(&|_| {});
    }

    fn look_at_watchdogs(&mut self, notify: &dyn Fn(Lifecycle)) {
        if self.life.stopping {
            return;
        }
        let stopped: Vec<String> = self
            .life
            .watchdogs
            .iter()
            .filter(|(_, alive)| !alive())
            .map(|(what, _)| what.clone())
            .collect();
        if let Some(what) = stopped.first() {
            notify(Lifecycle::Stopping);
            self.fail(format!("the {what} has stopped"));
        }
    }

    /// After the loop: kills what runs of the checks and, when the loop
    /// panicked, waits for the running actions (each within its deadline)
    /// and returns the failure.
    fn end(&mut self, ran: std::thread::Result<()>) -> Option<Stopped> {
        self.runner.cancel();
        // A script check that was starting just as the stop came may have
        // been spawned after the first abort.
        checks::abort_running();
        let payload = ran.err()?;
        let message = runner::payload_text(&*payload);
        let why = format!("the engine loop panicked: {message}");
        error!("{why}; waiting for running actions, then exiting");
        self.life.stopping = true;
        let limit = Instant::now()
            + self.config.general.action_timeout
            + crate::exec::actions::KILL_GRACE
            + Duration::from_secs(1);
        while self.actions_running() && Instant::now() < limit {
            match self
                .rx
                .recv_timeout(limit.saturating_duration_since(Instant::now()))
            {
                Ok(Event::ActionEnded { group, report, .. }) => {
                    self.ended_after_panic(&group, report.exit.success());
                }
                Ok(Event::ActionLost { group, .. }) => self.ended_after_panic(&group, false),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.demote_after_panic();
        Some(Stopped::Failed(why))
    }

    /// After the loop panicked: records the end of group `group`'s action,
    /// so that [`Engine::demote_after_panic`] knows whether its promotion
    /// is in effect.
    fn ended_after_panic(&mut self, group: &str, succeeded: bool) {
        self.orphaned_runs.remove(group);
        for g in self.groups.iter_mut().filter(|g| g.spec.name == group) {
            g.slot.finished(succeeded, g.backoff);
        }
    }

    /// With [`Options::reap_orphans`], reaps the orphaned zombies that
    /// have been re-parented to this process, logging each at DEBUG. A
    /// failure (no `/proc`) is logged once, as a warning.
    fn reap_orphans(&mut self) {
        if !self.options.reap_orphans {
            return;
        }
        match process::reap_orphans() {
            Ok(reaped) => {
                for orphan in reaped {
                    debug!("reaped orphaned process {}: {}", orphan.pid, orphan.exit);
                }
            }
            Err(e) if !self.life.reaping_failed => {
                self.life.reaping_failed = true;
                warn!("cannot reap orphaned processes, they stay zombies: {e}");
            }
            Err(_) => {}
        }
    }

    /// Links each check to the groups it feeds, from the groups' members.
    fn link_groups(&mut self) {
        for (slot, spec) in self.table.slots.iter_mut().zip(&self.config.checks) {
            slot.groups.clear();
            slot.groups.reserve_exact(spec.groups.len());
        }
        for (g, group) in self.groups.iter().enumerate() {
            for &i in &group.members {
                self.table.slots[i].groups.push(g);
            }
        }
    }

    /// `check: reason` of the first check that is unhealthy after `fall`
    /// consecutive failures, if any: what trips `exit_on_failure`. A first
    /// result decides a check's health at once, but a sidecar started with
    /// `--retries 3` exits after three failed probes, not one.
    fn first_failure(&self) -> Option<String> {
        let (slot, spec) = self
            .table
            .slots
            .iter()
            .zip(&self.config.checks)
            .find(|(s, spec)| {
                s.state.health == Health::Unhealthy && s.state.failures >= spec.fall
            })?;
        let reason = slot
            .last
            .as_ref()
            .map_or("no result", |r| r.reason.as_str());
        Some(format!("{}: {reason}", spec.name))
    }
}

/// Workers for the checks that block a thread (script checks): `threads`,
/// but no more than there are such checks, since network checks need
/// none.
pub(crate) fn pool_size(config: &Config) -> usize {
    let scripts = config
        .checks
        .iter()
        .filter(|c| matches!(c.probe, Probe::Script { .. }))
        .count();
    config.general.threads.min(scripts).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_carry_their_exit_status() {
        assert_eq!(EngineError::Checks("ca_file".into()).exit(), Exit::Config);
        assert_eq!(EngineError::System("threads".into()).exit(), Exit::OsErr);
    }

    #[test]
    fn the_pool_is_sized_to_the_script_checks() {
        let mut config = Config {
            path: None,
            general: crate::model::General {
                threads: 64,
                ..Default::default()
            },
            groups: Vec::new(),
            checks: Vec::new(),
            cluster: None,
        };
        assert_eq!(pool_size(&config), 1);
        let spec = |probe| crate::model::CheckSpec {
            name: "c".into(),
            probe,
            timeout: Duration::from_secs(1),
            groups: Vec::new(),
            rise: 1,
            fall: 1,
            interval: None,
            fast_interval: None,
        };
        config.checks = (0..100)
            .map(|i| spec(Probe::tcp("127.0.0.1", 1 + i)))
            .collect();
        config.checks.extend((0..3).map(|_| {
            spec(Probe::Script {
                command: "true".into(),
            })
        }));
        assert_eq!(pool_size(&config), 3);
    }
}
