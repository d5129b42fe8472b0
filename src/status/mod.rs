//! What is known about the engine, for anyone who asks: the [`Snapshot`]
//! the engine publishes, its judgement ([`Verdict`]), its JSON form ([`report`]) and the Prometheus
//! metrics ([`metrics`]).

pub mod metrics;
pub mod report;
mod snapshot;
mod verdict;

pub use snapshot::*;
pub use verdict::*;
