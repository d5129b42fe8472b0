//! Fixtures shared by the integration tests: the binary under test and its
//! scratch directories ([`bin`]), a status server fed with made-up
//! snapshots ([`http`], [`snapshots`]), an OpenMetrics reader
//! ([`metrics`]), network peers that misbehave ([`net`]), `/proc` readers
//! ([`proc`]) and running one test alone in a process of its own
//! ([`child`]).

pub mod bin;
pub mod child;
pub mod http;
pub mod metrics;
pub mod net;
pub mod proc;
pub mod snapshots;
