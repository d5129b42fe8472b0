//! Refusing files that a user other than root could write, when heartbeat
//! runs as root.
//!
//! Whoever can write the configuration file or a hook script run by root
//! can run commands as root. So, as monit refuses a control file looser
//! than 0700 and keepalived's `enable_script_security` refuses scripts
//! non-root users can write, heartbeat started as root refuses (exit 78):
//!
//! - a configuration file owned by another user than root, or writable by
//!   its group or by others;
//! - a hook or script-check executable named by an absolute path (the
//!   first word of a command, or of each command of a list or pipeline)
//!   that a non-root user can write: not owned by root, writable by a group
//!   other than root's or by others, or in a directory (any of its
//!   ancestors) of which the same holds. A world-writable directory with
//!   the sticky bit (`/tmp`) is fine: others cannot replace root's file in
//!   it.
//!
//! `check_permissions = no` in `[general]` turns this off, with one
//! exception: a configuration file that *everyone* may write is always
//! refused, since anyone could have written that key into it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::model::{Config, Probe};

/// Write permission for the group and for others (`S_IWGRP | S_IWOTH`).
const GROUP_OR_OTHER_WRITE: u32 = 0o022;

/// Write permission for others (`S_IWOTH`).
const OTHER_WRITE: u32 = 0o002;

/// The sticky bit (`S_ISVTX`).
const STICKY: u32 = 0o1000;

/// Checks `config` as the module documentation says, when this process
/// runs as root; does nothing otherwise.
///
/// # Errors
/// Every file refused, one per line: which file, what uses it, its owner
/// and mode, why it is refused and how to fix it.
pub fn check(config: &Config) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let mut refused = Vec::new();
    if let Some(path) = &config.path {
        if let Some(problem) = config_file_problem(path, config.general.check_permissions) {
            refused.push(problem);
        }
    }
    if config.general.check_permissions {
        for (what, command) in commands(config) {
            for program in programs(command) {
                if let Some(problem) = executable_problem(&program, &what) {
                    refused.push(problem);
                }
            }
        }
    }
    refused.sort();
    refused.dedup();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused.join("\n"))
    }
}

/// The problem with the configuration file at `path`, if any.
fn config_file_problem(path: &Path, check_permissions: bool) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o7777;
    let fix = format!("chown root: {0} && chmod go-w {0}", path.display());
    let why = if mode & OTHER_WRITE != 0 {
        Some("everyone can write it")
    } else if !check_permissions {
        None
    } else if meta.uid() != 0 {
        Some("it belongs to another user than root")
    } else if mode & GROUP_OR_OTHER_WRITE != 0 && meta.gid() != 0 {
        Some("its group can write it")
    } else {
        None
    }?;
    let off = if mode & OTHER_WRITE != 0 {
        "check_permissions = no does not cover a file everyone can write"
    } else {
        "or set check_permissions = no in [general] if you must"
    };
    Some(format!(
        "{}: refusing the configuration file: {why} ({}) and heartbeat runs its commands as root; \
         fix: {fix} ({off})",
        path.display(),
        owner_and_mode(&meta),
    ))
}

/// The problem with `program`, run by `what`, if a non-root user can write
/// it or a directory above it.
fn executable_problem(program: &Path, what: &str) -> Option<String> {
    let resolved = fs::canonicalize(program).ok()?;
    let mut chain: Vec<PathBuf> = resolved.ancestors().map(Path::to_path_buf).collect();
    chain.reverse();
    for (i, path) in chain.iter().enumerate() {
        let meta = fs::metadata(path).ok()?;
        let is_file = i + 1 == chain.len();
        let Some(why) = writable_by_others(&meta, is_file) else {
            continue;
        };
        let which = if is_file {
            format!("{}", program.display())
        } else {
            format!("{} (directory of {})", path.display(), program.display())
        };
        return Some(format!(
            "{which}: refusing {what}: {why} ({}); a non-root user could run commands as root \
             through it; fix: chown root: {1} && chmod go-w {1} (or set check_permissions = no \
             in [general])",
            owner_and_mode(&meta),
            path.display(),
        ));
    }
    None
}

/// Why a file or directory is writable by a non-root user, if it is.
fn writable_by_others(meta: &fs::Metadata, is_file: bool) -> Option<&'static str> {
    let mode = meta.mode();
    if meta.uid() != 0 {
        return Some("its owner is not root");
    }
    let sticky_dir = !is_file && mode & STICKY != 0;
    if mode & OTHER_WRITE != 0 && !sticky_dir {
        return Some("everyone can write it");
    }
    if mode & 0o020 != 0 && meta.gid() != 0 && !sticky_dir {
        return Some("a group other than root's can write it");
    }
    None
}

/// `owner NAME (uid N), group gid M, mode 0644`.
fn owner_and_mode(meta: &fs::Metadata) -> String {
    let name = nix::unistd::User::from_uid(meta.uid().into())
        .ok()
        .flatten()
        .map_or_else(|| "?".to_owned(), |u| u.name);
    format!(
        "owner {name} (uid {}), gid {}, mode {:04o}",
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    )
}

/// Every command of `config` with what runs it: `promotion of group "web"`,
/// `script check "disk"`.
fn commands(config: &Config) -> Vec<(String, &str)> {
    let mut all = Vec::new();
    for group in &config.groups {
        all.push((
            format!("the promotion of group {:?}", group.name),
            group.promotion.as_str(),
        ));
        all.push((
            format!("the demotion of group {:?}", group.name),
            group.demotion.as_str(),
        ));
    }
    for check in &config.checks {
        if let Probe::Script { command } = &check.probe {
            all.push((format!("script check {:?}", check.name), command.as_str()));
        }
    }
    all
}

/// The programs named by an absolute path in a shell command: the first
/// word of each simple command (after variable assignments and `exec`,
/// `command`, `nohup`, `then`, `do`…), split at `;`, `&`, `|`, newlines
/// and parentheses. A word with quotes around it is unquoted; one with `$`
/// or a backquote is skipped (its value is only known to the shell).
pub fn programs(command: &str) -> Vec<PathBuf> {
    const PREFIXES: &[&str] = &[
        "exec", "command", "nohup", "then", "do", "else", "elif", "if", "while", "until", "!", "{",
        "time",
    ];
    command
        .split([';', '&', '|', '\n', '(', ')', '`'])
        .filter_map(|simple| {
            simple
                .split_whitespace()
                .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
                .find(|w| !PREFIXES.contains(w) && !is_assignment(w))
        })
        .filter(|w| w.starts_with('/') && !w.contains('$'))
        .map(PathBuf::from)
        .collect()
}

/// `NAME=value`, a variable assignment before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(command: &str) -> Vec<String> {
        programs(command)
            .into_iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    #[test]
    fn programs_are_the_first_words_of_each_simple_command() {
        assert_eq!(
            paths("/usr/local/bin/a.sh --now /etc/x"),
            ["/usr/local/bin/a.sh"]
        );
        assert_eq!(
            paths("X=1 exec '/opt/b' && /bin/c | sort; (/d) & nohup /e"),
            ["/opt/b", "/bin/c", "/d", "/e"]
        );
        assert_eq!(paths("systemctl stop nginx"), Vec::<String>::new());
        assert_eq!(paths("$HOME/bin/x; \"$X\"/y"), Vec::<String>::new());
        assert_eq!(
            paths("if /bin/true; then /sbin/f; fi"),
            ["/bin/true", "/sbin/f"]
        );
    }
}
