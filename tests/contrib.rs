//! What `contrib/` ships, read and run as an operator would: the systemd
//! unit and its flag-file drop-in rated by `systemd-analyze security`, with
//! every option left out justified in a comment, and `systemctl reload`'s
//! validation run against the real binary.
//!
//! Needs `systemd-analyze` (Debian package `systemd`, installed by
//! `.ci/run`); it rates unit files offline, without a running systemd.

use crate::support::bin as support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::Scratch;

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
        "[general]\ninterval = 1\n\n[promotions]\nweb = true\n\n[demotions]\nweb = true\n\n\
         [web-port]\nurl = tcp://127.0.0.1:9\naction = web\n",
    )
    .unwrap();
    let valid = exec_line(&reload[0], &config).output().unwrap();
    assert_eq!(
        valid.status.code(),
        Some(0),
        "a valid file fails the check: {}",
        String::from_utf8_lossy(&valid.stderr)
    );

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
