//! Where the engine's series live: one small record of plain numbers per
//! configured check and per group, indexed by position, with the labels
//! written when the exposition is encoded.
//!
//! A labelled metric family keyed by its label values (prometheus-client's
//! `Family`) holds, for every series, its own copy of every label string,
//! a hash-map entry and, for a histogram, a boxed bucket vector: about
//! 1.5 KB per check for heartbeat's families. Here a check costs one
//! record ([`CheckCells`], under 250 bytes), the name and the `target`
//! label once, and a hash of its probe instead of a copy; the series
//! of the exposition are the same, written from these records by the
//! [`Collector`] of [`Store`] in the order and with the names, types,
//! units and help texts the registry gave them.
//!
//! Each record has its own lock, taken for one update or to write its
//! series, so a scrape never holds the engine up for more than one record,
//! and a histogram is never seen half-updated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Unit;

use super::families::help;
use super::{CHECK_BUCKETS, HOLDS, KINDS, LONG_BUCKETS, OUTCOMES, RESULTS, STATES, hold_label};
use crate::model::{CheckKind, GroupSpec, Health, Hold, Role};

/// Buckets of a check latency histogram: [`CHECK_BUCKETS`] and `+Inf`.
pub(super) const CHECK_SLOTS: usize = CHECK_BUCKETS.len() + 1;

/// Buckets of an action or round duration histogram: [`LONG_BUCKETS`] and
/// `+Inf`.
pub(super) const LONG_SLOTS: usize = LONG_BUCKETS.len() + 1;

/// A histogram with `N` buckets (the last one `+Inf`), counted per bucket
/// as prometheus-client's `Histogram` counts them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hist<const N: usize> {
    counts: [u64; N],
    sum: f64,
    count: u64,
}

impl<const N: usize> Default for Hist<N> {
    fn default() -> Self {
        Hist {
            counts: [0; N],
            sum: 0.0,
            count: 0,
        }
    }
}

impl<const N: usize> Hist<N> {
    /// Counts `value` in the first bucket whose upper bound (of `bounds`,
    /// then `+Inf`) is at least `value`; NaN goes to `+Inf`.
    pub(super) fn observe(&mut self, bounds: &[f64], value: f64) {
        self.sum += value;
        self.count += 1;
        let slot = bounds.iter().position(|b| *b >= value).unwrap_or(N - 1);
        self.counts[slot.min(N - 1)] += 1;
    }

    /// Writes the histogram with `bounds`, reusing `buckets` for its
    /// `(upper bound, count)` pairs.
    fn encode(
        &self,
        bounds: &[f64],
        buckets: &mut Vec<(f64, u64)>,
        mut metric: MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        buckets.clear();
        buckets.extend(
            bounds
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(self.counts),
        );
        metric.encode_histogram::<NoLabelSet>(self.sum, self.count, buckets, None)
    }
}

/// The numbers of one check.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CheckCells {
    /// Runs that passed and failed.
    pub ok: u64,
    pub failed: u64,
    pub latency: Hist<CHECK_SLOTS>,
    /// Its health after rise and fall.
    pub state: Health,
    /// The latest raw result and its duration in seconds, once there is one.
    pub latest: Option<(bool, f64)>,
    /// When the leaf certificate last seen expires (Unix seconds), once a
    /// TLS check has seen one.
    pub expiry: Option<f64>,
}

/// One configured check: what labels its series, and its numbers.
#[derive(Debug)]
pub(super) struct CheckSeries {
    pub name: Arc<str>,
    pub kind: CheckKind,
    /// What it probes, as the `target` label of `heartbeat_check_info`
    /// writes it ([`crate::model::Probe::target`]).
    pub target: Box<str>,
    /// A hash of what it probes ([`super::fingerprint`]), to tell on a
    /// reload whether it is the same check without keeping a copy of the
    /// probe (about 180 bytes a check).
    pub probe: u64,
    pub cells: Mutex<CheckCells>,
}

/// The numbers of one group.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct GroupCells {
    pub state: Health,
    /// The operator's hold, and since when (Unix seconds).
    pub hold: Option<Hold>,
    pub hold_since: Option<f64>,
    /// For a group exclusive across the cluster, its role on this node;
    /// `None` for other groups (they have no `heartbeat_cluster_*` series).
    pub role: Option<Role>,
    /// Transitions, by the state entered (in the order of [`STATES`]).
    pub transitions: [u64; 3],
    /// Action runs, by kind ([`KINDS`]) and outcome ([`OUTCOMES`]).
    pub actions: [[u64; 4]; 2],
    /// Action durations, by kind.
    pub durations: [Hist<LONG_SLOTS>; 2],
}

/// One configured group.
#[derive(Debug)]
pub(super) struct GroupSeries {
    pub spec: GroupSpec,
    pub name: Arc<str>,
    pub cells: Mutex<GroupCells>,
    /// For an exclusive group, the leader its `heartbeat_cluster_leader`
    /// series names (empty when none is known).
    pub leader: Mutex<Arc<str>>,
}

/// Records by position, and an index by name.
#[derive(Debug)]
pub(super) struct Table<T> {
    pub list: Vec<T>,
    pub index: HashMap<Arc<str>, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            list: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Table<T> {
    /// The record named `name`, if it is configured.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|&i| &self.list[i])
    }

    /// A table of `list`, indexed by `name_of`.
    pub fn new(list: Vec<T>, name_of: impl Fn(&T) -> Arc<str>) -> Table<T> {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, t)| (name_of(t), i))
            .collect();
        Table { list, index }
    }
}

/// The latest round: its lateness and when it ended (Unix seconds).
#[derive(Debug, Default)]
pub(super) struct RoundCells {
    pub duration: Hist<LONG_SLOTS>,
    pub last: Option<(f64, f64)>,
}

/// Every series of the engine. Shared between [`super::Metrics`], which
/// updates it, and the registry, which encodes it through [`Collector`].
#[derive(Debug, Default)]
pub(super) struct Store {
    pub checks: RwLock<Table<CheckSeries>>,
    pub groups: RwLock<Table<GroupSeries>>,
    pub rounds: Mutex<RoundCells>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(t: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    t.read().unwrap_or_else(PoisonError::into_inner)
}

/// A family's descriptor, as the registry writes one: the help text of
/// `full_name` in [`super::FAMILIES`] with a final period.
fn describe<'a>(
    encoder: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    full_name: &str,
    unit: Option<&'a Unit>,
    kind: MetricType,
) -> Result<MetricEncoder<'a>, std::fmt::Error> {
    encoder.encode_descriptor(name, &format!("{}.", help(full_name)), unit, kind)
}

fn counter(metric: &mut MetricEncoder<'_>, labels: &impl EncodeLabelSet, value: u64) -> Fmt {
    metric
        .encode_family(labels)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn gauge(metric: &mut MetricEncoder<'_>, labels: &impl EncodeLabelSet, value: i64) -> Fmt {
    metric.encode_family(labels)?.encode_gauge(&value)
}

type Fmt = Result<(), std::fmt::Error>;

impl Collector for Store {
    /// Writes the families in the order the registry wrote them when each
    /// was registered on its own: `heartbeat_build_info`, the check
    /// families, the group families, the round duration, then
    /// `heartbeat_check_info` and the latest round. A family without a
    /// series is left out, as the registry leaves out an empty family.
    fn encode(&self, mut encoder: DescriptorEncoder) -> Fmt {
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        let metric = describe(
            &mut encoder,
            "build",
            "heartbeat_build_info",
            None,
            MetricType::Info,
        )?;
        build.encode(metric)?;
        let mut buckets = Vec::with_capacity(CHECK_SLOTS);
        {
            let checks = read(&self.checks);
            encode_checks(&mut encoder, &checks.list, &mut buckets)?;
        }
        {
            let groups = read(&self.groups);
            encode_groups(&mut encoder, &groups.list, &mut buckets)?;
        }
        let (duration, last) = {
            let rounds = lock(&self.rounds);
            (rounds.duration, rounds.last)
        };
        let metric = describe(
            &mut encoder,
            "round_duration",
            "heartbeat_round_duration_seconds",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        duration.encode(&LONG_BUCKETS, &mut buckets, metric)?;
        encode_check_info(&mut encoder, &read(&self.checks).list)?;
        if let Some((lateness, ended)) = last {
            for (name, full_name, value) in [
                (
                    "round_lateness",
                    "heartbeat_round_lateness_seconds",
                    lateness,
                ),
                (
                    "last_round_timestamp",
                    "heartbeat_last_round_timestamp_seconds",
                    ended,
                ),
            ] {
                let mut metric = describe(
                    &mut encoder,
                    name,
                    full_name,
                    Some(&Unit::Seconds),
                    MetricType::Gauge,
                )?;
                metric.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}

/// The per-check families.
fn encode_checks(
    encoder: &mut DescriptorEncoder<'_>,
    checks: &[CheckSeries],
    buckets: &mut Vec<(f64, u64)>,
) -> Fmt {
    if checks.is_empty() {
        return Ok(());
    }
    // Each record is copied out under its lock as its series are written:
    // nothing the size of the whole table is allocated for a scrape.
    let rows = || checks.iter().map(|c| (c, *lock(&c.cells)));
    let mut metric = describe(
        encoder,
        "check_results",
        "heartbeat_check_results_total",
        None,
        MetricType::Counter,
    )?;
    for (check, cells) in rows() {
        for (result, value) in RESULTS.iter().zip([cells.ok, cells.failed]) {
            let labels = [
                ("check", &*check.name),
                ("type", check.kind.as_str()),
                ("result", result),
            ];
            counter(&mut metric, &labels, value)?;
        }
    }
    drop(metric);
    if rows().any(|(_, cells)| cells.latest.is_some()) {
        let mut metric = describe(
            encoder,
            "check_success",
            "heartbeat_check_success",
            None,
            MetricType::Gauge,
        )?;
        for (check, cells) in rows() {
            if let Some((success, _)) = cells.latest {
                gauge(&mut metric, &[("check", &*check.name)], i64::from(success))?;
            }
        }
        drop(metric);
        let mut metric = describe(
            encoder,
            "check_duration",
            "heartbeat_check_duration_seconds",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (check, cells) in rows() {
            if let Some((_, seconds)) = cells.latest {
                metric
                    .encode_family(&[("check", &*check.name)])?
                    .encode_gauge(&seconds)?;
            }
        }
    }
    if rows().any(|(_, cells)| cells.expiry.is_some()) {
        let mut metric = describe(
            encoder,
            "check_certificate_expiry_timestamp",
            "heartbeat_check_certificate_expiry_timestamp_seconds",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (check, cells) in rows() {
            if let Some(expiry) = cells.expiry {
                metric
                    .encode_family(&[("check", &*check.name)])?
                    .encode_gauge(&expiry)?;
            }
        }
    }
    let mut metric = describe(
        encoder,
        "check_latency",
        "heartbeat_check_latency_seconds",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for (check, cells) in rows() {
        let labels = [("check", &*check.name)];
        let series = metric.encode_family(&labels)?;
        cells.latency.encode(&CHECK_BUCKETS, buckets, series)?;
    }
    drop(metric);
    let mut metric = describe(
        encoder,
        "check_state",
        "heartbeat_check_state",
        None,
        MetricType::Gauge,
    )?;
    for (check, cells) in rows() {
        for state in STATES {
            let labels = [("check", &*check.name), ("state", state.as_str())];
            gauge(&mut metric, &labels, i64::from(state == cells.state))?;
        }
    }
    Ok(())
}

/// The families of the exclusive groups, when there are any: their role
/// (one series per role, 1 for the current one) and their leader.
fn encode_cluster(encoder: &mut DescriptorEncoder<'_>, groups: &[GroupSeries]) -> Fmt {
    let rows = || {
        groups
            .iter()
            .filter_map(|g| Some((g, lock(&g.cells).role?)))
    };
    if rows().next().is_none() {
        return Ok(());
    }
    let mut metric = describe(
        encoder,
        "cluster_role",
        "heartbeat_cluster_role",
        None,
        MetricType::Gauge,
    )?;
    for (group, role) in rows() {
        for each in Role::ALL {
            let labels = [("group", &*group.name), ("role", each.label())];
            gauge(&mut metric, &labels, i64::from(each == role))?;
        }
    }
    drop(metric);
    let mut metric = describe(
        encoder,
        "cluster_leader",
        "heartbeat_cluster_leader",
        None,
        MetricType::Gauge,
    )?;
    for (group, _) in rows() {
        let leader = Arc::clone(&lock(&group.leader));
        let labels = [("group", &*group.name), ("leader", &*leader)];
        gauge(&mut metric, &labels, 1)?;
    }
    Ok(())
}

/// The per-group families.
fn encode_groups(
    encoder: &mut DescriptorEncoder<'_>,
    groups: &[GroupSeries],
    buckets: &mut Vec<(f64, u64)>,
) -> Fmt {
    if groups.is_empty() {
        return Ok(());
    }
    let rows = || groups.iter().map(|g| (g, *lock(&g.cells)));
    let mut metric = describe(
        encoder,
        "group_state",
        "heartbeat_group_state",
        None,
        MetricType::Gauge,
    )?;
    for (group, cells) in rows() {
        for state in STATES {
            let labels = [("group", &*group.name), ("state", state.as_str())];
            gauge(&mut metric, &labels, i64::from(state == cells.state))?;
        }
    }
    drop(metric);
    let mut metric = describe(
        encoder,
        "group_hold",
        "heartbeat_group_hold",
        None,
        MetricType::Gauge,
    )?;
    for (group, cells) in rows() {
        for hold in HOLDS {
            let labels = [("group", &*group.name), ("hold", hold_label(hold))];
            gauge(&mut metric, &labels, i64::from(hold == cells.hold))?;
        }
    }
    drop(metric);
    if rows().any(|(_, cells)| cells.hold_since.is_some()) {
        let mut metric = describe(
            encoder,
            "group_hold_timestamp",
            "heartbeat_group_hold_timestamp_seconds",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (group, cells) in rows() {
            if let Some(since) = cells.hold_since {
                metric
                    .encode_family(&[("group", &*group.name)])?
                    .encode_gauge(&since)?;
            }
        }
    }
    encode_cluster(encoder, groups)?;
    let mut metric = describe(
        encoder,
        "transitions",
        "heartbeat_transitions_total",
        None,
        MetricType::Counter,
    )?;
    for (group, cells) in rows() {
        for (state, value) in STATES.iter().zip(cells.transitions) {
            let labels = [("group", &*group.name), ("to", state.as_str())];
            counter(&mut metric, &labels, value)?;
        }
    }
    drop(metric);
    let mut metric = describe(
        encoder,
        "actions",
        "heartbeat_actions_total",
        None,
        MetricType::Counter,
    )?;
    for (group, cells) in rows() {
        for (kind, counts) in KINDS.iter().zip(cells.actions) {
            for (outcome, value) in OUTCOMES.iter().zip(counts) {
                let labels = [
                    ("group", &*group.name),
                    ("kind", kind.as_str()),
                    ("outcome", outcome),
                ];
                counter(&mut metric, &labels, value)?;
            }
        }
    }
    drop(metric);
    let mut metric = describe(
        encoder,
        "action_duration",
        "heartbeat_action_duration_seconds",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for (group, cells) in rows() {
        for (kind, hist) in KINDS.iter().zip(cells.durations) {
            let labels = [("group", &*group.name), ("kind", kind.as_str())];
            let series = metric.encode_family(&labels)?;
            hist.encode(&LONG_BUCKETS, buckets, series)?;
        }
    }
    Ok(())
}

/// `heartbeat_check_info`: one series of value 1 per configured check; no
/// family at all without checks.
fn encode_check_info(encoder: &mut DescriptorEncoder<'_>, checks: &[CheckSeries]) -> Fmt {
    if checks.is_empty() {
        return Ok(());
    }
    let mut metric = describe(
        encoder,
        "check",
        "heartbeat_check_info",
        None,
        MetricType::Info,
    )?;
    for check in checks {
        metric.encode_info(&[
            ("check", &*check.name),
            ("type", check.kind.as_str()),
            ("target", &*check.target),
        ])?;
    }
    Ok(())
}
