//! Several nodes: the `[cluster]` section, and exclusive action groups
//! elected through a real etcd (started by the tests on free loopback
//! ports, as one member and as three).

mod chaos;
mod config;
mod election;
mod failover;
mod nodes;
mod readme;
mod reload;
