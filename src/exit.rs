//! Exit statuses, in one place. Beyond 0, 1 and 2 they follow
//! `sysexits.h` (BSD), which init systems and operators recognise.

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
    /// 69 (EX_UNAVAILABLE): a service needed is unavailable (e.g. the
    /// status server of a running instance).
    Unavailable = 69,
    /// 70 (EX_SOFTWARE): an internal error.
    Software = 70,
    /// 71 (EX_OSERR): the operating system refused (fork, threads, signals).
    OsErr = 71,
    /// 73 (EX_CANTCREAT): a file cannot be created (pidfile, log file).
    CantCreat = 73,
    /// 76 (EX_PROTOCOL): the `status` address answered, but not as a
    /// heartbeat status server.
    Protocol = 76,
    /// 75 (EX_TEMPFAIL): another instance holds the pidfile.
    TempFail = 75,
    /// 77 (EX_NOPERM): not permitted (privilege drop without root).
    NoPerm = 77,
    /// 78 (EX_CONFIG): the configuration is invalid.
    Config = 78,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// An error that ends the program: the message for stderr and the status.
#[derive(Debug)]
pub struct Fatal {
    /// Exit status.
    pub exit: Exit,
    /// What went wrong, for the operator.
    pub message: String,
}

impl Fatal {
    /// A fatal error with this status and message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Fatal {
        Fatal {
            exit,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
