//! The HTTP side: the status server ([`server`]) that answers load
//! balancers, orchestrators and Prometheus, and the client of the
//! `heartbeat status` command ([`client`]); which interfaces the server
//! is exposed on ([`exposure`]).

pub mod client;
pub mod exposure;
pub mod server;
