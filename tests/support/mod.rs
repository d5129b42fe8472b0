//! Fixtures shared by the integration tests: the binary under test and its
//! scratch directories ([`bin`]), one check run once ([`checks`]), a status server fed with made-up
//! snapshots ([`http`], [`snapshots`]), an OpenMetrics reader
//! ([`metrics`]), network peers that misbehave ([`net`]), the hooks,
//! targets and pollers of the operating tests ([`ops`]), what `/proc` says
//! about processes ([`proc`]), a real Redis ([`redis`]), waiting with a
//! deadline ([`poll`]), running one test alone in a process of its own
//! ([`child`]) and configurations built from parts and heartbeat started
//! with its status server on a free port ([`daemon`]).

pub mod bin;
pub mod checks;
pub mod child;
pub mod daemon;
pub mod etcd;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod poll;
pub mod proc;
pub mod proxy;
pub mod redis;
pub mod snapshots;
