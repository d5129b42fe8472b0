//! Starting the real binary the way most tests do: configurations built
//! from a few parts ([`with_hooks`], [`script`]), and a status server on a
//! port that may be taken between the moment it was found free and the
//! moment heartbeat binds it ([`listening`], [`launch`], [`start`]).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use super::bin::{Daemon, Scratch, free_port, wait_for};

/// A path as a command-line argument or a configuration value.
///
/// # Panics
/// When it is not UTF-8 (scratch paths always are).
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// What a finished run wrote to standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The rest of a configuration after `[general]`: `[promotions]` and
/// `[demotions]` from `(group, promotion, demotion)`, then `checks`.
pub fn with_hooks(groups: &[(&str, &str, &str)], checks: &str) -> String {
    let mut out = String::from("[promotions]\n");
    for (group, promotion, _) in groups {
        out += &format!("{group} = {promotion}\n");
    }
    out += "[demotions]\n";
    for (group, _, demotion) in groups {
        out += &format!("{group} = {demotion}\n");
    }
    out + checks
}

/// A script check section: `[name]` running `command`, feeding `group`.
pub fn script(name: &str, command: &str, group: &str) -> String {
    format!("[{name}]\ntype = script\ncommand = {command}\naction = {group}\n")
}

/// Writes `hb.conf` with `listen` on a free port followed by `rest` (which
/// continues `[general]`), starts heartbeat on it, and waits until its
/// status server listens.
pub fn start(s: &Scratch, rest: &str) -> (Daemon, SocketAddr) {
    launch(s, |addr| {
        let conf = s.write(
            "hb.conf",
            &format!("[general]\nlisten = {addr}\n{}", rest.trim_start()),
        );
        vec!["-c".into(), p(&conf).into()]
    })
}

/// Starts heartbeat with the arguments `args` gives for a free loopback
/// address, and waits until its status server listens there (see
/// [`listening`]).
pub fn launch(s: &Scratch, args: impl Fn(SocketAddr) -> Vec<String>) -> (Daemon, SocketAddr) {
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let (hb, port) = listening(s, |port| args(at(port)));
    (hb, at(port))
}

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
