//! Snapshots as the engine would publish them, in each state the status
//! server distinguishes.

use std::time::{Duration, SystemTime};

use heartbeat::exec::process::ChildExit;
use heartbeat::model::Health;
use heartbeat::model::{ActionKind, CheckKind};
use heartbeat::status::{ActionRecord, CheckStatus, GroupStatus, LastResult, RoundInfo, Snapshot};

pub fn check(name: &str, health: Health, reason: &str) -> CheckStatus {
    let passed = health == Health::Healthy;
    CheckStatus {
        name: name.into(),
        kind: CheckKind::Tcp,
        endpoint: "127.0.0.1:5432".into(),
        health,
        successes: u32::from(passed) * 3,
        failures: u32::from(!passed) * 2,
        last: Some(LastResult {
            healthy: passed,
            reason: reason.into(),
            latency: Duration::from_millis(12),
            at: SystemTime::now(),
            certificate_expiry: None,
        }),
        running_since: None,
    }
}

pub fn group(name: &str, health: Health, checks: &[&str]) -> GroupStatus {
    GroupStatus {
        name: name.into(),
        health,
        since: Some(SystemTime::now() - Duration::from_secs(60)),
        checks: checks.iter().map(|c| c.to_string()).collect(),
        running: None,
        last_action: Some(ActionRecord {
            kind: if health == Health::Healthy {
                ActionKind::Promotion
            } else {
                ActionKind::Demotion
            },
            started: SystemTime::now() - Duration::from_secs(60),
            duration: Duration::from_millis(250),
            exit: ChildExit::Code(0),
        }),
        hold: None,
        cluster: None,
    }
}

/// The engine has started but no round has completed.
pub fn before_first_round() -> Snapshot {
    Snapshot {
        started: Some(SystemTime::now()),
        interval: Duration::from_secs(10),
        round_started: Some(SystemTime::now()),
        groups: vec![GroupStatus {
            since: None,
            last_action: None,
            ..group("web", Health::Unknown, &["nginx"])
        }],
        checks: vec![CheckStatus {
            health: Health::Unknown,
            successes: 0,
            failures: 0,
            last: None,
            ..check("nginx", Health::Unknown, "")
        }],
        ..Snapshot::default()
    }
}

/// One round completed a second ago, with these groups and checks.
pub fn after_round(groups: Vec<GroupStatus>, checks: Vec<CheckStatus>) -> Snapshot {
    let now = SystemTime::now();
    Snapshot {
        started: Some(now - Duration::from_secs(120)),
        interval: Duration::from_secs(10),
        rounds: 12,
        last_round: Some(RoundInfo {
            started: now - Duration::from_secs(1),
            duration: Duration::from_millis(300),
            lateness: Duration::from_millis(2),
        }),
        round_started: None,
        groups,
        checks,
    }
}

pub fn all_healthy() -> Snapshot {
    after_round(
        vec![
            group("web", Health::Healthy, &["nginx"]),
            group("db", Health::Healthy, &["postgres"]),
        ],
        vec![
            check("nginx", Health::Healthy, "HTTP 200"),
            check("postgres", Health::Healthy, "connected"),
        ],
    )
}

pub fn one_unhealthy() -> Snapshot {
    after_round(
        vec![
            group("web", Health::Healthy, &["nginx"]),
            group("db", Health::Unhealthy, &["postgres"]),
        ],
        vec![
            check("nginx", Health::Healthy, "HTTP 200"),
            check("postgres", Health::Unhealthy, "connection refused"),
        ],
    )
}

/// Healthy results, but the latest round ended ten minutes ago with an
/// interval of 10 s.
pub fn stalled() -> Snapshot {
    let mut snapshot = all_healthy();
    let long_ago = SystemTime::now() - Duration::from_secs(600);
    snapshot.last_round = Some(RoundInfo {
        started: long_ago,
        duration: Duration::from_millis(300),
        lateness: Duration::ZERO,
    });
    snapshot.round_started = Some(long_ago + Duration::from_secs(10));
    snapshot
}
