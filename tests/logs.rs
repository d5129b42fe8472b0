//! The log as an operator tails it at INFO: what hooks say, in lines that
//! carry their UTC offset, or JSON lines for a log collector.

use crate::support::bin::{self as support, Daemon, Scratch};
use crate::support::daemon::{start, with_hooks};

use std::fs;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A configuration whose `gate` check the test opens and closes through a
/// flag file; the promotion prints two lines, the demotion complains on
/// stderr and fails.
fn hooks_config(flag: &str, extra: &str) -> String {
    format!(
        "interval = 200ms\nloglevel = INFO\n{extra}{}",
        with_hooks(
            &[(
                "web",
                "printf 'in rotation\\nweight 100\\n'",
                "echo 'out of rotation: gate closed' >&2; exit 3"
            )],
            &format!("[gate]\ntype = script\ncommand = test -e {flag}\naction = web\n")
        )
    )
}

/// Promotes, then demotes `web` and waits until both are in the log.
fn promote_then_demote(s: &Scratch, hb: &Daemon, needle_promoted: &str, needle_failed: &str) {
    fs::write(s.path("up"), "").unwrap();
    hb.wait_log(needle_promoted, LONG);
    fs::remove_file(s.path("up")).unwrap();
    hb.wait_log(needle_failed, LONG);
}

/// `(time as UTC, level, message)` of a text line, checking its shape:
/// `YYYY-MM-DD HH:MM:SS ±HHMM LEVEL___ message`.
fn parse_text_line(line: &str) -> (chrono::DateTime<chrono::Utc>, String, String) {
    let stamp = line
        .get(..25)
        .unwrap_or_else(|| panic!("short line {line:?}"));
    let time = chrono::DateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S %z")
        .unwrap_or_else(|e| panic!("{line:?}: no time and offset ({e})"));
    let rest = &line[26..];
    let level = rest.get(..8).unwrap_or_default();
    assert!(
        ["ERROR   ", "WARNING ", "INFO    "].contains(&level)
            && rest.as_bytes().get(8) == Some(&b' '),
        "{line:?}: no padded level"
    );
    (
        time.with_timezone(&chrono::Utc),
        level.trim_end().to_owned(),
        rest[9..].to_owned(),
    )
}

/// Regression: a successful hook's output was logged at DEBUG only, so the
/// nginx example's "in rotation" never reached a log at INFO; log times
/// carried no zone.
#[test]
fn hook_output_is_logged_at_info_and_every_line_carries_its_utc_offset() {
    let s = Scratch::new();
    let flag = s.path("up");
    let (hb, _addr) = start(&s, &hooks_config(flag.to_str().unwrap(), ""));
    promote_then_demote(
        &s,
        &hb,
        "INFO     [web] weight 100",
        "ERROR    [web] out of rotation: gate closed",
    );
    let text = hb.log_text();
    let lines: Vec<_> = text.lines().map(parse_text_line).collect();
    let now = chrono::Utc::now();
    for (time, _, message) in &lines {
        let age = now - *time;
        assert!(
            age >= chrono::Duration::seconds(-2) && age < chrono::Duration::seconds(120),
            "{message:?} stamped {time}, now is {now}: a wrong offset?"
        );
    }
    let find = |level: &str, message: &str| {
        lines
            .iter()
            .position(|(_, l, m)| l == level && m == message)
            .unwrap_or_else(|| panic!("no {level} {message:?} in:\n{text}"))
    };
    let succeeded = lines
        .iter()
        .position(|(_, l, m)| {
            l == "INFO" && m.starts_with("promotion of group \"web\" succeeded in ")
        })
        .unwrap_or_else(|| panic!("no success in:\n{text}"));
    // What the hook said follows the outcome, line by line, in order.
    assert_eq!(find("INFO", "[web] in rotation"), succeeded + 1);
    assert_eq!(find("INFO", "[web] weight 100"), succeeded + 2);
    let failed = lines
        .iter()
        .position(|(_, l, m)| {
            l == "ERROR"
                && m.starts_with("demotion of group \"web\" failed after ")
                && m.ends_with(": exit status 3; its output:")
        })
        .unwrap_or_else(|| panic!("no failure in:\n{text}"));
    assert_eq!(
        find("ERROR", "[web] out of rotation: gate closed"),
        failed + 1
    );
}

#[test]
fn logformat_json_writes_one_object_a_line_with_an_rfc3339_time() {
    let s = Scratch::new();
    let flag = s.path("up");
    let (hb, _addr) = start(
        &s,
        &hooks_config(flag.to_str().unwrap(), "logformat = json\n"),
    );
    promote_then_demote(
        &s,
        &hb,
        "\"message\":\"[web] weight 100\"",
        "\"message\":\"[web] out of rotation: gate closed\"",
    );
    let text = hb.log_text();
    let now = chrono::Utc::now();
    let mut seen = Vec::new();
    for line in text.lines() {
        let (time, level, message) = json_record(line);
        let age = now - time;
        assert!(age < chrono::Duration::seconds(120), "{line}");
        seen.push((level, message));
    }
    for (level, message) in [
        ("INFO", "[web] in rotation"),
        ("INFO", "[web] weight 100"),
        ("ERROR", "[web] out of rotation: gate closed"),
    ] {
        assert!(
            seen.contains(&(level.to_owned(), message.to_owned())),
            "no {level} {message:?} in:\n{text}"
        );
    }
}

#[test]
fn a_bad_logformat_is_a_configuration_error_naming_what_is_expected() {
    let s = Scratch::new();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\n{}",
            hooks_config("/nonexistent", "logformat = yaml\n")
        ),
    );
    let out = s.run(&["-t", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("logformat") && said.contains("expected text or json"),
        "{said}"
    );
}

/// `(time, level, message)` of one line of a JSON log, checked to be one
/// object of `level`, `message` and `time` (RFC 3339).
fn json_record(line: &str) -> (chrono::DateTime<chrono::Utc>, String, String) {
    let object: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"));
    let keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["level", "message", "time"], "{line}");
    let time = chrono::DateTime::parse_from_rfc3339(object["time"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    (
        time.with_timezone(&chrono::Utc),
        object["level"].as_str().unwrap().to_owned(),
        object["message"].as_str().unwrap().to_owned(),
    )
}

/// `(level, message)` of every line of a JSON log ([`json_record`]); a
/// duration in `succeeded in 1ms` is left out, as it differs from run to
/// run.
fn json_records(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| {
            let (_, level, message) = json_record(line);
            let message = match message.split_once(" succeeded in ") {
                Some((head, _)) => format!("{head} succeeded in …"),
                None => message,
            };
            (level, message)
        })
        .collect()
}

/// Sidecar mode takes `--logformat json` and logs what the same check and
/// group in a file with `logformat = json` log, line for line.
#[test]
fn the_sidecars_logformat_json_logs_what_the_files_does() {
    let s = Scratch::new();
    let conf = s.write(
        "hb.conf",
        "[general]\nlogformat = json\n[promotions]\nsidecar = true\n[demotions]\nsidecar = true\n\
         [script1]\ntype = script\ncommand = exit 3\naction = sidecar\n",
    );
    let file = s.run(&["--once", "-c", conf.to_str().unwrap()]);
    let flags = s.run(&["--once", "--script", "exit 3", "--logformat", "json"]);
    assert_eq!(
        (file.status.code(), flags.status.code()),
        (Some(1), Some(1))
    );
    let from_file = json_records(&String::from_utf8_lossy(&file.stderr));
    let from_flags = json_records(&String::from_utf8_lossy(&flags.stderr));
    assert!(
        from_flags.contains(&(
            "WARNING".to_owned(),
            "check \"script1\" (script [redacted]) is unhealthy: exit status 3".to_owned()
        )),
        "{from_flags:#?}"
    );
    assert_eq!(from_flags, from_file);

    // The same to a log file, from a running sidecar; `text` is the default.
    let log = s.path("sidecar.log");
    let log_arg = log.to_str().unwrap();
    let args = [
        "--script",
        "true",
        "--interval",
        "200ms",
        "--logfile",
        log_arg,
    ];
    let hb = s.spawn(&[&args[..], &["--logformat", "json"]].concat());
    let promoted = "promotion of group \\\"sidecar\\\" succeeded";
    support::wait_for("the promotion in the log file", LONG, || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains(promoted))
    });
    assert!(hb.stop().success());
    let records = json_records(&fs::read_to_string(&log).unwrap());
    assert!(
        records.contains(&(
            "INFO".to_owned(),
            "promotion of group \"sidecar\" succeeded in …".to_owned()
        )),
        "{records:#?}"
    );
    let text = s.run(&["--once", "--script", "true"]);
    let text = String::from_utf8_lossy(&text.stderr);
    assert!(
        text.lines().all(|l| !l.starts_with('{')) && text.contains("INFO     one round done"),
        "{text}"
    );

    let bad = s.run(&["--once", "--script", "true", "--logformat", "yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "heartbeat: invalid value 'yaml' for '--logformat <text|json>': \"yaml\" is not a log \
         format; expected text or json\n"
    );
}
