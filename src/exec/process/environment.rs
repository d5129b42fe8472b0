//! What a child inherits from heartbeat: a clean environment and the
//! launcher's open-file limit.
//!
//! heartbeat usually starts as root from a shell, sudo or an init system,
//! whose environment may hold anything: `SUDO_*`, `SSH_AUTH_SOCK`,
//! `XDG_RUNTIME_DIR=/run/user/0`, credentials. Like sudo's `env_reset`,
//! cron and systemd, it gives checks and hooks a fresh environment
//! instead ([`environment_for`]):
//!
//! | variable | value |
//! |---|---|
//! | `PATH` | `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` |
//! | `HOME`, `USER`, `LOGNAME` | those of the user heartbeat runs as (after `user =`) |
//! | `SHELL` | `/bin/sh`, the shell that runs the command (as cron sets it) |
//! | `LANG`, `LANGUAGE`, `LC_*`, `TZ` | kept from heartbeat's environment when set |
//! | `env_keep` names | kept from heartbeat's environment when set |
//! | `env_set` pairs | set as given (they win over all of the above) |
//! | `HEARTBEAT_*` | set by heartbeat for each run; they win over everything |
//!
//! heartbeat raises its own soft limit on open files for its connections;
//! children get the launcher's soft limit back ([`ChildSetup::file_limit`]).
//! Since the limit is a property of the whole process, and a spawn through
//! posix_spawn(3) (what keeps spawns cheap and parallel, unlike fork(2) of a
//! multithreaded process) cannot change it in the child, the shell lowers
//! it itself before running the command: `/bin/sh -c 'ulimit -S -n N;
//! exec /bin/sh -c "$0"' COMMAND`. The command then runs exactly as
//! `/bin/sh -c COMMAND` would, with the same pid.

use std::ffi::{OsStr, OsString};
use std::sync::{Arc, PoisonError, RwLock};

/// `PATH` of every child unless `env_keep` or `env_set` says otherwise: the
/// default of systemd and of Debian's `/etc/login.defs` for root.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the configuration asks for beyond the clean environment
/// (`env_keep` and `env_set` in `[general]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPolicy {
    /// Names of variables kept from heartbeat's own environment, when set.
    pub keep: Vec<String>,
    /// Variables set to these values.
    pub set: Vec<(String, String)>,
}

/// What every child gets; see [`configure_children`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSetup {
    /// The whole environment, before the variables of each run.
    pub env: Vec<(OsString, OsString)>,
    /// The soft limit on open files (`RLIMIT_NOFILE`) to give children,
    /// when it differs from heartbeat's own; `None` leaves theirs as
    /// heartbeat's.
    pub file_limit: Option<u64>,
}

/// The installed setup; `None` until [`configure_children`].
static SETUP: RwLock<Option<Arc<ChildSetup>>> = RwLock::new(None);

/// Sets what every child started from now on gets. Call it at start-up,
/// once privileges are dropped (so that `HOME` and `USER` are the right
/// user's), and before the first check runs. Until then, children get
/// [`environment_for`] the default policy and heartbeat's file limit.
pub fn configure_children(setup: ChildSetup) {
    *SETUP.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(setup));
}

/// The setup in force.
pub(super) fn current() -> Arc<ChildSetup> {
    if let Some(setup) = SETUP
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return setup.clone();
    }
    let mut slot = SETUP.write().unwrap_or_else(PoisonError::into_inner);
    slot.get_or_insert_with(|| {
        Arc::new(ChildSetup {
            env: environment_for(&EnvPolicy::default(), std::env::vars_os(), &current_user()),
            file_limit: None,
        })
    })
    .clone()
}

/// The user this process runs as (effective uid): name and home
/// directory, from the user database; the uid and `/` when it has no
/// entry.
pub fn current_user() -> (String, OsString) {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => (user.name, user.dir.into_os_string()),
        _ => (uid.to_string(), OsString::from("/")),
    }
}

/// Whether a variable of the launcher's environment is a locale or time
/// zone setting, kept by default.
fn is_locale(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name == b"LANG" || name == b"LANGUAGE" || name == b"TZ" || name.starts_with(b"LC_")
}

/// The environment of children: the table of the module documentation,
/// from `launcher` (heartbeat's own environment), for the user `user`
/// (name, home directory). Sorted by name, each name once.
pub fn environment_for(
    policy: &EnvPolicy,
    launcher: impl IntoIterator<Item = (OsString, OsString)>,
    user: &(String, OsString),
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), user.1.clone()),
        ("USER".into(), user.0.clone().into()),
        ("LOGNAME".into(), user.0.clone().into()),
        ("SHELL".into(), super::SHELL.into()),
    ];
    let put = |env: &mut Vec<(OsString, OsString)>, name: OsString, value: OsString| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    for (name, value) in launcher {
        let kept = is_locale(&name) || policy.keep.iter().any(|k| OsStr::new(k) == name);
        if kept && name != "NOTIFY_SOCKET" {
            put(&mut env, name, value);
        }
    }
    for (name, value) in &policy.set {
        put(&mut env, name.into(), value.into());
    }
    env.sort();
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn only_the_documented_variables_survive() {
        let launcher = vars(&[
            ("PATH", "/root/bin:/usr/bin"),
            ("HOME", "/root"),
            ("SUDO_USER", "alice"),
            ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1"),
            ("XDG_RUNTIME_DIR", "/run/user/0"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "en_GB.UTF-8"),
            ("TZ", "Europe/Paris"),
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("AWS_SECRET_ACCESS_KEY", "hunter2"),
        ]);
        let user = ("nobody".to_owned(), OsString::from("/nonexistent"));
        let env = environment_for(&EnvPolicy::default(), launcher, &user);
        assert_eq!(
            env,
            vars(&[
                ("HOME", "/nonexistent"),
                ("LANG", "C.UTF-8"),
                ("LC_TIME", "en_GB.UTF-8"),
                ("LOGNAME", "nobody"),
                ("PATH", DEFAULT_PATH),
                ("SHELL", "/bin/sh"),
                ("TZ", "Europe/Paris"),
                ("USER", "nobody"),
            ])
        );
    }

    #[test]
    fn kept_and_set_variables_are_added_and_set_wins() {
        let launcher = vars(&[
            ("https_proxy", "http://proxy:3128"),
            ("PATH", "/opt/bin:/usr/bin"),
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
        ]);
        let policy = EnvPolicy {
            keep: vec!["https_proxy".into(), "PATH".into(), "NOTIFY_SOCKET".into()],
            set: vec![
                ("NO_PROXY".into(), "localhost".into()),
                ("USER".into(), "x".into()),
            ],
        };
        let user = ("root".to_owned(), OsString::from("/root"));
        let env = environment_for(&policy, launcher, &user);
        assert_eq!(
            env,
            vars(&[
                ("HOME", "/root"),
                ("LOGNAME", "root"),
                ("NO_PROXY", "localhost"),
                ("PATH", "/opt/bin:/usr/bin"),
                ("SHELL", "/bin/sh"),
                ("USER", "x"),
                ("https_proxy", "http://proxy:3128"),
            ])
        );
    }
}
