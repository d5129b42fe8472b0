//! Fixtures of the operating tests (reloads, retries, the control socket,
//! the state file): hooks that record what they were told, a TCP target
//! the test can take down and bring back, a poller that watches the status
//! server the way a load balancer does, and a [`Node`]: a heartbeat with
//! one group, its status server and its control socket.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::bin::{Daemon, Scratch, free_port, lines};
use super::http::get;
use super::poll::wait_for;

/// Deadline for what should happen well within it on a loaded machine.
pub const LONG: Duration = Duration::from_secs(20);

/// A path as the configuration writes it.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `[promotions]` and `[demotions]` whose hooks append one line to `log`
/// per run: `promotion GROUP PREVIOUS REASON ATTEMPT`, from the
/// `HEARTBEAT_*` variables (`-` for one that is not set).
pub fn hooks(log: &Path, groups: &[&str]) -> String {
    let line = |kind: &str| {
        format!(
            "echo \"{kind} $HEARTBEAT_ACTION $HEARTBEAT_PREVIOUS_STATE ${{HEARTBEAT_REASON:--}} ${{HEARTBEAT_ATTEMPT:--}}\" >> {}",
            p(log)
        )
    };
    let mut out = String::from("[promotions]\n");
    for g in groups {
        out += &format!("{g} = {}\n", line("promotion"));
    }
    out += "[demotions]\n";
    for g in groups {
        out += &format!("{g} = {}\n", line("demotion"));
    }
    out
}

/// A script check section.
pub fn script(name: &str, command: &str, group: &str) -> String {
    format!("[{name}]\ntype = script\ncommand = {command}\naction = {group}\n")
}

/// The rounds a status server at `addr` has completed (`/status`).
pub fn rounds(addr: SocketAddr) -> u64 {
    let (_, status) = super::http::get_json(addr, "/status");
    status["rounds"].as_u64().expect("rounds in /status")
}

/// Waits until the status server at `addr` has completed `n` more rounds:
/// time for anything that would wrongly run to have run.
pub fn wait_more_rounds(addr: SocketAddr, n: u64) {
    let start = rounds(addr);
    wait_for(&format!("{n} more rounds"), LONG, || {
        rounds(addr) >= start + n
    });
}

/// Waits until `file` has at least `n` lines.
pub fn wait_lines(file: &Path, n: usize) {
    wait_for(&format!("{n} lines in {}", file.display()), LONG, || {
        lines(file).len() >= n
    });
}

/// A TCP port on loopback that the test opens and closes at will: a TCP
/// check of it passes while it is up and is refused while it is down. A
/// thread of its own drops the connections that come in.
pub struct Target {
    port: u16,
    listener: Arc<Mutex<Option<TcpListener>>>,
    stop: Arc<AtomicBool>,
    drain: Option<JoinHandle<()>>,
}

impl Target {
    /// A target that is up.
    pub fn up() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = Arc::new(Mutex::new(Some(listener)));
        let stop = Arc::new(AtomicBool::new(false));
        let drain = {
            let (listener, stop) = (Arc::clone(&listener), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some(l) = listener.lock().unwrap().as_ref() {
                        while l.accept().is_ok() {}
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Target {
            port,
            listener,
            stop,
            drain: Some(drain),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A check section probing it, with `extra` lines.
    pub fn check(&self, name: &str, group: &str, extra: &str) -> String {
        format!(
            "[{name}]\ntype = tcp\nhostname = 127.0.0.1\nport = {}\naction = {group}\n{extra}",
            self.port
        )
    }
}

impl Target {
    /// Closes the port: connections are refused.
    pub fn down(&self) {
        self.listener.lock().unwrap().take();
    }

    /// Opens the port again.
    pub fn back_up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the port again");
        listener.set_nonblocking(true).expect("non-blocking");
        *self.listener.lock().unwrap() = Some(listener);
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.drain.take() {
            let _ = t.join();
        }
    }
}

/// Polls `GET /ready` and `GET /` of a status server every 20 ms on a
/// thread of its own, recording every answer that is not 200, until
/// stopped.
pub struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(usize, Vec<String>)>>,
}

impl Poller {
    pub fn start(addr: SocketAddr) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let agent = super::http::agent();
            let (mut polls, mut bad) = (0, Vec::new());
            while !flag.load(Ordering::SeqCst) {
                for path in ["/ready", "/"] {
                    let url = format!("http://{addr}{path}");
                    polls += 1;
                    match agent.get(&url).call() {
                        Ok(r) if r.status() == 200 => {}
                        Ok(mut r) => bad.push(format!(
                            "{path}: {} {}",
                            r.status(),
                            r.body_mut().read_to_string().unwrap_or_default()
                        )),
                        Err(e) => bad.push(format!("{path}: {e}")),
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
            (polls, bad)
        });
        Poller {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops polling; returns how many requests were made and the answers
    /// that were not 200.
    pub fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("the poller")
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A heartbeat with group `web` fed by a TCP check of `target`, its status
/// server on a free port and its control socket next to its pidfile.
pub struct Node {
    pub s: Scratch,
    pub target: Target,
    pub conf: PathBuf,
    pub actions: PathBuf,
    pub listen: SocketAddr,
    pub hb: Daemon,
}

/// The configuration of a [`Node`], with `extra` lines in `[general]` and
/// `check` lines in the check's section.
pub fn node_conf(
    s: &Scratch,
    target: &Target,
    listen: SocketAddr,
    extra: &str,
    check: &str,
) -> String {
    format!(
        "[general]\ninterval = 200ms\nlisten = {listen}\npidfile = {}\n{extra}{}{}",
        p(&s.path("hb.pid")),
        hooks(&s.path("actions.log"), &["web"]),
        target.check("nginx", "web", check)
    )
}

impl Node {
    /// Started and promoted once.
    pub fn start(extra: &str) -> Node {
        let s = Scratch::new();
        let target = Target::up();
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let extra = extra.replace("DIR", p(s.dir()));
        let conf = s.write("hb.conf", &node_conf(&s, &target, listen, &extra, ""));
        let actions = s.path("actions.log");
        let hb = s.spawn(&["-c", p(&conf)]);
        wait_lines(&actions, 1);
        hb.wait_log("control socket on", LONG);
        let node = Node {
            s,
            target,
            conf,
            actions,
            listen,
            hb,
        };
        node.wait_ready(200);
        node
    }

    /// Runs `heartbeat -c FILE ARGS…` and returns its output.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["-c", p(&self.conf)];
        all.extend_from_slice(args);
        self.s.run(&all)
    }

    /// Waits until `GET /ready` answers `status`.
    pub fn wait_ready(&self, status: u16) {
        wait_for(&format!("/ready to answer {status}"), LONG, || {
            get(self.listen, "/ready").status == status
        });
    }

    pub fn ran(&self) -> Vec<String> {
        lines(&self.actions)
    }

    /// Stops it (SIGTERM), starts it again on the same file, and waits
    /// for its control socket; returns what the first one logged.
    pub fn restart(&mut self) -> String {
        self.hb.signal(Signal::SIGTERM);
        let status = self.hb.wait_exit(LONG).expect("heartbeat stops");
        let log = self.hb.log_text();
        assert_eq!(status.code(), Some(0), "{log}");
        self.hb = self.s.spawn(&["-c", p(&self.conf)]);
        self.hb.wait_log("control socket on", LONG);
        log
    }
}

/// Its standard output.
pub fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Its standard error.
pub fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
