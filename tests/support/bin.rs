//! Harness for tests that run the real `heartbeat` binary: a scratch
//! directory, free ports, a child process that is stopped and reaped on
//! drop, a detached daemon adopted by the test and reaped the same way, and
//! waiting on conditions with a deadline.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub use super::poll::wait_for;
pub use super::proc::{alive, processes_with_arg};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_heartbeat")
}

/// A path to the binary that every user may run: the built one when every
/// directory above it may be entered by others, else a copy in `s`.
pub fn binary_for_everyone(s: &Scratch) -> PathBuf {
    let built = PathBuf::from(binary());
    let reachable = built
        .ancestors()
        .all(|dir| fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if reachable {
        return built;
    }
    let copy = s.path("heartbeat");
    fs::copy(&built, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Whether the tests run as root. Tests that need root skip themselves,
/// with a note on stderr, otherwise.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The lines of a file, or none when it does not exist yet.
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The number in the first line of a file (a pidfile, `echo $$ > FILE`),
/// or `None` when it is missing, empty or not a number.
pub fn read_number(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Makes this test process the reaper of its orphaned descendants
/// (`PR_SET_CHILD_SUBREAPER`, prctl(2)): a daemon that detaches by forking
/// twice is then re-parented to the test, not to init, so that an
/// [`Adopted`] can wait for it, read its exit status and reap it. Call it
/// before starting a command that detaches. Process-wide and idempotent;
/// orphans nobody waits for stay zombies until the test binary exits.
pub fn adopt_orphans() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// A scratch directory for one test.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Lets every user read, write and enter the directory (mode 0777), for
    /// a daemon that drops privileges and must still write there.
    pub fn open_to_everyone(&self) {
        fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o777))
            .expect("chmod scratch directory");
    }

    /// Writes `text` to `name` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).expect("write scratch file");
        path
    }

    /// A command that runs heartbeat with `args` in this directory, stdin
    /// from `/dev/null`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs heartbeat to completion with `args`, in this directory.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run heartbeat")
    }

    /// Starts heartbeat with `args` in this directory; its stderr goes to
    /// `stderr.log` here.
    pub fn spawn(&self, args: &[&str]) -> Daemon {
        self.spawn_command(self.command(args))
    }

    /// Starts `cmd` (from [`Scratch::command`], adjusted: environment,
    /// user…); its stdout goes to `/dev/null` and its stderr to
    /// `stderr.log` here.
    pub fn spawn_command(&self, mut cmd: Command) -> Daemon {
        let stderr = fs::File::create(self.path("stderr.log")).expect("stderr file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start heartbeat");
        Daemon {
            child: Some(child),
            log: self.path("stderr.log"),
        }
    }
}

/// A running heartbeat; SIGTERM, then SIGKILL, and reaped on drop.
pub struct Daemon {
    child: Option<Child>,
    /// Its stderr.
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Duration {
        wait_for(&format!("{needle:?} in the log"), timeout, || {
            self.log_text().contains(needle)
        })
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("send signal");
    }

    /// Waits for it to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(10))
            .expect("heartbeat did not stop within 10 s of SIGTERM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process that is not our child by birth but was re-parented to the test
/// (see [`adopt_orphans`]): a daemon that detached. SIGTERM, then SIGKILL,
/// and reaped on drop.
pub struct Adopted {
    pid: i32,
    reaped: bool,
}

impl Adopted {
    /// Takes charge of process `pid`, an orphan adopted by this process.
    pub fn new(pid: i32) -> Adopted {
        Adopted { pid, reaped: false }
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid), signal).expect("send signal");
    }

    /// Waits for it to exit, at most `timeout`, and reaps it.
    ///
    /// # Panics
    /// When it is not a child of this process (it was orphaned before
    /// [`adopt_orphans`] was called).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.reap(timeout).unwrap_or_else(|e| {
            panic!(
                "process {} is not a child of the test: {e} (call adopt_orphans first)",
                self.pid
            )
        })
    }

    fn reap(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Errno> {
        let start = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) for one pid, writing into a local.
            let got = unsafe { nix::libc::waitpid(self.pid, &mut status, nix::libc::WNOHANG) };
            if got == self.pid {
                self.reaped = true;
                return Ok(Some(ExitStatus::from_raw(status)));
            }
            if got < 0 && Errno::last() != Errno::EINTR {
                return Err(Errno::last());
            }
            if start.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        if let Ok(None) = self.reap(Duration::from_secs(3)) {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = self.reap(Duration::from_secs(3));
        }
    }
}
