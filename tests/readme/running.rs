//! The README's examples of running heartbeat, run as written where they
//! can be and with what they name on other machines moved to loopback and
//! a scratch directory where they cannot: the sidecar and load-balancer
//! command lines, detaching (alone and under `flock`), and the nginx
//! failover example of `contrib/nginx-failover/` end to end with a real
//! nginx.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::Signal;

use crate::support::bin::{
    Adopted, Daemon, Scratch, adopt_orphans, binary, free_port, read_number,
};
use crate::support::http::get;
use crate::support::net::{Reply, http_server, https_server, ok, self_signed, status};
use crate::support::ops::{LONG, Target};
use crate::support::poll::wait_for;

use super::commands::entry;
use super::environments::Layout;

/// The README's command that starts with `start`.
fn shown(start: &str) -> &'static str {
    super::commands::COMMANDS
        .iter()
        .map(|e| e.shown)
        .find(|s| s.starts_with(start))
        .unwrap_or_else(|| panic!("no command starting {start:?} in the list"))
}

/// `/bin/sh -c 'exec COMMAND'` in `s`, with the binary under test first on
/// the `PATH` as `heartbeat`.
pub(super) fn shell(s: &Scratch, command: &str) -> Command {
    let bin = s.path("bin");
    if !bin.exists() {
        fs::create_dir(&bin).unwrap();
        symlink(binary(), bin.join("heartbeat")).unwrap();
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("exec {command}"))
        .current_dir(s.dir())
        .stdin(Stdio::null())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    cmd
}

pub(super) fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An HTTP server whose `/health` answers 200 `ok` while `up`, else 500.
pub(super) fn switchable(up: &Arc<AtomicBool>) -> crate::support::net::Server {
    let up = Arc::clone(up);
    http_server("127.0.0.1:0", move |path| {
        if path == "/health" && up.load(Ordering::SeqCst) {
            ok("ok\n")
        } else if path == "/health" {
            status(500)
        } else {
            Reply::Full {
                status: 404,
                headers: vec![],
                body: b"no\n".to_vec(),
            }
        }
    })
}

#[test]
fn the_sidecar_examples_run_as_written() {
    // The sidecar: validated exactly as written...
    let sidecar = shown("heartbeat --check tcp://db:5432");
    let s = Scratch::new();
    let out = shell(&s, &format!("{sidecar} -t")).output().unwrap();
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "command line: OK: 1 group, 3 checks",
        "listen = 0.0.0.0:8080",
        "exit_on_failure = yes",
        "interval = 10s",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    let db = text
        .lines()
        .find(|l| l.trim_start().starts_with("\"tcp://db:5432\"") && l.ends_with(" db:5432"))
        .expect("the db check");
    let columns: Vec<&str> = db.split_whitespace().collect();
    // TIMEOUT 2s, RISE 1, FALL 3 (the retries), INTERVAL 10s.
    assert_eq!(columns[3..7], ["2s", "1", "3", "10s"], "{db}");

    // ...then run, its targets on loopback: db a TCP port, api.internal an
    // HTTPS server with a certificate of its own (trusted with --ca-file),
    // the socket in the scratch directory, and rounds every 300 ms
    // instead of 10 s.
    let db = Target::up();
    let cert = self_signed(&["localhost"]);
    let ca = s.write("ca.pem", &cert.cert_pem);
    let api = https_server("127.0.0.1:0", cert.identity, |_| ok("ok\n"));
    let socket = s.path("app.sock");
    let app = UnixListener::bind(&socket).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let run = sidecar
        .replace("tcp://db:5432", &format!("tcp://127.0.0.1:{}", db.port()))
        .replace(
            "https://api.internal/health",
            &format!(
                "https://localhost:{}/health --ca-file {}",
                api.port(),
                ca.display()
            ),
        )
        .replace("/run/app.sock", socket.to_str().unwrap())
        .replace("0.0.0.0:8080", &listen)
        .replace("--interval 10s", "--interval 300ms");
    let mut hb = s.spawn_command(shell(&s, &run));
    let addr = listen.parse().unwrap();
    wait_for("/ready to answer 200", LONG, || {
        std::net::TcpStream::connect(addr).is_ok() && get(addr, "/ready").status == 200
    });
    // The socket goes: three failures in a row, and heartbeat exits 1
    // with the reason, for the orchestrator to restart the pod.
    drop(app);
    fs::remove_file(&socket).unwrap();
    let status = hb.wait_exit(LONG).expect("heartbeat exits");
    let log = hb.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("failed (2 of 3 before unhealthy)"), "{log}");
    assert!(log.contains("\"script1\""), "{log}");
    drop(api);

    // The load-balancer helper: ports 5432, 8080 and 9000 moved to free
    // ones, app-ok a script that passes while a flag file exists.
    let lb = shown("heartbeat --check tcp://127.0.0.1:5432");
    let s = Scratch::new();
    let db = Target::up();
    let up = Arc::new(AtomicBool::new(true));
    let web = switchable(&up);
    let flag = s.write("app-is-ok", "");
    let app_ok = s.write(
        "app-ok",
        &format!("#!/bin/sh\ntest -e {}\n", flag.display()),
    );
    fs::set_permissions(&app_ok, fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let run = lb
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", db.port()))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", web.port()))
        .replace("/usr/local/bin/app-ok", app_ok.to_str().unwrap())
        .replace(":9000", &format!(":{port}"));
    let hb = s.spawn_command(shell(&s, &run));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for("GET / to answer 200", LONG, || {
        std::net::TcpStream::connect(addr).is_ok() && get(addr, "/").status == 200
    });
    fs::remove_file(&flag).unwrap();
    wait_for("GET / to answer 504", LONG, || get(addr, "/").status == 504);
    fs::write(&flag, "").unwrap();
    wait_for("GET / to answer 200 again", LONG, || {
        get(addr, "/").status == 200
    });
    up.store(false, Ordering::SeqCst);
    wait_for("GET / to answer 504 for the web check", LONG, || {
        get(addr, "/").status == 504
    });
    assert!(hb.stop().success());
}

#[test]
fn detaching_commands_run_as_written() {
    adopt_orphans();
    let layout = Layout::new(false);
    let lock = layout.root.join("lock");
    for (shown, as_run) in [
        ("heartbeat -d -c FILE", "heartbeat -d -c {root}/daemon.conf"),
        (
            "flock LOCK heartbeat -d …",
            "flock {root}/lock heartbeat -d -c {root}/daemon.conf",
        ),
    ] {
        assert!(entry(shown).is_some(), "{shown} is in the list");
        let out = layout.sh(&layout.map(as_run, None, None));
        assert_eq!(out.status.code(), Some(0), "{as_run}: {}", said(&out));
        let pidfile = layout.root.join("run/heartbeat/daemon.pid");
        let pid = read_number(&pidfile).expect("the daemon's pid");
        let mut daemon = Adopted::new(pid);
        assert!(crate::support::bin::alive(pid), "{shown}: the daemon runs");
        if shown.starts_with("flock") {
            // The launcher exited and released the lock; the daemon did
            // not keep it.
            let free = Command::new("flock")
                .arg("-n")
                .arg(&lock)
                .arg("true")
                .status()
                .unwrap();
            assert!(free.success(), "the daemon holds the lock of its launcher");
        }
        daemon.signal(Signal::SIGTERM);
        let status = daemon.wait_exit(LONG).expect("the daemon stops");
        assert_eq!(status.code(), Some(0));
        assert!(!pidfile.exists(), "a clean exit removes the pidfile");
    }
}

/// `contrib/nginx-failover/heartbeat.conf` for this test: the hooks, the
/// flag and the disk checked in `s`, the application and database on
/// loopback ports, the status server on a free one, logs on stderr instead
/// of syslog, no user to drop to, and rounds every second instead of 5.
fn nginx_failover_conf(s: &Scratch, app: u16, db: u16, listen: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/nginx-failover");
    let text = fs::read_to_string(repo.join("heartbeat.conf")).unwrap();
    let nf = s.path("nginx-failover");
    for expected in [
        "logfile = syslog\n",
        "user = heartbeat\n",
        "interval = 5\n",
        "listen = 127.0.0.1:8081\n",
        "http://127.0.0.1:8080/health",
        "port = 5432\n",
        "/var/www",
    ] {
        assert!(text.contains(expected), "{expected:?} in the example");
    }
    text.replace("logfile = syslog\n", "logfile = stderr\n")
        .replace("user = heartbeat\n", "")
        .replace("interval = 5\n", "interval = 1\n")
        .replace("listen = 127.0.0.1:8081\n", &format!("listen = {listen}\n"))
        .replace(
            "/etc/heartbeat/nginx-failover/",
            &format!("{}/", nf.display()),
        )
        .replace(
            "/var/lib/heartbeat/maintenance",
            s.path("state/maintenance").to_str().unwrap(),
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{app}"))
        .replace("port = 5432\n", &format!("port = {db}\n"))
        .replace("/var/www", s.dir().to_str().unwrap())
}

#[test]
fn the_nginx_failover_example_drains_the_node() {
    let s = Scratch::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/nginx-failover");
    let nf = s.path("nginx-failover");
    fs::create_dir_all(&nf).unwrap();
    fs::create_dir_all(s.path("state")).unwrap();
    let flag = s.path("state/maintenance");
    for hook in ["into-rotation.sh", "out-of-rotation.sh"] {
        fs::copy(repo.join(hook), nf.join(hook)).unwrap();
        fs::set_permissions(nf.join(hook), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let health = fs::read_to_string(repo.join("nginx-lb-health.conf"))
        .unwrap()
        .replace("/var/lib/heartbeat/maintenance", flag.to_str().unwrap());
    let health = s.write("nginx-failover/nginx-lb-health.conf", &health);

    let up = Arc::new(AtomicBool::new(true));
    let app = switchable(&up);
    let db = Target::up();
    let listen = format!("127.0.0.1:{}", free_port());
    let conf = s.write(
        "heartbeat.conf",
        &nginx_failover_conf(&s, app.port(), db.port(), &listen),
    );
    let conf_path = conf.to_str().unwrap();

    // `heartbeat -t -c /etc/heartbeat/heartbeat.conf` validates it.
    let out = shell(&s, &format!("heartbeat -t -c {conf_path}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    let nginx_port = free_port();
    let _nginx = crate::nginx::Nginx::serving(
        &s.path("nginx"),
        nginx_port,
        &format!("include {};", health.display()),
    );
    let lb = format!("127.0.0.1:{nginx_port}").parse().unwrap();
    let hb: Daemon = s.spawn_command(shell(&s, &format!("heartbeat -c {conf_path}")));
    wait_for("the node in rotation", LONG, || {
        hb.log_text()
            .contains("promotion of group \"web\" succeeded")
    });
    assert_eq!(get(lb, "/lb-health").status, 200);
    assert!(!flag.exists());

    // The application fails: three rounds later the node is out, nginx
    // answers the balancer 503, and the flag says why.
    up.store(false, Ordering::SeqCst);
    wait_for("the node out of rotation", LONG, || flag.exists());
    let reply = get(lb, "/lb-health");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "out of rotation\n")
    );
    let cat = entry("cat /var/lib/heartbeat/maintenance").unwrap().shown;
    let out = shell(
        &s,
        &cat.replace("/var/lib/heartbeat/maintenance", flag.to_str().unwrap()),
    )
    .output()
    .unwrap();
    let why = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(why.starts_with("out of rotation since "), "{why}");
    assert!(why.contains("group web: healthy -> unhealthy"), "{why}");
    assert!(why.contains("failed checks: app"), "{why}");
    // `heartbeat -c /etc/heartbeat/heartbeat.conf status` shows it.
    let out = shell(&s, &format!("heartbeat -c {conf_path} status"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("app"), "{}", said(&out));

    // It recovers: two rounds later the node is back.
    up.store(true, Ordering::SeqCst);
    wait_for("the node back in rotation", LONG, || !flag.exists());
    assert_eq!(get(lb, "/lb-health").status, 200);
    assert!(hb.stop().success());
}
