//! The configuration file as users write it: the Python tool's format, the
//! ConfigParser dialect, and every kind of mistake, each reported with its
//! place.

use std::path::Path;
use std::time::Duration;

use heartbeat::config::{ConfigError, Loaded, parse};
use heartbeat::model::{LogTarget, Probe};

fn load(text: &str) -> Result<Loaded, ConfigError> {
    parse(text, Path::new("test.conf"), Path::new("/etc/heartbeat"))
}

fn ok(text: &str) -> Loaded {
    load(text).unwrap_or_else(|e| panic!("expected a valid configuration, got:\n{e}"))
}

/// The rendered errors, one string each.
fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors, the configuration was accepted:\n{text}"),
        Err(e) => e.errors.iter().map(|d| d.render(&e.file)).collect(),
    }
}

fn assert_has(all: &[String], needle: &str) {
    assert!(
        all.iter().any(|e| e.contains(needle)),
        "no error contains {needle:?}; errors were:\n{}",
        all.join("\n")
    );
}

const PYTHON_TOOL: &str = "\
[general]
user = None
group = None
daemonize = no
interval = 10
threads = 4
logfile = /var/log/heartbeat.log
loglevel = info

[promotions]
web = /usr/local/bin/lb-add web

[demotions]
web = /usr/local/bin/lb-remove web

[DEFAULT]
action = web
hostname = 127.0.0.1
path = /health
port = 80
timeout = 3
type = http

[app1]
port = 8081

[app2]
port = 8082
";

#[test]
fn a_python_tool_configuration_runs_unchanged() {
    let loaded = ok(PYTHON_TOOL);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.general.user, None);
    assert_eq!(c.general.interval, Duration::from_secs(10));
    assert_eq!(c.general.threads, 4);
    assert!(!c.general.daemonize);
    assert_eq!(
        c.general.log,
        LogTarget::File("/var/log/heartbeat.log".into())
    );
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].promotion, "/usr/local/bin/lb-add web");
    let names: Vec<_> = c.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app1", "app2"]);
    let Probe::Http(http) = &c.checks[1].probe else {
        panic!("app2 should be http")
    };
    assert_eq!(http.url(), "http://127.0.0.1:8082/health");
    assert_eq!(c.checks[1].timeout, Duration::from_secs(3));
    assert_eq!(c.checks[1].groups, ["web"]);
}

#[test]
fn commands_reach_the_shell_exactly_as_written() {
    let c = ok(r#"
[promotions]
web = printf '%s\n' "up; really" # not a comment \t 'quoted'
[demotions]
web: echo "down" ; logger -t hb 'a\b'
[check]
type = script
command = test -f /tmp/x && printf '%s' "$HEARTBEAT_STATE"
action = web
"#)
    .config;
    assert_eq!(
        c.groups[0].promotion,
        r#"printf '%s\n' "up; really" # not a comment \t 'quoted'"#
    );
    assert_eq!(c.groups[0].demotion, r#"echo "down" ; logger -t hb 'a\b'"#);
    assert_eq!(
        c.checks[0].probe,
        Probe::Script {
            command: r#"test -f /tmp/x && printf '%s' "$HEARTBEAT_STATE""#.into()
        }
    );
}

#[test]
fn configparser_dialect_keys_defaults_interpolation_continuations() {
    let c = ok("
# comment
; another
[DEFAULT]
Base = /srv/hooks
Action = Web
[promotions]
WEB = %(base)s/up --pct 100%%
[demotions]
web = %(base)s/down
  --all
[general]
LogLevel: warn
Interval: 1m30s
action_timeout = 250ms
[tcp-check]
Type = TCP
port = 22
rise: 2
fall = 3
")
    .config;
    assert_eq!(c.groups[0].name, "web");
    assert_eq!(c.groups[0].promotion, "/srv/hooks/up --pct 100%");
    assert_eq!(c.groups[0].demotion, "/srv/hooks/down\n--all");
    assert_eq!(c.general.log_level, log::LevelFilter::Warn);
    assert_eq!(c.general.interval, Duration::from_secs(90));
    assert_eq!(c.general.action_timeout, Duration::from_millis(250));
    let check = &c.checks[0];
    assert_eq!(check.probe, Probe::tcp("localhost", 22));
    assert_eq!((check.rise, check.fall), (2, 3));
    assert_eq!(check.groups, ["web"]);
    assert_eq!(c.general.threads, 1);
}

#[test]
fn urls_give_type_host_port_and_path() {
    let c = ok("
[promotions]
a = true
[demotions]
a = true
[DEFAULT]
action = a
type = tcp
hostname = ignored.example
[v6]
url = tcp://[::1]:6379
[web]
url = https://example.org/health?full=1
tls_verify = no
expect_status = 200-299, 301
expect_body = ok
[plain]
port = 25
")
    .config;
    assert_eq!(c.checks[0].probe, Probe::tcp("::1", 6379));
    let Probe::Http(web) = &c.checks[1].probe else {
        panic!()
    };
    assert_eq!(web.url(), "https://example.org:443/health?full=1");
    assert!(!web.tls_verify && web.expect_status.contains(301) && !web.expect_status.contains(302));
    assert_eq!(web.expect_body.as_deref(), Some("ok"));
    assert_eq!(c.checks[2].probe, Probe::tcp("ignored.example", 25));
}

#[test]
fn default_keys_that_do_not_apply_are_ignored_but_own_ones_warn() {
    let loaded = ok("
[promotions]
a = true
[demotions]
a = true
[DEFAULT]
action = a
path = /health
[db]
type = tcp
port = 5432
[db2]
type = tcp
port = 5433
path = /nope
");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].starts_with("test.conf:15: [db2] path: does not apply to a tcp check"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn every_mistake_is_reported_at_once_with_its_line() {
    let all = errors(
        "
[general]
interval = 5x
threads = 0
colour = blue
[promotions]
web = up
db = up
[demotions]
web = down
[web]
type = http
port = 99999
timout = 3
action = web, nosuch
[db]
type = tcp
action = db
",
    );
    assert_has(
        &all,
        "test.conf:3: [general] interval: \"5x\" is not a duration",
    );
    assert_has(
        &all,
        "test.conf:4: [general] threads: \"0\" is not valid here; expected a whole number from 1 to 1024",
    );
    assert_has(&all, "test.conf:5: [general] colour: unknown key");
    assert_has(
        &all,
        "test.conf:8: [promotions] db: action group \"db\" has a promotion but no demotion",
    );
    assert_has(&all, "test.conf:13: [web] port: \"99999\" is not a port");
    assert_has(&all, "test.conf:14: [web] timout: unknown key");
    assert_has(
        &all,
        "test.conf:15: [web] action: action group \"nosuch\" is not defined",
    );
    assert_has(&all, "[db] port: a tcp check needs a port");
    assert!(all.len() >= 8, "{all:#?}");
}

#[test]
fn structural_mistakes_point_at_their_line() {
    assert_eq!(
        errors("[a]\ntype = tcp\nport 80\n"),
        [
            "test.conf:3: \"port 80\" is not understood; expected `key = value`, a [section] header, a comment starting with # or ;, or an indented continuation of a value"
        ]
    );
    assert_has(
        &errors("port = 80\n[a]\n"),
        "test.conf:1: key \"port\" comes before any [section] header",
    );
    assert_has(
        &errors("[a\nport = 80\n"),
        "test.conf:1: section header \"[a\" has no closing ']'",
    );
}

#[test]
fn type_url_and_interpolation_mistakes() {
    let all = errors(
        "
[promotions]
a = true
[demotions]
a = true
[x]
type = ftp
action = a
[y]
url = tcp://host
action = a
[z]
url = http://h/
hostname = other
action = a
[w]
type = script
command = echo %(missing)s
action = a
[v]
action = a
[u]
type = script
action = a
command = printf '%s %(x)s'
x = 1
",
    );
    assert_has(
        &all,
        "test.conf:7: [x] type: \"ftp\" is not a check type; expected tcp, http, https, script or grpc",
    );
    assert_has(
        &all,
        "test.conf:10: [y] url: \"tcp://host\": no port; expected tcp://HOST:PORT",
    );
    assert_has(
        &all,
        "test.conf:14: [z] hostname: both url and hostname are set",
    );
    assert_has(
        &all,
        "test.conf:18: [w] command: %(missing)s refers to a key that is neither in [w] nor in [DEFAULT]",
    );
    assert_has(&all, "[v] no check type");
    assert_has(
        &all,
        "test.conf:25: [u] command: a lone '%' at \"%s %(x)s'\"",
    );
    assert!(
        !all.iter().any(|e| e.contains("[u] x")),
        "a key named by a failed interpolation is not also unknown: {all:#?}"
    );
    assert!(
        !all.iter()
            .any(|e| e.contains("[w] command: a script check needs")),
        "a refused interpolation is one mistake, reported once: {all:#?}"
    );
}

#[test]
fn percent_signs_pass_untouched_without_interpolation() {
    let c = ok("
[promotions]
a = printf '%s\\n' 50%
[demotions]
a = date +%Y-%m-%d
[c]
url = http://127.0.0.1:8080/
action = a
")
    .config;
    assert_eq!(c.groups[0].promotion, "printf '%s\\n' 50%");
    assert_eq!(c.groups[0].demotion, "date +%Y-%m-%d");
}

#[test]
fn unknown_users_and_misplaced_keys_are_errors_with_hints() {
    let all = errors(
        "
[general]
user = no-such-user-here
timeout = 3
[DEFAULT]
action_timeout = 5
[promotions]
a = true
[demotions]
a = true
[c]
url = tcp://127.0.0.1:1
action = a
",
    );
    assert_has(
        &all,
        "test.conf:3: [general] user: no user named \"no-such-user-here\"",
    );
    assert_has(
        &all,
        "test.conf:4: [general] timeout: unknown key (it is a check key",
    );
    assert_has(
        &all,
        "test.conf:6: [DEFAULT] action_timeout: unknown key (it belongs in [general])",
    );
}

#[test]
fn a_file_without_checks_is_refused() {
    assert_has(&errors("[general]\ninterval = 5\n"), "no checks");
}

#[test]
fn section_names_are_case_sensitive_and_say_so() {
    let all = errors(
        "
[General]
interval = 5
[promotions]
a = true
[demotions]
a = true
[c]
url = tcp://127.0.0.1:1
action = a
",
    );
    assert_eq!(
        all,
        ["test.conf:2: [General] section names are case-sensitive: did you mean [general]?"]
    );
}

// Regressions of the rust-ini based reader, each checked against Python 3's
// configparser by hand: what reaches /bin/sh is what Python reads.
#[test]
fn a_trailing_backslash_joins_nothing() {
    let c = ok(
        "[promotions]\ng = touch a \\\nh = touch b\n[demotions]\ng = true\nh = true\n\
         [c]\ntype = script\ncommand = true\naction = g, h\n",
    )
    .config;
    let promotions: Vec<_> = c.groups.iter().map(|g| (&*g.name, &*g.promotion)).collect();
    assert_eq!(promotions, [("g", "touch a \\"), ("h", "touch b")]);
}

#[test]
fn comments_after_headers_and_between_continuation_lines() {
    let c = ok(
        "[promotions] # the hooks\nweb = /usr/bin/up\n  --fast\n# a comment\n  ; another\n\
         \t--now\n[demotions]\nweb = /usr/bin/down\n[web] ; a check\ntype = script\n\
         command = true\naction = web\n",
    )
    .config;
    assert_eq!(c.groups[0].promotion, "/usr/bin/up\n--fast\n--now");
    assert_eq!(c.checks[0].name, "web");
}

#[test]
fn crlf_files_read_as_lf_files() {
    let text = "[promotions]\nweb = a\n  b\n\n  c\n[demotions]\nweb = d\n[x]\ntype = script\n\
         command = true\naction = web\n";
    for eol in ["\r\n", "\r"] {
        let c = ok(&text.replace('\n', eol)).config;
        assert_eq!(c.groups[0].promotion, "a\nb\n\nc", "line ends {eol:?}");
    }
}

#[test]
fn indentation_decides_as_in_python_3() {
    let c = ok(
        "[promotions]\n  web = up\n  db = up\n    --db\n  # indented comment\n\
         [demotions]\nweb = down\ndb = down\n[ web ]\ntype = script\ncommand = true\n\
         action = web, db\n",
    )
    .config;
    let promotions: Vec<_> = c.groups.iter().map(|g| (&*g.name, &*g.promotion)).collect();
    assert_eq!(promotions, [("web", "up"), ("db", "up\n--db")]);
    assert_eq!(
        c.checks[0].name, " web ",
        "Python keeps the spaces in [ web ]"
    );
}

#[test]
fn keys_are_lowercased_as_python_lowercases_them() {
    // Python 3: 'ÄRGER'.lower() == 'ärger', 'ΟΔΟΣ'.lower() == 'οδος' (final ς).
    let c = ok(
        "[promotions]\nÄRGER = up\nΟΔΟΣ = up\n[demotions]\närger = down\n\
         \u{3bf}\u{3b4}\u{3bf}\u{3c2} = down\n[x]\ntype = script\ncommand = true\n\
         action = Ärger, ΟΔΟΣ\n",
    )
    .config;
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["ärger", "\u{3bf}\u{3b4}\u{3bf}\u{3c2}"]);
}

#[test]
fn empty_names_nul_bytes_and_byte_order_marks_are_refused() {
    assert_eq!(
        errors("[]\nport = 1\n"),
        ["test.conf:1: \"[]\" has no section name; expected [NAME]"]
    );
    assert_has(
        &errors("[a]\ntype = script\ncommand = echo\0\n"),
        "test.conf:3: a NUL byte; a configuration file is text",
    );
    assert_has(
        &errors("\u{feff}[a]\ntype = script\n"),
        "test.conf:1: the file starts with a UTF-8 byte-order mark (BOM)",
    );
}

/// Ten levels of a key that refers to the next one eight times: 8^9 copies
/// of the last value, 633 bytes of file.
fn interpolation_bomb(last: &str) -> String {
    let mut text = String::from(
        "[promotions]\nweb = true\n[demotions]\nweb = true\n[c]\ntype = script\naction = web\n",
    );
    for i in 0..9 {
        text.push_str(&format!("k{i} = {}\n", format!("%(k{})s", i + 1).repeat(8)));
    }
    text.push_str(&format!("k9 = {last}\ncommand = echo %(k0)s\n"));
    text
}

// Regression: a 633-byte file of nested references took 50 s and 3.5 GB
// in -t, then ran out of memory.
#[test]
fn interpolation_that_grows_without_bound_is_refused_at_once() {
    use std::os::unix::process::CommandExt;

    let s = crate::support::bin::Scratch::new();
    let path = s.write("bomb.conf", &interpolation_bomb(&"x".repeat(42)));
    let mut cmd = s.command(&["-t", "-c", path.to_str().unwrap()]);
    // With 512 MiB of address space the old expansion aborted.
    unsafe {
        cmd.pre_exec(|| {
            let limit = 512 << 20;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(
            "bomb.conf:18: [c] command: interpolation makes this value longer than 131071 bytes"
        ),
        "{stderr}"
    );
    // References to empty values grow nothing, and are bounded too.
    let all = errors(&interpolation_bomb(""));
    assert_has(
        &all,
        "test.conf:18: [c] command: interpolation follows more than 10000 references",
    );
}

#[test]
fn interpolation_keeps_pythons_depth_limit() {
    let chain = |n: usize| {
        let mut text = String::from(
            "[promotions]\nweb = true\n[demotions]\nweb = true\n[c]\ntype = script\naction = web\n",
        );
        text.push_str("command = echo %(k1)s\n");
        for i in 1..n {
            text.push_str(&format!("k{i} = %(k{})s\n", i + 1));
        }
        text.push_str(&format!("k{n} = end\n"));
        text
    };
    // Python 3: a chain of 10 values reads, 11 raise InterpolationDepthError.
    let Probe::Script { command } = &ok(&chain(10)).config.checks[0].probe else {
        panic!()
    };
    assert_eq!(command, "echo end");
    assert_has(
        &errors(&chain(11)),
        "test.conf:8: [c] command: interpolation nests more than 10 deep (command → k1 → k2",
    );
}

const GROUPS: &str = "[promotions]\nweb = true\n[demotions]\nweb = true\n";

#[test]
fn an_inline_comment_is_named_as_the_likely_mistake() {
    let all = errors(&format!(
        "{GROUPS}[c]\ntype = tcp\nport = 80 # http\naction = web ; the web group\n"
    ));
    assert_eq!(
        all,
        [
            "test.conf:7: [c] port: \"80 # http\" is not a port; expected a number from 1 to 65535; did you mean a comment? comments must be on their own line (\"#\" and what follows are part of the value)",
            "test.conf:8: [c] action: action group \"web ; the web group\" is not defined; expected a name from both [promotions] and [demotions]; did you mean a comment? comments must be on their own line (\";\" and what follows are part of the value)",
        ]
    );
}

#[test]
fn a_key_swallowed_by_an_indented_line_is_named() {
    let all = errors(&format!(
        "{GROUPS}[c]\naction = web\ntype = tcp\n    port = 80\n"
    ));
    assert_eq!(
        all,
        [
            "test.conf:7: [c] type: \"tcp\\nport = 80\" is not a check type; expected tcp, http, https, script or grpc; line 8 (\"port = 80\") is indented, so it continues the value of type: indented lines continue the previous value; unindent it to make it a key of its own"
        ]
    );
    let all = errors(&format!(
        "{GROUPS}[c]\ntype = script\naction = web\ncommand = true\n  timeout = 5\n[d]\ntype = tcp\naction = web\n  port = 1\n"
    ));
    assert_eq!(
        all,
        [
            "test.conf:12: [d] action: action group \"web\\nport = 1\" is not defined; expected a name from both [promotions] and [demotions]; line 13 (\"port = 1\") is indented, so it continues the value of action: indented lines continue the previous value; unindent it to make it a key of its own"
        ],
        "one mistake, one error: the port is not also missing"
    );
    // The file of the issue, indented: group h went into g's command.
    let all = errors(
        "[promotions]\ng = touch a\n  h = touch b\n[demotions]\ng = true\nh = true\n[c]\ntype = script\ncommand = true\naction = g, h\n",
    );
    assert_eq!(
        all,
        [
            "test.conf:6: [demotions] h: action group \"h\" has a demotion but no promotion; add `h = COMMAND` to [promotions]; in [promotions], line 3 (\"h = touch b\") is indented, so it continues the value of g: indented lines continue the previous value; unindent it to make it a key of its own"
        ]
    );
    // A swallowed key is a warning when the value still reads.
    let loaded = ok(&format!(
        "{GROUPS}[c]\ntype = script\naction = web\ncommand = true\n  timeout = 5\n"
    ));
    assert_eq!(
        loaded.warnings,
        [
            "test.conf:8: [c] command: line 9 (\"timeout = 5\") is indented, so it continues the value of command: indented lines continue the previous value; unindent it to make it a key of its own"
        ]
    );
}

#[test]
fn a_port_in_the_host_name_is_named() {
    let all = errors(&format!(
        "{GROUPS}[c]\ntype = tcp\naction = web\nhostname = 127.0.0.1:80\n"
    ));
    assert_eq!(
        all,
        [
            "test.conf:8: [c] hostname: \"127.0.0.1:80\" is not a host name: the port goes in its own key, `hostname = 127.0.0.1` and `port = 80` (or `url = tcp://127.0.0.1:80`)"
        ]
    );
}

#[test]
fn one_mistake_gives_one_error() {
    // A broken promotion: the checks that feed its group say nothing more.
    let all = errors(
        "[promotions]\nweb = %(missing)s\n[demotions]\nweb = true\n[DEFAULT]\ntype = tcp\naction = web\n[a]\nport = 1\n[b]\nport = 2\n[c]\nport = 3\n",
    );
    assert_eq!(
        all,
        [
            "test.conf:2: [promotions] web: %(missing)s refers to a key that is neither in [promotions] nor in [DEFAULT]"
        ]
    );
    // A broken default read by every check is one error, at its line.
    let all = errors(&format!(
        "{GROUPS}[DEFAULT]\ntype = tcp\naction = web\ntimeout = soon\n[a]\nport = 1\n[b]\nport = 2\n"
    ));
    assert_eq!(
        all,
        [
            "test.conf:8: [DEFAULT] timeout: \"soon\" is not a duration; expected seconds (5, 0.5) or a duration with units (250ms, 5s, 1m30s)"
        ]
    );
}

#[test]
fn spaces_inside_brackets_are_named() {
    assert_eq!(
        errors(&format!(
            "[ general ]\ninterval = 5\n{GROUPS}[c]\nurl = tcp://h:1\naction = web\n"
        )),
        [
            "test.conf:1: [ general ] did you mean [general]? the spaces inside the brackets are part of the section name, as in Python"
        ]
    );
    let loaded = ok(&format!("{GROUPS}[ web ]\nurl = tcp://h:1\naction = web\n"));
    assert_has(
        &loaded.warnings,
        "test.conf:5: [ web ] this check is named \" web \", spaces included",
    );
}

#[test]
fn files_in_other_encodings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let load_bytes = |bytes: &[u8]| {
        let path = dir.path().join("enc.conf");
        std::fs::write(&path, bytes).unwrap();
        let e = heartbeat::config::load(&path).unwrap_err();
        e.errors
            .iter()
            .map(|d| d.render("enc.conf"))
            .collect::<Vec<_>>()
    };
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("[a]\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(
        load_bytes(&utf16),
        [
            "enc.conf:1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8 (iconv -f UTF-16 -t UTF-8)"
        ]
    );
    assert_eq!(
        load_bytes(b"[a]\ncommand = echo caf\xe9\n"),
        [
            "enc.conf:2: not valid UTF-8 text (byte 0xE9 in column 19); is the file in Latin-1 or Windows-1252? save it as UTF-8 (iconv -f LATIN1 -t UTF-8)"
        ]
    );
}

/// The error examples of the README's configuration reference are what
/// heartbeat prints for these files.
#[test]
fn the_readmes_error_examples_are_what_heartbeat_prints() {
    let readme = include_str!("../README.md");
    let files = [
        "[general]\nthreads = 2\ninterval = 5x\n[promotions]\nweb = /usr/local/bin/lb-add web\n\
         [demotions]\nweb = /usr/local/bin/lb-remove web\n[DEFAULT]\naction = web\n\n\
         # the site\n[web]\ntype = http\ntimout = 3\n",
        "[general]\ninterval = 10\n[promotions]\nweb = /usr/local/bin/lb-add web\n\
         db = /usr/local/bin/db-up\n[demotions]\nweb = /usr/local/bin/lb-remove web\n\
         db = /usr/local/bin/db-down\n[db]\ntype = tcp\nhostname = 127.0.0.1\naction = db\n\
         \x20   port = 5432\n",
    ];
    for text in files {
        let s = crate::support::bin::Scratch::new();
        s.write("heartbeat.conf", text);
        let out = s.run(&["-t", "-c", "heartbeat.conf"]);
        assert_eq!(out.status.code(), Some(78));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let printed: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("warning"))
            .collect();
        let block = format!("```\n{}\n```", printed.join("\n"));
        assert!(readme.contains(&block), "the README lacks:\n{block}");
    }
}
