//! The engine: rounds of checks on a fixed schedule, folded into group
//! health, turned into promotions and demotions.
//!
//! It does not care how it was started: the caller builds it from a
//! [`Config`], takes a [`Handle`] to stop, reload or probe it from other
//! threads (signals, the status server), and calls [`Engine::run`] or
//! [`Engine::run_once`].
//!
//! One thread runs the loop below and owns all state; it sleeps on a
//! channel between events, so it uses no CPU between rounds. Rounds run on
//! the rayon pool of `threads` workers and actions on their own threads;
//! both report back through the channel, so a slow check never delays an
//! action and a slow action never delays a round.
//!
//! As PID 1 of a PID namespace (a container), heartbeat inherits every
//! orphaned process in it and must reap them (pid_namespaces(7)); with
//! [`Options::reap_orphans`] the loop does so after every round and after
//! every action, through [`process::reap_orphans`]. Orphans come from
//! checks and actions, so that is when they appear: a zombie lasts until
//! the next round or action ends (about one interval at most), and nothing
//! runs while heartbeat is idle.
//!
//! `reload` applies a new configuration keeping what is unchanged;
//! `publish` turns the engine's state into the [`Snapshot`] readers see.

mod publish;
mod reload;
pub mod state;

use reload::make_groups;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error, info, warn};
use rayon::prelude::*;

use crate::checks::{self, Check, CheckResult};
use crate::config::Loaded;
use crate::exec::actions::{self, ActionReport, ActionRequest};
use crate::exec::process;
use crate::model::ActionKind;
use crate::model::{CheckSpec, Config, GroupSpec};
use crate::model::{Health, group_health, overall_health, short_duration};
use crate::status::metrics::Metrics;
use crate::status::{ActionRecord, LastResult, RoundInfo, SharedStatus, Snapshot};
use state::{ActionSlot, CheckState, Occasion};

/// With `on_demand`, a probe request is answered from the latest round
/// when that round ended less than this long ago, so a burst of requests
/// cannot run rounds back to back.
pub const PROBE_MIN_AGE: Duration = Duration::from_secs(1);

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
    /// The first round has completed.
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
}

/// Messages to the engine's loop.
enum Event {
    Stop,
    Reload,
    Probe(Sender<()>),
    RoundDone(Vec<CheckResult>),
    ActionEnded {
        group: String,
        started: SystemTime,
        report: ActionReport,
    },
}

/// How a reload reads the configuration file at the given path: by
/// default [`crate::config::load`]; the caller may add what the command
/// line set (see [`Engine::set_loader`]).
pub type Loader = Box<dyn Fn(&Path) -> Result<Loaded, String> + Send>;

/// A cheap, cloneable remote control for a running engine.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<Event>,
}

impl Handle {
    /// Asks the engine to stop: no new round starts, running script checks
    /// are killed, running actions get their deadline.
    pub fn stop(&self) {
        let _ = self.tx.send(Event::Stop);
    }

    /// Asks the engine to reread its configuration file. An invalid file is
    /// logged and the running configuration kept. A changed `interval`
    /// counts from the start of the last round.
    pub fn reload(&self) {
        let _ = self.tx.send(Event::Reload);
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

/// A group at run time.
struct Group {
    spec: GroupSpec,
    /// Indices into the engine's checks.
    members: Vec<usize>,
    health: Health,
    since: Option<SystemTime>,
    slot: ActionSlot,
    /// The running action is one of the group's definition before a
    /// reload changed it: when it ends, the group starts afresh.
    superseded: bool,
    last_action: Option<ActionRecord>,
}

/// A configured engine, ready to run.
pub struct Engine {
    config: Config,
    options: Options,
    checks: Arc<Vec<Box<dyn Check>>>,
    states: Vec<CheckState>,
    last: Vec<Option<LastResult>>,
    groups: Vec<Group>,
    pool: Arc<rayon::ThreadPool>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    status: SharedStatus,
    metrics: Arc<Metrics>,
    round_started: Option<(Instant, SystemTime, Duration)>,
    last_round: Option<RoundInfo>,
    last_round_end: Option<Instant>,
    probe_waiters: Vec<Sender<()>>,
    rounds: u64,
    started: SystemTime,
    stopping: bool,
    /// Set on stop: checks of the round in flight that have not started
    /// yet are skipped.
    cancel: Arc<AtomicBool>,
    reload_pending: bool,
    /// Groups removed by a reload while their action ran, with the state
    /// it announces: a stop waits for these actions too, and a group of
    /// the same name added back meanwhile waits for its own.
    orphaned_runs: HashMap<String, Health>,
    /// Reads the file on reload; [`crate::config::load`] when `None`.
    loader: Option<Loader>,
    /// Reaping orphans has failed once and said why: not said again.
    reaping_failed: bool,
}

impl Engine {
    /// Builds the engine: checks, thread pool, status.
    ///
    /// # Errors
    /// When a check cannot be prepared (e.g. an invalid `ca_file`) or the
    /// thread pool cannot be started.
    pub fn new(config: Config, options: Options) -> Result<Engine, String> {
        let checks = checks::build(&config.checks)?;
        let pool = build_pool(config.general.threads)?;
        let (tx, rx) = mpsc::channel();
        let groups = make_groups(&config, &HashMap::new(), &mut HashMap::new());
        let n = config.checks.len();
        let metrics = Arc::new(Metrics::new());
        metrics.configure(&config);
        let engine = Engine {
            options,
            checks: Arc::new(checks),
            states: vec![CheckState::default(); n],
            last: vec![None; n],
            groups,
            pool: Arc::new(pool),
            tx,
            rx,
            status: Arc::new(RwLock::new(Snapshot::default())),
            metrics,
            round_started: None,
            last_round: None,
            last_round_end: None,
            probe_waiters: Vec::new(),
            rounds: 0,
            started: SystemTime::now(),
            stopping: false,
            cancel: Arc::new(AtomicBool::new(false)),
            reload_pending: false,
            orphaned_runs: HashMap::new(),
            loader: None,
            reaping_failed: false,
            config,
        };
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
        self.status.clone()
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets how a reload reads the configuration file, so that settings
    /// the command line gave over the file's survive a reload.
    pub fn set_loader(&mut self, loader: Loader) {
        self.loader = Some(loader);
    }

    /// Runs rounds until stopped, reporting its life to `notify`. On stop,
    /// running script checks are killed and running actions are waited for
    /// (each within its `action_timeout`).
    pub fn run(mut self, notify: &dyn Fn(Lifecycle)) -> Stopped {
        let mut next_due = Instant::now();
        // Start of the last scheduled round: a reload that changes the
        // interval reschedules the next round from it.
        let mut last_start = next_due;
        let mut outcome = Stopped::Requested;
        loop {
            if self.stopping && !self.actions_running() {
                // A script check that was starting just as the stop came
                // may have been spawned after the first abort.
                checks::abort_running();
                return outcome;
            }
            let now = Instant::now();
            if !self.stopping && self.round_started.is_none() && now >= next_due {
                let lateness = now.saturating_duration_since(next_due);
                self.start_round(lateness);
                last_start = now;
                next_due = now + self.config.general.interval;
            }
            let event = if self.round_started.is_some() || self.stopping {
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.rx
                    .recv_timeout(next_due.saturating_duration_since(Instant::now()))
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return outcome,
            };
            match event {
                Event::Stop => {
                    if !self.stopping {
                        info!("stopping");
                        notify(Lifecycle::Stopping);
                        self.begin_stop();
                    }
                }
                Event::Reload => {
                    if self.round_started.is_some() {
                        self.reload_pending = true;
                    } else {
                        self.reload(notify);
                        next_due = last_start + self.config.general.interval;
                    }
                }
                Event::Probe(reply) => self.probe(reply),
                Event::RoundDone(results) => {
                    let first = self.rounds == 0;
                    if self.stopping {
                        // Its script checks were just killed: their results
                        // say nothing about the targets.
                        self.round_started = None;
                        continue;
                    }
                    self.finish_round(results);
                    if first {
                        notify(Lifecycle::Ready);
                    }
                    if self.config.general.exit_on_failure {
                        if let Some(reason) = self.first_failure() {
                            error!("exit_on_failure: {reason}");
                            outcome = Stopped::CheckFailed(reason);
                            notify(Lifecycle::Stopping);
                            self.begin_stop();
                        }
                    }
                    if self.reload_pending && !self.stopping {
                        self.reload_pending = false;
                        self.reload(notify);
                        next_due = last_start + self.config.general.interval;
                    }
                }
                Event::ActionEnded {
                    group,
                    started,
                    report,
                } => self.action_ended(&group, started, report),
            }
        }
    }

    /// Runs one round, applies its actions and waits for them; returns the
    /// overall health: healthy iff every group that a check feeds is.
    pub fn run_once(mut self) -> Health {
        self.start_round(Duration::ZERO);
        loop {
            match self.rx.recv() {
                Ok(Event::RoundDone(results)) => self.finish_round(results),
                Ok(Event::ActionEnded {
                    group,
                    started,
                    report,
                }) => self.action_ended(&group, started, report),
                Ok(Event::Stop) => self.begin_stop(),
                Ok(Event::Probe(reply)) => self.probe_waiters.push(reply),
                Ok(Event::Reload) => {}
                Err(_) => break,
            }
            if self.round_started.is_none() && !self.actions_running() {
                break;
            }
        }
        overall_health(
            self.groups
                .iter()
                .map(|g| (g.health, !g.members.is_empty())),
        )
    }

    fn actions_running(&self) -> bool {
        self.groups.iter().any(|g| g.slot.running.is_some()) || !self.orphaned_runs.is_empty()
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        // The rest of the round in flight is not started, and what runs of
        // it is killed: nothing may outlive heartbeat.
        self.cancel.store(true, Ordering::SeqCst);
        checks::abort_running();
        let running = self
            .groups
            .iter()
            .filter(|g| g.slot.running.is_some())
            .map(|g| &g.spec.name)
            .chain(self.orphaned_runs.keys());
        for name in running {
            info!(
                "waiting for the running action of group {name:?} (at most {})",
                short_duration(self.config.general.action_timeout)
            );
        }
    }

    /// Starts a round on the pool; its results come back as an event.
    fn start_round(&mut self, lateness: Duration) {
        let checks = self.checks.clone();
        let tx = self.tx.clone();
        let cancel = self.cancel.clone();
        self.round_started = Some((Instant::now(), SystemTime::now(), lateness));
        if lateness > Duration::from_millis(100) {
            debug!("round starts {} late", short_duration(lateness));
        }
        self.pool.spawn(move || {
            let results = checks
                .par_iter()
                .map(|check| {
                    if cancel.load(Ordering::SeqCst) {
                        CheckResult::fail("not run: stopping", Duration::ZERO)
                    } else {
                        check.run()
                    }
                })
                .collect();
            let _ = tx.send(Event::RoundDone(results));
        });
        if let Ok(mut status) = self.status.write() {
            status.round_started = self.round_started.map(|(_, wall, _)| wall);
        }
    }

    /// Folds a round's results into check and group health, starts the
    /// actions that are due, and publishes the new status.
    fn finish_round(&mut self, results: Vec<CheckResult>) {
        let (started_at, started_wall, lateness) = self.round_started.take().unwrap_or((
            Instant::now(),
            SystemTime::now(),
            Duration::ZERO,
        ));
        let now = SystemTime::now();
        for (i, result) in results.into_iter().enumerate() {
            self.observe(i, result, now);
        }
        for g in 0..self.groups.len() {
            self.update_group(g, now);
        }
        for g in 0..self.groups.len() {
            self.start_action_if_due(g, Occasion::Round);
        }
        let duration = started_at.elapsed();
        self.metrics.round(duration, lateness);
        self.rounds += 1;
        self.last_round_end = Some(Instant::now());
        self.last_round = Some(RoundInfo {
            started: started_wall,
            duration,
            lateness,
        });
        self.publish();
        for waiter in self.probe_waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.reap_orphans();
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
            Err(e) if !self.reaping_failed => {
                self.reaping_failed = true;
                warn!("cannot reap orphaned processes, they stay zombies: {e}");
            }
            Err(_) => {}
        }
    }

    fn observe(&mut self, i: usize, result: CheckResult, now: SystemTime) {
        let spec = &self.config.checks[i];
        let state = &mut self.states[i];
        let transition = state.observe(result.healthy, spec.rise, spec.fall);
        self.metrics.check_result(
            &spec.name,
            spec.probe.kind(),
            result.healthy,
            result.latency,
        );
        self.metrics.check_health(&spec.name, state.health);
        log_result(spec, state, transition, &result, self.config.general.redact);
        self.last[i] = Some(LastResult {
            healthy: result.healthy,
            reason: result.reason,
            latency: result.latency,
            at: now,
        });
    }

    fn update_group(&mut self, g: usize, now: SystemTime) {
        let health = group_health(
            self.groups[g]
                .members
                .iter()
                .map(|&i| self.states[i].health),
        );
        let failed = self.failed_checks(g);
        let group = &mut self.groups[g];
        self.metrics.group_health(&group.spec.name, health);
        if health == group.health {
            return;
        }
        let from = std::mem::replace(&mut group.health, health);
        group.since = Some(now);
        self.metrics.transition(&group.spec.name, from, health);
        if health == Health::Unhealthy {
            warn!(
                "group {:?} is unhealthy (was {from}); failing: {}",
                group.spec.name,
                failed.join(", ")
            );
        } else {
            info!("group {:?} is {health} (was {from})", group.spec.name);
        }
    }

    fn failed_checks(&self, g: usize) -> Vec<String> {
        self.groups[g]
            .members
            .iter()
            .filter(|&&i| self.states[i].health == Health::Unhealthy)
            .map(|&i| self.config.checks[i].name.clone())
            .collect()
    }

    /// Starts the group's action when its slot says one is due.
    fn start_action_if_due(&mut self, g: usize, occasion: Occasion) {
        if self.stopping {
            return;
        }
        let health = self.groups[g].health;
        let Some(target) = self.groups[g].slot.next(health, occasion) else {
            return;
        };
        let failed_checks = self.failed_checks(g);
        let group = &mut self.groups[g];
        let kind = ActionKind::announcing(target);
        let command = group.spec.command(kind).to_owned();
        let request = ActionRequest {
            group: group.spec.name.clone(),
            kind,
            command,
            previous: group.slot.announced,
            failed_checks,
            timeout: self.config.general.action_timeout,
            dry_run: self.options.dry_run,
            redact: self.config.general.redact,
        };
        let tx = self.tx.clone();
        let name = group.spec.name.clone();
        let started = SystemTime::now();
        let spawned = actions::spawn(request, move |report| {
            let _ = tx.send(Event::ActionEnded {
                group: name,
                started,
                report,
            });
        });
        if let Err(e) = spawned {
            error!(
                "cannot start the {} of group {:?}: {e}",
                kind, group.spec.name
            );
            group.slot.finished(false);
        }
        self.publish_group(g);
    }

    fn action_ended(&mut self, name: &str, started: SystemTime, report: ActionReport) {
        let Some(g) = self.groups.iter().position(|g| g.spec.name == name) else {
            // Removed by a reload while it ran.
            self.orphaned_runs.remove(name);
            return;
        };
        self.metrics
            .action(name, report.kind, &report.exit, report.duration);
        let group = &mut self.groups[g];
        if std::mem::take(&mut group.superseded) {
            // An action of the definition before a reload: it tells
            // nothing about the new one, which now runs its own.
            group.slot.running = None;
        } else {
            group.slot.finished(report.exit.success());
        }
        group.last_action = Some(ActionRecord {
            kind: report.kind,
            started,
            duration: report.duration,
            exit: report.exit,
        });
        self.start_action_if_due(g, Occasion::ActionEnded);
        self.publish_group(g);
        self.reap_orphans();
    }

    fn probe(&mut self, reply: Sender<()>) {
        let fresh = self
            .last_round_end
            .is_some_and(|end| end.elapsed() < PROBE_MIN_AGE);
        if fresh || self.stopping {
            let _ = reply.send(());
            return;
        }
        self.probe_waiters.push(reply);
        if self.round_started.is_none() {
            self.start_round(Duration::ZERO);
        }
    }

    /// `check: reason` of the first check that is unhealthy after `fall`
    /// consecutive failures, if any: what trips `exit_on_failure`. A first
    /// result decides a check's health at once, but a sidecar started with
    /// `--retries 3` exits after three failed probes, not one.
    fn first_failure(&self) -> Option<String> {
        let i = self
            .states
            .iter()
            .zip(&self.config.checks)
            .position(|(s, spec)| s.health == Health::Unhealthy && s.failures >= spec.fall)?;
        let reason = self.last[i]
            .as_ref()
            .map_or("no result", |r| r.reason.as_str());
        Some(format!("{}: {reason}", self.config.checks[i].name))
    }
}

/// Logs one check result so that the log says why before a transition
/// happens, without repeating itself during a long outage:
/// - a transition: one line, WARNING to unhealthy, INFO to healthy;
/// - a failure counting towards `fall`: WARNING, with the count;
/// - a success counting towards `rise`: INFO, with the count;
/// - a result that confirms the current state: DEBUG.
fn log_result(
    spec: &CheckSpec,
    state: &CheckState,
    transition: Option<crate::model::Transition>,
    result: &CheckResult,
    redact: bool,
) {
    let what = describe(spec, redact);
    let reason = &result.reason;
    match transition {
        Some((Health::Unknown, Health::Unhealthy)) => warn!("check {what} is unhealthy: {reason}"),
        Some((Health::Unknown, to)) => info!("check {what} is {to}: {reason}"),
        Some((_, Health::Unhealthy)) => warn!(
            "check {what} is unhealthy after {}: {reason}",
            run_of(state.failures, "failure", "failures")
        ),
        Some((_, to)) => info!(
            "check {what} is {to} again after {}: {reason}",
            run_of(state.successes, "success", "successes")
        ),
        None if !result.healthy && state.health == Health::Healthy => warn!(
            "check {what} failed ({} of {} before unhealthy): {reason}",
            state.failures, spec.fall
        ),
        None if result.healthy && state.health == Health::Unhealthy => info!(
            "check {what} passed ({} of {} before healthy): {reason}",
            state.successes, spec.rise
        ),
        None if result.healthy => debug!("check {what} passed: {reason}"),
        None => debug!("check {what} still failing: {reason}"),
    }
}

/// `1 failure`, `3 consecutive failures`.
fn run_of(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} consecutive {many}")
    }
}

/// `"name" (type endpoint)`, how logs name a check; secrets left out
/// unless `redact` is false (see [`crate::model::Probe::endpoint_as`]).
fn describe(spec: &CheckSpec, redact: bool) -> String {
    format!(
        "{:?} ({} {})",
        spec.name,
        spec.probe.kind(),
        spec.probe.endpoint_as(redact)
    )
}

fn build_pool(threads: usize) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("check-{i}"))
        .build()
        .map_err(|e| format!("cannot start {threads} check threads: {e}"))
}
