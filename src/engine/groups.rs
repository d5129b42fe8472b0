//! Action groups at run time: their health from their checks' states, and
//! the promotions and demotions that follow, one at a time per group.

use std::sync::mpsc::Sender;
use std::time::SystemTime;

use log::{error, info, warn};

use super::exclusive::Exclusive;
use super::state::{ActionSlot, Backoff, Ended, Occasion};
use super::{Engine, Event};
use crate::exec::actions::{self, ActionReport, ActionRequest, Leadership};
use crate::model::{
    ActionKind, ActionReason, EXCLUSIVE_KILL_GRACE, GroupSpec, Health, Hold, group_health,
    short_duration,
};
use crate::status::ActionRecord;

/// A group at run time.
pub(super) struct Group {
    pub spec: GroupSpec,
    /// Indices into the engine's checks.
    pub members: Vec<usize>,
    pub health: Health,
    pub since: Option<SystemTime>,
    pub slot: ActionSlot,
    /// How long a failed action of the group waits before its next
    /// attempt: the group's round (its checks' shortest interval), then
    /// doubling.
    pub backoff: Backoff,
    /// The running action is one of the group's definition before a
    /// reload changed it: when it ends, the group starts afresh.
    pub superseded: bool,
    /// When the running action started, if one runs.
    pub running_since: Option<SystemTime>,
    pub last_action: Option<ActionRecord>,
    /// When the operator's hold (`slot.hold`) began.
    pub hold_since: Option<SystemTime>,
    /// When the state in `slot.announced` was announced.
    pub announced_at: Option<SystemTime>,
    /// For a group exclusive across the cluster: what is known of its
    /// election.
    pub exclusive: Option<Exclusive>,
}

impl Engine {
    /// Evaluates every group from its checks' latest states and starts the
    /// actions that are due.
    pub(super) fn evaluate_groups(&mut self, occasion: Occasion) {
        let now = SystemTime::now();
        for g in 0..self.groups.len() {
            self.update_group(g, now);
        }
        for g in 0..self.groups.len() {
            self.start_action_if_due(g, occasion);
        }
    }

    /// Evaluates only the groups `check` feeds: after a result that came
    /// in after its round had ended.
    pub(super) fn evaluate_groups_of(&mut self, check: usize) {
        let now = SystemTime::now();
        for g in self.table.slots[check].groups.clone() {
            self.update_group(g, now);
            self.start_action_if_due(g, Occasion::Round);
            self.publish_group(g);
        }
    }

    pub(super) fn update_group(&mut self, g: usize, now: SystemTime) {
        let slots = &self.table.slots;
        let health = group_health(
            self.groups[g]
                .members
                .iter()
                .map(|&i| slots[i].state.health),
        );
        let failed = self.failed_checks(g);
        let group = &mut self.groups[g];
        self.shared.metrics.group_health(&group.spec.name, health);
        if health == group.health {
            return;
        }
        let from = std::mem::replace(&mut group.health, health);
        group.since = Some(now);
        self.shared
            .metrics
            .transition(&group.spec.name, from, health);
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
            .filter(|&&i| self.table.slots[i].state.health == Health::Unhealthy)
            .map(|&i| self.config.checks[i].name.clone())
            .collect()
    }

    /// Starts the group's action when its slot says one is due. Stopping,
    /// only the demotion of an exclusive group whose promotion is in
    /// effect is (see [`super::exclusive`]).
    pub(super) fn start_action_if_due(&mut self, g: usize, occasion: Occasion) {
        self.sync_exclusive(g);
        if self.life.stopping && self.groups[g].exclusive.is_none() {
            return;
        }
        let health = self.acting_health(g);
        let at = self.rounds.last_planned;
        let start = if self.demotion_overrides_pause(g) {
            self.groups[g].slot.next_despite_pause(health, occasion, at)
        } else {
            self.groups[g].slot.next(health, occasion, at)
        };
        let Some(start) = start else {
            return;
        };
        let kind = ActionKind::announcing(start.state);
        let request = self.request(g, kind, start.attempt, start.reason);
        let group = &mut self.groups[g];
        let started = SystemTime::now();
        let mut done = ActionDone {
            tx: Some(self.tx.clone()),
            group: group.spec.name.clone(),
            started,
        };
        group.running_since = Some(started);
        let reply: super::ActionReply = Box::new(move |report| done.send(report));
        let spawned = match &self.life.spawner {
            Some(spawn) => spawn(request, reply),
            None => actions::spawn(request, reply),
        };
        if let Err(e) = spawned {
            error!(
                "cannot start the {} of group {:?}: {e}",
                kind, group.spec.name
            );
            let ended = group.slot.finished(false, group.backoff);
            group.running_since = None;
            self.log_retry(g, kind, ended);
        }
        self.sync_exclusive(g);
        self.publish_group(g);
    }

    /// The request for group `g`'s `kind` of action.
    pub(super) fn request(
        &self,
        g: usize,
        kind: ActionKind,
        attempt: u32,
        reason: ActionReason,
    ) -> ActionRequest {
        let group = &self.groups[g];
        let leadership = group.exclusive.as_ref().map(|x| Leadership {
            standby: group.health == Health::Healthy,
            leader: x.leader.clone(),
        });
        ActionRequest {
            group: group.spec.name.clone(),
            kind,
            command: group.spec.command(kind).to_owned(),
            previous: group.slot.announced,
            failed_checks: self.failed_checks(g),
            attempt,
            reason,
            timeout: self.config.general.action_timeout,
            kill_grace: if leadership.is_some() {
                EXCLUSIVE_KILL_GRACE
            } else {
                actions::KILL_GRACE
            },
            leadership,
            dry_run: self.options.dry_run,
            redact: self.config.general.redact,
        }
    }

    /// Says when a failed action is tried again.
    fn log_retry(&self, g: usize, kind: ActionKind, ended: Ended) {
        if let Ended::Failed { attempt, retry_at } = ended {
            let wait = retry_at.saturating_duration_since(self.rounds.last_planned);
            warn!(
                "group {:?}: {kind} attempt {attempt} failed; attempt {} in {}, at the round due then",
                self.groups[g].spec.name,
                attempt + 1,
                short_duration(wait),
            );
        }
    }

    pub(super) fn action_ended(&mut self, name: &str, started: SystemTime, report: ActionReport) {
        let Some(g) = self.groups.iter().position(|g| g.spec.name == name) else {
            // Removed by a reload while it ran.
            self.orphaned_runs.remove(name);
            return;
        };
        self.shared
            .metrics
            .action(name, report.kind, &report.exit, report.duration);
        let group = &mut self.groups[g];
        group.running_since = None;
        let ended = if std::mem::take(&mut group.superseded) {
            // An action of the definition before a reload: it tells
            // nothing about the new one, which now runs its own.
            group.slot.abandon();
            Ended::NotRunning
        } else {
            group.slot.finished(report.exit.success(), group.backoff)
        };
        if matches!(ended, Ended::Succeeded { .. }) {
            group.announced_at = Some(started + report.duration);
        }
        group.last_action = Some(ActionRecord {
            kind: report.kind,
            started,
            duration: report.duration,
            exit: report.exit,
        });
        self.log_retry(g, report.kind, ended);
        self.start_action_if_due(g, Occasion::ActionEnded);
        self.publish_group(g);
        self.settle_orders();
        self.reap_orphans();
    }

    /// Whether the action of `name` that started at `started` is the one
    /// running now: a lost action that is still counted as running would
    /// hold its group (and a stop) for ever.
    pub(super) fn is_running(&self, name: &str, started: SystemTime) -> bool {
        self.groups
            .iter()
            .any(|g| g.spec.name == name && g.running_since == Some(started))
            || self.orphaned_runs.contains_key(name)
    }

    pub(super) fn actions_running(&self) -> bool {
        self.groups.iter().any(|g| g.slot.running.is_some()) || !self.orphaned_runs.is_empty()
    }

    /// The groups whose latest state the outside world has not been told
    /// (see [`ActionSlot::unannounced`]), each logged at WARNING with why:
    /// its action failed, or the stop came before it ran. A paused group
    /// is not one of them (nobody is told on purpose): it is logged at
    /// INFO. Called when the engine has stopped and its actions have
    /// ended.
    pub(super) fn report_unannounced(&self) -> Vec<String> {
        let mut names = Vec::new();
        for group in &self.groups {
            let Some(state) = group.slot.unannounced(group.health) else {
                continue;
            };
            if group.slot.hold == Some(Hold::Paused) {
                info!(
                    "group {:?} is paused: {state} was not announced, as the pause asks",
                    group.spec.name
                );
                continue;
            }
            let kind = ActionKind::announcing(state);
            let why = match group.slot.last {
                Some((last, false)) if last == state => {
                    format!("its {kind} failed (attempt {})", group.slot.attempt)
                }
                _ => format!("heartbeat stopped before its {kind} ran"),
            };
            let told = match group.slot.announced {
                Health::Unknown => "nothing was announced before".to_owned(),
                told => format!("the outside world was last told {told}"),
            };
            warn!(
                "group {:?}: {state} was not announced: {why}; {told}",
                group.spec.name
            );
            names.push(group.spec.name.clone());
        }
        names
    }

    /// Logs which actions a stop waits for.
    pub(super) fn log_running_actions(&self) {
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
}

/// Reports an action's end to the engine: with its report when the action
/// thread calls [`ActionDone::send`], or as [`Event::ActionLost`] when the
/// thread dies first (a panic drops this on the way out), so that the
/// engine never waits for an action that will not end. (When the thread
/// cannot even start, this is dropped too; the engine then knows the
/// action is not running and ignores the event.)
struct ActionDone {
    tx: Option<Sender<Event>>,
    group: String,
    started: SystemTime,
}

impl ActionDone {
    fn send(&mut self, report: ActionReport) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Event::ActionEnded {
                group: std::mem::take(&mut self.group),
                started: self.started,
                report,
            });
        }
    }
}

impl Drop for ActionDone {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Event::ActionLost {
                group: std::mem::take(&mut self.group),
                started: self.started,
            });
        }
    }
}
