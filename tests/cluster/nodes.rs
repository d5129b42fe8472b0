//! Three real heartbeat processes sharing one etcd, for the failover
//! tests: each node is its own process with its own `node` name, its own
//! scratch directory and status server, and talks to every etcd member
//! through a [`Proxy`] of its own, so that a test can partition one node
//! from etcd. The exclusive group `vip` is fed by a script check that
//! fails while the node's `fail` file exists; its hooks append timestamped
//! lines to the node's hook log, which [`Cluster::timeline`] reads back.
//!
//! A node is *active* from the start of its promotion hook to the end of
//! its demotion hook, or to the moment the test killed it: the hooks write
//! `up TIME` first thing and `down TIME` last thing, and the test writes
//! `killed TIME` after a SIGKILL and `started TIME` before a (re)start.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::support::bin::{Daemon, Scratch, free_port, lines};
use crate::support::etcd::Etcd;
use crate::support::poll::wait_until;
use crate::support::proxy::Proxy;

/// The lease of the tests: short, so that failovers take seconds.
pub const LEASE: Duration = Duration::from_secs(4);
/// The round interval of every node.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// `action_timeout`: the longest that fits a 4 s lease (see
/// `heartbeat::model::longest_action_timeout`: 4/3 s − 0.4 s − 0.5 s).
pub const ACTION_TIMEOUT: &str = "400ms";
/// Slack on top of `lease + interval` for a failover on a loaded machine.
pub const SLACK: Duration = Duration::from_secs(1);

/// Seconds since the epoch, as the hooks' `date +%s.%N` writes them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What a node's hook log says, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// Its promotion hook started.
    Up,
    /// Its demotion hook ended.
    Down,
    /// The test killed it with SIGKILL.
    Killed,
    /// The test (re)started it.
    Started,
}

/// One line of a hook log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub node: usize,
    pub at: f64,
    pub mark: Mark,
    /// The rest of the line: `HEARTBEAT_STATE` and `HEARTBEAT_LEADER` of a
    /// demotion.
    pub rest: String,
}

/// One node.
pub struct Node {
    pub name: String,
    scratch: Scratch,
    pub conf: PathBuf,
    pub hooks: PathBuf,
    fail: PathBuf,
    pub port: u16,
    pub proxies: Vec<Proxy>,
    daemon: Option<Daemon>,
}

impl Node {
    /// Its status server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Whether its process runs.
    pub fn running(&self) -> bool {
        self.daemon.is_some()
    }

    /// Its heartbeat's log (stderr) so far.
    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_else(|| {
                fs::read_to_string(self.scratch.path("stderr.log")).unwrap_or_default()
            })
    }

    /// A `heartbeat` command run against this node's configuration.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut all = vec!["-c", self.conf.to_str().unwrap()];
        all.extend_from_slice(args);
        self.scratch.command(&all)
    }

    fn mark(&self, mark: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.hooks)
            .unwrap();
        writeln!(f, "{mark} {:.9}", now()).unwrap();
    }

    /// Starts its heartbeat.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "{} already runs", self.name);
        self.mark("started");
        self.daemon = Some(self.scratch.spawn(&["-c", self.conf.to_str().unwrap()]));
    }

    /// Kills its heartbeat with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let Some(mut daemon) = self.daemon.take() else {
            return;
        };
        daemon.signal(Signal::SIGKILL);
        daemon
            .wait_exit(Duration::from_secs(10))
            .expect("heartbeat did not die of SIGKILL");
        self.mark("killed");
    }

    /// Stops its heartbeat with SIGTERM; its demotion runs first.
    pub fn stop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            let status = daemon.stop();
            assert!(status.success(), "{} stopped with {status}", self.name);
        }
    }

    /// Makes its check fail (`true`) or pass.
    pub fn fail(&self, failing: bool) {
        if failing {
            fs::write(&self.fail, "").unwrap();
        } else {
            let _ = fs::remove_file(&self.fail);
        }
    }

    /// Whether its check is made to fail.
    pub fn failing(&self) -> bool {
        self.fail.exists()
    }

    /// Cuts it off from every etcd member.
    pub fn partition(&mut self) {
        for proxy in &mut self.proxies {
            proxy.cut();
        }
    }

    /// Lets it reach etcd again.
    pub fn heal(&mut self) {
        for proxy in &mut self.proxies {
            proxy.restore();
        }
    }

    /// `/status` of this node, if it answers within 2 s.
    pub fn status(&self) -> Option<serde_json::Value> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .new_agent();
        let mut reply = agent
            .get(&format!("http://{}/status", self.addr()))
            .call()
            .ok()?;
        serde_json::from_str(&reply.body_mut().read_to_string().ok()?).ok()
    }

    /// The role and leader of `vip` that `/status` shows.
    pub fn role(&self) -> Option<(String, Option<String>)> {
        let status = self.status()?;
        let group = status["groups"]
            .as_array()?
            .iter()
            .find(|g| g["name"] == "vip")?
            .clone();
        let cluster = &group["cluster"];
        Some((
            cluster["role"].as_str()?.to_owned(),
            cluster["leader"].as_str().map(str::to_owned),
        ))
    }

    /// The lines of its hook log.
    pub fn events(&self, index: usize) -> Vec<Event> {
        lines(&self.hooks)
            .iter()
            .filter_map(|line| {
                let mut words = line.splitn(3, ' ');
                let mark = match words.next()? {
                    "up" => Mark::Up,
                    "down" => Mark::Down,
                    "killed" => Mark::Killed,
                    "started" => Mark::Started,
                    _ => return None,
                };
                let at = words.next()?.parse().ok()?;
                Some(Event {
                    node: index,
                    at,
                    mark,
                    rest: words.next().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An interval during which a node was active: from its promotion's start
/// to its demotion's end (or its death); `end` is infinite while it is
/// still active.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active {
    pub node: usize,
    pub start: f64,
    pub end: f64,
}

/// Three nodes and their etcd.
pub struct Cluster {
    pub etcd: Etcd,
    pub nodes: Vec<Node>,
    pub prefix: String,
}

impl Cluster {
    /// An etcd of `members` members and three nodes (not started yet),
    /// `node-a`, `node-b`, `node-c`.
    pub fn new(members: usize) -> Cluster {
        let etcd = Etcd::start(members);
        let prefix = format!("/hb-failover-{}-{}", std::process::id(), free_port());
        let nodes = ["node-a", "node-b", "node-c"]
            .iter()
            .map(|name| node(name, &etcd, &prefix))
            .collect();
        Cluster {
            etcd,
            nodes,
            prefix,
        }
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }

    /// Every node's hook log, merged by time.
    pub fn timeline(&self) -> Vec<Event> {
        let mut all: Vec<Event> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.events(i))
            .collect();
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all
    }

    /// The intervals during which each node was active, from the hook logs.
    pub fn actives(&self) -> Vec<Active> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let mut since: Option<f64> = None;
            // Ignore what a hook left running by a SIGKILL wrote before the
            // node was started again.
            let mut dead = false;
            for e in n.events(i) {
                match e.mark {
                    Mark::Started => dead = false,
                    _ if dead => {}
                    Mark::Up => {
                        since.get_or_insert(e.at);
                    }
                    Mark::Down | Mark::Killed => {
                        if let Some(start) = since.take() {
                            out.push(Active {
                                node: i,
                                start,
                                end: e.at,
                            });
                        }
                        dead = e.mark == Mark::Killed;
                    }
                }
            }
            if let Some(start) = since {
                out.push(Active {
                    node: i,
                    start,
                    end: f64::INFINITY,
                });
            }
        }
        out.sort_by(|a, b| a.start.total_cmp(&b.start));
        out
    }

    /// Panics, with the timeline, when two nodes were ever active at once.
    pub fn assert_never_two_active(&self) {
        let actives = self.actives();
        for (k, a) in actives.iter().enumerate() {
            for b in &actives[k + 1..] {
                assert!(
                    b.node == a.node || b.start >= a.end,
                    "{} and {} were active at once: {a:?} and {b:?}\n{}",
                    self.nodes[a.node].name,
                    self.nodes[b.node].name,
                    self.dump()
                );
            }
        }
    }

    /// The node active now according to the hook logs, if exactly one is.
    pub fn active_now(&self) -> Option<usize> {
        let open: Vec<usize> = self
            .actives()
            .iter()
            .filter(|a| a.end.is_infinite())
            .map(|a| a.node)
            .collect();
        (open.len() == 1).then(|| open[0])
    }

    /// Waits until exactly one node is active by the hooks and every running
    /// node's `/status` agrees on it as the leader; returns it.
    pub fn wait_one_active(&self, within: Duration) -> usize {
        let mut found = None;
        let settled = wait_until(within, || {
            let Some(a) = self.active_now() else {
                return false;
            };
            let leader = &self.nodes[a].name;
            let agreed = self.nodes.iter().enumerate().all(|(i, n)| {
                if !n.running() {
                    return true;
                }
                match n.role() {
                    Some((role, Some(l))) if i == a => role == "active" && &l == leader,
                    Some((role, Some(l))) if n.failing() => role == "unhealthy" && &l == leader,
                    Some((role, Some(l))) => role == "standby" && &l == leader,
                    _ => false,
                }
            });
            found = Some(a);
            agreed
        });
        assert!(
            settled,
            "no single active node agreed on within {within:?} (last seen: {found:?})\n{}",
            self.dump()
        );
        found.unwrap()
    }

    /// The first promotion by another node than `old` after time `after`.
    pub fn next_up(&self, old: usize, after: f64) -> Option<Event> {
        self.timeline()
            .into_iter()
            .find(|e| e.mark == Mark::Up && e.node != old && e.at > after)
    }

    /// Waits for a promotion by another node than `old` after `after`;
    /// returns it.
    pub fn wait_next_up(&self, old: usize, after: f64, within: Duration) -> Event {
        let ok = wait_until(within, || self.next_up(old, after).is_some());
        assert!(
            ok,
            "no other node promoted within {within:?}\n{}",
            self.dump()
        );
        self.next_up(old, after).unwrap()
    }

    /// The hook logs and the heartbeat logs, for a failure's message.
    pub fn dump(&self) -> String {
        let mut text = String::from("timeline:\n");
        for e in self.timeline() {
            text.push_str(&format!(
                "  {:.3} {} {:?} {}\n",
                e.at, self.nodes[e.node].name, e.mark, e.rest
            ));
        }
        for n in &self.nodes {
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            text.push_str(&format!(
                "--- {} hook log\n{}--- {} log (last lines)\n",
                n.name,
                fs::read_to_string(&n.hooks).unwrap_or_default(),
                n.name
            ));
            for line in tail.iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Nodes first (they revoke their leases while etcd still runs).
        for n in &mut self.nodes {
            n.stop_quietly();
        }
    }
}

impl Node {
    fn stop_quietly(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            drop(daemon);
        }
    }
}

/// Writes the configuration of node `name`.
fn node(name: &str, etcd: &Etcd, prefix: &str) -> Node {
    let scratch = Scratch::new();
    let proxies: Vec<Proxy> = etcd
        .members
        .iter()
        .map(|m| Proxy::start(SocketAddr::from(([127, 0, 0, 1], m.client))))
        .collect();
    let endpoints = proxies
        .iter()
        .map(Proxy::url)
        .collect::<Vec<_>>()
        .join(", ");
    let hooks = scratch.path("hooks.log");
    let fail = scratch.path("fail");
    let port = free_port();
    let text = format!(
        "[general]\n\
         interval = {interval}ms\n\
         action_timeout = {ACTION_TIMEOUT}\n\
         listen = 127.0.0.1:{port}\n\
         control_socket = {sock}\n\
         \n\
         [promotions]\n\
         vip = echo \"up $(date +%s.%N)\" >> {hooks}\n\
         \n\
         [demotions]\n\
         vip = echo \"down $(date +%s.%N) $HEARTBEAT_STATE $HEARTBEAT_LEADER\" >> {hooks}\n\
         \n\
         [app]\n\
         type = script\n\
         command = test ! -e {fail}\n\
         timeout = 400ms\n\
         action = vip\n\
         \n\
         [cluster]\n\
         etcd = {endpoints}\n\
         node = {name}\n\
         lease = {lease}\n\
         prefix = {prefix}\n\
         groups = vip\n",
        interval = INTERVAL.as_millis(),
        sock = scratch.path("hb.sock").display(),
        hooks = hooks.display(),
        fail = fail.display(),
        lease = LEASE.as_secs(),
    );
    let conf = scratch.write("hb.conf", &text);
    Node {
        name: name.to_owned(),
        scratch,
        conf,
        hooks,
        fail,
        port,
        proxies,
        daemon: None,
    }
}
