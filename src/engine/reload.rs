//! Reload: a new configuration applied to a running engine. Checks and
//! groups whose definition is unchanged keep their state and counters, so
//! no action re-runs for them; a group whose commands changed starts
//! afresh, but only once any action of its old definition has ended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use log::{error, info, warn};

use super::state::{ActionSlot, CheckState};
use super::{Engine, Group, Lifecycle, build_pool};
use crate::checks;
use crate::model::Health;
use crate::model::{CheckSpec, Config};

impl Engine {
    /// Rereads the configuration file, telling `notify` before and after.
    /// Checks and groups whose definition is unchanged keep their state, so
    /// no action re-runs for them.
    pub(super) fn reload(&mut self, notify: &dyn Fn(Lifecycle)) {
        notify(Lifecycle::Reloading);
        self.reread();
        notify(Lifecycle::Reloaded);
    }

    fn reread(&mut self) {
        let Some(path) = self.config.path.clone() else {
            warn!("reload requested, but the checks come from the command line; nothing to reload");
            return;
        };
        info!("reloading {}", path.display());
        let loaded = match &self.loader {
            Some(load) => load(&path),
            None => crate::config::load(&path).map_err(|e| e.to_string()),
        };
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                error!("reload refused, the running configuration is kept: {e}");
                return;
            }
        };
        for w in &loaded.warnings {
            warn!("{w}");
        }
        match self.apply(loaded.config) {
            Ok(summary) => info!("reloaded {}: {summary}", path.display()),
            Err(e) => error!("reload refused, the running configuration is kept: {e}"),
        }
    }

    fn apply(&mut self, config: Config) -> Result<String, String> {
        let checks = checks::build(&config.checks)?;
        if config.general.threads != self.config.general.threads {
            self.pool = Arc::new(build_pool(config.general.threads)?);
        }
        warn_restart_needed(&self.config, &config, &self.path_for_messages());
        crate::logging::set_level(config.general.log_level);
        crate::logging::set_format(config.general.log_format);

        let old: HashMap<&str, (usize, &CheckSpec)> = self
            .config
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), (i, c)))
            .collect();
        let mut kept = 0;
        let mut states = Vec::with_capacity(config.checks.len());
        let mut last = Vec::with_capacity(config.checks.len());
        for spec in &config.checks {
            match old.get(spec.name.as_str()) {
                Some(&(i, old_spec)) if old_spec == spec => {
                    kept += 1;
                    states.push(self.states[i]);
                    last.push(self.last[i].clone());
                }
                _ => {
                    states.push(CheckState::default());
                    last.push(None);
                }
            }
        }
        let previous: HashMap<String, Group> = self
            .groups
            .drain(..)
            .map(|g| (g.spec.name.clone(), g))
            .collect();
        self.metrics.configure(&config);
        let added = config.checks.len() - kept;
        let removed = self.config.checks.len() - kept;
        for (name, old) in &previous {
            if let Some(running) = old.slot.running {
                if !config.groups.iter().any(|g| g.name == *name) {
                    self.orphaned_runs.insert(name.clone(), running);
                }
            }
        }
        self.groups = make_groups(&config, &previous, &mut self.orphaned_runs);
        self.states = states;
        self.last = last;
        self.checks = Arc::new(checks);
        self.config = config;
        let now = SystemTime::now();
        for g in 0..self.groups.len() {
            // A group whose membership changed may change health now.
            self.update_group(g, now);
        }
        self.publish();
        Ok(format!(
            "{kept} checks unchanged, {added} new or changed, {removed} removed or changed"
        ))
    }

    fn path_for_messages(&self) -> String {
        self.config
            .path
            .as_ref()
            .map_or_else(|| "command line".into(), |p| p.display().to_string())
    }
}

/// The groups of `config`, keeping the action state of those in `previous`
/// whose commands are unchanged. A new or changed group starts afresh, but
/// still waits for an action of its previous definition (in `previous`,
/// or removed earlier and in `orphaned_runs`) before it runs one: one
/// action at a time per group, across reloads.
pub(super) fn make_groups(
    config: &Config,
    previous: &HashMap<String, Group>,
    orphaned_runs: &mut HashMap<String, Health>,
) -> Vec<Group> {
    config
        .groups
        .iter()
        .map(|spec| {
            let members = config
                .checks
                .iter()
                .enumerate()
                .filter(|(_, c)| c.groups.contains(&spec.name))
                .map(|(i, _)| i)
                .collect();
            match previous.get(&spec.name) {
                Some(old) if old.spec == *spec => Group {
                    spec: spec.clone(),
                    members,
                    health: old.health,
                    since: old.since,
                    slot: old.slot,
                    superseded: old.superseded,
                    last_action: old.last_action.clone(),
                },
                old => {
                    let running = old
                        .and_then(|o| o.slot.running)
                        .or_else(|| orphaned_runs.remove(&spec.name));
                    Group {
                        spec: spec.clone(),
                        members,
                        health: Health::Unknown,
                        since: None,
                        slot: ActionSlot {
                            running,
                            ..ActionSlot::default()
                        },
                        superseded: running.is_some(),
                        last_action: None,
                    }
                }
            }
        })
        .collect()
}

/// Settings that only take effect at start-up are named in a warning when
/// a reload changes them.
fn warn_restart_needed(old: &Config, new: &Config, file: &str) {
    let (a, b) = (&old.general, &new.general);
    let mut changed = Vec::new();
    if a.user != b.user {
        changed.push("user");
    }
    if a.group != b.group {
        changed.push("group");
    }
    if a.log != b.log {
        changed.push("logfile");
    }
    if a.pidfile != b.pidfile {
        changed.push("pidfile");
    }
    if a.daemonize != b.daemonize {
        changed.push("daemonize");
    }
    if a.listen != b.listen || a.on_demand != b.on_demand || a.fail_status != b.fail_status {
        changed.push("listen/on_demand/fail_status");
    }
    if !changed.is_empty() {
        warn!(
            "{file}: {} changed; this takes effect only after a restart",
            changed.join(", ")
        );
    }
}
