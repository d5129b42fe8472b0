//! Exit statuses, in one place. Beyond 0 to 3 they follow `sysexits.h`
//! (BSD), which init systems and operators recognise.

use std::process::ExitCode;

/// How heartbeat ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: clean stop, or healthy `--once`.
    Ok = 0,
    /// 1: unhealthy `--once`, or `exit_on_failure` tripped.
    Unhealthy = 1,
    /// 2: bad command line (clap uses it too).
    Usage = 2,
    /// 3: `--once`, and a group's latest state was not announced: its
    /// action failed, or a stop (SIGTERM) came before it ran. Whatever the
    /// health: cron must hear that the outside world is not as it should
    /// be.
    ActionFailed = 3,
    /// 65 (EX_DATAERR): `pause`, `resume`, `maintenance`: a group named is
    /// not configured, or the change cannot be made; nothing changed.
    DataErr = 65,
    /// 69 (EX_UNAVAILABLE): a service needed is unavailable (e.g. the
    /// status server or the control socket of a running instance).
    Unavailable = 69,
    /// 70 (EX_SOFTWARE): an internal error.
    Software = 70,
    /// 71 (EX_OSERR): the operating system refused (fork, threads, signals).
    OsErr = 71,
    /// 73 (EX_CANTCREAT): a file cannot be created (pidfile, log file,
    /// control socket).
    CantCreat = 73,
    /// 76 (EX_PROTOCOL): the `status` address answered, but not as a
    /// heartbeat status server.
    Protocol = 76,
    /// 75 (EX_TEMPFAIL): another instance holds the pidfile or serves the
    /// control socket.
    TempFail = 75,
    /// 77 (EX_NOPERM): not permitted (privilege drop without root, a
    /// control socket that refuses the user).
    NoPerm = 77,
    /// 78 (EX_CONFIG): the configuration is invalid.
    Config = 78,
}

impl Exit {
    /// Every exit status, in numeric order.
    pub const ALL: [Exit; 13] = [
        Exit::Ok,
        Exit::Unhealthy,
        Exit::Usage,
        Exit::ActionFailed,
        Exit::DataErr,
        Exit::Unavailable,
        Exit::Software,
        Exit::OsErr,
        Exit::CantCreat,
        Exit::TempFail,
        Exit::Protocol,
        Exit::NoPerm,
        Exit::Config,
    ];

    /// What the status tells the operator, as the manual page lists it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "a clean stop (SIGTERM, SIGINT), or --once and every group healthy",
            Exit::Unhealthy => "--once and some group not healthy, or exit_on_failure tripped",
            Exit::Usage => "a bad command line",
            Exit::ActionFailed => {
                "--once and a group's latest state was not announced: its action failed, or a \
                 stop (SIGTERM) came before it ran; or pause, resume, maintenance: an action the \
                 command started failed"
            }
            Exit::DataErr => {
                "pause, resume, maintenance: a group named is not configured, or the change \
                 cannot be made (nothing changed)"
            }
            Exit::Unavailable => {
                "status, pause, resume, maintenance: the running instance cannot be reached"
            }
            Exit::Software => {
                "an internal failure (the engine loop panicked, an action thread or the status \
                 server died), or -d: the daemon died during start-up without saying why"
            }
            Exit::OsErr => {
                "the operating system refused (fork, threads, signals, the status server's address)"
            }
            Exit::CantCreat => "the log file, the pidfile or the control socket cannot be created",
            Exit::TempFail => "another instance holds the pidfile or serves the control socket",
            Exit::Protocol => {
                "status, pause, resume, maintenance: what answered is not a heartbeat status \
                 server or control socket"
            }
            Exit::NoPerm => {
                "a privilege drop was asked for without root, or the control socket refused the user"
            }
            Exit::Config => {
                "the configuration is invalid, or there is none, or (as root) a file or hook \
                 that another user could write"
            }
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Shows an error with every cause behind it, outermost first, joined by
/// `: ` — `cannot listen on 127.0.0.1:80: Permission denied (os error
/// 13)` — as ripgrep prints an error chain. The errors of heartbeat leave
/// their cause out of their own message and return it as
/// [`std::error::Error::source`], so that each cause is said exactly once.
pub struct Chain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot open pidfile /run/x.pid")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_says_every_cause_once_outermost_first() {
        let inner = std::io::Error::other("disk on fire");
        let outer = Outer(inner);
        assert_eq!(
            Chain(&outer).to_string(),
            "cannot open pidfile /run/x.pid: disk on fire"
        );
        let alone = std::io::Error::other("alone");
        assert_eq!(Chain(&alone).to_string(), "alone");
    }
}
