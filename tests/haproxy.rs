//! End to end with a real load balancer: HAProxy probes heartbeat's status
//! server with its defaults (`option httpchk` and nothing else, which sends
//! `OPTIONS / HTTP/1.0`), marks the node UP while heartbeat's check of its
//! target passes, and DOWN once the target fails.
//!
//! Needs the `haproxy` binary (Debian package `haproxy`, installed by
//! `.ci/run`). HAProxy runs in the foreground on free loopback ports with a
//! stats socket in the test's directory; it is killed and reaped on drop.

use crate::support::bin::{Scratch, free_port, wait_for};
use crate::support::daemon::{start, with_hooks};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn haproxy_binary() -> PathBuf {
    [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("haproxy not found: install the Debian package `haproxy` (.ci/run does)")
}

/// HAProxy in the foreground, killed and reaped on drop.
struct Haproxy {
    child: Child,
    socket: PathBuf,
}

impl Haproxy {
    /// Balances a frontend on a free port over one server, `node`, at
    /// `backend`, checked every 200 ms with a bare `option httpchk`.
    fn start(dir: &Path, backend: std::net::SocketAddr) -> Haproxy {
        let socket = dir.join("haproxy.sock");
        let config = dir.join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n\
                 \x20   stats socket {sock} mode 600 level admin\n\
                 defaults\n\
                 \x20   mode http\n\
                 \x20   timeout connect 2s\n\
                 \x20   timeout client 5s\n\
                 \x20   timeout server 5s\n\
                 \x20   timeout check 2s\n\
                 listen app\n\
                 \x20   bind 127.0.0.1:{port}\n\
                 \x20   option httpchk\n\
                 \x20   server node {backend} check inter 200ms fall 1 rise 1\n",
                sock = socket.display(),
                port = free_port(),
            ),
        )
        .unwrap();
        let child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("haproxy.log")).unwrap(),
            ))
            .spawn()
            .expect("start haproxy");
        let haproxy = Haproxy { child, socket };
        wait_for("the HAProxy stats socket", LONG, || {
            UnixStream::connect(&haproxy.socket).is_ok()
        });
        haproxy
    }

    /// The `status`, `check_status` and `check_code` columns of `node` in
    /// `show stat`, e.g. `("UP", "L7OK", "200")`.
    fn node(&self) -> (String, String, String) {
        let mut stream = UnixStream::connect(&self.socket).expect("the stats socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"show stat\n").unwrap();
        let mut csv = String::new();
        stream.read_to_string(&mut csv).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let row: Vec<&str> = lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|r| r.first() == Some(&"app") && r.get(1) == Some(&"node"))
            .unwrap_or_else(|| panic!("no app/node in:\n{csv}"));
        let get = |name: &str| row[column(name)].to_owned();
        (get("status"), get("check_status"), get("check_code"))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Regression: HAProxy's default health check is `OPTIONS / HTTP/1.0`, to
/// which heartbeat answered 405, so HAProxy held the node DOWN forever.
#[test]
fn haproxy_with_a_bare_httpchk_follows_the_health_of_the_node() {
    let s = Scratch::new();
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = target.local_addr().unwrap().port();
    let checks = format!(
        "[app]\ntype = tcp\nhostname = 127.0.0.1\nport = {target_port}\ntimeout = 1\naction = web\n"
    );
    let conf = format!(
        "interval = 200ms\n{}",
        with_hooks(&[("web", "true", "true")], &checks)
    );
    let (_hb, addr) = start(&s, &conf);
    let haproxy = Haproxy::start(s.dir(), addr);

    wait_for("HAProxy to mark the node UP", LONG, || {
        haproxy.node() == ("UP".into(), "L7OK".into(), "200".into())
    });

    // The target fails: heartbeat answers 503 and HAProxy takes the node
    // out.
    drop(target);
    wait_for("HAProxy to mark the node DOWN", LONG, || {
        haproxy.node() == ("DOWN".into(), "L7STS".into(), "503".into())
    });
}
