//! Randomized faults on three nodes and a three-member etcd: nodes killed
//! with SIGKILL, stopped and started again, checks flipped, etcd members
//! stopped and started, nodes cut off from etcd and let back. Throughout,
//! the hooks' logs must never show two active nodes, and whenever the
//! active node is taken out while another could lead, another must be
//! active within `lease + interval` (+1 s).
//!
//! It runs for about a minute; `HEARTBEAT_CHAOS_SECONDS` sets how long the
//! faults go on (3600 for an hour), `HEARTBEAT_CHAOS_SEED` replays a run
//! (each run prints its seed).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::nodes::{Cluster, INTERVAL, LEASE, SLACK, now};
use crate::support::etcd;
use crate::support::poll::wait_until;

/// A small xorshift generator: the faults only need to be varied and
/// replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// What the test did, for the failure message.
struct Journal(Vec<String>);

impl Journal {
    fn say(&mut self, what: String) {
        eprintln!("chaos {:.3}: {what}", now());
        self.0.push(format!("{:.3} {what}", now()));
    }
}

/// Whether node `i` could lead: it runs, its check passes, it reaches
/// etcd, and etcd has a quorum.
fn eligible(c: &Cluster, partitioned: &[bool], i: usize) -> bool {
    let n = &c.nodes[i];
    n.running() && !n.failing() && !partitioned[i] && members_down(c) <= 1
}

fn members_down(c: &Cluster) -> usize {
    c.etcd.members.iter().filter(|m| !m.running()).count()
}

#[test]
fn randomized_faults_never_make_two_nodes_active_and_failovers_stay_in_bound() {
    if !etcd::available() {
        eprintln!("skipped: {} is not installed", etcd::ETCD);
        return;
    }
    let seconds = env_number("HEARTBEAT_CHAOS_SECONDS").unwrap_or(45);
    let seed = env_number("HEARTBEAT_CHAOS_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            | 1
    });
    eprintln!("chaos: seed {seed} (HEARTBEAT_CHAOS_SEED), {seconds} s of faults");
    let mut rng = Rng(seed);
    let mut journal = Journal(Vec::new());
    let mut c = Cluster::new(3);
    c.start_all();
    c.wait_one_active(Duration::from_secs(30));
    let mut partitioned = [false; 3];
    let bound = (LEASE + INTERVAL + SLACK).as_secs_f64();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut failovers = 0;
    while Instant::now() < until {
        let active = c.active_now();
        // Half the faults aim at the active node, so that many failovers
        // are timed.
        let i = match active {
            Some(a) if rng.below(2) == 0 => a,
            _ => rng.below(3),
        };
        let t = now();
        let took_out_active;
        // With two nodes or more out of the running, mostly bring one
        // back, so that the active's faults often have a node to fail over
        // to.
        let out: Vec<usize> = (0..3)
            .filter(|&j| !c.nodes[j].running() || c.nodes[j].failing() || partitioned[j])
            .collect();
        if out.len() >= 2 && rng.below(10) < 7 {
            let j = out[rng.below(out.len())];
            journal.say(format!("bring {} back", c.nodes[j].name));
            if std::mem::take(&mut partitioned[j]) {
                c.nodes[j].heal();
            }
            c.nodes[j].fail(false);
            if !c.nodes[j].running() {
                c.nodes[j].start();
            }
            std::thread::sleep(rng.millis(300, 2500));
            c.assert_never_two_active();
            continue;
        }
        match rng.below(8) {
            0 if c.nodes[i].running() => {
                journal.say(format!("SIGKILL {}", c.nodes[i].name));
                took_out_active = active == Some(i);
                c.nodes[i].kill();
            }
            1 if c.nodes[i].running() => {
                journal.say(format!("SIGTERM {}", c.nodes[i].name));
                took_out_active = active == Some(i);
                c.nodes[i].stop();
            }
            0..=2 if !c.nodes[i].running() => {
                journal.say(format!("start {}", c.nodes[i].name));
                took_out_active = false;
                c.nodes[i].start();
            }
            3 => {
                let failing = !c.nodes[i].failing();
                journal.say(format!(
                    "check of {} {}",
                    c.nodes[i].name,
                    if failing { "fails" } else { "passes" }
                ));
                took_out_active = failing && active == Some(i);
                c.nodes[i].fail(failing);
            }
            4 if !partitioned[i] => {
                journal.say(format!("cut {} off from etcd", c.nodes[i].name));
                took_out_active = active == Some(i);
                partitioned[i] = true;
                c.nodes[i].partition();
            }
            4 | 5 if partitioned[i] => {
                journal.say(format!("let {} reach etcd", c.nodes[i].name));
                took_out_active = false;
                partitioned[i] = false;
                c.nodes[i].heal();
            }
            6 if c.etcd.members[i].running() && (members_down(&c) == 0 || rng.below(4) == 0) => {
                journal.say(format!("stop etcd member {i}"));
                // Without a quorum no node can lead: no bound applies.
                took_out_active = false;
                c.etcd.stop_member(i);
            }
            6 | 7 if !c.etcd.members[i].running() => {
                journal.say(format!("start etcd member {i}"));
                took_out_active = false;
                c.etcd.start_member(i);
            }
            _ => {
                took_out_active = false;
            }
        }
        let others = (0..3).any(|j| Some(j) != active && eligible(&c, &partitioned, j));
        if let (true, true, Some(old)) = (took_out_active, others, active) {
            // Another must be active within lease + interval (+1 s), as
            // long as nothing else is done meanwhile.
            let within = Duration::from_secs_f64(bound + 5.0);
            let ok = wait_until(within, || c.next_up(old, t).is_some());
            let up = c.next_up(old, t);
            assert!(
                ok && up.as_ref().is_some_and(|u| u.at - t <= bound),
                "no failover within {bound} s (next promotion: {up:?})\nseed {seed}\n{}\n{}",
                journal.0.join("\n"),
                c.dump()
            );
            failovers += 1;
        } else {
            std::thread::sleep(rng.millis(300, 2500));
        }
        c.assert_never_two_active();
    }
    // Everything back: one active node, and never two at once.
    journal.say("heal everything".into());
    for i in 0..3 {
        if !c.etcd.members[i].running() {
            c.etcd.start_member(i);
        }
    }
    for (i, cut) in partitioned.iter_mut().enumerate() {
        if std::mem::take(cut) {
            c.nodes[i].heal();
        }
        c.nodes[i].fail(false);
        if !c.nodes[i].running() {
            c.nodes[i].start();
        }
    }
    c.etcd.wait_ready(Duration::from_secs(30));
    c.wait_one_active(Duration::from_secs(30));
    c.assert_never_two_active();
    eprintln!("chaos: seed {seed}: {failovers} failovers timed, never two active");
}
