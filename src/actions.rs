//! Promotion and demotion runs.
//!
//! An action is a shell command from `[promotions]` or `[demotions]`, run
//! through [`crate::process`] with the `HEARTBEAT_*` variables, a deadline
//! and its output logged. Which action to run, and when, is decided by the
//! engine; this module only runs one and reports how it went.

use std::time::Duration;

use crate::process::Exit;
use crate::state::Health;

/// Promotion (the group turned healthy) or demotion (it turned unhealthy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The group turned healthy.
    Promotion,
    /// The group turned unhealthy.
    Demotion,
}

/// One action to run.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The action group's name (`HEARTBEAT_ACTION`).
    pub group: String,
    /// Promotion or demotion (`HEARTBEAT_STATE` healthy or unhealthy).
    pub kind: Kind,
    /// The shell command.
    pub command: String,
    /// The state the group left (`HEARTBEAT_PREVIOUS_STATE`).
    pub previous: Health,
    /// Names of the group's unhealthy checks (`HEARTBEAT_FAILED_CHECKS`).
    pub failed_checks: Vec<String>,
    /// Deadline (`action_timeout`).
    pub timeout: Duration,
    /// Log the action instead of running it.
    pub dry_run: bool,
}

/// How an action run went.
#[derive(Debug, Clone)]
pub struct ActionReport {
    /// The action group's name.
    pub group: String,
    /// Promotion or demotion.
    pub kind: Kind,
    /// How the command ended (`Code(0)` for a dry run).
    pub exit: Exit,
    /// Wall time of the run.
    pub duration: Duration,
}

/// Runs one action to completion or deadline, logging its outcome.
pub fn run(request: &ActionRequest) -> ActionReport {
    let _ = request;
    todo!("actions::run")
}

/// Runs `request` on its own thread and calls `done` with the report.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(
    request: ActionRequest,
    done: impl FnOnce(ActionReport) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("action-{}", request.group))
        .spawn(move || done(run(&request)))
        .map(|_| ())
}
