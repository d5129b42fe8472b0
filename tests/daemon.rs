//! The daemon as an operator runs it, through the real binary: detaching,
//! the pidfile, signals (stop, reload, log reopening), syslog, dropping
//! privileges, systemd readiness, `exit_on_failure`, and reaping orphans as
//! PID 1 of a container.
//!
//! Every test starts its own heartbeat in a scratch directory and waits for
//! what it expects with a deadline. Hooks and script checks append to files
//! there, so that the tests assert exactly which actions ran. A detached
//! daemon is adopted by the test process (see `support::adopt_orphans`),
//! which reaps it and reads its exit status. Tests that need root (privilege
//! drop, a private mount namespace for syslog, a PID namespace) skip
//! themselves with a note otherwise.

use crate::support::bin as support;
use crate::support::daemon::{p, script};
use crate::support::proc::{self, processes};

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::{Group, User};

use support::{Adopted, Scratch, alive, lines, read_number, wait_for};

/// Deadline for things that should happen well within it.
const LONG: Duration = Duration::from_secs(15);

/// How soon SIGTERM or SIGINT must stop an idle daemon ("within a
/// second", with room for a loaded machine).
const STOP_BOUND: Duration = Duration::from_secs(2);

/// `[promotions]` and `[demotions]` whose hooks append `promotion GROUP` or
/// `demotion GROUP` to `log`.
fn hooks(log: &Path, groups: &[&str]) -> String {
    let mut out = String::from("[promotions]\n");
    for g in groups {
        out += &format!("{g} = echo \"promotion $HEARTBEAT_ACTION\" >> {}\n", p(log));
    }
    out += "[demotions]\n";
    for g in groups {
        out += &format!("{g} = echo \"demotion $HEARTBEAT_ACTION\" >> {}\n", p(log));
    }
    out
}

/// A check command that passes and appends a line to `file` each round.
fn counting(file: &Path) -> String {
    format!("echo run >> {}", p(file))
}

/// Waits until `file` has at least `n` lines.
fn wait_lines(file: &Path, n: usize) {
    wait_for(&format!("{n} lines in {}", file.display()), LONG, || {
        lines(file).len() >= n
    });
}

/// Waits until `file` contains `needle`.
fn wait_text(file: &Path, needle: &str) {
    wait_for(&format!("{needle:?} in {}", file.display()), LONG, || {
        fs::read_to_string(file).is_ok_and(|t| t.contains(needle))
    });
}

fn text(file: &Path) -> String {
    fs::read_to_string(file).unwrap_or_default()
}

/// Whether `kill(pid, 0)` says the process exists.
fn exists(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

// 1. Detaching

#[test]
fn detach_returns_once_the_daemon_runs_from_root_with_its_pidfile_and_log() {
    support::adopt_orphans();
    let s = Scratch::new();
    let actions = s.path("actions.log");
    s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\npidfile = hb.pid\nlogfile = hb.log\n{}{}",
            hooks(&actions, &["g"]),
            script("c", "true", "g")
        ),
    );
    // Relative paths everywhere: the configuration, the pidfile, the log.
    let mut launcher = s.spawn(&["-d", "-c", "hb.conf"]);
    let launcher_pid = launcher.pid();
    let status = launcher.wait_exit(LONG).expect("the launcher returns");
    assert_eq!(status.code(), Some(0), "{}", launcher.log_text());
    assert_eq!(launcher.log_text(), "", "nothing on the launcher's stderr");

    // When the launcher has returned, the daemon runs and its PID is in the
    // pidfile, which is where the launch directory says.
    let pid = read_number(&s.path("hb.pid")).expect("a PID in hb.pid");
    let mut daemon = Adopted::new(pid);
    assert_ne!(pid, launcher_pid, "the pidfile names the launcher");
    assert!(alive(pid), "process {pid} from the pidfile is not running");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    for fd in 0..3 {
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            Path::new("/dev/null"),
            "fd {fd}"
        );
    }
    let stat = proc::stat(pid).expect("/proc/PID/stat");
    assert_ne!(stat.session, pid, "the daemon is a session leader");
    assert_eq!(stat.tty_nr, 0, "the daemon has a controlling terminal");

    wait_for("the promotion", LONG, || lines(&actions) == ["promotion g"]);
    let log = s.path("hb.log");
    wait_text(
        &log,
        &format!("started: 1 checks, 1 groups, interval 100ms, pid {pid}"),
    );

    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(LONG).expect("the daemon stops");
    assert_eq!(status.code(), Some(0));
    assert!(!s.path("hb.pid").exists(), "pidfile left behind");
    assert!(text(&log).contains("INFO     stopped"), "{}", text(&log));
}

/// Starts `heartbeat -d` with `listen` on an address already in use (and
/// `general`, more `[general]` lines), which fails after detaching; asserts
/// the launcher exits 71 and returns the address, the configuration file
/// and the launcher's stderr.
fn detach_onto_busy_address(s: &Scratch, general: &str) -> (std::net::SocketAddr, PathBuf, String) {
    support::adopt_orphans();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\nlisten = {addr}\n{general}{}{}",
            hooks(&s.path("actions.log"), &["g"]),
            script("c", "true", "g")
        ),
    );
    let mut launcher = s.spawn(&["-d", "-c", p(&conf)]);
    let status = launcher.wait_exit(LONG).expect("the launcher returns");
    let stderr = launcher.log_text();
    assert_eq!(status.code(), Some(71), "{stderr}");
    (addr, conf, stderr)
}

#[test]
fn a_start_up_failure_after_detaching_fails_the_launcher_with_the_reason() {
    let s = Scratch::new();
    let (addr, conf, stderr) = detach_onto_busy_address(&s, "pidfile = hb.pid\nlogfile = hb.log\n");
    assert!(
        stderr.starts_with(&format!("heartbeat: cannot listen on {addr}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("in use"), "{stderr}");
    wait_for("the failed daemon to go", LONG, || {
        support::processes_with_arg(p(&conf)).is_empty()
    });
    assert!(!s.path("hb.pid").exists(), "pidfile left behind");
    assert!(
        text(&s.path("hb.log")).contains(&format!("ERROR    cannot listen on {addr}")),
        "{}",
        text(&s.path("hb.log"))
    );
    assert!(!s.path("actions.log").exists(), "an action ran");
}

/// Regression: with `logfile = stderr`, a start-up failure after detaching
/// reached the terminal twice: logged by the daemon (whose stderr is still
/// the terminal's) and printed by the launcher.
#[test]
fn a_start_up_failure_after_detaching_is_said_once_when_logging_to_stderr() {
    let s = Scratch::new();
    let (addr, conf, stderr) = detach_onto_busy_address(&s, "");
    assert_eq!(
        stderr.matches(&format!("cannot listen on {addr}")).count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("\nheartbeat: cannot listen on {addr}: ")),
        "{stderr}"
    );
    wait_for("the failed daemon to go", LONG, || {
        support::processes_with_arg(p(&conf)).is_empty()
    });
}

// 2 and 3. The pidfile

#[test]
fn a_second_instance_is_refused_naming_the_running_pid() {
    let s = Scratch::new();
    let pidfile = s.path("hb.pid");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\npidfile = {}\n{}{}",
            p(&pidfile),
            hooks(&s.path("actions.log"), &["g"]),
            script("c", "true", "g")
        ),
    );
    let first = s.spawn(&["-c", p(&conf)]);
    wait_for("the first instance's pidfile", LONG, || {
        read_number(&pidfile) == Some(first.pid())
    });
    wait_lines(&s.path("actions.log"), 1);
    let before = fs::read(&pidfile).unwrap();
    let inode = fs::metadata(&pidfile).unwrap().ino();

    for args in [&["-c", p(&conf)][..], &["-d", "-c", p(&conf)][..]] {
        let out = s.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "heartbeat is already running as PID {} (pidfile {} is locked)",
                first.pid(),
                pidfile.display()
            )),
            "{args:?}: {stderr}"
        );
        assert_eq!(fs::read(&pidfile).unwrap(), before, "{args:?}");
        assert_eq!(fs::metadata(&pidfile).unwrap().ino(), inode, "{args:?}");
    }
    assert_eq!(lines(&s.path("actions.log")), ["promotion g"]);
    assert!(first.stop().success());
    assert!(!pidfile.exists());
}

#[test]
fn a_pidfile_left_by_kill_9_does_not_block_a_restart() {
    let s = Scratch::new();
    let (pidfile, actions) = (s.path("hb.pid"), s.path("actions.log"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\npidfile = {}\n{}{}",
            p(&pidfile),
            hooks(&actions, &["g"]),
            script("c", "true", "g")
        ),
    );
    let mut first = s.spawn(&["-c", p(&conf)]);
    let dead = first.pid();
    wait_lines(&actions, 1);
    first.signal(Signal::SIGKILL);
    first.wait_exit(LONG).expect("killed");
    assert_eq!(read_number(&pidfile), Some(dead), "the stale pidfile stays");

    let second = s.spawn(&["-c", p(&conf)]);
    wait_for("the new instance's pidfile", LONG, || {
        read_number(&pidfile) == Some(second.pid())
    });
    wait_lines(&actions, 2);
    assert_eq!(lines(&actions), ["promotion g", "promotion g"]);
    assert!(second.stop().success(), "{}", text(&s.path("stderr.log")));
    assert!(!pidfile.exists());
}

// 4. Stopping

fn stops_at_once_mid_interval(signal: Signal) {
    let s = Scratch::new();
    let (pidfile, actions) = (s.path("hb.pid"), s.path("actions.log"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 60\npidfile = {}\n{}{}",
            p(&pidfile),
            hooks(&actions, &["g"]),
            script("c", "true", "g")
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    hb.wait_log("promotion of group \"g\" succeeded", LONG);
    let sent = Instant::now();
    hb.signal(signal);
    let status = hb.wait_exit(LONG).expect("it stops");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    assert!(took < STOP_BOUND, "stopped after {took:?}");
    assert!(!pidfile.exists(), "pidfile left behind");
    assert!(
        hb.log_text().contains("INFO     stopped"),
        "{}",
        hb.log_text()
    );
    assert_eq!(lines(&actions), ["promotion g"]);
}

#[test]
fn sigterm_mid_interval_stops_at_once_and_removes_the_pidfile() {
    stops_at_once_mid_interval(Signal::SIGTERM);
}

#[test]
fn sigint_mid_interval_stops_at_once_and_removes_the_pidfile() {
    stops_at_once_mid_interval(Signal::SIGINT);
}

#[test]
fn on_sigterm_a_running_action_may_finish() {
    let s = Scratch::new();
    let (actions, hook) = (s.path("actions.log"), s.path("hook.pid"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 60\naction_timeout = 30\n\
             [promotions]\ng = echo $$ > {hook}; sleep 1; echo finished >> {log}\n\
             [demotions]\ng = true\n{}",
            script("c", "true", "g"),
            hook = p(&hook),
            log = p(&actions)
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    wait_for("the hook to start", LONG, || read_number(&hook).is_some());
    let hook_pid = read_number(&hook).unwrap();
    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    assert_eq!(lines(&actions), ["finished"]);
    assert!(!exists(hook_pid), "hook {hook_pid} still exists");
    assert!(
        hb.log_text()
            .contains("waiting for the running action of group \"g\" (at most 30s)"),
        "{}",
        hb.log_text()
    );
}

#[test]
fn on_sigterm_a_running_action_is_killed_at_its_deadline_and_leaves_no_process() {
    let s = Scratch::new();
    let (hook, grandchild) = (s.path("hook.pid"), s.path("grandchild.pid"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 60\naction_timeout = 1\n\
             [promotions]\ng = sleep 30 & echo $! > {grandchild}; echo $$ > {hook}; wait\n\
             [demotions]\ng = true\n{}",
            script("c", "true", "g"),
            hook = p(&hook),
            grandchild = p(&grandchild)
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    wait_for("the hook to start", LONG, || read_number(&hook).is_some());
    let hook_pid = read_number(&hook).unwrap();
    let grandchild_pid = read_number(&grandchild).expect("the hook's child");
    let sent = Instant::now();
    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    // The deadline (1 s from the hook's start), not the hook's 30 s, nor
    // the SIGKILL grace: the hook dies of SIGTERM.
    assert!(took < Duration::from_secs(4), "stopped after {took:?}");
    assert!(!exists(hook_pid), "hook {hook_pid} still exists");
    wait_for("the hook's child to be gone", LONG, || {
        !alive(grandchild_pid)
    });
    assert!(hb.log_text().contains("timed out"), "{}", hb.log_text());
}

// 5. Reloading

#[test]
fn sighup_applies_a_valid_file_keeps_the_old_one_when_broken_and_reruns_nothing() {
    let s = Scratch::new();
    let (actions, rounds) = (s.path("actions.log"), s.path("rounds"));
    let general = "[general]\ninterval = 100ms\n";
    let a = script("ca", &counting(&rounds), "a");
    let conf = s.write(
        "hb.conf",
        &format!("{general}{}{a}", hooks(&actions, &["a"])),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);

    // A new group with a new check: its promotion runs, a's does not again.
    s.write(
        "hb.conf",
        &format!(
            "{general}{}{a}{}",
            hooks(&actions, &["a", "b"]),
            script("cb", "true", "b")
        ),
    );
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    wait_lines(&actions, 2);
    let seen = lines(&rounds).len();
    wait_lines(&rounds, seen + 5);
    assert_eq!(lines(&actions), ["promotion a", "promotion b"]);
    assert!(
        hb.log_text()
            .contains("1 checks unchanged, 1 new or changed, 0 removed or changed"),
        "{}",
        hb.log_text()
    );

    // A broken file: an error naming file and line; the running
    // configuration goes on and nothing re-runs.
    s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = soon\n{}{a}",
            hooks(&actions, &["a", "b"])
        ),
    );
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reload refused", LONG);
    let log = hb.log_text();
    assert!(
        log.contains(&format!(
            "ERROR    reload refused, the running configuration is kept: {}: 1 error in the configuration",
            conf.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{}:2: [general] interval: \"soon\" is not a duration",
            conf.display()
        )),
        "{log}"
    );
    let seen = lines(&rounds).len();
    wait_lines(&rounds, seen + 5);
    assert_eq!(lines(&actions), ["promotion a", "promotion b"]);

    // A valid file again: applied.
    s.write(
        "hb.conf",
        &format!(
            "{general}{}{a}{}{}",
            hooks(&actions, &["a", "b", "c"]),
            script("cb", "true", "b"),
            script("cc", "false", "c")
        ),
    );
    hb.signal(Signal::SIGHUP);
    wait_lines(&actions, 3);
    let seen = lines(&rounds).len();
    wait_lines(&rounds, seen + 5);
    assert_eq!(
        lines(&actions),
        ["promotion a", "promotion b", "demotion c"]
    );
    let status = hb.wait_exit(Duration::ZERO);
    assert!(status.is_none(), "heartbeat exited: {status:?}");
}

#[test]
fn sighup_names_a_changed_setting_that_needs_a_restart() {
    let s = Scratch::new();
    let (pidfile, actions) = (s.path("hb.pid"), s.path("actions.log"));
    let body = format!("{}{}", hooks(&actions, &["g"]), script("c", "true", "g"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\npidfile = {}\n{body}",
            p(&pidfile)
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);
    let moved = s.path("elsewhere.pid");
    s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\npidfile = {}\n{body}",
            p(&moved)
        ),
    );
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    assert!(
        hb.log_text().contains(&format!(
            "WARNING  {}: pidfile changed; this takes effect only after a restart",
            conf.display()
        )),
        "{}",
        hb.log_text()
    );
    assert_eq!(read_number(&pidfile), Some(hb.pid()));
    assert!(!moved.exists());
    assert_eq!(lines(&actions), ["promotion g"]);
    assert!(hb.stop().success());
    assert!(!pidfile.exists());
}

/// Regression: a reload that changed the commands of a group whose action
/// was running gave the group a fresh start at once, so that its new
/// promotion ran alongside the old one.
#[test]
fn sighup_changing_a_group_with_a_running_action_waits_for_that_action() {
    let s = Scratch::new();
    let (actions, rounds) = (s.path("actions.log"), s.path("rounds"));
    let conf = |promotion: &str| {
        format!(
            "[general]\ninterval = 100ms\n[promotions]\ng = {promotion}\n[demotions]\ng = true\n{}",
            script("c", &counting(&rounds), "g")
        )
    };
    let log = p(&actions);
    let conf_path = s.write(
        "hb.conf",
        &conf(&format!(
            "echo start-1 >> {log}; sleep 2; echo end-1 >> {log}"
        )),
    );
    let hb = s.spawn(&["-c", p(&conf_path)]);
    wait_lines(&actions, 1);
    s.write(
        "hb.conf",
        &conf(&format!("echo start-2 >> {log}; echo end-2 >> {log}")),
    );
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    wait_lines(&actions, 4);
    let seen = lines(&rounds).len();
    wait_lines(&rounds, seen + 5);
    assert_eq!(lines(&actions), ["start-1", "end-1", "start-2", "end-2"]);
}

/// Regression: a reload that shortened `interval` took effect only after
/// the old interval had run out (here a minute).
#[test]
fn sighup_applies_a_new_interval_at_once() {
    let s = Scratch::new();
    let (actions, rounds) = (s.path("actions.log"), s.path("rounds"));
    let body = format!(
        "{}{}",
        hooks(&actions, &["g"]),
        script("c", &counting(&rounds), "g")
    );
    let conf = s.write("hb.conf", &format!("[general]\ninterval = 60\n{body}"));
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);
    s.write("hb.conf", &format!("[general]\ninterval = 100ms\n{body}"));
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    wait_lines(&rounds, 5);
    assert_eq!(lines(&actions), ["promotion g"]);
}

/// Configurations for the reload tests below: group `g` (check `c`) with
/// `promotion`, when given, and group `k` whose check counts rounds.
fn g_and_k(promotion: Option<&str>, rounds: &Path) -> String {
    let mut out = String::from("[general]\ninterval = 100ms\n[promotions]\nk = true\n");
    if let Some(promotion) = promotion {
        out += &format!("g = {promotion}\n");
    }
    out += "[demotions]\nk = true\n";
    if promotion.is_some() {
        out += &format!("g = true\n{}", script("c", "true", "g"));
    }
    out + &script("ck", &counting(rounds), "k")
}

/// Sends SIGHUP and waits until the log says the `n`th reload is done.
fn reload(hb: &support::Daemon, n: usize) {
    hb.signal(Signal::SIGHUP);
    wait_for(&format!("reload {n}"), LONG, || {
        hb.log_text().matches("reloaded").count() >= n
    });
}

/// Regression: a group removed by a reload while its action ran was
/// forgotten, and a stop did not wait for that action.
#[test]
fn a_stop_waits_for_the_action_of_a_group_removed_by_a_reload() {
    let s = Scratch::new();
    let (actions, hook, rounds) = (s.path("actions.log"), s.path("hook.pid"), s.path("rounds"));
    let log = p(&actions);
    let slow = format!(
        "echo $$ > {}; echo start-1 >> {log}; sleep 2; echo end-1 >> {log}",
        p(&hook)
    );
    let conf = s.write("hb.conf", &g_and_k(Some(&slow), &rounds));
    let mut hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);
    let hook_pid = read_number(&hook).expect("the hook's pid");
    s.write("hb.conf", &g_and_k(None, &rounds));
    reload(&hb, 1);
    assert_eq!(lines(&actions), ["start-1"]);

    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    assert_eq!(lines(&actions), ["start-1", "end-1"], "{}", hb.log_text());
    assert!(!exists(hook_pid), "hook {hook_pid} still exists");
}

/// Regression: a group removed by a reload while its action ran, and added
/// again by the next, ran a second action alongside the first.
#[test]
fn a_group_added_back_while_its_old_action_runs_waits_for_it() {
    let s = Scratch::new();
    let (actions, rounds) = (s.path("actions.log"), s.path("rounds"));
    let log = p(&actions);
    let slow = format!("echo start-1 >> {log}; sleep 2; echo end-1 >> {log}");
    let conf = s.write("hb.conf", &g_and_k(Some(&slow), &rounds));
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);
    s.write("hb.conf", &g_and_k(None, &rounds));
    reload(&hb, 1);
    let fast = format!("echo start-2 >> {log}; echo end-2 >> {log}");
    s.write("hb.conf", &g_and_k(Some(&fast), &rounds));
    reload(&hb, 2);
    // The new promotion starts only once the old one has ended.
    wait_lines(&actions, 4);
    let seen = lines(&rounds).len();
    wait_lines(&rounds, seen + 5);
    assert_eq!(lines(&actions), ["start-1", "end-1", "start-2", "end-2"]);
}

/// Regression: after detaching (current directory `/`), a reload resolved
/// relative paths in the file against `/`, so an unchanged file was
/// reported as a changed `pidfile` and `logfile` (and a relative `ca_file`
/// would have pointed elsewhere).
#[test]
fn sighup_in_a_detached_daemon_resolves_relative_paths_against_the_launch_directory() {
    support::adopt_orphans();
    let s = Scratch::new();
    let actions = s.path("actions.log");
    s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\npidfile = hb.pid\nlogfile = hb.log\n{}{}",
            hooks(&actions, &["g"]),
            script("c", "true", "g")
        ),
    );
    let mut launcher = s.spawn(&["-d", "-c", "hb.conf"]);
    let status = launcher.wait_exit(LONG).expect("the launcher returns");
    assert_eq!(status.code(), Some(0), "{}", launcher.log_text());
    let mut daemon = Adopted::new(read_number(&s.path("hb.pid")).expect("a PID"));
    let log = s.path("hb.log");
    wait_text(&log, "started");
    wait_lines(&actions, 1);

    daemon.signal(Signal::SIGHUP);
    wait_text(&log, "reloaded");
    let text = text(&log);
    assert!(
        text.contains("1 checks unchanged, 0 new or changed, 0 removed or changed"),
        "{text}"
    );
    assert!(!text.contains("after a restart"), "{text}");

    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).and_then(|s| s.code()), Some(0));
    assert!(!s.path("hb.pid").exists(), "pidfile left behind");
    assert_eq!(lines(&actions), ["promotion g"]);
}

/// Regression: a reload took `[general]` from the file alone, dropping
/// what the command line had set: `--exit-on-failure` was silently turned
/// off, and `--listen` was reported as a change that needs a restart.
#[test]
fn command_line_settings_survive_a_reload() {
    let s = Scratch::new();
    let (actions, flag) = (s.path("actions.log"), s.path("fail"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n{}{}",
            hooks(&actions, &["g"]),
            script("c", &format!("[ ! -e {} ]", p(&flag)), "g")
        ),
    );
    let listen = format!("127.0.0.1:{}", support::free_port());
    let mut hb = s.spawn(&["-c", p(&conf), "--exit-on-failure", "--listen", &listen]);
    wait_lines(&actions, 1);
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    assert!(
        !hb.log_text().contains("after a restart"),
        "{}",
        hb.log_text()
    );

    fs::write(&flag, "").unwrap();
    let status = hb.wait_exit(LONG).expect("exit_on_failure still set");
    assert_eq!(status.code(), Some(1), "{}", hb.log_text());
    assert!(
        hb.log_text()
            .contains("unhealthy, exiting (exit_on_failure): c: exit status 1"),
        "{}",
        hb.log_text()
    );
}

// 6. Reopening the log

#[test]
fn sigusr1_reopens_a_log_file_that_was_moved_away() {
    let s = Scratch::new();
    let (log, rotated) = (s.path("hb.log"), s.path("hb.log.1"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\nloglevel = debug\nlogfile = {}\n{}{}",
            p(&log),
            hooks(&s.path("actions.log"), &["g"]),
            script("c", "true", "g")
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_text(&log, "started");
    fs::rename(&log, &rotated).unwrap();
    hb.signal(Signal::SIGUSR1);
    wait_text(
        &log,
        &format!("INFO     reopened log file {}", log.display()),
    );
    let old = text(&rotated);
    // DEBUG logs every round: the new file grows, the old one does not.
    wait_for("more rounds in the new file", LONG, || {
        text(&log).matches("passed").count() >= 3
    });
    assert_eq!(text(&rotated), old);
    assert!(old.contains("started"), "{old}");
    assert!(!text(&log).contains("started"));
    // Said once (it was said twice, in two wordings).
    assert_eq!(text(&log).matches("reopen").count(), 1, "{}", text(&log));
    assert!(hb.stop().success());
    assert!(text(&log).contains("INFO     stopped"));
}

/// Regression: a failed reopen was logged twice.
#[test]
fn sigusr1_that_cannot_reopen_says_so_once_and_keeps_the_old_file() {
    let s = Scratch::new();
    let (log, rotated) = (s.path("hb.log"), s.path("hb.log.1"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\nloglevel = debug\nlogfile = {}\n{}{}",
            p(&log),
            hooks(&s.path("actions.log"), &["g"]),
            script("c", "true", "g")
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_text(&log, "started");
    fs::rename(&log, &rotated).unwrap();
    // Something that cannot be opened for writing where the file was.
    fs::create_dir(&log).unwrap();
    hb.signal(Signal::SIGUSR1);
    let error = format!(
        "ERROR    cannot reopen log file {}: Is a directory (os error 21); \
         still writing to the file opened before",
        log.display()
    );
    wait_text(&rotated, &error);
    let passed = text(&rotated).matches("passed").count();
    wait_for("more rounds in the old file", LONG, || {
        text(&rotated).matches("passed").count() >= passed + 3
    });
    let old = text(&rotated);
    assert_eq!(old.matches("reopen").count(), 1, "{old}");
    assert!(hb.stop().success());
}

// 7. Syslog

/// The shell that runs heartbeat in a private mount namespace whose /dev
/// is the directory `$1`: a `log` socket of the test's, and /dev/null,
/// zero, random and urandom bound from the real /dev. Then runs `$2…`.
const PRIVATE_DEV: &str = "d=$1; shift; \
    for n in null zero random urandom; do \
        : > \"$d/$n\" && mount --bind \"/dev/$n\" \"$d/$n\" || exit 1; \
    done; \
    mount --rbind \"$d\" /dev && exec \"$@\"";

#[test]
fn syslog_gets_each_line_with_its_severity() {
    let can_unshare = support::is_root()
        && Command::new("unshare")
            .args(["-m", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !can_unshare {
        eprintln!("skipped: cannot create a mount namespace (needs root and unshare)");
        return;
    }
    let s = Scratch::new();
    let dev = s.path("dev");
    fs::create_dir(&dev).unwrap();
    let syslog = UnixDatagram::bind(dev.join("log")).unwrap();
    syslog.set_read_timeout(Some(LONG)).unwrap();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\nlogfile = syslog\n\
             [promotions]\ng = true\n[demotions]\ng = echo disk full; exit 3\n{}",
            script("c", "false", "g")
        ),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", PRIVATE_DEV, "sh", p(&dev)])
        .args([support::binary(), "-c", p(&conf)])
        .current_dir(s.dir())
        .stdin(Stdio::null());
    let mut hb = s.spawn_command(cmd);
    let pid = hb.pid();

    let mut got: Vec<String> = Vec::new();
    let mut expect = |want_pri: u8, message: &str| {
        let start = Instant::now();
        loop {
            if let Some(line) = got.iter().find(|l| l.contains(message)) {
                let prefix = format!("<{want_pri}>");
                assert!(line.starts_with(&prefix), "{line}");
                assert!(line.contains(&format!(" heartbeat[{pid}]: ")), "{line}");
                return;
            }
            assert!(
                start.elapsed() < LONG,
                "no {message:?} from syslog; got {got:?}; stderr {}",
                text(&s.path("stderr.log"))
            );
            let mut buf = [0u8; 8192];
            if let Ok(n) = syslog.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    };
    // Facility daemon (3): 8 * 3 + severity (err 3, warning 4, info 6).
    expect(30, "heartbeat 0.1.0 started");
    expect(
        28,
        "check \"c\" (script [redacted]) is unhealthy: exit status 1",
    );
    expect(27, "demotion of group \"g\" failed");
    hb.signal(Signal::SIGTERM);
    expect(30, "stopped");
    let status = hb.wait_exit(LONG).expect("it stops");
    assert_eq!(status.code(), Some(0));
    assert_eq!(text(&s.path("stderr.log")), "", "nothing on stderr");
}

// 8. Privileges

#[test]
fn user_nobody_runs_checks_and_actions_without_root_groups() {
    if !support::is_root() {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let s = Scratch::new();
    s.open_to_everyone();
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    let nogroup = Group::from_name("nogroup").unwrap();
    let (gid, group_line) = match &nogroup {
        Some(g) => (g.gid, "group = nogroup\n".to_owned()),
        None => (nobody.gid, String::new()),
    };
    let (pidfile, log) = (s.path("hb.pid"), s.path("hb.log"));
    let (hook_id, check_id) = (s.path("hook.id"), s.path("check.id"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\nuser = nobody\n{group_line}interval = 100ms\npidfile = {}\nlogfile = {}\n\
             [promotions]\ng = (id -u; id -g; id -G) > {}\n[demotions]\ng = true\n{}",
            p(&pidfile),
            p(&log),
            p(&hook_id),
            script("c", &format!("id -u > {}", p(&check_id)), "g")
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&hook_id, 3);
    let id = lines(&hook_id);
    assert_eq!(id[0], nobody.uid.to_string(), "hook uid");
    assert_eq!(id[1], gid.to_string(), "hook gid");
    let mut groups: Vec<u32> = id[2]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let name = std::ffi::CString::new("nobody").unwrap();
    let mut want: Vec<u32> = nix::unistd::getgrouplist(&name, gid)
        .unwrap()
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    want.sort_unstable();
    want.dedup();
    assert_eq!(groups, want, "hook groups");
    assert!(!groups.contains(&0), "root's group kept: {groups:?}");
    assert_eq!(lines(&check_id), [nobody.uid.to_string()], "check uid");
    // Issue 9: the pidfile stays root's, so the user cannot write another
    // PID into it.
    assert_eq!(fs::metadata(&pidfile).unwrap().uid(), 0, "pidfile owner");

    // Rotated: the new log file is made by nobody.
    wait_text(&log, "started");
    fs::rename(&log, s.path("hb.log.1")).unwrap();
    hb.signal(Signal::SIGUSR1);
    wait_text(&log, "reopened log file");
    assert_eq!(fs::metadata(&log).unwrap().uid(), nobody.uid.as_raw());

    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    assert_eq!(status.code(), Some(0), "{}", text(&log));
    assert!(!pidfile.exists(), "pidfile left behind: {}", text(&log));
    assert!(!text(&log).contains("WARNING"), "{}", text(&log));
    // Said once (it was said twice, in two wordings).
    let rotated = text(&s.path("hb.log.1"));
    assert_eq!(rotated.matches("running as uid").count(), 1, "{rotated}");
    assert!(
        rotated.contains(&format!(
            "INFO     running as uid {uid}, gid {gid}, groups {want:?} (user = nobody{})",
            if nogroup.is_some() {
                " and group = nogroup"
            } else {
                ""
            },
            uid = nobody.uid,
        )),
        "{rotated}"
    );
}

#[test]
fn dropping_privileges_without_root_is_refused() {
    if !support::is_root() {
        eprintln!("skipped: becoming nobody needs root");
        return;
    }
    let s = Scratch::new();
    s.open_to_everyone();
    let exe = support::binary_for_everyone(&s);
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    for user in ["root", "daemon"] {
        if User::from_name(user).unwrap().is_none() {
            eprintln!("no user {user}: not tried");
            continue;
        }
        let conf = s.write(
            &format!("{user}.conf"),
            &format!(
                "[general]\nuser = {user}\n{}{}",
                hooks(&s.path("actions.log"), &["g"]),
                script("c", "true", "g")
            ),
        );
        let out = Command::new(&exe)
            .args(["-c", p(&conf)])
            .current_dir(s.dir())
            .stdin(Stdio::null())
            .uid(nobody.uid.as_raw())
            .gid(nobody.gid.as_raw())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{user}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "user = {user} in [general] needs heartbeat to start as root; it runs as uid {}",
                nobody.uid
            )),
            "{user}: {stderr}"
        );
    }
    assert!(!s.path("actions.log").exists(), "an action ran");
}

// 9. systemd

#[test]
fn systemd_hears_ready_after_the_first_round_reloading_and_stopping() {
    let s = Scratch::new();
    let rounds = s.path("rounds");
    let socket_path = s.path("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(LONG)).unwrap();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n{}{}",
            hooks(&s.path("actions.log"), &["g"]),
            script(
                "c",
                &format!(
                    "echo ${{NOTIFY_SOCKET:-unset}} > {}; sleep 0.3; {}",
                    p(&s.path("check-env")),
                    counting(&rounds)
                ),
                "g"
            )
        ),
    );
    let mut cmd = s.command(&["-c", p(&conf)]);
    cmd.env("NOTIFY_SOCKET", &socket_path);
    let mut hb = s.spawn_command(cmd);
    let next = || {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };

    assert_eq!(next(), "READY=1\n");
    assert!(!lines(&rounds).is_empty(), "READY=1 before the first round");
    // Checks and hooks cannot speak for heartbeat on its socket.
    assert_eq!(lines(&s.path("check-env")), ["unset"]);

    hb.signal(Signal::SIGHUP);
    let reloading = next();
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{reloading:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0, "{reloading:?}");
    assert_eq!(next(), "READY=1\n");

    hb.signal(Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1\n");
    let status = hb.wait_exit(LONG).expect("it stops");
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
}

// Inherited signal dispositions

/// A command whose process starts with SIGCHLD ignored, as when the parent
/// ignores it (the disposition survives `exec`).
fn with_sigchld_ignored(mut cmd: Command) -> Command {
    // SAFETY: only signal(2), which is async-signal-safe, between fork and
    // exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigIgn)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    cmd
}

/// Regression: started with SIGCHLD ignored, in the foreground or with
/// `--once`, the kernel reaped checks and hooks before heartbeat could read
/// their exit status: every check and action failed with "No child
/// processes".
#[test]
fn an_inherited_ignored_sigchld_does_not_lose_exit_statuses() {
    let s = Scratch::new();
    let actions = s.path("actions.log");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n{}{}",
            hooks(&actions, &["g"]),
            script("c", "exit 0", "g")
        ),
    );
    let out = with_sigchld_ignored(s.command(&["--once", "-c", p(&conf)]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(lines(&actions), ["promotion g"], "{stderr}");

    let hb = s.spawn_command(with_sigchld_ignored(s.command(&["-c", p(&conf)])));
    wait_lines(&actions, 2);
    hb.wait_log("promotion of group \"g\" succeeded", LONG);
    let log = hb.log_text();
    assert!(!log.contains("No child processes"), "{log}");
    assert!(hb.stop().success(), "{log}");
    assert_eq!(lines(&actions), ["promotion g", "promotion g"]);
}

/// Regression: started with SIGTERM, SIGINT, SIGHUP and SIGUSR1 blocked
/// (a signal mask survives `exec`), heartbeat could not be stopped,
/// reloaded or told to reopen its log: the signals stayed pending.
#[test]
fn an_inherited_signal_mask_does_not_make_heartbeat_deaf() {
    let s = Scratch::new();
    let actions = s.path("actions.log");
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 60\n{}{}",
            hooks(&actions, &["g"]),
            script("c", "true", "g")
        ),
    );
    let mut cmd = s.command(&["-c", p(&conf)]);
    // SAFETY: only sigprocmask(2), which is async-signal-safe, between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut blocked = nix::sys::signal::SigSet::empty();
            for sig in [
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGHUP,
                Signal::SIGUSR1,
            ] {
                blocked.add(sig);
            }
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&blocked),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
    let mut hb = s.spawn_command(cmd);
    hb.wait_log("promotion of group \"g\" succeeded", LONG);
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    let sent = Instant::now();
    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    assert!(
        sent.elapsed() < STOP_BOUND,
        "stopped after {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
}

// 10. exit_on_failure

#[test]
fn exit_on_failure_in_the_file_exits_1_with_the_reason() {
    let s = Scratch::new();
    let (pidfile, actions, count) = (s.path("hb.pid"), s.path("actions.log"), s.path("count"));
    // Passes twice, then fails.
    let command = format!(
        "n=$(($(cat {c} 2>/dev/null || echo 0)+1)); echo $n > {c}; [ $n -le 2 ]",
        c = p(&count)
    );
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\nexit_on_failure = yes\npidfile = {}\n{}{}",
            p(&pidfile),
            hooks(&actions, &["g"]),
            script("c", &command, "g")
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    let status = hb.wait_exit(LONG).expect("it exits");
    let stderr = hb.log_text();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("heartbeat: unhealthy, exiting (exit_on_failure): c: exit status 1"),
        "{stderr}"
    );
    assert_eq!(read_number(&count), Some(3), "rounds run");
    // The demotion that the failure started is let finish before exiting.
    assert_eq!(lines(&actions), ["promotion g", "demotion g"]);
    assert!(!pidfile.exists(), "pidfile left behind");
}

// 11. PID 1 of a PID namespace (a container)

/// Whether `unshare` can create a PID namespace here: it needs root, and a
/// kernel and sandbox that allow it.
fn can_unshare_pid() -> bool {
    support::is_root()
        && Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
}

/// heartbeat as PID 1 of a new PID namespace, started by `unshare --pid
/// --fork --mount-proc --kill-child`, as a container runtime would. On
/// drop it gets SIGTERM; `unshare` ignores SIGTERM, and when it is killed
/// `--kill-child` kills heartbeat, and with it the whole namespace.
struct Init {
    unshare: support::Daemon,
    /// heartbeat's pid as the test sees it (1 in its namespace).
    pid: i32,
}

impl Init {
    /// Starts heartbeat with `-c conf` and waits until it has started.
    fn start(s: &Scratch, conf: &Path) -> Init {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .args([support::binary(), "-c", p(conf)])
            .current_dir(s.dir())
            .stdin(Stdio::null());
        let unshare = s.spawn_command(cmd);
        unshare.wait_log("started", LONG);
        let parent = unshare.pid();
        let pid = processes()
            .iter()
            .find(|proc| proc.ppid == parent)
            .map(|proc| proc.pid)
            .expect("heartbeat, the child of unshare");
        let init = Init { unshare, pid };
        // NSpid: its pid in each PID namespace it belongs to, the
        // innermost last (proc(5)).
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(
            status.contains(&format!("NSpid:\t{pid}\t1\n")),
            "heartbeat is not PID 1 of a namespace of its own: {status}"
        );
        init
    }

    fn log(&self) -> String {
        self.unshare.log_text()
    }

    /// Zombie children of heartbeat that are not its shells: orphans not
    /// reaped yet. (A shell that heartbeat supervises is a zombie for the
    /// moment between its exit and its supervisor's wait.)
    fn zombie_orphans(&self) -> Vec<String> {
        processes()
            .into_iter()
            .filter(|proc| proc.ppid == self.pid && proc.state == 'Z' && proc.comm != "sh")
            .map(|proc| format!("{} ({})", proc.pid, proc.comm))
            .collect()
    }

    /// Runs until the log has `rounds` results of check `check` (one per
    /// round); returns the most zombie orphans seen at once from round
    /// `from` on, and when.
    fn most_zombies(&self, check: &str, from: usize, rounds: usize) -> (usize, Vec<String>) {
        let mut most = (0, Vec::new());
        wait_for(&format!("{rounds} rounds of {check}"), 4 * LONG, || {
            let seen = check_lines(&self.log(), check).len();
            if seen >= from {
                let zombies = self.zombie_orphans();
                if zombies.len() > most.0 {
                    most = (zombies.len(), zombies);
                }
            }
            seen >= rounds
        });
        most
    }

    /// Stops heartbeat with SIGTERM; returns the exit status it passed to
    /// `unshare`.
    fn stop(&mut self) -> std::process::ExitStatus {
        self.signal_heartbeat();
        self.unshare
            .wait_exit(LONG)
            .expect("heartbeat, PID 1, did not stop on SIGTERM")
    }

    /// SIGTERM to heartbeat, if it is still unshare's child (its pid may
    /// be another process's once it has been reaped).
    fn signal_heartbeat(&self) {
        let ours = processes()
            .iter()
            .any(|proc| proc.pid == self.pid && proc.ppid == self.unshare.pid());
        if ours {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), Signal::SIGTERM);
        }
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        self.signal_heartbeat();
        // Then `support::Daemon` kills unshare if it is still there.
        let _ = self.unshare.wait_exit(Duration::from_secs(5));
    }
}

/// Lines of `log` that give a result of check `name`, one per run: `check
/// "NAME" (TYPE TARGET) …: REASON`. Not the note that a result came after
/// its round had ended (`check "NAME" reported after its round ended`),
/// which a loaded machine adds to a run whose check outlives the interval.
fn check_lines<'a>(log: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!("check {name:?} (");
    log.lines().filter(|l| l.contains(&needle)).collect()
}

/// As PID 1, heartbeat inherits every orphan of its namespace: here the
/// background `sleep` of a script check, one per round. Unreaped, they
/// would pile up, one zombie per round, until the container's PID limit.
/// The reaper must also leave alone what it does not own: a failing check
/// still reports `exit status 3`, a failing action `exit status 4`, and
/// each group's action runs once.
#[test]
fn as_pid_1_orphans_of_checks_and_hooks_are_reaped_and_no_exit_status_is_taken() {
    if !can_unshare_pid() {
        eprintln!("skipped: cannot create a PID namespace (needs root and unshare)");
        return;
    }
    let s = Scratch::new();
    let actions = s.path("actions.log");
    let log_line = |line: &str| format!("echo {line} >> {}", p(&actions));
    // The promotion of `up` leaves an orphan too. The groups `retried…`
    // fail their demotion every time, so that at every round of their
    // retries (rounds 0, 1, 3, 7 and 15: the backoff doubles) several
    // actions end together and each end has the reaper pass while the
    // other shells exit.
    let retried: Vec<String> = (1..=6).map(|i| format!("retried{i}")).collect();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 250ms\nloglevel = DEBUG\n\
             [promotions]\nup = {} ; sleep 0.2 >/dev/null 2>&1 &\ndown = {}\n{}\
             [demotions]\nup = {}\ndown = {}\n{}{}{}",
            log_line("promotion up"),
            log_line("promotion down"),
            retried
                .iter()
                .map(|g| format!("{g} = true\n"))
                .collect::<String>(),
            log_line("demotion up"),
            log_line("demotion down"),
            retried
                .iter()
                .map(|g| format!("{g} = exit 4\n"))
                .collect::<String>(),
            script("orphan", "sleep 0.2 & exit 0", "up"),
            script(
                "failing",
                "exit 3",
                &format!("down, {}", retried.join(", "))
            ),
        ),
    );
    let mut hb = Init::start(&s, &conf);

    // Each orphan lives 0.2 s, less than an interval, and is reaped by the
    // end of the round or action that follows its exit: one or two at once
    // on an idle machine, a few more when a loaded one delays rounds.
    // Without reaping they pile up, one per round (17 or more here).
    // Counted from the third round on, when the promotion's orphan is gone.
    let (most, when) = hb.most_zombies("orphan", 3, 20);
    assert!(
        most <= 5,
        "{most} zombie orphans at once: {when:?}\n{}",
        hb.log()
    );
    // The other check of the round may report a moment later.
    wait_for("20 results of failing", LONG, || {
        check_lines(&hb.log(), "failing").len() >= 20
    });
    let status = hb.stop();
    assert_eq!(status.code(), Some(0), "{}", hb.log());

    let log = hb.log();
    assert!(!log.contains("No child processes"), "{log}");
    assert!(!log.contains("lost track"), "{log}");
    // The check's orphan is killed as soon as the check has its result
    // (issue 9: a script check leaves nothing behind); the promotion's
    // exits by itself.
    let reaped = log
        .lines()
        .filter(|l| {
            l.contains("DEBUG    reaped orphaned process ")
                && (l.ends_with(": exit status 0") || l.ends_with(": killed by signal 9"))
        })
        .count();
    assert!(reaped >= 19, "{reaped} orphans reaped:\n{log}");
    let orphan = check_lines(&log, "orphan");
    assert!(orphan.len() >= 20, "{log}");
    assert!(
        orphan.iter().all(|l| l.ends_with(": exit status 0")),
        "{orphan:#?}"
    );
    let failing = check_lines(&log, "failing");
    assert!(failing.len() >= 20, "{log}");
    assert!(
        failing.iter().all(|l| l.ends_with(": exit status 3")),
        "{failing:#?}"
    );
    let retries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("demotion of group \"retried"))
        .filter(|l| l.contains(" failed after "))
        .collect();
    assert!(retries.len() >= 6 * 4, "{log}");
    assert!(
        retries
            .iter()
            .all(|l| l.ends_with(": exit status 4 (no output)")),
        "{retries:#?}"
    );
    let mut ran = lines(&actions);
    ran.sort();
    assert_eq!(ran, ["demotion down", "promotion up"], "{log}");
}

/// A script check that outruns its timeout has its process group killed:
/// its background grandchild dies with it and is orphaned (the foreground
/// one too when its shell dies first: one or two orphans a round). As PID 1,
/// heartbeat reaps them, and the check still reports its timeout.
/// Regression (of the test): it expected 1.5 orphans a run and failed on
/// an idle machine where most runs left one.
#[test]
fn as_pid_1_the_killed_grandchildren_of_a_timed_out_check_are_reaped() {
    if !can_unshare_pid() {
        eprintln!("skipped: cannot create a PID namespace (needs root and unshare)");
        return;
    }
    let s = Scratch::new();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 250ms\nloglevel = DEBUG\n{}{}timeout = 200ms\n",
            hooks(&s.path("actions.log"), &["g"]),
            script("hung", "sleep 30 & sleep 30", "g"),
        ),
    );
    let mut hb = Init::start(&s, &conf);

    // Both sleeps die of the group's SIGTERM before the check returns, so
    // the end of the round reaps them; one may close the pipe a moment
    // before it is a zombie and wait for the next round's end.
    // Two orphans a round: a few at once, more only when a loaded machine
    // delays rounds; without reaping, 36 or more.
    let (most, when) = hb.most_zombies("hung", 2, 20);
    assert!(
        most <= 8,
        "{most} zombie orphans at once: {when:?}\n{}",
        hb.log()
    );
    let status = hb.stop();
    assert_eq!(status.code(), Some(0), "{}", hb.log());

    let log = hb.log();
    let hung = check_lines(&log, "hung");
    assert!(hung.len() >= 20, "{log}");
    assert!(
        hung.iter().all(|l| l.ends_with(": timed out after 200ms")),
        "{hung:#?}"
    );
    // Every timed-out run leaves at least its background `sleep` to PID 1;
    // whether the foreground one is an orphan too depends on whether it or
    // its shell died first, so only one a run is certain. The last run's
    // orphans may still be alive when the stop comes.
    let reaped = log
        .lines()
        .filter(|l| {
            l.contains("DEBUG    reaped orphaned process ") && l.ends_with(": killed by signal 15")
        })
        .count();
    assert!(
        reaped + 2 >= hung.len(),
        "{reaped} orphans reaped for {} timed-out runs:\n{log}",
        hung.len()
    );
    assert_eq!(lines(&s.path("actions.log")), ["demotion g"], "{log}");
}

/// Regression: a stop killed the script checks running at that moment, but
/// the round in flight went on and started the checks after them, which
/// outlived heartbeat (here: two `sleep 30`s left to init).
#[test]
fn a_stop_mid_round_starts_no_further_check_and_leaves_none_behind() {
    let s = Scratch::new();
    let pids = s.path("pids");
    // Each check passes once (round 1), then sleeps in every later round.
    let sleeper = |name: &str| {
        let mark = s.path(&format!("{name}.mark"));
        script(
            name,
            &format!(
                "[ -e {m} ] || {{ touch {m}; exit 0; }}; echo $$ >> {pids}; exec sleep 30",
                m = p(&mark),
                pids = p(&pids)
            ),
            "g",
        )
    };
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 200ms\nthreads = 1\n\
             [promotions]\ng = sleep 2\n[demotions]\ng = true\n\
             [DEFAULT]\ntimeout = 60\n{}{}{}",
            sleeper("s1"),
            sleeper("s2"),
            sleeper("s3")
        ),
    );
    let mut hb = s.spawn(&["-c", p(&conf)]);
    // Round 2 is blocked in its first check; the 2 s promotion of round 1
    // still runs, so heartbeat outlives the stop by up to 2 s.
    wait_lines(&pids, 1);
    hb.signal(Signal::SIGTERM);
    let status = hb.wait_exit(LONG).expect("it stops");
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    assert_eq!(lines(&pids).len(), 1, "checks started after the stop");
    for pid in lines(&pids) {
        let pid: i32 = pid.parse().unwrap();
        wait_for(&format!("check process {pid} to be gone"), LONG, || {
            !alive(pid)
        });
    }
}

// 12. An internal failure: exit status 70

/// A real daemon whose action thread dies logs why, lets the other running
/// action finish, kills its checks and exits with status 70
/// (`EX_SOFTWARE`) instead of waiting for ever for the lost report. No
/// input makes an action thread die, so a debug build's fault injection
/// makes it (`heartbeat::app::fault`, absent from release builds).
#[cfg(debug_assertions)]
#[test]
fn a_daemon_whose_action_thread_dies_logs_it_and_exits_70() {
    use heartbeat::app::fault::ACTION_THREAD_PANICS;
    let s = Scratch::new();
    let (actions, pids) = (s.path("actions.log"), s.path("pids"));
    // h's promotion lasts a second; the slow check of s never ends by
    // itself. g's action thread dies once the slow check runs.
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 100ms\n\
             [promotions]\n\
             g = until [ -s {pids} ]; do sleep 0.01; done; echo promotion g >> {a}\n\
             h = echo promotion h >> {a}; sleep 1; echo ended h >> {a}\n\
             s = echo promotion s >> {a}\n\
             [demotions]\ng = echo demotion g >> {a}\nh = echo demotion h >> {a}\n\
             s = echo demotion s >> {a}\n\
             {}{}{}timeout = 90\n",
            script("up", "true", "g"),
            script("up_h", "true", "h"),
            script(
                "slow",
                &format!(
                    "sleep 61 & echo $! >> {pids}; echo $$ >> {pids}; sleep 60",
                    pids = p(&pids)
                ),
                "s"
            ),
            a = p(&actions),
            pids = p(&pids),
        ),
    );
    let mut cmd = s.command(&["-c", p(&conf)]);
    cmd.env(ACTION_THREAD_PANICS, "g");
    let mut hb = s.spawn_command(cmd);
    let status = hb
        .wait_exit(LONG)
        .expect("heartbeat hung after its action thread died");
    let log = hb.log_text();
    assert_eq!(status.code(), Some(70), "{log}");
    for said in [
        "panic in thread action-g at ",
        "ERROR    the action thread of group \"g\" ended without reporting; stopping",
        "heartbeat: internal error: the action thread of group \"g\" ended without reporting\n",
    ] {
        assert!(log.contains(said), "{said:?} not in the log:\n{log}");
    }
    // g's hook ran once and was not retried; h's action had its end.
    let mut ran = lines(&actions);
    ran.sort();
    assert_eq!(ran, ["ended h", "promotion g", "promotion h"], "{log}");
    // Nothing it started outlives it.
    for pid in lines(&pids).iter().map(|l| l.parse::<i32>().unwrap()) {
        wait_for(&format!("check process {pid} to be gone"), LONG, || {
            !alive(pid)
        });
    }
}
