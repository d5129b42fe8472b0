//! Telling systemd how the service is doing (sd_notify(3)).
//!
//! Under `Type=notify` (or `notify-reload`), systemd considers heartbeat
//! started only when it says `READY=1`, so units ordered after it wait for
//! the first round of checks rather than for a mere `fork`. Reloads are
//! announced with `RELOADING=1` and the `MONOTONIC_USEC` stamp that
//! `Type=notify-reload` requires, followed by `READY=1` when done; shutdown
//! with `STOPPING=1`. `STATUS=` text shows up in `systemctl status`.
//!
//! Every function is a no-op returning `Ok` when `NOTIFY_SOCKET` is unset,
//! that is, when not started by systemd with notification enabled.
//! Notifications must come from the main process: with systemd, run
//! heartbeat in the foreground, not with `-d`. The socket must be a path
//! (as systemd gives); abstract socket names (`@…`) are not supported by
//! the `sd-notify` crate and give an error.

use sd_notify::NotifyState;

/// Environment variable through which systemd passes its socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Whether notifications are sent (`NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os(NOTIFY_SOCKET).is_some()
}

/// `READY=1`: start-up (or a reload) is complete.
///
/// # Errors
/// When the notification socket cannot be reached.
pub fn ready() -> Result<(), String> {
    send(&[NotifyState::Ready])
}

/// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC, microseconds), as
/// `Type=notify-reload` expects; send [`ready`] when the reload is done.
///
/// # Errors
/// When the clock cannot be read or the socket cannot be reached.
pub fn reloading() -> Result<(), String> {
    if !enabled() {
        return Ok(());
    }
    let now = NotifyState::monotonic_usec_now()
        .map_err(|e| format!("cannot read the monotonic clock: {e}"))?;
    send(&[NotifyState::Reloading, now])
}

/// `STOPPING=1`: shutdown has begun.
///
/// # Errors
/// When the notification socket cannot be reached.
pub fn stopping() -> Result<(), String> {
    send(&[NotifyState::Stopping])
}

/// `STATUS=text`, shown by `systemctl status`. Line breaks in `text` become
/// spaces (the protocol is one `KEY=value` per line).
///
/// # Errors
/// When the notification socket cannot be reached.
pub fn status(text: &str) -> Result<(), String> {
    let text = text.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&text)])
}

fn send(states: &[NotifyState<'_>]) -> Result<(), String> {
    sd_notify::notify(states).map_err(|e| {
        let socket = std::env::var_os(NOTIFY_SOCKET).unwrap_or_default();
        format!(
            "cannot notify systemd through {}: {e}",
            socket.to_string_lossy()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{child, child_lines, is_child};
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn notifications_reach_the_socket_in_the_protocols_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        let out = child("daemon::notify::tests::child_notify")
            .env(NOTIFY_SOCKET, &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(child_lines(&out.stdout), ["enabled true"]);

        socket.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(got.len(), 7, "{got:?}");
        assert_eq!(got[0], "READY=1\n");
        let usec = got[1]
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .and_then(|rest| rest.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{:?}", got[1]));
        assert!(usec.parse::<u64>().unwrap() > 0, "{usec}");
        assert_eq!(got[2], "STATUS=2 groups healthy, 0 unhealthy\n");
        assert_eq!(got[3], "STOPPING=1\n");
        // A reload as the daemon announces it, then the stop.
        assert_eq!(got[4], "READY=1\n");
        assert!(
            got[5].starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{got:?}"
        );
        assert_eq!(got[6], "STOPPING=1\n");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
        let out = child("daemon::notify::tests::child_notify")
            .env_remove(NOTIFY_SOCKET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(child_lines(&out.stdout), ["enabled false"]);
    }

    #[test]
    fn an_unreachable_socket_is_an_error_naming_it() {
        let out = child("daemon::notify::tests::child_unreachable")
            .env(NOTIFY_SOCKET, "/nonexistent/heartbeat-test/notify")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines = child_lines(&out.stdout);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0]
                .starts_with("cannot notify systemd through /nonexistent/heartbeat-test/notify: "),
            "{lines:?}"
        );
    }

    /// Sends one of each notification to `$NOTIFY_SOCKET`, if set.
    #[test]
    #[ignore = "run by the other notify tests"]
    fn child_notify() {
        if !is_child("daemon::notify::tests::child_notify") {
            return;
        }
        println!("child: enabled {}", enabled());
        ready().unwrap();
        reloading().unwrap();
        status("2 groups healthy,\n0 unhealthy").unwrap();
        stopping().unwrap();
        ready().unwrap();
        reloading().unwrap();
        stopping().unwrap();
    }

    #[test]
    #[ignore = "run by an_unreachable_socket_is_an_error_naming_it"]
    fn child_unreachable() {
        if !is_child("daemon::notify::tests::child_unreachable") {
            return;
        }
        println!("child: {}", ready().unwrap_err());
    }
}
