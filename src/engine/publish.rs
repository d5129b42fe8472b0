//! Publishing what the engine knows as a [`Snapshot`] for readers (the
//! status server, `--once`): the whole of it after every round and reload,
//! one check and its groups after a result that came after its round, one
//! group after each of its actions.

use std::time::SystemTime;

use super::Engine;
use crate::model::{ActionKind, Role};
use crate::status::{CheckStatus, ClusterView, GroupStatus, Snapshot};

impl Engine {
    /// Publishes a fresh copy of one group's status: after its action starts
    /// or ends, without copying every check.
    pub(super) fn publish_group(&self, g: usize) {
        if let Ok(mut status) = self.shared.status.write() {
            if let Some(slot) = status.groups.get_mut(g) {
                *slot = self.group_status(g);
            }
        }
    }

    /// Publishes a fresh copy of one check's status.
    pub(super) fn publish_check(&self, i: usize) {
        if let Ok(mut status) = self.shared.status.write() {
            if let Some(slot) = status.checks.get_mut(i) {
                *slot = self.check_status(i);
            }
        }
    }

    /// Publishes when the round in progress started (`None`: none is).
    pub(super) fn publish_round_started(&self, started: Option<SystemTime>) {
        if let Ok(mut status) = self.shared.status.write() {
            status.round_started = started;
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
            hold: group.slot.hold.zip(group.hold_since),
            cluster: group.exclusive.as_ref().map(|x| ClusterView {
                role: x.role.unwrap_or(Role::Unknown),
                leader: x.leader.clone(),
                node: self
                    .config
                    .cluster
                    .as_ref()
                    .map(|c| c.node.clone())
                    .unwrap_or_default(),
                since: x.since,
            }),
        }
    }

    fn check_status(&self, i: usize) -> CheckStatus {
        let (spec, slot) = (&self.config.checks[i], &self.table.slots[i]);
        CheckStatus {
            name: spec.name.clone(),
            kind: spec.probe.kind(),
            endpoint: spec.probe.endpoint_as(self.config.general.redact),
            health: slot.state.health,
            successes: slot.state.successes,
            failures: slot.state.failures,
            last: slot.last.clone(),
            running_since: slot.flight.map(|f| f.started),
        }
    }

    /// Publishes a fresh snapshot for readers: after every round and reload.
    pub(super) fn publish(&self) {
        let snapshot = Snapshot {
            started: Some(self.shared.started),
            interval: self.config.general.interval,
            rounds: self.rounds.completed,
            last_round: self.rounds.last.clone(),
            round_started: self.rounds.open.as_ref().map(|r| r.started_wall),
            groups: (0..self.groups.len())
                .map(|g| self.group_status(g))
                .collect(),
            checks: (0..self.table.slots.len())
                .map(|i| self.check_status(i))
                .collect(),
        };
        if let Ok(mut status) = self.shared.status.write() {
            *status = snapshot;
        }
    }
}
