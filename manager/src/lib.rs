//! `redis_node_manager`: keeps Redis master/replica groups available, coordinated through
//! ZooKeeper. [`run`] is the whole daemon; `main.rs` only parses flags and sets up logging,
//! so tests run the daemon in-process.
//!
//! # Layout (see `docs/architecture.md`)
//! - `config`: flags + TOML file -> validated [`Config`].
//! - `core/`: the pure core — node state from probe history, votes, the leader's next
//!   decision, which replica to promote, the event names. No I/O, no clock.
//! - `io/`: the shells — Redis connections and commands, probes, ZooKeeper.
//! - `daemon/`: one group's loop, the only place where decisions meet I/O, with its one
//!   promotion sequence.
//! - `front/`: what operators use — HTTP, metrics, the Sentinel protocol, the subcommands.
//! - `run`: the whole daemon put together.

pub mod config;
pub(crate) mod core;
pub(crate) mod daemon;
pub(crate) mod front;
pub(crate) mod io;
mod run;

pub use config::{Cli, Config, ConfigError};
pub use core::event_names;
pub use front::cli::{
    request_failover, set_pause, status, subcommand, FailoverRequestError, StatusReport,
};
/// How often each node is polled with `INFO` (besides the parked read that sees a crash at
/// once).
pub use io::probe::POLL_INTERVAL;
pub use io::zk::ZkError;
pub use run::{run, StartError};
