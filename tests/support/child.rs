//! Running one test alone, in a new process of this test binary.
//!
//! Some tests change what belongs to the whole process (its descriptor
//! limit, its system roots, its mount namespace), which would disturb the
//! tests running beside them in the shared test process. Such a test is
//! split in two: an `#[ignore]`d test that does the work and returns at once
//! unless [`is_child`] says it was started for that, and a test that runs
//! it with [`run_alone`] (or [`command`] and [`assert_passed`]) and asserts
//! that it passed.

use std::process::{Command, Output};

/// Environment variable naming the test a child process was started for.
const CHILD_VAR: &str = "HEARTBEAT_TEST_CHILD";

/// Runs the test `name` (its full path, e.g.
/// `server_fd_exhaustion::child_accept_errors`) alone in a new process of
/// this binary and panics, with its output, unless it passed.
pub fn run_alone(name: &str) {
    let out = command(name).output().expect("run the test binary");
    assert_passed(name, &out);
}

/// The command that runs the test `name` alone, for callers that add to
/// its environment first; [`is_child`] holds in it.
pub fn command(name: &str) -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_VAR, name);
    cmd
}

/// Panics, with its output, unless the child run of `name` passed (and ran
/// exactly that one test).
pub fn assert_passed(name: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its own process ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this process was started by [`run_alone`] or [`command`] for
/// the test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var_os(CHILD_VAR).is_some_and(|v| v == name)
}
