//! Promotion and demotion runs.
//!
//! An action is a shell command from `[promotions]` or `[demotions]`, run
//! through [`crate::exec::process`] with the `HEARTBEAT_*` variables, a deadline
//! and its output logged. Which action to run, and when, is decided by the
//! engine; this module only runs one and reports how it went.
//!
//! The command text is never built from check results: what a hook needs to
//! know reaches it through its environment (`HEARTBEAT_ACTION`,
//! `HEARTBEAT_STATE`, `HEARTBEAT_PREVIOUS_STATE`, `HEARTBEAT_FAILED_CHECKS`,
//! `HEARTBEAT_REASON`, `HEARTBEAT_ATTEMPT`),
//! as with keepalived's notify scripts. [`spawn`] runs an action on its own
//! thread so that a slow hook never holds up the engine.

use std::thread;
use std::time::Duration;

use log::{Level, error, info, log};

use crate::exec::process::{self, ChildExit, Leftovers, ShellCommand};
use crate::model::{ActionKind, ActionReason, Health, short_duration};

/// Time between SIGTERM and SIGKILL when an action outruns its deadline.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Bytes of output (stdout and stderr interleaved) kept from a run: the
/// last ones.
pub const OUTPUT_CAP: usize = 8 * 1024;

/// Lines of output logged from a run: the last ones.
pub const OUTPUT_LINES: usize = 20;

/// One action to run.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The action group's name (`HEARTBEAT_ACTION`).
    pub group: String,
    /// Promotion or demotion (`HEARTBEAT_STATE` healthy or unhealthy).
    pub kind: ActionKind,
    /// The shell command.
    pub command: String,
    /// The state the group left (`HEARTBEAT_PREVIOUS_STATE`).
    pub previous: Health,
    /// Names of the group's unhealthy checks (`HEARTBEAT_FAILED_CHECKS`).
    pub failed_checks: Vec<String>,
    /// Which attempt at announcing this state it is, from 1
    /// (`HEARTBEAT_ATTEMPT`).
    pub attempt: u32,
    /// Why it runs (`HEARTBEAT_REASON`).
    pub reason: ActionReason,
    /// Deadline (`action_timeout`).
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL past the deadline: [`KILL_GRACE`],
    /// or [`crate::model::EXCLUSIVE_KILL_GRACE`] for a group exclusive
    /// across the cluster.
    pub kill_grace: Duration,
    /// For a group exclusive across the cluster: what its hook is told of
    /// the election (`HEARTBEAT_STATE=standby`, `HEARTBEAT_LEADER`).
    pub leadership: Option<Leadership>,
    /// Log the action instead of running it.
    pub dry_run: bool,
    /// Leave the command text out of the log (`redact` in `[general]`): it
    /// may hold a credential.
    pub redact: bool,
}

/// What the hook of an exclusive group is told of the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The group is healthy here but this node does not lead it: its
    /// demotion says `HEARTBEAT_STATE=standby` instead of `unhealthy`.
    pub standby: bool,
    /// The node that leads (`HEARTBEAT_LEADER`; this node's name on a
    /// promotion), `None` when it is not known: the variable is then empty.
    pub leader: Option<String>,
}

/// How an action run went.
#[derive(Debug, Clone)]
pub struct ActionReport {
    /// The action group's name.
    pub group: String,
    /// Promotion or demotion.
    pub kind: ActionKind,
    /// How the command ended (`Code(0)` for a dry run).
    pub exit: ChildExit,
    /// Wall time of the run.
    pub duration: Duration,
}

/// Runs one action to completion or deadline, logging its outcome.
///
/// The command runs as `/bin/sh -c COMMAND` (see [`process::run`]) with
/// these variables added to the environment:
/// - `HEARTBEAT_ACTION`: the group's name;
/// - `HEARTBEAT_STATE`: `healthy` (promotion) or `unhealthy` (demotion);
/// - `HEARTBEAT_PREVIOUS_STATE`: `unknown`, `healthy` or `unhealthy`;
/// - `HEARTBEAT_FAILED_CHECKS`: the failed checks' names, comma-separated
///   (empty when none);
/// - `HEARTBEAT_REASON`: `health`, `maintenance` or `resume`
///   ([`ActionReason`]);
/// - `HEARTBEAT_ATTEMPT`: 1, then 2, 3… for the retries of a failed action;
/// - for a group exclusive across the cluster ([`ActionRequest::leadership`]),
///   `HEARTBEAT_LEADER`: the leading node's name, empty when unknown; and
///   `HEARTBEAT_STATE` is `standby` on the demotion of a group that is
///   healthy here but led by another node.
///
/// At `request.timeout` its process group gets SIGTERM, and SIGKILL
/// `request.kill_grace` later. The last [`OUTPUT_CAP`] bytes of output are kept.
///
/// Logs the start at INFO, a success at INFO, a failure at ERROR with the
/// exit status, signal or timeout, each naming the attempt after the first
/// (`succeeded on attempt 4`) and a reason other than health; then the tail of the output (its last
/// [`OUTPUT_LINES`] lines, each prefixed with the group) at the same level,
/// so that what a hook says ("out of rotation") is in the log at INFO. A dry run logs what would run at INFO, runs nothing and reports
/// `ChildExit::Code(0)`. Blocks the calling thread; never panics.
pub fn run(request: &ActionRequest) -> ActionReport {
    let mut what = format!("{} of group {:?}", request.kind, request.group);
    if request.reason != ActionReason::Health {
        what += &format!(" ({})", request.reason);
    }
    let command = if request.redact {
        String::new()
    } else {
        format!(": {}", request.command)
    };
    if request.dry_run {
        info!("dry run: would run {what}{command}");
        return ActionReport {
            group: request.group.clone(),
            kind: request.kind,
            exit: ChildExit::Code(0),
            duration: Duration::ZERO,
        };
    }
    let attempt = if request.attempt > 1 {
        format!(", attempt {}", request.attempt)
    } else {
        String::new()
    };
    info!("running {what}{command}{attempt}");
    let finished = process::run(&ShellCommand {
        command: &request.command,
        env: environment(request),
        timeout: request.timeout,
        kill_grace: request.kill_grace,
        output_cap: OUTPUT_CAP,
        leftovers: Leftovers::Keep,
    });
    let output = output_lines(&request.group, &finished.output);
    let took = short_duration(finished.duration);
    let level = if finished.exit.success() {
        if request.attempt > 1 {
            info!("{what} succeeded on attempt {} in {took}", request.attempt);
        } else {
            info!("{what} succeeded in {took}");
        }
        Level::Info
    } else if output.is_empty() {
        error!(
            "{what} failed after {took}{attempt}: {} (no output)",
            finished.exit
        );
        Level::Error
    } else {
        error!(
            "{what} failed after {took}{attempt}: {}; its output:",
            finished.exit
        );
        Level::Error
    };
    // One record a line, so that each is stamped, greppable by group and a
    // syslog message of its own.
    for line in output {
        log!(level, "{line}");
    }
    ActionReport {
        group: request.group.clone(),
        kind: request.kind,
        exit: finished.exit,
        duration: finished.duration,
    }
}

/// Runs `request` like [`run`] on a new thread named `action-<group>`, then
/// calls `done` with the report on that thread. Returns at once.
///
/// # Errors
/// When the thread cannot be created (thread or memory limits); nothing has
/// run then, and `done` is not called.
pub fn spawn(
    request: ActionRequest,
    done: impl FnOnce(ActionReport) + Send + 'static,
) -> std::io::Result<()> {
    // A NUL byte cannot be part of a thread name.
    let name = format!("action-{}", request.group).replace('\0', "?");
    thread::Builder::new()
        .name(name)
        .spawn(move || done(run(&request)))
        .map(drop)
}

/// The `HEARTBEAT_*` variables of a request.
fn environment(request: &ActionRequest) -> Vec<(&'static str, String)> {
    let standby = request.kind == ActionKind::Demotion
        && request.leadership.as_ref().is_some_and(|l| l.standby);
    let state = if standby {
        "standby"
    } else {
        request.kind.state().as_str()
    };
    let mut env = vec![
        ("HEARTBEAT_ACTION", request.group.clone()),
        ("HEARTBEAT_STATE", state.to_owned()),
        (
            "HEARTBEAT_PREVIOUS_STATE",
            request.previous.as_str().to_owned(),
        ),
        ("HEARTBEAT_FAILED_CHECKS", request.failed_checks.join(",")),
        ("HEARTBEAT_REASON", request.reason.as_str().to_owned()),
        ("HEARTBEAT_ATTEMPT", request.attempt.to_string()),
    ];
    if let Some(leadership) = &request.leadership {
        env.push((
            "HEARTBEAT_LEADER",
            leadership.leader.clone().unwrap_or_default(),
        ));
    }
    env
}

/// The lines logged for a run's output: the last [`OUTPUT_LINES`]
/// non-blank lines, each prefixed with the group (`[web] in rotation`) and
/// with control characters (escape sequences, carriage returns) shown as
/// `?`, after a line that says how many earlier ones are not shown.
fn output_lines(group: &str, output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let skipped = lines.len().saturating_sub(OUTPUT_LINES);
    let mut out = Vec::with_capacity(lines.len() - skipped + 1);
    if skipped > 0 {
        out.push(format!("[{group}] ({skipped} earlier lines not shown)"));
    }
    for line in &lines[skipped..] {
        let clean: String = line
            .trim_end()
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
            .collect();
        out.push(format!("[{group}] {clean}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_group_states_and_failed_checks() {
        let request = ActionRequest {
            group: "web".into(),
            kind: ActionKind::Demotion,
            command: "true".into(),
            previous: Health::Unknown,
            failed_checks: vec!["nginx".into(), "disk".into()],
            attempt: 3,
            reason: ActionReason::Maintenance,
            timeout: Duration::from_secs(1),
            kill_grace: KILL_GRACE,
            leadership: None,
            dry_run: false,
            redact: true,
        };
        assert_eq!(
            environment(&request),
            [
                ("HEARTBEAT_ACTION", "web".to_owned()),
                ("HEARTBEAT_STATE", "unhealthy".to_owned()),
                ("HEARTBEAT_PREVIOUS_STATE", "unknown".to_owned()),
                ("HEARTBEAT_FAILED_CHECKS", "nginx,disk".to_owned()),
                ("HEARTBEAT_REASON", "maintenance".to_owned()),
                ("HEARTBEAT_ATTEMPT", "3".to_owned()),
            ]
        );
    }

    #[test]
    fn an_exclusive_group_tells_its_hooks_the_leader_and_standby() {
        let mut request = ActionRequest {
            group: "vip".into(),
            kind: ActionKind::Demotion,
            command: "true".into(),
            previous: Health::Healthy,
            failed_checks: Vec::new(),
            attempt: 1,
            reason: ActionReason::Health,
            timeout: Duration::from_secs(1),
            kill_grace: crate::model::EXCLUSIVE_KILL_GRACE,
            leadership: Some(Leadership {
                standby: true,
                leader: Some("node-b".into()),
            }),
            dry_run: false,
            redact: true,
        };
        let get = |r: &ActionRequest, name: &str| {
            environment(r)
                .into_iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v)
        };
        assert_eq!(get(&request, "HEARTBEAT_STATE").as_deref(), Some("standby"));
        assert_eq!(get(&request, "HEARTBEAT_LEADER").as_deref(), Some("node-b"));
        // Unhealthy here: a demotion as any other, the leader still told.
        request.leadership = Some(Leadership {
            standby: false,
            leader: None,
        });
        assert_eq!(
            get(&request, "HEARTBEAT_STATE").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(get(&request, "HEARTBEAT_LEADER").as_deref(), Some(""));
        // The elected node's promotion names itself.
        request.kind = ActionKind::Promotion;
        request.leadership = Some(Leadership {
            standby: true,
            leader: Some("node-a".into()),
        });
        assert_eq!(get(&request, "HEARTBEAT_STATE").as_deref(), Some("healthy"));
        assert_eq!(get(&request, "HEARTBEAT_LEADER").as_deref(), Some("node-a"));
        // Other groups have no HEARTBEAT_LEADER at all.
        request.leadership = None;
        assert_eq!(get(&request, "HEARTBEAT_LEADER"), None);
    }

    #[test]
    fn output_lines_are_prefixed_with_the_group_and_cut_to_the_tail() {
        assert_eq!(
            output_lines("web", "in rotation\r\n\n  since 19:16\n"),
            ["[web] in rotation", "[web]   since 19:16"]
        );
        assert_eq!(
            output_lines("web", "\u{1b}[31mred\u{1b}[0m\tok\n"),
            ["[web] ?[31mred?[0m\tok"]
        );
        assert!(output_lines("web", "\n \n").is_empty());
        let many: String = (1..=25).map(|i| format!("line {i}\n")).collect();
        let lines = output_lines("db", &many);
        assert_eq!(lines.len(), OUTPUT_LINES + 1);
        assert_eq!(lines[0], "[db] (5 earlier lines not shown)");
        assert_eq!(lines[1], "[db] line 6");
        assert_eq!(lines[OUTPUT_LINES], "[db] line 25");
    }
}
