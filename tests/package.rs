//! The Debian package, read and installed as a distribution maintainer
//! would: its control fields and file list (`dpkg-deb`), an install, a
//! removal and a purge in a throw-away root (`dpkg --root` with the
//! maintainer scripts run against it), `heartbeat -V` from there, and
//! lintian.
//!
//! The package is built by `contrib/debian/build` (cargo-deb); these tests
//! run on the file named by `HEARTBEAT_DEB`, which `.ci/run` sets:
//!
//!     HEARTBEAT_DEB=$(contrib/debian/build) cargo test --test tests -- package::
//!
//! Without it they say so on stderr and pass, except under CI, where a
//! missing package is a failure. Needs root (for `dpkg --root`), `dpkg`
//! and `lintian` (installed by `.ci/run`).

use crate::support::bin as support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::Scratch;

const PACKAGE: &str = "heartbeat-failover";

/// The files of Debian's Linux-HA `heartbeat` (1:3.0.6-13, bookworm) at
/// paths this package could also use, from `dpkg-deb -c` of that package:
/// its init script, logrotate snippet, unit, tmpfiles snippet and the
/// symlink `/etc/heartbeat -> ha.d`. The rest of its files live under
/// `/etc/ha.d`, `/usr/lib/heartbeat`, `/usr/libexec/heartbeat` and
/// `/usr/share/heartbeat`, or are named `cl_*`, `hb_*` and `ha.cf`.
const LINUX_HA_FILES: &[&str] = &[
    "etc/heartbeat",
    "etc/init.d/heartbeat",
    "etc/logrotate.d/heartbeat",
    "lib/systemd/system/heartbeat.service",
    "usr/lib/tmpfiles.d/heartbeat.conf",
    "usr/share/man/man8/heartbeat.8.gz",
    "usr/share/doc/heartbeat/copyright",
    "usr/share/lintian/overrides/heartbeat",
];

/// The package under test, or `None` (with a note) when none was built.
fn deb() -> Option<PathBuf> {
    match std::env::var_os("HEARTBEAT_DEB") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "HEARTBEAT_DEB={} is not a file",
                path.display()
            );
            Some(path)
        }
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "HEARTBEAT_DEB is not set: .ci/run must build the package (contrib/debian/build)"
            )
        }
        None => {
            eprintln!(
                "skipped: no package; run HEARTBEAT_DEB=$(contrib/debian/build) cargo test -- package::"
            );
            None
        }
    }
}

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

/// `dpkg-deb --field`: one control field, trimmed.
fn field(deb: &Path, name: &str) -> String {
    stdout(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name))
        .trim()
        .to_owned()
}

/// The package's paths, without the leading `./` and trailing `/`.
fn contents(deb: &Path) -> BTreeSet<String> {
    stdout(Command::new("dpkg-deb").arg("--contents").arg(deb))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A throw-away root for `dpkg --root`: an empty package database, and a
/// `policy-rc.d` that forbids starting services, as image builders use, so
/// that nothing on this machine is started even where systemd runs.
fn dpkg_root(s: &Scratch) -> PathBuf {
    let root = s.path("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/sbin"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        fs::write(root.join(file), "").unwrap();
    }
    let policy = root.join("usr/sbin/policy-rc.d");
    fs::write(&policy, "#!/bin/sh\nexit 101\n").unwrap();
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// `dpkg --root=ROOT ARGS`: the maintainer scripts run outside a chroot
/// with `DPKG_ROOT` set (the root holds no shell to chroot into), and
/// dependencies are not looked for in the empty database.
fn dpkg(root: &Path, args: &[&str]) -> Output {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ])
        .args(args))
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn same_file(installed: &Path, source: &Path) {
    assert_eq!(
        fs::read(installed).unwrap_or_else(|e| panic!("{}: {e}", installed.display())),
        fs::read(source).unwrap(),
        "{} is not {}",
        installed.display(),
        source.display()
    );
}

/// The `passwd` line of `user` in `root`, split at its colons.
fn passwd_entry(root: &Path, user: &str) -> Option<Vec<String>> {
    fs::read_to_string(root.join("etc/passwd"))
        .ok()?
        .lines()
        .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|f| f[0] == user)
}

/// Copies the unit files of `from` that `to` lacks (regular files only:
/// systemd refuses symbolic links for some unit types).
fn copy_units(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_file() && !target.exists() {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `systemd-analyze verify` of heartbeat.service in `root`: it must pass
/// and say nothing. Man pages are checked apart (systemd would look for
/// them on this machine, not in the root).
fn verify_unit(root: &Path) {
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg("heartbeat.service"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify heartbeat.service:\n{said}"
    );
}

#[test]
fn control_fields_name_the_package_apart_from_linux_ha_heartbeat() {
    let Some(deb) = deb() else { return };
    assert_eq!(field(&deb, "Package"), PACKAGE);
    assert_eq!(
        field(&deb, "Version"),
        format!("{}-1", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(field(&deb, "Section"), "admin");
    assert_eq!(field(&deb, "Priority"), "optional");
    assert_eq!(field(&deb, "Conflicts"), "heartbeat");
    assert_eq!(field(&deb, "Replaces"), "heartbeat");
    let depends = field(&deb, "Depends");
    for needed in ["libc6", "libssl3", "systemd | systemd-standalone-sysusers"] {
        assert!(
            depends.contains(needed),
            "Depends: {depends} lacks {needed}"
        );
    }
    assert!(
        field(&deb, "Pre-Depends").starts_with("init-system-helpers"),
        "invoke-rc.d --skip-systemd-native needs a recent init-system-helpers"
    );
    let description = field(&deb, "Description");
    assert!(
        description.contains("not the Linux-HA"),
        "the description must tell it apart from Debian's heartbeat: {description}"
    );
}

#[test]
fn its_files_meet_linux_ha_heartbeat_only_where_it_declares_the_conflict() {
    let Some(deb) = deb() else { return };
    let ours = contents(&deb);
    // Under merged /usr, /lib/systemd/system is /usr/lib/systemd/system.
    let clashes: Vec<&str> = LINUX_HA_FILES
        .iter()
        .copied()
        .filter(|p| ours.contains(*p) || ours.contains(&format!("usr/{p}")))
        .collect();
    assert_eq!(
        clashes,
        [
            "etc/heartbeat",
            "etc/init.d/heartbeat",
            "etc/logrotate.d/heartbeat",
            "lib/systemd/system/heartbeat.service"
        ],
        "the paths shared with Debian's heartbeat changed: update the conflict and this list"
    );
    assert_eq!(field(&deb, "Conflicts"), "heartbeat");
}

#[test]
fn conffiles_are_the_files_in_etc() {
    let Some(deb) = deb() else { return };
    let conffiles: BTreeSet<String> = stdout(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&deb)
            .arg("conffiles"),
    )
    .lines()
    .map(str::to_owned)
    .collect();
    let expected: BTreeSet<String> = [
        "/etc/heartbeat/heartbeat.conf",
        "/etc/init.d/heartbeat",
        "/etc/logrotate.d/heartbeat",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(conffiles, expected);
}

#[test]
fn installs_runs_removes_and_purges_in_a_throw_away_root() {
    let Some(deb) = deb() else { return };
    if !support::is_root() {
        eprintln!("skipped: dpkg --root needs root");
        return;
    }
    let s = Scratch::new();
    let root = dpkg_root(&s);
    dpkg(&root, &["--install", deb.to_str().unwrap()]);

    // The binary runs from where the package put it.
    let bin = root.join("usr/bin/heartbeat");
    assert_eq!(mode(&bin), 0o755);
    let version = stdout(Command::new(&bin).arg("-V"));
    assert_eq!(
        version.split_whitespace().collect::<Vec<_>>(),
        ["heartbeat", env!("CARGO_PKG_VERSION")],
        "heartbeat -V printed {version:?}"
    );

    // contrib/ as shipped, at the paths the unit, the script and the
    // README use.
    let conf = root.join("etc/heartbeat/heartbeat.conf");
    same_file(
        &conf,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("heartbeat.conf.example"),
    );
    let unit = root.join("usr/lib/systemd/system/heartbeat.service");
    same_file(&unit, &contrib("heartbeat.service"));
    same_file(
        &root.join("etc/init.d/heartbeat"),
        &contrib("heartbeat.init"),
    );
    assert_eq!(mode(&root.join("etc/init.d/heartbeat")), 0o755);
    same_file(
        &root.join("etc/logrotate.d/heartbeat"),
        &contrib("heartbeat.logrotate"),
    );
    same_file(
        &root.join("usr/share/doc/heartbeat-failover/examples/flag-file.conf"),
        &contrib("heartbeat.service.d/flag-file.conf"),
    );
    // The installed binary accepts the installed configuration.
    run(Command::new(&bin).arg("-t").arg("-c").arg(&conf));

    // systemd reads the installed unit, and the unit with the flag-file
    // drop-in, without a complaint (an unknown key is only a warning).
    // It resolves the targets the unit names in the root, so this
    // machine's units are copied there first.
    copy_units(
        Path::new("/usr/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    );
    verify_unit(&root);
    let drop_ins = root.join("etc/systemd/system/heartbeat.service.d");
    fs::create_dir_all(&drop_ins).unwrap();
    fs::copy(
        root.join("usr/share/doc/heartbeat-failover/examples/flag-file.conf"),
        drop_ins.join("flag-file.conf"),
    )
    .unwrap();
    verify_unit(&root);
    fs::remove_dir_all(&drop_ins).unwrap();

    // The man pages the unit's Documentation= names are there and render.
    for (page, section) in [("heartbeat", "1"), ("heartbeat.conf", "5")] {
        let path = root.join(format!("usr/share/man/man{section}/{page}.{section}.gz"));
        let text = stdout(
            Command::new("man")
                .env("MANWIDTH", "80")
                .args(["--no-hyphenation", "--no-justification", "-l", "-P", "cat"])
                .arg(&path),
        );
        assert!(
            text.contains("NAME") && text.contains(page),
            "{} does not render as {page}({section}):\n{text}",
            path.display()
        );
    }
    // Completions where each shell looks for them; bash's parses.
    let bash = root.join("usr/share/bash-completion/completions/heartbeat");
    run(Command::new("bash").arg("-n").arg(&bash));
    for path in [
        "usr/share/zsh/vendor-completions/_heartbeat",
        "usr/share/fish/vendor_completions.d/heartbeat.fish",
    ] {
        let text = fs::read_to_string(root.join(path)).unwrap();
        assert!(
            text.contains("heartbeat"),
            "{path} is not a completion of heartbeat"
        );
    }

    // postinst: the system user and its group, no login; the unit enabled;
    // the SysV script registered.
    let user = passwd_entry(&root, "heartbeat").expect("no user heartbeat in the root's passwd");
    let uid: u32 = user[2].parse().unwrap();
    assert!(uid < 1000, "heartbeat is not a system user: uid {uid}");
    assert_eq!(user[6], "/usr/sbin/nologin");
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group.lines().any(|l| l.starts_with("heartbeat:")),
        "no group heartbeat: {group}"
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants/heartbeat.service");
    assert!(
        fs::symlink_metadata(&wants).is_ok(),
        "heartbeat.service is not enabled"
    );
    assert!(root.join("etc/rc2.d/S01heartbeat").exists());

    // Remove: the files go, the configuration stays.
    let log_dir = root.join("var/log/heartbeat");
    fs::create_dir_all(&log_dir).unwrap();
    fs::write(log_dir.join("heartbeat.log"), "a line\n").unwrap();
    fs::write(log_dir.join("heartbeat.log.1"), "an older line\n").unwrap();
    dpkg(&root, &["--remove", PACKAGE]);
    assert!(!bin.exists() && !unit.exists());
    assert!(conf.exists(), "remove took the configuration");

    // Purge: the configuration, the SysV links and the logs go; the user
    // stays.
    dpkg(&root, &["--purge", PACKAGE]);
    assert!(!conf.exists(), "purge left the configuration");
    assert!(!root.join("etc/init.d/heartbeat").exists());
    assert!(!root.join("etc/rc2.d/S01heartbeat").exists());
    assert!(
        fs::symlink_metadata(&wants).is_err(),
        "purge left the unit enabled"
    );
    assert!(!log_dir.exists(), "purge left the logs");
    assert!(
        passwd_entry(&root, "heartbeat").is_some(),
        "purge removed the user heartbeat (files it owns may remain)"
    );
}

#[test]
fn lintian_reports_no_error_and_no_warning() {
    let Some(deb) = deb() else { return };
    // Tags the package overrides are listed in
    // contrib/debian/lintian-overrides, each with its reason; `info` tags
    // count too.
    let out = Command::new("lintian")
        .args([
            "--pedantic",
            "--display-info",
            "--fail-on",
            "error,warning,info",
        ])
        .arg(&deb)
        .output()
        .expect("lintian not found: install the Debian package `lintian` (.ci/run does)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "lintian ({}):\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The name of the variable that turns on the fault injection of debug
/// builds (`heartbeat::app::fault`).
const FAULT_INJECTION: &str = "HEARTBEAT_DEBUG_ACTION_THREAD_PANICS";

/// The package is built in release mode, which leaves the fault injection
/// out: its binary does not even hold the variable's name.
#[test]
fn the_packaged_binary_carries_no_fault_injection() {
    #[cfg(debug_assertions)]
    assert_eq!(FAULT_INJECTION, heartbeat::app::fault::ACTION_THREAD_PANICS);
    let Some(deb) = deb() else { return };
    let s = Scratch::new();
    let root = s.path("extracted");
    run(Command::new("dpkg-deb")
        .arg("--extract")
        .arg(&deb)
        .arg(&root));
    let binary = fs::read(root.join("usr/bin/heartbeat")).unwrap();
    assert!(
        !binary
            .windows(FAULT_INJECTION.len())
            .any(|w| w == FAULT_INJECTION.as_bytes()),
        "the packaged binary holds {FAULT_INJECTION}: built with debug assertions?"
    );
}
