//! The client's errors. Commands return [`redis::RedisError`] (so that `AsyncCommands` work
//! unchanged); these helpers build the ones the client itself raises, with a message that
//! says what happened and what to do.

use redis::{ErrorKind, RedisError};

use crate::session::{OpError, SessionError};
use crate::wire::TopologyError;

/// Why [`ClientBuilder::connect`](crate::ClientBuilder::connect) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A builder option is wrong (the message says which and why).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// No ZooKeeper session could be opened.
    #[error(transparent)]
    ZooKeeper(#[from] SessionError),
    /// The topology could not be read.
    #[error(transparent)]
    Topology(#[from] TopologyReadError),
}

/// Why `<root>/nodes` could not be read when connecting.
#[derive(Debug, thiserror::Error)]
pub enum TopologyReadError {
    /// No manager has published a topology under this root.
    #[error("{path} does not exist: is redis_node_manager running with --znode-path {root}?")]
    Missing {
        /// `<root>/nodes`.
        path: String,
        /// The root the client was given.
        root: String,
    },
    /// The znode does not hold a valid topology.
    #[error("{path} is corrupt: {source}")]
    Corrupt {
        /// `<root>/nodes`.
        path: String,
        /// What is wrong with it.
        #[source]
        source: TopologyError,
    },
    /// ZooKeeper did not answer the read (in time).
    #[error(transparent)]
    ZooKeeper(#[from] OpError),
}

/// Why [`Client::manual_failover`](crate::Client::manual_failover) could not write the
/// request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The client's ZooKeeper session is being replaced.
    #[error("no ZooKeeper session right now; try again")]
    NoSession,
    /// ZooKeeper refused the write or did not answer in time.
    #[error(transparent)]
    ZooKeeper(#[from] OpError),
}

pub(crate) fn client_error(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::Client, what, detail))
}

pub(crate) fn no_master() -> RedisError {
    client_error(
        "redis_failover: no master",
        "the published topology has no master (failover in progress or no replica fit to \
         promote); retry later"
            .to_string(),
    )
}

pub(crate) fn maybe_executed(cmd: &str, cause: &RedisError) -> RedisError {
    RedisError::from((
        ErrorKind::Io,
        "redis_failover: write may have been executed",
        format!(
            "{cmd} failed after it was sent ({cause}); it was not retried because it may already \
             have been applied (set retry_non_idempotent to retry such writes)"
        ),
    ))
}
