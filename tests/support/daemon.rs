//! Starting the real binary the way most tests do: with a status server on
//! a port that may be taken between the moment it was found free and the
//! moment heartbeat binds it.

use std::time::Duration;

use super::bin::{Daemon, Scratch, free_port, wait_for};

/// Deadline for heartbeat to say whether it listens.
const LONG: Duration = Duration::from_secs(20);

/// Starts heartbeat with `args(port)` for a free port and waits until its
/// status server says it listens (`status server listening on`); returns
/// it and the port.
///
/// The port was free a moment before, but another test may take it
/// meanwhile, as a listener or as the source port of one of its
/// connections (which keeps `0.0.0.0:PORT` from being bound too): when
/// heartbeat says `cannot listen on`, it is stopped and another port
/// tried, three times in all.
pub fn listening(s: &Scratch, args: impl Fn(u16) -> Vec<String>) -> (Daemon, u16) {
    for _ in 0..3 {
        let port = free_port();
        let args = args(port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut hb = s.spawn(&args);
        wait_for(&format!("heartbeat to listen on port {port}"), LONG, || {
            let log = hb.log_text();
            log.contains("status server listening on") || log.contains("cannot listen on")
        });
        if hb.log_text().contains("status server listening on") {
            return (hb, port);
        }
        hb.wait_exit(LONG);
    }
    panic!("no free port for the status server in three tries");
}
