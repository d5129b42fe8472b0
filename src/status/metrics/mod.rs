//! Prometheus metrics of the engine, rendered for `GET /metrics`.
//!
//! The engine reports every check result, round, transition and action run
//! here; the status server renders the exposition in the format the client
//! asks for ([`exposition`]): OpenMetrics 1.0 text
//! (<https://github.com/OpenObservability/OpenMetrics/blob/main/specification/OpenMetrics.md>),
//! the Prometheus text format 0.0.4, or Prometheus protobuf. Built on the
//! `prometheus-client` crate, which keeps the registry and writes
//! OpenMetrics and protobuf itself.
//!
//! The families, all prefixed `heartbeat_`:
//!
//! | family | type | labels | meaning |
//! |---|---|---|---|
//! | `heartbeat_check_results_total` | counter | `check`, `type`, `result` (`ok`, `failed`) | check runs |
//! | `heartbeat_check_latency_seconds` | histogram | `check` | wall time of one check run |
//! | `heartbeat_check_state` | gauge | `check`, `state` | 1 for the check's current state, 0 for the two others |
//! | `heartbeat_group_state` | gauge | `group`, `state` | 1 for the group's current state, 0 for the two others |
//! | `heartbeat_transitions_total` | counter | `group`, `to` | changes of a group's state |
//! | `heartbeat_actions_total` | counter | `group`, `kind` (`promotion`, `demotion`), `outcome` (`ok`, `failed`, `timeout`, `error`) | action runs |
//! | `heartbeat_action_duration_seconds` | histogram | `group`, `kind` | wall time of one action run |
//! | `heartbeat_round_duration_seconds` | histogram | — | wall time of one round |
//! | `heartbeat_round_lateness_seconds` | gauge | — | how late the latest round started against its schedule |
//! | `heartbeat_last_round_timestamp_seconds` | gauge | — | Unix time at which the latest round ended |
//!
//! States are `unknown`, `healthy` and `unhealthy`. Each state series is
//! always present (0 or 1), in the manner of kube-state-metrics, so an alert
//! can be written `heartbeat_group_state{state="unhealthy"} == 1` and a
//! dashboard can `sum by (state)`.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::exec::process::ChildExit;
use crate::model::{ActionKind, CheckKind, Health};

pub mod exposition;

pub use exposition::Format;

/// Upper bounds (seconds) of check latency buckets: 1 ms to 30 s.
const CHECK_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds (seconds) of action and round duration buckets: 10 ms to 10 min.
const LONG_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 600.0,
];

const STATES: [Health; 3] = [Health::Unknown, Health::Healthy, Health::Unhealthy];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    check: String,
    r#type: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckStateLabels {
    check: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupStateLabels {
    group: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    group: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    group: String,
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionKindLabels {
    group: String,
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metric families, registered once. Cheap to update from any thread;
/// share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    check_results: Family<ResultLabels, Counter>,
    check_latency: HistogramFamily<CheckLabels>,
    check_state: Family<CheckStateLabels, Gauge>,
    group_state: Family<GroupStateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    actions: Family<ActionLabels, Counter>,
    action_duration: HistogramFamily<ActionKindLabels>,
    round_duration: Histogram,
    round_lateness: Gauge<f64, AtomicU64>,
    last_round: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn check_histogram() -> Histogram {
    Histogram::new(CHECK_BUCKETS)
}

fn long_histogram() -> Histogram {
    Histogram::new(LONG_BUCKETS)
}

/// The `outcome` label of an action run.
pub fn outcome(exit: &ChildExit) -> &'static str {
    match exit {
        ChildExit::Code(0) => "ok",
        ChildExit::Code(_) | ChildExit::Signal(_) => "failed",
        ChildExit::TimedOut(_) => "timeout",
        ChildExit::SpawnFailed(_) => "error",
    }
}

impl Metrics {
    /// Creates the registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("heartbeat");
        let check_results = Family::<ResultLabels, Counter>::default();
        registry.register(
            "check_results",
            "Check runs, by check, check type and result (ok or failed)",
            check_results.clone(),
        );
        let check_latency: HistogramFamily<CheckLabels> =
            Family::new_with_constructor(check_histogram);
        registry.register_with_unit(
            "check_latency",
            "Wall time of one check run",
            Unit::Seconds,
            check_latency.clone(),
        );
        let check_state = Family::<CheckStateLabels, Gauge>::default();
        registry.register(
            "check_state",
            "1 for the current state of the check (after rise/fall), 0 for the others",
            check_state.clone(),
        );
        let group_state = Family::<GroupStateLabels, Gauge>::default();
        registry.register(
            "group_state",
            "1 for the current state of the action group, 0 for the others",
            group_state.clone(),
        );
        let transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "transitions",
            "Changes of an action group's state, by the state entered",
            transitions.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Promotion and demotion runs, by outcome (ok, failed, timeout, error)",
            actions.clone(),
        );
        let action_duration: HistogramFamily<ActionKindLabels> =
            Family::new_with_constructor(long_histogram);
        registry.register_with_unit(
            "action_duration",
            "Wall time of one promotion or demotion run",
            Unit::Seconds,
            action_duration.clone(),
        );
        let round_duration = long_histogram();
        registry.register_with_unit(
            "round_duration",
            "Wall time of one round of checks",
            Unit::Seconds,
            round_duration.clone(),
        );
        let round_lateness = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "round_lateness",
            "How late the latest round started against its schedule",
            Unit::Seconds,
            round_lateness.clone(),
        );
        let last_round = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_round_timestamp",
            "Unix time at which the latest round ended",
            Unit::Seconds,
            last_round.clone(),
        );
        Metrics {
            registry,
            check_results,
            check_latency,
            check_state,
            group_state,
            transitions,
            actions,
            action_duration,
            round_duration,
            round_lateness,
            last_round,
        }
    }

    /// One check result and its latency. `kind` is the check type (`tcp`,
    /// `http`, `https`, `script`).
    pub fn check_result(&self, check: &str, kind: CheckKind, healthy: bool, latency: Duration) {
        let labels = ResultLabels {
            check: check.to_owned(),
            r#type: kind.as_str(),
            result: if healthy { "ok" } else { "failed" },
        };
        self.check_results.get_or_create(&labels).inc();
        self.check_latency
            .get_or_create(&CheckLabels {
                check: check.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// A check's health after rise/fall: its series for `health` becomes 1,
    /// the two others 0.
    pub fn check_health(&self, check: &str, health: Health) {
        for state in STATES {
            let labels = CheckStateLabels {
                check: check.to_owned(),
                state: state.as_str(),
            };
            self.check_state
                .get_or_create(&labels)
                .set(i64::from(state == health));
        }
    }

    /// A group's current health: its series for `health` becomes 1, the two
    /// others 0.
    pub fn group_health(&self, group: &str, health: Health) {
        for state in STATES {
            let labels = GroupStateLabels {
                group: group.to_owned(),
                state: state.as_str(),
            };
            self.group_state
                .get_or_create(&labels)
                .set(i64::from(state == health));
        }
    }

    /// Removes the state series of a check that is no longer configured
    /// (after a reload), so it does not linger as if still reported. Its
    /// counters and histograms stay: they are history.
    pub fn forget_check(&self, check: &str) {
        for state in STATES {
            self.check_state.remove(&CheckStateLabels {
                check: check.to_owned(),
                state: state.as_str(),
            });
        }
    }

    /// Removes the state series of a group that is no longer configured.
    pub fn forget_group(&self, group: &str) {
        for state in STATES {
            self.group_state.remove(&GroupStateLabels {
                group: group.to_owned(),
                state: state.as_str(),
            });
        }
    }

    /// A group changed state. Counted by the state entered; `from` is not a
    /// label (it is implied by the previous transition).
    pub fn transition(&self, group: &str, from: Health, to: Health) {
        let _ = from;
        self.transitions
            .get_or_create(&TransitionLabels {
                group: group.to_owned(),
                to: to.as_str(),
            })
            .inc();
    }

    /// An action ended: counted by [`outcome`], and its duration observed.
    pub fn action(&self, group: &str, kind: ActionKind, exit: &ChildExit, duration: Duration) {
        self.actions
            .get_or_create(&ActionLabels {
                group: group.to_owned(),
                kind: kind.as_str(),
                outcome: outcome(exit),
            })
            .inc();
        self.action_duration
            .get_or_create(&ActionKindLabels {
                group: group.to_owned(),
                kind: kind.as_str(),
            })
            .observe(duration.as_secs_f64());
    }

    /// A round ended: its duration and how late it started.
    pub fn round(&self, duration: Duration, lateness: Duration) {
        self.round_duration.observe(duration.as_secs_f64());
        self.round_lateness.set(lateness.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_round.set(now.as_secs_f64());
    }

    /// The OpenMetrics text exposition, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; the encoder's only other error
        // source is a label encoder, and ours are plain strings.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            log::error!("cannot encode metrics: {e}");
        }
        text
    }

    /// The Prometheus text format 0.0.4 exposition (see [`exposition`]).
    pub fn encode_text(&self) -> String {
        let mut text = String::new();
        match prometheus_client::encoding::prometheus_protobuf::encode(&self.registry) {
            Ok(families) => {
                if let Err(e) = exposition::write_text(&families, &mut text) {
                    log::error!("cannot encode metrics: {e}");
                }
            }
            Err(e) => log::error!("cannot encode metrics: {e}"),
        }
        text
    }

    /// The exposition in `format`, to be served with
    /// [`Format::content_type`].
    pub fn encode_as(&self, format: Format) -> Vec<u8> {
        match format {
            Format::OpenMetrics => self.encode().into_bytes(),
            Format::Text => self.encode_text().into_bytes(),
            Format::Protobuf => {
                prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&self.registry)
                    .unwrap_or_else(|e| {
                        log::error!("cannot encode metrics: {e}");
                        Vec::new()
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_one_hot() {
        let m = Metrics::new();
        m.group_health("web", Health::Unhealthy);
        let text = m.encode();
        assert!(text.contains(r#"heartbeat_group_state{group="web",state="unhealthy"} 1"#));
        assert!(text.contains(r#"heartbeat_group_state{group="web",state="healthy"} 0"#));
        assert!(text.contains(r#"heartbeat_group_state{group="web",state="unknown"} 0"#));
        m.forget_group("web");
        assert!(!m.encode().contains(r#"group="web""#));
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(&ChildExit::Code(0)), "ok");
        assert_eq!(outcome(&ChildExit::Code(2)), "failed");
        assert_eq!(outcome(&ChildExit::Signal(9)), "failed");
        assert_eq!(
            outcome(&ChildExit::TimedOut(Duration::from_secs(1))),
            "timeout"
        );
        assert_eq!(outcome(&ChildExit::SpawnFailed("x".into())), "error");
    }
}
