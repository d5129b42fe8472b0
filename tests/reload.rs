//! Reloads that change nothing about a group's health, through the real
//! binary with a load balancer's view of it: `GET /ready` and `GET /`
//! polled every 20 ms while thresholds, timing and groups change under
//! SIGHUP, and `heartbeat status` asked after each reload.

use crate::support::bin::{Scratch, lines};
use crate::support::ops::{LONG, Poller, Target, hooks, p, wait_lines};

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::poll::wait_for;

/// Regression: changing only `fall` (or `rise`, `timeout`, `interval`,
/// `action`) and reloading turned every check "new": `GET /` answered 503
/// "no result yet" and `heartbeat status` exited 1 until the next round.
#[test]
fn a_reload_of_thresholds_timing_or_groups_keeps_readiness_and_reruns_nothing() {
    let s = Scratch::new();
    let target = Target::up();
    let actions = s.path("actions.log");
    let port = crate::support::bin::free_port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let general = format!("[general]\ninterval = 1s\nlisten = {listen}\n");
    // Each step changes what a reload must not turn into a false failure;
    // the last one also feeds a new group from the same check.
    let steps: [(&[&str], &str, &str); 6] = [
        (&["g"], "g", "fall = 1\n"),
        (&["g"], "g", "fall = 3\n"),
        (&["g"], "g", "fall = 3\nrise = 4\n"),
        (&["g"], "g", "fall = 3\nrise = 4\ntimeout = 2s\n"),
        (
            &["g"],
            "g",
            "fall = 3\nrise = 4\ntimeout = 2s\ninterval = 300ms\nfast_interval = 100ms\n",
        ),
        (&["g", "h"], "g, h", "fall = 2\n"),
    ];
    let conf = |step: usize| {
        let (groups, action, extra) = steps[step];
        format!(
            "{general}{}{}",
            hooks(&actions, groups),
            target.check("web", action, extra)
        )
    };
    let path = s.write("hb.conf", &conf(0));
    let hb = s.spawn(&["-c", p(&path)]);
    wait_lines(&actions, 1);
    wait_for("GET /ready to answer 200", LONG, || {
        crate::support::http::agent()
            .get(&format!("http://{listen}/ready"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });

    let poller = Poller::start(listen);
    for step in 1..steps.len() {
        s.write("hb.conf", &conf(step));
        hb.signal(Signal::SIGHUP);
        wait_for(&format!("reload {step}"), LONG, || {
            hb.log_text().matches("reloaded").count() >= step
        });
        let status = s.run(&["status", &listen.to_string()]);
        assert_eq!(
            status.status.code(),
            Some(0),
            "heartbeat status after reload {step}:\n{}",
            String::from_utf8_lossy(&status.stdout)
        );
        // A few polls after each reload, before the next one.
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_lines(&actions, 2);
    let (polls, bad) = poller.finish();
    assert!(polls > 20, "only {polls} polls");
    assert!(
        bad.is_empty(),
        "answers other than 200 while reloading: {bad:?}"
    );

    let metrics = crate::support::http::get(listen, "/metrics").body;
    assert!(
        metrics.contains("heartbeat_check_state{check=\"web\",state=\"healthy\"} 1"),
        "{metrics}"
    );
    let log = hb.log_text();
    assert!(
        log.contains("0 checks unchanged, 0 new or changed, 0 removed or changed, 1 kept their state with new settings"),
        "{log}"
    );
    assert!(!log.contains("no result yet"), "{log}");
    // g's promotion ran once, at start-up; h, new, announced itself once.
    let mut ran = lines(&actions);
    ran.sort();
    assert_eq!(
        ran,
        [
            "promotion g unknown health 1",
            "promotion h unknown health 1"
        ],
        "{log}"
    );
}
