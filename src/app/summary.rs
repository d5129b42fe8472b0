//! The report of `--check-config` (`-t`): what the configuration will run,
//! group by group, without running anything.

use std::fmt::Write as _;
use std::path::Path;

use crate::model::{Config, Probe, short_duration};

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
