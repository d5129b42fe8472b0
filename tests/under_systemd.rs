//! `daemonize = yes` or `-d` under systemd's `Type=notify` (`NOTIFY_SOCKET`
//! set): heartbeat stays in the foreground, says why, and systemd hears
//! `READY=1` from the process it started.

use crate::support::bin::Scratch;
use crate::support::ops::{LONG, hooks, p, script, wait_lines};

use std::os::unix::net::UnixDatagram;

use nix::sys::signal::Signal;

/// Regression: `daemonize = yes` (common in the Python tool's files) under
/// the shipped `Type=notify` unit detached, and `READY=1` then came from a
/// PID systemd does not accept.
#[test]
fn daemonize_is_ignored_with_a_warning_when_systemd_waits_for_ready() {
    for (file_setting, flags) in [("daemonize = yes\n", &[][..]), ("", &["-d"][..])] {
        let s = Scratch::new();
        let (actions, socket_path) = (s.path("actions.log"), s.path("notify"));
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        socket.set_read_timeout(Some(LONG)).unwrap();
        let conf = s.write(
            "hb.conf",
            &format!(
                "[general]\ninterval = 100ms\n{file_setting}{}{}",
                hooks(&actions, &["g"]),
                script("c", "true", "g")
            ),
        );
        let mut args = vec!["-c", p(&conf)];
        args.extend_from_slice(flags);
        let mut cmd = s.command(&args);
        cmd.env("NOTIFY_SOCKET", &socket_path);
        let mut hb = s.spawn_command(cmd);
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("READY=1");
        assert_eq!(&buf[..n], b"READY=1\n");
        wait_lines(&actions, 1);
        // The process systemd started is heartbeat itself, still running.
        assert!(
            hb.wait_exit(std::time::Duration::ZERO).is_none(),
            "it detached"
        );
        let log = hb.log_text();
        assert!(
            log.contains(
                "WARNING  NOTIFY_SOCKET is set (systemd, Type=notify): daemonize = yes and -d are ignored, heartbeat stays in the foreground"
            ),
            "{file_setting}{flags:?}: {log}"
        );
        hb.signal(Signal::SIGTERM);
        let n = socket.recv(&mut buf).expect("STOPPING=1");
        assert_eq!(&buf[..n], b"STOPPING=1\n");
        let status = hb.wait_exit(LONG).expect("it stops");
        assert_eq!(status.code(), Some(0), "{}", hb.log_text());
    }
}
