//! Configuration-free mode: checks given on the command line become a
//! validated configuration, and bad flags are usage errors that say what
//! was expected.

use std::time::Duration;

use heartbeat::app::cli::InlineChecks;
use heartbeat::app::sidecar::config_from_args;
use heartbeat::model::{Config, HttpProbe, Probe, StatusSet};

fn inline(checks: &[&str], scripts: &[&str]) -> InlineChecks {
    InlineChecks {
        checks: checks.iter().map(|s| s.to_string()).collect(),
        scripts: scripts.iter().map(|s| s.to_string()).collect(),
        ..InlineChecks::default()
    }
}

fn config(checks: &[&str]) -> Config {
    config_from_args(&inline(checks, &[]), None, false).expect("a valid command line")
}

fn probe(url: &str) -> Probe {
    config(&[url]).checks.remove(0).probe
}

fn error(args: InlineChecks) -> String {
    let err = config_from_args(&args, None, false).expect_err("a usage error");
    assert_eq!(err.exit() as u8, 2, "{err}");
    err.to_string()
}

fn check_error(url: &str) -> String {
    error(inline(&[url], &[]))
}

fn http(https: bool, host: &str, port: u16, path: &str) -> Probe {
    Probe::Http(HttpProbe {
        https,
        host: host.into(),
        port,
        path: path.into(),
        expect_status: StatusSet::default(),
        expect_body: None,
        tls_verify: true,
        ca_file: None,
        tls_min_validity: None,
    })
}

#[test]
fn defaults_one_group_of_no_ops_and_a_thread_per_check() {
    let listen = "127.0.0.1:8080".parse().unwrap();
    let args = inline(
        &["tcp://db:5432", "https://example.org/health"],
        &["pgrep -x nginx"],
    );
    let config = config_from_args(&args, Some(listen), true).unwrap();
    assert_eq!(config.path, None);
    assert_eq!(config.general.interval, Duration::from_secs(10));
    assert_eq!(config.general.listen, Some(listen));
    assert!(config.general.exit_on_failure);
    assert_eq!(config.general.threads, 3);
    assert_eq!(config.groups.len(), 1);
    assert_eq!(config.groups[0].name, "sidecar");
    assert_eq!(config.groups[0].promotion, "true");
    assert_eq!(config.groups[0].demotion, "true");
    let names: Vec<_> = config.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["tcp://db:5432", "https://example.org/health", "script1"]
    );
    for check in &config.checks {
        assert_eq!(check.timeout, Duration::from_secs(5), "{}", check.name);
        assert_eq!((check.rise, check.fall), (1, 1), "{}", check.name);
        assert_eq!(check.groups, ["sidecar"], "{}", check.name);
    }
    assert_eq!(
        config.checks[2].probe,
        Probe::Script {
            command: "pgrep -x nginx".into()
        }
    );
}

#[test]
fn interval_timeout_and_retries_are_applied() {
    let args = InlineChecks {
        interval: Some("1m30s".into()),
        timeout: Some("250ms".into()),
        retries: Some(3),
        ..inline(&["tcp://127.0.0.1:80"], &[])
    };
    let config = config_from_args(&args, None, false).unwrap();
    assert_eq!(config.general.interval, Duration::from_secs(90));
    assert_eq!(config.checks[0].timeout, Duration::from_millis(250));
    assert_eq!((config.checks[0].rise, config.checks[0].fall), (1, 3));
    assert!(!config.general.exit_on_failure);
    assert_eq!(config.general.listen, None);
}

#[test]
fn the_thread_pool_stops_at_64() {
    let urls: Vec<String> = (1..=70).map(|p| format!("tcp://127.0.0.1:{p}")).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    assert_eq!(config(&urls).general.threads, 64);
}

#[test]
fn durations_are_seconds_or_carry_units() {
    let cases = [
        ("5", Duration::from_secs(5)),
        ("0.5", Duration::from_millis(500)),
        (" 10 ", Duration::from_secs(10)),
        ("250ms", Duration::from_millis(250)),
        ("1m30s", Duration::from_secs(90)),
    ];
    for (text, expected) in cases {
        let args = InlineChecks {
            interval: Some(text.into()),
            timeout: Some(text.into()),
            ..inline(&["tcp://h:1"], &[])
        };
        let config = config_from_args(&args, None, false).unwrap();
        assert_eq!(config.general.interval, expected, "{text:?}");
        assert_eq!(config.checks[0].timeout, expected, "{text:?}");
    }
}

#[test]
fn urls_become_probes() {
    assert_eq!(
        probe("tcp://db.internal:5432"),
        Probe::tcp("db.internal", 5432)
    );
    assert_eq!(probe("tcp://[::1]:80"), Probe::tcp("::1", 80));
    assert_eq!(probe("TCP://10.0.0.1:22/"), Probe::tcp("10.0.0.1", 22));
    assert_eq!(probe("http://localhost"), http(false, "localhost", 80, "/"));
    assert_eq!(
        probe("https://example.org"),
        http(true, "example.org", 443, "/")
    );
    assert_eq!(
        probe("http://127.0.0.1:8080/health?deep=1#top"),
        http(false, "127.0.0.1", 8080, "/health?deep=1")
    );
    assert_eq!(
        probe("https://[2001:db8::1]:8443/ready"),
        http(true, "2001:db8::1", 8443, "/ready")
    );
    assert_eq!(probe("http://h?x=1"), http(false, "h", 80, "/?x=1"));
    assert_eq!(probe("http://[::1]"), http(false, "::1", 80, "/"));
}

#[test]
fn bad_urls_are_usage_errors_that_say_what_was_expected() {
    let forms = "tcp://HOST:PORT, http://HOST[:PORT][/PATH], https://HOST[:PORT][/PATH] or grpc[s]://HOST:PORT[/SERVICE]";
    let cases = [
        (
            "localhost:80",
            format!(
                "invalid value 'localhost:80' for '--check <URL>': no scheme; expected {forms}"
            ),
        ),
        (
            "://h:1",
            format!("invalid value '://h:1' for '--check <URL>': no scheme; expected {forms}"),
        ),
        (
            "ftp://h/",
            "invalid value 'ftp://h/' for '--check <URL>': unknown scheme 'ftp'; expected tcp, \
             http, https, grpc or grpcs"
                .to_owned(),
        ),
        (
            "tcp://db",
            "invalid value 'tcp://db' for '--check <URL>': no port; expected tcp://HOST:PORT"
                .to_owned(),
        ),
        (
            "tcp://db:",
            "invalid value 'tcp://db:' for '--check <URL>': \"\" is not a port; expected a number from \
             1 to 65535"
                .to_owned(),
        ),
        (
            "http://h:99999/",
            "invalid value 'http://h:99999/' for '--check <URL>': \"99999\" is not a port; expected a \
             number from 1 to 65535"
                .to_owned(),
        ),
        (
            "tcp://h:0",
            "invalid value 'tcp://h:0' for '--check <URL>': \"0\" is not a port; expected a number from \
             1 to 65535"
                .to_owned(),
        ),
        (
            "http://h:http/",
            "invalid value 'http://h:http/' for '--check <URL>': \"http\" is not a port; expected a \
             number from 1 to 65535"
                .to_owned(),
        ),
        (
            "tcp://h:80/x",
            "invalid value 'tcp://h:80/x' for '--check <URL>': a tcp check has no path ('/x'); \
             expected tcp://HOST:PORT"
                .to_owned(),
        ),
        (
            "http:///health",
            format!(
                "invalid value 'http:///health' for '--check <URL>': no host; expected {forms}"
            ),
        ),
        (
            "tcp://::1:80",
            "invalid value 'tcp://::1:80' for '--check <URL>': an IPv6 address goes in brackets, \
             e.g. tcp://[::1]:5432"
                .to_owned(),
        ),
        (
            "tcp://[::1:80",
            "invalid value 'tcp://[::1:80' for '--check <URL>': no closing ']' after the IPv6 \
             address"
                .to_owned(),
        ),
        (
            "http://user:secret@h/",
            "invalid value 'http://[redacted]@h/' for '--check <URL>': credentials in the URL \
             are not supported"
                .to_owned(),
        ),
    ];
    for (url, expected) in cases {
        assert_eq!(check_error(url), expected, "{url}");
    }
}

#[test]
fn the_same_url_twice_is_an_error() {
    assert_eq!(
        check_error_twice("http://h/"),
        "invalid value 'http://h/' for '--check <URL>': given more than once"
    );
}

fn check_error_twice(url: &str) -> String {
    error(inline(&[url, url], &[]))
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let one = || inline(&["tcp://h:1"], &[]);
    let cases = [
        (
            InlineChecks {
                interval: Some("0".into()),
                ..one()
            },
            "invalid value '0' for '--interval <DURATION>': \"0\" is zero; expected a duration above zero",
        ),
        (
            InlineChecks {
                interval: Some("soon".into()),
                ..one()
            },
            "invalid value 'soon' for '--interval <DURATION>': \"soon\" is not a duration; \
             expected seconds (5, 0.5) or a duration with units (250ms, 5s, 1m30s)",
        ),
        (
            InlineChecks {
                timeout: Some("0s".into()),
                ..one()
            },
            "invalid value '0s' for '--timeout <DURATION>': \"0s\" is zero; expected a duration above zero",
        ),
        (
            InlineChecks {
                retries: Some(0),
                ..one()
            },
            "invalid value '0' for '--retries <N>': expected at least 1 (the number of \
             consecutive failures before a check counts as unhealthy)",
        ),
        (
            inline(&[], &["  "]),
            "invalid value '  ' for '--script <CMD>': empty; expected a shell command",
        ),
        (
            InlineChecks::default(),
            "no checks: give --check URL or --script CMD (both repeatable), or a configuration \
             file with -c FILE",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(error(args), expected);
    }
}

#[test]
fn from_the_real_command_line() {
    use clap::Parser;
    let cli = heartbeat::app::cli::Cli::try_parse_from([
        "heartbeat",
        "--check",
        "tcp://[::1]:6379",
        "--script",
        "pgrep nginx",
        "--interval",
        "0.5",
        "--retries",
        "2",
        "--listen",
        "127.0.0.1:9000",
        "--exit-on-failure",
    ])
    .unwrap();
    let listen = cli.listen.as_deref().map(|l| l.parse().unwrap());
    let config = config_from_args(&cli.inline, listen, cli.exit_on_failure).unwrap();
    assert_eq!(config.general.interval, Duration::from_millis(500));
    assert_eq!(config.checks.len(), 2);
    assert_eq!(config.checks[0].fall, 2);
    assert_eq!(config.checks[1].name, "script1");
    assert!(config.general.exit_on_failure);
}

#[test]
fn a_load_balancer_helper_needs_no_file_on_demand_with_its_failure_status() {
    let listen = "127.0.0.1:8080".parse().unwrap();
    let args = InlineChecks {
        on_demand: true,
        fail_status: Some(504),
        ..inline(&["tcp://127.0.0.1:5432"], &["test -S /run/app.sock"])
    };
    let config = config_from_args(&args, Some(listen), false).unwrap();
    assert!(config.general.on_demand);
    assert_eq!(config.general.fail_status, 504);

    let bad = InlineChecks {
        fail_status: Some(42),
        ..inline(&["tcp://127.0.0.1:5432"], &[])
    };
    assert_eq!(
        config_from_args(&bad, Some(listen), false)
            .unwrap_err()
            .to_string(),
        "invalid value '42' for '--fail-status <CODE>': expected an HTTP status from 100 to 599"
    );
    let without_listen = InlineChecks {
        on_demand: true,
        ..inline(&["tcp://127.0.0.1:5432"], &[])
    };
    assert!(
        error(without_listen).contains("add --listen ADDR:PORT"),
        "--on-demand without --listen is refused"
    );
}
