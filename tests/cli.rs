//! The command line through the real binary: flags that contradict each
//! other are refused with exit status 2 before anything runs, the default
//! configuration file, and the forms `status` takes.

use crate::support::bin::{Scratch, free_port, wait_for};

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Deadline for anything that should happen within a few rounds.
const LONG: Duration = Duration::from_secs(20);

/// The configuration read when no `-c FILE` is given, written out here
/// rather than taken from the code under test.
const DEFAULT_CONFIG: &str = "/etc/heartbeat/heartbeat.conf";

/// A file with one group and one script check.
const ONE_CHECK: &str = "[promotions]\ng = true\n[demotions]\ng = true\n[c]\ntype = script\ncommand = true\naction = g\n";

/// Runs heartbeat with `args`; returns its exit status and stderr.
fn run(s: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let out = s.run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Regression (issue 15): `-t --once`, `--once -d` and the like were
/// accepted and one of the flags silently dropped.
#[test]
fn contradicting_flags_are_refused_with_status_2_naming_both() {
    let s = Scratch::new();
    let conf = s.write("hb.conf", ONE_CHECK);
    let conf = conf.to_str().unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["-c", conf, "-t", "--once"], "--check-config", "--once"),
        (&["-c", conf, "--once", "-d"], "--once", "--daemonize"),
        (&["-c", conf, "-t", "-d"], "--check-config", "--daemonize"),
        (
            &["-c", conf, "-t", "--dry-run"],
            "--check-config",
            "--dry-run",
        ),
        (
            &["-c", conf, "--once", "--listen", "127.0.0.1:1"],
            "--once",
            "--listen",
        ),
        (
            &["-c", conf, "--once", "--exit-on-failure"],
            "--once",
            "--exit-on-failure",
        ),
        (
            &["-c", conf, "--check", "tcp://127.0.0.1:1"],
            "--config",
            "--check",
        ),
        (&["-c", conf, "--script", "true"], "--config", "--script"),
    ];
    for (args, first, second) in cases {
        let (code, err) = run(&s, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        let first_line = err.lines().next().unwrap_or_default();
        assert!(
            first_line.starts_with("error: the argument '")
                && first_line.contains(first)
                && first_line.contains(second)
                && first_line.contains("cannot be used with"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn flags_of_the_command_line_checks_need_those_checks() {
    let s = Scratch::new();
    let conf = s.write("hb.conf", ONE_CHECK);
    let conf = conf.to_str().unwrap();
    for args in [
        &["--interval", "5"][..],
        &["--timeout", "1s"],
        &["--retries", "3"],
        &["-c", conf, "--retries", "3"],
    ] {
        let (code, err) = run(&s, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--check <URL>|--script <CMD>"),
            "{args:?}: {err}"
        );
    }
    // --on-demand and --fail-status shape the status server's answers.
    for args in [
        &["--script", "true", "--on-demand"][..],
        &["--script", "true", "--fail-status", "504"],
    ] {
        let (code, err) = run(&s, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("--listen <ADDR:PORT>"), "{args:?}: {err}");
    }
}

#[test]
fn status_takes_no_flag_of_a_run() {
    let s = Scratch::new();
    for (args, flag) in [
        (&["--once", "status"][..], "--once"),
        (&["--script", "true", "status"], "--script"),
        (&["--listen", "127.0.0.1:1", "status"], "--listen"),
    ] {
        let (code, err) = run(&s, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(
            err,
            format!("heartbeat: the subcommand 'status' cannot be used with '{flag}'\n"),
            "{args:?}"
        );
    }
    // An address and a file say two different things.
    s.write("hb.conf", ONE_CHECK);
    let addr = format!("127.0.0.1:{}", free_port());
    for args in [
        &["-c", "hb.conf", "status", addr.as_str()][..],
        &["status", addr.as_str(), "-c", "hb.conf"],
    ] {
        let (code, err) = run(&s, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
}

#[test]
fn the_default_configuration_file_is_named_in_help_and_when_missing() {
    let s = Scratch::new();
    let help = s.run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&help.stdout).contains(DEFAULT_CONFIG),
        "{help:?}"
    );
    if Path::new(DEFAULT_CONFIG).exists() {
        eprintln!("skipped the missing-file half: {DEFAULT_CONFIG} exists on this machine");
        return;
    }
    let (code, err) = run(&s, &[]);
    assert_eq!(code, Some(78), "{err}");
    assert_eq!(
        err,
        format!(
            "heartbeat: no configuration: {DEFAULT_CONFIG} does not exist; give -c FILE, or \
             checks with --check URL / --script CMD (see --help)\n"
        )
    );
    let (code, err) = run(&s, &["status"]);
    assert_eq!(code, Some(78), "{err}");
    assert_eq!(
        err,
        format!(
            "heartbeat: no configuration: {DEFAULT_CONFIG} does not exist; give ADDR:PORT or \
             -c FILE (see --help)\n"
        )
    );
}

/// Regression (issue 15): `heartbeat status -c FILE` was refused; only
/// `heartbeat -c FILE status` worked.
#[test]
fn status_reads_the_address_from_the_file_with_c_before_or_after_it() {
    let s = Scratch::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s.write(
        "hb.conf",
        &format!("[general]\nlisten = {addr}\ninterval = 200ms\n{ONE_CHECK}"),
    );
    let hb = s.spawn(&["-c", "hb.conf"]);
    hb.wait_log(&format!("status server listening on http://{addr}"), LONG);
    for args in [
        &["-c", "hb.conf", "status"][..],
        &["status", "-c", "hb.conf"],
    ] {
        let mut last = s.run(args);
        // The first round may still be running.
        wait_for("a healthy answer", LONG, || {
            last = s.run(args);
            last.status.code() == Some(0)
        });
        let text = String::from_utf8_lossy(&last.stdout);
        assert!(text.starts_with("healthy: "), "{args:?}: {text}");
        assert!(text.lines().any(|l| l.starts_with("c ")), "{text}");
    }
    assert!(hb.stop().success());
}

#[test]
fn status_gives_up_at_its_timeout() {
    let s = Scratch::new();
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let (code, err) = run(&s, &["status", &addr, "--timeout", "300ms"]);
    let took = started.elapsed();
    assert_eq!(code, Some(69), "{err}");
    assert!(
        err.starts_with("heartbeat: cannot reach heartbeat at "),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} with --timeout 300ms"
    );
    let (code, err) = run(&s, &["status", &addr, "--timeout", "soon"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("heartbeat: invalid value 'soon' for '--timeout <DURATION>': "),
        "{err}"
    );
}
