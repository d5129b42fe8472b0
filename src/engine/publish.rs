//! Publishing what the engine knows as a [`Snapshot`](crate::status::Snapshot) for readers (the
//! status server, `--once`): the whole of it after every round and reload,
//! one check and its groups after a result that came after its round, one
//! group after each of its actions.

use std::time::SystemTime;

use super::Engine;
use crate::model::{ActionKind, Role};
use crate::status::{CheckStatus, ClusterView, GroupStatus};

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
            cluster: self.cluster_view(g),
        }
    }

    /// An exclusive group's role, leader and node; `None` for the others.
    fn cluster_view(&self, g: usize) -> Option<ClusterView> {
        self.groups[g].exclusive.as_ref().map(|x| ClusterView {
            role: x.role.unwrap_or(Role::Unknown),
            leader: x.leader.clone(),
            node: self
                .config
                .cluster
                .as_ref()
                .map(|c| c.node.clone())
                .unwrap_or_default(),
            since: x.since,
        })
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
    ///
    /// The published lists are brought up to date in place: a name, a
    /// reason or a group's list of checks that did not grow reuses the
    /// strings already published, so a round of 10,000 checks allocates
    /// nearly nothing here and never holds two copies of the snapshot
    /// (it did: 3.2 MB at its peak, and about 30,000 strings a round). The
    /// endpoint of a check is rewritten only when its name or probe type
    /// changed, or after a reload. The lists are sized exactly when they
    /// grow: grown by doubling, the first snapshot of 10,000 checks held
    /// room for 16,384 (1 MB unused).
    pub(super) fn publish(&self) {
        let Ok(mut status) = self.shared.status.write() else {
            return;
        };
        let status = &mut *status;
        status.started = Some(self.shared.started);
        status.interval = self.config.general.interval;
        status.rounds = self.rounds.completed;
        status.last_round.clone_from(&self.rounds.last);
        status.round_started = self.rounds.open.as_ref().map(|r| r.started_wall);
        update_in_place(
            &mut status.groups,
            self.groups.len(),
            |g, out| self.refresh_group_status(g, out),
            |g| self.group_status(g),
        );
        update_in_place(
            &mut status.checks,
            self.table.slots.len(),
            |i, out| self.refresh_check_status(i, out),
            |i| self.check_status(i),
        );
    }

    /// Publishes after a reload: every endpoint is written afresh (the
    /// `redact` setting or a probe may have changed under the same name).
    pub(super) fn publish_reconfigured(&self) {
        if let Ok(mut status) = self.shared.status.write() {
            status.checks.clear();
        }
        self.publish();
    }

    /// [`Engine::group_status`] written over `out`, reusing its strings.
    fn refresh_group_status(&self, g: usize, out: &mut GroupStatus) {
        let group = &self.groups[g];
        out.name.clone_from(&group.spec.name);
        out.health = group.health;
        out.since = group.since;
        out.checks.truncate(group.members.len());
        for (k, &i) in group.members.iter().enumerate() {
            let name = &self.config.checks[i].name;
            match out.checks.get_mut(k) {
                Some(slot) => slot.clone_from(name),
                None => out.checks.push(name.clone()),
            }
        }
        out.running = group.slot.running.map(ActionKind::announcing);
        out.last_action.clone_from(&group.last_action);
        out.hold = group.slot.hold.zip(group.hold_since);
        out.cluster = self.cluster_view(g);
    }

    /// [`Engine::check_status`] written over `out`, reusing its strings.
    fn refresh_check_status(&self, i: usize, out: &mut CheckStatus) {
        let (spec, slot) = (&self.config.checks[i], &self.table.slots[i]);
        let kind = spec.probe.kind();
        if out.name != spec.name || out.kind != kind {
            out.name.clone_from(&spec.name);
            out.kind = kind;
            out.endpoint = spec.probe.endpoint_as(self.config.general.redact);
        }
        out.health = slot.state.health;
        out.successes = slot.state.successes;
        out.failures = slot.state.failures;
        match (&mut out.last, &slot.last) {
            (Some(to), Some(from)) => {
                to.healthy = from.healthy;
                to.reason.clone_from(&from.reason);
                to.latency = from.latency;
                to.at = from.at;
                to.certificate_expiry = from.certificate_expiry;
            }
            (to, from) => to.clone_from(from),
        }
        out.running_since = slot.flight.map(|f| f.started);
    }
}

/// Makes `list` `len` entries long: entry `i` of those already there is
/// brought up to date by `refresh(i, entry)`, the rest are made by
/// `make(i)`. Room is reserved exactly, not by doubling.
fn update_in_place<T>(
    list: &mut Vec<T>,
    len: usize,
    mut refresh: impl FnMut(usize, &mut T),
    mut make: impl FnMut(usize) -> T,
) {
    list.truncate(len);
    list.reserve_exact(len - list.len());
    for (i, entry) in list.iter_mut().enumerate() {
        refresh(i, entry);
    }
    for i in list.len()..len {
        list.push(make(i));
    }
}
