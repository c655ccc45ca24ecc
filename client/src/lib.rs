//! ZooKeeper-aware Redis client for `redis_failover`, and the one definition of the
//! published topology that the node manager writes and every client reads.
//!
//! # Layout
//! - [`topology`]: [`NodeAddr`] and [`Topology`], the JSON stored in `<root>/nodes`; parsing,
//!   encoding and invariants. Pure.
//! - [`paths`]: the znode paths under a root (`nodes`, `manager_node_state`, `manual_failover`,
//!   `paused`, `failover_history`, the leader lock).
//! - [`commands`]: the command table generated from Redis's own flags; [`route`]: where a
//!   command goes and how keys get a namespace. Pure.
//! - [`watcher`]: the task that reads and watches `<root>/nodes` through ZooKeeper.
//! - [`client`]: [`Client`], the handle applications use (`redis::aio::ConnectionLike`).
//! - [`error`]: connect errors and the errors the client raises itself.

pub mod client;
pub mod commands;
pub mod error;
pub mod paths;
pub mod route;
pub mod topology;
pub mod watcher;

pub use client::{Client, ClientBuilder, ReadPolicy};
pub use error::ConnectError;
pub use paths::ZnodePaths;
pub use topology::{
    parse_addr_list, FailoverRecord, ManagerView, NodeAddr, PauseInfo, Topology, TopologyError,
};
pub use watcher::TopologyView;
