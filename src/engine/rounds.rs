//! Rounds: starting the checks that are due, collecting their results, and
//! folding them in together.
//!
//! A round starts at an instant of the schedule (see [`super::schedule`]):
//! every `[general] interval` counted from the first round, and at any
//! other instant a check's own `interval` or `fast_interval` makes it due.
//! It starts every check due by then that is not still running, and ends
//! when all of them have reported or when the next round starts, whichever
//! is first. At its end its results are folded into the checks' states
//! together, the groups are evaluated and the actions that are due start.
//! A check still running when its round ends keeps its state; its result,
//! when it comes, is folded in at once and its groups evaluated at once.
//! Rounds never overlap: at most one is open at a time.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use log::debug;

use super::Engine;
use super::schedule::grid_after;
use super::state::Occasion;
use super::table::Flight;
use crate::checks::CheckResult;
use crate::model::short_duration;
use crate::status::RoundInfo;

/// The round in progress.
pub(super) struct Round {
    pub number: u64,
    pub started: Instant,
    pub started_wall: SystemTime,
    pub lateness: Duration,
    /// Checks it started that have not reported yet.
    pub pending: usize,
    /// Results in, by check id with when the run was due and when its
    /// result came, folded in when the round ends.
    pub results: Vec<(u64, CheckResult, Instant, Instant)>,
}

/// The schedule of rounds and what is known of them.
pub(super) struct Rounds {
    /// The start of the first round: every schedule counts from it.
    pub anchor: Instant,
    /// The next `[general] interval` point.
    pub next_tick: Instant,
    /// When the loop must next look at the schedule (no later than the
    /// earliest due check).
    pub wake: Instant,
    pub open: Option<Round>,
    /// Rounds started, and completed.
    pub started: u64,
    pub completed: u64,
    pub last: Option<RoundInfo>,
    pub last_end: Option<Instant>,
    /// Callers of `Handle::probe` waiting for the end of a round.
    pub waiters: Vec<Sender<()>>,
    /// When the latest round was due (the anchor before the first): the
    /// instant actions started now count their retries from.
    pub last_planned: Instant,
}

impl Rounds {
    pub fn new(anchor: Instant) -> Rounds {
        Rounds {
            anchor,
            next_tick: anchor,
            wake: anchor,
            open: None,
            started: 0,
            completed: 0,
            last: None,
            last_end: None,
            waiters: Vec::new(),
            last_planned: anchor,
        }
    }
}

impl Engine {
    /// Starts the round due at `planned` if that time has come, first
    /// ending the round still open.
    pub(super) fn tick(&mut self, now: Instant) {
        if now < self.rounds.wake {
            return;
        }
        let due = self
            .table
            .earliest_due()
            .map_or(self.rounds.next_tick, |d| d.min(self.rounds.next_tick));
        if now < due {
            self.rounds.wake = due;
            return;
        }
        if self.rounds.open.is_some() {
            self.finish_round();
        }
        self.start_round(due, now, false);
    }

    /// Starts a round at `now` (planned for `planned`) of every check due
    /// by `now`, or of every check with `all` (`--once`, probes).
    pub(super) fn start_round(&mut self, planned: Instant, now: Instant, all: bool) {
        self.rounds.started += 1;
        self.rounds.last_planned = planned;
        let number = self.rounds.started;
        let anchor = self.rounds.anchor;
        let started_wall = SystemTime::now();
        let mut pending = 0;
        for slot in &mut self.table.slots {
            if !all && slot.next_due > now {
                continue;
            }
            let due = slot.next_due.min(now);
            if slot.flight.is_none() {
                slot.flight = Some(Flight {
                    planned: due,
                    started: started_wall,
                });
                self.runner.run(&slot.check, slot.id, number, slot.network);
                pending += 1;
            }
            slot.schedule_after(anchor, due, now);
        }
        self.runner.flush();
        if self.rounds.next_tick <= now {
            let interval = self.config.general.interval;
            self.rounds.next_tick = grid_after(anchor, interval, now);
        }
        let lateness = now.saturating_duration_since(planned);
        if lateness > Duration::from_millis(100) {
            debug!("round starts {} late", short_duration(lateness));
        }
        self.rounds.open = Some(Round {
            number,
            started: now,
            started_wall,
            lateness,
            pending,
            results: Vec::with_capacity(pending),
        });
        self.rounds.wake = self
            .table
            .earliest_due()
            .map_or(self.rounds.next_tick, |d| d.min(self.rounds.next_tick));
        self.publish_round_started(Some(started_wall));
        if pending == 0 {
            self.finish_round();
        }
    }

    /// A result has come in: kept for its round's end, or, when its round
    /// has ended, folded in at once.
    pub(super) fn check_done(&mut self, id: u64, round: u64, result: CheckResult) {
        let Some(i) = self.table.index(id) else {
            // Removed or changed by a reload while it ran.
            return;
        };
        let slot = &mut self.table.slots[i];
        let Some(flight) = slot.flight.take() else {
            return;
        };
        if self.life.stopping {
            // Its script check was just killed: the result says nothing
            // about the target.
            return;
        }
        if let Some(open) = self.rounds.open.as_mut().filter(|r| r.number == round) {
            open.results
                .push((id, result, flight.planned, Instant::now()));
            open.pending -= 1;
            if open.pending == 0 {
                self.finish_round();
            }
            return;
        }
        debug!(
            "check {:?} reported after its round ended",
            self.config.checks[i].name
        );
        // Results of the open round that came before this one are folded
        // in first: results are folded in the order they came, and a group
        // is never evaluated on a state older than one that came in (a slow
        // check's late success must not promote a group whose other check
        // has already failed in the open round).
        let earlier = self
            .rounds
            .open
            .as_mut()
            .map(|open| std::mem::take(&mut open.results))
            .unwrap_or_default();
        for (id, result, planned, came) in earlier {
            if let Some(j) = self.table.index(id) {
                self.fold(j, result, planned, came);
            }
        }
        self.fold(i, result, flight.planned, Instant::now());
        self.evaluate_groups_of(i);
        self.publish_check(i);
        // What a script check left behind is orphaned by now, not at the
        // end of the round that started it. A network check starts no
        // process: no pass over `/proc` for it.
        if !self.table.slots[i].network {
            self.reap_orphans();
        }
    }

    /// Folds one result into check `i`, with its metrics, and reschedules
    /// it from when it was due: its state decides whether the next run
    /// comes at its fast interval, and points of its schedule that passed
    /// before the result `came` are skipped (a result folded in at the end
    /// of its round does not lose the run due at that moment).
    fn fold(&mut self, i: usize, result: CheckResult, planned: Instant, came: Instant) {
        let spec = &self.config.checks[i];
        let slot = &mut self.table.slots[i];
        self.shared.metrics.check_result(
            &spec.name,
            spec.probe.kind(),
            result.healthy,
            result.latency,
        );
        if let Some(expiry) = result.certificate_expiry {
            self.shared.metrics.certificate_expiry(&spec.name, expiry);
        }
        if slot.last.is_none() {
            self.table.unreported -= 1;
        }
        slot.observe(spec, result, self.config.general.redact);
        self.shared
            .metrics
            .check_health(&spec.name, slot.state.health);
        if slot.flight.is_none() {
            slot.schedule_after(self.rounds.anchor, planned, came);
            self.rounds.wake = self.rounds.wake.min(slot.next_due);
        }
    }

    /// Ends the open round: folds its results in, evaluates the groups,
    /// starts the actions that are due and publishes the new status.
    pub(super) fn finish_round(&mut self) {
        let Some(round) = self.rounds.open.take() else {
            return;
        };
        for (id, result, planned, came) in round.results {
            if let Some(i) = self.table.index(id) {
                self.fold(i, result, planned, came);
            }
        }
        self.evaluate_groups(Occasion::Round);
        // An action that could not even start failed: that is kept too.
        self.save_state();
        let duration = round.started.elapsed();
        self.shared.metrics.round(duration, round.lateness);
        self.rounds.completed += 1;
        self.rounds.last_end = Some(Instant::now());
        self.rounds.last = Some(RoundInfo {
            started: round.started_wall,
            duration,
            lateness: round.lateness,
        });
        self.publish();
        for waiter in self.rounds.waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.reap_orphans();
    }

    /// Asks for a fresh round and answers `reply` when it has ended: at
    /// once when a round ended less than [`super::PROBE_MIN_AGE`] ago.
    pub(super) fn probe(&mut self, reply: Sender<()>) {
        let fresh = self
            .rounds
            .last_end
            .is_some_and(|end| end.elapsed() < super::PROBE_MIN_AGE);
        if fresh || self.life.stopping {
            let _ = reply.send(());
            return;
        }
        self.rounds.waiters.push(reply);
        if self.rounds.open.is_none() {
            let now = Instant::now();
            self.start_round(now, now, true);
        }
    }
}
