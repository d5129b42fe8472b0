//! Helpers for the unit tests: a process of their own ([`child`]), waiting
//! with a deadline ([`poll`]) and reading `/proc` ([`proc`]), from the very
//! files the integration tests use.
//!
//! Some behaviour is process-wide: the global logger, environment variables,
//! signal dispositions, user and group ids. Tests of it must not run in the
//! shared test process, where other tests run in parallel. They re-execute
//! the test binary to run one `#[ignore]`d "child" test, marked by an
//! environment variable so that it does nothing when run by hand. (What
//! needs a single-threaded process is tested in `tests/plumbing.rs`:
//! libtest runs each test in a thread of its own.)

// The integration tests' helpers, shared with the unit tests: one source
// for both.
#[allow(dead_code)]
#[path = "../tests/support/child.rs"]
pub mod child;
#[allow(dead_code)]
#[path = "../tests/support/poll.rs"]
pub mod poll;
#[allow(dead_code)]
#[path = "../tests/support/proc.rs"]
pub mod proc;

pub use child::{command as child, is_child};

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
