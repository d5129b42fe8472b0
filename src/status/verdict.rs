//! The judgement of a [`Snapshot`]: is the engine alive (keeping its
//! schedule), and is the instance healthy, with the reasons when not. The
//! status server answers `GET /`, `/alive`, `/ready` and `/status` from it.
//!
//! **Healthy** means: at least one round has completed, the engine is
//! alive, every action group that a check feeds is healthy, and no group is
//! in maintenance (`GROUP: maintenance` is then the first reason). A stalled
//! engine is not healthy, because its results are stale.
//!
//! **Alive** means the engine keeps its schedule: the time since the latest
//! round *ended* (or, before the first, since the engine started) is at
//! most `2 × max(interval, duration of the latest round) + margin`. A round
//! in progress for longer than that, or a scheduler that stopped, both
//! exceed it. The clock is the wall clock of the [`Snapshot`]; a jump
//! backwards reads as alive, a jump forwards can read as stalled until the
//! next round ends.

use std::time::{Duration, SystemTime};

use super::Snapshot;
use crate::model::{Health, short_duration};

/// What the stall rule needs besides the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct StallRule {
    /// The configured interval between round starts; used until the engine
    /// publishes its own in the [`Snapshot`].
    pub interval: Duration,
    /// Slack added to twice the interval: it should cover the longest a
    /// round may take.
    pub margin: Duration,
    /// When the reader started: the reference point while the snapshot has
    /// no start time yet.
    pub started: SystemTime,
}

/// The judgement of a snapshot that `GET /`, `/alive`, `/ready` and
/// `/status` answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the engine keeps its schedule.
    pub alive: bool,
    /// Why it is not healthy; empty when it is.
    pub reasons: Vec<String>,
    /// One word for `GET /`'s body: `UNKNOWN`, `STALLED` or `UNHEALTHY`.
    pub word: &'static str,
}

impl Verdict {
    /// Judges `snapshot` at `now`: healthy when a round has completed, the
    /// engine keeps its schedule ([`stalled_for`]) and every group that a
    /// check feeds is healthy ([`Snapshot::all_healthy`]).
    pub fn of(snapshot: &Snapshot, rule: &StallRule, now: SystemTime) -> Verdict {
        let interval = if snapshot.interval.is_zero() {
            rule.interval
        } else {
            snapshot.interval
        };
        let stalled = stalled_for(snapshot, interval, rule.margin, rule.started, now);
        let alive = stalled.is_none();
        let mut reasons = Vec::new();
        let mut word = "UNHEALTHY";
        if let Some((since, limit)) = stalled {
            word = "STALLED";
            reasons.push(format!(
                "engine stalled: no round completed for {} (limit {})",
                short_duration(since),
                short_duration(limit)
            ));
        }
        if snapshot.last_round.is_none() {
            if alive {
                word = "UNKNOWN";
            }
            reasons.push("no round completed yet".to_owned());
        } else if !snapshot.all_healthy() {
            // `GROUP: maintenance` first: a load balancer's operator reads
            // why the node is drained before what its checks say.
            reasons.extend(
                snapshot
                    .in_maintenance()
                    .map(|g| format!("{}: maintenance", g.name)),
            );
            let checks = snapshot.reasons();
            if checks.is_empty() {
                if snapshot.used_groups().next().is_none() {
                    reasons.push("no action groups".to_owned());
                }
                reasons.extend(
                    snapshot
                        .used_groups()
                        .filter(|g| g.health != Health::Healthy)
                        .map(|g| format!("group {}: {}", g.name, g.health)),
                );
            } else {
                reasons.extend(checks);
            }
        }
        Verdict {
            alive,
            reasons,
            word,
        }
    }

    /// Whether the snapshot is healthy: no reason against it.
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The stall rule (module docs): `Some((time since the reference point,
/// limit))` when the engine has missed its schedule, `None` while it keeps
/// it.
pub fn stalled_for(
    snapshot: &Snapshot,
    interval: Duration,
    margin: Duration,
    server_started: SystemTime,
    now: SystemTime,
) -> Option<(Duration, Duration)> {
    let (reference, round) = match &snapshot.last_round {
        Some(round) => (round.started + round.duration, round.duration),
        None => (snapshot.started.unwrap_or(server_started), Duration::ZERO),
    };
    let limit = interval.max(round).saturating_mul(2).saturating_add(margin);
    let since = now.duration_since(reference).unwrap_or_default();
    (since > limit).then_some((since, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RoundInfo;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    #[test]
    fn stall_rule_counts_from_the_end_of_the_latest_round() {
        let mut snapshot = Snapshot {
            started: Some(at(0)),
            interval: Duration::from_secs(10),
            ..Snapshot::default()
        };
        let ten = Duration::from_secs(10);
        let margin = Duration::from_secs(5);
        // Before the first round: counted from the start.
        assert_eq!(stalled_for(&snapshot, ten, margin, at(0), at(25)), None);
        assert_eq!(
            stalled_for(&snapshot, ten, margin, at(0), at(26)),
            Some((Duration::from_secs(26), Duration::from_secs(25)))
        );
        // A round that started at 100 and took 2 s ended at 102.
        snapshot.last_round = Some(RoundInfo {
            started: at(100),
            duration: Duration::from_secs(2),
            lateness: Duration::ZERO,
        });
        assert_eq!(stalled_for(&snapshot, ten, margin, at(0), at(127)), None);
        assert!(stalled_for(&snapshot, ten, margin, at(0), at(128)).is_some());
        // A long round stretches the limit: rounds of 30 s every 30 s.
        snapshot.last_round = Some(RoundInfo {
            started: at(100),
            duration: Duration::from_secs(30),
            lateness: Duration::ZERO,
        });
        assert_eq!(stalled_for(&snapshot, ten, margin, at(0), at(195)), None);
        // A clock that went backwards reads as alive.
        assert_eq!(stalled_for(&snapshot, ten, margin, at(0), at(50)), None);
    }
}
