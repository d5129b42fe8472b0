//! `/metrics` of the real binary, as Prometheus and its tools read it:
//! `promtool check metrics` on the text format and the OpenMetrics parser
//! in every state of the engine.

use crate::status_server::{start, with_hooks};
use crate::support::bin::{Scratch, wait_for};
use crate::support::metrics::{Exposition, sample, scrape_openmetrics, scrape_text};

use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;

/// Deadline for anything that should happen within a few rounds.
const LONG: Duration = Duration::from_secs(30);

/// Rounds completed, from `/status`.
fn rounds(addr: SocketAddr) -> u64 {
    let (_, doc) = crate::support::http::get_json(addr, "/status");
    doc["rounds"].as_u64().expect("rounds")
}

/// A counter sample, 0 when absent.
fn count(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(m, name, labels) {
        Some(openmetrics_parser::OpenMetricsValue::Counter(c)) => c.value.as_f64(),
        None => 0.0,
        Some(other) => panic!("{name}{labels:?} is not a counter: {other:?}"),
    }
}

/// Waits until an OpenMetrics scrape satisfies `cond`, then checks that
/// the text format of the same state passes promtool.
fn wait_scrape(addr: SocketAddr, what: &str, cond: impl Fn(&Exposition) -> bool) {
    wait_for(what, LONG, || cond(&scrape_openmetrics(addr).1));
    scrape_text(addr);
}

/// The configuration of the state test: a gate check the test opens and
/// closes through a flag file, and (with `slow`) a check that makes every
/// round take 2 s, so the test sees the time before the first round.
fn states_config(flag: &str, slow: bool, extra: bool) -> String {
    let mut checks = format!("[gate]\ntype = script\ncommand = test -e {flag}\naction = web\n");
    if slow {
        checks += "[slow]\ntype = script\ncommand = sleep 2\ntimeout = 10\naction = batch\n";
    }
    if extra {
        checks += "[extra]\ntype = script\ncommand = true\naction = batch\n";
    }
    format!(
        "interval = 300ms\n{}",
        with_hooks(
            &[("web", "true", "true"), ("batch", "true", "true")],
            &checks
        )
    )
}

#[test]
fn promtool_passes_in_every_state_of_the_engine() {
    let s = Scratch::new();
    let flag = s.path("up");
    let flag_text = flag.to_str().unwrap().to_owned();
    let conf = states_config(&flag_text, true, false);
    let (hb, addr) = start(&s, &conf);

    // Before the first round (it takes 2 s).
    scrape_openmetrics(addr);
    scrape_text(addr);
    assert_eq!(
        rounds(addr),
        0,
        "the first round ended before the test looked"
    );

    // Healthy, after a promotion.
    fs::write(&flag, "").unwrap();
    let promoted = [("group", "web"), ("kind", "promotion"), ("outcome", "ok")];
    wait_scrape(addr, "the promotion of web", |m| {
        count(m, "heartbeat_actions", &promoted) >= 1.0
    });

    // Unhealthy, after a demotion.
    fs::remove_file(&flag).unwrap();
    let demoted = [("group", "web"), ("kind", "demotion"), ("outcome", "ok")];
    wait_scrape(addr, "the demotion of web", |m| {
        count(m, "heartbeat_actions", &demoted) >= 1.0
    });

    // After a reload that removes a check and adds another.
    s.write(
        "hb.conf",
        &format!(
            "[general]\nlisten = {addr}\n{}",
            states_config(&flag_text, false, true)
        ),
    );
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    let extra = [("check", "extra"), ("type", "script"), ("result", "ok")];
    wait_scrape(addr, "a result of the added check", |m| {
        count(m, "heartbeat_check_results", &extra) >= 1.0
    });
}
