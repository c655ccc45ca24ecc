//! The client's errors. Commands return [`redis::RedisError`] (so that `AsyncCommands` work
//! unchanged); these helpers build the ones the client itself raises, with a message that
//! says what happened and what to do.

use redis::{ErrorKind, RedisError};

/// Why `ClientBuilder::connect` failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid client configuration: {0}")]
    Config(String),
    #[error("{0}")]
    ZooKeeper(String),
    #[error("{0}")]
    Topology(String),
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
