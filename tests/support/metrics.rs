//! Reading `/metrics` as Prometheus does: OpenMetrics text with a real
//! parser, the text format 0.0.4 with `promtool check metrics`; and the
//! metric families heartbeat exposes.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

use super::http::{self, Reply};

/// The `Accept` header of a Prometheus 2.x scrape.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `Content-Type` of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of the text format 0.0.4.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` as Prometheus asks for it: the OpenMetrics text, checked
/// for its content type and `# EOF`, and parsed.
pub fn scrape_openmetrics(addr: SocketAddr) -> (String, Exposition) {
    let reply = http::get_accepting(addr, "/metrics", PROMETHEUS_ACCEPT);
    assert_eq!(
        (reply.status, reply.content_type.as_str()),
        (200, OPENMETRICS),
        "{}",
        reply.body
    );
    assert!(reply.body.ends_with("# EOF\n"), "{}", reply.body);
    let exposition = parse(&reply.body);
    (reply.body, exposition)
}

/// `GET /metrics` as a client of the text format asks for it
/// (`Accept: text/plain;version=0.0.4`): the body, checked for its content
/// type and passed through [`promtool`].
pub fn scrape_text(addr: SocketAddr) -> String {
    let reply: Reply = http::get_accepting(addr, "/metrics", "text/plain;version=0.0.4");
    assert_eq!(
        (reply.status, reply.content_type.as_str()),
        (200, TEXT_004),
        "{}",
        reply.body
    );
    if let Err(e) = promtool(&reply.body) {
        panic!("{e}");
    }
    reply.body
}

/// Runs `promtool check metrics` (from Debian's `prometheus` package) on
/// `text`: `Ok` when it exits 0 and reports nothing.
///
/// # Errors
/// What promtool said, with the text it was given.
pub fn promtool(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics: {}: {said}\non:\n{text}",
            out.status
        ))
    }
}

/// A parsed exposition.
pub type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Every family heartbeat exposes, with its type, as OpenMetrics names
/// them (once a round has ended and every check has a result).
pub const FAMILIES: [(&str, OpenMetricsType); 21] = [
    ("heartbeat_build", OpenMetricsType::Info),
    ("heartbeat_check", OpenMetricsType::Info),
    ("heartbeat_check_results", OpenMetricsType::Counter),
    ("heartbeat_check_success", OpenMetricsType::Gauge),
    ("heartbeat_check_duration_seconds", OpenMetricsType::Gauge),
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
    ("process_cpu_seconds", OpenMetricsType::Counter),
    ("process_open_fds", OpenMetricsType::Gauge),
    ("process_max_fds", OpenMetricsType::Gauge),
    ("process_virtual_memory_bytes", OpenMetricsType::Gauge),
    ("process_resident_memory_bytes", OpenMetricsType::Gauge),
    ("process_start_time_seconds", OpenMetricsType::Gauge),
    ("process_threads", OpenMetricsType::Gauge),
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

/// The value of the sample of family `name` whose labels are exactly `want`,
/// if there is one.
pub fn sample(m: &Exposition, name: &str, want: &[(&str, &str)]) -> Option<OpenMetricsValue> {
    let want: HashMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.families.get(name)?.iter_samples().find_map(|s| {
        let labels: HashMap<String, String> = s
            .get_labelset()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (labels == want).then(|| s.value.clone())
    })
}

/// The value of a counter sample; panics when there is none.
pub fn counter(m: &Exposition, name: &str, want: &[(&str, &str)]) -> f64 {
    match sample(m, name, want) {
        Some(OpenMetricsValue::Counter(c)) => c.value.as_f64(),
        other => panic!("{name}{want:?} is not a counter: {other:?}"),
    }
}

/// The value of a gauge sample; panics when there is none.
pub fn gauge(m: &Exposition, name: &str, want: &[(&str, &str)]) -> f64 {
    match sample(m, name, want) {
        Some(OpenMetricsValue::Gauge(g)) => g.as_f64(),
        other => panic!("{name}{want:?} is not a gauge: {other:?}"),
    }
}

/// A histogram sample; panics when there is none.
pub fn histogram(
    m: &Exposition,
    name: &str,
    want: &[(&str, &str)],
) -> openmetrics_parser::HistogramValue {
    match sample(m, name, want) {
        Some(OpenMetricsValue::Histogram(h)) => h,
        other => panic!("{name}{want:?} is not a histogram: {other:?}"),
    }
}
