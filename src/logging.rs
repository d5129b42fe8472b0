//! Log lines to standard error, a file, or the local syslog.
//!
//! Operators grep these lines and feed them to log shippers, so their shape
//! is fixed. The default, [`LogFormat::Text`], is
//! `2026-12-01 19:16:31 +0000 INFO     message`: local time to the second
//! with its UTC offset (so a line says when it happened without knowing
//! the host's zone, and reads against `/status`, which is in UTC), the
//! level padded to 8 characters (`WARNING`, not `WARN`), the message. A
//! record of several lines becomes as many log lines, each stamped, so
//! `grep ERROR` finds all of a failure. [`LogFormat::Json`]
//! (`logformat = json`) writes one JSON object a record for log
//! collectors: `{"time":"2026-12-01T19:16:31.250+00:00","level":"INFO",
//! "message":"…"}`, the time in RFC 3339 with milliseconds.
//!
//! [`init`] installs the logger once per process, before the daemon
//! detaches or drops privileges, so a log file under `/var/log` is opened
//! while the process is still root. [`reopen`] reopens that file for
//! logrotate (SIGUSR1); [`set_level`] and [`set_format`] apply a reloaded
//! `loglevel` and `logformat`.
//!
//! Syslog messages go to `/dev/log` in the traditional local format
//! (`<PRI>Mmm dd hh:mm:ss heartbeat[PID]: message`, facility `daemon`), with
//! the level mapped to a syslog severity by [`syslog_severity`], one
//! message per line of a record (a syslog message is one line: embedded
//! line feeds would reach the journal or a remote collector as one
//! garbled entry). `logformat` does not apply to syslog, which stamps its
//! own. This is done here rather than with the `syslog` crate because that
//! crate stamps its local messages with UTC, fixes the PID when the logger
//! is built (the PID changes when the daemon detaches) and never
//! reconnects after the syslog daemon restarts; glibc's `syslog(3)` does
//! all three right, and so does this module.
//!
//! Messages from other crates (the HTTP client, for instance) are kept at
//! INFO and above even when `loglevel = DEBUG`, so that debug output is
//! about heartbeat's own decisions.
//!
//! Time stamps use `chrono::Local`, which reads `TZ` and `/etc/localtime`
//! itself and stays sound once threads exist (unlike `localtime(3)` racing
//! `setenv(3)`, or the `time` crate, which refuses to find the local offset
//! in a multithreaded process).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use log::{Level, LevelFilter};

pub use crate::model::LogFormat;
use crate::model::LogTarget;

/// Path of the local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// The program name syslog messages carry (`openlog(3)`'s ident).
pub const SYSLOG_IDENT: &str = "heartbeat";

/// Syslog facility `daemon` (3), as in `<syslog.h>` `LOG_DAEMON >> 3`.
const FACILITY_DAEMON: u8 = 3;

/// Longest syslog message sent, in bytes; longer ones are cut (at a
/// character boundary) rather than refused by the socket.
const SYSLOG_MAX_MESSAGE: usize = 8 * 1024;

/// Permissions of a log file this module creates (before the umask).
const LOG_FILE_MODE: u32 = 0o640;

/// The installed logger's state, shared by the `log` callbacks and by
/// [`reopen`] and [`set_level`].
struct State {
    /// The most verbose level logged, as `LevelFilter as usize`.
    level: AtomicUsize,
    /// Lines are JSON ([`LogFormat::Json`]) rather than text.
    json: AtomicBool,
    /// The log file, when logging to one.
    file: Option<LogFile>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// A log file that can be reopened at the same path.
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn write_line(&self, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // One write(2) per line: with O_APPEND, lines from several threads
        // never interleave. A full disk loses lines; there is nowhere
        // better to report that.
        let _ = file.write_all(line.as_bytes());
    }
}

/// Why the logger could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file cannot be opened: exit status 73 (`EX_CANTCREAT`).
    #[error("cannot open log file {}", path.display())]
    Open {
        /// The log file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A logger is already installed in this process: exit status 70
    /// (`EX_SOFTWARE`), a bug.
    #[error("cannot install the logger: {0}")]
    Installed(String),
}

impl LogError {
    /// The exit status: [`crate::exit::Exit::CantCreat`] (73) for a log
    /// file that cannot be opened, else [`crate::exit::Exit::Software`].
    pub fn exit(&self) -> crate::exit::Exit {
        match self {
            LogError::Open { .. } => crate::exit::Exit::CantCreat,
            LogError::Installed(_) => crate::exit::Exit::Software,
        }
    }
}

/// Installs the logger: `level` and more severe records go to `target`,
/// written in `format` (unless `target` is syslog).
///
/// Call it once per process, early: before [`crate::daemon::detach::detach`] (so
/// start-up messages still reach the terminal) and before
/// [`crate::daemon::privileges::drop_to`] (so a log file root may write is opened
/// while root). A file is created if missing (mode 0640 less the umask) and
/// appended to (`O_APPEND`, `O_CLOEXEC`), never through a symbolic or hard
/// link another user planted ([`crate::files`]). When `/dev/log` cannot be reached
/// for [`LogTarget::Syslog`], lines go to standard error instead and a
/// warning says so.
///
/// # Errors
/// When the log file cannot be opened (the message names the path and the
/// OS error), or when a logger is already installed in this process.
pub fn init(target: &LogTarget, level: LevelFilter, format: LogFormat) -> Result<(), LogError> {
    init_with_syslog_socket(target, level, format, Path::new(SYSLOG_SOCKET))
}

/// [`init`], with the syslog socket at `socket` instead of `/dev/log`.
fn init_with_syslog_socket(
    target: &LogTarget,
    level: LevelFilter,
    format: LogFormat,
    socket: &Path,
) -> Result<(), LogError> {
    let file = match target {
        LogTarget::File(path) => Some(LogFile {
            path: path.clone(),
            file: Mutex::new(open_log_file(path).map_err(|source| LogError::Open {
                path: path.clone(),
                source,
            })?),
        }),
        LogTarget::Stderr | LogTarget::Syslog => None,
    };
    let mut syslog_unavailable = None;
    let syslog = match target {
        LogTarget::Syslog => match Syslog::connect(socket) {
            Ok(s) => Some(s),
            Err(e) => {
                syslog_unavailable = Some(format!(
                    "cannot reach syslog at {}: {e}; logging to standard error instead",
                    socket.display()
                ));
                None
            }
        },
        LogTarget::Stderr | LogTarget::File(_) => None,
    };

    let state = State {
        level: AtomicUsize::new(level as usize),
        json: AtomicBool::new(format == LogFormat::Json),
        file,
    };
    STATE.set(state).map_err(|_| {
        LogError::Installed("logging is already initialised in this process".to_owned())
    })?;
    let state: &'static State = STATE.get().expect("just set");

    let dispatch = fern::Dispatch::new()
        .level(LevelFilter::Trace)
        .filter(move |meta| enabled(state, meta));
    let dispatch = if let Some(syslog) = syslog {
        // syslog stamps time and severity itself: send the bare message,
        // one line at a time.
        dispatch.chain(fern::Output::call(move |record| {
            let message = record.args().to_string();
            for line in message.lines().filter(|l| !l.trim().is_empty()) {
                syslog.send(record.level(), line);
            }
        }))
    } else {
        dispatch.chain(fern::Output::call(move |record| {
            let format = if state.json.load(Ordering::Relaxed) {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            let text = format_record(
                format,
                &chrono::Local::now(),
                record.level(),
                &record.args().to_string(),
            );
            match &state.file {
                Some(file) => file.write_line(&text),
                None => {
                    let _ = io::stderr().lock().write_all(text.as_bytes());
                }
            }
        }))
    };
    dispatch
        .apply()
        .map_err(|e| LogError::Installed(e.to_string()))?;
    // fern sets the global maximum to its own (Trace); the configured level
    // lets the `log` macros skip disabled records without formatting them.
    log::set_max_level(level);

    if let Some(warning) = syslog_unavailable {
        log::warn!("{warning}");
    }
    Ok(())
}

/// Whether a record is logged: heartbeat's own at the configured level,
/// other crates' at INFO and above.
fn enabled(state: &State, meta: &log::Metadata<'_>) -> bool {
    let level = state.level.load(Ordering::Relaxed);
    let ours = meta.target() == "heartbeat" || meta.target().starts_with("heartbeat::");
    let max = if ours {
        level
    } else {
        level.min(LevelFilter::Info as usize)
    };
    meta.level() as usize <= max
}

/// A record as written to standard error or a file, with its final line
/// feed: in [`LogFormat::Text`] one stamped line per line of `message`
/// (an empty message gives one line), in [`LogFormat::Json`] one object.
pub fn format_record<Tz: chrono::TimeZone>(
    format: LogFormat,
    now: &chrono::DateTime<Tz>,
    level: Level,
    message: &str,
) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match format {
        LogFormat::Text => {
            let stamp = now.format("%Y-%m-%d %H:%M:%S %z");
            let name = level_name(level);
            let mut text = String::new();
            let mut lines = message.lines().peekable();
            if lines.peek().is_none() {
                return format!("{stamp} {name:<8} \n");
            }
            for line in lines {
                text.push_str(&format!("{stamp} {name:<8} {line}\n"));
            }
            text
        }
        LogFormat::Json => {
            let object = serde_json::json!({
                "time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                "level": level_name(level),
                "message": message,
            });
            format!("{object}\n")
        }
    }
}

/// Switches between text and JSON lines, e.g. after a reload changed
/// `logformat`. Does nothing before [`init`].
pub fn set_format(format: LogFormat) {
    if let Some(state) = STATE.get() {
        state
            .json
            .store(format == LogFormat::Json, Ordering::Relaxed);
    }
}

/// Changes the most verbose level logged, e.g. after a reload changed
/// `loglevel`. Does nothing before [`init`].
pub fn set_level(level: LevelFilter) {
    if let Some(state) = STATE.get() {
        state.level.store(level as usize, Ordering::Relaxed);
        log::set_max_level(level);
    }
}

/// Reopens the log file at its configured path, for logrotate: after the
/// file was renamed, lines go to a new file at the original path, created
/// if needed with this process's current user (the directory must be
/// writable by it after a privilege drop, unless logrotate's `create`
/// makes the file).
///
/// Does nothing when not logging to a file (or before [`init`]).
///
/// # Errors
/// When the path cannot be opened. The failure is also logged, and lines
/// keep going to the file that was open before.
pub fn reopen() -> Result<(), String> {
    let Some(log_file) = STATE.get().and_then(|s| s.file.as_ref()) else {
        return Ok(());
    };
    match open_log_file(&log_file.path) {
        Ok(new) => {
            *log_file.file.lock().unwrap_or_else(PoisonError::into_inner) = new;
            log::info!("reopened log file {}", log_file.path.display());
            Ok(())
        }
        Err(e) => {
            let message = format!(
                "cannot reopen log file {}: {e}; still writing to the file opened before",
                log_file.path.display()
            );
            log::error!("{message}");
            Err(message)
        }
    }
}

/// Opens the log file without following a link planted by another user,
/// close-on-exec (hooks and checks never inherit it); see
/// [`crate::files::open_for_writing`].
fn open_log_file(path: &Path) -> io::Result<File> {
    crate::files::open_for_writing(
        path,
        crate::files::WriteMode {
            append: true,
            create_mode: LOG_FILE_MODE,
        },
    )
}

/// The level as written in log lines: `ERROR`, `WARNING`, `INFO`, `DEBUG`,
/// `TRACE` (the names of the `loglevel` setting; `log` has no CRITICAL,
/// which the configuration maps to ERROR).
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

/// The syslog severity of a level (RFC 5424 §6.2.1, `<syslog.h>`): ERROR →
/// 3 `err`, WARNING → 4 `warning`, INFO → 6 `info`, DEBUG and TRACE → 7
/// `debug`.
pub fn syslog_severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// A connection to the local syslog daemon's datagram socket.
struct Syslog {
    path: PathBuf,
    socket: Mutex<UnixDatagram>,
}

impl Syslog {
    fn connect(path: &Path) -> io::Result<Syslog> {
        Ok(Syslog {
            path: path.to_owned(),
            socket: Mutex::new(connect_datagram(path)?),
        })
    }

    /// Sends one message. After a failure (the syslog daemon restarted and
    /// made a new socket) it reconnects once and retries; a message that
    /// still cannot be sent goes to standard error.
    fn send(&self, level: Level, message: &str) {
        let datagram = syslog_datagram(level, message);
        let mut socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if socket.send(datagram.as_bytes()).is_ok() {
            return;
        }
        if let Ok(fresh) = connect_datagram(&self.path) {
            *socket = fresh;
            if socket.send(datagram.as_bytes()).is_ok() {
                return;
            }
        }
        let _ = writeln!(io::stderr().lock(), "{datagram}");
    }
}

fn connect_datagram(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    Ok(socket)
}

/// `<PRI>Mmm dd hh:mm:ss heartbeat[PID]: message` (RFC 3164 §4.1, as
/// glibc's `syslog(3)` writes to `/dev/log`), local time, facility daemon.
fn syslog_datagram(level: Level, message: &str) -> String {
    let mut end = message.len().min(SYSLOG_MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "<{}>{} {}[{}]: {}",
        FACILITY_DAEMON * 8 + syslog_severity(level),
        chrono::Local::now().format("%b %e %H:%M:%S"),
        SYSLOG_IDENT,
        // Read per message: the PID changes when the daemon detaches.
        std::process::id(),
        &message[..end]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{child, child_lines, is_child};
    use std::time::Duration;

    /// A log line taken apart by [`parse_line`].
    #[derive(Debug)]
    struct Line {
        date: String,
        time: String,
        offset: String,
        level: String,
        message: String,
    }

    /// Checks the shape `YYYY-MM-DD HH:MM:SS ±HHMM LEVEL___ message` (level
    /// padded to 8 and followed by one space) and splits the line.
    fn parse_line(line: &str) -> Result<Line, String> {
        let bytes = line.as_bytes();
        let shape = "dddd-dd-dd dd:dd:dd sdddd ";
        if bytes.len() < shape.len() + 9 {
            return Err(format!("line too short: {line:?}"));
        }
        for (i, want) in shape.bytes().enumerate() {
            let ok = match want {
                b'd' => bytes[i].is_ascii_digit(),
                b's' => bytes[i] == b'+' || bytes[i] == b'-',
                other => bytes[i] == other,
            };
            if !ok {
                return Err(format!("byte {i} of {line:?} does not fit {shape:?}"));
            }
        }
        let padded = &line[26..34];
        let level = padded.trim_end();
        if !["ERROR", "WARNING", "INFO", "DEBUG", "TRACE"].contains(&level) {
            return Err(format!("unknown level {padded:?} in {line:?}"));
        }
        if padded[level.len()..].bytes().any(|b| b != b' ') || bytes[34] != b' ' {
            return Err(format!("level not padded to 8 then a space: {line:?}"));
        }
        Ok(Line {
            date: line[..10].to_owned(),
            time: line[11..19].to_owned(),
            offset: line[20..25].to_owned(),
            level: level.to_owned(),
            message: line[35..].to_owned(),
        })
    }

    fn read_lines(path: &Path) -> Vec<Line> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| parse_line(l).unwrap())
            .collect()
    }

    #[test]
    fn parser_accepts_the_documented_example() {
        let line = parse_line("2026-12-01 19:16:31 +0000 INFO     message").unwrap();
        assert_eq!(line.date, "2026-12-01");
        assert_eq!(line.time, "19:16:31");
        assert_eq!(line.offset, "+0000");
        assert_eq!(line.level, "INFO");
        assert_eq!(line.message, "message");
        let line = parse_line("2026-11-20 13:14:52 -0330 WARNING  x y").unwrap();
        assert_eq!(
            (
                line.offset.as_str(),
                line.level.as_str(),
                line.message.as_str()
            ),
            ("-0330", "WARNING", "x y")
        );
        assert!(parse_line("2026-11-20 13:14:52 +0000 INFO message").is_err());
        assert!(parse_line("2026-11-20 13:14:52 INFO     message").is_err());
        assert!(parse_line("2026-11-20T13:14:52 +0000 INFO     message").is_err());
        assert!(parse_line("2026-11-20 13:14:52 +0000 WARN     message").is_err());
    }

    fn at(offset_seconds: i32) -> chrono::DateTime<chrono::FixedOffset> {
        use chrono::TimeZone;
        chrono::FixedOffset::east_opt(offset_seconds)
            .unwrap()
            .with_ymd_and_hms(2026, 12, 1, 19, 16, 31)
            .unwrap()
            + chrono::Duration::milliseconds(250)
    }

    #[test]
    fn text_records_carry_their_offset_and_one_stamp_per_line() {
        assert_eq!(
            format_record(LogFormat::Text, &at(0), Level::Info, "in rotation"),
            "2026-12-01 19:16:31 +0000 INFO     in rotation\n"
        );
        assert_eq!(
            format_record(
                LogFormat::Text,
                &at(-(3 * 3600 + 1800)),
                Level::Error,
                "failed:\n  a\n  b"
            ),
            "2026-12-01 19:16:31 -0330 ERROR    failed:\n\
             2026-12-01 19:16:31 -0330 ERROR      a\n\
             2026-12-01 19:16:31 -0330 ERROR      b\n"
        );
        assert_eq!(
            format_record(LogFormat::Text, &at(0), Level::Warn, ""),
            "2026-12-01 19:16:31 +0000 WARNING  \n"
        );
    }

    #[test]
    fn json_records_are_one_object_a_line_with_an_rfc3339_time() {
        let text = format_record(
            LogFormat::Json,
            &at(19800),
            Level::Warn,
            "two\nlines \"quoted\"",
        );
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
        let object: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            object,
            serde_json::json!({
                "time": "2026-12-01T19:16:31.250+05:30",
                "level": "WARNING",
                "message": "two\nlines \"quoted\"",
            })
        );
        let time = chrono::DateTime::parse_from_rfc3339(object["time"].as_str().unwrap()).unwrap();
        assert_eq!(time, at(19800));
    }

    #[test]
    fn level_names_and_severities() {
        let table = [
            (Level::Error, "ERROR", 3),
            (Level::Warn, "WARNING", 4),
            (Level::Info, "INFO", 6),
            (Level::Debug, "DEBUG", 7),
            (Level::Trace, "TRACE", 7),
        ];
        for (level, name, severity) in table {
            assert_eq!(
                (level_name(level), syslog_severity(level)),
                (name, severity),
                "{level:?}"
            );
        }
    }

    #[test]
    fn syslog_datagram_has_priority_ident_and_pid() {
        let d = syslog_datagram(Level::Warn, "disk almost full");
        // daemon (3) * 8 + warning (4) = 28
        assert!(d.starts_with("<28>"), "{d}");
        let tail = format!(" heartbeat[{}]: disk almost full", std::process::id());
        assert!(d.ends_with(&tail), "{d}");
        // "Mmm dd hh:mm:ss" between the priority and the ident.
        let stamp = &d[4..d.len() - tail.len()];
        assert_eq!(stamp.len(), 15, "{stamp:?}");
        assert_eq!(&stamp[9..10], ":", "{stamp:?}");
        assert_eq!(syslog_datagram(Level::Error, "x").get(..4), Some("<27>"));
        assert_eq!(syslog_datagram(Level::Debug, "x").get(..4), Some("<31>"));
    }

    #[test]
    fn syslog_datagram_cuts_long_messages_at_a_char_boundary() {
        let long = "é".repeat(SYSLOG_MAX_MESSAGE);
        let d = syslog_datagram(Level::Info, &long);
        let message = d.split_once("]: ").unwrap().1;
        assert!(message.len() <= SYSLOG_MAX_MESSAGE);
        assert!(message.len() >= SYSLOG_MAX_MESSAGE - 1);
    }

    #[test]
    fn syslog_reconnects_after_the_daemon_made_a_new_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let first = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::connect(&path).unwrap();
        syslog.send(Level::Info, "one");
        let mut buf = [0u8; 512];
        let n = first.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("]: one"));

        // The syslog daemon restarts: old socket gone, new one at the path.
        drop(first);
        std::fs::remove_file(&path).unwrap();
        let second = UnixDatagram::bind(&path).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        syslog.send(Level::Error, "two");
        let n = second.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(got.starts_with("<27>") && got.ends_with("]: two"), "{got}");
    }

    /// Runs a child test with `vars` and returns its `child:` lines,
    /// failing when it fails.
    fn run_child(name: &str, vars: &[(&str, &Path)]) -> Vec<String> {
        let mut cmd = child(name);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "child {name} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        child_lines(&out.stdout)
    }

    #[test]
    fn file_lines_have_the_documented_shape_and_follow_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.log");
        run_child(
            "logging::tests::child_file",
            &[("HEARTBEAT_TEST_LOG", &path)],
        );
        let rotated = read_lines(&path.with_extension("log.1"));
        let fresh = read_lines(&path);
        let summary = |lines: &[Line]| -> Vec<(String, String)> {
            lines
                .iter()
                .map(|l| (l.level.clone(), l.message.clone()))
                .collect()
        };
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            summary(&rotated),
            [
                s("INFO", "an earlier run"),
                s("INFO", "before rotation"),
                s("WARNING", "a warning"),
                s("ERROR", "an error"),
                s("DEBUG", "debug is on"),
            ]
        );
        let reopened = format!("reopened log file {}", path.display());
        assert_eq!(
            summary(&fresh),
            [
                s("INFO", &reopened),
                s("INFO", "after rotation"),
                s("WARNING", "still shown at WARNING"),
            ]
        );
    }

    /// Logs into `$HEARTBEAT_TEST_LOG`, renames it to `….1` (as logrotate
    /// does), reopens, logs again.
    #[test]
    #[ignore = "run by file_lines_have_the_documented_shape_and_follow_reopen"]
    fn child_file() {
        if !is_child("logging::tests::child_file") {
            return;
        }
        let path = PathBuf::from(std::env::var_os("HEARTBEAT_TEST_LOG").unwrap());
        // An existing file is appended to.
        std::fs::write(&path, "2026-01-01 00:00:00 +0000 INFO     an earlier run\n").unwrap();
        init(
            &LogTarget::File(path.clone()),
            LevelFilter::Debug,
            LogFormat::Text,
        )
        .unwrap();
        assert!(init(&LogTarget::Stderr, LevelFilter::Debug, LogFormat::Text).is_err());
        log::info!("before rotation");
        log::warn!("a warning");
        log::error!("an error");
        log::debug!("debug is on");
        log::trace!("trace is off");
        log::debug!(target: "ureq", "other crates' debug is off");
        std::fs::rename(&path, path.with_extension("log.1")).unwrap();
        reopen().unwrap();
        log::info!("after rotation");
        set_level(LevelFilter::Warn);
        log::info!("hidden at WARNING");
        log::warn!("still shown at WARNING");
    }

    #[test]
    fn failed_reopen_keeps_the_old_file_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.log");
        run_child(
            "logging::tests::child_failed_reopen",
            &[("HEARTBEAT_TEST_LOG", &path)],
        );
        let lines = read_lines(&path.with_extension("log.1"));
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[0], "before");
        assert_eq!(lines[1].level, "ERROR");
        assert!(
            messages[1].starts_with(&format!("cannot reopen log file {}: ", path.display()))
                && messages[1].ends_with("still writing to the file opened before"),
            "{}",
            messages[1]
        );
        assert_eq!(messages[2], "after");
    }

    #[test]
    #[ignore = "run by failed_reopen_keeps_the_old_file_and_says_why"]
    fn child_failed_reopen() {
        if !is_child("logging::tests::child_failed_reopen") {
            return;
        }
        let path = PathBuf::from(std::env::var_os("HEARTBEAT_TEST_LOG").unwrap());
        init(
            &LogTarget::File(path.clone()),
            LevelFilter::Info,
            LogFormat::Text,
        )
        .unwrap();
        log::info!("before");
        std::fs::rename(&path, path.with_extension("log.1")).unwrap();
        // A directory where the file was: it cannot be opened for writing.
        std::fs::create_dir(&path).unwrap();
        assert!(reopen().is_err());
        log::info!("after");
    }

    #[test]
    fn time_stamps_are_local_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat.log");
        let before = chrono::Utc::now();
        let out = child("logging::tests::child_file_plain")
            .env("HEARTBEAT_TEST_LOG", &path)
            // Five and a half hours east of UTC, as a POSIX TZ rule (no
            // time zone database needed).
            .env("TZ", "<+0530>-05:30")
            .output()
            .unwrap();
        let after = chrono::Utc::now();
        assert!(out.status.success(), "{out:?}");
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 1);
        let stamp = chrono::NaiveDateTime::parse_from_str(
            &format!("{} {}", lines[0].date, lines[0].time),
            "%Y-%m-%d %H:%M:%S",
        )
        .unwrap();
        let offset = chrono::Duration::minutes(5 * 60 + 30);
        let low = (before + offset).naive_utc() - chrono::Duration::seconds(1);
        let high = (after + offset).naive_utc() + chrono::Duration::seconds(1);
        assert!(
            low <= stamp && stamp <= high,
            "{stamp} is not UTC+05:30 ({low} .. {high})"
        );
        assert_eq!(lines[0].offset, "+0530");
    }

    #[test]
    #[ignore = "run by time_stamps_are_local_time"]
    fn child_file_plain() {
        if !is_child("logging::tests::child_file_plain") {
            return;
        }
        let path = PathBuf::from(std::env::var_os("HEARTBEAT_TEST_LOG").unwrap());
        // Threads exist before the first stamp: local time must still work.
        std::thread::spawn(|| ()).join().unwrap();
        init(&LogTarget::File(path), LevelFilter::Info, LogFormat::Text).unwrap();
        std::thread::spawn(|| log::info!("from a thread"))
            .join()
            .unwrap();
    }

    #[test]
    fn syslog_target_sends_severities_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let out = child("logging::tests::child_syslog")
            .env("HEARTBEAT_TEST_SYSLOG", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let pid = child_lines(&out.stdout)
            .first()
            .cloned()
            .expect("child prints its pid");
        let mut got = Vec::new();
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = server.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        // A record of several lines is one message per line.
        let want = [
            (27, "an error"),
            (28, "a warning"),
            (30, "some news"),
            (27, "demotion failed; output:"),
            (27, "    line one"),
            (27, "    line two"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (datagram, (pri, message)) in got.iter().zip(want) {
            assert!(datagram.starts_with(&format!("<{pri}>")), "{datagram}");
            assert!(
                datagram.ends_with(&format!(" heartbeat[{pid}]: {message}")),
                "{datagram}"
            );
        }
    }

    #[test]
    #[ignore = "run by syslog_target_sends_severities_to_the_socket"]
    fn child_syslog() {
        if !is_child("logging::tests::child_syslog") {
            return;
        }
        let path = PathBuf::from(std::env::var_os("HEARTBEAT_TEST_SYSLOG").unwrap());
        init_with_syslog_socket(
            &LogTarget::Syslog,
            LevelFilter::Info,
            LogFormat::Text,
            &path,
        )
        .unwrap();
        println!("child: {}", std::process::id());
        log::error!("an error");
        log::warn!("a warning");
        log::info!("some news");
        log::error!("demotion failed; output:\n    line one\n\n    line two\n");
        log::debug!("not sent at INFO");
    }

    #[test]
    fn missing_syslog_socket_falls_back_to_stderr_with_a_warning() {
        let out = child("logging::tests::child_syslog_missing")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<Line> = stderr.lines().filter_map(|l| parse_line(l).ok()).collect();
        assert_eq!(lines.len(), 2, "{stderr}");
        assert_eq!(lines[0].level, "WARNING");
        assert!(
            lines[0]
                .message
                .starts_with("cannot reach syslog at /nonexistent/heartbeat-test/log: ")
                && lines[0]
                    .message
                    .ends_with("logging to standard error instead"),
            "{}",
            lines[0].message
        );
        assert_eq!(
            (lines[1].level.as_str(), lines[1].message.as_str()),
            ("INFO", "still logged")
        );
    }

    #[test]
    #[ignore = "run by missing_syslog_socket_falls_back_to_stderr_with_a_warning"]
    fn child_syslog_missing() {
        if !is_child("logging::tests::child_syslog_missing") {
            return;
        }
        let path = Path::new("/nonexistent/heartbeat-test/log");
        init_with_syslog_socket(&LogTarget::Syslog, LevelFilter::Info, LogFormat::Text, path)
            .unwrap();
        log::info!("still logged");
    }
}
