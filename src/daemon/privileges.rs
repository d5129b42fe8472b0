//! Dropping root for `user` and `group` in `[general]`.
//!
//! heartbeat starts as root when it must (to write a pidfile in `/run`, a
//! log in `/var/log`, to bind a low port), then runs its checks and hooks as
//! an ordinary user. The order is the one that cannot be undone halfway:
//! supplementary groups first (`initgroups(3)`, or exactly the one group
//! when only `group` is set), then the group (`setgid(2)`), then the user
//! (`setuid(2)`), each setting the real, effective and saved ids, as root
//! does. Then it checks the result — all three uids and gids, the
//! supplementary groups, and that `setuid(0)` now fails — and refuses to go
//! on if anything is off.
//!
//! When `user` is set, `HOME`, `USER` and `LOGNAME` are set to that user's,
//! as `su` (without `-`) does, in heartbeat's own environment; checks and
//! hooks get a clean one built from it ([`crate::exec::process`]), where
//! tools they run (ssh, kubectl, git) find the user's `HOME`.
//! Because changing the environment is only sound in a single-threaded
//! process (and because the identity should be settled before any thread
//! runs a check), dropping privileges must happen before any thread
//! starts; [`drop_to`] refuses otherwise.

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid};

use crate::exit::Exit;
use crate::model::{UnixGroup, UserAccount};

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// Another identity was asked for, and the process is not root: exit
    /// status 77 (`EX_NOPERM`).
    #[error("{setting} in [general] needs heartbeat to start as root; it runs as uid {euid}")]
    NotRoot {
        /// `user = NAME` and/or `group = NAME`.
        setting: String,
        /// The effective uid heartbeat runs as.
        euid: u32,
    },
    /// A second thread exists: the identity and the environment must
    /// change before any thread starts.
    #[error(
        "cannot drop privileges: {0} threads are running; it must happen before any thread starts"
    )]
    Threads(usize),
    /// A system call refused (the message says which and for what).
    #[error("{what}")]
    Call {
        /// What was being done: `cannot change user to uid 65534`…
        what: String,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// A user name holds a NUL byte and cannot be passed to the C library.
    #[error("user name {0:?} contains a NUL byte")]
    Name(String),
    /// The checks after the switch found it incomplete or reversible.
    #[error("privilege drop incomplete: {0}")]
    Incomplete(String),
}

impl PrivilegeError {
    /// The exit status: [`Exit::NoPerm`] (77) when not root, else
    /// [`Exit::OsErr`] (71).
    pub fn exit(&self) -> Exit {
        match self {
            PrivilegeError::NotRoot { .. } => Exit::NoPerm,
            _ => Exit::OsErr,
        }
    }
}

fn call(what: String) -> impl FnOnce(nix::Error) -> PrivilegeError {
    move |source| PrivilegeError::Call { what, source }
}

/// An identity to switch to, resolved from the names in `[general]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id to run as (unchanged when only `group` was given).
    pub uid: u32,
    /// The group id to run as: `group`, else the user's primary group.
    pub gid: u32,
    /// The user's name and home directory, when `user` was given.
    pub user: Option<(String, PathBuf)>,
    /// The supplementary groups after the switch, sorted: the user's groups
    /// (from the group database) and `gid`, or only `gid` when only `group`
    /// was given.
    pub groups: Vec<u32>,
    /// `user = NAME` and/or `group = NAME`, for messages.
    setting: String,
}

/// Works out the identity `user` and `group` (looked up when the
/// configuration was loaded, see [`crate::config::user_account`]) make,
/// and checks that switching to it is possible.
///
/// Returns `None` when there is nothing to do: both are `None`, or they
/// name the identity the process already has (real and effective).
///
/// # Errors
/// When another identity is asked for and the process does not run as root
/// (`user = nobody in [general] needs heartbeat to start as root; it runs
/// as uid 1000`; exit status 77, `EX_NOPERM`), or the user's groups cannot
/// be read.
pub fn resolve(
    user: Option<&UserAccount>,
    group: Option<&UnixGroup>,
) -> Result<Option<Identity>, PrivilegeError> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let uid = user.map_or_else(nix::unistd::getuid, |u| Uid::from_raw(u.uid));
    let gid = group
        .map(|g| g.gid)
        .or(user.map(|u| u.gid))
        .map_or_else(nix::unistd::getgid, Gid::from_raw);

    let current = uid == nix::unistd::getuid()
        && uid == nix::unistd::geteuid()
        && gid == nix::unistd::getgid()
        && gid == nix::unistd::getegid();
    if current {
        return Ok(None);
    }
    let setting = match (user, group) {
        (Some(u), Some(g)) => format!("user = {} and group = {}", u.name, g.name),
        (Some(u), None) => format!("user = {}", u.name),
        (None, Some(g)) => format!("group = {}", g.name),
        (None, None) => unreachable!("returned above"),
    };
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(PrivilegeError::NotRoot {
            setting,
            euid: euid.as_raw(),
        });
    }
    let groups = match user {
        Some(u) => {
            let name = c_name(&u.name)?;
            let mut groups: Vec<u32> = nix::unistd::getgrouplist(&name, gid)
                .map_err(call(format!("cannot list the groups of user {:?}", u.name)))?
                .into_iter()
                .map(Gid::as_raw)
                .collect();
            groups.sort_unstable();
            groups.dedup();
            groups
        }
        None => vec![gid.as_raw()],
    };
    Ok(Some(Identity {
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        user: user.map(|u| (u.name.clone(), u.home.clone())),
        groups,
        setting,
    }))
}

/// Switches the whole process to `user` and `group` for good (see the
/// module documentation for the order and the checks), or does nothing
/// when there is nothing to change.
///
/// Call it once, after the pidfile is locked (it stays root's), the log
/// file opened and any privileged port bound, and before any thread
/// starts.
///
/// # Errors
/// Those of [`resolve`], and an OS failure or an incomplete drop found by
/// the checks, after which the process must not go on (exit 71,
/// `EX_OSERR`).
pub fn drop_to(
    user: Option<&UserAccount>,
    group: Option<&UnixGroup>,
) -> Result<(), PrivilegeError> {
    match resolve(user, group)? {
        Some(identity) => identity.apply(),
        None => Ok(()),
    }
}

impl Identity {
    /// Switches to this identity: supplementary groups, group, user; checks
    /// the result; sets `HOME`, `USER` and `LOGNAME` when a user was named.
    ///
    /// # Errors
    /// When a thread other than the caller exists, a system call fails, or
    /// the checks find the switch incomplete.
    pub fn apply(&self) -> Result<(), PrivilegeError> {
        if let Some(threads) = crate::daemon::detach::thread_count().filter(|&n| n > 1) {
            return Err(PrivilegeError::Threads(threads));
        }
        let gid = Gid::from_raw(self.gid);
        let uid = Uid::from_raw(self.uid);
        match &self.user {
            Some((name, _)) => nix::unistd::initgroups(&c_name(name)?, gid).map_err(call(
                format!("cannot set the supplementary groups of {name:?}"),
            ))?,
            None => nix::unistd::setgroups(&[gid])
                .map_err(call("cannot set the supplementary groups".to_owned()))?,
        }
        nix::unistd::setgid(gid).map_err(call(format!("cannot change group to gid {gid}")))?;
        if self.user.is_some() {
            nix::unistd::setuid(uid).map_err(call(format!("cannot change user to uid {uid}")))?;
        }
        self.verify()?;
        if let Some((name, home)) = &self.user {
            // SAFETY: no other thread exists (checked above), so nothing
            // can read the environment concurrently.
            unsafe {
                std::env::set_var("HOME", home);
                std::env::set_var("USER", name);
                std::env::set_var("LOGNAME", name);
            }
        }
        log::info!(
            "running as uid {}, gid {}, groups {:?} ({})",
            self.uid,
            self.gid,
            self.groups,
            self.setting
        );
        Ok(())
    }

    /// Checks that the switch is complete and cannot be undone.
    fn verify(&self) -> Result<(), PrivilegeError> {
        let incomplete = PrivilegeError::Incomplete;
        let uids = nix::unistd::getresuid().map_err(|e| incomplete(format!("getresuid: {e}")))?;
        let gids = nix::unistd::getresgid().map_err(|e| incomplete(format!("getresgid: {e}")))?;
        let uid = Uid::from_raw(self.uid);
        let gid = Gid::from_raw(self.gid);
        if [uids.real, uids.effective, uids.saved] != [uid; 3] {
            return Err(incomplete(format!(
                "real/effective/saved uids are {}/{}/{}, expected {uid}",
                uids.real, uids.effective, uids.saved
            )));
        }
        if [gids.real, gids.effective, gids.saved] != [gid; 3] {
            return Err(incomplete(format!(
                "real/effective/saved gids are {}/{}/{}, expected {gid}",
                gids.real, gids.effective, gids.saved
            )));
        }
        let mut groups: Vec<u32> = nix::unistd::getgroups()
            .map_err(|e| incomplete(format!("getgroups: {e}")))?
            .into_iter()
            .map(Gid::as_raw)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        if groups != self.groups {
            return Err(incomplete(format!(
                "supplementary groups are {groups:?}, expected {:?}",
                self.groups
            )));
        }
        if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(incomplete(
                "root could be regained with setuid(0)".to_owned(),
            ));
        }
        Ok(())
    }
}

fn c_name(name: &str) -> Result<CString, PrivilegeError> {
    CString::new(name).map_err(|_| PrivilegeError::Name(name.to_owned()))
}

#[cfg(test)]
mod tests {
    //! Dropping privileges is tested with real processes in
    //! `tests/plumbing.rs`.

    use super::*;
    use crate::test_support::is_root;

    #[test]
    fn nothing_to_do_without_names_or_for_the_current_identity() {
        assert_eq!(resolve(None, None).unwrap(), None);
        let me = crate::config::user_account(&nix::unistd::getuid().to_string())
            .unwrap()
            .unwrap();
        if me.gid == nix::unistd::getgid().as_raw() {
            assert_eq!(resolve(Some(&me), None).unwrap(), None);
        }
    }

    #[test]
    fn resolving_nobody_as_root_gives_its_ids_and_groups() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // Read from the user database here, not through the code under test.
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let account = UserAccount {
            name: "nobody".to_owned(),
            uid: nobody.uid.as_raw(),
            gid: nobody.gid.as_raw(),
            home: nobody.dir.clone(),
        };
        let id = resolve(Some(&account), None).unwrap().unwrap();
        assert_eq!((id.uid, id.gid), (nobody.uid.as_raw(), nobody.gid.as_raw()));
        assert_eq!(id.user, Some(("nobody".to_owned(), nobody.dir.clone())));
        assert!(id.groups.contains(&nobody.gid.as_raw()));
        assert!(!id.groups.contains(&0));
    }
}
