//! The status server and the configuration-free mode, against the real
//! binary: what a kubelet, a load balancer, Prometheus or an operator sees.
//!
//! Every test starts `heartbeat` on a free loopback port, talks to it with a
//! real HTTP client (or a raw socket where the bytes matter), waits for
//! conditions with deadlines, and leaves the process to the harness, which
//! stops and reaps it.

use crate::support::bin as support;

use crate::support::http;

use crate::support::metrics;
use crate::support::net;

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use openmetrics_parser::OpenMetricsValue;
use serde_json::{Value, json};

use crate::support::daemon::{launch, start, with_hooks};
use support::{Scratch, lines, wait_for};

/// Deadline for anything that should happen within a few rounds.
const LONG: Duration = Duration::from_secs(20);

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

use http::{Reply, get, get_json};

/// `GET /status`.
fn status_doc(addr: SocketAddr) -> Value {
    let (code, doc) = get_json(addr, "/status");
    assert_eq!(code, 200, "{doc}");
    doc
}

/// Rounds completed, from `/status`.
fn rounds(addr: SocketAddr) -> u64 {
    status_doc(addr)["rounds"].as_u64().expect("rounds")
}

/// Waits until at least `n` rounds have completed.
fn wait_rounds(addr: SocketAddr, n: u64) {
    wait_for(&format!("{n} rounds"), LONG, || rounds(addr) >= n);
}

/// The element of a `/status` array whose `name` is `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("an array")
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("no {name:?} in {list}"))
}

/// An RFC 3339 time from a report.
fn time(value: &Value) -> SystemTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

// 1. Every endpoint in each state of the engine.

#[test]
fn before_the_first_round_nothing_is_ready_and_once_healthy_everything_is() {
    let s = Scratch::new();
    let (started, gate) = (s.path("started"), s.path("gate"));
    // The check holds the first round open until the test opens the gate
    // (a round ends when its checks have reported or when the next one
    // starts, a minute later here).
    let spawned = Instant::now();
    let (hb, addr) = start(
        &s,
        &format!(
            "interval = 60\n{}",
            with_hooks(
                &[("web", "true", "true")],
                &format!(
                    "[slow]\ntype = script\n\
                     command = touch {started}; while [ ! -e {gate} ]; do sleep 0.05; done; true\n\
                     timeout = 60\naction = web\n",
                    started = started.display(),
                    gate = gate.display()
                )
            )
        ),
    );
    wait_for("the check to start", LONG, || started.exists());
    let check_running = Instant::now();

    // This is the window before the first round ends.
    let root = get(addr, "/");
    assert_eq!(root.status, 503, "{root:?}");
    assert_eq!(root.content_type, TEXT);
    assert_eq!(root.body, "UNKNOWN\nno round completed yet\n");
    let not_ready = (
        503,
        json!({"ready": false, "reasons": ["no round completed yet"]}),
    );
    assert_eq!(get_json(addr, "/ready"), not_ready);
    assert_eq!(get_json(addr, "/.well-known/ready"), not_ready);
    assert_eq!(get_json(addr, "/alive"), (200, json!({"alive": true})));
    assert_eq!(
        get_json(addr, "/.well-known/alive"),
        (200, json!({"alive": true}))
    );
    let before = status_doc(addr);
    assert_eq!(before["healthy"], false, "{before}");
    assert_eq!(before["alive"], true, "{before}");
    assert_eq!(before["last_round"], Value::Null, "{before}");
    assert_ne!(before["round_in_progress_since"], Value::Null, "{before}");
    assert_eq!(named(&before["groups"], "web")["state"], "unknown");
    assert_eq!(named(&before["checks"], "slow")["last_result"], Value::Null);
    metrics::scrape_openmetrics(addr);
    metrics::scrape_text(addr);
    assert_eq!(
        rounds(addr),
        0,
        "the first round ended before the test could look"
    );

    fs::write(&gate, "").unwrap();
    let opened = Instant::now();
    wait_for("GET / to answer 200", LONG, || get(addr, "/").status == 200);
    let healthy = Instant::now();
    let root = get(addr, "/");
    assert_eq!(
        (root.content_type.as_str(), root.body.as_str()),
        (TEXT, "OK\n")
    );
    for path in ["/ready", "/.well-known/ready"] {
        let ready = get(addr, path);
        assert_eq!(ready.status, 200, "{path}");
        assert_eq!(ready.content_type, JSON, "{path}");
        assert_eq!(ready.body, "{\"ready\":true}\n", "{path}");
    }
    for path in ["/alive", "/.well-known/alive"] {
        let alive = get(addr, path);
        assert_eq!(alive.status, 200, "{path}");
        assert_eq!(alive.content_type, JSON, "{path}");
        assert_eq!(alive.body, "{\"alive\":true}\n", "{path}");
    }
    let after = status_doc(addr);
    assert_eq!(
        (&after["healthy"], &after["alive"]),
        (&json!(true), &json!(true))
    );
    let web = named(&after["groups"], "web");
    assert_eq!(web["state"], "healthy");
    time(&web["since"]);
    let slow = named(&after["checks"], "slow");
    assert_eq!(slow["state"], "healthy");
    // It ran from before the test saw it start to after the gate opened.
    let latency = slow["last_result"]["latency_seconds"].as_f64().unwrap();
    let least = (opened - check_running).as_secs_f64();
    let most = (healthy - spawned).as_secs_f64();
    assert!(
        (least..=most).contains(&latency),
        "latency {latency} s, not within {least}..={most} s"
    );

    // The address is announced once.
    let log = hb.log_text();
    assert_eq!(
        log.matches("status server listening on").count(),
        1,
        "{log}"
    );
    assert!(hb.stop().success());
}

/// Groups `web` (a passing script) and `db` (a TCP check on a closed port,
/// whose demotion exits 3), every 200 ms.
fn web_and_db(extra_general: &str) -> String {
    format!(
        "interval = 200ms\n{extra_general}\n{}",
        with_hooks(
            &[("web", "true", "true"), ("db", "true", "exit 3")],
            &format!(
                "[app]\ntype = script\ncommand = true\naction = web\n\
                 [pg]\ntype = tcp\nhostname = 127.0.0.1\nport = {}\naction = db\n",
                net::closed_port()
            )
        )
    )
}

#[test]
fn a_failing_check_fails_root_and_ready_with_its_reason_and_status_shows_why() {
    let s = Scratch::new();
    let (hb, addr) = start(&s, &web_and_db(""));
    wait_for("the demotion of db to have run", LONG, || {
        status_doc(addr)["groups"][1]["last_action"] != Value::Null
    });
    wait_rounds(addr, 3);

    let root = get(addr, "/");
    assert_eq!(root.status, 503);
    assert_eq!(root.content_type, TEXT);
    assert_eq!(root.body, "UNHEALTHY\npg: connection refused\n");
    let not_ready = (
        503,
        json!({"ready": false, "reasons": ["pg: connection refused"]}),
    );
    assert_eq!(get_json(addr, "/ready"), not_ready);
    assert_eq!(get_json(addr, "/.well-known/ready"), not_ready);
    assert_eq!(get_json(addr, "/alive"), (200, json!({"alive": true})));

    let doc = status_doc(addr);
    assert_eq!(
        (&doc["healthy"], &doc["alive"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(doc["interval_seconds"], 0.2);
    let rounds = doc["rounds"].as_u64().unwrap();
    assert!(rounds >= 3, "{doc}");
    let round = &doc["last_round"];
    time(&round["started"]);
    let took = round["duration_seconds"].as_f64().unwrap();
    assert!((0.0..5.0).contains(&took), "round took {took}");

    let web = named(&doc["groups"], "web");
    assert_eq!(web["state"], "healthy");
    assert_eq!(web["checks"], json!(["app"]));
    time(&web["since"]);
    let promotion = &web["last_action"];
    assert_eq!(promotion["kind"], "promotion");
    assert_eq!(promotion["outcome"], "ok");
    assert_eq!(promotion["exit"], "exit status 0");
    assert_eq!(promotion["exit_code"], 0);
    time(&promotion["started"]);
    let ran = promotion["duration_seconds"].as_f64().unwrap();
    assert!((0.0..5.0).contains(&ran), "promotion took {ran}");

    let db = named(&doc["groups"], "db");
    assert_eq!(db["state"], "unhealthy");
    let demotion = &db["last_action"];
    assert_eq!(demotion["kind"], "demotion");
    assert_eq!(demotion["outcome"], "failed");
    assert_eq!(demotion["exit"], "exit status 3");
    assert_eq!(demotion["exit_code"], 3);
    assert_eq!(demotion["signal"], Value::Null);

    // A script check is shown by its name; its command stays private.
    let app = named(&doc["checks"], "app");
    assert_eq!(
        (&app["type"], &app["endpoint"], &app["state"]),
        (&json!("script"), &json!("[redacted]"), &json!("healthy"))
    );
    assert_eq!(app["successes"], rounds, "{doc}");
    assert_eq!(app["failures"], 0);
    assert_eq!(app["last_result"]["passed"], true);
    assert_eq!(app["last_result"]["reason"], "exit status 0");
    let pg = named(&doc["checks"], "pg");
    assert_eq!(
        (&pg["type"], &pg["state"]),
        (&json!("tcp"), &json!("unhealthy"))
    );
    assert_eq!(pg["successes"], 0);
    assert_eq!(pg["failures"], rounds, "{doc}");
    let last = &pg["last_result"];
    assert_eq!(
        (&last["passed"], &last["reason"]),
        (&json!(false), &json!("connection refused"))
    );
    let latency = last["latency_seconds"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&latency), "latency {latency}");
    time(&last["at"]);

    // Paths, methods, HEAD.
    let missing = http::raw(addr, "GET", "/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some(TEXT));
    for (path, allow) in [
        ("/", "GET, HEAD, OPTIONS"),
        ("/ready", "GET, HEAD, OPTIONS"),
        ("/alive", "GET, HEAD, OPTIONS"),
        ("/status", "GET, HEAD"),
        ("/metrics", "GET, HEAD"),
    ] {
        let post = http::raw(addr, "POST", path);
        assert_eq!(post.status, 405, "POST {path}");
        assert_eq!(post.header("allow"), Some(allow), "POST {path}");
    }
    for path in ["/", "/ready", "/alive", "/.well-known/ready", "/nope"] {
        http::assert_head_like_get(addr, path);
    }
    assert!(hb.stop().success());
}

#[test]
fn fail_status_sets_the_status_of_root_and_only_of_root() {
    let s = Scratch::new();
    let (_hb, addr) = start(&s, &web_and_db("fail_status = 504"));
    wait_rounds(addr, 1);
    let root = get(addr, "/");
    assert_eq!(
        (root.status, root.body.as_str()),
        (504, "UNHEALTHY\npg: connection refused\n")
    );
    assert_eq!(get(addr, "/ready").status, 503);
    assert_eq!(get(addr, "/alive").status, 200);
}

#[test]
fn an_action_group_no_check_uses_does_not_hold_readiness_back() {
    // A group left in [promotions] and [demotions] after its last check was
    // removed draws a warning and never runs; it has no health to wait for.
    let s = Scratch::new();
    let body = format!(
        "interval = 200ms\n{}",
        with_hooks(
            &[("web", "true", "true"), ("spare", "true", "true")],
            "[app]\ntype = script\ncommand = true\naction = web\n"
        )
    );
    let (hb, addr) = start(&s, &body);
    wait_rounds(addr, 2);
    assert!(hb.log_text().contains("no check uses this action group"));
    assert_eq!(get_json(addr, "/ready"), (200, json!({"ready": true})));
    assert_eq!(get(addr, "/").status, 200);
    assert_eq!(status_doc(addr)["healthy"], true);
    assert_eq!(s.run(&["status", &addr.to_string()]).status.code(), Some(0));
}

#[test]
fn a_recovering_check_is_not_ready_and_says_so_rather_than_quote_a_success() {
    // Failed once, passing since, but rise = 1000: unhealthy for a long
    // while, and /ready must not give "exit status 0" as the reason.
    let s = Scratch::new();
    let count = s.path("count");
    let body = format!(
        "interval = 200ms\n{}",
        with_hooks(
            &[("web", "true", "true")],
            &format!(
                "[app]\ntype = script\ncommand = {}\nrise = 1000\naction = web\n",
                planned(&count, "-")
            )
        )
    );
    let (hb, addr) = start(&s, &body);
    wait_for("two passing rounds after the failure", LONG, || {
        named(&status_doc(addr)["checks"], "app")["successes"].as_u64() >= Some(2)
    });
    let (code, ready) = get_json(addr, "/ready");
    assert_eq!(code, 503);
    let reasons = ready["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{ready}");
    let reason = reasons[0].as_str().unwrap();
    assert!(
        reason.starts_with("app: recovering, ")
            && reason.ends_with(" successes in a row, fewer than rise; last: exit status 0"),
        "{reason}"
    );
    let root = get(addr, "/");
    assert_eq!(root.status, 503);
    assert!(
        root.body.starts_with("UNHEALTHY\napp: recovering, "),
        "{root:?}"
    );
    assert!(hb.stop().success());
}

// 2. Liveness: the engine missing its schedule.

/// The stall rule of the server: `2 × max(interval, latest round) + 5 s`,
/// counted from the end of the latest round. A round ends at the latest
/// when the next one starts, whatever its checks do, so no allowance for
/// slow checks is needed.
fn stall_limit(interval: Duration, round: Duration) -> Duration {
    interval.max(round) * 2 + Duration::from_secs(5)
}

/// When the latest round ended, from `/status`.
fn last_round_end(doc: &Value) -> SystemTime {
    let round = &doc["last_round"];
    time(&round["started"]) + Duration::from_secs_f64(round["duration_seconds"].as_f64().unwrap())
}

#[test]
fn alive_turns_503_while_the_engine_is_stuck_and_200_once_it_moves_again() {
    // The engine thread rereads its configuration on SIGHUP. A file whose
    // read blocks (a FIFO here; a hung network mount in real life) holds it
    // there: no round completes, while the status server, on its own
    // thread, keeps answering.
    let s = Scratch::new();
    let body = format!(
        "interval = 200ms\n{}",
        with_hooks(
            &[("g", "true", "true")],
            "[ok]\ntype = script\ncommand = true\ntimeout = 200ms\naction = g\n"
        )
    );
    let (hb, addr) = start(&s, &body);
    let text = fs::read_to_string(s.path("hb.conf")).unwrap();
    wait_rounds(addr, 3);
    assert_eq!(get_json(addr, "/alive"), (200, json!({"alive": true})));

    let fifo = s.path("hb.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    fs::rename(&fifo, s.path("hb.conf")).unwrap();
    hb.signal(Signal::SIGHUP);

    // Ask until /alive fails. The server judged a 200 after it was asked,
    // and a 503 before it was received.
    let watching = Instant::now();
    let mut last_ok = SystemTime::UNIX_EPOCH;
    let stalled_at = loop {
        let asked = SystemTime::now();
        let answer = get_json(addr, "/alive");
        let received = SystemTime::now();
        match answer {
            (200, _) => last_ok = asked,
            (503, alive) => {
                assert_eq!(alive, json!({"alive": false}));
                break received;
            }
            other => panic!("/alive answered {other:?}"),
        }
        assert!(watching.elapsed() < LONG, "/alive still 200 after {LONG:?}");
        std::thread::sleep(Duration::from_millis(25));
    };
    let doc = status_doc(addr);
    assert_eq!(
        (&doc["alive"], &doc["healthy"]),
        (&json!(false), &json!(false))
    );
    let ended = last_round_end(&doc);
    let round = Duration::from_secs_f64(doc["last_round"]["duration_seconds"].as_f64().unwrap());
    let limit = stall_limit(Duration::from_millis(200), round);
    let ok_for = last_ok.duration_since(ended).unwrap_or_default();
    let stalled_after = stalled_at.duration_since(ended).unwrap();
    // Times in /status have milliseconds.
    let rounding = Duration::from_millis(2);
    assert!(
        ok_for <= limit + rounding && stalled_after + rounding >= limit,
        "alive until {ok_for:?} and stalled at {stalled_after:?} after the last round; limit {limit:?}"
    );
    assert!(
        stalled_after < limit + Duration::from_secs(3),
        "/alive turned 503 only {stalled_after:?} after the last round; limit {limit:?}"
    );

    let (code, ready) = get_json(addr, "/ready");
    assert_eq!(code, 503);
    let reasons = ready["reasons"].as_array().unwrap();
    let reason = reasons[0].as_str().unwrap();
    let said_limit = reason
        .strip_prefix("engine stalled: no round completed for ")
        .and_then(|rest| rest.split_once(" (limit "))
        .and_then(|(_, rest)| rest.strip_suffix("s)"))
        .and_then(|secs| secs.parse::<f64>().ok());
    assert!(
        said_limit.is_some_and(|l| (l - limit.as_secs_f64()).abs() <= rounding.as_secs_f64()),
        "{ready}: expected the limit {limit:?}"
    );
    let root = get(addr, "/");
    assert_eq!(root.status, 503);
    assert!(
        root.body.starts_with("STALLED\nengine stalled: "),
        "{root:?}"
    );
    let out = s.run(&["status", &addr.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("stalled: "),
        "{out:?}"
    );

    // The read completes: the engine reloads and runs rounds again.
    fs::write(s.path("hb.conf"), &text).unwrap();
    wait_for("/alive to answer 200 again", LONG, || {
        get(addr, "/alive").status == 200
    });
    wait_for("GET / to answer 200 again", LONG, || {
        get(addr, "/").status == 200
    });
    assert!(hb.stop().success());
}

#[test]
fn checks_that_time_out_one_after_another_are_not_a_stall() {
    // One worker, sixteen checks that each run into their 500 ms timeout:
    // running them all takes about 8 s. Rounds keep their 200 ms schedule
    // all the same (a check still running is not started again), and a
    // liveness probe must not restart a daemon for what its dependencies
    // do.
    let s = Scratch::new();
    let mut checks = String::new();
    for i in 0..16 {
        checks +=
            &format!("[hang{i}]\ntype = script\ncommand = sleep 30\ntimeout = 500ms\naction = g\n");
    }
    let (hb, addr) = start(
        &s,
        &format!(
            "interval = 200ms\nthreads = 1\n{}",
            with_hooks(&[("g", "true", "true")], &checks)
        ),
    );
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let (code, alive) = get_json(addr, "/alive");
        assert_eq!(
            (code, &alive),
            (200, &json!({"alive": true})),
            "{:?} after start, while checks time out one after another",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let doc = status_doc(addr);
    // About 15 rounds in 3 s; a loaded machine may lose a few.
    let rounds = doc["rounds"].as_u64().unwrap();
    assert!(rounds >= 5, "only {rounds} rounds in 3 s");
    let took = doc["last_round"]["duration_seconds"].as_f64().unwrap();
    assert!(took < 1.0, "a round took {took} s");
    assert_eq!(get(addr, "/ready").status, 503);
    drop(hb);
}

// 3. Metrics, as Prometheus scrapes them.

use metrics::{Exposition, counter, gauge, histogram, sample};

/// `GET /metrics` as Prometheus asks for it, parsed as OpenMetrics text.
fn scrape(addr: SocketAddr) -> (String, Exposition) {
    metrics::scrape_openmetrics(addr)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn metrics_scraped_from_the_binary_carry_every_family_with_plausible_values() {
    let s = Scratch::new();
    let body = format!(
        "interval = 200ms\naction_timeout = 300ms\n{}",
        with_hooks(
            &[
                ("web", "true", "true"),
                ("db", "true", "exit 3"),
                ("hung", "true", "sleep 30"),
            ],
            &format!(
                "[app]\ntype = script\ncommand = true\naction = web\n\
                 [pg]\ntype = tcp\nhostname = 127.0.0.1\nport = {}\naction = db\n\
                 [broken]\ntype = script\ncommand = false\naction = hung\n",
                net::closed_port()
            )
        )
    );
    let (hb, addr) = start(&s, &body);
    wait_for("a few rounds and a timed-out demotion", LONG, || {
        let (_, m) = scrape(addr);
        let rounds = histogram(&m, "heartbeat_round_duration_seconds", &[]).count;
        let timeouts = sample(
            &m,
            "heartbeat_actions",
            &[
                ("group", "hung"),
                ("kind", "demotion"),
                ("outcome", "timeout"),
            ],
        );
        rounds >= Some(4) && timeouts.is_some()
    });
    let (text, m) = scrape(addr);

    for (name, kind) in metrics::FAMILIES {
        let family = m
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name} in:\n{text}"));
        assert_eq!(family.family_type, kind, "{name}");
    }

    let rounds = histogram(&m, "heartbeat_round_duration_seconds", &[]);
    let n = rounds.count.unwrap() as f64;
    assert!(n >= 4.0, "{rounds:?}");
    let total = rounds.sum.unwrap().as_f64();
    assert!(total > 0.0 && total < n * 2.0, "{n} rounds took {total} s");

    // Every round ran every check once. A round is counted after its
    // results, so a scrape in between sees one result more.
    let once_a_round = |count: f64| count == n || count == n + 1.0;
    let results = |check, kind, result| {
        sample(
            &m,
            "heartbeat_check_results",
            &[("check", check), ("type", kind), ("result", result)],
        )
        .map_or(0.0, |v| match v {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            other => panic!("not a counter: {other:?}"),
        })
    };
    for (check, kind, result) in [
        ("app", "script", "ok"),
        ("pg", "tcp", "failed"),
        ("broken", "script", "failed"),
    ] {
        let count = results(check, kind, result);
        assert!(
            once_a_round(count),
            "{count} results of {check} in {n} rounds"
        );
    }
    assert_eq!(results("app", "script", "failed"), 0.0);
    assert_eq!(results("pg", "tcp", "ok"), 0.0);

    for check in ["app", "pg", "broken"] {
        let latency = histogram(&m, "heartbeat_check_latency_seconds", &[("check", check)]);
        let runs = latency.count.unwrap() as f64;
        assert!(
            once_a_round(runs),
            "{runs} latencies of {check} in {n} rounds"
        );
        let sum = latency.sum.unwrap().as_f64();
        assert!(sum >= 0.0 && sum < runs, "{check}: {sum} s in {runs} runs");
        let inf = latency
            .buckets
            .iter()
            .find(|b| b.upper_bound == f64::INFINITY);
        assert_eq!(inf.map(|b| b.count.as_f64()), Some(runs), "{check}");
        // None of them waits for anything.
        let quick = latency.buckets.iter().find(|b| b.upper_bound == 2.5);
        assert_eq!(quick.map(|b| b.count.as_f64()), Some(runs), "{check}");
    }

    let one_hot = |family: &str, key: &str, name: &str, current: &str| {
        for state in ["unknown", "healthy", "unhealthy"] {
            let value = gauge(&m, family, &[(key, name), ("state", state)]);
            let expected = if state == current { 1.0 } else { 0.0 };
            assert_eq!(value, expected, "{family} {name} {state}");
        }
    };
    one_hot("heartbeat_check_state", "check", "app", "healthy");
    one_hot("heartbeat_check_state", "check", "pg", "unhealthy");
    one_hot("heartbeat_check_state", "check", "broken", "unhealthy");
    one_hot("heartbeat_group_state", "group", "web", "healthy");
    one_hot("heartbeat_group_state", "group", "db", "unhealthy");
    one_hot("heartbeat_group_state", "group", "hung", "unhealthy");

    let transitions = |group, to| {
        sample(&m, "heartbeat_transitions", &[("group", group), ("to", to)]).map(|v| match v {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            other => panic!("not a counter: {other:?}"),
        })
    };
    assert_eq!(transitions("web", "healthy"), Some(1.0));
    assert_eq!(transitions("db", "unhealthy"), Some(1.0));
    assert_eq!(transitions("hung", "unhealthy"), Some(1.0));
    // Present from start-up at 0, not only once used.
    assert_eq!(transitions("web", "unhealthy"), Some(0.0));
    assert_eq!(transitions("db", "healthy"), Some(0.0));

    let action = |group, kind, outcome| [("group", group), ("kind", kind), ("outcome", outcome)];
    let actions = "heartbeat_actions";
    assert_eq!(counter(&m, actions, &action("web", "promotion", "ok")), 1.0);
    // A failed action is retried each round while the state holds.
    let failed = counter(&m, actions, &action("db", "demotion", "failed"));
    assert!(
        (1.0..=n).contains(&failed),
        "{failed} failed demotions in {n} rounds"
    );
    let timeouts = counter(&m, actions, &action("hung", "demotion", "timeout"));
    assert!(
        timeouts >= 1.0 && timeouts <= n,
        "{timeouts} timeouts in {n} rounds"
    );
    assert_eq!(counter(&m, actions, &action("db", "demotion", "ok")), 0.0);

    let durations = |group, kind| {
        histogram(
            &m,
            "heartbeat_action_duration_seconds",
            &[("group", group), ("kind", kind)],
        )
    };
    let web = durations("web", "promotion");
    assert_eq!(web.count, Some(1));
    assert!(web.sum.unwrap().as_f64() < 5.0, "{web:?}");
    let hung = durations("hung", "demotion");
    let (count, sum) = (hung.count.unwrap() as f64, hung.sum.unwrap().as_f64());
    // Each ran into its 300 ms deadline and no further than the kill grace.
    assert!(count >= timeouts, "{hung:?}");
    assert!(sum >= 0.3 * timeouts && sum < 6.0 * count, "{hung:?}");

    let lateness = gauge(&m, "heartbeat_round_lateness_seconds", &[]);
    assert!((0.0..5.0).contains(&lateness), "lateness {lateness}");
    let last = gauge(&m, "heartbeat_last_round_timestamp_seconds", &[]);
    let now = unix_now();
    assert!(
        last <= now && now - last < 5.0,
        "last round at {last}, now {now}"
    );
    assert!(hb.stop().success());
}

// 4. On demand: concurrent requests share one run.

/// How many times the check appended to `counter`.
fn runs(counter: &Path) -> usize {
    lines(counter).len()
}

#[test]
fn on_demand_concurrent_requests_share_one_run_and_a_fresh_one_is_reused() {
    const CLIENTS: usize = 20;
    let s = Scratch::new();
    let counter = s.path("runs");
    let body = format!(
        "interval = 1h\non_demand = yes\n{}",
        with_hooks(
            &[("g", "true", "true")],
            &format!(
                "[slow]\ntype = script\ncommand = sleep 1; echo x >> {}\ntimeout = 10\naction = g\n",
                counter.display()
            )
        )
    );
    let (hb, addr) = start(&s, &body);
    // The start-up round, then long enough for it to count as stale (the
    // engine reuses a round that ended less than a second ago). /metrics
    // does not probe.
    wait_for(
        "the start-up round to be more than a second old",
        LONG,
        || {
            let (_, m) = scrape(addr);
            // Absent until the first round ends.
            let Some(OpenMetricsValue::Gauge(last)) =
                sample(&m, "heartbeat_last_round_timestamp_seconds", &[])
            else {
                return false;
            };
            unix_now() - last.as_f64() > 1.2
        },
    );
    let before = runs(&counter);
    assert_eq!(before, 1);

    let barrier = Barrier::new(CLIENTS);
    let answers: Vec<(Reply, Duration)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let sent = Instant::now();
                    let reply = get(addr, "/ready");
                    (reply, sent.elapsed())
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let grew = runs(&counter) - before;
    for (reply, took) in &answers {
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "{\"ready\":true}\n")
        );
        // One shared run of about a second; not twenty in a row.
        assert!(*took < Duration::from_secs(5), "a request took {took:?}");
    }
    // One run shared by all; a second one only if some requests arrived
    // after the first had gone stale.
    assert!(
        (1..=2).contains(&grew),
        "{CLIENTS} concurrent requests ran the check {grew} times"
    );

    // A request right after is answered from that run.
    let sent = Instant::now();
    let reply = get(addr, "/");
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK\n"));
    assert!(
        sent.elapsed() < Duration::from_millis(900),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(
        runs(&counter) - before,
        grew,
        "a fresh round was not reused"
    );

    // /alive, /metrics and /status never probe.
    wait_for("the round to go stale", LONG, || {
        let (_, m) = scrape(addr);
        unix_now() - gauge(&m, "heartbeat_last_round_timestamp_seconds", &[]) > 1.2
    });
    let settled = runs(&counter);
    for _ in 0..5 {
        assert_eq!(get(addr, "/alive").status, 200);
        assert_eq!(get(addr, "/metrics").status, 200);
        assert_eq!(status_doc(addr)["healthy"], true);
    }
    assert_eq!(runs(&counter), settled);
    assert!(hb.stop().success());
}

#[test]
fn status_answers_at_once_on_demand_while_a_slow_round_runs() {
    // `heartbeat status` waits 5 s. With `on_demand`, a `/status` that
    // waited for the round in progress (6 s here) would read as "cannot
    // reach heartbeat".
    let s = Scratch::new();
    let body = format!(
        "interval = 1h\non_demand = yes\n{}",
        with_hooks(
            &[("g", "true", "true")],
            "[slow]\ntype = script\ncommand = sleep 6\ntimeout = 10\naction = g\n"
        )
    );
    let (hb, addr) = start(&s, &body);
    let sent = Instant::now();
    let out = s.run(&["status", &addr.to_string()]);
    let took = sent.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("unhealthy: no round completed yet\n"),
        "{text}"
    );
    assert!(text.contains("a round has been running since "), "{text}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(hb);
}

// 5. Slow and idle clients.

#[test]
fn idle_and_half_sent_connections_block_neither_clients_nor_the_engine() {
    let s = Scratch::new();
    let body = format!(
        "interval = 200ms\n{}",
        with_hooks(
            &[("g", "true", "true")],
            "[ok]\ntype = script\ncommand = true\naction = g\n"
        )
    );
    let (hb, addr) = start(&s, &body);
    wait_rounds(addr, 1);

    // Hundreds of them, as a load balancer fleet or a scanner may hold.
    // Regression: with room for 256 connections, 400 idle ones made every
    // other client get 503.
    let mut held = Vec::new();
    for i in 0..400 {
        let mut stream = TcpStream::connect(addr).expect("connect");
        match i % 6 {
            // Half a request line.
            0 => stream.write_all(b"GET /ready HT").unwrap(),
            // A complete line, no end of the head.
            1 => stream
                .write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\n")
                .unwrap(),
            // Nothing at all.
            _ => {}
        }
        held.push(stream);
    }
    let rounds_before = rounds(addr);
    for _ in 0..20 {
        let sent = Instant::now();
        let reply = get(addr, "/ready");
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "{\"ready\":true}\n")
        );
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "/ready took {:?} behind {} idle connections",
            sent.elapsed(),
            held.len()
        );
    }
    // The engine goes on meanwhile.
    wait_for("rounds to go on", LONG, || {
        rounds(addr) >= rounds_before + 3
    });
    assert_eq!(get(addr, "/").status, 200);

    // A bounded load from several threads, the idle connections still
    // held: every request answered.
    let paths = ["/", "/alive", "/ready", "/status", "/metrics", "/nope"];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                scope.spawn(move || {
                    let agent = http::agent();
                    for i in 0..60 {
                        let path = paths[(worker + i) % paths.len()];
                        let url = format!("http://{addr}{path}");
                        let response = agent
                            .get(&url)
                            .call()
                            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
                        let expected = if path == "/nope" { 404 } else { 200 };
                        assert_eq!(response.status(), expected, "{path}");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    });

    // Nor do they hold up a stop.
    let mut hb = hb;
    hb.signal(Signal::SIGTERM);
    let status = hb
        .wait_exit(Duration::from_secs(2))
        .expect("heartbeat did not stop within 2 s of SIGTERM with idle clients connected");
    assert!(status.success(), "{status:?}");
    drop(held);
}

// 6. Without a configuration file.

#[test]
fn inline_checks_serve_readiness_named_by_their_urls() {
    let s = Scratch::new();
    let tcp = net::silent_server("127.0.0.1:0");
    let web = net::http_server("127.0.0.1:0", |path| match path {
        "/health" => net::ok("fine\n"),
        _ => net::status(404),
    });
    let tcp_url = format!("tcp://127.0.0.1:{}", tcp.port());
    let http_url = format!("http://127.0.0.1:{}/health", web.port());
    let (hb, addr) = launch(&s, |addr| {
        let listen = addr.to_string();
        let args = [
            "--check",
            &tcp_url,
            "--check",
            &http_url,
            "--script",
            "true",
            "--interval",
            "200ms",
            "--listen",
            &listen,
        ];
        args.map(str::to_owned).to_vec()
    });
    wait_for("/ready to answer 200", LONG, || {
        get(addr, "/ready").status == 200
    });
    assert_eq!(get_json(addr, "/ready"), (200, json!({"ready": true})));
    assert_eq!(get(addr, "/").body, "OK\n");
    assert_eq!(get_json(addr, "/alive"), (200, json!({"alive": true})));
    let doc = status_doc(addr);
    assert_eq!(doc["interval_seconds"], 0.2);
    let group = named(&doc["groups"], "sidecar");
    assert_eq!(group["checks"], json!([tcp_url, http_url, "script1"]));
    assert_eq!(
        named(&doc["checks"], &http_url)["last_result"]["reason"],
        "HTTP 200"
    );

    // The web server goes away: the reason names the URL.
    drop(web);
    wait_for("/ready to answer 503", LONG, || {
        get(addr, "/ready").status == 503
    });
    assert_eq!(
        get_json(addr, "/ready"),
        (
            503,
            json!({"ready": false, "reasons": [format!("{http_url}: connection refused")]})
        )
    );
    assert!(hb.stop().success());
}

/// A check command that follows `plan` round by round (`+` pass, `-` fail,
/// passing after the plan ends), appending one line to `count` per run.
fn planned(count: &Path, plan: &str) -> String {
    format!(
        "echo x >> {c}; n=$(wc -l < {c}); r=$(printf %s '{plan}' | cut -c$n); [ \"${{r:-+}}\" = + ]",
        c = count.display()
    )
}

/// Runs heartbeat with `args` to its end (at most `LONG`): exit code and
/// stderr.
fn run_to_exit(s: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let mut hb = s.spawn(args);
    let status = hb
        .wait_exit(LONG)
        .unwrap_or_else(|| panic!("still running after {LONG:?}:\n{}", hb.log_text()));
    (status.code(), hb.log_text())
}

#[test]
fn exit_on_failure_exits_1_after_exactly_retries_failed_rounds() {
    // Failing from the first round: the first result makes the check
    // unhealthy at once (and /ready 503), but the sidecar exits only after
    // --retries failed rounds.
    let s = Scratch::new();
    let count = s.path("count");
    let script = format!("echo x >> {}; false", count.display());
    let (code, log) = run_to_exit(
        &s,
        &[
            "--script",
            &script,
            "--interval",
            "100ms",
            "--retries",
            "3",
            "--exit-on-failure",
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(lines(&count).len(), 3, "rounds run; log:\n{log}");
    assert!(
        log.contains("heartbeat: unhealthy, exiting (exit_on_failure): script1: exit status 1\n"),
        "{log}"
    );
}

#[test]
fn exit_on_failure_counts_consecutive_failures_only() {
    let s = Scratch::new();
    let count = s.path("count");
    // Round:                       123456789
    let script = planned(&count, "+--+-+---");
    let (code, log) = run_to_exit(
        &s,
        &[
            "--script",
            &script,
            "--interval",
            "100ms",
            "--retries",
            "3",
            "--exit-on-failure",
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(lines(&count).len(), 9, "rounds run; log:\n{log}");
}

#[test]
fn once_with_inline_checks_exits_0_when_healthy_and_1_when_not() {
    let s = Scratch::new();
    let tcp = net::silent_server("127.0.0.1:0");
    let up = format!("tcp://127.0.0.1:{}", tcp.port());
    let down = format!("tcp://127.0.0.1:{}", net::closed_port());

    let out = s.run(&["--check", &up, "--script", "true", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = s.run(&["--check", &up, "--check", &down, "--once"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("check \"{down}\"")), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    let out = s.run(&["--script", "exit 3", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn usage_errors_exit_2_and_say_what_was_expected() {
    let s = Scratch::new();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--check", "localhost:80"],
            "heartbeat: invalid value 'localhost:80' for '--check <URL>': no scheme; expected tcp://HOST:PORT, http://HOST[:PORT][/PATH], https://HOST[:PORT][/PATH] or grpc[s]://HOST:PORT[/SERVICE]\n",
        ),
        (
            &["--check", "tcp://127.0.0.1"],
            "heartbeat: invalid value 'tcp://127.0.0.1' for '--check <URL>': no port; expected tcp://HOST:PORT\n",
        ),
        (
            &["--script", "true", "--interval", "0"],
            "heartbeat: invalid value '0' for '--interval <DURATION>': \"0\" is zero; expected a duration above zero\n",
        ),
        (
            &["--script", "true", "--interval", "0s"],
            "heartbeat: invalid value '0s' for '--interval <DURATION>': \"0s\" is zero; expected a duration above zero\n",
        ),
        (
            &["--script", "true", "--retries", "0"],
            "heartbeat: invalid value '0' for '--retries <N>': expected at least 1 (the number of consecutive failures before a check counts as unhealthy)\n",
        ),
    ];
    for (args, message) in cases {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), message, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

// 7. The status command against the running binary.

/// The whitespace-separated cells of the line that starts with `first`.
fn cells<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no line for {first} in:\n{text}"))
}

#[test]
fn status_command_prints_the_tables_and_exits_0_when_healthy() {
    let s = Scratch::new();
    let body = format!(
        "interval = 200ms\n{}",
        with_hooks(
            &[("web", "true", "true")],
            "[app]\ntype = script\ncommand = true\naction = web\n"
        )
    );
    let (hb, addr) = start(&s, &body);
    wait_for("GET / to answer 200", LONG, || get(addr, "/").status == 200);
    wait_for("the promotion to have ended", LONG, || {
        status_doc(addr)["groups"][0]["last_action"] != Value::Null
    });

    let by_address = s.run(&["status", &addr.to_string()]);
    let by_file = s.run(&["-c", "hb.conf", "status"]);
    for out in [&by_address, &by_file] {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("healthy: "), "{text}");
        assert_eq!(
            cells(&text, "GROUP"),
            ["GROUP", "STATE", "SINCE", "HOLD", "LAST", "ACTION"]
        );
        let web = cells(&text, "web");
        assert_eq!(web[1], "healthy", "{text}");
        assert_eq!(
            &web[3..8],
            ["-", "promotion", "ok", "(exit", "status"],
            "{text}"
        );
        assert_eq!(
            cells(&text, "CHECK"),
            ["CHECK", "TYPE", "STATE", "LATENCY", "REASON"]
        );
        let app = cells(&text, "app");
        assert_eq!((app[1], app[2]), ("script", "healthy"), "{text}");
        assert_eq!(&app[app.len() - 3..], ["exit", "status", "0"], "{text}");
    }
    assert!(hb.stop().success());
}

#[test]
fn status_command_exits_1_when_unhealthy_and_69_when_nothing_listens() {
    let s = Scratch::new();
    let (hb, addr) = start(&s, &web_and_db(""));
    wait_rounds(addr, 1);
    let out = s.run(&["status", &addr.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("unhealthy: "), "{text}");
    assert_eq!(cells(&text, "db")[1], "unhealthy", "{text}");
    let pg = cells(&text, "pg");
    assert_eq!((pg[1], pg[2]), ("tcp", "unhealthy"), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert_eq!(s.run(&["-c", "hb.conf", "status"]).status.code(), Some(1));

    assert!(hb.stop().success());
    let out = s.run(&["status", &addr.to_string()]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "heartbeat: cannot reach heartbeat at http://{addr}/status: "
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = s.run(&["-c", "hb.conf", "status"]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
}

#[test]
fn a_busy_listen_address_stops_start_up_naming_it() {
    let s = Scratch::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let listen = addr.to_string();
    let (code, log) = run_to_exit(&s, &["--script", "true", "--listen", &listen]);
    assert_eq!(code, Some(71), "{log}");
    assert!(
        log.contains(&format!("heartbeat: cannot listen on {addr}: ")),
        "{log}"
    );
}

#[test]
fn status_command_needs_an_address_or_a_file_with_listen() {
    let s = Scratch::new();
    s.write(
        "hb.conf",
        "[promotions]\ng = true\n[demotions]\ng = true\n[c]\ntype = script\ncommand = true\naction = g\n",
    );
    let out = s.run(&["-c", "hb.conf", "status"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "heartbeat: hb.conf has no listen address in [general]; give ADDR:PORT\n"
    );
    // Without either, the default file (see cli::the_default_configuration_file_is_named).
}
