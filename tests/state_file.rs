//! `state_file` across restarts, through the real binary: a group in
//! maintenance stays there and demotes at start-up, never promotes; a
//! paused group stays paused; `HEARTBEAT_PREVIOUS_STATE` is what the
//! outside world was last told before the restart; a corrupt file is
//! named and ignored.

use crate::support::bin::{Scratch, lines};
use crate::support::http::get;
use crate::support::ops::{LONG, Node, err, hooks, out, p, script, wait_lines, wait_more_rounds};

use std::fs;

/// Regression: after a restart every group's previous state was `unknown`,
/// so hooks could not tell a real change from a restart.
#[test]
fn a_restart_tells_hooks_what_was_announced_before_it() {
    let mut n = Node::start("state_file = DIR/state.json\n");
    let path = n.s.path("state.json");
    crate::support::poll::wait_for("the announcement in the state file", LONG, || {
        fs::read_to_string(&path).is_ok_and(|t| t.contains("\"announced\": \"healthy\""))
    });
    n.restart();
    wait_lines(&n.actions, 2);
    assert_eq!(
        n.ran(),
        [
            "promotion web unknown health 1",
            "promotion web healthy health 1"
        ]
    );
}

/// The drain survives a restart: the start-up action is the demotion
/// (reason maintenance, previous unhealthy), `GET /` fails from the first
/// round, and `resume` promotes once.
#[test]
fn maintenance_survives_a_restart_and_demotes_at_start_up_never_promotes() {
    let mut n = Node::start("state_file = DIR/state.json\n");
    let done = n.ctl(&["maintenance", "web"]);
    assert_eq!(done.status.code(), Some(0), "{}", err(&done));
    let before = n.restart();
    assert!(!before.contains("was not announced"), "{before}");
    wait_lines(&n.actions, 3);
    wait_for_rounds(&n, 5);
    assert_eq!(
        n.ran(),
        [
            "promotion web unknown health 1",
            "demotion web healthy maintenance 1",
            "demotion web unhealthy maintenance 1"
        ]
    );
    let root = get(n.listen, "/");
    assert_eq!(
        (root.status, root.body.as_str()),
        (503, "UNHEALTHY\nweb: maintenance\n")
    );
    let log = n.hb.log_text();
    assert!(
        log.contains("WARNING  group \"web\" is still in maintenance since 20"),
        "{log}"
    );

    let resumed = n.ctl(&["resume", "web"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", err(&resumed));
    n.wait_ready(200);
    wait_for_rounds(&n, 3);
    assert_eq!(n.ran()[3..], ["promotion web unhealthy resume 1"]);
    // Resumed for good: the next start is an ordinary one.
    n.restart();
    wait_lines(&n.actions, 5);
    assert_eq!(n.ran()[4..], ["promotion web healthy health 1"]);
}

/// A paused group stays paused across a restart, runs nothing at start-up
/// while its target fails, and `resume` demotes once, telling the hook the
/// state announced before the restart.
#[test]
fn a_paused_group_stays_paused_across_a_restart() {
    let mut n = Node::start("state_file = DIR/state.json\n");
    assert_eq!(n.ctl(&["pause", "web"]).status.code(), Some(0));
    n.target.down();
    n.restart();
    n.wait_ready(503);
    wait_for_rounds(&n, 5);
    assert_eq!(n.ran(), ["promotion web unknown health 1"]);
    let (_, status) = crate::support::http::get_json(n.listen, "/status");
    assert_eq!(status["groups"][0]["hold"]["kind"], "paused");
    let resumed = n.ctl(&["resume", "web"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", err(&resumed));
    assert!(
        out(&resumed).contains("demotion succeeded"),
        "{}",
        out(&resumed)
    );
    assert_eq!(n.ran()[1..], ["demotion web healthy resume 1"]);
}

/// A state file that is not one: named in a warning, ignored, and
/// rewritten at the first change; heartbeat runs as without one.
#[test]
fn a_corrupt_state_file_is_named_ignored_and_rewritten() {
    let s = Scratch::new();
    let (actions, state) = (s.path("actions.log"), s.path("state.json"));
    fs::write(&state, "{\"version\": 1, \"groups\": {\"web\": [tru").unwrap();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 200ms\nstate_file = {}\n{}{}",
            p(&state),
            hooks(&actions, &["web"]),
            script("c", "true", "web")
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);
    assert_eq!(lines(&actions), ["promotion web unknown health 1"]);
    let log = hb.log_text();
    assert!(
        log.contains(&format!(
            "WARNING  state file {} is ignored (not a heartbeat state file: ",
            state.display()
        )),
        "{log}"
    );
    crate::support::poll::wait_for("the state file rewritten", LONG, || {
        fs::read_to_string(&state).is_ok_and(|t| t.contains("\"announced\": \"healthy\""))
    });
    assert!(hb.stop().success());
}

/// From cron: each `--once` run tells its hook what the previous run
/// announced, and honours a maintenance kept in the file.
#[test]
fn once_runs_carry_the_announced_state_from_one_run_to_the_next() {
    let s = Scratch::new();
    let (actions, state) = (s.path("actions.log"), s.path("state.json"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\nstate_file = {}\n{}{}",
            p(&state),
            hooks(&actions, &["web"]),
            script("c", "true", "web")
        ),
    );
    for _ in 0..2 {
        let run = s.run(&["--once", "-c", p(&conf)]);
        assert_eq!(run.status.code(), Some(0), "{}", err(&run));
    }
    assert_eq!(
        lines(&actions),
        [
            "promotion web unknown health 1",
            "promotion web healthy health 1"
        ]
    );
    // In maintenance (as a daemon left it): demoted, and the run fails.
    let text = fs::read_to_string(&state).unwrap().replace(
        "\"hold\": null",
        "\"hold\": {\"kind\": \"maintenance\", \"since\": \"2026-11-20T13:14:00Z\"}",
    );
    fs::write(&state, text).unwrap();
    let run = s.run(&["--once", "-c", p(&conf)]);
    assert_eq!(run.status.code(), Some(1), "{}", err(&run));
    assert_eq!(lines(&actions)[2..], ["demotion web healthy maintenance 1"]);
}

fn wait_for_rounds(n: &Node, rounds: u64) {
    wait_more_rounds(n.listen, rounds);
}
