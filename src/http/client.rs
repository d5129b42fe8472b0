//! `heartbeat status [ADDR:PORT]`: asks a running instance for its status and
//! prints it for a human.
//!
//! It reads `GET /status` (the [`StatusReport`] JSON) from the instance's
//! status server with a short timeout, prints one table of action groups
//! and one of checks, and exits like `--once` does: 0 when the instance is
//! healthy, 1 when it is not. When nothing answers it exits 69
//! (`EX_UNAVAILABLE`, sysexits.h: "a service is unavailable"); when
//! something answers that is not a heartbeat status server, 76
//! (`EX_PROTOCOL`: "the remote system returned something that was not
//! possible during a protocol exchange").

use std::fmt::Write as _;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::exit::Exit;
use crate::model::short_duration;
use crate::status::report::{CheckReport, GroupReport, StatusReport};

/// How long the whole request may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest `/status` document read, in bytes.
const MAX_BODY: u64 = 8 * 1024 * 1024;

/// Why the status could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Nothing answered: refused, timed out, unreachable. Exit status 69.
    Unavailable(String),
    /// Something answered, but not with a status document. Exit status 76.
    Protocol(String),
}

impl FetchError {
    /// The exit status for this error: [`Exit::Unavailable`] or
    /// [`Exit::Protocol`].
    pub fn exit(&self) -> Exit {
        match self {
            FetchError::Unavailable(_) => Exit::Unavailable,
            FetchError::Protocol(_) => Exit::Protocol,
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unavailable(m) | FetchError::Protocol(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FetchError {}

/// The address to connect to for a listen address: an unspecified address
/// (`0.0.0.0`, `::`) means this host, so it becomes the loopback address.
pub fn connect_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// Reads `GET /status` from the instance listening at `addresses` (those a
/// name resolved to, or one), the whole exchange bounded by `timeout`: each
/// address is tried in turn while nothing answers at the ones before, as a
/// browser does.
///
/// # Errors
/// [`FetchError::Unavailable`] when nothing answers in time at any of them
/// (the message names the last URL tried), [`FetchError::Protocol`] when
/// the answer is not HTTP 200 with a status document. An empty list is
/// [`FetchError::Unavailable`].
pub fn fetch(addresses: &[SocketAddr], timeout: Duration) -> Result<StatusReport, FetchError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = FetchError::Unavailable("no address to ask".to_owned());
    for &address in addresses {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match fetch_one(address, left) {
            Err(FetchError::Unavailable(why)) => last = FetchError::Unavailable(why),
            answered => return answered,
        }
    }
    Err(last)
}

/// [`fetch`] at one address.
fn fetch_one(address: SocketAddr, timeout: Duration) -> Result<StatusReport, FetchError> {
    let url = format!("http://{}/status", connect_address(address));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .build()
        .new_agent();
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| FetchError::Unavailable(format!("cannot reach heartbeat at {url}: {e}")))?;
    let status = response.status();
    if status != 200 {
        return Err(FetchError::Protocol(format!(
            "{url} answered HTTP {}: is a heartbeat status server listening there?",
            status.as_u16()
        )));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| FetchError::Unavailable(format!("cannot read {url}: {e}")))?;
    serde_json::from_str(&body).map_err(|e| {
        FetchError::Protocol(format!(
            "{url} did not answer with a heartbeat status document: {e}"
        ))
    })
}

/// Runs the subcommand: fetches, prints the tables on `out`, and returns
/// the exit status: [`Exit::Ok`] when the instance is healthy,
/// [`Exit::Unhealthy`] when not.
///
/// # Errors
/// Those of [`fetch`], for the caller to print (they carry their exit
/// status, [`FetchError::exit`]).
pub fn run(
    addresses: &[SocketAddr],
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<Exit, FetchError> {
    run_as(addresses, timeout, Output::Tables, out)
}

/// How `heartbeat status` prints the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The tables of [`render`].
    #[default]
    Tables,
    /// The `/status` document ([`StatusReport`]), pretty-printed JSON
    /// (`--json`), for scripts: groups with their `hold`, checks.
    Json,
}

/// [`run`], printing the report as `output` says.
///
/// # Errors
/// Those of [`fetch`].
pub fn run_as(
    addresses: &[SocketAddr],
    timeout: Duration,
    output: Output,
    out: &mut dyn Write,
) -> Result<Exit, FetchError> {
    let report = fetch(addresses, timeout)?;
    let text = match output {
        Output::Tables => render(&report),
        Output::Json => {
            let mut json = serde_json::to_string_pretty(&report).unwrap_or_default();
            json.push('\n');
            json
        }
    };
    // A closed stdout (`| head`) is no reason to change the answer.
    let _ = out.write_all(text.as_bytes());
    Ok(if report.healthy {
        Exit::Ok
    } else {
        Exit::Unhealthy
    })
}

/// The human form of a report: a summary line, then a table of groups and
/// a table of checks.
///
/// ```text
/// unhealthy: 12 rounds, the latest 2026-11-20T13:15:50.000Z took 0.20 s
///
/// GROUP  STATE      SINCE                     HOLD                                        LAST ACTION
/// web    healthy    2026-11-20T13:14:00.000Z  maintenance since 2026-11-20T13:15:00.000Z  demotion ok (exit status 0, 0.05 s)
/// db     unhealthy  2026-11-20T13:15:50.200Z  -                                           demotion failed (exit status 3, 0.05 s)
///
/// CHECK     TYPE  STATE      LATENCY  REASON
/// nginx     http  healthy    12 ms    HTTP 200
/// postgres  tcp   unhealthy  0 ms     connection refused
/// ```
pub fn render(report: &StatusReport) -> String {
    let mut text = String::new();
    let verdict = if !report.alive {
        "stalled"
    } else if report.healthy {
        "healthy"
    } else {
        "unhealthy"
    };
    match &report.last_round {
        Some(round) => {
            let _ = writeln!(
                text,
                "{verdict}: {} rounds, the latest {} took {}",
                report.rounds,
                round.started,
                seconds(round.duration_seconds)
            );
        }
        None => {
            let _ = writeln!(text, "{verdict}: no round completed yet");
        }
    }
    if let Some(since) = &report.round_in_progress_since {
        let _ = writeln!(text, "a round has been running since {since}");
    }

    let mut groups = vec![row(["GROUP", "STATE", "SINCE", "HOLD", "LAST ACTION"])];
    groups.extend(report.groups.iter().map(group_row));
    text.push('\n');
    text.push_str(&table(&groups));

    let exclusive: Vec<&GroupReport> = report
        .groups
        .iter()
        .filter(|g| g.cluster.is_some())
        .collect();
    if !exclusive.is_empty() {
        let mut rows = vec![row(["EXCLUSIVE GROUP", "ROLE", "LEADER", "SINCE"])];
        rows.extend(exclusive.iter().filter_map(|g| {
            let c = g.cluster.as_ref()?;
            Some(vec![
                g.name.clone(),
                c.role.clone(),
                c.leader.clone().unwrap_or_else(|| "-".to_owned()),
                c.since.clone().unwrap_or_else(|| "-".to_owned()),
            ])
        }));
        text.push('\n');
        text.push_str(&table(&rows));
    }

    let mut checks = vec![row(["CHECK", "TYPE", "STATE", "LATENCY", "REASON"])];
    checks.extend(report.checks.iter().map(check_row));
    text.push('\n');
    text.push_str(&table(&checks));
    text
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn group_row(group: &GroupReport) -> Vec<String> {
    let mut action = match &group.last_action {
        Some(a) => format!(
            "{} {} ({}, {})",
            a.kind,
            a.outcome,
            a.exit,
            seconds(a.duration_seconds)
        ),
        None => "-".to_owned(),
    };
    if let Some(running) = &group.running_action {
        action = format!("{running} running; last: {action}");
    }
    let hold = group.hold.as_ref().map_or_else(
        || "-".to_owned(),
        |h| format!("{} since {}", h.kind, h.since),
    );
    vec![
        group.name.clone(),
        group.state.clone(),
        group.since.clone().unwrap_or_else(|| "-".to_owned()),
        hold,
        action,
    ]
}

fn check_row(check: &CheckReport) -> Vec<String> {
    let (latency, reason) = match &check.last_result {
        Some(r) => (seconds(r.latency_seconds), one_line(&r.reason)),
        None => ("-".to_owned(), "no result yet".to_owned()),
    };
    vec![
        check.name.clone(),
        check.kind.clone(),
        check.state.clone(),
        latency,
        reason,
    ]
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Seconds from the report, written as every duration in messages is
/// ([`short_duration`]): `12ms`, `1.5s`.
fn seconds(s: f64) -> String {
    short_duration(Duration::try_from_secs_f64(s).unwrap_or_default())
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            } else {
                line.push_str(cell);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(seconds(0.0123), "12ms");
        assert_eq!(seconds(0.0), "0s");
        assert_eq!(seconds(1.5), "1.5s");
        assert_eq!(seconds(-1.0), "0s");
    }

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let rows = vec![row(["A", "BB", "C"]), row(["aaa", "b", "a long tail"])];
        assert_eq!(table(&rows), "A    BB  C\naaa  b   a long tail\n");
    }

    #[test]
    fn unspecified_listen_addresses_mean_loopback() {
        let v4: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(connect_address(v4), "127.0.0.1:80".parse().unwrap());
        let v6: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(connect_address(v6), "[::1]:80".parse().unwrap());
        let other: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(connect_address(other), other);
    }
}
