//! `heartbeat -t`: every effective setting, every command as it will run,
//! in columns that hold long names; and what can be checked without
//! running anything (the log's directory, `ca_file`, the programs hooks
//! and script checks name), each problem with its place in the file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::bin::{Scratch, is_root};

fn check_config(s: &Scratch, text: &str) -> (Option<i32>, String, String) {
    let path = s.write("hb.conf", text);
    let out = s.run(&["-t", "-c", path.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn executable(path: &Path, mode: u32) {
    std::fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn every_setting_is_shown_with_singular_and_plural_right() {
    let s = Scratch::new();
    let ca = s.write("ca.pem", "not checked by -t beyond being readable\n");
    let (code, out, err) = check_config(
        &s,
        &format!(
            "[general]\nloglevel = warn\ninterval = 90\nlisten = 127.0.0.1:8081\n\
             [promotions]\nweb = true\n[demotions]\nweb = false\n\
             [a-check-with-a-name-longer-than-any-column]\nurl = https://example.org/h\n\
             tls_verify = no\nca_file = {}\nexpect_body = ready\nexpect_status = 200-299, 301\n\
             action = web\nrise = 2\nfall = 3\ntimeout = 2500ms\nfast_interval = 2\n",
            ca.display()
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": OK: 1 group, 1 check\n"), "{out}");
    for line in [
        "loglevel = WARNING",
        "interval = 90s",
        "listen = 127.0.0.1:8081",
        "# pidfile = (none)",
        "# user = (none: the launching user)",
        "action_timeout = 60s",
        "check_permissions = yes",
        "  group \"web\": 1 check (\"a-check-with-a-name-longer-than-any-column\")",
        "    promotion: true",
        "    demotion:  false",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    let target = format!(
        "https://example.org:443/h, expect_status = 200-299, 301, expect_body = \"ready\", \
         tls_verify = no, ca_file = {}",
        ca.display()
    );
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("CHECK"))
        .unwrap();
    let row = out
        .lines()
        .find(|l| l.contains("a-check-with-a-name-longer") && l.contains("https:"))
        .unwrap();
    // Columns: every header word starts where its cell starts.
    let cells = [
        ("TYPE", "https"),
        ("TIMEOUT", "2.5s"),
        ("RISE", "2 "),
        ("FALL", "3 "),
        ("INTERVAL", "90s, fast 2s"),
        ("TARGET", target.as_str()),
    ];
    for (word, cell) in cells {
        assert_eq!(
            header.find(word),
            row.find(cell),
            "column {word} is not aligned:\n{header}\n{row}"
        );
    }
}

#[test]
fn commands_are_shown_in_full_line_by_line() {
    let s = Scratch::new();
    let (code, out, err) = check_config(
        &s,
        "[promotions]\nweb = echo a ; echo b # both run\n  --second-line\n[demotions]\nweb = true\n\
         [disk]\ntype = script\naction = web\ncommand = test -d /\n   && test -w /tmp\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("    promotion: echo a ; echo b # both run\n               --second-line\n"),
        "{out}"
    );
    let first = out.lines().position(|l| l.ends_with("test -d /")).unwrap();
    let line = out.lines().nth(first).unwrap();
    let next = out.lines().nth(first + 1).unwrap();
    assert_eq!(next.trim_start(), "&& test -w /tmp");
    assert_eq!(
        next.len() - next.trim_start().len(),
        line.find("test -d /").unwrap(),
        "the second line stays under the first:\n{out}"
    );
}

#[test]
fn a_missing_log_directory_is_reported_with_its_line() {
    let s = Scratch::new();
    let log = s.path("no/such/dir/heartbeat.log");
    let (code, out, err) = check_config(
        &s,
        &format!(
            "[general]\nlogfile = {}\n[promotions]\nweb = true\n[demotions]\nweb = true\n\
             [c]\nurl = tcp://127.0.0.1:1\naction = web\n",
            log.display()
        ),
    );
    assert_eq!(code, Some(78), "{out}{err}");
    assert!(
        err.contains(&format!(
            "hb.conf:2: [general] logfile: the log file's directory {} does not exist",
            log.parent().unwrap().display()
        )),
        "{err}"
    );
    assert!(
        out.is_empty(),
        "no report for a configuration that cannot run: {out}"
    );
}

#[test]
fn hooks_and_scripts_named_by_path_must_exist_and_be_executable() {
    let s = Scratch::new();
    let ok = s.path("ok.sh");
    executable(&ok, 0o755);
    let plain = s.path("plain.sh");
    executable(&plain, 0o644);
    let missing = s.path("missing.sh");
    let (code, _, err) = check_config(
        &s,
        &format!(
            "[promotions]\nweb = {ok} up\n[demotions]\nweb = {missing} down\n\
             [DEFAULT]\ntype = script\naction = web\n[c]\ncommand = {plain} && {ok}\n",
            ok = ok.display(),
            plain = plain.display(),
            missing = missing.display()
        ),
    );
    assert_eq!(code, Some(78), "{err}");
    let lines: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}:4: [demotions] web: {} cannot be run: No such file or directory (os error 2)",
                s.path("hb.conf").display(),
                missing.display()
            ),
            format!(
                "{}:9: [c] command: {} cannot be executed by {} (mode 0644); chmod +x {}",
                s.path("hb.conf").display(),
                plain.display(),
                if is_root() {
                    "root".to_owned()
                } else {
                    whoami()
                },
                plain.display()
            ),
        ],
        "{err}"
    );
}

// Hooks run as `user` after the privilege drop: a script only root may
// execute will not run.
#[test]
fn programs_are_checked_for_the_user_they_run_as() {
    if !is_root() {
        eprintln!("skipped: needs root to name another user");
        return;
    }
    let s = Scratch::new();
    let mine = s.path("root-only.sh");
    executable(&mine, 0o700);
    let (code, _, err) = check_config(
        &s,
        &format!(
            "[general]\nuser = nobody\n[promotions]\nweb = {}\n[demotions]\nweb = true\n\
             [c]\nurl = tcp://127.0.0.1:1\naction = web\n",
            mine.display()
        ),
    );
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains(&format!(
            "hb.conf:4: [promotions] web: {} cannot be executed by nobody (mode 0700)",
            mine.display()
        )),
        "{err}"
    );
}

fn whoami() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The README's example reports are what heartbeat prints, the path of the
/// file aside.
#[test]
fn the_readmes_reports_are_what_heartbeat_prints() {
    let readme = include_str!("../README.md");
    let as_installed = |text: &str, path: &Path| {
        text.replace(&path.display().to_string(), "/etc/heartbeat/heartbeat.conf")
    };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("heartbeat.conf.example");
    let s = Scratch::new();
    let out = s.run(&["-t", "-c", example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let report = as_installed(&String::from_utf8_lossy(&out.stdout), &example);
    assert!(
        readme.contains(&format!("```\n{report}```")),
        "the README lacks:\n{report}"
    );

    let (code, _, err) = check_config(
        &s,
        "[general]\ninterval = 10\n\n# the web tier\n\n[promotions]\nweb = /usr/local/bin/lb-add web\n\
         [demotions]\nweb = true\n[c]\nurl = tcp://127.0.0.1:1\naction = web\n",
    );
    assert_eq!(code, Some(78));
    let err = as_installed(&err, &s.path("hb.conf"));
    assert!(
        readme.contains(&format!("```\n{err}```")),
        "the README lacks:\n{err}"
    );
}

/// A file with a hook that carries a credential, and a pidfile.
const WITH_SECRET: &str = "[general]\npidfile = /run/hb-test.pid\nlogfile = syslog\n\
     [promotions]\nweb = curl -H 'Authorization: Bearer s3cret' http://lb/up\n\
     [demotions]\nweb = true\n[web-port]\nurl = tcp://127.0.0.1:9\naction = web\n";

/// `-t -q`, as the systemd unit's `ExecReload=` runs it: its output goes to
/// the journal, so a valid file prints nothing (nginx -t -q); an invalid
/// one still says everything that is wrong, with exit status 78.
#[test]
fn quiet_validation_prints_nothing_for_a_valid_file_and_every_error_for_an_invalid_one() {
    let s = Scratch::new();
    let conf = s.write("hb.conf", WITH_SECRET);
    let out = s.run(&["-t", "-q", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b""[..], &b""[..])
    );
    let long = s.run(&["--check-config", "--quiet", "-c", conf.to_str().unwrap()]);
    assert_eq!((long.status.code(), long.stdout.len()), (Some(0), 0));

    let bad = s.write(
        "bad.conf",
        &WITH_SECRET.replace("[general]\n", "[general]\ninterval = 5x\n"),
    );
    let out = s.run(&["-t", "-q", "-c", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("interval") && err.contains("5x"), "{err}");
    assert!(out.stdout.is_empty());

    // -q belongs to -t alone.
    let out = s.run(&["-q", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--check-config"));
}

/// `-t --setting KEY`, as `contrib/heartbeat.init` runs it: only the lines
/// of those keys, in the form of the full report (so `sed -n 's/^pidfile
/// = //p'` reads them alike), in the report's order, and never a hook.
#[test]
fn setting_prints_only_the_lines_of_the_keys_asked_for() {
    let s = Scratch::new();
    let conf = s.write("hb.conf", WITH_SECRET);
    let conf = conf.to_str().unwrap();
    let full = s.run(&["-t", "-c", conf]);
    let full = String::from_utf8_lossy(&full.stdout).into_owned();
    assert!(full.contains("s3cret"), "{full}");
    let out = s.run(&[
        "-t",
        "--setting",
        "pidfile",
        "--setting",
        "user",
        "--setting",
        "logfile",
        "-c",
        conf,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text,
        "# user = (none: the launching user)\nlogfile = syslog\npidfile = /run/hb-test.pid\n"
    );
    // The same lines as the full report's.
    for line in text.lines() {
        assert!(full.lines().any(|l| l == line), "{line:?} not in:\n{full}");
    }

    let out = s.run(&["-t", "--setting", "pidfiles", "-c", conf]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--setting pidfiles: not a key of [general]; expected one of user, group,"),
        "{err}"
    );
    let out = s.run(&["-t", "-q", "--setting", "user", "-c", conf]);
    assert_eq!(out.status.code(), Some(2));
}

/// A configuration for the permission tests: `general`, one group `g`
/// whose promotion runs `promotion`, one script check that passes.
fn trust_conf(general: &str, promotion: &str) -> String {
    format!(
        "[general]\n{general}\n[promotions]\ng = {promotion}\n[demotions]\ng = true\n\
         [c]\ntype = script\ncommand = true\naction = g\n"
    )
}

/// Root's file, writable by a group other than root's (gid 65534).
fn group_writable(path: &Path) {
    nix::unistd::chown(path, Some(0.into()), Some(65534.into())).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o664)).unwrap();
}

/// What a start as root says and does with `conf`: a foreground daemon
/// (killed when the test ends should it start), its exit status and
/// stderr.
fn start(s: &Scratch, conf: &Path) -> (Option<i32>, String) {
    let mut hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    let status = hb.wait_exit(std::time::Duration::from_secs(20));
    (status.and_then(|st| st.code()), hb.log_text())
}

/// Regression (found in review): `-t` and `-t -q`, which the systemd unit's
/// ExecReload= and the init script run before reloading or restarting,
/// must refuse a file root's start refuses (owned by root and writable by
/// its group), with the same message and exit status 78, not print OK;
/// `check_permissions = no` lets both through.
#[test]
fn t_refuses_a_group_writable_configuration_as_a_start_does() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new();
    let ran = s.path("ran");
    let conf = s.write(
        "hb.conf",
        &trust_conf("", &format!("touch {}", ran.display())),
    );
    group_writable(&conf);
    let c = conf.to_str().unwrap();
    let expected = format!(
        "heartbeat: {c}: refusing the configuration file: its group can write it (owner root \
         (uid 0), gid 65534, mode 0664) and heartbeat runs its commands as root; fix: chown root: \
         {c} && chmod go-w {c} (or set check_permissions = no in [general] if you must)\n"
    );

    let (code, err) = start(&s, &conf);
    assert_eq!(code, Some(78), "{err}");
    assert_eq!(err, expected);
    assert!(!ran.exists(), "a start ran the promotion of a refused file");
    for args in [&["-t", "-c", c][..], &["-t", "-q", "-c", c]] {
        let out = s.run(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(78), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr, expected, "{args:?}");
        assert_eq!(stdout, "", "{args:?}");
    }

    // The key turns the check off for -t and for the start alike (the file
    // keeps its owner and mode when rewritten).
    s.write(
        "hb.conf",
        &trust_conf(
            "check_permissions = no",
            &format!("touch {}", ran.display()),
        ),
    );
    assert_eq!(std::fs::metadata(&conf).unwrap().mode() & 0o777, 0o664);
    let out = s.run(&["-t", "-c", c]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains(": OK: 1 group, 1 check\n"), "{stdout}");
    let out = s.run(&["-t", "-q", "-c", c]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"");
    let out = s.run(&["--once", "-c", c]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(ran.exists(), "the promotion did not run");
}

/// The same for a hook script a group other than root's can write: `-t`
/// and `-t -q` refuse it as a start does, naming the script and the group
/// whose hook it is.
#[test]
fn t_refuses_a_group_writable_hook_script_as_a_start_does() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new();
    let script = s.path("promote.sh");
    executable(&script, 0o775);
    nix::unistd::chown(&script, Some(0.into()), Some(65534.into())).unwrap();
    let conf = s.write("hb.conf", &trust_conf("", script.to_str().unwrap()));
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = conf.to_str().unwrap();
    let expected = format!(
        "heartbeat: {0}: refusing the promotion of group \"g\": a group other than root's can \
         write it (owner root (uid 0), gid 65534, mode 0775); a non-root user could run commands \
         as root through it; fix: chown root: {0} && chmod go-w {0} (or set check_permissions = \
         no in [general])\n",
        script.display()
    );
    let (code, err) = start(&s, &conf);
    assert_eq!(code, Some(78), "{err}");
    assert_eq!(err, expected);
    for args in [&["-t", "-c", c][..], &["-t", "-q", "-c", c]] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{args:?}");
        assert_eq!(out.stdout, b"", "{args:?}");
    }
}
