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
//! The families are listed, with their labels and help texts, in
//! [`FAMILIES`] (and in the README, which a test compares with it): the
//! engine's own, prefixed `heartbeat_`, and the `process_*` metrics of
//! every Prometheus client library ([`process`]). Besides counters of what
//! happened, they give what blackbox_exporter's users look for: per check,
//! an info series with its type and target
//! (`heartbeat_check_info`, credentials and query strings left out), the
//! latest raw result as 0 or 1 (`heartbeat_check_success`, like
//! `probe_success`) and its duration (`heartbeat_check_duration_seconds`,
//! like `probe_duration_seconds`); both are absent until the check's first
//! result, so a scrape at start-up does not read as a failure.
//!
//! States are `unknown`, `healthy` and `unhealthy`. Each state series is
//! always present (0 or 1), in the manner of kube-state-metrics, so an alert
//! can be written `heartbeat_group_state{state="unhealthy"} == 1` and a
//! dashboard can `sum by (state)`.
//!
//! Every labelled series the configuration implies exists from start-up:
//! [`Metrics::configure`], called with the configuration at start-up and
//! after each reload, creates the result counters of every check (`ok` and
//! `failed`), the transition counters of every group (to each state), the
//! action counters of every group, kind and outcome, all at 0, and the
//! state gauges at `unknown` = 1. A counter that first appears at 1 is
//! invisible to `increase()` and `rate()`, so an alert on the first
//! demotion would never fire. The series of checks and groups a reload
//! removed are dropped, counters and histograms too.
//!
//! `heartbeat_round_lateness_seconds` and
//! `heartbeat_last_round_timestamp_seconds` are absent until the first
//! round ends: there is no latest round to describe, and a 0 would read as
//! a round 56 years ago. `heartbeat_round_duration_seconds_count` is 0
//! until then.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;

use crate::exec::process::ChildExit;
use crate::model::{ActionKind, CheckKind, Config, Health, Hold, Probe, Role};

pub mod exposition;
mod families;
pub mod process;
mod store;

pub use exposition::Format;
pub use families::{FAMILIES, FamilyDoc};
use store::{CheckCells, CheckSeries, GroupCells, GroupSeries, Store, Table, lock, read};

/// Upper bounds (seconds) of check latency buckets: 50 µs to 30 s. A TCP
/// connect on loopback or a LAN takes well under a millisecond.
const CHECK_BUCKETS: [f64; 18] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds (seconds) of action and round duration buckets: 10 ms to 10 min.
const LONG_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 600.0,
];

const STATES: [Health; 3] = [Health::Unknown, Health::Healthy, Health::Unhealthy];

const KINDS: [ActionKind; 2] = [ActionKind::Promotion, ActionKind::Demotion];

/// Every `outcome` label of [`outcome`].
pub const OUTCOMES: [&str; 4] = ["ok", "failed", "timeout", "error"];

/// Every `result` label of a check result.
const RESULTS: [&str; 2] = ["ok", "failed"];

/// Every `hold` label of `heartbeat_group_hold`: none, then each [`Hold`].
const HOLDS: [Option<Hold>; 3] = [None, Some(Hold::Paused), Some(Hold::Maintenance)];

fn hold_label(hold: Option<Hold>) -> &'static str {
    hold.map_or("none", Hold::as_str)
}

/// A 64-bit hash of `probe` (SipHash with fixed keys, the same for the
/// same probe throughout the process): how a reload tells a changed probe
/// from an unchanged one without keeping a copy of each. Two different
/// probes hash alike with odds of one in 2^64; the only effect would be
/// that a changed check keeps its latest result in the metrics.
fn fingerprint(probe: &Probe) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    probe.hash(&mut hasher);
    hasher.finish()
}

/// Unix seconds of `at`, negative before the epoch.
fn unix_seconds(at: SystemTime) -> f64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// The metric families, registered once. Cheap to update from any thread;
/// share it as `Arc<Metrics>`.
///
/// The engine's series are kept by position, one small record per check
/// and per group (see `store`); updates name the check or group, and a
/// name that is not configured is ignored.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    store: Arc<Store>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
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

/// The index in [`STATES`] of `health`.
fn state_slot(health: Health) -> usize {
    STATES.iter().position(|s| *s == health).unwrap_or(0)
}

impl Metrics {
    /// Creates the registry with every family registered.
    pub fn new() -> Self {
        let mut root = Registry::default();
        // The process metrics are named as every client library names them,
        // without heartbeat's prefix.
        root.register_collector(Box::new(process::ProcessCollector));
        let store = Arc::new(Store::default());
        root.sub_registry_with_prefix("heartbeat")
            .register_collector(Box::new(Arc::clone(&store)));
        Metrics {
            registry: root,
            store,
        }
    }

    /// One check result and its latency. The `type` label is the check's
    /// configured type (`kind` is the same for a configured check).
    pub fn check_result(&self, check: &str, kind: CheckKind, healthy: bool, latency: Duration) {
        let _ = kind;
        let checks = read(&self.store.checks);
        let Some(series) = checks.get(check) else {
            return;
        };
        let seconds = latency.as_secs_f64();
        let mut cells = lock(&series.cells);
        if healthy {
            cells.ok += 1;
        } else {
            cells.failed += 1;
        }
        cells.latency.observe(&CHECK_BUCKETS, seconds);
        cells.latest = Some((healthy, seconds));
    }

    /// When the leaf certificate a TLS check just saw expires. The series
    /// appears with a check's first certificate and keeps the last one seen
    /// while later runs get none (a refused connection says nothing about
    /// the certificate).
    pub fn certificate_expiry(&self, check: &str, expiry: SystemTime) {
        if let Some(series) = read(&self.store.checks).get(check) {
            lock(&series.cells).expiry = Some(unix_seconds(expiry));
        }
    }

    /// A check's health after rise/fall: its series for `health` becomes 1,
    /// the two others 0.
    pub fn check_health(&self, check: &str, health: Health) {
        if let Some(series) = read(&self.store.checks).get(check) {
            lock(&series.cells).state = health;
        }
    }

    /// A group's current health: its series for `health` becomes 1, the two
    /// others 0.
    pub fn group_health(&self, group: &str, health: Health) {
        if let Some(series) = read(&self.store.groups).get(group) {
            lock(&series.cells).state = health;
        }
    }

    /// A group's hold and since when (Unix time): its `hold` series for
    /// the hold (or `none`) becomes 1, the others 0; the timestamp exists
    /// only while a hold lasts.
    pub fn group_hold(&self, group: &str, hold: Option<(Hold, SystemTime)>) {
        if let Some(series) = read(&self.store.groups).get(group) {
            let mut cells = lock(&series.cells);
            cells.hold = hold.map(|(h, _)| h);
            cells.hold_since = hold.map(|(_, since)| unix_seconds(since).max(0.0));
        }
    }

    /// An exclusive group's role on this node and the leader it knows
    /// (`None`: none known, an empty `leader` label). Ignored for a group
    /// that is not exclusive.
    pub fn cluster_role(&self, group: &str, role: Role, leader: Option<&str>) {
        if let Some(series) = read(&self.store.groups).get(group) {
            let mut cells = lock(&series.cells);
            if cells.role.is_none() {
                return;
            }
            cells.role = Some(role);
            let mut shown = lock(&series.leader);
            let leader = leader.unwrap_or_default();
            if **shown != *leader {
                *shown = Arc::from(leader);
            }
        }
    }

    /// Creates every series `config` implies and drops those of checks and
    /// groups it no longer has; call it at start-up and after each reload.
    ///
    /// A check that is new, or whose probe changed (the engine then starts
    /// it afresh), and a group that is new or whose commands changed, get
    /// their state gauges set to `unknown` = 1 (the engine sets a kept
    /// group's at once); its counters are created at 0 where missing and keep
    /// their counts otherwise, unless its check type changed (the `type`
    /// label). Series of an unchanged check or group are left alone.
    pub fn configure(&self, config: &Config) {
        let mut checks = self
            .store
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let list = config
            .checks
            .iter()
            .map(|spec| {
                let kind = spec.probe.kind();
                let probe = fingerprint(&spec.probe);
                let mut cells = CheckCells::default();
                if let Some(old) = checks.get(&spec.name) {
                    let old_cells = *lock(&old.cells);
                    if old.probe == probe {
                        cells = old_cells;
                    } else {
                        // A changed check: its latest result is forgotten,
                        // as the engine forgets it; its latency histogram
                        // stays; its result counts stay unless its type
                        // (a label of theirs) changed.
                        cells.latency = old_cells.latency;
                        if old.kind == kind {
                            (cells.ok, cells.failed) = (old_cells.ok, old_cells.failed);
                        }
                    }
                }
                CheckSeries {
                    name: Arc::from(spec.name.as_str()),
                    kind,
                    target: spec.probe.target().into_boxed_str(),
                    probe,
                    cells: cells.into(),
                }
            })
            .collect();
        *checks = Table::new(list, |c| Arc::clone(&c.name));
        drop(checks);
        let mut groups = self
            .store
            .groups
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let list = config
            .groups
            .iter()
            .map(|spec| {
                let cells = match groups.get(&spec.name) {
                    Some(old) if old.spec == *spec => *lock(&old.cells),
                    // A changed group keeps its counts and starts unknown,
                    // without a hold (the engine sets its hold again).
                    Some(old) => GroupCells {
                        state: Health::Unknown,
                        hold: None,
                        hold_since: None,
                        ..*lock(&old.cells)
                    },
                    None => GroupCells::default(),
                };
                let exclusive = config
                    .cluster
                    .as_ref()
                    .is_some_and(|c| c.is_exclusive(&spec.name));
                let cells = GroupCells {
                    role: exclusive.then(|| cells.role.unwrap_or(Role::Unknown)),
                    ..cells
                };
                let leader = match groups.get(&spec.name) {
                    Some(old) if exclusive => Arc::clone(&lock(&old.leader)),
                    _ => Arc::from(""),
                };
                GroupSeries {
                    spec: spec.clone(),
                    name: Arc::from(spec.name.as_str()),
                    cells: cells.into(),
                    leader: leader.into(),
                }
            })
            .collect();
        *groups = Table::new(list, |g| Arc::clone(&g.name));
    }

    /// A group changed state. Counted by the state entered; `from` is not a
    /// label (it is implied by the previous transition).
    pub fn transition(&self, group: &str, from: Health, to: Health) {
        let _ = from;
        if let Some(series) = read(&self.store.groups).get(group) {
            lock(&series.cells).transitions[state_slot(to)] += 1;
        }
    }

    /// An action ended: counted by [`outcome`], and its duration observed.
    pub fn action(&self, group: &str, kind: ActionKind, exit: &ChildExit, duration: Duration) {
        let Some(k) = KINDS.iter().position(|k| *k == kind) else {
            return;
        };
        let o = OUTCOMES
            .iter()
            .position(|o| *o == outcome(exit))
            .unwrap_or(0);
        if let Some(series) = read(&self.store.groups).get(group) {
            let mut cells = lock(&series.cells);
            cells.actions[k][o] += 1;
            cells.durations[k].observe(&LONG_BUCKETS, duration.as_secs_f64());
        }
    }

    /// A round ended: its duration and how late it started.
    pub fn round(&self, duration: Duration, lateness: Duration) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut rounds = lock(&self.store.rounds);
        rounds
            .duration
            .observe(&LONG_BUCKETS, duration.as_secs_f64());
        rounds.last = Some((lateness.as_secs_f64(), now.as_secs_f64()));
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
    use std::collections::HashMap;

    /// A configuration from INI text, as the engine gets it.
    fn config(text: &str) -> Config {
        let dir = std::path::Path::new("/");
        crate::config::parse(text, &dir.join("hb.conf"), dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    /// The sample lines of the text format that mention `needle`, sorted.
    fn lines_with(m: &Metrics, needle: &str) -> Vec<String> {
        let mut lines: Vec<String> = m
            .encode_text()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(needle))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    const TWO_GROUPS: &str = "[promotions]\nweb = true\ndb = true\n\
        [demotions]\nweb = true\ndb = true\n\
        [nginx]\ntype = tcp\nport = 80\naction = web\n\
        [pg]\ntype = tcp\nport = 5432\naction = db\n";

    #[test]
    fn configure_creates_every_series_at_zero_and_states_unknown() {
        let m = Metrics::new();
        m.configure(&config(TWO_GROUPS));
        let want_results = [
            r#"heartbeat_check_results_total{check="nginx",type="tcp",result="failed"} 0"#,
            r#"heartbeat_check_results_total{check="nginx",type="tcp",result="ok"} 0"#,
        ];
        let results: Vec<String> = lines_with(&m, "check=\"nginx\"")
            .into_iter()
            .filter(|l| l.starts_with("heartbeat_check_results_total"))
            .collect();
        assert_eq!(results, want_results);
        let web = lines_with(&m, "group=\"web\"");
        for to in ["healthy", "unhealthy", "unknown"] {
            let line = format!(r#"heartbeat_transitions_total{{group="web",to="{to}"}} 0"#);
            assert!(web.contains(&line), "{line} not in {web:#?}");
        }
        for kind in ["promotion", "demotion"] {
            for outcome in ["ok", "failed", "timeout", "error"] {
                let line = format!(
                    r#"heartbeat_actions_total{{group="web",kind="{kind}",outcome="{outcome}"}} 0"#
                );
                assert!(web.contains(&line), "{line} not in {web:#?}");
            }
            let count = format!(
                r#"heartbeat_action_duration_seconds_count{{group="web",kind="{kind}"}} 0"#
            );
            assert!(web.contains(&count), "{count} not in {web:#?}");
        }
        for (state, value) in [("unknown", 1), ("healthy", 0), ("unhealthy", 0)] {
            let group = format!(r#"heartbeat_group_state{{group="web",state="{state}"}} {value}"#);
            assert!(web.contains(&group), "{group} not in {web:#?}");
            let check = format!(r#"heartbeat_check_state{{check="pg",state="{state}"}} {value}"#);
            assert!(lines_with(&m, "check=\"pg\"").contains(&check), "{check}");
        }
        assert!(
            lines_with(&m, "heartbeat_check_latency_seconds_count")
                .contains(&r#"heartbeat_check_latency_seconds_count{check="pg"} 0"#.to_owned())
        );
    }

    #[test]
    fn the_latest_round_is_absent_until_there_is_one() {
        let m = Metrics::new();
        assert!(lines_with(&m, "round_lateness").is_empty());
        assert!(lines_with(&m, "last_round_timestamp").is_empty());
        assert_eq!(
            lines_with(&m, "heartbeat_round_duration_seconds_count"),
            ["heartbeat_round_duration_seconds_count 0"]
        );
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        m.round(Duration::from_millis(20), Duration::from_millis(5));
        assert_eq!(
            lines_with(&m, "round_lateness"),
            ["heartbeat_round_lateness_seconds 0.005"]
        );
        let stamp = lines_with(&m, "last_round_timestamp");
        let value: f64 = stamp[0].split(' ').nth(1).unwrap().parse().unwrap();
        assert!(value >= before.as_secs_f64() && value < before.as_secs_f64() + 60.0);
    }

    #[test]
    fn a_reload_drops_removed_series_and_keeps_unchanged_counts() {
        let m = Metrics::new();
        m.configure(&config(TWO_GROUPS));
        m.check_result("nginx", CheckKind::Tcp, true, Duration::from_millis(1));
        m.check_health("nginx", Health::Healthy);
        m.transition("db", Health::Unknown, Health::Healthy);
        m.check_result("pg", CheckKind::Tcp, true, Duration::from_millis(1));
        // pg and db are gone; nginx is unchanged; a new check joins web.
        m.configure(&config(
            "[promotions]\nweb = true\n[demotions]\nweb = true\n\
             [nginx]\ntype = tcp\nport = 80\naction = web\n\
             [disk]\ntype = script\ncommand = true\naction = web\n",
        ));
        assert_eq!(lines_with(&m, "pg"), Vec::<String>::new());
        assert_eq!(lines_with(&m, "db"), Vec::<String>::new());
        let nginx = lines_with(&m, "check=\"nginx\"");
        for line in [
            r#"heartbeat_check_results_total{check="nginx",type="tcp",result="ok"} 1"#,
            r#"heartbeat_check_state{check="nginx",state="healthy"} 1"#,
        ] {
            assert!(nginx.contains(&line.to_owned()), "{line} not in {nginx:#?}");
        }
        let disk = lines_with(&m, "check=\"disk\"");
        assert!(
            disk.contains(
                &r#"heartbeat_check_results_total{check="disk",type="script",result="failed"} 0"#
                    .to_owned()
            )
        );
        // A check whose type changed loses its series of the old type.
        m.configure(&config(
            "[promotions]\nweb = true\n[demotions]\nweb = true\n\
             [nginx]\ntype = http\nport = 80\naction = web\n",
        ));
        let nginx = lines_with(&m, "heartbeat_check_results_total{check=\"nginx\"");
        assert_eq!(
            nginx,
            [
                r#"heartbeat_check_results_total{check="nginx",type="http",result="failed"} 0"#,
                r#"heartbeat_check_results_total{check="nginx",type="http",result="ok"} 0"#,
            ]
        );
        assert!(
            lines_with(
                &m,
                "heartbeat_check_state{check=\"nginx\",state=\"unknown\"} 1"
            )
            .len()
                == 1
        );
    }

    /// Family name → (type, help, label names) as the text format says.
    fn described(text: &str) -> HashMap<String, (String, String, Vec<String>)> {
        let mut out: HashMap<String, (String, String, Vec<String>)> = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                out.entry(name.into()).or_default().1 = help.into();
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                out.entry(name.into()).or_default().0 = kind.into();
            } else {
                let (series, _) = line.split_once(' ').unwrap();
                let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
                    .unwrap_or(name);
                let names: Vec<String> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|pair| pair.split_once('=').map(|(n, _)| n.to_owned()))
                    .filter(|n| n != "le")
                    .collect();
                out.get_mut(family)
                    .unwrap_or_else(|| panic!("{line} before its TYPE"))
                    .2 = names;
            }
        }
        out
    }

    #[test]
    fn certificate_expiry_is_a_unix_time_per_check_until_the_check_goes() {
        let m = Metrics::new();
        m.configure(&config(TWO_GROUPS));
        assert!(lines_with(&m, "certificate_expiry").is_empty());
        m.certificate_expiry("nginx", UNIX_EPOCH + Duration::from_secs(1_796_083_200));
        assert_eq!(
            lines_with(&m, "certificate_expiry"),
            [r#"heartbeat_check_certificate_expiry_timestamp_seconds{check="nginx"} 1796083200"#]
        );
        m.configure(&config(&TWO_GROUPS.replace("[nginx]", "[other]")));
        assert!(lines_with(&m, "certificate_expiry").is_empty());
    }

    /// [`TWO_GROUPS`] with `db` exclusive across a cluster.
    fn db_exclusive() -> String {
        format!(
            "[general]\naction_timeout = 1\n{TWO_GROUPS}\
             [cluster]\netcd = http://127.0.0.1\nnode = node-a\ngroups = db\n"
        )
    }

    #[test]
    fn exclusive_groups_show_their_role_and_leader() {
        let m = Metrics::new();
        m.configure(&config(TWO_GROUPS));
        assert!(lines_with(&m, "heartbeat_cluster").is_empty());
        m.configure(&config(&db_exclusive()));
        let role =
            |r: &str, v: u8| format!("heartbeat_cluster_role{{group=\"db\",role=\"{r}\"}} {v}");
        assert_eq!(
            lines_with(&m, "heartbeat_cluster"),
            [
                r#"heartbeat_cluster_leader{group="db",leader=""} 1"#.to_owned(),
                role("active", 0),
                role("no_quorum", 0),
                role("standby", 0),
                role("unhealthy", 0),
                role("unknown", 1),
            ]
        );
        m.cluster_role("db", Role::Standby, Some("node-b"));
        m.cluster_role("web", Role::Active, Some("node-a"));
        assert_eq!(
            lines_with(&m, "heartbeat_cluster"),
            [
                r#"heartbeat_cluster_leader{group="db",leader="node-b"} 1"#.to_owned(),
                role("active", 0),
                role("no_quorum", 0),
                role("standby", 1),
                role("unhealthy", 0),
                role("unknown", 0),
            ]
        );
        // A reload keeps them; one that makes db an ordinary group drops
        // them.
        m.configure(&config(&db_exclusive()));
        assert!(lines_with(&m, "heartbeat_cluster").contains(&role("standby", 1)));
        m.configure(&config(TWO_GROUPS));
        assert!(lines_with(&m, "heartbeat_cluster").is_empty());
    }

    #[test]
    fn the_exposition_is_what_families_documents() {
        let m = Metrics::new();
        m.configure(&config(&db_exclusive()));
        m.check_result("nginx", CheckKind::Tcp, true, Duration::from_micros(80));
        m.certificate_expiry("nginx", UNIX_EPOCH + Duration::from_secs(1_796_083_200));
        m.round(Duration::from_millis(20), Duration::ZERO);
        // The hold's timestamp exists while a hold lasts.
        m.group_hold("db", Some((Hold::Maintenance, SystemTime::now())));
        let found = described(&m.encode_text());
        let mut names: Vec<&str> = found.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut documented: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        documented.sort_unstable();
        assert_eq!(names, documented);
        for f in FAMILIES {
            let (kind, help, labels) = &found[f.name];
            let want_kind = if f.kind == "info" { "gauge" } else { f.kind };
            assert_eq!(kind, want_kind, "{}", f.name);
            assert_eq!(help, &format!("{}.", f.help), "{}", f.name);
            assert_eq!(labels, &f.labels.to_vec(), "{}", f.name);
        }
        // OpenMetrics types info families as such.
        let om = m.encode();
        assert!(om.contains("# TYPE heartbeat_build info\n"), "{om}");
        assert!(om.contains("# TYPE heartbeat_check info\n"), "{om}");
        let version = env!("CARGO_PKG_VERSION");
        assert!(om.contains(&format!(
            "heartbeat_build_info{{version=\"{version}\"}} 1\n"
        )));
    }

    #[test]
    fn the_latest_result_is_a_gauge_from_the_first_result_on() {
        let m = Metrics::new();
        m.configure(&config(TWO_GROUPS));
        assert!(lines_with(&m, "heartbeat_check_success").is_empty());
        m.check_result("nginx", CheckKind::Tcp, true, Duration::from_micros(80));
        m.check_result("pg", CheckKind::Tcp, false, Duration::from_millis(1500));
        assert_eq!(
            lines_with(&m, "heartbeat_check_success"),
            [
                r#"heartbeat_check_success{check="nginx"} 1"#,
                r#"heartbeat_check_success{check="pg"} 0"#,
            ]
        );
        assert_eq!(
            lines_with(&m, "heartbeat_check_duration_seconds"),
            [
                r#"heartbeat_check_duration_seconds{check="nginx"} 0.00008"#,
                r#"heartbeat_check_duration_seconds{check="pg"} 1.5"#,
            ]
        );
        // 80 µs falls in the 100 µs bucket, not only in the 1 ms one.
        let bucket = r#"heartbeat_check_latency_seconds_bucket{check="nginx",le="0.0001"} 1"#;
        assert!(lines_with(&m, "le=\"0.0001\"").contains(&bucket.to_owned()));
        // A changed check forgets its latest result, as the engine does.
        m.configure(&config(&TWO_GROUPS.replace("port = 5432", "port = 5433")));
        assert_eq!(
            lines_with(&m, "heartbeat_check_success"),
            [r#"heartbeat_check_success{check="nginx"} 1"#]
        );
    }

    #[test]
    fn check_info_names_type_and_target_without_secrets() {
        let m = Metrics::new();
        m.configure(&config(
            "[promotions]\nweb = true\n[demotions]\nweb = true\n\
             [api]\nurl = https://api.example:8443/health?token=s3cret\naction = web\n\
             [v6]\ntype = tcp\nhostname = ::1\nport = 22\naction = web\n\
             [disk]\ntype = script\ncommand = /usr/lib/check_disk --password s3cret\naction = web\n\
             [env]\ntype = script\ncommand = PGPASSWORD=s3cret psql -c 'select 1'\naction = web\n",
        ));
        let text = m.encode_text();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(
            lines_with(&m, "heartbeat_check_info"),
            [
                r#"heartbeat_check_info{check="api",type="https",target="https://api.example:8443/health?[redacted]"} 1"#,
                r#"heartbeat_check_info{check="disk",type="script",target="/usr/lib/check_disk"} 1"#,
                r#"heartbeat_check_info{check="env",type="script",target="sh"} 1"#,
                r#"heartbeat_check_info{check="v6",type="tcp",target="[::1]:22"} 1"#,
            ]
        );
        // A reload replaces the list.
        m.configure(&config(TWO_GROUPS));
        assert_eq!(
            lines_with(&m, "heartbeat_check_info"),
            [
                r#"heartbeat_check_info{check="nginx",type="tcp",target="localhost:80"} 1"#,
                r#"heartbeat_check_info{check="pg",type="tcp",target="localhost:5432"} 1"#,
            ]
        );
    }

    #[test]
    fn process_metrics_describe_this_process() {
        let text = Metrics::new().encode_text();
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"));
            line.split(' ').nth(1).unwrap().parse().unwrap()
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let started = value("process_start_time_seconds");
        assert!(started > 1.0e9 && started <= now.as_secs_f64() + 1.0);
        assert!(value("process_resident_memory_bytes") > 1.0e5);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }

    #[test]
    fn states_are_one_hot() {
        let m = Metrics::new();
        m.configure(&config(TWO_GROUPS));
        m.group_health("web", Health::Unhealthy);
        let text = m.encode();
        assert!(text.contains(r#"heartbeat_group_state{group="web",state="unhealthy"} 1"#));
        assert!(text.contains(r#"heartbeat_group_state{group="web",state="healthy"} 0"#));
        assert!(text.contains(r#"heartbeat_group_state{group="web",state="unknown"} 0"#));
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
