//! Per-check schedules: `interval` and `fast_interval` in check sections
//! and `[DEFAULT]`, as the configuration reader gives them to the engine.

use crate::support::bin::Scratch;

use std::time::Duration;

use heartbeat::config;

const HOOKS: &str = "[promotions]\nweb = true\n[demotions]\nweb = true\n";

#[test]
fn interval_and_fast_interval_are_per_check_keys() {
    let s = Scratch::new();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 10\n{HOOKS}[DEFAULT]\nfast_interval = 500ms\n\
             [own]\nurl = tcp://127.0.0.1:1\naction = web\ninterval = 2s\n\
             [inherits]\nurl = tcp://127.0.0.1:2\naction = web\n"
        ),
    );
    let loaded = config::load(&conf).expect("valid configuration");
    let checks = &loaded.config.checks;
    assert_eq!(loaded.config.general.interval, Duration::from_secs(10));
    assert_eq!(checks[0].interval, Some(Duration::from_secs(2)));
    assert_eq!(checks[0].fast_interval, Some(Duration::from_millis(500)));
    // Without its own interval a check follows [general] interval.
    assert_eq!(checks[1].interval, None);
    assert_eq!(checks[1].fast_interval, Some(Duration::from_millis(500)));
}

#[test]
fn a_bad_check_interval_is_reported_with_its_place() {
    let s = Scratch::new();
    let conf = s.write(
        "hb.conf",
        &format!("{HOOKS}[site]\nurl = tcp://127.0.0.1:1\naction = web\nfast_interval = 0\n"),
    );
    let err = config::load(&conf)
        .expect_err("invalid configuration")
        .to_string();
    assert!(
        err.contains("hb.conf:8: [site] fast_interval: \"0\" is zero"),
        "{err}"
    );
}
