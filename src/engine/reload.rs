//! Reload: a new configuration applied to a running engine. Checks and
//! groups whose definition is unchanged keep their state and counters, so
//! no action re-runs for them; a group whose commands changed starts
//! afresh, but only once any action of its old definition has ended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use log::{error, info, warn};

use super::exclusive::Exclusive;
use super::groups::Group;
use super::schedule::grid_after;
use super::state::{ActionSlot, Backoff, CheckState};
use super::table::{self, Slot, Table};
use super::{Engine, Lifecycle};
use crate::checks::{self, Check};
use crate::model::Config;
use crate::model::Health;

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
        let loaded = match &self.life.loader {
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
        cluster_unchanged(&self.config, &config)?;
        let checks = checks::build(&config.checks)?;
        self.runner
            .resize(super::pool_size(&config))
            .map_err(|e| e.0)?;
        warn_restart_needed(&self.config, &config, &self.path_for_messages());
        crate::logging::set_level(config.general.log_level);
        crate::logging::set_format(config.general.log_format);
        self.shared.metrics.configure(&config);

        let (slots, kept) = self.carry_over(&config, checks);
        let added = config.checks.len() - kept.total;
        let removed = self.config.checks.len() - kept.total;
        let previous: HashMap<String, Group> = self
            .groups
            .drain(..)
            .map(|g| (g.spec.name.clone(), g))
            .collect();
        for (name, old) in &previous {
            if config.groups.iter().any(|g| g.name == *name) {
                continue;
            }
            if let Some(running) = old.slot.running {
                self.orphaned_runs.insert(name.clone(), running);
            }
            if let Some(hold) = old.slot.hold {
                warn!("group {name:?} was removed by the reload: its hold ({hold}) ends with it");
            }
        }
        self.groups = make_groups(&config, &previous, &mut self.orphaned_runs);
        self.table = Table::new(slots);
        self.config = config;
        self.link_groups();
        let now = Instant::now();
        self.rounds.next_tick = grid_after(self.rounds.anchor, self.config.general.interval, now);
        self.rounds.wake = now;
        let wall = SystemTime::now();
        for g in 0..self.groups.len() {
            // A group whose membership changed may change health now.
            self.update_group(g, wall);
            let hold = self.groups[g].slot.hold.zip(self.groups[g].hold_since);
            self.shared
                .metrics
                .group_hold(&self.groups[g].spec.name, hold);
        }
        self.publish_reconfigured();
        self.settle_orders();
        self.save_state();
        let unchanged = kept.total - kept.retuned;
        let mut summary = format!(
            "{unchanged} checks unchanged, {added} new or changed, {removed} removed or changed"
        );
        if kept.retuned > 0 {
            summary += &format!(", {} kept their state with new settings", kept.retuned);
        }
        Ok(summary)
    }

    /// The checks of `config` at run time, run by `checks`: those whose
    /// probe is unchanged ([`crate::model::CheckSpec::same_probe`]: only
    /// `rise`, `fall`, `timeout`, `interval`, `fast_interval` or `action`
    /// may have changed) keep their id, state, counters, latest result and
    /// run in flight, so that readiness does not flip; new ones, and those
    /// whose probe changed, start unknown and are first due at the next
    /// point of their schedule. A kept check whose timing is unchanged
    /// keeps its place on the schedule. Returns them and how many were
    /// kept.
    fn carry_over(&mut self, config: &Config, checks: Vec<Arc<dyn Check>>) -> (Vec<Slot>, Kept) {
        let old: HashMap<&str, usize> = self
            .config
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        let (anchor, now) = (self.rounds.anchor, Instant::now());
        let mut kept = Kept::default();
        let slots = checks
            .into_iter()
            .zip(&config.checks)
            .map(|(check, spec)| {
                let timing = table::timing(spec, config.general.interval);
                let first_due = grid_after(anchor, timing.interval, now);
                match old.get(spec.name.as_str()) {
                    Some(&i) if self.config.checks[i].same_probe(spec) => {
                        kept.total += 1;
                        if self.config.checks[i] != *spec {
                            kept.retuned += 1;
                        }
                        let was = &self.table.slots[i];
                        Slot {
                            id: was.id,
                            network: table::on_network(&check),
                            check,
                            timing,
                            state: was.state,
                            last: was.last.clone(),
                            flight: was.flight,
                            next_due: if was.timing == timing {
                                was.next_due
                            } else {
                                first_due
                            },
                            groups: Vec::new(),
                        }
                    }
                    _ => Slot {
                        id: table::new_id(),
                        network: table::on_network(&check),
                        check,
                        timing,
                        state: CheckState::default(),
                        last: None,
                        flight: None,
                        next_due: first_due,
                        groups: Vec::new(),
                    },
                }
            })
            .collect();
        (slots, kept)
    }

    fn path_for_messages(&self) -> String {
        self.config
            .path
            .as_ref()
            .map_or_else(|| "command line".into(), |p| p.display().to_string())
    }
}

/// How many checks a reload kept with their state, and how many of those
/// with new settings (thresholds, timing, groups).
#[derive(Debug, Default, Clone, Copy)]
struct Kept {
    total: usize,
    retuned: usize,
}

/// The groups of `config`, keeping the action state of those in `previous`
/// whose commands are unchanged. A group whose commands changed keeps its
/// health (it comes from its checks, not its commands) and what the
/// outside world was last told, but its new commands announce its state
/// afresh; it still waits for an action of its previous definition (in
/// `previous`, or removed earlier and in `orphaned_runs`) before it runs
/// one: one action at a time per group, across reloads. A new group starts
/// unknown.
pub(super) fn make_groups(
    config: &Config,
    previous: &HashMap<String, Group>,
    orphaned_runs: &mut HashMap<String, Health>,
) -> Vec<Group> {
    config
        .groups
        .iter()
        .map(|spec| {
            let members: Vec<usize> = config
                .checks
                .iter()
                .enumerate()
                .filter(|(_, c)| c.groups.contains(&spec.name))
                .map(|(i, _)| i)
                .collect();
            let backoff = group_backoff(config, &members);
            match previous.get(&spec.name) {
                Some(old) if old.spec == *spec => Group {
                    spec: spec.clone(),
                    members,
                    health: old.health,
                    since: old.since,
                    // A failed action is retried at the next round after a
                    // reload (one that follows a fixed hook, say).
                    slot: ActionSlot {
                        retry_at: None,
                        ..old.slot
                    },
                    backoff,
                    superseded: old.superseded,
                    running_since: old.running_since,
                    last_action: old.last_action.clone(),
                    hold_since: old.hold_since,
                    announced_at: old.announced_at,
                    exclusive: old.exclusive.clone(),
                },
                old => {
                    let running = old
                        .and_then(|o| o.slot.running)
                        .or_else(|| orphaned_runs.remove(&spec.name));
                    Group {
                        spec: spec.clone(),
                        members,
                        health: old.map_or(Health::Unknown, |o| o.health),
                        since: old.and_then(|o| o.since),
                        slot: ActionSlot {
                            running,
                            announced: old.map_or(Health::Unknown, |o| o.slot.announced),
                            // A hold is the operator's, whatever the
                            // commands: it survives their change.
                            hold: old.and_then(|o| o.slot.hold),
                            ..ActionSlot::default()
                        },
                        backoff,
                        superseded: running.is_some(),
                        running_since: old.and_then(|o| o.running_since),
                        last_action: old.and_then(|o| o.last_action.clone()),
                        hold_since: old.and_then(|o| o.hold_since),
                        announced_at: old.and_then(|o| o.announced_at),
                        exclusive: exclusive(config, &spec.name, old),
                    }
                }
            }
        })
        .collect()
}

/// What is known of the election of group `name`, if it is exclusive:
/// kept across a reload (the election goes on whatever the commands).
fn exclusive(config: &Config, name: &str, old: Option<&Group>) -> Option<Exclusive> {
    let cluster = config.cluster.as_ref()?;
    if !cluster.is_exclusive(name) {
        return None;
    }
    Some(old.and_then(|o| o.exclusive.clone()).unwrap_or_default())
}

/// Why a reload that changes `[cluster]`, or `action_timeout` while there
/// is one, is refused: the elections run with the lease and the action
/// bound they started with.
fn cluster_unchanged(old: &Config, new: &Config) -> Result<(), String> {
    if old.cluster != new.cluster {
        return Err("[cluster] changed: it takes effect only after a restart".into());
    }
    if old.cluster.is_some() && old.general.action_timeout != new.general.action_timeout {
        return Err(
            "action_timeout changed: with [cluster] it takes effect only after a restart, since \
             the leases' timing depends on it"
                .into(),
        );
    }
    Ok(())
}

/// The [`Backoff`] of a group with checks `members`: its round is the
/// shortest interval of its checks (`[general] interval` without any).
fn group_backoff(config: &Config, members: &[usize]) -> Backoff {
    let interval = members
        .iter()
        .map(|&i| config.checks[i].interval.unwrap_or(config.general.interval))
        .min()
        .unwrap_or(config.general.interval);
    Backoff::every(interval)
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
