//! Tests of the Unix plumbing that needs a real, single-threaded process:
//! detaching ([`heartbeat::daemon::detach`]) and dropping privileges
//! ([`heartbeat::daemon::privileges`]).
//!
//! Both refuse to run once a second thread exists, and libtest runs every
//! test in a thread of its own, so this test binary has no harness
//! (`harness = false`): `main` runs the tests one after the other, and the
//! same binary, started with `HEARTBEAT_PLUMBING_HELPER` set, is the small
//! program under test. Filter with `cargo test --test plumbing -- NAME`.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Gid, Group, Pid, User};

// The shared helpers of the `tests` binary that stand alone.
#[allow(dead_code)]
#[path = "support/poll.rs"]
mod poll;
#[allow(dead_code)]
#[path = "support/proc.rs"]
mod proc;

use poll::{wait_for, wait_until};

/// Environment variable that turns this binary into a helper program.
const HELPER: &str = "HEARTBEAT_PLUMBING_HELPER";

const TESTS: &[(&str, fn())] = &[
    (
        "launcher_exits_zero_only_after_the_daemon_is_ready",
        launcher_exits_zero_only_after_the_daemon_is_ready,
    ),
    (
        "a_start_up_failure_reaches_the_launchers_stderr",
        a_start_up_failure_reaches_the_launchers_stderr,
    ),
    (
        "a_daemon_dying_without_a_report_fails_the_launcher",
        a_daemon_dying_without_a_report_fails_the_launcher,
    ),
    (
        "dropping_to_nobody_changes_ids_groups_and_environment",
        dropping_to_nobody_changes_ids_groups_and_environment,
    ),
    (
        "an_explicit_group_replaces_the_primary_group",
        an_explicit_group_replaces_the_primary_group,
    ),
    (
        "a_group_alone_keeps_the_user_and_leaves_exactly_that_group",
        a_group_alone_keeps_the_user_and_leaves_exactly_that_group,
    ),
    (
        "a_second_drop_is_refused_once_not_root",
        a_second_drop_is_refused_once_not_root,
    ),
    (
        "an_unknown_user_stops_before_anything_changes",
        an_unknown_user_stops_before_anything_changes,
    ),
];

fn main() -> ExitCode {
    if let Some(helper) = std::env::var_os(HELPER) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match helper.to_str() {
            Some("detach") => detach_helper(&args),
            Some("drop_privileges") => drop_privileges_helper(&args),
            other => panic!("unknown helper {other:?}"),
        }
        return ExitCode::SUCCESS;
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // Daemons orphaned by their launcher are reparented to this process,
    // which reaps them (PID 1 of a container may not).
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");

    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    let result = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {} passed; {} failed; {} filtered out\n",
        selected.len() - failed.len(),
        failed.len(),
        TESTS.len() - selected.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for name in failed {
            println!("failed: {name}");
        }
        ExitCode::FAILURE
    }
}

/// This binary as the helper program `name`.
fn helper(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("path of the test binary"));
    cmd.env(HELPER, name);
    cmd
}

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        println!("(skipped: needs root)");
    }
    root
}

// ---------------------------------------------------------------------------
// detach

/// Detaches like `heartbeat -d` and describes the daemon it became:
///
/// ```text
/// REPORT ready   # report, become ready, run until REPORT is removed
/// REPORT fail    # report, then fail with status 78 and a message
/// REPORT exit    # report, then exit without a word
/// ```
///
/// REPORT must be absolute: the daemon runs in `/`.
fn detach_helper(args: &[String]) {
    let [report, mode] = args else {
        panic!("usage: REPORT ready|fail|exit")
    };
    let report = PathBuf::from(report);
    let detached = match heartbeat::daemon::detach::detach() {
        Ok(detached) => detached,
        Err(e) => {
            eprintln!("heartbeat: {e}");
            std::process::exit(71);
        }
    };
    // A launcher that does not wait for readiness would be gone by now.
    std::thread::sleep(Duration::from_millis(300));
    write_atomically(&report, &describe_process());
    match mode.as_str() {
        "ready" => {
            if let Err(e) = detached.ready() {
                eprintln!("{e}");
                std::process::exit(71);
            }
            write_atomically(
                &report.with_extension("after"),
                &format!("stdout={}\nstderr={}\n", fd_target(1), fd_target(2)),
            );
            wait_until(Duration::from_secs(30), || !report.exists());
        }
        "fail" => {
            detached.fail(78, "heartbeat: error: the configuration says no");
            std::process::exit(78);
        }
        _ => std::process::exit(0),
    }
}

/// `key=value` lines: who and where this process is.
fn describe_process() -> String {
    let stat = proc::stat(std::process::id() as i32).expect("/proc/self/stat");
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::stat::umask(umask);
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: sets SIG_DFL, then puts the previous action back.
    let old = unsafe { signal::sigaction(Signal::SIGHUP, &dfl) }.unwrap();
    unsafe { signal::sigaction(Signal::SIGHUP, &old) }.unwrap();
    let sighup = match old.handler() {
        SigHandler::SigIgn => "ignored",
        SigHandler::SigDfl => "default",
        _ => "handled",
    };
    format!(
        "pid={}\nsid={}\npgid={}\ntty_nr={}\ncwd={}\numask={:03o}\nstdin={}\nsighup={sighup}\n",
        std::process::id(),
        stat.session,
        stat.pgrp,
        stat.tty_nr,
        std::env::current_dir().unwrap().display(),
        umask.bits(),
        fd_target(0),
    )
}

fn fd_target(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("({e})"))
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn read_report(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Reaps the detached daemon, reparented to this subreaper.
fn reap(pid: &str) -> WaitStatus {
    let pid = Pid::from_raw(pid.parse().unwrap());
    nix::sys::wait::waitpid(pid, None).unwrap()
}

fn launcher_exits_zero_only_after_the_daemon_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let mut launcher = helper("detach");
    launcher
        .arg(&report)
        .arg("ready")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Started as by nohup: SIGHUP ignored.
    // SAFETY: only signal(2), async-signal-safe, between fork and exec.
    unsafe {
        launcher.pre_exec(|| {
            signal::signal(Signal::SIGHUP, SigHandler::SigIgn)?;
            Ok(())
        });
    }
    let started = Instant::now();
    let launcher = launcher.spawn().unwrap();
    let launcher_pid = launcher.id().to_string();
    // Returns once the launcher exited and every holder of its stdout and
    // stderr (the daemon, until it is ready) closed them.
    let out = launcher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    // The daemon writes its report, after a pause, before it is ready.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let daemon = read_report(&report);

    let our_sid = nix::unistd::getsid(None).unwrap().to_string();
    assert_ne!(daemon["pid"], launcher_pid);
    assert_ne!(daemon["sid"], our_sid, "a new session");
    assert_ne!(daemon["sid"], daemon["pid"], "not a session leader");
    assert_eq!(daemon["pgid"], daemon["sid"]);
    assert_eq!(daemon["tty_nr"], "0", "no controlling terminal");
    assert_eq!(daemon["cwd"], "/");
    assert_eq!(daemon["umask"], "022");
    assert_eq!(daemon["stdin"], "/dev/null");
    assert_eq!(daemon["sighup"], "default", "inherited SIG_IGN restored");

    // After ready(): stdout and stderr are /dev/null.
    let after = report.with_extension("after");
    wait_for(
        &format!("{}", after.display()),
        Duration::from_secs(10),
        || after.exists(),
    );
    let later = read_report(&after);
    assert_eq!(later["stdout"], "/dev/null");
    assert_eq!(later["stderr"], "/dev/null");

    // Removing the report lets the daemon exit.
    std::fs::remove_file(&report).unwrap();
    let status = reap(&daemon["pid"]);
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

fn a_start_up_failure_reaches_the_launchers_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let out = helper("detach")
        .arg(&report)
        .arg("fail")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "heartbeat: error: the configuration says no\n"
    );
    reap(&read_report(&report)["pid"]);
}

fn a_daemon_dying_without_a_report_fails_the_launcher() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let out = helper("detach")
        .arg(&report)
        .arg("exit")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "heartbeat: the daemon died during start-up\n"
    );
    reap(&read_report(&report)["pid"]);
}

// ---------------------------------------------------------------------------
// drop_to

/// `USER GROUP [USER2 GROUP2]`, `-` for "not set": drops privileges, prints
/// what `/bin/sh -c 'id …'` reports (as a hook would see it), then tries
/// the optional second drop. Errors: `error: MESSAGE`, exit status 1.
fn drop_privileges_helper(args: &[String]) {
    let name = |i: usize| args.get(i).map(String::as_str).filter(|s| *s != "-");
    drop_or_exit(name(0), name(1));
    let id = Command::new("/bin/sh")
        .arg("-c")
        .arg(
            "echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G | tr ' ' '\\n' | sort -n | paste -sd ' ')\" \
             \"home=${HOME-(unset)} user=${USER-(unset)} logname=${LOGNAME-(unset)}\"",
        )
        .output()
        .expect("run /bin/sh");
    print!("{}", String::from_utf8_lossy(&id.stdout));
    if args.len() == 4 {
        drop_or_exit(name(2), name(3));
    }
}

/// Looks the names up as the configuration does, then drops privileges.
fn drop_or_exit(user: Option<&str>, group: Option<&str>) {
    let accounts = user
        .map(heartbeat::config::user_account)
        .transpose()
        .and_then(|u| {
            Ok((
                u.flatten(),
                group.map(heartbeat::config::unix_group).transpose()?,
            ))
        });
    let dropped = accounts.and_then(|(user, group)| {
        heartbeat::daemon::privileges::drop_to(user.as_ref(), group.flatten().as_ref())
            .map_err(|e| heartbeat::exit::Chain(&e).to_string())
    });
    if let Err(e) = dropped {
        println!("error: {e}");
        std::process::exit(1);
    }
}

/// Runs the drop_privileges helper; returns its status and stdout lines.
fn drop_privileges(args: &[&str]) -> (i32, Vec<String>) {
    let out = helper("drop_privileges")
        .args(args)
        .env_remove("HOME")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// The groups a drop to `user` with primary group `gid` must leave, as
/// `id -G` prints them sorted: `gid` and every group that names `user` as
/// a member, read from the group database with `getent group` (not with
/// getgrouplist(3), which the code under test calls).
fn grouplist(user: &str, gid: Gid) -> String {
    let out = Command::new("getent")
        .arg("group")
        .output()
        .expect("run getent");
    assert!(out.status.success(), "getent group: {out:?}");
    let mut groups = vec![gid.as_raw()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // name:password:gid:member,member,…
        let fields: Vec<&str> = line.split(':').collect();
        if let [_, _, id, members] = fields[..] {
            if members.split(',').any(|m| m == user) {
                groups.push(id.parse().expect("a numeric gid"));
            }
        }
    }
    groups.sort_unstable();
    groups.dedup();
    groups
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn dropping_to_nobody_changes_ids_groups_and_environment() {
    if !is_root() {
        return;
    }
    let nobody = User::from_name("nobody").unwrap().unwrap();
    let (code, lines) = drop_privileges(&["nobody", "-"]);
    assert_eq!(code, 0, "{lines:?}");
    let groups = grouplist("nobody", nobody.gid);
    assert!(!groups.split(' ').any(|g| g == "0"), "{groups}");
    assert_eq!(
        lines,
        [format!(
            "uid={} gid={} groups={groups} home={} user=nobody logname=nobody",
            nobody.uid,
            nobody.gid,
            nobody.dir.display()
        )]
    );
}

fn an_explicit_group_replaces_the_primary_group() {
    if !is_root() {
        return;
    }
    let nobody = User::from_name("nobody").unwrap().unwrap();
    let daemon = Group::from_name("daemon").unwrap().unwrap();
    let (code, lines) = drop_privileges(&["nobody", "daemon"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines,
        [format!(
            "uid={} gid={} groups={} home={} user=nobody logname=nobody",
            nobody.uid,
            daemon.gid,
            grouplist("nobody", daemon.gid),
            nobody.dir.display()
        )]
    );
}

fn a_group_alone_keeps_the_user_and_leaves_exactly_that_group() {
    if !is_root() {
        return;
    }
    let daemon = Group::from_name("daemon").unwrap().unwrap();
    let (code, lines) = drop_privileges(&["-", "daemon"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines,
        [format!(
            "uid=0 gid={gid} groups={gid} home=(unset) user=(unset) logname=(unset)",
            gid = daemon.gid
        )]
    );
}

fn a_second_drop_is_refused_once_not_root() {
    if !is_root() {
        return;
    }
    let nobody = User::from_name("nobody").unwrap().unwrap();
    let (code, lines) = drop_privileges(&["nobody", "-", "daemon", "-"]);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "error: user = daemon in [general] needs heartbeat to start as root; \
             it runs as uid {}",
            nobody.uid
        )
    );
    // Naming the identity it already has is fine.
    let (code, lines) = drop_privileges(&["nobody", "-", "nobody", "-"]);
    assert_eq!(code, 0, "{lines:?}");
}

fn an_unknown_user_stops_before_anything_changes() {
    let (code, lines) = drop_privileges(&["no-such-user-hb", "-"]);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(
        lines,
        [
            "error: no user named \"no-such-user-hb\" on this system; expected an existing user or None"
        ]
    );
}
