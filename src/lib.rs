//! heartbeat: health checks that promote and demote action groups.
//!
//! The pipeline, one folder per step:
//!
//! 1. [`config`] reads the INI file (Python ConfigParser dialect) into a
//!    validated [`model::Config`];
//! 2. [`checks`] builds one runnable check per section and probes TCP,
//!    HTTP(S), gRPC health or a script within a deadline;
//! 3. [`engine`] runs rounds on a fixed schedule and folds the results into
//!    check and group health through its pure state machine
//!    ([`engine::state`]), deciding which action each group needs;
//! 4. [`exec`] runs promotions and demotions ([`exec::actions`]) through the
//!    child-process plumbing shared with script checks
//!    ([`exec::process`]);
//! 5. [`status`] holds what the engine knows (the snapshot, its JSON report
//!    and the metrics), [`http`] serves it and asks a running instance for
//!    it, and [`logging`] tells the operator what happened.
//!
//! Around the pipeline, [`daemon`] is the Unix plumbing of a daemon: the
//! pidfile, detaching, dropping privileges, signals and systemd readiness;
//! [`control`] is the control socket through which an operator pauses,
//! resumes and puts groups in maintenance.
//!
//! The program itself is [`app`]: the command line as typed
//! ([`app::cli`]), converted once into a [`app::Mode`] ([`app::mode`]),
//! the configuration-free sidecar mode, the start-up order, and the typed
//! [`app::Error`] that carries each failure's exit status; [`exit`] lists
//! the exit statuses and prints an error with its causes, and [`files`]
//! opens what heartbeat writes without following planted links. `main.rs` only
//! parses, calls [`app::run`] and exits.

pub mod app;
pub mod checks;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod exec;
pub mod exit;
pub mod files;
pub mod http;
pub mod logging;
pub mod model;
pub mod status;

#[cfg(test)]
mod test_support;
