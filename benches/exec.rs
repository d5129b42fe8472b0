//! Starting processes: script checks per second and how soon an action
//! starts after its decision, side by side with a bare fork/exec loop.
//!
//! - 1,000 script checks (`command = true`) every second, the engine run
//!   in this process: checks done per second, CPU per check (this
//!   process's user + system time and that of its reaped children, from
//!   `getrusage`), and how late rounds start;
//! - the same number of `/bin/sh -c true` run one after another by one
//!   thread, then by 64 threads: the least a checker can spend per process;
//! - 250 groups of one check each, all turning unhealthy in the same round:
//!   the time from each group's decision (the engine's `group "gN" is
//!   unhealthy` log record) to its hook's first instruction (`echo gN >
//!   FIFO`, stamped with the monotonic clock by the FIFO's reader as the
//!   line arrives), beside a bare loop that spawns the same hook 250 times
//!   and measures spawn to first instruction the same way.
//!
//! ```sh
//! cargo bench --bench exec
//! ```
//!
//! Prints figures; asserts nothing.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heartbeat::checks::{Check, CheckResult};
use heartbeat::config;
use heartbeat::engine::{Engine, Options};
use nix::sys::resource::{UsageWho, getrusage};

const SCRIPTS: usize = 1000;
const WINDOW: Duration = Duration::from_secs(8);
const WARMUP: Duration = Duration::from_secs(2);
const GROUPS: usize = 250;

fn main() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    println!(
        "each figure on this machine, in one run; CPU is user + system time of the process and its children"
    );
    script_checks(dir.path());
    bare_exec(1);
    bare_exec(64);
    action_latency(dir.path(), 1, 20, Duration::from_millis(300));
    bare_hooks(dir.path(), 20, false);
    action_latency(dir.path(), GROUPS, 2, Duration::from_millis(2000));
    bare_hooks(dir.path(), GROUPS, true);
}

/// User + system time of this process and of its reaped children.
fn cpu() -> Duration {
    let total = |who| {
        let u = getrusage(who).expect("getrusage");
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000)
        };
        t(u.user_time()) + t(u.system_time())
    };
    total(UsageWho::RUSAGE_SELF) + total(UsageWho::RUSAGE_CHILDREN)
}

fn parse(text: &str, dir: &Path) -> heartbeat::model::Config {
    config::parse(text, &dir.join("hb.conf"), dir)
        .unwrap_or_else(|e| panic!("invalid configuration: {e}"))
        .config
}

fn script_checks(dir: &Path) {
    let mut text =
        String::from("[general]\ninterval = 1\n[promotions]\ng = true\n[demotions]\ng = true\n");
    for i in 0..SCRIPTS {
        text += &format!("[s{i}]\ntype = script\ncommand = true\naction = g\n");
    }
    let engine = Engine::new(parse(&text, dir), Options::default()).expect("engine");
    let (handle, status) = (engine.handle(), engine.status());
    let thread = std::thread::spawn(move || engine.run(&|_| {}));
    std::thread::sleep(WARMUP);
    let (rounds0, cpu0, t0) = (status.read().unwrap().rounds, cpu(), Instant::now());
    let mut worst_late = Duration::ZERO;
    let mut worst_round = Duration::ZERO;
    while t0.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(last) = status.read().unwrap().last_round.clone() {
            worst_late = worst_late.max(last.lateness);
            worst_round = worst_round.max(last.duration);
        }
    }
    let (rounds, spent, took) = (
        status.read().unwrap().rounds - rounds0,
        cpu() - cpu0,
        t0.elapsed(),
    );
    handle.stop();
    thread.join().expect("engine");
    let checks = rounds as f64 * SCRIPTS as f64;
    println!(
        "{:<44} {:>8.0} checks/s {:>9.1} us CPU per check {:>6.2} cores; rounds took up to {:?}, started up to {:?} late",
        format!("script x{SCRIPTS} every 1s: heartbeat"),
        checks / took.as_secs_f64(),
        spent.as_secs_f64() * 1e6 / checks.max(1.0),
        spent.as_secs_f64() / took.as_secs_f64(),
        worst_round,
        worst_late
    );
}

/// `SCRIPTS` runs of `/bin/sh -c true` on `threads` threads at once.
fn bare_exec(threads: usize) {
    let (cpu0, t0) = (cpu(), Instant::now());
    let each = SCRIPTS / threads;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..each {
                    Command::new("/bin/sh")
                        .args(["-c", "true"])
                        .status()
                        .expect("sh");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let (spent, took) = (cpu() - cpu0, t0.elapsed());
    let runs = (each * threads) as f64;
    println!(
        "{:<44} {:>8.0} execs/s  {:>9.1} us CPU per exec  {:>6.2} cores",
        format!(
            "sh -c true x{}: bare loop, {threads} thread(s)",
            each * threads
        ),
        runs / took.as_secs_f64(),
        spent.as_secs_f64() * 1e6 / runs,
        spent.as_secs_f64() / took.as_secs_f64()
    );
}

/// Lines from a FIFO, each stamped with the monotonic clock as it arrives.
fn fifo_reader(path: &Path) -> Arc<Mutex<Vec<(Instant, String)>>> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("fifo");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(file).lines() {
            into.lock().unwrap().push((Instant::now(), line.unwrap()));
        }
    });
    lines
}

/// Records when the engine decided each group's state: its `group "gN"
/// is healthy` / `is unhealthy` log records, in order.
struct Decisions(Mutex<Vec<(String, Instant)>>);

impl log::Log for Decisions {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        let at = Instant::now();
        let text = record.args().to_string();
        if let Some(rest) = text.strip_prefix("group \"") {
            if let Some((name, tail)) = rest.split_once('"') {
                if tail.starts_with(" is healthy") || tail.starts_with(" is unhealthy") {
                    self.0.lock().unwrap().push((name.to_owned(), at));
                }
            }
        }
    }

    fn flush(&self) {}
}

static DOWN: AtomicBool = AtomicBool::new(false);

/// A check that passes until [`DOWN`] is set.
struct Switch;

impl Check for Switch {
    fn run(&self) -> CheckResult {
        if DOWN.load(Ordering::SeqCst) {
            CheckResult::fail("down", Duration::ZERO)
        } else {
            CheckResult::pass("up", Duration::ZERO)
        }
    }
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    if v.is_empty() {
        return "no samples".into();
    }
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "median {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  ({} samples)",
        p(0.5),
        p(0.99),
        v[v.len() - 1],
        v.len()
    )
}

fn decisions() -> &'static Decisions {
    static DECISIONS: std::sync::OnceLock<&'static Decisions> = std::sync::OnceLock::new();
    DECISIONS.get_or_init(|| {
        let d: &'static Decisions = Box::leak(Box::new(Decisions(Mutex::new(Vec::new()))));
        log::set_logger(d).expect("logger");
        log::set_max_level(log::LevelFilter::Info);
        d
    })
}

/// `groups` groups of one check each, all turning `turns` times at once
/// (every `every`): decision to hook's first instruction, for every
/// promotion and demotion, start-up included.
fn action_latency(dir: &Path, groups: usize, turns: usize, every: Duration) {
    let decided = decisions();
    decided.0.lock().unwrap().clear();
    DOWN.store(false, Ordering::SeqCst);
    let fifo = dir.join(format!("hooks-{groups}.fifo"));
    let lines = fifo_reader(&fifo);
    let mut text = String::from("[general]\ninterval = 100ms\n");
    for section in ["promotions", "demotions"] {
        text += &format!("[{section}]\n");
        for g in 0..groups {
            text += &format!("g{g} = echo $HEARTBEAT_ACTION > {}\n", fifo.display());
        }
    }
    for g in 0..groups {
        text += &format!("[c{g}]\ntype = script\ncommand = true\naction = g{g}\n");
    }
    let config = parse(&text, dir);
    let checks: Vec<Arc<dyn Check>> = (0..groups)
        .map(|_| Arc::new(Switch) as Arc<dyn Check>)
        .collect();
    let engine = Engine::with_checks(config, Options::default(), checks).expect("engine");
    let handle = engine.handle();
    let thread = std::thread::spawn(move || engine.run(&|_| {}));
    for turn in 0..turns {
        std::thread::sleep(every);
        DOWN.store(turn % 2 == 0, Ordering::SeqCst);
    }
    let until = Instant::now() + Duration::from_secs(10);
    while lines.lock().unwrap().len() < groups * (turns + 1) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.stop();
    thread.join().expect("engine");
    // The k-th decision of a group with the k-th start of its hooks.
    let mut by_group: HashMap<String, (Vec<Instant>, Vec<Instant>)> = HashMap::new();
    for (g, at) in decided.0.lock().unwrap().iter() {
        by_group.entry(g.clone()).or_default().0.push(*at);
    }
    for (at, g) in lines.lock().unwrap().iter() {
        by_group.entry(g.clone()).or_default().1.push(*at);
    }
    let got: Vec<Duration> = by_group
        .values()
        .flat_map(|(d, s)| {
            d.iter()
                .zip(s)
                .map(|(d, s)| s.saturating_duration_since(*d))
        })
        .collect();
    println!(
        "{:<44} {}",
        format!("{groups} group(s) turning at once: heartbeat"),
        percentiles(got)
    );
}

/// The hook spawned `n` times by one thread: spawn to first instruction
/// of each, and (`burst`) from one common instant, as if all were decided
/// at once.
fn bare_hooks(dir: &Path, n: usize, burst: bool) {
    let fifo = dir.join(format!("bare-{n}.fifo"));
    let lines = fifo_reader(&fifo);
    let (mut starts, mut children) = (Vec::new(), Vec::new());
    let t0 = Instant::now();
    for g in 0..n {
        let name = format!("b{g}");
        starts.push((name.clone(), Instant::now()));
        children.push(
            Command::new("/bin/sh")
                .args(["-c", &format!("echo {name} > {}", fifo.display())])
                .spawn()
                .expect("sh"),
        );
    }
    let until = Instant::now() + Duration::from_secs(10);
    while lines.lock().unwrap().len() < n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    for mut child in children {
        let _ = child.wait();
    }
    let arrived: HashMap<String, Instant> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|(at, l)| (l.clone(), *at))
        .collect();
    let each: Vec<Duration> = starts
        .iter()
        .filter_map(|(name, s)| arrived.get(name).map(|a| a.saturating_duration_since(*s)))
        .collect();
    let common: Vec<Duration> = arrived
        .values()
        .map(|a| a.saturating_duration_since(t0))
        .collect();
    println!(
        "{:<44} {}",
        format!("hook x{n}: bare loop, spawn to echo"),
        percentiles(each)
    );
    if burst {
        println!(
            "{:<44} {}",
            format!("hook x{n}: bare loop, from one instant"),
            percentiles(common)
        );
    }
}
