//! The engine: rounds of checks on a fixed schedule, folded into group
//! health, turned into promotions and demotions.
//!
//! It does not care how it was started: the caller builds it from a
//! [`Config`], takes a [`Handle`] to stop, reload or probe it from other
//! threads (signals, the status server), and calls [`Engine::run`] or
//! [`Engine::run_once`].

use std::sync::Arc;
use std::sync::mpsc::Sender;

use crate::metrics::Metrics;
use crate::model::Config;
use crate::state::Health;
use crate::status::SharedStatus;

/// How the engine runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Log promotions and demotions instead of running them.
    pub dry_run: bool,
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
    /// `exit_on_failure` is set and a check turned unhealthy: `check: reason`.
    CheckFailed(String),
}

/// Messages to the engine's loop.
#[derive(Debug)]
pub(crate) enum Event {
    Stop,
    Reload,
}

/// A cheap, cloneable remote control for a running engine.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: Sender<Event>,
}

impl Handle {
    /// Asks the engine to stop: no new round starts; running actions get
    /// their deadline.
    pub fn stop(&self) {
        let _ = self.tx.send(Event::Stop);
    }

    /// Asks the engine to reread its configuration file.
    pub fn reload(&self) {
        let _ = self.tx.send(Event::Reload);
    }
}

/// A configured engine, ready to run.
pub struct Engine {
    status: SharedStatus,
    metrics: Arc<Metrics>,
}

impl Engine {
    /// Builds the engine: checks, thread pool, status.
    ///
    /// # Errors
    /// When a check cannot be prepared (e.g. an unreadable `ca_file`) or
    /// the thread pool cannot be started.
    pub fn new(config: Config, options: Options) -> Result<Engine, String> {
        let _ = (config, options);
        todo!()
    }

    /// A remote control for this engine.
    pub fn handle(&self) -> Handle {
        todo!()
    }

    /// The snapshot the engine publishes after every round and action.
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs rounds until stopped, reporting its life to `notify`.
    pub fn run(self, notify: &dyn Fn(Lifecycle)) -> Stopped {
        let _ = notify;
        todo!()
    }

    /// Runs one round, applies its actions and waits for them; returns the
    /// overall health (healthy iff every group is).
    pub fn run_once(self) -> Health {
        todo!()
    }
}
