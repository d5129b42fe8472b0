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

pub mod resolve;

use std::time::Duration;

use crate::model::CheckSpec;

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
    let _ = specs;
    todo!("checks::build")
}
