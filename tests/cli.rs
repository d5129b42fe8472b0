//! The command line through the real binary: flags that contradict each
//! other are refused with exit status 2 before anything runs, the default
//! configuration file, and the forms `status` takes.

use crate::support::bin::{Scratch, free_port, wait_for};
use crate::support::daemon::listening;

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

/// `heartbeat status` with `args` until it answers healthy (the first
/// round may still run); its stdout.
fn healthy_status(s: &Scratch, args: &[&str]) -> String {
    let mut out = s.run(args);
    wait_for(&format!("status {args:?} to answer healthy"), LONG, || {
        out = s.run(args);
        out.status.code() == Some(0)
    });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Regression (issue 15): the README's `--listen :9000` was refused
/// ("invalid socket address syntax"), and so were `status :8081` and
/// `status localhost:8081`.
#[test]
fn listen_and_status_take_every_form_of_the_files_listen() {
    let s = Scratch::new();
    // :PORT listens on every IPv4 address; status asks the loopback one.
    let (hb, port) = listening(&s, |port| {
        ["--script", "true", "--interval", "200ms", "--listen"]
            .iter()
            .map(|a| a.to_string())
            .chain([format!(":{port}")])
            .collect()
    });
    assert!(
        hb.log_text()
            .contains(&format!("listening on http://0.0.0.0:{port}")),
        "{}",
        hb.log_text()
    );
    for form in [
        format!(":{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let text = healthy_status(&s, &["status", &form]);
        assert!(text.starts_with("healthy: "), "{form}: {text}");
    }
    assert!(hb.stop().success());

    // A name, in the file and on the command line.
    let (hb, port) = listening(&s, |port| {
        s.write(
            "hb.conf",
            &format!("[general]\nlisten = localhost:{port}\ninterval = 200ms\n{ONE_CHECK}"),
        );
        vec!["-c".into(), "hb.conf".into()]
    });
    assert!(
        hb.log_text()
            .contains(&format!("listening on http://127.0.0.1:{port}")),
        "localhost is 127.0.0.1 in /etc/hosts: {}",
        hb.log_text()
    );
    healthy_status(&s, &["status", "-c", "hb.conf"]);
    assert!(hb.stop().success());

    // IPv6 in brackets, where the loopback interface has ::1.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let (hb, port) = listening(&s, |port| {
            vec![
                "--script".into(),
                "true".into(),
                "--listen".into(),
                format!("[::1]:{port}"),
            ]
        });
        healthy_status(&s, &["status", &format!("[::1]:{port}")]);
        assert!(hb.stop().success());
    }
}

#[test]
fn a_listen_address_in_no_known_form_is_a_usage_error_saying_what_is_expected() {
    let s = Scratch::new();
    for bad in [
        "8080",
        "localhost",
        "host:port",
        "[::1]",
        "a b:80",
        ":99999",
    ] {
        let (code, err) = run(&s, &["--script", "true", "--listen", bad]);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert_eq!(
            err,
            format!(
                "heartbeat: invalid value '{bad}' for '--listen <ADDR:PORT>': {bad:?} is not an \
                 address; expected HOST:PORT such as 127.0.0.1:8080, localhost:8080, \
                 [::1]:8080 or :8080\n"
            )
        );
        let (code, err) = run(&s, &["status", bad]);
        assert_eq!(code, Some(2), "{bad}: {err}");
    }
    // A name that does not resolve: said, with the name.
    let (code, err) = run(&s, &["status", "no-such-host.invalid:80"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot resolve \"no-such-host.invalid\""),
        "{err}"
    );
}

#[test]
fn the_version_says_the_commit_and_the_tls_library_when_asked() {
    let s = Scratch::new();
    let short = s.run(&["-V"]);
    assert_eq!(short.status.code(), Some(0));
    let expected = format!("heartbeat {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8_lossy(&short.stdout), expected);
    // The version of the OpenSSL loaded, as its own tool reports it.
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output();
    for args in [&["--version"][..], &["-V", "--verbose"]] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{args:?}: {text}");
        assert_eq!(format!("{}\n", lines[0]), expected);
        let commit = lines[1].strip_prefix("commit: ").expect("a commit line");
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{text}"
        );
        assert!(lines[2].starts_with("tls: OpenSSL "), "{text}");
        if let Ok(openssl) = &openssl {
            let tool = String::from_utf8_lossy(&openssl.stdout);
            // "OpenSSL 3.0.17 1 Jul 2025 (Library: OpenSSL 3.0.17 1 Jul 2025)"
            let library = tool
                .split("(Library: ")
                .nth(1)
                .map_or(tool.trim(), |l| l.trim().trim_end_matches(')'));
            assert!(lines[2].contains(library), "{text} vs {tool}");
        }
    }
    let (code, err) = run(&s, &["--verbose"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn sidecar_https_checks_trust_a_ca_file_or_with_insecure_anything() {
    let s = Scratch::new();
    let cert = crate::support::net::self_signed(&["127.0.0.1"]);
    let server = crate::support::net::https_server("127.0.0.1:0", cert.identity, |_| {
        crate::support::net::ok("ok\n")
    });
    let url = format!("https://127.0.0.1:{}/", server.port());
    s.write("ca.pem", &cert.cert_pem);

    let untrusted = s.run(&["--check", &url, "--once"]);
    assert_eq!(untrusted.status.code(), Some(1), "{untrusted:?}");
    let trusted = s.run(&["--check", &url, "--ca-file", "ca.pem", "--once"]);
    assert_eq!(trusted.status.code(), Some(0), "{trusted:?}");
    let insecure = s.run(&["--check", &url, "--insecure", "--once"]);
    assert_eq!(insecure.status.code(), Some(0), "{insecure:?}");
    let said = String::from_utf8_lossy(&insecure.stderr);
    assert!(
        said.contains("WARNING  --insecure: https and grpcs checks accept any certificate"),
        "{said}"
    );

    // Each would be ignored, or contradicts the other: refused.
    let tcp = format!("tcp://127.0.0.1:{}", server.port());
    for (args, expected) in [
        (
            vec!["--check", tcp.as_str(), "--insecure"],
            "heartbeat: --insecure applies to https and grpcs checks, and no --check is https:// or grpcs://\n",
        ),
        (
            vec!["--check", url.as_str(), "--ca-file", "missing.pem"],
            "heartbeat: invalid value 'missing.pem' for '--ca-file <FILE>': no such file; \
             expected a PEM file of CA certificates\n",
        ),
    ] {
        let (code, err) = run(&s, &args);
        assert_eq!((code, err.as_str()), (Some(2), expected), "{args:?}");
    }
    let (code, err) = run(&s, &["--check", &url, "--insecure", "--ca-file", "ca.pem"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    // Spelled out in --help.
    let help = String::from_utf8_lossy(&s.run(&["--help"]).stdout).into_owned();
    assert!(help.contains("DANGEROUS"), "{help}");
}

#[test]
fn sidecar_logs_where_and_as_verbosely_as_told() {
    let s = Scratch::new();
    let hb = s.spawn(&[
        "--script",
        "true",
        "--interval",
        "100ms",
        "--logfile",
        "hb.log",
        "--loglevel",
        "debug",
    ]);
    // A second result that confirms the state is logged at DEBUG.
    let log = s.path("hb.log");
    wait_for("a DEBUG line in hb.log", LONG, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains(" DEBUG    check \"script1\""))
    });
    assert!(hb.stop().success());
    assert_eq!(
        std::fs::read_to_string(s.path("stderr.log")).unwrap(),
        "",
        "the log went to the file"
    );

    let quiet = s.run(&["--script", "true", "--once", "--loglevel", "ERROR"]);
    assert_eq!(quiet.status.code(), Some(0), "{quiet:?}");
    assert!(quiet.stderr.is_empty(), "{quiet:?}");

    let (code, err) = run(&s, &["--script", "true", "--loglevel", "chatty"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("heartbeat: invalid value 'chatty' for '--loglevel <LEVEL>': "),
        "{err}"
    );
    let (code, err) = run(&s, &["--logfile", "hb.log"]);
    assert_eq!(code, Some(2), "needs --check or --script: {err}");
}

/// The exit statuses heartbeat documents, written out here.
const EXIT_STATUSES: [u8; 13] = [0, 1, 2, 3, 65, 69, 70, 71, 73, 75, 76, 77, 78];

/// `heartbeat --generate WHAT`: exit status 0 and stdout.
fn generate(s: &Scratch, what: &str) -> String {
    let out = s.run(&["--generate", what]);
    assert_eq!(out.status.code(), Some(0), "{what}: {out:?}");
    assert!(out.stderr.is_empty(), "{what}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// groff's warnings about a manual page (none when groff is missing).
fn groff_warnings(s: &Scratch, name: &str, page: &str) -> String {
    let path = s.write(name, page);
    match std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
        Err(_) => {
            eprintln!("skipped linting {name}: no groff");
            String::new()
        }
    }
}

/// The tags of the tagged paragraphs (`.TP`) in the section `heading` of a
/// manual page, without their font changes.
fn tags(page: &str, heading: &str) -> Vec<String> {
    let body = page
        .split(&format!(".SH {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = body.split(".SH").next().unwrap_or_default();
    body.lines()
        .zip(body.lines().skip(1))
        .filter(|(l, _)| *l == ".TP")
        .map(|(_, tag)| {
            tag.replace("\\fB", "")
                .replace("\\fR", "")
                .replace("\\_", "_")
        })
        .collect()
}

/// The `.SH` headings of a manual page.
fn headings(page: &str) -> Vec<&str> {
    page.lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .map(|h| h.trim_matches('"'))
        .collect()
}

#[test]
fn the_manual_page_has_exit_statuses_files_and_signals_and_lints_clean() {
    let s = Scratch::new();
    let page = generate(&s, "man");
    assert!(page.contains(".TH heartbeat 1 "), "{page}");
    let headings = headings(&page);
    for wanted in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "EXIT STATUS",
        "FILES",
        "SIGNALS",
        "SEE ALSO",
    ] {
        assert!(headings.contains(&wanted), "{wanted} in {headings:?}");
    }
    let tags = tags(&page, "\"EXIT STATUS\"");
    let expected: Vec<String> = EXIT_STATUSES.iter().map(u8::to_string).collect();
    assert_eq!(tags, expected);
    for signal in ["SIGTERM", "SIGHUP", "SIGUSR1"] {
        assert!(page.contains(signal), "{signal}");
    }
    for flag in [
        "\\-\\-ca\\-file",
        "\\-\\-insecure",
        "\\-\\-generate",
        "\\-\\-timeout",
    ] {
        assert!(page.contains(flag), "{flag}");
    }
    assert!(page.contains(DEFAULT_CONFIG), "{page}");
    assert_eq!(groff_warnings(&s, "heartbeat.1", &page), "");
}

/// The keys of the README's table under `heading`: the first cell of each
/// row, where it is a `key` in backquotes.
fn readme_keys(heading: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    let section = readme
        .split(heading)
        .nth(1)
        .expect("the heading in README.md");
    let table = section
        .split("\n\n")
        .find(|p| p.trim_start().starts_with('|'))
        .unwrap();
    table
        .lines()
        .filter_map(|row| row.split('|').nth(1))
        .flat_map(|cell| {
            cell.split(',')
                .filter_map(|k| k.trim().strip_prefix('`')?.strip_suffix('`'))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_configuration_page_documents_the_keys_the_readme_does_and_lints_clean() {
    let s = Scratch::new();
    let page = generate(&s, "man-conf");
    assert!(page.contains(".TH HEARTBEAT.CONF 5 "), "{page}");
    let headings = headings(&page);
    for wanted in [
        "[general]",
        "[promotions] AND [demotions]",
        "[cluster]",
        "CHECK SECTIONS",
        "EXAMPLE",
    ] {
        assert!(headings.contains(&wanted), "{wanted} in {headings:?}");
    }
    let mut readme_general = readme_keys("### `[general]`");
    let mut page_general = tags(&page, "[general]");
    readme_general.sort();
    page_general.sort();
    assert_eq!(page_general, readme_general);
    let mut readme_check = readme_keys("### Check sections");
    let mut page_check = tags(&page, "\"CHECK SECTIONS\"");
    readme_check.sort();
    page_check.sort();
    assert_eq!(page_check, readme_check);
    let mut readme_cluster = readme_keys("### `[cluster]`");
    let mut page_cluster = tags(&page, "[cluster]");
    readme_cluster.sort();
    page_cluster.sort();
    assert_eq!(page_cluster, readme_cluster);
    assert_eq!(groff_warnings(&s, "heartbeat.conf.5", &page), "");
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    let s = Scratch::new();
    let script_for = [
        ("complete-bash", "bash", "complete -F _heartbeat"),
        ("complete-zsh", "zsh", "#compdef heartbeat"),
        ("complete-fish", "fish", "complete -c heartbeat"),
    ];
    for (what, shell, marker) in script_for {
        let script = generate(&s, what);
        assert!(script.contains(marker), "{what}: {script}");
        for flag in ["check", "listen", "ca-file"] {
            // fish writes `-l check`, the others `--check`.
            let written = if shell == "fish" {
                format!("-l {flag}")
            } else {
                format!("--{flag}")
            };
            assert!(script.contains(&written), "{what} completes --{flag}");
        }
        assert!(script.contains("status"), "{what} completes status");
        let path = s.write(&format!("completion.{shell}"), &script);
        let check = match shell {
            "fish" => std::process::Command::new(shell)
                .arg("--no-execute")
                .arg(&path)
                .output(),
            _ => std::process::Command::new(shell)
                .arg("-n")
                .arg(&path)
                .output(),
        };
        match check {
            Ok(out) => assert!(out.status.success(), "{shell}: {out:?}"),
            Err(_) => eprintln!("skipped parsing the {shell} script: no {shell}"),
        }
    }
    // --generate goes alone.
    let (code, err) = run(&s, &["--generate", "man", "--once"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&s, &["--generate", "troff"]);
    assert_eq!(code, Some(2), "{err}");
}

/// The README's table of exit statuses lists exactly the statuses of the
/// manual page.
#[test]
fn the_readmes_exit_statuses_match_the_binary() {
    let readme = include_str!("../README.md");
    let table = readme
        .split("Exit statuses (beyond")
        .nth(1)
        .and_then(|t| t.split("\n\n").nth(1))
        .expect("the exit status table");
    let codes: Vec<u8> = table
        .lines()
        .filter_map(|row| row.split('|').nth(1)?.trim().parse().ok())
        .collect();
    assert_eq!(codes, EXIT_STATUSES);
}

/// Every flag the README's "Command line" summary shows is one the binary
/// takes (in `--help` or `status --help`).
#[test]
fn the_readmes_command_line_names_only_flags_the_binary_has() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("## Command line\n\n```\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the command line block");
    let s = Scratch::new();
    let help: String = [&["--help"][..], &["status", "--help"]]
        .iter()
        .map(|args| String::from_utf8_lossy(&s.run(args).stdout).into_owned())
        .collect();
    let flags: Vec<&str> = block
        .split_whitespace()
        .map(|w| w.trim_matches(|c| matches!(c, '[' | ']' | ',' | '(' | ')')))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .collect();
    assert!(flags.len() > 10, "{flags:?}");
    for flag in flags {
        let flag = flag.split('|').next().unwrap();
        let named = help.match_indices(flag).any(|(at, _)| {
            let next = help[at + flag.len()..].chars().next();
            next.is_none_or(|c| c.is_whitespace() || c == ',' || c == '=')
        });
        assert!(named, "{flag} is in the README but not in --help");
    }
}

/// A name in `listen` is resolved on a thread of its own; detaching, which
/// refuses to run beside another thread, still works after it.
#[test]
fn a_daemon_with_a_name_to_listen_on_detaches() {
    use crate::support::bin::{Adopted, adopt_orphans, read_number};
    adopt_orphans();
    let s = Scratch::new();
    let port = free_port();
    s.write(
        "hb.conf",
        &format!(
            "[general]\nlisten = localhost:{port}\npidfile = hb.pid\nlogfile = hb.log\n{ONE_CHECK}"
        ),
    );
    let mut launcher = s.spawn(&["-d", "-c", "hb.conf"]);
    let status = launcher.wait_exit(LONG).expect("the launcher returns");
    assert_eq!(status.code(), Some(0), "{}", launcher.log_text());
    let pid = read_number(&s.path("hb.pid")).expect("a PID in hb.pid");
    let mut daemon = Adopted::new(pid);
    healthy_status(&s, &["status", &format!("localhost:{port}")]);
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let status = daemon.wait_exit(LONG).expect("the daemon stops");
    assert_eq!(status.code(), Some(0));
}
