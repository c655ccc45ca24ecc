//! Synchronous mode ([`ClientBuilder::synchronous`](crate::ClientBuilder::synchronous)):
//! every request sent to the master is followed, on the same connection, by
//! `WAIT <replicas> <timeout-ms>`, and its reply is returned only when `WAIT` counted enough
//! replicas; otherwise the request fails with [`NOT_REPLICATED`](crate::NOT_REPLICATED) (it
//! may have been executed on the master, so it is retried only as a write that may have been
//! applied).
//!
//! `WAIT` waits for the replication offset of the last write *of its connection*, so it must
//! follow the write on the connection that carried it: a single command or a plain pipeline
//! is sent as one pipeline with `WAIT` appended (no extra round trip); a transaction
//! (`MULTI`/`EXEC`, which redis-rs packs and checks as a whole) is followed by `WAIT` once
//! its reply is in. One `WAIT` per request: concurrent writers on one multiplexed connection
//! do not share one (no group commit).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisResult, Value};

use crate::error::not_replicated;
use crate::send::{many_replies, one_reply, send, Reply, Request};

/// The synchronous-mode options of a client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Synchronous {
    /// Replicas that must acknowledge each write.
    pub(crate) replicas: usize,
    /// How long `WAIT` may wait for them.
    pub(crate) timeout: Duration,
}

impl Synchronous {
    fn timeout_ms(&self) -> u128 {
        self.timeout.as_millis().max(1)
    }

    fn wait_cmd(&self) -> Cmd {
        let mut c = redis::cmd("WAIT");
        c.arg(self.replicas).arg(self.timeout_ms().to_string());
        c
    }

    /// `Ok` when `WAIT` answered at least [`Self::replicas`].
    fn check(&self, wait: Option<Value>) -> RedisResult<()> {
        let timeout = Duration::from_millis(self.timeout_ms() as u64);
        match wait {
            Some(Value::Int(n)) if n >= 0 && n as u64 >= self.replicas as u64 => Ok(()),
            Some(Value::Int(n)) => Err(not_replicated(Some(n), self.replicas, timeout, None)),
            Some(Value::ServerError(e)) => Err(not_replicated(
                None,
                self.replicas,
                timeout,
                Some(&e.to_string()),
            )),
            other => Err(not_replicated(
                None,
                self.replicas,
                timeout,
                Some(&format!("unexpected reply {other:?}")),
            )),
        }
    }

    /// Sends `req` on the master's connection `conn`, then `WAIT` (see the module doc).
    pub(crate) async fn send(
        &self,
        conn: &mut MultiplexedConnection,
        req: &Request<'_>,
    ) -> RedisResult<Reply> {
        match req {
            Request::One(cmd) => {
                let mut p = redis::pipe();
                p.add_command((*cmd).clone()).add_command(self.wait_cmd());
                let mut values = conn.send_packed_commands(&p, 0, 2).await?;
                let wait = values.pop();
                let reply = one_reply(values.pop().unwrap_or(Value::Nil))?;
                self.check(wait)?;
                Ok(reply)
            }
            Request::Many(p, offset, count) if !p.is_transaction() => {
                let mut p = (*p).clone();
                p.add_command(self.wait_cmd());
                let mut values = conn.send_packed_commands(&p, *offset, count + 1).await?;
                let wait = values.pop();
                let reply = many_replies(values)?;
                self.check(wait)?;
                Ok(reply)
            }
            Request::Many(..) => {
                let reply = send(conn, req).await?;
                let wait = conn.send_packed_command(&self.wait_cmd()).await?;
                self.check(Some(wait))?;
                Ok(reply)
            }
        }
    }
}
