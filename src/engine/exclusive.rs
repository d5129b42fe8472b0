//! Exclusive groups (`[cluster] groups`): the cluster's say in what a
//! group announces.
//!
//! An exclusive group's [`Role`] comes from its health here, its hold and
//! what the cluster last reported ([`Standing`]): unhealthy here, it is
//! `unhealthy`; healthy, it is `active` when this node is elected,
//! `standby` when another node (or none yet) leads or the group is in
//! maintenance, `no quorum` when etcd cannot be reached or the lease was
//! lost. The slot then acts on the group's *acting health*
//! ([`Engine::acting_health`]): healthy only while the group is active
//! and the lease leaves a promotion time to end
//! ([`crate::cluster::Cluster::may_promote`]), unhealthy in every other
//! known role; so the elected node promotes and every other node demotes,
//! with `HEARTBEAT_STATE=standby` when the group is healthy here.
//!
//! The engine tells the cluster, after every change, whether the group may
//! campaign (healthy, not in maintenance, not a dry run, not stopping) and
//! whether its promotion is in effect ([`Stance`]): the cluster revokes
//! the group's lease only once it is not, so the next node is elected only
//! after this one's demotion has ended.
//!
//! A demotion the store forces (this node no longer leads, or stops) is not
//! held by a pause: while paused the group keeps its lease as long as it
//! can, but a node that has lost it must not stay promoted. Stopping, the
//! engine first demotes every exclusive group whose promotion is in
//! effect, then the cluster revokes its leases. Without a cluster (`--once`)
//! exclusive groups are not acted on.

use std::sync::Arc;
use std::time::SystemTime;

use log::{info, warn};

use super::groups::Group;
use super::state::Occasion;
use super::{Engine, Event};
use crate::cluster::{Cluster, Notify, Report, Stance, Standing, Why};
use crate::model::{ActionKind, ActionReason, Health, Hold, Role, short_duration};

/// What the engine knows of an exclusive group's election.
#[derive(Debug, Clone, Default)]
pub(super) struct Exclusive {
    /// What the cluster last reported; `None` before its first report.
    pub standing: Option<Standing>,
    /// The leading node, as the cluster last said.
    pub leader: Option<String>,
    /// Why the cluster's last report came, and its detail, until the role
    /// change it explains is logged.
    pub why: Option<(Why, String)>,
    /// The role last logged and published.
    pub role: Option<Role>,
    /// Since when the group has had that role.
    pub since: Option<SystemTime>,
    /// The leader last logged.
    pub logged_leader: Option<String>,
}

impl Group {
    /// Whether the group's promotion may be in effect here: an action of
    /// it runs (a promotion, or a demotion that has not ended yet), its
    /// last action is a promotion, whatever its outcome (a failed
    /// promotion may have done part of its work), or nothing ran yet since
    /// the outside world was told healthy (before a restart, by the state
    /// file). A demotion counts as done once it has ended, failed or not:
    /// its hook had its `action_timeout`.
    pub(super) fn promoted(&self) -> bool {
        match (self.slot.running, self.slot.last) {
            (Some(_), _) => true,
            (None, Some((state, _))) => state == Health::Healthy,
            (None, None) => self.slot.announced == Health::Healthy,
        }
    }
}

impl Engine {
    /// The role of exclusive group `g` now.
    pub(super) fn role(&self, g: usize) -> Role {
        let group = &self.groups[g];
        let Some(x) = &group.exclusive else {
            return Role::Unknown;
        };
        match group.health {
            Health::Unknown => return Role::Unknown,
            Health::Unhealthy => return Role::Unhealthy,
            Health::Healthy => {}
        }
        match x.standing {
            None => Role::Unknown,
            Some(Standing::Unreachable) => Role::NoQuorum,
            Some(_) if group.slot.hold == Some(Hold::Maintenance) || self.life.stopping => {
                Role::Standby
            }
            Some(Standing::Elected) => Role::Active,
            Some(Standing::Follower) => Role::Standby,
        }
    }

    /// The health group `g`'s slot acts on: its own, or for an exclusive
    /// group healthy only while this node may promote it, unhealthy once
    /// its role is known and is not active, unknown otherwise (nothing
    /// runs). Stopping, an exclusive group whose promotion is in effect
    /// acts as unhealthy, and any other as unknown.
    pub(super) fn acting_health(&self, g: usize) -> Health {
        let group = &self.groups[g];
        if group.exclusive.is_none() {
            return group.health;
        }
        let Some(cluster) = &self.cluster else {
            return Health::Unknown;
        };
        if self.life.stopping {
            return if group.promoted() {
                Health::Unhealthy
            } else {
                Health::Unknown
            };
        }
        match self.role(g) {
            Role::Unknown => Health::Unknown,
            // No node leads yet and this one campaigns: the election is
            // about to end, and the standby's demotion waits for it, so as
            // to name the leader.
            Role::Standby
                if group.exclusive.as_ref().is_some_and(|x| x.leader.is_none())
                    && group.slot.hold.is_none()
                    && !group.promoted() =>
            {
                Health::Unknown
            }
            Role::Active if cluster.may_promote(&group.spec.name) => Health::Healthy,
            // Elected, but the lease is too old to start a promotion now:
            // the next renewal or round decides.
            Role::Active => Health::Unknown,
            Role::Standby | Role::Unhealthy | Role::NoQuorum => Health::Unhealthy,
        }
    }

    /// Whether a demotion of group `g` must run even though the group is
    /// paused: its promotion is in effect, and this node no longer leads it
    /// (the store says so, or heartbeat stops).
    pub(super) fn demotion_overrides_pause(&self, g: usize) -> bool {
        let group = &self.groups[g];
        group.exclusive.is_some()
            && group.slot.hold == Some(Hold::Paused)
            && group.promoted()
            && self.cluster.is_some()
            && (self.life.stopping || matches!(self.role(g), Role::Standby | Role::NoQuorum))
    }

    /// A report of the cluster: what etcd now says of this node for one
    /// group.
    pub(super) fn cluster_report(&mut self, report: Report) {
        let Some(g) = self.groups.iter().position(|g| g.spec.name == report.group) else {
            return;
        };
        let Some(x) = self.groups[g].exclusive.as_mut() else {
            return;
        };
        x.standing = Some(report.standing);
        x.leader = report.leader;
        if report.why == Why::Resigned {
            info!(
                "group {:?} resigned: its lease is revoked, another healthy node may be elected",
                report.group
            );
        }
        x.why = Some((report.why, report.detail));
        self.start_action_if_due(g, Occasion::Round);
        self.publish_group(g);
    }

    /// Logs a change of group `g`'s role, with its reason, and tells the
    /// cluster the group's stance. Called whenever the group may have
    /// changed: before and after an action starts, after a report.
    pub(super) fn sync_exclusive(&mut self, g: usize) {
        if self.groups[g].exclusive.is_none() {
            return;
        }
        let role = self.role(g);
        let stance = Stance {
            campaign: self.groups[g].health == Health::Healthy
                && self.groups[g].slot.hold != Some(Hold::Maintenance)
                && !self.options.dry_run
                && !self.life.stopping,
            promoted: self.groups[g].promoted(),
        };
        let group = &mut self.groups[g];
        let name = group.spec.name.clone();
        let x = group.exclusive.as_mut().expect("exclusive");
        let was = x.role.replace(role).unwrap_or(Role::Unknown);
        if was != role {
            // The reason stays until the change it explains (a report can
            // come before the checks have said anything).
            let why = x.why.take();
            x.since = Some(SystemTime::now());
            log_role(&name, was, role, x.leader.as_deref(), why);
        } else if role == Role::Standby && x.logged_leader != x.leader {
            info!(
                "group {name:?}: {} leads (was {})",
                x.leader.as_deref().unwrap_or("no node"),
                x.logged_leader.as_deref().unwrap_or("no node")
            );
        }
        x.logged_leader.clone_from(&x.leader);
        if let Some(cluster) = &self.cluster {
            cluster.set_stance(&name, stance);
        }
        let leader = self.groups[g]
            .exclusive
            .as_ref()
            .and_then(|x| x.leader.clone());
        self.shared
            .metrics
            .cluster_role(&name, role, leader.as_deref());
    }
}

impl Engine {
    /// Starts the elections of `[cluster]`, if there is one; its thread is
    /// watched like the status server's.
    pub(super) fn start_cluster(&mut self) -> Result<(), String> {
        let Some(spec) = self.config.cluster.clone() else {
            return Ok(());
        };
        let tx = self.tx.clone();
        let notify: Notify = Arc::new(move |report| {
            let _ = tx.send(Event::Cluster(report));
        });
        let cluster = Cluster::start(&spec, self.config.general.action_timeout, notify)?;
        self.watch("cluster thread", cluster.watchdog());
        info!(
            "cluster: node {}, lease {}, exclusive groups {}; etcd {}",
            spec.node,
            short_duration(spec.lease),
            spec.groups.join(", "),
            spec.endpoints
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if self.options.dry_run {
            info!("dry run: exclusive groups do not campaign; their roles are shown as standby");
        }
        self.cluster = Some(cluster);
        Ok(())
    }

    /// Stopping: starts the demotion of every exclusive group whose
    /// promotion is in effect (one whose promotion runs demotes when it
    /// ends); the leases are revoked once the actions have ended.
    pub(super) fn demote_exclusive_groups(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].exclusive.is_some() && self.groups[g].promoted() {
                info!(
                    "stopping: demoting group {:?} before its lease is revoked",
                    self.groups[g].spec.name
                );
                self.start_action_if_due(g, Occasion::Command);
            }
        }
    }

    /// After the loop panicked, once the running actions have ended: runs
    /// here and now the demotion of every exclusive group whose promotion
    /// is in effect, before the leases are revoked.
    pub(super) fn demote_after_panic(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].exclusive.is_none() || !self.groups[g].promoted() {
                continue;
            }
            let request = self.request(g, ActionKind::Demotion, 1, ActionReason::Health);
            let report = crate::exec::actions::run(&request);
            let group = &mut self.groups[g];
            group.slot.running = Some(Health::Unhealthy);
            group.slot.finished(report.exit.success(), group.backoff);
        }
    }
}

/// Logs a role change: INFO, or WARNING when this node stops being active
/// or loses the store.
fn log_role(group: &str, was: Role, role: Role, leader: Option<&str>, why: Option<(Why, String)>) {
    let reason = match (&why, role) {
        (Some((why, detail)), _) if !detail.is_empty() => format!("{why}: {detail}"),
        (Some((why, _)), _) => why.to_string(),
        (None, Role::Unhealthy) => "its checks fail".to_owned(),
        (None, Role::Standby) => "held or stopping".to_owned(),
        (None, _) => "its checks pass".to_owned(),
    };
    let leader = match (role, leader) {
        (Role::Active, _) => String::new(),
        (_, Some(leader)) => format!("; {leader} leads"),
        (_, None) => "; no leader known".to_owned(),
    };
    let line = format!("group {group:?} is {role} (was {was}): {reason}{leader}");
    if was == Role::Active || role == Role::NoQuorum {
        warn!("{line}");
    } else {
        info!("{line}");
    }
}
