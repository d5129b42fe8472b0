//! Running without a configuration file (SPEC §8): checks given on the
//! command line, for sidecars and load-balancer helpers.
//!
//! [`config_from_args`] turns `--check URL`, `--script CMD`, `--interval`,
//! `--timeout`, `--retries`, `--listen` and `--exit-on-failure` into the same
//! validated [`Config`] a file gives, so the engine cannot tell the
//! difference.
//!
//! Every check feeds one action group, [`GROUP`] (`sidecar`), whose
//! promotion and demotion are the shell builtin `true`: the model requires
//! both commands, and a no-op keeps the engine's action path (state
//! variables, logging, metrics) identical in both modes. What a sidecar is
//! for — answering `/`, `/ready` and `/alive`, and exiting with
//! `--exit-on-failure` — follows from the group's health, not from its
//! actions.
//!
//! Checks given by URL are named after the URL as typed (so `/ready`
//! reasons read `http://127.0.0.1:8080/health: HTTP 503`); scripts are named
//! `script1`, `script2`, … in order.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::InlineChecks;
use crate::model::{CheckSpec, Config, General, GroupSpec, HttpProbe, Probe, StatusSet};

/// The name of the one action group of a configuration-free run.
pub const GROUP: &str = "sidecar";

/// The promotion and demotion of [`GROUP`]: the shell builtin `true`.
pub const NO_OP: &str = "true";

/// `--interval` when not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// `--timeout` when not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest thread pool a configuration-free run gets.
pub const MAX_THREADS: usize = 64;

const URL_FORMS: &str = "tcp://HOST:PORT, http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH]";

/// Builds a validated configuration from checks given on the command line.
///
/// Defaults: `--interval` 10 s, `--timeout` 5 s, `--retries` 1 (the `fall`
/// of every check; `rise` is 1); the thread pool has one thread per check,
/// at most [`MAX_THREADS`]. Everything else is the `[general]` default.
///
/// # Errors
/// A usage message naming the flag, the value and what was expected, in
/// the manner of clap: `invalid value 'localhost:80' for '--check <URL>': no
/// scheme; expected tcp://HOST:PORT, …`. Also when no check is given at all.
pub fn config_from_args(
    inline: &InlineChecks,
    listen: Option<SocketAddr>,
    exit_on_failure: bool,
) -> Result<Config, String> {
    if inline.checks.is_empty() && inline.scripts.is_empty() {
        return Err(
            "no checks: give --check URL or --script CMD (both repeatable), \
                    or a configuration file with -c FILE"
                .to_owned(),
        );
    }
    let interval = match &inline.interval {
        Some(text) => positive_duration("--interval <DURATION>", text)?,
        None => DEFAULT_INTERVAL,
    };
    let timeout = match &inline.timeout {
        Some(text) => positive_duration("--timeout <DURATION>", text)?,
        None => DEFAULT_TIMEOUT,
    };
    let fail_status = match inline.fail_status {
        Some(code) if !(100..=599).contains(&code) => {
            return Err(invalid(
                "--fail-status <CODE>",
                &code.to_string(),
                "expected an HTTP status from 100 to 599",
            ));
        }
        Some(code) => code,
        None => General::default().fail_status,
    };
    if (inline.on_demand || inline.fail_status.is_some()) && listen.is_none() {
        return Err(
            "--on-demand and --fail-status shape the status server's answers: add --listen ADDR:PORT"
                .to_owned(),
        );
    }
    let fall = match inline.retries {
        Some(0) => {
            return Err(
                "invalid value '0' for '--retries <N>': expected at least 1 (the number of \
                 consecutive failures before a check counts as unhealthy)"
                    .to_owned(),
            );
        }
        Some(n) => n,
        None => 1,
    };

    let spec = |name: String, probe: Probe| CheckSpec {
        name,
        probe,
        timeout,
        groups: vec![GROUP.to_owned()],
        rise: 1,
        fall,
    };
    let mut checks: Vec<CheckSpec> = Vec::new();
    for url in &inline.checks {
        let probe = parse_check_url(url).map_err(|why| invalid("--check <URL>", url, &why))?;
        let name = url.trim().to_owned();
        if checks.iter().any(|c| c.name == name) {
            return Err(invalid("--check <URL>", url, "given more than once"));
        }
        checks.push(spec(name, probe));
    }
    for (i, command) in inline.scripts.iter().enumerate() {
        if command.trim().is_empty() {
            return Err(invalid(
                "--script <CMD>",
                command,
                "empty; expected a shell command",
            ));
        }
        let probe = Probe::Script {
            command: command.clone(),
        };
        checks.push(spec(format!("script{}", i + 1), probe));
    }

    Ok(Config {
        path: None,
        general: General {
            threads: checks.len().clamp(1, MAX_THREADS),
            interval,
            listen,
            on_demand: inline.on_demand,
            fail_status,
            exit_on_failure,
            ..General::default()
        },
        groups: vec![GroupSpec {
            name: GROUP.to_owned(),
            promotion: NO_OP.to_owned(),
            demotion: NO_OP.to_owned(),
        }],
        checks,
    })
}

/// clap's wording for a bad flag value.
fn invalid(flag: &str, value: &str, why: &str) -> String {
    format!("invalid value '{value}' for '{flag}': {why}")
}

fn positive_duration(flag: &str, text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text).map_err(|why| invalid(flag, text, &why))?;
    if duration.is_zero() {
        return Err(invalid(flag, text, "must be more than zero"));
    }
    Ok(duration)
}

/// Parses a duration as the configuration file writes it: a plain number is
/// seconds (`5`, `0.5`); units are accepted too (`250ms`, `5s`, `1m30s`,
/// as the `humantime` crate reads them).
///
/// # Errors
/// What was expected, for a negative, non-finite or unreadable value.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 10, 0.5, 250ms, 5s or 1m30s";
    let text = text.trim();
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+') {
        if let Ok(seconds) = text.parse::<f64>() {
            return Duration::try_from_secs_f64(seconds).map_err(|_| EXPECTED.to_owned());
        }
    }
    humantime::parse_duration(text).map_err(|_| EXPECTED.to_owned())
}

/// Parses a check URL: `tcp://HOST:PORT`, `http://HOST[:PORT][/PATH]` or
/// `https://HOST[:PORT][/PATH]` (scheme in any case). IPv6 addresses go in
/// brackets (`tcp://[::1]:5432`). HTTP defaults to port 80, HTTPS to 443,
/// both to path `/`; a query is kept, a `#fragment` dropped.
///
/// # Errors
/// Why the URL is not one of those forms (without the flag, which the
/// caller adds).
pub fn parse_check_url(url: &str) -> Result<Probe, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("no scheme; expected {URL_FORMS}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "tcp" => None,
        "http" => Some(80),
        "https" => Some(443),
        "" => return Err(format!("no scheme; expected {URL_FORMS}")),
        other => {
            return Err(format!(
                "unknown scheme '{other}'; expected tcp, http or https"
            ));
        }
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_owned());
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err(format!("no host; expected {URL_FORMS}"));
    }
    if host.contains(|c: char| c.is_whitespace()) {
        return Err(format!("bad host '{host}'"));
    }
    let port = match port {
        Some(text) => Some(parse_port(text)?),
        None => None,
    };
    match default_port {
        None => {
            let Some(port) = port else {
                return Err("no port; expected tcp://HOST:PORT".to_owned());
            };
            if !path.is_empty() && path != "/" {
                return Err(format!(
                    "a tcp check has no path ('{path}'); expected tcp://HOST:PORT"
                ));
            }
            Ok(Probe::Tcp {
                host: host.to_owned(),
                port,
            })
        }
        Some(default) => {
            let path = match path {
                "" => "/".to_owned(),
                p if p.starts_with('?') => format!("/{p}"),
                p => p.to_owned(),
            };
            Ok(Probe::Http(HttpProbe {
                https: scheme == "https",
                host: host.to_owned(),
                port: port.unwrap_or(default),
                path,
                expect_status: StatusSet::default(),
                expect_body: None,
                tls_verify: true,
                ca_file: None,
            }))
        }
    }
}

/// `host[:port]` or `[v6][:port]`: the host (without brackets) and the port
/// text, if any.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err("no closing ']' after the IPv6 address".to_owned());
        };
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected '{after}' after the IPv6 address")),
            },
        };
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            Ok((host, Some(port)))
        }
        _ => Err("an IPv6 address goes in brackets, e.g. tcp://[::1]:5432".to_owned()),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "bad port '{text}'; expected a number from 1 to 65535"
        )),
    }
}
