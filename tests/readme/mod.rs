//! The README, run: every command it shows is run by a test.
//!
//! How it works, and how to make a new README section pass:
//! - [`shown`] extracts the commands a reader would type: every line of a
//!   ```` ```sh ```` (or `bash`, `console`) block, the `$ ` lines of other
//!   blocks, the command of each line of a ```` ```crontab ```` block, and
//!   inline code whose first word is a program of [`shown::PROGRAMS`]
//!   (`heartbeat …`, `systemctl …`, `curl …`).
//! - [`commands::COMMANDS`] lists each of them once with how it is run:
//!   `sh(Installed|Live, …)` runs it with `/bin/sh` in a scratch root laid
//!   out as the package installs heartbeat, with or without a heartbeat
//!   running there ([`environments`]); `unit(…)` runs `systemctl` and
//!   `journalctl` as systemd runs the unit's own lines ([`unit`]);
//!   `test(…)` names the test that runs it in the form it says; `ci(…)` is
//!   a line `.ci/run` runs; `not_run(…)` says why nothing can (rustup's
//!   installer, a placeholder a hook stands for). A command the README
//!   shows that the list lacks fails
//!   `commands::every_command_the_readme_shows_is_run_by_a_test`, which
//!   prints the entry to add; so does an entry the README no longer shows.
//! - Whole examples (configuration files, command lines with their
//!   targets) are taken from the README by the heading they follow
//!   ([`shown::block_after`]) and run end to end: the first screen on a
//!   fresh Debian 12 ([`first_screen`]), the ways of running heartbeat
//!   ([`running`]), and the sections for users coming from another tool
//!   ([`coming_from`]), whose old tool runs beside heartbeat where Debian
//!   has it (monit, keepalived).

mod coming_from;
mod commands;
mod environments;
mod first_screen;
mod running;
pub mod shown;
mod unit;
