//! The README's first screen, as a newcomer on a fresh Debian 12 follows
//! it: its two commands (the same `cargo test` that CI runs), the packages
//! it installs first (what the crates that compile C or link a system
//! library need, and nothing a build does not), and the example behaving
//! as it says.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nix::sys::signal::Signal;

use crate::support::bin::{Scratch, free_port};
use crate::support::ops::LONG;
use crate::support::poll::wait_for;

use super::environments::example_for;
use super::shown::{block_after, commands, readme};

/// The `-sys` crates heartbeat builds on Linux, and the Debian packages
/// each needs (from its `build.rs`): a crate missing here fails the test
/// below, so that its package reaches the first screen.
const SYS_CRATES: &[(&str, &[&str])] = &[
    // pkg-config finds OpenSSL; libssl-dev has its headers and libraries.
    ("openssl-sys", &["pkg-config", "libssl-dev"]),
    // Raw Linux system call bindings, Rust only.
    ("linux-raw-sys", &[]),
];

/// Build-time crates that run a C compiler (and the linker every build
/// needs): `build-essential`.
const C_BUILD: &[&str] = &["cc"];

/// Build tools beyond a C compiler that no Debian 12 machine has by
/// default; none may appear without its package on the first screen.
const OTHER_TOOLS: &[&str] = &["cmake", "bindgen", "protoc-bin-vendored", "nasm-rs"];

/// What the first screen installs for rustup rather than for the build.
const FOR_RUSTUP: &[&str] = &["curl", "ca-certificates"];

/// The first block of the README: the two commands that matter.
fn first_block() -> Vec<String> {
    let text = readme();
    let first = text
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block on the first screen");
    first
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_first_screen_shows_the_two_commands_and_ci_runs_the_same_tests() {
    assert_eq!(
        first_block(),
        [
            "cargo run --release -- -c heartbeat.conf.example",
            "cargo test"
        ]
    );
    let ci = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    let last = ci
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .unwrap();
    assert_eq!(
        last.trim(),
        first_block()[1],
        ".ci/run ends with another test command than the README's first screen shows: \
         keep the two alike"
    );
    // It comes before anything else: the title, then the block.
    let text = readme();
    let head: Vec<&str> = text.lines().take(3).collect();
    assert_eq!(head, ["# heartbeat", "", "```sh"]);
}

/// The crates of the build for this machine, from `cargo tree`.
fn crates() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal,build,dev",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The packages of the README's `apt-get install` line.
fn first_screen_packages() -> Vec<String> {
    let text = readme();
    let block = text
        .split("```sh\n")
        .nth(2)
        .and_then(|b| b.split("```").next())
        .expect("the install block of the first screen");
    let line = block
        .lines()
        .find(|l| l.starts_with("apt-get install "))
        .expect("an apt-get install line");
    line.split_whitespace()
        .skip(2)
        .filter(|w| !w.starts_with('-'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_packages_the_first_screen_installs_are_what_the_build_needs() {
    let crates = crates();
    assert!(crates.iter().any(|c| c == "heartbeat"), "{crates:?}");
    let mut needed: Vec<&str> = Vec::new();
    for name in &crates {
        if name.ends_with("-sys") {
            let (_, packages) = SYS_CRATES
                .iter()
                .find(|(c, _)| c == name)
                .unwrap_or_else(|| {
                    panic!(
                        "the build now has the crate {name}, which links a system library: find \
                         the Debian package its build.rs needs, add it to the apt-get line of the \
                         README's first screen, and to SYS_CRATES in tests/readme/first_screen.rs"
                    )
                });
            needed.extend(*packages);
        }
        if C_BUILD.contains(&name.as_str()) {
            needed.push("build-essential");
        }
        assert!(
            !OTHER_TOOLS.contains(&name.as_str()),
            "the build now uses {name}: add the Debian package of the tool it runs to the \
             README's first screen"
        );
    }
    needed.sort();
    needed.dedup();
    let shown = first_screen_packages();
    for package in &needed {
        assert!(
            shown.contains(&package.to_string()),
            "the build needs {package}; the README's first screen does not install it: {shown:?}"
        );
    }
    for package in &shown {
        assert!(
            needed.contains(&package.as_str()) || FOR_RUSTUP.contains(&package.as_str()),
            "the README's first screen installs {package}, which neither the build nor rustup \
             needs"
        );
    }

    // The toolchain: rustup, because Debian 12's rustc is older than the
    // one heartbeat needs, as the README says.
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    let text = readme();
    assert!(
        text.contains(&format!("heartbeat needs Rust {rust_version};")),
        "the first screen should name rust-version, {rust_version}"
    );
    assert!(text.contains("Debian 12's own `rustc` is 1.63"));
    let minor: u32 = rust_version.split('.').nth(1).unwrap().parse().unwrap();
    assert!(
        minor > 63,
        "rust-version {rust_version}: Debian's rustc would do"
    );

    // Every package exists and installs on this machine's Debian, as far as
    // apt can tell without installing (its package lists must be there).
    let debian_12 = fs::read_to_string("/etc/debian_version").is_ok_and(|v| v.starts_with("12"));
    let lists = fs::read_dir("/var/lib/apt/lists").is_ok_and(|d| {
        d.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
    });
    if !(debian_12 && lists) {
        eprintln!("skipped apt-get --simulate: not Debian 12, or no apt package lists");
        return;
    }
    let out = Command::new("apt-get")
        .args(["install", "--simulate", "-y"])
        .args(&shown)
        .output()
        .expect("run apt-get");
    assert!(
        out.status.success(),
        "apt-get install --simulate {shown:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = Command::new("apt-cache")
        .args(["policy", "rustc"])
        .output()
        .expect("run apt-cache");
    let policy = String::from_utf8_lossy(&policy.stdout);
    assert!(
        policy.contains("Candidate: 1.63."),
        "Debian 12's rustc is not 1.63 here:\n{policy}"
    );
}

/// A child process killed and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The seconds of a `YYYY-MM-DD HH:MM:SS` time at the start of `line`, since
/// the start of its day.
fn seconds_of_day(line: &str) -> i64 {
    let time = line
        .get(11..19)
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    time.split(':')
        .map(|n| n.parse::<i64>().unwrap())
        .fold(0, |acc, n| acc * 60 + n)
}

/// The test that runs the example as written, in a namespace of its own.
const AS_WRITTEN: &str = "readme::first_screen::the_example_runs_as_written_without_a_network";

/// As written where the machine allows it (root and `unshare`): in a
/// network namespace of its own, which has nothing but loopback (no
/// network, and port 8080 free), with a `/tmp` of its own (the demo log
/// where the example writes it). Elsewhere, with port 8080 and the demo
/// log moved to a free port and a scratch directory.
#[test]
fn the_example_behaves_as_the_first_screen_says() {
    let isolated = Command::new("unshare")
        .args(["-n", "-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !isolated {
        eprintln!(
            "note: cannot create network and mount namespaces (needs root and unshare): \
             the example runs with port 8080 and its demo log moved"
        );
        let s = Scratch::new();
        let port = free_port();
        fs::create_dir_all(s.path("tmp")).unwrap();
        let conf = s.write("heartbeat.conf.example", &example_for(s.dir(), port));
        let demo = s.path("tmp/heartbeat-demo.log");
        return example_behaves(&s, s.command(&["-c", conf.to_str().unwrap()]), &demo, port);
    }
    let child = crate::support::child::command(AS_WRITTEN);
    let out = Command::new("unshare")
        .args(["-n", "-m", "sh", "-c"])
        .arg("ip link set lo up && mount -t tmpfs tmpfs /tmp && exec \"$0\" \"$@\"")
        .arg(child.get_program())
        .args(child.get_args())
        .envs(
            child
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .output()
        .expect("run unshare");
    crate::support::child::assert_passed(AS_WRITTEN, &out);
}

/// The half of `the_example_behaves_as_the_first_screen_says` that runs in
/// the namespaces it makes; does nothing unless started by it.
#[test]
#[ignore = "run by the_example_behaves_as_the_first_screen_says"]
fn the_example_runs_as_written_without_a_network() {
    if !crate::support::child::is_child(AS_WRITTEN) {
        return;
    }
    // Nothing but loopback: an address elsewhere is unreachable.
    let elsewhere = std::net::TcpStream::connect_timeout(
        &"192.0.2.1:80".parse().unwrap(),
        std::time::Duration::from_secs(2),
    );
    assert_eq!(
        elsewhere.map_err(|e| e.raw_os_error()).err(),
        Some(Some(nix::libc::ENETUNREACH)),
        "the namespace has a network"
    );
    let s = Scratch::new();
    let demo = Path::new("/tmp/heartbeat-demo.log");
    assert!(!demo.exists(), "this /tmp is the namespace's own");
    // `-c heartbeat.conf.example` in the source tree, unchanged.
    let mut cmd = s.command(&["-c", "heartbeat.conf.example"]);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    example_behaves(&s, cmd, demo, 8080);
}

/// Runs `example` (the example configuration, with its demo log at `demo`
/// and its `web` checks on `port`) through what the first screen says.
fn example_behaves(s: &Scratch, example: Command, demo: &Path, port: u16) {
    let demo_lines = || fs::read_to_string(demo).unwrap_or_default();

    // `cargo run --release -- -c heartbeat.conf.example`, as the binary
    // `cargo test` built.
    let started = Instant::now();
    let mut hb = s.spawn_command(example);
    wait_for("both start-up actions", LONG, || {
        let d = demo_lines();
        d.contains(" local promoted (was unknown)") && d.contains(" web demoted, failing: ")
    });
    let took = started.elapsed();
    let first = hb
        .log_text()
        .lines()
        .find(|l| l.contains(" started: "))
        .map(str::to_owned)
        .expect("a start line");
    for line in demo_lines().lines() {
        let after = (seconds_of_day(line) - seconds_of_day(&first) + 86_400) % 86_400;
        assert!(
            (0..=1).contains(&after),
            "{line:?} came {after} s after {first:?}; the README says within a second"
        );
    }
    eprintln!("the start-up actions were in the demo log {took:?} after the start");
    assert!(
        demo_lines().contains("web demoted, failing: web-port,web-page"),
        "{}",
        demo_lines()
    );

    // `python3 -m http.server 8080`, on the example's port.
    let server = super::commands::entry("python3 -m http.server 8080")
        .expect("the README's server command")
        .shown
        .replace("8080", &port.to_string());
    let words: Vec<&str> = server.split_whitespace().collect();
    let python = Killed(
        Command::new(words[0])
            .args(&words[1..])
            .current_dir(s.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3"),
    );
    wait_for("web promoted", LONG, || {
        demo_lines().contains(" web promoted (was unhealthy)")
    });
    drop(python);
    wait_for("web demoted again", LONG, || {
        demo_lines().matches(" web demoted, ").count() == 2
    });
    // Two rounds later: fall = 2.
    let log = hb.log_text();
    let check = format!("check \"web-port\" (tcp 127.0.0.1:{port}) ");
    let once = log.rfind(&format!("{check}failed (1 of 2 before unhealthy)"));
    let twice = log.rfind(&format!("{check}is unhealthy after 2 consecutive failures"));
    assert!(
        matches!((once, twice), (Some(a), Some(b)) if a < b),
        "{log}"
    );
    // Ctrl-C stops it.
    hb.signal(Signal::SIGINT);
    let status = hb.wait_exit(LONG).expect("it stops on Ctrl-C");
    assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    assert_eq!(demo_lines().lines().count(), 4, "{}", demo_lines());
}

#[test]
fn the_package_the_readme_installs_is_the_one_contrib_debian_build_makes() {
    let shown = commands(&readme())
        .into_iter()
        .find(|c| c.text.starts_with("apt-get install ./target/debian/"))
        .expect("the README installs the package it built");
    let file = shown.text.rsplit('/').next().unwrap().to_owned();
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let name = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("name = \"")))
        .and_then(|n| n.strip_suffix('"'))
        .expect("the package name");
    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "amd64".to_owned());
    let built = format!("{name}_{}-1_{arch}.deb", env!("CARGO_PKG_VERSION"));
    if arch == "amd64" {
        assert_eq!(file, built);
    } else {
        assert!(file.starts_with(&format!("{name}_{}-1_", env!("CARGO_PKG_VERSION"))));
    }
    // contrib/debian/build prints that path, as the README's comment says.
    let install = block_after(&readme(), "### The Debian package", "sh", 0);
    assert!(
        install.contains(&format!("# prints target/debian/{file}")),
        "{install}"
    );
    if let Some(deb) = std::env::var_os("HEARTBEAT_DEB") {
        let deb = Path::new(&deb)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(deb, built, "the package .ci/run built");
    }
}

/// The package's long description (what `apt show` prints) names every
/// check type the README's configuration reference lists and every format
/// `/metrics` serves.
#[test]
fn the_package_description_names_the_check_types_and_the_metrics_formats() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let description = manifest
        .split("extended-description = \"\"\"")
        .nth(1)
        .and_then(|d| d.split("\"\"\"").next())
        .expect("the package's extended-description");
    let text = readme();
    let types = text
        .lines()
        .find(|l| l.starts_with("| `type` |"))
        .expect("the type row of the check sections' table");
    for (kind, named) in [
        ("`tcp`", "TCP"),
        ("`http`", "HTTP"),
        ("`https`", "HTTPS"),
        ("`script`", "script"),
        ("`grpc`", "gRPC health"),
    ] {
        assert!(types.contains(kind), "{types}");
        assert!(description.contains(named), "{named} in {description}");
    }
    let metrics = text
        .lines()
        .find(|l| l.starts_with("| `GET /metrics` |"))
        .expect("the /metrics row of the status server's table");
    for format in ["OpenMetrics", "Prometheus text", "Prometheus protobuf"] {
        assert!(metrics.contains(format), "{format} in {metrics}");
        assert!(description.contains(format), "{format} in {description}");
    }
}
