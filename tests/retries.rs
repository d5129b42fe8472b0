//! A failing hook, retried with a backoff, through the real binary: each
//! attempt numbered in `HEARTBEAT_ATTEMPT` and in the log, the wait doubling
//! from one round, and the success after failures said as such.

use crate::support::bin::{Scratch, lines};
use crate::support::ops::{LONG, hooks, p, wait_lines};

use crate::support::poll::wait_for;

/// Regression: a hook that kept failing was retried every round with a full
/// ERROR each time, without an attempt count.
#[test]
fn a_failing_demotion_is_retried_with_a_doubling_wait_until_it_succeeds() {
    let s = Scratch::new();
    let (runs, count, rounds) = (s.path("runs"), s.path("count"), s.path("rounds"));
    // The demotion fails three times, then succeeds.
    let demotion = format!(
        "n=$(($(cat {c} 2>/dev/null || echo 0)+1)); echo $n > {c}; echo \"$HEARTBEAT_ATTEMPT $HEARTBEAT_REASON\" >> {r}; [ $n -ge 4 ]",
        c = p(&count),
        r = p(&runs)
    );
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 200ms\n[promotions]\ng = true\n[demotions]\ng = {demotion}\n\
             [down]\ntype = script\ncommand = echo run >> {}; false\naction = g\n",
            p(&rounds)
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&runs, 4);
    hb.wait_log("succeeded on attempt 4", LONG);
    // Seven more rounds: the state holds and it succeeded, nothing re-runs.
    let seen = lines(&rounds).len();
    wait_for("seven more rounds", LONG, || {
        lines(&rounds).len() >= seen + 7
    });
    assert_eq!(
        lines(&runs),
        ["1 health", "2 health", "3 health", "4 health"]
    );
    let log = hb.log_text();
    for (attempt, wait) in [(1, "200ms"), (2, "400ms"), (3, "800ms")] {
        let line = format!(
            "WARNING  group \"g\": demotion attempt {attempt} failed; attempt {} in {wait}",
            attempt + 1
        );
        assert!(log.contains(&line), "no {line:?} in\n{log}");
    }
    assert!(
        log.contains("ERROR    demotion of group \"g\" failed after")
            && log.contains(", attempt 3: exit status 1"),
        "{log}"
    );
    assert!(
        log.contains("INFO     running demotion of group \"g\", attempt 4"),
        "{log}"
    );
    assert_eq!(log.matches("running demotion").count(), 4, "{log}");
}

/// SPEC §4: the failed state is retried until it succeeds or the state
/// changes; once the group recovers, the stale demotion is not retried.
#[test]
fn a_failing_demotion_stops_being_retried_once_the_group_recovers() {
    let s = Scratch::new();
    let (actions, flag, rounds) = (s.path("actions.log"), s.path("down"), s.path("rounds"));
    std::fs::write(&flag, "").unwrap();
    // Each hook appends its line; the demotion then fails.
    let hooks = hooks(&actions, &["g"]).replace(
        &format!("{}\n", p(&actions)),
        &format!("{}; [ \"$HEARTBEAT_STATE\" = healthy ]\n", p(&actions)),
    );
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 200ms\n{hooks}[c]\ntype = script\ncommand = echo run >> {}; [ ! -e {} ]\naction = g\n",
            p(&rounds),
            p(&flag)
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 2);
    std::fs::remove_file(&flag).unwrap();
    hb.wait_log("promotion of group \"g\" succeeded", LONG);
    let seen = lines(&rounds).len();
    wait_for("ten more rounds", LONG, || {
        lines(&rounds).len() >= seen + 10
    });
    let ran = lines(&actions);
    let (last, demotions) = ran.split_last().unwrap();
    // No demotion ever succeeded: the outside world was last told nothing.
    assert_eq!(last, "promotion g unknown health 1", "{ran:?}");
    assert!(demotions.len() >= 2, "{ran:?}");
    for (i, line) in demotions.iter().enumerate() {
        assert_eq!(
            *line,
            format!("demotion g unknown health {}", i + 1),
            "{ran:?}"
        );
    }
}
