//! What the program does once the command line is parsed: pick the mode,
//! load the configuration, run, and say how it ended.
//!
//! Modes: `--check-config`, `--once`, the foreground loop (default), the
//! detached daemon (`-d`), the `status` subcommand.

use std::fmt::Write as _;
use std::path::Path;

use log::{info, warn};

use crate::cli::Cli;
use crate::config::{self, Loaded};
use crate::engine::{Engine, Options, Stopped};
use crate::exit::{Exit, Fatal};
use crate::model::{Config, Probe};
use crate::state::Health;
use crate::{logging, model};

/// Runs heartbeat as `cli` asks; returns the exit status of a normal end.
///
/// # Errors
/// A [`Fatal`] with the message for stderr and the exit status.
pub fn run(cli: Cli) -> Result<Exit, Fatal> {
    let loaded = load(&cli)?;
    let mut config = loaded.config;
    if let Some(listen) = cli.listen {
        config.general.listen = Some(listen);
    }
    if cli.exit_on_failure {
        config.general.exit_on_failure = true;
    }
    if cli.daemonize {
        config.general.daemonize = true;
    }
    if cli.check_config {
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        print!("{}", summary(&config));
        return Ok(Exit::Ok);
    }

    logging::init(&config.general.log, config.general.log_level)
        .map_err(|e| Fatal::new(Exit::CantCreat, e))?;
    for w in &loaded.warnings {
        warn!("{w}");
    }
    let options = Options {
        dry_run: cli.dry_run,
    };
    let engine = Engine::new(config, options).map_err(|e| Fatal::new(Exit::Config, e))?;
    if cli.once {
        let health = engine.run_once();
        info!("one round done: {health}");
        return Ok(if health == Health::Healthy {
            Exit::Ok
        } else {
            Exit::Unhealthy
        });
    }
    info!(
        "heartbeat {} started: {} checks, {} groups, interval {}",
        env!("CARGO_PKG_VERSION"),
        engine.config().checks.len(),
        engine.config().groups.len(),
        humantime::format_duration(engine.config().general.interval)
    );
    match engine.run(&|_| {}) {
        Stopped::Requested => Ok(Exit::Ok),
        Stopped::CheckFailed(reason) => {
            eprintln!("heartbeat: unhealthy: {reason}");
            Ok(Exit::Unhealthy)
        }
    }
}

/// The configuration from `-c FILE`.
fn load(cli: &Cli) -> Result<Loaded, Fatal> {
    let Some(path) = &cli.config else {
        return Err(Fatal::new(
            Exit::Usage,
            "no configuration: give -c FILE (see --help)",
        ));
    };
    config::load(path).map_err(|e| Fatal::new(Exit::Config, e.to_string()))
}

/// The `--check-config` report: groups and their checks.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let origin = config
        .path
        .as_deref()
        .map_or_else(|| "command line".into(), |p: &Path| p.display().to_string());
    let g = &config.general;
    let _ = writeln!(
        out,
        "{origin}: OK: {} groups, {} checks, interval {}, {} threads",
        config.groups.len(),
        config.checks.len(),
        humantime::format_duration(g.interval),
        g.threads
    );
    for group in &config.groups {
        let _ = writeln!(out, "group {}", group.name);
        let _ = writeln!(out, "  promotion: {}", group.promotion);
        let _ = writeln!(out, "  demotion:  {}", group.demotion);
        for check in config
            .checks
            .iter()
            .filter(|c| c.groups.contains(&group.name))
        {
            let _ = writeln!(
                out,
                "  check {:<16} {:<6} {}  timeout {} rise {} fall {}",
                check.name,
                check.probe.kind(),
                endpoint(&check.probe),
                humantime::format_duration(check.timeout),
                check.rise,
                check.fall
            );
        }
    }
    out
}

fn endpoint(probe: &Probe) -> String {
    match probe {
        Probe::Http(h) => format!("{} expect {}", h.url(), h.expect_status),
        other => model::Probe::endpoint(other),
    }
}
