//! When each check runs: a fixed-rate schedule per check, counted from the
//! first round, and the faster interval while a check is between states.
//!
//! Pure: no clocks are read here, every instant is passed in, so the tests
//! below walk through timelines step by step.
//!
//! A check with interval `I` is due at `T0`, `T0 + I`, `T0 + 2I`, … where
//! `T0` is the start of the engine's first round; checks of the same
//! interval are therefore due at the same instants and run in the same
//! rounds. A run that is due while the check's previous run is still in
//! flight is skipped, never started twice: the check is next due at the
//! following point of its schedule. While a check is *between states* (it
//! has failed, but fewer than `fall` times in a row, or passed fewer than
//! `rise` times while unhealthy) and has a `fast_interval`, its next run is
//! due `fast_interval` after the start of the previous one; once it leaves
//! that state it goes back to the next point of its regular schedule.

use std::time::{Duration, Instant};

use super::state::CheckState;
use crate::model::Health;

/// One check's timing, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time between two runs.
    pub interval: Duration,
    /// Time between two runs while the check is between states, if set.
    pub fast_interval: Option<Duration>,
}

impl Timing {
    /// The next instant after `planned` (when the previous run was due)
    /// at which the check is due, counted on the fixed-rate schedule
    /// anchored at `anchor`: `planned + fast_interval` while `between`
    /// states and a fast interval is set, else the first `anchor + k ×
    /// interval` strictly after `planned`.
    pub fn next_after(&self, anchor: Instant, planned: Instant, between: bool) -> Instant {
        match self.fast_interval {
            Some(fast) if between => planned + fast,
            _ => grid_after(anchor, self.interval, planned),
        }
    }
}

/// The first `anchor + k × interval` (k ≥ 0) strictly after `t`; `anchor`
/// itself when `t` is before it.
pub fn grid_after(anchor: Instant, interval: Duration, t: Instant) -> Instant {
    if t < anchor {
        return anchor;
    }
    let interval = interval.max(Duration::from_millis(1));
    let elapsed = t - anchor;
    let steps = elapsed.as_nanos() / interval.as_nanos() + 1;
    let steps = u32::try_from(steps).unwrap_or(u32::MAX);
    anchor + interval.saturating_mul(steps)
}

/// Whether a check in `state` is between states: healthy with at least one
/// failure short of `fall`, or unhealthy with at least one success short of
/// `rise`. A check whose state is unknown is not (its first result decides
/// it at once).
pub fn between_states(state: &CheckState) -> bool {
    match state.health {
        Health::Healthy => state.failures > 0,
        Health::Unhealthy => state.successes > 0,
        Health::Unknown => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_grid_counts_from_the_anchor_not_from_late_starts() {
        let t0 = Instant::now();
        assert_eq!(grid_after(t0, S, t0), t0 + S);
        // A round that started 300 ms late does not push the next one.
        assert_eq!(grid_after(t0, S, t0 + S + ms(300)), t0 + 2 * S);
        assert_eq!(grid_after(t0, S, t0 + 2 * S), t0 + 3 * S);
        assert_eq!(grid_after(t0 + S, S, t0), t0 + S);
        // Thirty rounds later the schedule has not drifted by a nanosecond.
        let mut t = t0;
        for _ in 0..30 {
            t = grid_after(t0, ms(100), t + ms(7));
        }
        assert_eq!(t, t0 + 30 * ms(100));
    }

    #[test]
    fn checks_of_the_same_interval_share_instants_and_others_meet_them() {
        let t0 = Instant::now();
        let every_second = Timing {
            interval: S,
            fast_interval: None,
        };
        let every_half = Timing {
            interval: ms(500),
            fast_interval: None,
        };
        let a = every_second.next_after(t0, t0, false);
        let b = every_half.next_after(t0, every_half.next_after(t0, t0, false), false);
        assert_eq!(a, b, "both are due at T0 + 1s, in one round");
    }

    /// The timeline of a check with `interval = 10s`, `fast_interval = 2s`,
    /// `fall = 3`, as the README draws it: steady runs every 10 s, then
    /// after the first failure runs every 2 s until `fall` is reached, then
    /// back on the 10 s grid.
    #[test]
    fn fast_interval_confirms_a_failure_between_two_regular_runs() {
        let t0 = Instant::now();
        let timing = Timing {
            interval: 10 * S,
            fast_interval: Some(2 * S),
        };
        let mut state = CheckState::default();
        let (rise, fall) = (2, 3);
        let mut planned = t0;
        let mut runs = Vec::new();
        for passed in [true, true, false, false, false, false, true, true, true] {
            state.observe(passed, rise, fall);
            runs.push((planned - t0).as_secs());
            planned = timing.next_after(t0, planned, between_states(&state));
        }
        // +  +  -   -   -(unhealthy)  -   +   +(healthy)  +
        assert_eq!(runs, [0, 10, 20, 22, 24, 30, 40, 42, 50]);
    }

    #[test]
    fn between_states_is_a_run_short_of_rise_or_fall() {
        let mut s = CheckState::default();
        assert!(!between_states(&s));
        s.observe(true, 2, 2);
        assert!(!between_states(&s));
        s.observe(false, 2, 2);
        assert!(between_states(&s), "one failure of two");
        s.observe(false, 2, 2);
        assert!(!between_states(&s), "unhealthy now");
        s.observe(true, 2, 2);
        assert!(between_states(&s), "one success of two");
    }
}
