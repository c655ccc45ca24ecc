//! ZooKeeper-aware Redis client for `redis_failover`, and the one definition of the
//! published topology that the node manager writes and every client reads.
//!
//! # Layout
//! - [`topology`]: [`NodeAddr`] and [`Topology`], the JSON stored in `<root>/nodes`; parsing,
//!   encoding and invariants. Pure.
//! - [`paths`]: the znode paths under a root (`nodes`, `manager_node_state`, `manual_failover`,
//!   the leader lock).

pub mod paths;
pub mod topology;

pub use paths::ZnodePaths;
pub use topology::{parse_addr_list, NodeAddr, Topology, TopologyError};
