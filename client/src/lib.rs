//! ZooKeeper-aware Redis client for `redis_failover`, and the one definition of the
//! published topology that the node manager writes and every client reads.
//!
//! # Layout
//! - [`wire`]: everything written to ZooKeeper ([`Topology`] in `<root>/nodes`, manager
//!   views, the manual-failover request and its refusal, the pause switch, the failover
//!   history) and the znode paths; parsing, encoding and invariants. Pure.
//! - [`commands`]: the command table generated from Redis's own flags; [`route`]: where a
//!   command goes and how keys get a namespace. Pure.
//! - [`watcher`]: the task that reads and watches `<root>/nodes` through ZooKeeper.
//! - [`client`]: [`Client`], the handle applications use (`redis::aio::ConnectionLike`).
//! - [`error`]: connect errors and the errors the client raises itself.

pub mod client;
pub mod commands;
pub mod error;
pub mod route;
pub mod watcher;
pub mod wire;

pub use client::{Client, ClientBuilder, ReadPolicy};
pub use error::ConnectError;
pub use watcher::TopologyView;
pub use wire::{
    parse_addr_list, FailoverRecord, ManagerView, NodeAddr, PauseInfo, Topology, TopologyError,
    ZnodePaths,
};
