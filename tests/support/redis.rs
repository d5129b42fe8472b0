//! A real Redis (`redis-server`, Debian package `redis-server`, installed
//! by `.ci/run`) on a free loopback port, without persistence, killed and
//! reaped on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::bin::free_port;
use super::poll::wait_for;

/// A running `redis-server`.
pub struct Redis {
    child: Child,
    port: u16,
}

fn redis_binary() -> PathBuf {
    [
        "/usr/bin/redis-server",
        "/usr/sbin/redis-server",
        "/usr/local/bin/redis-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("redis-server not found: install the Debian package `redis-server` (.ci/run does)")
}

/// Whether a Redis answers `PING` on `port`.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl Redis {
    /// Starts Redis on a free port of 127.0.0.1 and waits until it
    /// answers.
    pub fn start() -> Redis {
        let port = free_port();
        let child = Command::new(redis_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", &std::env::temp_dir().display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut redis = Redis { child, port };
        wait_for(
            "redis-server to answer PING",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = redis.child.try_wait() {
                    panic!("redis-server exited at start-up: {status}");
                }
                answers(port)
            },
        );
        redis
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
