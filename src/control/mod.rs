//! The control socket: how an operator pauses, resumes and puts action
//! groups in maintenance on a running heartbeat (`heartbeat -c FILE pause
//! GROUP…`), as HAProxy's runtime API or `monit unmonitor` do.
//!
//! A Unix stream socket, created without following links, mode 0600, owned
//! by the user heartbeat runs as ([`server`]); where it is comes from the
//! configuration ([`path`]), so the subcommands find it from `-c FILE`
//! alone ([`client`]). The kernel refuses anyone else's `connect(2)` (the
//! socket file is not theirs to write), and the server checks the peer's
//! credentials (`SO_PEERCRED`) again: only that user and root are served.
//!
//! # The protocol
//!
//! One request and one answer per connection, each one JSON object on one
//! line ending in `\n` ([`protocol`]), at most 64 KiB:
//!
//! ```text
//! → {"command":"maintenance","groups":["web"]}
//! ← {"ok":true,"groups":[{"group":"web","message":"in maintenance (was active): demoted and held, failing for GET / and /ready until resume; demotion succeeded in 12ms","action_failed":false}]}
//! ```
//!
//! `command` is `pause`, `resume` or `maintenance`; `groups` names one or
//! more action groups. The answer comes once the actions the command
//! started have ended (a demotion, the state a resume applies), so that
//! `heartbeat maintenance web && stop-the-service` drains first; each group
//! gets one line saying what was done, and `action_failed` when its action
//! failed (it is retried, as any failed action is). A command that cannot
//! be carried out changes nothing, for no group, and answers
//!
//! ```text
//! ← {"ok":false,"error":{"code":"unknown_group","message":"no group named \"wbe\"; the groups are web, db"}}
//! ```
//!
//! with `code` one of `unknown_group`, `refused` (pausing a group in
//! maintenance), `permission_denied` (a peer that is neither root nor the
//! user heartbeat runs as), `bad_request` (not such a JSON line),
//! `stopping` (heartbeat is stopping) or `busy` (too many connections at
//! once). `socat - UNIX-CONNECT:/run/heartbeat/heartbeat.sock` speaks it
//! by hand.

pub mod client;
pub mod path;
pub mod protocol;
pub mod server;

use std::path::PathBuf;

use crate::exit::Exit;

/// Why the control socket could not be set up or asked.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket cannot be created at `path`: exit status 73.
    #[error("cannot create the control socket {}: {why}", path.display())]
    Create {
        /// Where.
        path: PathBuf,
        /// Why: the OS error, or a refusal (a link, a file that is not a
        /// socket).
        why: String,
    },
    /// Another heartbeat serves the socket at `path`: exit status 75.
    #[error(
        "another heartbeat listens on the control socket {}; give each instance its own control_socket",
        path.display()
    )]
    InUse {
        /// Where.
        path: PathBuf,
    },
    /// Nobody listens (no such socket, or a stale one): exit status 69.
    #[error("{0}")]
    Unavailable(String),
    /// The socket refused the user: exit status 77.
    #[error("{0}")]
    Denied(String),
    /// The running heartbeat refused the command, changing nothing: an
    /// unknown group or an impossible change (65), or it is stopping or
    /// busy (69).
    #[error("{message}")]
    Refused {
        /// The protocol's error code.
        code: protocol::ErrorCode,
        /// Why, as heartbeat said it.
        message: String,
    },
    /// What answered did not speak the protocol: exit status 76.
    #[error("{0}")]
    Protocol(String),
}

impl ControlError {
    /// The exit status of this error (sysexits.h).
    pub fn exit(&self) -> Exit {
        use protocol::ErrorCode;
        match self {
            ControlError::Create { .. } => Exit::CantCreat,
            ControlError::InUse { .. } => Exit::TempFail,
            ControlError::Unavailable(_) => Exit::Unavailable,
            ControlError::Denied(_) => Exit::NoPerm,
            ControlError::Refused { code, .. } => match code {
                ErrorCode::UnknownGroup | ErrorCode::Refused => Exit::DataErr,
                ErrorCode::PermissionDenied => Exit::NoPerm,
                ErrorCode::BadRequest => Exit::Protocol,
                ErrorCode::Stopping | ErrorCode::Busy => Exit::Unavailable,
            },
            ControlError::Protocol(_) => Exit::Protocol,
        }
    }
}
