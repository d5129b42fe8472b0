//! The engine end to end, through the real binary: script checks whose
//! results the test controls, hooks that append to a log, and assertions
//! on the exact order and count of promotions and demotions.

use crate::support::bin as support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::{Scratch, lines, wait_for};

const LONG: Duration = Duration::from_secs(15);

/// A check command that follows `plan` round by round (`+` pass, `-` fail,
/// passing after the plan ends), counting its rounds in `count`.
fn planned(count: &Path, plan: &Path) -> String {
    format!(
        "n=$(($(cat {c} 2>/dev/null || echo 0)+1)); echo $n > {c}; r=$(cut -c$n {p}); [ \"${{r:-+}}\" = + ]",
        c = count.display(),
        p = plan.display()
    )
}

/// Hooks that append `promotion GROUP PREVIOUS` / `demotion GROUP PREVIOUS
/// FAILED` to `log`.
fn hooks(log: &Path, groups: &[&str]) -> String {
    let mut out = String::from("[promotions]\n");
    for g in groups {
        out += &format!(
            "{g} = echo \"promotion $HEARTBEAT_ACTION $HEARTBEAT_PREVIOUS_STATE\" >> {}\n",
            log.display()
        );
    }
    out += "[demotions]\n";
    for g in groups {
        out += &format!(
            "{g} = echo \"demotion $HEARTBEAT_ACTION $HEARTBEAT_PREVIOUS_STATE $HEARTBEAT_FAILED_CHECKS\" >> {}\n",
            log.display()
        );
    }
    out
}

/// Waits until the planned check has run `n` rounds.
fn wait_rounds(count: &Path, n: usize) {
    wait_for(&format!("{n} rounds"), LONG, || {
        fs::read_to_string(count)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0)
            >= n
    });
}

#[test]
fn at_start_each_group_runs_exactly_one_action() {
    let s = Scratch::new();
    let (log, count) = (s.path("actions.log"), s.path("count"));
    let plan = s.write("plan", "+\n");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n{}\n[up]\ntype = script\ncommand = {}\naction = up\n[down]\ntype = script\ncommand = false\naction = down\n",
            hooks(&log, &["up", "down"]),
            planned(&count, &plan)
        ),
    );
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_for("both start-up actions", LONG, || lines(&log).len() >= 2);
    wait_rounds(&count, 10);
    let mut got = lines(&log);
    got.sort();
    assert_eq!(got, ["demotion down unknown down", "promotion up unknown"]);
    assert!(hb.stop().success());
}

#[test]
fn rise_and_fall_decide_transitions_once_each_in_order() {
    let s = Scratch::new();
    let (log, count) = (s.path("actions.log"), s.path("count"));
    // Round:      123456789
    let plan = s.write("plan", "+--+---++\n");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n{}\n[svc]\ntype = script\ncommand = {}\naction = g\nrise = 2\nfall = 3\n",
            hooks(&log, &["g"]),
            planned(&count, &plan)
        ),
    );
    let _hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_rounds(&count, 16);
    wait_for("three actions", LONG, || lines(&log).len() >= 3);
    assert_eq!(
        lines(&log),
        [
            "promotion g unknown",
            // Two failures are not enough (fall = 3); three are.
            "demotion g healthy svc",
            // Rounds 8 and 9 pass: rise = 2.
            "promotion g unhealthy",
        ]
    );
}

#[test]
fn a_slow_action_blocks_neither_rounds_nor_other_groups() {
    let s = Scratch::new();
    let (log, count) = (s.path("actions.log"), s.path("count"));
    let plan = s.write("plan", &format!("++++{}\n", "-".repeat(200)));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\naction_timeout = 30\n\
             [promotions]\nslow = sleep 3; echo slow-promoted >> {log}\nfast = echo fast-promoted >> {log}\n\
             [demotions]\nslow = echo slow-demoted >> {log}\nfast = echo fast-demoted >> {log}\n\
             [always]\ntype = script\ncommand = true\naction = slow\n\
             [flips]\ntype = script\ncommand = {}\naction = fast\n",
            planned(&count, &plan),
            log = log.display()
        ),
    );
    let _hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_for("the fast group's demotion", LONG, || {
        lines(&log).contains(&"fast-demoted".to_owned())
    });
    // The slow promotion (3 s) is still running: rounds went on without it.
    assert!(
        !lines(&log).contains(&"slow-promoted".to_owned()),
        "{:?}",
        lines(&log)
    );
    wait_for("the slow promotion", LONG, || {
        lines(&log).contains(&"slow-promoted".to_owned())
    });
    assert_eq!(
        lines(&log),
        ["fast-promoted", "fast-demoted", "slow-promoted"]
    );
}

#[test]
fn states_in_between_are_skipped_while_an_action_runs() {
    let s = Scratch::new();
    let (log, count) = (s.path("actions.log"), s.path("count"));
    // Healthy (slow promotion starts), unhealthy, healthy again while it
    // runs; then unhealthy for good while a second slow promotion... no:
    // the group stays healthy, so nothing more may run.
    let plan = s.write("plan", "+-+\n");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n\
             [promotions]\ng = echo start >> {log}; sleep 1; echo promoted >> {log}\n\
             [demotions]\ng = echo demoted >> {log}\n\
             [c]\ntype = script\ncommand = {}\naction = g\n",
            planned(&count, &plan),
            log = log.display()
        ),
    );
    let _hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_for("the promotion to end", LONG, || lines(&log).len() >= 2);
    wait_rounds(&count, 20);
    assert_eq!(lines(&log), ["start", "promoted"]);
}

#[test]
fn the_latest_state_is_applied_when_the_running_action_ends() {
    let s = Scratch::new();
    let (log, count) = (s.path("actions.log"), s.path("count"));
    let plan = s.write("plan", "+-------------------------------\n");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n\
             [promotions]\ng = sleep 1; echo promoted >> {log}\n\
             [demotions]\ng = echo demoted >> {log}\n\
             [c]\ntype = script\ncommand = {}\naction = g\n",
            planned(&count, &plan),
            log = log.display()
        ),
    );
    let _hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_for("the demotion", LONG, || lines(&log).len() >= 2);
    wait_rounds(&count, 25);
    assert_eq!(lines(&log), ["promoted", "demoted"]);
}

#[test]
fn a_failed_action_is_retried_each_round_until_it_succeeds() {
    let s = Scratch::new();
    let (log, tries) = (s.path("actions.log"), s.path("tries"));
    let count = s.path("count");
    let plan = s.write("plan", "-\n");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n\
             [promotions]\ng = echo promoted >> {log}\n\
             [demotions]\ng = echo try >> {tries}; [ $(wc -l < {tries}) -ge 3 ] && echo demoted >> {log}\n\
             [c]\ntype = script\ncommand = {}; false\naction = g\n",
            planned(&count, &plan),
            log = log.display(),
            tries = tries.display()
        ),
    );
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_for("the demotion to succeed", LONG, || !lines(&log).is_empty());
    let after = fs::read_to_string(&count)
        .unwrap()
        .trim()
        .parse::<usize>()
        .unwrap();
    wait_rounds(&count, after + 10);
    assert_eq!(
        lines(&tries).len(),
        3,
        "tries: two failures, then one success"
    );
    assert_eq!(lines(&log), ["demoted"]);
    assert!(
        hb.log_text().contains("ERROR"),
        "failed attempts are logged as errors:\n{}",
        hb.log_text()
    );
}

#[test]
fn a_hook_that_hangs_is_killed_at_action_timeout() {
    let s = Scratch::new();
    let (log, pid) = (s.path("actions.log"), s.path("hook.pid"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\naction_timeout = 500ms\n\
             [promotions]\ng = echo $$ > {pid}; exec sleep 60\nh = echo h-promoted >> {log}\n\
             [demotions]\ng = true\nh = true\n\
             [c]\ntype = script\ncommand = true\naction = g\n\
             [d]\ntype = script\ncommand = true\naction = h\n",
            pid = pid.display(),
            log = log.display()
        ),
    );
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    hb.wait_log("timed out", LONG);
    let hook = fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse::<i32>()
        .unwrap();
    wait_for("the hung hook to be gone", LONG, || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(hook), None).is_err()
    });
    assert_eq!(lines(&log), ["h-promoted"]);
}

#[test]
fn once_applies_actions_and_exits_by_health() {
    let s = Scratch::new();
    let log = s.path("actions.log");
    let healthy = s.write(
        "ok.conf",
        &format!(
            "{}\n[c]\ntype = script\ncommand = true\naction = g\n",
            hooks(&log, &["g"])
        ),
    );
    let out = s.run(&["--once", "-c", healthy.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&log), ["promotion g unknown"]);

    let unhealthy = s.write(
        "bad.conf",
        &format!(
            "{}\n[c]\ntype = script\ncommand = exit 3\naction = g\n",
            hooks(&log, &["g"])
        ),
    );
    let out = s.run(&["--once", "-c", unhealthy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&log), ["promotion g unknown", "demotion g unknown c"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("check \"c\" (script [redacted]) is unhealthy: exit status 3"),
        "{stderr}"
    );
}

#[test]
fn dry_run_logs_actions_and_runs_none() {
    let s = Scratch::new();
    let log = s.path("actions.log");
    let conf = s.write(
        "hb.conf",
        &format!(
            "{}\n[c]\ntype = script\ncommand = true\naction = g\n",
            hooks(&log, &["g"])
        ),
    );
    let out = s.run(&["--once", "--dry-run", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!log.exists(), "a dry run ran a hook");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dry run"), "{stderr}");
}

#[test]
fn a_refused_connection_is_logged_with_its_reason() {
    let s = Scratch::new();
    let port = support::free_port();
    let conf = s.write(
        "hb.conf",
        &format!("[promotions]\ng = true\n[demotions]\ng = true\n[db]\nurl = tcp://127.0.0.1:{port}\naction = g\n"),
    );
    let out = s.run(&["--once", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "check \"db\" (tcp 127.0.0.1:{port}) is unhealthy: connection refused"
        )),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_a_summary_or_every_error() {
    let s = Scratch::new();
    let good = s.write(
        "good.conf",
        "[promotions]\nweb = true\n[demotions]\nweb = true\n[site]\nurl = http://127.0.0.1:8080/health\naction = web\n",
    );
    let out = s.run(&["-t", "-c", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK: 1 group, 1 check"), "{stdout}");
    assert!(
        stdout.contains("\"site\"") && stdout.contains("http://127.0.0.1:8080/health"),
        "{stdout}"
    );

    let bad = s.write(
        "bad.conf",
        "[promotions]\nweb = true\n[site]\nurl = http://x/\naction = web\ntimeout = soon\n",
    );
    let out = s.run(&["--check-config", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "bad.conf:2: [promotions] web: action group \"web\" has a promotion but no demotion"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.conf:6: [site] timeout: \"soon\" is not a duration"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    assert_eq!(s.run(&["--interval", "5"]).status.code(), Some(2));
    assert_eq!(s.run(&["--bogus"]).status.code(), Some(2));
    let missing = s.run(&["-c", "does-not-exist.conf"]);
    assert_eq!(missing.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("does-not-exist.conf: cannot read the file")
    );
}

#[test]
fn a_group_no_check_feeds_does_not_make_once_unhealthy() {
    let s = Scratch::new();
    let log = s.path("actions.log");
    let conf = s.write(
        "hb.conf",
        &format!(
            "{}\n[c]\ntype = script\ncommand = true\naction = used\n",
            hooks(&log, &["used", "spare"])
        ),
    );
    let out = s.run(&["--once", "-c", conf.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("no check uses this action group"),
        "{stderr}"
    );
    assert_eq!(lines(&log), ["promotion used unknown"]);
}
