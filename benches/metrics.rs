//! How long one scrape of `/metrics` takes to encode for N checks, in each
//! format, against the crate's own OpenMetrics text encoder as the
//! reference: the text format 0.0.4 is written from the crate's Prometheus
//! data model, so it pays for building that model first. Prints figures;
//! asserts nothing.
//!
//! ```sh
//! cargo bench --bench metrics            # 1,000 and 10,000 checks
//! cargo bench --bench metrics -- 50000   # other sizes
//! ```
//!
//! Every check has one result and every group (one per 10 checks) one
//! transition and one action, so every series exists and has a value.

use std::time::{Duration, Instant};

use heartbeat::exec::process::ChildExit;
use heartbeat::model::{ActionKind, CheckKind, Health};
use heartbeat::status::metrics::{Format, Metrics};

const SCRAPES: usize = 5;

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
    println!("best of {SCRAPES} scrapes");
    println!(
        "{:>8}  {:>14}  {:>14}  {:>14}  {:>12}  {:>12}",
        "checks", "OpenMetrics", "text 0.0.4", "protobuf", "text bytes", "vs OM"
    );
    for n in sizes {
        let metrics = populated(n);
        let (om, _) = best(|| metrics.encode_as(Format::OpenMetrics).len());
        let (text, bytes) = best(|| metrics.encode_as(Format::Text).len());
        let (proto, _) = best(|| metrics.encode_as(Format::Protobuf).len());
        println!(
            "{n:>8}  {:>14}  {:>14}  {:>14}  {bytes:>12}  {:>11.0}%",
            format!("{:.1?}", om),
            format!("{:.1?}", text),
            format!("{:.1?}", proto),
            (text.as_secs_f64() / om.as_secs_f64() - 1.0) * 100.0
        );
    }
}

/// Metrics for `n` checks in `n / 10` groups, configured and fed.
fn populated(n: usize) -> Metrics {
    let groups = n.div_ceil(10);
    let mut text = String::from("[promotions]\n");
    for g in 0..groups {
        text += &format!("g{g} = true\n");
    }
    text += "[demotions]\n";
    for g in 0..groups {
        text += &format!("g{g} = true\n");
    }
    for c in 0..n {
        text += &format!(
            "[c{c}]\ntype = tcp\nhostname = 127.0.0.1\nport = {}\naction = g{}\n",
            1024 + c % 60000,
            c / 10
        );
    }
    let dir = std::path::Path::new("/");
    let config = heartbeat::config::parse(&text, &dir.join("bench.conf"), dir)
        .expect("a valid configuration")
        .config;
    let metrics = Metrics::new();
    metrics.configure(&config);
    for c in 0..n {
        let name = format!("c{c}");
        metrics.check_result(&name, CheckKind::Tcp, c % 7 != 0, Duration::from_micros(90));
        metrics.check_health(&name, Health::Healthy);
    }
    for g in 0..groups {
        let name = format!("g{g}");
        metrics.group_health(&name, Health::Healthy);
        metrics.transition(&name, Health::Unknown, Health::Healthy);
        let exit = ChildExit::Code(0);
        metrics.action(
            &name,
            ActionKind::Promotion,
            &exit,
            Duration::from_millis(3),
        );
    }
    metrics.round(Duration::from_millis(50), Duration::ZERO);
    metrics
}

/// The fastest of [`SCRAPES`] runs of `encode`, and what it returned.
fn best(mut encode: impl FnMut() -> usize) -> (Duration, usize) {
    let mut fastest = Duration::MAX;
    let mut out = 0;
    for _ in 0..SCRAPES {
        let start = Instant::now();
        out = encode();
        fastest = fastest.min(start.elapsed());
    }
    (fastest, out)
}
