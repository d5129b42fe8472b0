//! The scratch roots the README's shell commands run in ([`Env`]): laid out
//! as the package installs heartbeat, with or without a heartbeat running
//! there, and the test that runs every `sh` entry of the list in them.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin::{Daemon, Scratch, binary, free_port};
use crate::support::net::{Server, closed_port, http_server, ok};
use crate::support::ops::LONG;
use crate::support::poll::wait_for;

use super::commands::{COMMANDS, Env, Runs};

/// The paths of the package that commands name, mapped into the root.
const PACKAGE_PATHS: &str = r"/etc/heartbeat|/etc/systemd|/usr/bin/heartbeat|/var/lib/heartbeat|/var/log/heartbeat|/run/heartbeat|/tmp/heartbeat-demo\.log";

/// A scratch root laid out as the package installs heartbeat.
pub struct Layout {
    pub scratch: Scratch,
    /// The root: `etc/`, `usr/bin/`, `run/`… below it.
    pub root: PathBuf,
    /// `etc/heartbeat/heartbeat.conf` in it.
    pub conf: PathBuf,
    /// The working directory of commands: the source tree's `contrib/`
    /// and example, `target/release/heartbeat`.
    pub src: PathBuf,
    /// The HTTP server the example's `web` checks reach, when they do.
    _web: Option<Server>,
}

/// The example configuration with what it names on this machine moved:
/// its demo log into `root`, its port 8080 to `port`.
pub fn example_for(root: &Path, port: u16) -> String {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("heartbeat.conf.example"))
            .expect("the example");
    assert!(example.contains("/tmp/heartbeat-demo.log") && example.contains("8080"));
    example
        .replace(
            "/tmp/heartbeat-demo.log",
            &root.join("tmp/heartbeat-demo.log").display().to_string(),
        )
        .replace("8080", &port.to_string())
}

/// Sets `lines` (`key = value` each) in the `[general]` section of
/// `conf`, in place of the lines that set the same keys.
pub fn with_general(conf: &str, lines: &str) -> String {
    let keys: Vec<&str> = lines
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let kept: String = conf
        .lines()
        .filter(|l| {
            !l.split_once('=')
                .is_some_and(|(k, _)| keys.contains(&k.trim()) && !l.starts_with(' '))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    kept.replacen("[general]\n", &format!("[general]\n{lines}"), 1)
}

impl Layout {
    /// The package's layout, its `web` checks reaching a server that
    /// answers 200 when `web_up`, else a closed port (as on a fresh
    /// machine, where nothing listens on 8080).
    pub fn new(web_up: bool) -> Layout {
        let scratch = Scratch::new();
        let root = scratch.path("root");
        for dir in [
            "etc/heartbeat",
            "etc/systemd/system",
            "usr/bin",
            "usr/lib/systemd/system",
            "run/heartbeat",
            "var/lib/heartbeat",
            "var/log/heartbeat",
            "tmp",
            "src/target/release",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let web = web_up.then(|| http_server("127.0.0.1:0", |_| ok("ok\n")));
        let port = web.as_ref().map_or_else(closed_port, Server::port);
        let example = example_for(&root, port);
        let conf = root.join("etc/heartbeat/heartbeat.conf");
        fs::write(&conf, &example).unwrap();
        // A configuration for a detached daemon: a pidfile and a log file.
        fs::write(
            root.join("daemon.conf"),
            with_general(
                &example,
                &format!(
                    "pidfile = {r}/run/heartbeat/daemon.pid\nlogfile = {r}/var/log/heartbeat/daemon.log\n",
                    r = root.display()
                ),
            ),
        )
        .unwrap();
        symlink(binary(), root.join("usr/bin/heartbeat")).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let src = root.join("src");
        fs::write(src.join("heartbeat.conf.example"), &example).unwrap();
        symlink(binary(), src.join("target/release/heartbeat")).unwrap();
        copy_tree(&repo.join("contrib"), &src.join("contrib"));
        fs::copy(
            repo.join("contrib/heartbeat.service"),
            root.join("usr/lib/systemd/system/heartbeat.service"),
        )
        .unwrap();
        Layout {
            scratch,
            conf,
            src,
            root,
            _web: web,
        }
    }

    /// `command` as it runs here: the package's paths in the root,
    /// `FILE` the configuration, loopback addresses `addr` (when given), and
    /// the placeholders of [`Runs::Sh`] replaced.
    pub fn map(&self, command: &str, addr: Option<&str>, pid: Option<i32>) -> String {
        let root = self.root.display().to_string();
        let paths = regex::Regex::new(&format!(r#"(^|[\s'"=:])({PACKAGE_PATHS})"#)).unwrap();
        let mut out = paths
            .replace_all(command, |c: &regex::Captures| {
                format!("{}{root}{}", &c[1], &c[2])
            })
            .into_owned();
        if let Some(addr) = addr {
            let loopback = regex::Regex::new(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d+").unwrap();
            out = loopback.replace_all(&out, addr).into_owned();
            out = out.replace("{addr}", addr);
        }
        let file = regex::Regex::new(r"\bFILE\b").unwrap();
        out = file.replace_all(&out, "{conf}").into_owned();
        out = out
            .replace("{conf}", &self.conf.display().to_string())
            .replace("{root}", &root);
        if let Some(pid) = pid {
            out = out.replace("{pid}", &pid.to_string());
        }
        out
    }

    /// Runs `command` with `/bin/sh -c` in the source copy, `heartbeat` on
    /// the `PATH` from the root's `/usr/bin`; kills it if it is still
    /// running after [`LONG`].
    pub fn sh(&self, command: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.root.join("usr/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.src)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /bin/sh");
        let start = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if start.elapsed() > LONG {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "`{command}` still ran after {LONG:?}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("its output")
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A heartbeat running in a [`Layout`] on its configuration, with a status
/// server on a free port, a pidfile and a log file in the root.
pub struct Live {
    pub layout: Layout,
    pub addr: String,
    pub daemon: Daemon,
}

impl Live {
    pub fn start() -> Live {
        let layout = Layout::new(true);
        let addr = format!("127.0.0.1:{}", free_port());
        let r = layout.root.display().to_string();
        let conf = fs::read_to_string(&layout.conf).unwrap();
        fs::write(
            &layout.conf,
            with_general(
                &conf,
                &format!(
                    "listen = {addr}\npidfile = {r}/run/heartbeat/heartbeat.pid\n\
                     logfile = {r}/var/log/heartbeat/heartbeat.log\n"
                ),
            ),
        )
        .unwrap();
        let daemon = layout.scratch.spawn(&["-c", layout.conf.to_str().unwrap()]);
        let socket: std::net::SocketAddr = addr.parse().unwrap();
        wait_for("every group healthy", LONG, || {
            std::net::TcpStream::connect(socket).is_ok()
                && crate::support::http::get(socket, "/ready").status == 200
        });
        Live {
            layout,
            addr,
            daemon,
        }
    }
}

/// What a command printed, both streams.
fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the `sh` entries of `env`, in the list's order, and returns what
/// went wrong, one message each.
fn run_all(env: Env) -> Vec<String> {
    let installed;
    let live;
    let (layout, addr, pid) = match env {
        Env::Installed => {
            installed = Layout::new(false);
            (&installed, None, None)
        }
        Env::Live => {
            live = Live::start();
            (
                &live.layout,
                Some(live.addr.as_str()),
                Some(live.daemon.pid()),
            )
        }
    };
    let mut failed = Vec::new();
    for e in COMMANDS {
        let Runs::Sh {
            env: of,
            as_run,
            exit,
            says,
        } = e.runs
        else {
            continue;
        };
        if of != env {
            continue;
        }
        if (e.shown.contains("chown root:") || e.shown == "chmod go-w")
            && !crate::support::bin::is_root()
        {
            eprintln!("skipped README `{}`: it needs root", e.shown);
            continue;
        }
        let command = layout.map(if as_run.is_empty() { e.shown } else { as_run }, addr, pid);
        let out = layout.sh(&command);
        let text = said(&out);
        eprintln!("README `{}` ran as `{command}`: {}", e.shown, out.status);
        if out.status.code() != Some(exit) || !text.contains(says) {
            failed.push(format!(
                "README `{}`, run as `{command}` ({env:?}), exited {} (expected {exit}{}):\n{text}",
                e.shown,
                out.status,
                if says.is_empty() {
                    String::new()
                } else {
                    format!(", saying {says:?}")
                }
            ));
        }
    }
    failed
}

#[test]
fn the_readmes_commands_run_in_the_packages_layout() {
    let failed = run_all(Env::Installed);
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn the_readmes_commands_run_against_a_running_heartbeat() {
    let failed = run_all(Env::Live);
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
