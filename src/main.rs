//! `heartbeat`: parse the command line into a mode, run it, and map the
//! outcome to an exit status, printing the whole error chain once.

use std::process::ExitCode;

use clap::Parser;
use heartbeat::app::{self, Error, cli::Cli};
use heartbeat::exit::Chain;

fn main() -> ExitCode {
    one_malloc_arena();
    match Cli::parse().into_mode().and_then(app::run) {
        Ok(exit) => exit.into(),
        Err(error) => fail(&error),
    }
}

/// Prints `error` with its causes on stderr (unless a launcher already
/// did) and gives its exit status.
fn fail(error: &Error) -> ExitCode {
    if error.needs_telling() {
        eprintln!("heartbeat: {}", Chain(error));
    }
    error.exit().into()
}

/// Has glibc's allocator keep every thread's memory in one arena (as
/// `MALLOC_ARENA_MAX=1` would), before any thread starts. By default each
/// thread that allocates gets an arena of its own, of which at least one
/// 64 MiB reservation is partly touched and never given back: at 10,000
/// TCP checks that is about 3 MiB of peak RSS. heartbeat's few threads
/// allocate little and rarely at the same moment, so sharing one arena
/// costs no measurable CPU (see `cargo bench --bench isolation`).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; it is called
    // while the process has a single thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
