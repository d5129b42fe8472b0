//! What `contrib/` ships, read and run as an operator would: the systemd
//! unit and its flag-file drop-in rated by `systemd-analyze security`, with
//! every option left out justified in a comment, and `systemctl reload`'s
//! validation run against the real binary; the SysV script driving the
//! real binary through `start-stop-daemon`; the logrotate snippet run by
//! the real logrotate against a heartbeat that dropped privileges; one log
//! path everywhere.
//!
//! Needs `systemd-analyze` (Debian package `systemd`, installed by
//! `.ci/run`), which rates unit files offline, without a running systemd,
//! and `start-stop-daemon` with `/lib/lsb/init-functions` (Debian's `dpkg`
//! and `sysvinit-utils`), and `logrotate` (installed by `.ci/run`).

use crate::support::bin as support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{Adopted, Scratch, adopt_orphans, alive, processes_with_arg, read_number, wait_for};

/// The highest exposure the issue allows for the unit as shipped.
const UNIT_MAX: f64 = 5.0;
/// The highest exposure the issue allows for the unit with the flag-file
/// drop-in.
const FLAG_FILE_MAX: f64 = 2.0;

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name)
}

fn readme() -> String {
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The comment lines of a unit file, without their `#`, joined by spaces
/// (so that a phrase broken over two lines still reads as one).
fn comments(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The values of `key` in a unit file, in order (systemd.syntax(7):
/// `Key=value` lines; comments start with `#` or `;`).
fn values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A throw-away root holding the unit as /etc/systemd/system/heartbeat.service
/// and, with `drop_in`, the flag-file drop-in next to it, so that
/// `systemd-analyze --root` sees those files and nothing of this machine.
fn unit_root(s: &Scratch, drop_in: bool) -> PathBuf {
    let root = s.path("root");
    let system = root.join("etc/systemd/system");
    fs::create_dir_all(&system).unwrap();
    fs::copy(
        contrib("heartbeat.service"),
        system.join("heartbeat.service"),
    )
    .unwrap();
    if drop_in {
        let dir = system.join("heartbeat.service.d");
        fs::create_dir_all(&dir).unwrap();
        fs::copy(
            contrib("heartbeat.service.d/flag-file.conf"),
            dir.join("flag-file.conf"),
        )
        .unwrap();
    }
    root
}

fn analyze(root: &Path, json: bool) -> String {
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--root={}", root.display()));
    if json {
        cmd.arg("--json=short");
    }
    let out = cmd
        .arg("heartbeat.service")
        .output()
        .expect("systemd-analyze not found: install the Debian package `systemd` (.ci/run does)");
    assert!(
        out.status.success(),
        "systemd-analyze security failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The overall exposure `systemd-analyze security` gives (0.0 to 10.0),
/// from its closing line `→ Overall exposure level for heartbeat.service:
/// 4.1 OK`.
fn exposure(root: &Path) -> f64 {
    let text = analyze(root, false);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for heartbeat.service:"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    let figure = line
        .rsplit(':')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    figure
        .parse()
        .unwrap_or_else(|e| panic!("{figure:?} in {line:?}: {e}"))
}

/// The names of the checks `systemd-analyze security` counts against the
/// unit (`"User=/DynamicUser="`, `"CapabilityBoundingSet=~CAP_KILL"`…).
fn exposed(root: &Path) -> Vec<String> {
    let items: Vec<serde_json::Value> = serde_json::from_str(&analyze(root, true)).unwrap();
    items
        .iter()
        .filter(|i| i["set"] == false && exposure_of(&i["exposure"]) > 0.0)
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A check's exposure: systemd 252 writes it as a string ("0.4"), later
/// versions as a number; `null` for a check that passes.
fn exposure_of(value: &serde_json::Value) -> f64 {
    match value {
        serde_json::Value::String(s) => s.parse().unwrap_or(0.0),
        other => other.as_f64().unwrap_or(0.0),
    }
}

/// The figure a file states for itself: "rates it 4.1" or "rates the unit
/// with this drop-in 1.1".
fn stated_rating(text: &str) -> f64 {
    let comments = comments(text);
    let at = comments
        .find("systemd-analyze security")
        .expect("no stated rating");
    comments[at..]
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .expect("no figure after `systemd-analyze security`")
}

/// Whether `justification` speaks of the check named `name`: it names the
/// option (`ProtectHome=`; any of `User=/DynamicUser=`), and for a check of
/// one value of a list option (`CapabilityBoundingSet=~CAP_SYS_(NICE|RESOURCE)`,
/// `RestrictAddressFamilies=~AF_PACKET`, `SystemCallFilter=~@privileged`)
/// also one of the words of that value.
fn justifies(justification: &str, name: &str) -> bool {
    let (options, value) = match name.split_once("=~") {
        Some((option, value)) => (vec![format!("{option}=")], Some(value)),
        None => (
            name.split('/')
                .map(str::to_owned)
                .filter(|o| !o.is_empty())
                .collect(),
            None,
        ),
    };
    let names_option = options.iter().any(|o| justification.contains(o.as_str()));
    let names_value = value.is_none_or(|v| {
        v.trim_start_matches("CAP_")
            .trim_start_matches("AF_")
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '-'))
            .filter(|w| w.len() > 1 && *w != "SYS_")
            .any(|w| justification.contains(w))
    });
    names_option && names_value
}

#[test]
fn the_unit_is_rated_at_most_5_0_and_says_its_rating() {
    let s = Scratch::new();
    let rating = exposure(&unit_root(&s, false));
    assert!(
        rating <= UNIT_MAX,
        "systemd-analyze security rates contrib/heartbeat.service {rating}, above {UNIT_MAX}"
    );
    let stated = stated_rating(&read(&contrib("heartbeat.service")));
    assert_eq!(
        stated, rating,
        "the unit's comment says it rates {stated}, systemd-analyze says {rating}"
    );
    let readme = readme();
    assert!(
        readme.contains(&format!("rates it {rating:.1} (OK)")),
        "the README does not give the unit's rating, {rating:.1}"
    );
}

#[test]
fn the_flag_file_drop_in_is_rated_at_most_2_0_and_says_its_rating() {
    let s = Scratch::new();
    let rating = exposure(&unit_root(&s, true));
    assert!(
        rating <= FLAG_FILE_MAX,
        "with the flag-file drop-in, systemd-analyze security rates heartbeat.service {rating}, \
         above {FLAG_FILE_MAX}"
    );
    let stated = stated_rating(&read(&contrib("heartbeat.service.d/flag-file.conf")));
    assert_eq!(
        stated, rating,
        "the drop-in's comment says it rates {stated}, systemd-analyze says {rating}"
    );
    assert!(
        readme().contains(&format!("the unit is then rated {rating:.1}")),
        "the README does not give the rating with the drop-in, {rating:.1}"
    );
    assert!(
        read(&contrib("nginx-failover/README.md"))
            .contains(&format!("rates the result {rating:.1}")),
        "contrib/nginx-failover/README.md does not give the rating with the drop-in, {rating:.1}"
    );
}

#[test]
fn every_hardening_option_the_unit_leaves_out_is_justified_in_it() {
    let s = Scratch::new();
    let unit = comments(&read(&contrib("heartbeat.service")));
    let exposed = exposed(&unit_root(&s, false));
    assert!(
        exposed.iter().any(|n| n.starts_with("User=")),
        "expected the unit to run as root, exposed: {exposed:?}"
    );
    let unjustified: Vec<&String> = exposed.iter().filter(|n| !justifies(&unit, n)).collect();
    assert!(
        unjustified.is_empty(),
        "contrib/heartbeat.service leaves these out without saying why: {unjustified:?}"
    );
}

#[test]
fn every_option_the_flag_file_drop_in_still_leaves_out_is_justified() {
    let s = Scratch::new();
    let both = format!(
        "{} {}",
        comments(&read(&contrib("heartbeat.service"))),
        comments(&read(&contrib("heartbeat.service.d/flag-file.conf")))
    );
    let exposed = exposed(&unit_root(&s, true));
    assert!(
        !exposed
            .iter()
            .any(|n| n.starts_with("User=") || n.starts_with("NoNewPrivileges=")),
        "the drop-in must run heartbeat as its own user without new privileges: {exposed:?}"
    );
    let unjustified: Vec<&String> = exposed.iter().filter(|n| !justifies(&both, n)).collect();
    assert!(
        unjustified.is_empty(),
        "the flag-file drop-in leaves these out without saying why: {unjustified:?}"
    );
}

#[test]
fn the_unit_documents_itself_with_the_man_pages() {
    let unit = read(&contrib("heartbeat.service"));
    let docs: Vec<String> = values(&unit, "Documentation")
        .iter()
        .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(docs, ["man:heartbeat(1)", "man:heartbeat.conf(5)"]);
}

/// The command line of a unit's `Exec…=` value, with the binary the tests
/// built in place of /usr/bin/heartbeat and `config` in place of the
/// configuration path.
fn exec_line(value: &str, config: &Path) -> Command {
    let words: Vec<&str> = value.split_whitespace().collect();
    assert_eq!(words[0], "/usr/bin/heartbeat", "{value}");
    let mut cmd = Command::new(support::binary());
    for w in &words[1..] {
        if *w == "/etc/heartbeat/heartbeat.conf" {
            cmd.arg(config);
        } else {
            cmd.arg(w);
        }
    }
    cmd
}

#[test]
fn reload_validates_the_file_before_it_signals_and_fails_on_an_invalid_one() {
    let unit = read(&contrib("heartbeat.service"));
    let start = values(&unit, "ExecStart");
    assert_eq!(
        start,
        ["/usr/bin/heartbeat -c /etc/heartbeat/heartbeat.conf"]
    );
    // systemd runs ExecReload= lines in order and fails the reload at the
    // first that fails (systemd.service(5)): the check must come first.
    let reload = values(&unit, "ExecReload");
    assert_eq!(reload.len(), 2, "{reload:?}");
    assert_eq!(reload[1], "/bin/kill -HUP $MAINPID");

    let s = Scratch::new();
    let config = s.path("heartbeat.conf");
    fs::write(
        &config,
        "[general]\ninterval = 1\n\n[promotions]\nweb = true s3cret-token\n\n\
         [demotions]\nweb = true\n\n[web-port]\nurl = tcp://127.0.0.1:9\naction = web\n",
    )
    .unwrap();
    let valid = exec_line(&reload[0], &config).output().unwrap();
    assert_eq!(
        valid.status.code(),
        Some(0),
        "a valid file fails the check: {}",
        String::from_utf8_lossy(&valid.stderr)
    );
    // What it prints goes to the journal: not the report, whose hook
    // commands may hold credentials.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&valid.stdout),
        String::from_utf8_lossy(&valid.stderr)
    );
    assert_eq!(said, "", "a valid file's check said something");

    fs::write(
        &config,
        "[general]\ninterval = 5x\n\n[promotions]\nweb = true\n\n[demotions]\nweb = true\n\n\
         [web-port]\nurl = tcp://127.0.0.1:9\naction = web\n",
    )
    .unwrap();
    let invalid = exec_line(&reload[0], &config).output().unwrap();
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(78), "stderr: {stderr}");
    assert!(
        stderr.contains("interval") && stderr.contains("5x"),
        "the journal would not say what is wrong: {stderr}"
    );
}

/// A copy of `contrib/heartbeat.init` in `s` that runs the binary under
/// test on `config`, reads no `/etc/default/heartbeat` and remembers the
/// pidfile it started with in `s`: each replaced line must be in the script
/// exactly once.
fn init_script(s: &Scratch, config: &Path) -> PathBuf {
    let mut text = read(&contrib("heartbeat.init"));
    for (line, with) in [
        ("DAEMON=/usr/bin/heartbeat", support::binary().to_owned()),
        (
            "CONFIG=/etc/heartbeat/heartbeat.conf",
            config.display().to_string(),
        ),
        (
            "DEFAULTS=/etc/default/heartbeat",
            s.path("default").display().to_string(),
        ),
        (
            "STARTED=/run/heartbeat.started",
            s.path("started").display().to_string(),
        ),
    ] {
        let found = text.lines().filter(|l| *l == line).count();
        assert_eq!(
            found, 1,
            "contrib/heartbeat.init has {found} lines {line:?}"
        );
        let key = line.split('=').next().unwrap();
        text = text.replace(line, &format!("{key}={with}"));
    }
    s.write("heartbeat.init", &text)
}

/// `sh SCRIPT ACTION`, as an init system runs it (no terminal). Debian's
/// init-functions would hand the action to systemctl where systemd runs;
/// the variable below keeps it with the script.
fn init(script: &Path, action: &str) -> Output {
    Command::new("sh")
        .arg(script)
        .arg(action)
        .env("_SYSTEMCTL_SKIP_REDIRECT", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the init script")
}

fn said(out: &Output) -> String {
    format!(
        "status {}, stdout: {}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A configuration for the init script: one script check, hooks that
/// append to `actions`, and the given `[general]` lines.
fn init_config(s: &Scratch, general: &str) -> PathBuf {
    s.write(
        "heartbeat.conf",
        &format!(
            "[general]\ninterval = 1\n{general}\n\n\
             [promotions]\nlocal = echo promoted >> {a}\n\n\
             [demotions]\nlocal = echo demoted >> {a}\n\n\
             [ok]\ntype = script\ncommand = true\naction = local\n",
            a = s.path("actions").display()
        ),
    )
}

/// The daemon the init script started, from the pidfile it wrote.
fn started_daemon(pidfile: &Path) -> Adopted {
    wait_for("the pidfile", Duration::from_secs(10), || {
        read_number(pidfile).is_some()
    });
    let pid = read_number(pidfile).unwrap();
    assert!(
        alive(pid),
        "pid {pid} from {} is not running",
        pidfile.display()
    );
    Adopted::new(pid)
}

const STOPPED: Duration = Duration::from_secs(10);

/// Regression: with a configuration whose pidfile differs from the
/// script's own default, `stop` reported OK and left the daemon running,
/// and `start` then started a second one.
#[test]
fn the_init_script_uses_the_pidfile_of_the_configuration_and_starts_one_daemon() {
    adopt_orphans();
    let s = Scratch::new();
    let pidfile = s.path("run/heartbeat/custom.pid");
    let general = format!(
        "pidfile = {}\nlogfile = {}",
        pidfile.display(),
        s.path("heartbeat.log").display()
    );
    let config = init_config(&s, &general);
    let script = init_script(&s, &config);

    let out = init(&script, "start");
    assert!(out.status.success(), "start: {}", said(&out));
    let mut daemon = started_daemon(&pidfile);
    let pid = read_number(&pidfile).unwrap();
    let config_arg = config.display().to_string();

    let again = init(&script, "start");
    assert!(again.status.success(), "second start: {}", said(&again));
    assert_eq!(
        processes_with_arg(&config_arg),
        [pid],
        "a second start started another heartbeat"
    );

    let status = init(&script, "status");
    assert_eq!(status.status.code(), Some(0), "status: {}", said(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&pidfile.display().to_string()));

    let reload = init(&script, "reload");
    assert!(reload.status.success(), "reload: {}", said(&reload));
    wait_for("the reload in the log", STOPPED, || {
        fs::read_to_string(s.path("heartbeat.log")).is_ok_and(|l| l.contains("reloading"))
    });

    let stop = init(&script, "stop");
    assert!(stop.status.success(), "stop: {}", said(&stop));
    assert!(
        daemon.wait_exit(STOPPED).is_some(),
        "stop reported OK, heartbeat {pid} runs on"
    );
    assert!(processes_with_arg(&config_arg).is_empty());
    assert!(!pidfile.exists(), "heartbeat left its pidfile behind");

    let status = init(&script, "status");
    assert_eq!(
        status.status.code(),
        Some(3),
        "status after stop: {}",
        said(&status)
    );
}

#[test]
fn the_init_script_stops_the_daemon_after_its_file_names_another_pidfile_or_breaks() {
    adopt_orphans();
    let s = Scratch::new();
    let pidfile = s.path("first.pid");
    let log = format!("logfile = {}", s.path("heartbeat.log").display());
    let config = init_config(&s, &format!("pidfile = {}\n{log}", pidfile.display()));
    let script = init_script(&s, &config);
    let out = init(&script, "start");
    assert!(out.status.success(), "start: {}", said(&out));
    let mut daemon = started_daemon(&pidfile);

    // The operator edits the file: another pidfile, then a typo.
    init_config(
        &s,
        &format!("pidfile = {}\n{log}", s.path("second.pid").display()),
    );
    let status = init(&script, "status");
    assert_eq!(status.status.code(), Some(0), "status: {}", said(&status));
    fs::write(&config, "[general]\ninterval = 5x\n").unwrap();
    let reload = init(&script, "reload");
    assert!(
        !reload.status.success(),
        "reload accepted an invalid file: {}",
        said(&reload)
    );
    assert!(
        String::from_utf8_lossy(&reload.stderr).contains("5x"),
        "reload did not say what is wrong: {}",
        said(&reload)
    );
    assert!(
        alive(read_number(&pidfile).unwrap()),
        "a refused reload stopped heartbeat"
    );

    let stop = init(&script, "stop");
    assert!(stop.status.success(), "stop: {}", said(&stop));
    assert!(
        daemon.wait_exit(STOPPED).is_some(),
        "stop reported OK and left heartbeat running"
    );
}

#[test]
fn the_init_script_refuses_a_file_it_cannot_run_and_says_why() {
    let s = Scratch::new();
    let config = init_config(
        &s,
        &format!("logfile = {}", s.path("heartbeat.log").display()),
    );
    let script = init_script(&s, &config);
    let out = init(&script, "start");
    assert_eq!(
        out.status.code(),
        Some(6),
        "start without a pidfile: {}",
        said(&out)
    );
    assert!(
        said(&out).contains("pidfile = /run/heartbeat/heartbeat.pid"),
        "{}",
        said(&out)
    );

    init_config(&s, &format!("pidfile = {}", s.path("hb.pid").display()));
    let out = init(&script, "start");
    assert_eq!(
        out.status.code(),
        Some(6),
        "start logging to stderr: {}",
        said(&out)
    );
    assert!(said(&out).contains("logfile = syslog"), "{}", said(&out));

    fs::write(&config, "[general]\ninterval = 5x\n").unwrap();
    let out = init(&script, "start");
    assert_eq!(
        out.status.code(),
        Some(1),
        "start on an invalid file: {}",
        said(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("5x"),
        "{}",
        said(&out)
    );

    assert!(
        processes_with_arg(&config.display().to_string()).is_empty(),
        "a refused start left a heartbeat running"
    );
}

/// The `logfile = /var/log/…` paths a file gives (README examples, unit and
/// script comments, messages).
fn log_paths(text: &str) -> Vec<String> {
    text.match_indices("logfile = /var/log/")
        .map(|(at, _)| {
            let rest = &text[at + "logfile = ".len()..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '`' || c == '"' || c == '\\')
                .unwrap_or(rest.len());
            rest[..end]
                .trim_end_matches(['.', ',', ';', ')'])
                .to_owned()
        })
        .collect()
}

/// Regression: the README's log path and the logrotate snippet's
/// differed, and `missingok` hid it.
#[test]
fn the_readme_the_unit_the_init_script_and_logrotate_name_one_log_path() {
    const PATH: &str = "/var/log/heartbeat/heartbeat.log";
    let files = [
        ("README.md", readme()),
        (
            "contrib/heartbeat.service",
            read(&contrib("heartbeat.service")),
        ),
        ("contrib/heartbeat.init", read(&contrib("heartbeat.init"))),
        (
            "contrib/heartbeat.logrotate",
            read(&contrib("heartbeat.logrotate")),
        ),
    ];
    for (name, text) in &files {
        let paths = log_paths(text);
        assert!(!paths.is_empty(), "{name} names no log path");
        assert!(
            paths.iter().all(|p| p == PATH),
            "{name} names {paths:?}, not only {PATH}"
        );
    }
    // The unit creates the directory; logrotate rotates the `.log` files in it.
    let unit = read(&contrib("heartbeat.service"));
    assert_eq!(values(&unit, "LogsDirectory"), ["heartbeat"]);
    let rotate = read(&contrib("heartbeat.logrotate"));
    let stanzas: Vec<&str> = rotate
        .lines()
        .filter(|l| l.trim_end().ends_with('{'))
        .map(|l| l.trim_end_matches('{').trim())
        .collect();
    assert_eq!(stanzas, ["/var/log/heartbeat/*.log"]);
}

/// logrotate renames the file, creates the new one, hands it to the user
/// heartbeat runs as and signals heartbeat, which reopens it: the one
/// `create` line serves a heartbeat that drops to `user =` as well as one
/// that stays root.
#[test]
fn logrotate_hands_the_new_file_to_the_user_heartbeat_runs_as() {
    if !support::is_root() {
        eprintln!("skipped: needs root (a heartbeat that drops to nobody)");
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let s = Scratch::new();
    s.open_to_everyone();
    let (log_dir, run_dir) = (s.path("log"), s.path("run"));
    for dir in [&log_dir, &run_dir] {
        fs::create_dir(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let log = log_dir.join("heartbeat.log");
    let pidfile = run_dir.join("heartbeat.pid");

    // The snippet with this test's directories, and a unit name no
    // systemd knows, so that only this test's heartbeat is signalled.
    let mut snippet = read(&contrib("heartbeat.logrotate"));
    for (from, to) in [
        ("/var/log/heartbeat", log_dir.display().to_string()),
        (
            "/run/heartbeat.started",
            s.path("started").display().to_string(),
        ),
        (
            "/run/heartbeat/heartbeat.pid",
            pidfile.display().to_string(),
        ),
        (
            "heartbeat.service",
            "heartbeat-under-test.service".to_owned(),
        ),
    ] {
        assert!(
            snippet.contains(from),
            "contrib/heartbeat.logrotate no longer names {from}"
        );
        snippet = snippet.replace(from, &to);
    }
    let snippet = s.write("logrotate.conf", &snippet);

    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let config = s.write(
        "heartbeat.conf",
        &format!(
            "[general]\nuser = nobody\ninterval = 1\npidfile = {}\nlogfile = {}\n\n\
             [promotions]\nlocal = true\n\n[demotions]\nlocal = true\n\n\
             [ok]\ntype = script\ncommand = true\naction = local\n",
            pidfile.display(),
            log.display()
        ),
    );
    let hb = s.spawn(&["-c", config.to_str().unwrap()]);
    wait_for("the drop to nobody", STOPPED, || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("running as uid"))
    });
    assert_eq!(
        fs::metadata(&log).unwrap().uid(),
        0,
        "root opened the log before the drop"
    );

    let out = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(s.path("logrotate.state"))
        .arg(&snippet)
        .output()
        .expect("logrotate not found: install the Debian package `logrotate` (.ci/run does)");
    assert!(out.status.success(), "logrotate: {}", said(&out));
    assert!(
        log_dir.join("heartbeat.log.1").exists(),
        "nothing was rotated"
    );
    let fresh = fs::metadata(&log).expect("logrotate created no new file");
    assert_eq!(
        fresh.uid(),
        nobody.uid.as_raw(),
        "the new file is not the user heartbeat runs as"
    );
    assert_eq!(fresh.permissions().mode() & 0o777, 0o640);
    wait_for("heartbeat writing to the new file", STOPPED, || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("reopened log file"))
    });
    let status = hb.stop();
    assert_eq!(status.code(), Some(0));
}
