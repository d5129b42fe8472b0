//! Running one check once, as the daemon builds it, and what its result
//! must say: shared by the check tests (checks_net, checks_expect,
//! checks_grpc).

use std::time::{Duration, Instant};

use heartbeat::checks::{self, CheckResult};

/// Slack allowed past a check's timeout before a run counts as overrunning
/// its deadline.
pub const GRACE: Duration = Duration::from_millis(1500);

/// The check of one section `[probe]` (its keys in `keys`, without
/// `action` and `timeout`) with `timeout`, read from configuration text and
/// built as the daemon builds it, run once; it must keep to its deadline.
pub fn run_section(keys: &str, timeout: Duration) -> CheckResult {
    let text = format!(
        "[promotions]\ng = true\n[demotions]\ng = true\n\
         [probe]\naction = g\ntimeout = {}ms\n{keys}\n",
        timeout.as_millis()
    );
    let dir = std::env::temp_dir();
    let loaded = heartbeat::config::parse(&text, &dir.join("test.conf"), &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let built = checks::build(&loaded.config.checks).expect("check builds");
    timed(timeout, || built[0].run())
}

/// Runs `check` and asserts it ended within `timeout` + [`GRACE`].
#[track_caller]
pub fn timed(timeout: Duration, check: impl FnOnce() -> CheckResult) -> CheckResult {
    let start = Instant::now();
    let result = check();
    let took = start.elapsed();
    assert!(
        took < timeout + GRACE,
        "took {took:?}, timeout {timeout:?}: {result:?}"
    );
    result
}

/// Asserts `result` is a pass with exactly `reason`.
#[track_caller]
pub fn assert_pass(result: &CheckResult, reason: &str) {
    assert!(
        result.healthy && result.reason == reason,
        "expected a pass with {reason:?}, got {result:?}"
    );
}

/// Asserts `result` is a failure with exactly `reason`.
#[track_caller]
pub fn assert_fail(result: &CheckResult, reason: &str) {
    assert!(
        !result.healthy && result.reason == reason,
        "expected a failure with {reason:?}, got {result:?}"
    );
}
