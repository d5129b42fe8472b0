//! Waiting for a condition with a deadline: the one way tests wait.
//!
//! Tests never sleep and hope; they poll what a user would see (a file, a
//! log line, an answer) every 20 ms until it holds or the deadline passes.
//! Deadlines are generous (seconds, not milliseconds): the tests run in
//! parallel on a loaded two-core machine.
//!
//! Self-contained, so that the `plumbing` test binary can include it too.

use std::time::{Duration, Instant};

/// How long to sleep between two looks.
const STEP: Duration = Duration::from_millis(20);

/// Calls `done` until it returns true or `within` has passed; returns its
/// last answer.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(STEP);
    }
}

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
/// Returns how long it took.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    assert!(
        wait_until(timeout, cond),
        "timed out after {timeout:?} waiting for {what}"
    );
    start.elapsed()
}
