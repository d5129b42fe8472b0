//! Checks: one type per kind of probe behind one small trait: TCP
//! ([`tcp`], and [`expect`] for TLS and `send`/`expect`), HTTP(S)
//! ([`http`]), gRPC health ([`grpc`]) and scripts ([`script`]).
//!
//! A check answers one question — is this endpoint healthy right now? — and
//! gives a short human reason either way. It holds no history: rise/fall
//! hysteresis lives in [`crate::engine::state`]. Everything a check needs that can be
//! built once (HTTP agents, TLS connectors, the resolver pool) is built by
//! [`build`] when the configuration is loaded, never per run.
//!
//! Every kind keeps to its whole-check deadline (the `timeout` key) plus a
//! small grace, whatever the network or the command does.

mod certificate;
pub mod expect;
pub mod grpc;
pub mod http;
pub mod resolve;
pub mod script;
pub mod tcp;
pub(crate) mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::{CheckSpec, Probe, short_duration};

/// The result of running a check once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Whether the check passed.
    pub healthy: bool,
    /// Short human reason: `HTTP 200`, `connected`, `connection refused`,
    /// `timed out after 1s`, `exit status 3: disk full`, …
    pub reason: String,
    /// Wall time the check took.
    pub latency: Duration,
    /// When the server's leaf certificate expires, for a TLS check whose
    /// handshake got that far (the earliest, when HTTPS redirects led to
    /// several servers); `None` otherwise.
    pub certificate_expiry: Option<SystemTime>,
}

/// A check run as a future on the network runtime: it waits on sockets,
/// never on its thread.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send + 'static>>;

/// One runnable check, built once from a [`CheckSpec`].
///
/// A check either blocks a thread while it runs (a script check waits for
/// its child) or waits on the network. The engine runs the first kind on
/// its pool of `threads` workers through [`Check::run`], and the second as a
/// future on a runtime of a few threads through [`Check::probe`], so that
/// any number of checks waiting on stalled peers hold no thread.
pub trait Check: Send + Sync {
    /// Runs the check once, blocking the calling thread at most for the
    /// check's timeout plus a small grace. Never panics on any input. A
    /// network check runs its [`probe`](Check::probe) on a runtime of its
    /// own here, so it must not be called from inside an async runtime.
    fn run(&self) -> CheckResult;

    /// The check as a future for a tokio runtime with I/O and timers, or
    /// `None` for a check that blocks its thread (the default): the engine
    /// then calls [`run`](Check::run) on a worker thread.
    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        None
    }
}

/// Runs `future` to completion on a runtime of its own on this thread: how
/// a network check's [`Check::run`] blocks. A runtime that cannot be built
/// (no file descriptors) is the check's failure.
pub(crate) fn block_on(future: CheckFuture) -> CheckResult {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(e) => CheckResult::fail(format!("cannot start a runtime: {e}"), Duration::ZERO),
    }
}

impl CheckResult {
    /// A passing result with `reason`.
    pub fn pass(reason: impl Into<String>, latency: Duration) -> CheckResult {
        CheckResult {
            healthy: true,
            reason: reason.into(),
            latency,
            certificate_expiry: None,
        }
    }

    /// A failing result with `reason`.
    pub fn fail(reason: impl Into<String>, latency: Duration) -> CheckResult {
        CheckResult {
            healthy: false,
            reason: reason.into(),
            latency,
            certificate_expiry: None,
        }
    }

    /// This result with the certificate expiry `expiry`.
    pub fn with_certificate(mut self, expiry: Option<SystemTime>) -> CheckResult {
        self.certificate_expiry = expiry;
        self
    }

    /// The result of a network probe started at `start` that has just
    /// ended with `outcome` (its success reason or its failure reason),
    /// with the certificate expiry it noted, if any; the latency is the
    /// time since `start`.
    pub fn of_probe(
        outcome: Result<String, String>,
        start: std::time::Instant,
        expiry: Option<SystemTime>,
    ) -> CheckResult {
        let latency = start.elapsed();
        match outcome {
            Ok(reason) => CheckResult::pass(reason, latency),
            Err(reason) => CheckResult::fail(reason, latency),
        }
        .with_certificate(expiry)
    }
}

/// Runs `probe` until it ends or until `timeout` after `start`, whichever
/// comes first: its outcome, or the failure reason [`timed_out`].
pub(crate) async fn within_deadline(
    start: std::time::Instant,
    timeout: Duration,
    probe: impl Future<Output = Result<String, String>>,
) -> Result<String, String> {
    tokio::time::timeout_at(deadline(start, timeout).into(), probe)
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)))
}

/// The reason of a check that outran its deadline: `timed out after 1s`,
/// `timed out after 500ms`, `timed out after 1.5s`.
pub fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", short_duration(timeout))
}

/// The instant `timeout` after `start`, or a year after it if the sum does
/// not fit in an [`Instant`](std::time::Instant).
pub(crate) fn deadline(start: std::time::Instant, timeout: Duration) -> std::time::Instant {
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(start)
}

/// Builds the runnable checks of a configuration, in the same order as
/// `specs`, sharing what can be shared between them: HTTP(S) checks with
/// the same TLS settings (`tls_verify`, `ca_file`) share one agent and its
/// TLS connector, built here once, and so do TLS TCP checks.
///
/// # Errors
/// One line per check that cannot be prepared, each naming the check: an
/// unreadable or invalid `ca_file`, a URL that cannot be parsed, a TLS
/// connector the TLS library refuses to build. All are reported, not just
/// the first.
pub fn build(specs: &[CheckSpec]) -> Result<Vec<Arc<dyn Check>>, String> {
    let mut agents = http::Agents::default();
    let mut connectors = tls::Connectors::default();
    let mut checks: Vec<Arc<dyn Check>> = Vec::with_capacity(specs.len());
    let mut errors = Vec::new();
    for spec in specs {
        let built: Result<Arc<dyn Check>, String> = match &spec.probe {
            Probe::Tcp(probe)
                if probe.tls.is_none() && probe.send.is_empty() && probe.expect.is_none() =>
            {
                Ok(Arc::new(tcp::TcpCheck::new(
                    probe.host.clone(),
                    probe.port,
                    spec.timeout,
                )))
            }
            Probe::Tcp(probe) => probe
                .tls
                .as_ref()
                .map(|tls| connectors.get(tls.verify, tls.ca_file.as_deref(), false))
                .transpose()
                .map(|tls| {
                    Arc::new(expect::ExpectCheck::new(probe, spec.timeout, tls)) as Arc<dyn Check>
                }),
            Probe::Http(probe) => agents
                .get(probe)
                .and_then(|agent| http::HttpCheck::new(probe, spec.timeout, agent))
                .map(|c| Arc::new(c) as Arc<dyn Check>),
            Probe::Grpc(probe) => probe
                .tls
                .as_ref()
                .map(|tls| connectors.get(tls.verify, tls.ca_file.as_deref(), true))
                .transpose()
                .and_then(|tls| grpc::GrpcCheck::new(probe, spec.timeout, tls))
                .map(|c| Arc::new(c) as Arc<dyn Check>),
            Probe::Script { command } => Ok(Arc::new(script::ScriptCheck::new(
                command.clone(),
                spec.timeout,
            ))),
        };
        match built {
            Ok(check) => checks.push(check),
            Err(why) => errors.push(format!("check [{}]: {why}", spec.name)),
        }
    }
    if errors.is_empty() {
        Ok(checks)
    } else {
        Err(errors.join("\n"))
    }
}

/// Kills every running script check at once (their process groups), so a
/// stopping daemon leaves no check behind and need not wait for timeouts.
/// Network checks need nothing: their sockets close with the process.
pub fn abort_running() {
    script::abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_configuration() {
        let cases = [
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(2250), "2.25s"),
            (Duration::from_micros(300), "300us"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(short_duration(d), want, "{d:?}");
        }
        assert_eq!(timed_out(Duration::from_secs(1)), "timed out after 1s");
    }
}
