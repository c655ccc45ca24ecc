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

mod builder;
pub mod client;
pub mod commands;
mod connection;
mod conns;
pub mod error;
pub mod namespace;
mod retry;
pub mod route;
mod send;
pub mod session;
mod term;
pub mod watcher;
pub mod wire;

pub use builder::{ClientBuilder, ReadPolicy};
pub use client::Client;
pub use error::{ConnectError, RequestError, TopologyReadError};
pub use watcher::TopologyView;
pub use wire::{
    parse_addr_list, FailoverRecord, ManagerView, NodeAddr, PauseInfo, Topology, TopologyError,
    ZnodePaths,
};
