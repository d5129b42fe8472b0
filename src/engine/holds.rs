//! An operator's orders (`pause`, `resume`, `maintenance`, from the control
//! socket): checked whole, applied to each group's [`ActionSlot`] hold, and
//! answered once the actions they started have ended.
//!
//! An order naming a group that does not exist, or asking for what cannot
//! be (pausing a group in maintenance), changes nothing and says why. An
//! order that starts an action (the demotion of `maintenance`, the state a
//! `resume` applies) is answered when that action, and any action it had
//! to wait for, has ended, with how it went; one that starts none is
//! answered at once.
//!
//! [`ActionSlot`]: super::state::ActionSlot

use std::sync::mpsc::Sender;
use std::time::SystemTime;

use log::{info, warn};

use super::Engine;
use super::state::Occasion;
use crate::model::{Health, Hold, short_duration};
use crate::status::metrics::outcome;
use crate::status::report::rfc3339;

/// What an operator asks of groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Checks go on, no action runs.
    Pause,
    /// Ends a pause or a maintenance, applying the current state once if
    /// the outside world was not told it.
    Resume,
    /// Demote now (unless demoted already) and hold it.
    Maintenance,
}

impl Order {
    /// `pause`, `resume` or `maintenance`.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Pause => "pause",
            Order::Resume => "resume",
            Order::Maintenance => "maintenance",
        }
    }
}

/// What an order did to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The group.
    pub group: String,
    /// What was done, for the operator: `paused (was active); its checks
    /// go on, no action runs until resume`, `in maintenance (was active);
    /// demotion succeeded in 12ms`.
    pub message: String,
    /// An action the order started (or waited for) failed.
    pub action_failed: bool,
}

/// Why an order was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// Groups that are not configured: their names, and the groups there
    /// are.
    UnknownGroups {
        /// The names given that are no group.
        unknown: Vec<String>,
        /// Every configured group.
        known: Vec<String>,
    },
    /// What the order asks cannot be done: why.
    Refused(String),
    /// The engine is stopping.
    Stopping,
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderError::UnknownGroups { unknown, known } => {
                let names: Vec<String> = unknown.iter().map(|n| format!("{n:?}")).collect();
                let plural = if unknown.len() == 1 { "" } else { "s" };
                write!(f, "no group{plural} named {}; ", names.join(", "))?;
                if known.is_empty() {
                    f.write_str("the configuration has no groups")
                } else {
                    write!(f, "the groups are {}", known.join(", "))
                }
            }
            OrderError::Refused(why) => f.write_str(why),
            OrderError::Stopping => f.write_str("heartbeat is stopping"),
        }
    }
}

impl std::error::Error for OrderError {}

/// The reply to an order.
pub type OrderReply = Result<Vec<Answer>, OrderError>;

/// An order whose actions have not all ended yet.
pub(super) struct Pending {
    /// One answer a group, in the order given; the groups in `waiting`
    /// get the outcome of their action appended.
    answers: Vec<Answer>,
    /// Groups whose action runs, with when their last action before the
    /// order started.
    waiting: Vec<(String, Option<SystemTime>)>,
    reply: Sender<OrderReply>,
}

impl Engine {
    /// Carries out `order` on `groups` for `who` (the operator, as the
    /// control socket saw them), and answers on `reply`.
    pub(super) fn order(
        &mut self,
        order: Order,
        groups: Vec<String>,
        who: &str,
        reply: Sender<OrderReply>,
    ) {
        let indices = match self.check_order(order, &groups) {
            Ok(indices) => indices,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let mut answers = Vec::new();
        let mut waiting = Vec::new();
        for g in indices {
            let before = self.groups[g].last_action.as_ref().map(|a| a.started);
            let message = self.carry_out(order, g, who);
            self.start_action_if_due(g, Occasion::Command);
            self.note_hold(g);
            let name = self.groups[g].spec.name.clone();
            if self.groups[g].slot.running.is_some() {
                waiting.push((name.clone(), before));
            }
            answers.push(Answer {
                group: name,
                message,
                action_failed: false,
            });
        }
        let pending = Pending {
            answers,
            waiting,
            reply,
        };
        self.settle_order(pending);
    }

    /// The indices of `groups`, once the whole order is known to be
    /// possible; each group once, in the order given.
    fn check_order(&self, order: Order, groups: &[String]) -> Result<Vec<usize>, OrderError> {
        if self.life.stopping {
            return Err(OrderError::Stopping);
        }
        let mut indices = Vec::new();
        let mut unknown = Vec::new();
        for name in groups {
            match self.groups.iter().position(|g| g.spec.name == *name) {
                Some(g) if !indices.contains(&g) => indices.push(g),
                Some(_) => {}
                None => unknown.push(name.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(OrderError::UnknownGroups {
                unknown,
                known: self.groups.iter().map(|g| g.spec.name.clone()).collect(),
            });
        }
        if order == Order::Pause {
            if let Some(&g) = indices
                .iter()
                .find(|&&g| self.groups[g].slot.hold == Some(Hold::Maintenance))
            {
                return Err(OrderError::Refused(format!(
                    "group {:?} is in maintenance: resume it first (a pause would let it count as healthy again without its promotion)",
                    self.groups[g].spec.name
                )));
            }
        }
        Ok(indices)
    }

    /// Applies `order` to group `g`, logs it, and says what it did.
    fn carry_out(&mut self, order: Order, g: usize, who: &str) -> String {
        let now = SystemTime::now();
        let group = &mut self.groups[g];
        let name = group.spec.name.clone();
        let was = describe_hold(group.slot.hold, group.hold_since);
        match (order, group.slot.hold) {
            (Order::Pause, Some(Hold::Paused)) | (Order::Maintenance, Some(Hold::Maintenance)) => {
                format!("already {was}; nothing changed")
            }
            (Order::Pause, _) => {
                group.slot.pause();
                group.hold_since = Some(now);
                warn!(
                    "group {name:?} paused by {who}: its checks go on, no action runs until resume"
                );
                format!("paused (was {was}); its checks go on, no action runs until resume")
            }
            (Order::Maintenance, _) => {
                group.slot.maintain();
                group.hold_since = Some(now);
                warn!(
                    "group {name:?} in maintenance by {who}: demoted and held, failing for GET / and /ready until resume"
                );
                let demoted = group.slot.last == Some((Health::Unhealthy, true));
                let action = if demoted {
                    "; already demoted, nothing to run"
                } else {
                    ""
                };
                format!(
                    "in maintenance (was {was}): demoted and held, failing for GET / and /ready until resume{action}"
                )
            }
            (Order::Resume, None) => {
                "neither paused nor in maintenance; nothing changed".to_owned()
            }
            (Order::Resume, Some(_)) => {
                group.slot.resume();
                group.hold_since = None;
                info!("group {name:?} resumed by {who} (was {was})");
                let current = group.slot.target(group.health);
                let due = current.is_some_and(|state| group.slot.last != Some((state, true)));
                let action = match current {
                    None => "; its state is not known yet: it is announced once it is".to_owned(),
                    Some(state) if !due => {
                        format!("; {state} is what was last announced, nothing to run")
                    }
                    Some(_) => String::new(),
                };
                format!("resumed (was {was}){action}")
            }
        }
    }

    /// Answers the order once none of its groups runs an action any more;
    /// keeps it pending otherwise.
    fn settle_order(&mut self, mut pending: Pending) {
        let mut still = Vec::new();
        for (name, before) in std::mem::take(&mut pending.waiting) {
            let Some(group) = self.groups.iter().find(|g| g.spec.name == name) else {
                if let Some(answer) = pending.answers.iter_mut().find(|a| a.group == name) {
                    answer.message += "; the group was removed by a reload meanwhile";
                }
                continue;
            };
            if group.slot.running.is_some() {
                still.push((name, before));
                continue;
            }
            let latest = group
                .last_action
                .as_ref()
                .filter(|a| Some(a.started) != before);
            if let (Some(record), Some(answer)) =
                (latest, pending.answers.iter_mut().find(|a| a.group == name))
            {
                let ok = record.exit.success();
                let took = short_duration(record.duration);
                answer.message += &if ok {
                    format!("; {} succeeded in {took}", record.kind)
                } else {
                    format!(
                        "; {} {} after {took}: {} (it is retried; see the log)",
                        record.kind,
                        outcome(&record.exit),
                        record.exit
                    )
                };
                answer.action_failed |= !ok;
            }
        }
        pending.waiting = still;
        if pending.waiting.is_empty() {
            let _ = pending.reply.send(Ok(pending.answers));
        } else {
            self.pending_orders.push(pending);
        }
    }

    /// After an action ended: answers the orders that waited for it.
    pub(super) fn settle_orders(&mut self) {
        for pending in std::mem::take(&mut self.pending_orders) {
            self.settle_order(pending);
        }
    }

    /// Publishes a group's hold: status and metrics.
    pub(super) fn note_hold(&mut self, g: usize) {
        let group = &self.groups[g];
        let hold = group.slot.hold.zip(group.hold_since);
        self.shared.metrics.group_hold(&group.spec.name, hold);
        self.publish_group(g);
    }
}

/// `active`, `paused since 2026-…`, `in maintenance since 2026-…`.
fn describe_hold(hold: Option<Hold>, since: Option<SystemTime>) -> String {
    let since = since.map_or_else(String::new, |t| format!(" since {}", rfc3339(t)));
    match hold {
        None => "active".to_owned(),
        Some(Hold::Paused) => format!("paused{since}"),
        Some(Hold::Maintenance) => format!("in maintenance{since}"),
    }
}
