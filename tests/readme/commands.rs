//! The list of every command the README shows and how a test runs it, and
//! the test that holds the README to the list: a command the README shows
//! that the list does not cover fails it, and so does an entry for a
//! command the README no longer shows, or one that names a test that does
//! not exist.
//!
//! The forms (see [`Runs`]):
//! - `sh(Installed, …)`: `/bin/sh -c` on the command in a scratch root laid
//!   out as the package installs heartbeat, where `heartbeat` is the binary
//!   under test; run by [`super::environments`];
//! - `sh(Live, …)`: the same, with a heartbeat running there on the
//!   installed configuration, its status server on a free port;
//! - `unit(…)`: `systemctl` and `journalctl`, run as systemd would run the
//!   unit's own lines ([`super::unit`]);
//! - `ci(…)`: what CI runs itself (`.ci/run`, and `contrib/debian/build`,
//!   which it calls), checked to be there;
//! - `test(…)`: another test runs it, in the form it says;
//! - `not_run(…)`: nothing can, and why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use super::shown::{Shown, commands, readme};

/// Where a `sh` command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    /// A scratch root as the package lays it out: `/usr/bin/heartbeat` (the
    /// binary under test), `/etc/heartbeat/heartbeat.conf` (the example),
    /// `/run/heartbeat`, `/var/lib/heartbeat`, `/var/log/heartbeat`; the
    /// working directory is a copy of the source tree's `contrib/` and
    /// example, with `target/release/heartbeat` the binary under test.
    Installed,
    /// [`Env::Installed`] with a heartbeat running on its configuration,
    /// which listens on a free port (every `HOST:PORT` of loopback in the
    /// command is that address) and has a pidfile in `/run/heartbeat`.
    Live,
}

/// How the command of an [`Entry`] is run.
#[derive(Debug, Clone, Copy)]
pub enum Runs {
    /// `/bin/sh -c` on `as_run` (the command as shown when empty) in `env`,
    /// after the paths of the package (`/etc/heartbeat`, `/usr/bin/heartbeat`,
    /// `/run/heartbeat`…) are mapped into the scratch root, and these
    /// placeholders replaced: `FILE` and `{conf}` (the configuration),
    /// `{addr}` (the status server), `{pid}` (the running heartbeat),
    /// `{root}` (the scratch root). It must exit with `exit` and, when
    /// `says` is not empty, print it (stdout or stderr).
    Sh {
        env: Env,
        as_run: &'static str,
        exit: i32,
        says: &'static str,
    },
    /// `systemctl …` and `journalctl …`: the unit's `ExecStart=` and
    /// `ExecReload=` lines run as systemd runs them, with a notification
    /// socket; `enable` with `systemctl --root`.
    Unit,
    /// CI runs it: it is a line of `.ci/run` or of `contrib/debian/build`.
    Ci,
    /// The test `name` (in the `tests` binary) runs it, in this form.
    Test {
        name: &'static str,
        form: &'static str,
    },
    /// No test can run it, for this reason.
    NotRun(&'static str),
}

/// One command of the README and how it is run.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The command as the README shows it, whitespace collapsed.
    pub shown: &'static str,
    pub runs: Runs,
}

use Env::{Installed, Live};

const fn sh(env: Env, shown: &'static str, exit: i32, says: &'static str) -> Entry {
    Entry {
        shown,
        runs: Runs::Sh {
            env,
            as_run: "",
            exit,
            says,
        },
    }
}

const fn sh_as(
    env: Env,
    shown: &'static str,
    as_run: &'static str,
    exit: i32,
    says: &'static str,
) -> Entry {
    Entry {
        shown,
        runs: Runs::Sh {
            env,
            as_run,
            exit,
            says,
        },
    }
}

const fn unit(shown: &'static str) -> Entry {
    Entry {
        shown,
        runs: Runs::Unit,
    }
}

const fn ci(shown: &'static str) -> Entry {
    Entry {
        shown,
        runs: Runs::Ci,
    }
}

const fn test(shown: &'static str, name: &'static str, form: &'static str) -> Entry {
    Entry {
        shown,
        runs: Runs::Test { name, form },
    }
}

const fn not_run(shown: &'static str, why: &'static str) -> Entry {
    Entry {
        shown,
        runs: Runs::NotRun(why),
    }
}

const EXAMPLE: &str = "readme::first_screen::the_example_behaves_as_the_first_screen_says";
const PACKAGES: &str =
    "readme::first_screen::the_packages_the_first_screen_installs_are_what_the_build_needs";
const DPKG: &str = "package::installs_runs_removes_and_purges_in_a_throw_away_root";
const SIDECAR: &str = "readme::running::the_sidecar_examples_run_as_written";
const DETACHED: &str = "readme::running::detaching_commands_run_as_written";
const NGINX: &str = "readme::running::the_nginx_failover_example_drains_the_node";
const POD: &str = "readme::coming_from::pod_heartbeats_flags_run_as_the_table_says";
const HEALTH_CHECKER: &str =
    "readme::coming_from::health_checkers_flags_answer_200_and_504_and_share_one_probe";
const HEALTHCHECKER: &str =
    "readme::coming_from::healthcheckers_alive_and_ready_answer_as_the_transcript_shows";
const MODEL: &str = "model::random_schedules_with_slow_checks_and_slow_hooks_agree_with_the_model";
const HOOK: &str = "a command a hook may run, shown as an example of one; it is not heartbeat's";

/// Every command the README shows, in the order of its first appearance.
pub const COMMANDS: &[Entry] = &[
    // The first screen.
    test(
        "cargo run --release -- -c heartbeat.conf.example",
        EXAMPLE,
        "the binary `cargo test` built (the same code, not optimised) on the example as \
         written, in a network namespace with nothing but loopback and a /tmp of its own \
         (as root; else with its demo log and port 8080 moved to a scratch directory and a \
         free port)",
    ),
    ci("cargo test"),
    test(
        "apt-get install -y build-essential pkg-config libssl-dev curl ca-certificates",
        PACKAGES,
        "apt-get install --simulate of the same packages, and the list checked against the \
         crates that compile C or link a system library",
    ),
    not_run(
        "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y",
        "downloads and runs rustup; readme::first_screen::the_packages_the_first_screen_installs_are_what_the_build_needs \
         checks the reason given for it, Cargo.toml's rust-version against Debian 12's rustc 1.63",
    ),
    not_run(
        ". \"$HOME/.cargo/env\"",
        "the last step of rustup's installation, which no test downloads; it puts ~/.cargo/bin \
         on the PATH of this shell, as rustup itself says when it ends",
    ),
    ci(".ci/run"),
    test(
        "python3 -m http.server 8080",
        EXAMPLE,
        "as written in the example's network namespace (else on the free port the example \
         was moved to)",
    ),
    // Installing: the package.
    ci("cargo install cargo-deb --locked"),
    ci("contrib/debian/build"),
    test(
        "apt-get install ./target/debian/heartbeat-failover_0.1.0-1_amd64.deb",
        DPKG,
        "dpkg --root --install of the package .ci/run builds, whose file name \
         readme::first_screen::the_package_the_readme_installs_is_the_one_contrib_debian_build_makes checks",
    ),
    unit("journalctl -u heartbeat"),
    sh_as(
        Installed,
        "heartbeat -t",
        "heartbeat -t -c {conf}",
        0,
        "OK: 2 groups, 3 checks",
    ),
    unit("systemctl restart heartbeat"),
    test(
        "apt-get purge heartbeat-failover",
        DPKG,
        "dpkg --root --purge, after which /etc/heartbeat is gone",
    ),
    // Installing: from source.
    ci("cargo build --release"),
    sh(
        Installed,
        "install -m 0755 target/release/heartbeat /usr/bin/heartbeat",
        0,
        "",
    ),
    sh(Installed, "install -d /etc/heartbeat", 0, ""),
    sh(
        Installed,
        "install -m 0644 heartbeat.conf.example /etc/heartbeat/heartbeat.conf",
        0,
        "",
    ),
    sh(
        Installed,
        "heartbeat -t -c /etc/heartbeat/heartbeat.conf",
        0,
        "OK: 2 groups, 3 checks",
    ),
    sh(Installed, "heartbeat --generate man", 0, ".TH heartbeat 1"),
    // Configuration reference.
    not_run(
        "cargo bench --bench config",
        "a benchmark: it takes minutes and asserts nothing; CI compiles it \
         (cargo clippy --all-targets), readme::commands::every_bench_the_readme_names_exists \
         checks it is there",
    ),
    sh_as(
        Live,
        "heartbeat pause",
        "heartbeat pause -c {conf} web && heartbeat resume -c {conf} web",
        0,
        "web: resumed (was paused since ",
    ),
    sh(
        Installed,
        "heartbeat -t -c FILE",
        0,
        "OK: 2 groups, 3 checks",
    ),
    sh_as(
        Installed,
        "sed -n 's/^pidfile = //p'",
        "heartbeat -t -c {root}/daemon.conf | sed -n 's/^pidfile = //p'",
        0,
        "/run/heartbeat/daemon.pid",
    ),
    // Several nodes.
    test(
        "heartbeat -c FILE maintenance GROUP",
        "cluster::failover::one_active_node_and_failover_on_sigkill_failing_check_and_maintenance",
        "heartbeat -c hb.conf maintenance vip on the active node of three, then resume",
    ),
    // Running it: systemd.
    sh(
        Installed,
        "install -m 0644 contrib/heartbeat.service /etc/systemd/system/",
        0,
        "",
    ),
    unit("systemctl help heartbeat"),
    unit("systemctl daemon-reload && systemctl enable --now heartbeat"),
    unit("systemctl reload heartbeat"),
    unit("systemctl reload"),
    test(
        "systemd-analyze security heartbeat.service",
        "contrib::the_unit_is_rated_at_most_5_0_and_says_its_rating",
        "systemd-analyze security --offline=yes on the unit in a throw-away root",
    ),
    not_run("systemctl start srv.mount", HOOK),
    test(
        "systemctl edit heartbeat",
        "contrib::the_flag_file_drop_in_is_rated_at_most_2_0_and_says_its_rating",
        "the drop-in it would write (contrib/heartbeat.service.d/flag-file.conf) read by \
         systemd-analyze in a throw-away root",
    ),
    sh(
        Installed,
        "install -d /etc/systemd/system/heartbeat.service.d",
        0,
        "",
    ),
    sh(
        Installed,
        "install -m 0644 contrib/heartbeat.service.d/flag-file.conf /etc/systemd/system/heartbeat.service.d/",
        0,
        "",
    ),
    unit("systemctl daemon-reload && systemctl restart heartbeat"),
    // Running it: as a classic daemon, from cron.
    test(
        "heartbeat -d -c FILE",
        DETACHED,
        "FILE with a pidfile in the scratch root",
    ),
    sh_as(
        Installed,
        "install -d -o USER /run/heartbeat",
        "install -d -o \"$(id -un)\" /run/heartbeat && test -O /run/heartbeat",
        0,
        "",
    ),
    sh(
        Installed,
        "heartbeat -c /etc/heartbeat/heartbeat.conf --once",
        1,
        "group \"web\" is unhealthy",
    ),
    // Running it: sidecar mode.
    test(
        "heartbeat --check tcp://db:5432 --check https://api.internal/health --script 'test -S /run/app.sock' --interval 10s --timeout 2s --retries 3 --listen 0.0.0.0:8080 --exit-on-failure",
        SIDECAR,
        "validated as written (with -t), then run with db:5432, api.internal, the socket \
         and port 8080 moved to loopback servers and a scratch directory",
    ),
    test(
        "heartbeat --check tcp://127.0.0.1:5432 --check http://127.0.0.1:8080/health --script '/usr/local/bin/app-ok' --listen :9000 --on-demand --fail-status 504",
        SIDECAR,
        "with ports 5432, 8080 and 9000 moved to free ones and app-ok a script in a scratch \
         directory",
    ),
    not_run("service start &", HOOK),
    not_run(
        "docker run --init",
        "names an option of docker heartbeat makes unnecessary; it is not run",
    ),
    // The nginx example.
    test(
        "cat /var/lib/heartbeat/maintenance",
        NGINX,
        "the flag the demotion wrote, in a scratch directory",
    ),
    sh_as(
        Live,
        "heartbeat -c /etc/heartbeat/heartbeat.conf status",
        "heartbeat -c /etc/heartbeat/heartbeat.conf status",
        0,
        "GROUP",
    ),
    not_run("systemctl stop nginx", HOOK),
    // Operating it.
    sh(Live, "heartbeat status 127.0.0.1:8080", 0, "GROUP"),
    sh(
        Live,
        "heartbeat -c /etc/heartbeat/heartbeat.conf maintenance web",
        0,
        "web: in maintenance (was active): demoted and held",
    ),
    sh(
        Live,
        "heartbeat -c /etc/heartbeat/heartbeat.conf resume web",
        0,
        "web: resumed (was in maintenance since ",
    ),
    sh_as(
        Live,
        "heartbeat -c FILE maintenance GROUP…",
        "heartbeat -c FILE maintenance web local; heartbeat status -c FILE; test $? = 1",
        0,
        "local: in maintenance (was active)",
    ),
    sh_as(
        Live,
        "heartbeat -c FILE resume GROUP…",
        "heartbeat -c FILE resume web local && heartbeat status -c FILE",
        0,
        "local: resumed (was in maintenance since ",
    ),
    sh_as(
        Live,
        "heartbeat -c FILE pause GROUP…",
        "heartbeat -c FILE pause web && heartbeat -c FILE resume web",
        0,
        "web: paused (was active)",
    ),
    sh_as(
        Live,
        "socat - UNIX-CONNECT:/run/heartbeat/heartbeat.sock",
        "echo '{\"command\":\"pause\",\"groups\":[\"web\"]}' \
         | socat - UNIX-CONNECT:/run/heartbeat/heartbeat.sock \
         && heartbeat -c FILE resume web",
        0,
        "{\"ok\":true,\"groups\":[{\"group\":\"web\",",
    ),
    sh_as(
        Live,
        "kill -HUP",
        "kill -HUP {pid} && for i in $(seq 200); do \
         grep -q '^.* INFO     reloaded ' {root}/var/log/heartbeat/heartbeat.log && exit 0; \
         sleep 0.1; done; exit 1",
        0,
        "",
    ),
    sh_as(
        Live,
        "heartbeat status",
        "heartbeat status -c {conf}",
        0,
        "GROUP",
    ),
    sh_as(
        Live,
        "promtool check metrics",
        "curl -s http://{addr}/metrics | promtool check metrics",
        0,
        "",
    ),
    sh_as(
        Live,
        "heartbeat status [ADDR:PORT]",
        "heartbeat status {addr} && heartbeat status -c {conf}",
        0,
        "",
    ),
    sh(Live, "heartbeat -c FILE status", 0, "CHECK"),
    // Coming from the Python tool.
    sh(Installed, "heartbeat -c FILE --once", 1, ""),
    sh_as(
        Installed,
        "chmod go-w",
        "chmod g+w FILE && heartbeat --once -c FILE; test $? = 78 \
         && chmod go-w FILE && heartbeat --once -c FILE; test $? = 1",
        0,
        "group \"web\" is unhealthy",
    ),
    sh_as(
        Installed,
        "chown root:",
        "chown nobody: FILE && heartbeat --once -c FILE; test $? = 78 \
         && chown root: FILE && heartbeat --once -c FILE; test $? = 1",
        0,
        "group \"web\" is unhealthy",
    ),
    // Coming from another tool.
    test(
        "heartbeat --check http://localhost:4000 --timeout 1s --interval 5s --retries 3 --exit-on-failure",
        POD,
        "against a loopback HTTP server instead of port 4000, rounds every 300 ms",
    ),
    test(
        "heartbeat --check http://localhost:4000 --listen :9999",
        POD,
        "against a loopback HTTP server instead of port 4000, a free port for 9999, \
         rounds every 300 ms",
    ),
    test(
        "heartbeat --listen 0.0.0.0:5000 --check tcp://127.0.0.1:5432 --check tcp://127.0.0.1:6379 --script '/usr/local/bin/zk-ok' --on-demand --fail-status 504",
        HEALTH_CHECKER,
        "listening on a free loopback port, the ports two loopback listeners, zk-ok a \
         script in a scratch directory",
    ),
    test(
        "heartbeat --check tcp://127.0.0.1:5432 --check http://127.0.0.1:8080/health --listen 127.0.0.1:8086",
        HEALTHCHECKER,
        "5432 a closed port, 8080 a loopback HTTP server, 8086 a free port",
    ),
    test(
        "curl -s http://127.0.0.1:8086/ready",
        HEALTHCHECKER,
        "against the heartbeat above; its output is the transcript's, ports moved",
    ),
    test(
        "curl -s http://127.0.0.1:8086/alive",
        HEALTHCHECKER,
        "against the heartbeat above; its output is the transcript's",
    ),
    // Security.
    test(
        "flock LOCK heartbeat -d …",
        DETACHED,
        "flock on a lock file in a scratch directory, heartbeat -d -c FILE with a pidfile there",
    ),
    sh_as(
        Installed,
        "chown root: FILE && chmod go-w FILE",
        "chown nobody: FILE && chmod o+w FILE && heartbeat --once -c FILE; test $? = 78 \
         && chown root: FILE && chmod go-w FILE && heartbeat --once -c FILE; test $? = 1",
        0,
        "fix: chown root: ",
    ),
    // Choices where the contract is silent.
    sh_as(
        Live,
        "heartbeat maintenance web && systemctl stop app",
        "heartbeat maintenance -c FILE web && { heartbeat status -c FILE; test $? = 1; } \
         && heartbeat resume -c FILE web",
        0,
        "web: in maintenance",
    ),
    // Performance, development.
    not_run(
        "cargo bench --bench isolation",
        "a benchmark: it takes minutes and asserts nothing; CI compiles it \
         (cargo clippy --all-targets), readme::commands::every_bench_the_readme_names_exists \
         checks it is there",
    ),
    not_run(
        "cargo bench --bench round",
        "a benchmark: it takes minutes and asserts nothing; CI compiles it \
         (cargo clippy --all-targets), readme::commands::every_bench_the_readme_names_exists \
         checks it is there",
    ),
    not_run(
        "cargo bench --bench exec",
        "a benchmark: it takes minutes and asserts nothing; CI compiles it \
         (cargo clippy --all-targets), readme::commands::every_bench_the_readme_names_exists \
         checks it is there",
    ),
    ci("cargo clippy --all-targets -- -D warnings"),
    ci("cargo fmt"),
    test(
        "HEARTBEAT_MODEL_SCHEDULES=5000 cargo test --release --test tests -- model:: --nocapture",
        MODEL,
        "the suite runs the same test with 160 schedules from a seed of the clock",
    ),
    test(
        "HEARTBEAT_MODEL_SEED=1234 HEARTBEAT_MODEL_SCHEDULES=1 cargo test --test tests -- model:: --nocapture",
        MODEL,
        "the suite runs the same test; a seed only fixes which schedules it draws",
    ),
];

/// The entry for `shown`.
pub fn entry(shown: &str) -> Option<&'static Entry> {
    COMMANDS.iter().find(|e| e.shown == shown)
}

/// The tests of the `tests` binary, as `--list` prints them.
fn tests_in_this_binary() -> BTreeSet<String> {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .arg("--list")
        .output()
        .expect("list the tests");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// The README's commands, each with the line it first appears on.
fn shown_once() -> BTreeMap<String, Shown> {
    let mut first = BTreeMap::new();
    for c in commands(&readme()) {
        first.entry(c.text.clone()).or_insert(c);
    }
    first
}

#[test]
fn every_command_the_readme_shows_is_run_by_a_test() {
    let shown = shown_once();
    let mut problems = Vec::new();

    let mut missing: Vec<&Shown> = shown
        .values()
        .filter(|c| entry(&c.text).is_none())
        .collect();
    missing.sort_by_key(|c| c.line);
    if !missing.is_empty() {
        let mut text = format!(
            "README.md shows {} command(s) that no test runs:\n",
            missing.len()
        );
        for c in &missing {
            text += &format!("  README.md:{}: {}\n", c.line, c.text);
        }
        text += "Add an entry for each to COMMANDS in tests/readme/commands.rs, e.g.\n";
        for c in &missing {
            text += &format!("    {},\n", suggestion(&c.text));
        }
        text += "where sh(Live, …) runs it against a running heartbeat and sh(Installed, …) in a \
                 scratch root as the package lays it out (sh_as(…) when it must run in another \
                 form: say which), unit(…) runs systemctl and journalctl as systemd runs the \
                 unit, test(…, \"module::test\", \"form\") names the test that runs it, and \
                 not_run(…, \"why\") says why nothing can.";
        problems.push(text);
    }

    let stale: Vec<&str> = COMMANDS
        .iter()
        .map(|e| e.shown)
        .filter(|s| !shown.contains_key(*s))
        .collect();
    if !stale.is_empty() {
        problems.push(format!(
            "COMMANDS in tests/readme/commands.rs has entries for commands README.md no \
             longer shows; remove them (or fix them to the README's words):\n  {}",
            stale.join("\n  ")
        ));
    }

    let mut seen = BTreeSet::new();
    let twice: Vec<&str> = COMMANDS
        .iter()
        .map(|e| e.shown)
        .filter(|s| !seen.insert(*s))
        .collect();
    if !twice.is_empty() {
        problems.push(format!(
            "COMMANDS lists these more than once; keep one entry each:\n  {}",
            twice.join("\n  ")
        ));
    }

    let tests = tests_in_this_binary();
    for e in COMMANDS {
        if let Runs::Test { name, .. } = e.runs {
            if !tests.contains(name) {
                problems.push(format!(
                    "COMMANDS says the test {name} runs `{}`, but there is no such test",
                    e.shown
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// What to add for a command no entry covers, as a start.
fn suggestion(text: &str) -> String {
    let first = text.split_whitespace().next().unwrap_or("");
    match first {
        "systemctl" | "journalctl" => format!("unit({text:?})"),
        "heartbeat" | "curl" | "kill" => format!("sh(Live, {text:?}, 0, \"\")"),
        _ => format!("not_run({text:?}, \"why no test can run it\")"),
    }
}

/// The lines CI runs: `.ci/run` and the script it calls to build the
/// package.
fn ci_lines() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [".ci/run", "contrib/debian/build"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(root.join(f))
                .unwrap_or_else(|e| panic!("read {f}: {e}"))
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect()
}

/// Whether the words of `shown` appear, in order, in the words of one of
/// `lines` (each inside one word: `contrib/debian/build` in
/// `"$(contrib/debian/build)"`).
fn ci_runs(lines: &[String], shown: &str) -> bool {
    lines.iter().any(|line| {
        let mut words = line.split_whitespace();
        shown
            .split_whitespace()
            .all(|want| words.any(|w| w.contains(want)))
    })
}

#[test]
fn what_the_readme_says_ci_runs_is_in_its_scripts() {
    let lines = ci_lines();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for e in COMMANDS {
        if !matches!(e.runs, Runs::Ci) {
            continue;
        }
        if e.shown == ".ci/run" {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.join(".ci/run"))
                .unwrap()
                .permissions()
                .mode();
            assert_ne!(mode & 0o111, 0, ".ci/run is not executable");
            continue;
        }
        assert!(
            ci_runs(&lines, e.shown),
            "the README shows `{}` as what CI runs, but neither .ci/run nor \
             contrib/debian/build has it",
            e.shown
        );
    }
}

#[test]
fn every_bench_the_readme_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for e in COMMANDS {
        let Some(name) = e.shown.strip_prefix("cargo bench --bench ") else {
            continue;
        };
        assert!(
            manifest.contains(&format!("[[bench]]\nname = \"{name}\"")),
            "the README names `cargo bench --bench {name}`, Cargo.toml has no such bench"
        );
        assert!(
            root.join("benches").join(format!("{name}.rs")).is_file(),
            "benches/{name}.rs"
        );
    }
}

#[test]
fn ci_runs_finds_words_in_order_on_one_line() {
    let lines = vec![
        "cargo clippy --all-targets --locked -- -D warnings".to_owned(),
        "HEARTBEAT_DEB=$(realpath \"$(contrib/debian/build)\")".to_owned(),
    ];
    assert!(ci_runs(&lines, "cargo clippy --all-targets -- -D warnings"));
    assert!(ci_runs(&lines, "contrib/debian/build"));
    assert!(!ci_runs(&lines, "cargo test"));
    assert!(!ci_runs(&lines, "warnings cargo"));
}

/// Prints how each command runs (`cargo test -- readme::commands --nocapture`
/// shows it) and holds every form and reason to say something.
#[test]
fn every_entry_says_how_its_command_runs() {
    for e in COMMANDS {
        let how = match e.runs {
            Runs::Sh {
                env, as_run, exit, ..
            } => {
                let form = if as_run.is_empty() { e.shown } else { as_run };
                format!("sh in {env:?}: `{form}`, exit {exit}")
            }
            Runs::Unit => "the unit's own lines, as systemd runs them".to_owned(),
            Runs::Ci => "CI runs it (.ci/run)".to_owned(),
            Runs::Test { name, form } => {
                assert!(!form.trim().is_empty(), "{}: say in which form", e.shown);
                format!("{name}: {form}")
            }
            Runs::NotRun(why) => {
                assert!(why.len() > 20, "{}: say why nothing runs it", e.shown);
                format!("not run: {why}")
            }
        };
        eprintln!("`{}`\n    {how}", e.shown);
    }
}
