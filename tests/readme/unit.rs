//! `systemctl` and `journalctl` as the README uses them, run without a
//! service manager: the unit's own `ExecStart=` and `ExecReload=` lines,
//! run as systemd runs them for `Type=notify` (a notification socket in
//! `NOTIFY_SOCKET`, `RuntimeDirectory=` and `LogsDirectory=` created and
//! named in the environment, `$MAINPID`, the next line only once the one
//! before succeeded, `start` done at `READY=1`, `reload` at the `READY=1`
//! after `RELOADING=1`, `stop` by SIGTERM to the main process), with
//! `/usr/bin/heartbeat` the binary under test and the configuration in a
//! scratch root. `enable` runs `systemctl --root` on that root; the
//! journal of the unit is the main process's standard error, which the
//! unit leaves to it. What the sandboxing options do is systemd's, and
//! `systemd-analyze` checks them elsewhere (`contrib::`, `package::`).

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::support::bin::{Daemon, binary};
use crate::support::ops::LONG;

use super::commands::{COMMANDS, Runs};
use super::environments::Layout;

/// The unit `heartbeat.service` of a [`Layout`], and its main process while
/// it runs.
struct Unit<'a> {
    layout: &'a Layout,
    notify: UnixDatagram,
    main: Option<Daemon>,
    /// What the main processes that ended logged.
    past: String,
}

impl<'a> Unit<'a> {
    fn new(layout: &'a Layout) -> Unit<'a> {
        let path = layout.scratch.path("notify.sock");
        let notify = UnixDatagram::bind(&path).expect("the notification socket");
        notify.set_read_timeout(Some(LONG)).unwrap();
        Unit {
            layout,
            notify,
            main: None,
            past: String::new(),
        }
    }

    /// The unit file systemd would load: `/etc/systemd/system` before
    /// `/usr/lib/systemd/system`.
    fn text(&self) -> String {
        ["etc/systemd/system", "usr/lib/systemd/system"]
            .iter()
            .map(|d| self.layout.root.join(d).join("heartbeat.service"))
            .find(|p| p.is_file())
            .map(|p| fs::read_to_string(p).unwrap())
            .expect("a heartbeat.service in the root")
    }

    /// The values of `key` in the `[Service]` section.
    fn values(&self, key: &str) -> Vec<String> {
        self.text()
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// One `Exec…=` line as a command: its paths in the root,
    /// `/usr/bin/heartbeat` the binary under test, `$MAINPID` the main
    /// process.
    fn command(&self, line: &str) -> Command {
        let pid = self.main.as_ref().map_or(0, Daemon::pid);
        let line = line
            .replace("/usr/bin/heartbeat", binary())
            .replace("$MAINPID", &pid.to_string());
        let line = self.layout.map(&line, None, None);
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut cmd = Command::new(words[0]);
        cmd.args(&words[1..]).current_dir("/");
        cmd
    }

    fn next_notification(&self) -> Result<String, String> {
        let mut buf = [0u8; 4096];
        match self.notify.recv(&mut buf) {
            Ok(n) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => Err(format!(
                "no notification from heartbeat ({e}); its log:\n{}",
                self.journal()
            )),
        }
    }

    /// Waits for a notification that starts with `what`.
    fn wait_for(&self, what: &str) -> Result<(), String> {
        loop {
            let got = self.next_notification()?;
            if got.starts_with(what) {
                return Ok(());
            }
        }
    }

    fn start(&mut self) -> Result<(), String> {
        if self.main.is_some() {
            return Ok(());
        }
        let exec = self.values("ExecStart");
        let [line] = exec.as_slice() else {
            return Err(format!("ExecStart= should be one line: {exec:?}"));
        };
        let mut cmd = self.command(line);
        cmd.env("NOTIFY_SOCKET", self.layout.scratch.path("notify.sock"));
        for (key, var, below) in [
            ("RuntimeDirectory", "RUNTIME_DIRECTORY", "run"),
            ("LogsDirectory", "LOGS_DIRECTORY", "var/log"),
        ] {
            for name in self.values(key) {
                let dir = self.layout.root.join(below).join(name);
                fs::create_dir_all(&dir).unwrap();
                cmd.env(var, dir);
            }
        }
        self.main = Some(self.layout.scratch.spawn_command(cmd));
        self.wait_for("READY=1")
    }

    fn stop(&mut self) -> Result<(), String> {
        let Some(mut main) = self.main.take() else {
            return Ok(());
        };
        main.signal(Signal::SIGTERM);
        self.wait_for("STOPPING=1")?;
        let exit = main.wait_exit(LONG);
        self.past += &main.log_text();
        match exit {
            Some(status) if status.success() => Ok(()),
            other => Err(format!(
                "heartbeat stopped with {other:?}:\n{}",
                main.log_text()
            )),
        }
    }

    fn reload(&mut self) -> Result<(), String> {
        if self.main.is_none() {
            return Err("reload of a unit that is not running".into());
        }
        for line in self.values("ExecReload") {
            let out = self
                .command(&line)
                .output()
                .map_err(|e| format!("ExecReload={line}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ExecReload={line} failed ({}):\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        self.wait_for("RELOADING=1")?;
        self.wait_for("READY=1")
    }

    fn enable(&self) -> Result<(), String> {
        let out = Command::new("systemctl")
            .arg(format!("--root={}", self.layout.root.display()))
            .args(["enable", "heartbeat.service"])
            .output()
            .map_err(|e| format!("systemctl --root: {e}"))?;
        let wants = self
            .layout
            .root
            .join("etc/systemd/system/multi-user.target.wants/heartbeat.service");
        if out.status.success() && wants.symlink_metadata().is_ok() {
            Ok(())
        } else {
            Err(format!(
                "systemctl --root enable: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `systemctl help`: the unit's `Documentation=` names the two man
    /// pages, and the binary prints each (`man:` URIs are what `help`
    /// opens with man(1)).
    fn help(&self) -> Result<(), String> {
        let docs: Vec<String> = self
            .values("Documentation")
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        for (uri, what, title) in [
            ("man:heartbeat(1)", "man", ".TH heartbeat 1 "),
            ("man:heartbeat.conf(5)", "man-conf", ".TH HEARTBEAT.CONF 5 "),
        ] {
            if !docs.iter().any(|d| d == uri) {
                return Err(format!("Documentation= lacks {uri}: {docs:?}"));
            }
            let out = Command::new(binary())
                .args(["--generate", what])
                .output()
                .map_err(|e| format!("heartbeat --generate {what}: {e}"))?;
            let page = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !page.lines().any(|l| l.starts_with(title)) {
                return Err(format!("heartbeat --generate {what} is not {uri}"));
            }
        }
        Ok(())
    }

    /// What the journal holds for the unit: its main process's standard
    /// error (the unit sets no `StandardError=`).
    fn journal(&self) -> String {
        let current = self.main.as_ref().map(Daemon::log_text).unwrap_or_default();
        format!("{}{current}", self.past)
    }

    /// Runs one `systemctl` or `journalctl` command of the README.
    fn run(&mut self, words: &[&str]) -> Result<(), String> {
        match words {
            ["systemctl", "daemon-reload"] => Ok(()),
            ["systemctl", "enable", "--now", "heartbeat"] => {
                self.enable()?;
                self.start()
            }
            ["systemctl", "start", "heartbeat"] => self.start(),
            ["systemctl", "restart", "heartbeat"] => {
                self.stop()?;
                self.start()
            }
            ["systemctl", "stop", "heartbeat"] => self.stop(),
            ["systemctl", "reload"] | ["systemctl", "reload", "heartbeat"] => self.reload(),
            ["systemctl", "help", "heartbeat"] => self.help(),
            ["journalctl", "-u", "heartbeat"] => {
                let journal = self.journal();
                if journal.contains(" INFO     heartbeat ") && journal.contains(" started") {
                    Ok(())
                } else {
                    Err(format!("the journal lacks heartbeat's start:\n{journal}"))
                }
            }
            other => Err(format!(
                "tests/readme/unit.rs does not know how to run {other:?}: teach Unit::run"
            )),
        }
    }
}

impl Drop for Unit<'_> {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[test]
fn systemctl_and_journalctl_commands_run_as_the_unit_runs_them() {
    let layout = Layout::new(false);
    let mut unit = Unit::new(&layout);
    // As the package leaves it: enabled and started.
    unit.enable().unwrap();
    unit.start().unwrap();
    let mut failed = Vec::new();
    for e in COMMANDS {
        if !matches!(e.runs, Runs::Unit) {
            continue;
        }
        for part in e.shown.split("&&") {
            let words: Vec<&str> = part.split_whitespace().collect();
            eprintln!("README `{}`: {words:?}", e.shown);
            if let Err(why) = unit.run(&words) {
                failed.push(format!("README `{}`: {why}", e.shown));
                break;
            }
        }
    }
    // The reloads reached heartbeat: it logged them.
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    let journal = unit.journal();
    assert!(journal.contains("INFO     reloaded "), "{journal}");
    unit.stop().unwrap();
}
