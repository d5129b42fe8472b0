//! The list of metric families heartbeat exposes, with their types, labels
//! and help texts: the one source of the help texts registered in
//! [`super::Metrics`] and of the table in the README (a test compares
//! both with what `/metrics` serves).

/// One metric family, named as the text format 0.0.4 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyDoc {
    /// The family name, with its unit and `_total` or `_info` suffix.
    pub name: &'static str,
    /// `counter`, `gauge`, `histogram`, or `info` (a gauge of 1 in the
    /// text format, an info metric in OpenMetrics).
    pub kind: &'static str,
    /// Its label names, in order (`le` of histogram buckets left out).
    pub labels: &'static [&'static str],
    /// What it measures: the `# HELP` text, without the final period.
    pub help: &'static str,
}

const fn family(
    name: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> FamilyDoc {
    FamilyDoc {
        name,
        kind,
        labels,
        help,
    }
}

/// Every family, in the order of the README's table.
pub const FAMILIES: &[FamilyDoc] = &[
    family(
        "heartbeat_build_info",
        "info",
        &["version"],
        "The version of heartbeat running; always 1",
    ),
    family(
        "heartbeat_check_info",
        "info",
        &["check", "type", "target"],
        "Each configured check with its type and target (URL without credentials and with a query string shown as `?[redacted]`, host:port, or the program a script runs); always 1",
    ),
    family(
        "heartbeat_check_results_total",
        "counter",
        &["check", "type", "result"],
        "Check runs, by check, check type and result (ok or failed)",
    ),
    family(
        "heartbeat_check_success",
        "gauge",
        &["check"],
        "Whether the latest run of the check passed (1) or failed (0), before rise and fall apply",
    ),
    family(
        "heartbeat_check_duration_seconds",
        "gauge",
        &["check"],
        "Wall time of the latest run of the check",
    ),
    family(
        "heartbeat_check_certificate_expiry_timestamp_seconds",
        "gauge",
        &["check"],
        "Unix time at which the leaf certificate last seen by a TLS check expires",
    ),
    family(
        "heartbeat_check_latency_seconds",
        "histogram",
        &["check"],
        "Wall time of one check run",
    ),
    family(
        "heartbeat_check_state",
        "gauge",
        &["check", "state"],
        "1 for the current state of the check (after rise and fall), 0 for the others",
    ),
    family(
        "heartbeat_group_state",
        "gauge",
        &["group", "state"],
        "1 for the current state of the action group, 0 for the others",
    ),
    family(
        "heartbeat_group_hold",
        "gauge",
        &["group", "hold"],
        "1 for the operator's hold on the action group (none, paused or maintenance), 0 for the others",
    ),
    family(
        "heartbeat_group_hold_timestamp_seconds",
        "gauge",
        &["group"],
        "Unix time at which the operator's hold on the action group began; absent while it has none",
    ),
    family(
        "heartbeat_cluster_role",
        "gauge",
        &["group", "role"],
        "1 for the current role of an exclusive action group on this node (unknown, active, standby, unhealthy or no_quorum), 0 for the others",
    ),
    family(
        "heartbeat_cluster_leader",
        "gauge",
        &["group", "leader"],
        "The node that leads an exclusive action group, as this node last learnt it from etcd (empty when none is known); always 1",
    ),
    family(
        "heartbeat_transitions_total",
        "counter",
        &["group", "to"],
        "Changes of an action group's state, by the state entered",
    ),
    family(
        "heartbeat_actions_total",
        "counter",
        &["group", "kind", "outcome"],
        "Promotion and demotion runs, by outcome (ok, failed, timeout, error)",
    ),
    family(
        "heartbeat_action_duration_seconds",
        "histogram",
        &["group", "kind"],
        "Wall time of one promotion or demotion run",
    ),
    family(
        "heartbeat_round_duration_seconds",
        "histogram",
        &[],
        "Wall time of one round of checks",
    ),
    family(
        "heartbeat_round_lateness_seconds",
        "gauge",
        &[],
        "How late the latest round started against its schedule",
    ),
    family(
        "heartbeat_last_round_timestamp_seconds",
        "gauge",
        &[],
        "Unix time at which the latest round ended",
    ),
    family(
        "process_cpu_seconds_total",
        "counter",
        &[],
        "Total user and system CPU time spent in seconds",
    ),
    family(
        "process_open_fds",
        "gauge",
        &[],
        "Number of open file descriptors",
    ),
    family(
        "process_max_fds",
        "gauge",
        &[],
        "Maximum number of open file descriptors",
    ),
    family(
        "process_virtual_memory_bytes",
        "gauge",
        &[],
        "Virtual memory size in bytes",
    ),
    family(
        "process_resident_memory_bytes",
        "gauge",
        &[],
        "Resident memory size in bytes",
    ),
    family(
        "process_start_time_seconds",
        "gauge",
        &[],
        "Start time of the process since unix epoch in seconds",
    ),
    family(
        "process_threads",
        "gauge",
        &[],
        "Number of OS threads in the process",
    ),
];

/// The help text of the family named `name` in [`FAMILIES`].
///
/// # Panics
/// When `name` is not in the list: a family registered without being
/// documented (the unit tests register every family).
pub fn help(name: &str) -> &'static str {
    FAMILIES
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.help)
        .unwrap_or_else(|| panic!("metric family {name} is not in FAMILIES"))
}
