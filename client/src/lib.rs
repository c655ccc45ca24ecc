//! A Redis client for groups managed by `redis_node_manager`: it finds the master and
//! replicas in ZooKeeper, follows every failover, sends writes to the master and reads to a
//! replica, and retries what is safe to retry. It also defines what the node manager writes
//! to ZooKeeper ([`wire`]), so that both sides read the same schema.
//!
//! [`Client`] implements [`redis::aio::ConnectionLike`]: every `redis::AsyncCommands`
//! method and `redis::pipe()` work on it unchanged. Only connecting differs from redis-rs:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use redis::AsyncCommands;
//! use redis_failover_client::{Client, ReadPolicy};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut redis = Client::builder("zk1:2181,zk2:2181,zk3:2181")
//!     .znode_path("/redis_failover") // the manager's --znode-path
//!     .command_timeout(Duration::from_secs(2))
//!     .read_policy(ReadPolicy::RoundRobin)
//!     .connect()
//!     .await?;
//!
//! redis.set::<_, _, ()>("greeting", "hello").await?; // to the master
//! let visits: i64 = redis.incr("visits", 1).await?; // to the master
//! let greeting: Option<String> = redis.get("greeting").await?; // to a replica (may lag)
//! let (a, b): (i64, i64) = redis::pipe()
//!     .atomic() // MULTI/EXEC, on the master
//!     .incr("visits", 1)
//!     .incr("visits", 1)
//!     .query_async(&mut redis)
//!     .await?;
//!
//! // Where the group stands, as last read from ZooKeeper.
//! let view = redis.topology();
//! println!("master {:?}, epoch {}", view.topology.master, view.topology.epoch);
//!
//! // Ask the manager to move the master to the best replica (as `redis_node_manager
//! // failover`), and wait for its verdict: the new master, or why not.
//! let master = redis.failover(None, Duration::from_secs(30)).await?;
//! println!("the master is now {master}");
//! # let _ = (visits, greeting, a, b);
//! # Ok(())
//! # }
//! ```
//!
//! Clones of a [`Client`] share the ZooKeeper session and the connections; give each task
//! its own clone. What the client does on a failover, and which errors it returns rather
//! than retries, is documented on [`Client`] and [`ClientBuilder`].
//!
//! # Modules
//! - [`wire`]: the schema of every znode (topology, manager views, manual-failover request
//!   and refusal, pause, failover history) and their paths. For the node manager and
//!   operators' tools; applications need only [`Topology`] and [`NodeAddr`].
//! - [`session`]: opening and reopening ZooKeeper sessions, shared with the node manager.
//! - [`failover`]: a manual failover request and its verdict ([`FailoverError`]), shared
//!   with the node manager's `failover` subcommand, HTTP and Sentinel endpoints.
//!
//! # Inside (private)
//! `builder` (options, connecting), `client` (the handle, one try), `connection`
//! (`ConnectionLike`), `conns` (the connection set and the task that follows the topology),
//! `term` (master terms: no reply awaited from a deposed master), `send`, `retry`,
//! `route` and `namespace` (pure, on the generated `commands` table), `watcher` (the task
//! that watches `<root>/nodes`), `lease` (the write lease: when the topology was last
//! confirmed), `synchronous` (writes share `WAIT`s: group commit), `error`.

#![warn(missing_docs)]

mod builder;
mod client;
// The generated command table keeps its whole lookup API (flag names, the Redis version it
// came from) for the generator's checks and the tests; the client uses part of it.
#[allow(dead_code)]
mod commands;
mod connection;
mod conns;
mod error;
pub mod failover;
mod lease;
mod namespace;
mod retry;
mod route;
mod send;
pub mod session;
mod synchronous;
mod term;
mod tls;
mod watcher;
pub mod wire;

pub use builder::{ClientBuilder, ReadPolicy};
pub use client::Client;
pub use error::{ConnectError, TopologyReadError, NOT_REPLICATED, TOPOLOGY_UNCONFIRMED};
pub use failover::FailoverError;
pub use tls::{install_crypto_provider, Tls, TlsDiagnosis, TlsError, TlsPart};
pub use watcher::TopologyView;
pub use wire::{NodeAddr, Topology, ZnodePaths};

// The flat paths the workspace's other crates were written against; new code names them
// through `wire::`.

// The Rust code in the guides is compiled (and, unless marked `no_run`, run) as doc-tests:
// `cargo test --doc -p redis-failover-client`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/client.md")]
pub struct ClientGuideDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/operations.md")]
pub struct OperationsGuideDocTests;
