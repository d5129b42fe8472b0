//! End to end on a real web server: nginx serves a health page on a free
//! port with its own prefix; heartbeat watches it from a configuration
//! file in the foreground; the test stops and restarts nginx and asserts
//! that the demotion and the promotion ran once each, in order, each
//! within interval + timeout of the change.
//!
//! Needs the `nginx` binary (Debian package `nginx`, installed by
//! `.ci/run`).

use crate::support::bin as support;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Scratch, free_port, lines, wait_for};

const INTERVAL: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(1);
/// Scheduling slack on a shared 2-core machine: the hook itself, process
/// start-up, the test's 20 ms polling.
const SLACK: Duration = Duration::from_millis(1500);

pub fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx not found: install the Debian package `nginx` (.ci/run does)")
}

/// nginx in the foreground with its own prefix, killed and reaped on drop.
pub struct Nginx {
    child: Child,
}

impl Nginx {
    /// nginx on 127.0.0.1:`port`, serving `/health` (200 `ok`) and 404
    /// elsewhere.
    fn start(prefix: &Path, port: u16) -> Nginx {
        Nginx::serving(
            prefix,
            port,
            "location = /health { default_type text/plain; return 200 \"ok\\n\"; }",
        )
    }

    /// nginx on 127.0.0.1:`port` with `server` (directives of its server
    /// block) before a 404 for every other path.
    pub fn serving(prefix: &Path, port: u16, server: &str) -> Nginx {
        fs::create_dir_all(prefix.join("logs")).unwrap();
        fs::write(
            prefix.join("nginx.conf"),
            format!(
                "daemon off;\n\
                 master_process off;\n\
                 pid {p}/nginx.pid;\n\
                 error_log {p}/logs/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n\
                   access_log off;\n\
                   client_body_temp_path {p}/body;\n\
                   proxy_temp_path {p}/proxy;\n\
                   fastcgi_temp_path {p}/fastcgi;\n\
                   uwsgi_temp_path {p}/uwsgi;\n\
                   scgi_temp_path {p}/scgi;\n\
                   server {{\n\
                     listen 127.0.0.1:{port};\n\
                     {server}\n\
                     location / {{ return 404; }}\n\
                   }}\n\
                 }}\n",
                p = prefix.display()
            ),
        )
        .unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        wait_for("nginx to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nginx { child }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nginx_going_down_and_up_demotes_then_promotes_once_each() {
    let s = Scratch::new();
    let port = free_port();
    let prefix = s.path("nginx");
    let log = s.path("actions.log");
    let conf = s.write(
        "heartbeat.conf",
        &format!(
            "[general]\n\
             interval = {interval}ms\n\
             loglevel = debug\n\
             [promotions]\n\
             web = echo \"promotion $HEARTBEAT_PREVIOUS_STATE\" >> {log}\n\
             [demotions]\n\
             web = echo \"demotion $HEARTBEAT_PREVIOUS_STATE $HEARTBEAT_FAILED_CHECKS\" >> {log}\n\
             [DEFAULT]\n\
             action = web\n\
             timeout = {timeout}\n\
             [nginx-health]\n\
             url = http://127.0.0.1:{port}/health\n\
             expect_body = ok\n",
            interval = INTERVAL.as_millis(),
            timeout = TIMEOUT.as_secs(),
            log = log.display()
        ),
    );

    let nginx = Nginx::start(&prefix, port);
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    let bound = INTERVAL + TIMEOUT + SLACK;
    wait_for("the start-up promotion", bound, || lines(&log).len() == 1);
    assert_eq!(lines(&log), ["promotion unknown"]);

    drop(nginx);
    let down = Instant::now();
    wait_for("the demotion", bound, || lines(&log).len() == 2);
    let took = down.elapsed();
    assert_eq!(
        lines(&log),
        ["promotion unknown", "demotion healthy nginx-health"]
    );
    assert!(
        took <= bound,
        "demotion {took:?} after nginx stopped; bound {bound:?}"
    );
    hb.wait_log("connection refused", bound);

    let _nginx = Nginx::start(&prefix, port);
    let up = Instant::now();
    wait_for("the promotion", bound, || lines(&log).len() == 3);
    let took = up.elapsed();
    assert!(
        took <= bound,
        "promotion {took:?} after nginx restarted; bound {bound:?}"
    );

    // Four more rounds: nothing else may run while the state holds.
    let passes = |text: String| text.matches("nginx-health\" (http").count();
    let seen = passes(hb.log_text());
    wait_for("four more rounds", bound * 4, || {
        passes(hb.log_text()) >= seen + 4
    });
    assert_eq!(
        lines(&log),
        [
            "promotion unknown",
            "demotion healthy nginx-health",
            "promotion unhealthy"
        ]
    );
    let text = hb.log_text();
    assert!(text.contains("group \"web\" is unhealthy"), "{text}");
    assert!(hb.stop().success());
}
