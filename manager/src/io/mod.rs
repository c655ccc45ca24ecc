//! The I/O shells around the core: Redis connections and commands ([`node`]), the
//! per-node watching tasks ([`probe`]), ZooKeeper ([`zk`]). Each call is bounded by a timeout.

pub mod node;
pub mod probe;
pub mod zk;
