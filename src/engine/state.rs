//! The state machine: rise/fall hysteresis per check, health per action
//! group, and which action a group needs next.
//!
//! Pure: no I/O, no clocks, no threads. The engine feeds it results and the
//! instants of its rounds and acts on what it returns, and the tests below
//! feed it sequences and assert the state after every step.

use std::time::{Duration, Instant};

use crate::model::{ActionReason, Health, Hold, Transition};

/// One check's hysteresis: its health and its run of equal results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckState {
    /// Current health.
    pub health: Health,
    /// Consecutive successes, 0 after a failure.
    pub successes: u32,
    /// Consecutive failures, 0 after a success.
    pub failures: u32,
}

impl CheckState {
    /// Records one result. The first result decides the health at once;
    /// after that it turns healthy after `rise` consecutive successes and
    /// unhealthy after `fall` consecutive failures (both at least 1).
    /// Returns the transition, if the health changed.
    pub fn observe(&mut self, passed: bool, rise: u32, fall: u32) -> Option<Transition> {
        if passed {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let next = match (self.health, passed) {
            (Health::Unknown, true) => Health::Healthy,
            (Health::Unknown, false) => Health::Unhealthy,
            (Health::Unhealthy, true) if self.successes >= rise.max(1) => Health::Healthy,
            (Health::Healthy, false) if self.failures >= fall.max(1) => Health::Unhealthy,
            (current, _) => current,
        };
        let previous = std::mem::replace(&mut self.health, next);
        (previous != next).then_some((previous, next))
    }
}

/// Why the engine is asking a group's [`ActionSlot`] what to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// A round has just been folded in: a failed action is retried once its
    /// backoff has passed.
    Round,
    /// The group's previous action has just ended: only a change of state
    /// since it started is acted on, so a failing action is not rerun in a
    /// tight loop.
    ActionEnded,
    /// An operator has just changed the group's hold (`maintenance`,
    /// `resume`): what is due runs now, a failed action without waiting for
    /// its backoff.
    Command,
}

/// Seconds between the attempts of a failed action at most, whatever the
/// interval: the cap of [`Backoff`] (as Kubernetes caps its restart
/// back-off).
pub const RETRY_CAP: Duration = Duration::from_secs(300);

/// How long a failed action waits before its next attempt: `first` after
/// the first failure (one round: `first` is the group's interval), then
/// twice as long after each further failure, up to `cap` (but never less
/// than `first`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Backoff {
    /// The backoff of a group whose checks run every `interval`: the next
    /// round, then doubling up to [`RETRY_CAP`].
    pub fn every(interval: Duration) -> Backoff {
        Backoff {
            first: interval,
            cap: RETRY_CAP,
        }
    }

    /// The wait after `failures` consecutive failed attempts (at least 1):
    /// `first × 2^(failures-1)`, at most `max(cap, first)`.
    pub fn delay(&self, failures: u32) -> Duration {
        let cap = self.cap.max(self.first);
        let doublings = failures.saturating_sub(1).min(31);
        self.first.saturating_mul(1 << doublings).min(cap)
    }
}

/// An action the slot says to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The state it announces: `Healthy` (promotion) or `Unhealthy`
    /// (demotion).
    pub state: Health,
    /// Which attempt at announcing that state this is, from 1
    /// (`HEARTBEAT_ATTEMPT`).
    pub attempt: u32,
    /// Why it runs (`HEARTBEAT_REASON`): a retry keeps the reason of its
    /// first attempt.
    pub reason: ActionReason,
}

/// How the action that ended went, as the slot recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It succeeded, on this attempt.
    Succeeded {
        /// The attempt that succeeded, from 1.
        attempt: u32,
    },
    /// It failed; it is retried at the first round at or after `retry_at`
    /// while the state holds.
    Failed {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// When the next attempt is due at the earliest.
        retry_at: Instant,
    },
    /// No action was running.
    NotRunning,
}

/// What one action group has told the outside world, and what it is telling
/// it now. Enforces: at most one action at a time per group; one action per
/// change of state; the latest state wins over states in between; a failed
/// action is retried while the state holds, with a [`Backoff`] between
/// attempts, until it succeeds (SPEC §4).
///
/// An operator's [`Hold`] changes what is due: while **paused** nothing
/// runs (an action already running ends as it would); in **maintenance**
/// the state to announce is `Unhealthy` whatever the health, so the
/// demotion runs unless it is already the last one to have succeeded. On
/// **resume** the current state is applied if it differs from what was
/// last announced, or if that announcement failed, at once.
///
/// Time is passed in, never read: `at` is the instant of the round the
/// engine is acting in (its place on the schedule), so that a retry due one
/// interval after an attempt falls on the next round exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionSlot {
    /// The operator's hold on the group, if any.
    pub hold: Option<Hold>,
    /// A resume has not been applied yet: the next first attempt says
    /// [`ActionReason::Resume`].
    pub resumed: bool,
    /// Why the running (or last) series of attempts runs.
    pub reason: ActionReason,
    /// The state whose action is running, if one is.
    pub running: Option<Health>,
    /// The state of the last action that ended, and whether it succeeded.
    pub last: Option<(Health, bool)>,
    /// The state of the last action that succeeded (`Unknown` before any):
    /// what the outside world was last told.
    pub announced: Health,
    /// The number of the running attempt, or of the last one that ended:
    /// 1 for the first run of an action for a state, counting up through
    /// its retries.
    pub attempt: u32,
    /// The round instant of the running (or last) attempt.
    pub attempt_at: Option<Instant>,
    /// When the failed last action may be retried, at the earliest.
    pub retry_at: Option<Instant>,
}

impl ActionSlot {
    /// Given the group's current health, returns the action that should
    /// start now, and marks it running. `None` while an action runs, while
    /// the health is unknown, once the current state's action has
    /// succeeded, and while a failed action's backoff lasts.
    ///
    /// `current` is the group's health; the state announced is
    /// [`ActionSlot::target`].
    pub fn next(&mut self, current: Health, occasion: Occasion, at: Instant) -> Option<Start> {
        if self.running.is_some() {
            return None;
        }
        let target = self.target(current)?;
        let retry = match self.last {
            None => false,
            Some((state, _)) if state != target => false,
            Some((_, true)) => {
                // Nothing to apply: a resume has nothing left to do.
                self.resumed = false;
                return None;
            }
            Some((_, false)) => true,
        };
        if retry {
            let due = match occasion {
                Occasion::Round => self.retry_at.is_none_or(|t| at >= t),
                Occasion::ActionEnded => false,
                Occasion::Command => true,
            };
            if !due {
                return None;
            }
        }
        self.reason = match self.hold {
            Some(Hold::Maintenance) => ActionReason::Maintenance,
            _ if self.resumed => ActionReason::Resume,
            _ if retry => self.reason,
            _ => ActionReason::Health,
        };
        self.resumed = false;
        self.attempt = if retry { self.attempt + 1 } else { 1 };
        self.running = Some(target);
        self.attempt_at = Some(at);
        self.retry_at = None;
        Some(Start {
            state: target,
            attempt: self.attempt,
            reason: self.reason,
        })
    }

    /// [`ActionSlot::next`] as if the group were not paused: for the
    /// demotion of an exclusive group that this node no longer leads,
    /// which a pause does not hold (see `super::exclusive`). The pause
    /// stays.
    pub fn next_despite_pause(
        &mut self,
        current: Health,
        occasion: Occasion,
        at: Instant,
    ) -> Option<Start> {
        let paused = self.hold == Some(Hold::Paused);
        if paused {
            self.hold = None;
        }
        let start = self.next(current, occasion, at);
        if paused {
            self.hold = Some(Hold::Paused);
        }
        start
    }

    /// The state the group should announce given its health `current`:
    /// `Unhealthy` in maintenance, `current` otherwise; `None` while paused
    /// or while `current` is unknown (outside maintenance).
    pub fn target(&self, current: Health) -> Option<Health> {
        match self.hold {
            Some(Hold::Paused) => None,
            Some(Hold::Maintenance) => Some(Health::Unhealthy),
            None if current == Health::Unknown => None,
            None => Some(current),
        }
    }

    /// Pauses the group: nothing runs until [`ActionSlot::resume`].
    pub fn pause(&mut self) {
        self.hold = Some(Hold::Paused);
        self.resumed = false;
    }

    /// Puts the group in maintenance: its demotion is due (unless it is the
    /// last action to have succeeded), then held.
    pub fn maintain(&mut self) {
        self.hold = Some(Hold::Maintenance);
        self.resumed = false;
    }

    /// Ends a pause or a maintenance: the current state is due if it was
    /// not announced, or its announcement failed. Returns the hold it
    /// ended, if any.
    pub fn resume(&mut self) -> Option<Hold> {
        let ended = self.hold.take();
        if ended.is_some() {
            self.resumed = true;
        }
        ended
    }

    /// Records the end of the running action; a failed one is retried
    /// `backoff` after its attempt's round instant.
    pub fn finished(&mut self, succeeded: bool, backoff: Backoff) -> Ended {
        let Some(state) = self.running.take() else {
            return Ended::NotRunning;
        };
        self.last = Some((state, succeeded));
        let attempt = self.attempt;
        if succeeded {
            self.announced = state;
            self.retry_at = None;
            return Ended::Succeeded { attempt };
        }
        let from = self.attempt_at.unwrap_or_else(Instant::now);
        let retry_at = from + backoff.delay(attempt);
        self.retry_at = Some(retry_at);
        Ended::Failed { attempt, retry_at }
    }

    /// The state the outside world has not been told although the group is
    /// in it: `current` unless the last action announced it successfully
    /// (`None` while `current` is unknown). What a stop leaves unannounced.
    ///
    /// In maintenance that is `Unhealthy`; while paused it is `current`,
    /// which nobody is being told on purpose.
    pub fn unannounced(&self, current: Health) -> Option<Health> {
        let target = match self.hold {
            Some(Hold::Paused) if current != Health::Unknown => current,
            _ => self.target(current)?,
        };
        match self.last {
            Some((state, true)) if state == target => None,
            _ => Some(target),
        }
    }

    /// Forgets the running action without recording an outcome: it was
    /// one of a group's definition before a reload changed its commands.
    pub fn abandon(&mut self) {
        self.running = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    /// Feeds `results` to a fresh check and returns the health after each.
    fn run(rise: u32, fall: u32, results: &str) -> Vec<Health> {
        let mut state = CheckState::default();
        results
            .chars()
            .map(|c| {
                state.observe(c == '+', rise, fall);
                state.health
            })
            .collect()
    }

    #[test]
    fn first_result_decides_at_once_whatever_rise_and_fall() {
        assert_eq!(run(3, 3, "+"), [Healthy]);
        assert_eq!(run(3, 3, "-"), [Unhealthy]);
    }

    #[test]
    fn fall_needs_that_many_consecutive_failures() {
        assert_eq!(
            run(1, 3, "+--+---+"),
            [
                Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Unhealthy, Healthy
            ]
        );
    }

    #[test]
    fn rise_needs_that_many_consecutive_successes() {
        assert_eq!(
            run(2, 1, "-+-++"),
            [Unhealthy, Unhealthy, Unhealthy, Unhealthy, Healthy]
        );
    }

    #[test]
    fn observe_reports_each_transition_once() {
        let mut s = CheckState::default();
        assert_eq!(s.observe(true, 1, 2), Some((Unknown, Healthy)));
        assert_eq!(s.observe(false, 1, 2), None);
        assert_eq!(s.observe(false, 1, 2), Some((Healthy, Unhealthy)));
        assert_eq!(s.observe(false, 1, 2), None);
        assert_eq!((s.successes, s.failures), (0, 3));
        assert_eq!(s.observe(true, 1, 2), Some((Unhealthy, Healthy)));
        assert_eq!((s.successes, s.failures), (1, 0));
    }

    const S: Duration = Duration::from_secs(1);

    /// A slot and a clock of rounds one second apart.
    struct Rounds {
        slot: ActionSlot,
        t0: Instant,
        round: u32,
        backoff: Backoff,
    }

    impl Rounds {
        fn new() -> Rounds {
            Rounds {
                slot: ActionSlot::default(),
                t0: Instant::now(),
                round: 0,
                backoff: Backoff::every(S),
            }
        }

        fn at(&self) -> Instant {
            self.t0 + S * self.round
        }

        /// What starts at this round for `current`.
        fn round(&mut self, current: Health) -> Option<Health> {
            let at = self.at();
            self.slot
                .next(current, Occasion::Round, at)
                .map(|s| s.state)
        }

        /// What starts when an action ends, for `current`.
        fn after_action(&mut self, current: Health) -> Option<Health> {
            let at = self.at();
            self.slot
                .next(current, Occasion::ActionEnded, at)
                .map(|s| s.state)
        }

        fn finish(&mut self, ok: bool) -> Ended {
            self.slot.finished(ok, self.backoff)
        }
    }

    #[test]
    fn slot_runs_one_action_per_change_and_none_while_state_holds() {
        let mut r = Rounds::new();
        assert_eq!(r.round(Unknown), None);
        assert_eq!(r.round(Healthy), Some(Healthy));
        assert_eq!(r.finish(true), Ended::Succeeded { attempt: 1 });
        assert_eq!(r.round(Healthy), None);
        assert_eq!(r.after_action(Healthy), None);
        assert_eq!(r.round(Unhealthy), Some(Unhealthy));
        r.finish(true);
        assert_eq!(r.slot.announced, Unhealthy);
        assert_eq!(r.round(Unhealthy), None);
        assert_eq!(r.finish(true), Ended::NotRunning);
    }

    #[test]
    fn slot_never_runs_two_at_once_and_the_latest_state_wins() {
        let mut r = Rounds::new();
        assert_eq!(r.round(Healthy), Some(Healthy));
        // Unhealthy, then healthy again, while the promotion runs.
        assert_eq!(r.round(Unhealthy), None);
        assert_eq!(r.round(Healthy), None);
        r.finish(true);
        // The state in between is skipped: healthy was already applied.
        assert_eq!(r.after_action(Healthy), None);

        assert_eq!(r.round(Unhealthy), Some(Unhealthy));
        assert_eq!(r.round(Healthy), None);
        r.finish(true);
        // The state changed while the demotion ran: promote at once.
        assert_eq!(r.after_action(Healthy), Some(Healthy));
    }

    #[test]
    fn slot_retries_a_failed_action_at_rounds_not_in_a_loop() {
        let mut r = Rounds::new();
        assert_eq!(r.round(Unhealthy), Some(Unhealthy));
        assert!(matches!(r.finish(false), Ended::Failed { attempt: 1, .. }));
        assert_eq!(r.slot.announced, Unknown);
        assert_eq!(r.after_action(Unhealthy), None);
        r.round = 1;
        assert_eq!(r.round(Unhealthy), Some(Unhealthy));
        assert_eq!(r.slot.attempt, 2);
        assert_eq!(r.finish(true), Ended::Succeeded { attempt: 2 });
        assert_eq!(r.round(Unhealthy), None);
        assert_eq!(r.slot.announced, Unhealthy);
    }

    /// A hook broken for a while at one round a second: attempts at rounds
    /// 0, 1, 3, 7, 15, … (the next round, then doubling), every 300 rounds
    /// once the wait reaches the cap; numbered 1, 2, 3…; the success
    /// after them says which attempt it was.
    #[test]
    fn slot_backs_off_doubling_to_the_cap_and_counts_attempts() {
        let mut r = Rounds::new();
        let mut attempts = Vec::new();
        for round in 0..2000 {
            r.round = round;
            if let Some(Start { attempt, .. }) = r.slot.next(Unhealthy, Occasion::Round, r.at()) {
                attempts.push((round, attempt));
                let ended = r.finish(false);
                let Ended::Failed { retry_at, .. } = ended else {
                    panic!("{ended:?}");
                };
                let wait = (retry_at - r.at()).as_secs();
                let expected = (1u64 << (attempt - 1).min(20)).min(300);
                assert_eq!(wait, expected, "attempt {attempt}");
            }
        }
        let rounds: Vec<u32> = attempts.iter().map(|a| a.0).collect();
        assert_eq!(
            rounds,
            [0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 811, 1111, 1411, 1711]
        );
        let numbers: Vec<u32> = attempts.iter().map(|a| a.1).collect();
        assert_eq!(numbers, (1..=14).collect::<Vec<_>>());
        r.round = 2011;
        assert_eq!(r.round(Unhealthy), Some(Unhealthy));
        assert_eq!(r.finish(true), Ended::Succeeded { attempt: 15 });
        // The next failure of another state starts counting again.
        r.round = 2012;
        assert_eq!(
            r.slot.next(Healthy, Occasion::Round, r.at()),
            Some(Start {
                state: Healthy,
                attempt: 1,
                reason: ActionReason::Health,
            })
        );
    }

    #[test]
    fn unannounced_is_the_current_state_until_its_action_succeeded() {
        let mut r = Rounds::new();
        assert_eq!(r.slot.unannounced(Unknown), None);
        assert_eq!(r.slot.unannounced(Healthy), Some(Healthy));
        r.round(Healthy);
        assert_eq!(r.slot.unannounced(Healthy), Some(Healthy), "running");
        r.finish(true);
        assert_eq!(r.slot.unannounced(Healthy), None);
        assert_eq!(r.slot.unannounced(Unhealthy), Some(Unhealthy));
        r.round(Unhealthy);
        r.finish(false);
        assert_eq!(r.slot.unannounced(Unhealthy), Some(Unhealthy));
        assert_eq!(r.slot.unannounced(Healthy), Some(Healthy));
    }

    /// What starts on an operator's command, for `current`.
    fn command(r: &mut Rounds, current: Health) -> Option<Start> {
        let at = r.at();
        r.slot.next(current, Occasion::Command, at)
    }

    #[test]
    fn paused_nothing_runs_and_resume_applies_the_current_state_once() {
        let mut r = Rounds::new();
        r.round(Healthy);
        r.finish(true);
        r.slot.pause();
        // A failure while paused: the checks say so, nothing runs.
        assert_eq!(r.round(Unhealthy), None);
        assert_eq!(command(&mut r, Unhealthy), None);
        assert_eq!(r.slot.unannounced(Unhealthy), Some(Unhealthy));
        assert_eq!(r.slot.resume(), Some(Hold::Paused));
        assert_eq!(
            command(&mut r, Unhealthy),
            Some(Start {
                state: Unhealthy,
                attempt: 1,
                reason: ActionReason::Resume
            })
        );
        r.finish(true);
        assert_eq!(r.round(Unhealthy), None, "once");
        // A later change of health is an ordinary one.
        assert_eq!(
            r.round(Healthy).map(|_| r.slot.reason),
            Some(ActionReason::Health)
        );
    }

    #[test]
    fn resume_runs_nothing_when_the_state_is_the_one_announced() {
        let mut r = Rounds::new();
        r.round(Healthy);
        r.finish(true);
        r.slot.pause();
        // Down and up again while paused.
        assert_eq!(r.round(Unhealthy), None);
        assert_eq!(r.round(Healthy), None);
        r.slot.resume();
        assert_eq!(command(&mut r, Healthy), None);
        assert!(!r.slot.resumed);
        assert_eq!(r.slot.resume(), None, "not held any more");
        // The next change says health, not resume.
        assert_eq!(
            r.round(Unhealthy).map(|_| r.slot.reason),
            Some(ActionReason::Health)
        );
    }

    #[test]
    fn resume_retries_a_failed_announcement_at_once() {
        let mut r = Rounds::new();
        r.round(Unhealthy);
        r.finish(false);
        r.slot.pause();
        r.round = 1;
        assert_eq!(r.round(Unhealthy), None, "paused: no retry");
        r.slot.resume();
        // Without waiting for the backoff.
        let start = command(&mut r, Unhealthy).expect("the demotion again");
        assert_eq!((start.attempt, start.reason), (2, ActionReason::Resume));
    }

    #[test]
    fn maintenance_demotes_once_holds_whatever_the_health_and_resume_promotes() {
        let mut r = Rounds::new();
        r.round(Healthy);
        r.finish(true);
        r.slot.maintain();
        assert_eq!(
            command(&mut r, Healthy),
            Some(Start {
                state: Unhealthy,
                attempt: 1,
                reason: ActionReason::Maintenance
            })
        );
        r.finish(true);
        for round in 1..5 {
            r.round = round;
            assert_eq!(r.round(Healthy), None, "held at round {round}");
            assert_eq!(r.round(Unhealthy), None, "held at round {round}");
        }
        assert_eq!(r.slot.unannounced(Healthy), None);
        r.slot.resume();
        assert_eq!(
            command(&mut r, Healthy),
            Some(Start {
                state: Healthy,
                attempt: 1,
                reason: ActionReason::Resume
            })
        );
        r.finish(true);
        assert_eq!(r.slot.announced, Healthy);
    }

    #[test]
    fn maintenance_of_a_demoted_group_runs_nothing() {
        let mut r = Rounds::new();
        r.round(Unhealthy);
        r.finish(true);
        r.slot.maintain();
        assert_eq!(command(&mut r, Unhealthy), None);
        // A recovery while in maintenance promotes nothing.
        assert_eq!(r.round(Healthy), None);
        r.slot.resume();
        assert_eq!(command(&mut r, Healthy).map(|s| s.state), Some(Healthy));
    }

    #[test]
    fn maintenance_waits_for_a_running_promotion_and_needs_no_health() {
        let mut r = Rounds::new();
        // Before the first result, maintenance demotes all the same.
        r.slot.maintain();
        assert_eq!(command(&mut r, Unknown).map(|s| s.state), Some(Unhealthy));
        r.finish(true);
        r.slot.resume();
        assert_eq!(command(&mut r, Unknown), None, "nothing known to apply");
        assert_eq!(
            r.round(Healthy).map(|_| r.slot.reason),
            Some(ActionReason::Resume)
        );
        // Maintenance while that promotion runs: the demotion follows it.
        r.slot.maintain();
        assert_eq!(command(&mut r, Healthy), None);
        r.finish(true);
        assert_eq!(r.after_action(Healthy), Some(Unhealthy));
        assert_eq!(r.slot.reason, ActionReason::Maintenance);
        // Its failure is retried, still for maintenance, at its backoff.
        r.finish(false);
        r.round = 1;
        let retry = r.slot.next(Healthy, Occasion::Round, r.at()).unwrap();
        assert_eq!(
            (retry.state, retry.attempt, retry.reason),
            (Unhealthy, 2, ActionReason::Maintenance)
        );
    }

    #[test]
    fn backoff_never_waits_less_than_one_round() {
        let slow = Backoff::every(Duration::from_secs(600));
        assert_eq!(slow.delay(1), Duration::from_secs(600));
        assert_eq!(slow.delay(5), Duration::from_secs(600));
        let fast = Backoff::every(Duration::from_millis(100));
        assert_eq!(fast.delay(1), Duration::from_millis(100));
        assert_eq!(fast.delay(4), Duration::from_millis(800));
        assert_eq!(fast.delay(40), RETRY_CAP);
        assert_eq!(fast.delay(u32::MAX), RETRY_CAP);
    }

    #[test]
    fn slot_failed_action_is_not_retried_once_the_state_moved_on_and_back() {
        // A failed demotion, then the group recovers: promotion runs, and
        // the stale demotion is not retried.
        let mut r = Rounds::new();
        r.round(Unhealthy);
        r.finish(false);
        assert_eq!(r.round(Healthy), Some(Healthy));
        assert_eq!(r.slot.attempt, 1);
        r.finish(true);
        r.round = 5;
        assert_eq!(r.round(Healthy), None);
    }
}
