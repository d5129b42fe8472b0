//! Fixtures of the operating tests (reloads, retries, the control socket,
//! the state file): hooks that record what they were told, a TCP target
//! the test can take down and bring back, and a poller that watches the
//! status server the way a load balancer does.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::bin::lines;
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
    /// Shared with the thread that drops connections.
    _listener: Arc<Mutex<Option<TcpListener>>>,
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
            _listener: listener,
            stop,
            drain: Some(drain),
        }
    }

    /// A check section probing it, with `extra` lines.
    pub fn check(&self, name: &str, group: &str, extra: &str) -> String {
        format!(
            "[{name}]\ntype = tcp\nhostname = 127.0.0.1\nport = {}\naction = {group}\n{extra}",
            self.port
        )
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
