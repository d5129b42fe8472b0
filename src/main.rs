//! `heartbeat`: parse the command line, run, map the outcome to an exit
//! status.

use std::process::ExitCode;

use clap::Parser;
use heartbeat::app::{self, cli::Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match app::run(cli) {
        Ok(exit) => exit.into(),
        Err(fatal) => {
            if !fatal.message.is_empty() {
                eprintln!("heartbeat: {fatal}");
            }
            fatal.exit.into()
        }
    }
}
