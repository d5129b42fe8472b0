//! Issue 9, tried against the real binary as a local attacker and a careless
//! operator would: links planted in the log and pidfile paths, loose file
//! modes, inherited descriptors and environments, hooks that escape with
//! `setsid`, secrets in the status page, and a flood of idle sockets. Most
//! need root (to plant files as another user, or to be refused as root);
//! they skip themselves otherwise, and CI runs as root.

use crate::support::bin::{self as support, Adopted, Scratch, adopt_orphans, free_port, is_root};
use crate::support::daemon::{listening, p, script, stderr, with_hooks};
use crate::support::http::get;
use crate::support::poll::wait_until;
use crate::support::proc::{alive, read_pid};

use std::fs;
use std::io::Read as _;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::User;

fn nobody() -> User {
    User::from_name("nobody")
        .unwrap()
        .expect("a user named nobody")
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `sh -c script` as `nobody`, as a local user planting files would.
fn as_nobody(script: &str) {
    let user = nobody();
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .status()
        .unwrap();
    assert!(status.success(), "as nobody: {script}");
}

/// A scratch directory that every user may enter (not write).
fn scratch() -> Scratch {
    let s = Scratch::new();
    chmod(s.dir(), 0o755);
    s
}

/// A configuration with one group `g` whose hooks are `promotion` and
/// `demotion`, one script check `c` running `check`, and `general`.
fn conf(s: &Scratch, general: &str, promotion: &str, demotion: &str, check: &str) -> PathBuf {
    let path = s.write(
        "hb.conf",
        &format!(
            "[general]\n{general}\n{}",
            with_hooks(&[("g", promotion, demotion)], &script("c", check, "g"))
        ),
    );
    chmod(&path, 0o644);
    path
}

/// A directory root alone may enter, holding `precious`.
fn root_only(s: &Scratch) -> PathBuf {
    let dir = s.path("root-only");
    fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o700);
    fs::write(dir.join("precious"), "precious\n").unwrap();
    dir
}

#[test]
fn a_log_link_planted_by_another_user_in_a_sticky_directory_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let secret = root_only(&s);
    let sticky = s.path("tmp");
    fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);
    let log = sticky.join("hb.log");
    as_nobody(&format!("ln -s {} {}", p(&secret.join("created")), p(&log)));
    let c = conf(
        &s,
        &format!("logfile = {}", p(&log)),
        "true",
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: it is a symbolic link; refusing to follow it",
            p(&log)
        )),
        "{err}"
    );
    assert!(
        !secret.join("created").exists(),
        "root wrote through the link"
    );
    // The pidfile too.
    let c = conf(
        &s,
        &format!("pidfile = {}", p(&log)),
        "true",
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(
        !secret.join("created").exists(),
        "root wrote through the link"
    );
}

#[test]
fn links_in_a_directory_the_dropped_user_owns_are_refused_for_log_and_pidfile() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let secret = root_only(&s);
    let user = nobody();
    // The directory an operator makes for the user, so that reopening the
    // log after the drop works.
    let logs = s.path("logs");
    fs::create_dir(&logs).unwrap();
    nix::unistd::chown(&logs, Some(user.uid), Some(user.gid)).unwrap();
    as_nobody(&format!(
        "ln -s {} {}/sub && ln -s {} {}/hb.pid",
        p(&secret),
        p(&logs),
        p(&secret.join("precious")),
        p(&logs)
    ));
    // A link to a directory, in a directory nobody owns.
    let c = conf(
        &s,
        &format!("logfile = {}/sub/hb.log", p(&logs)),
        "true",
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}/sub: it is a symbolic link in {}, a directory other users can write (owner uid {}",
            p(&logs),
            p(&logs),
            user.uid
        )),
        "{err}"
    );
    assert!(!secret.join("hb.log").exists());
    // A link at the pidfile's path.
    let c = conf(
        &s,
        &format!("pidfile = {}/hb.pid", p(&logs)),
        "true",
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(secret.join("precious")).unwrap(),
        "precious\n"
    );
}

/// Hard links to a file of root's cannot be made by other users where
/// `fs.protected_hardlinks` is on; heartbeat does not count on it.
#[test]
fn a_hard_link_at_the_log_or_pidfile_path_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let secret = root_only(&s);
    let log = s.path("hb.log");
    fs::hard_link(secret.join("precious"), &log).unwrap();
    let c = conf(
        &s,
        &format!("logfile = {}", p(&log)),
        "true",
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: it has 2 hard links; refusing to write to a file that has other names",
            p(&log)
        )),
        "{}",
        stderr(&out)
    );
    let pid = s.path("hb.pid");
    fs::hard_link(secret.join("precious"), &pid).unwrap();
    let c = conf(
        &s,
        &format!("pidfile = {}", p(&pid)),
        "true",
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(secret.join("precious")).unwrap(),
        "precious\n"
    );
}

#[test]
fn a_pidfile_left_owned_by_another_user_is_replaced_by_one_of_roots() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let pid = s.path("hb.pid");
    fs::write(&pid, "1\n").unwrap();
    let user = nobody();
    nix::unistd::chown(&pid, Some(user.uid), Some(user.gid)).unwrap();
    let c = conf(
        &s,
        &format!("pidfile = {}", p(&pid)),
        &format!("stat -c %u {} > owner", p(&pid)),
        "true",
        "true",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("replaced pidfile"),
        "{}",
        stderr(&out)
    );
    assert_eq!(support::lines(&s.path("owner")), ["0"]);
}

/// A hook that lists its open descriptors (as `readlink` shows them) in
/// `DIR/fds`, and succeeds (`readlink` of the descriptor the glob itself
/// used fails: the listing is what counts).
fn list_fds(dir: &Path) -> String {
    format!(
        "for f in /proc/$$/fd/*; do readlink $f; done > {}/fds; true",
        p(dir)
    )
}

#[test]
fn an_inherited_flocked_descriptor_reaches_no_hook_and_dies_with_the_launcher_under_d() {
    let s = scratch();
    let lock = s.path("wrapper.lock");
    let pidfile = s.path("hb.pid");
    let c = conf(
        &s,
        &format!(
            "interval = 1\npidfile = {}\nlogfile = {}",
            p(&pidfile),
            p(&s.path("hb.log"))
        ),
        &format!(
            "{}; sleep 300 >/dev/null 2>&1 & echo $! > {}",
            list_fds(s.dir()),
            p(&s.path("bg.pid"))
        ),
        "true",
        "true",
    );
    adopt_orphans();
    let out = Command::new("flock")
        .arg(&lock)
        .arg(support::binary())
        .args(["-d", "-c", p(&c)])
        .current_dir(s.dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let daemon = support::read_number(&pidfile).expect("daemon pid");
    let mut daemon = Adopted::new(daemon);
    let bg = read_pid(&s.path("bg.pid"));
    let kill_bg = scopeguard(bg);
    let fds = support::lines(&s.path("fds"));
    assert!(!fds.iter().any(|l| l.contains("wrapper.lock")), "{fds:?}");
    // The launcher is gone: no one holds the lock any more, not the daemon
    // and not the service the hook started.
    let free = Command::new("flock")
        .args(["-n", p(&lock), "true"])
        .status()
        .unwrap();
    assert!(free.success(), "the wrapper's lock is still held");
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        daemon
            .wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );
    drop(kill_bg);
}

#[test]
fn an_inherited_descriptor_reaches_no_hook_in_the_foreground() {
    let s = scratch();
    let lock = s.path("wrapper.lock");
    let c = conf(&s, "", &list_fds(s.dir()), "true", "true");
    let out = Command::new("flock")
        .arg(&lock)
        .arg(support::binary())
        .args(["--once", "-c", p(&c)])
        .current_dir(s.dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fds = support::lines(&s.path("fds"));
    assert!(!fds.is_empty());
    assert!(!fds.iter().any(|l| l.contains("wrapper.lock")), "{fds:?}");
}

/// Kills (SIGKILL) a process when dropped.
struct KillOnDrop(i32);

fn scopeguard(pid: i32) -> KillOnDrop {
    KillOnDrop(pid)
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn a_world_writable_configuration_is_refused_naming_file_owner_mode_and_fix() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let ran = s.path("ran");
    let c = conf(&s, "", &format!("touch {}", p(&ran)), "true", "true");
    chmod(&c, 0o666);
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: refusing the configuration file: everyone can write it (owner root (uid 0), gid 0, mode 0666)",
            p(&c)
        )) && err.contains(&format!("fix: chown root: {0} && chmod go-w {0}", p(&c))),
        "{err}"
    );
    assert!(!ran.exists(), "a hook ran");
    // The key does not cover a file everyone could have written it into.
    let c = conf(&s, "check_permissions = no", "true", "true", "true");
    chmod(&c, 0o666);
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
}

#[test]
fn a_configuration_of_another_user_is_refused_unless_the_key_says_so() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let user = nobody();
    let c = conf(&s, "", "true", "true", "true");
    nix::unistd::chown(&c, Some(user.uid), None).unwrap();
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it belongs to another user than root (owner nobody"),
        "{}",
        stderr(&out)
    );
    let c = conf(&s, "check_permissions = no", "true", "true", "true");
    nix::unistd::chown(&c, Some(user.uid), None).unwrap();
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_hook_script_another_user_can_write_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let script = s.write("promote.sh", "#!/bin/sh\ntouch ran\n");
    chmod(&script, 0o757);
    let c = conf(&s, "", &format!("{} --now", p(&script)), "true", "true");
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: refusing the promotion of group \"g\": everyone can write it (owner root (uid 0), gid 0, mode 0757)",
            p(&script)
        )),
        "{err}"
    );
    assert!(!s.path("ran").exists());
    chmod(&script, 0o755);
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(s.path("ran").exists());
}

/// Issue 9: children of a hung hook that call `setsid` survived the
/// deadline kill, 10 of 10.
#[test]
fn a_setsid_escapee_that_ignores_sigterm_is_killed_at_the_deadline() {
    let s = scratch();
    // `setsid -f` forks and its parent exits: the escapee is in a session
    // of its own and no longer under the check's shell.
    let check = "setsid -f sh -c 'trap \"\" TERM; echo $$ > esc.pid; exec sleep 300'; sleep 300";
    let c = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 30\n[promotions]\ng = true\n[demotions]\ng = true\n\
             [c]\ntype = script\ncommand = {check}\ntimeout = 1\naction = g\n"
        ),
    );
    let started = Instant::now();
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let escapee = read_pid(&s.path("esc.pid"));
    let _guard = scopeguard(escapee);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(escapee)),
        "the escapee {escapee} outlived its check"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_setsid_escapee_of_a_hung_hook_is_killed_at_the_action_timeout() {
    let s = scratch();
    let hook = "setsid -f sh -c 'echo $$ > esc.pid; exec sleep 300'; sleep 300";
    let c = s.write(
        "hb.conf",
        &format!(
            "[general]\naction_timeout = 1\n[promotions]\ng = {hook}\n[demotions]\ng = true\n\
             [c]\ntype = script\ncommand = true\naction = g\n"
        ),
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    // The hook timed out: the promotion failed, and --once says so.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let escapee = read_pid(&s.path("esc.pid"));
    let _guard = scopeguard(escapee);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(escapee)),
        "the escapee {escapee} outlived its hook"
    );
    assert!(
        stderr(&out).contains("timed out after 1s"),
        "{}",
        stderr(&out)
    );
}

/// Issue 9: `sleep 100 & echo up` left one process per round behind.
#[test]
fn what_a_script_check_leaves_in_the_background_is_killed_with_it() {
    let s = scratch();
    let c = conf(
        &s,
        "",
        "true",
        "true",
        "sleep 100 & echo $! > bg.pid; echo up",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bg = read_pid(&s.path("bg.pid"));
    let _guard = scopeguard(bg);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(bg)),
        "{bg} left running"
    );
}

#[test]
fn a_hook_sees_only_the_documented_environment_and_the_launchers_file_limit() {
    let s = scratch();
    let c = conf(
        &s,
        "env_keep = http_proxy\nenv_set = NO_PROXY=localhost,127.0.0.1\n    EXTRA=with = sign",
        "env > env.txt; ulimit -n > limit.txt",
        "true",
        "true",
    );
    let mut cmd = s.command(&["--once", "-c", p(&c)]);
    cmd.env_clear()
        .env("PATH", "/root/bin:/usr/bin:/bin")
        .env("HOME", "/root")
        .env("SUDO_USER", "alice")
        .env("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1")
        .env("XDG_RUNTIME_DIR", "/run/user/0")
        .env("AWS_SECRET_ACCESS_KEY", "hunter2")
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("http_proxy", "http://proxy:3128")
        .env("https_proxy", "http://not-kept:3128");
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 1000, 4096)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut env: Vec<String> = support::lines(&s.path("env.txt"))
        .into_iter()
        // Set by the shell itself.
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("OLDPWD=") && !l.starts_with("SHLVL="))
        .collect();
    env.sort();
    let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
    let run_id = env
        .iter()
        .find(|l| l.starts_with("HEARTBEAT_RUN_ID="))
        .cloned()
        .expect("HEARTBEAT_RUN_ID");
    let mut want = vec![
        "EXTRA=with = sign".to_owned(),
        "HEARTBEAT_ACTION=g".to_owned(),
        "HEARTBEAT_ATTEMPT=1".to_owned(),
        "HEARTBEAT_FAILED_CHECKS=".to_owned(),
        "HEARTBEAT_PREVIOUS_STATE=unknown".to_owned(),
        "HEARTBEAT_REASON=health".to_owned(),
        run_id,
        "HEARTBEAT_STATE=healthy".to_owned(),
        format!("HOME={}", me.dir.display()),
        "LANG=C.UTF-8".to_owned(),
        format!("LOGNAME={}", me.name),
        "NO_PROXY=localhost,127.0.0.1".to_owned(),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        "SHELL=/bin/sh".to_owned(),
        "TZ=UTC".to_owned(),
        format!("USER={}", me.name),
        "http_proxy=http://proxy:3128".to_owned(),
    ];
    want.sort();
    assert_eq!(env, want);
    assert_eq!(support::lines(&s.path("limit.txt")), ["1000"]);
}

#[test]
fn status_and_logs_show_no_credential_query_string_or_script_command() {
    let s = scratch();
    let port = free_port();
    let c = s.write(
        "hb.conf",
        &format!(
            "[general]\ninterval = 1\nlisten = 127.0.0.1:{port}\nloglevel = DEBUG\n\
             [promotions]\ng = echo Bearer s3cret-hook > /dev/null\n[demotions]\ng = true\n\
             [c]\ntype = script\ncommand = echo 'Authorization: Bearer s3cret-script' >/dev/null\naction = g\n\
             [web]\nurl = http://127.0.0.1:{port}/alive?token=s3cret-query\naction = g\n"
        ),
    );
    chmod(&c, 0o644);
    let hb = s.spawn(&["-c", p(&c)]);
    hb.wait_log(
        "promotion of group \"g\" succeeded",
        Duration::from_secs(20),
    );
    let status = get(format!("127.0.0.1:{port}").parse().unwrap(), "/status");
    let body = status.body.clone();
    assert!(body.contains("\"endpoint\":\"[redacted]\""), "{body}");
    assert!(body.contains("/alive?[redacted]"), "{body}");
    assert!(!body.contains("s3cret"), "{body}");
    let log = hb.log_text();
    assert!(!log.contains("s3cret"), "{log}");
    assert!(log.contains("running promotion of group \"g\""), "{log}");
}

#[test]
fn a_url_password_is_not_echoed_by_a_configuration_error() {
    let s = scratch();
    let c = s.write(
        "hb.conf",
        "[promotions]\ng = true\n[demotions]\ng = true\n\
         [web]\nurl = http://admin:pa55word@127.0.0.1/\naction = g\n",
    );
    chmod(&c, 0o644);
    let out = s.run(&["-t", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.contains("http://[redacted]@127.0.0.1/"), "{err}");
    assert!(!err.contains("pa55word"), "{err}");
}

#[test]
fn listening_on_every_interface_is_said_with_a_warning() {
    let s = scratch();
    // `0.0.0.0:PORT` cannot be bound while any local socket uses the port,
    // the source port of another test's connection too: `listening` tries
    // another port then.
    let (hb, port) = listening(&s, |port| {
        let c = conf(&s, &format!("listen = :{port}"), "true", "true", "true");
        vec!["-c".into(), p(&c).into()]
    });
    let log = hb.log_text();
    assert!(
        log.contains(&format!(
            "WARNING  status server listening on http://0.0.0.0:{port} on EVERY interface ("
        )) && log.contains("lo 127.0.0.1")
            && log.contains(&format!("set listen = 127.0.0.1:{port} to keep it local")),
        "{log}"
    );
}

/// Issue 9: 2,100 connections that never send a byte filled the
/// 2,048-connection cap and every probe got `503 too many connections`.
#[test]
fn two_thousand_one_hundred_silent_sockets_never_turn_a_probe_away() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard < 4096 {
        eprintln!("skipped: needs an open-file limit of 4096, the hard limit is {hard}");
        return;
    }
    if soft < 4096 {
        setrlimit(Resource::RLIMIT_NOFILE, 4096, hard).unwrap();
    }
    let s = scratch();
    let port = free_port();
    let c = conf(
        &s,
        &format!("interval = 1\nlisten = 127.0.0.1:{port}"),
        "true",
        "true",
        "true",
    );
    let hb = s.spawn(&["-c", p(&c)]);
    hb.wait_log(
        "promotion of group \"g\" succeeded",
        Duration::from_secs(20),
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let silent: Vec<TcpStream> = (0..2100)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut took = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let reply = get(addr, "/ready");
        took.push(start.elapsed());
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(median < Duration::from_millis(100), "probes took {took:?}");
    assert!(
        took[took.len() - 1] < Duration::from_secs(2),
        "probes took {took:?}"
    );
    // The oldest silent sockets were closed to make room.
    let mut first = &silent[0];
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(first.read(&mut byte).unwrap_or(0), 0);
    drop(silent);
    assert_eq!(hb.stop().code(), Some(0));
}

#[test]
fn the_pidfile_is_roots_after_a_privilege_drop_and_is_emptied_on_exit() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let pidfile = s.path("hb.pid");
    let c = conf(
        &s,
        &format!("user = nobody\ninterval = 1\npidfile = {}", p(&pidfile)),
        "true",
        "true",
        "true",
    );
    let hb = s.spawn(&["-c", p(&c)]);
    hb.wait_log(
        "promotion of group \"g\" succeeded",
        Duration::from_secs(20),
    );
    let meta = fs::metadata(&pidfile).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o644));
    // nobody cannot write another PID into it.
    let user = nobody();
    let write = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo 1 > {}", p(&pidfile)))
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!write.success());
    assert_eq!(hb.stop().code(), Some(0));
    // Its directory is root's: the file stays, empty, naming no PID.
    assert_eq!(fs::read_to_string(&pidfile).unwrap(), "");
}

#[test]
fn a_setsid_escapee_of_a_script_check_that_passed_is_killed_with_its_round() {
    let s = scratch();
    let c = conf(
        &s,
        "",
        "true",
        "true",
        // Waits for the escapee to be out of the group and to have said so.
        "setsid -f sh -c 'echo $$ > esc.pid; exec sleep 300'; \
         while [ ! -s esc.pid ]; do sleep 0.01; done; echo up",
    );
    let out = s.run(&["--once", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let escapee = read_pid(&s.path("esc.pid"));
    let _guard = scopeguard(escapee);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(escapee)),
        "the escapee {escapee} outlived its check"
    );
}

/// A reload (SIGHUP) applies the start-up checks to the new file: made
/// writable by a group other than root's, it is refused with the message a
/// start gives, the running configuration is kept and the new group's
/// promotion never runs; `-t -q`, the unit's ExecReload= step before the
/// signal, refuses it too. With `check_permissions = no` it is reloaded.
#[test]
fn a_reload_refuses_a_new_file_its_group_can_write_as_a_start_does() {
    use crate::support::ops::{LONG, wait_lines};
    use nix::sys::signal::Signal;
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = scratch();
    let (actions, rounds) = (s.path("actions.log"), s.path("rounds"));
    let promote = |g: &str| format!("{g} = echo promotion {g} >> {}\n", p(&actions));
    let file = |general: &str, groups: &[&str]| {
        let mut text = format!("[general]\ninterval = 100ms\n{general}\n[promotions]\n");
        for g in groups {
            text += &promote(g);
        }
        text += "[demotions]\n";
        for g in groups {
            text += &format!("{g} = true\n");
        }
        text += &format!(
            "[c]\ntype = script\ncommand = echo run >> {}\naction = {}\n",
            p(&rounds),
            groups.join(", ")
        );
        text
    };
    let c = s.write("hb.conf", &file("", &["a"]));
    chmod(&c, 0o644);
    let hb = s.spawn(&["-c", p(&c)]);
    wait_lines(&actions, 1);

    s.write("hb.conf", &file("", &["a", "b"]));
    nix::unistd::chown(&c, Some(0.into()), Some(65534.into())).unwrap();
    chmod(&c, 0o664);
    let refusal = format!(
        "{0}: refusing the configuration file: its group can write it (owner root (uid 0), gid \
         65534, mode 0664) and heartbeat runs its commands as root; fix: chown root: {0} && \
         chmod go-w {0} (or set check_permissions = no in [general] if you must)",
        p(&c)
    );
    let out = s.run(&["-t", "-q", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("heartbeat: {refusal}\n"));
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reload refused", LONG);
    let log = hb.log_text();
    assert!(
        log.contains(&format!(
            "ERROR    reload refused, the running configuration is kept: {refusal}\n"
        )),
        "{log}"
    );
    // Rounds go on under the old file; b, which only the refused file
    // names, is never promoted.
    let seen = support::lines(&rounds).len();
    wait_lines(&rounds, seen + 5);
    assert_eq!(support::lines(&actions), ["promotion a"]);

    s.write("hb.conf", &file("check_permissions = no", &["a", "b"]));
    let out = s.run(&["-t", "-q", "-c", p(&c)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    hb.signal(Signal::SIGHUP);
    hb.wait_log("reloaded", LONG);
    wait_lines(&actions, 2);
    assert_eq!(support::lines(&actions), ["promotion a", "promotion b"]);
    assert_eq!(hb.stop().code(), Some(0));
}
