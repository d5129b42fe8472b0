//! Checks: one type per kind of probe behind one small trait.
//!
//! A check answers one question — is this endpoint healthy right now? — and
//! gives a short human reason either way. It holds no history: rise/fall
//! hysteresis lives in [`crate::state`]. Everything a check needs that can be
//! built once (HTTP agents, TLS connectors, the resolver pool) is built by
//! [`build`] when the configuration is loaded, never per run.
//!
//! Every kind keeps to its whole-check deadline (the `timeout` key) plus a
//! small grace, whatever the network or the command does.

use std::time::Duration;

use crate::model::CheckSpec;

pub mod script;

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
}

/// One runnable check, built once from a [`CheckSpec`].
pub trait Check: Send + Sync {
    /// Runs the check once, blocking the calling thread at most for the
    /// check's timeout plus a small grace. Never panics on any input.
    fn run(&self) -> CheckResult;
}

/// Builds the runnable checks of a configuration, in the same order as
/// `specs`, sharing what can be shared between them.
///
/// # Errors
/// A message naming the check when something cannot be prepared, such as an
/// unreadable or invalid `ca_file`.
pub fn build(specs: &[CheckSpec]) -> Result<Vec<Box<dyn Check>>, String> {
    specs
        .iter()
        .map(|spec| match &spec.probe {
            crate::model::Probe::Script { command } => {
                Ok(Box::new(script::ScriptCheck::new(command.clone(), spec.timeout)) as Box<dyn Check>)
            }
            _ => Err(format!("[{}]: network checks are not built yet", spec.name)),
        })
        .collect()
}

/// Kills every running script check at once (their process groups), so a
/// stopping daemon leaves no check behind and need not wait for timeouts.
/// Network checks need nothing: their sockets close with the process.
pub fn abort_running() {
    script::abort_all();
}
