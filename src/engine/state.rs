//! The state machine: rise/fall hysteresis per check, health per action
//! group, and which action a group needs next.
//!
//! Pure: no I/O, no clocks, no threads. The engine feeds it results and acts
//! on what it returns, and the tests below feed it sequences and assert the
//! state after every step.

use crate::model::{Health, Transition};

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
    /// A round has just been folded in: failed actions are retried.
    Round,
    /// The group's previous action has just ended: only a change of state
    /// since it started is acted on, so a failing action is not rerun in a
    /// tight loop.
    ActionEnded,
}

/// What one action group has told the outside world, and what it is telling
/// it now. Enforces: at most one action at a time per group; one action per
/// change of state; the latest state wins over states in between; a failed
/// action is retried each round while the state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionSlot {
    /// The state whose action is running, if one is.
    pub running: Option<Health>,
    /// The state of the last action that ended, and whether it succeeded.
    pub last: Option<(Health, bool)>,
    /// The state of the last action that succeeded (`Unknown` before any):
    /// what the outside world was last told.
    pub announced: Health,
}

impl ActionSlot {
    /// Given the group's current health, returns the state whose action
    /// should start now (`Healthy`: promotion, `Unhealthy`: demotion), and
    /// marks it running. `None` while an action runs, while the health is
    /// unknown, and once the current state's action has succeeded.
    pub fn next(&mut self, current: Health, occasion: Occasion) -> Option<Health> {
        if self.running.is_some() || current == Health::Unknown {
            return None;
        }
        let wanted = match self.last {
            None => true,
            Some((state, _)) if state != current => true,
            Some((_, true)) => false,
            Some((_, false)) => occasion == Occasion::Round,
        };
        if wanted {
            self.running = Some(current);
            Some(current)
        } else {
            None
        }
    }

    /// Records the end of the running action.
    pub fn finished(&mut self, succeeded: bool) {
        if let Some(state) = self.running.take() {
            self.last = Some((state, succeeded));
            if succeeded {
                self.announced = state;
            }
        }
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

    #[test]
    fn slot_runs_one_action_per_change_and_none_while_state_holds() {
        let mut slot = ActionSlot::default();
        assert_eq!(slot.next(Unknown, Occasion::Round), None);
        assert_eq!(slot.next(Healthy, Occasion::Round), Some(Healthy));
        slot.finished(true);
        assert_eq!(slot.next(Healthy, Occasion::Round), None);
        assert_eq!(slot.next(Healthy, Occasion::ActionEnded), None);
        assert_eq!(slot.next(Unhealthy, Occasion::Round), Some(Unhealthy));
        slot.finished(true);
        assert_eq!(slot.announced, Unhealthy);
        assert_eq!(slot.next(Unhealthy, Occasion::Round), None);
    }

    #[test]
    fn slot_never_runs_two_at_once_and_the_latest_state_wins() {
        let mut slot = ActionSlot::default();
        assert_eq!(slot.next(Healthy, Occasion::Round), Some(Healthy));
        // Unhealthy, then healthy again, while the promotion runs.
        assert_eq!(slot.next(Unhealthy, Occasion::Round), None);
        assert_eq!(slot.next(Healthy, Occasion::Round), None);
        slot.finished(true);
        // The state in between is skipped: healthy was already applied.
        assert_eq!(slot.next(Healthy, Occasion::ActionEnded), None);

        assert_eq!(slot.next(Unhealthy, Occasion::Round), Some(Unhealthy));
        assert_eq!(slot.next(Healthy, Occasion::Round), None);
        slot.finished(true);
        // The state changed while the demotion ran: promote at once.
        assert_eq!(slot.next(Healthy, Occasion::ActionEnded), Some(Healthy));
    }

    #[test]
    fn slot_retries_a_failed_action_each_round_not_in_a_loop() {
        let mut slot = ActionSlot::default();
        assert_eq!(slot.next(Unhealthy, Occasion::Round), Some(Unhealthy));
        slot.finished(false);
        assert_eq!(slot.announced, Unknown);
        assert_eq!(slot.next(Unhealthy, Occasion::ActionEnded), None);
        assert_eq!(slot.next(Unhealthy, Occasion::Round), Some(Unhealthy));
        slot.finished(true);
        assert_eq!(slot.next(Unhealthy, Occasion::Round), None);
        assert_eq!(slot.announced, Unhealthy);
    }

    #[test]
    fn slot_failed_action_is_not_retried_once_the_state_moved_on_and_back() {
        // A failed demotion, then the group recovers: promotion runs, and
        // the stale demotion is not retried.
        let mut slot = ActionSlot::default();
        slot.next(Unhealthy, Occasion::Round);
        slot.finished(false);
        assert_eq!(slot.next(Healthy, Occasion::Round), Some(Healthy));
        slot.finished(true);
        assert_eq!(slot.next(Healthy, Occasion::Round), None);
    }
}
