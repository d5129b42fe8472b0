//! The report of `--check-config` (`-t`): what the configuration will run,
//! group by group, without running anything.
//!
//! After the first line come the `[general]` settings that scripts around
//! heartbeat read back, one `key = value` line each, with paths absolute:
//! `logfile` (a path, `stderr` or `syslog`), then `pidfile` and `user` when
//! set. `contrib/heartbeat.init` finds the pidfile this way; these lines
//! keep their form.

use std::fmt::Write as _;
use std::path::Path;

use crate::model::{Config, LogTarget, Probe, short_duration};

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
        short_duration(g.interval),
        g.threads
    );
    let logfile = match &g.log {
        LogTarget::Stderr => "stderr".into(),
        LogTarget::Syslog => "syslog".into(),
        LogTarget::File(path) => path.display().to_string(),
    };
    let _ = writeln!(out, "logfile = {logfile}");
    if let Some(pidfile) = &g.pidfile {
        let _ = writeln!(out, "pidfile = {}", pidfile.display());
    }
    if let Some(user) = &g.user {
        let _ = writeln!(out, "user = {}", user.name);
    }
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
                short_duration(check.timeout),
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
        other => other.endpoint(),
    }
}
