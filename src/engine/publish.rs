//! Publishing what the engine knows as a [`Snapshot`] for readers (the
//! status server, `--once`): the whole of it after every round and reload,
//! one group after each of its actions.

use super::Engine;
use crate::model::ActionKind;
use crate::status::{CheckStatus, GroupStatus, Snapshot};

impl Engine {
    /// Publishes a fresh copy of one group's status: after its action starts
    /// or ends, without copying every check.
    pub(super) fn publish_group(&self, g: usize) {
        if let Ok(mut status) = self.status.write() {
            if let Some(slot) = status.groups.get_mut(g) {
                *slot = self.group_status(g);
            }
        }
    }

    fn group_status(&self, g: usize) -> GroupStatus {
        let group = &self.groups[g];
        GroupStatus {
            name: group.spec.name.clone(),
            health: group.health,
            since: group.since,
            checks: group
                .members
                .iter()
                .map(|&i| self.config.checks[i].name.clone())
                .collect(),
            running: group.slot.running.map(ActionKind::announcing),
            last_action: group.last_action.clone(),
        }
    }

    /// Publishes a fresh snapshot for readers: after every round and reload.
    pub(super) fn publish(&self) {
        let snapshot = Snapshot {
            started: Some(self.started),
            interval: self.config.general.interval,
            rounds: self.rounds,
            last_round: self.last_round.clone(),
            round_started: self.round_started.map(|(_, wall, _)| wall),
            groups: (0..self.groups.len())
                .map(|g| self.group_status(g))
                .collect(),
            checks: self
                .config
                .checks
                .iter()
                .zip(&self.states)
                .zip(&self.last)
                .map(|((spec, state), last)| CheckStatus {
                    name: spec.name.clone(),
                    kind: spec.probe.kind(),
                    endpoint: spec.probe.endpoint_as(self.config.general.redact),
                    health: state.health,
                    successes: state.successes,
                    failures: state.failures,
                    last: last.clone(),
                })
                .collect(),
        };
        if let Ok(mut status) = self.status.write() {
            *status = snapshot;
        }
    }
}
