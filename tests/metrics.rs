//! `/metrics` of the real binary, as Prometheus and its tools read it:
//! `promtool check metrics` on the text format and the OpenMetrics parser
//! in every state of the engine.

use crate::support::bin::{Scratch, wait_for};
use crate::support::daemon::{start, with_hooks};
use heartbeat::status::metrics::FAMILIES;

use crate::support::metrics::{
    Exposition, gauge, histogram, sample, scrape_openmetrics, scrape_text,
};

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
/// round take its whole interval of 4 s, so the test sees the time before
/// the first round (a round ends at the next one's start at the latest:
/// a short interval left a loaded machine too little time to look).
fn states_config(flag: &str, slow: bool, extra: bool) -> String {
    let mut checks = format!("[gate]\ntype = script\ncommand = test -e {flag}\naction = web\n");
    if slow {
        checks += "[slow]\ntype = script\ncommand = sleep 4\ntimeout = 10\naction = batch\n";
    }
    if extra {
        checks += "[extra]\ntype = script\ncommand = true\naction = batch\n";
    }
    format!(
        "interval = {}\n{}",
        if slow { "4s" } else { "300ms" },
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

    // Before the first round (it takes 4 s).
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
    // The removed check's series are gone, counters and histograms too.
    let (text, _) = scrape_openmetrics(addr);
    assert!(!text.contains("check=\"slow\""), "{text}");
}

/// Regression: labelled counters appeared only on first use, at 1, so
/// `increase(heartbeat_transitions_total{to="unhealthy"}[3m])` was 0 right
/// after the first demotion and alerts on the first failure never fired.
#[test]
fn every_series_exists_at_zero_before_the_first_transition() {
    let s = Scratch::new();
    // `down` fails from the start; `slow` holds the first round for its
    // whole interval of 4 s.
    let checks = "[down]\ntype = script\ncommand = false\naction = web\n\
                  [slow]\ntype = script\ncommand = sleep 4\ntimeout = 10\naction = web\n";
    let conf = format!(
        "interval = 4s\n{}",
        with_hooks(&[("web", "true", "true")], checks)
    );
    let (_hb, addr) = start(&s, &conf);

    let (text, m) = scrape_openmetrics(addr);
    assert_eq!(
        rounds(addr),
        0,
        "the first round ended before the test looked"
    );
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&m, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{text}"))
    };
    let zero_counter = |name: &str, labels: &[(&str, &str)]| {
        assert_eq!(count(&m, name, labels), 0.0, "{name}{labels:?}");
        value(name, labels);
    };
    for check in ["down", "slow"] {
        for result in ["ok", "failed"] {
            let labels = [("check", check), ("type", "script"), ("result", result)];
            zero_counter("heartbeat_check_results", &labels);
        }
        for (state, want) in [("unknown", 1.0), ("healthy", 0.0), ("unhealthy", 0.0)] {
            let labels = [("check", check), ("state", state)];
            assert_eq!(
                gauge(&m, "heartbeat_check_state", &labels),
                want,
                "{labels:?}"
            );
        }
        let latency = histogram(&m, "heartbeat_check_latency_seconds", &[("check", check)]);
        assert_eq!(latency.count, Some(0), "{check}");
    }
    for (state, want) in [("unknown", 1.0), ("healthy", 0.0), ("unhealthy", 0.0)] {
        let labels = [("group", "web"), ("state", state)];
        assert_eq!(
            gauge(&m, "heartbeat_group_state", &labels),
            want,
            "{labels:?}"
        );
        zero_counter("heartbeat_transitions", &[("group", "web"), ("to", state)]);
    }
    for kind in ["promotion", "demotion"] {
        for outcome in ["ok", "failed", "timeout", "error"] {
            let labels = [("group", "web"), ("kind", kind), ("outcome", outcome)];
            zero_counter("heartbeat_actions", &labels);
        }
    }
    // No round yet: nothing claims when the latest one ended.
    assert!(
        !text.contains("heartbeat_last_round_timestamp_seconds"),
        "{text}"
    );
    assert!(!text.contains("heartbeat_round_lateness_seconds"), "{text}");
    assert_eq!(
        histogram(&m, "heartbeat_round_duration_seconds", &[]).count,
        Some(0)
    );

    // The first demotion moves the counters from 0 to 1: increase() sees it.
    let demoted = [("group", "web"), ("kind", "demotion"), ("outcome", "ok")];
    wait_for("the first demotion", LONG, || {
        count(&scrape_openmetrics(addr).1, "heartbeat_actions", &demoted) == 1.0
    });
    let (_, m) = scrape_openmetrics(addr);
    let to = |state| {
        count(
            &m,
            "heartbeat_transitions",
            &[("group", "web"), ("to", state)],
        )
    };
    assert_eq!(
        (to("unhealthy"), to("healthy"), to("unknown")),
        (1.0, 0.0, 0.0)
    );
    assert!(gauge(&m, "heartbeat_last_round_timestamp_seconds", &[]) > 1.0e9);
}

/// The metrics table of the README, as `(name, type, labels, meaning)`.
fn readme_table() -> Vec<(String, String, Vec<String>, String)> {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with("| `heartbeat_") || l.starts_with("| `process_"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 4, "{line}");
            let labels = match cells[2] {
                "—" => Vec::new(),
                list => list
                    .split(", ")
                    .map(|l| l.trim_matches('`').to_owned())
                    .collect(),
            };
            (
                cells[0].trim_matches('`').to_owned(),
                cells[1].to_owned(),
                labels,
                cells[3].to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_readme_table_lists_every_family_as_the_code_does() {
    let documented: Vec<(String, String, Vec<String>, String)> = FAMILIES
        .iter()
        .map(|f| {
            (
                f.name.to_owned(),
                f.kind.to_owned(),
                f.labels.iter().map(|l| l.to_string()).collect(),
                f.help.to_owned(),
            )
        })
        .collect();
    assert_eq!(readme_table(), documented);
}

/// What the binary serves is what FAMILIES says: every family, with its
/// type, help and labels, once a round has ended (and, for the hold's
/// timestamp, while a group is paused). An https check is there for the
/// certificate expiry, which only TLS checks have; an exclusive group
/// `vip` for the cluster's families (its etcd need not answer: its role is
/// then `no quorum`).
#[test]
fn the_binary_serves_every_documented_family() {
    let s = Scratch::new();
    let cert = crate::support::net::self_signed(&["127.0.0.1"]);
    let tls = crate::support::net::https_server("127.0.0.1:0", cert.identity, |_| {
        crate::support::net::ok("ok\n")
    });
    let checks = format!(
        "[ok]\ntype = script\ncommand = true\naction = web, vip\n\
         [tls]\nurl = https://127.0.0.1:{}/\ntls_verify = no\naction = web\n\
         [cluster]\netcd = http://127.0.0.1:{}\nnode = node-a\ngroups = vip\n",
        tls.port(),
        crate::support::bin::free_port()
    );
    let conf = format!(
        "interval = 300ms\naction_timeout = 1\ncontrol_socket = {}\n{}",
        s.path("hb.sock").display(),
        with_hooks(&[("web", "true", "true"), ("vip", "true", "true")], &checks)
    );
    let (_hb, addr) = start(&s, &conf);
    let promoted = [("group", "web"), ("kind", "promotion"), ("outcome", "ok")];
    wait_for("the promotion", LONG, || {
        count(&scrape_openmetrics(addr).1, "heartbeat_actions", &promoted) == 1.0
    });
    let paused = s.run(&["-c", "hb.conf", "pause", "web"]);
    assert!(paused.status.success(), "{paused:?}");
    let text = scrape_text(addr);
    for f in FAMILIES {
        let kind = if f.kind == "info" { "gauge" } else { f.kind };
        let type_line = format!("# TYPE {} {kind}\n", f.name);
        let help_line = format!("# HELP {} {}.\n", f.name, f.help);
        assert!(text.contains(&type_line), "no {type_line:?} in:\n{text}");
        assert!(text.contains(&help_line), "no {help_line:?} in:\n{text}");
    }
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(families, FAMILIES.len(), "{text}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(text.contains(&format!(
        "heartbeat_build_info{{version=\"{version}\"}} 1\n"
    )));
    assert!(
        text.contains("heartbeat_check_info{check=\"ok\",type=\"script\",target=\"true\"} 1\n")
    );
    assert!(
        text.contains("heartbeat_check_success{check=\"ok\"} 1\n"),
        "{text}"
    );
    // The process metrics are heartbeat's own, started moments ago.
    let started = text
        .lines()
        .find_map(|l| l.strip_prefix("process_start_time_seconds "))
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - started;
    assert!((0.0..60.0).contains(&age), "heartbeat started {age} s ago?");
}
