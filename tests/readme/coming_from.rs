//! The README's "Coming from another tool": each section's examples, taken
//! from the README by their heading, run with their targets moved to
//! loopback servers and a scratch directory, and each mapping table's
//! pairs checked against the two sides' examples key by key. The old
//! tool runs too where Debian packages it: keepalived validates both of
//! its files and, in a network namespace with a veth pair, holds a
//! virtual address while the README's `vrrp_script` finds heartbeat
//! healthy; monit runs its `check host` beside heartbeat on the same
//! server, both executing the same hooks in the same order.
//!
//! Moved, and nothing else: addresses and ports (to free loopback ones),
//! `/usr/local/bin/` hooks (to scripts that log their call) and intervals
//! (to a fraction of a second). goheartbeat's replacement logs to syslog
//! as written, heartbeat and `logger` alike, in a mount namespace whose
//! `/dev/log` is the test's socket (as root; elsewhere to stderr and a
//! `logger` script).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::bin::{Scratch, binary, free_port, lines};
use crate::support::http::get;
use crate::support::net::{
    Server, closed_port, http_server, https_server, ok, self_signed, status,
};
use crate::support::ops::{LONG, Target};
use crate::support::poll::wait_for;

use super::running::{said, shell, switchable};
use super::shown::{block_after, commands, readme};

/// An executable script `name` in `dir` that appends `word` and its
/// arguments to `log`.
fn hook(dir: &Path, name: &str, log: &Path, word: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"{word}${{1:+ $*}}\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An HTTP server answering every path 200 while `up`, else 503, counting
/// the requests it answered.
fn every_path(up: &Arc<AtomicBool>, served: &Arc<AtomicUsize>) -> Server {
    let (up, served) = (Arc::clone(up), Arc::clone(served));
    http_server("127.0.0.1:0", move |_| {
        served.fetch_add(1, Ordering::SeqCst);
        if up.load(Ordering::SeqCst) {
            ok("ok\n")
        } else {
            status(503)
        }
    })
}

/// The commands of the `sh` block under `heading`, continuation lines
/// joined.
fn sh_commands(heading: &str) -> Vec<String> {
    let block = block_after(&readme(), heading, "sh", 0);
    commands(&format!("```sh\n{block}```\n"))
        .into_iter()
        .map(|c| c.text)
        .collect()
}

fn has(text: &str, want: &str) {
    assert!(text.contains(want), "{want:?} is not in:\n{text}");
}

#[test]
fn the_python_tools_file_runs_unchanged_and_its_cron_line_needs_once() {
    let heading = "### The Python tool";
    let file = block_after(&readme(), heading, "ini", 0);
    let cron = block_after(&readme(), heading, "crontab", 0);
    for key in [
        "user = None\n",
        "group = None\n",
        "daemonize = no\n",
        "[DEFAULT]\n",
    ] {
        has(&file, key);
    }
    let s = Scratch::new();
    let log = s.path("actions.log");
    let hooks = s.path("hooks");
    hook(&hooks, "lb-add", &log, "add");
    hook(&hooks, "lb-remove", &log, "remove");
    let (app_up, api_up) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    );
    let served = Arc::new(AtomicUsize::new(0));
    let (app, api) = (every_path(&app_up, &served), every_path(&api_up, &served));
    for moved in [
        "/usr/local/bin/",
        "port = 8080\n",
        "port = 8081\n",
        "interval = 10\n",
    ] {
        has(&file, moved);
    }
    let conf = file
        .replace("/usr/local/bin/", &format!("{}/", hooks.display()))
        .replace("port = 8080\n", &format!("port = {}\n", app.port()))
        .replace("port = 8081\n", &format!("port = {}\n", api.port()))
        .replace("interval = 10\n", "interval = 0.3\n");
    let conf = s.write("heartbeat.conf", &conf);
    let conf = conf.to_str().unwrap();

    let out = shell(&s, &format!("heartbeat -t -c {conf}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    // The cron line as cron runs it: one round, its action, an exit status.
    let line = cron
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .expect("a crontab line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[5], "root", "{line}");
    let command = words[6..]
        .join(" ")
        .replace("/etc/heartbeat/heartbeat.conf", conf);
    assert!(command.ends_with(" --once"), "{command}");
    let run = || shell(&s, &command).output().unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(lines(&log), ["add web"]);
    // Each run starts from unknown and applies the current state.
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(lines(&log), ["add web", "add web"]);
    api_up.store(false, Ordering::SeqCst);
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert_eq!(lines(&log).last().map(String::as_str), Some("remove web"));

    // Without --once, as the Python tool ran without -d, heartbeat does
    // not exit: it runs a round every interval.
    let without = command.strip_suffix(" --once").unwrap();
    let mut hb = s.spawn_command(shell(&s, without));
    wait_for("its start-up demotion", LONG, || lines(&log).len() == 4);
    api_up.store(true, Ordering::SeqCst);
    wait_for("a promotion at a later round", LONG, || {
        lines(&log).len() == 5
    });
    assert_eq!(lines(&log)[3..], ["remove web", "add web"]);
    assert!(
        hb.wait_exit(std::time::Duration::ZERO).is_none(),
        "it exited"
    );
    assert!(hb.stop().success());
}

#[test]
fn pod_heartbeats_flags_run_as_the_table_says() {
    let shown = sh_commands("### pod-heartbeat");
    let [exits, serves] = shown.as_slice() else {
        panic!("two commands under pod-heartbeat: {shown:?}");
    };
    let up = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicUsize::new(0));
    let app = every_path(&up, &served);
    let target = format!("localhost:{}", app.port());

    // --retries 3 --exit-on-failure: runs while the service answers, exits
    // 1 after three failures in a row. Rounds every 300 ms instead of 5 s.
    has(exits, "--interval 5s");
    let s = Scratch::new();
    let run = exits
        .replace("localhost:4000", &target)
        .replace("--interval 5s", "--interval 300ms");
    let mut hb = s.spawn_command(shell(&s, &run));
    wait_for("three rounds", LONG, || served.load(Ordering::SeqCst) >= 3);
    assert!(
        hb.wait_exit(std::time::Duration::ZERO).is_none(),
        "it exited"
    );
    up.store(false, Ordering::SeqCst);
    let exit = hb.wait_exit(LONG).expect("it exits");
    let log = hb.log_text();
    assert_eq!(exit.code(), Some(1), "{log}");
    let first = log.find("failed (1 of 3 before unhealthy)");
    let second = log.find("failed (2 of 3 before unhealthy)");
    assert!(
        matches!((first, second), (Some(a), Some(b)) if a < b),
        "{log}"
    );

    // --server: / answers 200 or 503, and heartbeat keeps running.
    up.store(true, Ordering::SeqCst);
    let s = Scratch::new();
    let port = free_port();
    has(serves, ":9999");
    let run = format!(
        "{} --interval 300ms",
        serves
            .replace("localhost:4000", &target)
            .replace(":9999", &format!(":{port}"))
    );
    let hb = s.spawn_command(shell(&s, &run));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for("/ answering 200", LONG, || {
        std::net::TcpStream::connect(addr).is_ok() && get(addr, "/").status == 200
    });
    up.store(false, Ordering::SeqCst);
    wait_for("/ answering 503", LONG, || get(addr, "/").status == 503);
    up.store(true, Ordering::SeqCst);
    wait_for("/ answering 200 again", LONG, || {
        get(addr, "/").status == 200
    });
    assert!(hb.stop().success());
}

#[test]
fn goheartbeats_json_maps_key_by_key_and_failures_reach_the_log_and_the_alert() {
    let heading = "### goheartbeat";
    let json: serde_json::Value =
        serde_json::from_str(&block_after(&readme(), heading, "json", 0)).expect("the JSON");
    let ini = block_after(&readme(), heading, "ini", 0);
    let urls = json["Urls"].as_array().expect("Urls");
    let tcp = json["TcpEndpoints"].as_array().expect("TcpEndpoints");
    for url in urls {
        has(&ini, &format!("url = {}\n", url.as_str().unwrap()));
    }
    for endpoint in tcp {
        has(
            &ini,
            &format!("url = tcp://{}\n", endpoint.as_str().unwrap()),
        );
    }
    let interval = json["HeartbeatIntervalSeconds"]
        .as_u64()
        .expect("the interval");
    has(&ini, &format!("interval = {interval}\n"));
    has(&ini, "logfile = syslog\n");
    assert_eq!(
        ini.matches("\nurl = ").count(),
        urls.len() + tcp.len(),
        "{ini}"
    );

    let isolated = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !isolated {
        eprintln!(
            "note: cannot create a mount namespace (needs root and unshare): syslog moved to \
             stderr, logger to a script"
        );
        return goheartbeat_runs(&ini, interval, false);
    }
    // A /dev of its own, whose /dev/log is the test's socket: the devices
    // bound in from the real one.
    let child = crate::support::child::command(GOHEARTBEAT_SYSLOG);
    let dev = Scratch::new();
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(
            "d=$1 && shift && for f in null zero full random urandom; do \
             touch \"$d/$f\" && mount --bind \"/dev/$f\" \"$d/$f\" || exit 1; done \
             && mount --rbind \"$d\" /dev && exec \"$0\" \"$@\"",
        )
        .arg(child.get_program())
        .arg(dev.dir())
        .args(child.get_args())
        .envs(
            child
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .output()
        .expect("run unshare");
    crate::support::child::assert_passed(GOHEARTBEAT_SYSLOG, &out);
}

/// The test that runs goheartbeat's replacement with a syslog of its own.
const GOHEARTBEAT_SYSLOG: &str =
    "readme::coming_from::goheartbeats_replacement_logs_to_syslog_child";

/// The half of the goheartbeat test that runs where `/dev/log` is a socket
/// it reads; does nothing unless started by it.
#[test]
#[ignore = "run by goheartbeats_json_maps_key_by_key_and_failures_reach_the_log_and_the_alert"]
fn goheartbeats_replacement_logs_to_syslog_child() {
    if !crate::support::child::is_child(GOHEARTBEAT_SYSLOG) {
        return;
    }
    let heading = "### goheartbeat";
    let json: serde_json::Value =
        serde_json::from_str(&block_after(&readme(), heading, "json", 0)).expect("the JSON");
    let interval = json["HeartbeatIntervalSeconds"].as_u64().unwrap();
    goheartbeat_runs(&block_after(&readme(), heading, "ini", 0), interval, true);
}

/// Runs goheartbeat's replacement `ini` (its interval `interval`) against
/// loopback targets, takes the database down and waits for the alert and
/// the failed check's line: in syslog (a socket at `/dev/log`, with
/// `logger` as written) when `syslog`, else on stderr and from a `logger`
/// script.
fn goheartbeat_runs(ini: &str, interval: u64, syslog: bool) {
    let s = Scratch::new();
    let alerts = s.path("alerts");
    let socket = syslog.then(|| {
        let _ = fs::remove_file("/dev/log");
        let socket = std::os::unix::net::UnixDatagram::bind("/dev/log").expect("bind /dev/log");
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        socket
    });
    let cert = self_signed(&["localhost"]);
    let ca = s.write("ca.pem", &cert.cert_pem);
    let www = https_server("127.0.0.1:0", cert.identity, |_| ok("ok\n"));
    let up = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicUsize::new(0));
    let app = every_path(&up, &served);
    let db = Target::up();
    let mut conf = ini
        .replace(
            "url = https://www.example.com/\n",
            &format!(
                "url = https://localhost:{}/\nca_file = {}\n",
                www.port(),
                ca.display()
            ),
        )
        .replace("10.0.0.5:8080", &format!("127.0.0.1:{}", app.port()))
        .replace("10.0.0.6:5432", &format!("127.0.0.1:{}", db.port()))
        .replace(&format!("interval = {interval}\n"), "interval = 0.3\n");
    if !syslog {
        let logger = hook(&s.path("bin"), "logger", &alerts, "logger");
        conf = conf
            .replace("logfile = syslog\n", "logfile = stderr\n")
            .replace("= logger ", &format!("= {} ", logger.display()));
    }
    let conf = s.write("heartbeat.conf", &conf);
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    // What reached syslog (or the logger script, and stderr) so far.
    let mut received = String::new();
    let mut said = || {
        if let Some(socket) = &socket {
            let mut buf = [0u8; 8192];
            while let Ok(n) = socket.recv(&mut buf) {
                received.push_str(&String::from_utf8_lossy(&buf[..n]));
                received.push('\n');
            }
            received.clone()
        } else {
            fs::read_to_string(&alerts).unwrap_or_default() + &hb.log_text()
        }
    };
    // logger's daemon.notice is priority 29, daemon.err 27 (RFC 3164).
    let (notice, err) = if syslog {
        ("<29>", "<27>")
    } else {
        ("daemon.notice ", "daemon.err ")
    };
    wait_for("the all-clear", LONG, || {
        said()
            .lines()
            .any(|l| l.contains(notice) && l.ends_with("every target answers"))
    });
    db.down();
    wait_for("the alert", LONG, || {
        said()
            .lines()
            .any(|l| l.contains(err) && l.ends_with("failing: db"))
    });
    let text = said();
    let failed = text
        .lines()
        .find(|l| l.contains("check \"db\" (tcp 127.0.0.1:") && l.contains("connection refused"))
        .unwrap_or_else(|| panic!("no line for db in:\n{text}"));
    // A WARNING: syslog's daemon.warning, priority 28.
    let warning = if syslog { "<28>" } else { "WARNING" };
    assert!(failed.contains(warning), "{failed}");
    assert!(hb.stop().success());
    eprintln!("what was logged:\n{text}");
}

#[test]
fn health_checkers_flags_answer_200_and_504_and_share_one_probe() {
    let shown = sh_commands("### health-checker");
    let [command] = shown.as_slice() else {
        panic!("one command under health-checker: {shown:?}");
    };
    let s = Scratch::new();
    let (a, b) = (Target::up(), Target::up());
    let runs = s.path("runs");
    let flag = s.write("zk-is-ok", "");
    let zk = s.write(
        "zk-ok",
        &format!(
            "#!/bin/sh\necho run >> '{}'\nsleep 0.3\ntest -e '{}'\n",
            runs.display(),
            flag.display()
        ),
    );
    fs::set_permissions(&zk, fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    for moved in [
        "0.0.0.0:5000",
        "127.0.0.1:5432",
        "127.0.0.1:6379",
        "/usr/local/bin/zk-ok",
    ] {
        has(command, moved);
    }
    let run = command
        .replace("0.0.0.0:5000", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", a.port()))
        .replace("127.0.0.1:6379", &format!("127.0.0.1:{}", b.port()))
        .replace("/usr/local/bin/zk-ok", zk.to_str().unwrap());
    let hb = s.spawn_command(shell(&s, &run));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for("/ answering 200", LONG, || {
        std::net::TcpStream::connect(addr).is_ok() && get(addr, "/").status == 200
    });

    // --singleflight: six requests at once share the probe.
    let before = lines(&runs).len();
    let replies: Vec<u16> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..6)
            .map(|_| scope.spawn(move || get(addr, "/").status))
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(replies, [200; 6]);
    let probes = lines(&runs).len() - before;
    assert!(
        probes <= 2,
        "six concurrent requests ran the script {probes} times"
    );

    // 504 when a port or the script fails, 200 again when they pass.
    a.down();
    wait_for("/ answering 504 for the port", LONG, || {
        get(addr, "/").status == 504
    });
    a.back_up();
    wait_for("/ answering 200", LONG, || get(addr, "/").status == 200);
    fs::remove_file(&flag).unwrap();
    wait_for("/ answering 504 for the script", LONG, || {
        get(addr, "/").status == 504
    });
    assert!(hb.stop().success());
}

#[test]
fn healthcheckers_alive_and_ready_answer_as_the_transcript_shows() {
    let heading = "### healthchecker";
    let shown = sh_commands(heading);
    let [command] = shown.as_slice() else {
        panic!("one command under healthchecker: {shown:?}");
    };
    let transcript = block_after(&readme(), heading, "", 0);
    let s = Scratch::new();
    let db = closed_port();
    let up = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicUsize::new(0));
    let app = every_path(&up, &served);
    let listen = format!("127.0.0.1:{}", free_port());
    let map = |text: &str| {
        text.replace("127.0.0.1:5432", &format!("127.0.0.1:{db}"))
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", app.port()))
            .replace("127.0.0.1:8086", &listen)
    };
    let hb = s.spawn_command(shell(&s, &map(command)));
    let mut pairs = 0;
    let mut lines = transcript.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(curl) = line.strip_prefix("$ ") else {
            continue;
        };
        let want = map(lines.peek().expect("the answer under the command"));
        let curl = map(curl);
        // Until the first round ends /ready answers without its reasons.
        wait_for(&format!("`{curl}` to print {want}"), LONG, || {
            let out = shell(&s, &curl).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == want
        });
        pairs += 1;
    }
    assert_eq!(pairs, 2, "{transcript}");
    assert!(hb.stop().success());
}

/// `keepalived --config-test` on `text`.
fn keepalived_accepts(s: &Scratch, name: &str, text: &str) {
    let keepalived = ["/usr/sbin/keepalived", "/usr/bin/keepalived"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("keepalived (.ci/run installs it)");
    let file = s.write(name, text);
    let out = Command::new(keepalived)
        .arg("--config-test")
        .arg("-f")
        .arg(&file)
        .args(["--log-console", "--dont-fork"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keepalived refuses\n{text}\n{}",
        said(&out)
    );
}

/// The value of the keepalived or heartbeat key `key` in `text`.
fn value_of(text: &str, key: &str, separator: &str) -> String {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&format!("{key}{separator}")))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
        .trim()
        .to_owned()
}

/// The command of the `script "…"` line of a `vrrp_script`.
fn script_of(vrrp: &str) -> String {
    value_of(vrrp, "script", " ").trim_matches('"').to_owned()
}

#[test]
fn a_keepalived_vrrp_script_maps_key_by_key_and_keepalived_can_track_heartbeat() {
    let heading = "### keepalived's `vrrp_script`";
    let before = block_after(&readme(), heading, "", 0);
    let tracking = block_after(&readme(), heading, "", 1);
    let ini = block_after(&readme(), heading, "ini", 0);
    let s = Scratch::new();
    keepalived_accepts(&s, "before.conf", &before);
    keepalived_accepts(&s, "tracking.conf", &tracking);
    // Key by key: the check of the track script is heartbeat's.
    for key in ["interval", "timeout", "rise", "fall"] {
        assert_eq!(
            value_of(&before, key, " "),
            value_of(&ini, key, " = "),
            "{key}"
        );
    }
    let old = script_of(&before);
    let url = old.rsplit(' ').next().unwrap();
    assert_eq!(value_of(&ini, "url", " = "), url);

    let up = Arc::new(AtomicBool::new(true));
    let app = switchable(&up);
    let listen = format!("127.0.0.1:{}", free_port());
    let map = |text: &str| {
        text.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", app.port()))
            .replace("127.0.0.1:8081", &listen)
            .replace("/usr/bin/heartbeat", binary())
    };
    has(&ini, "interval = 2\n");
    let conf = s.write(
        "heartbeat.conf",
        &map(&ini).replace("interval = 2\n", "interval = 0.3\n"),
    );
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    let exit_of = |script: &str| shell(&s, &map(script)).output().unwrap().status.code();
    let new = script_of(&tracking);
    // Healthy after rise = 2 rounds: both scripts pass.
    wait_for("heartbeat status to exit 0", LONG, || {
        exit_of(&new) == Some(0)
    });
    assert_eq!(exit_of(&old), Some(0));
    // The service fails: curl at once, heartbeat after fall = 3 rounds.
    up.store(false, Ordering::SeqCst);
    assert_ne!(exit_of(&old), Some(0));
    wait_for("heartbeat status to exit 1", LONG, || {
        exit_of(&new) == Some(1)
    });
    let log = hb.log_text();
    let once = log.find("failed (1 of 3 before unhealthy)");
    let twice = log.find("failed (2 of 3 before unhealthy)");
    let down = log.find("is unhealthy after 3 consecutive failures");
    assert!(
        matches!((once, twice, down), (Some(a), Some(b), Some(c)) if a < b && b < c),
        "{log}"
    );
    assert!(hb.stop().success());

    // keepalived itself, tracking heartbeat: in a network namespace of its
    // own, with a virtual address on a veth pair.
    let isolated = Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !isolated {
        eprintln!("note: cannot create a network namespace (needs root): keepalived not run");
        return;
    }
    let child = crate::support::child::command(KEEPALIVED_TRACKS);
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c"])
        .arg(
            "ip link set lo up && ip link add v0 type veth peer name v1 && ip link set v0 up \
             && ip link set v1 up && ip addr add 192.0.2.10/24 dev v0 && exec \"$0\" \"$@\"",
        )
        .arg(child.get_program())
        .args(child.get_args())
        .envs(
            child
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .output()
        .expect("run unshare");
    crate::support::child::assert_passed(KEEPALIVED_TRACKS, &out);
}

/// The test that runs keepalived tracking heartbeat.
const KEEPALIVED_TRACKS: &str =
    "readme::coming_from::keepalived_tracking_heartbeat_moves_the_address_child";

/// The half of the keepalived test that runs in a network namespace with
/// a veth pair (`v0`, 192.0.2.10/24); does nothing unless started by it.
/// heartbeat runs the README's file as written but for its interval
/// (0.5 s instead of 2 s), on the README's ports; keepalived the README's
/// `vrrp_script` as written (the binary under test as
/// `/usr/bin/heartbeat`) and an instance of the test's that holds
/// 192.0.2.100 while it is healthy.
#[test]
#[ignore = "run by a_keepalived_vrrp_script_maps_key_by_key_and_keepalived_can_track_heartbeat"]
fn keepalived_tracking_heartbeat_moves_the_address_child() {
    if !crate::support::child::is_child(KEEPALIVED_TRACKS) {
        return;
    }
    let heading = "### keepalived's `vrrp_script`";
    let tracking = block_after(&readme(), heading, "", 1);
    let ini = block_after(&readme(), heading, "ini", 0);
    let s = Scratch::new();
    let up = Arc::new(AtomicBool::new(true));
    let app = {
        let up = Arc::clone(&up);
        http_server("127.0.0.1:8080", move |path| {
            if path == "/health" && up.load(Ordering::SeqCst) {
                ok("ok\n")
            } else {
                status(500)
            }
        })
    };
    let conf = s.write(
        "heartbeat.conf",
        &ini.replace("interval = 2\n", "interval = 0.5\n"),
    );
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    let keepalived_conf = format!(
        "{}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface v0\n    \
         virtual_router_id 51\n    priority 100\n    advert_int 1\n    \
         virtual_ipaddress {{\n        192.0.2.100/24\n    }}\n    \
         track_script {{\n        chk_heartbeat\n    }}\n}}\n",
        tracking.replace("/usr/bin/heartbeat", binary())
    );
    let file = s.write("keepalived.conf", &keepalived_conf);
    let keepalived = ["/usr/sbin/keepalived", "/usr/bin/keepalived"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("keepalived (.ci/run installs it)");
    let mut cmd = Command::new(keepalived);
    cmd.args(["--dont-fork", "--log-console", "--log-detail", "-f"])
        .arg(&file)
        .arg("--pid")
        .arg(s.path("keepalived.pid"))
        .arg("--vrrp_pid")
        .arg(s.path("vrrp.pid"))
        .current_dir(s.dir());
    let ka = {
        // Its own log: the Daemon's stderr file is heartbeat's.
        let k = Scratch::new();
        (k.spawn_command(cmd), k)
    };
    let holds = || {
        let out = Command::new("ip")
            .args(["-br", "addr", "show", "v0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("192.0.2.100/24")
    };
    let ka_log = || ka.0.log_text();
    wait_for("keepalived to take the address", LONG, holds);
    up.store(false, Ordering::SeqCst);
    wait_for("keepalived to give the address up", LONG, || !holds());
    assert!(
        ka_log().contains("VRRP_Script(chk_heartbeat) failed (exited with status 1)"),
        "{}",
        ka_log()
    );
    up.store(true, Ordering::SeqCst);
    wait_for("keepalived to take it back", LONG, holds);
    let log = hb.log_text();
    assert!(
        log.contains("is unhealthy after 3 consecutive failures"),
        "{log}"
    );
    drop(ka);
    assert!(hb.stop().success());
    drop(app);
}

#[test]
fn a_monit_check_host_maps_key_by_key_and_both_run_the_same_hooks() {
    let heading = "### monit's `check host`";
    let monitrc = block_after(&readme(), heading, "", 0);
    let ini = block_after(&readme(), heading, "ini", 0);
    let re = |pattern: &str| {
        regex::Regex::new(pattern)
            .unwrap()
            .captures(&monitrc)
            .unwrap_or_else(|| panic!("{pattern} in:\n{monitrc}"))[1]
            .to_owned()
    };
    // Key by key, as the table says.
    for (key, value) in [
        ("interval", re(r"set daemon (\d+)")),
        ("hostname", re(r"with address (\S+)")),
        ("port", re(r"if failed port (\d+)")),
        ("path", re(r#"request "([^"]+)""#)),
        ("timeout", re(r"with timeout (\d+) seconds")),
        ("fall", re(r"for (\d+) cycles")),
        ("web", re(r#"else if succeeded then exec "([^"]+)""#)),
    ] {
        has(&ini, &format!("\n{key} = {value}\n"));
    }
    let demotion = re(r#"then exec "([^"]+)"\s+else"#);
    has(&ini, &format!("[demotions]\nweb = {demotion}\n"));

    let s = Scratch::new();
    let up = Arc::new(AtomicBool::new(true));
    let app = switchable(&up);
    let (monit_log, hb_log) = (s.path("monit-actions"), s.path("heartbeat-actions"));
    for (dir, log) in [("monit-hooks", &monit_log), ("heartbeat-hooks", &hb_log)] {
        hook(&s.path(dir), "into-rotation", log, "in");
        hook(&s.path(dir), "out-of-rotation", log, "out");
    }
    let port = app.port().to_string();
    let rc = format!(
        "set log {d}/monit.log\nset idfile {d}/monit.id\nset statefile {d}/monit.state\n\
         set pidfile {d}/monit.pid\n{}",
        monitrc
            .replace("set daemon 10", "set daemon 1")
            .replace("port 8080", &format!("port {port}"))
            .replace(
                "/usr/local/bin/",
                &format!("{}/", s.path("monit-hooks").display())
            ),
        d = s.dir().display()
    );
    let rc = s.write("monitrc", &rc);
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let conf = ini
        .replace("interval = 10\n", "interval = 0.3\n")
        .replace("port = 8080\n", &format!("port = {port}\n"))
        .replace(
            "/usr/local/bin/",
            &format!("{}/", s.path("heartbeat-hooks").display()),
        );
    let conf = s.write("heartbeat.conf", &conf);

    let monit = ["/usr/bin/monit", "/usr/sbin/monit"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("monit (.ci/run installs it)");
    let mut cmd = Command::new(monit);
    cmd.arg("-I").arg("-c").arg(&rc).current_dir(s.dir());
    let monit = s.spawn_command(cmd);
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    let monit_said = || fs::read_to_string(s.path("monit.log")).unwrap_or_default();
    // heartbeat announces the state at start-up; monit runs nothing until
    // a change.
    wait_for("heartbeat's start-up promotion", LONG, || {
        lines(&hb_log) == ["in"]
    });
    wait_for("monit's start", LONG, || {
        monit_said()
            .lines()
            .any(|l| l.contains(" Monit ") && l.ends_with(" started"))
    });
    up.store(false, Ordering::SeqCst);
    wait_for("both take the node out", LONG, || {
        lines(&monit_log) == ["out"] && lines(&hb_log) == ["in", "out"]
    });
    up.store(true, Ordering::SeqCst);
    wait_for("both put it back", LONG, || {
        lines(&monit_log) == ["out", "in"] && lines(&hb_log) == ["in", "out", "in"]
    });
    assert!(hb.stop().success());
    drop(monit);
    eprintln!("monit's log:\n{}", monit_said());
}
