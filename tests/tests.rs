//! The integration tests, one module per area, in one test binary. They run
//! the real `heartbeat` binary, or the library's pieces, against real
//! things: loopback sockets, `/bin/sh` hooks, nginx, misbehaving peers.
//! Shared fixtures live in `support`.
//!
//! Filter by area with `cargo test --test tests -- daemon::`.

mod support;

mod actions;
mod check_config;
mod checks_certificate;
mod checks_expect;
mod checks_grpc;
mod checks_net;
mod cli;
mod cluster;
mod config;
mod config_python;
mod contrib;
mod control;
mod daemon;
mod engine;
mod haproxy;
mod isolation;
mod logs;
mod metrics;
mod model;
mod nginx;
mod once;
mod package;
mod prometheus;
mod readme;
mod reload;
mod retries;
mod schedule;
mod security;
mod server;
mod server_fd_exhaustion;
mod sidecar;
mod state_file;
mod status_cmd;
mod status_server;
mod under_systemd;
