//! The words for health shared by every step: a check's or a group's
//! [`Health`], the group rule ([`group_health`]) and the overall rule
//! ([`overall_health`]) that `--once`, `GET /`, `/ready` and `heartbeat
//! status` all answer with, the [`ActionKind`] that announces a state, why
//! an action runs ([`ActionReason`]) and an operator's [`Hold`] on a group.

use std::fmt;

/// Health of a check or an action group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Health {
    /// No result yet.
    #[default]
    Unknown,
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
}

impl Health {
    /// The word used in logs and in `HEARTBEAT_STATE`:
    /// `unknown`, `healthy` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of health: from, to.
pub type Transition = (Health, Health);

/// The health of an action group from the health of its checks: healthy iff
/// every check is healthy, unhealthy iff at least one is unhealthy, unknown
/// otherwise (and for a group with no checks).
pub fn group_health(checks: impl IntoIterator<Item = Health>) -> Health {
    let mut any = false;
    let mut unknown = false;
    for health in checks {
        any = true;
        match health {
            Health::Unhealthy => return Health::Unhealthy,
            Health::Unknown => unknown = true,
            Health::Healthy => {}
        }
    }
    if unknown || !any {
        Health::Unknown
    } else {
        Health::Healthy
    }
}

/// The overall health of an instance from its groups, each given with
/// whether at least one check feeds it: [`group_health`] over the groups
/// that checks feed. A group that no check feeds never changes state and
/// never runs an action, so it does not count; with no such group at all
/// the answer is `Unknown`.
pub fn overall_health(groups: impl IntoIterator<Item = (Health, bool)>) -> Health {
    group_health(
        groups
            .into_iter()
            .filter(|&(_, fed)| fed)
            .map(|(health, _)| health),
    )
}

/// Promotion (the group turned healthy) or demotion (it turned unhealthy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// The group turned healthy.
    Promotion,
    /// The group turned unhealthy.
    Demotion,
}

impl ActionKind {
    /// `promotion` or `demotion`, as in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Promotion => "promotion",
            ActionKind::Demotion => "demotion",
        }
    }

    /// The kind of action that announces `state`: a promotion for
    /// `Healthy`, a demotion otherwise (the engine never acts on
    /// `Unknown`).
    pub fn announcing(state: Health) -> ActionKind {
        if state == Health::Healthy {
            ActionKind::Promotion
        } else {
            ActionKind::Demotion
        }
    }

    /// The state announced by this kind of action (`HEARTBEAT_STATE`):
    /// healthy for a promotion, unhealthy for a demotion.
    pub fn state(self) -> Health {
        match self {
            ActionKind::Promotion => Health::Healthy,
            ActionKind::Demotion => Health::Unhealthy,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action runs, as `HEARTBEAT_REASON` tells its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ActionReason {
    /// The group's health changed (or, at start-up, became known): `health`.
    /// A retry of a failed action keeps the reason of its first attempt.
    #[default]
    Health,
    /// An operator put the group in maintenance: the demotion that drains
    /// it (`maintenance`).
    Maintenance,
    /// An operator resumed the group: its current state, applied once
    /// (`resume`).
    Resume,
}

impl ActionReason {
    /// `health`, `maintenance` or `resume`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionReason::Health => "health",
            ActionReason::Maintenance => "maintenance",
            ActionReason::Resume => "resume",
        }
    }
}

impl fmt::Display for ActionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's hold on an action group (`heartbeat pause`,
/// `heartbeat maintenance`): its checks go on, its actions do not follow
/// them. A group without a hold is *active*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hold {
    /// No action runs for the group; `resume` applies its current state
    /// once.
    Paused,
    /// The group is demoted and held there, and counts as failing for `GET
    /// /` and `/ready` whatever its checks say, so that load balancers
    /// drain the node; `resume` ends it.
    Maintenance,
}

impl Hold {
    /// `paused` or `maintenance`, as logs, `/status`, metrics and the state
    /// file write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Paused => "paused",
            Hold::Maintenance => "maintenance",
        }
    }

    /// The hold named `word` (`paused` or `maintenance`).
    pub fn from_word(word: &str) -> Option<Hold> {
        match word {
            "paused" => Some(Hold::Paused),
            "maintenance" => Some(Hold::Maintenance),
            _ => None,
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    #[test]
    fn group_is_unhealthy_if_any_check_is() {
        assert_eq!(group_health([Healthy, Unknown, Unhealthy]), Unhealthy);
        assert_eq!(group_health([Healthy, Unknown]), Unknown);
        assert_eq!(group_health([Healthy, Healthy]), Healthy);
        assert_eq!(group_health([]), Unknown);
    }

    #[test]
    fn overall_health_leaves_out_groups_no_check_feeds() {
        assert_eq!(overall_health([(Healthy, true), (Unknown, false)]), Healthy);
        assert_eq!(
            overall_health([(Healthy, true), (Unhealthy, true)]),
            Unhealthy
        );
        assert_eq!(overall_health([(Healthy, false)]), Unknown);
        assert_eq!(overall_health([]), Unknown);
    }
}
