//! The figures of a health-check daemon under load, side by side with a
//! bare loop and with monit, each a process of its own measured from
//! outside (`/proc/PID/stat` for CPU time, `/proc/PID/status` for memory):
//!
//! - 1,000 HTTP checks every second: CPU per check and peak RSS;
//! - 1,000 TCP checks every second: the same, and against a bare connect
//!   loop;
//! - 10,000 TCP checks every second: the share of a core and peak RSS;
//! - 500 HTTP checks of which 100 go to a peer that accepts and never
//!   answers (`timeout = 2`, `interval = 1`): how often the 400 healthy
//!   targets are still checked, and how long `--once` takes.
//!
//! ```sh
//! cargo bench --bench isolation             # everything (about 2 minutes)
//! cargo bench --bench isolation -- tcp      # the scenarios whose name has "tcp"
//! ```
//!
//! The targets are loopback servers of this process (a small tokio server
//! on one thread), so what is measured is the checker, not a network. The
//! bare loop is this same program run as `isolation --bare KIND N`: one
//! thread doing `N` blocking connects (and HTTP exchanges) a second, which
//! is the least any checker can spend. monit (`/usr/bin/monit`, when
//! installed) checks the same targets with `set daemon 1`; it checks its
//! services one after another, so its count per second is what it managed.
//! Prints figures, then each goal of the project's performance section
//! with the figure and `met` or `MISSED`; asserts nothing.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long each figure is measured, after a warm-up.
const WINDOW: Duration = Duration::from_secs(8);
const WARMUP: Duration = Duration::from_secs(3);
/// Loopback listeners per kind of target: tens of thousands of connects a
/// second to one address and port would run out of ephemeral ports.
const LISTENERS: usize = 16;
const MONIT: &str = "/usr/bin/monit";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--bare") {
        bare_loop(&args[1], args[2].parse().expect("count"), &args[3..]);
    }
    if args.first().map(String::as_str) == Some("--serve") {
        // Targets and a configuration for a heartbeat started by hand (to
        // profile it): `--serve KIND N SECONDS [STALLED]`.
        let targets = Targets::start();
        let n = args[2].parse().expect("count");
        let stalled = args
            .get(4)
            .map(|s| (s.parse().expect("count"), targets.silent));
        let hb = Heartbeat::config(&args[1], n, &targets.addrs(&args[1]), stalled);
        println!("{}", hb.path.display());
        let counter = targets.counter(&args[1]);
        for _ in 0..args[3].parse::<u64>().expect("seconds") {
            let before = counter.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(1));
            eprintln!("{} a second", counter.load(Ordering::SeqCst) - before);
        }
        return;
    }
    let filter: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    let targets = Targets::start();
    let monit = Path::new(MONIT).exists();
    println!(
        "each figure over {}s after {}s of warm-up; CPU is user + system time of the process",
        WINDOW.as_secs(),
        WARMUP.as_secs()
    );
    println!();
    println!(
        "{:<34}  {:>12}  {:>14}  {:>12}  {:>10}",
        "scenario", "checks/s", "CPU per check", "CPU (cores)", "peak RSS"
    );
    let mut verdicts = Vec::new();
    for (kind, n) in [("http", 1_000), ("tcp", 1_000), ("tcp", 10_000)] {
        let name = format!("{kind} x{n}");
        if !wanted(&name) {
            continue;
        }
        let counter = targets.counter(kind);
        let addrs = targets.addrs(kind);
        let hb = Heartbeat::config(kind, n, &addrs, None);
        let ours = row(&format!("{name}: heartbeat"), measure(hb.spawn(), counter));
        let loop_ = row(
            &format!("{name}: bare loop"),
            measure(bare(kind, n, &addrs), counter),
        );
        let theirs = monit.then(|| {
            let m = Monit::config(kind, n, &addrs);
            row(&format!("{name}: monit"), measure(m.spawn(), counter))
        });
        verdicts.extend(compare(&name, &ours, &loop_, theirs.as_ref()));
    }
    if wanted("stalled") {
        verdicts.extend(stalled(&targets));
    }
    println!();
    println!("against the goals:");
    for line in verdicts {
        println!("  {line}");
    }
}

/// The goals of one scenario, each as `what: figure vs goal: met|MISSED`.
fn compare(name: &str, ours: &Figures, bare: &Figures, monit: Option<&Figures>) -> Vec<String> {
    let mut out = Vec::new();
    let mut goal = |what: String, met: bool| {
        out.push(format!(
            "{name}: {what}: {}",
            if met { "met" } else { "MISSED" }
        ));
    };
    let ratio = ours.cpu_per_check_us() / bare.cpu_per_check_us();
    if name == "tcp x1000" {
        goal(
            format!("CPU per check {ratio:.2}x the bare loop's (goal: at most 1.2x)"),
            ratio <= 1.2,
        );
    }
    if name == "tcp x10000" {
        goal(
            format!("{:.3} of a core (goal: under 0.5)", ours.cores()),
            ours.cores() < 0.5,
        );
        let mib = ours.peak_rss_mib();
        goal(
            format!("peak RSS {mib:.1} MiB (goal: at most 24)"),
            mib <= 24.0,
        );
    }
    if let Some(m) = monit.filter(|_| name.ends_with("x1000")) {
        let (cpu, theirs) = (ours.cpu_per_check_us(), m.cpu_per_check_us());
        goal(
            format!("CPU per check {cpu:.1} us, monit's {theirs:.1} us (goal: at most monit's)"),
            cpu <= theirs,
        );
        let (mib, theirs) = (ours.peak_rss_mib(), m.peak_rss_mib());
        goal(
            format!("peak RSS {mib:.1} MiB, monit's {theirs:.1} MiB (goal: at most monit's)"),
            mib <= theirs,
        );
    }
    out
}

/// 500 HTTP checks, 100 of them to a peer that never answers: the rate
/// of the 400 healthy ones, and how long `--once` takes; returns the
/// verdicts against the goals.
fn stalled(targets: &Targets) -> Vec<String> {
    let name = "http x500, 100 stalled";
    let healthy = targets.addrs("http");
    let silent = targets.silent;
    let hb = Heartbeat::config("http", 400, &healthy, Some((100, silent)));
    let figures = row(
        &format!("{name}: heartbeat"),
        measure(hb.spawn(), &targets.http),
    );
    let start = Instant::now();
    let status = Command::new(heartbeat())
        .args(["--once", "-c"])
        .arg(&hb.path)
        .stderr(Stdio::null())
        .status()
        .expect("run heartbeat --once");
    let took = start.elapsed().as_secs_f64();
    println!(
        "{:<34}  --once took {took:.2}s (timeout 2s), exit {}",
        format!("{name}: heartbeat"),
        status.code().unwrap_or(-1)
    );
    let verdict =
        |what: String, met: bool| format!("{name}: {what}: {}", if met { "met" } else { "MISSED" });
    vec![
        verdict(
            format!("healthy checked {:.0}/s (goal: at least 380)", figures.rate),
            figures.rate >= 380.0,
        ),
        verdict(
            format!("--once {took:.2}s (goal: at most timeout + 0.5 s = 2.5 s)"),
            took <= 2.5,
        ),
    ]
}

/// Prints one row of figures, and hands them back.
fn row(name: &str, f: Figures) -> Figures {
    println!(
        "{name:<34}  {:>12.0}  {:>11.1} us  {:>12.3}  {:>6.1} MiB",
        f.rate,
        f.cpu_per_check_us(),
        f.cores(),
        f.peak_rss_mib()
    );
    f
}

/// What one process did over the measurement window.
struct Figures {
    /// Checks a second, counted by the targets.
    rate: f64,
    /// CPU seconds over the window.
    cpu: f64,
    /// Peak resident memory of the process.
    peak_rss_kib: u64,
}

impl Figures {
    fn cpu_per_check_us(&self) -> f64 {
        if self.rate == 0.0 {
            return f64::NAN;
        }
        self.cpu / (self.rate * WINDOW.as_secs_f64()) * 1e6
    }

    fn cores(&self) -> f64 {
        self.cpu / WINDOW.as_secs_f64()
    }

    fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

/// Lets `child` warm up, measures it over [`WINDOW`], then stops it.
fn measure(mut child: Child, counter: &AtomicU64) -> Figures {
    let pid = child.id();
    std::thread::sleep(WARMUP);
    let (c0, n0, t0) = (
        cpu_seconds(pid),
        counter.load(Ordering::SeqCst),
        Instant::now(),
    );
    std::thread::sleep(WINDOW);
    let (c1, n1, t1) = (
        cpu_seconds(pid),
        counter.load(Ordering::SeqCst),
        Instant::now(),
    );
    let peak_rss_kib = peak_rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    Figures {
        rate: (n1 - n0) as f64 / (t1 - t0).as_secs_f64(),
        cpu: c1 - c0,
        peak_rss_kib,
    }
}

/// User plus system CPU seconds of process `pid` and its reaped children
/// (fields 14–17 of /proc/PID/stat, in clock ticks).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    fields.iter().sum::<u64>() as f64 / ticks
}

/// `VmHWM` of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn heartbeat() -> &'static str {
    env!("CARGO_BIN_EXE_heartbeat")
}

/// A heartbeat configuration file.
struct Heartbeat {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Heartbeat {
    /// `n` checks of `kind` spread over `addrs`, every second, in 100
    /// groups; with `stalled`, that many more HTTP checks to that address.
    fn config(
        kind: &str,
        n: usize,
        addrs: &[SocketAddr],
        stalled: Option<(usize, SocketAddr)>,
    ) -> Heartbeat {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut text = String::from("[general]\ninterval = 1\nloglevel = error\n");
        text += "[promotions]\n";
        for g in 0..100 {
            let _ = writeln!(text, "g{g} = true");
        }
        text += "[demotions]\n";
        for g in 0..100 {
            let _ = writeln!(text, "g{g} = true");
        }
        text += "[DEFAULT]\ntimeout = 2\n";
        let mut targets: Vec<SocketAddr> = (0..n).map(|i| addrs[i % addrs.len()]).collect();
        if let Some((count, addr)) = stalled {
            targets.extend(std::iter::repeat_n(addr, count));
        }
        for (i, addr) in targets.iter().enumerate() {
            let url = match kind {
                "http" => format!("http://{addr}/"),
                _ => format!("tcp://{addr}"),
            };
            let _ = writeln!(text, "[c{i}]\nurl = {url}\naction = g{}", i % 100);
        }
        let path = dir.path().join("heartbeat.conf");
        std::fs::write(&path, text).expect("write configuration");
        Heartbeat { _dir: dir, path }
    }

    fn spawn(&self) -> Child {
        Command::new(heartbeat())
            .arg("-c")
            .arg(&self.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start heartbeat")
    }
}

/// A monit control file for the same checks.
struct Monit {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Monit {
    fn config(kind: &str, n: usize, addrs: &[SocketAddr]) -> Monit {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let mut text = format!(
            "set daemon 1\nset logfile {d}/monit.log\nset idfile {d}/id\nset statefile {d}/state\nset pidfile {d}/pid\n"
        );
        for i in 0..n {
            let addr = addrs[i % addrs.len()];
            let protocol = if kind == "http" { " protocol http" } else { "" };
            let _ = writeln!(
                text,
                "check host c{i} with address {}\n  if failed port {}{protocol} with timeout 2 seconds then alert",
                addr.ip(),
                addr.port()
            );
        }
        let path = dir.path().join("monitrc");
        std::fs::write(&path, text).expect("write monitrc");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Monit { dir, path }
    }

    fn spawn(&self) -> Child {
        Command::new(MONIT)
            .arg("-I")
            .arg("-c")
            .arg(&self.path)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start monit")
    }
}

/// This program as the bare loop: `n` checks of `kind` a second.
fn bare(kind: &str, n: usize, addrs: &[SocketAddr]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args(["--bare", kind, &n.to_string()]);
    cmd.args(addrs.iter().map(ToString::to_string));
    cmd.stdout(Stdio::null())
        .spawn()
        .expect("start the bare loop")
}

/// One thread, `n` blocking connects (and for `http` one exchange) every
/// second, round after round, as a minimal checker would.
fn bare_loop(kind: &str, n: usize, addrs: &[String]) -> ! {
    let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().expect("address")).collect();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    for round in 1u32.. {
        for i in 0..n {
            let addr = addrs[i % addrs.len()];
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
                continue;
            };
            if kind == "http" {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                while matches!(s.read(&mut buf), Ok(k) if k > 0) {}
            }
        }
        let next = start + Duration::from_secs(1) * round;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    unreachable!()
}

/// The loopback targets: HTTP servers, TCP listeners that accept and
/// close, and one HTTP peer that accepts and never answers; each counts
/// what it served.
struct Targets {
    http: Arc<AtomicU64>,
    tcp: Arc<AtomicU64>,
    http_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    silent: SocketAddr,
}

impl Targets {
    fn start() -> Targets {
        let http = Arc::new(AtomicU64::new(0));
        let tcp = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (h, t) = (Arc::clone(&http), Arc::clone(&tcp));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut http_addrs = Vec::new();
                let mut tcp_addrs = Vec::new();
                for i in 0..LISTENERS {
                    let ip = format!("127.0.0.{}", i + 1);
                    http_addrs.push(serve(&ip, Arc::clone(&h), true).await);
                    tcp_addrs.push(serve(&ip, Arc::clone(&t), false).await);
                }
                let silent = silent().await;
                tx.send((http_addrs, tcp_addrs, silent)).expect("send");
                std::future::pending::<()>().await;
            });
        });
        let (http_addrs, tcp_addrs, silent) = rx.recv().expect("targets started");
        Targets {
            http,
            tcp,
            http_addrs,
            tcp_addrs,
            silent,
        }
    }

    fn counter(&self, kind: &str) -> &AtomicU64 {
        if kind == "http" {
            &self.http
        } else {
            &self.tcp
        }
    }

    fn addrs(&self, kind: &str) -> Vec<SocketAddr> {
        if kind == "http" {
            self.http_addrs.clone()
        } else {
            self.tcp_addrs.clone()
        }
    }
}

/// A listener on `ip` with a deep backlog: accepts, counts, and for HTTP
/// reads the request head and answers 200.
async fn serve(ip: &str, count: Arc<AtomicU64>, http: bool) -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket
        .bind(format!("{ip}:0").parse().expect("address"))
        .expect("bind");
    let listener = socket.listen(4096).expect("listen");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            if !http {
                count.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut head = Vec::with_capacity(256);
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                if stream.write_all(RESPONSE).await.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    addr
}

/// An HTTP peer that accepts and never answers, holding every connection.
async fn silent() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
            held.retain(|s| s.peer_addr().is_ok());
        }
    });
    addr
}
