//! A reload cannot change the elections: `[cluster]`, and `action_timeout`
//! while there is one, take effect only after a restart; other changes
//! are applied as without a cluster.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::bin::{Scratch, free_port};

/// A node whose etcd does not answer (its group is `no quorum`): a
/// reload needs no election.
fn conf(lease: u64, action_timeout: &str, interval: &str) -> String {
    format!(
        "[general]\ninterval = {interval}\naction_timeout = {action_timeout}\n\
         [promotions]\nvip = true\n[demotions]\nvip = true\n\
         [app]\ntype = script\ncommand = true\naction = vip\n\
         [cluster]\netcd = http://127.0.0.1:{port}\nnode = node-a\nlease = {lease}\ngroups = vip\n",
        port = free_port()
    )
}

#[test]
fn a_reload_that_changes_the_cluster_or_action_timeout_is_refused() {
    let s = Scratch::new();
    s.write("hb.conf", &conf(10, "1", "1"));
    let hb = s.spawn(&["-c", "hb.conf"]);
    hb.wait_log("cluster: node node-a", Duration::from_secs(20));
    // The etcd port was free: a new one changes [cluster] too, so keep it.
    let text = std::fs::read_to_string(s.path("hb.conf")).unwrap();
    let etcd = text
        .lines()
        .find(|l| l.starts_with("etcd = "))
        .unwrap()
        .to_owned();
    let with_etcd = |t: String| {
        t.lines()
            .map(|l| {
                if l.starts_with("etcd = ") {
                    etcd.clone()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    s.write("hb.conf", &with_etcd(conf(20, "1", "1")));
    hb.signal(Signal::SIGHUP);
    hb.wait_log(
        "reload refused, the running configuration is kept: [cluster] changed: it takes effect \
         only after a restart",
        Duration::from_secs(20),
    );
    s.write("hb.conf", &with_etcd(conf(10, "1500ms", "1")));
    hb.signal(Signal::SIGHUP);
    hb.wait_log(
        "action_timeout changed: with [cluster] it takes effect only after a restart",
        Duration::from_secs(20),
    );
    // Anything else is reloaded.
    s.write("hb.conf", &with_etcd(conf(10, "1", "2")));
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", Duration::from_secs(20));
}
