//! Running child processes: promotion and demotion hooks ([`actions`]) and
//! the plumbing under them and under script checks ([`process`]): `/bin/sh
//! -c COMMAND` in its own process group, with a deadline, captured output,
//! and no zombies.

pub mod actions;
pub mod process;
