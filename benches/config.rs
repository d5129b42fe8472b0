//! How long reading and validating a large configuration takes, against
//! Python 3's `configparser` reading the same text (`read_string`, no
//! validation at all). Prints figures; asserts nothing.
//!
//! ```sh
//! cargo bench --bench config            # 100,000 keys in several shapes
//! cargo bench --bench config -- 500000  # other sizes
//! ```
//!
//! Shapes: one check section with N unknown keys (every one an error), a
//! `[DEFAULT]` of N values referred to by `%(name)s`, N/2 action groups fed
//! by one check, and N/3 check sections of three keys each.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 3;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    println!("best of {RUNS} runs");
    println!(
        "{:>8}  {:<28} {:>10}  {:>12}  {:>14}",
        "keys", "shape", "bytes", "heartbeat", "python3 read"
    );
    for n in sizes {
        for (shape, text) in shapes(n) {
            let ours = best(|| {
                // Errors are expected in some shapes: the time is the point.
                let _ = heartbeat::config::parse(&text, Path::new("bench.conf"), Path::new("/"));
            });
            let python = python(&text);
            println!(
                "{n:>8}  {shape:<28} {:>10}  {:>10.1}ms  {:>14}",
                text.len(),
                ms(ours),
                python.map_or("n/a".into(), |d| format!("{:.1}ms", ms(d)))
            );
        }
    }
}

fn shapes(n: usize) -> Vec<(&'static str, String)> {
    let head = "[promotions]\nweb = true\n[demotions]\nweb = true\n";
    let mut unknown = format!("{head}[c]\ntype = script\naction = web\ncommand = true\n");
    for i in 0..n {
        unknown.push_str(&format!("k{i} = {i}\n"));
    }
    let mut defaults = format!("{head}[DEFAULT]\n");
    for i in 0..n {
        defaults.push_str(&format!("v{i} = value {i}\n"));
    }
    let refs: Vec<String> = (0..n).step_by(1000).map(|i| format!("%(v{i})s")).collect();
    defaults.push_str(&format!(
        "[c]\ntype = script\naction = web\ncommand = echo {}\n",
        refs.join(" ")
    ));
    let groups = n / 2;
    let mut grouped = String::from("[promotions]\n");
    for i in 0..groups {
        grouped.push_str(&format!("g{i} = /usr/bin/up {i}\n"));
    }
    grouped.push_str("[demotions]\n");
    for i in 0..groups {
        grouped.push_str(&format!("g{i} = /usr/bin/down {i}\n"));
    }
    let names: Vec<String> = (0..groups).map(|i| format!("g{i}")).collect();
    grouped.push_str(&format!(
        "[c]\ntype = script\ncommand = true\naction = {}\n",
        names.join(",")
    ));
    let mut checks = format!("{head}[DEFAULT]\ntype = tcp\naction = web\n");
    for i in 0..n / 3 {
        checks.push_str(&format!(
            "[c{i}]\nhostname = 127.0.0.1\nport = {}\ntimeout = 2\n",
            1 + i % 60_000
        ));
    }
    vec![
        ("one section, unknown keys", unknown),
        ("[DEFAULT] values, %(name)s", defaults),
        ("action groups", grouped),
        ("check sections", checks),
    ]
}

/// Python 3's `configparser` reading `text`, timed inside Python.
fn python(text: &str) -> Option<Duration> {
    let dir = std::env::temp_dir().join(format!("heartbeat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join("bench.conf");
    std::fs::write(&path, text).ok()?;
    let script = "import configparser, sys, time\n\
        text = open(sys.argv[1], encoding='utf-8').read()\n\
        best = None\n\
        for _ in range(int(sys.argv[2])):\n\
        \x20   t = time.perf_counter()\n\
        \x20   configparser.ConfigParser(interpolation=None).read_string(text)\n\
        \x20   d = time.perf_counter() - t\n\
        \x20   best = d if best is None else min(best, d)\n\
        print(best)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .arg(RUNS.to_string())
        .output()
        .ok();
    let _ = std::fs::remove_dir_all(&dir);
    let secs: f64 = String::from_utf8(out?.stdout).ok()?.trim().parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
