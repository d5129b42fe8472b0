//! Helpers for tests that need a process of their own.
//!
//! Some behaviour is process-wide: the global logger, environment variables,
//! signal dispositions, user and group ids. Tests of it must not run in the
//! shared test process, where other tests run in parallel. They re-execute
//! the test binary to run one `#[ignore]`d "child" test, marked by an
//! environment variable so that it does nothing when run by hand. (What
//! needs a single-threaded process is tested in `tests/plumbing.rs`:
//! libtest runs each test in a thread of its own.)

use std::process::Command;

/// Environment variable naming the child test that should do its work.
const CHILD_VAR: &str = "HEARTBEAT_TEST_CHILD";

/// A command that runs the test `name` (its full path, e.g.
/// `logging::tests::child_file`) alone, in a new process of this test
/// binary. Its stdout carries the child's own output; lines printed by the
/// child under a `child: ` prefix can be picked out with [`child_lines`].
pub fn child(name: &str) -> Command {
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

/// Whether this process was started by [`child`] to run the test `name`.
/// A child test returns at once when this is false.
pub fn is_child(name: &str) -> bool {
    std::env::var_os(CHILD_VAR).is_some_and(|v| v == name)
}

/// The lines a child printed as `child: LINE`, without the prefix. (The
/// first one may follow libtest's `test NAME ... ` on the same line.)
pub fn child_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once("child: ").map(|(_, rest)| rest.to_owned()))
        .collect()
}
/// Whether the tests run as root. Tests that need root skip themselves
/// (with a note on stderr) otherwise.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
