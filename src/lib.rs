//! heartbeat: health checks that promote and demote action groups.
//!
//! The pipeline, one module per step:
//!
//! 1. [`config`] reads the INI file (Python ConfigParser dialect) into a
//!    validated [`model::Config`];
//! 2. [`checks`] builds one runnable check per section and probes TCP,
//!    HTTP(S) or a script within a deadline;
//! 3. [`state`] folds results into check and group health (rise/fall) and
//!    decides which action each group needs — pure, no I/O;
//! 4. [`engine`] runs rounds on a fixed schedule in a thread pool and drives
//!    the state machine;
//! 5. [`actions`] runs promotions and demotions through [`process`], the
//!    child-process plumbing shared with script checks;
//! 6. [`logging`], [`status`] and [`metrics`] tell the operator what
//!    happened.
//!
//! Around the pipeline, the Unix plumbing of a daemon: [`pidfile`] (one
//! instance per pidfile), [`daemon`] (detaching, with the start-up outcome
//! reported to the launching command), [`privileges`] (dropping root),
//! [`signals`] (stop, reload, reopen) and [`notify`] (systemd readiness).
//!
//! Asking it how things stand: [`server`] serves health, readiness, status
//! ([`report`] is its JSON) and metrics over HTTP; [`status_cmd`] is the
//! `heartbeat status` client.
//!
//! The program itself: [`cli`] is the command line as typed, [`sidecar`]
//! turns `--check`/`--script` into a configuration, [`app`] picks the mode
//! and keeps the start-up order, and [`exit`] maps every ending to its exit
//! status. `main.rs` only calls [`app::run`].

pub mod actions;
pub mod app;
pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod exit;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pidfile;
pub mod privileges;
pub mod process;
pub mod report;
pub mod server;
pub mod sidecar;
pub mod signals;
pub mod state;
pub mod status;
pub mod status_cmd;

#[cfg(test)]
mod test_support;
