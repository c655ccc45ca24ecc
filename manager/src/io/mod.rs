//! The I/O shells around the core: Redis connections and commands ([`node`]), the
//! per-node watching tasks ([`probe`]: the poller, a calm master's [`beat`], and the crash
//! detector in [`parked`], all on the lean connection of [`probe_conn`]), ZooKeeper ([`zk`]), the open-file limit
//! ([`limits`]), the `--on-switch-master` program ([`hook`]), the `--webhook-url` notifications
//! ([`webhook`]). Each call is bounded by a timeout.

pub(crate) mod beat;
pub(crate) mod hook;
pub(crate) mod limits;
pub mod node;
pub(crate) mod parked;
pub mod probe;
pub(crate) mod probe_conn;
pub(crate) mod webhook;
pub mod zk;
