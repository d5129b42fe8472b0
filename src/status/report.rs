//! The JSON documents of the status server: `GET /status`, `GET /alive` and
//! `GET /ready`.
//!
//! One set of types serves both ends: the server builds them from a
//! [`Snapshot`] and serialises them, the `status` command reads them back.
//! Times are RFC 3339 strings in UTC with milliseconds
//! (`2026-11-20T13:14:52.123Z`); durations are seconds as JSON numbers;
//! states are `unknown`, `healthy` or `unhealthy`.
//!
//! A `GET /status` document looks like this (abridged):
//!
//! ```json
//! {
//!   "healthy": false,
//!   "alive": true,
//!   "started": "2026-11-20T13:14:00.000Z",
//!   "interval_seconds": 10.0,
//!   "rounds": 12,
//!   "last_round": {"started": "2026-11-20T13:15:50.000Z", "duration_seconds": 0.2, "lateness_seconds": 0.0},
//!   "round_in_progress_since": null,
//!   "groups": [{
//!     "name": "web", "state": "unhealthy", "since": "2026-11-20T13:15:50.200Z",
//!     "checks": ["nginx"], "running_action": null,
//!     "hold": {"kind": "maintenance", "since": "2026-11-20T13:15:00.000Z"},
//!     "cluster": {"role": "standby", "leader": "node-b", "node": "node-a",
//!                 "since": "2026-11-20T13:15:00.000Z"},
//!     "last_action": {"kind": "demotion", "started": "2026-11-20T13:15:50.200Z",
//!                     "duration_seconds": 0.05, "outcome": "ok", "exit": "exit status 0",
//!                     "exit_code": 0, "signal": null}
//!   }],
//!   "checks": [{
//!     "name": "nginx", "type": "http", "endpoint": "http://127.0.0.1:80/",
//!     "state": "unhealthy", "successes": 0, "failures": 3,
//!     "last_result": {"passed": false, "reason": "connection refused",
//!                     "latency_seconds": 0.0004, "at": "2026-11-20T13:15:50.001Z"}
//!   }]
//! }
//! ```
//!
//! `cluster` is there only for a group exclusive across the cluster
//! (`[cluster] groups`).
//!
//! The `last_result` of a TLS check (https, tcp with `tls = yes`, grpcs)
//! whose handshake got a certificate also has `"certificate_expires":
//! "2027-03-01T12:00:00.000Z"`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::exec::process::ChildExit;
use crate::status::metrics::outcome;
use crate::status::{ActionRecord, CheckStatus, GroupStatus, LastResult, RoundInfo, Snapshot};

/// `GET /status`: everything the engine knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Whether `GET /` answers 200: a round has completed, the engine is
    /// alive and every group is healthy.
    pub healthy: bool,
    /// Whether the engine keeps its schedule (see `GET /alive`).
    pub alive: bool,
    /// When the engine started (RFC 3339), `null` before it has.
    pub started: Option<String>,
    /// Configured time between round starts, in seconds.
    pub interval_seconds: f64,
    /// Rounds completed since start.
    pub rounds: u64,
    /// The latest completed round.
    pub last_round: Option<RoundReport>,
    /// When the round in progress started (RFC 3339), if one is.
    pub round_in_progress_since: Option<String>,
    /// Every action group, in configuration order.
    pub groups: Vec<GroupReport>,
    /// Every check, in configuration order.
    pub checks: Vec<CheckReport>,
}

/// A completed round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// When it started (RFC 3339).
    pub started: String,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
    /// How late it started against its schedule, in seconds.
    pub lateness_seconds: f64,
}

/// One action group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// Group name.
    pub name: String,
    /// `unknown`, `healthy` or `unhealthy`.
    pub state: String,
    /// When it entered that state (RFC 3339), `null` while unknown.
    pub since: Option<String>,
    /// Names of its checks.
    pub checks: Vec<String>,
    /// `promotion` or `demotion` while one runs, else `null`.
    pub running_action: Option<String>,
    /// The last action that ended.
    pub last_action: Option<ActionRun>,
    /// The operator's hold on the group, `null` while it is active.
    #[serde(default)]
    pub hold: Option<HoldReport>,
    /// For a group exclusive across the cluster: its election; absent for
    /// other groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
}

/// An exclusive group's election, as the node that answers sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// `unknown`, `active`, `standby`, `unhealthy` or `no quorum`.
    pub role: String,
    /// The node that leads the group, `null` when none is known.
    pub leader: Option<String>,
    /// The name of the node that answers.
    pub node: String,
    /// Since when the group has had its role (RFC 3339), `null` before
    /// it had one.
    pub since: Option<String>,
}

/// An operator's hold on a group (`heartbeat pause`, `heartbeat
/// maintenance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldReport {
    /// `paused` or `maintenance`.
    pub kind: String,
    /// When it began (RFC 3339).
    pub since: String,
}

/// One finished promotion or demotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    /// `promotion` or `demotion`.
    pub kind: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// How long it ran, in seconds.
    pub duration_seconds: f64,
    /// `ok`, `failed` (non-zero exit or killed by a signal), `timeout`
    /// (outran `action_timeout`) or `error` (could not be started).
    pub outcome: String,
    /// How it ended, for humans: `exit status 0`, `killed by signal 9`,
    /// `timed out after 60s`, `cannot start: …`.
    pub exit: String,
    /// Its exit status, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did (not our deadline).
    pub signal: Option<i32>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Section name (or the URL, for checks given on the command line).
    pub name: String,
    /// `tcp`, `http`, `https` or `script`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it probes: address, URL or command.
    pub endpoint: String,
    /// State after rise/fall: `unknown`, `healthy` or `unhealthy`.
    pub state: String,
    /// Consecutive successes.
    pub successes: u32,
    /// Consecutive failures.
    pub failures: u32,
    /// The latest result, `null` before the first.
    pub last_result: Option<ResultReport>,
}

/// A check's latest result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultReport {
    /// Whether it passed.
    pub passed: bool,
    /// Short human reason: `HTTP 200`, `connection refused`, …
    pub reason: String,
    /// How long it took, in seconds.
    pub latency_seconds: f64,
    /// When it finished (RFC 3339).
    pub at: String,
    /// When the server's certificate expires (RFC 3339), for a TLS check
    /// whose handshake got that far; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires: Option<String>,
}

/// `GET /alive`: `{"alive":true}` or `{"alive":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    /// Whether the engine keeps its schedule.
    pub alive: bool,
}

/// `GET /ready`: `{"ready":true}` or
/// `{"ready":false,"reasons":["check: reason", …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Whether every group is healthy in a fresh round.
    pub ready: bool,
    /// Why not, one line per cause; absent when ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// A time as RFC 3339 in UTC with milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

impl StatusReport {
    /// The report of `snapshot`, with `healthy` and `alive` as the server
    /// judged them.
    pub fn new(snapshot: &Snapshot, healthy: bool, alive: bool) -> StatusReport {
        StatusReport {
            healthy,
            alive,
            started: snapshot.started.map(rfc3339),
            interval_seconds: snapshot.interval.as_secs_f64(),
            rounds: snapshot.rounds,
            last_round: snapshot.last_round.as_ref().map(RoundReport::new),
            round_in_progress_since: snapshot.round_started.map(rfc3339),
            groups: snapshot.groups.iter().map(GroupReport::new).collect(),
            checks: snapshot.checks.iter().map(CheckReport::new).collect(),
        }
    }
}

impl RoundReport {
    fn new(round: &RoundInfo) -> RoundReport {
        RoundReport {
            started: rfc3339(round.started),
            duration_seconds: round.duration.as_secs_f64(),
            lateness_seconds: round.lateness.as_secs_f64(),
        }
    }
}

impl GroupReport {
    fn new(group: &GroupStatus) -> GroupReport {
        GroupReport {
            name: group.name.clone(),
            state: group.health.as_str().to_owned(),
            since: group.since.map(rfc3339),
            checks: group.checks.clone(),
            running_action: group.running.map(|k| k.as_str().to_owned()),
            last_action: group.last_action.as_ref().map(ActionRun::new),
            hold: group.hold.map(|(hold, since)| HoldReport {
                kind: hold.as_str().to_owned(),
                since: rfc3339(since),
            }),
            cluster: group.cluster.as_ref().map(|c| ClusterReport {
                role: c.role.as_str().to_owned(),
                leader: c.leader.clone(),
                node: c.node.clone(),
                since: c.since.map(rfc3339),
            }),
        }
    }
}

impl ActionRun {
    fn new(record: &ActionRecord) -> ActionRun {
        ActionRun {
            kind: record.kind.as_str().to_owned(),
            started: rfc3339(record.started),
            duration_seconds: record.duration.as_secs_f64(),
            outcome: outcome(&record.exit).to_owned(),
            exit: record.exit.to_string(),
            exit_code: match record.exit {
                ChildExit::Code(code) => Some(code),
                _ => None,
            },
            signal: match record.exit {
                ChildExit::Signal(signal) => Some(signal),
                _ => None,
            },
        }
    }
}

impl CheckReport {
    fn new(check: &CheckStatus) -> CheckReport {
        CheckReport {
            name: check.name.clone(),
            kind: check.kind.as_str().to_owned(),
            endpoint: check.endpoint.clone(),
            state: check.health.as_str().to_owned(),
            successes: check.successes,
            failures: check.failures,
            last_result: check.last.as_ref().map(ResultReport::new),
        }
    }
}

impl ResultReport {
    fn new(result: &LastResult) -> ResultReport {
        ResultReport {
            passed: result.healthy,
            reason: result.reason.clone(),
            latency_seconds: result.latency.as_secs_f64(),
            at: rfc3339(result.at),
            certificate_expires: result.certificate_expiry.map(rfc3339),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::model::ActionKind;
    use crate::model::Health;

    #[test]
    fn ready_omits_empty_reasons() {
        let ready = Ready {
            ready: true,
            reasons: vec![],
        };
        assert_eq!(serde_json::to_string(&ready).unwrap(), r#"{"ready":true}"#);
    }

    #[test]
    fn report_round_trips_and_names_fields_as_documented() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let snapshot = Snapshot {
            started: Some(at),
            interval: Duration::from_secs(10),
            rounds: 1,
            last_round: None,
            round_started: None,
            groups: vec![GroupStatus {
                name: "web".into(),
                health: Health::Unhealthy,
                since: Some(at),
                checks: vec!["nginx".into()],
                running: None,
                last_action: Some(ActionRecord {
                    kind: ActionKind::Demotion,
                    started: at,
                    duration: Duration::from_millis(50),
                    exit: ChildExit::TimedOut(Duration::from_secs(60)),
                }),
                hold: Some((crate::model::Hold::Maintenance, at)),
                cluster: None,
            }],
            checks: vec![],
        };
        let report = StatusReport::new(&snapshot, false, true);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["started"], "2026-11-18T11:06:40.123Z");
        let action = &json["groups"][0]["last_action"];
        assert_eq!(action["outcome"], "timeout");
        assert_eq!(action["exit"], "timed out after 60s");
        assert_eq!(action["exit_code"], serde_json::Value::Null);
        assert_eq!(
            json["groups"][0]["hold"],
            serde_json::json!({"kind": "maintenance", "since": "2026-11-18T11:06:40.123Z"})
        );
        let back: StatusReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
