//! Reading `/metrics` as OpenMetrics text with a real parser, and the
//! metric families heartbeat exposes.

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

/// A parsed exposition.
pub type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Every family heartbeat exposes, with its type.
pub const FAMILIES: [(&str, OpenMetricsType); 10] = [
    ("heartbeat_check_results", OpenMetricsType::Counter),
    (
        "heartbeat_check_latency_seconds",
        OpenMetricsType::Histogram,
    ),
    ("heartbeat_check_state", OpenMetricsType::Gauge),
    ("heartbeat_group_state", OpenMetricsType::Gauge),
    ("heartbeat_transitions", OpenMetricsType::Counter),
    ("heartbeat_actions", OpenMetricsType::Counter),
    (
        "heartbeat_action_duration_seconds",
        OpenMetricsType::Histogram,
    ),
    (
        "heartbeat_round_duration_seconds",
        OpenMetricsType::Histogram,
    ),
    ("heartbeat_round_lateness_seconds", OpenMetricsType::Gauge),
    (
        "heartbeat_last_round_timestamp_seconds",
        OpenMetricsType::Gauge,
    ),
];

/// Parses `text`, panicking with it when it is not OpenMetrics.
///
/// openmetrics-parser 0.5 refuses `# UNIT` on histograms, which the
/// OpenMetrics 1.0 specification allows on every type but info and
/// stateset; those metadata lines are left out of what it reads.
pub fn parse(text: &str) -> Exposition {
    let without_units: String = text
        .lines()
        .filter(|line| !line.starts_with("# UNIT "))
        .map(|line| format!("{line}\n"))
        .collect();
    openmetrics_parser::openmetrics::parse_openmetrics(&without_units)
        .unwrap_or_else(|e| panic!("not OpenMetrics ({e:?}):\n{text}"))
}
