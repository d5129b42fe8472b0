//! How long one round of N checks takes through the whole engine (as
//! `--once` runs it: TCP checks on the network thread), against a bare loop
//! of blocking TCP connects on a pool of 64 threads, and how much memory
//! the process holds. Prints figures; asserts nothing. The figures of the
//! daemon under load, against monit, are `benches/isolation.rs`.
//!
//! ```sh
//! cargo bench --bench round            # 1,000 and 10,000 TCP checks
//! cargo bench --bench round -- 50000   # other sizes
//! ```
//!
//! Every check connects to one loopback listener that accepts and closes,
//! so the figures measure heartbeat, not a network.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use heartbeat::engine::{Engine, Options};
use heartbeat::model::{CheckSpec, Config, General, GroupSpec, Probe};
use rayon::prelude::*;

const THREADS: usize = 64;
const ROUNDS: usize = 3;
/// Checks are spread over this many listening ports, so that tens of
/// thousands of connects per round do not run out of ephemeral ports
/// towards one destination.
const LISTENERS: usize = 16;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let targets: Vec<SocketAddr> = (0..LISTENERS).map(|_| listener()).collect();
    println!("pool of {THREADS} threads, best of {ROUNDS} rounds, {LISTENERS} loopback listeners");
    println!(
        "{:>8}  {:>14}  {:>14}  {:>10}  {:>12}",
        "checks", "engine round", "bare connects", "overhead", "peak RSS"
    );
    for n in sizes {
        let engine = best(|| engine_round(n, &targets));
        let bare = best(|| bare_round(n, &targets));
        println!(
            "{n:>8}  {:>12.1}ms  {:>12.1}ms  {:>9.0}%  {:>9} KiB",
            ms(engine),
            ms(bare),
            (ms(engine) / ms(bare) - 1.0) * 100.0,
            peak_rss_kib()
        );
    }
}

/// A listener that accepts and drops connections on four threads, with a
/// deep backlog: std's backlog of 128 overflows under 64 concurrent
/// connectors, and the kernel then retries SYNs after a second, which would
/// measure the listener instead of heartbeat.
fn listener() -> SocketAddr {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, socket,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    listen(&fd, Backlog::new(4096).expect("backlog")).expect("listen");
    let listener = TcpListener::from(fd);
    let addr = listener.local_addr().expect("address");
    for _ in 0..4 {
        let listener = listener.try_clone().expect("clone listener");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
    }
    addr
}

/// The fastest of a few runs: the least disturbed by the rest of the
/// machine.
fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS).map(|_| f()).min().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One engine round of `n` TCP checks (build excluded, actions included).
fn engine_round(n: usize, targets: &[SocketAddr]) -> Duration {
    let checks = (0..n)
        .map(|i| CheckSpec {
            name: format!("c{i}"),
            probe: Probe::tcp(
                targets[i % targets.len()].ip().to_string(),
                targets[i % targets.len()].port(),
            ),
            timeout: Duration::from_secs(5),
            groups: vec![format!("g{}", i % 100)],
            rise: 1,
            fall: 1,
            interval: None,
            fast_interval: None,
        })
        .collect();
    let groups = (0..100.min(n))
        .map(|i| GroupSpec {
            name: format!("g{i}"),
            promotion: "true".into(),
            demotion: "true".into(),
        })
        .collect();
    let config = Config {
        path: None,
        general: General {
            threads: THREADS,
            ..General::default()
        },
        groups,
        checks,
        cluster: None,
    };
    let engine = Engine::new(
        config,
        Options {
            dry_run: true,
            ..Options::default()
        },
    )
    .expect("engine");
    let start = Instant::now();
    engine.run_once().expect("a round");
    start.elapsed()
}

/// `n` plain connects on a rayon pool of the same size.
fn bare_round(n: usize, targets: &[SocketAddr]) -> Duration {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("pool");
    let start = Instant::now();
    pool.install(|| {
        (0..n).into_par_iter().for_each(|i| {
            let addr = targets[i % targets.len()];
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(5));
        })
    });
    start.elapsed()
}

/// Peak resident memory of this process (`VmHWM` in /proc/self/status).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
