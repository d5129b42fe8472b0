//! `heartbeat`: parse the command line into a mode, run it, and map the
//! outcome to an exit status, printing the whole error chain once.

use std::process::ExitCode;

use clap::Parser;
use heartbeat::app::{self, Error, cli::Cli};
use heartbeat::exit::Chain;

fn main() -> ExitCode {
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
