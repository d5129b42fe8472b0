//! The HTTP side: the status server ([`server`]) that answers load
//! balancers, orchestrators and Prometheus, and the client of the
//! `heartbeat status` command ([`client`]).

pub mod client;
pub mod server;
