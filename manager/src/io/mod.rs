//! The I/O shells around the core: Redis connections and commands ([`node`]), the
//! per-node watching tasks ([`probe`], and the poller's own lean connection in
//! [`probe_conn`]), ZooKeeper ([`zk`]), the open-file limit
//! ([`limits`]), the `--on-switch-master` program ([`hook`]), the `--webhook-url` notifications
//! ([`webhook`]). Each call is bounded by a timeout.

pub(crate) mod hook;
pub(crate) mod limits;
pub mod node;
pub mod probe;
pub(crate) mod probe_conn;
pub(crate) mod webhook;
pub mod zk;
