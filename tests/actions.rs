//! Child processes, script checks and actions, against the real `/bin/sh`.
//!
//! Hooks write to files in a fresh temporary directory so that the tests can
//! assert what ran, in which order, and with which environment. Every test
//! that leaves a process behind on purpose kills it through a
//! [`proc::Reaper`]; the others assert that the process group is gone.
//! Time bounds are generous: they separate "at once" from "waited for the
//! deadline", never measure exact durations.

use crate::support::proc;

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use heartbeat::checks::Check;
use heartbeat::checks::script::{self, ScriptCheck};
use heartbeat::exec::actions::{self, ActionRequest};
use heartbeat::exec::process::{self, ChildExit, Leftovers, ShellCommand};
use heartbeat::model::Health;
use heartbeat::model::{ActionKind, ActionReason};

use crate::support::poll::wait_until;
use proc::{Reaper, alive, assert_group_gone, read_pid};

/// Script checks share one process-wide registry, and `abort_all` kills
/// every check in it: the test of `abort_all` takes this lock for writing,
/// every other test that runs a script check takes it for reading.
static SCRIPT_CHECKS: RwLock<()> = RwLock::new(());

const SECOND: Duration = Duration::from_secs(1);

/// `path` quoted for the shell (temporary paths hold no `'`).
fn q(path: &Path) -> String {
    let path = path.display().to_string();
    assert!(!path.contains('\''), "unexpected quote in {path}");
    format!("'{path}'")
}

fn request(group: &str, kind: ActionKind, previous: Health, command: String) -> ActionRequest {
    ActionRequest {
        group: group.to_owned(),
        kind,
        command,
        previous,
        failed_checks: Vec::new(),
        attempt: 1,
        reason: ActionReason::Health,
        timeout: Duration::from_secs(30),
        kill_grace: actions::KILL_GRACE,
        leadership: None,
        dry_run: false,
        redact: true,
    }
}

fn shell(command: &str, timeout: Duration, kill_grace: Duration) -> ShellCommand<'_> {
    ShellCommand {
        command,
        env: Vec::new(),
        timeout,
        kill_grace,
        output_cap: 8 * 1024,
        leftovers: Leftovers::Keep,
    }
}

#[test]
fn promotions_and_demotions_run_once_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let hook = format!(
        r#"echo "$HEARTBEAT_STATE $HEARTBEAT_ACTION" >> {}"#,
        q(&log)
    );
    let steps = [
        (ActionKind::Promotion, Health::Unknown),
        (ActionKind::Demotion, Health::Healthy),
        (ActionKind::Promotion, Health::Unhealthy),
    ];
    for (kind, previous) in steps {
        let report = actions::run(&request("web", kind, previous, hook.clone()));
        assert_eq!(report.exit, ChildExit::Code(0));
        assert_eq!((report.group.as_str(), report.kind), ("web", kind));
    }
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "healthy web\nunhealthy web\nhealthy web\n"
    );
}

#[test]
fn hook_sees_the_heartbeat_variables_and_nothing_is_pasted_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let pwned = dir.path().join("pwned");
    // A group name that would run a command if it were pasted into the text.
    let group = format!("web $(touch {}); touch {}", q(&pwned), q(&pwned));
    let hook = format!(
        r#"test -n "$PATH" && printf '%s|%s|%s|%s\n' "$HEARTBEAT_ACTION" "$HEARTBEAT_STATE" "$HEARTBEAT_PREVIOUS_STATE" "$HEARTBEAT_FAILED_CHECKS" > {}"#,
        q(&seen)
    );
    let mut demotion = request(&group, ActionKind::Demotion, Health::Healthy, hook);
    demotion.failed_checks = vec!["nginx".into(), "disk space".into()];
    assert_eq!(actions::run(&demotion).exit, ChildExit::Code(0));
    assert_eq!(
        fs::read_to_string(&seen).unwrap(),
        format!("{group}|unhealthy|healthy|nginx,disk space\n")
    );
    assert!(!pwned.exists(), "the group name was run as a command");
}

#[test]
fn exit_statuses_signals_and_spawn_failures() {
    let table = [
        ("exit 0", ChildExit::Code(0)),
        ("true", ChildExit::Code(0)),
        ("exit 3", ChildExit::Code(3)),
        ("exit 255", ChildExit::Code(255)),
        ("kill -TERM $$", ChildExit::Signal(15)),
        ("kill -KILL $$", ChildExit::Signal(9)),
    ];
    for (command, expected) in table {
        let finished = process::run(&shell(command, 30 * SECOND, SECOND));
        assert_eq!(finished.exit, expected, "command: {command}");
        assert!(finished.duration < 10 * SECOND, "command: {command}");
    }

    let finished = process::run(&shell("exit 0\0", 30 * SECOND, SECOND));
    assert!(
        matches!(finished.exit, ChildExit::SpawnFailed(_)),
        "{:?}",
        finished.exit
    );

    let report = actions::run(&request(
        "web",
        ActionKind::Promotion,
        Health::Unknown,
        "exit 7".into(),
    ));
    assert_eq!(report.exit, ChildExit::Code(7));
    let report = actions::run(&request(
        "web",
        ActionKind::Promotion,
        Health::Unknown,
        "x\0".into(),
    ));
    assert!(
        matches!(report.exit, ChildExit::SpawnFailed(_)),
        "{:?}",
        report.exit
    );
}

#[test]
fn stdin_is_dev_null_and_stdout_and_stderr_share_one_pipe() {
    // `cat` would wait forever on an inherited terminal or pipe.
    let finished = process::run(&shell(
        "cat; echo out; echo err >&2; echo out2",
        30 * SECOND,
        SECOND,
    ));
    assert_eq!(finished.exit, ChildExit::Code(0));
    assert_eq!(finished.output, "out\nerr\nout2\n");
    assert!(finished.duration < 10 * SECOND);
}

#[test]
fn output_keeps_only_the_tail() {
    // About 250 KiB: more than a pipe holds, so the child blocks until read.
    let mut cmd = shell("yes line | head -n 50000; echo last", 30 * SECOND, SECOND);
    cmd.output_cap = 100;
    let finished = process::run(&cmd);
    assert_eq!(finished.exit, ChildExit::Code(0));
    assert_eq!(finished.output.len(), 100, "{:?}", finished.output);
    assert!(finished.output.ends_with("line\nline\nlast\n"));

    cmd.output_cap = 0;
    let finished = process::run(&cmd);
    assert_eq!(finished.exit, ChildExit::Code(0));
    assert_eq!(finished.output, "");
}

#[test]
fn hanging_hook_is_killed_at_its_deadline_with_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let (pgid_file, grandchild_file) = (dir.path().join("pgid"), dir.path().join("grandchild"));
    let hook = format!(
        "echo $$ > {}; (sleep 60; echo never) & echo $! > {}; sleep 60",
        q(&pgid_file),
        q(&grandchild_file)
    );
    let mut demotion = request("web", ActionKind::Demotion, Health::Healthy, hook);
    demotion.timeout = 2 * SECOND;

    let report = actions::run(&demotion);
    let mut reaper = Reaper::default();
    let pgid = read_pid(&pgid_file);
    reaper.group(pgid);
    let grandchild = read_pid(&grandchild_file);

    assert_eq!(report.exit, ChildExit::TimedOut(2 * SECOND));
    assert!(report.duration >= 2 * SECOND, "{:?}", report.duration);
    // SIGTERM is enough here: no need to wait for the 5 s kill grace.
    assert!(report.duration < 6 * SECOND, "{:?}", report.duration);
    assert_group_gone(pgid);
    assert!(!alive(grandchild), "grandchild {grandchild} survived");
}

#[test]
fn process_group_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pgid_file = dir.path().join("pgid");
    let command = format!(
        "trap '' TERM; echo $$ > {}; sleep 60 & sleep 60",
        q(&pgid_file)
    );
    let finished = process::run(&shell(&command, SECOND, SECOND));
    let mut reaper = Reaper::default();
    let pgid = read_pid(&pgid_file);
    reaper.group(pgid);

    assert_eq!(finished.exit, ChildExit::TimedOut(SECOND));
    assert!(finished.duration >= 2 * SECOND, "{:?}", finished.duration);
    assert!(finished.duration < 10 * SECOND, "{:?}", finished.duration);
    assert_group_gone(pgid);
}

#[test]
fn background_child_holding_the_pipe_does_not_delay_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let bg_file = dir.path().join("bg");
    let hook = format!("sleep 60 & echo $! > {}; echo done", q(&bg_file));

    let started = Instant::now();
    let report = actions::run(&request(
        "web",
        ActionKind::Promotion,
        Health::Unknown,
        hook,
    ));
    let elapsed = started.elapsed();
    let mut reaper = Reaper::default();
    let bg = read_pid(&bg_file);
    reaper.pid(bg);

    assert_eq!(report.exit, ChildExit::Code(0));
    assert!(
        elapsed < 5 * SECOND,
        "waited {elapsed:?} for the background child"
    );
    // It is left running: a hook may start a daemon.
    assert!(alive(bg));

    let command = format!("sleep 60 & echo $! > {}; echo done", q(&bg_file));
    let finished = process::run(&shell(&command, 30 * SECOND, SECOND));
    reaper.pid(read_pid(&bg_file));
    assert_eq!(finished.exit, ChildExit::Code(0));
    assert_eq!(finished.output, "done\n");
    assert!(finished.duration < 5 * SECOND, "{:?}", finished.duration);
}

#[test]
fn dry_run_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let mut promotion = request(
        "web",
        ActionKind::Promotion,
        Health::Unknown,
        format!("touch {}", q(&marker)),
    );
    promotion.dry_run = true;
    let report = actions::run(&promotion);
    assert_eq!(report.exit, ChildExit::Code(0));
    assert_eq!(report.duration, Duration::ZERO);
    assert!(!marker.exists());
}

#[test]
fn spawn_runs_the_action_on_a_named_thread_and_reports_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let hook = format!(r#"echo "$HEARTBEAT_STATE" >> {}"#, q(&log));
    let (tx, rx) = mpsc::channel();
    actions::spawn(
        request("web", ActionKind::Demotion, Health::Healthy, hook),
        move |report| {
            let name = thread::current().name().map(str::to_owned);
            let _ = tx.send((name, report));
        },
    )
    .unwrap();
    let (name, report) = rx.recv_timeout(20 * SECOND).unwrap();
    assert_eq!(name.as_deref(), Some("action-web"));
    assert_eq!(
        (report.kind, report.exit),
        (ActionKind::Demotion, ChildExit::Code(0))
    );
    assert_eq!(fs::read_to_string(&log).unwrap(), "unhealthy\n");
}

#[test]
fn script_check_reasons() {
    let _shared = SCRIPT_CHECKS.read().unwrap_or_else(PoisonError::into_inner);
    let long = format!("exit status 1: {}…", "0".repeat(200));
    let table = [
        ("exit 0", true, "exit status 0"),
        ("echo ok", true, "exit status 0"),
        (
            "echo first; echo '  disk full  '; echo; exit 3",
            false,
            "exit status 3: disk full",
        ),
        ("echo oops >&2; exit 2", false, "exit status 2: oops"),
        ("exit 4", false, "exit status 4"),
        ("kill -KILL $$", false, "killed by signal 9"),
        ("printf '%0300d\\n' 0; exit 1", false, long.as_str()),
    ];
    for (command, healthy, reason) in table {
        let result = ScriptCheck::new(command.to_owned(), 30 * SECOND).run();
        assert_eq!(
            (result.healthy, result.reason.as_str()),
            (healthy, reason),
            "command: {command}"
        );
    }

    let result = ScriptCheck::new("exit 0\0".to_owned(), 30 * SECOND).run();
    assert!(!result.healthy);
    assert!(
        result.reason.starts_with("cannot start: "),
        "{}",
        result.reason
    );
}

#[test]
fn script_check_timeout_has_a_short_kill_grace() {
    let _shared = SCRIPT_CHECKS.read().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let pgid_file = dir.path().join("pgid");
    let mut reaper = Reaper::default();

    let check = ScriptCheck::new(format!("echo $$ > {}; sleep 60", q(&pgid_file)), SECOND);
    let result = check.run();
    let pgid = read_pid(&pgid_file);
    reaper.group(pgid);
    assert!(!result.healthy);
    assert_eq!(result.reason, "timed out after 1s");
    assert!(result.latency < 5 * SECOND, "{:?}", result.latency);
    assert_group_gone(pgid);

    // Ignoring SIGTERM buys one second, not the five an action gets.
    fs::remove_file(&pgid_file).unwrap();
    let check = ScriptCheck::new(
        format!("trap '' TERM; echo $$ > {}; sleep 60", q(&pgid_file)),
        SECOND,
    );
    let result = check.run();
    let pgid = read_pid(&pgid_file);
    reaper.group(pgid);
    assert_eq!(result.reason, "timed out after 1s");
    assert!(result.latency >= 2 * SECOND, "{:?}", result.latency);
    assert!(result.latency < 6 * SECOND, "{:?}", result.latency);
    assert_group_gone(pgid);
}

#[test]
fn abort_all_kills_running_script_checks_at_once() {
    let _alone = SCRIPT_CHECKS
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let pgid_file = dir.path().join("pgid");
    let check = ScriptCheck::new(
        format!("echo $$ > {}; sleep 60 & sleep 60", q(&pgid_file)),
        60 * SECOND,
    );
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(check.run());
    });
    let mut reaper = Reaper::default();
    let pgid = read_pid(&pgid_file);
    reaper.group(pgid);
    assert!(wait_until(10 * SECOND, || script::running() == 1));

    let aborted = Instant::now();
    assert_eq!(script::abort_all(), 1);
    let result = rx.recv_timeout(10 * SECOND).unwrap();
    assert!(aborted.elapsed() < 5 * SECOND, "{:?}", aborted.elapsed());
    assert!(!result.healthy);
    assert_eq!(result.reason, "aborted");
    assert_eq!(script::running(), 0);
    assert_group_gone(pgid);

    // Later checks run normally.
    let result = ScriptCheck::new("exit 0".to_owned(), 30 * SECOND).run();
    assert!(result.healthy, "{}", result.reason);
}
