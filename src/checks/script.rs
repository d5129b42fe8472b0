//! Script checks: placeholder so the crate builds until the real module
//! lands.

use std::time::Duration;

use super::{Check, CheckResult};

/// A `/bin/sh -c COMMAND` check.
pub struct ScriptCheck {
    command: String,
    timeout: Duration,
}

impl ScriptCheck {
    /// A check that runs `command` with a deadline of `timeout`.
    pub fn new(command: String, timeout: Duration) -> ScriptCheck {
        ScriptCheck { command, timeout }
    }
}

impl Check for ScriptCheck {
    fn run(&self) -> CheckResult {
        let _ = (&self.command, self.timeout);
        todo!("script checks")
    }
}
