//! The client's errors. Commands return [`redis::RedisError`] (so that `AsyncCommands` work
//! unchanged); these helpers build the ones the client itself raises, with a message that
//! says what happened and what to do.

use std::time::Duration;

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

/// What every error the client raises starts with; redis-rs then adds the kind and the
/// message: `redis_failover - Client: no master: ...`.
const SOURCE: &str = "redis_failover";

/// An error the client raises before anything reaches Redis. `message` starts with its
/// subject (`namespace: ...`, `no master: ...`) and says why and what to do; redis-rs puts
/// [`SOURCE`] and the kind before it, so the message names neither.
pub(crate) fn client_error(message: String) -> RedisError {
    RedisError::from((ErrorKind::Client, SOURCE, message))
}

/// Like [`client_error`], as an I/O error: the retry logic treats it as "may have been
/// applied".
pub(crate) fn io_error(message: String) -> RedisError {
    RedisError::from((ErrorKind::Io, SOURCE, message))
}

pub(crate) fn no_master() -> RedisError {
    client_error(
        "no master: the published topology has none (failover in progress or no replica fit \
         to promote); retry later"
            .to_string(),
    )
}

/// The [`code`](redis::RedisError::code) of the error a request fails with when the client's
/// topology has been unconfirmed for longer than its
/// [`write_lease`](crate::ClientBuilder::write_lease): nothing was sent. Its kind is
/// [`ErrorKind::Extension`]; its [`detail`](redis::RedisError::detail) reads
/// `topology unconfirmed for N ms: not writing to a master that may have been replaced` (or,
/// for a read with `stale_reads(false)`, `... not reading from a topology that may have
/// changed`).
pub const TOPOLOGY_UNCONFIRMED: &str = "TOPOLOGY_UNCONFIRMED";

/// The [`code`](redis::RedisError::code) of the error a write fails with in
/// [`synchronous`](crate::ClientBuilder::synchronous) mode when fewer replicas than required
/// acknowledged it within the timeout. The write may have been executed on the master (and
/// on some replicas). Its kind is [`ErrorKind::Extension`]; its
/// [`detail`](redis::RedisError::detail) reads
/// `0 of 1 required replicas acknowledged the write within 500 ms; it may have been executed on the master`.
pub const NOT_REPLICATED: &str = "NOT_REPLICATED";

/// Whether `e` is the client's [`TOPOLOGY_UNCONFIRMED`] error.
pub(crate) fn is_unconfirmed(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Extension && e.code() == Some(TOPOLOGY_UNCONFIRMED)
}

/// Whether `e` is the client's [`NOT_REPLICATED`] error.
pub(crate) fn is_not_replicated(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Extension && e.code() == Some(NOT_REPLICATED)
}

/// The lease ran out `age` ago or more: nothing was sent.
pub(crate) fn unconfirmed(age: Duration, write: bool) -> RedisError {
    let ms = age.as_millis().min(u128::from(u64::MAX));
    let what = if write {
        "not writing to a master that may have been replaced"
    } else {
        "not reading from a topology that may have changed"
    };
    redis::make_extension_error(
        TOPOLOGY_UNCONFIRMED.to_string(),
        Some(format!("topology unconfirmed for {ms} ms: {what}")),
    )
}

/// `WAIT` answered `acked` replicas where `required` were asked for within `timeout`, or
/// failed (`cause`).
pub(crate) fn not_replicated(
    acked: Option<i64>,
    required: usize,
    timeout: Duration,
    cause: Option<&str>,
) -> RedisError {
    let ms = timeout.as_millis();
    let detail = match (acked, cause) {
        (Some(n), _) => format!(
            "{n} of {required} required replicas acknowledged the write within {ms} ms; it may \
             have been executed on the master"
        ),
        (None, cause) => format!(
            "WAIT for {required} replicas failed ({}); the write may have been executed on the \
             master",
            cause.unwrap_or("no answer")
        ),
    };
    redis::make_extension_error(NOT_REPLICATED.to_string(), Some(detail))
}

pub(crate) fn maybe_executed(cmd: &str, cause: &RedisError) -> RedisError {
    io_error(format!(
        "write may have been executed: {cmd} failed after it was sent ({cause}); not retried \
         (set retry_non_idempotent to retry such writes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each message says its subject once: `redis_failover - Client: namespace: ...`, not
    /// `redis_failover: namespace - Client: namespace: ...`.
    #[test]
    fn messages_say_things_once() {
        let e = client_error(
            "namespace: KEYS is refused on a client with a namespace: it would see other keys"
                .into(),
        );
        assert_eq!(
            e.to_string(),
            "redis_failover - Client: namespace: KEYS is refused on a client with a namespace: \
             it would see other keys"
        );
        assert_eq!(
            no_master().to_string(),
            "redis_failover - Client: no master: the published topology has none (failover in \
             progress or no replica fit to promote); retry later"
        );
        let cause = RedisError::from((ErrorKind::Io, "broken pipe"));
        let e = maybe_executed("SET", &cause);
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(
            e.to_string(),
            "redis_failover - Io: write may have been executed: SET failed after it was sent \
             (broken pipe - Io); not retried (set retry_non_idempotent to retry such writes)"
        );
        let e = unconfirmed(Duration::from_millis(1234), true);
        assert!(is_unconfirmed(&e) && !is_not_replicated(&e));
        assert_eq!(
            e.detail(),
            Some(
                "topology unconfirmed for 1234 ms: not writing to a master that may have been \
                 replaced"
            )
        );
        assert_eq!(
            e.to_string(),
            "\"TOPOLOGY_UNCONFIRMED\": topology unconfirmed for 1234 ms: not writing to a master \
             that may have been replaced"
        );
        let e = not_replicated(Some(0), 1, Duration::from_millis(500), None);
        assert!(is_not_replicated(&e));
        assert_eq!(
            e.detail(),
            Some(
                "0 of 1 required replicas acknowledged the write within 500 ms; it may have been \
                 executed on the master"
            )
        );
        for e in [no_master(), maybe_executed("SET", &cause)] {
            let text = e.to_string();
            assert_eq!(text.matches("redis_failover").count(), 1, "{text}");
        }
    }
}
