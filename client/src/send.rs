//! One request on one connection: [`Request`] (a command or a pipeline, as
//! `ConnectionLike` hands it over), [`send`], and which error replies prove that the node
//! did not apply it ([`not_applied_reply`]), so that the retry logic sees them.

use redis::aio::MultiplexedConnection;
use redis::{Cmd, Pipeline, RedisResult, ServerErrorKind, Value};

/// A request as `ConnectionLike` hands it over.
pub(crate) enum Request<'a> {
    One(&'a Cmd),
    Many(&'a Pipeline, usize, usize),
}

pub(crate) enum Reply {
    One(Value),
    Many(Vec<Value>),
}

/// Sends on `conn` through its inherent (unboxed) methods: the client's own future is the
/// only allocation per command, as with a plain connection.
pub(crate) async fn send(
    conn: &mut MultiplexedConnection,
    req: &Request<'_>,
) -> RedisResult<Reply> {
    match req {
        Request::One(cmd) => one_reply(conn.send_packed_command(cmd).await?),
        Request::Many(p, offset, count) => {
            many_replies(conn.send_packed_commands(p, *offset, *count).await?)
        }
    }
}

/// The reply to one command. redis-rs hands error replies over as values (the caller's
/// `query` turns them into errors); the ones that mean "not applied here, ask the topology"
/// must be seen by the retry logic.
fn one_reply(v: Value) -> RedisResult<Reply> {
    match v {
        Value::ServerError(e) if not_applied_reply(&e) => Err(e.into()),
        v => Ok(Reply::One(v)),
    }
}

/// The replies to a pipeline: an error when every reply says "not applied" (a pipeline of
/// writes sent to a demoted master, or its aborted MULTI/EXEC): none of it took effect, and
/// it may be retried.
fn many_replies(values: Vec<Value>) -> RedisResult<Reply> {
    let mut all = values.iter().filter_map(|v| match v {
        Value::ServerError(e) => Some(e),
        _ => None,
    });
    if let Some(first) = all.next() {
        let count_errors = 1 + all.clone().count();
        if count_errors == values.len() && not_applied_reply(first) && all.all(not_applied_reply) {
            return Err(first.clone().into());
        }
    }
    Ok(Reply::Many(values))
}

/// An error reply that proves the command was not applied because of the node's role or
/// state: `READONLY`, `LOADING`, `MASTERDOWN`, `NOREPLICAS` (a master fenced by
/// `min-replicas-to-write` refuses the write before running it), or a `MULTI`/`EXEC`
/// aborted for one of them.
pub(crate) fn not_applied_reply(e: &redis::ServerError) -> bool {
    match e.kind() {
        Some(
            ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown,
        ) => true,
        Some(ServerErrorKind::ExecAbort) => e.details().is_some_and(|d| {
            ["READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS"]
                .iter()
                .any(|c| d.contains(c))
        }),
        _ => e.code() == "NOREPLICAS",
    }
}
