//! Several nodes: exclusive action groups, elected through etcd v3.
//!
//! With `[cluster]`, each group it lists is exclusive across the nodes that
//! share its etcd: at most one node has its promotion in effect. Each node
//! campaigns for such a group while the group is healthy on it, in an etcd
//! election (`{prefix}/{group}`) with a lease of its own; the elected node
//! runs the promotion, the others the demotion with
//! `HEARTBEAT_STATE=standby`. This module talks to etcd ([`etcd`]) and runs
//! one election per group ([`election`]) on a thread of its own; the engine
//! decides the actions. The engine and the cluster meet at three points:
//!
//! - the engine tells the cluster, per group, whether it may campaign and
//!   whether its promotion is in effect ([`Cluster::set_stance`]);
//! - the cluster tells the engine what etcd says: elected, following
//!   another node, or unreachable ([`Report`], through the callback given
//!   to [`Cluster::start`], which the engine turns into an event of its one
//!   dispatch);
//! - before starting a promotion the engine asks whether the lease still
//!   leaves it time ([`Cluster::may_promote`]).
//!
//! # The guarantee and why it holds
//!
//! A new leader is elected only once the old leader's key is gone from
//! etcd: it was revoked, or its lease expired. A node revokes its lease
//! only once its demotion has ended. A node that cannot renew its lease
//! stops renewing at [`election::Timing::give_up`] and demotes at once: the
//! demotion ends at the latest `margin` before etcd can expire the lease,
//! since etcd counts the TTL from when a renewal reached it, after this
//! node sent it, and the node measures from the send on its monotonic
//! clock. A promotion starts only while it can end before that moment
//! ([`election::Timing::promote_until`]), so none is running when the
//! demotion must start. Hence the old leader has demoted before any other
//! node can be elected, provided that its clock and etcd's run at rates
//! within the margin of each other, that its process is not suspended for
//! longer than the margin, and that its demotion hook does what it says
//! within `action_timeout`. A node killed with SIGKILL runs no demotion:
//! there the guarantee rests on the lease (no other node is elected before
//! it expires) and on fencing in the promotion (see the README).

pub mod election;
pub mod etcd;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::error;
use tokio::sync::watch;

use crate::model::ClusterSpec;
use election::{State, Task, Timing};
use etcd::Etcd;

/// What the engine tells the cluster about one exclusive group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stance {
    /// The group may campaign: healthy here and not held out of service.
    pub campaign: bool,
    /// The group's promotion is in effect or running here: its lease is
    /// revoked only once this is `false`, so that no other node is
    /// elected before this one has demoted.
    pub promoted: bool,
}

/// What etcd says of this node for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// This node leads, its lease renewed.
    Elected,
    /// Another node leads, or none does (the leader is then `None`).
    Follower,
    /// etcd cannot be reached, has no quorum, or this node's lease was
    /// lost: this node cannot lead.
    Unreachable,
}

/// Why a standing changed, as the log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// This node won the election.
    Elected,
    /// This node revoked its lease (its group turned unhealthy or was put
    /// in maintenance, and its demotion has ended).
    Resigned,
    /// This node's lease could not be renewed in time, or etcd no longer
    /// has it, or its leader key is gone.
    LeaseLost,
    /// etcd could not be reached, or has no quorum.
    StoreUnreachable,
    /// etcd answers again.
    StoreReachable,
    /// Another node leads, or the leader changed.
    Following,
}

impl Why {
    /// `elected`, `resigned`, `lease lost`, `store unreachable`, `store
    /// reachable` or `following`.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Elected => "elected",
            Why::Resigned => "resigned",
            Why::LeaseLost => "lease lost",
            Why::StoreUnreachable => "store unreachable",
            Why::StoreReachable => "store reachable",
            Why::Following => "following",
        }
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of what etcd says of this node for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The group.
    pub group: String,
    /// Its standing now.
    pub standing: Standing,
    /// The leading node's name (this node's when elected), when known.
    pub leader: Option<String>,
    /// Why it changed.
    pub why: Why,
    /// More about it (etcd's error), or empty.
    pub detail: String,
}

/// Where the cluster sends its reports (the engine's event channel).
pub type Notify = Arc<dyn Fn(Report) + Send + Sync>;

/// What a group's task shares with the engine's thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// While elected: the last moment a promotion may start.
    promote_until: Option<Instant>,
}

/// One group, as the handle sees it.
struct Group {
    stance: watch::Sender<Stance>,
    shared: Arc<Mutex<Shared>>,
}

/// The running cluster: one election per exclusive group on the cluster
/// thread. Dropping it (or [`Cluster::stop`]) revokes every lease it holds.
pub struct Cluster {
    groups: HashMap<String, Group>,
    thread: Option<JoinHandle<()>>,
    alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("groups", &self.groups.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Checks what can be checked of `spec` before anything runs: its TLS
/// files.
///
/// # Errors
/// A message naming the file that cannot be used.
pub fn check(spec: &ClusterSpec) -> Result<(), String> {
    Etcd::new(spec.endpoints.clone(), &spec.tls).map(drop)
}

/// How long [`Cluster::stop`] waits for the leases to be revoked.
pub const STOP_WITHIN: Duration = Duration::from_secs(2);

impl Cluster {
    /// Starts the elections of `spec`'s groups, for actions of at most
    /// `action_timeout`; each group starts neither campaigning nor
    /// promoted, and reports to `notify` once etcd has said something.
    ///
    /// # Errors
    /// A message when the TLS files cannot be used or the thread cannot
    /// start.
    pub fn start(
        spec: &ClusterSpec,
        action_timeout: Duration,
        notify: Notify,
    ) -> Result<Cluster, String> {
        let etcd = Arc::new(Etcd::new(spec.endpoints.clone(), &spec.tls)?);
        let timing = Timing::new(spec.lease, action_timeout);
        let mut groups = HashMap::new();
        let mut tasks = Vec::new();
        for name in &spec.groups {
            let (tx, rx) = watch::channel(Stance::default());
            let shared = Arc::new(Mutex::new(Shared::default()));
            tasks.push(Task {
                group: name.clone(),
                election: spec.election(name),
                node: spec.node.clone(),
                etcd: Arc::clone(&etcd),
                timing,
                stance: rx,
                shared: Arc::clone(&shared),
                notify: Arc::clone(&notify),
                state: State::default(),
            });
            groups.insert(name.clone(), Group { stance: tx, shared });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the cluster's runtime: {e}"))?;
        let alive = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&alive);
        let thread = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runtime.block_on(async move {
                        let mut set = tokio::task::JoinSet::new();
                        for task in tasks {
                            set.spawn(task.run());
                        }
                        while set.join_next().await.is_some() {}
                    });
                }));
                if ran.is_err() {
                    error!("the cluster thread panicked");
                }
                running.store(false, Ordering::Release);
            })
            .map_err(|e| format!("cannot start the cluster thread: {e}"))?;
        Ok(Cluster {
            groups,
            thread: Some(thread),
            alive,
        })
    }

    /// Tells the election of `group` what the engine says of it. Unknown
    /// groups are ignored.
    pub fn set_stance(&self, group: &str, stance: Stance) {
        if let Some(g) = self.groups.get(group) {
            g.stance.send_if_modified(|old| {
                let changed = *old != stance;
                *old = stance;
                changed
            });
        }
    }

    /// Whether a promotion of `group` may start now: this node leads it and
    /// the lease leaves the promotion time to end before a demotion might
    /// have to start.
    pub fn may_promote(&self, group: &str) -> bool {
        self.groups
            .get(group)
            .and_then(|g| g.shared.lock().ok()?.promote_until)
            .is_some_and(|until| Instant::now() <= until)
    }

    /// A check that the cluster thread still runs, for the engine's
    /// watchdog: when it has died, no lease is renewed.
    pub fn watchdog(&self) -> Box<dyn Fn() -> bool + Send> {
        let alive = Arc::clone(&self.alive);
        Box::new(move || alive.load(Ordering::Acquire))
    }

    /// Ends every election, revoking the leases held, within
    /// [`STOP_WITHIN`].
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.groups.clear();
        if let Some(thread) = self.thread.take() {
            let until = Instant::now() + STOP_WITHIN;
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.end();
    }
}
