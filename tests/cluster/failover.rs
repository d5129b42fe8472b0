//! Failover across three real heartbeat processes and a real etcd (one
//! member and three): exactly one node active, another active within
//! `lease + interval` (+1 s) of the active's death, a failing check or a
//! maintenance resigning at once, a node cut off from etcd demoting before
//! its lease expires, an etcd member stopped changing nothing; and never
//! two nodes active at once in the hooks' logs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::nodes::{Cluster, INTERVAL, LEASE, Mark, SLACK, now};
use crate::support::etcd;
use crate::support::poll::wait_until;

const SETTLE: Duration = Duration::from_secs(30);

fn skip() -> bool {
    if !etcd::available() {
        eprintln!("skipped: {} is not installed", etcd::ETCD);
        return true;
    }
    false
}

/// The longest failover the issue allows, in seconds.
fn failover_bound() -> f64 {
    (LEASE + INTERVAL + SLACK).as_secs_f64()
}

#[test]
fn one_active_node_and_failover_on_sigkill_failing_check_and_maintenance() {
    if skip() {
        return;
    }
    let mut c = Cluster::new(1);
    c.start_all();
    let a = c.wait_one_active(SETTLE);
    let leader = c.nodes[a].name.clone();

    // The others demoted as standbys, told who leads.
    for (i, n) in c.nodes.iter().enumerate().filter(|(i, _)| *i != a) {
        let last = n
            .events(i)
            .into_iter()
            .rev()
            .find(|e| e.mark == Mark::Down)
            .unwrap_or_else(|| panic!("{} never demoted\n{}", n.name, c.dump()));
        assert_eq!(last.rest, format!("standby {leader}"), "{}", c.dump());
    }

    // heartbeat status, /metrics show the role and the leader.
    let out = c.nodes[a]
        .command(&["status", "--json"])
        .output()
        .expect("heartbeat status");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    let vip = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "vip")
        .unwrap();
    assert_eq!(vip["cluster"]["role"], "active");
    assert_eq!(vip["cluster"]["leader"], leader.as_str());
    assert_eq!(vip["cluster"]["node"], leader.as_str());
    let b0 = (a + 1) % 3;
    let out = c.nodes[b0].command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("vip ") && l.contains("standby"))
        .unwrap_or_else(|| panic!("no standby row for vip in:\n{text}"));
    assert!(row.contains(&leader), "{row}");
    // As the README's example shows it (node names of the same width).
    let (header, shown) = super::readme::status_table();
    assert!(
        text.lines().any(|l| l == header),
        "{header:?} not in:\n{text}"
    );
    assert_eq!(
        shown
            .replacen("web-1 ", &leader, 1)
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>(),
        row.split_whitespace().take(3).collect::<Vec<_>>()
    );
    let metrics = crate::support::http::get(c.nodes[a].addr(), "/metrics").body;
    assert!(
        metrics.contains("heartbeat_cluster_role{group=\"vip\",role=\"active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "heartbeat_cluster_leader{{group=\"vip\",leader=\"{leader}\"}} 1"
        )),
        "{metrics}"
    );

    // The active's check fails: it resigns, another promotes after its
    // demotion.
    let t = now();
    c.nodes[a].fail(true);
    let up = c.wait_next_up(a, t, Duration::from_secs(15));
    let b = c.wait_one_active(SETTLE);
    assert_eq!(b, up.node);
    assert!(
        c.nodes[a].log().contains("resigned"),
        "{}",
        c.nodes[a].log()
    );
    c.nodes[a].fail(false);
    // It campaigns again, and stays a standby.
    assert!(wait_until(Duration::from_secs(10), || {
        c.nodes[a].role().is_some_and(|r| r.0 == "standby")
    }));
    c.assert_never_two_active();

    // The active dies by SIGKILL: another is active within lease +
    // interval (+1 s).
    c.nodes[b].kill();
    let killed = now();
    let up = c.wait_next_up(b, killed, Duration::from_secs(20));
    assert!(
        up.at - killed <= failover_bound(),
        "failover took {:.2} s, more than lease + interval + 1 s\n{}",
        up.at - killed,
        c.dump()
    );
    c.nodes[b].start();
    let d = c.wait_one_active(SETTLE);
    assert_eq!(d, up.node);
    c.assert_never_two_active();

    // Maintenance of the active: it resigns and does not campaign.
    let t = now();
    let out = c.nodes[d]
        .command(&["maintenance", "vip"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let up = c.wait_next_up(d, t, Duration::from_secs(15));
    let e = c.wait_one_active(SETTLE);
    assert_eq!(e, up.node);
    assert_eq!(c.nodes[d].role().unwrap().0, "standby");
    let key_of = |name: &str| {
        c.etcd
            .keys(&format!("{}/vip/", c.prefix))
            .iter()
            .any(|(_, v)| v == name)
    };
    assert!(
        !key_of(&c.nodes[d].name),
        "a group in maintenance campaigns"
    );
    let out = c.nodes[d].command(&["resume", "vip"]).output().unwrap();
    assert!(out.status.success());
    let name = c.nodes[d].name.clone();
    assert!(
        wait_until(Duration::from_secs(10), || key_of(&name)),
        "a resumed group does not campaign again"
    );
    assert_eq!(c.wait_one_active(SETTLE), e);
    c.assert_never_two_active();
}

/// Polls etcd for node `name`'s candidate key under `prefix`; records the
/// last time it was seen.
struct KeyWatch {
    stop: Arc<AtomicBool>,
    last_seen: Arc<Mutex<Option<f64>>>,
    gone: Arc<Mutex<Option<f64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeyWatch {
    fn start(urls: Vec<String>, prefix: String, name: String) -> KeyWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let last_seen = Arc::new(Mutex::new(None));
        let gone = Arc::new(Mutex::new(None));
        let (s, l, g) = (stop.clone(), last_seen.clone(), gone.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                let t = now();
                if let Some(keys) = etcd::keys_at(&urls, &prefix) {
                    if keys.iter().any(|(_, v)| *v == name) {
                        *l.lock().unwrap() = Some(t);
                    } else if l.lock().unwrap().is_some() && g.lock().unwrap().is_none() {
                        *g.lock().unwrap() = Some(now());
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        KeyWatch {
            stop,
            last_seen,
            gone,
            thread: Some(thread),
        }
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn three_members_an_etcd_member_lost_changes_nothing_and_a_cut_off_leader_demotes_first() {
    if skip() {
        return;
    }
    let mut c = Cluster::new(3);
    c.start_all();
    let a = c.wait_one_active(SETTLE);

    // The etcd leader stops: a leader change and one member fewer. No
    // failover, no hook runs, for two leases.
    let before = c.timeline().len();
    let member = c.etcd.leader().expect("an etcd leader");
    c.etcd.stop_member(member);
    assert!(
        !wait_until(LEASE * 2, || c.timeline().len() != before),
        "hooks ran after an etcd member stopped\n{}",
        c.dump()
    );
    assert_eq!(c.wait_one_active(Duration::from_secs(5)), a);
    c.etcd.start_member(member);
    c.etcd.wait_ready(Duration::from_secs(30));
    assert_eq!(c.timeline().len(), before, "{}", c.dump());

    // The active is cut off from etcd: it demotes before its lease
    // expires, and another promotes only after.
    let urls = c.etcd.members.iter().map(|m| m.url()).collect();
    let watch = KeyWatch::start(urls, format!("{}/vip/", c.prefix), c.nodes[a].name.clone());
    assert!(wait_until(Duration::from_secs(5), || watch
        .last_seen
        .lock()
        .unwrap()
        .is_some()));
    let cut = now();
    c.nodes[a].partition();
    let up = c.wait_next_up(a, cut, Duration::from_secs(20));
    let down = c.nodes[a]
        .events(a)
        .into_iter()
        .find(|e| e.mark == Mark::Down && e.at > cut)
        .unwrap_or_else(|| panic!("the cut-off leader did not demote\n{}", c.dump()));
    assert!(
        wait_until(Duration::from_secs(5), || watch
            .gone
            .lock()
            .unwrap()
            .is_some()),
        "its key never left etcd"
    );
    let last_seen = watch.last_seen.lock().unwrap().unwrap();
    drop(watch);
    assert!(
        down.at < last_seen,
        "demoted at {:.3}, after its lease was last seen in etcd at {last_seen:.3}\n{}",
        down.at,
        c.dump()
    );
    assert!(down.at < up.at, "{}", c.dump());
    assert!(
        up.at - cut <= failover_bound(),
        "failover took {:.2} s\n{}",
        up.at - cut,
        c.dump()
    );
    assert!(
        down.rest.starts_with("standby") || down.rest.starts_with("unhealthy"),
        "{down:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        c.nodes[a].role().is_some_and(|r| r.0 == "no quorum")
    }));
    assert!(
        c.nodes[a].log().contains("lease lost"),
        "{}",
        c.nodes[a].log()
    );
    // Cut off, it never promotes.
    assert!(!wait_until(LEASE, || c.nodes[a]
        .events(a)
        .iter()
        .any(|e| e.mark == Mark::Up && e.at > cut)));
    c.nodes[a].heal();
    let b = c.wait_one_active(SETTLE);
    assert_eq!(b, up.node);
    c.assert_never_two_active();
}
