//! What `--once` tells cron, and what a stop leaves unannounced, through
//! the real binary: an action that failed makes the run exit 3 whatever the
//! health, and a stop names each group whose latest state the outside
//! world was not told.

use crate::support::bin::{Scratch, lines};
use crate::support::ops::{LONG, hooks, p, script, wait_lines};

use nix::sys::signal::Signal;

/// Regression: a `--once` run whose promotion failed exited 0 because its
/// checks passed, so cron never heard of it.
#[test]
fn once_exits_3_when_an_action_failed_whatever_the_health() {
    let s = Scratch::new();
    let table = [
        // (check passes, hook succeeds, exit status)
        (true, true, 0),
        (false, true, 1),
        (true, false, 3),
        (false, false, 3),
    ];
    for (passes, succeeds, expected) in table {
        let hook = if succeeds { "true" } else { "exit 9" };
        let check = if passes { "true" } else { "false" };
        let conf = s.write(
            "hb.conf",
            &format!(
                "[promotions]\nok = true\ng = {hook}\n[demotions]\nok = true\ng = {hook}\n{}{}",
                script("c", check, "g"),
                script("fine", "true", "ok")
            ),
        );
        let out = s.run(&["--once", "-c", p(&conf)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(expected),
            "check passes {passes}, hook succeeds {succeeds}:\n{err}"
        );
        let named = err.contains("WARNING  group \"g\": ");
        assert_eq!(named, !succeeds, "{err}");
        assert!(!err.contains("group \"ok\": "), "{err}");
        if !succeeds {
            let (state, kind) = if passes {
                ("healthy", "promotion")
            } else {
                ("unhealthy", "demotion")
            };
            let line = format!(
                "WARNING  group \"g\": {state} was not announced: its {kind} failed (attempt 1); nothing was announced before"
            );
            assert!(err.contains(&line), "{err}");
        }
    }
}

/// A SIGTERM during `--once` gives the running promotion its deadline;
/// killed there, it is named as not announced, and the run exits 3.
#[test]
fn a_stop_during_once_names_the_group_whose_action_it_cut_short() {
    let s = Scratch::new();
    let started = s.path("started");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\naction_timeout = 1s\n[promotions]\ng = touch {}; sleep 30\n[demotions]\ng = true\n{}",
            p(&started),
            script("c", "true", "g")
        ),
    );
    let mut hb = s.spawn(&["--once", "-c", p(&conf)]);
    crate::support::poll::wait_for("the promotion to start", LONG, || started.exists());
    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("--once ends");
    let log = hb.log_text();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("INFO     stopping"), "{log}");
    assert!(
        log.contains(
            "WARNING  group \"g\": healthy was not announced: its promotion failed (attempt 1)"
        ),
        "{log}"
    );
}

/// A stop that comes while a group's action runs lets it finish, but the
/// state the group reached meanwhile is not announced: the log says so.
#[test]
fn a_stop_names_each_group_whose_latest_state_was_not_announced() {
    let s = Scratch::new();
    let (actions, flag, started) = (s.path("actions.log"), s.path("down"), s.path("started"));
    let promotion = format!("touch {}; sleep 3", p(&started));
    let hooks =
        hooks(&actions, &["g", "quiet"]).replacen("g = echo", &format!("g = {promotion}; echo"), 1);
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n{hooks}{}{}",
            script("c", &format!("[ ! -e {} ]", p(&flag)), "g"),
            script("q", "true", "quiet")
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    crate::support::poll::wait_for("the promotion to start", LONG, || started.exists());
    std::fs::write(&flag, "").unwrap();
    hb.wait_log("group \"g\" is unhealthy", LONG);
    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    let log = hb.log_text();
    assert_eq!(status.code(), Some(0), "{log}");
    // The promotion ran to its end; the demotion never started.
    wait_lines(&actions, 1);
    assert_eq!(
        lines(&actions)
            .iter()
            .filter(|l| l.starts_with("promotion g") || l.starts_with("demotion g"))
            .collect::<Vec<_>>(),
        ["promotion g unknown health 1"],
        "{log}"
    );
    assert!(
        log.contains(
            "WARNING  group \"g\": unhealthy was not announced: heartbeat stopped before its demotion ran; the outside world was last told healthy"
        ),
        "{log}"
    );
    assert!(!log.contains("group \"quiet\": "), "{log}");
}
