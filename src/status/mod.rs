//! What is known about the engine, for anyone who asks: the [`Snapshot`]
//! the engine publishes, its JSON form ([`report`]) and the Prometheus
//! metrics ([`metrics`]).

pub mod metrics;
pub mod report;
mod snapshot;

pub use snapshot::*;
