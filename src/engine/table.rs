//! The checks at run time: for each, what runs it, its hysteresis state,
//! its latest result, its run in flight and when it is next due.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use super::schedule::{Timing, between_states, grid_after};
use super::state::CheckState;
use crate::checks::{Check, CheckResult};
use crate::model::{CheckSpec, Health, Transition};
use crate::status::LastResult;

/// A run of a check that has started and not reported yet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flight {
    /// When it was due (its place on the schedule).
    pub planned: Instant,
    /// When it started, by the wall clock.
    pub started: SystemTime,
}

/// One check at run time. Its spec is the same index of
/// `Config::checks`.
pub(super) struct Slot {
    /// Identity across reloads: kept while the check's definition is
    /// unchanged, so a result from before a reload finds its check.
    pub id: u64,
    pub check: Arc<dyn Check>,
    /// Whether the check waits on the network (runs as a future) rather
    /// than on its thread.
    pub network: bool,
    pub timing: Timing,
    pub state: CheckState,
    pub last: Option<LastResult>,
    pub flight: Option<Flight>,
    /// When its next run is due.
    pub next_due: Instant,
    /// The groups it feeds (indices into the engine's groups).
    pub groups: Vec<usize>,
}

/// A fresh check id, unique in this process.
pub(super) fn new_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether `check` waits on the network: it gives a future.
pub(super) fn on_network(check: &Arc<dyn Check>) -> bool {
    Arc::clone(check).probe().is_some()
}

/// The timing of `spec` under the `[general] interval` `general`.
pub(super) fn timing(spec: &CheckSpec, general: Duration) -> Timing {
    Timing {
        interval: spec.interval.unwrap_or(general),
        fast_interval: spec.fast_interval,
    }
}

/// Every check, in configuration order, and an index by id.
#[derive(Default)]
pub(super) struct Table {
    pub slots: Vec<Slot>,
    by_id: HashMap<u64, usize>,
    /// Checks without a result yet.
    pub unreported: usize,
}

impl Table {
    /// A table of `slots`.
    pub fn new(slots: Vec<Slot>) -> Table {
        let by_id = slots.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let unreported = slots.iter().filter(|s| s.last.is_none()).count();
        Table {
            slots,
            by_id,
            unreported,
        }
    }

    /// The index of the check with `id`, if it is still configured.
    pub fn index(&self, id: u64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The earliest instant a check is due.
    pub fn earliest_due(&self) -> Option<Instant> {
        self.slots.iter().map(|s| s.next_due).min()
    }
}

impl Slot {
    /// Moves the check's next run past `now` after a run due at `planned`
    /// (started or skipped), on the schedule anchored at `anchor`. (After
    /// a result, `now` is when it came.)
    pub fn schedule_after(&mut self, anchor: Instant, planned: Instant, now: Instant) {
        let between = between_states(&self.state);
        let next = self.timing.next_after(anchor, planned, between);
        // Points of the schedule already past are skipped: a late check
        // runs at the next one, never in a burst of catch-up runs.
        self.next_due = if next > now {
            next
        } else {
            match self.timing.fast_interval {
                Some(fast) if between => grid_after(planned, fast, now),
                _ => grid_after(anchor, self.timing.interval, now),
            }
        };
    }

    /// Folds one result into the check's state, logs it, and keeps it as
    /// the latest result. Returns the transition, if any.
    pub fn observe(
        &mut self,
        spec: &CheckSpec,
        result: CheckResult,
        redact: bool,
    ) -> Option<Transition> {
        let transition = self.state.observe(result.healthy, spec.rise, spec.fall);
        log_result(spec, &self.state, transition, &result, redact);
        self.last = Some(LastResult {
            healthy: result.healthy,
            reason: result.reason,
            latency: result.latency,
            at: SystemTime::now(),
            certificate_expiry: result.certificate_expiry,
        });
        transition
    }
}

/// Logs one check result so that the log says why before a transition
/// happens, without repeating itself during a long outage:
/// - a transition: one line, WARNING to unhealthy, INFO to healthy;
/// - a failure counting towards `fall`: WARNING, with the count;
/// - a success counting towards `rise`: INFO, with the count;
/// - a result that confirms the current state: DEBUG.
fn log_result(
    spec: &CheckSpec,
    state: &CheckState,
    transition: Option<Transition>,
    result: &CheckResult,
    redact: bool,
) {
    let what = || describe(spec, redact);
    let reason = &result.reason;
    match transition {
        Some((Health::Unknown, Health::Unhealthy)) => {
            warn!("check {} is unhealthy: {reason}", what());
        }
        Some((Health::Unknown, to)) => info!("check {} is {to}: {reason}", what()),
        Some((_, Health::Unhealthy)) => warn!(
            "check {} is unhealthy after {}: {reason}",
            what(),
            run_of(state.failures, "failure", "failures")
        ),
        Some((_, to)) => info!(
            "check {} is {to} again after {}: {reason}",
            what(),
            run_of(state.successes, "success", "successes")
        ),
        None if !result.healthy && state.health == Health::Healthy => warn!(
            "check {} failed ({} of {} before unhealthy): {reason}",
            what(),
            state.failures,
            spec.fall
        ),
        None if result.healthy && state.health == Health::Unhealthy => info!(
            "check {} passed ({} of {} before healthy): {reason}",
            what(),
            state.successes,
            spec.rise
        ),
        None if result.healthy => debug!("check {} passed: {reason}", what()),
        None => debug!("check {} still failing: {reason}", what()),
    }
}

/// `1 failure`, `3 consecutive failures`.
fn run_of(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} consecutive {many}")
    }
}

/// `"name" (type endpoint)`, how logs name a check; secrets left out
/// unless `redact` is false (see [`crate::model::Probe::endpoint_as`]).
pub(super) fn describe(spec: &CheckSpec, redact: bool) -> String {
    format!(
        "{:?} ({} {})",
        spec.name,
        spec.probe.kind(),
        spec.probe.endpoint_as(redact)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::script::ScriptCheck;

    fn slot(interval: Duration, fast: Option<Duration>, anchor: Instant) -> Slot {
        Slot {
            id: new_id(),
            check: Arc::new(ScriptCheck::new("true".into(), Duration::from_secs(1))),
            network: false,
            timing: Timing {
                interval,
                fast_interval: fast,
            },
            state: CheckState::default(),
            last: None,
            flight: None,
            next_due: anchor,
            groups: Vec::new(),
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_run_that_outlived_its_interval_resumes_at_the_next_point_without_catching_up() {
        let t0 = Instant::now();
        let mut s = slot(S, None, t0);
        // On time: the next point.
        s.schedule_after(t0, t0, t0 + Duration::from_millis(20));
        assert_eq!(s.next_due, t0 + S);
        // A run due at t0 whose result came 3.5 s later: the points at 1,
        // 2 and 3 s are gone, the next is at 4 s, not three runs at once.
        s.schedule_after(t0, t0, t0 + Duration::from_millis(3500));
        assert_eq!(s.next_due, t0 + 4 * S);
        // A result that came just before the next point keeps it, even when
        // folded in later (at the end of its round).
        s.schedule_after(t0, t0 + S, t0 + S + Duration::from_millis(999));
        assert_eq!(s.next_due, t0 + 2 * S);
    }

    #[test]
    fn between_states_a_late_run_resumes_on_the_fast_grid() {
        let t0 = Instant::now();
        let mut s = slot(10 * S, Some(S), t0);
        s.state.observe(true, 1, 3);
        s.state.observe(false, 1, 3);
        s.schedule_after(t0, t0, t0 + Duration::from_millis(100));
        assert_eq!(s.next_due, t0 + S);
        s.schedule_after(t0, t0, t0 + Duration::from_millis(2500));
        assert_eq!(s.next_due, t0 + 3 * S);
    }
}
