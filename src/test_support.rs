//! Helpers for tests that need a process of their own.
//!
//! Some behaviour is process-wide: the global logger, environment variables,
//! signal dispositions, user and group ids. Tests of it must not run in the
//! shared test process, where other tests run in parallel. They re-execute
//! the test binary to run one `#[ignore]`d "child" test, marked by an
//! environment variable so that it does nothing when run by hand, or they
//! run a small program from `examples/` when a single-threaded process is
//! needed (libtest runs each test in a thread of its own).

use std::path::PathBuf;
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
/// Path of the example program `name`, built by `cargo test` next to the
/// test binary (`target/<profile>/examples/<name>`).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    // target/<profile>/deps/heartbeat-HASH -> target/<profile>/examples/NAME
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "example program {} is missing: run `cargo test` (which builds examples) \
         or `cargo build --examples` first",
        path.display()
    );
    path
}

/// Whether the tests run as root. Tests that need root skip themselves
/// (with a note on stderr) otherwise.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
