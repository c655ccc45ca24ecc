//! Talking to a redis node directly: one-shot commands, `INFO replication` roles, `ROLE`
//! replies and async connections.

use std::io;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use redis_failover_client::NodeAddr;

/// Replication role of a redis node, parsed from `INFO replication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// `role:master`.
    Master,
    /// `role:slave`, with its `master_port` and whether `master_link_status:up`.
    Replica { master_port: u16, link_up: bool },
}

/// Parses the text of `INFO replication` into a [`NodeRole`].
pub fn parse_role(info: &str) -> Option<NodeRole> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    match field("role")? {
        "master" => Some(NodeRole::Master),
        "slave" | "replica" => Some(NodeRole::Replica {
            master_port: field("master_port")?.parse().ok()?,
            link_up: field("master_link_status") == Some("up"),
        }),
        _ => None,
    }
}

pub(crate) fn value_to_string(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Okay => Some("OK".to_string()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Runs one command against 127.0.0.1:`port` on a fresh connection whose connect, read and
/// write timeouts are all `timeout`.
pub fn redis_cmd_timeout(
    port: u16,
    timeout: Duration,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    redis_cmd_at("127.0.0.1", port, timeout, args)
}

/// [`redis_cmd_timeout`] against `ip`:`port`.
pub fn redis_cmd_at(
    ip: &str,
    port: u16,
    timeout: Duration,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let (name, rest) = args.split_first().ok_or_else(|| {
        redis::RedisError::from(io::Error::new(
            io::ErrorKind::InvalidInput,
            "redis_cmd: empty command",
        ))
    })?;
    let client = redis::Client::open(format!("redis://{ip}:{port}/"))?;
    let mut con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    let mut cmd = redis::cmd(name);
    for a in rest {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
}

/// An async multiplexed connection to `node` whose connect and response timeouts are both
/// `timeout`.
pub async fn connect_async(
    node: &NodeAddr,
    timeout: Duration,
) -> Result<MultiplexedConnection, String> {
    let client =
        redis::Client::open(format!("redis://{node}/")).map_err(|e| format!("{node}: {e}"))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("connecting to {node}: {e}"))
}

/// `MULTI`, `INCR key` twice, `EXEC` on `c`: the two values it counted.
pub async fn incr_twice_in_multi<C: redis::aio::ConnectionLike>(
    c: &mut C,
    key: &str,
) -> redis::RedisResult<(i64, i64)> {
    redis::pipe()
        .atomic()
        .incr(key, 1)
        .incr(key, 1)
        .query_async(c)
        .await
}
