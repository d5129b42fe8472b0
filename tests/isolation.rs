//! Every check on its own, through an engine run in this process: real
//! checks against loopback peers and `/bin/sh`, real hooks that append to
//! a log, and the engine's published snapshot to look at. A peer that
//! accepts and never answers, a DNS server that never answers, a check
//! that panics: each may hurt only the checks that use it.

use crate::support::{child, net, poll::wait_for};

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heartbeat::checks::{self, Check, CheckFuture, CheckResult};
use heartbeat::config;
use heartbeat::engine::{Engine, Handle, Options, Stopped};
use heartbeat::exec::actions;
use heartbeat::model::Health;
use heartbeat::status::{CheckStatus, SharedStatus, Snapshot};

const LONG: Duration = Duration::from_secs(20);

/// An engine running on a thread of its own, stopped and joined on drop.
struct Running {
    handle: Handle,
    status: SharedStatus,
    thread: Option<JoinHandle<Stopped>>,
}

impl Running {
    fn start(engine: Engine) -> Running {
        let handle = engine.handle();
        let status = engine.status();
        let thread = std::thread::spawn(move || engine.run(&|_| {}));
        Running {
            handle,
            status,
            thread: Some(thread),
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.status.read().unwrap().clone()
    }

    fn check(&self, name: &str) -> CheckStatus {
        let snapshot = self.snapshot();
        snapshot
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
            .clone()
    }

    fn reason(&self, name: &str) -> Option<String> {
        self.check(name).last.map(|r| r.reason)
    }

    fn group(&self, name: &str) -> Health {
        let snapshot = self.snapshot();
        snapshot
            .groups
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no group {name}"))
            .health
    }

    fn stop(mut self) -> Stopped {
        self.handle.stop();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the engine thread")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.stop();
            let _ = thread.join();
        }
    }
}

/// A configuration from INI text, its paths relative to `dir`.
fn parse(text: &str, dir: &Path) -> heartbeat::model::Config {
    config::parse(text, &dir.join("hb.conf"), dir)
        .unwrap_or_else(|e| panic!("invalid test configuration: {e}\n{text}"))
        .config
}

/// `[promotions]` and `[demotions]` whose hooks append `promotion GROUP` /
/// `demotion GROUP` to `log`.
fn hooks(log: &Path, groups: &[&str]) -> String {
    let mut text = String::from("[promotions]\n");
    for g in groups {
        text += &format!(
            "{g} = echo promotion $HEARTBEAT_ACTION >> {}\n",
            log.display()
        );
    }
    text += "[demotions]\n";
    for g in groups {
        text += &format!(
            "{g} = echo demotion $HEARTBEAT_ACTION >> {}\n",
            log.display()
        );
    }
    text
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// How many times a counting script has run (one line per run).
fn runs(path: &Path) -> usize {
    lines(path).len()
}

/// A listener that accepts, counts and closes.
fn counting_listener() -> (net::Server, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let server = net::Server::start("127.0.0.1:0", move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    (server, count)
}

/// A peer that accepts, counts the connections it holds, and never answers.
fn counting_silent_peer() -> (net::Server, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let server = net::Server::start("127.0.0.1:0", move |mut stream: TcpStream| {
        seen.fetch_add(1, Ordering::SeqCst);
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    (server, count)
}

#[test]
fn a_stalled_peer_delays_neither_a_healthy_check_nor_the_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("actions.log");
    let (healthy, connects) = counting_listener();
    let (stalled, held) = counting_silent_peer();
    let (slow_peer, _) = counting_silent_peer();
    // `stuck` waits for its peer far longer than the test; `slowish` gives
    // up after 300 ms, so every other round it is still in flight when the
    // next round starts.
    let text = format!(
        "[general]\ninterval = 200ms\n{}\
         [up]\nurl = tcp://127.0.0.1:{}\naction = fast\n\
         [stuck]\nurl = http://127.0.0.1:{}/\ntimeout = 60\naction = slow\n\
         [slowish]\nurl = http://127.0.0.1:{}/\ntimeout = 300ms\naction = slow\n",
        hooks(&log, &["fast", "slow"]),
        healthy.port(),
        stalled.port(),
        slow_peer.port()
    );
    let engine = Running::start(Engine::new(parse(&text, dir.path()), Options::default()).unwrap());

    // Ten runs of the healthy check at 200 ms take about 2 s, far less than
    // the 60 s the stalled check may wait for its peer.
    wait_for("ten runs of the healthy check", LONG, || {
        connects.load(Ordering::SeqCst) >= 10
    });
    wait_for("the start-up actions", LONG, || {
        let mut actions = lines(&log);
        actions.sort();
        actions == ["demotion slow", "promotion fast"]
    });
    // Regression: the healthy check's result was folded in at the end of
    // a round held open by the stalled check, which is the start of the
    // next round, and the run due then was skipped: it ran every other
    // round. It runs in every round.
    let before = connects.load(Ordering::SeqCst);
    let rounds = engine.snapshot().rounds;
    let after = connects.load(Ordering::SeqCst);
    assert!(rounds >= 9, "{rounds} rounds");
    assert!(
        (rounds.saturating_sub(2)..=rounds + 2).contains(&(before as u64))
            || (rounds.saturating_sub(2)..=rounds + 2).contains(&(after as u64)),
        "{before}..{after} runs of the healthy check in {rounds} rounds"
    );
    assert_eq!(engine.group("fast"), Health::Healthy);
    assert_eq!(engine.reason("up").as_deref(), Some("connected"));

    // The stalled check runs once, is never started again while it waits,
    // and keeps its state (unknown: it has no result yet).
    let stuck = engine.check("stuck");
    assert!(stuck.running_since.is_some(), "{stuck:?}");
    assert_eq!(
        (stuck.health, stuck.last.is_none()),
        (Health::Unknown, true)
    );
    assert_eq!(held.load(Ordering::SeqCst), 1);
    assert_eq!(
        engine.reason("slowish").as_deref(),
        Some("timed out after 300ms")
    );
    assert_eq!(engine.stop(), Stopped::Requested);
}

#[test]
fn each_check_runs_at_its_own_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (often, seldom) = (dir.path().join("often"), dir.path().join("seldom"));
    let text = format!(
        "[general]\ninterval = 400ms\n{}\
         [often]\ntype = script\ncommand = echo >> {}\ninterval = 100ms\naction = g\n\
         [seldom]\ntype = script\ncommand = echo >> {}\naction = g\n",
        hooks(&dir.path().join("log"), &["g"]),
        often.display(),
        seldom.display()
    );
    let engine = Running::start(Engine::new(parse(&text, dir.path()), Options::default()).unwrap());
    wait_for("five runs at [general] interval", LONG, || {
        runs(&seldom) >= 5
    });
    let (a, b) = (runs(&often), runs(&seldom));
    // Four runs of the first for one of the second; a loaded machine may
    // start a few late, never early.
    assert!(
        a >= 2 * b && a <= 4 * b + 4,
        "{a} runs at 100 ms, {b} at 400 ms"
    );
    drop(engine);
}

/// The timeline of the README: `interval = 3s`, `fast_interval = 100ms`,
/// `fall = 3`. After the first failure the check runs every 100 ms, so it
/// turns unhealthy about 200 ms later, not 6 s later.
#[test]
fn fast_interval_confirms_an_outage_between_two_regular_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (log, count, plan) = (
        dir.path().join("actions.log"),
        dir.path().join("count"),
        dir.path().join("plan"),
    );
    fs::write(&plan, "+-----------\n").unwrap();
    let command = format!(
        "n=$(($(cat {c} 2>/dev/null || echo 0)+1)); echo $n > {c}; r=$(cut -c$n {p}); [ \"${{r:-+}}\" = + ]",
        c = count.display(),
        p = plan.display()
    );
    let text = format!(
        "[general]\ninterval = 3s\n{}\
         [flaky]\ntype = script\ncommand = {command}\nfall = 3\nfast_interval = 100ms\naction = g\n",
        hooks(&log, &["g"]),
    );
    let engine = Running::start(Engine::new(parse(&text, dir.path()), Options::default()).unwrap());
    let first_run = |n: usize| fs::read_to_string(&count).is_ok_and(|s| s.trim() == n.to_string());
    wait_for("the first run", LONG, || first_run(1));
    wait_for("the first failure, one interval later", LONG, || {
        first_run(2)
    });
    let failed = Instant::now();
    wait_for("the demotion", LONG, || {
        lines(&log) == ["promotion g", "demotion g"]
    });
    let took = failed.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "unhealthy {took:?} after the first failure; at 3 s a run it takes 6 s"
    );
    assert_eq!(engine.check("flaky").failures, 3);
    drop(engine);
}

/// A check kind that exists for this test: it panics, on a worker thread
/// (`run`) or on the network runtime (`probe`).
struct Panicking {
    on_network: bool,
}

impl Check for Panicking {
    fn run(&self) -> CheckResult {
        panic!("blocking check exploded");
    }

    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        if !self.on_network {
            return None;
        }
        Some(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("network check exploded")
        }))
    }
}

#[test]
fn a_panicking_check_is_that_checks_failure_and_the_daemon_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("actions.log");
    let (healthy, connects) = counting_listener();
    let text = format!(
        "[general]\ninterval = 100ms\n{}\
         [thread]\ntype = script\ncommand = true\naction = bad\n\
         [network]\nurl = tcp://127.0.0.1:1\naction = bad\n\
         [up]\nurl = tcp://127.0.0.1:{}\naction = good\n",
        hooks(&log, &["bad", "good"]),
        healthy.port()
    );
    let config = parse(&text, dir.path());
    let mut built = checks::build(&config.checks).unwrap();
    built[0] = Arc::new(Panicking { on_network: false });
    built[1] = Arc::new(Panicking { on_network: true });
    let engine = Running::start(Engine::with_checks(config, Options::default(), built).unwrap());

    wait_for("five rounds", LONG, || engine.snapshot().rounds >= 5);
    for (check, message) in [
        ("thread", "blocking check exploded"),
        ("network", "network check exploded"),
    ] {
        let reason = engine.reason(check).unwrap_or_default();
        let expected = format!("internal error: {message} at tests/isolation.rs:");
        assert!(reason.starts_with(&expected), "{check}: {reason:?}");
        assert_eq!(engine.check(check).health, Health::Unhealthy);
    }
    assert!(connects.load(Ordering::SeqCst) >= 5);
    wait_for("both start-up actions", LONG, || lines(&log).len() == 2);
    let mut actions = lines(&log);
    actions.sort();
    assert_eq!(actions, ["demotion bad", "promotion good"]);
    assert_eq!(engine.stop(), Stopped::Requested);
}

// ---- DNS that never answers ----

const DNS_CHILD: &str = "isolation::hanging_dns_child";

/// Runs `hanging_dns_child` in a private network and mount namespace whose
/// `/etc/resolv.conf` points at a local DNS server that never answers (and
/// answers NXDOMAIN for `nxdomain.*`), with a resolver timeout of 30 s.
/// Needs root and `unshare`; skipped with a message otherwise.
#[test]
fn hanging_dns_fails_only_the_checks_that_use_it() {
    let can_unshare = Command::new("unshare")
        .args(["-n", "-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_unshare {
        eprintln!("skipped: cannot create network and mount namespaces (needs root and unshare)");
        return;
    }
    let resolv = tempfile::NamedTempFile::new().expect("temp file");
    let exe = std::env::current_exe().expect("test binary");
    // In the new network namespace only loopback exists, and it is down
    // until brought up: the fake DNS server is started inside, by the
    // child, on an address it writes into the bind-mounted resolv.conf.
    let output = Command::new("unshare")
        .args(["-n", "-m", "sh", "-c"])
        .arg(
            "ip link set lo up && mount --bind \"$1\" /etc/resolv.conf && \
             exec \"$2\" --exact isolation::hanging_dns_child --ignored --nocapture \
             --test-threads=1",
        )
        .arg("sh")
        .arg(resolv.path())
        .arg(&exe)
        .env("HEARTBEAT_TEST_CHILD", DNS_CHILD)
        .env("HEARTBEAT_TEST_RESOLV", resolv.path())
        .output()
        .expect("run unshare");
    child::assert_passed(DNS_CHILD, &output);
}

/// The half of `hanging_dns_fails_only_the_checks_that_use_it` that runs
/// behind the hanging DNS server. Does nothing unless started by it.
#[test]
#[ignore = "run by hanging_dns_fails_only_the_checks_that_use_it"]
fn hanging_dns_child() {
    if !child::is_child(DNS_CHILD) {
        return;
    }
    let dns = net::FakeDns::start().expect("fake DNS server on a loopback address");
    let resolv = PathBuf::from(std::env::var_os("HEARTBEAT_TEST_RESOLV").unwrap());
    fs::write(
        &resolv,
        format!("nameserver {}\noptions timeout:30 attempts:1\n", dns.ip()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("actions.log");
    let web = net::http_server("127.0.0.1:0", |_| net::ok("ok\n"));
    let port = web.port();
    // Six names that hang: more than any fixed pool of resolver threads
    // small enough to keep idle.
    let mut text = format!(
        "[general]\ninterval = 300ms\n{}\
         [by-ip]\nurl = tcp://127.0.0.1:{port}\naction = local\n\
         [by-hosts-file]\nurl = tcp://localhost:{port}\naction = local\n\
         [http-by-hosts-file]\nurl = http://localhost:{port}/\naction = local\n\
         [missing]\nurl = tcp://nxdomain.heartbeat.test:{port}\naction = other\n",
        hooks(&log, &["local", "dns", "other"])
    );
    for i in 0..6 {
        let url = if i % 2 == 0 {
            format!("tcp://hang{i}.heartbeat.test:80")
        } else {
            format!("http://hang{i}.heartbeat.test/")
        };
        text += &format!("[hang{i}]\nurl = {url}\ntimeout = 1\naction = dns\n");
    }
    let engine = Running::start(Engine::new(parse(&text, dir.path()), Options::default()).unwrap());
    wait_for("every hanging name to time out", LONG, || {
        (0..6).all(|i| engine.reason(&format!("hang{i}")).is_some())
    });
    for i in 0..6 {
        assert_eq!(
            engine.reason(&format!("hang{i}")).as_deref(),
            Some("name resolution timed out after 1s")
        );
    }
    // Several more rounds while every lookup still hangs (30 s).
    let rounds = engine.snapshot().rounds;
    wait_for("five more rounds", LONG, || {
        engine.snapshot().rounds >= rounds + 5
    });
    assert_eq!(engine.reason("by-ip").as_deref(), Some("connected"));
    assert_eq!(engine.reason("by-hosts-file").as_deref(), Some("connected"));
    assert_eq!(
        engine.reason("http-by-hosts-file").as_deref(),
        Some("HTTP 200")
    );
    // Another name the server answers at once is not held up either.
    assert_eq!(engine.reason("missing").as_deref(), Some("no such host"));
    assert_eq!(engine.group("local"), Health::Healthy);
    wait_for("the three start-up actions", LONG, || {
        lines(&log).len() == 3
    });
    let mut actions = lines(&log);
    actions.sort();
    assert_eq!(
        actions,
        ["demotion dns", "demotion other", "promotion local"],
        "the group that uses no DNS was never demoted"
    );
    drop(engine);
}

/// A check of this test: run `n` takes `takes` and passes iff `passes(n)`.
struct Timed {
    takes: Duration,
    passes: fn(usize) -> bool,
    runs: AtomicUsize,
}

impl Check for Timed {
    fn run(&self) -> CheckResult {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.takes);
        if (self.passes)(n) {
            CheckResult::pass("up", self.takes)
        } else {
            CheckResult::fail("down", self.takes)
        }
    }
}

/// Regression: a slow check's late success was folded in at once while
/// the failure another check of its group had reported earlier waited in
/// the open round: the group was promoted on a state it never had, and
/// demoted when the round ended. Timeline, interval 400 ms: `slow` runs
/// 0–600 ms and passes; `flaky` passes at 0 ms, fails at 400 ms;
/// `holder` (another group) keeps the second round open until 700 ms.
#[test]
fn a_late_success_does_not_promote_over_an_earlier_failure_of_the_open_round() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("actions.log");
    let text = format!(
        "[general]\ninterval = 400ms\nthreads = 3\n{}\
         [slow]\ntype = script\ncommand = true\ntimeout = 1\naction = g\n\
         [flaky]\ntype = script\ncommand = true\naction = g\n\
         [holder]\ntype = script\ncommand = true\naction = other\n",
        hooks(&log, &["g", "other"]),
    );
    let config = parse(&text, dir.path());
    let timed = |takes, passes| -> Arc<dyn Check> {
        Arc::new(Timed {
            takes: Duration::from_millis(takes),
            passes,
            runs: AtomicUsize::new(0),
        })
    };
    let built = vec![
        timed(600, |_| true),
        timed(1, |n| n == 0),
        timed(300, |_| true),
    ];
    let engine = Running::start(Engine::with_checks(config, Options::default(), built).unwrap());
    wait_for("the demotion of g", LONG, || {
        lines(&log).contains(&"demotion g".to_owned())
    });
    // Two more rounds: nothing else may come for g.
    let rounds = engine.snapshot().rounds;
    wait_for("two more rounds", LONG, || {
        engine.snapshot().rounds >= rounds + 2
    });
    let g: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| l.ends_with(" g"))
        .collect();
    assert_eq!(
        g,
        ["demotion g"],
        "g was never healthy: flaky failed before slow passed"
    );
    assert_eq!(engine.stop(), Stopped::Requested);
}

// ---- failures inside heartbeat, and stops ----

/// Joins `thread` within `within`, or fails: a failure inside heartbeat
/// must end the engine, never hang it.
fn joined<T>(thread: JoinHandle<T>, within: Duration, what: &str) -> T {
    wait_for(what, within, || thread.is_finished());
    thread.join().expect("the engine thread")
}

#[test]
fn a_panic_in_the_engine_loop_ends_the_engine_with_a_failure_after_the_running_action() {
    let dir = tempfile::tempdir().unwrap();
    let (log, done) = (dir.path().join("actions.log"), dir.path().join("done"));
    // The promotion is still running when the loop panics: it is given its
    // deadline, not abandoned.
    let text = format!(
        "[general]\ninterval = 100ms\n\
         [promotions]\ng = echo promotion >> {log}; sleep 1; echo ended >> {done}\n\
         [demotions]\ng = echo demotion >> {log}\n\
         [up]\ntype = script\ncommand = true\naction = g\n",
        log = log.display(),
        done = done.display()
    );
    let mut engine = Engine::new(parse(&text, dir.path()), Options::default()).unwrap();
    // The loader runs on the loop's thread when a reload comes: the one way
    // in from outside to make that thread panic.
    engine.set_loader(Box::new(|_| panic!("loader exploded")));
    let handle = engine.handle();
    let thread = std::thread::spawn(move || engine.run(&|_| {}));
    wait_for("the promotion to start", LONG, || {
        lines(&log) == ["promotion"]
    });
    handle.reload();
    let stopped = joined(thread, LONG, "the engine to end");
    match stopped {
        Stopped::Failed(why) => assert!(
            why.starts_with("the engine loop panicked: loader exploded"),
            "{why}"
        ),
        other => panic!("the engine ended with {other:?}"),
    }
    assert_eq!(
        lines(&done),
        ["ended"],
        "the running promotion had its deadline"
    );
}

#[test]
fn a_status_server_that_stops_ends_the_engine_with_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[general]\ninterval = 100ms\n{}[up]\ntype = script\ncommand = true\naction = g\n",
        hooks(&dir.path().join("actions.log"), &["g"])
    );
    let mut engine = Engine::new(parse(&text, dir.path()), Options::default()).unwrap();
    let server = heartbeat::http::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        heartbeat::http::server::ServerOptions::default(),
        engine.status(),
        engine.metrics(),
        None,
    )
    .expect("a status server on loopback");
    engine.watch("status server", Box::new(server.alive()));
    let status = engine.status();
    let thread = std::thread::spawn(move || engine.run(&|_| {}));
    wait_for("three rounds", LONG, || status.read().unwrap().rounds >= 3);
    assert!(!thread.is_finished());
    server.shutdown();
    let stopped = joined(thread, LONG, "the engine to end");
    assert_eq!(
        stopped,
        Stopped::Failed("the status server has stopped".into())
    );
}

/// How the action thread of group `g` dies in [`losing_an_action`].
#[derive(Debug, Clone, Copy)]
enum Death {
    /// It panics before the hook runs.
    Panics,
    /// It runs the hook, then ends without reporting.
    EndsWithoutReporting,
}

/// What [`losing_an_action`] saw.
struct Lost {
    stopped: Stopped,
    /// Lines the hooks wrote.
    actions: Vec<String>,
    /// How many actions of `g` the engine started.
    started_g: usize,
    /// Runs of the check `up` when `g`'s thread died, and after the end.
    runs_at_death: usize,
    runs_after: usize,
    /// The slow check's shell and its background child.
    shell: i32,
    background: i32,
}

/// An engine whose group `g`'s action thread dies (`death`) while the
/// action of group `h` (one second long) runs and a script check of
/// group `s` sleeps (the thread waits for it to start): joined within
/// [`LONG`], or the test fails.
///
/// Actions start through [`Engine::set_action_spawner`]: those of `h` as
/// the daemon starts them (`actions::spawn`), those of `g` on a thread of
/// the test that dies.
fn losing_an_action(death: Death) -> Lost {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let (log, runs_of_up, pids) = (d("actions.log"), d("up.runs"), d("pids"));
    // Either way h's check goes (another test's stop may kill a script
    // check of this one), h's action lasts a second.
    let h_action = |what: &str| {
        format!(
            "echo {what} h >> {log}; sleep 1; echo ended h >> {log}",
            log = log.display()
        )
    };
    let text = format!(
        "[general]\ninterval = 100ms\n\
         [promotions]\ng = echo promotion g >> {log}\nh = {promote_h}\ns = echo promotion s >> {log}\n\
         [demotions]\ng = echo demotion g >> {log}\nh = {demote_h}\ns = echo demotion s >> {log}\n\
         [up]\ntype = script\ncommand = echo run >> {runs}\naction = g\n\
         [up_h]\ntype = script\ncommand = true\naction = h\n\
         [slow]\ntype = script\ncommand = sleep 61 & echo $! >> {pids}; echo $$ >> {pids}; sleep 60\n\
         timeout = 90\naction = s\n",
        log = log.display(),
        promote_h = h_action("promotion"),
        demote_h = h_action("demotion"),
        runs = runs_of_up.display(),
        pids = pids.display(),
    );
    let mut engine = Engine::new(parse(&text, dir.path()), Options::default()).unwrap();
    let started_g = Arc::new(AtomicUsize::new(0));
    let runs_at_death = Arc::new(AtomicUsize::new(usize::MAX));
    let (count, at_death, runs_path, pids_path) = (
        Arc::clone(&started_g),
        Arc::clone(&runs_at_death),
        runs_of_up.clone(),
        pids.clone(),
    );
    engine.set_action_spawner(Box::new(move |request, reply| {
        if request.group != "g" {
            return actions::spawn(request, reply);
        }
        count.fetch_add(1, Ordering::SeqCst);
        let (at_death, runs_path, pids_path) =
            (Arc::clone(&at_death), runs_path.clone(), pids_path.clone());
        std::thread::Builder::new()
            .name("action-g".into())
            .spawn(move || {
                // It dies once the slow check runs, for the stop to find.
                wait_for("the slow check to start", LONG, || {
                    lines(&pids_path).len() == 2
                });
                if let Death::EndsWithoutReporting = death {
                    actions::run(&request);
                }
                at_death.store(runs(&runs_path), Ordering::SeqCst);
                match death {
                    Death::Panics => {
                        let _reply = reply;
                        panic!("the action thread of g dies (a test's)");
                    }
                    Death::EndsWithoutReporting => drop(reply),
                }
            })
            .map(drop)
    }));
    let thread = std::thread::spawn(move || engine.run(&|_| {}));
    let stopped = joined(thread, LONG, "the engine to end");
    let pids: Vec<i32> = lines(&pids).iter().map(|l| l.parse().unwrap()).collect();
    Lost {
        stopped,
        actions: lines(&log),
        started_g: started_g.load(Ordering::SeqCst),
        runs_at_death: runs_at_death.load(Ordering::SeqCst),
        runs_after: runs(&runs_of_up),
        shell: pids[1],
        background: pids[0],
    }
}

/// What a user sees of an engine whose action thread died: it ended with
/// a failure naming the group (the line it logs at ERROR, and the reason
/// of exit status 70), after the other running action had its deadline;
/// nothing was started after the death (no retry of `g`'s action, no
/// further round); nothing it started outlives it.
fn assert_lost(lost: &Lost, g_ran: bool) {
    assert_eq!(
        lost.stopped,
        Stopped::Failed("the action thread of group \"g\" ended without reporting".into())
    );
    assert_eq!(
        lost.started_g, 1,
        "g's action was started again after its thread died"
    );
    let g_lines: Vec<&String> = lost.actions.iter().filter(|l| l.ends_with(" g")).collect();
    assert_eq!(g_lines.len(), usize::from(g_ran), "{:?}", lost.actions);
    let h_lines: Vec<&String> = lost.actions.iter().filter(|l| l.ends_with(" h")).collect();
    assert_eq!(
        h_lines.len(),
        2,
        "h's one action, to its end: {:?}",
        lost.actions
    );
    assert_eq!(h_lines[1], "ended h", "{:?}", lost.actions);
    // Rounds ran every 100 ms while h's action ran for a second: none
    // after the death (one may have been starting at that instant).
    assert!(
        lost.runs_after <= lost.runs_at_death + 1,
        "{} runs of up after the death, {} before",
        lost.runs_after - lost.runs_at_death,
        lost.runs_at_death
    );
    assert!(
        !exists(lost.shell),
        "the slow check's shell {} outlived the engine",
        lost.shell
    );
    wait_for("the slow check's background child to end", LONG, || {
        !running(lost.background)
    });
}

#[test]
fn an_action_thread_that_panics_ends_the_engine_with_a_failure_naming_its_group() {
    let lost = losing_an_action(Death::Panics);
    assert_lost(&lost, false);
}

#[test]
fn an_action_thread_that_ends_without_reporting_ends_the_engine_with_a_failure() {
    let lost = losing_an_action(Death::EndsWithoutReporting);
    assert_lost(&lost, true);
}

/// Whether process `pid` runs: it exists and is not a zombie (an orphan's
/// zombie is its new parent's to reap, not heartbeat's).
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// Whether process `pid` exists at all, zombie or not.
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_stop_mid_round_starts_no_further_check_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    // One worker for six script checks: the first runs (and leaves a
    // background child of its own), five wait in the queue.
    let mut text = format!(
        "[general]\ninterval = 100ms\nthreads = 1\n{}",
        hooks(&dir.path().join("actions.log"), &["g"])
    );
    for i in 0..6 {
        text += &format!(
            "[s{i}]\ntype = script\ncommand = sleep 61 & echo $! >> {s}; echo $$ >> {s}; sleep 60\n\
             timeout = 90\naction = g\n",
            s = started.display()
        );
    }
    let engine = Running::start(Engine::new(parse(&text, dir.path()), Options::default()).unwrap());
    wait_for("the first check to start", LONG, || {
        lines(&started).len() == 2
    });
    let pids: Vec<i32> = lines(&started).iter().map(|l| l.parse().unwrap()).collect();
    assert!(pids.iter().all(|&p| running(p)));
    let began = Instant::now();
    assert_eq!(engine.stop(), Stopped::Requested);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    // Nothing of the round started after the stop, and nothing it started
    // outlives heartbeat: the check's shell is gone and reaped (not even a
    // zombie is left), and its background child is no longer running. The
    // stop sends the kill; the shell dies and the pool thread that ran it
    // reaps it a moment later, which on a loaded machine can come after
    // the stop returned (but long before the shell's own 60 s).
    let (background, shell) = (pids[0], pids[1]);
    wait_for("the check's shell to be killed and reaped", LONG, || {
        !exists(shell)
    });
    wait_for("the background child to end", LONG, || !running(background));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lines(&started).len(),
        2,
        "a queued check started after the stop"
    );
}
