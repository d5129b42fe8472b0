//! `heartbeat -c FILE pause|resume|maintenance GROUP…`: sends the command
//! to the running heartbeat's control socket and prints its answer, one
//! line a group.
//!
//! Exit statuses: 0 when done; 3 when an action the command started
//! failed (it is retried, as any failed action); 65 (`EX_DATAERR`) for a
//! group that is not configured or a change that cannot be made, nothing
//! changed; 69 (`EX_UNAVAILABLE`) when no heartbeat listens; 76
//! (`EX_PROTOCOL`) when what answers does not speak the protocol; 77
//! (`EX_NOPERM`) when the socket refuses the user.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::ControlError;
use super::protocol::{self, Request, Response};
use crate::exit::Exit;

/// Sends `request` to the socket at `path`, waits at most `timeout` for
/// the answer, prints it on `out`, and returns the exit status: [`Exit::Ok`],
/// or [`Exit::ActionFailed`] when an action it started failed.
///
/// # Errors
/// A [`ControlError`] that carries its exit status: nobody listens, the
/// socket refuses the user, the command was refused, or the answer is not
/// the protocol's.
pub fn run(
    path: &Path,
    request: &Request,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<Exit, ControlError> {
    let response = ask(path, request, timeout)?;
    if !response.ok {
        let error = response.error.ok_or_else(|| {
            ControlError::Protocol(format!(
                "{}: refused the command without saying why",
                path.display()
            ))
        })?;
        return Err(ControlError::Refused {
            code: error.code,
            message: error.message,
        });
    }
    let mut failed = false;
    let mut text = String::new();
    for answer in &response.groups {
        failed |= answer.action_failed;
        text += &format!("{}: {}\n", answer.group, answer.message.replace('\n', " "));
    }
    // A closed stdout (`| head`) does not undo what was done.
    let _ = out.write_all(text.as_bytes());
    Ok(if failed { Exit::ActionFailed } else { Exit::Ok })
}

/// One exchange with the socket at `path`.
fn ask(path: &Path, request: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let mut stream = UnixStream::connect(path).map_err(|e| connect_error(path, &e))?;
    let exchange = |e: io::Error| {
        ControlError::Unavailable(format!(
            "no answer from the control socket {}: {e}",
            path.display()
        ))
    };
    stream.set_write_timeout(Some(timeout)).map_err(exchange)?;
    stream.set_read_timeout(Some(timeout)).map_err(exchange)?;
    stream
        .write_all(protocol::line(request).as_bytes())
        .map_err(exchange)?;
    let line = protocol::read_line(&stream).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ControlError::Unavailable(format!(
            "no answer from the control socket {} within {}s (its actions may still run; see the log)",
            path.display(),
            timeout.as_secs()
        )),
        _ => ControlError::Protocol(format!(
            "{} did not answer as a heartbeat control socket: {e}",
            path.display()
        )),
    })?;
    serde_json::from_str(&line).map_err(|e| {
        ControlError::Protocol(format!(
            "{} did not answer as a heartbeat control socket: {e}",
            path.display()
        ))
    })
}

/// Why `connect(2)` to the socket at `path` failed, for the operator.
fn connect_error(path: &Path, e: &io::Error) -> ControlError {
    let at = path.display();
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            let what = if e.kind() == io::ErrorKind::NotFound {
                "there is no socket there"
            } else {
                "nothing listens there any more"
            };
            ControlError::Unavailable(format!(
                "no heartbeat is listening on the control socket {at} ({what}): is it running with this configuration?"
            ))
        }
        io::ErrorKind::PermissionDenied => {
            let owner = std::fs::symlink_metadata(path)
                .map(|m| {
                    format!(
                        " (it belongs to uid {}, mode {:04o})",
                        m.uid(),
                        m.mode() & 0o7777
                    )
                })
                .unwrap_or_default();
            ControlError::Denied(format!(
                "permission denied on the control socket {at}{owner}: run this as root or as the user heartbeat runs as"
            ))
        }
        _ => ControlError::Unavailable(format!("cannot connect to the control socket {at}: {e}")),
    }
}
