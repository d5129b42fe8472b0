//! The transition semantics of SPEC §3–4 against a reference model, on
//! random schedules: the real engine, run in this process, with checks
//! that are sometimes slower than their interval and hooks that are
//! sometimes slow, checked for no missed, duplicated or out-of-order
//! action, and for every action started within interval + timeout of the
//! change it answers.
//!
//! Each schedule is drawn from a seed: one to three groups fed by one to
//! five checks (some fed into two groups), each check with its own target
//! that turns up and down at random instants, a run time that is either a
//! few milliseconds or up to twice the interval, `rise` and `fall` of 1 to
//! 3, sometimes its own `interval`, and running on the network thread or
//! on the pool; hooks that take no time or up to three intervals. A check
//! reports the state of its target when its run ends (as a peer that
//! answers late tells how it is when it answers). Every run is recorded by
//! the check; every action's start and end is written by the hook itself
//! to a FIFO whose reader stamps each line with the monotonic clock.
//!
//! The model, written from SPEC and not from the engine's code, folds the
//! recorded results into check health (`unknown` until the first result,
//! then `rise` / `fall` consecutive) and group health (healthy iff every
//! check is, unhealthy iff any is), and then asserts:
//!
//! - a check is never started while its previous run is in flight, and is
//!   started again no later than one of its intervals after a run ends;
//! - a group's actions never overlap; the first announces from `unknown`,
//!   each later one from the state the previous one announced, and never
//!   the state already announced (no duplicate, nothing out of order);
//! - every state announced is one the group had, per the model, since the
//!   previous action started (nothing invented);
//! - after every change of a target, once the targets of a group hold
//!   still, the latest action the group started announces the group's
//!   health, at the latest `(n − 1)(I + T) + I + max(T, min(interval,
//!   longest timeout))` after the change (`n` = the check's `rise` or
//!   `fall`, `I` its interval, `T` its timeout: for `rise = fall = 1`,
//!   interval + timeout), or as soon after that as the hook running then
//!   ends, plus [`slack`] for the machine;
//! - at the end, the engine's published state of every check and group is
//!   the model's, and every group's last action announced it.
//!
//! `HEARTBEAT_MODEL_SCHEDULES` sets how many schedules run (default
//! [`DEFAULT_SCHEDULES`], a few seconds of wall time in parallel; the
//! thousands of a release check: `HEARTBEAT_MODEL_SCHEDULES=5000 cargo
//! test --release --test tests -- model:: --nocapture`, about ten
//! minutes). `HEARTBEAT_MODEL_SEED` fixes the first seed (schedule `i`
//! uses seed + i); a failure prints the seed of each failing schedule and
//! the command that runs that schedule alone. The schedule is the seed's;
//! the timing is the machine's, so a failure that needed a rare timing may
//! not come back alone: the message shows the whole timeline.
//! `HEARTBEAT_MODEL_SLACK_MS` sets the slack (default 100 ms) and
//! `HEARTBEAT_MODEL_FOLLOW_MS` the [`follow_slack`] (default 40 ms); both
//! are extended by the time the test's threads measurably waited for a
//! core ([`Stalls`]), since the suite runs in parallel on a loaded two-core
//! machine. The figures are printed (`--nocapture`).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartbeat::checks::{Check, CheckFuture, CheckResult};
use heartbeat::config;
use heartbeat::engine::{Engine, Options, Stopped};
use heartbeat::model::Health;

/// Schedules run by the normal suite.
pub const DEFAULT_SCHEDULES: usize = 160;

/// Schedules run at once, each with an engine of its own.
const PARALLEL: usize = 8;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// What a loaded machine may add to any bound: thread wake-ups, `fork`
/// and `exec` of the hook, the FIFO's reader.
fn slack() -> Duration {
    Duration::from_millis(env_number("HEARTBEAT_MODEL_SLACK_MS").unwrap_or(100))
}

/// What a loaded machine may add between the end of a group's hook and the
/// start of the action that follows it at once (SPEC §4: the latest state
/// is applied when the running action ends, not at the next round): less
/// than the shortest interval, so that waiting for a round shows.
fn follow_slack() -> Duration {
    Duration::from_millis(env_number("HEARTBEAT_MODEL_FOLLOW_MS").unwrap_or(40))
}

/// How late this process's threads were woken, as a thread that sleeps
/// 2 ms at a time sees it: on a loaded machine every thread of the test,
/// the engine's included, can wait hundreds of milliseconds for a core.
/// Bounds are extended by the stalls measured while they run, so that the
/// test judges the engine, not the machine's load.
struct Stalls {
    seen: Mutex<Vec<(Instant, Instant)>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Stalls {
    fn start() -> Arc<Stalls> {
        let stalls = Arc::new(Stalls {
            seen: Mutex::new(Vec::new()),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let meter = Arc::clone(&stalls);
        std::thread::spawn(move || {
            let nap = ms(2);
            while !meter.stop.load(Ordering::SeqCst) {
                let before = Instant::now();
                std::thread::sleep(nap);
                let after = Instant::now();
                if after - before > nap + ms(3) {
                    meter.seen.lock().unwrap().push((before + nap, after));
                }
            }
        });
        stalls
    }

    /// How long threads waited for a core between `from` and `to`.
    fn during(&self, from: Instant, to: Instant) -> Duration {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|&&(a, b)| b > from && a < to)
            .map(|&(a, b)| b.min(to) - a.max(from))
            .sum()
    }

    /// `to`, pushed later by the stalls between `from` and it.
    fn allow(&self, from: Instant, to: Instant) -> Instant {
        let mut until = to;
        for _ in 0..4 {
            until = to + self.during(from, until);
        }
        until
    }
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// SplitMix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

// ---- a schedule, drawn from a seed ----

#[derive(Debug, Clone)]
struct CheckPlan {
    /// Its own `interval`, if it has one.
    own_interval: Option<Duration>,
    /// The interval it runs at.
    interval: Duration,
    /// Its `timeout`: no run takes longer.
    timeout: Duration,
    /// Run times are drawn from `quick..=timeout`.
    quick: Duration,
    rise: u32,
    fall: u32,
    network: bool,
    /// The target's state at the start, and the instants (from the start)
    /// at which it turns.
    up_at_start: bool,
    flips: Vec<Duration>,
    groups: Vec<usize>,
}

impl CheckPlan {
    fn target(&self, since_start: Duration) -> bool {
        let turns = self.flips.iter().filter(|&&f| f <= since_start).count();
        self.up_at_start ^ (turns % 2 == 1)
    }
}

#[derive(Debug, Clone)]
struct GroupPlan {
    promotion_takes: Duration,
    demotion_takes: Duration,
    members: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    interval: Duration,
    checks: Vec<CheckPlan>,
    groups: Vec<GroupPlan>,
    /// No target turns after this (from the start).
    horizon: Duration,
}

impl Plan {
    fn draw(seed: u64) -> Plan {
        let mut rng = Rng(seed);
        let interval = ms(rng.range(6, 10) * 10);
        let ngroups = rng.range(1, 3) as usize;
        let nchecks = ngroups + rng.range(0, 2) as usize;
        let horizon = interval * rng.range(20, 40) as u32;
        let mut checks = Vec::new();
        for i in 0..nchecks {
            let own_interval = match rng.range(0, 9) {
                0 | 1 => Some(interval * 2),
                2 => Some(interval / 2),
                _ => None,
            };
            let runs_at = own_interval.unwrap_or(interval);
            let slow = rng.chance(40);
            let (quick, timeout) = if slow {
                (runs_at / 2, runs_at * 2)
            } else {
                (Duration::ZERO, ms(3))
            };
            let (rise, fall) = if rng.chance(60) {
                (1, 1)
            } else {
                (rng.range(1, 3) as u32, rng.range(1, 3) as u32)
            };
            // Turns that come and go before any action could follow them,
            // and states that hold long enough to be answered.
            let i_ms = interval.as_millis() as u64;
            let mut flips = Vec::new();
            let mut at = Duration::ZERO;
            loop {
                at += if rng.chance(50) {
                    ms(rng.range(i_ms / 2, 3 * i_ms))
                } else {
                    ms(rng.range(8 * i_ms, 14 * i_ms))
                };
                if at > horizon {
                    break;
                }
                flips.push(at);
            }
            let mut groups = vec![i % ngroups];
            if ngroups > 1 && rng.chance(25) {
                groups.push((i + 1) % ngroups);
            }
            checks.push(CheckPlan {
                own_interval,
                interval: runs_at,
                timeout,
                quick,
                rise,
                fall,
                network: rng.chance(50),
                up_at_start: rng.chance(60),
                flips,
                groups,
            });
        }
        let hook = |rng: &mut Rng| {
            if rng.chance(30) {
                interval * rng.range(1, 6) as u32 / 2
            } else {
                Duration::ZERO
            }
        };
        let groups = (0..ngroups)
            .map(|g| GroupPlan {
                promotion_takes: hook(&mut rng),
                demotion_takes: hook(&mut rng),
                members: (0..nchecks)
                    .filter(|&c| checks[c].groups.contains(&g))
                    .collect(),
            })
            .collect();
        Plan {
            seed,
            interval,
            checks,
            groups,
            horizon,
        }
    }

    /// The configuration: hooks that write `S GROUP STATE PREVIOUS` and
    /// `E GROUP` to `fifo`, with a `sleep` between for slow ones.
    fn config_text(&self, fifo: &Path) -> String {
        let f = fifo.display();
        let mut text = format!(
            "[general]\ninterval = {}ms\naction_timeout = 30\nthreads = {}\n",
            self.interval.as_millis(),
            self.checks.len()
        );
        for (section, takes) in [("promotions", true), ("demotions", false)] {
            text += &format!("[{section}]\n");
            for (g, group) in self.groups.iter().enumerate() {
                let sleep = if takes {
                    group.promotion_takes
                } else {
                    group.demotion_takes
                };
                let pause = if sleep.is_zero() {
                    String::new()
                } else {
                    format!("sleep {:.3}; ", sleep.as_secs_f64())
                };
                text += &format!(
                    "g{g} = echo \"S $HEARTBEAT_ACTION $HEARTBEAT_STATE $HEARTBEAT_PREVIOUS_STATE\" > {f}; {pause}echo \"E $HEARTBEAT_ACTION\" > {f}\n"
                );
            }
        }
        for (i, c) in self.checks.iter().enumerate() {
            let groups: Vec<String> = c.groups.iter().map(|g| format!("g{g}")).collect();
            text += &format!(
                "[c{i}]\ntype = script\ncommand = true\ntimeout = {}ms\nrise = {}\nfall = {}\naction = {}\n",
                c.timeout.as_millis(),
                c.rise,
                c.fall,
                groups.join(", ")
            );
            if let Some(own) = c.own_interval {
                text += &format!("interval = {}ms\n", own.as_millis());
            }
        }
        text
    }
}

// ---- the world the checks look at, and what they record ----

#[derive(Debug, Clone, Copy)]
struct Run {
    check: usize,
    start: Instant,
    end: Instant,
    passed: bool,
}

struct World {
    plan: Plan,
    start: Instant,
    runs: Mutex<Vec<Run>>,
}

/// A check of this test: waits its drawn run time, then reports its
/// target's state.
struct Scripted {
    world: Arc<World>,
    index: usize,
    count: AtomicU64,
}

impl Scripted {
    /// The run time of run `n`, from the seed.
    fn takes(&self, n: u64) -> Duration {
        let plan = &self.world.plan.checks[self.index];
        let mut rng =
            Rng(self.world.plan.seed ^ ((self.index as u64) << 40) ^ n.wrapping_mul(0x1F));
        let (lo, hi) = (
            plan.quick.as_micros() as u64,
            plan.timeout.as_micros() as u64,
        );
        Duration::from_micros(rng.range(lo, hi))
    }

    fn finish(&self, start: Instant) -> CheckResult {
        let end = Instant::now();
        let plan = &self.world.plan.checks[self.index];
        let passed = plan.target(end - self.world.start);
        self.world.runs.lock().unwrap().push(Run {
            check: self.index,
            start,
            end,
            passed,
        });
        if passed {
            CheckResult::pass("target up", end - start)
        } else {
            CheckResult::fail("target down", end - start)
        }
    }
}

impl Check for Scripted {
    fn run(&self) -> CheckResult {
        let start = Instant::now();
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.takes(n));
        self.finish(start)
    }

    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        if !self.world.plan.checks[self.index].network {
            return None;
        }
        Some(Box::pin(async move {
            let start = Instant::now();
            let n = self.count.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.takes(n)).await;
            self.finish(start)
        }))
    }
}

/// Reads the hooks' lines from a FIFO, stamping each as it comes.
struct Stamps {
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    fifo: std::path::PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Stamps {
    fn start(fifo: &Path) -> Stamps {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Read and write: no writer ever blocks on opening it, and the
        // reader never sees an end of file between two hooks.
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(fifo)
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&lines);
        let thread = std::thread::spawn(move || {
            for line in BufReader::new(file).lines() {
                let line = line.unwrap();
                if line == "Q" {
                    return;
                }
                into.lock().unwrap().push((Instant::now(), line));
            }
        });
        Stamps {
            lines,
            fifo: fifo.to_owned(),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> Vec<(Instant, String)> {
        if let Some(thread) = self.thread.take() {
            let mut w = fs::OpenOptions::new().write(true).open(&self.fifo).unwrap();
            w.write_all(b"Q\n").unwrap();
            thread.join().unwrap();
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Stamps {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- the model ----

/// One action as its hook told it.
#[derive(Debug, Clone)]
struct Action {
    start: Instant,
    end: Option<Instant>,
    state: String,
    previous: String,
}

fn name(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
        Health::Unknown => "unknown",
    }
}

/// SPEC §3: `unknown` until the first result, which decides; then `fall`
/// consecutive failures to turn unhealthy, `rise` consecutive successes to
/// turn healthy. The health after each result, in order.
fn check_timeline(results: &[(Instant, bool)], rise: u32, fall: u32) -> Vec<(Instant, Health)> {
    let mut health = Health::Unknown;
    let (mut ups, mut downs) = (0, 0);
    let mut out = Vec::new();
    for &(at, passed) in results {
        if passed {
            ups += 1;
            downs = 0;
        } else {
            downs += 1;
            ups = 0;
        }
        health = match health {
            Health::Unknown if passed => Health::Healthy,
            Health::Unknown => Health::Unhealthy,
            Health::Unhealthy if passed && ups >= rise => Health::Healthy,
            Health::Healthy if !passed && downs >= fall => Health::Unhealthy,
            h => h,
        };
        out.push((at, health));
    }
    out
}

/// SPEC §3: a group is unhealthy iff a check is, healthy iff every check
/// is, unknown otherwise.
fn fold_group(states: &[Health]) -> Health {
    if states.contains(&Health::Unhealthy) {
        Health::Unhealthy
    } else if states.iter().all(|&h| h == Health::Healthy) {
        Health::Healthy
    } else {
        Health::Unknown
    }
}

/// The value at `t` of a timeline of changes (`initial` before the first).
fn at<T: Copy>(timeline: &[(Instant, T)], t: Instant, initial: T) -> T {
    timeline
        .iter()
        .take_while(|(when, _)| *when <= t)
        .last()
        .map_or(initial, |&(_, v)| v)
}

/// What one schedule measured.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    actions: usize,
    runs: usize,
    changes_answered: usize,
    /// The longest wait from a change to the action answering it, beyond
    /// its bound without slack, when no hook was running.
    worst_over_bound: Option<Duration>,
    worst_ratio: f64,
    /// The longest wait from the end of a hook to the start of the action
    /// that followed it at once.
    worst_follow: Option<Duration>,
}

/// Runs one schedule and checks it against the model.
fn run_schedule(seed: u64, stalls: &Stalls) -> Result<Figures, String> {
    let plan = Plan::draw(seed);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fifo = dir.path().join("actions.fifo");
    let mut stamps = Stamps::start(&fifo);
    let text = plan.config_text(&fifo);
    let config = config::parse(&text, &dir.path().join("hb.conf"), dir.path())
        .map_err(|e| format!("invalid configuration: {e}\n{text}"))?
        .config;
    let world = Arc::new(World {
        plan: plan.clone(),
        start: Instant::now(),
        runs: Mutex::new(Vec::new()),
    });
    let checks: Vec<Arc<dyn Check>> = (0..plan.checks.len())
        .map(|index| {
            Arc::new(Scripted {
                world: Arc::clone(&world),
                index,
                count: AtomicU64::new(0),
            }) as Arc<dyn Check>
        })
        .collect();
    let engine =
        Engine::with_checks(config, Options::default(), checks).map_err(|e| e.to_string())?;
    let (handle, status) = (engine.handle(), engine.status());
    let thread = std::thread::spawn(move || engine.run(&|_| {}));

    // After the last turn: long enough for every check to reach its
    // target's state and every hook to announce it.
    let longest_hook = plan
        .groups
        .iter()
        .map(|g| g.promotion_takes.max(g.demotion_takes))
        .max()
        .unwrap_or_default();
    let settle = plan
        .checks
        .iter()
        .map(|c| (c.interval + c.timeout) * (c.rise.max(c.fall) + 1))
        .max()
        .unwrap_or_default()
        + longest_hook * 2
        + slack();
    std::thread::sleep(
        (world.start + plan.horizon + settle).saturating_duration_since(Instant::now()),
    );
    let final_targets: Vec<bool> = plan.checks.iter().map(|c| c.target(plan.horizon)).collect();
    let expected_group = |g: &GroupPlan| {
        if g.members.iter().all(|&c| final_targets[c]) {
            Health::Healthy
        } else {
            Health::Unhealthy
        }
    };
    // Every group announced its final state, or the deadline says it
    // never will.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = stamps.lines.lock().unwrap().clone();
        let announced = plan.groups.iter().enumerate().all(|(g, group)| {
            let prefix = format!("S g{g} ");
            let last_start = lines.iter().rposition(|(_, l)| l.starts_with(&prefix));
            let ended =
                last_start.is_some_and(|i| lines[i..].iter().any(|(_, l)| *l == format!("E g{g}")));
            ended
                && last_start.is_some_and(|i| {
                    lines[i].1.split(' ').nth(2) == Some(name(expected_group(group)))
                })
        });
        if announced || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(ms(20));
    }
    let snapshot = status.read().unwrap().clone();
    handle.stop();
    let stopped = thread
        .join()
        .map_err(|_| "the engine thread panicked".to_owned())?;
    if stopped != Stopped::Requested {
        return Err(format!("the engine stopped with {stopped:?}"));
    }
    let lines = stamps.stop();
    let runs = world.runs.lock().unwrap().clone();
    let mut problems = Vec::new();
    let figures = judge(&plan, world.start, &runs, &lines, stalls, &mut problems);
    for (g, group) in plan.groups.iter().enumerate() {
        let got = snapshot.groups.iter().find(|s| s.name == format!("g{g}"));
        let want = expected_group(group);
        if got.map(|s| s.health) != Some(want) {
            problems.push(format!(
                "g{g}: published {:?} at the end, the model says {want:?}",
                got.map(|s| s.health)
            ));
        }
    }
    for (i, c) in plan.checks.iter().enumerate() {
        let got = snapshot
            .checks
            .iter()
            .find(|s| s.name == format!("c{i}"))
            .map(|s| s.health);
        let mine: Vec<(Instant, bool)> = ordered(&runs, i)
            .iter()
            .map(|r| (r.end, r.passed))
            .collect();
        let model = check_timeline(&mine, c.rise, c.fall)
            .last()
            .map_or(Health::Unknown, |&(_, h)| h);
        if got != Some(model) {
            problems.push(format!(
                "c{i}: published {got:?} at the end, the model says {model:?}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(figures)
    } else {
        Err(describe(&plan, world.start, &runs, &lines, &problems))
    }
}

/// The runs of check `i`, by start.
fn ordered(runs: &[Run], i: usize) -> Vec<Run> {
    let mut mine: Vec<Run> = runs.iter().filter(|r| r.check == i).copied().collect();
    mine.sort_by_key(|r| r.start);
    mine
}

/// The actions of each group, from the hooks' lines.
fn actions_of(
    ngroups: usize,
    lines: &[(Instant, String)],
    problems: &mut Vec<String>,
) -> Vec<Vec<Action>> {
    let mut actions: Vec<Vec<Action>> = vec![Vec::new(); ngroups];
    for (at, line) in lines {
        let words: Vec<&str> = line.split(' ').collect();
        let g: usize = match words
            .get(1)
            .and_then(|w| w.strip_prefix('g'))
            .and_then(|n| n.parse().ok())
        {
            Some(g) if g < ngroups => g,
            _ => {
                problems.push(format!("a hook wrote {line:?}"));
                continue;
            }
        };
        let list = &mut actions[g];
        match (words[0], list.last_mut()) {
            ("S", last) => {
                if let Some(last) = last.filter(|a| a.end.is_none()) {
                    problems.push(format!(
                        "g{g}: an action started while its {} ran (two at once)",
                        last.state
                    ));
                }
                list.push(Action {
                    start: *at,
                    end: None,
                    state: words.get(2).unwrap_or(&"").to_string(),
                    previous: words.get(3).unwrap_or(&"").to_string(),
                });
            }
            ("E", Some(last)) if last.end.is_none() => last.end = Some(*at),
            _ => problems.push(format!("g{g}: {line:?} with no action running")),
        }
    }
    actions
}

/// The model's assertions on one schedule; what it measured.
fn judge(
    plan: &Plan,
    start: Instant,
    runs: &[Run],
    lines: &[(Instant, String)],
    stalls: &Stalls,
    problems: &mut Vec<String>,
) -> Figures {
    let slack = slack();
    let mut figures = Figures {
        runs: runs.len(),
        ..Figures::default()
    };
    // Checks: never two runs at once, never starved.
    let mut timelines = Vec::new();
    for (i, c) in plan.checks.iter().enumerate() {
        let mine = ordered(runs, i);
        if let Some(first) = mine.first() {
            if first.start > stalls.allow(start, start + slack) {
                problems.push(format!(
                    "c{i}: first run {:?} after the start",
                    first.start - start
                ));
            }
        }
        for pair in mine.windows(2) {
            if pair[1].start < pair[0].end {
                problems.push(format!(
                    "c{i}: started at {:?} while its run of {:?} was in flight",
                    pair[1].start - start,
                    pair[0].start - start
                ));
            } else if pair[1].start > stalls.allow(pair[0].end, pair[0].end + c.interval + slack) {
                problems.push(format!(
                    "c{i}: started {:?} after its previous run ended, interval {:?}",
                    pair[1].start - pair[0].end,
                    c.interval
                ));
            }
        }
        let mut by_end = mine.clone();
        by_end.sort_by_key(|r| r.end);
        let results: Vec<(Instant, bool)> = by_end.iter().map(|r| (r.end, r.passed)).collect();
        timelines.push(check_timeline(&results, c.rise, c.fall));
    }
    let actions = actions_of(plan.groups.len(), lines, problems);
    let longest_timeout = plan
        .checks
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or_default();
    for (g, group) in plan.groups.iter().enumerate() {
        let acts = &actions[g];
        figures.actions += acts.len();
        // The group's health per the model, as a timeline of changes.
        let mut instants: Vec<Instant> = group
            .members
            .iter()
            .flat_map(|&c| timelines[c].iter().map(|&(t, _)| t))
            .collect();
        instants.sort();
        let health: Vec<(Instant, Health)> = instants
            .iter()
            .map(|&t| {
                let states: Vec<Health> = group
                    .members
                    .iter()
                    .map(|&c| at(&timelines[c], t, Health::Unknown))
                    .collect();
                (t, fold_group(&states))
            })
            .collect();
        // No duplicate, nothing out of order, nothing invented.
        let mut announced = "unknown".to_owned();
        let mut since = start;
        for (k, a) in acts.iter().enumerate() {
            if a.previous != announced {
                problems.push(format!(
                    "g{g}: action {k} ({}) says the previous state was {}, the last announced was {announced}",
                    a.state, a.previous
                ));
            }
            if a.state == announced {
                problems.push(format!("g{g}: action {k} announced {announced} again"));
            }
            let lag = plan.interval + longest_timeout + slack;
            let lag = lag + stalls.during(since.checked_sub(lag).unwrap_or(start), a.start);
            let from = since.checked_sub(lag).unwrap_or(start);
            let had = name(at(&health, from, Health::Unknown)) == a.state
                || health
                    .iter()
                    .any(|&(t, h)| t > from && t <= a.start && name(h) == a.state);
            if !had {
                problems.push(format!(
                    "g{g}: action {k} announced {} at {:?}, which the group never was since {:?}",
                    a.state,
                    a.start - start,
                    from.saturating_duration_since(start)
                ));
            }
            announced = a.state.clone();
            since = a.start;
            followed_at_once(
                g,
                start,
                acts,
                k,
                &health,
                plan.interval + slack,
                stalls,
                figures_follow(&mut figures),
                problems,
            );
        }
        answered_in_time(
            plan,
            g,
            start,
            acts,
            (slack, stalls),
            &mut figures,
            problems,
        );
    }
    figures
}

fn figures_follow(figures: &mut Figures) -> &mut Option<Duration> {
    &mut figures.worst_follow
}

/// SPEC §4: when a hook ends and the group has meanwhile turned to the
/// other state (and held it since at least `lag` before, so the engine has
/// folded it in), that state is applied at once: the next action starts
/// within [`follow_slack`], not at the next round.
#[allow(clippy::too_many_arguments)]
fn followed_at_once(
    g: usize,
    start: Instant,
    acts: &[Action],
    k: usize,
    health: &[(Instant, Health)],
    lag: Duration,
    stalls: &Stalls,
    worst: &mut Option<Duration>,
    problems: &mut Vec<String>,
) {
    let Some(end) = acts[k].end else { return };
    let lag = lag + stalls.during(end.checked_sub(lag).unwrap_or(start), end);
    let from = end.checked_sub(lag).unwrap_or(start);
    let until = stalls.allow(end, end + follow_slack());
    let w = at(health, from, Health::Unknown);
    let steady = !health
        .iter()
        .any(|&(t, h)| t > from && t <= until && h != w);
    if w == Health::Unknown || !steady || name(w) == acts[k].state {
        return;
    }
    match acts.get(k + 1) {
        Some(next) if next.state == name(w) && next.start <= until => {
            let follow = next.start.saturating_duration_since(end);
            *worst = Some(worst.map_or(follow, |x| x.max(follow)));
        }
        next => problems.push(format!(
            "g{g}: its {} ended at {:?} while it was {} since {:?}; the next action is {:?}, expected by {:?}",
            acts[k].state,
            end - start,
            name(w),
            from.saturating_duration_since(start),
            next.map(|a| (&a.state, a.start - start)),
            until - start
        )),
    }
}

/// After each change of a member's target, once the group's targets hold
/// still, the group's latest action announces its health within the bound.
fn answered_in_time(
    plan: &Plan,
    g: usize,
    start: Instant,
    acts: &[Action],
    (slack, stalls): (Duration, &Stalls),
    figures: &mut Figures,
    problems: &mut Vec<String>,
) {
    let group = &plan.groups[g];
    let longest_timeout = plan
        .checks
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or_default();
    let bound = group
        .members
        .iter()
        .map(|&c| {
            let c = &plan.checks[c];
            let n = c.rise.max(c.fall);
            (c.interval + c.timeout) * (n - 1)
                + c.interval
                + c.timeout.max(plan.interval.min(longest_timeout))
        })
        .max()
        .unwrap_or_default();
    let mut changes: Vec<Duration> = vec![Duration::ZERO];
    changes.extend(
        group
            .members
            .iter()
            .flat_map(|&c| plan.checks[c].flips.iter().copied()),
    );
    changes.sort();
    changes.dedup();
    for &change in &changes {
        let c_at = start + change;
        let want = if group.members.iter().all(|&m| plan.checks[m].target(change)) {
            "healthy"
        } else {
            "unhealthy"
        };
        // How long to wait: the bound, and then for each hook of the other
        // state running by then, its end.
        let mut by = stalls.allow(c_at, c_at + bound + slack);
        let mut held = None;
        while let Some(running) = acts
            .iter()
            .find(|a| a.start <= by && a.end.is_none_or(|e| e > by) && a.state != want)
        {
            held = running.end;
            let end = running.end.unwrap_or(by + Duration::from_secs(3600));
            by = stalls.allow(end, end + follow_slack());
        }
        let next_turn = changes.iter().find(|&&t| t > change).map(|&t| start + t);
        if next_turn.is_some_and(|t| t <= by) {
            continue; // the targets did not hold still long enough
        }
        figures.changes_answered += 1;
        let latest = acts.iter().rfind(|a| a.start <= by);
        match latest {
            Some(a) if a.state == want => {
                if a.start > c_at && held.is_none() {
                    let took = a.start - c_at;
                    let over = took.saturating_sub(bound);
                    figures.worst_over_bound = Some(figures.worst_over_bound.map_or(over, |w| w.max(over)));
                    figures.worst_ratio = figures.worst_ratio.max(took.as_secs_f64() / bound.as_secs_f64());
                }
            }
            other => problems.push(format!(
                "g{g}: turned {want} at {change:?}; by {:?} (bound {bound:?}{}) the latest action is {:?}",
                by - start,
                if held.is_some() { ", then the running hook" } else { "" },
                other.map(|a| (&a.state, a.start - start))
            )),
        }
    }
}

/// The schedule and what happened, for a failure message.
fn describe(
    plan: &Plan,
    start: Instant,
    runs: &[Run],
    lines: &[(Instant, String)],
    problems: &[String],
) -> String {
    let mut out = format!("schedule seed {}:\n", plan.seed);
    let _ = writeln!(
        out,
        "  started {:?} into the test",
        start.saturating_duration_since(*EPOCH.get_or_init(Instant::now))
    );
    for p in problems {
        let _ = writeln!(out, "  - {p}");
    }
    let _ = writeln!(
        out,
        "  interval {:?}, horizon {:?}",
        plan.interval, plan.horizon
    );
    for (i, c) in plan.checks.iter().enumerate() {
        let _ = writeln!(
            out,
            "  c{i}: interval {:?} timeout {:?} rise {} fall {} network {} up {} flips {:?} groups {:?}",
            c.interval, c.timeout, c.rise, c.fall, c.network, c.up_at_start, c.flips, c.groups
        );
        let mine: Vec<String> = ordered(runs, i)
            .iter()
            .map(|r| {
                format!(
                    "{:?}-{:?}{}",
                    (r.start - start).as_millis(),
                    (r.end - start).as_millis(),
                    if r.passed { "+" } else { "-" }
                )
            })
            .collect();
        let _ = writeln!(out, "      runs {}", mine.join(" "));
    }
    for (g, group) in plan.groups.iter().enumerate() {
        let _ = writeln!(
            out,
            "  g{g}: promotion {:?} demotion {:?}",
            group.promotion_takes, group.demotion_takes
        );
    }
    for (at, line) in lines {
        let _ = writeln!(out, "  {:>6}ms {line}", (*at - start).as_millis());
    }
    out
}

#[test]
fn random_schedules_with_slow_checks_and_slow_hooks_agree_with_the_model() {
    let schedules =
        env_number("HEARTBEAT_MODEL_SCHEDULES").map_or(DEFAULT_SCHEDULES, |n| n as usize);
    let first = env_number("HEARTBEAT_MODEL_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    println!("model: {schedules} schedules from seed {first} (HEARTBEAT_MODEL_SEED={first})");
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let began = *EPOCH.get_or_init(Instant::now);
    let stalls = Stalls::start();
    let workers: Vec<JoinHandle<()>> = (0..PARALLEL.min(schedules))
        .map(|_| {
            let (next, outcomes, stalls) = (
                Arc::clone(&next),
                Arc::clone(&outcomes),
                Arc::clone(&stalls),
            );
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= schedules {
                        return;
                    }
                    let seed = first.wrapping_add(i as u64);
                    let outcome = run_schedule(seed, &stalls);
                    outcomes.lock().unwrap().push((seed, outcome));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stalls.stop.store(true, Ordering::SeqCst);
    let stalled = stalls.during(began, Instant::now());
    let outcomes = outcomes.lock().unwrap();
    let mut total = Figures::default();
    let mut failures = Vec::new();
    let mut ratios = Vec::new();
    for (seed, outcome) in outcomes.iter() {
        match outcome {
            Ok(f) => {
                total.actions += f.actions;
                total.runs += f.runs;
                total.changes_answered += f.changes_answered;
                if let Some(w) = f.worst_over_bound {
                    total.worst_over_bound = Some(total.worst_over_bound.map_or(w, |t| t.max(w)));
                }
                ratios.push(f.worst_ratio);
                if let Some(w) = f.worst_follow {
                    total.worst_follow = Some(total.worst_follow.map_or(w, |t| t.max(w)));
                }
            }
            Err(e) => failures.push((*seed, e.clone())),
        }
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
    println!(
        "model: {} schedules in {:.1?}: {} check runs, {} actions, {} changes answered; \
         worst start beyond the bound {:?}, median schedule's worst start at {:.0}% of its bound; \
         worst start after the hook it waited for {:?}; threads waited {:?} for a core",
        outcomes.len(),
        began.elapsed(),
        total.runs,
        total.actions,
        total.changes_answered,
        total.worst_over_bound.unwrap_or_default(),
        median * 100.0,
        total.worst_follow.unwrap_or_default(),
        stalled
    );
    if let Some((seed, first_failure)) = failures.first() {
        let mut each = String::new();
        for (seed, e) in &failures {
            let problem = e.lines().nth(2).unwrap_or_default();
            let _ = writeln!(each, "  seed {seed}:{problem}");
        }
        panic!(
            "{} of {} schedules disagree with the model (first seed {first}); the first:\n{first_failure}\n\
             run it alone: HEARTBEAT_MODEL_SEED={seed} HEARTBEAT_MODEL_SCHEDULES=1 cargo test --test tests -- model:: --nocapture\n\
             every failing schedule:\n{each}",
            failures.len(),
            outcomes.len(),
        );
    }
    assert_eq!(outcomes.len(), schedules);
}

/// The model itself, step by step: what the random schedules are checked
/// against must be right first.
#[test]
fn the_model_follows_spec_rise_fall_and_group_folding() {
    let t = Instant::now();
    let r = |v: &[bool]| -> Vec<(Instant, bool)> {
        v.iter()
            .enumerate()
            .map(|(i, &p)| (t + ms(i as u64), p))
            .collect()
    };
    let health = |v: &[(Instant, Health)]| -> Vec<Health> { v.iter().map(|&(_, h)| h).collect() };
    use Health::{Healthy as H, Unhealthy as U, Unknown as N};
    // The first result decides; then three failures in a row, two successes.
    assert_eq!(
        health(&check_timeline(
            &r(&[true, false, false, true, false, false, false, true, true]),
            2,
            3
        )),
        [H, H, H, H, H, H, U, U, H]
    );
    assert_eq!(
        health(&check_timeline(&r(&[false, true, false, true]), 2, 1)),
        [U, U, U, U]
    );
    assert_eq!(fold_group(&[H, H]), H);
    assert_eq!(fold_group(&[H, N]), N);
    assert_eq!(fold_group(&[N, U]), U);
    let timeline = [(t + ms(5), H), (t + ms(9), U)];
    assert_eq!(at(&timeline, t, N), N);
    assert_eq!(at(&timeline, t + ms(5), N), H);
    assert_eq!(at(&timeline, t + ms(20), N), U);
    let plan = Plan::draw(7);
    assert_eq!(
        format!("{:?}", plan.checks),
        format!("{:?}", Plan::draw(7).checks),
        "a seed gives one schedule"
    );
}
