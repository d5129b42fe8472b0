//! Running without a configuration file (SPEC §8): checks given on the
//! command line, for sidecars and load-balancer helpers.
//!
//! [`config_from_args`] turns `--check URL`, `--script CMD`, `--interval`,
//! `--timeout`, `--retries`, `--listen`, `--exit-on-failure`, `--ca-file`,
//! `--insecure`, `--logfile`, `--loglevel` and `--logformat` into the same
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

use crate::app::cli::InlineChecks;
use crate::app::error::Error;
use crate::app::mode::invalid;
use crate::config;
use crate::model::{
    CheckSpec, Config, DEFAULT_CHECK_TIMEOUT, General, GroupSpec, LogFormat, LogTarget, Probe,
    default_threads,
};
use log::LevelFilter;

/// The name of the one action group of a configuration-free run.
pub const GROUP: &str = "sidecar";

/// The promotion and demotion of [`GROUP`]: the shell builtin `true`.
pub const NO_OP: &str = "true";

/// `--interval` when not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Builds a validated configuration from checks given on the command line.
///
/// Defaults: `--interval` 10 s, `--timeout` 5 s, `--retries` 1 (the `fall`
/// of every check; `rise` is 1); the thread pool has one thread per check,
/// at most [`MAX_DEFAULT_THREADS`](crate::model::MAX_DEFAULT_THREADS).
/// Everything else is the `[general]` default.
///
/// # Errors
/// [`Error::Usage`] naming the flag, the value and what was expected, in
/// the manner of clap: `invalid value 'localhost:80' for '--check <URL>': no
/// scheme; expected tcp://HOST:PORT, …`. Also when no check is given at all.
pub fn config_from_args(
    inline: &InlineChecks,
    listen: Option<SocketAddr>,
    exit_on_failure: bool,
) -> Result<Config, Error> {
    if inline.checks.is_empty() && inline.scripts.is_empty() {
        return Err(Error::Usage(
            "no checks: give --check URL or --script CMD (both repeatable), \
             or a configuration file with -c FILE"
                .to_owned(),
        ));
    }
    let timing = Timing::from_flags(inline)?;
    let fail_status = fail_status(inline, listen)?;
    let mut checks = checks(inline, &timing)?;
    tls(inline, &mut checks)?;
    let (log, log_level, log_format) = log(inline)?;
    Ok(Config {
        path: None,
        general: General {
            threads: default_threads(checks.len()),
            interval: timing.interval,
            listen,
            on_demand: inline.on_demand,
            fail_status,
            exit_on_failure,
            log,
            log_level,
            log_format,
            ..General::default()
        },
        groups: vec![GroupSpec {
            name: GROUP.to_owned(),
            promotion: NO_OP.to_owned(),
            demotion: NO_OP.to_owned(),
        }],
        checks,
        cluster: None,
    })
}

/// `--interval`, `--timeout` and `--retries`, read.
struct Timing {
    interval: Duration,
    timeout: Duration,
    fall: u32,
}

impl Timing {
    fn from_flags(inline: &InlineChecks) -> Result<Timing, Error> {
        let interval = match &inline.interval {
            Some(text) => positive_duration("--interval <DURATION>", text)?,
            None => DEFAULT_INTERVAL,
        };
        let timeout = match &inline.timeout {
            Some(text) => positive_duration("--timeout <DURATION>", text)?,
            None => DEFAULT_CHECK_TIMEOUT,
        };
        let fall = match inline.retries {
            Some(0) => {
                return Err(Error::Usage(
                    "invalid value '0' for '--retries <N>': expected at least 1 (the number of \
                     consecutive failures before a check counts as unhealthy)"
                        .to_owned(),
                ));
            }
            Some(n) => n,
            None => 1,
        };
        Ok(Timing {
            interval,
            timeout,
            fall,
        })
    }
}

/// `--fail-status`, which, like `--on-demand`, shapes the status server's
/// answers and so needs `--listen`.
fn fail_status(inline: &InlineChecks, listen: Option<SocketAddr>) -> Result<u16, Error> {
    if (inline.on_demand || inline.fail_status.is_some()) && listen.is_none() {
        return Err(Error::Usage(
            "--on-demand and --fail-status shape the status server's answers: add --listen ADDR:PORT"
                .to_owned(),
        ));
    }
    match inline.fail_status {
        Some(code) if !(100..=599).contains(&code) => Err(invalid(
            "--fail-status <CODE>",
            &code.to_string(),
            "expected an HTTP status from 100 to 599",
        )),
        Some(code) => Ok(code),
        None => Ok(General::default().fail_status),
    }
}

/// The checks of `--check URL` (named after the URL) and `--script CMD`
/// (`script1`, `script2`, …), all feeding [`GROUP`].
fn checks(inline: &InlineChecks, timing: &Timing) -> Result<Vec<CheckSpec>, Error> {
    let spec = |name: String, probe: Probe| CheckSpec {
        name,
        probe,
        timeout: timing.timeout,
        groups: vec![GROUP.to_owned()],
        rise: 1,
        fall: timing.fall,
        interval: None,
        fast_interval: None,
    };
    let mut checks: Vec<CheckSpec> = Vec::new();
    for url in &inline.checks {
        let shown = crate::model::redact_url(url);
        let probe =
            config::url::parse(url).map_err(|why| invalid("--check <URL>", &shown, &why))?;
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
    Ok(checks)
}

/// `--ca-file` and `--insecure`, applied to every https check (there must
/// be one: otherwise the flag would be ignored).
fn tls(inline: &InlineChecks, checks: &mut [CheckSpec]) -> Result<(), Error> {
    let flag = match (&inline.ca_file, inline.insecure) {
        (Some(_), _) => "--ca-file <FILE>",
        (None, true) => "--insecure",
        (None, false) => return Ok(()),
    };
    let ca_file = match &inline.ca_file {
        Some(path) => {
            let text = path.display().to_string();
            if !path.is_file() {
                return Err(invalid(
                    flag,
                    &text,
                    "no such file; expected a PEM file of CA certificates",
                ));
            }
            Some(std::path::absolute(path).map_err(|e| invalid(flag, &text, &e.to_string()))?)
        }
        None => None,
    };
    let mut https = 0;
    for check in checks.iter_mut() {
        match &mut check.probe {
            Probe::Http(probe) if probe.https => {
                https += 1;
                probe.ca_file.clone_from(&ca_file);
                probe.tls_verify = !inline.insecure;
            }
            Probe::Grpc(probe) => {
                if let Some(tls) = &mut probe.tls {
                    https += 1;
                    tls.ca_file.clone_from(&ca_file);
                    tls.verify = !inline.insecure;
                }
            }
            _ => {}
        }
    }
    if https == 0 {
        return Err(Error::Usage(format!(
            "{} applies to https and grpcs checks, and no --check is https:// or grpcs://",
            flag.split(' ').next().unwrap_or(flag)
        )));
    }
    Ok(())
}

/// `--logfile`, `--loglevel` and `--logformat`, read as `logfile`,
/// `loglevel` and `logformat` are in the file ([`config::log_target`],
/// [`config::value::log_level`], [`LogFormat::from_word`]); a relative
/// path is made absolute now, so that reopening it after detaching (which
/// changes to `/`) finds the same file.
fn log(inline: &InlineChecks) -> Result<(LogTarget, LevelFilter, LogFormat), Error> {
    let base = std::env::current_dir()
        .map_err(|e| Error::Usage(format!("cannot read the current directory: {e}")))?;
    let target = match &inline.logfile {
        Some(text) => config::log_target(text.trim(), &base),
        None => LogTarget::Stderr,
    };
    let level = match &inline.loglevel {
        Some(text) => config::value::log_level(text.trim())
            .map_err(|why| invalid("--loglevel <LEVEL>", text, &why))?,
        None => General::default().log_level,
    };
    let format = match &inline.logformat {
        Some(text) => LogFormat::from_word(text.trim()).ok_or_else(|| {
            invalid(
                "--logformat <text|json>",
                text,
                &format!(
                    "{:?} is not a log format; expected text or json",
                    text.trim()
                ),
            )
        })?,
        None => LogFormat::default(),
    };
    Ok((target, level, format))
}

/// What the operator should hear about a configuration the command line
/// made: that `--insecure` verifies nothing.
pub fn warnings(config: &Config) -> Vec<String> {
    let insecure = config.checks.iter().any(|c| match &c.probe {
        Probe::Http(p) => p.https && !p.tls_verify,
        Probe::Grpc(p) => p.tls.as_ref().is_some_and(|t| !t.verify),
        _ => false,
    });
    if insecure {
        vec![
            "--insecure: https and grpcs checks accept any certificate for any name; \
             trust an internal CA with --ca-file instead"
                .to_owned(),
        ]
    } else {
        Vec::new()
    }
}

/// A duration flag, read as the configuration file reads durations
/// ([`config::value::duration`]): above zero, at most a day.
fn positive_duration(flag: &str, text: &str) -> Result<Duration, Error> {
    config::value::duration(text.trim()).map_err(|why| invalid(flag, text, &why))
}
