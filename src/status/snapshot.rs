//! What the engine knows right now, for anyone who asks: the status server,
//! the `status` command, `--once`, `--check-config`.
//!
//! The engine publishes a fresh [`Snapshot`] after every round and every
//! action; readers take a cheap clone and never hold the lock while they
//! write to a socket.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::exec::process::ChildExit;
use crate::model::ActionKind;
use crate::model::{CheckKind, Health, Hold, Role, overall_health};

/// The shared, latest snapshot.
pub type SharedStatus = Arc<RwLock<Snapshot>>;

/// Everything the status server reports.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When the engine started.
    pub started: Option<SystemTime>,
    /// The configured interval between round starts.
    pub interval: Duration,
    /// Rounds completed since start.
    pub rounds: u64,
    /// The latest completed round.
    pub last_round: Option<RoundInfo>,
    /// When the round in progress started, if one is.
    pub round_started: Option<SystemTime>,
    /// Every action group, in configuration order.
    pub groups: Vec<GroupStatus>,
    /// Every check, in configuration order.
    pub checks: Vec<CheckStatus>,
}

impl Snapshot {
    /// Whether every group with checks is healthy (false before the first
    /// round, and false when there are no groups with checks) and no group
    /// is in maintenance. A group that no check feeds never changes state
    /// and never runs an action, so it does not count, unless it is in
    /// maintenance.
    pub fn all_healthy(&self) -> bool {
        let groups = self.groups.iter().map(|g| (g.health, !g.checks.is_empty()));
        overall_health(groups) == Health::Healthy && self.in_maintenance().next().is_none()
    }

    /// The groups in maintenance: each makes `GET /` and `/ready` fail.
    pub fn in_maintenance(&self) -> impl Iterator<Item = &GroupStatus> {
        self.groups.iter().filter(|g| g.in_maintenance())
    }

    /// The groups that at least one check feeds.
    pub fn used_groups(&self) -> impl Iterator<Item = &GroupStatus> {
        self.groups.iter().filter(|g| !g.checks.is_empty())
    }

    /// `check: reason` for every check that is not healthy, in order; for a
    /// check with no result yet, `check: no result yet`; for an unhealthy
    /// check whose latest result passed (it has not reached `rise` yet),
    /// `check: recovering, 2 successes in a row, fewer than rise; last:
    /// HTTP 200`, so the reason never reads like a success.
    pub fn reasons(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.health != Health::Healthy)
            .map(|c| match &c.last {
                Some(r) if r.healthy => {
                    let n = c.successes;
                    let plural = if n == 1 { "" } else { "es" };
                    format!(
                        "{}: recovering, {n} success{plural} in a row, fewer than rise; last: {}",
                        c.name, r.reason
                    )
                }
                Some(r) => format!("{}: {}", c.name, r.reason),
                None => format!("{}: no result yet", c.name),
            })
            .collect()
    }
}

/// A completed round.
#[derive(Debug, Clone)]
pub struct RoundInfo {
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// How late it started against its schedule (zero when on time).
    pub lateness: Duration,
}

/// One action group.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// Current health.
    pub health: Health,
    /// When it entered that health (`None` while unknown).
    pub since: Option<SystemTime>,
    /// Names of its checks.
    pub checks: Vec<String>,
    /// The action running now, if any.
    pub running: Option<ActionKind>,
    /// The last action that ended.
    pub last_action: Option<ActionRecord>,
    /// The operator's hold on it (paused, in maintenance) and since when;
    /// `None` while it is active.
    pub hold: Option<(Hold, SystemTime)>,
    /// For a group exclusive across the cluster: its role here and who
    /// leads it.
    pub cluster: Option<ClusterView>,
}

/// An exclusive group's election, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// Its role on this node.
    pub role: Role,
    /// The node that leads it, when known.
    pub leader: Option<String>,
    /// This node's name.
    pub node: String,
    /// Since when it has had that role.
    pub since: Option<SystemTime>,
}

impl GroupStatus {
    /// Whether the group is in maintenance: it counts as failing, whatever
    /// its health.
    pub fn in_maintenance(&self) -> bool {
        matches!(self.hold, Some((Hold::Maintenance, _)))
    }
}

/// One finished promotion or demotion.
#[derive(Debug, Clone)]
pub struct ActionRecord {
    /// Promotion or demotion.
    pub kind: ActionKind,
    /// When it started.
    pub started: SystemTime,
    /// How long it ran.
    pub duration: Duration,
    /// How it ended.
    pub exit: ChildExit,
}

/// One check.
#[derive(Debug, Clone)]
pub struct CheckStatus {
    /// Section name.
    pub name: String,
    /// `tcp`, `http`, `https` or `script`.
    pub kind: CheckKind,
    /// What it probes (address, URL or command).
    pub endpoint: String,
    /// Health after rise/fall.
    pub health: Health,
    /// Consecutive successes.
    pub successes: u32,
    /// Consecutive failures.
    pub failures: u32,
    /// The latest result.
    pub last: Option<LastResult>,
    /// When its run in flight started, if one is: until it reports, the
    /// check keeps its state.
    pub running_since: Option<SystemTime>,
}

/// A check's latest result.
#[derive(Debug, Clone)]
pub struct LastResult {
    /// Whether it passed.
    pub healthy: bool,
    /// Short human reason.
    pub reason: String,
    /// How long it took.
    pub latency: Duration,
    /// When it finished.
    pub at: SystemTime,
    /// When the server's certificate expires, for a TLS check that got
    /// one.
    pub certificate_expiry: Option<SystemTime>,
}
