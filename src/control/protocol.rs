//! The control socket's messages (see [`crate::control`]): one JSON object
//! a line each way.

use std::io::{self, BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::engine::{Answer, Order, OrderError};

/// The longest line either side reads, in bytes.
pub const MAX_LINE: u64 = 64 * 1024;

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `pause`, `resume` or `maintenance`.
    pub command: Command,
    /// The action groups, at least one.
    pub groups: Vec<String>,
}

/// The commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Checks go on, no action runs.
    Pause,
    /// Ends a pause or a maintenance.
    Resume,
    /// Demote and hold.
    Maintenance,
}

impl Command {
    /// The engine's order for it.
    pub fn order(self) -> Order {
        match self {
            Command::Pause => Order::Pause,
            Command::Resume => Order::Resume,
            Command::Maintenance => Order::Maintenance,
        }
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the command was carried out (for every group).
    pub ok: bool,
    /// What was done, one entry a group, in the order asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupAnswer>,
    /// Why nothing was done, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorAnswer>,
}

/// What was done to one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAnswer {
    /// The group.
    pub group: String,
    /// What was done, for a human.
    pub message: String,
    /// An action the command started (or waited for) failed.
    #[serde(default)]
    pub action_failed: bool,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// Why, for a human.
    pub message: String,
}

/// The kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A group named is not configured.
    UnknownGroup,
    /// The change cannot be made (pausing a group in maintenance).
    Refused,
    /// The peer is neither root nor the user heartbeat runs as.
    PermissionDenied,
    /// The request is not one JSON line of this protocol.
    BadRequest,
    /// heartbeat is stopping.
    Stopping,
    /// Too many connections at once.
    Busy,
}

impl Response {
    /// The answer to a carried-out command.
    pub fn answered(answers: Vec<Answer>) -> Response {
        Response {
            ok: true,
            groups: answers
                .into_iter()
                .map(|a| GroupAnswer {
                    group: a.group,
                    message: a.message,
                    action_failed: a.action_failed,
                })
                .collect(),
            error: None,
        }
    }

    /// A refusal.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Response {
        Response {
            ok: false,
            groups: Vec::new(),
            error: Some(ErrorAnswer {
                code,
                message: message.into(),
            }),
        }
    }

    /// The refusal of an order the engine would not carry out.
    pub fn order_error(error: &OrderError) -> Response {
        let code = match error {
            OrderError::UnknownGroups { .. } => ErrorCode::UnknownGroup,
            OrderError::Refused(_) => ErrorCode::Refused,
            OrderError::Stopping => ErrorCode::Stopping,
        };
        Response::refused(code, error.to_string())
    }
}

/// `value` as one line of JSON, with its `\n`.
pub fn line<T: Serialize>(value: &T) -> String {
    // These types always serialise.
    let mut text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// Reads one line of at most [`MAX_LINE`] bytes (without its `\n`).
///
/// # Errors
/// The read's error (a timeout is `WouldBlock` or `TimedOut`); an
/// `InvalidData` error for a line that is too long, not UTF-8, or cut
/// short by the end of the stream.
pub fn read_line(reader: impl Read) -> io::Result<String> {
    let mut bytes = Vec::new();
    let mut limited = io::BufReader::new(reader.take(MAX_LINE + 1));
    limited.read_until(b'\n', &mut bytes)?;
    if bytes.last() != Some(&b'\n') {
        let why = if bytes.len() as u64 > MAX_LINE {
            format!("a line longer than {MAX_LINE} bytes")
        } else {
            "the connection closed before the end of the line".to_owned()
        };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    bytes.pop();
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a line that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_written_as_the_module_documentation_shows() {
        let request = Request {
            command: Command::Maintenance,
            groups: vec!["web".into()],
        };
        assert_eq!(
            line(&request),
            "{\"command\":\"maintenance\",\"groups\":[\"web\"]}\n"
        );
        let refused = Response::refused(ErrorCode::UnknownGroup, "no group named \"wbe\"");
        assert_eq!(
            line(&refused),
            "{\"ok\":false,\"error\":{\"code\":\"unknown_group\",\"message\":\"no group named \\\"wbe\\\"\"}}\n"
        );
        let back: Response = serde_json::from_str(line(&refused).trim_end()).unwrap();
        assert_eq!(back, refused);
    }

    #[test]
    fn a_line_is_bounded_and_must_end() {
        assert_eq!(read_line(&b"{}\nrest"[..]).unwrap(), "{}");
        let long = vec![b'x'; MAX_LINE as usize + 10];
        assert!(
            read_line(&long[..])
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        assert!(
            read_line(&b"{}"[..])
                .unwrap_err()
                .to_string()
                .contains("closed")
        );
    }
}
