//! Fixtures shared by the integration tests.

pub mod http;
pub mod metrics;
pub mod snapshots;
